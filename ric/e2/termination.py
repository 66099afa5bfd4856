"""The E2 termination: a ``grpc.aio`` server where each E2 node opens one Connect stream.

The termination owns the transport: it parses bytes into messages (so a malformed message is
answered, not a crashed stream), runs E2 setup, watches keep-alives, enforces an error budget
per node, and writes the RIC's messages back. What the messages mean is the business of an
``E2Handler`` (the runtime core).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ric._proto.e2.v1 import e2_pb2
from ric.e2.convert import cause_to_proto, node_info_from_setup, ran_function_from_proto
from ric.e2.session import NodeSession
from ric.errors import ProtocolError, StateError
from ric.model import KPM_OID, RC_OID, Cause, CauseCode, NodeInfo, RanFunction
from ric.types import Sensor

__all__ = ["E2Handler", "E2Server", "TerminationConfig"]

log = logging.getLogger(__name__)

SERVICE = "ric.e2.v1.E2Termination"
_SUPPORTED_OIDS = {KPM_OID: "kpm", RC_OID: "rc"}


class E2Handler(Protocol):
    """What the termination needs from the runtime core."""

    def admit(self, info: NodeInfo) -> Cause | None:
        """None to accept a node's setup, or the cause of refusal (for example a duplicate id)."""
        ...

    def node_up(self, session: NodeSession) -> None:
        """A node completed setup; its session is ready for requests."""
        ...

    def node_down(self, session: NodeSession, reason: str) -> None:
        """A node's session ended."""
        ...

    def handle(self, session: NodeSession, kind: str, msg: Any) -> None:
        """A message of type ``kind`` (the NodeMessage oneof name) from a set-up node.

        Raises ``ProtocolError`` when the message is wrong; the node is told the cause.
        """
        ...


@dataclass(frozen=True)
class TerminationConfig:
    """Transport settings of the E2 termination."""

    host: str = "127.0.0.1"
    port: int = 36421
    # Keep-alive interval the RIC asks for, in seconds; a node is lost after three silent ones.
    keep_alive_s: float = 1.0
    # How long a new stream may take to send its E2SetupRequest, in seconds.
    setup_timeout_s: float = 5.0
    # Error budget per node: this many bad messages at once, refilled at error_refill_per_s.
    error_burst: int = 20
    error_refill_per_s: float = 1.0
    ric_id: str = "ric"


def _parse(data: bytes) -> e2_pb2.NodeMessage:
    try:
        return e2_pb2.NodeMessage.FromString(data)
    except DecodeError as exc:
        raise ProtocolError(
            Cause(CauseCode.PROTOCOL_TRANSFER_SYNTAX_ERROR, f"undecodable NodeMessage: {exc}")
        ) from exc


class E2Server:
    """The gRPC server: E2 termination plus the standard health and reflection services.

    Use as ``async with E2Server(handler, config, sensors) as server`` or call ``start`` and
    ``stop``; ``port`` is the bound port once started (useful with port 0).
    """

    def __init__(self, handler: E2Handler, config: TerminationConfig, sensor: Sensor) -> None:
        self._handler = handler
        self._config = config
        self._sensor = sensor
        self._server: grpc.aio.Server | None = None
        self._health = health.aio.HealthServicer()
        self._sessions: set[NodeSession] = set()
        self.port = 0

    @property
    def sessions(self) -> frozenset[NodeSession]:
        """The streams that completed setup and are still open."""
        return frozenset(self._sessions)

    async def start(self) -> int:
        """Bind and start serving; returns the bound port. Raises OSError naming the address."""
        if self._server is not None:
            raise StateError("E2Server.start: the server is already started")
        server = grpc.aio.server(
            options=[
                ("grpc.so_reuseport", 0),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", 5000),
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ]
        )
        handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.stream_stream_rpc_method_handler(
            self._connect
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {"Connect": handler}),)
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        address = f"{self._config.host}:{self._config.port}"
        try:
            port = server.add_insecure_port(address)
        except RuntimeError as exc:
            raise OSError(f"cannot listen for E2 on {address}: {exc}") from exc
        if port == 0:
            raise OSError(f"cannot listen for E2 on {address}: address in use or not available")
        await server.start()
        self._server = server
        self.port = port
        await self.set_serving(True)
        log.info("E2 termination listening on %s:%d", self._config.host, port)
        return port

    async def set_serving(self, serving: bool) -> None:
        """Report readiness through the standard gRPC health service (overall and E2)."""
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        await self._health.set(SERVICE, status)
        await self._health.set("", status)

    async def stop(self, grace_s: float = 1.0) -> None:
        """Stop accepting streams, end every session, and wait up to ``grace_s`` for them."""
        if self._server is None:
            return
        await self._health.enter_graceful_shutdown()
        for session in list(self._sessions):
            session.close("RIC shutting down")
        await self._server.stop(grace_s)
        self._server = None

    async def __aenter__(self) -> E2Server:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- one stream -------------------------------------------------------------------------

    async def _connect(self, requests: AsyncIterator[bytes], context: Any) -> None:
        peer = context.peer()
        try:
            first = await asyncio.wait_for(context.read(), self._config.setup_timeout_s)
        except TimeoutError:
            self._refuse(context, None, Cause(CauseCode.PROTOCOL_UNSPECIFIED, "no E2SetupRequest"))
            return
        if first is grpc.aio.EOF:
            return
        try:
            msg = _parse(first)
            session = self._setup(msg, peer)
        except ProtocolError as exc:
            self._sensor.setup_result(False, "?", exc.cause)
            self._sensor.e2_error(None, exc.cause)
            await self._write_failure(context, exc.cause, getattr(msg, "setup_request", None))
            return
        if session is None:
            return
        await self._run_session(session, context)

    def _refuse(self, context: Any, node: str | None, cause: Cause) -> None:
        log.warning("E2 stream from %s refused: %s", context.peer(), cause)
        self._sensor.setup_result(False, node or "?", cause)
        self._sensor.e2_error(node, cause)

    async def _write_failure(
        self, context: Any, cause: Cause, setup: e2_pb2.E2SetupRequest | None, wait_ms: int = 0
    ) -> None:
        fail = e2_pb2.E2SetupFailure(
            transaction_id=setup.transaction_id if setup is not None else 0,
            cause=cause_to_proto(cause),
            time_to_wait_ms=wait_ms,
        )
        try:
            await context.write(e2_pb2.RicMessage(setup_failure=fail).SerializeToString())
        except Exception as exc:  # the peer may be gone already; nothing more to tell it
            log.debug("could not send E2SetupFailure to %s: %s", context.peer(), exc)

    def _setup(self, msg: e2_pb2.NodeMessage, peer: str) -> NodeSession | None:
        which = msg.WhichOneof("message")
        if which != "setup_request":
            raise ProtocolError(
                Cause(
                    CauseCode.PROTOCOL_MESSAGE_NOT_COMPATIBLE_WITH_RECEIVER_STATE,
                    f"the first message of a stream must be setup_request, got {which or 'nothing'}",
                )
            )
        req = msg.setup_request
        accepted: dict[int, RanFunction] = {}
        rejected: list[e2_pb2.RanFunctionRejection] = []
        for fn in req.ran_functions:
            cause = self._check_function(fn, accepted)
            if cause is None:
                accepted[fn.ran_function_id] = ran_function_from_proto(fn)
            else:
                rejected.append(
                    e2_pb2.RanFunctionRejection(
                        ran_function_id=fn.ran_function_id, cause=cause_to_proto(cause)
                    )
                )
        info = node_info_from_setup(req, accepted)
        refusal = self._handler.admit(info)
        if refusal is not None:
            raise ProtocolError(refusal)
        keep_alive_ms = req.keep_alive_interval_ms or int(self._config.keep_alive_s * 1000)
        keep_alive_ms = min(max(keep_alive_ms, 100), 60_000)
        session = NodeSession(
            info,
            peer,
            keep_alive_ms / 1000.0,
            self._sensor,
            error_burst=self._config.error_burst,
            error_refill_per_s=self._config.error_refill_per_s,
        )
        session.send(
            e2_pb2.RicMessage(
                setup_response=e2_pb2.E2SetupResponse(
                    transaction_id=req.transaction_id,
                    ric_id=self._config.ric_id,
                    accepted_ran_function_ids=sorted(accepted),
                    rejected_ran_functions=rejected,
                    keep_alive_interval_ms=keep_alive_ms,
                )
            )
        )
        for r in rejected:
            log.info(
                "node %s: RAN function %d rejected: %s",
                info.id,
                r.ran_function_id,
                r.cause.detail,
                extra={"node": str(info.id)},
            )
        return session

    @staticmethod
    def _check_function(fn: e2_pb2.RanFunction, accepted: dict[int, RanFunction]) -> Cause | None:
        if fn.ran_function_id in accepted:
            return Cause(
                CauseCode.PROTOCOL_SEMANTIC_ERROR,
                f"RAN function id {fn.ran_function_id} is announced twice",
            )
        kind = _SUPPORTED_OIDS.get(fn.oid)
        if kind is None:
            return Cause(
                CauseCode.RIC_SERVICE_RAN_FUNCTION_NOT_SUPPORTED,
                f"service model {fn.short_name or '?'} (OID {fn.oid or 'none'}) is not supported",
            )
        if fn.WhichOneof("definition") != kind:
            return Cause(
                CauseCode.PROTOCOL_SEMANTIC_ERROR,
                f"RAN function {fn.ran_function_id} ({fn.short_name}) has no {kind} definition",
            )
        return None

    async def _run_session(self, session: NodeSession, context: Any) -> None:
        self._sessions.add(session)
        self._sensor.setup_result(True, session.id, None)
        self._handler.node_up(session)
        reason = "stream ended"
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._write_loop(session, context))
                reason = await self._read_loop(session, context)
                session.close(reason)
        except* grpc.aio.AioRpcError as group:
            reason = f"stream failed: {group.exceptions[0]}"
        finally:
            self._sessions.discard(session)
            session.close(reason)
            self._handler.node_down(session, session.close_reason or reason)

    async def _write_loop(self, session: NodeSession, context: Any) -> None:
        while True:
            msg = await session.next_outbound()
            if msg is None:
                return
            try:
                await context.write(msg.SerializeToString())
            except (
                Exception
            ) as exc:  # any failed write means the stream is gone (cygrpc errors too)
                session.close(f"stream broken while writing: {type(exc).__name__}")
                return

    async def _read_loop(self, session: NodeSession, context: Any) -> str:
        loop = asyncio.get_running_loop()
        silence = 3 * session.keep_alive_s
        handle = self._handler.handle
        try:
            async with asyncio.timeout_at(loop.time() + silence) as deadline:
                while not session.closed:
                    data = await context.read()
                    if data is grpc.aio.EOF:
                        return "stream closed by the node"
                    deadline.reschedule(loop.time() + silence)
                    try:
                        msg = _parse(data)
                        kind = msg.WhichOneof("message")
                        if kind is None:
                            raise ProtocolError(
                                Cause(
                                    CauseCode.PROTOCOL_ABSTRACT_SYNTAX_ERROR_FALSELY_CONSTRUCTED_MESSAGE,
                                    "NodeMessage carries no message",
                                )
                            )
                        if kind == "setup_request":
                            raise ProtocolError(
                                Cause(
                                    CauseCode.PROTOCOL_MESSAGE_NOT_COMPATIBLE_WITH_RECEIVER_STATE,
                                    "setup_request on a stream that is already set up",
                                )
                            )
                        if kind == "keep_alive":
                            session.send(e2_pb2.RicMessage(keep_alive=msg.keep_alive))
                            continue
                        handle(session, kind, getattr(msg, kind))
                    except ProtocolError as exc:
                        session.protocol_error(exc.cause, exc.request_id)
        except TimeoutError:
            return f"no message for {silence:g} s (three keep-alive intervals)"
        return session.close_reason
