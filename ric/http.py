"""The runtime's one HTTP server: metrics, health and the status API, on the runtime's loop.

======================================  ==================================================
``GET /metrics``                        Prometheus exposition (text or OpenMetrics)
``GET /healthz``                        200 while the process serves HTTP (liveness)
``GET /readyz``                         200 or 503, with every readiness check and which failed
``GET /api/v1/nodes[/{node_id}]``       E2 nodes: connected, and known from before
``GET /api/v1/xapps[/{name}]``          loaded xApps
``GET /api/v1/subscriptions``           E2 subscriptions (``?node=``, ``?xapp=``, ``?state=``)
``GET /api/v1/cluster``                 the replicas, the nodes each owns, each lease's term
``GET /api/v1/openapi.json``            the OpenAPI 3 document of all of the above
``/A1-P/v2/...``                        the A1-P policy API (``ric.a1.http``; writes need
                                        authentication like every write)
======================================  ==================================================

::

    async with Runtime.from_config(config, plugins):  # [http] enabled: PrometheusSensor
        ...                                            # and HttpServer, from observability()

Adding routes: write ``async def handler(request: web.Request) -> web.StreamResponse``, read
the runtime with ``request.app[RUNTIME]``, register it on ``routes`` below (or pass another
``web.RouteTableDef`` to ``HttpServer(routes=...)``), and document it in ``ric/openapi.json``:
a test fails for a route the document does not describe. Every error, on every path, is an
RFC 9457 ProblemDetails (``application/problem+json``: ``type``, ``title``, ``status``,
``detail``); answer one with ``problem(status, detail)``.

The server also keeps the gRPC health service in step with readiness: every
``[http] readiness_interval_s`` it evaluates ``runtime.checks()`` and, when the answer changes,
calls ``runtime.set_serving``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import functools
import gzip
import hmac
import importlib.resources
import json
import logging
import os
import socket
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, cast

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from ric.a1.http import A1, PROBLEM_JSON, problem, problem_body
from ric.a1.http import routes as a1_routes
from ric.actions import OutcomeKind
from ric.config import HttpSettings, RuntimeConfig
from ric.e2.session import NodeSession
from ric.errors import ConfigError
from ric.host import XAppHost
from ric.jsonbounds import JSON_BODY, JsonBody, JsonLimits
from ric.metrics import PrometheusSensor
from ric.sdl import SdlError
from ric.sdl.state import node_summary
from ric.types import Check, Sensor
from ric.view import Component, RuntimeView
from ric.watchdog import activity

__all__ = [
    "RUNTIME",
    "HttpServer",
    "IndicationRates",
    "build_app",
    "known_node_json",
    "node_json",
    "observability",
    "openapi_document",
    "problem",
    "routes",
    "xapp_json",
]

log = logging.getLogger(__name__)

RUNTIME = web.AppKey("runtime", RuntimeView)
"""The runtime the app serves: ``request.app[RUNTIME]`` in a handler."""


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3 document of the HTTP API (``ric/openapi.json``, shipped in the package)."""
    text = importlib.resources.files("ric").joinpath("openapi.json").read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


routes = web.RouteTableDef()
"""The runtime's routes; add new ones here (and to ``ric/openapi.json``)."""


# -- helpers ---------------------------------------------------------------------------------


def _iso(unix_s: float) -> str:
    stamp = datetime.datetime.fromtimestamp(unix_s, datetime.UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error as a ProblemDetails; an unexpected exception is logged, not leaked."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        detail = f"{exc.reason}: {request.method} {request.path}"
        return problem(exc.status, detail, headers=headers)
    except Exception:  # CancelledError is not an Exception: it goes through
        log.exception("HTTP %s %s failed", request.method, request.path)
        detail = f"internal error while serving {request.method} {request.path}"
        return problem(500, detail)


@web.middleware
async def _activity(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Name the request to the loop watchdog, so a stall during it is logged with its route."""
    with activity(f"HTTP {request.method} {request.path[:120]}"):
        return await handler(request)


OPEN_PATHS = frozenset({"/healthz", "/readyz"})
"""Paths that never need authentication (liveness and readiness probes)."""


class InFlight:
    """Requests being served, against ``[http] max_in_flight`` (probes are not counted)."""

    def __init__(self, settings: HttpSettings) -> None:
        self.limit = settings.max_in_flight
        self.retry_after_s = settings.retry_after_s
        self.max_body_bytes = settings.max_body_bytes
        self.count = 0


IN_FLIGHT = web.AppKey("in_flight", InFlight)


@web.middleware
async def _bounds(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer at once, without queueing, beyond ``[http] max_in_flight`` (503 with
    Retry-After) or for a declared body over ``[http] max_body_bytes`` (413)."""
    if request.path in OPEN_PATHS:  # cheap, and must answer while the rest is busy
        return await handler(request)
    bounds, sensor = request.app[IN_FLIGHT], request.app[RUNTIME].sensor
    if bounds.count >= bounds.limit:
        sensor.http_refused("in_flight")
        return problem(
            503,
            f"{bounds.limit} requests are in flight already ([http] max_in_flight); retry after "
            f"{bounds.retry_after_s} s",
            headers={"Retry-After": str(bounds.retry_after_s)},
        )
    size = request.content_length
    if size is not None and size > bounds.max_body_bytes:
        sensor.http_refused("body_too_large")
        return problem(
            413,
            f"the request body ({size} bytes) is larger than the bound of "
            f"{bounds.max_body_bytes} bytes ([http] max_body_bytes)",
        )
    bounds.count += 1
    try:
        return await handler(request)
    finally:
        bounds.count -= 1


class ConnectionGate:
    """At most ``[http] max_connections`` connections are served at once (a protocol factory in
    front of aiohttp's).

    A connection beyond the bound gets a prepared 503 with Retry-After as soon as its request
    line has arrived, and is closed right after: no request parsing, no handler task, no
    middleware, so a flood of connections costs the event loop a few tens of microseconds each
    instead of a full request, and none of them stays open. The requests in flight (``max_in_flight``)
    are bounded inside; this bounds how many connections can be ready on one turn of the loop,
    which is what a flood would otherwise turn into one long stall. Probes (``/healthz``,
    ``/readyz``) are handed to the server, so liveness and readiness answer during a flood.
    While every slot is taken and ``_OVERFLOW_WAITING`` overflow connections wait for their
    request line, ``_Listener`` stops accepting: new connections wait in the kernel's queue.
    """

    def __init__(self, server: Any, settings: HttpSettings, refused: Callable[[], None]) -> None:
        self.server = server
        self.limit = settings.max_connections
        self.retry_after_s = settings.retry_after_s
        self.refused = refused
        self.waiting = 0
        """Overflow connections waiting for their request line (to tell a probe)."""
        self._answer = b""

    def full(self) -> bool:
        """Every connection slot is taken and as many overflow connections wait as may."""
        return len(self.server.connections) >= self.limit and self.waiting >= _OVERFLOW_WAITING

    def __call__(self) -> asyncio.BaseProtocol:
        if len(self.server.connections) < self.limit:
            return self.server()  # type: ignore[no-any-return]
        return _Overflow(self)

    def answer(self) -> bytes:
        """The prepared 503 ProblemDetails, as bytes on the wire."""
        if not self._answer:
            detail = (
                f"{self.limit} connections are being served already ([http] max_connections); "
                f"retry after {self.retry_after_s} s"
            )
            body = json.dumps(problem_body(503, detail)).encode()
            head = (
                "HTTP/1.1 503 Service Unavailable\r\n"
                f"Content-Type: {PROBLEM_JSON}\r\nContent-Length: {len(body)}\r\n"
                f"Retry-After: {self.retry_after_s}\r\nConnection: close\r\n\r\n"
            )
            self._answer = head.encode() + body
        return self._answer


_ACCEPT_PER_TURN = 16
"""Connections accepted per turn of the loop: a burst of connections is taken in slices, so
that one turn never sets up hundreds of them while E2 messages wait."""
_LISTEN_QUEUE = 1024
"""Connections the kernel holds completed until they are accepted (beyond it, it drops the
client's handshake and the client retries): the queue a burst waits in, bounded."""
_PAUSE_S = 0.01
"""How long accepting pauses while the gate is full."""


class _Listener:
    """The HTTP listening socket, accepted from the loop: ``_ACCEPT_PER_TURN`` connections a
    turn, and none while the gate is full (they then wait in the kernel's listen queue)."""

    def __init__(self, sock: socket.socket, gate: ConnectionGate, tls: ssl.SSLContext | None):
        self.sock = sock
        self._gate = gate
        self._tls = tls
        self._loop = asyncio.get_running_loop()
        self._setups: set[asyncio.Task[Any]] = set()
        self._resume: asyncio.TimerHandle | None = None
        self._closed = False

    @classmethod
    def bind(
        cls, host: str, port: int, gate: ConnectionGate, tls: ssl.SSLContext | None
    ) -> _Listener:
        """Bind ``host:port`` (the first address it resolves to); OSError if it cannot."""
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(_LISTEN_QUEUE)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        listener = cls(sock, gate, tls)
        listener._loop.add_reader(sock.fileno(), listener._accept)
        return listener

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self.sock.getsockname()[1])

    def _accept(self) -> None:
        for _ in range(_ACCEPT_PER_TURN):
            if self._gate.full():
                self._pause()
                return
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors, for example: try again shortly
                log.warning("HTTP: cannot accept a connection: %s", exc)
                self._pause()
                return
            conn.setblocking(False)
            setup = self._loop.create_task(self._connect(conn))
            self._setups.add(setup)
            setup.add_done_callback(self._setups.discard)

    async def _connect(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._gate, conn, ssl=self._tls)
        except (OSError, ssl.SSLError) as exc:  # a client gone or failing TLS: its own loss
            log.debug("HTTP: a connection failed to set up: %s", exc)
            conn.close()

    def _pause(self) -> None:
        if self._resume is None and not self._closed:
            self._loop.remove_reader(self.sock.fileno())
            self._resume = self._loop.call_later(_PAUSE_S, self._resumed)

    def _resumed(self) -> None:
        self._resume = None
        if not self._closed:
            self._loop.add_reader(self.sock.fileno(), self._accept)

    def close(self) -> None:
        """Stop accepting and close the socket (connections being set up are cancelled)."""
        if self._closed:
            return
        self._closed = True
        if self._resume is not None:
            self._resume.cancel()
        else:
            self._loop.remove_reader(self.sock.fileno())
        for setup in self._setups:
            setup.cancel()
        self.sock.close()


_OVERFLOW_LINE_BYTES = 8192
"""A request line longer than this on an overflow connection is answered without looking."""
_OVERFLOW_WAITING = 32
"""Overflow connections that may wait for their request line at once; beyond, accepting
pauses. Sockets held open turn ready together when a flooding client finally writes: this
bounds that burst."""


class _Overflow(asyncio.Protocol):
    """One connection beyond ``max_connections``: a probe goes on to the server, anything else
    gets the prepared 503 (see ``ConnectionGate``)."""

    def __init__(self, gate: ConnectionGate) -> None:
        self._gate = gate
        self._look = True
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not a subclass of asyncio.Transport: no isinstance).
        self._transport = cast(asyncio.Transport, transport)
        self._gate.waiting += 1
        # A client that never sends its request line is closed after this.
        self._timer = asyncio.get_running_loop().call_later(
            max(1.0, float(self._gate.retry_after_s)), transport.close
        )

    def _done_waiting(self) -> None:
        if self._look:
            self._look = False
            self._gate.waiting -= 1
            if self._timer is not None:
                self._timer.cancel()

    def _refuse(self) -> None:
        transport = self._transport
        assert transport is not None
        self._done_waiting()
        self._gate.refused()
        transport.write(self._gate.answer())
        # Closed at once, not when the client is done: a connection kept open until then is
        # one more socket that turns ready on some later turn of the loop, and a flood of them
        # turns ready together. What the client sent so far has been read, so the close is an
        # orderly one; a client still sending a large body may see a reset after the answer.
        transport.close()

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        assert transport is not None
        if transport.is_closing():
            return
        self._buffer += data
        end = self._buffer.find(b"\r\n")
        if end < 0 and len(self._buffer) <= _OVERFLOW_LINE_BYTES:
            return
        parts = self._buffer[: max(end, 0)].split(b" ")
        path = parts[1].split(b"?", 1)[0].decode("latin-1") if len(parts) >= 2 else ""
        if path in OPEN_PATHS:  # probes get the server
            self._done_waiting()
            handler = self._gate.server()
            transport.set_protocol(handler)
            handler.connection_made(transport)
            handler.data_received(self._buffer)
            return
        self._refuse()

    def eof_received(self) -> bool | None:
        if self._transport is not None:
            self._transport.close()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._done_waiting()


class Access:
    """Who may do what over HTTP: bearer token and/or verified client certificate.

    Writes (any method but GET, HEAD and OPTIONS) always need authentication, and are refused
    outright when no way to authenticate is configured; reads need it with ``protect_reads``;
    ``/healthz`` and ``/readyz`` are always open.
    """

    def __init__(self, settings: HttpSettings) -> None:
        self.settings = settings
        self.protect_reads = settings.protect_reads
        self.client_certs = bool(settings.client_ca)
        self.client_subjects = frozenset(settings.client_subjects)
        self._token: bytes | None = None
        if settings.token_file:
            try:
                token = Path(settings.token_file).read_bytes().strip()
            except OSError as exc:
                raise ConfigError(
                    "http.token_file", f"cannot read {settings.token_file}: {exc.strerror}"
                ) from None
            if len(token) < 16:
                raise ConfigError("http.token_file", "the token must be at least 16 characters")
            self._token = token

    @property
    def configured(self) -> bool:
        """Whether any way to authenticate is configured."""
        return self._token is not None or self.client_certs

    def authenticated(self, request: web.Request) -> bool:
        """A valid bearer token (the scheme in any case, RFC 7235), or a client certificate
        the TLS layer verified and, with ``[http] client_subjects``, one of those listed."""
        scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
        if (
            self._token is not None
            and scheme.lower() == "bearer"
            and hmac.compare_digest(credentials.strip().encode(), self._token)
        ):
            return True
        names = self.certificate_names(request)
        if not names:
            return False
        return not self.client_subjects or not self.client_subjects.isdisjoint(names)

    def certificate_names(self, request: web.Request) -> set[str]:
        """The names of the verified client certificate, as ``[http] client_subjects`` writes
        them (``CN=...``, ``DNS:...``, ``IP:...``, ``URI:...``, ``email:...``); empty when
        there is none (or client certificates are not configured)."""
        if not self.client_certs or request.transport is None:
            return set()
        cert = request.transport.get_extra_info("peercert")
        if not cert:
            return set()
        names = {
            f"CN={value}"
            for rdn in cert.get("subject", ())
            for key, value in rdn
            if key == "commonName"
        }
        kinds = {"DNS": "DNS", "IP Address": "IP", "URI": "URI", "email": "email"}
        for kind, value in cert.get("subjectAltName", ()):
            if kind in kinds:
                names.add(f"{kinds[kind]}:{value}")
        return names


ACCESS = web.AppKey("access", Access)


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse unauthenticated requests where the access rules ask for it (see ``Access``)."""
    access = request.app[ACCESS]
    if request.path in OPEN_PATHS or request.match_info.http_exception is not None:
        return await handler(request)  # probes; and 404/405 say so before any 401
    write = request.method not in ("GET", "HEAD", "OPTIONS")
    if (write or access.protect_reads) and not access.authenticated(request):
        names = access.certificate_names(request)
        if names:
            return problem(
                403,
                f"{request.method} {request.path}: the client certificate "
                f"({', '.join(sorted(names))}) is not in [http] client_subjects",
            )
        if write and not access.configured:
            return problem(
                403,
                f"{request.method} {request.path} changes state, and no way to authenticate is "
                "configured: set [http] token_file or client_ca",
            )
        return problem(
            401,
            f"{request.method} {request.path} needs a bearer token or a client certificate",
            headers={"WWW-Authenticate": 'Bearer realm="ric"'},
        )
    return await handler(request)


class IndicationRates:
    """Indications per second of each node over the last ``window_s``, from periodic samples
    of the sessions' counters (a node younger than two samples gets its lifetime average)."""

    def __init__(self, window_s: float = 10.0) -> None:
        self.window_s = window_s
        self._samples: dict[str, tuple[NodeSession, collections.deque[tuple[float, int]]]] = {}

    def sample(self, sessions: Mapping[str, NodeSession], now: float | None = None) -> None:
        """Record every session's indication count at ``now`` (monotonic seconds)."""
        now = time.monotonic() if now is None else now
        for node in [n for n, (s, _) in self._samples.items() if sessions.get(n) is not s]:
            del self._samples[node]
        for node, session in sessions.items():
            entry = self._samples.get(node)
            if entry is None:
                entry = self._samples[node] = (session, collections.deque())
            samples = entry[1]
            samples.append((now, session.indications))
            while len(samples) > 2 and now - samples[1][0] >= self.window_s:
                samples.popleft()

    def rate(self, session: NodeSession, now: float | None = None) -> float:
        """Indications per second of ``session``'s node."""
        now = time.monotonic() if now is None else now
        entry = self._samples.get(session.id)
        if entry is not None and entry[0] is session:
            first_t, first_count = entry[1][0]
            if now - first_t >= 0.5:
                return max(session.indications - first_count, 0) / (now - first_t)
        age = time.time() - session.connected_at
        return session.indications / age if age > 0 else 0.0


class Readiness:
    """The last readiness published to the gRPC health service."""

    def __init__(self, runtime: RuntimeView) -> None:
        self.runtime = runtime
        self.published: bool | None = None

    def checks(self) -> list[Check]:
        """The runtime's checks, now."""
        return self.runtime.checks()

    async def publish(self, ready: bool) -> None:
        """Tell the gRPC health service, if the answer changed."""
        if ready is self.published:
            return
        self.published = ready
        log.info("runtime is %s", "ready" if ready else "not ready")
        await self.runtime.set_serving(ready)


REGISTRY = web.AppKey("registry", CollectorRegistry)
RATES = web.AppKey("rates", IndicationRates)
READINESS = web.AppKey("readiness", Readiness)


# -- health and metrics ----------------------------------------------------------------------


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers HTTP."""
    return web.json_response({"status": "alive"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Readiness: 200 when every check passes, else 503; the body lists them all."""
    readiness = request.app[READINESS]
    checks = readiness.checks()
    failed = [c.name for c in checks if not c.ok]
    await readiness.publish(not failed)
    body = {
        "ready": not failed,
        "failed": failed,
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks],
    }
    return web.json_response(body, status=503 if failed else 200)


class Exposition:
    """The last exposition of each format, served again for ``fresh_s`` seconds.

    Building one walks every series on the loop; a thousand scrapes at once (or a scraper
    gone wild) then cost one build per format and window, not one each. The gzip form is made
    once per build too.
    """

    def __init__(self, fresh_s: float) -> None:
        self.fresh_s = fresh_s
        self.builds = 0
        """Expositions built so far (what the cache saved is requests minus this)."""
        self._last: dict[str, tuple[float, bytes, bytes | None]] = {}

    def get(
        self, registry: CollectorRegistry, accept: str, compress: bool
    ) -> tuple[bytes, str, bool]:
        """``(body, content type, gzipped)`` for a scrape that sends ``accept``."""
        encoder, content_type = choose_encoder(accept)
        now = time.monotonic()
        entry = self._last.get(content_type)
        if entry is None or now - entry[0] > self.fresh_s:
            self.builds += 1
            entry = (time.monotonic(), encoder(registry), None)
            self._last[content_type] = entry
        built, body, zipped = entry
        if not compress or len(body) < 1024:
            return body, content_type, False
        if zipped is None:
            zipped = gzip.compress(body, compresslevel=5)
            self._last[content_type] = (built, body, zipped)
        return zipped, content_type, True


EXPOSITION = web.AppKey("exposition", Exposition)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition, in the format the scraper asks for (shared by the scrapes of
    ``[http] metrics_cache_s``)."""
    registry = request.app.get(REGISTRY)
    if registry is None:
        return problem(404, "metrics are not enabled on this runtime")
    compress = "gzip" in request.headers.get("Accept-Encoding", "")
    body, content_type, zipped = request.app[EXPOSITION].get(
        registry, request.headers.get("Accept", ""), compress
    )
    headers = {"Content-Type": content_type}
    if zipped:
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=body, headers=headers)


# -- the status API ----------------------------------------------------------------------------


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3 document of this API."""
    return web.json_response(openapi_document())


def node_json(
    session: NodeSession, rates: IndicationRates, record: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """One connected node as the status API shows it (``record``: its ``ric.nodes`` entry)."""
    seen = record or {}
    summary = node_summary(session.info)
    return {
        **{k: summary[k] for k in ("id", "type", "plmn", "vendor", "software_version")},
        "connected": True,
        "first_seen": _iso(seen.get("first_seen", session.connected_at)),
        "last_seen": _iso(time.time()),
        "peer": session.peer,
        "connected_since": _iso(session.connected_at),
        "uptime_s": round(max(time.time() - session.connected_at, 0.0), 3),
        "indications": session.indications,
        "indication_rate_per_s": round(rates.rate(session), 3),
        "ran_functions": summary["ran_functions"],
        "cells": summary["cells"],
    }


def known_node_json(record: Mapping[str, Any]) -> dict[str, Any]:
    """A node known from the SDL (seen before, maybe by a previous run) but not connected."""
    keys = ("id", "type", "plmn", "vendor", "software_version", "ran_functions", "cells")
    return {
        **{k: record.get(k) for k in keys},
        "connected": False,
        "first_seen": _iso(float(record.get("first_seen", 0.0))),
        "last_seen": _iso(float(record.get("last_seen", 0.0))),
    }


@routes.get("/api/v1/nodes")
async def nodes(request: web.Request) -> web.Response:
    """The E2 nodes, by id: the connected ones and those seen before (``connected: false``)."""
    runtime, rates = request.app[RUNTIME], request.app[RATES]
    sessions = runtime.sessions
    out = [node_json(s, rates, runtime.state.nodes.get(k)) for k, s in sessions.items()]
    out += [known_node_json(r) for r in runtime.state.known_nodes(sessions)]
    return web.json_response({"nodes": sorted(out, key=lambda n: str(n["id"]))})


@routes.get("/api/v1/nodes/{node_id}")
async def node(request: web.Request) -> web.Response:
    """One E2 node, connected or seen before."""
    node_id = request.match_info["node_id"]
    runtime = request.app[RUNTIME]
    session = runtime.sessions.get(node_id)
    if session is not None:
        return web.json_response(
            node_json(session, request.app[RATES], runtime.state.nodes.get(node_id))
        )
    record = runtime.state.nodes.get(node_id)
    if record is None:
        return problem(404, f"no node {node_id!r} is connected")
    return web.json_response(known_node_json(record))


def _subscription_xapps(described: Mapping[str, object]) -> list[str]:
    xapps = described.get("xapps")
    if isinstance(xapps, list):
        return [str(x) for x in xapps]
    xapp = described.get("xapp")
    return [str(xapp)] if xapp else []


def _subscriptions(runtime: RuntimeView) -> list[dict[str, object]]:
    return [sub.describe() for sub in runtime.subscriptions.snapshot()]


def xapp_json(
    host: XAppHost, runtime: RuntimeView, subscriptions: Iterable[Mapping[str, object]]
) -> dict[str, Any]:
    """One xApp as the status API shows it."""
    mine = [s for s in subscriptions if host.name in _subscription_xapps(s)]
    return {
        "name": host.name,
        "version": host.cls.version,
        "mode": host.mode,
        "state": host.state.value,
        "queue_depth": host.queue_depth,
        "queue_capacity": runtime.config.xapps.queue_size or host.cls.queue_size,
        "delivered": host.delivered,
        "dropped": host.dropped,
        "restarts": host.restarts,
        "overruns": host.overruns,
        "transport": host.transport(),
        "subscriptions": {
            "active": sum(1 for s in mine if s.get("state") == "active"),
            "total": len(mine),
        },
        "reports": [
            {"metrics": list(r.metrics), "period_ms": r.period_ms, "per": r.per}
            for r in host.cls.reports
        ],
        "controls": sorted({c.kind for c in host.cls.controls}),
        "policy_types": [t.id for t in host.cls.policy_types],
    }


@routes.get("/api/v1/xapps")
async def xapps(request: web.Request) -> web.Response:
    """The loaded xApps."""
    runtime = request.app[RUNTIME]
    subscriptions = _subscriptions(runtime)
    return web.json_response(
        {"xapps": [xapp_json(h, runtime, subscriptions) for h in runtime.hosts]}
    )


@routes.get("/api/v1/xapps/{name}")
async def xapp(request: web.Request) -> web.Response:
    """One loaded xApp."""
    runtime = request.app[RUNTIME]
    name = request.match_info["name"]
    for host in runtime.hosts:
        if host.name == name:
            return web.json_response(xapp_json(host, runtime, _subscriptions(runtime)))
    return problem(404, f"no xApp {name!r} is loaded")


@routes.get("/api/v1/subscriptions")
async def subscriptions(request: web.Request) -> web.Response:
    """The E2 subscriptions, optionally only those of one node, xApp or state."""
    query = request.query
    runtime = request.app[RUNTIME]
    # Then the previous run's, restored from the SDL, of nodes that have not come back yet.
    out = _subscriptions(runtime) + runtime.state.restored_subscriptions(runtime.sessions)
    if "node" in query:
        out = [s for s in out if s.get("node") == query["node"]]
    if "xapp" in query:
        out = [s for s in out if query["xapp"] in _subscription_xapps(s)]
    if "state" in query:
        out = [s for s in out if s.get("state") == query["state"]]
    return web.json_response({"subscriptions": out})


@routes.get("/api/v1/cluster")
async def cluster(request: web.Request) -> web.Response:
    """The replicas of this RIC with their last heartbeat, the nodes each owns and every
    lease's term, read from Redis now; 404 when this runtime is not a replica, 503 when
    Redis cannot be read."""
    replica = request.app[RUNTIME].cluster
    if replica is None:
        return problem(404, "this runtime is not a replica of a RIC ([cluster] enabled = false)")
    try:
        snapshot = await replica.snapshot()
    except SdlError as exc:
        return problem(503, f"cannot read the cluster's state: {exc}")
    for member in snapshot["replicas"]:
        member["last_heartbeat"] = _iso(member["last_heartbeat_unix_ms"] / 1000.0)
    return web.json_response(snapshot)


@routes.get("/api/v1/controls")
async def controls(request: web.Request) -> web.Response:
    """The last controls and their outcomes from the audit log, oldest first; ``?limit=N``
    (default 100), optionally only one xApp's (``?xapp=``) or one outcome (``?outcome=``)."""
    query = request.query
    try:
        limit = int(query.get("limit", "100"))
    except ValueError:
        return problem(400, f"limit must be an integer, got {query['limit']!r}")
    if not 1 <= limit <= 100_000:
        return problem(400, f"limit must be between 1 and 100000, got {limit}")
    outcomes = {kind.value for kind in OutcomeKind}
    if "outcome" in query and query["outcome"] not in outcomes:
        allowed = ", ".join(sorted(outcomes))
        return problem(400, f"outcome must be one of {allowed}, got {query['outcome']!r}")
    records = request.app[RUNTIME].audit.last(request.app[RUNTIME].audit.records.maxlen or 0)
    if "xapp" in query:
        records = [r for r in records if r["xapp"] == query["xapp"]]
    if "outcome" in query:
        records = [r for r in records if r["outcome"] == query["outcome"]]
    return web.json_response({"controls": records[-limit:]})


# -- the app and the component ---------------------------------------------------------------


def build_app(
    runtime: RuntimeView,
    registry: CollectorRegistry | None = None,
    *,
    extra: Iterable[web.RouteTableDef] = (),
    rates: IndicationRates | None = None,
    access: Access | None = None,
    exposition: Exposition | None = None,
) -> web.Application:
    """The aiohttp application serving ``runtime``: ``routes`` plus ``extra`` route tables."""
    access = access or Access(HttpSettings())
    settings = access.settings
    app = web.Application(
        middlewares=[_bounds, _activity, _problems, _auth],
        # aiohttp refuses a larger body as it reads it (a chunked one has no Content-Length).
        client_max_size=settings.max_body_bytes,
    )
    app[RUNTIME] = runtime
    app[A1] = runtime.a1
    app[ACCESS] = access
    app[IN_FLIGHT] = InFlight(settings)
    app[JSON_BODY] = JsonBody(
        settings.max_body_bytes,
        JsonLimits(settings.max_json_depth, settings.max_json_values),
        runtime.sensor.http_refused,
    )
    app[EXPOSITION] = exposition or Exposition(settings.metrics_cache_s)
    if registry is not None:
        app[REGISTRY] = registry
    app[RATES] = rates or IndicationRates()
    app[READINESS] = Readiness(runtime)
    app.add_routes(routes)
    app.add_routes(a1_routes)
    for table in extra:
        app.add_routes(table)
    return app


class _ServerLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's server log, where a request the client malformed (a NUL byte in a header, a
    bad request line) is the client's mistake: one WARNING line, no traceback; anything else
    stays an ERROR with its traceback."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kw: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(exc, HttpProcessingError):
            text = str(msg) % args if args else str(msg)
            why = " ".join(str(exc.message).split())  # one line: aiohttp adds a caret line
            self.logger.warning("HTTP: %s: a malformed request: %s", text, why)
            return
        self.logger.exception(msg, *args, exc_info=exc_info, **kw)


_SERVER_LOG = _ServerLog(logging.getLogger("aiohttp.server"))
_MAX_LINE_BYTES = 16 * 1024
"""The longest request line (or header line) the server reads."""


class HttpServer:
    """The runtime's HTTP server, as a runtime component (see the module docstring).

    ``registry`` is what ``/metrics`` serves (the PrometheusSensor's); ``routes`` are extra
    route tables. ``port`` and ``url`` tell where it listens once started (port 0 in the
    settings picks a free port).
    """

    name = "http"

    def __init__(
        self,
        settings: HttpSettings | None = None,
        *,
        registry: CollectorRegistry | None = None,
        routes: Iterable[web.RouteTableDef] = (),
    ) -> None:
        self.settings = settings or HttpSettings()
        self.registry = registry
        self.port = 0
        self._routes = list(routes)
        self._runner: web.AppRunner | None = None
        self._listener: _Listener | None = None
        self._watch: asyncio.Task[None] | None = None
        self._rates = IndicationRates()
        self.exposition = Exposition(self.settings.metrics_cache_s)
        """The /metrics expositions this server built and shares (``builds`` counts them)."""

    def __repr__(self) -> str:
        return f"HttpServer({self.url if self._runner else 'stopped'})"

    def _tls(self) -> ssl.SSLContext | None:
        """The server's TLS context, or None for plain HTTP."""
        s = self.settings
        if not s.tls_cert:
            return None
        try:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(s.tls_cert, s.tls_key)
            if s.client_ca:
                context.load_verify_locations(s.client_ca)
                context.verify_mode = ssl.CERT_OPTIONAL  # a certificate authenticates; none: token
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError("http.tls_cert", f"cannot load the HTTP TLS files: {exc}") from None
        return context

    def _warn_shared_ca(self, e2_ca: str) -> None:
        """Warn when any E2 node's certificate could write over HTTP."""
        s = self.settings
        if not (s.client_ca and e2_ca and not s.client_subjects):
            return
        try:
            same = os.path.samefile(s.client_ca, e2_ca)
        except OSError:
            same = os.path.abspath(s.client_ca) == os.path.abspath(e2_ca)
        if same:
            log.warning(
                "[http] client_ca is the same file as [e2.tls] client_ca (%s) and [http] "
                "client_subjects is empty: any E2 node's certificate may write A1 policies; "
                "list the operators' certificates in [http] client_subjects or use another CA",
                s.client_ca,
            )

    @property
    def url(self) -> str:
        """``http(s)://host:port`` of the running server (loopback when bound to all)."""
        host = self.settings.host
        if host in ("0.0.0.0", "", "::"):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        scheme = "https" if self.settings.tls_cert else "http"
        return f"{scheme}://{host}:{self.port}"

    async def start(self, runtime: RuntimeView) -> None:
        """Listen; return once the socket is bound. OSError names the address if it cannot."""
        if self._runner is not None:
            raise RuntimeError(f"{self!r} is already started")
        app = build_app(
            runtime,
            self.registry,
            extra=self._routes,
            rates=self._rates,
            access=Access(self.settings),
            exposition=self.exposition,
        )
        tls = self._tls()  # before anything is set up: bad files leave nothing behind
        self._warn_shared_ca(runtime.config.e2.tls.client_ca)
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=1.0,
            logger=_SERVER_LOG,
            # A request line holds an A1 notificationDestination of up to 1024 characters,
            # percent-encoded: aiohttp's 8190 bytes would refuse it in text/plain.
            max_line_size=_MAX_LINE_BYTES,
        )
        await runner.setup()
        address = f"{self.settings.host}:{self.settings.port}"
        assert runner.server is not None
        gate = ConnectionGate(
            runner.server,
            self.settings,
            functools.partial(runtime.sensor.http_refused, "connections"),
        )
        try:
            listener = _Listener.bind(self.settings.host, self.settings.port, gate, tls)
        except OSError as exc:
            await runner.cleanup()
            reason = str(exc.strerror or exc).lower()
            raise OSError(f"cannot listen for HTTP on {address}: {reason}") from exc
        self._runner = runner
        self._listener = listener
        self.port = listener.port
        readiness = app[READINESS]
        self._watch = asyncio.create_task(self._watch_readiness(runtime, readiness), name="http")
        log.info("HTTP on %s (metrics, health, status API)", self.url)

    async def _watch_readiness(self, runtime: RuntimeView, readiness: Readiness) -> None:
        interval = self.settings.readiness_interval_s
        while True:
            try:
                self._rates.sample(runtime.sessions)
                await readiness.publish(all(c.ok for c in readiness.checks()))
            except Exception:  # the watch must outlive a bad check; the next round retries
                log.exception("readiness check failed")
            await asyncio.sleep(interval)

    async def stop(self) -> None:
        """Stop the readiness watch and the server; nothing happens if not started."""
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def checks(self) -> list[Check]:
        """``http``: the server listens."""
        running = self._runner is not None
        return [Check("http", running, self.url if running else "not listening")]


def observability(config: RuntimeConfig) -> tuple[list[Sensor], list[Component]]:
    """The sensors and components that ``config`` asks for: a PrometheusSensor and the
    HttpServer serving it when ``[http] enabled``, else nothing."""
    if not config.http.enabled:
        return [], []
    sensor = PrometheusSensor(config.metrics)
    server = HttpServer(config.http, registry=sensor.registry)
    return [sensor], [sensor, server]
