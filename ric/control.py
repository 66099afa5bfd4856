"""The control router: an xApp's control goes to the right node and ends in one outcome.

Each control gets a RIC request id; the router waits for the node's ControlAcknowledge or
ControlFailure with that id and resolves the xApp's ``await`` with an outcome. A timeout, a
node that is not (or no longer) connected, and an action the node does not support are
outcomes too; nothing raises into xApp code. An answer that arrives after its control timed
out is counted and dropped.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ric._proto.e2.v1 import common_pb2, e2_pb2
from ric.actions import ControlAction, ControlOutcome, OutcomeKind, rc_key
from ric.e2.convert import cause_from_proto, control_request
from ric.e2.session import NodeSession
from ric.errors import ProtocolError
from ric.host import XAppHost
from ric.model import Cause, CauseCode
from ric.types import Clock, Sensor

__all__ = ["ControlRouter"]

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Pending:
    future: asyncio.Future[ControlOutcome]
    session: NodeSession
    action: ControlAction
    started: float


class ControlRouter:
    """Sends controls and correlates the answers; ``node_for_cell`` finds a cell's session."""

    def __init__(
        self,
        sensor: Sensor,
        clock: Clock,
        node_for_cell: Callable[[str], NodeSession | None],
        next_instance: Callable[[], int],
        late_memory: int = 10_000,
    ) -> None:
        self._sensor = sensor
        self._clock = clock
        self._node_for_cell = node_for_cell
        self._next = next_instance
        self._pending: dict[tuple[int, int], _Pending] = {}
        self._expired: collections.OrderedDict[tuple[int, int], None] = collections.OrderedDict()
        self._late_memory = late_memory

    @property
    def pending(self) -> int:
        """Controls waiting for an answer."""
        return len(self._pending)

    async def send(self, host: XAppHost, action: ControlAction, timeout: float) -> ControlOutcome:
        """Send ``action`` for ``host``'s xApp and wait (at most ``timeout`` s) for its outcome."""
        started = self._clock.monotonic()
        outcome = self._refusal(host, action)
        if outcome is None:
            session = self._node_for_cell(action.cell)
            assert session is not None  # _refusal checked it
            outcome = await self._round_trip(host, session, action, timeout, started)
        self._sensor.control_finished(host.name, outcome)
        return outcome

    def _refusal(self, host: XAppHost, action: ControlAction) -> ControlOutcome | None:
        declared = host.cls.controls
        if not any(isinstance(action, cls) for cls in declared):
            return ControlOutcome(
                OutcomeKind.NOT_SUPPORTED,
                action,
                detail=f"xApp {host.name} does not declare {type(action).__name__} in its controls",
            )
        session = self._node_for_cell(action.cell)
        if session is None or session.closed:
            return ControlOutcome(
                OutcomeKind.NOT_CONNECTED,
                action,
                detail=f"no connected node serves cell {action.cell}",
            )
        rc = session.info.rc()
        key = rc_key(action)
        if rc is None or key not in rc[1].actions:
            return ControlOutcome(
                OutcomeKind.NOT_SUPPORTED,
                action,
                node=session.info.id,
                detail=f"node {session.id} does not offer RC style {key[0]} action {key[1]}",
            )
        return None

    async def _round_trip(
        self,
        host: XAppHost,
        session: NodeSession,
        action: ControlAction,
        timeout: float,
        started: float,
    ) -> ControlOutcome:
        rc = session.info.rc()
        assert rc is not None
        request_id = (host.index, self._next())
        future: asyncio.Future[ControlOutcome] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = _Pending(future, session, action, started)
        try:
            request = control_request(action, request_id, rc[0])
            if not session.send(e2_pb2.RicMessage(control_request=request)):
                return ControlOutcome(
                    OutcomeKind.NOT_CONNECTED, action, node=session.info.id, detail="session closed"
                )
            try:
                return await asyncio.wait_for(asyncio.shield(future), timeout)
            except TimeoutError:
                self._remember_expired(request_id)
                return ControlOutcome(
                    OutcomeKind.TIMED_OUT,
                    action,
                    node=session.info.id,
                    latency_s=self._clock.monotonic() - started,
                    detail=f"no answer within {timeout:g} s",
                )
        finally:
            self._pending.pop(request_id, None)

    def _remember_expired(self, request_id: tuple[int, int]) -> None:
        self._expired[request_id] = None
        if len(self._expired) > self._late_memory:
            self._expired.popitem(last=False)

    def _resolve(
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
        if not pending.future.done():
            pending.future.set_result(
                ControlOutcome(
                    kind,
                    pending.action,
                    node=session.info.id,
                    cause=cause,
                    latency_s=self._clock.monotonic() - pending.started,
                )
            )

    def on_acknowledge(self, session: NodeSession, msg: e2_pb2.ControlAcknowledge) -> None:
        """The node carried out a control."""
        self._resolve(session, msg.request_id, OutcomeKind.ACKNOWLEDGED, None, "ControlAcknowledge")

    def on_failure(self, session: NodeSession, msg: e2_pb2.ControlFailure) -> None:
        """The node refused or failed a control."""
        self._resolve(
            session,
            msg.request_id,
            OutcomeKind.FAILED,
            cause_from_proto(msg.cause),
            "ControlFailure",
        )

    def on_error_indication(self, session: NodeSession, msg: e2_pb2.ErrorIndication) -> bool:
        """An ErrorIndication about a pending control fails it; True if it was about one."""
        key = (msg.request_id.requestor, msg.request_id.instance)
        pending = self._pending.get(key)
        if pending is None or pending.session is not session:
            return False
        self._resolve(session, msg.request_id, OutcomeKind.FAILED, cause_from_proto(msg.cause), "")
        return True

    def node_down(self, session: NodeSession, reason: str) -> None:
        """Every control waiting on ``session`` ends as not connected."""
        for pending in self._pending.values():
            if pending.session is session and not pending.future.done():
                pending.future.set_result(
                    ControlOutcome(
                        OutcomeKind.NOT_CONNECTED,
                        pending.action,
                        node=session.info.id,
                        latency_s=self._clock.monotonic() - pending.started,
                        detail=f"node lost before it answered: {reason}",
                    )
                )
