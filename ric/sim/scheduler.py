"""Downlink scheduling inside a slice's PRBs: proportional fair, round robin, or by need.

The world first shares each cell's PRBs between its slices under their RRM policy ratios
(:func:`ric.sim.radio.share_prbs`); a slice gets at most what its UEs need. This module then
shares a slice's PRBs between its UEs, for all (cell, slice) groups at once, vectorised over
UEs (no per-UE Python loop):

- ``"need"``: in proportion to each UE's need (demand / per-PRB rate), so under overload every
  UE of the slice gets the same fraction of its demand (the simulator's scheduler before
  named schedulers existed);
- ``"rr"``: round robin, equal PRBs (equal time) per UE with traffic; a UE that needs less
  than its equal share gets its need and the PRBs it leaves go to the others of the slice
  (water-filling: the max-min fair PRB allocation);
- ``"pf"``: proportional fair. Per TTI a PF scheduler serves the UE with the largest
  ``r_i / T_i`` (instantaneous achievable rate over its exponentially averaged throughput,
  time constant ``tau``). A 100 ms step holds hundreds of TTIs, so the step is approximated
  by the allocation PF converges to, the one that maximises ``sum_i log T_i'`` where
  ``T_i' = (1 - b) T_i + b x_i r_i`` is the average at the end of the step,
  ``b = 1 - exp(-dt / tau)``, ``x_i`` the UE's PRBs (at most its need), ``r_i`` its per-PRB
  rate (PF per TTI is the gradient ascent of that utility: Kushner and Whiting, IEEE Trans.
  Wireless Comm. 3(4), 2004). Its solution is a water-filling: ``x_i = clip(L - a_i, 0,
  need_i)`` with ``a_i = (1 - b) T_i / (b r_i)`` (the UE's past average, in PRBs) and one
  level ``L`` per group.

Without fast fading the rates are constant over a step, so PF has no multi-user diversity
gain: its steady state is equal time share among backlogged UEs, round robin's allocation.
It differs from round robin by its memory: a UE whose average is low (after an outage, a
handover, a quiet spell) is served first until its average catches up. The averages start
at zero and restart at zero when a UE changes cell (the target's scheduler has no history of
it).
"""

from __future__ import annotations

import math
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

__all__ = ["SCHEDULERS", "Scheduler", "SchedulerKind", "water_fill"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

SchedulerKind = Literal["pf", "rr", "need"]
SCHEDULERS: Final[tuple[SchedulerKind, ...]] = ("pf", "rr", "need")


def water_fill(
    group: IntArray, budget: FloatArray, need: FloatArray, floor: FloatArray
) -> FloatArray:
    """Share each group's ``budget`` between its members by water-filling.

    Member ``i`` of group ``group[i]`` gets ``clip(L_g - floor[i], 0, need[i])`` with the
    level ``L_g`` chosen so that the group's members get ``min(budget[g], sum of their
    needs)`` in all. With ``floor`` zero this is equal shares capped at need, the rest going
    to the others. Exact (sorted breakpoints, no iteration); ``need`` and ``budget`` must be
    non-negative and finite.
    """
    n = len(need)
    if n == 0:
        return np.zeros(0)
    n_groups = len(budget)
    # f_g(L) = sum_i clip(L - floor_i, 0, need_i) is piecewise linear in L: its slope rises by
    # one at floor_i and falls by one at floor_i + need_i.
    at = np.concatenate([floor, floor + need])
    step = np.concatenate([np.ones(n), -np.ones(n)])
    grp = np.concatenate([group, group])
    order = np.lexsort((at, grp))
    at, step, grp = at[order], step[order], grp[order]
    # Each group's steps sum to zero, so the running slope restarts at zero at every group's
    # first breakpoint and one cumulative sum serves all groups.
    slope = np.cumsum(step)
    rise = np.zeros(2 * n)
    rise[1:] = slope[:-1] * np.diff(at)
    level_f = np.cumsum(rise)
    first = np.searchsorted(grp, np.arange(n_groups))
    present = first < 2 * n
    first_c = np.minimum(first, 2 * n - 1)
    f = level_f - level_f[first_c][grp]  # f_g at each breakpoint, from 0 at the group's first
    below = f <= budget[grp]
    count = np.bincount(grp[below], minlength=n_groups)
    last = np.minimum(first_c + np.maximum(count - 1, 0), 2 * n - 1)
    gap = budget - f[last]
    level = at[last].copy()
    rising = present & (slope[last] > 0.0)
    level[rising] += gap[rising] / slope[last][rising]
    out: FloatArray = np.clip(level[group] - floor, 0.0, need)
    return out


class Scheduler:
    """Shares slices' PRBs between their UEs under one policy; keeps PF's averages."""

    def __init__(self, kind: SchedulerKind, n_ues: int, time_constant_s: float) -> None:
        if kind not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {kind!r}; known: {', '.join(SCHEDULERS)}")
        if not time_constant_s > 0.0:
            raise ValueError(f"the PF time constant must be positive, got {time_constant_s}")
        self.kind: SchedulerKind = kind
        self.time_constant_s = time_constant_s
        self._avg_kbps = np.zeros(n_ues)
        self._cell = np.full(n_ues, -1, dtype=np.int64)

    @property
    def avg_thp_kbps(self) -> FloatArray:
        """Each UE's exponentially averaged downlink throughput, kbit/s (PF's ``T_i``)."""
        view = self._avg_kbps.view()
        view.flags.writeable = False
        return view

    def _weight(self, dt_s: float) -> float:
        return -math.expm1(-dt_s / self.time_constant_s)

    def share(
        self,
        ues: IntArray,
        group: IntArray,
        group_need: FloatArray,
        group_used: FloatArray,
        need: FloatArray,
        rate_kbps: FloatArray,
        dt_s: float,
    ) -> FloatArray:
        """PRBs of each of ``ues`` (UE indices) in this step.

        ``group`` is each UE's (cell, slice) group, ``group_need`` and ``group_used`` the
        PRBs the group's UEs need in all and the PRBs the slice got (at most its need);
        ``need`` and ``rate_kbps`` each UE's need in PRBs and its rate per PRB. No UE gets
        more than its need; a group's UEs get its ``group_used`` PRBs in all.
        """
        if self.kind == "need":
            frac = np.ones_like(group_need)
            np.divide(group_used, group_need, out=frac, where=group_need > 0.0)
            out: FloatArray = need * np.minimum(frac[group], 1.0)
            return out
        floor = np.zeros(len(ues))
        if self.kind == "pf":
            b = self._weight(dt_s)
            np.divide(
                (1.0 - b) * self._avg_kbps[ues], b * rate_kbps, out=floor, where=rate_kbps > 0.0
            )
        return water_fill(group, group_used, need, floor)

    def follow(self, serving: IntArray) -> None:
        """Take the serving cell of every UE (-1: none) before a step's :meth:`share`; a UE
        that changed cell starts its average again from zero."""
        moved = serving != self._cell
        self._avg_kbps[moved] = 0.0
        self._cell = serving.copy()

    def update(self, thp_kbps: FloatArray, dt_s: float) -> None:
        """Fold one step's throughput of every UE (0 when not served) into the averages."""
        b = self._weight(dt_s)
        self._avg_kbps = (1.0 - b) * self._avg_kbps + b * thp_kbps
