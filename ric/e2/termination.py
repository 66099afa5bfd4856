"""The E2 termination: a ``grpc.aio`` server where each E2 node opens one Connect stream.

The server moves bytes: it reads each stream's messages (raw, so that malformed ones can be
answered rather than break the stream), watches keep-alives, and writes the RIC's messages
back. What the bytes mean is decided by the transport-agnostic ``E2Endpoint``
(``ric.e2.endpoint``), which the in-memory link of the test harness shares.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ric.e2.endpoint import E2Endpoint, TerminationConfig
from ric.e2.session import NodeSession
from ric.errors import ProtocolError, StateError
from ric.model import Cause, CauseCode
from ric.watchdog import ACTIVITY, stalled_since

__all__ = ["TRANSPORT_CAP_FACTOR", "E2Server", "transport_cap"]

log = logging.getLogger(__name__)

SERVICE = "ric.e2.v1.E2Termination"


TRANSPORT_CAP_FACTOR = 2
"""gRPC's own receive cap is this many times ``max_message_bytes``: a message between the two
reaches the termination and is answered with an ErrorIndication; one above the cap is refused
by gRPC itself, in C (RESOURCE_EXHAUSTED, which ends the node's stream). The cap is kept this
close because a message that reaches Python is first joined into one bytes object by gRPC's
Cython layer, on the event loop: a 24 MB one held the loop for up to 176 ms on these
machines (about 7 ms per MB), one of 8 MiB stays well under the 100 ms stall budget."""


def transport_cap(config: TerminationConfig) -> int:
    """The ``grpc.max_receive_message_length`` of the E2 server (gRPC takes a C int)."""
    return min(TRANSPORT_CAP_FACTOR * config.max_message_bytes, 2**31 - 1)


class E2Server:
    """The gRPC server: E2 termination plus the standard health and reflection services.

    Use as ``async with E2Server(endpoint) as server`` or call ``start`` and ``stop``;
    ``port`` is the bound port once started (useful with port 0).
    """

    def __init__(self, endpoint: E2Endpoint) -> None:
        self.endpoint = endpoint
        self._config = endpoint.config
        self._sensor = endpoint.sensor
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
                ("grpc.max_receive_message_length", transport_cap(self._config)),
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
            if self._config.tls_cert:
                port = server.add_secure_port(address, self._credentials())
            else:
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

    def _credentials(self) -> grpc.ServerCredentials:
        """TLS credentials that re-read the certificate files whenever they change."""
        files = [self._config.tls_cert, self._config.tls_key, self._config.tls_client_ca]
        stamps: dict[str, float] = {}

        def load() -> grpc.ServerCertificateConfiguration:
            stamps.update({f: os.stat(f).st_mtime for f in files if f})
            with open(self._config.tls_key, "rb") as key, open(self._config.tls_cert, "rb") as cert:
                pair = [(key.read(), cert.read())]
            ca = None
            if self._config.tls_client_ca:
                with open(self._config.tls_client_ca, "rb") as fh:
                    ca = fh.read()
            return grpc.ssl_server_certificate_configuration(pair, root_certificates=ca)

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            try:
                changed = any(os.stat(f).st_mtime != stamps.get(f) for f in files if f)
                if changed:
                    log.info("E2 TLS certificate files changed; using the new ones")
                    return load()
            except (OSError, ValueError) as exc:  # keep serving with the current certificates
                log.error("cannot reload the E2 TLS certificates: %s", exc)
            return None

        try:
            initial = load()
        except OSError as exc:
            raise OSError(f"cannot read the E2 TLS files: {exc}") from exc
        return grpc.dynamic_ssl_server_credentials(
            initial,
            fetch,  # type: ignore[arg-type]  # grpc documents None as "no change"; stubs do not
            require_client_authentication=bool(self._config.tls_client_ca),
        )

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
        endpoint = self.endpoint
        identities: frozenset[str] | None = None
        if self._config.tls_client_ca and self._config.check_node_identity:
            auth = context.auth_context()
            identities = frozenset(
                value.decode(errors="replace")
                for key in ("x509_common_name", "x509_subject_alternative_name")
                for value in auth.get(key, [])
            )
        try:
            first = await asyncio.wait_for(context.read(), self._config.setup_timeout_s)
        except TimeoutError:
            cause = Cause(
                CauseCode.PROTOCOL_UNSPECIFIED, "no E2SetupRequest within the setup timeout"
            )
            log.warning("E2 stream from %s refused: %s", peer, cause)
            self._sensor.setup_result(False, "?", cause)
            self._sensor.e2_error(None, cause)
            return
        if first is grpc.aio.EOF:
            return
        try:
            session = endpoint.setup(first, peer, identities)
        except ProtocolError as exc:
            log.warning("E2 stream from %s refused: %s", peer, exc.cause)
            try:
                await context.write(endpoint.setup_failure(exc.cause, first))
            except Exception as write_error:  # the peer may be gone already
                log.debug("could not send E2SetupFailure to %s: %s", peer, write_error)
            return
        refusal = await endpoint.claim(session)  # a replica takes the node's lease here
        if refusal is not None:
            log.warning("E2 stream from %s refused: %s", peer, refusal)
            try:
                await context.write(endpoint.setup_failure(refusal, first))
            except Exception as write_error:  # the peer may be gone already
                log.debug("could not send E2SetupFailure to %s: %s", peer, write_error)
            return
        self._sessions.add(session)
        endpoint.up(session)
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
            endpoint.down(session, reason)

    async def _write_loop(self, session: NodeSession, context: Any) -> None:
        encode = self.endpoint.encode
        while True:
            msg = await session.next_outbound()
            if msg is None:
                return
            try:
                await context.write(encode(session, msg))
            except Exception as exc:  # any failed write means the stream is gone (cygrpc too)
                session.close(f"stream broken while writing: {type(exc).__name__}")
                return

    async def _read_loop(self, session: NodeSession, context: Any) -> str:
        loop = asyncio.get_running_loop()
        silence = 3 * session.keep_alive_s
        receive = self.endpoint.receive
        activity = ACTIVITY
        mark = (asyncio.current_task(), f"E2 node {session.id}")
        last = loop.time()
        handle: asyncio.TimerHandle | None = None

        # One timer per silence window, not one per message: it re-arms itself from the last
        # message. Only time the loop could run counts as silence: while the RIC's own loop
        # was stalled it could not read either, so that time is not the node's fault.
        def check() -> None:
            nonlocal handle
            now = loop.time()
            heard = now - last - stalled_since(last)
            if heard < silence:
                handle = loop.call_at(now + silence - heard, check)
            else:
                deadline.reschedule(now)  # ends the read below with TimeoutError

        try:
            async with asyncio.timeout(None) as deadline:
                handle = loop.call_at(last + silence, check)
                while not session.closed:
                    data = await context.read()
                    if data is grpc.aio.EOF:
                        return "stream closed by the node"
                    last = loop.time()
                    previous, activity.current = activity.current, mark
                    try:
                        receive(session, data)
                    finally:
                        activity.current = previous
        except TimeoutError:
            return (
                f"no message for {silence:g} s (three keep-alive intervals, not counting "
                "time the RIC's own loop was stalled)"
            )
        finally:
            if handle is not None:
                handle.cancel()
        return session.close_reason
