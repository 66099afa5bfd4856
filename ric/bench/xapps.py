"""The xApps the benchmark runs inside the runtime under test, in any isolation mode.

``Sink`` only counts what reaches its handler (reports and measurement values), so ingest and
fan-out measure the runtime, not an xApp. ``Reflex`` answers every report with a handover of
the UE it names, the shortest real control loop: indication -> handler -> control -> node.

A ``process`` xApp runs in a child the runtime starts with ``ric xapp run module:Class``, so
its class must be importable there. :func:`make_xapp` therefore names each class after
everything that defines it (kind, xApp name, report preset, e.g. ``Sink__sink_3__ingest``),
and this module's ``__getattr__`` rebuilds the same class from that name in the child.

The counts live in a small file per xApp (a NumPy memmap of four int64: reports handled,
values handled, controls acknowledged, controls not) in the directory :data:`COUNTS_ENV`
names, so the bench reads the handler's own count whichever process it runs in, and the
count survives a restart.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Final

import numpy as np
import numpy.typing as npt

from ric.actions import Handover, OutcomeKind
from ric.bench import wire
from ric.report import KpmReport
from ric.xapp import Report, XApp

__all__ = [
    "COUNTS_ENV",
    "PRESETS",
    "Reflex",
    "Sink",
    "class_name",
    "make_xapp",
    "read_counts",
]

COUNTS_ENV: Final = "RIC_BENCH_COUNTS_DIR"
"""The environment variable naming the directory of the count files (set by the bench's
runtime role before the runtime starts, so its ``process`` children inherit it)."""

PRESETS: Final[dict[str, tuple[dict[str, Any], ...]]] = {
    # Ingest and fan-out: one UE report of ten metrics every 10 ms.
    "ingest": ({"metrics": list(wire.UE_METRICS), "per": "ue", "period_ms": 10},),
    # The control loop: a one-UE report of four metrics every millisecond.
    "control": ({"metrics": list(wire.UE_METRICS[:4]), "per": "ue", "period_ms": 1},),
    # Scale: a cell report and a UE report every second.
    "scale": (
        {"metrics": list(wire.CELL_METRICS), "per": "cell", "period_ms": 1000},
        {"metrics": list(wire.UE_METRICS[:7]), "per": "ue", "period_ms": 1000},
    ),
}
"""The reports each bench xApp may declare, by preset name (JSON specs as the nodes see them)."""

_FIELDS: Final = 4
_NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")


def _counter(name: str) -> npt.NDArray[np.int64]:
    """This xApp's counts: its file in ``$RIC_BENCH_COUNTS_DIR``, or memory when unset."""
    folder = os.environ.get(COUNTS_ENV)
    if not folder:
        return np.zeros(_FIELDS, dtype=np.int64)
    path = Path(folder) / f"{name}.counts"
    if not path.exists():
        path.write_bytes(bytes(8 * _FIELDS))
    mapped = np.memmap(path, dtype=np.int64, mode="r+", shape=(_FIELDS,))
    # A plain ndarray over the same pages: memmap's own __getitem__ is Python code.
    return mapped.view(np.ndarray)


def read_counts(folder: Path) -> dict[str, list[int]]:
    """Per xApp name, the counts in ``folder``: [reports, values, acknowledged, not]."""
    out: dict[str, list[int]] = {}
    for path in sorted(folder.glob("*.counts")):
        data = path.read_bytes()
        if len(data) == 8 * _FIELDS:
            out[path.stem] = [int(x) for x in np.frombuffer(data, dtype=np.int64)]
    return out


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


_BASES: Final[dict[str, tuple[type[XApp], dict[str, Any]]]] = {
    "sink": (Sink, {}),
    "reflex": (Reflex, {}),
    # The plain way to write an xApp: await each outcome before the next report.
    "awaiting": (Reflex, {"pipelined": False}),
}


def class_name(kind: str, name: str, preset: str) -> str:
    """The attribute of this module that stands for the bench xApp (kind, name, preset)."""
    return f"{kind.capitalize()}__{name.replace('-', '_')}__{preset}"


def make_xapp(kind: str, name: str, preset: str) -> type[XApp]:
    """The bench xApp ``kind`` ("sink", "reflex" or "awaiting") called ``name`` (lower case,
    digits and dashes) declaring the reports of ``preset`` (a key of :data:`PRESETS`); the
    same class, by the same ``module:Class`` reference, in every process."""
    if kind not in _BASES:
        raise ValueError(f"bench xApp kind {kind!r} is not one of {sorted(_BASES)}")
    if preset not in PRESETS:
        raise ValueError(f"bench report preset {preset!r} is not one of {sorted(PRESETS)}")
    if not _NAME.fullmatch(name):
        raise ValueError(f"bench xApp name {name!r}: use lower case letters, digits and dashes")
    attr = class_name(kind, name, preset)
    made = globals().get(attr)
    if isinstance(made, type) and issubclass(made, XApp):
        return made
    base, attrs = _BASES[kind]
    declared = tuple(
        Report(*r["metrics"], per=r.get("per", "cell"), period_ms=int(r.get("period_ms", 1000)))
        for r in PRESETS[preset]
    )
    cls: type[XApp] = type(
        attr,
        (base,),
        {
            "name": name,
            "reports": declared,
            "__module__": __name__,
            "__qualname__": attr,
            "__doc__": base.__doc__,
            **attrs,
        },
    )
    globals()[attr] = cls  # so that `module:Class` finds it here too
    return cls


def __getattr__(attr: str) -> type[XApp]:
    """``ric.bench.xapps:<Kind>__<name>__<preset>``: the class :func:`make_xapp` made for
    those, rebuilt in the ``process`` xApp's child (PEP 562)."""
    parts = attr.split("__")
    if len(parts) == 3 and parts[0].lower() in _BASES and parts[0] == parts[0].capitalize():
        try:
            return make_xapp(parts[0].lower(), parts[1].replace("_", "-"), parts[2])
        except ValueError:
            pass
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
