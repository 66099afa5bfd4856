"""The conflict arbiter: sees every control before it leaves and decides between xApps.

Each control touches one or more (target, parameter) pairs: a handover sets the serving cell
of a UE and sends UEs into a cell, a slice quota sets a slice's PRB quota, a cell-state
control (RC cell state, or CCC administrative and energy-saving state) sets a cell's activity
or power, and a cell individual offset sets a neighbour relation's ``cellIndividualOffset``
(a positive one also sends UEs into the neighbour). Two different xApps touching the same pair with
different values within the guard window of the earlier control's kind are in conflict; so is
the indirect case of one xApp handing UEs into a cell that another is switching off (in either
order). The configured policy decides:

- ``first-wins``: the later control is refused;
- ``priority``: the xApp with the higher configured priority wins (the later control is
  allowed if its xApp outranks the earlier one's, and the earlier one is overridden); equal
  priorities fall back to first-wins;
- ``reject-both``: the later control is refused and the pair stays contested: every further
  control on it is refused until the window has passed.

Both xApps learn of the conflict (the refused one through its outcome, the other through
``on_conflict``); the conflict is counted and logged with both parties.

This arbiter keeps its window in the process: it is the whole story for one runtime, and
costs no round trip. Replicas of one RIC (``[cluster] enabled``) use
``ric.conflicts_shared.SharedArbiter`` instead, whose window is in Redis, checked by one
atomic script per control, with the same rules: two xApps on different replicas conflict as
they would on one, the first xApp is told on its own replica, and a check Redis does not
answer within ``conflicts.shared_timeout_s`` refuses the control (fails closed; that module
says why).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from ric.actions import (
    CellAdministration,
    CellIndividualOffset,
    CellState,
    Conflict,
    ControlAction,
    GenericControl,
    Handover,
    SlicePrbQuota,
)

__all__ = ["Arbiter", "Decision", "Policy", "Token", "touches"]

log = logging.getLogger(__name__)

Policy = Literal["first-wins", "priority", "reject-both"]
_RECEIVES = "receives_ues"


def touches(action: ControlAction) -> list[tuple[str, str, object]]:
    """The (target, parameter, value) triples a control changes."""
    if isinstance(action, Handover):
        return [
            (f"ue:{action.ue}", "serving_cell", action.target_cell),
            (f"cell:{action.target_cell}", _RECEIVES, True),
        ]
    if isinstance(action, SlicePrbQuota):
        return [
            (action.target, "prb_quota", (action.min_pct, action.max_pct, action.dedicated_pct))
        ]
    if isinstance(action, CellState):
        out: list[tuple[str, str, object]] = []
        if action.active is not None:
            out.append((action.target, "active", action.active))
        if action.tx_power_dbm is not None:
            out.append((action.target, "tx_power_dbm", action.tx_power_dbm))
        return out
    if isinstance(action, CellIndividualOffset):
        out = [(action.target, "cellIndividualOffset", action.offset_db)]
        if action.offset_db > 0:  # steers the cell's UEs into the neighbour
            out.append((f"cell:{action.neighbour}", _RECEIVES, True))
        return out
    if isinstance(action, CellAdministration):
        # Every way of taking a cell out of service (or back) is one parameter, so that a
        # lock, a shutdown and energy saving meet each other and the RC cell state.
        return [(action.target, "active", action.in_service)]
    if isinstance(action, GenericControl):
        params = tuple(sorted(action.params.items()))
        return [(action.target, f"rc{action.control_style}.{action.control_action_id}", params)]
    return []


@dataclass(eq=False)
class _Touch:
    target: str
    xapp: str
    action: ControlAction
    parameter: str
    value: object
    at: float
    window_s: float
    contested: bool = False
    entry: str = ""
    """Its id in the window shared by a RIC's replicas (``ric.conflicts_shared``)."""


Token = list[tuple[str, _Touch]]
"""What the arbiter recorded for an allowed control, to retract it if it does not take effect."""


@dataclass(frozen=True)
class Decision:
    """What the arbiter decided for one control.

    ``allowed`` says whether it may leave; ``conflict`` describes the conflict if there was
    one; ``notify`` is the other xApp, to be told through ``on_conflict``.
    """

    allowed: bool
    conflict: Conflict | None = None
    notify: str | None = None
    token: Token = field(default_factory=list)


def _clash(new_param: str, new_value: object, old: _Touch) -> str | None:
    """The parameter two touches of the same target conflict on, or None."""
    if new_param == old.parameter:
        return new_param if new_value != old.value or old.contested else None
    if {new_param, old.parameter} == {_RECEIVES, "active"}:
        off = new_value if new_param == "active" else old.value
        return "active" if off is False else None
    return None


class Arbiter:
    """Checks controls against recent controls of other xApps; see the module docstring."""

    def __init__(
        self,
        policy: Policy,
        windows_s: Mapping[str, float],
        priorities: Mapping[str, int],
        now: Callable[[], float],
    ) -> None:
        self.policy: Policy = policy
        self._windows = dict(windows_s)
        self._priorities = dict(priorities)
        self._now = now
        self._recent: dict[str, list[_Touch]] = {}
        self._since_prune = 0

    def window_s(self, kind: str) -> float:
        """The guard window of an action kind, in seconds."""
        return self._windows.get(kind, self._windows.get("default", 5.0))

    def _live(self, target: str, now: float) -> list[_Touch]:
        entries = self._recent.get(target)
        if not entries:
            return []
        alive = [t for t in entries if now - t.at < t.window_s]
        if len(alive) != len(entries):
            if alive:
                self._recent[target] = alive
            else:
                del self._recent[target]
        return alive

    def decide(self, xapp: str, action: ControlAction) -> Decision:
        """Decide whether ``action`` from ``xapp`` may leave; record it if so."""
        now = self._now()
        wanted = touches(action)
        rivals: list[tuple[_Touch, str]] = []
        for target, parameter, value in wanted:
            for old in self._live(target, now):
                if old.xapp == xapp and not old.contested:
                    continue
                clash = _clash(parameter, value, old)
                if clash is not None:
                    rivals.append((old, clash))
        if not rivals:
            return Decision(True, token=self._record(xapp, action, wanted, now))
        first, parameter = min(rivals, key=lambda r: r[0].at)
        allowed = False
        winner: str | None = first.xapp
        if self.policy == "priority":
            mine = self._priorities.get(xapp, 0)
            if all(mine > self._priorities.get(old.xapp, 0) for old, _ in rivals):
                allowed, winner = True, xapp
        elif self.policy == "reject-both":
            winner = None
            for old, _ in rivals:
                old.contested = True
        conflict = Conflict(
            policy=self.policy,
            target=first.target,
            parameter=parameter,
            first_xapp=first.xapp,
            first=first.action,
            second_xapp=xapp,
            second=action,
            winner=winner,
            at=now,
        )
        log.warning("conflict: %s", conflict, extra={"xapp": xapp, "control": conflict.target})
        token: Token = []
        if allowed:
            for old, _ in rivals:  # overridden: they no longer hold the pair
                self._forget([(old.target, old)])
            token = self._record(xapp, action, wanted, now)
        return Decision(allowed, conflict, first.xapp if first.xapp != xapp else None, token)

    def _record(
        self, xapp: str, action: ControlAction, wanted: list[tuple[str, str, object]], now: float
    ) -> Token:
        window = self.window_s(action.kind)
        token = []
        for target, parameter, value in wanted:
            touch = _Touch(target, xapp, action, parameter, value, now, window)
            entries = self._recent.setdefault(target, [])
            # An xApp's newer value of a parameter replaces its older one.
            entries[:] = [
                t for t in entries if t.xapp != xapp or t.parameter != parameter or t.contested
            ]
            entries.append(touch)
            token.append((target, touch))
        self._since_prune += 1
        if self._since_prune >= 1000:
            self._since_prune = 0
            for key in list(self._recent):
                self._live(key, now)
        return token

    def retract(self, token: Token) -> None:
        """Forget a control that did not take effect (refused, failed or timed out)."""
        self._forget(token)

    def _forget(self, token: Token) -> None:
        for target, touch in token:
            entries = self._recent.get(target)
            if entries and touch in entries and not touch.contested:
                entries.remove(touch)
                if not entries:
                    del self._recent[target]
