"""The control router: an xApp's control goes to the right node and ends in one outcome.

Before a control leaves, the router checks, in order: that the xApp declared the action, its
rate limit, that a connected node serves the cell (and, for a replica of a RIC, that this
replica still holds the node's lease: ``ric.cluster``), that the node's RC function offers
the action, and the conflict arbiter. A refused control ends there with its outcome. A control
that leaves gets a RIC request id and a timer on the runtime's clock; whichever comes first
ends it: the node's ControlAcknowledge or ControlFailure (or an ErrorIndication naming it), the
timer, or the loss of the node. Each control ends exactly once, whether or not the xApp is
still waiting, and every ending is reported to the sensors (metrics, audit log). An answer
that arrives after its control timed out is counted and dropped.

A control that leaves also gets a ``control_id``, ``<ric_id>-<incarnation>-<counter>``: the
incarnation is 12 random hex digits drawn when the router is made (once per runtime process),
so ids stay unique across a RIC's replicas and restarts, which share the ``ric_id``, without
coordinating. It travels in the ControlRequest (a node applies an id at most once), in the
outcome and in its audit record. The RIC's own id, not the xApp's northbound ``control_id``:
local xApps have none, and a remote xApp's is only unique per xApp.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ric._proto.e2.v1 import common_pb2, e2_pb2
from ric.actions import (
    CccControlAction,
    Conflict,
    ControlAction,
    ControlOutcome,
    OutcomeKind,
    rc_key,
)
from ric.conflicts import Arbiter, Decision, Token
from ric.e2.convert import cause_from_proto, control_request
from ric.e2.session import NodeSession
from ric.errors import ProtocolError
from ric.grants import Grants
from ric.host import XAppHost
from ric.ids import NodeId
from ric.model import Cause, CauseCode
from ric.sdl import SdlError
from ric.types import Cancellable, Clock, Sensor

if TYPE_CHECKING:
    from ric.conflicts_shared import SharedArbiter

__all__ = ["ControlRouter", "RateLimiter"]

log = logging.getLogger(__name__)


class RateLimiter:
    """Token buckets per xApp: ``rate`` controls per second, bursts of up to ``rate``."""

    def __init__(self, rate_per_s: float, now: Callable[[], float]) -> None:
        self.rate = rate_per_s
        self._burst = max(1.0, rate_per_s)
        self._now = now
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, key: str) -> bool:
        """Take one token for ``key``; False when its bucket is empty."""
        now = self._now()
        tokens, stamp = self._buckets.get(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - stamp) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1.0, now)
        return True


@dataclass(eq=False)
class _Pending:
    future: asyncio.Future[ControlOutcome]
    host: XAppHost
    session: NodeSession
    action: ControlAction
    started: float
    token: Token = field(default_factory=list)
    conflict: Conflict | None = None
    timer: Cancellable | None = None
    control_id: str = ""


class ControlRouter:
    """Sends controls and correlates the answers; ``node_for_cell`` finds a cell's session.

    ``notify_conflict(xapp, conflict)`` tells the other party of a conflict the arbiter found.
    A replica of a RIC is given a ``shared_arbiter`` instead of an ``arbiter``: its window is
    in Redis (``ric.conflicts_shared``), one round trip per control.
    """

    def __init__(
        self,
        sensor: Sensor,
        clock: Clock,
        node_for_cell: Callable[[str], NodeSession | None],
        next_instance: Callable[[], int],
        *,
        arbiter: Arbiter | None = None,
        rate_per_s: float | None = None,
        notify_conflict: Callable[[str, Conflict], None] | None = None,
        grants: Grants | None = None,
        late_memory: int = 10_000,
        may_send: Callable[[str], str | None] | None = None,
        term_of: Callable[[str], int | None] | None = None,
        ric_id: str = "ric",
        shared_arbiter: SharedArbiter | None = None,
    ) -> None:
        self._sensor = sensor
        self.control_id_prefix = f"{ric_id}-{secrets.token_hex(6)}-"
        """What this router's control ids start with: the RIC id and this incarnation."""
        self._control_ids = itertools.count(1)
        self._may_send = may_send
        self._term_of = term_of
        """A replica of a RIC: the term it holds the node with (on each ControlRequest)."""
        """A replica of a RIC: None when it may send to the node now, else why not (it no
        longer holds the node's lease, ``ric.cluster``); a local check, no round trip."""
        self._clock = clock
        self._node_for_cell = node_for_cell
        self._next = next_instance
        self.arbiter = arbiter
        self.shared_arbiter = shared_arbiter
        self._limiter = RateLimiter(rate_per_s, clock.monotonic) if rate_per_s else None
        self._notify = notify_conflict
        self._grants = grants or Grants()
        self._pending: dict[tuple[int, int], _Pending] = {}
        self._expired: collections.OrderedDict[tuple[int, int], None] = collections.OrderedDict()
        self._late_memory = late_memory

    @property
    def pending(self) -> int:
        """Controls waiting for an answer."""
        return len(self._pending)

    # -- sending ------------------------------------------------------------------------------

    async def send(self, host: XAppHost, action: ControlAction, timeout: float) -> ControlOutcome:
        """Send ``action`` for ``host``'s xApp and wait (at most ``timeout`` s) for its outcome."""
        future = self.submit(host, action, timeout)
        if future is None:  # a replica of a RIC: the arbiter's check is in Redis
            assert self.shared_arbiter is not None
            started = self._clock.monotonic()
            checked = self._check(host, action, started)
            if not isinstance(checked, ControlOutcome):
                checked = await self._check_shared(self.shared_arbiter, host, action, checked[:2])
            if isinstance(checked, ControlOutcome):
                self._sensor.control_finished(host.name, checked)
                return checked
            future = self._dispatch(host, action, timeout, started, checked)
        # Not shielded, on purpose: the future only carries the answer to this waiter. If the
        # xApp stops waiting, the future is cancelled and _finish still ends (and audits) the
        # control once; shield() would add a future and a callback hop to every control.
        return await future

    def submit(
        self, host: XAppHost, action: ControlAction, timeout: float
    ) -> asyncio.Future[ControlOutcome] | None:
        """``send`` without the wait, on the router's loop: the future of the outcome (already
        done when the control is refused), or None when the control needs a round trip first
        (a shared arbiter's window in Redis: use ``send``). For a caller on another thread it
        saves a task and a coroutine per control (``ric.threadhost``)."""
        if self.shared_arbiter is not None:
            return None
        started = self._clock.monotonic()
        checked = self._check(host, action, started)
        if isinstance(checked, ControlOutcome):
            self._sensor.control_finished(host.name, checked)
            done: asyncio.Future[ControlOutcome] = asyncio.get_running_loop().create_future()
            done.set_result(checked)
            return done
        return self._dispatch(host, action, timeout, started, checked)

    def _dispatch(
        self,
        host: XAppHost,
        action: ControlAction,
        timeout: float,
        started: float,
        checked: tuple[NodeSession, int, Token, Conflict | None],
    ) -> asyncio.Future[ControlOutcome]:
        """Send a control that passed every check; the future of its outcome."""
        session, ran_function_id, token, conflict = checked
        request_id = (host.index, self._next())
        future: asyncio.Future[ControlOutcome] = asyncio.get_running_loop().create_future()
        pending = _Pending(future, host, session, action, started, token, conflict)
        pending.control_id = f"{self.control_id_prefix}{next(self._control_ids)}"
        self._pending[request_id] = pending
        pending.timer = self._clock.call_later(timeout, lambda: self._expire(request_id, timeout))
        try:
            term = (self._term_of(session.id) or 0) if self._term_of is not None else 0
            request = control_request(action, request_id, ran_function_id, pending.control_id, term)
        except (ValueError, TypeError) as exc:
            self._finish(request_id, OutcomeKind.FAILED, detail=f"cannot encode the control: {exc}")
        else:
            if not session.send(e2_pb2.RicMessage(control_request=request)):
                self._finish(request_id, OutcomeKind.NOT_CONNECTED, detail="session closed")
        return future

    @staticmethod
    def _refused(
        host: XAppHost,
        action: ControlAction,
        kind: OutcomeKind,
        detail: str,
        node: NodeId | None = None,
        conflict: Conflict | None = None,
    ) -> ControlOutcome:
        return ControlOutcome(
            kind, action, node=node, detail=detail, xapp=host.name, conflict=conflict
        )

    def _admit(self, host: XAppHost, action: ControlAction) -> ControlOutcome | None:
        """The xApp's own checks, wherever the node is: it declares the action, and it is
        within its rate; the refusal, or None."""
        if not any(isinstance(action, cls) for cls in host.cls.controls):
            return self._refused(
                host,
                action,
                OutcomeKind.NOT_SUPPORTED,
                f"xApp {host.name} does not declare {type(action).__name__} in its controls",
            )
        if self._limiter is not None and not self._limiter.allow(host.name):
            self._sensor.limit_reached(host.name, "controls_per_s")
            return self._refused(
                host,
                action,
                OutcomeKind.RATE_LIMITED,
                f"xApp {host.name} is over its limit of {self._limiter.rate:g} controls per second",
            )
        return None

    def _check(
        self, host: XAppHost, action: ControlAction, started: float
    ) -> ControlOutcome | tuple[NodeSession, int, Token, Conflict | None]:
        refused = self._admit(host, action)
        if refused is not None:
            return refused
        session = self._node_for_cell(action.cell)
        if session is None or session.closed:
            return self._refused(
                host,
                action,
                OutcomeKind.NOT_CONNECTED,
                f"no connected node serves cell {action.cell}",
            )
        if self._may_send is not None:
            why = self._may_send(session.id)
            if why is not None:
                return self._refused(
                    host, action, OutcomeKind.NOT_CONNECTED, why, node=session.info.id
                )
        grant = self._grants.of(host.name)
        if grant is not None:
            why = grant.refuse_control(action, session.id)
            if why is not None:
                return self._refused(
                    host,
                    action,
                    OutcomeKind.NOT_PERMITTED,
                    f"xApp {host.name} may not send this: {why}",
                    node=session.info.id,
                )
        function_id: int
        if isinstance(action, CccControlAction):
            # Cell configuration goes to the node's E2SM-CCC function, which must list every
            # structure attribute the control writes.
            ccc = session.info.ccc()
            missing = [
                f"{structure}.{attribute}"
                for structure, attribute in action.writes()
                if ccc is None or not ccc[1].writable(structure, attribute)
            ]
            if ccc is None or missing:
                return self._refused(
                    host,
                    action,
                    OutcomeKind.NOT_SUPPORTED,
                    f"node {session.id} does not offer E2SM-CCC cell configuration of "
                    f"{', '.join(missing)}",
                    node=session.info.id,
                )
            function_id = ccc[0]
        else:
            rc = session.info.rc()
            key = rc_key(action)
            if rc is None or key not in rc[1].actions:
                return self._refused(
                    host,
                    action,
                    OutcomeKind.NOT_SUPPORTED,
                    f"node {session.id} does not offer RC style {key[0]} action {key[1]}",
                    node=session.info.id,
                )
            function_id = rc[0]
        if self.arbiter is None:
            return session, function_id, [], None
        decided = self._decided(
            host, action, self.arbiter.decide(host.name, action), session.info.id
        )
        if isinstance(decided, ControlOutcome):
            return decided
        return session, function_id, *decided

    def admit_routed(
        self, host: XAppHost, action: ControlAction, node: NodeId
    ) -> ControlOutcome | None:
        """The xApp's own checks for a control that another replica of the RIC will send to
        ``node`` (``ric.cluster_streams``): its declaration, rate limit and grant; None when it
        may go. The node's checks (its functions) are made where the node is."""
        refused = self._admit(host, action)
        if refused is not None:
            return refused
        grant = self._grants.of(host.name)
        why = grant.refuse_control(action, str(node)) if grant is not None else None
        if why is not None:
            return self._refused(
                host,
                action,
                OutcomeKind.NOT_PERMITTED,
                f"xApp {host.name} may not send this: {why}",
                node=node,
            )
        return None

    async def _check_shared(
        self,
        arbiter: SharedArbiter,
        host: XAppHost,
        action: ControlAction,
        checked: tuple[NodeSession, int],
    ) -> ControlOutcome | tuple[NodeSession, int, Token, Conflict | None]:
        """The arbiter's step for a replica of a RIC, in Redis."""
        session, function_id = checked
        decided = await self.arbitrate(host, action, session.info.id)
        if isinstance(decided, ControlOutcome):
            return decided
        token, conflict = decided
        why = self._may_send(session.id) if self._may_send is not None else None
        if why is not None:  # the lease went while Redis answered
            arbiter.retract(token)
            return self._refused(host, action, OutcomeKind.NOT_CONNECTED, why, node=session.info.id)
        return session, function_id, token, conflict

    async def arbitrate(
        self, host: XAppHost, action: ControlAction, node: NodeId | None = None
    ) -> ControlOutcome | tuple[Token, Conflict | None]:
        """The arbiter's step alone, with whichever arbiter this router has (the window in
        Redis for a replica of a RIC): the refusal, or what to ``retract`` if the control
        does not take effect and the conflict it won. For a control another replica sends
        (``ric.cluster_streams``); a shared window that does not answer refuses it, as not
        connected (``ric.conflicts_shared`` says why)."""
        if self.shared_arbiter is not None:
            try:
                decision = await self.shared_arbiter.decide(host.name, action)
            except SdlError as exc:
                return self._refused(host, action, OutcomeKind.NOT_CONNECTED, str(exc), node=node)
        elif self.arbiter is not None:
            decision = self.arbiter.decide(host.name, action)
        else:
            return [], None
        return self._decided(host, action, decision, node)

    def _decided(
        self, host: XAppHost, action: ControlAction, decision: Decision, node: NodeId | None
    ) -> ControlOutcome | tuple[Token, Conflict | None]:
        """What the arbiter's decision means for the control: a conflict is counted and the
        xApp it concerns told; the refusal, or what to retract and the conflict it won."""
        conflict = decision.conflict
        if conflict is not None:
            self._sensor.conflict(conflict)
            if decision.notify is not None and self._notify is not None:
                self._notify(decision.notify, conflict)
        if not decision.allowed:
            return self._refused(
                host, action, OutcomeKind.CONFLICT, str(conflict), node=node, conflict=conflict
            )
        return list(decision.token), conflict

    def retract(self, token: Token) -> None:
        """Forget, in whichever arbiter recorded it, a control that did not take effect."""
        if not token:
            return
        if self.arbiter is not None:
            self.arbiter.retract(token)
        elif self.shared_arbiter is not None:
            self.shared_arbiter.retract(token)

    # -- ending -------------------------------------------------------------------------------

    def _finish(
        self,
        request_id: tuple[int, int],
        kind: OutcomeKind,
        cause: Cause | None = None,
        detail: str = "",
    ) -> None:
        pending = self._pending.pop(request_id, None)
        if pending is None:
            return
        if pending.timer is not None:
            pending.timer.cancel()
        outcome = ControlOutcome(
            kind,
            pending.action,
            node=pending.session.info.id,
            cause=cause,
            latency_s=self._clock.monotonic() - pending.started,
            detail=detail,
            xapp=pending.host.name,
            request_id=request_id,
            conflict=pending.conflict,
            control_id=pending.control_id,
        )
        if kind is not OutcomeKind.ACKNOWLEDGED and pending.token:
            if self.arbiter is not None:
                self.arbiter.retract(pending.token)
            elif self.shared_arbiter is not None:
                self.shared_arbiter.retract(pending.token)
        if not pending.future.done():
            pending.future.set_result(outcome)
        self._sensor.control_finished(pending.host.name, outcome)

    def _expire(self, request_id: tuple[int, int], timeout: float) -> None:
        if request_id not in self._pending:
            return
        self._expired[request_id] = None
        if len(self._expired) > self._late_memory:
            self._expired.popitem(last=False)
        self._finish(request_id, OutcomeKind.TIMED_OUT, detail=f"no answer within {timeout:g} s")

    def _answer(
        self,
        session: NodeSession,
        rid: common_pb2.RicRequestId,
        kind: OutcomeKind,
        cause: Cause | None,
        what: str,
    ) -> None:
        key = (rid.requestor, rid.instance)
        pending = self._pending.get(key)
        if pending is None or pending.session is not session:
            if key in self._expired:
                del self._expired[key]
                self._sensor.late_answer(session.id)
                log.info(
                    "node %s answered control %d:%d after it timed out; dropped",
                    session.id,
                    *key,
                    extra={"node": session.id},
                )
                return
            raise ProtocolError(
                Cause(
                    CauseCode.RIC_REQUEST_ID_UNKNOWN,
                    f"{what} for request {key[0]}:{key[1]}, which the RIC never sent to this node",
                ),
                key,
            )
        self._finish(key, kind, cause)

    def on_acknowledge(self, session: NodeSession, msg: e2_pb2.ControlAcknowledge) -> None:
        """The node carried out a control."""
        self._answer(session, msg.request_id, OutcomeKind.ACKNOWLEDGED, None, "ControlAcknowledge")

    def on_failure(self, session: NodeSession, msg: e2_pb2.ControlFailure) -> None:
        """The node refused or failed a control."""
        cause = cause_from_proto(msg.cause)
        self._answer(session, msg.request_id, OutcomeKind.FAILED, cause, "ControlFailure")

    def on_error_indication(self, session: NodeSession, msg: e2_pb2.ErrorIndication) -> bool:
        """An ErrorIndication about a pending control fails it; True if it was about one."""
        key = (msg.request_id.requestor, msg.request_id.instance)
        pending = self._pending.get(key)
        if pending is None or pending.session is not session:
            return False
        self._finish(key, OutcomeKind.FAILED, cause_from_proto(msg.cause))
        return True

    def node_down(self, session: NodeSession, reason: str) -> None:
        """Every control waiting on ``session`` ends as not connected."""
        for key in [k for k, p in self._pending.items() if p.session is session]:
            self._finish(
                key, OutcomeKind.NOT_CONNECTED, detail=f"node lost before it answered: {reason}"
            )
