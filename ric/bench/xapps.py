"""The xApps the benchmark runs inside the runtime under test.

``Sink`` only counts what reaches its handler (reports and measurement values), so ingest and
fan-out measure the runtime, not an xApp. ``Reflex`` answers every report with a handover of
the UE it names, the shortest real control loop: indication -> handler -> control -> node.
Their counts live in :data:`COUNTS`, by xApp name, so they survive an xApp restart and the
bench process can read them without touching the xApp.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from ric.actions import Handover, OutcomeKind
from ric.report import KpmReport
from ric.xapp import Report, XApp

__all__ = ["COUNTS", "Reflex", "Sink", "make_xapp"]

COUNTS: dict[str, list[int]] = {}
"""Per xApp name: [reports handled, values handled, controls acknowledged, controls not]."""


def _counter(name: str) -> list[int]:
    return COUNTS.setdefault(name, [0, 0, 0, 0])


class Sink(XApp):
    """Counts the reports and measurement values its handler receives; does nothing else."""

    name = "bench-sink"
    version = "1"
    queue_size = 256

    def __init__(self, context: Any, config: XApp.Config) -> None:
        super().__init__(context, config)
        self._count = _counter(type(self).name)

    async def on_report(self, report: KpmReport) -> None:
        """Count the report and its values."""
        count = self._count
        count[0] += 1
        count[1] += report.values.size


def _neighbour(cell: str) -> str:
    """The next cell of the same benchmark node (cells are numbered consecutively)."""
    prefix, _, nci = cell.rpartition("-")
    return f"{prefix}-{int(nci) + 1}"


class Reflex(XApp):
    """Hands over the first UE of every report to the neighbouring cell.

    By default the handler sends the control and goes on with the next report while the
    outcome is awaited in a task of the xApp (``pipelined``); with ``pipelined = False`` the
    handler awaits each outcome (the node's acknowledgement) before it takes the next report,
    which caps the loop at one control per control round trip.
    """

    name = "bench-reflex"
    version = "1"
    controls: ClassVar[Sequence[type[Handover]]] = (Handover,)
    pipelined: ClassVar[bool] = True

    def __init__(self, context: Any, config: XApp.Config) -> None:
        super().__init__(context, config)
        self._count = _counter(type(self).name)

    async def on_report(self, report: KpmReport) -> None:
        """One handover per report: the UE named in the report's first row."""
        count = self._count
        count[0] += 1
        count[1] += report.values.size
        serving = report.cells[0]
        action = Handover(ue=report.entity_ids[0], cell_id=serving, target_cell=_neighbour(serving))
        if self.pipelined:
            # The host's task group owns the task (XAppContext.spawn), so nothing is orphaned.
            self._context.spawn(self._send(action), "bench-reflex.control")
        else:
            await self._send(action)

    async def _send(self, action: Handover) -> None:
        outcome = await self.control(action, timeout=2.0)
        self._count[2 if outcome.kind is OutcomeKind.ACKNOWLEDGED else 3] += 1


def make_xapp(kind: str, name: str, reports: Sequence[dict[str, Any]], **attrs: Any) -> type[XApp]:
    """A Sink or Reflex subclass called ``name`` that declares ``reports`` (JSON specs:
    ``{"metrics": [...], "per": "ue", "period_ms": 1000}``); ``attrs`` set class attributes
    (``pipelined=False`` for a Reflex that awaits each outcome)."""
    base: type[XApp] = {"sink": Sink, "reflex": Reflex}[kind]
    declared = tuple(
        Report(*r["metrics"], per=r.get("per", "cell"), period_ms=int(r.get("period_ms", 1000)))
        for r in reports
    )
    cls: type[XApp] = type(
        f"{base.__name__}_{name.replace('-', '_')}",
        (base,),
        {
            "name": name,
            "reports": declared,
            "__module__": __name__,
            "__doc__": base.__doc__,
            **attrs,
        },
    )
    return cls
