"""One node session: a connected E2 node's identity, its outbound queue and its counters."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Final

from ric._proto.e2.v1 import common_pb2, e2_pb2
from ric.e2.convert import cause_to_proto
from ric.model import Cause, CauseCode, NodeInfo
from ric.types import Sensor

__all__ = ["NodeSession"]

log = logging.getLogger(__name__)

_CLOSE: Final = None


class _ErrorBudget:
    """A token bucket of bad messages: ``burst`` at once, refilled at ``refill_per_s``."""

    def __init__(self, burst: int, refill_per_s: float) -> None:
        self.burst = burst
        self.refill = refill_per_s
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def spend(self) -> bool:
        """Take one token; False when the bucket was already empty."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.refill)
        self.stamp = now
        self.tokens -= 1.0
        return self.tokens >= 0.0


class NodeSession:
    """A connected E2 node: what it announced, how to send it messages, and its counters.

    ``send`` never blocks: messages go through a bounded queue that the termination's writer
    task drains onto the gRPC stream. A node that stops reading until the queue is full is
    disconnected rather than allowed to hold memory.
    """

    def __init__(
        self,
        info: NodeInfo,
        peer: str,
        keep_alive_s: float,
        sensor: Sensor,
        *,
        error_burst: int = 20,
        error_refill_per_s: float = 1.0,
        max_outbound: int = 10_000,
    ) -> None:
        self.info = info
        self._sensor = sensor
        self._budget = _ErrorBudget(error_burst, error_refill_per_s)
        self.id = str(info.id)
        self.peer = peer
        self.keep_alive_s = keep_alive_s
        self.connected_at = time.time()
        self.indications = 0
        self.closed = False
        self.close_reason = ""
        self._outbound: asyncio.Queue[e2_pb2.RicMessage | None] = asyncio.Queue(max_outbound)
        self._transactions = itertools.count(1)

    def __repr__(self) -> str:
        return f"NodeSession({self.id} from {self.peer})"

    def next_transaction_id(self) -> int:
        """A fresh transaction id for a RIC-initiated global procedure."""
        return next(self._transactions) % 256

    def send(self, msg: e2_pb2.RicMessage) -> bool:
        """Queue ``msg`` for the node; False (and the session closes) if the node is not reading."""
        if self.closed:
            return False
        try:
            self._outbound.put_nowait(msg)
        except asyncio.QueueFull:
            log.error("node %s does not read its stream; closing the session", self.id)
            self.close("outbound queue full: the node does not read its stream")
            return False
        return True

    def send_error(
        self,
        cause: Cause,
        *,
        request_id: tuple[int, int] | None = None,
        ran_function_id: int = 0,
    ) -> None:
        """Send an ErrorIndication with ``cause`` (and the request it concerns, if any)."""
        err = e2_pb2.ErrorIndication(cause=cause_to_proto(cause), ran_function_id=ran_function_id)
        if request_id is not None:
            err.request_id.CopyFrom(
                common_pb2.RicRequestId(requestor=request_id[0], instance=request_id[1])
            )
        self.send(e2_pb2.RicMessage(error_indication=err))

    def protocol_error(self, cause: Cause, request_id: tuple[int, int] | None = None) -> None:
        """Answer a bad message: ErrorIndication, count it, and spend the error budget.

        A node that keeps sending bad messages faster than the budget refills is disconnected.
        """
        self._sensor.e2_error(self.id, cause)
        log.warning("bad message from node %s: %s", self.id, cause, extra={"node": self.id})
        self.send_error(cause, request_id=request_id)
        if not self._budget.spend():
            self.send_error(Cause(CauseCode.PROTOCOL_UNSPECIFIED, "too many bad messages"))
            self.close("too many bad messages")

    def close(self, reason: str) -> None:
        """End the session: the writer flushes what is queued, then the stream ends."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        try:
            self._outbound.put_nowait(_CLOSE)
        except asyncio.QueueFull:
            # The writer is stuck behind a full queue; drop one message to fit the close mark.
            self._outbound.get_nowait()
            self._outbound.put_nowait(_CLOSE)

    def take_outbound(self) -> list[e2_pb2.RicMessage]:
        """Every message queued so far, without waiting (for transports that poll)."""
        out: list[e2_pb2.RicMessage] = []
        while not self._outbound.empty():
            msg = self._outbound.get_nowait()
            if msg is not None:
                out.append(msg)
        return out

    async def next_outbound(self) -> e2_pb2.RicMessage | None:
        """The next queued message, or None once the session is closed and flushed."""
        return await self._outbound.get()
