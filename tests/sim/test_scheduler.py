"""Tests of the schedulers inside a slice's PRBs in ric.sim.scheduler, alone and in the world."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ric.errors import ConfigError
from ric.sim import World, parse_scenario
from ric.sim.scheduler import Scheduler, water_fill

TICK_S = 0.1
CELL_PRBS = 106  # n78, 40 MHz at 30 kHz


def _standing(group: dict[str, Any]) -> dict[str, Any]:
    """A ue_groups entry standing still at x metres east of the cell (its ``x`` key)."""
    spec = {k: v for k, v in group.items() if k != "x"}
    spec["hotspot"] = {"center_m": [group["x"], 0.0], "radius_m": 0.5}
    spec["speed_mps"] = [0.0, 0.0]
    return spec


def _cell(groups: list[dict[str, Any]], scheduler: dict[str, Any] | None = None) -> World:
    """One omni n78 cell (106 PRBs) at the origin, no shadowing, no RAN mobility; the groups'
    UEs stand still where their hotspots put them."""
    spec: dict[str, Any] = {
        "tick_ms": 100,
        "radio": {"shadowing_std_db": 0.0, "demand_sigma": 0.0},
        "ran": {"mobility": "none"},
        "slices": [{"id": "1-000001"}],
        "nodes": [{"id": 1, "vendor": "acme", "position_m": [0.0, 0.0], "sectors": 1}],
        "ue_groups": [_standing(g) for g in groups],
        "area": {"x_m": [-600.0, 600.0], "y_m": [-600.0, 600.0]},
    }
    if scheduler is not None:
        spec["scheduler"] = scheduler
    return World(parse_scenario(spec), seed=3)


def _run(world: World, steps: int) -> None:
    for _ in range(steps):
        world.step(TICK_S)


# ------------------------------------------------------------------ water-filling


def test_water_fill_gives_equal_shares_capped_at_need_and_the_rest_to_the_others() -> None:
    """Water-filling gives every member the same PRBs unless it needs less, hands what a
    member leaves to the others of its group, and gives a group no more than it needs."""
    group = np.array([0, 0, 0, 1, 1], dtype=np.int64)
    need = np.array([2.0, 50.0, 50.0, 3.0, 4.0])
    x = water_fill(group, np.array([30.0, 100.0]), need, np.zeros(5))
    np.testing.assert_allclose(x, [2.0, 14.0, 14.0, 3.0, 4.0])


def test_water_fill_floors_shift_the_level_per_member() -> None:
    """A member's floor (PF's past average in PRBs) lowers its share by that much."""
    group = np.zeros(3, dtype=np.int64)
    x = water_fill(group, np.array([12.0]), np.full(3, 100.0), np.array([0.0, 3.0, 6.0]))
    np.testing.assert_allclose(x, [7.0, 4.0, 1.0])
    assert x.sum() == pytest.approx(12.0)


# ------------------------------------------------------------------ the policies


def test_round_robin_gives_every_backlogged_ue_the_same_prbs() -> None:
    """Round robin gives UEs at very different distances and demands, all wanting more than
    their share, equal PRBs adding up to the cell's, where the need scheduler does not."""
    groups: list[dict[str, Any]] = [
        {"x": 30.0, "count": 2, "traffic": "cbr", "dl_kbps": 150_000.0},
        {"x": 350.0, "count": 2, "traffic": "cbr", "dl_kbps": 30_000.0},
    ]
    rr = _cell(groups, {"kind": "rr"})
    need = _cell(groups, {"kind": "need"})
    _run(rr, 5)
    _run(need, 5)
    np.testing.assert_allclose(rr.ue_prb_dl, CELL_PRBS / 4)
    assert rr.ue_thp_dl_kbps[0] > 2 * rr.ue_thp_dl_kbps[3]  # same PRBs, better rate
    assert need.ue_prb_dl.sum() == pytest.approx(CELL_PRBS)
    assert abs(need.ue_prb_dl[0] - need.ue_prb_dl[3]) > 5.0


def test_pf_converges_to_equal_time_share_for_equal_rate_ues() -> None:
    """PF favours a UE whose average is low (it just changed cell) at first, then converges
    to equal PRBs (equal time) for UEs with the same rate."""
    pf = Scheduler("pf", 3, 1.0)
    ues = np.arange(3, dtype=np.int64)
    group = np.zeros(3, dtype=np.int64)
    need = np.full(3, 60.0)
    rate = np.full(3, 1000.0)
    cells = np.zeros(3, dtype=np.int64)
    shares = []
    for step in range(200):
        if step == 50:
            cells = np.array([1, 0, 0], dtype=np.int64)  # UE 0 hands over: no history there
        pf.follow(cells)
        x = pf.share(ues, group, np.array([180.0]), np.array([60.0]), need, rate, TICK_S)
        assert x.sum() == pytest.approx(60.0) and (x <= need).all()
        pf.update(x * rate, TICK_S)
        shares.append(x)
    np.testing.assert_allclose(shares[49], 20.0)
    assert shares[50][0] > 40.0  # the newcomer catches up first
    np.testing.assert_allclose(shares[-1], 20.0, rtol=1e-3)


def test_pf_with_a_short_time_constant_is_round_robin() -> None:
    """With a time constant far below the step, PF's memory is gone and it shares PRBs as
    round robin does, whatever the averages were."""
    pf = Scheduler("pf", 3, 1e-4)
    rr = Scheduler("rr", 3, 1.0)
    ues = np.arange(3, dtype=np.int64)
    group = np.zeros(3, dtype=np.int64)
    need = np.array([5.0, 40.0, 40.0])
    rate = np.array([100.0, 500.0, 2000.0])
    pf.follow(np.zeros(3, dtype=np.int64))
    pf.update(np.array([0.0, 9e5, 1e3]), TICK_S)
    args = (ues, group, np.array([85.0]), np.array([45.0]), need, rate, TICK_S)
    np.testing.assert_allclose(pf.share(*args), rr.share(*args))
    np.testing.assert_allclose(rr.share(*args), [5.0, 20.0, 20.0])


def _edge_and_centre(kind: str, edge_kbps: float, centre_kbps: float) -> World:
    world = _cell(
        [
            {"x": 30.0, "count": 3, "traffic": "cbr", "dl_kbps": centre_kbps},
            {"x": 450.0, "count": 1, "traffic": "cbr", "dl_kbps": edge_kbps},
        ],
        {"kind": kind},
    )
    _run(world, 30)
    return world


def test_pf_serves_a_light_cell_edge_ue_in_full_where_need_cuts_it_under_overload() -> None:
    """Under overload, a cell-edge UE asking little gets more than its need-proportional
    share under PF (all of its demand: its need is below the equal share), while the need
    scheduler cuts it by the same fraction as the heavy centre UEs."""
    need = _edge_and_centre("need", 2000.0, 150_000.0)
    pf = _edge_and_centre("pf", 2000.0, 150_000.0)
    for world in (need, pf):
        assert world.cell_load[0] == pytest.approx(1.0)  # overloaded
    fraction = need.ue_thp_dl_kbps / need.demand_dl_kbps
    np.testing.assert_allclose(fraction, fraction[0])
    assert fraction[0] < 0.8
    assert pf.ue_thp_dl_kbps[3] == pytest.approx(2000.0)
    assert pf.ue_prb_dl[3] > need.ue_prb_dl[3]


def test_with_equal_demands_pf_gives_the_cell_edge_ue_less_than_need_does() -> None:
    """Under overload with equal demands, the need scheduler gives the cell-edge UE the same
    fraction of its demand as everyone (many PRBs), PF equal PRBs: the edge UE's throughput
    is lower under PF, which is why the need scheduler flatters the 5th percentile."""
    need = _edge_and_centre("need", 60_000.0, 60_000.0)
    pf = _edge_and_centre("pf", 60_000.0, 60_000.0)
    np.testing.assert_allclose(pf.ue_prb_dl, CELL_PRBS / 4)
    assert pf.ue_thp_dl_kbps[3] < 0.8 * need.ue_thp_dl_kbps[3]
    assert pf.ue_thp_dl_kbps[0] > need.ue_thp_dl_kbps[0]


@pytest.mark.parametrize("kind", ["pf", "rr", "need"])
def test_no_ue_gets_more_than_its_demand_and_slices_keep_their_prbs(kind: str) -> None:
    """In a loaded multi-slice network under each scheduler, no UE is served more than its
    demand, and each slice's UEs use exactly the PRBs the slice got under its quota."""
    from ric.sim import load_scenario

    from .conftest import SEEDS

    sc = load_scenario(SEEDS / "demo.toml")
    sc = sc.model_copy(update={"scheduler": sc.scheduler.model_copy(update={"kind": kind})})
    world = World(sc, seed=4)
    for _ in range(40):
        world.step(TICK_S)
        assert (world.ue_thp_dl_kbps <= world.demand_dl_kbps * (1 + 1e-9)).all()
        serving = world.serving
        attached = np.flatnonzero(serving >= 0)
        key = serving[attached] * world.n_slices + world.ue_slice[attached]
        per_slice = np.bincount(key, world.ue_prb_dl[attached], world.n_cells * world.n_slices)
        np.testing.assert_allclose(per_slice, world.slice_prb_dl.ravel(), atol=1e-9)


def test_same_seed_same_schedule() -> None:
    """Two worlds of the same scenario and seed under PF with Poisson traffic schedule the
    same PRBs and throughputs step by step."""
    groups: list[dict[str, Any]] = [
        {"x": 60.0, "count": 5, "traffic": "poisson", "arrival_rate_hz": 4.0, "burst_kbit": 8000},
        {"x": 300.0, "count": 5, "traffic": "full_buffer"},
    ]
    a, b = _cell(groups), _cell(groups)
    for _ in range(50):
        a.step(TICK_S)
        b.step(TICK_S)
        np.testing.assert_array_equal(a.ue_prb_dl, b.ue_prb_dl)
        np.testing.assert_array_equal(a.ue_thp_dl_kbps, b.ue_thp_dl_kbps)


def test_the_scheduler_defaults_to_proportional_fair() -> None:
    """A scenario without a [scheduler] section runs PF with a 1 s time constant."""
    world = _cell([{"x": 30.0, "count": 1}])
    assert world.scheduler_model == "pf"
    assert world.scenario.scheduler.pf_time_constant_ms == 1000.0


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("scheduler", "key", "fragment"),
    [
        ({"kind": "wfq"}, "scheduler.kind", "'pf', 'rr' or 'need'"),
        ({"pf_time_constant_ms": 0.0}, "scheduler.pf_time_constant_ms", "greater than or equal"),
        ({"kind": "pf", "window": 3}, "scheduler.window", "unknown key"),
    ],
)
def test_bad_scheduler_keys_name_the_key(
    scheduler: dict[str, Any], key: str, fragment: str
) -> None:
    """A bad [scheduler] value raises ConfigError naming the key and the problem."""
    spec = {
        "nodes": [{"id": 1, "vendor": "acme", "position_m": [0.0, 0.0]}],
        "scheduler": scheduler,
    }
    with pytest.raises(ConfigError) as info:
        parse_scenario(spec)
    assert info.value.key == key
    assert fragment in info.value.problem


def test_the_scheduler_class_refuses_unknown_kinds_and_time_constants() -> None:
    """Scheduler refuses a kind it does not know and a non-positive time constant."""
    with pytest.raises(ValueError, match="unknown scheduler 'wfq'"):
        Scheduler("wfq", 1, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be positive"):
        Scheduler("pf", 1, 0.0)
