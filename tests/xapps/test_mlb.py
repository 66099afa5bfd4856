"""mlb steers cell-edge UEs off overloaded cells to neighbours with room and signal, learns from
refusals and from how moved UEs fare, and does not ping-pong."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from mlb import LoadBalancer

from ric import CellIndividualOffset, ControlOutcome, Handover, KpmReport, OutcomeKind
from ric.actions import ControlAction
from ric.ids import CellId, NodeId, Plmn
from ric.model import (
    CCC_OID,
    RC_OID,
    Cause,
    CauseCode,
    CccFunction,
    CellInfo,
    NodeInfo,
    RanFunction,
    RcAction,
    RcFunction,
)
from ric.report import EntityKind
from ric.testing import FakeContext, make_report, run_scenario, start_xapp

PLMN = Plmn("001", "01")
NODE = "gnb-001-01-1"
A, B, C = "001-01-1", "001-01-2", "001-01-3"


def node(*, handover: bool = True) -> NodeInfo:
    a, b, c = (CellId(PLMN, n) for n in (1, 2, 3))
    cells = {
        a: CellInfo(a, 1, 78, 106, neighbours=(b, c)),
        b: CellInfo(b, 2, 78, 106, neighbours=(a,)),
        c: CellInfo(c, 3, 78, 106, neighbours=(a,)),
    }
    actions = {(3, 1): RcAction(3, 1, "Handover")} if handover else {(2, 6): RcAction(2, 6, "q")}
    rc = RanFunction(3, RC_OID, "ORAN-E2SM-RC", 1, RcFunction(actions))
    return NodeInfo(NodeId(PLMN, 1), "v", "1", {3: rc}, cells)


def cell_report(loads: list[float]) -> KpmReport:
    return make_report(
        NODE,
        EntityKind.CELL,
        {"RRU.PrbUsedDl": [x * 106 / 100 for x in loads], "RRU.PrbAvailDl": [106.0] * len(loads)},
        [A, B, C][: len(loads)],
    )


def ue_report(rows: list[tuple[str, str, float, float, float]]) -> KpmReport:
    """UE rows (ue, cell, PRBs, throughput kbit/s, SINR dB)."""
    return make_report(
        NODE,
        EntityKind.UE,
        {
            "RRU.PrbUsedDl": [r[2] for r in rows],
            "DRB.UEThpDl": [r[3] for r in rows],
            "L1M.RSRP": [-95.0] * len(rows),
            "L1M.SINR": [r[4] for r in rows],
        },
        [r[0] for r in rows],
        cells=[r[1] for r in rows],
    )


def ue_report_with_neighbours(
    rows: list[tuple[str, str, float, float, float, list[tuple[int, float]]]],
) -> KpmReport:
    """UE rows (ue, cell, PRBs, serving RSRP dBm, serving SINR dB, [(neighbour NCI, RSRP)])
    as a node reporting neighbour measurements sends them (NaN past the last neighbour)."""
    metrics: dict[str, list[float]] = {
        "RRU.PrbUsedDl": [r[2] for r in rows],
        "DRB.UEThpDl": [4000.0] * len(rows),
        "L1M.RSRP": [r[3] for r in rows],
        "L1M.SINR": [r[4] for r in rows],
    }
    for k in range(3):
        heard = [r[5][k] if k < len(r[5]) else (math.nan, math.nan) for r in rows]
        metrics[f"L1M.RSRP.Nbr{k + 1}"] = [h[1] for h in heard]
        metrics[f"L1M.Nbr{k + 1}.Nci"] = [float(h[0]) for h in heard]
    return make_report(
        NODE, EntityKind.UE, metrics, [r[0] for r in rows], cells=[r[1] for r in rows]
    )


EDGE_AND_CENTRE = [("10", A, 30.0, 4000.0, -2.0), ("11", A, 50.0, 4000.0, 20.0)]


def handovers(ctx: FakeContext) -> list[tuple[str, str, str]]:
    return [(c.ue, c.cell_id, c.target_cell) for c in ctx.controls if isinstance(c, Handover)]


async def test_moves_cell_edge_ue_after_hold_not_cell_centre_ue() -> None:
    """Nothing happens on the first overloaded report; on the second, the cell-edge UE goes to
    the first-listed neighbour with room, and the cell-centre UE (high SINR: no neighbour hears
    it well) stays, however many PRBs it uses."""
    app, ctx = await start_xapp(LoadBalancer, {"hold_reports": 2}, nodes=[node()])
    await app.on_report(ue_report(EDGE_AND_CENTRE))
    await app.on_report(cell_report([95.0, 20.0, 50.0]))
    assert ctx.controls == []
    await app.on_report(cell_report([95.0, 20.0, 50.0]))
    assert handovers(ctx) == [("10", A, B)]
    assert ctx.metrics.value("handovers_total", outcome="acknowledged") == 1
    assert ctx.metrics.value("overloaded_cells") == 1


async def test_no_target_above_low_threshold_and_cooldown() -> None:
    """Neighbours above low_pct receive nobody; a moved UE is left alone during its cool-down."""
    app, ctx = await start_xapp(LoadBalancer, {"hold_reports": 1}, nodes=[node()])
    await app.on_report(ue_report(EDGE_AND_CENTRE))
    await app.on_report(cell_report([95.0, 70.0, 75.0]))
    assert ctx.controls == []
    await app.on_report(cell_report([95.0, 20.0, 75.0]))
    await ctx.clock.advance(1.0)
    await app.on_report(cell_report([95.0, 20.0, 75.0]))
    assert handovers(ctx) == [("10", A, B)]


async def test_target_that_would_overload_is_skipped() -> None:
    """A neighbour with room now, but not for the UE's PRBs at its predicted SINR there, is not
    sent the UE."""
    app, ctx = await start_xapp(LoadBalancer, {"hold_reports": 1}, nodes=[node()])
    await app.on_report(ue_report([("10", A, 80.0, 4000.0, -2.0)]))
    await app.on_report(cell_report([95.0, 55.0, 58.0]))
    assert ctx.controls == []


async def test_refused_target_is_not_retried_and_the_pair_learns() -> None:
    """A handover the node refuses is not tried again to that cell for that UE, the next
    neighbour is tried instead, and the refusing pair's learned success chance falls."""

    def answer(action: ControlAction) -> ControlOutcome:
        if isinstance(action, Handover) and action.target_cell == B:
            cause = Cause(CauseCode.RIC_REQUEST_CONTROL_FAILED_TO_EXECUTE, "RSRP too low")
            return ControlOutcome(OutcomeKind.FAILED, action, cause=cause)
        return ControlOutcome(OutcomeKind.ACKNOWLEDGED, action)

    app, ctx = await start_xapp(LoadBalancer, {"hold_reports": 1}, nodes=[node()], answer=answer)
    await app.on_report(ue_report(EDGE_AND_CENTRE))
    for _ in range(3):
        await app.on_report(cell_report([95.0, 20.0, 30.0]))
        await ctx.clock.advance(1.0)
    assert handovers(ctx) == [("10", A, B), ("10", A, C)]
    assert app.pairs[(A, B)].success(0) < 0.5
    assert ctx.metrics.value("handovers_total", outcome="failed") == 1


async def test_good_move_is_learned() -> None:
    """verify_s after a move, a UE doing well on the target counts as a good move: the pair's
    success chance rises and the error of its SINR prediction is learned."""
    app, ctx = await start_xapp(LoadBalancer, {"hold_reports": 1}, nodes=[node()])
    await app.on_report(ue_report(EDGE_AND_CENTRE))
    await app.on_report(cell_report([95.0, 20.0, 50.0]))
    assert handovers(ctx) == [("10", A, B)]
    await ctx.clock.advance(2.0)
    await app.on_report(cell_report([70.0, 45.0, 50.0]))
    await app.on_report(ue_report([("10", B, 20.0, 6000.0, 1.0), ("11", A, 50.0, 4000.0, 20.0)]))
    assert ctx.metrics.value("handover_verdicts_total", verdict="good") == 1
    stats = app.pairs[(A, B)]
    assert stats.success(0) > 0.5
    assert stats.samples == pytest.approx(1.0)
    assert stats.bias_db < 0  # the UE got less SINR there than the mirror model predicted


async def test_move_that_hurt_is_moved_back_once() -> None:
    """A moved UE whose throughput collapsed on a now congested target goes back to its source
    (no longer overloaded) once, and is not moved out of it again during the ping-pong
    guard."""
    app, ctx = await start_xapp(LoadBalancer, {"hold_reports": 1}, nodes=[node()])
    await app.on_report(ue_report(EDGE_AND_CENTRE))
    await app.on_report(cell_report([95.0, 20.0, 50.0]))
    await ctx.clock.advance(2.0)
    await app.on_report(cell_report([60.0, 95.0, 50.0]))
    await app.on_report(ue_report([("10", B, 20.0, 1000.0, 1.0), ("11", A, 50.0, 4000.0, 20.0)]))
    assert handovers(ctx) == [("10", A, B), ("10", B, A)]
    assert ctx.metrics.value("handover_verdicts_total", verdict="reverted") == 1
    # Back on A and A overloaded again: UE 10 is neither moved to B (it left B) nor to C
    # while its cool-down runs.
    await ctx.clock.advance(5.0)
    await app.on_report(ue_report(EDGE_AND_CENTRE))
    await app.on_report(cell_report([95.0, 20.0, 50.0]))
    assert len(handovers(ctx)) == 2


async def test_radio_link_failure_after_move_counts_as_bad() -> None:
    """A moved UE that turns up on its old cell again without a handover (a radio link
    failure on the target) counts as a bad move for the pair, and that target is blocked for
    it."""
    app, ctx = await start_xapp(
        LoadBalancer, {"hold_reports": 1, "cooldown_s": 0.0}, nodes=[node()]
    )
    await app.on_report(ue_report(EDGE_AND_CENTRE))
    await app.on_report(cell_report([95.0, 20.0, 30.0]))
    await ctx.clock.advance(2.0)
    await app.on_report(ue_report(EDGE_AND_CENTRE))
    assert ctx.metrics.value("handover_verdicts_total", verdict="bad") == 1
    assert app.pairs[(A, B)].success(0) < 0.5
    await app.on_report(cell_report([95.0, 20.0, 30.0]))
    assert handovers(ctx) == [("10", A, B), ("10", A, C)]


async def test_ue_report_without_signal_metrics_is_handled() -> None:
    """A node that reports no RSRP or SINR per UE (partial admission) still lets mlb steer its
    UEs, by PRBs and learned success alone."""
    app, ctx = await start_xapp(LoadBalancer, {"hold_reports": 1, "per_cell": 1}, nodes=[node()])
    report = make_report(
        NODE, EntityKind.UE, {"RRU.PrbUsedDl": [10.0, 20.0]}, ["10", "11"], cells=[A, A]
    )
    await app.on_report(report)
    await app.on_report(cell_report([95.0, 20.0, 40.0]))
    assert handovers(ctx) == [("11", A, B)]


async def test_node_without_handover_control_is_left_alone() -> None:
    """Cells of a node that does not offer the handover control are never steered."""
    app, ctx = await start_xapp(LoadBalancer, {"hold_reports": 1}, nodes=[node(handover=False)])
    await app.on_report(ue_report(EDGE_AND_CENTRE))
    await app.on_report(cell_report([95.0, 20.0, 50.0]))
    assert ctx.controls == []


async def test_measured_neighbour_below_min_rsrp_is_no_target() -> None:
    """With neighbour measurements, the target is the measured neighbour with room and
    enough RSRP, not the first listed one: B, heard below min_target_rsrp_dbm, is skipped."""
    app, ctx = await start_xapp(LoadBalancer, {"hold_reports": 1}, nodes=[node()])
    report = ue_report_with_neighbours(
        [
            ("10", A, 30.0, -95.0, -2.0, [(3, -90.0), (2, -118.0)]),
            ("12", A, 30.0, -95.0, -2.0, [(2, -116.0)]),
        ]
    )
    await app.on_report(report)
    await app.on_report(cell_report([95.0, 20.0, 50.0]))
    assert handovers(ctx) == [("10", A, C)]
    assert ctx.metrics.value("handovers_total", outcome="acknowledged") == 1


@pytest.mark.parametrize(("setting", "moved"), [(None, False), (3.0, True), ("none", True)])
async def test_a_neighbour_weaker_than_the_serving_cell_is_no_target(
    setting: float | str | None, moved: bool
) -> None:
    """By default a UE is not moved to a neighbour it hears 2 dB below its serving cell (the
    RAN's own A3 would hand it straight back); with max_below_serving_db at 3 dB, or without
    the limit, it is (the SINR floor is lowered so the RSRP rule alone decides)."""
    config: dict[str, object] = {"hold_reports": 1, "min_target_sinr_db": -20.0}
    if setting is not None:
        config["max_below_serving_db"] = None if setting == "none" else setting
    app, ctx = await start_xapp(LoadBalancer, config, nodes=[node()])
    await app.on_report(cell_report([95.0, 20.0, 50.0]))
    await app.on_report(ue_report_with_neighbours([("10", A, 2.0, -80.0, 12.0, [(2, -82.0)])]))
    await app.on_report(cell_report([95.0, 20.0, 50.0]))
    assert handovers(ctx) == ([("10", A, B)] if moved else [])


async def test_measured_neighbour_predicts_the_target_sinr() -> None:
    """Co-channel, the SINR on a measured neighbour comes from the RSRP difference and the
    loads: a cell-edge UE hearing B 5 dB above its serving cell moves there, a UE hearing B
    15 dB below stays, and so does a UE that hears no neighbour at all."""
    app, ctx = await start_xapp(LoadBalancer, {"hold_reports": 1}, nodes=[node()])
    await app.on_report(cell_report([95.0, 20.0, 50.0]))
    report = ue_report_with_neighbours(
        [
            ("10", A, 20.0, -95.0, -2.0, [(2, -90.0)]),
            ("11", A, 50.0, -85.0, 15.0, [(2, -100.0)]),
            ("12", A, 60.0, -95.0, -2.0, []),
        ]
    )
    await app.on_report(report)
    ue = app.ues[A][0]
    assert ue.nbrs == ((B, -90.0),)
    # S_t / (S_s / SINR - S_t u_t + S_s u_s), in units of S_s: 3.16 / (1.58 - 0.63 + 0.95)
    assert app._measured_sinr(ue, A, B, -90.0) == pytest.approx(10 * math.log10(1.66), abs=0.1)
    await app.on_report(cell_report([95.0, 20.0, 50.0]))
    assert handovers(ctx) == [("10", A, B)]


async def test_measured_targets_need_no_one_at_a_time_exploration() -> None:
    """Targets the UEs measured are not guesses: several UEs go to a pair with no record in
    one round, up to per_cell, where the prediction path would try one."""
    app, ctx = await start_xapp(LoadBalancer, {"hold_reports": 1}, nodes=[node()])
    rows = [(str(u), A, 5.0, -95.0, -2.0, [(2, -88.0)]) for u in (10, 11, 12, 13)]
    await app.on_report(ue_report_with_neighbours(rows))
    await app.on_report(cell_report([95.0, 20.0, 50.0]))
    assert [h[2] for h in handovers(ctx)] == [B, B, B]


def test_config_needs_low_below_high() -> None:
    """The load hysteresis must be a gap: low_pct at or above high_pct is refused."""
    with pytest.raises(ValueError, match="low_pct"):
        LoadBalancer.Config(high_pct=70.0, low_pct=70.0)


async def test_hotspot_scenario_steers_with_few_refusals() -> None:
    """On seeds/hotspot.toml with steering = "handover" mlb relieves the overloaded macro cell
    UE by UE: most of its handovers are acknowledged, none ping-pongs, and its metrics count
    every outcome."""
    result = await run_scenario(
        "seeds/hotspot.toml",
        [LoadBalancer],
        duration_s=60.0,
        seed=1,
        xapp_config={"mlb": {"steering": "handover"}},
    )
    kinds = result.outcomes("mlb")
    acked = kinds.count(OutcomeKind.ACKNOWLEDGED)
    assert acked >= 5
    assert acked > 2 * kinds.count(OutcomeKind.FAILED)
    metrics = result.metrics["mlb"]
    total = sum(metrics.value("handovers_total", **s) for s in metrics.series("handovers_total"))
    assert total == len(kinds)
    last: dict[str, tuple[str, str]] = {}
    for record in result.controls:
        action = record.action
        assert isinstance(action, Handover)
        if record.kind is OutcomeKind.ACKNOWLEDGED:
            prev = last.get(action.ue)
            assert prev != (action.target_cell, action.cell_id)
            last[action.ue] = (action.cell_id, action.target_cell)
    assert not math.isnan(result.xapps["mlb"].load["001-01-4097"])  # type: ignore[attr-defined]


async def test_hotspot_scenario_steers_by_cio_through_the_ric_and_the_nodes() -> None:
    """By default on seeds/hotspot.toml (every node takes CCC CIOs) mlb sends only cell
    individual offsets, through the runtime's control path to the simulated nodes' CCC
    functions: all acknowledged, each relation paired with its reverse, and the world's
    relations carry what mlb believes it set; the RAN's A3 then moves the UEs."""
    result = await run_scenario("seeds/hotspot.toml", [LoadBalancer], duration_s=60.0, seed=1)
    kinds = result.outcomes("mlb")
    assert kinds and all(k is OutcomeKind.ACKNOWLEDGED for k in kinds)
    actions = [r.action for r in result.controls]
    assert all(isinstance(a, CellIndividualOffset) for a in actions)
    metrics = result.metrics["mlb"]
    assert metrics.value("cio_changes_total", outcome="acknowledged") == len(kinds)
    app = result.xapps["mlb"]
    assert isinstance(app, LoadBalancer) and app.cio
    world = result.world
    assert world is not None
    for (source, target), value in app.cio.items():
        assert world.cio(CellId.parse(source), CellId.parse(target)) == value
        assert app.cio.get((target, source)) == -value
    assert world.mobility_report().handovers.count("a3") > 0


async def test_demo_scenario_uses_neighbour_measurements_without_refusals() -> None:
    """On seeds/demo.toml (one carrier, steering = "handover") the acme node reports its UEs'
    neighbours, so mlb hands UEs of the overloaded cell only to cells they measured, and the node refuses none
    for the radio: a refusal only says the RAN's own handover moved that UE since the last UE
    report, and mlb does not try that UE again before the next UE report."""
    result = await run_scenario(
        "seeds/demo.toml",
        [LoadBalancer],
        duration_s=120.0,
        seed=1,
        xapp_config={"mlb": {"steering": "handover"}},
    )
    app = result.xapps["mlb"]
    assert isinstance(app, LoadBalancer)
    assert all(ue.nbrs is not None for ue in app.ues["001-01-4097"])
    kinds = result.outcomes("mlb")
    assert OutcomeKind.ACKNOWLEDGED in kinds
    gone: list[tuple[float, str]] = []
    for record in result.controls:
        if record.kind is not OutcomeKind.ACKNOWLEDGED:
            assert record.kind is OutcomeKind.FAILED
            cause = record.outcome.cause
            assert cause is not None and cause.code is CauseCode.RIC_REQUEST_TARGET_UNKNOWN
            assert isinstance(record.action, Handover)
            gone.append((record.time_s, record.action.ue))
    last: dict[str, float] = {}
    for t, ue in sorted(gone):
        assert t - last.get(ue, -math.inf) >= 1.0  # UE reports come every second
        last[ue] = t
    for record in result.controls:
        assert isinstance(record.action, Handover)
        assert record.action.cell_id == "001-01-4097"


def cio_node() -> NodeInfo:
    """``node()`` whose node also has a CCC function that writes CIOs."""
    base = node()
    ccc = CccFunction(frozenset({2}), {"O-NRCellRelation": frozenset({"cellIndividualOffset"})})
    functions = {**base.ran_functions, 4: RanFunction(4, CCC_OID, "ORAN-E2SM-CCC", 1, ccc)}
    return replace(base, ran_functions=functions)


def offsets(ctx: FakeContext) -> list[tuple[str, str, int]]:
    return [
        (c.cell_id, c.neighbour, c.offset_db)
        for c in ctx.controls
        if isinstance(c, CellIndividualOffset)
    ]


async def test_steers_by_cio_so_the_ran_moves_the_ues() -> None:
    """On a node that takes CIOs, an overloaded cell gets its relations to neighbours with room
    raised a step at a time (the reverse relations lowered as much), never past max_cio_db
    and no handover of its own; a neighbour that fills up gets its offset stepped back, and
    once the cell has been calm for cio_relax_s its offsets step back towards 0."""
    config = {"hold_reports": 1, "cio_step_db": 2, "max_cio_db": 4, "cio_relax_s": 10.0}
    app, ctx = await start_xapp(LoadBalancer, config, nodes=[cio_node()])
    await app.on_report(ue_report(EDGE_AND_CENTRE))
    await app.on_report(cell_report([95.0, 20.0, 70.0]))
    assert offsets(ctx) == [(A, B, 2), (B, A, -2)]  # C is above low_pct
    for _ in range(3):
        await ctx.clock.advance(1.0)
        await app.on_report(cell_report([95.0, 20.0, 70.0]))
    assert offsets(ctx)[2:] == [(A, B, 4), (B, A, -4)]  # capped at max_cio_db
    assert handovers(ctx) == []
    assert app.cio == {(A, B): 4, (B, A): -4}
    await app.on_report(cell_report([95.0, 85.0, 70.0]))
    assert offsets(ctx)[4:] == [(A, B, 2), (B, A, -2)]  # B filled up
    await app.on_report(cell_report([50.0, 40.0, 40.0]))
    await ctx.clock.advance(10.0)
    await app.on_report(cell_report([50.0, 40.0, 40.0]))
    assert offsets(ctx)[6:] == [(A, B, 0), (B, A, 0)]
    assert app.cio == {}
    assert ctx.metrics.value("cio_changes_total", outcome="acknowledged") == 8
    assert ctx.metrics.value("steered_relations") == 0


async def test_steering_handover_keeps_per_ue_handovers_on_cio_nodes() -> None:
    """With steering = "handover" mlb hands UEs over itself even where the node takes CIOs;
    a max_cio_db outside Q-OffsetRange is refused."""
    app, ctx = await start_xapp(
        LoadBalancer, {"hold_reports": 1, "steering": "handover"}, nodes=[cio_node()]
    )
    await app.on_report(ue_report(EDGE_AND_CENTRE))
    await app.on_report(cell_report([95.0, 20.0, 50.0]))
    assert handovers(ctx) == [("10", A, B)] and offsets(ctx) == []
    with pytest.raises(ValueError, match="Q-OffsetRange"):
        LoadBalancer.Config.model_validate({"max_cio_db": 7})
