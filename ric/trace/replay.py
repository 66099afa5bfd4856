"""``ric replay``: a trace's nodes played into a running runtime over real gRPC.

Each recorded node opens its own ``E2Termination.Connect`` stream, sets up with its recorded
E2SetupRequest when the trace says it did, and is then served by a
:class:`~ric.trace.player.PlayedNode`: it answers the subscriptions the xApps make with the
recorded measurements, at their periods, and answers controls by the chosen policy. Trace
time runs at ``speed`` times real time, or as fast as the runtime reads (``speed=None``,
"max"): writes wait for gRPC flow control, so the player never runs away from the runtime's
E2 reader (an xApp slower than that drops its oldest reports, counted by the runtime as
always). xApps keep the runtime's real clock: at speeds other than 1 their timers and
cool-downs see compressed trace time; the test harness has neither effect.
After nodes set up, the player waits until the RIC has been quiet for ``settle_s`` (its
subscriptions are in) before trace time moves on; before the end it waits the same way for the
xApps' last controls. Keep-alives are sent on real time, at the interval the RIC asked for.

Given several RIC endpoints (a RIC's replicas), every node starts on the first one that can be
reached. A node whose stream is lost reconnects with its recorded setup, to the next endpoint
(round robin; the same one when there is one), after a capped exponential back-off
(:class:`~ric.e2node.Endpoints`), while the timeline goes on; a node whose setup is refused
or unreachable at a setup event fails over the same way when there are several endpoints (with
one, that is an error of the replay, as before).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import grpc

from ric._proto.e2.v1 import e2_pb2, e2_pb2_grpc
from ric.backoff import Backoff
from ric.cliutil import table
from ric.e2node import Endpoints, SetupFailed, SetupRefused, read_setup_answer
from ric.errors import RicError
from ric.trace.index import NodeEvent, TraceIndex
from ric.trace.player import ControlPolicy, PlayedNode, TracePlayer

__all__ = ["ReplayError", "ReplayProgress", "ReplayResult", "replay"]

log = logging.getLogger(__name__)

_MAX_QUEUED: Final = 64
"""Messages queued for one node's stream beyond which the timeline waits (back-pressure)."""
_MAX_QUIET_WAIT_S: Final = 5.0
_CLOSE_WAIT_S: Final = 2.0
_RECONNECT_JITTER: Final = 0.2
"""Each reconnect delay is spread this much either way (nodes that lost the RIC together do
not return together), as the simulator's nodes do."""


class ReplayError(RicError):
    """The replay cannot run: the runtime is unreachable or refused every node."""


@dataclass(frozen=True, slots=True)
class ReplayProgress:
    """Where a replay is: trace position and duration (s), wall time (s), and counts."""

    position_s: float
    duration_s: float
    wall_s: float
    nodes_up: int
    reports: int
    controls: int

    @property
    def fraction(self) -> float:
        """Share of the trace played, 0..1."""
        return 1.0 if self.duration_s <= 0 else min(1.0, self.position_s / self.duration_s)

    @property
    def speed(self) -> float:
        """Trace seconds per wall second so far."""
        return self.position_s / self.wall_s if self.wall_s > 0 else 0.0


@dataclass
class ReplayResult:
    """What a replay did: the player (subscriptions and controls seen), timing and errors."""

    player: TracePlayer
    wall_s: float
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the player's summary plus timing and errors."""
        out = self.player.summary()
        out["wall_s"] = round(self.wall_s, 3)
        out["speed"] = (
            round(self.player.index.duration_s / self.wall_s, 1) if self.wall_s > 0 else None
        )
        out["errors"] = self.errors
        return out

    def render(self) -> str:
        """The summary ``ric replay`` prints: what was played and a table of the controls."""
        p = self.player
        d = self.to_dict()
        lines = [
            f"replayed {p.index.path}: {len(p.nodes)} nodes, {p.index.duration_s:.1f} s of trace "
            f"in {self.wall_s:.1f} s"
            + (f" (x{d['speed']:g})" if d["speed"] else "")
            + f", {p.reports_sent:,} reports served",
            f"subscriptions: {len(p.subscriptions)}"
            + (
                f" ({sum(1 for s in p.subscriptions if s.refused)} refused)"
                if any(s.refused for s in p.subscriptions)
                else ""
            ),
        ]
        if not p.controls:
            lines.append(f"controls: none (policy {p.policy})")
        else:
            groups: collections.Counter[tuple[str, str, str, str]] = collections.Counter(
                (c.kind, c.node, c.answer, c.cause.partition(":")[0]) for c in p.controls
            )
            rows = [
                [kind, node, answer + (f" ({cause})" if cause else ""), str(count)]
                for (kind, node, answer, cause), count in sorted(groups.items())
            ]
            header = ["CONTROL", "NODE", "ANSWER", "COUNT"]
            lines.append(f"controls: {len(p.controls)} (policy {p.policy})")
            lines += table(header, rows, right={3})
        for error in self.errors:
            lines.append(f"error: {error}")
        return "\n".join(lines)


class _Stream:
    """One played node's gRPC stream: a writer queue, a reader, keep-alives; and, once set
    up, reconnection to the next endpoint when the stream is lost."""

    def __init__(
        self,
        node: PlayedNode,
        player: TracePlayer,
        endpoints: Endpoints,
        channel_for: Callable[[str], grpc.aio.Channel],
        on_rx: Callable[[], None],
        retry: Backoff,
    ) -> None:
        self.node = node
        self.player = player
        self.endpoints = endpoints
        self.channel_for = channel_for
        self.on_rx = on_rx
        self.retry = retry
        self.queue: asyncio.Queue[e2_pb2.NodeMessage] = asyncio.Queue()
        self.call: grpc.aio.StreamStreamCall[e2_pb2.NodeMessage, e2_pb2.RicMessage] | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.closed = False
        self.close_reason = ""
        self.ending = False
        """The player ends the association (close): no reconnecting."""
        self.reconnecting: asyncio.Task[None] | None = None
        self._setup = e2_pb2.NodeMessage()
        self._timeout_s = 0.0
        self._room = asyncio.Event()
        self._room.set()

    async def open(self, setup: e2_pb2.NodeMessage, timeout_s: float) -> str | None:
        """Set the node up; None when accepted, else why not. With several endpoints a
        failure moves on to the next in the background (the answer is still the failure)."""
        self._setup, self._timeout_s = setup, timeout_s
        problem = await self._open_once()
        if problem is not None:
            self.closed = True  # nothing is queued until it is set up
            if len(self.endpoints) > 1:
                self._fail_over(problem)
        return problem

    async def _open_once(self) -> str | None:
        target = self.endpoints.current
        stub = e2_pb2_grpc.E2TerminationStub(self.channel_for(target))
        call = stub.Connect()
        try:
            await call.write(self._setup)
            first = await asyncio.wait_for(call.read(), self._timeout_s)
        except (grpc.aio.AioRpcError, TimeoutError) as exc:
            call.cancel()
            return f"E2 setup at {target} failed: {_describe(exc)}"
        try:
            accepted = read_setup_answer(first)
        except SetupFailed as exc:
            call.cancel()
            if isinstance(exc, SetupRefused):
                self.endpoints.refused(exc.wait_s)
                return f"E2 setup refused by {target}: {exc}"
            return f"{target}: {exc}"
        self.call = call
        self.queue = asyncio.Queue()
        self.closed = False
        self.close_reason = ""
        self._room.set()
        self.node.up()
        keep_alive_s = max(0.1, (accepted.keep_alive_interval_ms or 1000) / 1000.0)
        loop = asyncio.get_running_loop()
        self.tasks = [
            loop.create_task(self._write(call), name=f"replay-write:{self.node.node}"),
            loop.create_task(self._read(call), name=f"replay-read:{self.node.node}"),
            loop.create_task(self._keep_alive(keep_alive_s), name=f"replay-ka:{self.node.node}"),
        ]
        return None

    def _fail_over(self, reason: str) -> None:
        """Reconnect in the background: back-off, next endpoint, recorded setup; until set up
        or closed."""
        if self.ending or (self.reconnecting is not None and not self.reconnecting.done()):
            return
        self.reconnecting = asyncio.get_running_loop().create_task(
            self._reconnect(reason), name=f"replay-reconnect:{self.node.node}"
        )

    async def _reconnect(self, reason: str) -> None:
        if self.tasks:  # the lost stream's tasks (this runs beside them, not inside them)
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            self.tasks = []
        if self.call is not None:
            self.call.cancel()
            self.call = None
        while not self.ending:
            delay = self.retry.next()
            left = self.endpoints.current
            target = self.endpoints.fail_over()
            if target != left:
                log.warning("%s: %s; failing over to %s", self.node.node, reason, target)
            else:
                log.warning("%s: %s; reconnecting", self.node.node, reason)
            await asyncio.sleep(self.endpoints.wait_s() or delay)
            problem = await self._open_once()
            if problem is None:
                self.retry.reset()
                log.info("%s: set up again at %s", self.node.node, target)
                return
            reason = problem

    def send(self, msg: e2_pb2.NodeMessage) -> None:
        """Queue one message for the RIC."""
        if not self.closed:
            self.queue.put_nowait(msg)
            if self.queue.qsize() > _MAX_QUEUED:
                self._room.clear()

    async def _write(
        self, call: grpc.aio.StreamStreamCall[e2_pb2.NodeMessage, e2_pb2.RicMessage]
    ) -> None:
        try:
            while True:
                msg = await self.queue.get()
                await call.write(msg)
                self.queue.task_done()
                if self.queue.qsize() <= _MAX_QUEUED:
                    self._room.set()
        except (grpc.aio.AioRpcError, grpc.aio.UsageError) as exc:
            self._lost(f"write failed: {_describe(exc)}")

    async def _read(
        self, call: grpc.aio.StreamStreamCall[e2_pb2.NodeMessage, e2_pb2.RicMessage]
    ) -> None:
        try:
            while True:
                msg = await call.read()
                if not isinstance(msg, e2_pb2.RicMessage):
                    self._lost("the RIC ended the stream")
                    return
                if msg.WhichOneof("message") != "keep_alive":
                    self.on_rx()
                for answer in self.node.handle(msg, self.player.now_us):
                    self.send(answer)
        except grpc.aio.AioRpcError as exc:
            self._lost(f"stream failed: {_describe(exc)}")

    async def _keep_alive(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            self.send(self.node.keep_alive())

    def _lost(self, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.close_reason = reason
            self.node.down()
            self._room.set()
            self._fail_over(reason)

    async def drained(self) -> None:
        """Wait until the queue is short enough (flow control reaches the timeline here)."""
        if not self.closed:
            await self._room.wait()

    async def close(self) -> None:
        """Send what is queued, end the stream the way a node does (half-close, then the
        RIC ends it, so nothing in flight is lost), stop the tasks."""
        self.ending = True
        if self.reconnecting is not None:
            self.reconnecting.cancel()
            await asyncio.gather(self.reconnecting, return_exceptions=True)
        call = self.call
        if not self.closed and call is not None:
            with contextlib.suppress(TimeoutError, grpc.aio.AioRpcError, grpc.aio.UsageError):
                await asyncio.wait_for(self.queue.join(), _CLOSE_WAIT_S)
                await call.done_writing()
                reader = self.tasks[1]
                await asyncio.wait_for(asyncio.shield(reader), _CLOSE_WAIT_S)
        self.closed = True
        self.node.down()
        self._room.set()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if call is not None:
            call.cancel()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name} {exc.details() or ''}".strip()
    return str(exc) or type(exc).__name__


async def replay(
    trace: str | Path | TraceIndex,
    target: str | Sequence[str],
    *,
    speed: float | None = None,
    controls: ControlPolicy = "ack",
    settle_s: float = 0.3,
    connect_timeout_s: float = 5.0,
    progress: Callable[[ReplayProgress], None] | None = None,
    tls_ca: Path | None = None,
    tls_dir: Path | None = None,
    reconnect_initial_s: float = 0.5,
    reconnect_max_s: float = 30.0,
) -> ReplayResult:
    """Play ``trace``'s nodes into the runtime at ``target`` ("host:port", or several of one
    RIC's replicas, a sequence or comma-separated, to fail over between); see the module.

    ``speed`` is trace seconds per wall second (None: as fast as possible). ``progress`` is
    called as the replay moves. With ``tls_ca`` the nodes connect over TLS and verify the
    RIC's certificate; with ``tls_dir`` too, each presents ``<node id>.pem`` / ``.key`` from
    that folder (as ``ric certs`` writes them) for mutual TLS. A damaged trace is played up to its damage (the TraceError is
    in ``result.errors``). ReplayError when the runtime cannot be reached. A lost stream is set
    up again after a back-off from ``reconnect_initial_s`` doubling to ``reconnect_max_s``.
    """
    if speed is not None and not speed > 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    targets = (Endpoints.parse(target) if isinstance(target, str) else Endpoints(target)).targets
    retry_cap_s = max(reconnect_initial_s, reconnect_max_s)
    player = TracePlayer(trace, controls=controls, strict=False)
    errors: list[str] = []
    if player.index.error is not None:
        errors.append(f"{player.index.error} (played up to there)")
    loop = asyncio.get_running_loop()
    last_rx = [loop.time()]

    def on_rx() -> None:
        last_rx[0] = loop.time()

    async def quiet() -> None:
        deadline = loop.time() + _MAX_QUIET_WAIT_S
        while loop.time() < deadline:
            wait = last_rx[0] + settle_s - loop.time()
            if wait <= 0:
                return
            await asyncio.sleep(min(wait, deadline - loop.time()))

    started = loop.time()
    streams: dict[str, _Stream] = {}
    root = _read_tls(tls_ca) if tls_ca is not None else None
    # One channel per endpoint, or per endpoint and node when each node shows its certificate.
    channels: dict[tuple[str, str], grpc.aio.Channel] = {}

    def channel_for(node: str, to: str) -> grpc.aio.Channel:
        key = (to, node if tls_dir is not None else "")
        made = channels.get(key)
        if made is None:
            if root is None:
                made = grpc.aio.insecure_channel(to)
            elif tls_dir is None:
                made = grpc.aio.secure_channel(
                    to, grpc.ssl_channel_credentials(root_certificates=root)
                )
            else:
                creds = grpc.ssl_channel_credentials(
                    root_certificates=root,
                    private_key=_read_tls(tls_dir / f"{node}.key"),
                    certificate_chain=_read_tls(tls_dir / f"{node}.pem"),
                )
                made = grpc.aio.secure_channel(to, creds)
            channels[key] = made
        return made

    def endpoints_of(node: str) -> Endpoints:
        """The node's own failover cursor, at the endpoint that answered the probe."""
        endpoints = Endpoints(targets)
        while endpoints.current != start:
            endpoints.fail_over()
        return endpoints

    with player:
        try:
            first_node = next(iter(player.nodes), "")
            start = ""
            for candidate in targets:
                try:
                    probe = channel_for(first_node, candidate)
                    await asyncio.wait_for(probe.channel_ready(), connect_timeout_s)
                except TimeoutError:
                    if len(targets) > 1:
                        log.warning("cannot reach the RIC at %s; trying the next", candidate)
                    continue
                start = candidate
                break
            if not start:
                where = targets[0] if len(targets) == 1 else "any of " + ", ".join(targets)
                raise ReplayError(
                    f"cannot reach the RIC at {where} within {connect_timeout_s:g} s "
                    "(is 'ric run' running there?)"
                )

            async def apply(event: NodeEvent, now_us: int) -> bool:
                played = player.nodes[event.node]
                stream = streams.get(event.node)
                if event.kind == "update":
                    if stream is not None and not stream.closed:
                        stream.send(event.message or e2_pb2.NodeMessage())
                    return False
                if stream is not None:
                    if not stream.closed:
                        last = played.due(now_us, flush=True)
                        if last is not None:
                            stream.send(last)
                        await quiet()  # the xApps are done with this node's reports
                    await stream.close()
                    del streams[event.node]
                if event.kind != "setup":
                    return False
                node = event.node
                stream = _Stream(
                    played,
                    player,
                    endpoints_of(node),
                    lambda to: channel_for(node, to),
                    on_rx,
                    Backoff(reconnect_initial_s, retry_cap_s, jitter=_RECONNECT_JITTER),
                )
                problem = await stream.open(played.setup_message(event), connect_timeout_s)
                if problem is not None and stream.reconnecting is None:
                    errors.append(f"node {node}: {problem}")
                    return False
                streams[node] = stream
                if problem is not None:  # failing over in the background
                    return False
                on_rx()
                return True

            t = player.start_us
            end = player.end_us
            wall0, t0 = loop.time(), t
            last_report = 0.0
            while True:
                events = player.advance(t)
                for played in player.connected():
                    msg = played.due(t)
                    stream = streams.get(played.node)
                    if msg is not None and stream is not None:
                        stream.send(msg)
                connected = False
                for event in events:
                    connected = await apply(event, t) or connected
                if connected:
                    await quiet()  # the RIC subscribes; the timeline waits for it
                    wall0, t0 = loop.time(), t
                for stream in list(streams.values()):
                    await stream.drained()
                now = loop.time()
                if progress is not None and (now - last_report >= 0.1 or t >= end):
                    last_report = now
                    progress(
                        ReplayProgress(
                            (t - player.start_us) / 1e6,
                            player.index.duration_s,
                            now - started,
                            len(player.connected()),
                            player.reports_sent,
                            len(player.controls),
                        )
                    )
                if t >= end:
                    break
                upcoming = player.next_time()
                t_next = end if upcoming is None else max(t + 1, min(upcoming, end))
                if speed is None:
                    await asyncio.sleep(0)
                else:
                    delay = wall0 + (t_next - t0) / 1e6 / speed - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                t = t_next
            for node, msg in player.finish().items():
                stream = streams.get(node)
                if stream is not None:
                    stream.send(msg)
            await quiet()  # the xApps' last controls
            if errors and not any(n.setups for n in player.nodes.values()):
                raise ReplayError("no node could set up: " + "; ".join(errors))
        finally:
            for stream in list(streams.values()):
                await stream.close()
            for made in channels.values():
                await made.close()
    return ReplayResult(player, loop.time() - started, errors)


def _read_tls(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ReplayError(f"cannot read TLS file {path}: {exc.strerror}") from None
