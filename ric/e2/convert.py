"""Conversion between the protobuf wire contract and the runtime's domain objects.

Everything that crosses the E2 termination goes through here, so protobuf types stop at the
transport and xApps see only ``ric`` objects. Bad content raises ``ProtocolError`` with the
cause the node will be told.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

import numpy as np

from ric._proto.e2.v1 import ccc_pb2, common_pb2, e2_pb2, kpm_pb2, rc_pb2
from ric.actions import (
    AdministrativeState,
    CccControlAction,
    CellAdministration,
    CellIndividualOffset,
    CellState,
    ControlAction,
    EnergySavingControl,
    GenericControl,
    Handover,
    SlicePrbQuota,
    rc_key,
)
from ric.errors import ProtocolError
from ric.ids import CellId, NodeId, NodeType, Plmn, SliceId
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
from ric.report import EntityKind, FloatArray, KpmReport

__all__ = [
    "MAX_ABS_VALUE",
    "ValuesReplaced",
    "cause_from_proto",
    "cause_to_proto",
    "ccc_actions_from_proto",
    "ccc_control_to_proto",
    "cell_from_proto",
    "cell_id_from_proto",
    "cell_id_to_proto",
    "cell_to_proto",
    "control_request",
    "node_id_to_proto",
    "node_info_from_setup",
    "ran_function_from_proto",
    "replace_invalid",
    "report_from_indication",
]

_NODE_TYPES = {
    common_pb2.NODE_TYPE_GNB: NodeType.GNB,
    common_pb2.NODE_TYPE_GNB_CU: NodeType.GNB_CU,
    common_pb2.NODE_TYPE_GNB_DU: NodeType.GNB_DU,
    common_pb2.NODE_TYPE_ENB: NodeType.ENB,
}
_NODE_TYPES_TO_PROTO = {domain: wire for wire, domain in _NODE_TYPES.items()}
_ENTITY_KINDS = {
    kpm_pb2.ENTITY_KIND_CELL: EntityKind.CELL,
    kpm_pb2.ENTITY_KIND_UE: EntityKind.UE,
    kpm_pb2.ENTITY_KIND_SLICE: EntityKind.SLICE,
}


def _bad(code: CauseCode, detail: str) -> ProtocolError:
    return ProtocolError(Cause(code, detail))


def cause_to_proto(cause: Cause) -> common_pb2.Cause:
    """The wire form of a cause."""
    return common_pb2.Cause(code=int(cause.code), detail=cause.detail)  # type: ignore[arg-type]


def cause_from_proto(msg: common_pb2.Cause) -> Cause:
    """A cause from the wire; an unknown code becomes UNSPECIFIED with the number kept."""
    try:
        return Cause(CauseCode(msg.code), msg.detail)
    except ValueError:
        return Cause(CauseCode.UNSPECIFIED, f"unknown cause code {msg.code}: {msg.detail}")


def _plmn(msg: common_pb2.PlmnId, what: str) -> Plmn:
    try:
        return Plmn(msg.mcc, msg.mnc)
    except ValueError as exc:
        raise _bad(CauseCode.PROTOCOL_SEMANTIC_ERROR, f"{what}: {exc}") from None


def cell_id_from_proto(msg: common_pb2.NrCgi, what: str = "cell") -> CellId:
    """The domain id of an NR CGI; ProtocolError when its PLMN or NCI is invalid."""
    try:
        return CellId(_plmn(msg.plmn, what), msg.nr_cell_identity)
    except ValueError as exc:
        raise _bad(CauseCode.PROTOCOL_SEMANTIC_ERROR, f"{what}: {exc}") from None


def cell_id_to_proto(cell: CellId) -> common_pb2.NrCgi:
    """The wire form of a cell id."""
    return common_pb2.NrCgi(
        plmn=common_pb2.PlmnId(mcc=cell.plmn.mcc, mnc=cell.plmn.mnc), nr_cell_identity=cell.nci
    )


def _slice_to_proto(slice_id: SliceId) -> common_pb2.Snssai:
    return common_pb2.Snssai(sst=slice_id.sst, sd="" if slice_id.sd == "ffffff" else slice_id.sd)


def cell_from_proto(msg: common_pb2.Cell) -> CellInfo:
    """A cell as announced in setup or a configuration update."""
    cell_id = cell_id_from_proto(msg.cgi)
    return CellInfo(
        id=cell_id,
        pci=msg.pci,
        band=msg.band,
        bandwidth_prbs=msg.bandwidth_prbs,
        subcarrier_spacing_khz=msg.subcarrier_spacing_khz or 30,
        neighbours=tuple(cell_id_from_proto(n, f"neighbour of {cell_id}") for n in msg.neighbours),
        active=msg.active,
        tx_power_dbm=msg.tx_power_dbm,
    )


def cell_to_proto(info: CellInfo) -> common_pb2.Cell:
    """The wire form of a cell, as a node announces it in setup or a configuration update."""
    return common_pb2.Cell(
        cgi=cell_id_to_proto(info.id),
        pci=info.pci,
        band=info.band,
        bandwidth_prbs=info.bandwidth_prbs,
        subcarrier_spacing_khz=info.subcarrier_spacing_khz,
        neighbours=[cell_id_to_proto(n) for n in info.neighbours],
        active=info.active,
        tx_power_dbm=info.tx_power_dbm,
    )


def node_id_to_proto(node_id: NodeId) -> common_pb2.GlobalNodeId:
    """The wire form of a global node id."""
    return common_pb2.GlobalNodeId(
        plmn=common_pb2.PlmnId(mcc=node_id.plmn.mcc, mnc=node_id.plmn.mnc),
        node_id=node_id.node_id,
        type=_NODE_TYPES_TO_PROTO[node_id.type],
    )


def ran_function_from_proto(msg: e2_pb2.RanFunction) -> RanFunction:
    """A RAN function with its typed KPM, RC or CCC definition (None for other service
    models)."""
    definition: KpmFunction | RcFunction | CccFunction | None = None
    which = msg.WhichOneof("definition")
    if which == "kpm":
        definition = KpmFunction(
            styles={
                s.style: KpmStyle(s.style, s.name, frozenset(s.metric_names))
                for s in msg.kpm.report_styles
            },
            min_reporting_period_ms=msg.kpm.min_reporting_period_ms or 10,
        )
    elif which == "rc":
        definition = RcFunction(
            actions={
                (style.style, a.action_id): RcAction(
                    style.style, a.action_id, a.name, tuple(p.name for p in a.parameters)
                )
                for style in msg.rc.control_styles
                for a in style.actions
            }
        )
    elif which == "ccc":
        definition = CccFunction(
            styles=frozenset(msg.ccc.control_styles),
            cell_structures={s.name: frozenset(s.attributes) for s in msg.ccc.cell_structures},
        )
    return RanFunction(
        id=msg.ran_function_id,
        oid=msg.oid,
        short_name=msg.short_name,
        revision=msg.revision,
        definition=definition,
        description=msg.description,
    )


def node_info_from_setup(msg: e2_pb2.E2SetupRequest, accepted: dict[int, RanFunction]) -> NodeInfo:
    """The node a setup request describes, with the RAN functions the RIC accepted."""
    if not msg.HasField("node_id"):
        raise _bad(CauseCode.PROTOCOL_SEMANTIC_ERROR, "E2SetupRequest has no node_id")
    gid = msg.node_id
    node_type = _NODE_TYPES.get(gid.type)
    if node_type is None:
        raise _bad(CauseCode.PROTOCOL_SEMANTIC_ERROR, f"node_id.type {gid.type} is not a node type")
    try:
        node_id = NodeId(_plmn(gid.plmn, "node_id.plmn"), gid.node_id, node_type)
    except ValueError as exc:
        raise _bad(CauseCode.PROTOCOL_SEMANTIC_ERROR, f"node_id: {exc}") from None
    cells: dict[CellId, CellInfo] = {}
    for c in msg.cells:
        cell = cell_from_proto(c)
        if cell.id in cells:
            raise _bad(CauseCode.PROTOCOL_SEMANTIC_ERROR, f"cell {cell.id} is announced twice")
        cells[cell.id] = cell
    return NodeInfo(
        id=node_id,
        vendor=msg.vendor,
        software_version=msg.software_version,
        ran_functions=accepted,
        cells=cells,
    )


MAX_ABS_VALUE: Final = 1e15
"""The largest magnitude of a valid indication value (``kpm.proto``): far above any TS 28.552
figure in its unit, far enough below the double range that unit conversions stay finite."""

_SMALL_MATRIX: Final = 32
"""Up to this many values a matrix is read and checked without NumPy's per-call costs."""

ValuesReplaced = Callable[[str, int], None]
"""Told ``(reason, count)`` when values outside the contract were replaced by NaN."""


def replace_invalid(values: FloatArray, replaced: ValuesReplaced | None = None) -> None:
    """Replace, in place, every value the contract does not allow (infinite, or beyond
    ``MAX_ABS_VALUE``) by NaN, and tell ``replaced`` how many of each. NaN stays NaN.

    Two NaN-ignoring reductions decide the common case (all valid) without a temporary
    array; only a matrix that holds bad values pays for the masks.
    """
    if values.size == 0:
        return
    if not (np.fmax.reduce(values) > MAX_ABS_VALUE or np.fmin.reduce(values) < -MAX_ABS_VALUE):
        return
    outside = np.abs(values) > MAX_ABS_VALUE
    total = int(np.count_nonzero(outside))
    infinite = int(np.count_nonzero(np.isinf(values)))
    values[outside] = np.nan
    if replaced is not None:
        if infinite:
            replaced("infinite", infinite)
        if total > infinite:
            replaced("out_of_range", total - infinite)


def report_from_indication(
    node: str,
    ind: e2_pb2.Indication,
    *,
    kind: EntityKind | None = None,
    metrics: tuple[str, ...] | None = None,
    replaced: ValuesReplaced | None = None,
) -> KpmReport:
    """The columnar report carried by a KPM indication; ProtocolError if its matrix is bad.

    With ``kind`` and ``metrics`` (what the subscription asked for), a matrix of another
    kind, or with a name not asked for or named twice, is refused too. Values outside the
    contract become NaN (see ``replace_invalid``).
    """
    if ind.WhichOneof("content") != "kpm":
        raise _bad(CauseCode.PROTOCOL_SEMANTIC_ERROR, "indication carries no KPM content")
    kpm = ind.kpm
    m = kpm.matrix
    got = _ENTITY_KINDS.get(m.entity_kind)
    if got is None:
        raise _bad(
            CauseCode.PROTOCOL_SEMANTIC_ERROR, f"matrix entity_kind {m.entity_kind} is unspecified"
        )
    if kind is not None and got is not kind:
        raise _bad(
            CauseCode.PROTOCOL_SEMANTIC_ERROR,
            f"matrix has {got.value} rows; the subscription asked for {kind.value} rows",
        )
    names = tuple(m.metric_names)
    if (
        metrics is not None
        and names != metrics
        and not (len(set(names)) == len(names) and set(metrics).issuperset(names))
    ):
        extra = sorted(set(names) - set(metrics))
        twice = sorted({n for n in names if names.count(n) > 1})
        problem = f"names {', '.join(extra)} not asked for" if extra else ""
        if twice:
            problem += ("; " if problem else "") + f"names {', '.join(twice)} twice"
        raise _bad(
            CauseCode.PROTOCOL_SEMANTIC_ERROR,
            f"matrix metric names do not match the subscription: {problem}",
        )
    n_ent = len(m.entity_ids)
    n_met = len(names)
    if len(m.values) != n_ent * n_met:
        raise _bad(
            CauseCode.PROTOCOL_ABSTRACT_SYNTAX_ERROR_FALSELY_CONSTRUCTED_MESSAGE,
            f"matrix has {len(m.values)} values for {n_ent} entities x {n_met} metrics "
            f"(expected {n_ent * n_met})",
        )
    for name, column in (("entity_cells", m.entity_cells), ("entity_slices", m.entity_slices)):
        if len(column) not in (0, n_ent):
            raise _bad(
                CauseCode.PROTOCOL_ABSTRACT_SYNTAX_ERROR_FALSELY_CONSTRUCTED_MESSAGE,
                f"matrix has {len(column)} {name} for {n_ent} entities",
            )
    raw = m.values
    if len(raw) <= _SMALL_MATRIX:
        # A few values (one UE's report): NumPy's per-call costs are most of the work, so the
        # values go through a list and are checked in Python (NaN passes, as in the contract).
        listed = list(raw)
        values = np.array(listed, dtype=np.float64)
        if any(not -MAX_ABS_VALUE <= v <= MAX_ABS_VALUE for v in listed if v == v):
            replace_invalid(values, replaced)
    else:
        # np.array reads the packed field in one C-level copy (about 10x faster than fromiter).
        values = np.array(raw, dtype=np.float64)
        replace_invalid(values, replaced)
    return KpmReport.from_columns(
        node=node,
        kind=got,
        # The subscription's own tuple when the node sent its names in its order: reports
        # then share one tuple, and what is derived from it (a fan-out's column selection)
        # is worked out once per subscription rather than once per report.
        metrics=metrics if names == metrics and metrics is not None else names,
        # The message's repeated fields, read into strings only if an xApp uses them.
        entity_ids=m.entity_ids,
        values=values.reshape(n_ent, n_met),
        cells=m.entity_cells,
        slices=m.entity_slices,
        collection_start=kpm.collection_start_unix_ms / 1000.0,
        granularity_ms=kpm.granularity_period_ms,
    )


def _value(v: int | float | str | bool) -> rc_pb2.Value:
    if isinstance(v, bool):
        return rc_pb2.Value(bool_value=v)
    if isinstance(v, int):
        return rc_pb2.Value(int_value=v)
    if isinstance(v, float):
        if math.isnan(v):
            raise ValueError("NaN is not a control parameter value")
        return rc_pb2.Value(double_value=v)
    return rc_pb2.Value(string_value=v)


def _cell_proto(cell: str) -> common_pb2.NrCgi:
    """The wire form of the cell written ``cell``, kept once made: a RIC controls the same
    few thousand cells over and over (only ever read, with CopyFrom)."""
    proto = _CELL_PROTOS.get(cell)
    if proto is None:
        if len(_CELL_PROTOS) >= _CELL_PROTOS_MAX:
            _CELL_PROTOS.clear()
        proto = _CELL_PROTOS[cell] = cell_id_to_proto(CellId.parse(cell))
    return proto


_CELL_PROTOS: dict[str, common_pb2.NrCgi] = {}
_CELL_PROTOS_MAX: Final = 65_536


def control_request(
    action: ControlAction,
    request_id: tuple[int, int],
    ran_function_id: int,
    control_id: str = "",
    term: int = 0,
) -> e2_pb2.ControlRequest:
    """The ControlRequest that carries ``action`` (to an RC function, or to a CCC function for
    a :class:`~ric.actions.CccControlAction`), with the RIC's ``control_id`` for it (empty:
    none; the node then applies every copy it gets) and the sending replica's lease ``term``
    for the node (0: not a replica)."""
    request = e2_pb2.ControlRequest(
        ran_function_id=ran_function_id, ack_requested=True, control_id=control_id, term=term
    )
    request.request_id.requestor, request.request_id.instance = request_id
    if isinstance(action, CccControlAction):
        request.ccc.CopyFrom(ccc_control_to_proto(action))
        return request
    # Filled in place (no submessage built apart and copied in): this is the control loop.
    header = request.header
    body = request.message
    header.style, header.action_id = rc_key(action)
    cell = _cell_proto(action.cell)
    if isinstance(action, Handover):
        header.ue.ue_id = int(action.ue)
        header.ue.serving_cell.CopyFrom(cell)
        body.handover.target_cell.CopyFrom(_cell_proto(action.target_cell))
    elif isinstance(action, SlicePrbQuota):
        header.slice.cell.CopyFrom(cell)
        header.slice.slice.CopyFrom(_slice_to_proto(SliceId.parse(action.slice)))
        body.slice_prb_quota.min_prb_ratio_pct = action.min_pct
        body.slice_prb_quota.max_prb_ratio_pct = action.max_pct
        body.slice_prb_quota.dedicated_prb_ratio_pct = action.dedicated_pct
    elif isinstance(action, CellState):
        header.cell.CopyFrom(cell)
        if action.active is not None:
            body.cell_state.active = action.active
        if action.tx_power_dbm is not None:
            body.cell_state.tx_power_dbm = action.tx_power_dbm
    elif isinstance(action, GenericControl):
        if action.ue is not None:
            header.ue.ue_id = int(action.ue)
            header.ue.serving_cell.CopyFrom(cell)
        elif action.slice is not None:
            header.slice.cell.CopyFrom(cell)
            header.slice.slice.CopyFrom(_slice_to_proto(SliceId.parse(action.slice)))
        else:
            header.cell.CopyFrom(cell)
        body.generic.SetInParent()
        for key, value in action.params.items():
            body.generic.parameters[key].CopyFrom(_value(value))
    else:
        raise TypeError(f"unknown control action type {type(action).__name__}")
    body.SetInParent()
    return request


_ADMIN_TO_PROTO: Final = {
    AdministrativeState.LOCKED: ccc_pb2.ADMINISTRATIVE_STATE_LOCKED,
    AdministrativeState.UNLOCKED: ccc_pb2.ADMINISTRATIVE_STATE_UNLOCKED,
    AdministrativeState.SHUTTING_DOWN: ccc_pb2.ADMINISTRATIVE_STATE_SHUTTING_DOWN,
}
_ADMIN_FROM_PROTO: Final = {wire: domain for domain, wire in _ADMIN_TO_PROTO.items()}
_ES_TO_PROTO: Final = {
    EnergySavingControl.TO_BE_ENERGY_SAVING: ccc_pb2.ENERGY_SAVING_CONTROL_TO_BE_ENERGY_SAVING,
    EnergySavingControl.TO_BE_NOT_ENERGY_SAVING: (
        ccc_pb2.ENERGY_SAVING_CONTROL_TO_BE_NOT_ENERGY_SAVING
    ),
}
_ES_FROM_PROTO: Final = {wire: domain for domain, wire in _ES_TO_PROTO.items()}


def ccc_control_to_proto(action: CccControlAction) -> ccc_pb2.CccControl:
    """The wire form of an E2SM-CCC cell configuration control."""
    msg = ccc_pb2.CccControl(style=action.style, cell=cell_id_to_proto(CellId.parse(action.cell)))
    if isinstance(action, CellIndividualOffset):
        msg.relations.append(
            ccc_pb2.NrCellRelation(
                adjacent_cell=cell_id_to_proto(CellId.parse(action.neighbour)),
                cell_individual_offset=ccc_pb2.CellIndividualOffset(
                    rsrp_offset_ssb_db=action.offset_db
                ),
            )
        )
    elif isinstance(action, CellAdministration):
        if action.administrative_state is not None:
            msg.nr_cell_du.administrative_state = _ADMIN_TO_PROTO[action.administrative_state]
        if action.energy_saving_control is not None:
            msg.ces_management_function.energy_saving_control = _ES_TO_PROTO[
                action.energy_saving_control
            ]
    else:
        raise TypeError(f"unknown CCC control action type {type(action).__name__}")
    return msg


def ccc_actions_from_proto(msg: ccc_pb2.CccControl) -> list[CccControlAction]:
    """The controls a CCC cell configuration message asks for, one per relation and one for
    the cell's state; ProtocolError (control message invalid) naming the first bad value: a
    style other than 2, an offset outside Q-OffsetRange, an unknown state, nothing to do."""
    invalid = CauseCode.RIC_REQUEST_CONTROL_MESSAGE_INVALID
    if msg.style != CellIndividualOffset.style:
        raise _bad(
            CauseCode.RIC_REQUEST_ACTION_NOT_SUPPORTED,
            f"CCC control style {msg.style}: only style 2 (cell configuration) is supported",
        )
    cell = str(cell_id_from_proto(msg.cell, "CCC cell"))
    out: list[CccControlAction] = []
    for i, rel in enumerate(msg.relations):
        neighbour = str(cell_id_from_proto(rel.adjacent_cell, f"relations[{i}].adjacent_cell"))
        try:
            out.append(
                CellIndividualOffset(cell, neighbour, rel.cell_individual_offset.rsrp_offset_ssb_db)
            )
        except ValueError as exc:
            raise _bad(invalid, f"relations[{i}]: {exc}") from None
    admin = msg.nr_cell_du.administrative_state
    es = msg.ces_management_function.energy_saving_control
    if admin and admin not in _ADMIN_FROM_PROTO:
        raise _bad(invalid, f"administrativeState {admin} is not a state")
    if es and es not in _ES_FROM_PROTO:
        raise _bad(invalid, f"energySavingControl {es} is not a command")
    if admin or es:
        out.append(
            CellAdministration(
                cell,
                administrative_state=_ADMIN_FROM_PROTO.get(admin),
                energy_saving_control=_ES_FROM_PROTO.get(es),
            )
        )
    if not out:
        raise _bad(invalid, f"CCC control of {cell} changes nothing")
    return out
