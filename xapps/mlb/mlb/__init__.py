"""mlb: a mobility load balancing (traffic steering) xApp.

**As operators steer: by cell individual offsets.** Where the overloaded cell's node offers
the E2SM-CCC ``cellIndividualOffset`` of its neighbour relations (``steering = "cio"``, the
default), mlb does not move UEs itself: a cell above ``high_pct`` for ``hold_reports``
reports gets the CIO of its relations to its first ``cio_neighbours`` active neighbours
below ``low_pct`` raised by ``cio_step_db`` (up to ``max_cio_db``), and the reverse relation
lowered by as much (so the RAN's A3 does not hand the UEs straight back); the RAN's own A3
then hands its edge UEs over. A neighbour that becomes overloaded gets its offset stepped
back; when the source has stayed below ``low_pct`` for ``cio_relax_s``, its offsets step
back towards 0, one step per ``cio_relax_s``. Cells of nodes without CIO control, or
``steering = "handover"``, are steered UE by UE as below.

**UE by UE**, on every cell report:

1. **Detect.** A cell whose downlink PRB utilisation stays above ``high_pct`` for
   ``hold_reports`` consecutive reports is overloaded (only cells of nodes that offer the
   handover control, E2SM-RC style 3 action 1, are steered).
2. **Targets.** Its active neighbours below ``low_pct`` may receive UEs, each only as long as
   what this round sends it keeps it below ``high_pct``: the gap between the two thresholds
   is the load hysteresis.
3. **UEs.** Where the node reports each UE's strongest neighbours (``L1M.RSRP.Nbr1..3`` and
   ``L1M.Nbr1..3.Nci``, the UE's measurements at report time), a UE's targets are the
   neighbours it hears at least ``min_target_rsrp_dbm`` strongly and at most
   ``max_below_serving_db`` below its serving cell (further below, the RAN's own A3
   handover would undo the move), with room as above, and
   its SINR on a co-channel one follows from what it measured: its serving SINR gives the
   interference and noise it has; on the target, the target's share of that (RSRP times
   load) goes and the source's joins, ``S_t / (S_s / SINR - S_t u_t + S_s u_s)`` (linear
   units, ``u`` floored at 10 %), plus the pair's learned bias (below). Such a target needs
   no one-UE-at-a-time exploration and starts from the best prior. Where the node reports
   the serving cell's RSRP and SINR only (or a target is on another band), mlb predicts and
   learns what it cannot see:

   - the UE's SINR on a co-channel target, by mirroring: a UE limited by a neighbour's
     interference has about minus its serving SINR there, less the source's load:
     ``-SINR - 10 log10(u_source)`` (``u``: PRB utilisation, floored at 10 %); on another
     band, its serving SINR. Plus a bias learned per (source, target) pair from the SINR
     moved UEs really got. Cell-centre UEs (high SINR) thus stay; cell-edge UEs, which use
     the most PRBs per bit, are the ones moved;
   - per pair and serving-SINR band (``sinr_bands_db``), the chance that a move is accepted
     by the node and turns out well; the pair's overall record is the prior of each band,
     and a pair not tried yet starts from the neighbour's rank in the node's list (ordered by
     coverage overlap). A UE that changes cells by itself (radio link failure, then
     re-establishment on the best cell) teaches that the new cell hears the old one's UEs.

   A move is skipped when the predicted SINR is below ``min_target_sinr_db`` or its learned
   chance below ``min_success``; the others are ranked by PRBs freed times chance times the
   target's room (its distance below ``high_pct``). The PRBs it costs the target are the
   UE's PRBs scaled by the spectral-efficiency ratio of the two SINRs and by
   ``prb_inflation``.
4. **Act, then check.** At most ``per_cell`` handovers per overloaded cell per report. A
   refusal (the node's cause: typically too weak a signal at the target) blocks that target
   for that UE for ``refuse_block_s`` and counts against the pair; a refusal because the
   UE is no longer served there (the RAN's own handover took it since the last UE report)
   only drops the UE from that cell until the next report. ``verify_s`` after an
   accepted move the UE's reports judge it: good, or bad when the UE fell back by itself
   (radio link failure), its SINR there is below ``min_target_sinr_db``, or its throughput
   fell below ``revert_ratio`` of what it had on a target that is now congested; in that last
   case, when the source is no longer overloaded, it is handed back once (move-back
   protection).

Against ping-pong: the load gap, a per-UE ``cooldown_s``, and ``pingpong_guard_s`` during
which a UE is never handed back into a cell it was moved out of (the one move-back above
excepted). What is learned fades with a half-life of ``learn_halflife_s``.

Metrics (``xapp_mlb_...`` in Prometheus): ``handovers_total{outcome}``,
``handover_verdicts_total{verdict}`` (``good``, ``bad``, ``reverted``),
``cio_changes_total{outcome}``, ``steered_relations`` (relations with a CIO set by mlb),
``overloaded_cells`` and ``learned_pairs``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from ric import (
    CauseCode,
    CellIndividualOffset,
    ControlOutcome,
    Counter,
    Gauge,
    Handover,
    KpmReport,
    NodeInfo,
    OutcomeKind,
    Report,
    XApp,
)

__all__ = ["LoadBalancer", "PairStats"]

UE_METRICS = ("RRU.PrbUsedDl", "DRB.UEThpDl", "L1M.RSRP", "L1M.SINR")
NEIGHBOUR_RANKS = 3
NEIGHBOUR_METRICS = tuple(
    name for k in range(1, NEIGHBOUR_RANKS + 1) for name in (f"L1M.RSRP.Nbr{k}", f"L1M.Nbr{k}.Nci")
)
"""Each UE's strongest neighbour cells at report time: RSRP (dBm) and NR cell identity."""
LOAD_FLOOR = 0.1
"""The lowest PRB utilisation assumed for a cell's interference (control channels, pilots)."""
HANDOVER_KEY = (Handover.style, Handover.action_id)
CIO_ATTRIBUTE = ("O-NRCellRelation", "cellIndividualOffset")
Q_OFFSETS_DB = (-24, -22, -20, -18, -16, -14, -12, -10, -8, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24)  # fmt: skip
"""TS 38.331 Q-OffsetRange, dB: the values a CIO may take."""


def _snap_cio(value_db: float, towards_zero: bool = True) -> int:
    """The Q-OffsetRange value nearest ``value_db`` on the side of 0 (so a step never
    overshoots), or away from 0."""
    if towards_zero == (value_db >= 0):
        return max(q for q in Q_OFFSETS_DB if q <= value_db)
    return min(q for q in Q_OFFSETS_DB if q >= value_db)


def _rank_prior(rank: int) -> float:
    """Success chance of a pair not tried yet: the node lists neighbours by coverage overlap,
    so the first ones are likelier to hear the source's edge UEs."""
    return max(0.6 - 0.05 * rank, 0.35)


def _neighbour_columns(report: KpmReport) -> tuple[np.ndarray, np.ndarray] | None:
    """The report's neighbour measurements as (RSRP, NR cell identity), UEs x ranks, or None
    when the node reports none (ranks it left out are NaN)."""
    names = report.metrics
    if "L1M.RSRP.Nbr1" not in names or "L1M.Nbr1.Nci" not in names:
        return None
    nan = np.full(len(report), np.nan)
    rsrp = np.stack([report[n] if n in names else nan for n in NEIGHBOUR_METRICS[0::2]], axis=1)
    nci = np.stack([report[n] if n in names else nan for n in NEIGHBOUR_METRICS[1::2]], axis=1)
    return rsrp, nci


def _neighbours(serving: str, rsrp: np.ndarray, nci: np.ndarray) -> tuple[tuple[str, float], ...]:
    """(cell id, RSRP) of a UE's measured neighbours; a neighbour's cell id is its NR cell
    identity with the serving cell's PLMN (``<mcc>-<mnc>-<nci>``)."""
    plmn = serving.rsplit("-", 1)[0]
    return tuple(
        (f"{plmn}-{int(c)}", float(r))
        for r, c in zip(rsrp.tolist(), nci.tolist(), strict=True)
        if math.isfinite(r) and math.isfinite(c)
    )


def _efficiency(sinr_db: float) -> float:
    """Shannon spectral efficiency at ``sinr_db``, bit/s/Hz, floored so that ratios stay finite."""
    return max(math.log2(1.0 + 10.0 ** (sinr_db / 10.0)), 0.05)


@dataclass(slots=True)
class _Ue:
    ue: str
    cell: str
    prbs: float
    thp_kbps: float
    rsrp_dbm: float
    sinr_db: float
    at: float = 0.0
    nbrs: tuple[tuple[str, float], ...] | None = None
    """The neighbour cells the UE measured (cell id, RSRP dBm), strongest first; None when
    its node reports no neighbour measurements."""


@dataclass(slots=True)
class _Move:
    ue: str
    source: str
    target: str
    at: float
    thp_kbps: float
    predicted_sinr_db: float
    band: int
    revert: bool = False


@dataclass(slots=True)
class PairStats:
    """What mlb learned about handing UEs from one cell to another.

    ``good`` and ``bad`` are faded counts of moves per serving-SINR band (index into the
    configured ``sinr_bands_db`` edges); ``bias_db`` is the faded mean error of the SINR
    predicted on the target (actual minus predicted), ``samples`` its faded weight.
    """

    good: list[float] = field(default_factory=list)
    bad: list[float] = field(default_factory=list)
    bias_db: float = 0.0
    samples: float = 0.0
    updated: float = 0.0

    def fade(self, now: float, halflife_s: float) -> None:
        """Let what was learned before ``now`` weigh less, by the half-life."""
        if now <= self.updated:
            return
        k = 0.5 ** ((now - self.updated) / halflife_s)
        self.good = [g * k for g in self.good]
        self.bad = [b * k for b in self.bad]
        self.samples *= k
        self.updated = now

    def success(self, band: int) -> float:
        """Chance that a move of a UE in ``band`` is accepted and good.

        The pair's overall record (Laplace estimate) is the prior of each band, worth two
        moves, so that a pair that failed in one band is not tried afresh in every other.
        """
        prior = (sum(self.good) + 1.0) / (sum(self.good) + sum(self.bad) + 2.0)
        return (self.good[band] + 2.0 * prior) / (self.good[band] + self.bad[band] + 2.0)


class LoadBalancer(XApp):
    """Steers cell-edge UEs from overloaded cells to neighbours with room and enough signal,
    learning from the nodes' refusals and from how moved UEs fare."""

    name = "mlb"
    version = "0.1.0"
    reports = [
        Report("RRU.PrbUsedDl", "RRU.PrbAvailDl", period_ms=1000, per="cell"),
        # Nodes without neighbour measurements leave them out of the UE report.
        Report(*UE_METRICS, *NEIGHBOUR_METRICS, period_ms=1000, per="ue"),
    ]
    controls = [Handover, CellIndividualOffset]

    class Config(XApp.Config):
        """mlb settings; the defaults suit 1 s reports on macro cells."""

        steering: Literal["cio", "handover"] = "cio"
        """``cio``: steer by cell individual offsets where the node offers them (the RAN's
        A3 moves the UEs), UE by UE elsewhere; ``handover``: UE by UE everywhere."""
        cio_step_db: int = Field(2, ge=1, le=6)
        """How much a relation's CIO moves per step, dB (snapped to Q-OffsetRange)."""
        max_cio_db: int = Field(6, ge=1, le=24)
        """The largest CIO mlb sets towards a neighbour, dB (the reverse relation gets minus
        as much)."""
        cio_neighbours: int = Field(3, ge=1, le=16)
        """How many of an overloaded cell's first neighbours (the node lists them by coverage
        overlap) may receive offsets."""
        cio_relax_s: float = Field(60.0, ge=0.0)
        """A cell below ``low_pct`` this long gets its offsets stepped back towards 0, one
        step per this many seconds."""
        high_pct: float = Field(80.0, gt=0.0, le=100.0)
        """A cell above this downlink PRB utilisation (percent) is overloaded."""
        low_pct: float = Field(60.0, gt=0.0, le=100.0)
        """Only neighbours below this utilisation (percent) receive UEs, and no more than
        keeps them below ``high_pct``."""
        hold_reports: int = Field(2, ge=1)
        """Consecutive overloaded reports before acting."""
        per_cell: int = Field(3, ge=1)
        """Handovers out of one overloaded cell per report, at most."""
        min_target_sinr_db: float = Field(0.0, ge=-20.0, le=30.0)
        """A move is skipped when the UE's predicted SINR on the target is below this (dB),
        and counts as bad when its SINR there turns out below it."""
        min_target_rsrp_dbm: float = Field(-115.0, ge=-156.0, le=-44.0)
        """Where the node reports UEs' neighbour measurements, only a neighbour the UE hears
        at least this strongly (dBm) is a target: a margin above the RSRP a node needs to
        accept a handover (typically -120 dBm)."""
        max_below_serving_db: float | None = Field(0.0, ge=0.0, le=30.0)
        """Where the node reports UEs' neighbour measurements, a neighbour the UE hears more
        than this far (dB) below its serving cell is not a target: the RAN's own A3 event
        would hand the UE straight back. Keep it well under the RAN's A3 hysteresis (3 dB by
        default): the measurement is up to a report old, and at 3 dB on seeds/hotspot.toml
        (seeds 1-3) the RAN undid half of mlb's moves within seconds. None: no limit (a RAN
        without its own mobility)."""
        min_success: float = Field(0.3, ge=0.0, le=1.0)
        """A (pair, SINR band) whose learned success chance is below this is not tried."""
        sinr_bands_db: tuple[float, ...] = (0.0, 5.0, 10.0)
        """Edges of the serving-SINR bands success is learned per (dB, increasing)."""
        prb_inflation: float = Field(1.2, ge=1.0, le=10.0)
        """A moved UE is assumed to need this many times its PRBs on the target, on top of the
        spectral-efficiency ratio (an overloaded source did not give it all it wanted)."""
        cooldown_s: float = Field(30.0, ge=0.0)
        """A UE that was handed over is left alone this long."""
        pingpong_guard_s: float = Field(120.0, ge=0.0)
        """A UE is not handed back into a cell it was moved out of for this long."""
        refuse_block_s: float = Field(120.0, ge=0.0)
        """A target the node refused for a UE is not tried again for that UE this long."""
        verify_s: float = Field(2.0, gt=0.0)
        """How long after a move the UE's throughput on the target is judged."""
        revert_ratio: float = Field(0.5, ge=0.0, le=1.0)
        """A moved UE whose throughput fell below this share of what it had, on a target now
        above ``high_pct``, is handed back (once) when the source is no longer overloaded;
        0 turns move-back off."""
        learn_halflife_s: float = Field(600.0, gt=0.0)
        """Half-life of what is learned about pairs, seconds."""
        timeout_s: float = Field(1.0, gt=0.0)
        """How long to wait for each handover's outcome."""

        @model_validator(mode="after")
        def _consistent(self) -> LoadBalancer.Config:
            if self.max_cio_db not in Q_OFFSETS_DB:
                raise ValueError(
                    f"max_cio_db {self.max_cio_db} is not a Q-OffsetRange value (TS 38.331): "
                    f"one of {', '.join(str(q) for q in Q_OFFSETS_DB if q > 0)}"
                )
            if self.low_pct >= self.high_pct:
                raise ValueError(
                    f"low_pct ({self.low_pct}) must be below high_pct ({self.high_pct})"
                )
            bands = self.sinr_bands_db
            if any(b >= a for a, b in zip(bands[1:], bands, strict=False)):
                raise ValueError(f"sinr_bands_db must increase, got {list(bands)}")
            return self

    config: Config
    load: dict[str, float]
    """Latest downlink PRB utilisation per cell, percent (NaN: unknown or off)."""
    hot: dict[str, int]
    ues: dict[str, list[_Ue]]
    """Latest UE rows per cell."""
    pairs: dict[tuple[str, str], PairStats]
    """What was learned per (source cell, target cell)."""
    outcomes: list[ControlOutcome]
    """The last 100 control outcomes (handovers and CIO changes)."""
    cio: dict[tuple[str, str], int]
    """The CIO mlb set per relation (source cell, neighbour), dB; absent: 0."""

    async def on_start(self) -> None:
        self.load = {}
        self.hot = {}
        self.ues = {}
        self.pairs = {}
        self.outcomes = []
        self.cio = {}
        self._cio_cells: set[str] = set()  # cells whose node takes CIO controls
        self._calm_since: dict[str, float] = {}
        self._where: dict[str, _Ue] = {}
        self._node_cells: dict[str, set[str]] = {}
        self._cells: dict[str, tuple[int, int]] = {}  # cell -> (PRBs, band)
        self._steerable: set[str] = set()  # cells whose node takes handover controls
        self._moved_at: dict[str, float] = {}
        self._left: dict[tuple[str, str], float] = {}
        self._refused: dict[tuple[str, str], float] = {}
        self._moves: dict[str, _Move] = {}
        self._reverted: dict[str, float] = {}
        self._info_of: tuple[NodeInfo, ...] = ()  # the announcements _info was built from
        self._info: dict[str, tuple[bool, tuple[str, ...]]] = {}
        m = self.metrics
        self._m_ho: Counter = m.counter(
            "handovers_total", "Handovers mlb sent, by outcome.", ["outcome"]
        )
        self._m_verdict: Counter = m.counter(
            "handover_verdicts_total",
            "Accepted handovers judged after verify_s: good, bad, or reverted (moved back).",
            ["verdict"],
        )
        self._m_hot: Gauge = m.gauge("overloaded_cells", "Cells above high_pct right now.")
        self._m_pairs: Gauge = m.gauge("learned_pairs", "(source, target) pairs with history.")
        self._m_cio: Counter = m.counter(
            "cio_changes_total", "Cell individual offset changes mlb sent, by outcome.", ["outcome"]
        )
        self._m_steered: Gauge = m.gauge(
            "steered_relations", "Neighbour relations with a non-zero CIO set by mlb."
        )
        for node in self.nodes().values():
            self._learn_node(node)

    # -- topology -------------------------------------------------------------------------

    def _learn_node(self, node: NodeInfo) -> None:
        self._node_cells[str(node.id)] = {str(c) for c in node.cells}
        rc = node.rc()
        steerable = rc is not None and HANDOVER_KEY in rc[1].actions
        ccc = node.ccc()
        by_cio = ccc is not None and ccc[1].writable(*CIO_ATTRIBUTE)
        for cid in node.cells:
            if steerable:
                self._steerable.add(str(cid))
            else:
                self._steerable.discard(str(cid))
            if by_cio:
                self._cio_cells.add(str(cid))
            else:
                self._cio_cells.discard(str(cid))
        for cid, cell in node.cells.items():
            self._cells[str(cid)] = (cell.bandwidth_prbs, cell.band)

    async def on_node_up(self, node: NodeInfo) -> None:
        self._learn_node(node)

    async def on_node_down(self, node: NodeInfo) -> None:
        gone = {str(c) for c in node.cells}
        # A node that comes back starts from its own configuration: forget what was set.
        self.cio = {k: v for k, v in self.cio.items() if k[0] not in gone}
        for cell in node.cells:
            self.load.pop(str(cell), None)
            self.hot.pop(str(cell), None)
            for ue in self.ues.pop(str(cell), []):
                self._where.pop(ue.ue, None)

    def _cell_info(self) -> dict[str, tuple[bool, tuple[str, ...]]]:
        """(active, neighbours) of every known cell, as the nodes last announced them; rebuilt
        only when a node's announcement changed (NodeInfo is immutable and replaced)."""
        nodes = tuple(self.nodes().values())
        if len(nodes) != len(self._info_of) or any(
            a is not b for a, b in zip(nodes, self._info_of, strict=True)
        ):
            self._info_of = nodes
            self._info = {
                str(cid): (cell.active, tuple(str(n) for n in cell.neighbours))
                for node in nodes
                for cid, cell in node.cells.items()
            }
        return self._info

    # -- reports --------------------------------------------------------------------------

    async def on_report(self, report: KpmReport) -> None:
        if "RRU.PrbAvailDl" in report.metrics:
            await self._on_cells(report)
        else:
            await self._on_ues(report)

    async def _on_ues(self, report: KpmReport) -> None:
        if "RRU.PrbUsedDl" not in report.metrics:
            return  # the node admitted no PRB counter per UE: nothing to rank UEs by
        n = len(report)
        nan = np.full(n, np.nan)

        def col(name: str) -> np.ndarray:
            return report[name] if name in report.metrics else nan

        prbs, thp, rsrp, sinr = (col(m) for m in UE_METRICS)
        nbrs = _neighbour_columns(report)
        now = self.now()
        by_cell: dict[str, list[_Ue]] = {}
        for i, ue_id in enumerate(report.entity_ids):
            row = _Ue(
                ue_id,
                report.cells[i],
                float(prbs[i]),
                float(thp[i]),
                float(rsrp[i]),
                float(sinr[i]),
                now,
                None if nbrs is None else _neighbours(report.cells[i], nbrs[0][i], nbrs[1][i]),
            )
            by_cell.setdefault(row.cell, []).append(row)
            before = self._where.get(ue_id)
            if (
                before is not None
                and before.cell != row.cell
                and ue_id not in self._moves
                and now - before.at <= 5.0
            ):
                self._natural(before, row)
            self._where[ue_id] = row
        # A UE report covers the cells of one node: what it says of them replaces what we knew.
        for cell in self._node_cells.get(report.node, set()) | set(by_cell):
            self.ues[cell] = by_cell.get(cell, [])
        await self._verify(by_cell)

    def _natural(self, before: _Ue, after: _Ue) -> None:
        """A UE changed cells without a handover of ours (it re-established on the best cell
        after a radio link failure): the new cell hears the old one's UEs of that SINR band."""
        stats = self._pair(before.cell, after.cell)
        stats.good[self._band(before.sinr_db)] += 1.0

    async def _on_cells(self, report: KpmReport) -> None:
        used = report["RRU.PrbUsedDl"]
        avail = report["RRU.PrbAvailDl"]
        cfg = self.config
        for i, cell in enumerate(report.entity_ids):
            a = float(avail[i])
            util = 100.0 * float(used[i]) / a if a > 0 else math.nan
            self.load[cell] = util
            self.hot[cell] = self.hot.get(cell, 0) + 1 if util > cfg.high_pct else 0
        self._m_hot.set(sum(1 for v in self.load.values() if v > cfg.high_pct))
        info = self._cell_info()
        by_cio = cfg.steering == "cio"
        offsets = (
            [o for cell in report.entity_ids for o in self._plan_cio(cell, info)] if by_cio else []
        )
        sent: dict[str, float] = {}  # target cell -> utilisation added this round, percent
        moves = [
            move
            for cell in report.entity_ids
            if self.hot.get(cell, 0) >= cfg.hold_reports
            and cell in self._steerable
            and not (by_cio and cell in self._cio_cells)
            for move in self._plan(cell, info, sent)
        ]
        await self._send_cio(offsets)
        await self._send(moves)

    # -- steering by cell individual offsets ----------------------------------------------

    def _plan_cio(
        self, cell: str, info: dict[str, tuple[bool, tuple[str, ...]]]
    ) -> list[CellIndividualOffset]:
        """The CIO changes for the relations out of ``cell`` after its latest load."""
        cfg = self.config
        if cell not in self._cio_cells:
            return []
        now = self.now()
        util = self.load.get(cell, math.nan)
        active, neighbours = info.get(cell, (False, ()))
        out: dict[tuple[str, str], int] = {}
        # A neighbour that filled up gives UEs back first, whatever the source's load.
        for t in neighbours:
            current = self.cio.get((cell, t), 0)
            if current > 0 and self.load.get(t, 0.0) >= cfg.high_pct:
                out[(cell, t)] = _snap_cio(current - cfg.cio_step_db)
        if active and self.hot.get(cell, 0) >= cfg.hold_reports:
            self._calm_since.pop(cell, None)
            for t in neighbours[: cfg.cio_neighbours]:
                t_active, _ = info.get(t, (False, ()))
                t_util = self.load.get(t, math.nan)
                current = self.cio.get((cell, t), 0)
                if t_active and t_util < cfg.low_pct and current < cfg.max_cio_db:
                    out[(cell, t)] = _snap_cio(min(current + cfg.cio_step_db, cfg.max_cio_db))
            if out:
                self.hot[cell] = 0  # let the next reports show the effect before acting again
        elif util < cfg.low_pct:
            calm = self._calm_since.setdefault(cell, now)
            if now - calm >= cfg.cio_relax_s:
                self._calm_since[cell] = now
                for (source, t), current in self.cio.items():
                    if source == cell and current > 0 and (cell, t) not in out:
                        out[(cell, t)] = _snap_cio(current - cfg.cio_step_db)
        else:
            self._calm_since.pop(cell, None)
        actions: list[CellIndividualOffset] = []
        for (source, t), value in out.items():
            if value == self.cio.get((source, t), 0):
                continue
            actions.append(CellIndividualOffset(source, t, value))
            # The reverse relation, so that A3 at the neighbour does not hand them back.
            _, back = info.get(t, (False, ()))
            if t in self._cio_cells and source in back:
                actions.append(CellIndividualOffset(t, source, -value))
        return actions

    async def _send_cio(self, actions: list[CellIndividualOffset]) -> None:
        if not actions:
            return
        results = await asyncio.gather(
            *(self.control(a, timeout=self.config.timeout_s) for a in actions)
        )
        for action, outcome in zip(actions, results, strict=True):
            self.outcomes.append(outcome)
            self._m_cio.labels(outcome=outcome.kind.value).inc()
            self.log.info("%s", outcome)
            if outcome.ok:
                key = (action.cell_id, action.neighbour)
                if action.offset_db:
                    self.cio[key] = action.offset_db
                else:
                    self.cio.pop(key, None)
        del self.outcomes[:-100]
        self._m_steered.set(sum(1 for v in self.cio.values() if v))

    # -- planning -------------------------------------------------------------------------

    def _band(self, sinr_db: float) -> int:
        """The serving-SINR band of ``sinr_db`` (0, the lowest, when it is unknown)."""
        if math.isnan(sinr_db):
            return 0
        return sum(1 for edge in self.config.sinr_bands_db if sinr_db >= edge)

    def _pair(self, source: str, target: str) -> PairStats:
        now = self.now()
        stats = self.pairs.get((source, target))
        if stats is None:
            bands = len(self.config.sinr_bands_db) + 1
            stats = self.pairs[(source, target)] = PairStats(
                [0.0] * bands, [0.0] * bands, updated=now
            )
            self._m_pairs.set(len(self.pairs))
        stats.fade(now, self.config.learn_halflife_s)
        return stats

    def _predicted_sinr(self, ue: _Ue, source: str, target: str, stats: PairStats | None) -> float:
        """The UE's SINR on ``target``, dB, plus the pair's learned bias.

        Co-channel target: a UE limited by the target's interference has a serving SINR of
        about the RSRP gap to it, so on the target it would have minus that gap, less what the
        source's own load adds: ``-sinr - 10 log10(u_source)`` (``u``: PRB utilisation,
        floored at 10 %). No credit is taken for a lightly loaded target sparing the UE: the
        target may well not be its strongest neighbour, and a wrong guess costs the UE a
        radio link failure; the learned bias gives the credit back where moves show it.
        Target on another band: no shared interference, so the serving SINR plus the bias
        (the pair's mean change, learned from moves).
        """
        if math.isnan(ue.sinr_db):
            return math.nan
        bias = stats.bias_db if stats is not None and stats.samples >= 0.5 else 0.0
        if self._band_of(source) != self._band_of(target):
            return ue.sinr_db + bias
        u_s = max(self.load.get(source, 100.0) / 100.0, LOAD_FLOOR)
        return -ue.sinr_db - 10.0 * math.log10(u_s) + bias

    def _measured_sinr(self, ue: _Ue, source: str, target: str, rsrp_dbm: float) -> float:
        """The UE's SINR on co-channel ``target``, dB, from what it measured: its serving
        SINR gives the interference and noise it has now; on the target, the target's share
        of that (its RSRP times its load) goes and the source's joins:
        ``S_t / (S_s / SINR - S_t u_t + S_s u_s)`` in linear units (``S``: RSRP, ``u``: PRB
        utilisation, floored at 10 %). Without a serving SINR, interference-limited: the
        RSRP difference less the source's load, ``RSRP_t - RSRP_s - 10 log10(u_s)``."""
        u_s = max(self.load.get(source, 100.0) / 100.0, LOAD_FLOOR)
        if math.isnan(ue.rsrp_dbm):
            return math.nan
        if math.isnan(ue.sinr_db):
            return rsrp_dbm - ue.rsrp_dbm - 10.0 * math.log10(u_s)
        u_t = max(self.load.get(target, 100.0) / 100.0, LOAD_FLOOR)
        s_s = 10.0 ** (ue.rsrp_dbm / 10.0)
        s_t = 10.0 ** (rsrp_dbm / 10.0)
        rest = max(s_s / 10.0 ** (ue.sinr_db / 10.0) - s_t * u_t, 0.0)
        return 10.0 * math.log10(s_t / (rest + s_s * u_s))

    def _targets(
        self,
        ue: _Ue,
        listed: list[tuple[int, str]],
        info: dict[str, tuple[bool, tuple[str, ...]]],
        sent: dict[str, float],
    ) -> list[tuple[int, str, float]]:
        """(rank, target, measured RSRP) of the UE's candidate targets: the neighbours it
        measured at least ``min_target_rsrp_dbm`` strongly, with room, when its node reports
        them; else the serving cell's listed neighbours with room (RSRP NaN)."""
        if ue.nbrs is None:
            return [(rank, t, math.nan) for rank, t in listed]
        cfg = self.config
        floor = cfg.min_target_rsrp_dbm
        if cfg.max_below_serving_db is not None and not math.isnan(ue.rsrp_dbm):
            floor = max(floor, ue.rsrp_dbm - cfg.max_below_serving_db)
        return [
            (rank, t, rsrp)
            for rank, (t, rsrp) in enumerate(ue.nbrs)
            if rsrp >= floor
            and t != ue.cell
            and info.get(t, (False, ()))[0]
            and not math.isnan(self.load.get(t, math.nan))
            and self.load[t] + sent.get(t, 0.0) < cfg.low_pct
        ]

    def _plan(
        self, cell: str, info: dict[str, tuple[bool, tuple[str, ...]]], sent: dict[str, float]
    ) -> list[Handover]:
        cfg = self.config
        now = self.now()
        _, neighbours = info.get(cell, (False, ()))
        listed = [
            (rank, t)
            for rank, t in enumerate(neighbours)
            if info.get(t, (False, ()))[0]
            and not math.isnan(self.load.get(t, math.nan))
            and self.load[t] + sent.get(t, 0.0) < cfg.low_pct
        ]
        options: list[tuple[float, _Ue, str, float, float, bool]] = []
        for ue in self.ues.get(cell, []):
            if not ue.prbs > 0 or now - self._moved_at.get(ue.ue, -math.inf) < cfg.cooldown_s:
                continue
            band = self._band(ue.sinr_db)
            for rank, t, rsrp in self._targets(ue, listed, info, sent):
                if now - self._refused.get((ue.ue, t), -math.inf) < cfg.refuse_block_s:
                    continue
                if now - self._left.get((ue.ue, t), -math.inf) < cfg.pingpong_guard_s:
                    continue
                stats = self.pairs.get((cell, t))
                if stats is not None:
                    stats.fade(now, cfg.learn_halflife_s)
                measured = not math.isnan(rsrp)
                if measured and self._band_of(cell) == self._band_of(t):
                    bias = stats.bias_db if stats is not None and stats.samples >= 0.5 else 0.0
                    predicted = self._measured_sinr(ue, cell, t, rsrp) + bias
                else:
                    predicted = self._predicted_sinr(ue, cell, t, stats)
                if predicted < cfg.min_target_sinr_db:  # NaN (no SINR reported) passes
                    continue
                # A measured neighbour needs no guess from its rank: the best prior.
                prior = _rank_prior(0 if measured else rank)
                p = stats.success(band) if stats is not None else prior
                if p < cfg.min_success:
                    continue
                # PRBs it would take on the target: as many bits at the predicted efficiency,
                # and more, as the source did not give it all it wanted.
                ratio = (
                    1.0
                    if math.isnan(predicted)
                    else _efficiency(ue.sinr_db) / _efficiency(predicted)
                )
                cost = 100.0 * ue.prbs * ratio * cfg.prb_inflation / self._avail(t)
                # Freed PRBs, likely to stick (cell-edge UEs free the most per bit), towards
                # the neighbours with the most room.
                room = (cfg.high_pct - self.load[t]) / cfg.high_pct
                options.append((p * ue.prbs * room, ue, t, cost, predicted, measured))
        options.sort(key=lambda o: (-o[0], o[1].ue, o[2]))
        moves: list[Handover] = []
        chosen: set[str] = set()
        explored = False
        for _, ue, t, added, predicted, measured in options:
            if len(moves) == cfg.per_cell:
                break
            if ue.ue in chosen:
                continue
            # A pair with no record is tried with one UE at a time: a wrong guess costs that
            # UE a radio link failure, and its outcome decides for the next ones. A target the
            # UE measured is no guess.
            stats = self.pairs.get((cell, t))
            untried = not measured and (stats is None or sum(stats.good) + sum(stats.bad) < 0.5)
            if untried and explored:
                continue
            if self.load[t] + sent.get(t, 0.0) + added >= cfg.high_pct:
                continue
            sent[t] = sent.get(t, 0.0) + added
            chosen.add(ue.ue)
            explored = explored or untried
            self._moved_at[ue.ue] = now
            band = self._band(ue.sinr_db)
            self._moves[ue.ue] = _Move(ue.ue, cell, t, now, ue.thp_kbps, predicted, band)
            moves.append(Handover(ue=ue.ue, cell_id=cell, target_cell=t))
        if moves:
            self.hot[cell] = 0  # let the next reports show the effect before acting again
        return moves

    def _avail(self, cell: str) -> float:
        """The cell's PRBs, from the node's announcement (106 when unknown)."""
        info = self._cells.get(cell)
        return float(info[0]) if info is not None and info[0] > 0 else 106.0

    def _band_of(self, cell: str) -> int:
        """The cell's NR band (0 when unknown)."""
        info = self._cells.get(cell)
        return info[1] if info is not None else 0

    # -- acting and learning --------------------------------------------------------------

    async def _send(self, moves: list[Handover]) -> None:
        if not moves:
            return
        results = await asyncio.gather(
            *(self.control(m, timeout=self.config.timeout_s) for m in moves)
        )
        now = self.now()
        for move, outcome in zip(moves, results, strict=True):
            self.outcomes.append(outcome)
            self._m_ho.labels(outcome=outcome.kind.value).inc()
            self.log.info("%s", outcome)
            planned = self._moves.get(move.ue)
            if outcome.ok:
                self._left[(move.ue, move.cell_id)] = now
                continue
            self._moves.pop(move.ue, None)
            self._moved_at.pop(move.ue, None)
            if (
                outcome.cause is not None
                and outcome.cause.code is CauseCode.RIC_REQUEST_TARGET_UNKNOWN
            ):
                # The UE is no longer where the last UE report put it (the RAN's own handover
                # or a radio link failure took it away): forget it there until the next
                # report; that says nothing about the target.
                self.ues[move.cell_id] = [
                    u for u in self.ues.get(move.cell_id, []) if u.ue != move.ue
                ]
                continue
            if outcome.kind is OutcomeKind.FAILED:
                # The node refused: for this UE that target is out of reach for a while, and
                # the pair learns (a conflict or a timeout says nothing about the radio).
                self._refused[(move.ue, move.target_cell)] = now
                if planned is not None and not planned.revert:
                    stats = self._pair(move.cell_id, move.target_cell)
                    stats.bad[planned.band] += 1.0
            elif outcome.kind is OutcomeKind.CONFLICT:
                self._refused[(move.ue, move.target_cell)] = now
        del self.outcomes[:-100]

    async def _verify(self, by_cell: dict[str, list[_Ue]]) -> None:
        """Judge the moves whose ``verify_s`` has passed, from where the UEs are now."""
        cfg = self.config
        now = self.now()
        back: list[Handover] = []
        for ue_id, move in list(self._moves.items()):
            if now - move.at < cfg.verify_s:
                continue
            row = self._where.get(ue_id)
            if (
                row is None
                or row.cell not in by_cell
                or not any(r.ue == ue_id for r in by_cell[row.cell])
            ):
                if now - move.at > 10 * cfg.verify_s:
                    del self._moves[ue_id]  # out of sight (a node that reports no UEs)
                continue
            del self._moves[ue_id]
            if move.revert:
                continue
            stats = self._pair(move.source, move.target)
            if row.cell != move.target:
                # Back on the source (or elsewhere) without a handover of ours: the link failed,
                # and the cell the UE re-established on is the one that hears it best.
                stats.bad[move.band] += 1.0
                if row.cell != move.source:
                    self._pair(move.source, row.cell).good[move.band] += 1.0
                self._refused[(ue_id, move.target)] = now
                self._m_verdict.labels(verdict="bad").inc()
                continue
            if not math.isnan(row.sinr_db) and not math.isnan(move.predicted_sinr_db):
                error = row.sinr_db - move.predicted_sinr_db
                stats.bias_db = (stats.bias_db * stats.samples + error) / (stats.samples + 1.0)
                stats.samples += 1.0
            # Demand varies by itself: a fall in throughput is the move's fault only where the
            # target is now congested.
            congested = self.load.get(move.target, 0.0) > cfg.high_pct
            worse = congested and row.thp_kbps < cfg.revert_ratio * move.thp_kbps
            weak = row.sinr_db < cfg.min_target_sinr_db
            if not (worse or weak):
                stats.good[move.band] += 1.0
                self._m_verdict.labels(verdict="good").inc()
                continue
            stats.bad[move.band] += 1.0
            self._refused[(ue_id, move.target)] = now
            source_ok = self.load.get(move.source, math.inf) < cfg.high_pct
            if (
                worse
                and source_ok
                and now - self._reverted.get(ue_id, -math.inf) > (cfg.pingpong_guard_s)
            ):
                self._reverted[ue_id] = now
                self._moves[ue_id] = _Move(
                    ue_id, move.target, move.source, now, row.thp_kbps, row.sinr_db, 0, True
                )
                self._moved_at[ue_id] = now
                back.append(Handover(ue=ue_id, cell_id=move.target, target_cell=move.source))
                self._m_verdict.labels(verdict="reverted").inc()
            else:
                self._m_verdict.labels(verdict="bad").inc()
        await self._send(back)

    def stats(self) -> Iterable[tuple[str, str, PairStats]]:
        """What was learned, as (source, target, stats), for logs and dashboards."""
        return ((s, t, p) for (s, t), p in sorted(self.pairs.items()))
