"""One streaming pass over a trace: what it holds (``ric trace info``) and what a player needs.

:func:`scan` reads every frame once, keeping only summaries: the nodes with their setups and
association times, the measurements each node reported for each kind of row, the UEs, slices
and cells seen, counts by message type, and every control the RIC sent with the node's answer
(which ``--controls recorded`` replays). Damage is not fatal here: the index covers the intact
frames and keeps the :class:`~ric.trace.format.TraceError` in ``error``.
"""

from __future__ import annotations

import collections
import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError

from ric._proto.e2.v1 import e2_pb2, kpm_pb2
from ric.cliutil import duration, table
from ric.trace.format import Direction, Frame, TraceError, TraceHeader, TraceReader

__all__ = [
    "KIND_NAMES",
    "NodeEvent",
    "NodeIndex",
    "RecordedControl",
    "TraceIndex",
    "control_key",
    "scan",
]

KIND_NAMES: dict[int, str] = {
    kpm_pb2.ENTITY_KIND_CELL: "cell",
    kpm_pb2.ENTITY_KIND_UE: "ue",
    kpm_pb2.ENTITY_KIND_SLICE: "slice",
}
"""Entity kinds of measurement matrices, by their wire value."""


def control_key(req: e2_pb2.ControlRequest) -> bytes:
    """What makes two control requests "the same control": function, header and message (and
    the CCC content, for a cell configuration control)."""
    key = (
        req.ran_function_id.to_bytes(4, "little")
        + req.header.SerializeToString(deterministic=True)
        + b"\x00"
        + req.message.SerializeToString(deterministic=True)
    )
    if req.HasField("ccc"):
        key += b"\x00" + req.ccc.SerializeToString(deterministic=True)
    return key


@dataclass(slots=True)
class RecordedControl:
    """A control the RIC sent in the trace, and how the node answered it (None: no answer)."""

    offset_us: int
    node: str
    request: e2_pb2.ControlRequest
    answer: e2_pb2.NodeMessage | None = None

    @property
    def outcome(self) -> str:
        """``acknowledged``, ``failed`` or ``unanswered``."""
        if self.answer is None:
            return "unanswered"
        return "acknowledged" if self.answer.HasField("control_acknowledge") else "failed"


@dataclass(frozen=True, slots=True)
class NodeEvent:
    """A change of a node's association in the trace: setup, disconnect, or an update it sent
    (configuration or service update) that a player forwards at the same time."""

    offset_us: int
    node: str
    kind: str
    """``setup``, ``disconnect`` or ``update``."""
    message: e2_pb2.NodeMessage | None = None
    reason: str = ""


@dataclass(slots=True)
class NodeIndex:
    """One node of a trace."""

    node: str
    setup: e2_pb2.E2SetupRequest
    events: list[NodeEvent] = field(default_factory=list)
    metrics: dict[int, dict[str, None]] = field(default_factory=dict)
    """Measurement names seen, by entity kind (wire value), in first-seen order."""
    indications: int = 0
    reports: int = 0
    values: int = 0
    ues: set[str] = field(default_factory=set)
    slices: set[str] = field(default_factory=set)
    first_report_us: int | None = None
    last_report_us: int | None = None

    @property
    def cells(self) -> list[str]:
        """The node's cells, from its (latest) setup."""
        return [
            f"{c.cgi.plmn.mcc}-{c.cgi.plmn.mnc}-{c.cgi.nr_cell_identity}" for c in self.setup.cells
        ]

    @property
    def functions(self) -> list[str]:
        """Short names of the RAN functions the node announced."""
        return [fn.short_name or fn.oid for fn in self.setup.ran_functions]


@dataclass(slots=True)
class TraceIndex:
    """What one pass over a trace found (see :func:`scan`)."""

    path: Path
    header: TraceHeader
    size_bytes: int
    compressed: bool
    frames: int = 0
    kinds: collections.Counter[str] = field(default_factory=collections.Counter)
    first_us: int | None = None
    last_us: int = 0
    nodes: dict[str, NodeIndex] = field(default_factory=dict)
    controls: list[RecordedControl] = field(default_factory=list)
    error: TraceError | None = None

    @property
    def start_us(self) -> int:
        """Where a replay starts: the trace start if nodes were there, else the first frame."""
        if self.header.nodes or self.first_us is None:
            return 0
        return self.first_us

    @property
    def duration_s(self) -> float:
        """From the start (see ``start_us``) to the last frame, in seconds."""
        return max(0, self.last_us - self.start_us) / 1e6

    @property
    def cells(self) -> list[str]:
        """Every cell of every node."""
        return sorted({c for n in self.nodes.values() for c in n.cells})

    @property
    def ues(self) -> list[str]:
        """Every UE that appears in a UE-level report."""
        return sorted({u for n in self.nodes.values() for u in n.ues}, key=_natural)

    @property
    def slices(self) -> list[str]:
        """Every slice that appears in a report."""
        return sorted({s for n in self.nodes.values() for s in n.slices})

    def metrics(self) -> dict[str, list[str]]:
        """Measurement names reported, by kind of row (``cell``, ``ue``, ``slice``)."""
        out: dict[str, dict[str, None]] = {}
        for node in self.nodes.values():
            for kind, names in node.metrics.items():
                out.setdefault(KIND_NAMES[kind], {}).update(names)
        return {k: sorted(v) for k, v in sorted(out.items())}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (what ``ric trace info --json`` prints)."""
        outcomes = collections.Counter(c.outcome for c in self.controls)
        h = self.header
        return {
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "compressed": self.compressed,
            "format_version": h.format_version,
            "source": h.source,
            "ric_id": h.ric_id,
            "created": _iso(h.created_unix_us),
            "start": _iso(h.start_unix_us + self.start_us),
            "duration_s": round(self.duration_s, 3),
            "frames": self.frames,
            "messages": dict(sorted(self.kinds.items())),
            "nodes": [
                {
                    "id": n.node,
                    "vendor": n.setup.vendor,
                    "software_version": n.setup.software_version,
                    "cells": n.cells,
                    "ran_functions": n.functions,
                    "setups": sum(1 for e in n.events if e.kind == "setup"),
                    "reports": n.reports,
                    "ues": len(n.ues),
                    "slices": sorted(n.slices),
                }
                for n in self.nodes.values()
            ],
            "cells": self.cells,
            "ues": len(self.ues),
            "slices": self.slices,
            "metrics": self.metrics(),
            "reports": sum(n.reports for n in self.nodes.values()),
            "values": sum(n.values for n in self.nodes.values()),
            "controls": {"total": len(self.controls), **dict(sorted(outcomes.items()))},
            "metadata": dict(sorted(h.metadata.items())),
            "error": str(self.error) if self.error else None,
        }

    def render(self) -> str:
        """The text ``ric trace info`` prints."""
        d = self.to_dict()
        size = _size(self.size_bytes) + (", gzip" if self.compressed else "")
        lines = [
            f"trace     {d['path']} ({size}, format {d['format_version']})",
            f"source    {d['source'] or '-'}" + (f" (RIC {d['ric_id']})" if d["ric_id"] else ""),
            f"created   {d['created']}",
            f"span      {d['start']} + {_span(self.duration_s)}",
            f"frames    {self.frames:,}: "
            + ", ".join(f"{k} {v:,}" for k, v in d["messages"].items()),
            f"nodes     {len(self.nodes)}   cells {len(d['cells'])}   UEs {d['ues']}   "
            f"slices {len(d['slices'])}" + (f" ({', '.join(d['slices'])})" if d["slices"] else ""),
            f"reports   {d['reports']:,} ({d['values']:,} values)",
            "controls  "
            + (
                ", ".join(f"{k} {v}" for k, v in d["controls"].items()) if self.controls else "none"
            ),
        ]
        for kind, names in d["metrics"].items():
            lines.append(f"metrics   {kind + ':':<7}{', '.join(names)}")
        for key, value in d["metadata"].items():
            lines.append(f"meta      {key} = {value}")
        if self.nodes:
            rows = [
                [
                    n["id"],
                    n["vendor"] or "-",
                    n["software_version"] or "-",
                    str(len(n["cells"])),
                    ", ".join(f.removeprefix("ORAN-E2SM-") for f in n["ran_functions"]) or "-",
                    str(n["ues"]),
                    str(len(n["slices"])),
                    f"{n['reports']:,}",
                ]
                for n in d["nodes"]
            ]
            header = [
                "NODE",
                "VENDOR",
                "SOFTWARE",
                "CELLS",
                "RAN FUNCTIONS",
                "UES",
                "SLICES",
                "REPORTS",
            ]
            lines += ["", *table(header, rows, right={3, 5, 6, 7})]
        if self.error is not None:
            lines += ["", f"DAMAGED: {self.error}"]
        return "\n".join(lines)


def _natural(text: str) -> tuple[int, str]:
    return (int(text), "") if text.isdigit() else (1 << 62, text)


def _iso(unix_us: int) -> str:
    if unix_us <= 0:
        return "-"
    moment = datetime.datetime.fromtimestamp(unix_us / 1e6, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _span(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{duration(seconds)} ({seconds:.1f} s)"


def scan(path: str | Path, *, strict: bool = False) -> TraceIndex:
    """Read the trace at ``path`` once and index it.

    TraceError when the file is not a readable trace at all; damage after the header ends the
    index at the last intact frame (``index.error``), or raises with ``strict``.
    """
    p = Path(path)
    with TraceReader(p) as reader:
        index = TraceIndex(
            path=p,
            header=reader.header,
            size_bytes=p.stat().st_size,
            compressed=reader.compressed,
        )
        for setup in reader.header.nodes:
            node = NodeIndex(setup.node, setup.setup)
            message = e2_pb2.NodeMessage(setup_request=setup.setup)
            node.events.append(
                NodeEvent(min(setup.setup_offset_us, 0), setup.node, "setup", message)
            )
            index.nodes[setup.node] = node
        pending: dict[tuple[str, int, int], RecordedControl] = {}
        for frame in reader.frames(strict=strict):
            index.frames += 1
            if index.first_us is None:
                index.first_us = frame.offset_us
            index.last_us = max(index.last_us, frame.offset_us)
            try:
                _index_frame(index, frame, pending)
            except DecodeError:
                index.kinds["undecodable"] += 1
        index.error = reader.error
    return index


def _index_frame(
    index: TraceIndex, frame: Frame, pending: dict[tuple[str, int, int], RecordedControl]
) -> None:
    offset, node_id, direction = frame.offset_us, frame.node, frame.direction
    if direction is Direction.DISCONNECTED:
        index.kinds["disconnected"] += 1
        node = index.nodes.get(node_id)
        if node is not None:
            node.events.append(NodeEvent(offset, node_id, "disconnect", reason=frame.reason))
        for key in [k for k in pending if k[0] == node_id]:
            del pending[key]
        return
    if direction is Direction.RIC_TO_NODE:
        ric = e2_pb2.RicMessage.FromString(frame.message)
        sent = ric.WhichOneof("message") or "empty"
        index.kinds[sent] += 1
        if sent == "control_request":
            req = ric.control_request
            control = RecordedControl(offset, node_id, req)
            index.controls.append(control)
            pending[(node_id, req.request_id.requestor, req.request_id.instance)] = control
        return
    msg = e2_pb2.NodeMessage.FromString(frame.message)
    kind = msg.WhichOneof("message") or "empty"
    index.kinds[kind] += 1
    if kind == "indications":
        node = index.nodes.get(node_id)
        if node is None:
            return
        node.indications += 1
        for ind in msg.indications.indications:
            if ind.WhichOneof("content") != "kpm":
                continue
            m = ind.kpm.matrix
            if m.entity_kind not in KIND_NAMES:
                continue
            names = node.metrics.setdefault(m.entity_kind, {})
            for name in m.metric_names:
                names[name] = None
            node.reports += 1
            node.values += len(m.values)
            if m.entity_kind == kpm_pb2.ENTITY_KIND_UE:
                node.ues.update(m.entity_ids)
                node.slices.update(m.entity_slices)
            elif m.entity_kind == kpm_pb2.ENTITY_KIND_SLICE:
                node.slices.update(m.entity_ids)
        if node.first_report_us is None:
            node.first_report_us = offset
        node.last_report_us = offset
    elif kind == "setup_request":
        node = index.nodes.get(node_id)
        if node is None:
            node = index.nodes[node_id] = NodeIndex(node_id, msg.setup_request)
        else:
            node.setup = msg.setup_request
        node.events.append(NodeEvent(offset, node_id, "setup", message=msg))
    elif kind in ("configuration_update", "service_update"):
        node = index.nodes.get(node_id)
        if node is not None:
            node.events.append(NodeEvent(offset, node_id, "update", message=msg))
    elif kind in ("control_acknowledge", "control_failure"):
        body = getattr(msg, kind)
        answered = pending.pop((node_id, body.request_id.requestor, body.request_id.instance), None)
        if answered is not None:
            answered.answer = msg
