"""Ground-truth KPIs of one simulated run, read from the world every tick.

:class:`TickRecorder` is the ``on_tick`` observer :func:`ric.trace.harness.run_scenario`
calls after each world step; :meth:`TickRecorder.finish` turns what it saw, together with the
run's controls, into a :class:`RunMetrics`. The small functions below it (:func:`percentile`,
:func:`count_ping_pongs`, :func:`sla_violations`) are the definitions, kept apart so each can
be checked on a hand-made case.

Definitions (one sample = one UE or one cell in one tick of the world):

- UE throughput: the downlink throughput of each attached UE with traffic demand, per tick;
  mean and 5th percentile over all such UE-ticks of the run (also per slice);
- PRB utilisation: each active cell's downlink PRB use over its PRBs, per tick; the peak and
  95th percentile over active cell-ticks, and the time-mean of the busiest cell;
- SLA violations: UE-ticks of a slice with an ``sla`` that break it (see
  :class:`~ric.sim.scenario.SlaSpec`), in UE-seconds; slices without an SLA have none;
- handovers: every successful handover the world executed, by cause (``a3``: the RAN's own
  event A3; ``xapp``: an acknowledged Handover control; ``cell_off``: a cell switched off
  moved its UEs); a ping-pong is a handover of a UE back to the cell its previous handover
  (of any cause) took it from (A -> B, then B -> A) within :data:`PING_PONG_WINDOW_S`;
- radio link failures: T310 expiries and failed handovers (``World.rlf_count``); failures
  by cause (too late, too early, to the wrong cell), as :mod:`ric.sim.mobility` classifies
  them; outage: UE-seconds out of sync or re-establishing; interruption: handover
  interruption per UE, mean over the UEs, ms;
- energy: each cell's power from its node's ``power`` model (active: idle plus load share
  of full-load power; waking up: idle power; off: sleep power), integrated over the run, kWh;
- active cell-hours: active cells x tick length, summed, in hours;
- conflicts: controls the arbiter found in conflict (``ControlOutcome.conflict`` set: refused
  ones, outcome ``conflict``, and ones that won under the ``priority`` policy).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from ric.actions import OutcomeKind
from ric.sim.mobility import MobilityReport
from ric.sim.scenario import Scenario, SlaSpec, cell_names
from ric.sim.world import World
from ric.trace.harness import ControlRecord

__all__ = [
    "PING_PONG_WINDOW_S",
    "SLA_THP_TOLERANCE",
    "RunMetrics",
    "SliceMetrics",
    "TickRecorder",
    "count_ping_pongs",
    "percentile",
    "segment_percentiles",
    "sla_violations",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

PING_PONG_WINDOW_S: Final = 10.0
"""A handover back to the previous cell within this many seconds is a ping-pong."""
SLA_THP_TOLERANCE: Final = 0.01
"""A throughput short of its target by at most this fraction is not a violation."""


def percentile(values: Sequence[float] | FloatArray, q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values``, linearly interpolated; NaN if empty."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return math.nan
    return float(np.percentile(arr, q))


def segment_percentiles(
    values: FloatArray, segments: npt.NDArray[np.int64], n_segments: int, q: float
) -> FloatArray:
    """The ``q``-th percentile of ``values`` within each segment ``0..n_segments-1``
    (``segments[i]`` is the segment of ``values[i]``), as :func:`percentile` would give it
    segment by segment, in one sort; NaN for an empty segment."""
    counts = np.bincount(segments, minlength=n_segments)
    out = np.full(n_segments, np.nan)
    if values.size == 0:
        return out
    ordered = values[np.lexsort((values, segments))]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    has = counts > 0
    pos = (counts[has] - 1) * (q / 100.0)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, counts[has] - 1)
    low = ordered[starts[has] + lo]
    high = ordered[starts[has] + hi]
    out[has] = low + (pos - lo) * (high - low)
    return out


def count_ping_pongs(
    handovers: Sequence[tuple[float, str, str, str]], window_s: float = PING_PONG_WINDOW_S
) -> int:
    """How many of ``handovers`` ``(time_s, ue, source, target)`` are ping-pongs.

    A handover of a UE from B to A is one when the UE's previous handover (in time order) took
    it from A to B at most ``window_s`` seconds earlier.
    """
    last: dict[str, tuple[float, str, str]] = {}
    count = 0
    for t, ue, source, target in sorted(handovers, key=lambda h: h[0]):
        prev = last.get(ue)
        if prev is not None:
            t0, src0, dst0 = prev
            if src0 == target and dst0 == source and t - t0 <= window_s:
                count += 1
        last[ue] = (t, source, target)
    return count


def sla_violations(
    sla: SlaSpec,
    *,
    attached: BoolArray,
    delay_ms: FloatArray,
    thp_kbps: FloatArray,
    demand_kbps: FloatArray,
) -> BoolArray:
    """Which UE samples (all with demand) break ``sla``: a UE without a cell always does; an
    attached one when its delay is above ``max_delay_ms`` or its throughput is below
    ``min(min_thp_kbps, demand)`` by more than :data:`SLA_THP_TOLERANCE`."""
    bad = np.zeros(attached.shape, dtype=np.bool_)
    if sla.max_delay_ms is not None:
        bad |= delay_ms > sla.max_delay_ms
    if sla.min_thp_kbps is not None:
        target = np.minimum(sla.min_thp_kbps, demand_kbps)
        bad |= thp_kbps < (1.0 - SLA_THP_TOLERANCE) * target
    out: BoolArray = bad | ~attached
    return out


@dataclass(frozen=True)
class SliceMetrics:
    """One slice's figures over a run."""

    ue_thp_dl_mean_kbps: float
    ue_thp_dl_p5_kbps: float
    sla_violation_ue_s: float
    """UE-seconds breaking the slice's SLA (0 without an SLA)."""
    sla_violation_pct: float
    """Share of the slice's UE-ticks with demand that break its SLA, percent."""
    has_sla: bool


@dataclass(frozen=True)
class RunMetrics:
    """The figures of one run (see the module docstring for the definitions)."""

    duration_s: float
    ue_thp_dl_mean_kbps: float
    ue_thp_dl_p5_kbps: float
    prb_util_peak_pct: float
    prb_util_p95_pct: float
    prb_util_busiest_cell_mean_pct: float
    sla_violation_ue_s: float
    unattached_ue_s: float
    mobility: str
    """The scenario's RAN mobility model (``a3`` or ``none``)."""
    handovers: int
    """Successful handovers of every cause."""
    handovers_a3: int
    handovers_xapp: int
    handovers_cell_off: int
    ping_pongs: int
    rlf: int
    handover_failures: int
    too_late: int
    too_early: int
    wrong_cell: int
    outage_ue_s: float
    interruption_ms_per_ue: float
    active_cell_hours: float
    energy_kwh: float
    controls: int
    conflicts: int
    conflicts_refused: int
    controls_by_outcome: dict[str, int]
    controls_by_xapp: dict[str, dict[str, int]]
    slices: dict[str, SliceMetrics]
    series: dict[str, FloatArray] = field(repr=False)
    """Per tick: ``time_s``, ``ue_thp_dl_mean_kbps``, ``ue_thp_dl_p5_kbps``,
    ``prb_util_max_pct``, ``active_cells``."""

    def scalars(self) -> dict[str, float]:
        """The run's scalar figures by key, per-slice ones as ``slice.<id>.<figure>``."""
        out: dict[str, float] = {
            "ue_thp_dl_mean_kbps": self.ue_thp_dl_mean_kbps,
            "ue_thp_dl_p5_kbps": self.ue_thp_dl_p5_kbps,
            "prb_util_peak_pct": self.prb_util_peak_pct,
            "prb_util_p95_pct": self.prb_util_p95_pct,
            "prb_util_busiest_cell_mean_pct": self.prb_util_busiest_cell_mean_pct,
            "sla_violation_ue_s": self.sla_violation_ue_s,
            "unattached_ue_s": self.unattached_ue_s,
            "handovers": float(self.handovers),
            "handovers_a3": float(self.handovers_a3),
            "handovers_xapp": float(self.handovers_xapp),
            "handovers_cell_off": float(self.handovers_cell_off),
            "ping_pongs": float(self.ping_pongs),
            "rlf": float(self.rlf),
            "handover_failures": float(self.handover_failures),
            "too_late": float(self.too_late),
            "too_early": float(self.too_early),
            "wrong_cell": float(self.wrong_cell),
            "outage_ue_s": self.outage_ue_s,
            "interruption_ms_per_ue": self.interruption_ms_per_ue,
            "active_cell_hours": self.active_cell_hours,
            "energy_kwh": self.energy_kwh,
            "controls": float(self.controls),
            "conflicts": float(self.conflicts),
            "conflicts_refused": float(self.conflicts_refused),
        }
        for sid, sm in self.slices.items():
            out[f"slice.{sid}.ue_thp_dl_mean_kbps"] = sm.ue_thp_dl_mean_kbps
            out[f"slice.{sid}.ue_thp_dl_p5_kbps"] = sm.ue_thp_dl_p5_kbps
            if sm.has_sla:
                out[f"slice.{sid}.sla_violation_ue_s"] = sm.sla_violation_ue_s
                out[f"slice.{sid}.sla_violation_pct"] = sm.sla_violation_pct
        return out


class TickRecorder:
    """The ``on_tick`` observer of one run: samples the world's ground truth every tick.

    Per tick it keeps the UE throughput samples, the active cells' utilisation, the SLA
    verdicts and the UEs whose serving cell changed: arrays in, arrays out, no loop over UEs.
    """

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self._slas = [s.sla for s in scenario.slices]
        n_slices = len(scenario.slices)
        self._thp: list[FloatArray] = []
        self._thp_slice: list[npt.NDArray[np.int64]] = []
        self._util: list[FloatArray] = []
        self._util_sum: FloatArray | None = None
        self._active_ticks: FloatArray | None = None
        self._violations = np.zeros(n_slices)
        self._samples = np.zeros(n_slices)
        self._unattached = 0
        self._active_cell_s = 0.0
        self._last_t = 0.0
        idle_w, load_w, sleep_w = (
            np.array([n.power.idle_w for n in scenario.nodes for _ in range(n.sectors)]),
            np.array([n.power.full_load_w for n in scenario.nodes for _ in range(n.sectors)]),
            np.array([n.power.sleep_w for n in scenario.nodes for _ in range(n.sectors)]),
        )
        self._power_w = (idle_w, load_w, sleep_w)
        self._energy_j = 0.0
        self._series: dict[str, list[float]] = {
            "time_s": [],
            "prb_util_max_pct": [],
            "active_cells": [],
        }
        self.cell_text: tuple[str, ...] = ()
        self.ticks = 0

    def __call__(self, world: World) -> None:
        """Sample the world as the step that just ended left it."""
        t = world.time_s
        dt = t - self._last_t
        self._last_t = t
        self.ticks += 1
        serving = world.serving
        attached = serving >= 0
        demand = world.demand_dl_kbps > 0.0
        thp = world.ue_thp_dl_kbps
        ue_slice = world.ue_slice
        sample = attached & demand
        values = thp[sample]
        self._thp.append(values.copy())
        self._thp_slice.append(ue_slice[sample].copy())
        self._unattached += int((demand & ~attached).sum())

        active = world.active
        load = world.cell_load
        util = load[active] * 100.0
        self._util.append(util.copy())
        if self._util_sum is None or self._active_ticks is None:
            self.cell_text = world.cell_text
            self._util_sum = np.zeros(world.n_cells)
            self._active_ticks = np.zeros(world.n_cells)
        self._util_sum += np.where(active, load * 100.0, 0.0)
        self._active_ticks += active
        n_active = int(active.sum())
        self._active_cell_s += n_active * dt

        for s, sla in enumerate(self._slas):
            if sla is None:
                continue
            mine = demand & (ue_slice == s)
            bad = sla_violations(
                sla,
                attached=attached[mine],
                delay_ms=world.ue_delay_ms[mine],
                thp_kbps=thp[mine],
                demand_kbps=world.demand_dl_kbps[mine],
            )
            self._violations[s] += float(bad.sum()) * dt
            self._samples[s] += float(mine.sum()) * dt

        idle_w, load_w, sleep_w = self._power_w
        # A cell waking up draws power (its idle power: no load yet) but serves no one.
        power = np.where(world.powered, idle_w + load * (load_w - idle_w), sleep_w)
        self._energy_j += float(power.sum()) * dt

        series = self._series
        series["time_s"].append(t)
        series["prb_util_max_pct"].append(float(util.max()) if util.size else 0.0)
        series["active_cells"].append(float(n_active))

    def _cell_names(self) -> tuple[str, ...]:
        return tuple(cell_names(self.scenario.plmn, self.scenario.nodes))

    def finish(self, controls: Sequence[ControlRecord], mobility: MobilityReport) -> RunMetrics:
        """The run's figures, from the ticks seen, its ``controls`` and the world's
        ``mobility`` report (``World.mobility_report()``) at the end."""
        tick_s = self.scenario.tick_ms / 1000.0
        thp = np.concatenate(self._thp) if self._thp else np.zeros(0)
        thp_slice = (
            np.concatenate(self._thp_slice) if self._thp_slice else np.zeros(0, dtype=np.int64)
        )
        util = np.concatenate(self._util) if self._util else np.zeros(0)
        series = {k: np.asarray(v, dtype=np.float64) for k, v in self._series.items()}
        tick = np.repeat(np.arange(self.ticks), [len(v) for v in self._thp]).astype(np.int64)
        per_tick = np.bincount(tick, minlength=self.ticks)
        sums = np.bincount(tick, thp, minlength=self.ticks)
        series["ue_thp_dl_mean_kbps"] = np.full(self.ticks, np.nan)
        np.divide(sums, per_tick, out=series["ue_thp_dl_mean_kbps"], where=per_tick > 0)
        series["ue_thp_dl_p5_kbps"] = segment_percentiles(thp, tick, self.ticks, 5.0)
        busiest = 0.0
        if self._util_sum is not None and self._active_ticks is not None:
            mean = np.zeros_like(self._util_sum)
            np.divide(self._util_sum, self._active_ticks, out=mean, where=self._active_ticks > 0)
            busiest = float(mean.max()) if mean.size else 0.0

        slices: dict[str, SliceMetrics] = {}
        for s, spec in enumerate(self.scenario.slices):
            mine = thp[thp_slice == s]
            samples = self._samples[s]
            slices[spec.id] = SliceMetrics(
                ue_thp_dl_mean_kbps=float(mine.mean()) if mine.size else math.nan,
                ue_thp_dl_p5_kbps=percentile(mine, 5.0),
                sla_violation_ue_s=float(self._violations[s]),
                sla_violation_pct=100.0 * float(self._violations[s]) / samples if samples else 0.0,
                has_sla=spec.sla is not None,
            )

        by_outcome: Counter[str] = Counter()
        by_xapp: dict[str, Counter[str]] = {}
        conflicts = refused = 0
        for record in controls:
            by_outcome[record.kind.value] += 1
            by_xapp.setdefault(record.xapp, Counter())[record.kind.value] += 1
            if record.outcome.conflict is not None or record.kind is OutcomeKind.CONFLICT:
                conflicts += 1
            if record.kind is OutcomeKind.CONFLICT:
                refused += 1
        log = mobility.handovers
        causes = mobility.failures_by_cause
        n_ues = len(mobility.interruption_s)

        return RunMetrics(
            duration_s=self._last_t,
            ue_thp_dl_mean_kbps=float(thp.mean()) if thp.size else math.nan,
            ue_thp_dl_p5_kbps=percentile(thp, 5.0),
            prb_util_peak_pct=float(util.max()) if util.size else 0.0,
            prb_util_p95_pct=percentile(util, 95.0) if util.size else 0.0,
            prb_util_busiest_cell_mean_pct=busiest,
            sla_violation_ue_s=float(self._violations.sum()),
            unattached_ue_s=self._unattached * tick_s,
            mobility=mobility.model,
            handovers=len(log.ue),
            handovers_a3=log.count("a3"),
            handovers_xapp=log.count("xapp"),
            handovers_cell_off=log.count("cell_off"),
            ping_pongs=count_ping_pongs(log.tuples(self.cell_text or self._cell_names())),
            rlf=mobility.rlf,
            handover_failures=mobility.handover_failures,
            too_late=causes["too_late"],
            too_early=causes["too_early"],
            wrong_cell=causes["wrong_cell"],
            outage_ue_s=float(mobility.outage_s.sum()),
            interruption_ms_per_ue=(
                1000.0 * float(mobility.interruption_s.sum()) / n_ues if n_ues else 0.0
            ),
            active_cell_hours=self._active_cell_s / 3600.0,
            energy_kwh=self._energy_j / 3.6e6,
            controls=len(controls),
            conflicts=conflicts,
            conflicts_refused=refused,
            controls_by_outcome=dict(sorted(by_outcome.items())),
            controls_by_xapp={x: dict(sorted(c.items())) for x, c in sorted(by_xapp.items())},
            slices=slices,
            series=series,
        )
