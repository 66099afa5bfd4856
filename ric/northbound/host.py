"""The runtime's side of an xApp attached over the northbound API.

An ``AttachedHost`` is an ``XAppHost`` whose handlers run elsewhere: the subscriptions, the
control router, A1, the HTTP API and the metrics see it as any other host, and it carries
what they hand it over one ``Attach`` stream. Reports wait in the host's bounded queue (the
oldest dropped and counted, as for every host) and leave only against the xApp's credits;
the count of those dropped rides on the next batch. Every control gets exactly one outcome
and one audit record from the control router, whatever happens to the stream; a control id
seen before is answered from memory and never sent twice.

``ProcessHost`` starts, watches and restarts a child process (``ric xapp run``) that attaches
over a private Unix socket pair (framed messages); ``RemoteHost`` is created when an xApp started elsewhere attaches,
and keeps its subscriptions for ``[northbound] resume_window_s`` after it detaches.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import dataclasses
import logging
import os
import secrets
import signal
import socket
import sys
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar, TypeVar

import grpc

from ric._proto.xapp.v1 import xapp_pb2 as pb
from ric.a1.policy import PolicyEvent
from ric.actions import Conflict, ControlOutcome, OutcomeKind
from ric.config import NorthboundSettings
from ric.host import XAppHost, XAppState
from ric.model import NodeInfo
from ric.northbound import codec
from ric.northbound.framed import FramedChannel, open_channel
from ric.report import KpmReport
from ric.sdl import SdlError, check_key, granted_namespace, xapp_namespace
from ric.types import MetricsProvider
from ric.xapp import (
    PublishRefused,
    SubscriptionStatus,
    XApp,
    check_topic_suffix,
    encode_payload,
)

__all__ = ["AttachedHost", "ProcessHost", "RemoteHost", "Stream"]

log = logging.getLogger(__name__)

MAX_CONTROL_ID = 128
REMEMBERED_CONTROLS = 4096
"""Control ids remembered per xApp (with their outcomes) so a retry is answered, not resent."""
MAX_CALLS_IN_FLIGHT = 256
"""SDL calls and policy status reports one attached xApp may have running on the runtime's
loop at once; beyond, a call is answered with an error at once."""
MAX_METRIC_SERIES = 10_000
"""Forwarded metric series (label sets over all families) one attached xApp may create in
the runtime's registry; beyond, new ones are refused with a notice."""
LOG_RECORDS_PER_S = 50.0
"""Forwarded log records an attached xApp may have logged per second (burst: the same)."""
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
_STATES = {s.value: s for s in XAppState}
T = TypeVar("T")


class StreamEnded(Exception):
    """The xApp's stream (or process) ended; the message says how."""


@dataclasses.dataclass(eq=False)
class Stream:
    """One Attach stream, handed from the gRPC handler to the host that serves it."""

    context: Any
    hello: pb.Hello
    peer: str
    done: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    reason: str = ""
    status: grpc.StatusCode | None = None

    async def read(self) -> pb.XAppMessage | None:
        """The next message, or None at the end of the stream."""
        msg = await self.context.read()
        return None if msg is grpc.aio.EOF else msg

    def end(self, reason: str, status: grpc.StatusCode | None = None) -> None:
        """Let the gRPC handler return (with ``status`` and ``reason`` when refused)."""
        if not self.done.is_set():
            self.reason = reason
            self.status = status
            self.done.set()


class _Bucket:
    """A token bucket (forwarded log records)."""

    def __init__(self, rate: float, loop: asyncio.AbstractEventLoop) -> None:
        self.rate = rate
        self.tokens = rate
        self.loop = loop
        self.stamp = loop.time()
        self.refused = 0

    def take(self) -> bool:
        now = self.loop.time()
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        self.refused += 1
        return False


class AttachedHost(XAppHost, abc.ABC):
    """An xApp whose handlers run in another process, reached over an Attach stream."""

    mode: ClassVar[str] = "remote"

    def __init__(
        self,
        cls: type[XApp],
        config: XApp.Config,
        *,
        settings: NorthboundSettings,
        ric_id: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(cls, config, **kwargs)
        self.settings = settings
        self.ric_id = ric_id
        self.resume_token = secrets.token_bytes(16)
        self.stream: Stream | None = None
        self.peer = ""
        self.pid = 0
        self.language = ""
        self.credits = 0
        """Reports the xApp may still be sent."""
        self.sent_seq = 0
        """The sequence number of the last report sent."""
        self.attaches = 0
        self.leaving = False
        """The xApp said it stopped for good: when its stream closes, the host ends too."""
        self._unacked: collections.deque[tuple[int, KpmReport]] = collections.deque()
        self._dropped_told = 0
        self._controls: collections.OrderedDict[str, asyncio.Task[ControlOutcome]] = (
            collections.OrderedDict()
        )
        self._sdl_results: collections.OrderedDict[int, asyncio.Task[pb.RicMessage]] = (
            collections.OrderedDict()
        )
        self._out: collections.deque[pb.RicMessage] = collections.deque()
        self._in_flight = 0
        """Controls of this xApp awaiting their outcome (a count: no scan per control)."""
        self._incoming: asyncio.Future[Stream] | None = None
        self._watches: dict[str, Callable[[], None]] = {}
        self._metric_totals: dict[tuple[str, tuple[str, ...]], float] = {}
        self._series: set[tuple[str, tuple[str, ...]]] = set()
        """The forwarded metric series created so far (bounded by MAX_METRIC_SERIES)."""
        self._calls = 0
        """SDL calls and policy status reports running for this xApp."""
        self._log_bucket: _Bucket | None = None

    # -- what the server calls ----------------------------------------------------------------

    @property
    def attached(self) -> bool:
        """Whether an xApp stream is being served now."""
        return self.stream is not None

    @property
    def unacknowledged(self) -> int:
        """Reports sent that the xApp has not said it handled."""
        return len(self._unacked)

    def offer(self, stream: Stream) -> str | None:
        """Hand ``stream`` to this host; None if taken, else why it is refused."""
        if self.stream is not None or self._incoming is None or self._incoming.done():
            return f"xApp {self.name} is already attached (from {self.peer or 'its process'})"
        self._incoming.set_result(stream)
        return None

    # -- the worker ---------------------------------------------------------------------------

    @abc.abstractmethod
    async def _next_stream(self) -> Stream:
        """Wait for the stream this instance runs on (the subclasses decide how long)."""

    async def _run_instance(self) -> None:
        stream = await self._next_stream()
        try:
            await self._serve(stream)
        finally:
            self.stream = None
            self._end_watches()

    def _welcome(self, stream: Stream, resumed: bool) -> pb.RicMessage:
        hello = stream.hello
        window = min(hello.credits or self.cls.queue_size, self.settings.max_credits)
        welcome = pb.Welcome(
            ric_id=self.ric_id,
            resume_token=self.resume_token,
            resumed=resumed,
            config_json=self.config.model_dump_json(),
            shared_namespaces=sorted(
                ns for ns, who in self.shared_namespaces.items() if self.name in who
            ),
            handler_budget_ms=self.handler_budget_s * 1000.0,
            max_message_bytes=self.settings.max_message_bytes,
            credits=window,
        )
        for node in self.services.nodes().values():
            codec.node_to_proto(node, welcome.nodes.add())
        self.credits = window
        return pb.RicMessage(welcome=welcome)

    async def _serve(self, stream: Stream) -> None:
        hello = stream.hello
        resumed = bool(hello.resume_token) and hello.resume_token == self.resume_token
        self.stream = stream
        self.peer = stream.peer
        self.pid = hello.pid
        self.language = hello.language or "unknown"
        self.attaches += 1
        self.leaving = False
        self._log_bucket = _Bucket(LOG_RECORDS_PER_S, asyncio.get_running_loop())
        self._out.clear()
        self._out.append(self._welcome(stream, resumed))
        if resumed:
            # Re-send what the xApp had not handled when it went, in order, before anything new.
            keep = [(s, r) for s, r in self._unacked if s > hello.resume_after_seq]
            self._unacked.clear()
            if keep:
                self._requeue([r for _, r in keep], keep[0][0])
        else:
            # A new instance: the welcome lists the nodes; give it the statuses as they are.
            kept = [e for e in self._events if e[0] not in ("on_node_up", "on_node_down")]
            kept = [e for e in kept if e[0] != "on_subscription"]
            self._events.clear()
            self._events.extend(kept)
            for status in self.statuses.values():
                self._events.append(("on_subscription", status))
            self._unacked.clear()
            self._sdl_results.clear()  # a new process numbers its calls from 1 again
            self._metric_totals.clear()  # ... and counts its counters from 0
            self.sent_seq = 0
        await self._replay_policies()
        self._set_state(XAppState.RUNNING)
        log.info(
            "xApp %s attached (%s, %s, pid %s, %s)",
            self.name,
            self.mode,
            stream.peer,
            hello.pid or "?",
            "resumed" if resumed else "new session",
            extra={"xapp": self.name},
        )
        reason = "stream ended"
        try:
            async with asyncio.TaskGroup() as tg:
                writer = tg.create_task(self._write_loop(stream))
                stopper = tg.create_task(self._stop_deadline())
                reason = await self._read_loop(stream)
                writer.cancel()
                stopper.cancel()
        except* grpc.aio.AioRpcError as group:
            reason = f"stream failed: {group.exceptions[0]}"
        except* ConnectionError as group:  # the framed stream of a process xApp broke
            reason = f"stream failed: {group.exceptions[0]}"
        except* StreamEnded as group:
            reason = str(group.exceptions[0])
        finally:
            stream.end(reason)
        log.info("xApp %s detached: %s", self.name, reason, extra={"xapp": self.name})
        raise StreamEnded(reason)

    async def _stop_deadline(self) -> None:
        """End the stream of an xApp asked to stop that has not closed it within 5 s."""
        await self._stop.wait()
        await asyncio.sleep(5.0)
        raise StreamEnded("did not close its stream within 5 s of being asked to stop")

    def overrun(self, handler: str, seconds: float, started: float) -> None:
        """Count and log a handler call over the budget in the xApp's own process."""
        self.overruns += 1
        self._sensor.handler_overrun(self.name, handler, seconds)
        log.warning(
            "xApp %s: %s took %.0f ms, over its %.0f ms budget ([xapps] handler_budget_ms); it "
            "runs in its own process (%s mode), so only its own reports waited",
            self.name,
            handler,
            seconds * 1e3,
            self.handler_budget_s * 1e3,
            self.mode,
            extra={"xapp": self.name},
        )

    def _requeue(self, reports: list[KpmReport], first_seq: int) -> None:
        """Put reports sent but not handled back at the front of the queue, numbered again
        from ``first_seq`` (the xApp said it handled everything before). When they do not all
        fit, the oldest go, as for any full queue, and are counted."""
        queue = self._reports
        combined = [*reports, *queue]
        limit = queue.maxlen or len(combined)
        over = max(0, len(combined) - limit)
        if over:
            self.dropped += over
            self._sensor.reports_dropped(self.name, over)
        queue.clear()
        queue.extend(combined[over:])
        self.sent_seq = first_seq - 1 + min(over, len(reports))

    # -- writing ------------------------------------------------------------------------------

    def _send(self, msg: pb.RicMessage) -> None:
        self._out.append(msg)
        self._wake.set()

    def _event_message(self, hook: str, arg: object) -> pb.RicMessage | None:
        msg = pb.RicMessage()
        if hook in ("on_node_up", "on_node_down"):
            node = arg
            assert isinstance(node, NodeInfo)
            msg.node.kind = pb.NodeEvent.KIND_UP if hook == "on_node_up" else pb.NodeEvent.KIND_DOWN
            codec.node_to_proto(node, msg.node.node)
        elif hook == "on_subscription":
            assert isinstance(arg, SubscriptionStatus)
            try:
                index = list(self.cls.reports).index(arg.report)
            except ValueError:
                return None
            codec.status_to_proto(index, arg, msg.subscription)
        elif hook == "on_conflict":
            assert isinstance(arg, Conflict)
            codec.conflict_to_proto(arg, msg.conflict)
        elif hook == "on_policy":
            assert isinstance(arg, PolicyEvent)
            codec.policy_event_to_proto(arg, msg.policy)
        elif hook == "on_config":
            assert isinstance(arg, XApp.Config)
            msg.config.config_json = arg.model_dump_json()
        else:
            return None
        return msg

    def _batch(self) -> pb.RicMessage:
        """As many queued reports as the credits and the message size allow, in one batch."""
        msg = pb.RicMessage()
        batch = msg.reports
        batch.first_seq = self.sent_seq + 1
        dropped = self.dropped - self._dropped_told
        if dropped > 0:
            batch.dropped = dropped
            self._dropped_told = self.dropped
        budget = self.settings.max_message_bytes // 2
        size = 0
        reports = self._reports
        while reports and self.credits > 0 and size < budget:
            report = reports.popleft()
            codec.report_to_proto(report, batch.reports.add())
            size += 64 + 8 * report.values.size + 16 * len(report)
            self.credits -= 1
            self.sent_seq += 1
            self._unacked.append((self.sent_seq, report))
        return msg

    async def _write_loop(self, stream: Stream) -> None:
        try:
            await self._write_all(stream)
        except Exception as exc:  # any failed write means the stream is gone (cygrpc too)
            raise StreamEnded(f"stream broken while writing: {type(exc).__name__}") from None

    async def _write_all(self, stream: Stream) -> None:
        write = stream.context.write
        out = self._out
        events = self._events
        reports = self._reports
        wake = self._wake
        while True:
            if out:
                await write(out.popleft())
            elif events:
                hook, arg = events.popleft()
                if hook == "on_config":
                    self.config = arg  # type: ignore[assignment]  # a Config from reconfigure
                msg = self._event_message(hook, arg)
                if msg is not None:
                    await write(msg)
            elif reports and self.credits > 0:
                await write(self._batch())
            elif self.dropped > self._dropped_told and self.credits > 0:
                await write(self._batch())  # an empty batch that carries the drop count
            else:
                wake.clear()
                await wake.wait()

    # -- reading ------------------------------------------------------------------------------

    async def _read_loop(self, stream: Stream) -> str:
        while True:
            msg = await stream.read()
            if msg is None:
                return "the xApp closed its stream"
            which = msg.WhichOneof("message")
            try:
                if which == "credit":
                    self._credit(msg.credit)
                elif which == "control":
                    self._control(msg.control)
                elif which == "policy_status":
                    if self._calls >= MAX_CALLS_IN_FLIGHT:
                        raise ValueError(self._too_many_calls())
                    self._run_call(self._policy_status(msg.policy_status))
                elif which == "sdl":
                    self._sdl_call(msg.sdl)
                elif which == "state":
                    self._state(msg.state)
                elif which == "overrun":
                    self.overrun(msg.overrun.handler, msg.overrun.seconds, 0.0)
                elif which == "metrics":
                    self._metrics(msg.metrics)
                elif which == "log":
                    self._log(msg.log)
                elif which == "publish":
                    self._publish(msg.publish)
                elif which == "hello":
                    self._notice("error", "a second hello on one stream is ignored")
                else:
                    self._notice("error", "an empty message was ignored")
            except ValueError as exc:
                self._notice("error", f"{which} ignored: {exc}")

    def _notice(self, level: str, text: str) -> None:
        log.warning("xApp %s: %s", self.name, text, extra={"xapp": self.name})
        self._send(pb.RicMessage(notice=pb.Notice(level=level, message=text)))

    def _credit(self, credit: pb.Credit) -> None:
        unacked = self._unacked
        while unacked and unacked[0][0] <= credit.handled_seq:
            unacked.popleft()
        window = self.settings.max_credits
        self.credits = min(self.credits + credit.reports, max(0, window - len(unacked)))
        self._wake.set()

    def _control(self, msg: pb.Control) -> None:
        cid = msg.control_id
        if not 0 < len(cid) <= MAX_CONTROL_ID:
            raise ValueError(f"control_id must be 1-{MAX_CONTROL_ID} characters, got {len(cid)}")
        known = self._controls.get(cid)
        if known is not None:  # a retry: answer from memory (or when the first one ends)
            self._controls.move_to_end(cid)
            if known.done():
                self._send_outcome(cid, known)
            return
        out = pb.RicMessage()
        try:
            action = codec.action_from_proto(msg.action)
        except ValueError as exc:
            out.outcome.control_id = cid
            out.outcome.kind = pb.OUTCOME_KIND_INVALID
            out.outcome.detail = f"control {cid}: {exc}"
            self._send(out)
            return
        in_flight = self._in_flight
        if in_flight >= self.settings.max_controls_in_flight:
            outcome = ControlOutcome(
                OutcomeKind.RATE_LIMITED,
                action,
                detail=f"xApp {self.name} has {in_flight} controls awaiting an outcome, the "
                "[northbound] max_controls_in_flight limit",
                xapp=self.name,
            )
            self._sensor.control_finished(self.name, outcome)  # audited like any refusal
            codec.outcome_to_proto(cid, outcome, out.outcome)
            self._send(out)
            return
        timeout = codec.finite(msg.timeout_s, 1.0)
        task = asyncio.get_running_loop().create_task(
            self.services.control(self, action, timeout), name=f"{self.name} control {cid}"
        )
        self._controls[cid] = task
        self._in_flight += 1
        while len(self._controls) > REMEMBERED_CONTROLS:
            oldest, first = next(iter(self._controls.items()))
            if not first.done():
                break
            del self._controls[oldest]
        task.add_done_callback(lambda t: self._control_done(cid, t))

    def _control_done(self, cid: str, task: asyncio.Task[ControlOutcome]) -> None:
        self._in_flight -= 1
        self._send_outcome(cid, task)

    def _send_outcome(self, cid: str, task: asyncio.Task[ControlOutcome]) -> None:
        if self.stream is None:
            return  # kept: a resumed xApp asks again with the same id
        out = pb.RicMessage()
        try:
            outcome = task.result()
        except Exception as exc:  # the router failed: still one outcome, saying so
            out.outcome.control_id = cid
            out.outcome.kind = pb.OUTCOME_KIND_FAILED
            out.outcome.detail = f"the runtime failed to route the control: {exc}"
        else:
            codec.outcome_to_proto(cid, outcome, out.outcome)
        self._send(out)

    async def _policy_status(self, msg: pb.PolicyStatusReport) -> None:
        if msg.type_id not in self.policy_types:
            self._notice(
                "error", f"policy status for type {msg.type_id!r}, which the xApp does not declare"
            )
            return
        try:
            status = codec.policy_status_from_proto(msg)
            await self.report_policy(msg.type_id, msg.policy_id, status)
        except Exception as exc:
            self._notice(
                "error", f"policy status {msg.type_id}/{msg.policy_id} not recorded: {exc}"
            )

    def _state(self, msg: pb.StateChange) -> None:
        state = _STATES.get(msg.state)
        if state is None:
            raise ValueError(f"state {msg.state!r} is not an xApp state")
        if msg.error:
            self._sensor.xapp_crashed(self.name, RuntimeError(msg.error))
            log.error(
                "xApp %s raised in its process: %s", self.name, msg.error, extra={"xapp": self.name}
            )
        if state is XAppState.RESTARTING:
            self.restarts += 1
        if state in (XAppState.STOPPED, XAppState.FAILED):
            self.leaving = True  # a close that follows is a goodbye, not a broken stream
        elif state is not XAppState.STOPPING:
            self._set_state(state)

    def _log(self, msg: pb.LogRecord) -> None:
        bucket = self._log_bucket
        if bucket is not None and not bucket.take():
            return
        level = _LEVELS.get(msg.level.lower(), logging.INFO)
        # Not ric.xapp.<name>: an xApp attached from this very process (tests, embedders)
        # forwards that logger's records, which would come back here.
        logger = logging.getLogger(f"ric.northbound.xapp.{self.name}")
        if logger.isEnabledFor(level):
            logger.log(level, "%s", msg.message[:4096], extra={"xapp": self.name})

    def _publish(self, msg: pb.Publish) -> None:
        suffix = check_topic_suffix(self.name, msg.topic_suffix)
        try:
            data = encode_payload(self.name, suffix, msg.payload, self.max_publish_bytes)
        except PublishRefused as exc:
            self._sensor.xapp_publish_refused(self.name, suffix, exc.reason)
            self._notice("error", f"{exc}; not sent")
            return
        self._sensor.xapp_published(self.name, suffix, data)

    def _metrics(self, msg: pb.MetricsReport) -> None:
        sensor = self._sensor
        if not isinstance(sensor, MetricsProvider):
            return
        metrics = sensor.xapp_metrics(self.name)
        for family in msg.families:
            try:
                self._family(metrics, family)
            except (ValueError, TypeError, KeyError) as exc:
                raise ValueError(f"metric {family.name!r}: {exc}") from None

    def _family(self, metrics: Any, family: pb.MetricFamily) -> None:
        labels = tuple(family.labels)
        new = {(family.name, tuple(sample.label_values)) for sample in family.samples}
        new -= self._series
        if len(self._series) + len(new) > MAX_METRIC_SERIES:  # the family is refused whole
            raise ValueError(f"over {MAX_METRIC_SERIES} forwarded series: new ones are not kept")
        self._series |= new
        if family.type == "counter":
            counter = metrics.counter(family.name, family.help, labels)
            for sample in family.samples:
                key = (family.name, tuple(sample.label_values))
                delta = sample.value - self._metric_totals.get(key, 0.0)
                self._metric_totals[key] = sample.value
                if delta > 0:
                    child = (
                        counter.labels(**dict(zip(labels, sample.label_values, strict=True)))
                        if labels
                        else counter
                    )
                    child.inc(delta)
        elif family.type == "gauge":
            gauge = metrics.gauge(family.name, family.help, labels)
            for sample in family.samples:
                child = (
                    gauge.labels(**dict(zip(labels, sample.label_values, strict=True)))
                    if labels
                    else gauge
                )
                child.set(sample.value)
        else:
            raise ValueError(f"type {family.type!r} is not forwarded (counter or gauge)")

    # -- the SDL on the xApp's behalf --------------------------------------------------------

    def _namespace(self, name: str) -> str:
        if name == xapp_namespace(self.name):
            return name
        return granted_namespace(self.name, name, self.shared_namespaces)

    def _sdl_call(self, call: pb.SdlCall) -> None:
        """Run an SDL call once per call id: one asked again after a reattach is answered
        from memory (or when the first one ends), never applied twice."""
        known = self._sdl_results.get(call.call_id)
        if known is not None:
            if known.done():
                self._send_sdl(known)
            return
        if self._calls >= MAX_CALLS_IN_FLIGHT:
            refused = pb.RicMessage()
            refused.sdl.call_id = call.call_id
            refused.sdl.error = self._too_many_calls()
            self._send(refused)
            return
        task: asyncio.Task[pb.RicMessage] = self._run_call(self._sdl(call))
        self._sdl_results[call.call_id] = task
        while len(self._sdl_results) > REMEMBERED_CONTROLS:
            oldest, first = next(iter(self._sdl_results.items()))
            if not first.done():
                break
            del self._sdl_results[oldest]
        task.add_done_callback(self._send_sdl)

    def _run_call(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run one of the xApp's SDL calls or status reports, counted against its bound."""
        task = asyncio.get_running_loop().create_task(coro)
        self._calls += 1

        def done(_: asyncio.Task[T]) -> None:
            self._calls -= 1

        task.add_done_callback(done)
        return task

    def _too_many_calls(self) -> str:
        return (
            f"xApp {self.name} has {self._calls} SDL calls and policy status reports running, "
            f"the limit of {MAX_CALLS_IN_FLIGHT}; wait for their answers"
        )

    def _send_sdl(self, task: asyncio.Task[pb.RicMessage]) -> None:
        if self.stream is not None and not task.cancelled():
            self._send(task.result())

    async def _sdl(self, call: pb.SdlCall) -> pb.RicMessage:
        result = pb.RicMessage()
        r = result.sdl
        r.call_id = call.call_id
        try:
            await self._sdl_op(call, r)
        except (SdlError, ValueError) as exc:
            r.error = str(exc)
        except Exception as exc:  # the backend failed: the xApp gets an error, not silence
            r.error = f"SDL backend failed: {type(exc).__name__}: {exc}"
        return result

    async def _sdl_op(self, call: pb.SdlCall, r: pb.SdlResult) -> None:
        ns = self._namespace(call.namespace)
        db = self.sdl
        op = call.op
        keys = [check_key(k) for k in call.keys]
        values = list(call.values)
        if op == "get":
            found = await db.get(ns, keys)
            r.keys.extend(found)
            r.values.extend(found.values())
        elif op == "set":
            if len(values) != len(keys):
                raise ValueError("set needs one value per key")
            await db.set(ns, dict(zip(keys, values, strict=True)))
        elif op == "set_if":
            r.ok = await db.set_if(ns, _one(keys), values[0], values[1])
        elif op == "set_if_not_exists":
            r.ok = await db.set_if_not_exists(ns, _one(keys), values[0])
        elif op == "delete":
            r.count = await db.delete(ns, keys)
        elif op == "delete_if":
            r.ok = await db.delete_if(ns, _one(keys), values[0])
        elif op == "keys":
            r.keys.extend(await db.keys(ns, call.prefix))
        elif op == "group_add":
            r.count = await db.group_add(ns, check_key(call.group, "group"), list(call.members))
        elif op == "group_remove":
            r.count = await db.group_remove(ns, check_key(call.group, "group"), list(call.members))
        elif op == "group_members":
            r.members.extend(sorted(await db.group_members(ns, check_key(call.group, "group"))))
        elif op == "group_contains":
            r.ok = await db.group_contains(ns, check_key(call.group, "group"), call.members[0])
        elif op == "group_size":
            r.count = await db.group_size(ns, check_key(call.group, "group"))
        elif op == "group_delete":
            r.ok = await db.group_delete(ns, check_key(call.group, "group"))
        elif op == "watch":
            if ns not in self._watches:
                self._watches[ns] = db.watch(ns, self._sdl_changed)
        elif op == "unwatch":
            stop = self._watches.pop(ns, None)
            if stop is not None:
                stop()
        else:
            raise ValueError(f"SDL op {op!r} is not known")

    def _sdl_changed(self, change: Any) -> None:
        if self.stream is not None:
            self._send(
                pb.RicMessage(
                    sdl_change=pb.SdlChange(
                        namespace=change.namespace, key=change.key, op=change.op
                    )
                )
            )

    def _end_watches(self) -> None:
        for stop in self._watches.values():
            stop()
        self._watches.clear()

    def request_stop(self) -> None:
        """Ask the xApp to stop: tell it over its stream, then end the host."""
        if self.stream is not None:
            self._send(pb.RicMessage(stop=pb.Stop(reason="the runtime is stopping the xApp")))
        super().request_stop()
        if self._incoming is not None and not self._incoming.done():
            self._incoming.cancel()

    def transport(self) -> dict[str, object]:
        """How the xApp is reached: the northbound stream, its peer, pid and flow control."""
        return {
            "kind": "northbound socket pair" if self.mode == "process" else "northbound grpc",
            "attached": self.attached,
            "peer": self.peer,
            "pid": self.pid or None,
            "language": self.language,
            "credits": self.credits,
            "unacknowledged": self.unacknowledged,
            "attaches": self.attaches,
        }


def _one(keys: list[str]) -> str:
    if len(keys) != 1:
        raise ValueError(f"this SDL op takes one key, got {len(keys)}")
    return keys[0]


class RemoteHost(AttachedHost):
    """An xApp started elsewhere (``ric xapp run --connect``) that attached by itself.

    When its stream ends it keeps its subscriptions and queued reports for
    ``resume_window_s``; an xApp that comes back with its resume token in that time carries
    on where it left off. After the window the host stops and its subscriptions go.
    """

    mode: ClassVar[str] = "remote"

    def __init__(self, *args: Any, first: Stream, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._first: Stream | None = first

    async def _next_stream(self) -> Stream:
        first, self._first = self._first, None
        if first is not None:
            return first
        self._incoming = asyncio.get_running_loop().create_future()
        window = self.settings.resume_window_s
        try:
            return await asyncio.wait_for(self._incoming, window)
        except TimeoutError:
            raise _Gone(f"not back within the resume window of {window:g} s") from None
        finally:
            self._incoming = None

    async def run(self) -> None:
        """Serve the xApp's streams until it stays away past the resume window or is stopped."""
        try:
            while not self._stopping:
                try:
                    await self._run_instance()
                except StreamEnded:
                    if self._stopping:
                        break
                    if self.leaving:  # it said goodbye: release its subscriptions now
                        log.info("xApp %s left", self.name, extra={"xapp": self.name})
                        self._stopping = True
                        break
                    self._set_state(XAppState.RESTARTING)
                except (_Gone, asyncio.CancelledError) as exc:
                    if isinstance(exc, _Gone):
                        log.info("xApp %s removed: %s", self.name, exc, extra={"xapp": self.name})
                        self._stopping = True
                        break
                    raise
        finally:
            left = len(self._reports)
            if left:
                self.dropped += left
                self._sensor.reports_dropped(self.name, left)
                self._reports.clear()
            self._set_state(XAppState.STOPPED)


class _Gone(Exception):
    """A remote xApp did not come back in time."""


class ProcessHost(AttachedHost):
    """An xApp in a child process the runtime starts, watches and restarts with back-off.

    The child is ``python -m ric xapp run <xApp> --connect fd:<n>``: for each start the
    runtime makes a Unix socket pair and the child inherits one end, so no socket is listening
    and nothing else can attach in its place. The stream on it carries the northbound API's
    messages as length-prefixed frames (``ric.northbound.framed``: a few microseconds a
    message where gRPC costs the loop a hundred or more). A child that exits or dies by a
    signal ends the instance like a raised exception: the restart policy applies, and the
    runtime and other xApps carry on.
    """

    mode: ClassVar[str] = "process"
    START_TIMEOUT_S: ClassVar[float] = 30.0

    def __init__(self, *args: Any, reference: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reference = reference
        self.process: asyncio.subprocess.Process | None = None
        self.exits: list[str] = []
        self._channel: FramedChannel[pb.XAppMessage] | None = None

    async def _next_stream(self) -> Stream:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        env["RIC_XAPP_CONFIG_JSON"] = self.config.model_dump_json()
        try:
            with theirs:
                self.process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "ric",
                    "xapp",
                    "run",
                    self.reference,
                    "--connect",
                    f"fd:{theirs.fileno()}",
                    "--process-of-runtime",
                    env=env,
                    stdin=asyncio.subprocess.DEVNULL,
                    pass_fds=(theirs.fileno(),),
                )
        except BaseException:
            ours.close()
            raise
        self.pid = self.process.pid
        channel = self._channel = await open_channel(
            ours,
            pb.XAppMessage.FromString,
            max_bytes=self.settings.max_message_bytes,
            peer=f"process {self.pid}",
        )
        exited: asyncio.Future[Any] = asyncio.ensure_future(self.process.wait())
        hello: asyncio.Future[Any] = asyncio.ensure_future(channel.read())
        try:
            done, _ = await asyncio.wait(
                {hello, exited}, timeout=self.START_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
            )
            if hello in done:
                return self._stream(channel, hello.result())
            if exited in done:
                raise StreamEnded(f"its process {self._exit_text()} before attaching")
            raise StreamEnded(f"its process did not attach within {self.START_TIMEOUT_S:g} s")
        except ConnectionError as exc:
            raise StreamEnded(f"its stream broke before the hello: {exc}") from None
        except BaseException:
            await self._end_process()
            raise
        finally:
            exited.cancel()
            hello.cancel()

    def _stream(self, channel: FramedChannel[pb.XAppMessage], first: object) -> Stream:
        """The stream of the child's hello; StreamEnded (and the child told) if it is wrong."""
        why = ""
        if not isinstance(first, pb.XAppMessage):
            why = "closed its stream before the hello"
        elif first.WhichOneof("message") != "hello":
            why = f"sent {first.WhichOneof('message')} first, not a hello"
        elif first.hello.name != self.name:
            why = f"attached as {first.hello.name!r}, not as {self.name!r}"
        else:
            try:
                codec.declared_class(first.hello)
            except ValueError as exc:
                why = str(exc)
        if why:
            channel.write_nowait(pb.RicMessage(stop=pb.Stop(reason=why)))
            raise StreamEnded(f"its process {why}")
        assert isinstance(first, pb.XAppMessage)
        return Stream(channel, first.hello, channel.peer)

    async def _run_instance(self) -> None:
        try:
            await super()._run_instance()
        except StreamEnded as exc:
            self._close_channel()
            await self._end_process()
            how = self._exit_text()
            self.exits.append(how)
            raise StreamEnded(f"xApp {self.name}: {exc}; its process {how}") from None
        finally:
            self._close_channel()
            await self._end_process()

    def _close_channel(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            channel.cancel()

    def _exit_text(self) -> str:
        proc = self.process
        code = None if proc is None else proc.returncode
        if code is None:
            return "was still running"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"was killed by {name}"
        return f"exited with code {code}"

    async def _end_process(self) -> None:
        """Wait a moment for the child to leave by itself, then terminate, then kill it."""
        proc = self.process
        if proc is None or proc.returncode is not None:
            return
        for how, wait_s in (("", 2.0), ("terminate", 3.0), ("kill", 5.0)):
            if how == "terminate":
                proc.terminate()
            elif how == "kill":
                proc.kill()
            try:
                await asyncio.wait_for(proc.wait(), wait_s)
                return
            except TimeoutError:
                continue

    def transport(self) -> dict[str, object]:
        out = super().transport()
        out["exits"] = self.exits[-5:]
        return out
