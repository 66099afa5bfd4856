"""Playing a trace's nodes back: the node side of a replay, independent of the transport.

A :class:`TracePlayer` holds one :class:`PlayedNode` per node of the trace and moves through
the trace's timeline (microseconds after the trace start) as its driver tells it: the gRPC
replay (:mod:`ric.trace.replay`) on real time times a speed, the test harness
(:mod:`ric.trace.harness`) on a virtual clock. Each node

- sets up with its recorded E2SetupRequest when the trace says it did, and ends its
  association when the trace says it ended;
- answers the subscriptions the RIC makes *now* (not the recorded ones): every
  ``period`` it reports, for each action, the recorded measurements of the kind of row the
  action asks for (style 1: cells, or slices with ``per_slice``; styles 2-5: UEs), restricted
  to the names and the scope asked for. Recorded reports whose collection period ended inside
  the reporting window are served: one as it was recorded, several averaged per entity and
  metric (NaN-aware). A window without recorded data sends nothing. Names the trace never has
  for that kind of row are not admitted, with a cause;
- answers controls by the policy: ``ack`` acknowledges every control; ``recorded`` answers
  like the node answered the same control (same function, header and message) in the trace,
  first unused match first, the last one again when all were used; a control the trace does
  not have fails (``ric_request_unspecified``), and one the trace shows unanswered stays
  unanswered. Controls never change the measurements: the trace is what happened.

Recorded reports are timed by the node's own collection times, so reporting windows line up
with the data exactly; a node whose clock is more than 2 s off the recorder's is re-anchored
on its first report.
"""

from __future__ import annotations

import bisect
import collections
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from ric._proto.e2.v1 import ccc_pb2, common_pb2, e2_pb2, kpm_pb2, rc_pb2
from ric.e2.convert import cause_from_proto
from ric.e2node import Applied, ControlAnswer, E2Node, Refused, RequestKey
from ric.model import CauseCode
from ric.trace.format import Direction, Frame, TraceReader
from ric.trace.index import (
    KIND_NAMES,
    NodeEvent,
    NodeIndex,
    RecordedControl,
    TraceIndex,
    control_key,
    scan,
)

__all__ = [
    "ControlPolicy",
    "PlayedNode",
    "SeenControl",
    "SeenSubscription",
    "TracePlayer",
]

log = logging.getLogger(__name__)

ControlPolicy = Literal["ack", "recorded"]
"""How a played node answers controls: acknowledge all, or as recorded."""

LOOKAHEAD_US: Final = 2_000_000
"""Frames are read this far ahead of the play position (reports may arrive after their
collection period ends)."""
_SKEW_US: Final = 2_000_000
_UE_STYLES: Final = frozenset({2, 3, 4, 5})
_NAN = math.nan
FloatArray = npt.NDArray[np.float64]


def _cgi_text(cgi: common_pb2.NrCgi) -> str:
    return f"{cgi.plmn.mcc}-{cgi.plmn.mnc}-{cgi.nr_cell_identity}"


def _slice_text(s: common_pb2.Snssai) -> str:
    return f"{s.sst}-{s.sd or 'ffffff'}"


class _Sample:
    """One recorded report: its matrix as on the wire, its columns decoded on first use."""

    __slots__ = (
        "_cells",
        "_ids",
        "_slices",
        "_values",
        "end_us",
        "granularity_ms",
        "matrix",
        "metrics",
        "start_ms",
    )

    def __init__(
        self, end_us: int, start_ms: int, granularity_ms: int, matrix: kpm_pb2.MeasurementMatrix
    ) -> None:
        self.end_us = end_us
        self.start_ms = start_ms
        self.granularity_ms = granularity_ms
        self.matrix = matrix
        self.metrics = tuple(matrix.metric_names)
        self._ids: tuple[str, ...] | None = None
        self._cells: tuple[str, ...] | None = None
        self._slices: tuple[str, ...] | None = None
        self._values: FloatArray | None = None

    @property
    def ids(self) -> tuple[str, ...]:
        if self._ids is None:
            self._ids = tuple(self.matrix.entity_ids)
        return self._ids

    @property
    def cells(self) -> tuple[str, ...]:
        if self._cells is None:
            self._cells = tuple(self.matrix.entity_cells)
        return self._cells

    @property
    def slices(self) -> tuple[str, ...]:
        if self._slices is None:
            self._slices = tuple(self.matrix.entity_slices)
        return self._slices

    @property
    def values(self) -> FloatArray:
        if self._values is None:
            values = np.array(self.matrix.values, dtype=np.float64)
            self._values = values.reshape(len(self.matrix.entity_ids), len(self.metrics))
        return self._values


@dataclass(slots=True)
class _Action:
    action_id: int
    kind: int
    metrics: tuple[str, ...]
    cells: frozenset[str] | None
    ues: frozenset[str] | None
    slices: frozenset[str] | None
    sequence: int = 0

    @property
    def unscoped(self) -> bool:
        """Whether the action takes every row (no cells, UEs or slices named)."""
        return self.cells is None and self.ues is None and self.slices is None


@dataclass(slots=True)
class _Subscription:
    request_id: RequestKey
    ran_function_id: int
    period_us: int
    actions: list[_Action]
    since_us: int
    next_due_us: int


@dataclass(frozen=True, slots=True)
class SeenSubscription:
    """A subscription the RIC made on a played node, and what the node admitted."""

    offset_us: int
    node: str
    request_id: tuple[int, int]
    period_ms: int
    rows: str
    """The kind of rows asked for: ``cell``, ``slice`` or ``ue`` (of the first action)."""
    metrics: tuple[str, ...]
    not_admitted: tuple[str, ...]
    refused: str = ""
    """The cause, when the whole subscription was refused."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "offset_s": self.offset_us / 1e6,
            "node": self.node,
            "request_id": list(self.request_id),
            "period_ms": self.period_ms,
            "rows": self.rows,
            "metrics": list(self.metrics),
            "not_admitted": list(self.not_admitted),
            "refused": self.refused,
        }


@dataclass(frozen=True, slots=True)
class SeenControl:
    """A control an xApp sent to a played node, and how the node answered."""

    offset_us: int
    node: str
    request_id: tuple[int, int]
    kind: str
    target: str
    parameters: dict[str, Any]
    answer: str
    """``acknowledged``, ``failed`` or ``unanswered``."""
    cause: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "offset_s": self.offset_us / 1e6,
            "node": self.node,
            "requestor": self.request_id[0],
            "instance": self.request_id[1],
            "kind": self.kind,
            "target": self.target,
            "parameters": self.parameters,
            "answer": self.answer,
            "cause": self.cause,
        }


def describe_control(req: e2_pb2.ControlRequest) -> tuple[str, str, dict[str, Any]]:
    """(kind, target, parameters) of a control request, in the SDK's words."""
    if req.HasField("ccc"):
        return _describe_ccc(req.ccc)
    header = req.header
    kinds = {(3, 1): "handover", (2, 6): "slice_prb_quota", (100, 1): "cell_state"}
    kind = kinds.get((header.style, header.action_id), f"rc {header.style}/{header.action_id}")
    which = header.WhichOneof("target")
    if which == "ue":
        target = f"ue:{header.ue.ue_id}@{_cgi_text(header.ue.serving_cell)}"
    elif which == "cell":
        target = f"cell:{_cgi_text(header.cell)}"
    elif which == "slice":
        target = f"slice:{_cgi_text(header.slice.cell)}/{_slice_text(header.slice.slice)}"
    else:
        target = "-"
    msg = req.message
    params: dict[str, Any] = {}
    action = msg.WhichOneof("action")
    if action == "handover":
        params["target_cell"] = _cgi_text(msg.handover.target_cell)
    elif action == "slice_prb_quota":
        q = msg.slice_prb_quota
        params.update(
            min_pct=q.min_prb_ratio_pct,
            max_pct=q.max_prb_ratio_pct,
            dedicated_pct=q.dedicated_prb_ratio_pct,
        )
    elif action == "cell_state":
        if msg.cell_state.HasField("active"):
            params["active"] = msg.cell_state.active
        if msg.cell_state.HasField("tx_power_dbm"):
            params["tx_power_dbm"] = msg.cell_state.tx_power_dbm
    elif action == "generic":
        for key, value in sorted(msg.generic.parameters.items()):
            params[key] = _value(value)
    return kind, target, params


def _describe_ccc(msg: ccc_pb2.CccControl) -> tuple[str, str, dict[str, Any]]:
    """(kind, target, parameters) of an E2SM-CCC cell configuration control."""
    cell = _cgi_text(msg.cell)
    params: dict[str, Any] = {}
    if msg.relations:
        for rel in msg.relations:
            params[_cgi_text(rel.adjacent_cell)] = rel.cell_individual_offset.rsrp_offset_ssb_db
        return "cell_individual_offset", f"relations:{cell}", params
    if msg.nr_cell_du.administrative_state:
        params["administrativeState"] = ccc_pb2.AdministrativeState.Name(
            msg.nr_cell_du.administrative_state
        )
    if msg.ces_management_function.energy_saving_control:
        params["energySavingControl"] = ccc_pb2.EnergySavingControl.Name(
            msg.ces_management_function.energy_saving_control
        )
    return "cell_administration", f"cell:{cell}", params


def _value(v: rc_pb2.Value) -> Any:
    which = v.WhichOneof("kind")
    return getattr(v, which) if which else None


class PlayedNode(E2Node[_Action, _Subscription]):
    """One node of a trace, played back: it answers the RIC and reports what was recorded.

    The trace is the data source behind the shared E2 procedures (:class:`ric.e2node.E2Node`):
    it says what each admitted action reports, and how a control is answered.
    """

    def __init__(self, index: NodeIndex, player: TracePlayer) -> None:
        super().__init__(index.node, log)
        self.node = index.node
        self.index = index
        self.player = player
        self.setup = index.setup
        self.connected = False
        self.setups = 0
        """Times this node was set up in this play."""
        self._samples: dict[int, list[_Sample]] = {}
        self._now_us = 0
        self._anchor_us: int | None = None
        self._kpm: tuple[int, frozenset[int]] | None = None
        self._rc: set[int] = set()
        self._learn(self.setup)

    def __repr__(self) -> str:
        return f"PlayedNode({self.node}, {'up' if self.connected else 'down'})"

    def _learn(self, setup: e2_pb2.E2SetupRequest) -> None:
        self.setup = setup
        self._kpm = None
        self._rc = set()
        for fn in setup.ran_functions:
            which = fn.WhichOneof("definition")
            if which == "kpm" and self._kpm is None:
                styles = frozenset(s.style for s in fn.kpm.report_styles)
                self._kpm = (fn.ran_function_id, styles)
            elif which in ("rc", "ccc"):  # both take controls
                self._rc.add(fn.ran_function_id)

    # -- association ---------------------------------------------------------------------------

    def setup_message(self, event: NodeEvent | None = None) -> e2_pb2.NodeMessage:
        """The E2SetupRequest to send (the one of ``event`` if it has one)."""
        if event is not None and event.message is not None:
            self._learn(event.message.setup_request)
        return e2_pb2.NodeMessage(setup_request=self.setup)

    def up(self) -> None:
        """The RIC accepted the setup."""
        self.connected = True
        self.setups += 1
        self.new_association()

    def down(self) -> None:
        """The association ended; subscriptions die with it."""
        self.connected = False
        self.drop_subscriptions()

    # -- recorded data ---------------------------------------------------------------------------

    def add_report(self, frame_offset_us: int, ind: e2_pb2.Indication) -> None:
        """Keep one recorded KPM report until the windows that need it are served."""
        kpm = ind.kpm
        m = kpm.matrix
        if m.entity_kind not in KIND_NAMES:
            return
        n_ent, n_met = len(m.entity_ids), len(m.metric_names)
        if len(m.values) != n_ent * n_met:
            return  # the runtime refused it when recorded; so does the player
        if kpm.collection_start_unix_ms:
            end_unix_us = (kpm.collection_start_unix_ms + kpm.granularity_period_ms) * 1000
            end_us = end_unix_us - self.player.index.header.start_unix_us
            if self._anchor_us is None:
                skew = frame_offset_us - end_us
                self._anchor_us = skew if abs(skew) > _SKEW_US else 0
            end_us += self._anchor_us
        else:
            end_us = frame_offset_us
        sample = _Sample(end_us, kpm.collection_start_unix_ms, kpm.granularity_period_ms, m)
        samples = self._samples.setdefault(m.entity_kind, [])
        if samples and samples[-1].end_us > end_us:
            bisect.insort_right(samples, sample, key=lambda s: s.end_us)
        else:
            samples.append(sample)

    def prune(self, now_us: int) -> None:
        """Forget recorded reports no live subscription can still use."""
        for kind, samples in self._samples.items():
            horizon = min(
                (
                    s.since_us
                    for s in self.subscriptions.values()
                    if any(a.kind == kind for a in s.actions)
                ),
                default=now_us,
            )
            cut = bisect.bisect_right(samples, horizon, key=lambda s: s.end_us)
            if cut:
                del samples[:cut]

    # -- the RIC's requests --------------------------------------------------------------------

    def handle(self, msg: e2_pb2.RicMessage, now_us: int) -> list[e2_pb2.NodeMessage]:
        """Answer one message from the RIC at trace time ``now_us``; returns what the node
        sends back."""
        self._now_us = now_us
        return self.answer(msg)

    @property
    def kpm_function_id(self) -> int | None:
        """The first KPM function the node's setup announced."""
        return None if self._kpm is None else self._kpm[0]

    def is_rc_function(self, ran_function_id: int) -> bool:
        """Whether the node's setup announced ``ran_function_id`` as an RC or CCC function."""
        return ran_function_id in self._rc

    def admit_action(self, defn: kpm_pb2.KpmActionDefinition, action_id: int) -> _Action:
        """The action on the trace: an announced style, and the names the trace has for the
        kind of row it asks for."""
        assert self._kpm is not None  # the core admits nothing without a KPM function
        if defn.report_style not in self._kpm[1]:
            raise Refused(
                CauseCode.RIC_REQUEST_ACTION_NOT_SUPPORTED,
                f"report style {defn.report_style} is not announced by {self.node}",
            )
        kind = _kind(defn.report_style, defn.per_slice)
        recorded = self.index.metrics.get(kind, {})
        wanted = list(dict.fromkeys(defn.metric_names))
        metrics = tuple(m for m in wanted if m in recorded)
        if not metrics:
            raise Refused(
                CauseCode.RIC_REQUEST_MEASUREMENT_NOT_SUPPORTED,
                f"the trace has none of {', '.join(wanted) or 'no names'} for "
                f"{KIND_NAMES[kind]} rows of {self.node}",
            )
        scope = defn.scope
        return _Action(
            action_id=action_id,
            kind=kind,
            metrics=metrics,
            cells=frozenset(map(_cgi_text, scope.cells)) if scope.cells else None,
            ues=frozenset(map(str, scope.ue_ids)) if scope.ue_ids else None,
            slices=frozenset(map(_slice_text, scope.slices)) if scope.slices else None,
        )

    def not_reported(self, action: _Action, metric: str) -> str:
        """The trace never has ``metric`` for the action's kind of row."""
        return f"the trace has no {metric} for {KIND_NAMES[action.kind]} rows of {self.node}"

    def subscribe(
        self, key: RequestKey, ran_function_id: int, period_ms: int, actions: list[_Action]
    ) -> _Subscription:
        """Serve the subscription from now on: the first window closes one period from now."""
        period_us = period_ms * 1000
        now_us = self._now_us
        return _Subscription(key, ran_function_id, period_us, actions, now_us, now_us + period_us)

    def on_subscription(
        self,
        req: e2_pb2.SubscriptionRequest,
        actions: Sequence[_Action],
        skipped: Sequence[str],
        refused: Refused | None,
    ) -> None:
        """Kept in ``player.subscriptions``."""
        key = (req.request_id.requestor, req.request_id.instance)
        first = req.actions[0].kpm if req.actions else kpm_pb2.KpmActionDefinition()
        self.player.subscriptions.append(
            SeenSubscription(
                self._now_us,
                self.node,
                key,
                req.kpm_trigger.reporting_period_ms,
                _rows(first.report_style, first.per_slice),
                tuple(dict.fromkeys(m for a in actions for m in a.metrics)),
                tuple(dict.fromkeys(skipped)),
                "" if refused is None else refused.detail,
            )
        )

    def apply_control(self, req: e2_pb2.ControlRequest) -> Applied | None:
        """Answer by the player's policy (see the module docstring)."""
        if self.player.policy == "ack":
            return Applied("acknowledged by the trace player (controls: ack)")
        return self._as_recorded(req)

    def on_control(
        self, req: e2_pb2.ControlRequest, answer: ControlAnswer, refused: Refused | None
    ) -> None:
        """Kept in ``player.controls``."""
        kind, target, params = describe_control(req)
        key = (req.request_id.requestor, req.request_id.instance)
        cause = ""
        if refused is not None:
            name = refused.code.name.lower()
            cause = f"{name}: {refused.detail}" if refused.detail else name
        self.player.controls.append(
            SeenControl(self._now_us, self.node, key, kind, target, params, answer, cause)
        )

    def _as_recorded(self, req: e2_pb2.ControlRequest) -> Applied | None:
        recorded = self.player.recorded_control(self.node, req)
        if recorded is None:
            raise Refused(
                CauseCode.RIC_REQUEST_UNSPECIFIED,
                f"the trace has no such control for {self.node} (controls: recorded)",
            )
        if recorded.answer is None:
            return None
        answer = recorded.answer
        if answer.WhichOneof("message") == "control_failure":
            cause = cause_from_proto(answer.control_failure.cause)
            raise Refused(cause.code, cause.detail)
        return Applied(answer.control_acknowledge.outcome)

    # -- reporting -----------------------------------------------------------------------------

    def next_due(self) -> int | None:
        """When the next report is due (trace microseconds), None without subscriptions."""
        if not self.connected or not self.subscriptions:
            return None
        return min(s.next_due_us for s in self.subscriptions.values())

    def due(self, now_us: int, *, flush: bool = False) -> e2_pb2.NodeMessage | None:
        """The IndicationBatch of every report due at ``now_us`` (with ``flush``: every
        subscription's open window is closed now, e.g. before the node disconnects)."""
        if not self.connected or not self.subscriptions:
            return None
        batch = e2_pb2.IndicationBatch()
        for sub in self.subscriptions.values():
            if not flush and sub.next_due_us > now_us:
                continue
            for action in sub.actions:
                self._report(batch, sub, action, now_us)
            sub.since_us = now_us
            sub.next_due_us += sub.period_us
            if sub.next_due_us <= now_us:
                skipped = (now_us - sub.next_due_us) // sub.period_us + 1
                sub.next_due_us += skipped * sub.period_us
        self.prune(now_us)
        if not batch.indications:
            return None
        self.player.reports_sent += len(batch.indications)
        return e2_pb2.NodeMessage(indications=batch)

    def _report(
        self, batch: e2_pb2.IndicationBatch, sub: _Subscription, action: _Action, now_us: int
    ) -> None:
        samples = self._samples.get(action.kind)
        if not samples:
            return
        lo = bisect.bisect_right(samples, sub.since_us, key=lambda s: s.end_us)
        hi = bisect.bisect_right(samples, now_us, key=lambda s: s.end_us)
        window = samples[lo:hi]
        if not window:
            return
        ind = batch.indications.add()
        ind.request_id.requestor, ind.request_id.instance = sub.request_id
        ind.ran_function_id = sub.ran_function_id
        ind.action_id = action.action_id
        ind.sequence_number = action.sequence
        ind.type = e2_pb2.INDICATION_TYPE_REPORT
        action.sequence += 1
        one = window[0]
        if len(window) == 1 and action.unscoped and one.metrics == action.metrics:
            # Asked for exactly what was recorded: the recorded matrix, as it was.
            ind.kpm.collection_start_unix_ms = one.start_ms
            ind.kpm.granularity_period_ms = one.granularity_ms
            ind.kpm.matrix.CopyFrom(one.matrix)
            return
        ids, cells, slices, values, start_ms, granularity_ms = _matrix(window, action)
        ind.kpm.collection_start_unix_ms = start_ms
        ind.kpm.granularity_period_ms = granularity_ms
        matrix = ind.kpm.matrix
        matrix.entity_kind = kpm_pb2.EntityKind.ValueType(action.kind)
        matrix.metric_names.extend(action.metrics)
        matrix.entity_ids.extend(ids)
        matrix.entity_cells.extend(cells)
        matrix.entity_slices.extend(slices)
        matrix.values.extend(values.ravel().tolist())


def _kind(style: int, per_slice: bool) -> int:
    if style in _UE_STYLES:
        return kpm_pb2.ENTITY_KIND_UE
    return kpm_pb2.ENTITY_KIND_SLICE if per_slice else kpm_pb2.ENTITY_KIND_CELL


def _rows(style: int, per_slice: bool) -> str:
    if style in _UE_STYLES:
        return "ue"
    return "slice" if per_slice else "cell"


def _selected(sample: _Sample, action: _Action) -> list[int] | None:
    """Row indices of ``sample`` inside the action's scope (None: all of them)."""
    if action.cells is None and action.ues is None and action.slices is None:
        return None
    kind = action.kind
    keep = []
    for i, entity in enumerate(sample.ids):
        if kind == kpm_pb2.ENTITY_KIND_CELL:
            cell = entity
        else:
            cell = sample.cells[i] if i < len(sample.cells) else ""
        if action.cells is not None and cell not in action.cells:
            continue
        if action.ues is not None and (kind != kpm_pb2.ENTITY_KIND_UE or entity not in action.ues):
            continue
        if action.slices is not None:
            if kind == kpm_pb2.ENTITY_KIND_SLICE:
                slice_id = entity
            else:
                slice_id = sample.slices[i] if i < len(sample.slices) else ""
            if slice_id not in action.slices:
                continue
        keep.append(i)
    return keep


def _columns(sample: _Sample, metrics: tuple[str, ...]) -> list[int]:
    index = {m: i for i, m in enumerate(sample.metrics)}
    return [index.get(m, -1) for m in metrics]


def _matrix(
    window: list[_Sample], action: _Action
) -> tuple[list[str], list[str], list[str], FloatArray, int, int]:
    """The report of one action over a window of recorded samples (rows may be none, as
    recorded)."""
    metrics = action.metrics
    if len(window) == 1:
        s = window[0]
        rows = _selected(s, action)
        cols = _columns(s, metrics)
        source = s.values if rows is None else s.values[rows]
        if cols == list(range(len(s.metrics))):
            values = source
        else:
            values = np.full((source.shape[0], len(metrics)), _NAN)
            for j, c in enumerate(cols):
                if c >= 0:
                    values[:, j] = source[:, c]
        ids = list(s.ids) if rows is None else [s.ids[i] for i in rows]
        cells = _pick(s.cells, rows, len(s.ids))
        slices = _pick(s.slices, rows, len(s.ids))
        return ids, cells, slices, values, s.start_ms, s.granularity_ms
    order: dict[str, int] = {}
    cell_of: dict[str, str] = {}
    slice_of: dict[str, str] = {}
    picked: list[tuple[_Sample, list[int]]] = []
    for s in window:
        rows = _selected(s, action)
        indices = list(range(len(s.ids))) if rows is None else rows
        picked.append((s, indices))
        for i in indices:
            entity = s.ids[i]
            order.setdefault(entity, len(order))
            if i < len(s.cells):
                cell_of[entity] = s.cells[i]
            if i < len(s.slices):
                slice_of[entity] = s.slices[i]
    total = np.zeros((len(order), len(metrics)))
    count = np.zeros((len(order), len(metrics)))
    for s, indices in picked:
        if not indices:
            continue
        at = np.fromiter((order[s.ids[i]] for i in indices), dtype=np.int64, count=len(indices))
        block = s.values[indices]
        for j, c in enumerate(_columns(s, metrics)):
            if c < 0:
                continue
            column = block[:, c]
            ok = ~np.isnan(column)
            np.add.at(total[:, j], at[ok], column[ok])
            np.add.at(count[:, j], at[ok], 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(count > 0, total / np.maximum(count, 1.0), _NAN)
    ids = list(order)
    has_cells = any(s.cells for s in window)
    has_slices = any(s.slices for s in window)
    cells = [cell_of.get(e, "") for e in ids] if has_cells else []
    slices = [slice_of.get(e, "") for e in ids] if has_slices else []
    start_ms = min(s.start_ms for s in window)
    end_ms = max(s.start_ms + s.granularity_ms for s in window)
    return ids, cells, slices, values, start_ms, max(0, end_ms - start_ms)


def _pick(column: tuple[str, ...], rows: list[int] | None, n: int) -> list[str]:
    if len(column) != n:
        return []
    return list(column) if rows is None else [column[i] for i in rows]


class TracePlayer:
    """The nodes of a trace and the position in its timeline; a driver moves it forward.

    ``trace`` is a path (scanned first, see :func:`ric.trace.index.scan`) or an index.
    With ``strict`` a damaged trace raises TraceError; without, the intact frames are played.
    A driver calls :meth:`advance` with increasing times, applies the node events it returns
    (setups, disconnects, updates), sends what ``node.due(now)`` gives for the connected
    nodes, passes the RIC's messages to ``node.handle``, and calls :meth:`finish` at the end.
    """

    def __init__(
        self,
        trace: str | Path | TraceIndex,
        *,
        controls: ControlPolicy = "ack",
        strict: bool = True,
    ) -> None:
        if controls not in ("ack", "recorded"):
            raise ValueError(f"controls must be 'ack' or 'recorded', got {controls!r}")
        index = trace if isinstance(trace, TraceIndex) else scan(trace, strict=strict)
        if strict and index.error is not None:
            raise index.error
        self.index = index
        self.policy: ControlPolicy = controls
        self.start_us = index.start_us
        self.end_us = max(index.last_us, self.start_us)
        self.now_us = self.start_us
        self.nodes = {name: PlayedNode(n, self) for name, n in index.nodes.items()}
        self.subscriptions: list[SeenSubscription] = []
        """Every subscription the RIC made, in order."""
        self.controls: list[SeenControl] = []
        """Every control the RIC sent (that is, the xApps), in order, with its answer."""
        self.reports_sent = 0
        events = sorted(
            (e for n in index.nodes.values() for e in n.events), key=lambda e: e.offset_us
        )
        self._events = collections.deque(events)
        self._recorded: dict[tuple[str, bytes], list[RecordedControl]] = {}
        for control in index.controls:
            self._recorded.setdefault((control.node, control_key(control.request)), []).append(
                control
            )
        self._used: collections.Counter[tuple[str, bytes]] = collections.Counter()
        self._reader = TraceReader(index.path)
        self._frames: Iterator[Frame] = self._reader.frames(strict=False)
        self._left = index.frames
        self._peek: Frame | None = None
        self.finished = False

    def __repr__(self) -> str:
        return f"TracePlayer({str(self.index.path)!r}, at {self.now_us / 1e6:.3f} s)"

    def close(self) -> None:
        """Close the trace file."""
        self._reader.close()

    def __enter__(self) -> TracePlayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def recorded_control(self, node: str, req: e2_pb2.ControlRequest) -> RecordedControl | None:
        """The recorded control matching ``req`` on ``node`` (see the module docstring)."""
        key = (node, control_key(req))
        matches = self._recorded.get(key)
        if not matches:
            return None
        used = self._used[key]
        self._used[key] = used + 1
        return matches[min(used, len(matches) - 1)]

    def _next_frame(self) -> Frame | None:
        if self._peek is None and self._left > 0:
            self._peek = next(self._frames, None)
            self._left -= 1
        return self._peek

    def advance(self, now_us: int) -> list[NodeEvent]:
        """Move to ``now_us`` (never back): read the recorded reports up to it (and a little
        ahead) and return the node events due by then, in order."""
        self.now_us = max(self.now_us, now_us)
        horizon = self.now_us + LOOKAHEAD_US
        while True:
            frame = self._next_frame()
            if frame is None or frame.offset_us > horizon:
                break
            self._peek = None
            if frame.direction is not Direction.NODE_TO_RIC:
                continue
            node = self.nodes.get(frame.node)
            if node is None:
                continue
            try:
                msg = e2_pb2.NodeMessage.FromString(frame.message)
            except Exception:  # undecodable frames were counted by the scan; skip them
                continue
            if msg.WhichOneof("message") != "indications":
                continue
            for ind in msg.indications.indications:
                if ind.WhichOneof("content") == "kpm":
                    node.add_report(frame.offset_us, ind)
        for node in self.nodes.values():
            node.prune(self.now_us)
        due: list[NodeEvent] = []
        while self._events and self._events[0].offset_us <= self.now_us:
            due.append(self._events.popleft())
        return due

    def next_time(self) -> int | None:
        """The next time something happens: a node event or a report due (None: nothing is
        left before the end)."""
        times = [n.next_due() for n in self.nodes.values()]
        candidates = [t for t in times if t is not None and t <= self.end_us]
        if self._events:
            candidates.append(self._events[0].offset_us)
        return min(candidates) if candidates else None

    def connected(self) -> list[PlayedNode]:
        """The nodes set up now, in trace order."""
        return [n for n in self.nodes.values() if n.connected]

    def finish(self) -> dict[str, e2_pb2.NodeMessage]:
        """The end of the trace: every connected node's last reports (open windows closed)."""
        self.finished = True
        self.advance(self.end_us)
        out: dict[str, e2_pb2.NodeMessage] = {}
        for node in self.connected():
            msg = node.due(self.now_us, flush=True)
            if msg is not None:
                out[node.node] = msg
        return out

    def summary(self) -> dict[str, Any]:
        """What the xApps did, JSON-ready: subscriptions made and controls sent."""
        answers = collections.Counter(c.answer for c in self.controls)
        return {
            "trace": str(self.index.path),
            "controls_policy": self.policy,
            "position_s": round((self.now_us - self.start_us) / 1e6, 3),
            "duration_s": round(self.index.duration_s, 3),
            "nodes": len(self.nodes),
            "reports_sent": self.reports_sent,
            "subscriptions": [s.to_dict() for s in self.subscriptions],
            "controls": [c.to_dict() for c in self.controls],
            "control_answers": dict(sorted(answers.items())),
        }
