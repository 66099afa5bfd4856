"""The ``thread`` isolation mode: an xApp on its own event loop, in its own thread.

A loop-mode xApp (``ric.host.XAppHost``) shares the runtime's event loop, so one blocking call
in it (``time.sleep``, a synchronous HTTP client or database driver, a long inference) holds
E2, HTTP and every other xApp. A :class:`ThreadHost` runs the same XApp class, unchanged, on
a loop of its own in a daemon thread; a blocking call then stalls only that xApp: its own
reports wait in its bounded queue, and nothing else does.

What crosses between the two loops, and how::

    runtime loop                                     the xApp's thread and loop
    deliver, node_up/down, policy, conflict, ... --> report deque / event inbox, one
                                                      coalesced call_soon_threadsafe wake
    services.control                            <-- call_soon_threadsafe, then the outcome's
                                                      done-callback hands it back the same way
    A1 policies, the SDL                        <-- run_coroutine_threadsafe + wrap_future
    sensors (state, overruns, publish, ...)     <-- an outbox drained by one coalesced
                                                      call_soon_threadsafe callback
    SDL watch callbacks                          --> call_soon_threadsafe to the xApp's loop

The runtime and its components keep seeing an ``XAppHost`` (same attributes; every call they
make stays non-blocking on their loop). ``nodes()`` is read directly (the runtime replaces an
immutable view, never mutates it), and so are the Prometheus metrics an xApp declares
(``prometheus_client`` is thread-safe).

Stopping crosses to the thread; the runtime then waits at most :data:`STOP_WAIT_S` for it. A
thread stuck in a blocking call cannot be interrupted in Python: it is logged by name and left
behind as a daemon thread, and the xApp counts as stopped.

Simplified: the stall check sees handler calls the host makes (reports and events); a timer
(``XApp.every``) that blocks is counted and named when it ends, like in loop mode.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from ric.a1.policy import PolicyEvent, PolicyStatus
from ric.actions import ControlAction, ControlOutcome
from ric.errors import StateError
from ric.eventloop import same_kind
from ric.host import PolicySource, XAppHost, XAppState, _Context, _Event
from ric.report import KpmReport
from ric.sdl import Change, Listener, SdlBackend, check_namespace
from ric.sensors import MemoryMetrics, SensorSet
from ric.types import Metrics, MetricsProvider, Sensor
from ric.xapp import XApp

__all__ = ["STOP_WAIT_S", "ThreadHost"]

log = logging.getLogger(__name__)

T = TypeVar("T")

STOP_WAIT_S = 5.0
"""How long the runtime waits for an xApp's thread after asking it to stop (the handler in
progress, then ``on_stop``) before it leaves the thread behind."""

_HOOKS = tuple(n for n in vars(Sensor) if not n.startswith("_"))


@runtime_checkable
class SubmitsControls(Protocol):
    """Host services that can start a control without a coroutine (``Runtime``)."""

    def submit_control(
        self, host: XAppHost, action: ControlAction, timeout: float
    ) -> asyncio.Future[ControlOutcome] | None:
        """The future of the control's outcome, or None to use ``control`` instead."""
        ...


class _PostedSensor(Sensor):
    """The runtime's sensors as the xApp's thread sees them: every hook is handed to the
    runtime loop (the MQTT bridge, the A1 service and the recorder are not thread-safe), in
    order, by the host's outbox. ``xapp_metrics`` answers at once: the metrics were made on
    the runtime loop when the host was built."""

    def __init__(self, target: Sensor, post: Callable[..., None], metrics: Metrics) -> None:
        self._target = target
        self._post = post
        self._metrics = metrics

    def xapp_metrics(self, xapp: str) -> Metrics:
        """The xApp's metrics, made when the host was built."""
        return self._metrics


_DEFERRED = frozenset({"handler_finished"})
"""Hooks the xApp's thread calls once per report and that only feed metrics: they wait in the
outbox for the next hand-off or the host's periodic check (at most a quarter second), so a
report does not cost the runtime loop a wake-up of its own. Order is kept: whatever is
handed over later flushes them first."""


def _posting(name: str) -> Callable[..., None]:
    wake = name not in _DEFERRED

    def hook(self: _PostedSensor, *args: object) -> None:
        self._post(getattr(self._target, name), *args, wake=wake)

    hook.__name__ = name
    hook.__doc__ = getattr(Sensor, name).__doc__
    return hook


for _name in _HOOKS:
    setattr(_PostedSensor, _name, _posting(_name))


class _PostedPolicies:
    """The A1 service as the xApp's thread sees it: both calls run on the runtime loop."""

    def __init__(self, source: PolicySource, host: ThreadHost) -> None:
        self._source = source
        self._host = host

    async def snapshot(self, xapp: str, type_ids: Sequence[str]) -> list[PolicyEvent]:
        """Every current policy of ``type_ids`` as a ``created`` event."""
        return await self._host.on_runtime(self._source.snapshot(xapp, type_ids))

    async def report(self, xapp: str, type_id: str, policy_id: str, status: PolicyStatus) -> bool:
        """Record ``xapp``'s enforcement status of a policy; False if it no longer exists."""
        return await self._host.on_runtime(self._source.report(xapp, type_id, policy_id, status))


class _PostedBackend(SdlBackend):
    """The runtime's SDL backend as the xApp's thread sees it: every call runs on the runtime
    loop (the Redis client and the SQLite writer belong to it), and each change a watch sees
    there is handed to the xApp's loop."""

    def __init__(self, target: SdlBackend, host: ThreadHost) -> None:
        super().__init__()
        self._target = target
        self._host = host
        self.kind = target.kind  # type: ignore[misc]  # the wrapped backend's, for logs

    def describe(self) -> str:
        """The wrapped backend's description."""
        return self._target.describe()

    def health(self) -> tuple[bool, str]:
        """The wrapped backend's health."""
        return self._target.health()

    async def get(self, namespace: str, keys: Sequence[str]) -> dict[str, bytes]:
        """See ``SdlBackend.get``."""
        return await self._host.on_runtime(self._target.get(namespace, keys))

    async def set(self, namespace: str, items: Mapping[str, bytes]) -> None:
        """See ``SdlBackend.set``."""
        await self._host.on_runtime(self._target.set(namespace, items))

    async def set_if(self, namespace: str, key: str, old: bytes, new: bytes) -> bool:
        """See ``SdlBackend.set_if``."""
        return await self._host.on_runtime(self._target.set_if(namespace, key, old, new))

    async def set_if_not_exists(self, namespace: str, key: str, value: bytes) -> bool:
        """See ``SdlBackend.set_if_not_exists``."""
        return await self._host.on_runtime(self._target.set_if_not_exists(namespace, key, value))

    async def delete(self, namespace: str, keys: Sequence[str]) -> int:
        """See ``SdlBackend.delete``."""
        return await self._host.on_runtime(self._target.delete(namespace, keys))

    async def delete_if(self, namespace: str, key: str, old: bytes) -> bool:
        """See ``SdlBackend.delete_if``."""
        return await self._host.on_runtime(self._target.delete_if(namespace, key, old))

    async def keys(self, namespace: str, prefix: str = "") -> list[str]:
        """See ``SdlBackend.keys``."""
        return await self._host.on_runtime(self._target.keys(namespace, prefix))

    async def group_add(self, namespace: str, group: str, members: Sequence[bytes]) -> int:
        """See ``SdlBackend.group_add``."""
        return await self._host.on_runtime(self._target.group_add(namespace, group, members))

    async def group_remove(self, namespace: str, group: str, members: Sequence[bytes]) -> int:
        """See ``SdlBackend.group_remove``."""
        return await self._host.on_runtime(self._target.group_remove(namespace, group, members))

    async def group_members(self, namespace: str, group: str) -> builtins.set[bytes]:
        """See ``SdlBackend.group_members``."""
        return await self._host.on_runtime(self._target.group_members(namespace, group))

    async def group_contains(self, namespace: str, group: str, member: bytes) -> bool:
        """See ``SdlBackend.group_contains``."""
        return await self._host.on_runtime(self._target.group_contains(namespace, group, member))

    async def group_size(self, namespace: str, group: str) -> int:
        """See ``SdlBackend.group_size``."""
        return await self._host.on_runtime(self._target.group_size(namespace, group))

    async def group_delete(self, namespace: str, group: str) -> bool:
        """See ``SdlBackend.group_delete``."""
        return await self._host.on_runtime(self._target.group_delete(namespace, group))

    def watch(self, namespace: str, listener: Listener) -> Callable[[], None]:
        """Watch ``namespace`` on the runtime loop; ``listener`` is called on the loop that
        asked (the xApp's). Registration and stop are posted in order with the xApp's SDL
        calls, so a change made by a call after ``watch`` returned is seen."""
        check_namespace(namespace)
        home = asyncio.get_running_loop()

        def call(change: Change) -> None:
            try:
                listener(change)
            except Exception:  # as the backend does: a watcher's bug must not spread
                log.exception("SDL watcher of namespace %s failed on %s", namespace, change)

        def handoff(change: Change) -> None:
            _hand(home, call, change)  # False: the xApp's loop has closed, nobody listens

        stops: list[Callable[[], None]] = []
        self._host.post(lambda: stops.append(self._target.watch(namespace, handoff)))

        def stop() -> None:
            self._host.post(lambda: [s() for s in stops])

        return stop


class _ThreadContext(_Context):
    """The XAppContext of an instance running in a ThreadHost's thread."""

    _host: ThreadHost

    async def control(self, action: ControlAction, timeout: float) -> ControlOutcome:
        return await self._host.send_control(action, timeout)

    @property
    def publishing(self) -> bool:
        sensor = self._host.runtime_sensor  # read only: which sensors listen
        if isinstance(sensor, SensorSet):
            return sensor.listens("xapp_published")
        return type(sensor).xapp_published is not Sensor.xapp_published


class ThreadHost(XAppHost):
    """Runs one xApp on its own event loop in its own daemon thread (``[xapps.isolation]``
    ``thread``); to the runtime it is an XAppHost like any other. ``run`` is awaited on the
    runtime loop: it starts the thread, watches for a handler running past its budget, and
    returns when the thread has ended (or was left behind, see :data:`STOP_WAIT_S`)."""

    mode: ClassVar[str] = "thread"

    def __init__(self, cls: type[XApp], config: XApp.Config, **kwargs: Any) -> None:
        super().__init__(cls, config, **kwargs)
        sensor = self._sensor
        self.runtime_sensor: Sensor = sensor
        """The runtime's sensors, called directly on the runtime loop only."""
        # Made here, on the runtime side: SensorSet memoizes them in a plain dict.
        metrics = (
            sensor.xapp_metrics(self.name)
            if isinstance(sensor, MetricsProvider)
            else MemoryMetrics(self.name)
        )
        self._sensor = _PostedSensor(sensor, self.post, metrics)
        if self.policies is not None:
            self.policies = _PostedPolicies(self.policies, self)
        self.sdl = _PostedBackend(self.sdl, self)
        services = self.services
        # Resolved once: a runtime-checkable isinstance costs about 5 us, once per control.
        self._submit = services.submit_control if isinstance(services, SubmitsControls) else None
        self._inbox: collections.deque[_Event] = collections.deque()
        """Events from the runtime, moved to ``_events`` by the thread (which alone touches
        ``_events``, so the policy replay may reorder it)."""
        self._outbox: collections.deque[tuple[Callable[..., object], tuple[object, ...]]] = (
            collections.deque()
        )
        """Calls the thread hands to the runtime loop, in order."""
        self._loop: asyncio.AbstractEventLoop | None = None
        """The thread's loop, once it runs."""
        self._runtime_loop: asyncio.AbstractEventLoop | None = None
        self._runtime_thread = threading.get_ident()
        self._thread: threading.Thread | None = None
        self.stop_wait_s = STOP_WAIT_S
        """How long ``run`` waits for the thread after a stop request before leaving it."""
        self._worker: asyncio.Task[None] | None = None
        self._wake_pending = False
        self._flush_pending = False
        self._stop_requested_at: float | None = None
        self._abandoned = False
        self._calls = 0
        self._running: tuple[str, float, int] | None = None
        """(handler, time.monotonic() it began, call number) of the call in progress."""
        self._warned_call = 0

    @property
    def thread(self) -> threading.Thread | None:
        """The xApp's thread, once started (it may outlive ``run`` if left behind)."""
        return self._thread

    # -- hand-offs ----------------------------------------------------------------------------

    def post(self, fn: Callable[..., object], *args: object, wake: bool = True) -> None:
        """Call ``fn(*args)`` on the runtime loop: at once when called there, else through the
        outbox (one pending wake-up of the runtime loop at a time, however many calls; with
        ``wake`` False none: the call waits for the next one, or the host's periodic check)."""
        loop = self._runtime_loop
        if loop is None or threading.get_ident() == self._runtime_thread:
            fn(*args)
            return
        self._outbox.append((fn, args))
        if wake and not self._flush_pending:
            self._flush_pending = True
            _hand(loop, self._flush)  # False: the runtime has gone; a left-behind thread's news

    def _flush(self) -> None:
        self._flush_pending = False  # before draining: a call posted meanwhile wakes us again
        outbox = self._outbox
        while outbox:
            fn, args = outbox.popleft()
            try:
                fn(*args)
            except Exception:
                log.exception("xApp %s: a call handed to the runtime failed", self.name)

    async def on_runtime(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the runtime loop from the xApp's thread; cancelling the caller
        cancels it there. StateError when the runtime has stopped."""
        loop = self._runtime_loop
        if loop is None or loop is asyncio.get_running_loop():
            return await coro
        try:
            future = asyncio.run_coroutine_threadsafe(coro, loop)
        except RuntimeError:
            coro.close()
            raise StateError(f"xApp {self.name}: the runtime has stopped") from None
        return await asyncio.wrap_future(future)

    async def send_control(self, action: ControlAction, timeout: float) -> ControlOutcome:
        """Send a control from the xApp's thread and await its outcome there.

        Each control crosses once each way: a plain callback starts it on the runtime loop
        (``Runtime.submit_control``: no task, no coroutine there) and the outcome's
        done-callback hands it back. A control that needs a round trip first (routed to
        another replica, a shared conflict window) runs as a coroutine there instead.
        Cancelling the caller cancels the wait on the runtime loop too; the control itself
        still ends once, with its audit record.
        """
        services = self.services
        runtime = self._runtime_loop
        if runtime is None or runtime is asyncio.get_running_loop():
            return await services.control(self, action, timeout)
        submit = self._submit
        here = asyncio.get_running_loop()
        answer: asyncio.Future[ControlOutcome] = here.create_future()
        started: list[asyncio.Future[ControlOutcome]] = []

        def settle(outcome: asyncio.Future[ControlOutcome]) -> None:  # on the xApp's loop
            if outcome.cancelled():
                if not answer.done():
                    answer.cancel()
                return
            exc = outcome.exception()  # read even when no one waits: never "not retrieved"
            if answer.done():
                return
            if exc is not None:
                answer.set_exception(exc)
            else:
                answer.set_result(outcome.result())

        def start() -> None:  # on the runtime loop
            try:
                future = submit(self, action, timeout) if submit is not None else None
                if future is None:
                    future = asyncio.ensure_future(services.control(self, action, timeout))
            except Exception as exc:  # handed back to the xApp, as the awaited call would
                future = runtime.create_future()
                future.set_exception(exc)
            started.append(future)
            future.add_done_callback(lambda done: _hand(here, settle, done))

        if not _hand(runtime, start):
            raise StateError(f"xApp {self.name}: the runtime has stopped")
        try:
            return await answer
        except asyncio.CancelledError:
            # ``started`` is filled on the runtime loop: cancel there, once it has begun.
            _hand(runtime, lambda: started and started[0].cancel())
            raise

    def _wake_worker(self) -> None:
        # Called after the report or event is queued; the thread sets _loop before it first
        # looks at its queues, so one of the two always sees the other.
        loop = self._loop
        if loop is not None and not self._wake_pending:
            self._wake_pending = True
            _hand(loop, self._woken)  # False: the thread's loop has closed, nothing waits

    def _woken(self) -> None:
        self._wake_pending = False  # first: a report queued after this line wakes us again
        self._drain_inbox()  # on the xApp's own thread, the only one that touches _events
        self._wake.set()

    # -- called by the runtime, never blocking ------------------------------------------------

    def deliver(self, report: KpmReport) -> None:
        """Queue a report; if the queue is full the oldest report is dropped and counted (the
        thread may take one meanwhile: the count can then be one too high, never too low)."""
        queue = self._reports
        sensor = self.runtime_sensor
        if len(queue) == queue.maxlen:
            self.dropped += 1
            sensor.reports_dropped(self.name, 1)
        queue.append(report)
        self.delivered += 1
        sensor.report_delivered(self.name, len(queue))
        self._wake_worker()

    def _event(self, hook: str, arg: object) -> None:
        self._inbox.append((hook, arg))
        self._wake_worker()

    def request_stop(self) -> None:
        """Ask the thread to stop after the handler call in progress; the runtime waits for
        it at most STOP_WAIT_S."""
        self._stopping = True
        if self._stop_requested_at is None:
            self._stop_requested_at = time.monotonic()
        loop = self._loop
        if loop is not None:
            _hand(loop, self._stop_here)  # False: it has already ended

    def _stop_here(self) -> None:
        self._stop.set()
        self._wake.set()

    # -- the runtime side of run -------------------------------------------------------------

    async def run(self) -> None:
        """Run the xApp in its thread until ``request_stop`` or cancellation; restarts happen
        in the thread as in loop mode."""
        loop = asyncio.get_running_loop()
        self._runtime_loop = loop
        self._runtime_thread = threading.get_ident()
        ended: asyncio.Future[None] = loop.create_future()
        thread = threading.Thread(
            target=self._thread_main, args=(ended,), name=f"xapp-{self.name}", daemon=True
        )
        self._thread = thread
        thread.start()
        period = min(max(self.handler_budget_s / 2, 0.01), 0.25)
        try:
            while not ended.done():
                await asyncio.wait((ended,), timeout=period)
                if self._outbox and not self._flush_pending:
                    self._flush()  # calls posted without a wake-up (metrics of each report)
                self._check_running()
                at = self._stop_requested_at
                if not ended.done() and at is not None and time.monotonic() - at > self.stop_wait_s:
                    self._abandon()
                    return
        except asyncio.CancelledError:
            self.request_stop()
            self._cancel_worker()
            try:
                await asyncio.wait_for(asyncio.shield(ended), self.stop_wait_s)
            except TimeoutError:
                self._abandon()
            raise
        ended.result()

    def _check_running(self) -> None:
        """Warn, once per call, about a handler still running past its budget: the operator
        sees the culprit during the stall, not only after it."""
        running = self._running
        if running is None:
            return
        handler, started, call = running
        seconds = time.monotonic() - started
        if seconds > self.handler_budget_s and call != self._warned_call:
            self._warned_call = call
            log.warning(
                "xApp %s: %s has been running for %.0f ms in its own thread (over its %.0f ms "
                "budget, [xapps] handler_budget_ms); E2 and the other xApps go on, its own "
                "reports wait",
                self.name,
                handler,
                seconds * 1e3,
                self.handler_budget_s * 1e3,
                extra={"xapp": self.name},
            )

    def _cancel_worker(self) -> None:
        loop, worker = self._loop, self._worker
        if loop is not None and worker is not None:
            _hand(loop, worker.cancel)

    def _abandon(self) -> None:
        self._abandoned = True
        running = self._running
        if running is None:
            where = "in on_stop or a call of its own"
        else:
            where = f"in {running[0]} for {(time.monotonic() - running[1]) * 1e3:.0f} ms"
        log.error(
            "xApp %s: its thread %s did not stop within %g s of the stop request (%s); a "
            "blocking call cannot be interrupted, so the thread is left running as a daemon "
            "and the xApp counts as stopped",
            self.name,
            self._thread.name if self._thread is not None else "?",
            self.stop_wait_s,
            where,
            extra={"xapp": self.name},
        )
        XAppHost._discard_left(self)
        self.state = XAppState.STOPPED
        self.runtime_sensor.xapp_state(self.name, XAppState.STOPPED)

    # -- the thread ----------------------------------------------------------------------------

    def _thread_main(self, ended: asyncio.Future[None]) -> None:
        failure: BaseException | None = None
        try:
            # The runtime's kind of loop (uvloop, normally: ric.eventloop).
            with asyncio.Runner(loop_factory=same_kind(self._runtime_loop)) as runner:
                runner.run(self._thread_run())
        except asyncio.CancelledError:  # the runtime cancelled it: run() re-raises its own
            pass
        except BaseException as exc:  # handed to run() on the runtime loop
            failure = exc
        self._loop = None
        self.post(_settle, ended, failure)

    async def _thread_run(self) -> None:
        # Events bound to this loop; set before the first look at the queues (see _wake_worker).
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._worker = asyncio.current_task()
        self._loop = asyncio.get_running_loop()
        if self._stopping:
            self._stop.set()
        await XAppHost.run(self)

    def _make_context(self, tg: asyncio.TaskGroup) -> _Context:
        return _ThreadContext(self, tg)

    def _set_state(self, state: XAppState) -> None:
        if not self._abandoned:  # a left-behind thread no longer speaks for the xApp
            super()._set_state(state)

    def _discard_left(self) -> None:
        # On the runtime loop, where deliver appends and counts.
        self.post(XAppHost._discard_left, self)

    def _drain_inbox(self) -> None:
        inbox, events = self._inbox, self._events
        while inbox:
            events.append(inbox.popleft())

    async def _replay_policies(self) -> None:
        self._drain_inbox()  # the events so far are the previous instance's: replay sorts them
        await super()._replay_policies()

    def _enter(self, hook: str, label: tuple[asyncio.Task[Any] | None, str]) -> object:
        # Not the loop watchdog's activity slot (it describes the runtime's loop, not this
        # one): the call in progress is recorded for _check_running instead.
        self._calls += 1
        self._running = (hook, time.monotonic(), self._calls)
        return None

    def _leave(self, previous: object) -> None:
        self._running = None

    def overrun(self, handler: str, seconds: float, started: float) -> None:
        """Count and log one handler call over the budget; in its own thread it held nothing
        but the xApp's own queue."""
        self.overruns += 1
        self._sensor.handler_overrun(self.name, handler, seconds)
        log.warning(
            "xApp %s: %s took %.0f ms, over its %.0f ms budget ([xapps] handler_budget_ms); it "
            "ran in its own thread: E2 and the other xApps went on, only its own reports waited",
            self.name,
            handler,
            seconds * 1e3,
            self.handler_budget_s * 1e3,
            extra={"xapp": self.name},
        )


def _hand(loop: asyncio.AbstractEventLoop, fn: Callable[..., object], *args: object) -> bool:
    """Schedule ``fn(*args)`` on ``loop`` from any thread; False when the loop has closed."""
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:
        return False
    return True


def _settle(ended: asyncio.Future[None], failure: BaseException | None) -> None:
    if ended.done():
        return
    if failure is None:
        ended.set_result(None)
    else:
        ended.set_exception(failure)
