"""One node session: a connected E2 node's identity, its outbound queue and its counters."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Final

from ric._proto.e2.v1 import common_pb2, e2_pb2
from ric.e2.convert import cause_to_proto
from ric.model import Cause, CauseCode, NodeInfo
from ric.types import Sensor

__all__ = ["E2_REFUSAL_REASONS", "VALUE_REPLACEMENT_REASONS", "NodeSession"]

log = logging.getLogger(__name__)

_CLOSE: Final = None

E2_REFUSAL_REASONS: Final = (
    "message_size",
    "matrix_size",
    "batch_size",
    "indication_rate",
    "matrix_mismatch",
)
"""Why the termination refuses an E2 message or indication (``ric_e2_refused_total{reason}``)."""

VALUE_REPLACEMENT_REASONS: Final = ("infinite", "out_of_range")
"""Why an indication value is replaced by NaN (``ric_e2_values_replaced_total{reason}``)."""

_RATE_NOTICE_S: Final = 1.0
"""At most one ErrorIndication per this many seconds tells a node it is over its rate."""


class _TokenBucket:
    """``capacity`` tokens at once, refilled at ``rate`` per second (the error budget: bad
    messages; the node's rates: values and indications, one second's worth at once)."""

    def __init__(self, capacity: float, rate: float, clock: Callable[[], float]) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = float(capacity)
        self._clock = clock
        self.stamp = clock()

    def refill(self) -> float:
        """Add what has accrued since the last call; the tokens now held."""
        now = self._clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return self.tokens

    def spend(self) -> bool:
        """Take one token; False when the bucket was already empty."""
        self.tokens = self.refill() - 1.0
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
        max_values_per_s: float | None = None,
        max_indications_per_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.info = info
        self._sensor = sensor
        self._budget = _TokenBucket(error_burst, error_refill_per_s, clock)
        self._clock = clock
        self._values = (
            None
            if max_values_per_s is None
            else _TokenBucket(max_values_per_s, max_values_per_s, clock)
        )
        self._indications = (
            None
            if max_indications_per_s is None
            else _TokenBucket(max_indications_per_s, max_indications_per_s, clock)
        )
        self._rate_noticed = -math.inf
        self.id = str(info.id)
        self.peer = peer
        self.keep_alive_s = keep_alive_s
        self.connected_at = time.time()
        self.indications = 0
        self.closed = False
        self.close_reason = ""
        self._outbound: asyncio.Queue[e2_pb2.RicMessage | None] = asyncio.Queue(max_outbound)

    def __repr__(self) -> str:
        return f"NodeSession({self.id} from {self.peer})"

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

    def protocol_error(
        self,
        cause: Cause,
        request_id: tuple[int, int] | None = None,
        *,
        ran_function_id: int = 0,
        refused: str | None = None,
    ) -> None:
        """Answer a bad message: ErrorIndication, count it, and spend the error budget.

        ``request_id`` and ``ran_function_id`` name the subscription the message was about;
        ``refused`` is the reason (one of ``E2_REFUSAL_REASONS``) when it was refused for a
        bound or a mismatch, counted apart. A node that keeps sending bad messages faster than
        the budget refills is disconnected.
        """
        if refused is not None:
            self._sensor.e2_refused(self.id, refused, cause.detail)
        self._sensor.e2_error(self.id, cause)
        log.warning("bad message from node %s: %s", self.id, cause, extra={"node": self.id})
        self.send_error(cause, request_id=request_id, ran_function_id=ran_function_id)
        self._spend_budget()

    def take_indication(self, values: int) -> bool:
        """Whether the node may send one more indication of ``values`` values now (its two
        rate buckets); if so, both are charged."""
        v, i = self._values, self._indications
        if (v is not None and v.refill() < values) or (i is not None and i.refill() < 1):
            return False
        if v is not None:
            v.tokens -= values
        if i is not None:
            i.tokens -= 1
        return True

    def over_rate(
        self,
        dropped: int,
        values: int,
        request_id: tuple[int, int] | None = None,
        ran_function_id: int = 0,
    ) -> None:
        """Indications of ``values`` values in all were dropped for the node's rate: count each,
        spend the error budget once (one message), and tell the node at most once a second
        (naming the subscription when they were all of one)."""
        bounds = [
            f"e2.max_values_per_s_per_node = {self._values.rate:,.0f}"
            if self._values is not None
            else "",
            f"e2.max_indications_per_s_per_node = {self._indications.rate:,.0f}"
            if self._indications is not None
            else "",
        ]
        detail = (
            f"{dropped} indication(s) of {values:,} values dropped: over "
            f"{' or '.join(b for b in bounds if b)}"
        )
        for _ in range(dropped):
            self._sensor.e2_refused(self.id, "indication_rate", detail)
        now = self._clock()
        if now - self._rate_noticed >= _RATE_NOTICE_S:
            self._rate_noticed = now
            cause = Cause(CauseCode.MISC_CONTROL_PROCESSING_OVERLOAD, detail)
            self._sensor.e2_error(self.id, cause)
            log.warning("node %s is over its rate: %s", self.id, cause, extra={"node": self.id})
            self.send_error(cause, request_id=request_id, ran_function_id=ran_function_id)
        self._spend_budget()

    def _spend_budget(self) -> None:
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
