"""energysaver: switches cells off at low load and back on before their neighbours fill up.

The loop, on every cell report (downlink PRB utilisation, smoothed over ``smoothing_s``):

**Off.** A cell of a node that offers energy saving is switched off when

- its utilisation has stayed below ``off_pct`` for ``off_hold_s`` and it has been on for at
  least ``min_on_s`` since energysaver last switched it on;
- its neighbours can absorb its UEs: its load, scaled by ``prb_inflation`` (the UEs are
  farther from the neighbours, so need more PRBs there) and shared by its first
  ``absorb_spread`` active neighbours (the node lists them by coverage overlap), leaves each
  of them below ``absorb_max_pct`` (``lead_s`` of their trend included);
- it is not the last cell covering its area: at least ``min_active_neighbours`` of its
  neighbours stay on, and, with ``keep_one_per_node``, another cell of its node stays on;
- it is not itself absorbing the load of a cell that is off, and no cell was switched in
  the last ``off_gap_s`` (one at a time, so that each switch's effect is seen first).

Switching off is done as a RAN engineer would: first **evacuate**, where the node offers the
E2SM-CCC ``cellIndividualOffset`` control: the CIOs of the cell's relations to its absorbers
go to ``+evacuate_cio_db`` (and the reverse relations to minus as much), so that the RAN's
own A3 hands the UEs over one by one; after ``evacuate_s``, or as soon as the cell serves
less than half a UE on average, the cell is put to energy saving: E2SM-CCC
O-CESManagementFunction ``energySavingControl = toBeEnergySaving`` (the node hands out the
UEs left and then switches the cell off), or, on a node with only the deprecated RC style
100 control, ``CellState(active=False)``. The offsets go back to 0 once the cell is off.

**On.** A cell that is off is switched back on (``toBeNotEnergySaving``, or
``CellState(active=True)``) when one of the neighbours that absorbed its load (those it had
when switched off; its active neighbours for a cell found off) is predicted to pass
``on_pct`` within ``lead_s`` plus ``wakeup_s`` seconds (smoothed utilisation plus its
trend): a cell serves only ``wakeup_s`` after it is switched on. It has to have been off
``min_off_s``.

Hysteresis: ``off_pct`` < ``absorb_max_pct`` < ``on_pct`` keeps a switch-off from causing
an immediate switch-on, and the minimum off and on times bound how often a cell can toggle.
A control the node refuses (or the arbiter rejects in a conflict) is not retried for that
cell for ``retry_s``.

Metrics (``xapp_energysaver_...`` in Prometheus): ``cells_off`` (cells off now),
``switches_total{action,outcome}`` (``action`` is ``off``, ``on``, ``evacuate`` or
``restore``: the CIO changes), ``conflicts_total`` (another xApp's control conflicted with
one of ours).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

from pydantic import Field, model_validator

from ric import (
    CellAdministration,
    CellIndividualOffset,
    CellState,
    Conflict,
    ControlAction,
    ControlOutcome,
    Counter,
    EnergySavingControl,
    Gauge,
    KpmReport,
    NodeInfo,
    Report,
    XApp,
)

__all__ = ["CellView", "EnergySaver"]

CELL_STATE_KEY = (CellState.style, CellState.action_id)
ENERGY_SAVING = ("O-CESManagementFunction", "energySavingControl")
CIO = ("O-NRCellRelation", "cellIndividualOffset")
CONFIRM_S = 30.0
"""How long an acknowledged switch is believed over node announcements that still say
otherwise (the node announces it when done: after the shutdown's hand-outs or the wake-up)."""


@dataclass(slots=True)
class CellView:
    """What energysaver knows of one cell."""

    cell: str
    node: str
    prbs: int
    neighbours: tuple[str, ...]
    controllable: bool
    """Whether the cell's node offers energy saving (CCC, or the RC cell on/off control)."""
    ccc: bool = False
    """Whether that is the CCC energySavingControl (else the deprecated RC cell state)."""
    cio: bool = False
    """Whether the cell's node offers the CCC cellIndividualOffset (for evacuation)."""
    active: bool = True
    util_pct: float = math.nan
    """Smoothed downlink PRB utilisation, percent (NaN: unknown, or off)."""
    trend_pct_s: float = 0.0
    """Smoothed change of the utilisation, percent per second."""
    seen_at: float = -math.inf
    low_since: float | None = None
    """Since when the utilisation has been below ``off_pct``."""
    switched_at: float = -math.inf
    """When energysaver last switched it (on or off)."""
    absorbers: tuple[str, ...] = ()
    """For a cell switched off: the neighbours that took its load."""
    blocked_until: float = -math.inf
    conn: float = math.nan
    """Mean connected UEs in the last report (NaN: not reported)."""
    evacuating_since: float | None = None
    """When the evacuation (CIOs towards the absorbers) began; None: not evacuating."""
    offsets: tuple[tuple[str, str, int], ...] = ()
    """The CIOs set for the evacuation: (source, neighbour, dB)."""


class EnergySaver(XApp):
    """Switches lightly loaded cells off when their neighbours can absorb their UEs, and back
    on before those neighbours fill up."""

    name = "energysaver"
    version = "0.1.0"
    reports = [
        Report("RRU.PrbUsedDl", "RRU.PrbAvailDl", "RRC.ConnMean", period_ms=1000, per="cell")
    ]
    controls = [CellState, CellAdministration, CellIndividualOffset]

    class Config(XApp.Config):
        """energysaver settings; the defaults suit 1 s reports on macro cells."""

        off_pct: float = Field(15.0, ge=0.0, le=100.0)
        """A cell whose utilisation (percent) stays below this may be switched off."""
        off_hold_s: float = Field(60.0, ge=0.0)
        """How long the utilisation must stay below ``off_pct`` first, seconds."""
        absorb_max_pct: float = Field(50.0, gt=0.0, le=100.0)
        """Each absorbing neighbour's predicted utilisation must stay below this, percent."""
        absorb_spread: int = Field(2, ge=1)
        """The cell's load is assumed shared by at most this many of its first active
        neighbours (1 is the most cautious: one neighbour takes it all)."""
        prb_inflation: float = Field(1.5, ge=1.0, le=10.0)
        """Moved UEs are assumed to need this many times their PRBs on the neighbours."""
        on_pct: float = Field(70.0, gt=0.0, le=100.0)
        """An off cell is switched on when an absorbing neighbour is predicted above this."""
        lead_s: float = Field(10.0, ge=0.0)
        """How far ahead the absorbers' utilisation trend is extrapolated, seconds."""
        min_off_s: float = Field(30.0, ge=0.0)
        """A cell switched off stays off at least this long, seconds."""
        min_on_s: float = Field(300.0, ge=0.0)
        """A cell switched on stays on at least this long, seconds."""
        off_gap_s: float = Field(10.0, ge=0.0)
        """A switch-off waits at least this long after any switch, seconds."""
        min_active_neighbours: int = Field(2, ge=1)
        """A cell is switched off only if at least this many neighbours stay on."""
        keep_one_per_node: bool = True
        """Never switch off the last active cell of a node."""
        smoothing_s: float = Field(10.0, gt=0.0)
        """Time constant of the utilisation smoothing, seconds."""
        retry_s: float = Field(60.0, ge=0.0)
        """A cell whose control was refused is left alone this long, seconds."""
        timeout_s: float = Field(2.0, gt=0.0)
        """How long to wait for each control's outcome, seconds."""
        evacuate_s: float = Field(10.0, ge=0.0)
        """How long the CIOs push the cell's UEs to its absorbers before it is switched off,
        seconds (0: no evacuation; the node still hands out its UEs itself)."""
        evacuate_cio_db: int = Field(6, ge=1, le=24)
        """The CIO towards each absorber during the evacuation, dB (a Q-OffsetRange value)."""
        wakeup_s: float = Field(1.0, ge=0.0)
        """How long a cell switched on takes to serve (the nodes' wake-up time; the
        simulator's ``ran.cell_wakeup_s``), seconds: switch-ons are that much earlier."""

        @model_validator(mode="after")
        def _ordered(self) -> EnergySaver.Config:
            if self.evacuate_cio_db not in (1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24):
                raise ValueError(
                    f"evacuate_cio_db {self.evacuate_cio_db} is not a Q-OffsetRange value "
                    "(TS 38.331): 1..6, then even values to 24"
                )
            if not self.off_pct < self.absorb_max_pct < self.on_pct:
                raise ValueError(
                    "needs off_pct < absorb_max_pct < on_pct (the hysteresis), got "
                    f"{self.off_pct} / {self.absorb_max_pct} / {self.on_pct}"
                )
            return self

    config: Config
    cells: dict[str, CellView]
    """What is known of each cell, by cell id."""
    outcomes: list[ControlOutcome]
    """The last 100 control outcomes."""

    async def on_start(self) -> None:
        self.cells = {}
        self.outcomes = []
        self._last_switch = -math.inf
        self._busy: set[str] = set()  # cells with a control in flight
        self._expect: dict[str, tuple[bool, float]] = {}  # cell -> (state we set, when)
        m = self.metrics
        self._m_off: Gauge = m.gauge("cells_off", "Cells switched off now.")
        self._m_switch: Counter = m.counter(
            "switches_total",
            "Cell switch-offs and switch-ons sent, by outcome.",
            ["action", "outcome"],
        )
        self._m_conflict: Counter = m.counter(
            "conflicts_total", "Controls of other xApps that conflicted with energysaver's."
        )
        for node in self.nodes().values():
            self._learn(node)

    # -- topology -------------------------------------------------------------------------

    def _learn(self, node: NodeInfo) -> None:
        rc = node.rc()
        ccc_fn = node.ccc()
        ccc = ccc_fn is not None and ccc_fn[1].writable(*ENERGY_SAVING)
        cio = ccc_fn is not None and ccc_fn[1].writable(*CIO)
        controllable = ccc or (rc is not None and CELL_STATE_KEY in rc[1].actions)
        for cid, info in node.cells.items():
            cell = str(cid)
            view = self.cells.get(cell)
            if view is None:
                view = self.cells[cell] = CellView(
                    cell, str(node.id), info.bandwidth_prbs, (), controllable
                )
            view.neighbours = tuple(str(n) for n in info.neighbours)
            view.controllable = controllable
            view.ccc = ccc
            view.cio = cio
            view.prbs = info.bandwidth_prbs
            expected = self._expect.get(cell)
            if expected is not None:
                if info.active != expected[0] and self.now() - expected[1] < CONFIRM_S:
                    continue  # our switch is acknowledged; the node's update is on its way
                del self._expect[cell]
            if view.active != info.active:
                view.active = info.active
                view.util_pct = math.nan
                view.low_since = None
        self._m_off.set(sum(1 for v in self.cells.values() if not v.active))

    def _refresh(self) -> None:
        """Take cell states (on/off) and neighbour lists as the nodes last announced them."""
        for node in self.nodes().values():
            self._learn(node)

    async def on_node_up(self, node: NodeInfo) -> None:
        self._learn(node)

    async def on_node_down(self, node: NodeInfo) -> None:
        for cid in node.cells:
            self.cells.pop(str(cid), None)
        self._m_off.set(sum(1 for v in self.cells.values() if not v.active))

    async def on_conflict(self, conflict: Conflict) -> None:
        self._m_conflict.inc()
        self.log.info("conflict: %s", conflict)

    # -- reports --------------------------------------------------------------------------

    async def on_report(self, report: KpmReport) -> None:
        self._refresh()
        now = self.now()
        used = report["RRU.PrbUsedDl"]
        avail = report["RRU.PrbAvailDl"]
        conn = report["RRC.ConnMean"] if "RRC.ConnMean" in report.metrics else None
        cfg = self.config
        for i, cell in enumerate(report.entity_ids):
            view = self.cells.get(cell)
            if view is None:
                continue
            view.conn = float(conn[i]) if conn is not None else math.nan
            a = float(avail[i])
            if not a > 0 or not view.active:
                view.util_pct = math.nan
                view.low_since = None
                continue
            util = 100.0 * float(used[i]) / a
            if math.isnan(view.util_pct):
                view.util_pct, view.trend_pct_s = util, 0.0
            else:
                dt = max(now - view.seen_at, 1e-3)
                k = 1.0 - math.exp(-dt / cfg.smoothing_s)
                smoothed = view.util_pct + k * (util - view.util_pct)
                view.trend_pct_s += k * ((smoothed - view.util_pct) / dt - view.trend_pct_s)
                view.util_pct = smoothed
            view.seen_at = now
            if view.util_pct < cfg.off_pct:
                view.low_since = now if view.low_since is None else view.low_since
            else:
                view.low_since = None
        actions: list[ControlAction] = self._wake(now) or self._evacuated(now) or self._sleep(now)
        await self._send(actions)

    # -- decisions ------------------------------------------------------------------------

    def _absorbers_of(self, view: CellView) -> tuple[str, ...]:
        return view.absorbers or tuple(
            n for n in view.neighbours if n in self.cells and self.cells[n].active
        )

    def _switch(self, view: CellView, on: bool) -> ControlAction:
        """The control that switches ``view`` on or off on its node: CCC energy saving, or
        the deprecated RC cell state."""
        if view.ccc:
            return CellAdministration(
                view.cell,
                energy_saving_control=EnergySavingControl.TO_BE_NOT_ENERGY_SAVING
                if on
                else EnergySavingControl.TO_BE_ENERGY_SAVING,
            )
        return CellState(view.cell, active=on)

    def _offsets(self, view: CellView, absorbers: tuple[str, ...], db: int) -> list[ControlAction]:
        """CIOs of ``db`` on the relations from ``view`` to ``absorbers``, and of ``-db`` on the
        reverse relations where the absorber's node takes them."""
        out: list[ControlAction] = []
        for n in absorbers:
            out.append(CellIndividualOffset(view.cell, n, db))
            nv = self.cells.get(n)
            if nv is not None and nv.cio and view.cell in nv.neighbours:
                out.append(CellIndividualOffset(n, view.cell, -db))
        return out

    def _evacuated(self, now: float) -> list[ControlAction]:
        """Switch off the cell being evacuated once it is empty or its time is up, or give
        up when its absorbers no longer can take it."""
        cfg = self.config
        for view in self.cells.values():
            if view.evacuating_since is None or view.cell in self._busy:
                continue
            if not view.active:
                view.evacuating_since = None
                continue
            empty = view.conn < 0.5
            if empty or now - view.evacuating_since >= cfg.evacuate_s:
                self.log.info("%s off after evacuation (%.1f UEs left)", view.cell, view.conn)
                return [self._switch(view, on=False)]
            if not self._can_absorb(view, evacuating=True):
                self.log.info("%s stays on: its absorbers filled up", view.cell)
                view.evacuating_since = None
                view.blocked_until = now + cfg.retry_s
                return self._offsets(view, view.absorbers, 0)
        return []

    def _wake(self, now: float) -> list[ControlAction]:
        cfg = self.config
        out: list[ControlAction] = []
        for view in self.cells.values():
            if view.active or not view.controllable or view.cell in self._busy:
                continue
            if now < view.blocked_until or now - view.switched_at < cfg.min_off_s:
                continue
            for n in self._absorbers_of(view):
                nv = self.cells.get(n)
                if nv is None or math.isnan(nv.util_pct):
                    continue
                ahead = cfg.lead_s + cfg.wakeup_s
                if nv.util_pct + max(nv.trend_pct_s, 0.0) * ahead >= cfg.on_pct:
                    self.log.info(
                        "%s on: neighbour %s at %.0f%% (trend %+.1f%%/s)",
                        view.cell,
                        n,
                        nv.util_pct,
                        nv.trend_pct_s,
                    )
                    out.append(self._switch(view, on=True))
                    break
        return out

    def _sleep(self, now: float) -> list[ControlAction]:
        cfg = self.config
        if now - self._last_switch < cfg.off_gap_s:
            return []
        if any(v.evacuating_since is not None for v in self.cells.values()):
            return []  # one at a time
        carrying: set[str] = set()
        for view in self.cells.values():
            if not view.active:
                carrying.update(view.absorbers)
        candidates = sorted(
            (
                v
                for v in self.cells.values()
                if v.active
                and v.controllable
                and v.cell not in self._busy
                and v.cell not in carrying
                and v.low_since is not None
                and now - v.low_since >= cfg.off_hold_s
                and now - v.switched_at >= cfg.min_on_s
                and now >= v.blocked_until
            ),
            key=lambda v: (v.util_pct, v.cell),
        )
        for view in candidates:
            absorbers = self._can_absorb(view)
            if absorbers:
                view.absorbers = absorbers
                self.log.info(
                    "%s off at %.0f%%: absorbed by %s", view.cell, view.util_pct, absorbers
                )
                if view.cio and cfg.evacuate_s > 0:
                    view.evacuating_since = now
                    return self._offsets(view, absorbers, cfg.evacuate_cio_db)
                return [self._switch(view, on=False)]
        return []

    def _can_absorb(self, view: CellView, *, evacuating: bool = False) -> tuple[str, ...]:
        """The neighbours that would take ``view``'s load, or () when it must stay on. While
        it is evacuated, its absorbers already carry part of the load: they only need to stay
        below ``on_pct``."""
        cfg = self.config
        if evacuating:
            for name in view.absorbers:
                nv = self.cells.get(name)
                if nv is None or not nv.active:
                    return ()
                if nv.util_pct + max(nv.trend_pct_s, 0.0) * cfg.lead_s >= cfg.on_pct:
                    return ()
            return view.absorbers
        active = [
            self.cells[n]
            for n in view.neighbours
            if n in self.cells and self.cells[n].active and not math.isnan(self.cells[n].util_pct)
        ]
        if len(active) < cfg.min_active_neighbours:
            return ()
        if cfg.keep_one_per_node and not any(
            v.node == view.node and v.active and v.cell != view.cell for v in self.cells.values()
        ):
            return ()
        top = active[: cfg.absorb_spread]
        moved_prbs = view.util_pct / 100.0 * view.prbs * cfg.prb_inflation / len(top)
        for n in top:
            after = n.util_pct + 100.0 * moved_prbs / max(n.prbs, 1)
            if after + max(n.trend_pct_s, 0.0) * cfg.lead_s >= cfg.absorb_max_pct:
                return ()
        return tuple(n.cell for n in top)

    # -- acting ---------------------------------------------------------------------------

    async def _send(self, actions: list[ControlAction]) -> None:
        if not actions:
            return
        cells = {a.cell for a in actions}
        self._busy.update(cells)
        try:
            results = await asyncio.gather(
                *(self.control(a, timeout=self.config.timeout_s) for a in actions)
            )
        finally:
            self._busy.difference_update(cells)
        now = self.now()
        for action, outcome in zip(actions, results, strict=True):
            self.outcomes.append(outcome)
            self.log.info("%s", outcome)
            if isinstance(action, CellIndividualOffset):
                verb = "restore" if action.offset_db == 0 else "evacuate"
                self._m_switch.labels(action=verb, outcome=outcome.kind.value).inc()
                # The cell being evacuated: the source of a positive offset, the neighbour of
                # the negative reverse one.
                evacuated = self.cells.get(
                    action.cell_id if action.offset_db > 0 else action.neighbour
                )
                if evacuated is None or verb == "restore":
                    continue
                if outcome.ok:
                    evacuated.offsets += ((action.cell_id, action.neighbour, action.offset_db),)
                else:
                    # The evacuation did not start as planned: switch off without it.
                    evacuated.evacuating_since = -math.inf
                continue
            on = (
                action.in_service
                if isinstance(action, CellAdministration)
                else bool(isinstance(action, CellState) and action.active)
            )
            self._m_switch.labels(action="on" if on else "off", outcome=outcome.kind.value).inc()
            view = self.cells.get(action.cell)
            if view is None:
                continue
            if outcome.ok:
                self._expect[view.cell] = (on, now)
                view.switched_at = now
                view.active = on
                view.util_pct = math.nan
                view.low_since = None
                self._last_switch = now
                if on:
                    view.absorbers = ()
                else:
                    view.evacuating_since = None
                    await self._restore(view)
            else:
                view.blocked_until = now + self.config.retry_s
                if not on:
                    view.absorbers = ()
                    view.evacuating_since = None
                    await self._restore(view)
        del self.outcomes[:-100]
        self._m_off.set(sum(1 for v in self.cells.values() if not v.active))

    async def _restore(self, view: CellView) -> None:
        """Set the evacuation's CIOs back to 0 (the cell is off, or stays on)."""
        if not view.offsets:
            return
        offsets, view.offsets = view.offsets, ()
        await self._send([CellIndividualOffset(source, n, 0) for source, n, _ in offsets])
