"""The northbound codec: every control kind, node and report survives the trip through the
wire messages unchanged, and a malformed hello or control is refused naming the field."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ric._proto.xapp.v1 import xapp_pb2 as pb
from ric.actions import (
    AdministrativeState,
    CellAdministration,
    CellIndividualOffset,
    CellState,
    ControlAction,
    ControlOutcome,
    GenericControl,
    Handover,
    OutcomeKind,
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
from ric.northbound import codec
from ric.report import EntityKind
from ric.testing import make_report
from tests.northbound.apps import Counter

CELL, OTHER = "001-01-4097", "001-01-4098"


@pytest.mark.parametrize(
    "action",
    [
        Handover("17", CELL, OTHER),
        SlicePrbQuota(cell_id=CELL, slice="1-000001", min_pct=10, max_pct=80, dedicated_pct=5),
        CellState(cell_id=CELL, active=False),
        CellState(cell_id=CELL, tx_power_dbm=40.5),
        GenericControl(3, 1, CELL, {"a": 1, "b": 2.5, "c": "x", "d": True}, ue="17"),
        CellIndividualOffset(cell_id=CELL, neighbour=OTHER, offset_db=3),
        CellAdministration(cell_id=CELL, administrative_state=AdministrativeState.SHUTTING_DOWN),
    ],
)
def test_every_control_kind_round_trips(action: ControlAction) -> None:
    """An action encoded for the wire decodes to an equal action of the same class."""
    msg = pb.Action()
    codec.action_to_proto(action, msg)
    back = codec.action_from_proto(pb.Action.FromString(msg.SerializeToString()))
    assert back == action and type(back) is type(action)


def test_a_bad_control_is_refused_naming_the_field() -> None:
    """A control whose values break the action's rules is refused with the field named."""
    msg = pb.Action(slice_prb_quota=pb.SlicePrbQuota(cell_id=CELL, slice="1", max_pct=150))
    with pytest.raises(ValueError, match=r"action\.slice_prb_quota: .*max_pct"):
        codec.action_from_proto(msg)
    with pytest.raises(ValueError, match="action has none of handover"):
        codec.action_from_proto(pb.Action())


def test_a_report_round_trips_with_nan_and_labels() -> None:
    """A UE report keeps its metrics, ids, cells, slices, times and NaN values."""
    report = make_report(
        "gnb-001-01-1",
        EntityKind.UE,
        {"DRB.UEThpDl": [1.5, float("nan")], "RRU.PrbUsedDl": [3.0, 4.0]},
        ["17", "18"],
        cells=[CELL, OTHER],
        slices=["1-000001", "2-000002"],
    )
    msg = pb.Report()
    codec.report_to_proto(report, msg)
    back = codec.report_from_proto(pb.Report.FromString(msg.SerializeToString()))
    assert (back.node, back.kind, back.metrics) == (report.node, report.kind, report.metrics)
    assert back.entity_ids == report.entity_ids and back.cells == report.cells
    assert back.slices == report.slices
    assert np.array_equal(back.values, report.values, equal_nan=True)
    assert math.isnan(back.row("18")["DRB.UEThpDl"])


def test_a_node_round_trips_with_its_functions() -> None:
    """A node keeps its cells and its RC, KPM and CCC functions (xApps ask node.rc() etc.)."""
    cell = CellInfo(
        CellId.parse(CELL), pci=1, band=78, bandwidth_prbs=106, neighbours=(CellId.parse(OTHER),)
    )
    node = NodeInfo(
        id=NodeId.parse("gnb-001-01-1"),
        vendor="acme",
        software_version="1.0",
        ran_functions={
            2: RanFunction(
                2,
                "o",
                "ORAN-E2SM-KPM",
                1,
                KpmFunction({1: KpmStyle(1, "cell", frozenset({"RRU.PrbUsedDl"}))}, 100),
            ),
            3: RanFunction(
                3,
                "o",
                "ORAN-E2SM-RC",
                1,
                RcFunction({(3, 1): RcAction(3, 1, "handover", ("target",))}),
            ),
            4: RanFunction(
                4,
                "o",
                "ORAN-E2SM-CCC",
                1,
                CccFunction(
                    frozenset({2}), {"O-NRCellRelation": frozenset({"cellIndividualOffset"})}
                ),
            ),
        },
        cells={cell.id: cell},
    )
    msg = pb.Node()
    codec.node_to_proto(node, msg)
    back = codec.node_from_proto(pb.Node.FromString(msg.SerializeToString()))
    assert back.id == node.id and back.cells == node.cells
    assert back.rc() == (3, node.rc()[1])  # type: ignore[index]
    assert back.kpm() == (2, node.kpm()[1])  # type: ignore[index]
    assert back.ccc() == (4, node.ccc()[1])  # type: ignore[index]


def test_an_outcome_round_trips() -> None:
    """An outcome keeps its kind, node, cause and detail for the action it answers."""
    action = Handover("17", CELL, OTHER)
    outcome = ControlOutcome(
        OutcomeKind.FAILED,
        action,
        node=NodeId.parse("gnb-001-01-1"),
        cause=Cause(CauseCode.RIC_REQUEST_CONTROL_MESSAGE_INVALID, "no such UE"),
        latency_s=0.002,
        detail="d",
        xapp="x",
    )
    msg = pb.ControlOutcome()
    codec.outcome_to_proto("c1", outcome, msg)
    back = codec.outcome_from_proto(msg, action, "x")
    assert back == outcome


def test_hello_declares_the_class_and_a_bad_one_is_refused() -> None:
    """The hello of an xApp class declares the same reports, controls and policy types; a
    hello with a bad name, control kind or report is refused naming the field."""
    hello = codec.hello_for(Counter, credits=8)
    cls = codec.declared_class(pb.Hello.FromString(hello.SerializeToString()))
    assert cls.name == Counter.name and tuple(cls.reports) == tuple(Counter.reports)
    assert tuple(cls.controls) == tuple(Counter.controls)
    assert [t.id for t in cls.policy_types] == [t.id for t in Counter.policy_types]
    bad = pb.Hello(name="Bad Name")
    with pytest.raises(ValueError, match=r"hello\.name 'Bad Name' is not an xApp name"):
        codec.declared_class(bad)
    with pytest.raises(ValueError, match=r"hello\.controls: 'teleport' is not a control kind"):
        codec.declared_class(pb.Hello(name="ok", controls=["teleport"]))
    spec = pb.ReportSpec(metrics=["RRU.PrbUsedDl"], period_ms=0, per="cell")
    with pytest.raises(ValueError, match=r"hello.reports\[0\]: .*period_ms"):
        codec.declared_class(pb.Hello(name="ok", reports=[spec]))
