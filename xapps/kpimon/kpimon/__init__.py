"""kpimon: a KPI monitor xApp.

Subscribes to cell-level KPM measurements on every node and keeps, per cell, the latest
downlink PRB utilisation, downlink and uplink UE throughput, connected UEs and RLC delay.
Vendors differ in what they report, so the RLC delay is a report of its own: a node that
cannot give it still shows every other KPI. A third report has one row per slice of each cell
(KPM style 1 with the slice label): the slice's PRB use, mean UE throughput, UEs and delay.
Every ``print_every_s`` seconds it logs one compact line per cell; ``snapshot()`` and
``slice_snapshot()`` return the tables for dashboards (the ``ric demo`` view reads the first).

It exports the KPIs as xApp metrics too, in base units, labelled with node and cell (in
Prometheus ``xapp_kpimon_cell_prb_utilization_ratio{node=..., cell=...}`` and so on), and the
slice KPIs labelled with node, cell and slice (``xapp_kpimon_slice_prb_utilization_ratio``
...); series with a cell label are exported when the runtime's ``[metrics] per_cell`` is on.
``cells`` and ``slices`` count what it has KPIs for.

With ``publish`` on, each report's KPIs also go to the MQTT bridge (when the runtime has one;
otherwise nothing is built or encoded) as JSON, under ``<prefix>/xapps/kpimon/kpis/<node>/cells``
and ``.../kpis/<node>/slices``, in operator units: one message per report, or, for a node with
more than ``publish_max_rows`` cells (or slices), several messages of at most that many rows,
each saying which ``part`` of how many ``parts`` it is, so a node of 5,000 cells stays within
the bridge's size limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from ric import EntityKind, Gauge, KpmReport, NodeInfo, Report, XApp

__all__ = ["CellKpis", "KpiMonitor", "SliceKpis"]

METRICS = ("RRU.PrbUsedDl", "RRU.PrbAvailDl", "DRB.UEThpDl", "DRB.UEThpUl", "RRC.ConnMean")
DELAY = "DRB.RlcSduDelayDl"
SLICE_METRICS = ("RRU.PrbUsedDl", "RRU.PrbTotDl", "DRB.UEThpDl", "RRC.ConnMean", DELAY)
"""What the per-slice report asks for; a node without the delay still gives the others."""

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

SLICE_GAUGES: dict[str, tuple[str, float, str]] = {
    "RRU.PrbTotDl": (
        "slice_prb_utilization_ratio",
        0.01,  # percent -> ratio
        "Share of the cell's downlink PRBs the slice used, 0-1 (RRU.PrbTotDl per slice).",
    ),
    "DRB.UEThpDl": (
        "slice_dl_throughput_bytes_per_second",
        125.0,
        "Mean downlink throughput of the slice's UEs in the cell (DRB.UEThpDl per slice).",
    ),
    "RRC.ConnMean": (
        "slice_rrc_connections",
        1.0,
        "Mean number of the slice's RRC-connected UEs in the cell (RRC.ConnMean per slice).",
    ),
    DELAY: (
        "slice_rlc_delay_seconds",
        1e-4,
        "Mean downlink RLC SDU delay of the slice in the cell (DRB.RlcSduDelayDl per slice).",
    ),
}
"""The per-slice gauges kpimon exports, by the measurement they come from."""


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


@dataclass(frozen=True, slots=True)
class SliceKpis:
    """One slice's latest KPIs in one cell, in operator units (NaN where there is no value,
    for example the throughput of a slice with no UEs in the cell)."""

    cell: str
    slice: str
    node: str
    prb_util_pct: float
    """Share of the cell's downlink PRBs the slice used, percent."""
    dl_mbps: float
    """Mean downlink throughput of the slice's UEs, Mbit/s."""
    ues: float
    delay_ms: float
    at: float

    def line(self) -> str:
        """A compact one-line rendering."""
        return (
            f"{self.cell:<14} {self.slice:<9} PRB {self.prb_util_pct:5.1f}%  "
            f"DL {self.dl_mbps:7.2f} Mbit/s  UEs {self.ues:4.1f}  delay {self.delay_ms:6.2f} ms"
        )


def _number(value: float) -> float | None:
    return None if value != value else value  # NaN is "no value": null in JSON


def _pct(used: float, avail: float) -> float:
    return 100.0 * used / avail if avail > 0 else math.nan  # NaN compares false: stays NaN


class KpiMonitor(XApp):
    """Keeps the latest KPIs of every cell and of every slice in it, exports them as metrics
    (and over MQTT), and logs the cell table periodically."""

    name = "kpimon"
    version = "0.1.0"
    reports = [
        Report(*METRICS, period_ms=1000),
        Report(DELAY, period_ms=1000),
        Report(*SLICE_METRICS, period_ms=1000, per="slice"),
    ]

    class Config(XApp.Config):
        """kpimon settings."""

        print_every_s: float = 10.0
        """Log the KPI table this often (seconds); 0 turns logging off."""
        publish: bool = True
        """Publish each report's KPIs on the MQTT bridge (a no-op when it is off)."""
        publish_max_rows: int = Field(500, ge=1, le=1000)
        """Cells (or slices) per published message: a row is at most ~200 bytes of JSON, so
        500 rows stay well under the bridge's 256 KiB default; bigger reports go in parts."""

    config: Config
    latest: dict[str, dict[str, float]]
    node_of: dict[str, str]
    updated: dict[str, float]
    slices: dict[tuple[str, str], dict[str, float]]
    """Latest per-slice values by (cell, slice), in the report's units."""
    slices_updated: dict[tuple[str, str], float]
    gauges: dict[str, Gauge]
    _bound: dict[str, tuple[str, dict[str, Gauge]]]
    """Per cell: its node and its gauge series by metric, bound once."""
    slice_gauges: dict[str, Gauge]
    cell_count: Gauge
    slice_count: Gauge

    async def on_start(self) -> None:
        self.latest = {}
        self.node_of = {}
        self.updated = {}
        self.slices = {}
        self.slices_updated = {}
        self._bound = {}
        labels = ("node", "cell")
        self.gauges = {
            metric: self.metrics.gauge(name, doc, labels)
            for metric, (name, _, doc) in CELL_GAUGES.items()
        }
        self.slice_gauges = {
            metric: self.metrics.gauge(name, doc, ("node", "cell", "slice"))
            for metric, (name, _, doc) in SLICE_GAUGES.items()
        }
        self.cell_count = self.metrics.gauge("cells", "Cells kpimon has KPIs for.")
        self.cell_count.set(0)
        self.slice_count = self.metrics.gauge(
            "slices", "Slices of cells (cell, slice pairs) kpimon has KPIs for."
        )
        self.slice_count.set(0)
        if self.config.print_every_s > 0:
            self.every(self.config.print_every_s, self._print)

    async def on_node_down(self, node: NodeInfo) -> None:
        gone = {str(cell) for cell in node.cells}
        for cell in gone:
            self.latest.pop(cell, None)
            self.node_of.pop(cell, None)
            self._bound.pop(cell, None)
            for gauge in self.gauges.values():
                gauge.remove(node=str(node.id), cell=cell)
        for key in [k for k in self.slices if k[0] in gone]:
            del self.slices[key]
            self.slices_updated.pop(key, None)
            for gauge in self.slice_gauges.values():
                gauge.remove(node=str(node.id), cell=key[0], slice=key[1])
        self.cell_count.set(len(self.latest))
        self.slice_count.set(len(self.slices))

    async def on_report(self, report: KpmReport) -> None:
        if report.kind is EntityKind.SLICE:
            self._slice_report(report)
            return
        now = self.now()
        node = report.node
        metrics = report.metrics
        latest, node_of, updated = self.latest, self.node_of, self.updated
        # One conversion of the matrix to rows of Python floats, not one per value.
        for cell, row in zip(report.entity_ids, report.values.tolist(), strict=True):
            values = latest.get(cell)
            if values is None:
                values = latest[cell] = {}
            values.update(zip(metrics, row, strict=True))
            node_of[cell] = node
            updated[cell] = now
            self._export(node, cell, values)
        self.cell_count.set(len(latest))
        if self.config.publish and self.publishing:
            self._publish_parts(
                f"kpis/{node}/cells",
                node,
                now,
                "cells",
                [(c, self._cell_json(self.kpis(c))) for c in report.entity_ids],
            )

    def _publish_parts(self, topic: str, node: str, at: float, key: str, rows: list[Any]) -> None:
        """Publish ``rows`` in messages of at most ``publish_max_rows``; cells go as an object
        by cell id, slices as a list (as in one message)."""
        size = self.config.publish_max_rows
        parts = max(1, -(-len(rows) // size))
        for part in range(parts):
            chunk = rows[part * size : (part + 1) * size]
            body: dict[str, Any] = {
                "node": node,
                "at": at,
                key: dict(chunk) if key == "cells" else chunk,
            }
            if parts > 1:
                body["part"] = part + 1
                body["parts"] = parts
            self.publish(topic, body)

    def _slice_report(self, report: KpmReport) -> None:
        now = self.now()
        publish = self.config.publish and self.publishing
        rows: list[dict[str, Any]] = []
        metrics = report.metrics
        for i, (slice_id, row) in enumerate(
            zip(report.entity_ids, report.values.tolist(), strict=True)
        ):
            key = (report.cells[i], slice_id)
            self.node_of.setdefault(key[0], report.node)
            values = self.slices.setdefault(key, {})
            values.update(zip(metrics, row, strict=True))
            self.slices_updated[key] = now
            labels = {"node": report.node, "cell": key[0], "slice": slice_id}
            for metric, gauge in self.slice_gauges.items():
                value = values.get(metric, math.nan)
                if not math.isnan(value):
                    gauge.labels(**labels).set(value * SLICE_GAUGES[metric][1])
            if publish:
                k = self.slice_kpis(*key)
                rows.append(
                    {
                        "cell": k.cell,
                        "slice": k.slice,
                        "prb_util_pct": _number(k.prb_util_pct),
                        "dl_mbps": _number(k.dl_mbps),
                        "ues": _number(k.ues),
                        "delay_ms": _number(k.delay_ms),
                    }
                )
        self.slice_count.set(len(self.slices))
        if publish:
            self._publish_parts(f"kpis/{report.node}/slices", report.node, now, "slices", rows)

    @staticmethod
    def _cell_json(k: CellKpis) -> dict[str, float | None]:
        # NaN as None here keeps the encoding on json's C path.
        return {
            "prb_util_pct": _number(k.prb_util_pct),
            "dl_mbps": _number(k.dl_mbps),
            "ul_mbps": _number(k.ul_mbps),
            "ues": _number(k.ues),
            "delay_ms": _number(k.delay_ms),
        }

    def _export(self, node: str, cell: str, values: dict[str, float]) -> None:
        # The cell's series are looked up once and kept: a report then costs one set per KPI.
        bound = self._bound.get(cell)
        if bound is None or bound[0] != node:
            bound = self._bound[cell] = (node, {})
        series = bound[1]
        for metric, gauge in self.gauges.items():
            value = values.get(metric, math.nan)
            if metric == "RRU.PrbUsedDl":
                value = _pct(value, values.get("RRU.PrbAvailDl", math.nan)) / 100.0
            if not math.isnan(value):  # a KPI the node does not give has no series
                target = series.get(metric)
                if target is None:
                    target = series[metric] = gauge.labels(node=node, cell=cell)
                target.set(value * CELL_GAUGES[metric][1])

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

    def slice_kpis(self, cell: str, slice_id: str) -> SliceKpis:
        """The KPIs of one slice in one cell in operator units (NaN where there is none)."""
        v = self.slices.get((cell, slice_id), {})
        nan = math.nan
        return SliceKpis(
            cell=cell,
            slice=slice_id,
            node=self.node_of.get(cell, ""),
            prb_util_pct=v.get("RRU.PrbTotDl", nan),
            dl_mbps=v.get("DRB.UEThpDl", nan) / 1000.0,
            ues=v.get("RRC.ConnMean", nan),
            delay_ms=v.get(DELAY, nan) / 10.0,
            at=self.slices_updated.get((cell, slice_id), nan),
        )

    def snapshot(self) -> list[CellKpis]:
        """The latest KPIs of every cell, sorted by cell id."""
        return [self.kpis(cell) for cell in sorted(self.latest)]

    def slice_snapshot(self) -> list[SliceKpis]:
        """The latest KPIs of every slice of every cell, sorted by cell and slice."""
        return [self.slice_kpis(cell, s) for cell, s in sorted(self.slices)]

    async def _print(self) -> None:
        for kpis in self.snapshot():
            self.log.info("%s", kpis.line())
