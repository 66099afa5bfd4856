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
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import grpc

from ric._proto.e2.v1 import e2_pb2, e2_pb2_grpc
from ric.cliutil import table
from ric.e2node import SetupFailed, SetupRefused, read_setup_answer
from ric.errors import RicError
from ric.trace.index import NodeEvent, TraceIndex
from ric.trace.player import ControlPolicy, PlayedNode, TracePlayer

__all__ = ["ReplayError", "ReplayProgress", "ReplayResult", "replay"]

log = logging.getLogger(__name__)

_MAX_QUEUED: Final = 64
"""Messages queued for one node's stream beyond which the timeline waits (back-pressure)."""
_MAX_QUIET_WAIT_S: Final = 5.0
_CLOSE_WAIT_S: Final = 2.0


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
    """One played node's gRPC stream: a writer queue, a reader, keep-alives."""

    def __init__(
        self,
        node: PlayedNode,
        player: TracePlayer,
        channel: grpc.aio.Channel,
        on_rx: Callable[[], None],
    ) -> None:
        self.node = node
        self.player = player
        self.channel = channel
        self.on_rx = on_rx
        self.queue: asyncio.Queue[e2_pb2.NodeMessage] = asyncio.Queue()
        self.call: grpc.aio.StreamStreamCall[e2_pb2.NodeMessage, e2_pb2.RicMessage] | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.closed = False
        self.close_reason = ""
        self._room = asyncio.Event()
        self._room.set()

    async def open(self, setup: e2_pb2.NodeMessage, timeout_s: float) -> str | None:
        """Set the node up; None when accepted, else why not."""
        stub = e2_pb2_grpc.E2TerminationStub(self.channel)
        call = stub.Connect()
        self.call = call
        try:
            await call.write(setup)
            first = await asyncio.wait_for(call.read(), timeout_s)
        except (grpc.aio.AioRpcError, TimeoutError) as exc:
            call.cancel()
            return f"E2 setup failed: {_describe(exc)}"
        try:
            accepted = read_setup_answer(first)
        except SetupFailed as exc:
            call.cancel()
            return f"E2 setup refused: {exc}" if isinstance(exc, SetupRefused) else str(exc)
        self.node.up()
        keep_alive_s = max(0.1, (accepted.keep_alive_interval_ms or 1000) / 1000.0)
        loop = asyncio.get_running_loop()
        self.tasks = [
            loop.create_task(self._write(call), name=f"replay-write:{self.node.node}"),
            loop.create_task(self._read(call), name=f"replay-read:{self.node.node}"),
            loop.create_task(self._keep_alive(keep_alive_s), name=f"replay-ka:{self.node.node}"),
        ]
        return None

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

    async def drained(self) -> None:
        """Wait until the queue is short enough (flow control reaches the timeline here)."""
        if not self.closed:
            await self._room.wait()

    async def close(self) -> None:
        """Send what is queued, end the stream the way a node does (half-close, then the
        RIC ends it, so nothing in flight is lost), stop the tasks."""
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
    target: str,
    *,
    speed: float | None = None,
    controls: ControlPolicy = "ack",
    settle_s: float = 0.3,
    connect_timeout_s: float = 5.0,
    progress: Callable[[ReplayProgress], None] | None = None,
    tls_ca: Path | None = None,
    tls_dir: Path | None = None,
) -> ReplayResult:
    """Play ``trace``'s nodes into the runtime at ``target`` ("host:port"); see the module.

    ``speed`` is trace seconds per wall second (None: as fast as possible). ``progress`` is
    called as the replay moves. With ``tls_ca`` the nodes connect over TLS and verify the
    RIC's certificate; with ``tls_dir`` too, each presents ``<node id>.pem`` / ``.key`` from
    that folder (as ``ric certs`` writes them) for mutual TLS. A damaged trace is played up to its damage (the TraceError is
    in ``result.errors``). ReplayError when the runtime cannot be reached.
    """
    if speed is not None and not speed > 0:
        raise ValueError(f"speed must be > 0, got {speed}")
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
    node_channels: dict[str, grpc.aio.Channel] = {}

    def channel_for(node: str) -> grpc.aio.Channel:
        if tls_dir is None or root is None:
            return channel
        made = node_channels.get(node)
        if made is None:
            creds = grpc.ssl_channel_credentials(
                root_certificates=root,
                private_key=_read_tls(tls_dir / f"{node}.key"),
                certificate_chain=_read_tls(tls_dir / f"{node}.pem"),
            )
            made = node_channels[node] = grpc.aio.secure_channel(target, creds)
        return made

    with player:
        channel = (
            grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=root))
            if root is not None
            else grpc.aio.insecure_channel(target)
        )
        try:
            try:
                probe = (
                    channel_for(next(iter(player.nodes), "")) if tls_dir is not None else channel
                )
                await asyncio.wait_for(probe.channel_ready(), connect_timeout_s)
            except TimeoutError:
                raise ReplayError(
                    f"cannot reach the RIC at {target} within {connect_timeout_s:g} s "
                    "(is 'ric run' running there?)"
                ) from None

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
                stream = _Stream(played, player, channel_for(event.node), on_rx)
                problem = await stream.open(played.setup_message(event), connect_timeout_s)
                if problem is not None:
                    errors.append(f"node {event.node}: {problem}")
                    return False
                streams[event.node] = stream
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
            await channel.close()
            for extra in node_channels.values():
                await extra.close()
    return ReplayResult(player, loop.time() - started, errors)


def _read_tls(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ReplayError(f"cannot read TLS file {path}: {exc.strerror}") from None
