"""The RAN's own mobility and radio link failure handling, vectorised over UEs.

:class:`Mobility` holds every UE's connection state as numpy arrays and advances it once per
world step (:meth:`Mobility.step`), after the radio state of the step is known and before
scheduling; what it returns is the share of the step each UE could carry traffic. Nothing
loops over UEs in Python: a step is a handful of array operations over UEs (and UEs x cells
for the A3 timers); only the few UEs that hand over or fail in a step are gathered.

The model, with TS 38.331 / TS 38.300 names (the simulator's docs list the constants):

- **Radio link monitoring**: a connected UE whose serving SINR is below Qout
  (``radio.rlf_sinr_db``) is out of sync and carries no traffic; T310 runs and stops when the
  SINR is back at Qin (Qout + ``ran.qin_offset_db``); when T310 expires the UE has a radio
  link failure (RLF).
- **Event A3**: with ``ran.mobility = "a3"`` each UE keeps a layer-3 filtered RSRP of every
  cell; a neighbour (a cell of the serving cell's neighbour relations, RSRP at least
  ``radio.min_rsrp_dbm``) whose filtered RSRP plus the relation's CIO exceeds the serving
  cell's by the serving cell's hysteresis plus the A3 offset, for the serving cell's
  time-to-trigger, triggers a handover to the best such neighbour (measurement report,
  preparation and command within the step). The CIOs start from the scenario's relations
  and change with the CCC ``cellIndividualOffset`` control (:meth:`Mobility.set_cio`).
- **Event A5** (``ran.a5_threshold1_dbm`` / ``a5_threshold2_dbm``, per cell or for all; off
  by default): the serving cell's filtered RSRP plus its hysteresis below threshold 1 and a
  neighbour's (plus CIO, less the hysteresis) above threshold 2, for the time-to-trigger,
  triggers a handover to the best such neighbour, with its own timer beside A3's.
- **Barred cells**: a cell shutting down admits no UE: it is no A3/A5 target.
- **Handover execution**: the target must be usable now (SINR at or above Qout and RSRP at
  least the minimum); if it is, the UE moves and carries no traffic for
  ``ran.interruption_ms``; if not, the handover fails (T304 expires) and the UE re-establishes.
  An out-of-sync UE does not receive a handover command. Handover controls from xApps and
  cell switch-off take the same execution path.
- **Re-establishment**: after an RLF or a handover failure the UE has no cell; it
  re-establishes on the best suitable cell ``ran.reestablishment_ms`` after the failure (T304
  first, for a handover failure), or goes idle when none is found within T311; idle UEs
  attach to the best cell as soon as there is one.
- **Failures by cause** (mobility robustness optimisation, TS 38.300 15.5.2), decided at
  re-establishment: *too late* (RLF, no handover within ``ran.mro_window_ms`` before it, back
  on a different cell), *too early* (RLF shortly after a handover and back on its source
  cell, or a failed handover and back on its source or target), *wrong cell* (shortly after
  a handover or a failed handover, back on a third cell), *coverage* (back on the cell it
  failed in) and *no re-establishment* (T311 expired).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from ric.sim.scenario import Scenario

__all__ = ["FAILURE_CAUSES", "HO_CAUSES", "HandoverLog", "Mobility", "MobilityReport"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

HO_CAUSES: Final = ("a3", "xapp", "cell_off", "a5")
"""Why a UE was handed over: the RAN's A3 event, an xApp's control, its cell shutting down or
switched off, the RAN's A5 event."""
HO_A3: Final = 0
HO_XAPP: Final = 1
HO_CELL_OFF: Final = 2
HO_A5: Final = 3
FAILURE_CAUSES: Final = ("too_late", "too_early", "wrong_cell", "coverage", "no_reestablishment")
"""How a radio link failure or failed handover is classified (see the module docstring)."""
_TOO_LATE, _TOO_EARLY, _WRONG_CELL, _COVERAGE, _NO_REEST = range(5)
L3_SAMPLE_MS: Final = 200.0
"""The sample period the layer-3 filter coefficient assumes (one L1 measurement period)."""
_NEVER_US: Final = -(1 << 60)


@dataclass(frozen=True, slots=True)
class HandoverLog:
    """Every successful handover of a run, in time order: one entry per array position."""

    time_s: FloatArray
    ue: IntArray
    """UE index (RAN UE id minus one)."""
    source: IntArray
    """Cell index the UE left."""
    target: IntArray
    cause: IntArray
    """Index into :data:`HO_CAUSES`."""

    def count(self, cause: str) -> int:
        """How many handovers had ``cause`` (one of :data:`HO_CAUSES`)."""
        return int((self.cause == HO_CAUSES.index(cause)).sum())

    def tuples(self, cell_text: Sequence[str]) -> list[tuple[float, str, str, str]]:
        """``(time_s, ue, source, target)`` per handover, cells by their text ids."""
        return [
            (t, str(u + 1), cell_text[s], cell_text[d])
            for t, u, s, d in zip(
                self.time_s.tolist(),
                self.ue.tolist(),
                self.source.tolist(),
                self.target.tolist(),
                strict=True,
            )
        ]


@dataclass(frozen=True, slots=True)
class MobilityReport:
    """The RAN mobility figures of a run so far (see :meth:`Mobility.report`)."""

    model: str
    """``"a3"`` or ``"none"``: the scenario's ``ran.mobility``."""
    handovers: HandoverLog
    rlf: int
    """Radio link failures: T310 expiries and failed handovers."""
    handover_failures: int
    """Failed handover executions (target unusable; T304 expired)."""
    failures_by_cause: dict[str, int]
    """Failures by :data:`FAILURE_CAUSES`, counted when the UE re-establishes or goes idle."""
    outage_s: FloatArray
    """Per UE: seconds out of sync (T310 running) or failed until re-established or idle."""
    interruption_s: FloatArray
    """Per UE: seconds of handover interruption."""
    dropped: int = 0
    """UEs dropped because their cell was locked or its shutdown timed out with them on it
    (each also counted in ``rlf``: it re-establishes elsewhere, but no cause is assigned)."""


class Mobility:
    """The connection state of every UE of a world, and the RAN's handovers and failures."""

    def __init__(self, scenario: Scenario, cell_text: Sequence[str], neighbours: BoolArray) -> None:
        ran = scenario.ran
        self.model = ran.mobility
        n_c = len(cell_text)
        n = scenario.ue_count
        self.n_ues = n
        index = {c: i for i, c in enumerate(cell_text)}
        self._qout = scenario.radio.rlf_sinr_db
        self._qin = scenario.radio.rlf_sinr_db + ran.qin_offset_db
        self._min_rsrp = scenario.radio.min_rsrp_dbm
        self._hys = np.full(n_c, ran.hysteresis_db)
        self._ttt_us = np.full(n_c, ran.time_to_trigger_ms * 1000, dtype=np.int64)
        # NaN: A5 off for the serving cell (the scenario validates the thresholds in pairs).
        self._a5_t1 = np.full(
            n_c, np.nan if ran.a5_threshold1_dbm is None else ran.a5_threshold1_dbm
        )
        self._a5_t2 = np.full(
            n_c, np.nan if ran.a5_threshold2_dbm is None else ran.a5_threshold2_dbm
        )
        for spec in ran.cells:
            c = index[spec.cell]
            if spec.hysteresis_db is not None:
                self._hys[c] = spec.hysteresis_db
            if spec.time_to_trigger_ms is not None:
                self._ttt_us[c] = spec.time_to_trigger_ms * 1000
            if spec.a5_threshold1_dbm is not None:
                self._a5_t1[c] = spec.a5_threshold1_dbm
            if spec.a5_threshold2_dbm is not None:
                self._a5_t2[c] = spec.a5_threshold2_dbm
        self._cio = np.zeros((n_c, n_c))
        for rel in ran.relations:
            self._cio[index[rel.source], index[rel.target]] = rel.cio_db
        self._nbr = neighbours
        self._off = ran.a3_offset_db
        self._filter_a = 1.0 / 2.0 ** (ran.filter_coefficient / 4.0)
        self._interruption_us = round(ran.interruption_ms * 1000)
        self._t304_us = ran.t304_ms * 1000
        self._t310_us = ran.t310_ms * 1000
        self._t311_us = ran.t311_ms * 1000
        self._reest_us = round(ran.reestablishment_ms * 1000)
        self._mro_us = ran.mro_window_ms * 1000

        self._t310 = np.full(n, -1, dtype=np.int64)  # -1: not running
        self._failed = np.zeros(n, dtype=np.bool_)
        self._fail_left = np.zeros(n, dtype=np.int64)
        self._fail_age = np.zeros(n, dtype=np.int64)
        self._fail_limit = np.zeros(n, dtype=np.int64)
        self._fail_at = np.zeros(n, dtype=np.int64)
        self._fail_cell = np.full(n, -1, dtype=np.int64)
        self._fail_target = np.full(n, -1, dtype=np.int64)  # >= 0: a failed handover's target
        self._last_ho_us = np.full(n, _NEVER_US, dtype=np.int64)
        self._last_ho_src = np.full(n, -1, dtype=np.int64)
        self._held = np.zeros((n, n_c), dtype=np.int64)
        self._held5 = np.zeros((n, n_c), dtype=np.int64) if self.a5_configured else None
        self._no_cause = np.zeros(n, dtype=np.bool_)  # failed by a drop: no MRO cause
        self.dropped = 0
        self._filtered = np.full((n, n_c), -np.inf)
        self._gap = np.zeros(n, dtype=np.int64)
        self._outage_us = np.zeros(n)
        self._interruption_s = np.zeros(n)
        self.rlf = 0
        self.handover_failures = 0
        self._causes = np.zeros(len(FAILURE_CAUSES), dtype=np.int64)
        self._log: list[tuple[int, IntArray, IntArray, IntArray, int]] = []

    # ---------------------------------------------------------------- queries

    @property
    def a5_configured(self) -> bool:
        """Whether any cell has event A5 thresholds."""
        return bool(np.isfinite(self._a5_t1).any())

    def cio(self, source: int, target: int) -> float:
        """The cell individual offset of the relation ``source`` -> ``target``, dB."""
        return float(self._cio[source, target])

    def is_relation(self, source: int, target: int) -> bool:
        """Whether ``target`` is one of ``source``'s neighbour relations."""
        return bool(self._nbr[source, target])

    def set_cio(self, source: int, target: int, offset_db: float) -> None:
        """Set the CIO of the relation ``source`` -> ``target`` (a neighbour relation; the
        caller checks the value is a Q-OffsetRange one). A3/A5 timers running for that
        target start afresh, as a UE reconfigured with a new offset does."""
        self._cio[source, target] = offset_db
        self._held[:, target] = 0
        if self._held5 is not None:
            self._held5[:, target] = 0

    @property
    def failed(self) -> BoolArray:
        """Which UEs lost their connection and are re-establishing (no cell meanwhile)."""
        return self._failed

    def out_of_sync(self, ue: int) -> bool:
        """Whether UE index ``ue`` is out of sync (T310 running)."""
        return bool(self._t310[ue] >= 0)

    def report(self) -> MobilityReport:
        """The handovers, failures and outage so far."""
        if self._log:
            t = np.concatenate([np.full(len(u), now) for now, u, *_ in self._log]) / 1e6
            ue = np.concatenate([e[1] for e in self._log])
            src = np.concatenate([e[2] for e in self._log])
            dst = np.concatenate([e[3] for e in self._log])
            cause = np.concatenate([np.full(len(e[1]), e[4]) for e in self._log])
        else:
            t = np.zeros(0)
            ue = src = dst = cause = np.zeros(0, dtype=np.int64)
        log = HandoverLog(t.astype(np.float64), ue, src, dst, cause.astype(np.int64))
        return MobilityReport(
            model=self.model,
            handovers=log,
            rlf=self.rlf,
            handover_failures=self.handover_failures,
            failures_by_cause={
                c: int(n) for c, n in zip(FAILURE_CAUSES, self._causes, strict=True)
            },
            outage_s=self._outage_us / 1e6,
            interruption_s=self._interruption_s.copy(),
            dropped=self.dropped,
        )

    # ---------------------------------------------------------------- transitions

    def execute(
        self,
        ues: IntArray,
        targets: IntArray,
        cause: int,
        now_us: int,
        serving: IntArray,
        rsrp: FloatArray,
        sinr: FloatArray,
    ) -> BoolArray:
        """Hand ``ues`` to ``targets`` (cell indices): a target usable now takes its UE, which
        then carries no traffic for the interruption time; otherwise the handover fails.
        ``serving`` is changed in place; returns which handovers succeeded."""
        ok = (sinr[ues, targets] >= self._qout) & (rsrp[ues, targets] >= self._min_rsrp)
        good, bad = ues[ok], ues[~ok]
        if len(good):
            src = serving[good].copy()
            serving[good] = targets[ok]
            self._gap[good] += self._interruption_us
            self._last_ho_us[good] = now_us
            self._last_ho_src[good] = src
            self._held[good] = 0
            self._t310[good] = -1
            self._log.append((now_us, good, src, targets[ok], cause))
        if len(bad):
            self.handover_failures += len(bad)
            self._fail(
                bad, now_us, serving, left_us=self._t304_us + self._reest_us, hof=targets[~ok]
            )
            self._fail_limit[bad] += self._t304_us
        return ok

    def moved(self, ues: IntArray, sources: IntArray, targets: IntArray, now_us: int) -> None:
        """Record that the node moved ``ues`` blindly (its cell switched off); the UEs moved to
        a target (>= 0) pay the interruption time."""
        went = targets >= 0
        if went.any():
            good = ues[went]
            self._gap[good] += self._interruption_us
            self._last_ho_us[good] = now_us
            self._last_ho_src[good] = sources[went]
            self._log.append((now_us, good, sources[went], targets[went], HO_CELL_OFF))
        self._held[ues] = 0
        self._t310[ues] = -1

    def drop(self, ues: IntArray, now_us: int, serving: IntArray) -> None:
        """The UEs' cell vanished under them (locked, or shut down with them still on it):
        each loses its link and re-establishes as after a radio link failure."""
        if not len(ues):
            return
        self.dropped += len(ues)
        self._fail(ues, now_us, serving, left_us=self._reest_us, hof=None)
        self._no_cause[ues] = True

    def _fail(
        self,
        ues: IntArray,
        now_us: int,
        serving: IntArray,
        *,
        left_us: IntArray | int,
        hof: IntArray | None,
    ) -> None:
        self.rlf += len(ues)
        self._failed[ues] = True
        self._fail_left[ues] = left_us
        self._fail_age[ues] = 0
        self._fail_limit[ues] = self._t311_us
        self._fail_at[ues] = now_us
        self._fail_cell[ues] = serving[ues]
        self._fail_target[ues] = -1 if hof is None else hof
        serving[ues] = -1
        self._t310[ues] = -1
        self._held[ues] = 0
        if self._held5 is not None:
            self._held5[ues] = 0
        self._gap[ues] = 0
        self._no_cause[ues] = False

    def _classify(self, ues: IntArray, cells: IntArray) -> None:
        ues, cells = ues[~self._no_cause[ues]], cells[~self._no_cause[ues]]
        recent = self._fail_at[ues] - self._last_ho_us[ues] <= self._mro_us
        src = self._last_ho_src[ues]
        fail_cell = self._fail_cell[ues]
        hof_target = self._fail_target[ues]
        hof = hof_target >= 0
        cause = np.where(
            hof,
            np.where((cells == fail_cell) | (cells == hof_target), _TOO_EARLY, _WRONG_CELL),
            np.where(
                cells == fail_cell,
                _COVERAGE,
                np.where(recent, np.where(cells == src, _TOO_EARLY, _WRONG_CELL), _TOO_LATE),
            ),
        )
        self._causes += np.bincount(cause, minlength=len(FAILURE_CAUSES))

    def step(
        self,
        dt_us: int,
        now_us: int,
        serving: IntArray,
        rsrp: FloatArray,
        sinr: FloatArray,
        best_cells: Callable[[IntArray], IntArray],
        barred: BoolArray | None = None,
    ) -> FloatArray:
        """Advance every UE's connection by one step ending at ``now_us`` + ``dt_us``.

        ``serving`` (cell index per UE, -1 for none) is changed in place; ``rsrp`` and
        ``sinr`` are this step's (UEs x cells); ``best_cells(ues)`` gives the best suitable
        cell per UE or -1; ``barred`` marks cells that admit no UE (no A3/A5 target).
        Returns the share of the step each UE carried traffic, 0..1.
        """
        n = self.n_ues
        air = np.ones(n)
        end_us = now_us + dt_us

        # 1. Failed UEs: re-establish once their delay is over, or go idle after T311.
        back = np.zeros(n, dtype=np.bool_)
        failed = np.flatnonzero(self._failed)
        if len(failed):
            self._fail_left[failed] -= dt_us
            self._fail_age[failed] += dt_us
            ready = failed[self._fail_left[failed] <= 0]
            cells = best_cells(ready) if len(ready) else np.zeros(0, dtype=np.int64)
            found = cells >= 0
            up = ready[found]
            if len(up):
                serving[up] = cells[found]
                self._failed[up] = False
                self._classify(up, cells[found])
                air[up] = np.clip(-self._fail_left[up] / dt_us, 0.0, 1.0)
                back[up] = True
            idle = failed[
                self._failed[failed] & (self._fail_age[failed] >= self._fail_limit[failed])
            ]
            if len(idle):
                self._failed[idle] = False
                self._causes[_NO_REEST] += int((~self._no_cause[idle]).sum())
            still = failed[self._failed[failed]]
            air[still] = 0.0
            air[idle] = 0.0
            self._outage_us[failed] += (1.0 - air[failed]) * dt_us

        # 2. Radio link monitoring of the connected UEs.
        conn = (serving >= 0) & ~back
        rows = np.arange(n)
        sinr_s = np.where(conn, sinr[rows, np.maximum(serving, 0)], np.inf)
        running = self._t310 >= 0
        self._t310[conn & ~running & (sinr_s < self._qout)] = 0
        self._t310[running & (sinr_s >= self._qin)] = -1
        running = self._t310 >= 0
        self._t310[running] += dt_us
        air[running] = 0.0
        self._outage_us[running] += dt_us
        expired = np.flatnonzero(running & (self._t310 >= self._t310_us))
        if len(expired):
            overshoot = self._t310[expired] - self._t310_us
            self._fail(expired, end_us, serving, left_us=self._reest_us - overshoot, hof=None)
            self._fail_age[expired] = overshoot

        # 3. Event A3 and the handovers it triggers.
        a = 1.0 - (1.0 - self._filter_a) ** (dt_us / (L3_SAMPLE_MS * 1000.0))
        prev = self._filtered
        self._filtered = np.where(np.isfinite(prev), (1.0 - a) * prev + a * rsrp, rsrp)
        if self.model == "a3":
            idx = np.flatnonzero((serving >= 0) & ~back & (self._t310 < 0))
            keep = np.zeros(n, dtype=np.bool_)
            keep[idx] = True
            self._held[~keep] = 0
            if self._held5 is not None:
                self._held5[~keep] = 0
            if len(idx):
                self._a3(idx, dt_us, end_us, serving, rsrp, sinr, barred)
        self.apply_gaps(serving, air, dt_us)
        return air

    def _a3(
        self,
        idx: IntArray,
        dt_us: int,
        end_us: int,
        serving: IntArray,
        rsrp: FloatArray,
        sinr: FloatArray,
        barred: BoolArray | None,
    ) -> None:
        sv = serving[idx]
        filt = self._filtered[idx]
        offered = filt + self._cio[sv]
        own = filt[np.arange(len(idx)), sv]
        hys = self._hys[sv][:, None]
        usable = self._nbr[sv] & (rsrp[idx] >= self._min_rsrp)
        if barred is not None:
            usable &= ~barred[None, :]
        cond = (offered - hys > (own + self._off)[:, None]) & usable
        held = np.where(cond, self._held[idx] + dt_us, 0)
        self._held[idx] = held
        ttt = self._ttt_us[sv][:, None]
        trig = cond & (held >= ttt)
        cause = np.full(len(idx), HO_A3, dtype=np.int64)
        if self._held5 is not None:
            # A5: serving below threshold 1 and the neighbour above threshold 2 (NaN
            # thresholds compare False: A5 off for that serving cell).
            t1 = self._a5_t1[sv]
            t2 = self._a5_t2[sv]
            cond5 = ((own + hys[:, 0] < t1)[:, None]) & (offered - hys > t2[:, None]) & usable
            held5 = np.where(cond5, self._held5[idx] + dt_us, 0)
            self._held5[idx] = held5
            trig5 = cond5 & (held5 >= ttt)
            cause[trig5.any(axis=1) & ~trig.any(axis=1)] = HO_A5
            trig = trig | trig5
        has = trig.any(axis=1)
        if not has.any():
            return
        score = np.where(trig[has], offered[has], -np.inf)
        targets = np.argmax(score, axis=1).astype(np.int64)
        for c in np.unique(cause[has]).tolist():
            pick = cause[has] == c
            self.execute(idx[has][pick], targets[pick], c, end_us, serving, rsrp, sinr)

    def apply_gaps(self, serving: IntArray, air: FloatArray, dt_us: int) -> None:
        """Take pending handover interruptions out of this step's air time (in place)."""
        pending = np.flatnonzero((self._gap > 0) & (serving >= 0))
        if not len(pending):
            return
        take = np.minimum(self._gap[pending], dt_us)
        air[pending] = np.maximum(air[pending] - take / dt_us, 0.0)
        self._interruption_s[pending] += take / 1e6
        self._gap[pending] -= take
