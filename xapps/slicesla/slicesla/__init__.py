"""slicesla: a slice SLA assurance xApp.

Keeps each managed slice's target, a maximum downlink delay (URLLC) or a minimum mean per-UE
downlink throughput (eMBB), by adjusting the slice's PRB quota (``SlicePrbQuota``: dedicated /
min / max percent of the cell's PRBs) in each cell, from a per-slice KPM report every second.

The control loop, per (cell, slice):

- **error**: relative miss of the target, ``(delay - max) / max`` or ``(min - thp) / min``
  (the KPM delay ``DRB.RlcSduDelayDl`` is in 0.1 ms);
- **raise** after ``hold_reports`` consecutive misses: the slice's guarantee grows by a
  proportional step, ``step_gain x error x max(guarantee, PRB share used)``, bounded to
  ``[min_step_pct, max_step_pct]``. A delay target's guarantee is dedicated (reserved even when
  idle: that is what keeps queueing delay low when the cell is full); a throughput target's is a
  minimum, and it is raised only when the cell is contended (``contended_pct``), since quotas
  cannot help a slice whose cell has PRBs to spare;
- **budget**: the guarantees of the managed slices of a cell add up to at most
  ``max_total_min_pct``; a slice of higher ``priority`` takes room from lower ones (down to
  their floor), never from higher or equal ones;
- **relax** after ``relax_hold`` consecutive comfortable reports (delay at most
  ``(1 - relax_margin) x max``, throughput at least ``(1 + relax_margin) x min``, or no UEs
  of the slice in the cell): the guarantee shrinks by ``relax_step_pct`` towards the target's
  floor, but a dedicated guarantee only while the slice would still use at most ``relax_load``
  of it, so relaxing does not cause the next miss. Between the two thresholds is the dead
  band: nothing changes;
- **cool-down**: after a change, ``cooldown_s`` passes before the next one in that cell and
  slice, so the effect shows in the KPIs first.

Targets come from the config (``targets``) and from A1 policies of type ``slice-sla``
(``SLICE_SLA_POLICY``: a policy's body is ``{"targets": {<slice id>: <target>}}``, the same shape
as the config); a policy's targets override the config's for its slices, the latest policy wins
where two name the same slice, and deleting a policy gives its slices back to the config (or
nothing). Both paths end in one method, :meth:`SliceSla.set_targets`. A slice that leaves the
targets gets its floor quota back.

Metrics: ``violations_total{slice,target}`` (slice rows that missed their target),
``quota_changes_total{outcome}``, ``cells_in_violation{slice}`` and the per-cell
``guarantee_pct{cell,slice}``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ric import (
    ControlOutcome,
    Counter,
    EntityKind,
    Gauge,
    KpmReport,
    NodeInfo,
    OutcomeKind,
    PolicyEvent,
    PolicyStatus,
    PolicyType,
    Report,
    SliceId,
    SlicePrbQuota,
    XApp,
)

__all__ = ["SLICE_SLA_POLICY", "QuotaChange", "SliceSla", "SliceTarget"]

Reason = Literal["raise", "relax", "yield", "release"]

DELAY = "DRB.RlcSduDelayDl"
METRICS = ("RRU.PrbTotDl", "DRB.UEThpDl", "RRC.ConnMean", DELAY)


class SliceTarget(BaseModel):
    """One slice's SLA target and how far the xApp may move its quota.

    Give ``max_delay_ms`` (mean downlink RLC delay of the slice in a cell, ms) or
    ``min_thp_kbps`` (mean downlink throughput per UE of the slice in a cell, kbit/s), or both.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_delay_ms: float | None = Field(None, gt=0.0)
    min_thp_kbps: float | None = Field(None, gt=0.0)
    floor_pct: int = Field(0, ge=0, le=100)
    """The guarantee (percent of the cell's PRBs) the xApp starts from and relaxes back to."""
    max_pct: int = Field(100, ge=1, le=100)
    """The cap sent with every quota of this slice."""
    priority: int = 0
    """When the budget is short, a slice of higher priority takes room from lower ones."""
    dedicated: bool | None = None
    """Reserve the guarantee as dedicated PRBs; default: yes for a delay target, no for a
    throughput-only target."""

    @model_validator(mode="after")
    def _has_target(self) -> Self:
        if self.max_delay_ms is None and self.min_thp_kbps is None:
            raise ValueError("a slice target needs max_delay_ms or min_thp_kbps (or both)")
        if self.floor_pct > self.max_pct:
            raise ValueError(f"floor_pct {self.floor_pct} is above max_pct {self.max_pct}")
        return self

    @property
    def reserves(self) -> bool:
        """Whether the guarantee is sent as dedicated PRBs too."""
        return self.max_delay_ms is not None if self.dedicated is None else self.dedicated


_TARGET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "max_delay_ms": {"type": "number", "exclusiveMinimum": 0},
        "min_thp_kbps": {"type": "number", "exclusiveMinimum": 0},
        "floor_pct": {"type": "integer", "minimum": 0, "maximum": 100},
        "max_pct": {"type": "integer", "minimum": 1, "maximum": 100},
        "priority": {"type": "integer"},
        "dedicated": {"type": "boolean"},
    },
    "additionalProperties": False,
    "anyOf": [{"required": ["max_delay_ms"]}, {"required": ["min_thp_kbps"]}],
}

SLICE_SLA_POLICY = PolicyType(
    "slice-sla",
    {
        "type": "object",
        "required": ["targets"],
        "properties": {
            "targets": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"pattern": "^[0-9]{1,3}-[0-9A-Fa-f]{6}$"},
                "additionalProperties": _TARGET_SCHEMA,
            }
        },
        "additionalProperties": False,
    },
    name="Slice SLA targets",
    description="Per-slice downlink delay (ms) and per-UE throughput (kbit/s) targets, by "
    "S-NSSAI ('<sst>-<sd>'), that slicesla keeps with slice PRB quotas.",
)
"""The A1 policy type slicesla handles, e.g. ``{"targets": {"2-000002": {"max_delay_ms": 5}}}``."""


@dataclass(frozen=True, slots=True)
class QuotaChange:
    """One quota the xApp sent: when, where, the guarantee before and after, and the outcome."""

    at: float
    cell: str
    slice: str
    before_pct: int
    after_pct: int
    reason: Reason
    outcome: OutcomeKind


@dataclass(slots=True)
class _State:
    """The loop's memory for one slice in one cell."""

    guarantee: int
    misses: int = 0
    comfortable: int = 0
    changed_at: float = -math.inf
    violating: bool = False


_Plan = list[tuple[SlicePrbQuota, "QuotaChange"]]


@dataclass(frozen=True, slots=True)
class _Row:
    slice: str
    share_pct: float
    thp_kbps: float
    ues: float
    delay_ms: float


def _check_targets(
    targets: Mapping[str, SliceTarget | Mapping[str, Any]],
) -> dict[str, SliceTarget]:
    out: dict[str, SliceTarget] = {}
    for key, value in targets.items():
        slice_id = str(SliceId.parse(key))  # ValueError naming the bad id
        out[slice_id] = value if isinstance(value, SliceTarget) else SliceTarget(**value)
    return out


class SliceSla(XApp):
    """Keeps slice delay and throughput targets by adjusting slice PRB quotas per cell."""

    name = "slicesla"
    version = "0.1.0"
    reports = [Report(*METRICS, period_ms=1000, per="slice")]
    controls = [SlicePrbQuota]
    policy_types = [SLICE_SLA_POLICY]

    class Config(XApp.Config):
        """slicesla settings."""

        targets: dict[str, SliceTarget] = {}
        """Targets by slice id, e.g. ``{"2-000002": {"max_delay_ms": 5.0}}``."""
        hold_reports: int = Field(2, ge=1)
        """Consecutive missed reports before a guarantee is raised."""
        relax_hold: int = Field(10, ge=1)
        """Consecutive comfortable reports before a guarantee is lowered."""
        relax_margin: float = Field(0.5, gt=0.0, lt=1.0)
        """Comfortable: delay <= (1 - margin) x max, or throughput >= (1 + margin) x min."""
        relax_load: float = Field(0.7, gt=0.0, le=1.0)
        """A dedicated guarantee is lowered only while the slice would use at most this share
        of it."""
        step_gain: float = Field(0.5, gt=0.0)
        """Proportional gain: step = gain x relative error x max(guarantee, share used)."""
        min_step_pct: int = Field(2, ge=1, le=100)
        max_step_pct: int = Field(10, ge=1, le=100)
        relax_step_pct: int = Field(2, ge=1, le=100)
        cooldown_s: float = Field(3.0, ge=0.0)
        """After a change, wait this long before the next one in that cell and slice."""
        max_total_min_pct: int = Field(90, ge=0, le=100)
        """The managed slices' guarantees in a cell add up to at most this (percent); the
        rest is left to slices the xApp does not manage."""
        contended_pct: float = Field(90.0, ge=0.0, le=100.0)
        """A throughput guarantee is raised only when the cell's PRB use is at least this."""
        min_ues: float = Field(0.5, ge=0.0)
        """A slice with fewer UEs (mean) in a cell is not judged there."""
        timeout_s: float = Field(1.0, gt=0.0)
        """How long to wait for each quota control's outcome."""

        @model_validator(mode="after")
        def _steps(self) -> Self:
            if self.min_step_pct > self.max_step_pct:
                raise ValueError(
                    f"min_step_pct {self.min_step_pct} is above max_step_pct {self.max_step_pct}"
                )
            for key in self.targets:
                SliceId.parse(key)
            return self

    config: Config
    targets: dict[str, SliceTarget]
    """The targets in force, by slice id (set them with ``set_targets``)."""
    state: dict[tuple[str, str], _State]
    """The loop's state by (cell, slice)."""
    changes: list[QuotaChange]
    """Every quota the xApp sent, with its outcome (the latest 10,000)."""
    policies: dict[str, dict[str, SliceTarget]]
    """The targets of each A1 policy in force, by policy id, in the order they came."""
    _released: dict[str, SliceTarget]
    _violations: Counter
    _changes: Counter
    _in_violation: Gauge
    _guarantee: Gauge

    async def on_start(self) -> None:
        self.targets = {}
        self.policies = {}
        self.state = {}
        self.changes = []
        self._released = {}
        self._violations = self.metrics.counter(
            "violations",
            "Slice rows (one cell, one report) that missed their target.",
            ("slice", "target"),
        )
        self._changes = self.metrics.counter(
            "quota_changes", "Slice PRB quota controls sent, by outcome.", ("outcome",)
        )
        self._in_violation = self.metrics.gauge(
            "cells_in_violation",
            "Cells where the slice missed its target in the last report.",
            ("slice",),
        )
        self._guarantee = self.metrics.gauge(
            "guarantee_pct",
            "The guarantee (min PRB percent) the xApp holds for the slice.",
            ("cell", "slice"),
        )
        self.set_targets(self.config.targets)

    async def on_config(self, config: XApp.Config) -> None:
        assert isinstance(config, SliceSla.Config)
        self._apply()

    async def on_policy(self, event: PolicyEvent) -> PolicyStatus | None:
        """A ``slice-sla`` policy was created, updated or deleted: its targets join (or
        leave) those in force; one that cannot be enforced is reported with the reason."""
        if event.kind == "deleted":
            self.policies.pop(event.policy_id, None)
            self._apply()
            return None
        try:
            targets = _check_targets(event.body.get("targets", {}))
        except ValueError as exc:  # the schema let it through, the model did not
            return PolicyStatus(False, f"policy {event.policy_id}: {exc}")
        self.policies.pop(event.policy_id, None)  # an update moves it to the end: it wins
        self.policies[event.policy_id] = targets
        self._apply()
        return PolicyStatus(True)

    def _apply(self) -> None:
        """Set the targets in force: the config's, overridden by the policies' in order."""
        merged: dict[str, SliceTarget] = dict(self.config.targets)
        for targets in self.policies.values():
            merged.update(targets)
        self.set_targets(merged)

    def set_targets(self, targets: Mapping[str, SliceTarget | Mapping[str, Any]]) -> None:
        """Replace the targets in force (the config and the A1 policies come through here).

        ``targets`` maps slice ids to a ``SliceTarget`` or its fields as a mapping; a bad one
        raises ValueError (pydantic's ValidationError) and changes nothing. Slices that leave
        the targets get their floor quota back with the next report of each cell.
        """
        new = _check_targets(targets)
        for slice_id, old in self.targets.items():
            if slice_id not in new:
                self._released[slice_id] = old
        for slice_id in new:
            self._released.pop(slice_id, None)
        self.targets = new
        for slice_id in new:
            self._in_violation.labels(slice=slice_id).set(0)
        self.log.info(
            "targets: %s",
            ", ".join(f"{s} {t.model_dump(exclude_none=True)}" for s, t in new.items()) or "none",
        )

    async def on_node_down(self, node: NodeInfo) -> None:
        gone = {str(cell) for cell in node.cells}
        for key in [k for k in self.state if k[0] in gone]:
            del self.state[key]
            self._guarantee.remove(cell=key[0], slice=key[1])

    # -- the loop ------------------------------------------------------------------------

    def _can_control(self, node: str) -> bool:
        info = self.nodes().get(node)
        if info is None:
            return True  # not known (yet): try; the outcome says if it cannot
        rc = info.rc()
        return rc is not None and (SlicePrbQuota.style, SlicePrbQuota.action_id) in rc[1].actions

    async def on_report(self, report: KpmReport) -> None:
        if report.kind is not EntityKind.SLICE:
            return
        cells: dict[str, list[_Row]] = {}
        col = {m: report[m] if m in report.metrics else None for m in METRICS}
        for i, slice_id in enumerate(report.entity_ids):

            def value(metric: str, i: int = i) -> float:
                column = col[metric]
                return math.nan if column is None else float(column[i])

            cells.setdefault(report.cells[i], []).append(
                _Row(
                    slice_id,
                    value("RRU.PrbTotDl"),
                    value("DRB.UEThpDl"),
                    value("RRC.ConnMean"),
                    value(DELAY) / 10.0,  # 0.1 ms -> ms
                )
            )
        violating: dict[str, int] = dict.fromkeys(self.targets, 0)
        plans: list[tuple[_Plan, _Plan]] = []
        can_control = self._can_control(report.node)
        for cell, rows in cells.items():
            first, then = self._plan_cell(cell, rows, violating, can_control)
            if first or then:
                plans.append((first, then))
        for slice_id, count in violating.items():
            self._in_violation.labels(slice=slice_id).set(count)
        if plans:
            await asyncio.gather(*(self._send(first, then) for first, then in plans))

    def _plan_cell(
        self, cell: str, rows: list[_Row], violating: dict[str, int], can_control: bool
    ) -> tuple[_Plan, _Plan]:
        """Judge each managed slice of one cell and plan its quota changes: the decreases
        (sent first, so the minimums never add up to more than the budget), then the rest."""
        cfg = self.config
        now = self.now()
        cell_use = sum(r.share_pct for r in rows if not math.isnan(r.share_pct))
        wanted: dict[str, tuple[int, Reason]] = {}  # slice -> (new guarantee, reason)
        for slice_id, gone in self._released.items():
            if (cell, slice_id) in self.state:
                wanted[slice_id] = (gone.floor_pct, "release")
        for row in rows:
            target = self.targets.get(row.slice)
            if target is None:
                continue
            st = self.state.get((cell, row.slice))
            if st is None:
                st = self.state[(cell, row.slice)] = _State(target.floor_pct)
            error = self._error(target, row)
            idle = not math.isnan(row.ues) and row.ues < cfg.min_ues
            if error is None and not idle:  # UEs but no value to judge: wait
                st.misses = st.comfortable = 0
                st.violating = False
                continue
            missed = error is not None and error > 0.0
            st.violating = missed
            if idle or (not missed and self._comfortable(target, row)):
                # No UEs of the slice here is comfortable too: its guarantee (and the PRBs a
                # dedicated one keeps idle) goes back step by step.
                st.comfortable += 1
                st.misses = 0
            elif missed:
                violating[row.slice] += 1
                kind = "delay" if self._delay_miss(target, row) else "throughput"
                self._violations.labels(slice=row.slice, target=kind).inc()
                st.misses += 1
                st.comfortable = 0
            else:  # the dead band
                st.misses = st.comfortable = 0
            if not can_control or now - st.changed_at < cfg.cooldown_s:
                continue
            used = 0.0 if math.isnan(row.share_pct) else row.share_pct
            if missed and error is not None and st.misses >= cfg.hold_reports:
                if target.reserves or cell_use >= cfg.contended_pct:
                    ref = max(st.guarantee, used, 1.0)
                    step = round(cfg.step_gain * min(error, 10.0) * ref)
                    step = min(max(step, cfg.min_step_pct), cfg.max_step_pct)
                    wanted[row.slice] = (min(st.guarantee + step, target.max_pct), "raise")
            elif st.comfortable >= cfg.relax_hold and st.guarantee > target.floor_pct:
                lower = max(st.guarantee - cfg.relax_step_pct, target.floor_pct)
                if not target.reserves or used <= cfg.relax_load * lower:
                    wanted[row.slice] = (lower, "relax")
        if not wanted or not can_control:
            return [], []
        return self._fit(cell, wanted, now)

    def _fit(
        self,
        cell: str,
        wanted: dict[str, tuple[int, Reason]],
        now: float,
    ) -> tuple[_Plan, _Plan]:
        """Fit the wanted guarantees of one cell into the budget, highest priority first, and
        turn the changes into controls."""
        budget = self.config.max_total_min_pct
        managed = {s: st for (c, s), st in self.state.items() if c == cell}
        new = {s: st.guarantee for s, st in managed.items()}
        reason: dict[str, Reason | None] = dict.fromkeys(managed)
        for s, (g, why) in wanted.items():
            if g < new[s] or why == "release":
                new[s], reason[s] = g, why
        raises = sorted(
            ((s, g) for s, (g, why) in wanted.items() if why == "raise" and g > new[s]),
            key=lambda item: -self._priority(item[0]),
        )
        for s, g in raises:
            room = budget - sum(v for k, v in new.items() if k != s)
            if room < g:  # take from lower-priority slices, down to their floors
                for other in sorted(new, key=self._priority):
                    if self._priority(other) >= self._priority(s) or room >= g:
                        continue
                    floor = self._floor(other)
                    give = min(new[other] - floor, g - room)
                    if give > 0:
                        new[other] -= give
                        reason[other] = "yield"
                        room += give
            if min(g, room) > new[s]:
                new[s], reason[s] = min(g, room), "raise"
        return self._controls(cell, managed, new, reason, now)

    def _controls(
        self,
        cell: str,
        managed: dict[str, _State],
        new: dict[str, int],
        reason: dict[str, Reason | None],
        now: float,
    ) -> tuple[_Plan, _Plan]:
        first: _Plan = []
        then: _Plan = []
        for s, g in new.items():
            st = managed[s]
            why = reason[s]
            if why is None or (g == st.guarantee and why != "release"):
                continue
            target = self.targets.get(s) or self._released.get(s)
            if target is None:
                continue
            action = SlicePrbQuota(
                cell_id=cell,
                slice=s,
                min_pct=g,
                max_pct=max(target.max_pct, g),
                dedicated_pct=g if target.reserves else 0,
            )
            change = QuotaChange(now, cell, s, st.guarantee, g, why, OutcomeKind.ACKNOWLEDGED)
            (first if g < st.guarantee else then).append((action, change))
        return first, then

    def _priority(self, slice_id: str) -> int:
        target = self.targets.get(slice_id)
        return target.priority if target is not None else -(2**31)  # released: first to yield

    def _floor(self, slice_id: str) -> int:
        target = self.targets.get(slice_id) or self._released.get(slice_id)
        return target.floor_pct if target is not None else 0

    @staticmethod
    def _delay_miss(target: SliceTarget, row: _Row) -> bool:
        return target.max_delay_ms is not None and row.delay_ms > target.max_delay_ms

    def _error(self, target: SliceTarget, row: _Row) -> float | None:
        """The slice's relative miss (positive) or margin (negative); None with nothing to
        judge (too few UEs, or no value)."""
        if math.isnan(row.ues) or row.ues < self.config.min_ues:
            return None
        errors = []
        if target.max_delay_ms is not None and not math.isnan(row.delay_ms):
            errors.append((row.delay_ms - target.max_delay_ms) / target.max_delay_ms)
        if target.min_thp_kbps is not None and not math.isnan(row.thp_kbps):
            errors.append((target.min_thp_kbps - row.thp_kbps) / target.min_thp_kbps)
        return max(errors) if errors else None

    def _comfortable(self, target: SliceTarget, row: _Row) -> bool:
        m = self.config.relax_margin
        ok = True
        if target.max_delay_ms is not None and not math.isnan(row.delay_ms):
            ok = ok and row.delay_ms <= (1.0 - m) * target.max_delay_ms
        if target.min_thp_kbps is not None and not math.isnan(row.thp_kbps):
            ok = ok and row.thp_kbps >= (1.0 + m) * target.min_thp_kbps
        return ok

    async def _send(self, first: _Plan, then: _Plan) -> None:
        for batch in (first, then):
            if not batch:
                continue
            outcomes = await asyncio.gather(
                *(self.control(action, timeout=self.config.timeout_s) for action, _ in batch)
            )
            for (action, change), outcome in zip(batch, outcomes, strict=True):
                self._record(action, change, outcome)

    def _record(self, action: SlicePrbQuota, change: QuotaChange, outcome: ControlOutcome) -> None:
        key = (action.cell_id, action.slice)
        self._changes.labels(outcome=outcome.kind.value).inc()
        done = QuotaChange(
            change.at,
            change.cell,
            change.slice,
            change.before_pct,
            change.after_pct,
            change.reason,
            outcome.kind,
        )
        self.changes.append(done)
        del self.changes[:-10_000]
        st = self.state.get(key)
        if outcome.ok:
            self.log.info(
                "%s %s in %s: guarantee %d%% -> %d%%",
                change.reason,
                action.slice,
                action.cell_id,
                change.before_pct,
                change.after_pct,
            )
            if change.reason == "release":
                self.state.pop(key, None)
                self._guarantee.remove(cell=action.cell_id, slice=action.slice)
                return
            if st is not None:
                st.guarantee = change.after_pct
                st.changed_at = self.now()
                st.misses = st.comfortable = 0
                self._guarantee.labels(cell=action.cell_id, slice=action.slice).set(
                    change.after_pct
                )
        else:
            self.log.warning("%s", outcome)
            if st is not None:  # try again after the cool-down, from what the node has
                st.changed_at = self.now()
