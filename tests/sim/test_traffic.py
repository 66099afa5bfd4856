"""Tests of the per-group traffic models in ric.sim.traffic, alone and in the world."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ric.errors import ConfigError
from ric.sim import World, parse_scenario
from ric.sim.scenario import RadioSpec, UeGroupSpec
from ric.sim.traffic import Traffic

TICK_S = 0.1
CELL_PRBS = 106


def _cell(groups: list[dict[str, Any]], *, seed: int = 5, **extra: Any) -> World:
    """One omni n78 cell at the origin, no shadowing, no RAN mobility; each group's UEs stand
    still at ``x`` metres east of it."""
    ue_groups = []
    for g in groups:
        spec = {k: v for k, v in g.items() if k != "x"}
        spec["hotspot"] = {"center_m": [g["x"], 0.0], "radius_m": 0.5}
        spec["speed_mps"] = [0.0, 0.0]
        ue_groups.append(spec)
    data: dict[str, Any] = {
        "tick_ms": 100,
        "radio": {"shadowing_std_db": 0.0},
        "ran": {"mobility": "none"},
        "slices": [{"id": "1-000001"}],
        "nodes": [{"id": 1, "vendor": "acme", "position_m": [0.0, 0.0], "sectors": 1}],
        "ue_groups": ue_groups,
        "area": {"x_m": [-600.0, 600.0], "y_m": [-600.0, 600.0]},
        **extra,
    }
    return World(parse_scenario(data), seed=seed)


def test_cbr_ues_get_exactly_their_rate_when_capacity_allows() -> None:
    """CBR UEs in a lightly loaded cell ask for, and get, exactly their rate every step."""
    world = _cell(
        [
            {"x": 50.0, "count": 3, "traffic": "cbr", "dl_kbps": 4000.0, "ul_kbps": 500.0},
            {"x": 300.0, "count": 2, "traffic": "cbr", "dl_kbps": 1500.0},
        ]
    )
    for _ in range(30):
        world.step(TICK_S)
        np.testing.assert_allclose(world.demand_dl_kbps, [4000.0] * 3 + [1500.0] * 2)
        np.testing.assert_allclose(world.ue_thp_dl_kbps, world.demand_dl_kbps, rtol=1e-12)
        np.testing.assert_allclose(world.ue_thp_ul_kbps[:3], 500.0, rtol=1e-12)
    assert world.cell_load[0] < 0.5


def test_poisson_long_run_mean_matches_rate_times_size() -> None:
    """Poisson bursts into a buffer served by a cell with room: over 300 s the UEs are
    served, on average, arrival rate x mean burst size (within 3 %), and the buffers drain."""
    rate_hz, burst_kbit, n = 2.0, 1000.0, 20
    world = _cell(
        [
            {
                "x": 80.0,
                "count": n,
                "traffic": "poisson",
                "arrival_rate_hz": rate_hz,
                "burst_kbit": burst_kbit,
            }
        ]
    )
    served_kbit = 0.0
    for _ in range(3000):
        world.step(TICK_S)
        served_kbit += float(world.ue_thp_dl_kbps.sum()) * TICK_S
        assert (world.ue_thp_dl_kbps <= world.demand_dl_kbps * (1 + 1e-12)).all()
    mean_kbps = served_kbit / (300.0 * n)
    assert mean_kbps == pytest.approx(rate_hz * burst_kbit, rel=0.03)
    assert world.dropped_kbit == 0.0
    assert (world.buffer_kbit < 10 * burst_kbit).all()


def test_poisson_arrivals_alone_average_rate_times_size() -> None:
    """The Poisson model's offered load, with nothing served, is arrival rate x mean burst
    size per UE and second (within 2 % over 200 UE-minutes), buffered up to the limit and
    dropped beyond it."""
    groups = [
        UeGroupSpec(count=200, traffic="poisson", arrival_rate_hz=0.5, burst_kbit=4000.0),
        UeGroupSpec(count=3, traffic="cbr", dl_kbps=100.0),
    ]
    ue_group = np.repeat([0, 1], [200, 3]).astype(np.int64)
    base = np.where(ue_group == 0, 0.0, 100.0)
    rng = np.random.default_rng(9)
    traffic = Traffic(groups, ue_group, base, base, RadioSpec(), rng, seed=9)
    for _ in range(600):
        traffic.update(TICK_S, None)
    buffered = traffic.buffer_kbit[:200]
    offered = (buffered.sum() + traffic.dropped_kbit) / (200 * 60.0)
    assert offered == pytest.approx(0.5 * 4000.0, rel=0.02)
    assert buffered.max() == 80_000.0 and traffic.dropped_kbit > 0.0  # the default limit
    assert (traffic.buffer_kbit[200:] == 0.0).all()
    np.testing.assert_allclose(traffic.dl_kbps[:200], buffered / TICK_S)


def test_a_full_poisson_buffer_drops_what_does_not_fit() -> None:
    """A Poisson UE whose cell cannot drain it keeps at most max_buffer_kbit queued and
    counts the rest as dropped."""
    world = _cell(
        [
            {
                "x": 500.0,
                "count": 4,
                "traffic": "poisson",
                "arrival_rate_hz": 50.0,
                "burst_kbit": 20_000.0,
                "max_buffer_kbit": 30_000.0,
            }
        ]
    )
    for _ in range(100):
        world.step(TICK_S)
        assert (world.buffer_kbit <= 30_000.0).all() and (world.buffer_kbit >= 0.0).all()
    assert world.dropped_kbit > 0.0
    assert world.cell_load[0] == pytest.approx(1.0)


@pytest.mark.parametrize("kind", ["pf", "rr", "need"])
def test_full_buffer_saturates_the_cell(kind: str) -> None:
    """Full-buffer UEs always have infinite demand and use every PRB of their cell, under
    every scheduler, in both directions."""
    world = _cell(
        [{"x": 40.0, "count": 2, "traffic": "full_buffer"}, {"x": 250.0, "count": 1}],
        scheduler={"kind": kind},
    )
    since = world.snapshot()
    for _ in range(20):
        world.step(TICK_S)
        assert world.cell_load[0] == pytest.approx(1.0)
        assert world.ue_prb_dl.sum() == pytest.approx(CELL_PRBS)
    assert np.isinf(world.demand_dl_kbps[:2]).all() and np.isfinite(world.demand_dl_kbps[2])
    util = world.cell_matrix(since, [0], ["RRU.PrbUsedDl", "RRU.PrbUsedUl"])
    assert util[0, 0] == pytest.approx(CELL_PRBS)
    assert util[0, 1] == pytest.approx(CELL_PRBS)


def test_a_lone_full_buffer_ue_gets_the_whole_cell() -> None:
    """A single full-buffer UE is served all the cell's PRBs: its throughput is the cell's
    capacity at its rate, with no UE in a handover gap to cut it."""
    world = _cell([{"x": 40.0, "count": 1, "traffic": "full_buffer"}])
    world.step(TICK_S)
    assert world.ue_prb_dl[0] == pytest.approx(CELL_PRBS)
    assert world.ue_thp_dl_kbps[0] > 100_000.0


def test_surges_scale_cbr_rates_and_poisson_arrivals() -> None:
    """A traffic surge doubles a CBR group's rate and a Poisson group's arrivals, and leaves
    a full-buffer group's infinite demand alone."""
    groups = [
        {"x": 50.0, "name": "cbr", "count": 2, "traffic": "cbr", "dl_kbps": 1000.0},
        {
            "x": 50.0,
            "name": "poisson",
            "count": 50,
            "traffic": "poisson",
            "arrival_rate_hz": 1.0,
            "burst_kbit": 100.0,
        },
        {"x": 50.0, "name": "full", "count": 1, "traffic": "full_buffer"},
    ]
    events = [
        {"kind": "traffic_surge", "group": g, "at_s": 0.0, "factor": 2.0}
        for g in ("cbr", "poisson", "full")
    ]
    plain, surged = _cell(groups), _cell(groups, events=events)
    served = {"plain": 0.0, "surged": 0.0}
    for _ in range(1500):
        plain.step(TICK_S)
        surged.step(TICK_S)
        served["plain"] += float(plain.ue_thp_dl_kbps[2:52].sum())
        served["surged"] += float(surged.ue_thp_dl_kbps[2:52].sum())
    np.testing.assert_allclose(surged.demand_dl_kbps[:2], 2000.0)
    assert np.isinf(surged.demand_dl_kbps[52])
    assert served["surged"] / served["plain"] == pytest.approx(2.0, rel=0.06)


def test_same_seed_same_demand_and_the_model_does_not_move_the_ues() -> None:
    """The same seed gives the same demand step by step, and switching a group's traffic
    model leaves the UEs' movement and radio (their RSRP) exactly as they were."""

    def world(traffic: dict[str, Any]) -> World:
        data: dict[str, Any] = {
            "nodes": [{"id": 1, "vendor": "acme", "position_m": [0.0, 0.0]}],
            "ue_groups": [{"count": 30, **traffic}],
        }
        return World(parse_scenario(data), seed=21)

    poisson = {"traffic": "poisson", "arrival_rate_hz": 3.0, "burst_kbit": 500.0}
    a, b = world(poisson), world(poisson)
    lognormal = world({})
    for _ in range(50):
        for w in (a, b, lognormal):
            w.step(TICK_S)
        np.testing.assert_array_equal(a.demand_dl_kbps, b.demand_dl_kbps)
        np.testing.assert_array_equal(a.rsrp_dbm, lognormal.rsrp_dbm)
    assert (a.demand_dl_kbps != lognormal.demand_dl_kbps).any()


@pytest.mark.parametrize(
    ("group", "key", "fragment"),
    [
        ({"traffic": "bursty"}, "ue_groups[0].traffic", "'lognormal', 'cbr', 'poisson'"),
        ({"traffic": "poisson", "burst_kbit": 100.0}, "ue_groups[0].arrival_rate_hz", "needs"),
        ({"traffic": "poisson", "arrival_rate_hz": 1.0}, "ue_groups[0].burst_kbit", "needs"),
        (
            {"traffic": "poisson", "arrival_rate_hz": 1.0, "burst_kbit": 1.0, "dl_kbps": 5.0},
            "ue_groups[0].dl_kbps",
            "arrival_rate_hz x burst_kbit",
        ),
        ({"traffic": "cbr", "arrival_rate_hz": 1.0}, "ue_groups[0].arrival_rate_hz", "only for"),
        ({"max_buffer_kbit": 10.0}, "ue_groups[0].max_buffer_kbit", "not 'lognormal'"),
        ({"traffic": "full_buffer", "dl_kbps": 5.0}, "ue_groups[0].dl_kbps", "does not apply"),
        ({"traffic": "full_buffer", "ul_kbps": 5.0}, "ue_groups[0].ul_kbps", "does not apply"),
        (
            {"traffic": "poisson", "arrival_rate_hz": -1.0, "burst_kbit": 1.0},
            "ue_groups[0].arrival_rate_hz",
            "greater than 0",
        ),
    ],
)
def test_bad_traffic_keys_name_the_key(group: dict[str, Any], key: str, fragment: str) -> None:
    """A bad traffic model or parameter raises ConfigError naming the key and the problem."""
    data = {
        "nodes": [{"id": 1, "vendor": "acme", "position_m": [0.0, 0.0]}],
        "ue_groups": [{"count": 2, **group}],
    }
    with pytest.raises(ConfigError) as info:
        parse_scenario(data)
    assert info.value.key == key
    assert fragment in info.value.problem
