"""mlb hands the heaviest UEs of an overloaded cell to a lightly loaded neighbour, with
hysteresis."""

from __future__ import annotations

from mlb import LoadBalancer

from ric import ControlOutcome, Handover, KpmReport, OutcomeKind
from ric.actions import ControlAction
from ric.ids import CellId, NodeId, Plmn
from ric.model import Cause, CauseCode, CellInfo, NodeInfo
from ric.report import EntityKind
from ric.testing import make_report, start_xapp

PLMN = Plmn("001", "01")
NODE = "gnb-001-01-1"


def node() -> NodeInfo:
    a, b, c = (CellId(PLMN, n) for n in (1, 2, 3))
    cells = {
        a: CellInfo(a, 1, 78, 106, neighbours=(b, c)),
        b: CellInfo(b, 2, 78, 106, neighbours=(a,)),
        c: CellInfo(c, 3, 78, 106, neighbours=(a,)),
    }
    return NodeInfo(NodeId(PLMN, 1), "v", "1", {}, cells)


def cell_report(loads: list[float]) -> KpmReport:
    return make_report(
        NODE,
        EntityKind.CELL,
        {"RRU.PrbUsedDl": [x * 106 / 100 for x in loads], "RRU.PrbAvailDl": [106.0] * len(loads)},
        ["001-01-1", "001-01-2", "001-01-3"][: len(loads)],
    )


def ue_report() -> KpmReport:
    return make_report(
        NODE,
        EntityKind.UE,
        {
            "RRU.PrbUsedDl": [30.0, 50.0, 5.0],
            "DRB.UEThpDl": [1.0, 1.0, 1.0],
            "L1M.RSRP": [-90.0, -95.0, -80.0],
        },
        ["10", "11", "12"],
        cells=["001-01-1", "001-01-1", "001-01-2"],
    )


async def test_hands_heaviest_ues_to_least_loaded_neighbour_after_hold() -> None:
    """Nothing happens on the first overloaded report; on the second, the two heaviest UEs of
    the hot cell go to the neighbours below the low threshold, least loaded first."""
    app, ctx = await start_xapp(LoadBalancer, {"hold_reports": 2, "per_cell": 2}, nodes=[node()])
    await app.on_report(ue_report())
    await app.on_report(cell_report([95.0, 20.0, 50.0]))
    assert ctx.controls == []
    await app.on_report(cell_report([95.0, 20.0, 50.0]))
    assert ctx.controls == [
        Handover("11", "001-01-1", "001-01-2"),
        Handover("10", "001-01-1", "001-01-3"),
    ]


async def test_no_target_above_low_threshold_and_cooldown() -> None:
    """Neighbours above low_pct receive nobody; a moved UE is left alone during its cool-down."""
    app, ctx = await start_xapp(LoadBalancer, {"hold_reports": 1, "per_cell": 1}, nodes=[node()])
    await app.on_report(ue_report())
    await app.on_report(cell_report([95.0, 70.0, 75.0]))
    assert ctx.controls == []
    await app.on_report(cell_report([95.0, 20.0, 75.0]))
    await app.on_report(cell_report([95.0, 20.0, 75.0]))
    assert [c.ue for c in ctx.controls if isinstance(c, Handover)] == ["11", "10"]


async def test_refused_target_is_not_retried_for_that_ue() -> None:
    """A handover the node refuses is not tried again to the same cell for that UE."""

    def refuse(action: ControlAction) -> ControlOutcome:
        return ControlOutcome(
            OutcomeKind.FAILED,
            action,
            cause=Cause(CauseCode.RIC_REQUEST_CONTROL_FAILED_TO_EXECUTE, "weak"),
        )

    app, ctx = await start_xapp(
        LoadBalancer, {"hold_reports": 1, "per_cell": 1}, nodes=[node()], answer=refuse
    )
    await app.on_report(ue_report())
    await app.on_report(cell_report([95.0, 20.0, 75.0]))
    await app.on_report(cell_report([95.0, 20.0, 75.0]))
    await app.on_report(cell_report([95.0, 20.0, 75.0]))
    assert [(c.ue, c.target_cell) for c in ctx.controls if isinstance(c, Handover)] == [
        ("11", "001-01-2"),
        ("10", "001-01-2"),
    ]


async def test_ue_report_without_rsrp_is_handled() -> None:
    """A node that does not report RSRP per UE (partial admission) still lets mlb rank its UEs."""
    app, ctx = await start_xapp(LoadBalancer, {"hold_reports": 1, "per_cell": 1}, nodes=[node()])
    report = make_report(
        NODE, EntityKind.UE, {"RRU.PrbUsedDl": [30.0, 50.0]}, ["10", "11"], cells=["001-01-1"] * 2
    )
    await app.on_report(report)
    await app.on_report(cell_report([95.0, 20.0, 75.0]))
    assert [c.ue for c in ctx.controls if isinstance(c, Handover)] == ["11"]
