"""The northbound gRPC server: where xApps on other machines or in other languages attach.

It listens on TCP when ``[northbound] port`` is set (``ric run --northbound``), for
``remote`` xApps (bearer token and mTLS as configured). The runtime's own ``process`` xApps do
not come through here: each gets a private socket pair (``ric.northbound.framed``). Each
``Attach`` stream starts with a Hello, which is checked before anything is created; a refusal
ends the stream with a gRPC status whose message names the problem, and the runtime serves
everyone else meanwhile. Health and reflection are served as on the E2 port.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ric._proto.xapp.v1 import xapp_pb2 as pb
from ric.config import NorthboundSettings
from ric.errors import StateError
from ric.northbound import codec
from ric.northbound.host import AttachedHost, RemoteHost, Stream

if TYPE_CHECKING:
    from ric.host import XAppHost

__all__ = ["SERVICE", "AttachRefused", "NorthboundServer", "XAppRegistry"]

log = logging.getLogger(__name__)

SERVICE = "ric.xapp.v1.XAppService"


class AttachRefused(Exception):
    """An attach the runtime does not take: a gRPC status and a message naming the problem."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class XAppRegistry(Protocol):
    """What the server needs of the runtime."""

    @property
    def hosts(self) -> list[XAppHost]:
        """Every xApp host."""
        ...

    async def attach_remote(self, stream: Stream) -> RemoteHost:
        """Create and start the host of a new remote xApp; AttachRefused if it cannot be."""
        ...


class NorthboundServer:
    """The gRPC server of the northbound API (remote xApps, on TCP)."""

    def __init__(self, registry: XAppRegistry, settings: NorthboundSettings) -> None:
        self.registry = registry
        self.settings = settings
        self._server: grpc.aio.Server | None = None
        self._health = health.aio.HealthServicer()
        self.port: int | None = None
        self._token = b""
        self.refused = 0

    async def start(self) -> None:
        """Bind the TCP port and serve; OSError naming the address."""
        if self._server is not None:
            raise StateError("NorthboundServer.start: already started")
        settings = self.settings
        self._prepare()
        cap = settings.max_message_bytes
        server = grpc.aio.server(
            options=[
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", cap),
                ("grpc.max_send_message_length", cap),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", 5000),
            ]
        )
        handler = grpc.stream_stream_rpc_method_handler(
            self._attach,
            request_deserializer=pb.XAppMessage.FromString,
            response_serializer=pb.RicMessage.SerializeToString,
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {"Attach": handler}),)
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        if settings.port is None:
            raise StateError("NorthboundServer.start: [northbound] port is not set")
        address = f"{settings.host}:{settings.port}"
        try:
            if settings.tls.enabled:
                port = server.add_secure_port(address, self._credentials())
            else:
                port = server.add_insecure_port(address)
        except RuntimeError as exc:
            raise OSError(f"cannot listen for xApps on {address}: {exc}") from exc
        if port == 0:
            raise OSError(f"cannot listen for xApps on {address}: address in use")
        self.port = port
        await server.start()
        self._server = server
        await self._health.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)
        await self._health.set("", health_pb2.HealthCheckResponse.SERVING)
        log.info("northbound API listening on %s:%d", settings.host, self.port)

    def _prepare(self) -> None:
        """Read the token file."""
        settings = self.settings
        if settings.token_file:
            try:
                self._token = Path(settings.token_file).read_bytes().strip()
            except OSError as exc:
                raise OSError(f"cannot read northbound.token_file: {exc}") from exc
            if not self._token:
                raise OSError(f"northbound.token_file {settings.token_file} is empty")

    def _credentials(self) -> grpc.ServerCredentials:
        tls = self.settings.tls
        try:
            key = Path(tls.key).read_bytes()
            cert = Path(tls.cert).read_bytes()
            ca = Path(tls.client_ca).read_bytes() if tls.client_ca else None
        except OSError as exc:
            raise OSError(f"cannot read the northbound TLS files: {exc}") from exc
        return grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
        )

    async def stop(self, grace_s: float = 1.0) -> None:
        """Stop serving."""
        if self._server is not None:
            await self._health.enter_graceful_shutdown()
            await self._server.stop(grace_s)
            self._server = None

    # -- one stream -------------------------------------------------------------------------

    async def _attach(self, requests: AsyncIterator[pb.XAppMessage], context: Any) -> None:
        peer = context.peer()
        try:
            stream = await self._accept(context, peer)
        except AttachRefused as exc:
            self.refused += 1
            log.warning("xApp attach from %s refused: %s", peer, exc)
            await context.abort(exc.code, str(exc))
            return
        if stream is None:
            return
        await stream.done.wait()
        if stream.status is not None:
            await context.abort(stream.status, stream.reason)

    async def _accept(self, context: Any, peer: str) -> Stream | None:
        metadata = {k: v for k, v in context.invocation_metadata() or ()}
        self._authenticate(metadata)
        try:
            first = await asyncio.wait_for(context.read(), self.settings.hello_timeout_s)
        except TimeoutError:
            raise AttachRefused(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"no hello within [northbound] hello_timeout_s ({self.settings.hello_timeout_s:g} s)",
            ) from None
        if first is grpc.aio.EOF:
            return None
        if first.WhichOneof("message") != "hello":
            raise AttachRefused(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the first message must be a hello, not {first.WhichOneof('message')}",
            )
        hello = first.hello
        try:
            codec.declared_class(hello)
        except ValueError as exc:
            raise AttachRefused(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        if self.settings.tls.client_ca:
            self._check_identity(context, hello.name)
        stream = Stream(context, hello, peer)
        existing = next((h for h in self.registry.hosts if h.name == hello.name), None)
        if existing is None:
            await self.registry.attach_remote(stream)
            return stream
        if isinstance(existing, RemoteHost):
            self._offer(existing, stream)
            return stream
        raise AttachRefused(
            grpc.StatusCode.ALREADY_EXISTS,
            f"an xApp named {hello.name!r} is loaded by the runtime ({existing.mode} mode); "
            "a remote xApp needs a name of its own",
        )

    @staticmethod
    def _offer(host: AttachedHost, stream: Stream) -> None:
        why = host.offer(stream)
        if why is not None:
            raise AttachRefused(grpc.StatusCode.ALREADY_EXISTS, why)

    def _authenticate(self, metadata: dict[str, Any]) -> None:
        if not self._token:
            return
        given = str(metadata.get("authorization", ""))
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), self._token):
            raise AttachRefused(
                grpc.StatusCode.UNAUTHENTICATED,
                "a bearer token is required ('authorization: Bearer <token>', the token in "
                "the runtime's [northbound] token_file)",
            )

    @staticmethod
    def _check_identity(context: Any, name: str) -> None:
        auth = context.auth_context()
        names = {
            value.decode(errors="replace")
            for key in ("x509_common_name", "x509_subject_alternative_name")
            for value in auth.get(key, [])
        }
        if name not in names:
            raise AttachRefused(
                grpc.StatusCode.PERMISSION_DENIED,
                f"xApp {name}: its certificate names {sorted(names) or 'nothing'}, not the "
                "xApp (its subject CN or a SAN must be the xApp's name)",
            )
