"""The xApp's side of the northbound API: run an XApp class here, attached to a RIC there.

::

    client = XAppClient(LoadBalancer, "ric.example:36422", token="...")
    await client.run()          # until the runtime stops it, or client.stop()

The class is unchanged: it runs in a local ``XAppHost`` (its own event loop, restarts with
back-off as in the runtime) whose services cross the stream: reports arrive in columnar
batches against credits this side grants as its queue drains, controls go out with a
client-chosen id and come back with exactly one outcome, SDL calls are answered by the
runtime's store, and state, overruns, metrics and log records go to the runtime, which shows
them as for its own xApps. When the stream breaks, the client reattaches with back-off and
its resume token: the runtime kept its subscriptions and queued reports, re-sends the reports
not yet handled, and pending controls are asked for again by id (never sent twice).
"""

from __future__ import annotations

import asyncio
import builtins
import itertools
import logging
import os
import secrets
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from ric._proto.xapp.v1 import xapp_pb2 as pb
from ric.a1.policy import PolicyEvent, PolicyStatus
from ric.actions import ControlAction, ControlOutcome, OutcomeKind
from ric.backoff import Backoff
from ric.errors import RicError
from ric.host import RestartPolicy, XAppHost, XAppState
from ric.model import NodeInfo
from ric.northbound import codec
from ric.northbound.framed import open_channel
from ric.northbound.server import SERVICE
from ric.plugins import configure
from ric.sdl import Change, SdlBackend, SdlError
from ric.sensors import MemoryMetrics
from ric.types import RealClock, Sensor
from ric.xapp import XApp

__all__ = ["AttachError", "ClientTls", "XAppClient"]

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 256 * 1024 * 1024
"""The largest message taken from the runtime (its own limit is [northbound] max_message_bytes)."""

METRICS_INTERVAL_S = 1.0
_REFUSALS = (
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
)
"""Answers that retrying would not change: the attach fails with the runtime's reason."""
LOG_FORWARD_LEVEL = logging.INFO


class AttachError(RicError):
    """The runtime refused the attach (the message is its reason) or could not be reached."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ClientTls:
    """TLS towards a remote runtime: its CA, and this xApp's certificate for mTLS."""

    ca: bytes
    cert: bytes | None = None
    key: bytes | None = None


class _ForwardSensor(Sensor):
    """The local host's sensor: what the runtime shows about the xApp goes over the stream."""

    def __init__(self, client: XAppClient) -> None:
        self._client = client

    def xapp_state(self, xapp: str, state: str) -> None:
        self._client._send_state(str(state), "")

    def xapp_crashed(self, xapp: str, error: BaseException) -> None:
        self._client._send_state("restarting", f"{type(error).__name__}: {error}")

    def handler_overrun(self, xapp: str, handler: str, seconds: float) -> None:
        self._client._enqueue(pb.XAppMessage(overrun=pb.Overrun(handler=handler, seconds=seconds)))

    def handler_finished(self, xapp: str, seconds: float) -> None:
        self._client._maybe_credit()

    def xapp_published(self, xapp: str, topic_suffix: str, payload: bytes) -> None:
        self._client._enqueue(
            pb.XAppMessage(publish=pb.Publish(topic_suffix=topic_suffix, payload=payload))
        )


class _LocalHost(XAppHost):
    """The host of the xApp on its side: an overrun is counted and sent to the runtime,
    which logs it with the mode's words (here, only this xApp's own reports waited)."""

    def overrun(self, handler: str, seconds: float, started: float) -> None:
        self.overruns += 1
        self._sensor.handler_overrun(self.name, handler, seconds)


class _RemoteSdl(SdlBackend):
    """The runtime's SDL, reached over the stream (the xApp's own and granted namespaces)."""

    kind = "northbound"

    def __init__(self, client: XAppClient) -> None:
        super().__init__()
        self._client = client

    async def _call(self, op: str, namespace: str, **fields: Any) -> pb.SdlResult:
        result = await self._client._sdl_call(pb.SdlCall(op=op, namespace=namespace, **fields))
        if result.error:
            raise SdlError(result.error)
        return result

    async def get(self, namespace: str, keys: Sequence[str]) -> dict[str, bytes]:
        r = await self._call("get", namespace, keys=list(keys))
        return dict(zip(r.keys, r.values, strict=True))

    async def set(self, namespace: str, items: Mapping[str, bytes]) -> None:
        await self._call("set", namespace, keys=list(items), values=list(items.values()))

    async def set_if(self, namespace: str, key: str, old: bytes, new: bytes) -> bool:
        return (await self._call("set_if", namespace, keys=[key], values=[old, new])).ok

    async def set_if_not_exists(self, namespace: str, key: str, value: bytes) -> bool:
        return (await self._call("set_if_not_exists", namespace, keys=[key], values=[value])).ok

    async def delete(self, namespace: str, keys: Sequence[str]) -> int:
        return (await self._call("delete", namespace, keys=list(keys))).count

    async def delete_if(self, namespace: str, key: str, old: bytes) -> bool:
        return (await self._call("delete_if", namespace, keys=[key], values=[old])).ok

    async def keys(self, namespace: str, prefix: str = "") -> list[str]:
        return list((await self._call("keys", namespace, prefix=prefix)).keys)

    async def group_add(self, namespace: str, group: str, members: Sequence[bytes]) -> int:
        return (await self._call("group_add", namespace, group=group, members=members)).count

    async def group_remove(self, namespace: str, group: str, members: Sequence[bytes]) -> int:
        return (await self._call("group_remove", namespace, group=group, members=members)).count

    async def group_members(self, namespace: str, group: str) -> builtins.set[bytes]:
        return set((await self._call("group_members", namespace, group=group)).members)

    async def group_contains(self, namespace: str, group: str, member: bytes) -> bool:
        r = await self._call("group_contains", namespace, group=group, members=[member])
        return r.ok

    async def group_size(self, namespace: str, group: str) -> int:
        return (await self._call("group_size", namespace, group=group)).count

    async def group_delete(self, namespace: str, group: str) -> bool:
        return (await self._call("group_delete", namespace, group=group)).ok

    def watch(self, namespace: str, listener: Any) -> Any:
        first = namespace not in self._watchers
        stop = super().watch(namespace, listener)
        if first:
            self._client._enqueue(pb.XAppMessage(sdl=pb.SdlCall(op="watch", namespace=namespace)))
        return stop

    def changed(self, change: pb.SdlChange) -> None:
        """A change the runtime announced in a watched namespace."""
        op = change.op if change.op in ("set", "delete", "group_add", "group_remove") else "set"
        self._notify(Change(change.namespace, change.key, op))  # type: ignore[arg-type]


class _LogForwarder(logging.Handler):
    """Sends the xApp's log records (``ric.xapp.<name>``) to the runtime."""

    def __init__(self, client: XAppClient) -> None:
        super().__init__(LOG_FORWARD_LEVEL)
        self._client = client

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a bad format string in the xApp must not break its logging
            text = str(record.msg)
        self._client._enqueue(
            pb.XAppMessage(
                log=pb.LogRecord(
                    level=record.levelname.lower(),
                    message=text[:4096],
                    logger=record.name,
                    time=record.created,
                )
            )
        )


class XAppClient:
    """Runs ``cls`` in this process, attached to the runtime at ``target``.

    ``target`` is ``host:port`` (or ``fd:N``: the end of the socket pair the runtime hands
    the xApp processes it starts; such a stream is not reattached). ``token`` is the runtime's northbound
    bearer token (``[northbound] token_file``); ``tls`` the CA and, for mTLS, this xApp's
    certificate (its CN or a SAN is the xApp's name). ``config`` is the xApp's settings
    (default: its Config's defaults; a runtime-started process takes the runtime's).
    """

    def __init__(
        self,
        cls: type[XApp],
        target: str,
        *,
        config: XApp.Config | None = None,
        token: str = "",
        tls: ClientTls | None = None,
        from_runtime: bool = False,
        reconnect: bool = True,
        restart: RestartPolicy | None = None,
    ) -> None:
        self.cls = cls
        self.name = cls.name
        self.target = target
        self.config = config
        self.token = token
        self.tls = tls
        self.from_runtime = from_runtime
        self.reconnect = reconnect and not target.startswith("fd:")
        self.restart = restart
        self.host: XAppHost | None = None
        self.welcome: pb.Welcome | None = None
        self.attaches = 0
        self.dropped = 0
        """Reports the runtime dropped for this xApp (the batches' drop markers)."""
        self._nodes: dict[str, NodeInfo] = {}
        self._policies: dict[tuple[str, str], Mapping[str, Any]] = {}
        """The current A1 policies of the xApp's types, as the runtime sent them."""
        self._out: asyncio.Queue[pb.XAppMessage] | None = None
        self._call: Any = None
        self._pending: dict[
            str, tuple[ControlAction, asyncio.Future[ControlOutcome], pb.Control]
        ] = {}
        self._ids = itertools.count(1)
        self._prefix = secrets.token_hex(4)
        self._sdl_calls: dict[int, tuple[asyncio.Future[pb.SdlResult], pb.SdlCall]] = {}
        self._sdl = _RemoteSdl(self)
        self._granted = 0
        """Credits granted over the session (the initial window included)."""
        self._received = 0
        """Reports received over the session."""
        self._delivered_seq = 0
        self._handled_seq = 0
        self._stopped = asyncio.Event()
        self._state = ""

    # -- what the local host calls (HostServices, PolicySource) -----------------------------

    def nodes(self) -> Mapping[str, NodeInfo]:
        """The connected nodes, as the runtime last told."""
        return self._nodes

    async def control(
        self, host: XAppHost, action: ControlAction, timeout: float
    ) -> ControlOutcome:
        """Send ``action`` with a fresh id; resolves with the runtime's one outcome for it."""
        cid = f"{self.name}-{self._prefix}-{next(self._ids)}"
        msg = pb.Control(control_id=cid, timeout_s=timeout)
        try:
            codec.action_to_proto(action, msg.action)
        except TypeError as exc:
            return ControlOutcome(
                OutcomeKind.NOT_SUPPORTED, action, detail=str(exc), xapp=self.name
            )
        future: asyncio.Future[ControlOutcome] = asyncio.get_running_loop().create_future()
        self._pending[cid] = (action, future, msg)
        self._enqueue(pb.XAppMessage(control=msg))
        # The runtime ends every control it received within its timeout; the margin covers a
        # reattach (the control is asked for again by id). Past it, the xApp is told so.
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout + 10.0)
        except TimeoutError:
            return ControlOutcome(
                OutcomeKind.NOT_CONNECTED,
                action,
                detail="no outcome from the runtime (the stream to it is down); its audit log "
                "has the control's outcome if it received it",
                xapp=self.name,
            )
        finally:
            self._pending.pop(cid, None)

    async def snapshot(self, xapp: str, type_ids: Sequence[str]) -> list[PolicyEvent]:
        """The policies the runtime has sent this session, as ``created`` events: a local
        instance that starts after some arrived (or restarts) is given them again."""
        wanted = set(type_ids)
        return [
            PolicyEvent(type_id, policy_id, "created", body)
            for (type_id, policy_id), body in sorted(self._policies.items())
            if type_id in wanted
        ]

    async def report(self, xapp: str, type_id: str, policy_id: str, status: PolicyStatus) -> bool:
        """Send the xApp's enforcement status of a policy to the runtime."""
        self._enqueue(
            pb.XAppMessage(
                policy_status=pb.PolicyStatusReport(
                    type_id=type_id,
                    policy_id=policy_id,
                    enforced=status.enforced,
                    reason=status.reason,
                    cause=status.cause,
                )
            )
        )
        return True

    # -- the stream ---------------------------------------------------------------------------

    def _enqueue(self, msg: pb.XAppMessage) -> None:
        if self._out is not None:
            self._out.put_nowait(msg)

    def _send_state(self, state: str, error: str) -> None:
        self._state = state
        self._enqueue(pb.XAppMessage(state=pb.StateChange(state=state, error=error)))

    async def _sdl_call(self, call: pb.SdlCall) -> pb.SdlResult:
        call.call_id = next(self._ids)
        future: asyncio.Future[pb.SdlResult] = asyncio.get_running_loop().create_future()
        self._sdl_calls[call.call_id] = (future, call)
        try:
            self._enqueue(pb.XAppMessage(sdl=call))
            return await asyncio.wait_for(future, 30.0)
        except TimeoutError:
            raise SdlError(
                f"SDL {call.op} on {call.namespace}: no answer from the runtime"
            ) from None
        finally:
            self._sdl_calls.pop(call.call_id, None)

    def _maybe_credit(self) -> None:
        host = self.host
        if host is None or self._out is None:
            return
        size = self.cls.queue_size
        free = size - host.queue_depth
        outstanding = self._granted - self._received
        more = free - outstanding
        if more >= max(1, size // 4):
            self._granted += more
            self._enqueue(
                pb.XAppMessage(
                    credit=pb.Credit(
                        reports=more, handled_seq=self._delivered_seq - host.queue_depth
                    )
                )
            )

    def _channel(self) -> grpc.aio.Channel:
        options = [
            ("grpc.max_receive_message_length", 256 * 1024 * 1024),
            ("grpc.max_send_message_length", 256 * 1024 * 1024),
        ]
        if self.tls is not None:
            creds = grpc.ssl_channel_credentials(self.tls.ca, self.tls.key, self.tls.cert)
            return grpc.aio.secure_channel(self.target, creds, options=options)
        return grpc.aio.insecure_channel(self.target, options=options)

    async def _open(self, channel: grpc.aio.Channel | None) -> Any:
        """The stream: a gRPC Attach call, or the framed socket the runtime handed us."""
        if channel is None:
            sock = socket.socket(fileno=int(self.target[3:]))
            return await open_channel(
                sock, pb.RicMessage.FromString, max_bytes=MAX_FRAME_BYTES, peer="the runtime"
            )
        method = channel.stream_stream(
            f"/{SERVICE}/Attach",
            request_serializer=pb.XAppMessage.SerializeToString,
            response_deserializer=pb.RicMessage.FromString,
        )
        metadata: list[tuple[str, str]] = []
        if self.token:
            metadata.append(("authorization", f"Bearer {self.token}"))
        return method(metadata=metadata)

    async def _attach(self, channel: grpc.aio.Channel | None) -> pb.Welcome:
        call = await self._open(channel)
        queue = self.cls.queue_size
        hello = codec.hello_for(self.cls, credits=queue, pid=os.getpid())
        if self.welcome is not None:  # resume the session we had
            hello.resume_token = self.welcome.resume_token
            self._handled_seq = self._delivered_seq - (self.host.queue_depth if self.host else 0)
            hello.resume_after_seq = self._handled_seq
        try:
            await call.write(pb.XAppMessage(hello=hello))
            first = await call.read()
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAVAILABLE:
                raise AttachError(
                    f"cannot reach the runtime at {self.target}: {exc.details()}", exc.code()
                ) from None
            raise AttachError(
                f"the runtime at {self.target} refused xApp {self.name}: {exc.details()}",
                exc.code(),
            ) from None
        except ConnectionError as exc:
            raise AttachError(f"the stream to the runtime broke: {exc}") from None
        if isinstance(first, pb.RicMessage) and first.WhichOneof("message") == "stop":
            raise AttachError(
                f"the runtime refused xApp {self.name}: {first.stop.reason}",
                grpc.StatusCode.FAILED_PRECONDITION,
            )
        if not isinstance(first, pb.RicMessage) or first.WhichOneof("message") != "welcome":
            raise AttachError(f"the runtime at {self.target} sent no welcome")
        self._call = call
        return first.welcome

    async def run(self) -> None:
        """Attach, run the xApp, and reattach after a broken stream until stopped.

        Raises AttachError when the runtime refuses the attach (a bad token, a name taken,
        a bad declaration); while it cannot be reached, and after a broken stream, it tries
        again with back-off (unless ``reconnect`` is False).
        """
        forwarder = _LogForwarder(self)
        xapp_log = logging.getLogger(f"ric.xapp.{self.name}")
        xapp_log.addHandler(forwarder)
        try:
            async with asyncio.TaskGroup() as tg:
                await self._attach_loop(tg)
        except* AttachError as group:
            raise group.exceptions[0] from None
        finally:
            xapp_log.removeHandler(forwarder)

    async def _attach_loop(self, tg: asyncio.TaskGroup) -> None:
        backoff = Backoff(0.2, 5.0, clock=RealClock())
        while not self._stopped.is_set():
            channel = None if self.target.startswith("fd:") else self._channel()
            try:
                try:
                    welcome = await self._attach(channel)
                except AttachError as exc:
                    if not self.reconnect or exc.code in _REFUSALS:
                        raise
                    log.warning("xApp %s: %s; trying again", self.name, exc)
                else:
                    backoff.reset()
                    await self._session(welcome, tg)
            finally:
                if channel is not None:
                    await channel.close()
            if self._stopped.is_set() or not self.reconnect:
                break
            await asyncio.sleep(backoff.next())
        self._abandon("the stream to the runtime ended")
        if self.host is not None:
            self.host.request_stop()

    def stop(self) -> None:
        """Stop the xApp and detach: what it still waits for from the runtime ends now."""
        self._stopped.set()
        self._abandon("the xApp is stopping")
        if self.host is not None and self._call is not None:
            # The host stops, says so to the runtime, then the stream closes (_run_host);
            # a handler that does not return in 5 s does not hold the detach.
            self.host.request_stop()
            asyncio.get_running_loop().call_later(5.0, self._cancel_call)
        else:
            self._cancel_call()

    def _cancel_call(self) -> None:
        if self._call is not None:
            self._call.cancel()

    def _abandon(self, why: str) -> None:
        """End every SDL call and control still waiting for the runtime's answer."""
        for future, call in self._sdl_calls.values():
            if not future.done():
                future.set_exception(SdlError(f"SDL {call.op} on {call.namespace}: {why}"))
        for action, waiting, _ in self._pending.values():
            if not waiting.done():
                waiting.set_result(
                    ControlOutcome(
                        OutcomeKind.NOT_CONNECTED,
                        action,
                        detail=f"{why} before the runtime's outcome arrived; the runtime's "
                        "audit log has the outcome if it received the control",
                        xapp=self.name,
                    )
                )

    async def _session(self, welcome: pb.Welcome, tg: asyncio.TaskGroup) -> None:
        resumed = welcome.resumed and self.host is not None
        self.attaches += 1
        self._out = asyncio.Queue()
        self._nodes = {}
        nodes = []
        for n in welcome.nodes:
            node = codec.node_from_proto(n)
            self._nodes[str(node.id)] = node
            nodes.append(node)
        self._granted = welcome.credits
        self._received = 0
        if not resumed:
            self._policies = {}  # the runtime sends every current one again
            if self.host is not None:  # a new session: the old instance goes
                self.host.request_stop()
            self.welcome = welcome
            self._delivered_seq = 0
            self.host = self._make_host(welcome)
            for node in nodes:
                self.host.node_up(node)
            tg.create_task(self._run_host(self.host), name=f"xapp:{self.name}")
        else:
            self.welcome = welcome
            # Reports re-sent from the last one handled: drop what is still queued, in order.
            assert self.host is not None
            self.host._reports.clear()
            self._delivered_seq = self._handled_seq
            if self._state:
                self._send_state(self._state, "")
        log.info(
            "xApp %s attached to %s (%s)",
            self.name,
            self.target,
            "resumed" if resumed else "new session",
        )
        call = self._call
        async with asyncio.TaskGroup() as inner:
            writer = inner.create_task(self._write_loop(call))
            metrics = inner.create_task(self._metrics_loop())
            for _, future, msg in list(self._pending.values()):  # ask again, by id
                if not future.done():
                    self._enqueue(pb.XAppMessage(control=msg))
            for sdl_future, sdl_call in list(self._sdl_calls.values()):
                if not sdl_future.done():
                    self._enqueue(pb.XAppMessage(sdl=sdl_call))
            try:
                await self._read_loop(call)
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.CANCELLED:
                    log.warning(
                        "xApp %s: stream to %s broke: %s", self.name, self.target, exc.details()
                    )
            except ConnectionError as exc:  # the framed stream of a runtime-started process
                log.warning("xApp %s: stream to the runtime broke: %s", self.name, exc)
            finally:
                writer.cancel()
                metrics.cancel()
                self._out = None
                self._call = None

    def _make_host(self, welcome: pb.Welcome) -> XAppHost:
        config = self.config
        if config is None or self.from_runtime:
            config = configure(self.cls, dict(codec.json_config(welcome.config_json, "settings")))
        return _LocalHost(
            self.cls,
            config,
            index=1,
            services=self,
            sensor=_ForwardSensor(self),
            clock=RealClock(),
            restart=self.restart,
            policies=self,
            sdl=self._sdl,
            shared_namespaces={ns: [self.name] for ns in welcome.shared_namespaces},
            handler_budget_s=(welcome.handler_budget_ms or 100.0) / 1000.0,
        )

    async def _run_host(self, host: XAppHost) -> None:
        await host.run()
        if host is not self.host:
            return  # replaced by a new session's instance
        self._send_state(host.state.value, "")  # stopped or failed: the runtime lets go
        if self._stopped.is_set() or self.from_runtime or host.state is XAppState.FAILED:
            self._stopped.set()
            for _ in range(100):  # let the writer send the goodbye (at most 1 s)
                if self._out is None or self._out.empty():
                    break
                await asyncio.sleep(0.01)
            self._cancel_call()

    async def _write_loop(self, call: Any) -> None:
        out = self._out
        assert out is not None
        while True:
            msg = await out.get()
            try:
                await call.write(msg)
            except Exception as exc:  # any failed write means the stream is gone (cygrpc too)
                log.debug("xApp %s: write failed: %r", self.name, exc)
                call.cancel()  # ends the read loop, and with it the session
                return

    async def _metrics_loop(self) -> None:
        while True:
            await asyncio.sleep(METRICS_INTERVAL_S)
            self._maybe_credit()
            host = self.host
            if host is None or host.instance is None:
                continue
            metrics = host.instance.metrics
            if isinstance(metrics, MemoryMetrics):
                report = _metrics_report(metrics)
                if report.families:
                    self._enqueue(pb.XAppMessage(metrics=report))

    async def _read_loop(self, call: Any) -> None:
        while True:
            try:
                msg = await call.read()
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if call.cancelled() and task is not None and not task.cancelling():
                    return  # the stream was cancelled here (stop, or given up), not this task
                raise
            if msg is grpc.aio.EOF:
                return
            which = msg.WhichOneof("message")
            host = self.host
            assert host is not None
            if which == "reports":
                self._reports(host, msg.reports)
            elif which == "outcome":
                pending = self._pending.get(msg.outcome.control_id)
                if pending is not None and not pending[1].done():
                    pending[1].set_result(
                        codec.outcome_from_proto(msg.outcome, pending[0], self.name)
                    )
            elif which == "node":
                node = codec.node_from_proto(msg.node.node)
                if msg.node.kind == pb.NodeEvent.KIND_UP:
                    self._nodes[str(node.id)] = node
                    host.node_up(node)
                else:
                    self._nodes.pop(str(node.id), None)
                    host.node_down(node)
            elif which == "subscription":
                status = codec.status_from_proto(msg.subscription, self.cls.reports)
                host.subscription_status(msg.subscription.report, status)
            elif which == "policy":
                event = codec.policy_event_from_proto(msg.policy)
                if event.kind == "deleted":
                    self._policies.pop((event.type_id, event.policy_id), None)
                else:
                    self._policies[event.type_id, event.policy_id] = event.body
                host.policy(event)
            elif which == "conflict":
                host.conflict(codec.conflict_from_proto(msg.conflict))
            elif which == "config":
                host.reconfigure(codec.json_config(msg.config.config_json, "config update"))
            elif which == "sdl":
                waiting = self._sdl_calls.get(msg.sdl.call_id)
                if waiting is not None and not waiting[0].done():
                    waiting[0].set_result(msg.sdl)
            elif which == "sdl_change":
                self._sdl.changed(msg.sdl_change)
            elif which == "notice":
                level = logging.ERROR if msg.notice.level == "error" else logging.WARNING
                log.log(level, "xApp %s: the runtime says: %s", self.name, msg.notice.message)
            elif which == "stop":
                log.info("xApp %s: the runtime asks it to stop: %s", self.name, msg.stop.reason)
                self._stopped.set()
                host.request_stop()

    def _reports(self, host: XAppHost, batch: pb.ReportBatch) -> None:
        if batch.dropped:
            self.dropped += batch.dropped
            host.dropped += batch.dropped
            log.warning(
                "xApp %s: the runtime dropped %d reports for it (its queue was full)",
                self.name,
                batch.dropped,
            )
        seq = batch.first_seq
        for r in batch.reports:
            if seq > self._delivered_seq:  # a re-sent report already handed over is skipped
                host.deliver(codec.report_from_proto(r))
                self._delivered_seq = seq
            seq += 1
        self._received += len(batch.reports)


def _metrics_report(metrics: MemoryMetrics) -> pb.MetricsReport:
    """Counters and gauges of the xApp as they are now (histograms stay local)."""
    report = pb.MetricsReport()
    for name in metrics.names():
        family = metrics._declared_family(name)
        if family.kind not in ("counter", "gauge"):
            continue
        out = report.families.add(
            name=name, help=f"{name} of the attached xApp", type=family.kind, labels=family.labels
        )
        for labels, cell in family.values.items():
            out.samples.add(label_values=labels, value=cell[0])
    return report
