"""Between the northbound API's messages (``ric.xapp.v1``) and the SDK's objects.

Both ends use it: the runtime encodes reports, events and outcomes and decodes controls; the
xApp side (``ric.northbound.client``) does the reverse. Reports keep E2's columnar matrix
(one packed array of doubles per report); decoding one is a single C-level copy. Every
``*_from_proto`` raises ``ValueError`` naming the field and the problem for a malformed
message, which the receiver answers without dropping the stream.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np

from ric._proto.e2.v1 import kpm_pb2
from ric._proto.xapp.v1 import xapp_pb2 as pb
from ric.a1.policy import PolicyEvent, PolicyKind, PolicyStatus, PolicyType
from ric.actions import (
    AdministrativeState,
    CellAdministration,
    CellIndividualOffset,
    CellState,
    Conflict,
    ControlAction,
    ControlOutcome,
    EnergySavingControl,
    GenericControl,
    Handover,
    OutcomeKind,
    ParamValue,
    SlicePrbQuota,
)
from ric.ids import CellId, NodeId
from ric.model import (
    Cause,
    CauseCode,
    CccFunction,
    CellInfo,
    KpmFunction,
    KpmStyle,
    NodeInfo,
    RanFunction,
    RcAction,
    RcFunction,
)
from ric.report import EntityKind, KpmReport
from ric.xapp import Report, ReportState, SubscriptionStatus, XApp

__all__ = [
    "CONTROL_KINDS",
    "action_from_proto",
    "action_to_proto",
    "conflict_from_proto",
    "conflict_to_proto",
    "hello_for",
    "node_from_proto",
    "node_to_proto",
    "outcome_from_proto",
    "outcome_to_proto",
    "policy_event_from_proto",
    "policy_event_to_proto",
    "policy_status_from_proto",
    "report_from_proto",
    "report_spec",
    "report_to_proto",
    "status_from_proto",
    "status_to_proto",
]

CONTROL_KINDS: dict[str, type[ControlAction]] = {
    cls.kind: cls
    for cls in (
        Handover,
        SlicePrbQuota,
        CellState,
        GenericControl,
        CellIndividualOffset,
        CellAdministration,
    )
}
"""The control kinds the northbound API carries, by their ``kind`` text."""

_KINDS_TO_PROTO = {
    EntityKind.CELL: kpm_pb2.ENTITY_KIND_CELL,
    EntityKind.UE: kpm_pb2.ENTITY_KIND_UE,
    EntityKind.SLICE: kpm_pb2.ENTITY_KIND_SLICE,
}
_KINDS_FROM_PROTO = {v: k for k, v in _KINDS_TO_PROTO.items()}
_OUTCOMES_TO_PROTO = {
    kind: pb.OutcomeKind.Value(f"OUTCOME_KIND_{kind.name}") for kind in OutcomeKind
}
_OUTCOMES_FROM_PROTO = {v: k for k, v in _OUTCOMES_TO_PROTO.items()}


# -- reports ------------------------------------------------------------------------------

_VALUES_TAG = bytes(
    [(kpm_pb2.MeasurementMatrix.DESCRIPTOR.fields_by_name["values"].number << 3) | 2]
)
"""The wire tag of MeasurementMatrix.values, a packed (length-delimited) field."""


def _packed_values(values: np.ndarray[Any, Any]) -> bytes:
    """``values`` as the wire bytes of MeasurementMatrix.values: tag, length, little-endian
    doubles. Merging these is one C-level copy; ``extend(values.tolist())`` made a Python
    float per value and was most of the cost of sending a 3,000-value report."""
    data = np.ascontiguousarray(values, dtype="<f8").tobytes()
    size = len(data)
    length = bytearray()
    while size > 0x7F:
        length.append((size & 0x7F) | 0x80)
        size >>= 7
    length.append(size)
    return _VALUES_TAG + bytes(length) + data


def report_to_proto(report: KpmReport, out: pb.Report) -> None:
    """Write ``report`` into ``out`` (a Report inside a batch being built)."""
    out.node = report.node
    out.collection_start_unix_ms = report.collection_start * 1000.0
    out.granularity_period_ms = report.granularity_ms
    m = out.matrix
    m.entity_kind = _KINDS_TO_PROTO[report.kind]
    m.metric_names.extend(report.metrics)
    m.entity_ids.extend(report.entity_ids)
    if report.kind is not EntityKind.CELL:
        m.entity_cells.extend(report.cells)
    if any(report.slices):
        m.entity_slices.extend(report.slices)
    if report.values.size:
        m.MergeFromString(_packed_values(report.values))


def report_from_proto(msg: pb.Report) -> KpmReport:
    """The KpmReport a Report carries; ValueError when its matrix is inconsistent."""
    m = msg.matrix
    kind = _KINDS_FROM_PROTO.get(m.entity_kind)
    if kind is None:
        raise ValueError(f"report from {msg.node!r}: matrix entity_kind is unspecified")
    n_ent, n_met = len(m.entity_ids), len(m.metric_names)
    if len(m.values) != n_ent * n_met:
        raise ValueError(
            f"report from {msg.node!r}: {len(m.values)} values for {n_ent} entities x "
            f"{n_met} metrics"
        )
    for name, column in (("entity_cells", m.entity_cells), ("entity_slices", m.entity_slices)):
        if len(column) not in (0, n_ent):
            raise ValueError(f"report from {msg.node!r}: {len(column)} {name} for {n_ent} entities")
    values = np.array(m.values, dtype=np.float64).reshape(n_ent, n_met)
    return KpmReport.from_columns(
        node=msg.node,
        kind=kind,
        metrics=tuple(m.metric_names),
        entity_ids=m.entity_ids,
        values=values,
        cells=m.entity_cells,
        slices=m.entity_slices,
        collection_start=msg.collection_start_unix_ms / 1000.0,
        granularity_ms=msg.granularity_period_ms,
    )


def report_spec(report: Report, out: pb.ReportSpec) -> None:
    """Write an xApp's Report declaration into ``out``."""
    out.metrics.extend(report.metrics)
    out.period_ms = report.period_ms
    out.per = report.per
    out.cells.extend(report.cells)


def report_from_spec(spec: pb.ReportSpec, index: int) -> Report:
    """The Report declaration ``spec`` (Hello.reports[index]); ValueError naming it."""
    try:
        return Report(
            *spec.metrics,
            period_ms=spec.period_ms,
            per=spec.per,  # type: ignore[arg-type]  # checked by Report itself
            cells=tuple(spec.cells),
        )
    except ValueError as exc:
        raise ValueError(f"hello.reports[{index}]: {exc}") from None


# -- nodes ----------------------------------------------------------------------------------


def node_to_proto(node: NodeInfo, out: pb.Node) -> None:
    """Write what an xApp may know of ``node`` into ``out``."""
    out.id = str(node.id)
    out.vendor = node.vendor
    out.software_version = node.software_version
    for cell in node.cells.values():
        c = out.cells.add()
        c.id = str(cell.id)
        c.pci = cell.pci
        c.band = cell.band
        c.bandwidth_prbs = cell.bandwidth_prbs
        c.neighbours.extend(str(n) for n in cell.neighbours)
        c.active = cell.active
        c.tx_power_dbm = cell.tx_power_dbm
    rc = node.rc()
    if rc is not None:
        out.rc_function_id = rc[0]
        for action in rc[1].actions.values():
            out.rc_actions.add(
                style=action.style,
                action_id=action.action_id,
                name=action.name,
                parameters=action.parameters,
            )
    ccc = node.ccc()
    if ccc is not None:
        out.ccc_function_id = ccc[0]
        out.ccc_styles.extend(sorted(ccc[1].styles))
        for name, attributes in sorted(ccc[1].cell_structures.items()):
            out.ccc_structures.add(name=name, attributes=sorted(attributes))
    kpm = node.kpm()
    if kpm is not None:
        out.kpm_function_id = kpm[0]
        out.kpm_min_period_ms = kpm[1].min_reporting_period_ms
        for style in kpm[1].styles.values():
            out.kpm_styles.add(
                style=style.style, name=style.name, metrics=sorted(style.metric_names)
            )


def node_from_proto(msg: pb.Node) -> NodeInfo:
    """The NodeInfo a Node message describes (its RC and KPM functions included)."""
    cells = {}
    for c in msg.cells:
        cid = CellId.parse(c.id)
        cells[cid] = CellInfo(
            id=cid,
            pci=c.pci,
            band=c.band,
            bandwidth_prbs=c.bandwidth_prbs,
            neighbours=tuple(CellId.parse(n) for n in c.neighbours),
            active=c.active,
            tx_power_dbm=c.tx_power_dbm,
        )
    functions: dict[int, RanFunction] = {}
    if msg.rc_function_id:
        actions = {
            (a.style, a.action_id): RcAction(a.style, a.action_id, a.name, tuple(a.parameters))
            for a in msg.rc_actions
        }
        functions[msg.rc_function_id] = RanFunction(
            msg.rc_function_id, "", "ORAN-E2SM-RC", 1, RcFunction(actions)
        )
    if msg.ccc_function_id:
        functions[msg.ccc_function_id] = RanFunction(
            msg.ccc_function_id,
            "",
            "ORAN-E2SM-CCC",
            1,
            CccFunction(
                frozenset(msg.ccc_styles),
                {c.name: frozenset(c.attributes) for c in msg.ccc_structures},
            ),
        )
    if msg.kpm_function_id:
        styles = {s.style: KpmStyle(s.style, s.name, frozenset(s.metrics)) for s in msg.kpm_styles}
        functions[msg.kpm_function_id] = RanFunction(
            msg.kpm_function_id,
            "",
            "ORAN-E2SM-KPM",
            1,
            KpmFunction(styles, msg.kpm_min_period_ms or 10),
        )
    return NodeInfo(
        id=NodeId.parse(msg.id),
        vendor=msg.vendor,
        software_version=msg.software_version,
        ran_functions=functions,
        cells=cells,
    )


# -- controls -------------------------------------------------------------------------------


def action_to_proto(action: ControlAction, out: pb.Action) -> None:
    """Write ``action`` into ``out``; TypeError for an action kind the API does not carry."""
    if isinstance(action, Handover):
        out.handover.ue = action.ue
        out.handover.cell_id = action.cell
        out.handover.target_cell = action.target_cell
    elif isinstance(action, SlicePrbQuota):
        q = out.slice_prb_quota
        q.cell_id = action.cell_id
        q.slice = action.slice
        q.min_pct = action.min_pct
        q.max_pct = action.max_pct
        q.dedicated_pct = action.dedicated_pct
    elif isinstance(action, CellState):
        s = out.cell_state
        s.cell_id = action.cell_id
        if action.active is not None:
            s.active = action.active
        if action.tx_power_dbm is not None:
            s.tx_power_dbm = action.tx_power_dbm
    elif isinstance(action, GenericControl):
        g = out.generic
        g.control_style = action.control_style
        g.control_action_id = action.control_action_id
        g.cell_id = action.cell_id
        for key, value in action.params.items():
            _param_to_proto(value, g.params[key])
        if action.ue is not None:
            g.ue = action.ue
        if action.slice is not None:
            g.slice = action.slice
    elif isinstance(action, CellIndividualOffset):
        o = out.cell_individual_offset
        o.cell_id = action.cell_id
        o.neighbour = action.neighbour
        o.offset_db = action.offset_db
    elif isinstance(action, CellAdministration):
        a = out.cell_administration
        a.cell_id = action.cell_id
        if action.administrative_state is not None:
            a.administrative_state = action.administrative_state.value
        if action.energy_saving_control is not None:
            a.energy_saving_control = action.energy_saving_control.value
    else:
        raise TypeError(f"the northbound API does not carry {type(action).__name__} controls")


def _param_to_proto(value: ParamValue, out: pb.ParamValue) -> None:
    if isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int):
        out.int_value = value
    elif isinstance(value, float):
        out.double_value = value
    else:
        out.string_value = value


def _param_from_proto(msg: pb.ParamValue) -> ParamValue:
    which = msg.WhichOneof("value")
    if which is None:
        raise ValueError("a generic control parameter has no value")
    return cast(ParamValue, getattr(msg, which))


def action_from_proto(msg: pb.Action) -> ControlAction:
    """The ControlAction ``msg`` carries; ValueError naming the field and the problem."""
    which = msg.WhichOneof("action")
    try:
        if which == "handover":
            h = msg.handover
            return Handover(h.ue, h.cell_id, h.target_cell)
        if which == "slice_prb_quota":
            q = msg.slice_prb_quota
            return SlicePrbQuota(
                cell_id=q.cell_id,
                slice=q.slice,
                min_pct=q.min_pct,
                max_pct=q.max_pct,
                dedicated_pct=q.dedicated_pct,
            )
        if which == "cell_state":
            s = msg.cell_state
            return CellState(
                cell_id=s.cell_id,
                active=s.active if s.HasField("active") else None,
                tx_power_dbm=s.tx_power_dbm if s.HasField("tx_power_dbm") else None,
            )
        if which == "generic":
            g = msg.generic
            return GenericControl(
                control_style=g.control_style,
                control_action_id=g.control_action_id,
                cell_id=g.cell_id,
                params={k: _param_from_proto(v) for k, v in g.params.items()},
                ue=g.ue if g.HasField("ue") else None,
                slice=g.slice if g.HasField("slice") else None,
            )
        if which == "cell_individual_offset":
            o = msg.cell_individual_offset
            return CellIndividualOffset(
                cell_id=o.cell_id, neighbour=o.neighbour, offset_db=o.offset_db
            )
        if which == "cell_administration":
            a = msg.cell_administration
            return CellAdministration(
                cell_id=a.cell_id,
                administrative_state=AdministrativeState(a.administrative_state)
                if a.HasField("administrative_state")
                else None,
                energy_saving_control=EnergySavingControl(a.energy_saving_control)
                if a.HasField("energy_saving_control")
                else None,
            )
    except ValueError as exc:
        raise ValueError(f"action.{which}: {exc}") from None
    raise ValueError(f"action has none of {', '.join(CONTROL_KINDS)}")


def conflict_to_proto(conflict: Conflict, out: pb.ConflictNotice) -> None:
    """Write ``conflict`` into ``out``."""
    out.policy = conflict.policy
    out.target = conflict.target
    out.parameter = conflict.parameter
    out.first_xapp = conflict.first_xapp
    action_to_proto(conflict.first, out.first)
    out.second_xapp = conflict.second_xapp
    action_to_proto(conflict.second, out.second)
    out.winner = conflict.winner or ""
    out.at = conflict.at


def conflict_from_proto(msg: pb.ConflictNotice) -> Conflict:
    """The Conflict ``msg`` describes."""
    return Conflict(
        policy=msg.policy,
        target=msg.target,
        parameter=msg.parameter,
        first_xapp=msg.first_xapp,
        first=action_from_proto(msg.first),
        second_xapp=msg.second_xapp,
        second=action_from_proto(msg.second),
        winner=msg.winner or None,
        at=msg.at,
    )


def outcome_to_proto(control_id: str, outcome: ControlOutcome, out: pb.ControlOutcome) -> None:
    """Write ``outcome`` of the control ``control_id`` into ``out``."""
    out.control_id = control_id
    out.kind = _OUTCOMES_TO_PROTO[outcome.kind]
    if outcome.node is not None:
        out.node = str(outcome.node)
    if outcome.cause is not None:
        out.cause = outcome.cause.code.name.lower()
        out.cause_detail = outcome.cause.detail
    out.latency_s = outcome.latency_s
    out.detail = outcome.detail
    if outcome.conflict is not None:
        conflict_to_proto(outcome.conflict, out.conflict)


def outcome_from_proto(msg: pb.ControlOutcome, action: ControlAction, xapp: str) -> ControlOutcome:
    """The ControlOutcome ``msg`` reports for ``action`` (what the xApp sent)."""
    kind = _OUTCOMES_FROM_PROTO.get(msg.kind)
    detail = msg.detail
    if kind is None:  # INVALID (or a kind this SDK does not know): the control was not sent
        kind = OutcomeKind.NOT_SUPPORTED
        detail = detail or "the runtime did not accept the control"
    cause = None
    if msg.cause:
        try:
            code = CauseCode[msg.cause.upper()]
        except KeyError:
            code = CauseCode.MISC_UNSPECIFIED
        cause = Cause(code, msg.cause_detail)
    return ControlOutcome(
        kind=kind,
        action=action,
        node=NodeId.parse(msg.node) if msg.node else None,
        cause=cause,
        latency_s=msg.latency_s,
        detail=detail,
        xapp=xapp,
        conflict=conflict_from_proto(msg.conflict) if msg.HasField("conflict") else None,
    )


# -- subscriptions, policies ----------------------------------------------------------------


def status_to_proto(index: int, status: SubscriptionStatus, out: pb.SubscriptionStatus) -> None:
    """Write the status of the xApp's report ``index`` into ``out``."""
    out.node = status.node
    out.report = index
    out.state = str(status.state)
    out.metrics.extend(status.metrics)
    for name, cause in status.not_admitted.items():
        out.not_admitted[name] = str(cause)
    out.period_ms = status.period_ms
    if status.cause is not None:
        out.cause = str(status.cause)


def status_from_proto(msg: pb.SubscriptionStatus, reports: Sequence[Report]) -> SubscriptionStatus:
    """The SubscriptionStatus ``msg`` reports; ValueError for an unknown report index."""
    if msg.report >= len(reports):
        raise ValueError(f"subscription status for report {msg.report}, which is not declared")
    return SubscriptionStatus(
        node=msg.node,
        report=reports[msg.report],
        state=ReportState(msg.state),
        metrics=tuple(msg.metrics),
        not_admitted={k: Cause(CauseCode.MISC_UNSPECIFIED, v) for k, v in msg.not_admitted.items()},
        period_ms=msg.period_ms,
        cause=Cause(CauseCode.MISC_UNSPECIFIED, msg.cause) if msg.cause else None,
    )


def policy_event_to_proto(event: PolicyEvent, out: pb.PolicyEvent) -> None:
    """Write ``event`` into ``out``."""
    out.kind = event.kind
    out.type_id = event.type_id
    out.policy_id = event.policy_id
    out.body_json = json.dumps(event.body, separators=(",", ":"))


def policy_event_from_proto(msg: pb.PolicyEvent) -> PolicyEvent:
    """The PolicyEvent ``msg`` carries."""
    if msg.kind not in ("created", "updated", "deleted"):
        raise ValueError(f"policy event kind {msg.kind!r} is not created, updated or deleted")
    body = json.loads(msg.body_json) if msg.body_json else {}
    return PolicyEvent(msg.type_id, msg.policy_id, cast(PolicyKind, msg.kind), body)


def policy_status_from_proto(msg: pb.PolicyStatusReport) -> PolicyStatus:
    """The PolicyStatus an xApp reported; ValueError for a bad cause."""
    cause = msg.cause or "OTHER_REASON"
    if cause not in ("SCOPE_NOT_APPLICABLE", "STATEMENT_NOT_APPLICABLE", "OTHER_REASON"):
        raise ValueError(f"policy status cause {cause!r} is not an A1AP enforceReason")
    return PolicyStatus(msg.enforced, msg.reason, cause)  # type: ignore[arg-type]


# -- hello ----------------------------------------------------------------------------------


def hello_for(cls: type[XApp], *, credits: int, language: str = "python", pid: int = 0) -> pb.Hello:
    """The Hello an xApp class attaches with: its name and everything it declares."""
    hello = pb.Hello(
        name=cls.name,
        version=cls.version,
        controls=[c.kind for c in cls.controls],
        credits=credits,
        language=language,
        pid=pid,
        queue_size=cls.queue_size,
    )
    for report in cls.reports:
        report_spec(report, hello.reports.add())
    for ptype in cls.policy_types:
        hello.policy_types.add(
            id=ptype.id,
            schema_json=json.dumps(ptype.schema),
            name=ptype.name,
            description=ptype.description,
        )
    return hello


def declared_class(hello: pb.Hello) -> type[XApp]:
    """An XApp class with what ``hello`` declares, for the runtime's side of an attached
    xApp (its handlers run elsewhere); ValueError naming the first bad field."""
    from ric.xapp import NAME_PATTERN

    if not NAME_PATTERN.match(hello.name):
        raise ValueError(f"hello.name {hello.name!r} is not an xApp name ([a-z][a-z0-9_-]{{0,39}})")
    reports = tuple(report_from_spec(spec, i) for i, spec in enumerate(hello.reports))
    controls = []
    for kind in hello.controls:
        cls = CONTROL_KINDS.get(kind)
        if cls is None:
            known = ", ".join(sorted(CONTROL_KINDS))
            raise ValueError(f"hello.controls: {kind!r} is not a control kind ({known})")
        controls.append(cls)
    policy_types = []
    for i, spec in enumerate(hello.policy_types):
        try:
            schema = json.loads(spec.schema_json) if spec.schema_json else {}
            policy_types.append(
                PolicyType(spec.id, schema, name=spec.name, description=spec.description)
            )
        except ValueError as exc:
            raise ValueError(f"hello.policy_types[{i}] ({spec.id!r}): {exc}") from None

    async def on_policy(self: XApp, event: PolicyEvent) -> PolicyStatus | None:
        return None  # the xApp's own on_policy runs where it lives

    attrs: dict[str, Any] = {
        "on_policy": on_policy,
        "name": hello.name,
        "version": hello.version or "0.0.0",
        "reports": reports,
        "controls": tuple(controls),
        "policy_types": tuple(policy_types),
        "queue_size": max(1, min(hello.queue_size or XApp.queue_size, 65536)),
        "__doc__": f"The xApp {hello.name}, attached over the northbound API.",
        "__module__": "ric.northbound.attached",
    }
    return type(f"Attached_{hello.name.replace('-', '_')}", (XApp,), attrs)


def json_config(text: str, what: str) -> Mapping[str, Any]:
    """Settings sent as JSON text: an object (empty text: none); ValueError naming ``what``."""
    if not text:
        return {}
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a JSON object")
    return value


def finite(value: float, default: float) -> float:
    """``value`` if finite and positive, else ``default`` (timeouts from a client)."""
    return value if math.isfinite(value) and value > 0 else default
