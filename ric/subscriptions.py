"""The subscription manager: xApps' report declarations become E2 subscriptions.

For every running xApp and every node whose KPM function can serve one of its ``Report``
declarations, one E2 subscription is requested. Indications are matched to subscriptions by
RIC request id and handed to the xApp's host as columnar reports. A subscription ends with its
node's session (and is requested again when the node sets up again) or with its xApp (an E2
subscription delete is sent).
"""

from __future__ import annotations

import enum
import itertools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ric._proto.e2.v1 import common_pb2, e2_pb2, kpm_pb2
from ric.e2.convert import cause_from_proto, cell_id_to_proto, report_from_indication
from ric.e2.session import NodeSession
from ric.errors import ProtocolError
from ric.host import XAppHost
from ric.ids import CellId
from ric.model import Cause, CauseCode, KpmFunction
from ric.types import Sensor
from ric.xapp import Report

__all__ = ["E2Subscription", "SubscriptionManager", "SubscriptionState", "plan_report"]

log = logging.getLogger(__name__)

_UE_STYLES = (5, 4, 3, 2)
"""KPM styles that give UE rows, in order of preference (5: multiple UEs)."""


class SubscriptionState(enum.Enum):
    """Life of one E2 subscription."""

    REQUESTED = "requested"
    ACTIVE = "active"
    FAILED = "failed"
    DELETING = "deleting"
    DELETED = "deleted"


@dataclass(eq=False)
class E2Subscription:
    """One E2 subscription: an xApp's report declaration on one node."""

    request_id: tuple[int, int]
    node: NodeSession
    host: XAppHost
    report: Report
    ran_function_id: int
    style: int
    state: SubscriptionState = SubscriptionState.REQUESTED
    cause: Cause | None = None
    created_at: float = field(default_factory=time.time)
    indications: int = 0

    def describe(self) -> dict[str, object]:
        """A JSON-ready summary."""
        return {
            "request_id": list(self.request_id),
            "node": self.node.id,
            "xapp": self.host.name,
            "metrics": list(self.report.metrics),
            "period_ms": self.report.period_ms,
            "per": self.report.per,
            "style": self.style,
            "state": self.state.value,
            "cause": str(self.cause) if self.cause else None,
            "indications": self.indications,
        }


def plan_report(report: Report, kpm: KpmFunction) -> tuple[int, str]:
    """The KPM style that serves ``report`` on a node, or ``(0, why not)``."""
    if report.period_ms < kpm.min_reporting_period_ms:
        return 0, (
            f"period {report.period_ms} ms is below the node's minimum "
            f"{kpm.min_reporting_period_ms} ms"
        )
    candidates = _UE_STYLES if report.per == "ue" else (1,)
    wanted = set(report.metrics)
    for style in candidates:
        spec = kpm.styles.get(style)
        if spec is not None and wanted <= spec.metric_names:
            return style, ""
    offered = [s for s in candidates if s in kpm.styles]
    if not offered:
        return 0, f"no KPM report style {'/'.join(map(str, candidates))} for per={report.per!r}"
    missing = sorted(wanted - kpm.styles[offered[0]].metric_names)
    return 0, f"style {offered[0]} does not report {', '.join(missing)}"


class SubscriptionManager:
    """Keeps the E2 subscriptions that the xApps' declarations call for.

    ``next_instance`` is shared with the control router so that every RIC request id on a
    node is unique.
    """

    def __init__(self, sensor: Sensor, next_instance: Callable[[], int] | None = None) -> None:
        self._sensor = sensor
        self._by_id: dict[tuple[int, int], E2Subscription] = {}
        self._next = next_instance or itertools.count(1).__next__

    def __iter__(self) -> Iterable[E2Subscription]:
        return iter(list(self._by_id.values()))

    def snapshot(self) -> list[E2Subscription]:
        """The live subscriptions, oldest first."""
        return list(self._by_id.values())

    # -- what makes subscriptions come and go ---------------------------------------------

    def subscribe(self, session: NodeSession, hosts: Iterable[XAppHost]) -> None:
        """Request, on ``session``'s node, every declared report the node can serve."""
        kpm = session.info.kpm()
        for host in hosts:
            if not host.accepting:
                continue
            for report in host.cls.reports:
                if kpm is None:
                    log.info(
                        "node %s has no KPM function; %s's report not subscribed there",
                        session.id,
                        host.name,
                        extra={"node": session.id, "xapp": host.name},
                    )
                    continue
                ran_function_id, function = kpm
                style, why = plan_report(report, function)
                if not style:
                    log.info(
                        "node %s cannot serve %s's report %s: %s",
                        session.id,
                        host.name,
                        ",".join(report.metrics),
                        why,
                        extra={"node": session.id, "xapp": host.name},
                    )
                    continue
                self._request(session, host, report, ran_function_id, style)

    def _request(
        self, session: NodeSession, host: XAppHost, report: Report, ran_function_id: int, style: int
    ) -> None:
        request_id = (host.index, self._next())
        sub = E2Subscription(request_id, session, host, report, ran_function_id, style)
        self._by_id[request_id] = sub
        scope = kpm_pb2.KpmScope(cells=[cell_id_to_proto(CellId.parse(c)) for c in report.cells])
        msg = e2_pb2.SubscriptionRequest(
            request_id=common_pb2.RicRequestId(requestor=request_id[0], instance=request_id[1]),
            ran_function_id=ran_function_id,
            kpm_trigger=kpm_pb2.KpmEventTrigger(reporting_period_ms=report.period_ms),
            actions=[
                e2_pb2.Action(
                    action_id=1,
                    type=e2_pb2.ACTION_TYPE_REPORT,
                    kpm=kpm_pb2.KpmActionDefinition(
                        report_style=style,
                        metric_names=report.metrics,
                        granularity_period_ms=report.period_ms,
                        scope=scope,
                        per_slice=report.per == "slice",
                    ),
                )
            ],
        )
        session.send(e2_pb2.RicMessage(subscription_request=msg))

    def node_down(self, session: NodeSession) -> None:
        """Forget the subscriptions of a node whose session ended (they die with it)."""
        for key, sub in list(self._by_id.items()):
            if sub.node is session:
                del self._by_id[key]
                self._sensor.subscription_changed(session.id, sub.host.name, "node_lost")

    def unsubscribe(self, host: XAppHost) -> int:
        """Delete every E2 subscription of ``host`` (its xApp stops); returns how many."""
        count = 0
        for sub in list(self._by_id.values()):
            if sub.host is not host:
                continue
            count += 1
            if sub.state in (SubscriptionState.ACTIVE, SubscriptionState.REQUESTED):
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
            else:
                del self._by_id[sub.request_id]
        return count

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
        if msg.not_admitted_measurements:
            missing = ", ".join(m.metric_name for m in msg.not_admitted_measurements)
            log.warning(
                "node %s will not report %s for %s",
                session.id,
                missing,
                sub.host.name,
                extra={"node": session.id, "xapp": sub.host.name},
            )
        self._sensor.subscription_changed(session.id, sub.host.name, "active")

    def on_failure(self, session: NodeSession, msg: e2_pb2.SubscriptionFailure) -> None:
        """The node refused a subscription."""
        sub = self._find(session, msg.request_id, "SubscriptionFailure")
        self._fail(sub, cause_from_proto(msg.cause))

    def _fail(self, sub: E2Subscription, cause: Cause) -> None:
        sub.state = SubscriptionState.FAILED
        sub.cause = cause
        log.warning(
            "node %s refused %s's subscription: %s",
            sub.node.id,
            sub.host.name,
            cause,
            extra={"node": sub.node.id, "xapp": sub.host.name},
        )
        self._sensor.subscription_changed(sub.node.id, sub.host.name, "failed")

    def on_delete_response(
        self, session: NodeSession, msg: e2_pb2.SubscriptionDeleteResponse
    ) -> None:
        """The node ended a subscription the RIC asked it to delete."""
        sub = self._find(session, msg.request_id, "SubscriptionDeleteResponse")
        del self._by_id[sub.request_id]
        self._sensor.subscription_changed(session.id, sub.host.name, "deleted")

    def on_delete_failure(
        self, session: NodeSession, msg: e2_pb2.SubscriptionDeleteFailure
    ) -> None:
        """The node could not delete a subscription; the RIC forgets it anyway."""
        sub = self._find(session, msg.request_id, "SubscriptionDeleteFailure")
        del self._by_id[sub.request_id]
        log.warning("node %s failed to delete a subscription: %s", session.id, msg.cause.detail)

    def on_delete_required(
        self, session: NodeSession, msg: e2_pb2.SubscriptionDeleteRequired
    ) -> None:
        """The node ended subscriptions by itself; they are marked failed with its cause."""
        for item in msg.subscriptions:
            sub = self._find(session, item.request_id, "SubscriptionDeleteRequired")
            self._fail(sub, cause_from_proto(item.cause))
            del self._by_id[sub.request_id]

    def on_reset(self, session: NodeSession) -> list[XAppHost]:
        """The node reset: its subscriptions are gone; returns the hosts to re-subscribe."""
        hosts = []
        for key, sub in list(self._by_id.items()):
            if sub.node is session:
                del self._by_id[key]
                if sub.host not in hosts:
                    hosts.append(sub.host)
        return hosts

    # -- the hot path -------------------------------------------------------------------------

    def on_indications(self, session: NodeSession, batch: e2_pb2.IndicationBatch) -> None:
        """Hand each indication's report to its xApp; answer bad ones, deliver the rest."""
        indications = batch.indications
        self._sensor.indications(session.id, len(indications))
        session.indications += len(indications)
        by_id = self._by_id
        node = session.id
        for ind in indications:
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
                )
                continue
            if sub.state is not SubscriptionState.ACTIVE:
                if sub.state is not SubscriptionState.DELETING:  # in flight while deleting: fine
                    session.protocol_error(
                        Cause(
                            CauseCode.PROTOCOL_MESSAGE_NOT_COMPATIBLE_WITH_RECEIVER_STATE,
                            f"indication for subscription {key[0]}:{key[1]}, "
                            f"which is {sub.state.value}",
                        ),
                        key,
                    )
                continue
            try:
                report = report_from_indication(node, ind)
            except ProtocolError as exc:
                session.protocol_error(exc.cause, key)
                continue
            sub.indications += 1
            sub.host.deliver(report)
