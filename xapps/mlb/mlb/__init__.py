"""mlb: a mobility load balancing (traffic steering) xApp.

When a cell's downlink PRB utilisation stays above ``high_pct`` for ``hold_reports``
consecutive reports, it hands the UEs using the most PRBs over to neighbour cells whose
utilisation is below ``low_pct``. Hysteresis keeps it from ping-ponging: the gap between the
two thresholds, a per-UE cool-down, and a per-cell budget of handovers per report. A target
that a node refused for a UE (for example too weak a signal there) is not tried again for that
UE during the cool-down.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

import numpy as np

from ric import ControlOutcome, Handover, KpmReport, NodeInfo, Report, XApp

__all__ = ["LoadBalancer"]


@dataclass(slots=True)
class _Ue:
    ue: str
    cell: str
    prbs: float
    rsrp_dbm: float


class LoadBalancer(XApp):
    """Moves UEs from overloaded cells to lightly loaded neighbours."""

    name = "mlb"
    version = "0.1.0"
    reports = [
        Report("RRU.PrbUsedDl", "RRU.PrbAvailDl", period_ms=1000, per="cell"),
        Report("RRU.PrbUsedDl", "DRB.UEThpDl", "L1M.RSRP", period_ms=1000, per="ue"),
    ]
    controls = [Handover]

    class Config(XApp.Config):
        """mlb settings."""

        high_pct: float = 80.0
        """A cell above this downlink PRB utilisation (percent) is overloaded."""
        low_pct: float = 60.0
        """Only neighbours below this utilisation (percent) receive UEs."""
        hold_reports: int = 2
        """Consecutive overloaded reports before acting."""
        cooldown_s: float = 30.0
        """A UE that was handed over is left alone this long."""
        per_cell: int = 2
        """Handovers per overloaded cell per report, at most."""
        timeout_s: float = 1.0
        """How long to wait for each handover's outcome."""

    config: Config
    load: dict[str, float]
    hot: dict[str, int]
    ues: dict[str, list[_Ue]]
    neighbours: dict[str, tuple[str, ...]]
    moved_at: dict[str, float]
    refused: dict[tuple[str, str], float]
    outcomes: list[ControlOutcome]

    async def on_start(self) -> None:
        self.load = {}
        self.hot = {}
        self.ues = {}
        self.neighbours = {}
        self.moved_at = {}
        self.refused = {}
        self.outcomes = []
        for node in self.nodes().values():
            self._learn(node)

    def _learn(self, node: NodeInfo) -> None:
        for cell in node.cells.values():
            self.neighbours[str(cell.id)] = tuple(str(n) for n in cell.neighbours)

    async def on_node_up(self, node: NodeInfo) -> None:
        self._learn(node)

    async def on_node_down(self, node: NodeInfo) -> None:
        for cell in node.cells:
            self.load.pop(str(cell), None)
            self.ues.pop(str(cell), None)

    async def on_report(self, report: KpmReport) -> None:
        if "RRU.PrbAvailDl" in report.metrics:
            await self._cells(report)
        else:
            self._ue_rows(report)

    def _ue_rows(self, report: KpmReport) -> None:
        if "RRU.PrbUsedDl" not in report.metrics:
            return  # the node admitted no PRB counter per UE: nothing to rank UEs by
        prbs = report["RRU.PrbUsedDl"]
        # Not every node reports RSRP per UE (partial admission); it is informative only here.
        rsrp = report["L1M.RSRP"] if "L1M.RSRP" in report.metrics else np.full(len(report), np.nan)
        by_cell: dict[str, list[_Ue]] = {}
        for i, ue in enumerate(report.entity_ids):
            cell = report.cells[i]
            by_cell.setdefault(cell, []).append(_Ue(ue, cell, float(prbs[i]), float(rsrp[i])))
        # A UE report covers the cells of one node: what it says of them replaces what we knew.
        self.ues.update(by_cell)

    async def _cells(self, report: KpmReport) -> None:
        used = report["RRU.PrbUsedDl"]
        avail = report["RRU.PrbAvailDl"]
        for i, cell in enumerate(report.entity_ids):
            a = float(avail[i])
            util = 100.0 * float(used[i]) / a if a > 0 else math.nan
            self.load[cell] = util
            self.hot[cell] = self.hot.get(cell, 0) + 1 if util > self.config.high_pct else 0
        moves = [
            move
            for cell in report.entity_ids
            if self.hot.get(cell, 0) >= self.config.hold_reports
            for move in self._plan(cell)
        ]
        if moves:
            results = await asyncio.gather(
                *(self.control(m, timeout=self.config.timeout_s) for m in moves)
            )
            now = self.now()
            for move, outcome in zip(moves, results, strict=True):
                self.outcomes.append(outcome)
                self.log.info("%s", outcome)
                if not outcome.ok:
                    self.refused[(move.ue, move.target_cell)] = now
                    self.moved_at.pop(move.ue, None)
            del self.outcomes[:-100]

    def _plan(self, cell: str) -> list[Handover]:
        targets = sorted(
            (self.load[n], n)
            for n in self.neighbours.get(cell, ())
            if not math.isnan(self.load.get(n, math.nan)) and self.load[n] < self.config.low_pct
        )
        if not targets:
            return []
        now = self.now()
        candidates = sorted(
            (
                u
                for u in self.ues.get(cell, [])
                if now - self.moved_at.get(u.ue, -math.inf) > self.config.cooldown_s
            ),
            key=lambda u: -u.prbs,
        )
        cooldown = self.config.cooldown_s
        moves: list[Handover] = []
        for ue in candidates:
            if len(moves) == self.config.per_cell:
                break
            allowed = [
                t for _, t in targets if now - self.refused.get((ue.ue, t), -math.inf) > cooldown
            ]
            if not allowed:
                continue
            # Spread this report's moves over the least loaded neighbours.
            target = allowed[len(moves) % len(allowed)]
            self.moved_at[ue.ue] = now
            moves.append(Handover(ue=ue.ue, serving_cell=cell, target_cell=target))
        if moves:
            self.hot[cell] = 0
        return moves
