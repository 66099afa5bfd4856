"""Tests of ric.eval.metrics and ric.eval.report on small cases checked by hand."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pytest

from ric.actions import ControlOutcome, Handover, OutcomeKind, SlicePrbQuota
from ric.eval import TickRecorder, compare, count_ping_pongs, percentile, sla_violations
from ric.eval.metrics import segment_percentiles
from ric.sim import World, parse_scenario
from ric.sim.mobility import FAILURE_CAUSES, HO_CAUSES, HandoverLog, MobilityReport
from ric.sim.scenario import Scenario, SlaSpec
from ric.trace.harness import ControlRecord, run_scenario

A, B, C = "001-01-4097", "001-01-4098", "001-01-8193"


def test_percentile_interpolates_linearly() -> None:
    """The 5th percentile of 1..5 is 1.2 (linear interpolation), the 50th is 3; none is NaN."""
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 5.0) == pytest.approx(1.2)
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50.0) == 3.0
    assert math.isnan(percentile([], 5.0))


def test_segment_percentiles_match_percentile_per_segment() -> None:
    """Percentiles of many segments in one sort equal percentile() segment by segment, with NaN
    for an empty one."""
    rng = np.random.default_rng(0)
    segments = rng.integers(0, 6, 200)
    segments[segments == 4] = 5  # segment 4 stays empty
    values = rng.random(200) * 1000.0
    got = segment_percentiles(values, segments.astype(np.int64), 7, 5.0)
    for k in range(7):
        mine = values[segments == k]
        assert np.isnan(got[k]) if mine.size == 0 else got[k] == pytest.approx(percentile(mine, 5))


def test_ping_pong_is_a_handover_back_within_the_window() -> None:
    """A->B then B->A within 10 s is one ping-pong; later, onward, or by another UE it is not."""
    handovers = [
        (10.0, "1", A, B),
        (15.0, "1", B, A),  # back within 5 s: ping-pong
        (30.0, "1", A, B),
        (41.0, "1", B, A),  # back after 11 s: not
        (50.0, "2", A, B),
        (52.0, "2", B, C),  # onward, not back
        (53.0, "3", B, A),  # UE 3 never went A->B
        (54.0, "2", C, B),  # back to C's source within 2 s: ping-pong
    ]
    assert count_ping_pongs(handovers) == 2
    # with 20 s, 15 -> 30 s (B->A, then A->B) and 30 -> 41 s count too
    assert count_ping_pongs(handovers, window_s=20.0) == 4
    assert count_ping_pongs(list(reversed(handovers))) == 2  # order of the list does not matter


def test_sla_violations_by_delay_throughput_and_no_cell() -> None:
    """A sample breaks the SLA when delayed too long, short of min(target, demand) by more than
    1 %, or without a cell."""
    sla = SlaSpec(max_delay_ms=5.0, min_thp_kbps=1000.0)
    bad = sla_violations(
        sla,
        attached=np.array([True, True, True, True, True, False]),
        delay_ms=np.array([4.0, 6.0, 1.0, 1.0, 1.0, 0.0]),
        thp_kbps=np.array([2000.0, 2000.0, 900.0, 500.0, 995.0, 0.0]),
        demand_kbps=np.array([2000.0, 2000.0, 2000.0, 500.0, 2000.0, 100.0]),
    )
    assert bad.tolist() == [False, True, True, False, False, True]


def test_compare_paired_noise_test() -> None:
    """A constant paired difference is beyond noise, a small mixed one is not, one seed cannot
    tell."""
    same_shift = compare([1.0, 2.0, 3.0], [2.0, 3.0, 4.0])
    assert same_shift.diff_mean == 1.0 and same_shift.diff_stderr == 0.0
    assert same_shift.beyond_noise is True
    mixed = compare([1.0, 2.0, 3.0], [1.1, 1.9, 3.2])
    # differences 0.1, -0.1, 0.2: mean 0.0667, sd 0.1528, stderr 0.0882, t(2) = 4.303
    assert mixed.diff_mean == pytest.approx(0.2 / 3)
    assert mixed.diff_stderr == pytest.approx(0.15275 / math.sqrt(3), rel=1e-3)
    assert mixed.ci95 == pytest.approx(4.303 * mixed.diff_stderr)
    assert mixed.beyond_noise is False
    assert compare([1.0], [5.0]).beyond_noise is None
    assert mixed.baseline.mean == 2.0 and mixed.baseline.min == 1.0 and mixed.baseline.max == 3.0


@dataclass
class FakeWorld:
    """The World attributes a TickRecorder reads, set by hand: 3 cells, 4 UEs."""

    time_s: float = 0.0
    n_cells: int = 3
    cell_text: tuple[str, ...] = (A, B, C)
    serving: Any = field(default_factory=lambda: np.array([0, 0, 1, -1]))
    demand_dl_kbps: Any = field(default_factory=lambda: np.array([1000.0, 1000.0, 1000.0, 10.0]))
    ue_thp_dl_kbps: Any = field(default_factory=lambda: np.array([1000.0, 500.0, 1000.0, 0.0]))
    ue_delay_ms: Any = field(default_factory=lambda: np.array([1.0, 1.0, 9.0, 0.0]))
    ue_slice: Any = field(default_factory=lambda: np.array([0, 0, 1, 1]))
    active: Any = field(default_factory=lambda: np.array([True, True, False]))
    powered: Any = field(default_factory=lambda: np.array([True, True, False]))
    cell_load: Any = field(default_factory=lambda: np.array([0.5, 0.25, 0.0]))


def _scenario() -> Scenario:
    return parse_scenario(
        {
            "tick_ms": 100,
            "nodes": [
                {"id": 1, "vendor": "acme", "position_m": [0, 0], "sectors": 2},
                {"id": 2, "vendor": "acme", "position_m": [500, 0], "sectors": 1},
            ],
            "slices": [
                {"id": "1-000001", "sla": {"min_thp_kbps": 800.0}},
                {"id": "2-000002", "sla": {"max_delay_ms": 5.0}},
            ],
        }
    )


def _handover(t: float, ue: str, src: str, dst: str) -> ControlRecord:
    action = Handover(ue=ue, cell_id=src, target_cell=dst)
    return ControlRecord(t, "mlb", ControlOutcome(OutcomeKind.ACKNOWLEDGED, action))


def _mobility() -> MobilityReport:
    """UE index 1 handed A -> B by an xApp at 0.2 s and back by the RAN at 0.25 s (a
    ping-pong); UE 0 from A to C when A was switched off; 7 failures."""
    log = HandoverLog(
        time_s=np.array([0.2, 0.25, 0.3]),
        ue=np.array([1, 1, 0]),
        source=np.array([0, 1, 0]),
        target=np.array([1, 0, 2]),
        cause=np.array(
            [HO_CAUSES.index("xapp"), HO_CAUSES.index("a3"), HO_CAUSES.index("cell_off")]
        ),
    )
    return MobilityReport(
        model="a3",
        handovers=log,
        rlf=7,
        handover_failures=2,
        failures_by_cause={c: k for k, c in enumerate(FAILURE_CAUSES)},
        outage_s=np.array([1.2, 0.0, 2.4, 0.0]),
        interruption_s=np.array([0.04, 0.08, 0.0, 0.0]),
    )


def test_tick_recorder_figures_by_hand() -> None:
    """Throughput, utilisation, SLA, cell-hours, energy, handovers by cause, ping-pongs over
    all handovers, failures and controls of three hand-made ticks come out as computed by
    hand."""
    world = FakeWorld()
    rec = TickRecorder(_scenario())
    for k in range(1, 4):
        world.time_s = k * 0.1
        if k == 3:  # UE 2 (index 1) is now on cell B, as the handover at 0.2 s said
            world.serving = np.array([0, 1, 1, -1])
            world.cell_load = np.array([1.0, 0.75, 0.0])
        rec(cast(World, world))
    quota = SlicePrbQuota(cell_id=A, slice="1-000001", min_pct=0, max_pct=50, dedicated_pct=0)
    controls = [
        _handover(0.2, "2", A, B),  # counted from the world's log, not from the controls
        ControlRecord(0.25, "es", ControlOutcome(OutcomeKind.CONFLICT, quota)),
        ControlRecord(0.25, "mlb", ControlOutcome(OutcomeKind.FAILED, quota)),
    ]
    m = rec.finish(controls, _mobility())
    # UE-ticks of attached UEs with demand: [1000, 500, 1000] three times
    assert m.ue_thp_dl_mean_kbps == pytest.approx(2500.0 / 3)
    assert m.ue_thp_dl_p5_kbps == pytest.approx(percentile([500.0] * 3 + [1000.0] * 6, 5.0))
    # active cell-ticks: 50, 25 (twice), 100, 75 (once)
    assert m.prb_util_peak_pct == 100.0
    assert m.prb_util_p95_pct == pytest.approx(percentile([50, 25, 50, 25, 100, 75], 95.0))
    assert m.prb_util_busiest_cell_mean_pct == pytest.approx(200.0 / 3)
    # 2 active cells x 3 ticks x 0.1 s
    assert m.active_cell_hours == pytest.approx(0.6 / 3600)
    # slice 0: UE 2 at 500 < 800 kbit/s for 3 ticks; slice 1: UE 3 delay 9 > 5 ms and UE 4
    # without a cell, 3 ticks each
    assert m.slices["1-000001"].sla_violation_ue_s == pytest.approx(0.3)
    assert m.slices["1-000001"].sla_violation_pct == pytest.approx(50.0)
    assert m.slices["2-000002"].sla_violation_ue_s == pytest.approx(0.6)
    assert m.sla_violation_ue_s == pytest.approx(0.9)
    assert m.unattached_ue_s == pytest.approx(0.3)
    assert m.mobility == "a3"
    assert (m.handovers, m.handovers_a3, m.handovers_xapp, m.handovers_cell_off) == (3, 1, 1, 1)
    assert m.ping_pongs == 1 and m.rlf == 7 and m.handover_failures == 2
    assert (m.too_late, m.too_early, m.wrong_cell) == (0, 1, 2)
    assert m.outage_ue_s == pytest.approx(3.6)
    assert m.interruption_ms_per_ue == pytest.approx(30.0)
    # EARTH defaults: active 260 W + load x 188 W, off 150 W; 811 W twice, then 999 W
    assert m.energy_kwh == pytest.approx(0.1 * (811.0 * 2 + 999.0) / 3.6e6)
    assert m.controls == 3 and m.conflicts == 1 and m.conflicts_refused == 1
    assert m.controls_by_outcome == {"acknowledged": 1, "conflict": 1, "failed": 1}
    assert m.controls_by_xapp == {"es": {"conflict": 1}, "mlb": {"acknowledged": 1, "failed": 1}}
    assert m.series["active_cells"].tolist() == [2.0, 2.0, 2.0]
    assert m.series["prb_util_max_pct"].tolist() == [50.0, 50.0, 100.0]
    assert m.series["ue_thp_dl_mean_kbps"].tolist() == pytest.approx([2500.0 / 3] * 3)
    assert m.series["ue_thp_dl_p5_kbps"].tolist() == pytest.approx([550.0] * 3)


def test_a_cell_waking_up_draws_idle_power_but_is_not_active() -> None:
    """A cell waking up (powered, not transmitting) counts its idle power, 260 W, instead of
    its sleep power, 150 W, and no active cell-time."""
    asleep, waking = FakeWorld(), FakeWorld(powered=np.array([True, True, True]))
    figures = []
    for world in (asleep, waking):
        rec = TickRecorder(_scenario())
        world.time_s = 0.1
        rec(cast(World, world))
        figures.append(rec.finish([], _mobility()))
    assert figures[1].energy_kwh - figures[0].energy_kwh == pytest.approx(0.1 * 110.0 / 3.6e6)
    assert figures[1].active_cell_hours == figures[0].active_cell_hours


async def test_run_scenario_calls_on_tick_after_every_step() -> None:
    """run_scenario calls the observer once per world step, and a recorder fed by it measures
    the active cell-hours of the run exactly."""
    seen: list[float] = []
    rec = TickRecorder(_small())

    def observe(world: World) -> None:
        seen.append(world.time_s)
        rec(world)

    result = await run_scenario(_small(), [], duration_s=2.0, seed=1, on_tick=observe)
    assert seen == pytest.approx([0.1 * k for k in range(1, 21)])
    assert result.world is not None
    m = rec.finish(result.controls, result.world.mobility_report())
    assert m.active_cell_hours == pytest.approx(4 * 2.0 / 3600)
    assert m.controls == 0 and m.handovers == 0


def _small() -> Scenario:
    from ric.sim import load_scenario

    from ..sim.conftest import SEEDS

    return load_scenario(SEEDS / "small.toml")


def test_the_report_names_the_ran_mobility_model() -> None:
    """The report's mobility line gives A3 with its settings by default, and says when a
    scenario switched RAN mobility off."""
    from ric.eval.report import ran_model

    a3 = _scenario()
    assert ran_model(a3).startswith("a3 (hysteresis 3 dB, time-to-trigger 320 ms, offset 0 dB")
    assert "T310 1000 ms, re-establishment 200 ms, handover interruption 40 ms" in ran_model(a3)
    off = a3.model_copy(update={"ran": a3.ran.model_copy(update={"mobility": "none"})})
    assert ran_model(off).startswith("none (only handover controls move UEs)")


def test_the_report_names_the_scheduler_and_traffic_models() -> None:
    """The report's scheduler line gives PF with its time constant by default and counts the
    UEs of each traffic model; a scenario naming round robin says so."""
    from ric.eval.report import scheduler_model

    sc = _small()
    line = scheduler_model(sc)
    assert line.startswith("pf (proportional fair, time constant 1000 ms) inside each slice")
    assert line.endswith(f"traffic: lognormal {sc.ue_count} UEs")
    groups = (
        sc.ue_groups[0].model_copy(update={"traffic": "cbr"}),
        sc.ue_groups[0].model_copy(update={"traffic": "full_buffer", "dl_kbps": None}),
    )
    rr = sc.model_copy(
        update={"scheduler": sc.scheduler.model_copy(update={"kind": "rr"}), "ue_groups": groups}
    )
    n = sc.ue_groups[0].count
    assert scheduler_model(rr) == (
        f"rr (round robin) inside each slice's PRBs; traffic: cbr {n} UEs, full_buffer {n} UEs"
    )
