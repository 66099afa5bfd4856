"""Tests of scenario events and slice SLAs: validation, and what the world does with them."""

from __future__ import annotations

import tomllib
from typing import Any

import numpy as np
import pytest

from ric.errors import ConfigError
from ric.sim import Scenario, World, parse_scenario
from ric.sim.scenario import SinrDegradation, TrafficSurge

from .conftest import SEEDS

TICK_S = 0.1
CELL = "001-01-4097"


@pytest.fixture(scope="module")
def demo_data() -> dict[str, Any]:
    """The demo scenario as parsed TOML, to add events to."""
    with (SEEDS / "demo.toml").open("rb") as f:
        return tomllib.load(f)


def _with(data: dict[str, Any], **changes: Any) -> Scenario:
    return parse_scenario({**data, **changes})


def _steps(world: World, n: int) -> None:
    for _ in range(n):
        world.step(TICK_S)


def test_events_and_sla_parse_in_the_documented_format(demo_data: dict[str, Any]) -> None:
    """The TOML of the scenario docstring loads into typed events and an SLA."""
    text = """
[[slices]]
id = "2-000002"
min_pct = 10
max_pct = 100
sla = { max_delay_ms = 5.0 }

[[events]]
kind = "sinr_degradation"
cell = "001-01-4097"
at_s = 120.0
until_s = 300.0
db = 15.0

[[events]]
kind = "traffic_surge"
group = "hotspot"
at_s = 200.0
until_s = 260.0
factor = 4.0

[[events]]
kind = "traffic_surge"
cell = "001-01-4098"
at_s = 10.0
factor = 0.5
"""
    extra = tomllib.loads(text)
    slices = [*demo_data["slices"][:1], *extra["slices"], *demo_data["slices"][2:]]
    sc = _with(demo_data, slices=slices, events=extra["events"])
    assert sc.slices[1].sla is not None and sc.slices[1].sla.max_delay_ms == 5.0
    assert sc.slices[1].sla.min_thp_kbps is None
    first, second, third = sc.events
    assert isinstance(first, SinrDegradation) and first.db == 15.0 and first.cell == CELL
    assert isinstance(second, TrafficSurge) and second.group == "hotspot" and second.cell is None
    assert isinstance(third, TrafficSurge) and third.until_s is None
    assert first.active_at(120.0) and first.active_at(299.9) and not first.active_at(300.0)
    assert third.active_at(1e9) and not third.active_at(9.99)


@pytest.mark.parametrize(
    ("event", "key", "needle"),
    [
        (
            {"kind": "sinr_degradation", "cell": "001-01-9999", "at_s": 1.0, "db": 10.0},
            "events[1].cell",
            "unknown cell '001-01-9999'",
        ),
        (
            {"kind": "traffic_surge", "group": "nobody", "at_s": 1.0, "factor": 2.0},
            "events[1].group",
            "unknown UE group 'nobody'",
        ),
        (
            {"kind": "sinr_degradation", "cell": CELL, "at_s": 5.0, "until_s": 5.0, "db": 3.0},
            "events[1].until_s",
            "must be after at_s",
        ),
        (
            {"kind": "traffic_surge", "group": "hotspot", "at_s": 1.0, "factor": 0.0},
            "events[1].factor",
            "greater than 0",
        ),
        (
            {"kind": "sinr_degradation", "cell": CELL, "at_s": 1.0, "db": -3.0},
            "events[1].db",
            "greater than 0",
        ),
        (
            {"kind": "traffic_surge", "group": "hotspot", "cell": CELL, "at_s": 1, "factor": 2},
            "events[1]",
            "exactly one of group and cell",
        ),
        ({"kind": "meteor", "at_s": 1.0}, "events[1]", "does not match any of the expected tags"),
        ({"cell": CELL, "at_s": 1.0, "db": 3.0}, "events[1]", "needs kind = one of"),
        (
            {"kind": "sinr_degradation", "cell": CELL, "at_s": 1.0, "db": 3.0, "dB": 1},
            "events[1].dB",
            "unknown key",
        ),
    ],
)
def test_bad_events_are_refused_naming_index_and_field(
    demo_data: dict[str, Any], event: dict[str, Any], key: str, needle: str
) -> None:
    """A bad event raises ConfigError whose key is the event's index and field."""
    good = {"kind": "sinr_degradation", "cell": CELL, "at_s": 0.0, "db": 1.0}
    with pytest.raises(ConfigError) as info:
        _with(demo_data, events=[good, event])
    assert info.value.key == key
    assert needle in info.value.problem


@pytest.mark.parametrize(
    ("sla", "key"),
    [({}, "slices[1].sla"), ({"min_thp_kbps": -1.0}, "slices[1].sla.min_thp_kbps")],
)
def test_bad_sla_is_refused(demo_data: dict[str, Any], sla: dict[str, Any], key: str) -> None:
    """An SLA with no target or a negative one is refused, naming the slice."""
    slices = [dict(s) for s in demo_data["slices"]]
    slices[1]["sla"] = sla
    with pytest.raises(ConfigError) as info:
        _with(demo_data, slices=slices)
    assert info.value.key == key


def test_sinr_degradation_lowers_that_cell_during_the_window_only(
    demo_data: dict[str, Any],
) -> None:
    """Every UE's SINR on the cell drops by db from the first step at at_s, nowhere else, and
    the offset is gone from until_s on."""
    event = {"kind": "sinr_degradation", "cell": CELL, "at_s": 1.0, "until_s": 2.0, "db": 15.0}
    plain = World(_with(demo_data), seed=3)
    faulty = World(_with(demo_data, events=[event]), seed=3)
    c = faulty.cell_text.index(CELL)
    _steps(plain, 10)
    _steps(faulty, 10)  # the steps starting at 0.0 .. 0.9 s
    assert np.array_equal(plain.sinr_db, faulty.sinr_db)
    assert not faulty.active_events
    plain.step(TICK_S)
    faulty.step(TICK_S)  # starts at 1.0 s: the event is on
    assert faulty.active_events == (0,)
    np.testing.assert_allclose(faulty.sinr_db[:, c], plain.sinr_db[:, c] - 15.0)
    others = np.arange(faulty.n_cells) != c
    assert np.array_equal(faulty.sinr_db[:, others], plain.sinr_db[:, others])
    assert faulty.sinr_offset_db[c] == -15.0 and not faulty.sinr_offset_db[others].any()
    _steps(faulty, 9)  # up to the step starting at 1.9 s
    assert faulty.sinr_offset_db[c] == -15.0
    faulty.step(TICK_S)  # starts at 2.0 s: over
    assert not faulty.active_events and not faulty.sinr_offset_db.any()


def test_sinr_degradation_costs_the_cell_throughput(demo_data: dict[str, Any]) -> None:
    """During a deep SINR fault the UEs of the cell get less throughput than without it."""
    event = {"kind": "sinr_degradation", "cell": CELL, "at_s": 0.0, "db": 20.0}
    plain = World(_with(demo_data), seed=5)
    faulty = World(_with(demo_data, events=[event]), seed=5)
    plain.step(TICK_S)
    faulty.step(TICK_S)
    c = faulty.cell_text.index(CELL)
    on_cell = faulty.serving == c
    assert on_cell.any()
    assert faulty.ue_thp_dl_kbps[on_cell].sum() < plain.ue_thp_dl_kbps[on_cell].sum()


def test_group_surge_multiplies_the_groups_demand_in_the_window(
    demo_data: dict[str, Any],
) -> None:
    """A traffic surge on a group multiplies its UEs' demand by factor during the window, and
    leaves other UEs and other times alone."""
    event = {"kind": "traffic_surge", "group": "hotspot", "at_s": 0.5, "until_s": 1.0, "factor": 4}
    plain = World(_with(demo_data), seed=9)
    surged = World(_with(demo_data, events=[event]), seed=9)
    hotspot = surged.ue_group == 0
    for k in range(15):
        plain.step(TICK_S)
        surged.step(TICK_S)
        expected = plain.demand_dl_kbps.copy()
        if 5 <= k < 10:  # steps starting at 0.5 .. 0.9 s
            expected[hotspot] *= 4.0
        np.testing.assert_allclose(surged.demand_dl_kbps, expected)


def test_cell_surge_follows_the_ues_the_cell_serves(demo_data: dict[str, Any]) -> None:
    """A traffic surge on a cell multiplies the demand of the UEs that cell serves."""
    event = {"kind": "traffic_surge", "cell": CELL, "at_s": 0.0, "factor": 3.0}
    plain = World(_with(demo_data), seed=2)
    surged = World(_with(demo_data, events=[event]), seed=2)
    c = surged.cell_text.index(CELL)
    served = surged.serving == c  # the step's surge uses the serving cells it starts with
    plain.step(TICK_S)
    surged.step(TICK_S)
    assert served.any() and not served.all()
    np.testing.assert_allclose(surged.demand_dl_kbps[served], 3.0 * plain.demand_dl_kbps[served])
    np.testing.assert_allclose(surged.demand_dl_kbps[~served], plain.demand_dl_kbps[~served])


def test_events_are_deterministic(demo_data: dict[str, Any]) -> None:
    """The same scenario with events and the same seed gives the same world."""
    events = [
        {"kind": "sinr_degradation", "cell": CELL, "at_s": 0.3, "until_s": 1.5, "db": 12.0},
        {"kind": "traffic_surge", "cell": "001-01-4098", "at_s": 0.5, "factor": 5.0},
        {"kind": "traffic_surge", "group": "embb", "at_s": 1.0, "factor": 2.0},
    ]
    sc = _with(demo_data, events=events)
    a, b = World(sc, seed=4), World(sc, seed=4)
    _steps(a, 25)
    _steps(b, 25)
    assert np.array_equal(a.ue_thp_dl_kbps, b.ue_thp_dl_kbps)
    assert np.array_equal(a.serving, b.serving)
    assert a.rlf_count == b.rlf_count
    assert a.events == sc.events and len(a.events) == 3
