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
- handovers: acknowledged Handover controls; a ping-pong is a handover of a UE back to the
  cell its previous handover took it from (A -> B, then B -> A) within
  :data:`PING_PONG_WINDOW_S`;
- radio link failures: the world's re-establishments (``World.rlf_count``);
- active cell-hours: active cells x tick length, summed, in hours;
- conflicts: controls the arbiter found in conflict (``ControlOutcome.conflict`` set: refused
  ones, outcome ``conflict``, and ones that won under the ``priority`` policy).
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from ric.actions import Handover, OutcomeKind
from ric.sim.scenario import Scenario, SlaSpec
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
_TIME_EPS_S: Final = 1e-6


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
    handovers: int
    ping_pongs: int
    rlf: int
    active_cell_hours: float
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
            "ping_pongs": float(self.ping_pongs),
            "rlf": float(self.rlf),
            "active_cell_hours": self.active_cell_hours,
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
        self._prev_serving: npt.NDArray[np.int64] | None = None
        self._first_serving: npt.NDArray[np.int64] | None = None
        self._first_t = 0.0
        self._history: dict[int, list[tuple[float, int]]] = {}
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

        if self._prev_serving is None:
            self._first_t = t
            self._first_serving = serving.copy()
        else:  # only the UEs that changed cell: a few per tick
            for ue in np.flatnonzero(serving != self._prev_serving).tolist():
                self._history.setdefault(ue, []).append((t, int(serving[ue])))
        self._prev_serving = serving.copy()

        series = self._series
        series["time_s"].append(t)
        series["prb_util_max_pct"].append(float(util.max()) if util.size else 0.0)
        series["active_cells"].append(float(n_active))

    def serving_before(self, ue_index: int, t_s: float, target: str) -> str | None:
        """The cell serving UE ``ue_index`` at the last tick at or before ``t_s`` (the one
        before that, if it is already ``target``); None if unknown or not attached."""
        if self._first_serving is None or not 0 <= ue_index < len(self._first_serving):
            return None
        first = (self._first_t, int(self._first_serving[ue_index]))
        history = [first, *self._history.get(ue_index, [])]
        times = [h[0] for h in history]
        k = bisect.bisect_right(times, t_s + _TIME_EPS_S) - 1
        if k < 0:
            return None
        cell = history[k][1]
        if cell >= 0 and self.cell_text[cell] == target and k > 0:
            cell = history[k - 1][1]
        return self.cell_text[cell] if cell >= 0 else None

    def finish(self, controls: Sequence[ControlRecord], rlf: int) -> RunMetrics:
        """The run's figures, from the ticks seen, its ``controls`` and its RLF count."""
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

        handovers: list[tuple[float, str, str, str]] = []
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
            action = record.action
            if isinstance(action, Handover) and record.kind is OutcomeKind.ACKNOWLEDGED:
                source = None
                if action.ue.isdigit():  # the simulator's RAN UE ids: index + 1
                    ue_index = int(action.ue) - 1
                    source = self.serving_before(ue_index, record.time_s, action.target_cell)
                handovers.append(
                    (record.time_s, action.ue, source or action.serving_cell, action.target_cell)
                )

        return RunMetrics(
            duration_s=self._last_t,
            ue_thp_dl_mean_kbps=float(thp.mean()) if thp.size else math.nan,
            ue_thp_dl_p5_kbps=percentile(thp, 5.0),
            prb_util_peak_pct=float(util.max()) if util.size else 0.0,
            prb_util_p95_pct=percentile(util, 95.0) if util.size else 0.0,
            prb_util_busiest_cell_mean_pct=busiest,
            sla_violation_ue_s=float(self._violations.sum()),
            unattached_ue_s=self._unattached * tick_s,
            handovers=len(handovers),
            ping_pongs=count_ping_pongs(handovers),
            rlf=rlf,
            active_cell_hours=self._active_cell_s / 3600.0,
            controls=len(controls),
            conflicts=conflicts,
            conflicts_refused=refused,
            controls_by_outcome=dict(sorted(by_outcome.items())),
            controls_by_xapp={x: dict(sorted(c.items())) for x, c in sorted(by_xapp.items())},
            slices=slices,
            series=series,
        )
