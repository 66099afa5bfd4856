"""Traffic models: each UE's downlink and uplink demand, step by step, per UE group.

A scenario's ``ue_groups[].traffic`` names the group's model; all are vectorised over UEs:

- ``"lognormal"`` (the default): the group's mean rate times a log-normal factor that follows
  an AR(1) process in log space (``radio.demand_sigma``, ``radio.demand_tau_s``), in both
  directions;
- ``"cbr"``: constant bit rate, the group's ``dl_kbps`` / ``ul_kbps`` every step;
- ``"poisson"``: downlink bursts (files) arriving as a Poisson process of
  ``arrival_rate_hz`` per UE, each of an exponentially distributed size of mean
  ``burst_kbit``, queue in the UE's buffer (at most ``max_buffer_kbit``; what does not fit is
  dropped); the demand of a step is what the buffer holds, as a rate over the step, and the
  buffer drains by what the UE is served. The long-run mean offered load is
  ``arrival_rate_hz x burst_kbit``. The uplink is constant at ``ul_kbps``;
- ``"full_buffer"``: always more to send than any cell can serve, in both directions: the
  demand is infinite and the scheduler's need for the UE is all its cell's PRBs.

A traffic surge event multiplies a lognormal or CBR UE's demand, a Poisson UE's arrival rate
and a CBR or Poisson UE's uplink rate; a full-buffer UE has nothing to add.

The log-normal factors draw from the world's random generator, as before named traffic
models existed, and draw for every UE whatever its model, so a scenario's movement and
shadowing are the same whichever model its groups use; the Poisson arrivals draw from a
generator of their own, derived from the world's seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from ric.sim.scenario import RadioSpec, UeGroupSpec

__all__ = ["DEFAULT_MAX_BUFFER_KBIT", "TRAFFIC_MODELS", "Traffic", "TrafficModel"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

TrafficModel = Literal["lognormal", "cbr", "poisson", "full_buffer"]
TRAFFIC_MODELS: Final[tuple[TrafficModel, ...]] = ("lognormal", "cbr", "poisson", "full_buffer")
DEFAULT_MAX_BUFFER_KBIT: Final = 80_000.0
"""A Poisson UE's buffer limit unless its group sets one: 10 MB."""
_POISSON_STREAM: Final = 0x5EED_7A1F
"""Mixed with the world's seed for the Poisson generator, so its draws are their own."""


class Traffic:
    """The demand of every UE under its group's traffic model.

    ``dl_base_kbps`` and ``ul_base_kbps`` are each UE's mean rates (the group's, else its
    slice's); ``rng`` is the world's generator (the log-normal factors draw from it, in the
    order they did before named traffic models existed); ``seed`` seeds the Poisson arrivals.
    """

    def __init__(
        self,
        groups: Sequence[UeGroupSpec],
        ue_group: IntArray,
        dl_base_kbps: FloatArray,
        ul_base_kbps: FloatArray,
        radio: RadioSpec,
        rng: np.random.Generator,
        seed: int,
    ) -> None:
        n = len(ue_group)
        models = np.array([TRAFFIC_MODELS.index(g.traffic) for g in groups] or [0])
        model = models[ue_group] if n else np.zeros(0, dtype=np.int64)
        self._lognormal = model == TRAFFIC_MODELS.index("lognormal")
        self.full_buffer: BoolArray = model == TRAFFIC_MODELS.index("full_buffer")
        """Which UEs always have more to send than their cell can serve."""
        self._poisson = np.flatnonzero(model == TRAFFIC_MODELS.index("poisson")).astype(np.int64)
        rate = np.array([g.arrival_rate_hz or 0.0 for g in groups] or [0.0])
        size = np.array([g.burst_kbit or 0.0 for g in groups] or [0.0])
        cap = np.array([g.max_buffer_kbit or DEFAULT_MAX_BUFFER_KBIT for g in groups] or [0.0])
        p_group = ue_group[self._poisson]
        self._arrival_hz = rate[p_group]
        self._burst_kbit = size[p_group]
        self._max_buffer_kbit = cap[p_group]
        self._buffer_kbit = np.zeros(len(self._poisson))
        self.dropped_kbit = 0.0
        """Downlink bits the Poisson UEs' full buffers turned away so far, kbit."""
        self._dl_base = dl_base_kbps
        self._ul_base = ul_base_kbps
        self._sigma = radio.demand_sigma
        self._tau_s = radio.demand_tau_s
        self._rng = rng
        self._poisson_rng = np.random.default_rng([seed, _POISSON_STREAM])
        self._z = rng.standard_normal(n)
        self.dl_kbps: FloatArray = np.zeros(n)
        """Downlink demand of each UE in the last step, kbit/s (inf: full buffer)."""
        self.ul_kbps: FloatArray = np.zeros(n)
        """Uplink demand of each UE in the last step, kbit/s (inf: full buffer)."""
        self.update(0.0, None)

    @property
    def buffer_kbit(self) -> FloatArray:
        """Downlink buffer of each UE, kbit (0 but for Poisson UEs)."""
        out = np.zeros(len(self.dl_kbps))
        out[self._poisson] = self._buffer_kbit
        return out

    def update(self, dt_s: float, surge: FloatArray | None) -> None:
        """Advance the models by ``dt_s`` seconds and set this step's demand; ``surge`` is
        each UE's traffic-surge factor (None: no surge)."""
        rho = math.exp(-dt_s / self._tau_s)
        self._z = rho * self._z + math.sqrt(1.0 - rho * rho) * self._rng.standard_normal(
            len(self._z)
        )
        sigma = self._sigma
        factor = np.where(self._lognormal, np.exp(sigma * self._z - 0.5 * sigma * sigma), 1.0)
        dl = self._dl_base * factor
        ul = self._ul_base * factor
        if surge is not None:
            dl = dl * surge
            ul = ul * surge
        p = self._poisson
        if len(p):
            scale = 1.0 if surge is None else surge[p]
            count = self._poisson_rng.poisson(self._arrival_hz * scale * dt_s)
            arrived = self._poisson_rng.gamma(count.astype(np.float64), self._burst_kbit)
            total = self._buffer_kbit + arrived
            self._buffer_kbit = np.minimum(total, self._max_buffer_kbit)
            self.dropped_kbit += float((total - self._buffer_kbit).sum())
            dl[p] = self._buffer_kbit / dt_s if dt_s > 0.0 else 0.0
        dl[self.full_buffer] = np.inf
        ul[self.full_buffer] = np.inf
        self.dl_kbps = dl
        self.ul_kbps = ul

    def served(self, thp_dl_kbps: FloatArray, dt_s: float) -> None:
        """Drain the Poisson UEs' buffers by what each UE was served in the last step."""
        p = self._poisson
        if len(p):
            self._buffer_kbit = np.maximum(self._buffer_kbit - thp_dl_kbps[p] * dt_s, 0.0)
