"""The subscription manager: xApps' report declarations become shared E2 subscriptions.

On each node, the declarations of all xApps that ask for the same kind of rows (cell, slice
or UE) over the same cells are merged into ONE E2 subscription: the union of their metric
names, at the finest period asked for (but not below the node's minimum). Each xApp receives
only its own names, at its own period: where it asked for a slower period than the shared one,
the runtime averages the shared reports over the xApp's period (NaN-aware, per entity).

When an xApp comes or goes, the merged subscription is replaced make-before-break: the new
one is requested while the old one keeps delivering, the xApps switch over when the node
admits the new one, and only then is the old one deleted, so the others see no gap and no
duplicate. When a node admits only some measurements, each xApp learns exactly which of its
names it will not get, with the node's cause (``XApp.on_subscription``). When a node comes
back, everything is requested again from the declarations. A per-xApp limit caps how many
(node, report) subscriptions an xApp may hold.
"""

from __future__ import annotations

import enum
import functools
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ric._proto.e2.v1 import common_pb2, e2_pb2, kpm_pb2
from ric.e2.convert import cause_from_proto, cell_id_to_proto, report_from_indication
from ric.e2.session import NodeSession
from ric.errors import ProtocolError
from ric.grants import Grants
from ric.host import XAppHost
from ric.ids import CellId
from ric.model import Cause, CauseCode, KpmFunction
from ric.report import EntityKind, KpmReport
from ric.types import Sensor
from ric.xapp import Report, ReportState, SubscriptionStatus

__all__ = ["E2Subscription", "Plan", "SubscriptionManager", "SubscriptionState", "Tap", "plan"]

log = logging.getLogger(__name__)

_UE_STYLES = (5, 4, 3, 2)
"""KPM styles that give UE rows, in order of preference (5: multiple UEs)."""

GroupKey = tuple[str, tuple[str, ...]]
"""What can share one E2 subscription: the kind of rows and the cells in scope."""


_KINDS = {kind.value: kind for kind in EntityKind}
"""Row kind by its text (a subscription key holds the text): a dict lookup per indication
instead of an enum construction."""


class SubscriptionState(enum.Enum):
    """Life of one E2 subscription."""

    REQUESTED = "requested"
    ACTIVE = "active"
    FAILED = "failed"
    DELETING = "deleting"


@dataclass(frozen=True, eq=False)
class Want:
    """One report declaration of one xApp."""

    host: XAppHost
    index: int
    report: Report


@dataclass(frozen=True)
class Plan:
    """How a group of declarations is served on one node."""

    style: int
    metrics: tuple[str, ...]
    period_ms: int
    unsupported: dict[str, Cause]


def plan(reports: Sequence[Report], kpm: KpmFunction) -> Plan | Cause:
    """The merged request for ``reports`` (same kind of rows) on a node, or why it cannot be.

    The style chosen is the one that reports the most of the wanted names; names it does not
    report are left out, each with a cause. The period is the finest asked for, raised to the
    node's minimum if needed.
    """
    wanted = list(dict.fromkeys(m for r in reports for m in r.metrics))
    per = reports[0].per
    candidates = _UE_STYLES if per == "ue" else (1,)
    offered = [s for s in candidates if s in kpm.styles]
    if not offered:
        return Cause(
            CauseCode.RIC_REQUEST_ACTION_NOT_SUPPORTED,
            f"the node has no KPM report style {'/'.join(map(str, candidates))} for per={per!r}",
        )
    style = max(
        offered, key=lambda s: (len(set(wanted) & kpm.styles[s].metric_names), -offered.index(s))
    )
    names = kpm.styles[style].metric_names
    metrics = tuple(m for m in wanted if m in names)
    if not metrics:
        return Cause(
            CauseCode.RIC_REQUEST_MEASUREMENT_NOT_SUPPORTED,
            f"the node's KPM style {style} reports none of {', '.join(wanted)}",
        )
    unsupported = {
        m: Cause(
            CauseCode.RIC_REQUEST_MEASUREMENT_NOT_SUPPORTED,
            f"the node does not advertise {m} in KPM style {style}",
        )
        for m in wanted
        if m not in names
    }
    period = max(min(r.period_ms for r in reports), kpm.min_reporting_period_ms)
    return Plan(style, metrics, period, unsupported)


class Tap:
    """Delivers one xApp's part of a shared subscription: its names, at its period."""

    __slots__ = (
        "_acc",
        "_cnt",
        "_first",
        "_ids",
        "_n",
        "_select",
        "_selected_from",
        "every",
        "metrics",
        "want",
    )

    def __init__(self, want: Want, metrics: tuple[str, ...], every: int) -> None:
        self.want = want
        self.metrics = metrics
        self.every = every
        self._selected_from: tuple[str, ...] | None = None
        self._select: list[int] | None = None
        self._n = 0
        self._ids: tuple[str, ...] = ()
        self._acc: npt.NDArray[np.float64] | None = None
        self._cnt: npt.NDArray[np.int32] | None = None
        self._first: KpmReport | None = None

    def _part(self, report: KpmReport) -> KpmReport:
        if report.metrics is not self._selected_from:
            self._selected_from = report.metrics
            if report.metrics == self.metrics:
                self._select = None
            else:
                index = {m: i for i, m in enumerate(report.metrics)}
                self._select = [index.get(m, -1) for m in self.metrics]
        if self._select is None:
            return report
        values = np.full((len(report), len(self.metrics)), np.nan)
        for j, i in enumerate(self._select):
            if i >= 0:
                values[:, j] = report.values[:, i]
        return report.with_values(self.metrics, values)

    def feed(self, report: KpmReport) -> None:
        """Take one shared report; deliver this xApp's part when its period is complete."""
        part = self._part(report)
        if self.every == 1:
            self.want.host.deliver(part)
            return
        values = part.values
        missing = np.isnan(values)
        if self._n == 0 or part.entity_ids != self._ids:
            # A new window (or the entities changed, e.g. a handover): start averaging again.
            self._ids = part.entity_ids
            self._acc = np.where(missing, 0.0, values)
            self._cnt = (~missing).astype(np.int32)
            self._first = part
            self._n = 1
        else:
            assert self._acc is not None and self._cnt is not None
            self._acc += np.where(missing, 0.0, values)
            self._cnt += ~missing
            self._n += 1
        if self._n < self.every:
            return
        assert self._acc is not None and self._cnt is not None and self._first is not None
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(self._cnt > 0, self._acc / np.maximum(self._cnt, 1), np.nan)
        first = self._first
        self._n = 0
        self.want.host.deliver(
            KpmReport(
                node=part.node,
                kind=part.kind,
                metrics=part.metrics,
                entity_ids=part.entity_ids,
                values=mean,
                cells=part.cells,
                slices=part.slices,
                collection_start=first.collection_start,
                granularity_ms=first.granularity_ms * self.every,
            )
        )


@dataclass(eq=False)
class E2Subscription:
    """One E2 subscription on one node, shared by the xApps whose declarations it serves."""

    request_id: tuple[int, int]
    node: NodeSession
    key: GroupKey
    ran_function_id: int
    style: int
    metrics: tuple[str, ...]
    period_ms: int
    wants: list[Want]
    unsupported: dict[str, Cause]
    replaces: E2Subscription | None = None
    state: SubscriptionState = SubscriptionState.REQUESTED
    cause: Cause | None = None
    not_admitted: dict[str, Cause] = field(default_factory=dict)
    taps: list[Tap] = field(default_factory=list)
    superseded: bool = False
    created_at: float = field(default_factory=time.time)
    indications: int = 0

    def same_request(self, p: Plan) -> bool:
        """Whether this subscription already asks for exactly what ``p`` asks."""
        return (self.style, self.metrics, self.period_ms) == (p.style, p.metrics, p.period_ms)

    def describe(self) -> dict[str, object]:
        """A JSON-ready summary."""
        return {
            "request_id": list(self.request_id),
            "node": self.node.id,
            "xapps": sorted({w.host.name for w in self.wants}),
            "per": self.key[0],
            "cells": list(self.key[1]),
            "metrics": list(self.metrics),
            "not_admitted": {
                m: str(c) for m, c in {**self.unsupported, **self.not_admitted}.items()
            },
            "period_ms": self.period_ms,
            "style": self.style,
            "state": self.state.value,
            "cause": str(self.cause) if self.cause else None,
            "indications": self.indications,
        }

    def record(self) -> dict[str, Any]:
        """What the runtime keeps of this subscription in the SDL (``ric.subscriptions``): the
        request, its xApps and the period each is served at (granted once active, asked
        for until then)."""
        granted = {t.want.host.name: t.every * self.period_ms for t in self.taps}
        asked = {w.host.name: w.report.period_ms for w in self.wants}
        return {
            "request_id": list(self.request_id),
            "node": self.node.id,
            "ran_function_id": self.ran_function_id,
            "xapps": sorted({w.host.name for w in self.wants}),
            "per": self.key[0],
            "cells": list(self.key[1]),
            "metrics": list(self.metrics),
            "period_ms": self.period_ms,
            "style": self.style,
            "state": self.state.value,
            "xapp_period_ms": {**asked, **granted},
        }


class SubscriptionManager:
    """Keeps, on every node, the merged E2 subscriptions that the xApps' declarations call for.

    ``next_instance`` is shared with the control router so that every RIC request id on a
    node is unique; ``max_per_xapp`` caps the (node, report) subscriptions of one xApp.
    """

    def __init__(
        self,
        sensor: Sensor,
        next_instance: Callable[[], int] | None = None,
        *,
        max_per_xapp: int | None = None,
        requestor: int = 0,
        grants: Grants | None = None,
        on_change: Callable[[NodeSession], None] | None = None,
        max_entities_per_matrix: int = 20_000,
        max_values_per_batch: int = 250_000,
        max_indications_per_batch: int = 256,
    ) -> None:
        self._sensor = sensor
        self._max_entities = max_entities_per_matrix
        self._max_batch = max_values_per_batch
        self._max_indications = max_indications_per_batch
        self._on_change = on_change
        """Told after anything may have changed a node's subscriptions (never per indication)."""
        self._by_id: dict[tuple[int, int], E2Subscription] = {}
        self._by_node: dict[NodeSession, dict[tuple[int, int], E2Subscription]] = {}
        """The same subscriptions by node: a node's events touch only its own, never all."""
        self._next = next_instance or itertools.count(1).__next__
        self._max = max_per_xapp
        self._requestor = requestor
        self._held: dict[str, set[tuple[str, int]]] = {}
        """The (node, report index) slots each xApp holds, for the per-xApp limit."""
        self._held_on: dict[str, set[tuple[str, int]]] = {}
        """The same slots by node: (xApp, report index) held on each node id."""
        self._grants = grants or Grants()
        self._denied: dict[str, set[tuple[str, int]]] = {}
        """(xApp, report index) already told it may not subscribe, by node id."""

    def snapshot(self) -> list[E2Subscription]:
        """Every E2 subscription the runtime knows, oldest first."""
        return list(self._by_id.values())

    def live(self, session: NodeSession | None = None) -> list[E2Subscription]:
        """The requested or active subscriptions (of one node, if given: then only that
        node's are looked at)."""
        subs = self._by_id if session is None else self._by_node.get(session, {})
        return [
            s
            for s in subs.values()
            if s.state in (SubscriptionState.REQUESTED, SubscriptionState.ACTIVE)
        ]

    def _add(self, sub: E2Subscription) -> None:
        self._by_id[sub.request_id] = sub
        self._by_node.setdefault(sub.node, {})[sub.request_id] = sub

    def _forget(self, sub: E2Subscription) -> None:
        """Drop ``sub`` from both indexes (nothing if it is already gone)."""
        if self._by_id.get(sub.request_id) is not sub:
            return
        del self._by_id[sub.request_id]
        mine = self._by_node[sub.node]
        del mine[sub.request_id]
        if not mine:  # no empty entry per node that came and went
            del self._by_node[sub.node]

    # -- keeping subscriptions in line with the declarations -------------------------------------

    def sync(self, session: NodeSession, hosts: Iterable[XAppHost]) -> None:
        """Make ``session``'s subscriptions serve exactly the reports of the accepting hosts."""
        groups: dict[GroupKey, list[Want]] = {}
        for host in hosts:
            if not host.accepting:
                continue
            for index, report in enumerate(host.cls.reports):
                key: GroupKey = (report.per, tuple(sorted(report.cells)))
                groups.setdefault(key, []).append(Want(host, index, report))
        kpm = session.info.kpm()
        current: dict[GroupKey, E2Subscription] = {}
        for sub in self.live(session):
            if not sub.superseded and (
                sub.key not in current or sub.created_at >= current[sub.key].created_at
            ):
                current[sub.key] = sub
        for key, wants in groups.items():
            wants = [
                w for w in wants if self._granted(session, w) and self._admit_limit(session, w)
            ]
            old = current.pop(key, None)
            if not wants:
                if old is not None:
                    self._retire(old)
                continue
            if kpm is None:
                for w in wants:
                    self._release(session, w)
                    self._status(
                        w,
                        session,
                        ReportState.REFUSED,
                        cause=Cause(
                            CauseCode.RIC_SERVICE_RAN_FUNCTION_NOT_SUPPORTED,
                            "the node has no KPM function",
                        ),
                    )
                continue
            result = plan([w.report for w in wants], kpm[1])
            if isinstance(result, Cause):
                for w in wants:
                    self._release(session, w)
                    self._status(w, session, ReportState.REFUSED, cause=result)
                if old is not None:
                    self._retire(old)
                continue
            if old is not None and old.same_request(result):
                self._rewire(old, wants)
                continue
            if old is not None and old.state is SubscriptionState.REQUESTED:
                # Not answered yet: it will be deleted when it is; the one it replaces serves on.
                old.superseded = True
                replaces, old.replaces = old.replaces, None
            else:
                replaces = old
            self._request(session, key, kpm[0], result, wants, replaces)
        for old in current.values():
            self._retire(old)
        self._drop_released(session, groups)
        self._changed(session)

    def _changed(self, session: NodeSession) -> None:
        if self._on_change is not None:
            self._on_change(session)

    def _granted(self, session: NodeSession, want: Want) -> bool:
        grant = self._grants.of(want.host.name)
        why = grant.refuse_report(want.report, session.id) if grant is not None else None
        if why is None:
            return True
        denied = self._denied.setdefault(session.id, set())
        if (want.host.name, want.index) not in denied:  # tell (and audit) once per node session
            denied.add((want.host.name, want.index))
            detail = f"xApp {want.host.name} may not subscribe to this: {why}"
            self._sensor.permission_denied(
                want.host.name, f"report {','.join(want.report.metrics)} on {session.id}", detail
            )
            self._status(
                want,
                session,
                ReportState.REFUSED,
                cause=Cause(CauseCode.MISC_NOT_AUTHORIZED, detail),
            )
        return False

    def _admit_limit(self, session: NodeSession, want: Want) -> bool:
        held = self._held.setdefault(want.host.name, set())
        slot = (session.id, want.index)
        if slot in held:
            return True
        if self._max is not None and len(held) >= self._max:
            self._sensor.limit_reached(want.host.name, "subscriptions")
            self._status(
                want,
                session,
                ReportState.REFUSED,
                cause=Cause(
                    CauseCode.RIC_SERVICE_RIC_RESOURCE_LIMIT,
                    f"xApp {want.host.name} holds its limit of {self._max} subscriptions",
                ),
            )
            return False
        held.add(slot)
        self._held_on.setdefault(session.id, set()).add((want.host.name, want.index))
        return True

    def _release(self, session: NodeSession, want: Want) -> None:
        self._unhold(session.id, want.host.name, want.index)

    def _unhold(self, node: str, xapp: str, index: int) -> None:
        self._held.get(xapp, set()).discard((node, index))
        self._held_on.get(node, set()).discard((xapp, index))

    def _drop_released(self, session: NodeSession, groups: dict[GroupKey, list[Want]]) -> None:
        wanted = {(w.host.name, w.index) for ws in groups.values() for w in ws}
        for xapp, index in [s for s in self._held_on.get(session.id, ()) if s not in wanted]:
            self._unhold(session.id, xapp, index)

    def _request(
        self,
        session: NodeSession,
        key: GroupKey,
        ran_function_id: int,
        p: Plan,
        wants: list[Want],
        replaces: E2Subscription | None,
    ) -> None:
        for stale in [s for s in self._by_node.get(session, {}).values() if s.key == key]:
            if stale.state is SubscriptionState.FAILED:  # a new attempt replaces the failed one
                self._forget(stale)
        request_id = (self._requestor, self._next())
        sub = E2Subscription(
            request_id,
            session,
            key,
            ran_function_id,
            p.style,
            p.metrics,
            p.period_ms,
            wants,
            p.unsupported,
            replaces,
        )
        self._add(sub)
        msg = e2_pb2.SubscriptionRequest(
            request_id=common_pb2.RicRequestId(requestor=request_id[0], instance=request_id[1]),
            ran_function_id=ran_function_id,
            kpm_trigger=kpm_pb2.KpmEventTrigger(reporting_period_ms=p.period_ms),
            actions=[
                e2_pb2.Action(
                    action_id=1,
                    type=e2_pb2.ACTION_TYPE_REPORT,
                    kpm=kpm_pb2.KpmActionDefinition(
                        report_style=p.style,
                        metric_names=p.metrics,
                        granularity_period_ms=p.period_ms,
                        scope=kpm_pb2.KpmScope(
                            cells=[cell_id_to_proto(CellId.parse(c)) for c in key[1]]
                        ),
                        per_slice=key[0] == "slice",
                    ),
                )
            ],
        )
        session.send(e2_pb2.RicMessage(subscription_request=msg))

    def _rewire(self, sub: E2Subscription, wants: list[Want]) -> None:
        """Same request, different xApps: change who receives, without touching the node."""
        sub.wants = wants
        if sub.state is SubscriptionState.ACTIVE:
            self._open_taps(sub)

    def _open_taps(self, sub: E2Subscription) -> None:
        existing = {(t.want.host.name, t.want.index): t for t in sub.taps}
        taps = []
        refused = {**sub.unsupported, **sub.not_admitted}
        for want in sub.wants:
            old = existing.get((want.host.name, want.index))
            if old is not None:
                taps.append(old)
                continue
            metrics = tuple(m for m in want.report.metrics if m not in refused)
            not_admitted = {m: refused[m] for m in want.report.metrics if m in refused}
            if not metrics:
                self._status(
                    want,
                    sub.node,
                    ReportState.FAILED,
                    not_admitted=not_admitted,
                    cause=Cause(
                        CauseCode.RIC_REQUEST_MEASUREMENT_NOT_SUPPORTED,
                        "the node admitted none of this report's measurements",
                    ),
                )
                continue
            every = max(1, round(want.report.period_ms / sub.period_ms))
            taps.append(Tap(want, metrics, every))
            self._status(
                want,
                sub.node,
                ReportState.ACTIVE,
                metrics=metrics,
                not_admitted=not_admitted,
                period_ms=every * sub.period_ms,
            )
        sub.taps = taps

    def _status(
        self,
        want: Want,
        session: NodeSession,
        state: ReportState,
        *,
        metrics: tuple[str, ...] = (),
        not_admitted: dict[str, Cause] | None = None,
        period_ms: int = 0,
        cause: Cause | None = None,
    ) -> None:
        status = SubscriptionStatus(
            node=session.id,
            report=want.report,
            state=state,
            metrics=metrics,
            not_admitted=not_admitted or {},
            period_ms=period_ms,
            cause=cause,
        )
        want.host.subscription_status(want.index, status)
        if state is not ReportState.ACTIVE:
            log.info(
                "%s's report %s on node %s: %s",
                want.host.name,
                ",".join(want.report.metrics),
                session.id,
                cause,
                extra={"node": session.id, "xapp": want.host.name},
            )
        self._sensor.subscription_changed(session.id, want.host.name, state)

    def _retire(self, sub: E2Subscription) -> None:
        """Stop delivering from ``sub`` and delete it on its node (or forget it); a pending
        replacement takes the subscription it was to replace with it."""
        if sub.replaces is not None:
            old, sub.replaces = sub.replaces, None
            self._retire(old)
        sub.taps = []
        sub.wants = []
        if sub.state is SubscriptionState.ACTIVE:
            sub.state = SubscriptionState.DELETING
            sub.node.send(
                e2_pb2.RicMessage(
                    subscription_delete_request=e2_pb2.SubscriptionDeleteRequest(
                        request_id=common_pb2.RicRequestId(
                            requestor=sub.request_id[0], instance=sub.request_id[1]
                        ),
                        ran_function_id=sub.ran_function_id,
                    )
                )
            )
        elif sub.state is SubscriptionState.REQUESTED:
            sub.superseded = True  # deleted once the node answers
        else:
            self._forget(sub)

    def node_down(self, session: NodeSession) -> None:
        """Forget the subscriptions of a node whose session ended (they die with it)."""
        for key in self._by_node.pop(session, {}):
            del self._by_id[key]
        for xapp, index in self._held_on.pop(session.id, ()):
            self._held.get(xapp, set()).discard((session.id, index))
        self._denied.pop(session.id, None)

    def on_reset(self, session: NodeSession) -> None:
        """The node reset: its subscriptions are gone (the caller syncs it again)."""
        self.node_down(session)

    # -- node answers -----------------------------------------------------------------------

    def _find(
        self, session: NodeSession, rid: common_pb2.RicRequestId, what: str
    ) -> E2Subscription:
        key = (rid.requestor, rid.instance)
        sub = self._by_id.get(key)
        if sub is None or sub.node is not session:
            raise ProtocolError(
                Cause(
                    CauseCode.RIC_REQUEST_ID_UNKNOWN,
                    f"{what} for request {key[0]}:{key[1]}, which the RIC never sent to this node",
                ),
                key,
            )
        return sub

    def on_response(self, session: NodeSession, msg: e2_pb2.SubscriptionResponse) -> None:
        """The node admitted (some of) a subscription."""
        sub = self._find(session, msg.request_id, "SubscriptionResponse")
        try:
            self._admitted(sub, msg)
        finally:
            self._changed(session)

    def _admitted(self, sub: E2Subscription, msg: e2_pb2.SubscriptionResponse) -> None:
        if sub.state is not SubscriptionState.REQUESTED:
            return
        if 1 not in msg.admitted_action_ids:
            cause = (
                cause_from_proto(msg.not_admitted_actions[0].cause)
                if msg.not_admitted_actions
                else Cause(CauseCode.RIC_REQUEST_ACTION_NOT_SUPPORTED, "report action not admitted")
            )
            self._fail(sub, cause)
            return
        sub.state = SubscriptionState.ACTIVE
        if sub.superseded:
            self._retire(sub)
            return
        sub.not_admitted = {
            m.metric_name: cause_from_proto(m.cause) for m in msg.not_admitted_measurements
        }
        self._open_taps(sub)
        if sub.replaces is not None:
            old, sub.replaces = sub.replaces, None
            self._retire(old)

    def on_failure(self, session: NodeSession, msg: e2_pb2.SubscriptionFailure) -> None:
        """The node refused a subscription."""
        sub = self._find(session, msg.request_id, "SubscriptionFailure")
        self._fail(sub, cause_from_proto(msg.cause))
        self._changed(session)

    def _fail(self, sub: E2Subscription, cause: Cause) -> None:
        sub.state = SubscriptionState.FAILED
        sub.cause = cause
        if sub.superseded:
            self._forget(sub)
            return
        serving = {(w.host.name, w.index) for w in sub.replaces.wants} if sub.replaces else set()
        for want in sub.wants:
            if (
                want.host.name,
                want.index,
            ) not in serving:  # the old subscription still serves these
                self._release(sub.node, want)
                self._status(want, sub.node, ReportState.FAILED, cause=cause)
        sub.replaces = None

    def on_delete_response(
        self, session: NodeSession, msg: e2_pb2.SubscriptionDeleteResponse
    ) -> None:
        """The node ended a subscription the RIC asked it to delete."""
        sub = self._find(session, msg.request_id, "SubscriptionDeleteResponse")
        self._forget(sub)
        self._changed(session)

    def on_delete_failure(
        self, session: NodeSession, msg: e2_pb2.SubscriptionDeleteFailure
    ) -> None:
        """The node could not delete a subscription; the RIC forgets it anyway."""
        sub = self._find(session, msg.request_id, "SubscriptionDeleteFailure")
        self._forget(sub)
        self._changed(session)
        log.warning("node %s failed to delete a subscription: %s", session.id, msg.cause.detail)

    def on_delete_required(
        self, session: NodeSession, msg: e2_pb2.SubscriptionDeleteRequired
    ) -> None:
        """The node ended subscriptions by itself; their xApps are told, with its cause."""
        try:
            for item in msg.subscriptions:
                sub = self._find(session, item.request_id, "SubscriptionDeleteRequired")
                self._fail(sub, cause_from_proto(item.cause))
                self._forget(sub)
        finally:
            self._changed(session)

    # -- the hot path -------------------------------------------------------------------------

    def on_indications(self, session: NodeSession, batch: e2_pb2.IndicationBatch) -> None:
        """Hand each indication's report to its xApps; answer bad ones, deliver the rest.

        In order: a batch over ``max_indications_per_batch`` or ``max_values_per_batch`` is
        refused whole; then each indication must name a live subscription of this node, stay
        within ``max_entities_per_matrix``, fit the node's rates (else it is dropped) and match
        its subscription (kind, names, shape). Every refusal is answered with an ErrorIndication
        that carries the subscription's request id and RAN function id.
        """
        indications = batch.indications
        node = session.id
        self._sensor.indications(node, len(indications))
        session.indications += len(indications)
        count = len(indications)
        if count > self._max_indications:
            too_big = (
                f"IndicationBatch of {count:,} indications is over "
                f"e2.max_indications_per_batch = {self._max_indications:,}"
            )
            sizes = []
        else:
            sizes = [len(ind.kpm.matrix.values) for ind in indications]
            total = sum(sizes)
            too_big = (
                f"IndicationBatch of {count} indication(s) carries {total:,} values, "
                f"over e2.max_values_per_batch = {self._max_batch:,}"
                if total > self._max_batch
                else ""
            )
        if too_big:
            keys = {(i.request_id.requestor, i.request_id.instance) for i in indications}
            only = keys.pop() if len(keys) == 1 else None
            session.protocol_error(
                Cause(CauseCode.RIC_SERVICE_RIC_RESOURCE_LIMIT, too_big),
                only,
                ran_function_id=self._function_of(session, only, indications[0]),
                refused="batch_size",
            )
            return
        by_id = self._by_id
        replaced = functools.partial(self._sensor.values_replaced, node)
        dropped = dropped_values = 0
        dropped_ids: set[tuple[int, int]] = set()
        for ind, size in zip(indications, sizes, strict=True):
            if session.closed:  # its error budget ran out: the rest is not worth reading
                break
            rid = ind.request_id
            key = (rid.requestor, rid.instance)
            sub = by_id.get(key)
            if sub is None or sub.node is not session:
                session.protocol_error(
                    Cause(
                        CauseCode.RIC_REQUEST_ID_UNKNOWN,
                        f"indication for subscription {key[0]}:{key[1]}, unknown on this node",
                    ),
                    key,
                    ran_function_id=ind.ran_function_id,
                )
                continue
            if sub.state is not SubscriptionState.ACTIVE:
                if sub.state is not SubscriptionState.DELETING:  # in flight while deleting: fine
                    session.protocol_error(
                        Cause(
                            CauseCode.PROTOCOL_MESSAGE_NOT_COMPATIBLE_WITH_RECEIVER_STATE,
                            f"indication for subscription {key[0]}:{key[1]}, which is {sub.state.value}",
                        ),
                        key,
                        ran_function_id=sub.ran_function_id,
                    )
                continue
            entities = len(ind.kpm.matrix.entity_ids)
            if entities > self._max_entities:
                session.protocol_error(
                    Cause(
                        CauseCode.RIC_SERVICE_RIC_RESOURCE_LIMIT,
                        f"matrix of {entities:,} entities is over "
                        f"e2.max_entities_per_matrix = {self._max_entities:,}",
                    ),
                    key,
                    ran_function_id=sub.ran_function_id,
                    refused="matrix_size",
                )
                continue
            if not session.take_indication(size):
                dropped += 1
                dropped_values += size
                dropped_ids.add(key)
                continue
            try:
                report = report_from_indication(
                    node, ind, kind=_KINDS[sub.key[0]], metrics=sub.metrics, replaced=replaced
                )
            except ProtocolError as exc:
                session.protocol_error(
                    exc.cause, key, ran_function_id=sub.ran_function_id, refused="matrix_mismatch"
                )
                continue
            sub.indications += 1
            for tap in sub.taps:
                tap.feed(report)
        if dropped:
            one = dropped_ids.pop() if len(dropped_ids) == 1 else None
            sub = by_id.get(one) if one is not None else None
            session.over_rate(
                dropped, dropped_values, one, sub.ran_function_id if sub is not None else 0
            )

    def _function_of(
        self, session: NodeSession, key: tuple[int, int] | None, ind: e2_pb2.Indication
    ) -> int:
        """The RAN function of subscription ``key`` on ``session`` (else as the node said)."""
        sub = self._by_id.get(key) if key is not None else None
        if sub is not None and sub.node is session:
            return sub.ran_function_id
        return ind.ran_function_id if key is not None else 0
