"""kpimon: a KPI monitor xApp.

Subscribes to cell-level KPM measurements on every node and keeps, per cell, the latest
downlink PRB utilisation, downlink and uplink UE throughput, connected UEs and RLC delay.
Vendors differ in what they report, so the RLC delay is a report of its own: a node that
cannot give it still shows every other KPI.
Every ``print_every_s`` seconds it logs one compact line per cell; ``snapshot()`` returns the
table for dashboards (the ``ric demo`` view reads it).

It exports the KPIs as xApp metrics too, in base units, labelled with node and cell (in
Prometheus ``xapp_kpimon_cell_prb_utilization_ratio{node=..., cell=...}`` and so on; per-cell
series are exported when the runtime's ``[metrics] per_cell`` is on), plus ``cells``, the
number of cells it has KPIs for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ric import KpmReport, NodeInfo, Report, XApp
from ric.types import Gauge

__all__ = ["CellKpis", "KpiMonitor"]

METRICS = ("RRU.PrbUsedDl", "RRU.PrbAvailDl", "DRB.UEThpDl", "DRB.UEThpUl", "RRC.ConnMean")
DELAY = "DRB.RlcSduDelayDl"

CELL_GAUGES: dict[str, tuple[str, float, str]] = {
    # metric name -> (gauge name, factor to base units, help)
    "RRU.PrbUsedDl": (
        "cell_prb_utilization_ratio",
        1.0,
        "Downlink PRB utilisation of the cell, 0-1 (RRU.PrbUsedDl / RRU.PrbAvailDl).",
    ),
    "DRB.UEThpDl": (
        "cell_dl_throughput_bytes_per_second",
        125.0,  # kbit/s -> bytes/s
        "Mean downlink UE throughput in the cell (DRB.UEThpDl).",
    ),
    "DRB.UEThpUl": (
        "cell_ul_throughput_bytes_per_second",
        125.0,
        "Mean uplink UE throughput in the cell (DRB.UEThpUl).",
    ),
    "RRC.ConnMean": (
        "cell_rrc_connections",
        1.0,
        "Mean number of RRC-connected UEs in the cell (RRC.ConnMean).",
    ),
    DELAY: (
        "cell_rlc_delay_seconds",
        1e-4,  # 0.1 ms -> s
        "Mean downlink RLC SDU delay in the cell (DRB.RlcSduDelayDl).",
    ),
}
"""The per-cell gauges kpimon exports, by the measurement they come from."""


@dataclass(frozen=True, slots=True)
class CellKpis:
    """One cell's latest KPIs, in operator units."""

    cell: str
    node: str
    prb_util_pct: float
    dl_mbps: float
    ul_mbps: float
    ues: float
    delay_ms: float
    at: float

    def line(self) -> str:
        """A compact one-line rendering."""
        return (
            f"{self.cell:<14} PRB {self.prb_util_pct:5.1f}%  DL {self.dl_mbps:7.2f} Mbit/s  "
            f"UL {self.ul_mbps:6.2f} Mbit/s  UEs {self.ues:4.1f}  delay {self.delay_ms:6.2f} ms"
        )


def _pct(used: float, avail: float) -> float:
    return 100.0 * used / avail if avail > 0 else math.nan  # NaN compares false: stays NaN


class KpiMonitor(XApp):
    """Keeps the latest KPIs of every cell and logs them periodically."""

    name = "kpimon"
    version = "0.1.0"
    reports = [Report(*METRICS, period_ms=1000), Report(DELAY, period_ms=1000)]

    class Config(XApp.Config):
        """kpimon settings."""

        print_every_s: float = 10.0
        """Log the KPI table this often (seconds); 0 turns logging off."""

    config: Config
    latest: dict[str, dict[str, float]]
    node_of: dict[str, str]
    updated: dict[str, float]
    gauges: dict[str, Gauge]
    cell_count: Gauge

    async def on_start(self) -> None:
        self.latest = {}
        self.node_of = {}
        self.updated = {}
        labels = ("node", "cell")
        self.gauges = {
            metric: self.metrics.gauge(name, doc, labels)
            for metric, (name, _, doc) in CELL_GAUGES.items()
        }
        self.cell_count = self.metrics.gauge("cells", "Cells kpimon has KPIs for.")
        self.cell_count.set(0)
        if self.config.print_every_s > 0:
            self.every(self.config.print_every_s, self._print)

    async def on_node_down(self, node: NodeInfo) -> None:
        for cell in node.cells:
            self.latest.pop(str(cell), None)
            self.node_of.pop(str(cell), None)
            for gauge in self.gauges.values():
                gauge.remove(node=str(node.id), cell=str(cell))
        self.cell_count.set(len(self.latest))

    async def on_report(self, report: KpmReport) -> None:
        now = self.now()
        for i, cell in enumerate(report.entity_ids):
            values = self.latest.setdefault(cell, {})
            for j, metric in enumerate(report.metrics):
                values[metric] = float(report.values[i, j])
            self.node_of[cell] = report.node
            self.updated[cell] = now
            self._export(report.node, cell, values)
        self.cell_count.set(len(self.latest))

    def _export(self, node: str, cell: str, values: dict[str, float]) -> None:
        for metric, gauge in self.gauges.items():
            value = values.get(metric, math.nan)
            if metric == "RRU.PrbUsedDl":
                value = _pct(value, values.get("RRU.PrbAvailDl", math.nan)) / 100.0
            if not math.isnan(value):  # a KPI the node does not give has no series
                gauge.labels(node=node, cell=cell).set(value * CELL_GAUGES[metric][1])

    def kpis(self, cell: str) -> CellKpis:
        """The KPIs of one cell in operator units (NaN where the node gives no value)."""
        v = self.latest.get(cell, {})
        nan = math.nan
        return CellKpis(
            cell=cell,
            node=self.node_of.get(cell, ""),
            prb_util_pct=_pct(v.get("RRU.PrbUsedDl", nan), v.get("RRU.PrbAvailDl", nan)),
            dl_mbps=v.get("DRB.UEThpDl", nan) / 1000.0,  # kbit/s -> Mbit/s
            ul_mbps=v.get("DRB.UEThpUl", nan) / 1000.0,
            ues=v.get("RRC.ConnMean", nan),
            delay_ms=v.get(DELAY, nan) / 10.0,  # 0.1 ms -> ms
            at=self.updated.get(cell, nan),
        )

    def snapshot(self) -> list[CellKpis]:
        """The latest KPIs of every cell, sorted by cell id."""
        return [self.kpis(cell) for cell in sorted(self.latest)]

    async def _print(self) -> None:
        for kpis in self.snapshot():
            self.log.info("%s", kpis.line())
