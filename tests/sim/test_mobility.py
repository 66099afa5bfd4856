"""Tests of the RAN's own mobility in ric.sim.mobility: A3 handovers, handover failures,
radio link failures with T310 and re-establishment, failure causes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ric.sim import World, parse_scenario

TICK_S = 0.1
A_X, B_X = 0.0, 400.0


def _two_cells(ran: dict[str, Any] | None = None, *, crowd_at_b: int = 0) -> World:
    """Two omni cells 400 m apart on one carrier, no shadowing; UE 1 stands at cell A, and
    ``crowd_at_b`` busy UEs stand still at cell B (they load it, so it interferes fully)."""
    groups: list[dict[str, Any]] = [
        {
            "count": 1,
            "hotspot": {"center_m": [A_X + 20.0, 0.0], "radius_m": 1.0},
            "speed_mps": [0.0, 0.0],
            "dl_kbps": 2000.0,
        }
    ]
    if crowd_at_b:
        groups.append(
            {
                "count": crowd_at_b,
                "hotspot": {"center_m": [B_X, 30.0], "radius_m": 5.0},
                "speed_mps": [0.0, 0.0],
                "dl_kbps": 200_000.0,
            }
        )
    spec: dict[str, Any] = {
        "tick_ms": 100,
        "radio": {"shadowing_std_db": 0.0, "demand_sigma": 0.0},
        "nodes": [
            {"id": 1, "vendor": "acme", "position_m": [A_X, 0.0], "sectors": 1},
            {"id": 2, "vendor": "acme", "position_m": [B_X, 0.0], "sectors": 1},
        ],
        "ue_groups": groups,
        "area": {"x_m": [-100.0, 500.0], "y_m": [-100.0, 100.0]},
    }
    if ran is not None:
        spec["ran"] = ran
    return World(parse_scenario(spec), seed=1)


def _walk_across(world: World, speed_mps: float, seconds: float) -> list[float]:
    """Walk UE 1 from A to B and step the world; its DL throughput per step."""
    world.walk(1, (B_X + 20.0, 0.0), speed_mps)
    thp = []
    for _ in range(round(seconds / TICK_S)):
        world.step(TICK_S)
        thp.append(float(world.ue_thp_dl_kbps[0]))
    return thp


def test_a_ue_walking_across_two_cells_is_handed_over_by_the_ran() -> None:
    """With no xApp, a UE walking from cell A to cell B is handed over once by the RAN's A3
    event, pays the 40 ms interruption time, and has no radio link failure."""
    world = _two_cells()
    assert world.mobility_model == "a3"
    a, b = world.nodes[1].cells[0], world.nodes[2].cells[0]
    assert world.serving[0] == a
    _walk_across(world, 5.0, 90.0)
    assert world.serving[0] == b
    report = world.mobility_report()
    log = report.handovers
    assert log.count("a3") == 1 and log.count("xapp") == 0 and len(log.ue) == 1
    assert (int(log.ue[0]), int(log.source[0]), int(log.target[0])) == (0, a, b)
    assert report.interruption_s[0] == pytest.approx(0.040)
    assert report.rlf == 0 and report.handover_failures == 0
    assert report.outage_s[0] == 0.0
    assert sum(report.failures_by_cause.values()) == 0


def test_the_handover_point_follows_hysteresis_and_cio() -> None:
    """A +6 dB cell individual offset on the A -> B relation hands the walking UE over
    earlier than none, and a larger hysteresis later."""

    def handover_time(ran: dict[str, Any]) -> float:
        world = _two_cells(ran)
        _walk_across(world, 5.0, 90.0)
        log = world.mobility_report().handovers
        assert len(log.time_s) == 1
        return float(log.time_s[0])

    cells = ("001-01-4097", "001-01-8193")
    plain = handover_time({})
    offset = handover_time({"relations": [{"source": cells[0], "target": cells[1], "cio_db": 6.0}]})
    sticky = handover_time({"cells": [{"cell": cells[0], "hysteresis_db": 8.0}]})
    assert offset < plain < sticky


def test_a_too_late_handover_ends_in_rlf_and_an_outage_of_t310_plus_reestablishment() -> None:
    """With a 20 dB hysteresis on cell A the RAN reacts too late: the walking UE falls out of
    sync in A's loaded neighbour's interference, T310 (1 s) expires, and it re-establishes on B
    200 ms later; it carries no traffic for exactly T310 + re-establishment, and the failure
    counts as too late."""
    world = _two_cells({"cells": [{"cell": "001-01-4097", "hysteresis_db": 20.0}]}, crowd_at_b=6)
    b = world.nodes[2].cells[0]
    thp = _walk_across(world, 10.0, 45.0)
    report = world.mobility_report()
    assert report.rlf == 1 and report.handover_failures == 0
    assert report.failures_by_cause["too_late"] == 1
    assert sum(report.failures_by_cause.values()) == 1
    assert len(report.handovers.ue) == 0
    assert world.serving[0] == b
    assert report.outage_s[0] == pytest.approx(1.0 + 0.2)
    silent = [k for k, v in enumerate(thp) if v == 0.0]
    assert len(silent) == 12 and silent == list(range(silent[0], silent[0] + 12))


def test_a_handover_to_a_target_too_weak_at_execution_fails_and_the_ue_reestablishes() -> None:
    """A commanded handover to a cell heard above the minimum RSRP but with an SINR below
    Qout fails after T304 (1 s); the UE re-establishes on its source cell 200 ms later (a
    too-early handover), with no traffic in between."""
    world = _two_cells({"mobility": "none"}, crowd_at_b=6)
    a, b = world.nodes[1].cells[0], world.nodes[2].cells[0]
    world.step(TICK_S)
    assert world.sinr_db[0, b] < world.scenario.radio.rlf_sinr_db
    assert world.rsrp_dbm[0, b] >= world.scenario.radio.min_rsrp_dbm
    assert world.handover(1, world.cell_ids[b]) == a
    assert world.serving[0] == -1
    thp = []
    for _ in range(20):
        world.step(TICK_S)
        thp.append(float(world.ue_thp_dl_kbps[0]))
    report = world.mobility_report()
    assert report.handover_failures == 1 and report.rlf == 1
    assert report.failures_by_cause["too_early"] == 1
    assert world.serving[0] == a
    assert report.outage_s[0] == pytest.approx(1.2)
    assert thp[:12] == [0.0] * 12 and all(v > 0.0 for v in thp[12:])
    assert len(report.handovers.ue) == 0


def test_without_ran_mobility_only_controls_move_ues() -> None:
    """With ``mobility = "none"`` the walking UE is never handed over by the RAN; it ends in
    a radio link failure and re-establishes on B instead."""
    world = _two_cells({"mobility": "none"}, crowd_at_b=6)
    assert world.mobility_model == "none"
    _walk_across(world, 10.0, 45.0)
    report = world.mobility_report()
    assert len(report.handovers.ue) == 0
    assert report.rlf >= 1


def test_controls_to_ues_without_a_usable_link_are_refused() -> None:
    """A handover for a UE that is out of sync, or has no connection, is refused with the
    reason."""
    from ric.sim import SimControlError

    world = _two_cells({"mobility": "none", "t310_ms": 6000}, crowd_at_b=6)
    b = world.cell_ids[world.nodes[2].cells[0]]
    world.walk(1, (B_X - 60.0, 0.0), 100.0)
    for _ in range(35):
        world.step(TICK_S)
    assert world.serving[0] >= 0 and world.rlf_count == 0
    with pytest.raises(SimControlError, match="out of sync"):
        world.handover(1, b)
    for _ in range(100):
        world.step(TICK_S)
        if world.serving[0] < 0:
            break
    assert world.serving[0] == -1 and world.rlf_count == 1
    with pytest.raises(SimControlError, match="no connection"):
        world.handover(1, b)


def test_mobility_is_deterministic_and_vectorised_over_many_ues() -> None:
    """The demo scenario with A3 gives the same handovers for the same seed, and its RAN
    hands UEs over without any control."""
    from ric.sim import load_scenario

    from .conftest import SEEDS

    demo = load_scenario(SEEDS / "demo.toml")
    logs = []
    for _ in range(2):
        world = World(demo, seed=3)
        for _ in range(600):
            world.step(TICK_S)
        logs.append(world.mobility_report())
    a, b = logs
    assert len(a.handovers.ue) > 0
    np.testing.assert_array_equal(a.handovers.ue, b.handovers.ue)
    np.testing.assert_array_equal(a.handovers.target, b.handovers.target)
    assert a.rlf == b.rlf


def _stand_at(world: World, x_m: float) -> None:
    """Walk UE 1 to ``x_m`` and let it stand there (a few seconds of steps)."""
    world.walk(1, (x_m, 0.0), 50.0)
    for _ in range(60):
        world.step(TICK_S)
    world.walk(1, (x_m, 0.0), 0.0)


def test_a_cio_set_on_a_relation_changes_the_a3_decision() -> None:
    """A UE standing where cell B is a little weaker than its cell A stays on A; a +6 dB CIO
    set on the A -> B relation (as the CCC control sets it) makes A3 hand it to B within the
    time-to-trigger, and the relation's CIO reads back."""
    world = _two_cells()
    a, b = world.nodes[1].cells[0], world.nodes[2].cells[0]
    _stand_at(world, 185.0)
    gap = float(world.rsrp_dbm[0, a] - world.rsrp_dbm[0, b])
    assert 0.0 < gap < 4.0, gap
    for _ in range(20):
        world.step(TICK_S)
    assert world.serving[0] == a
    world.set_cio(world.cell_ids[a], world.cell_ids[b], 6)
    assert world.cio(world.cell_ids[a], world.cell_ids[b]) == 6.0
    for _ in range(10):
        world.step(TICK_S)
    assert world.serving[0] == b
    assert world.mobility_report().handovers.count("a3") == 1


def test_event_a5_hands_over_a_weak_ue_that_a3_keeps() -> None:
    """With a 15 dB A3 offset A3 never fires; event A5 (serving below -90 dBm, neighbour
    above -95 dBm) hands the UE walking away from A over to B, counted as an A5 handover."""
    ran = {"a3_offset_db": 15.0, "a5_threshold1_dbm": -90.0, "a5_threshold2_dbm": -95.0}
    world = _two_cells(ran)
    b = world.nodes[2].cells[0]
    _walk_across(world, 5.0, 90.0)
    log = world.mobility_report().handovers
    assert world.serving[0] == b
    assert (log.count("a5"), log.count("a3")) == (1, 0)
    none = _two_cells({"a3_offset_db": 15.0})
    _walk_across(none, 5.0, 90.0)
    assert none.mobility_report().handovers.count("a5") == 0
