"""The xApp host: one per loaded xApp, with a bounded queue, a worker and restarts.

The E2 reader hands reports to ``deliver``, which never blocks: when the queue is full the
oldest report is dropped and counted. The worker calls the xApp's handlers one at a time; an
exception is logged and counted, and the xApp is rebuilt and restarted after a back-off, while
the runtime and the other xApps go on.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import enum
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from ric.a1.policy import PolicyEvent, PolicyKind, PolicyStatus
from ric.actions import Conflict, ControlAction, ControlOutcome
from ric.backoff import Backoff
from ric.model import NodeInfo
from ric.plugins import configure
from ric.report import KpmReport
from ric.sdl import Listener, Namespace, SdlBackend, granted_namespace, xapp_namespace
from ric.sdl.memory import MemoryBackend
from ric.sensors import MemoryMetrics, SensorSet
from ric.types import Clock, Metrics, MetricsProvider, RealClock, Sensor
from ric.watchdog import ACTIVITY
from ric.watchdog import current as current_watchdog
from ric.xapp import MAX_PUBLISH_BYTES, PublishRefused, SubscriptionStatus, XApp, encode_payload

__all__ = ["HostServices", "PolicySource", "RestartPolicy", "XAppHost", "XAppState"]

log = logging.getLogger(__name__)


class XAppState(enum.StrEnum):
    """Where an xApp is in its life; each member is its own text (``"running"``), which is
    what sensors, the ``ric_xapp_state`` metric and the MQTT state topic carry."""

    LOADED = "loaded"
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


class HostServices(Protocol):
    """What a host needs from the runtime core."""

    async def control(
        self, host: XAppHost, action: ControlAction, timeout: float
    ) -> ControlOutcome:
        """Route a control from ``host``'s xApp and resolve with its outcome."""
        ...

    def nodes(self) -> Mapping[str, NodeInfo]:
        """The connected nodes, by text id."""
        ...


class PolicySource(Protocol):
    """Where a host gets the current A1 policies of its xApp and reports their status
    (``ric.a1.A1Service``)."""

    async def snapshot(self, xapp: str, type_ids: Sequence[str]) -> list[PolicyEvent]:
        """Every current policy of ``type_ids`` as a ``created`` event."""
        ...

    async def report(self, xapp: str, type_id: str, policy_id: str, status: PolicyStatus) -> bool:
        """Record ``xapp``'s enforcement status of a policy; False if it no longer exists."""
        ...


@dataclass(frozen=True)
class RestartPolicy:
    """Back-off between restarts: doubles from ``min_s`` to ``max_s``; after ``healthy_s`` of
    uptime it starts again from ``min_s``. ``max_restarts`` (None: no limit) stops the xApp
    for good once exceeded."""

    min_s: float = 0.1
    max_s: float = 30.0
    healthy_s: float = 60.0
    max_restarts: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.min_s <= self.max_s:
            raise ValueError(
                f"RestartPolicy needs 0 < min_s <= max_s, got min_s={self.min_s} and "
                f"max_s={self.max_s}"
            )


_Event = tuple[str, object]
"""A lifecycle event for the worker: (hook name, argument)."""


class _InstanceNamespace(Namespace):
    """A namespace whose watches are recorded, so that they end with the xApp instance."""

    def __init__(self, backend: SdlBackend, name: str, watches: list[Callable[[], None]]) -> None:
        super().__init__(backend, name)
        self._watches = watches

    def watch(self, listener: Listener) -> Callable[[], None]:
        stop = super().watch(listener)
        self._watches.append(stop)
        return stop


class _Context:
    """The XAppContext a host gives each instance."""

    def __init__(self, host: XAppHost, tg: asyncio.TaskGroup) -> None:
        self.name = host.name
        self.clock = host.clock
        self.log = logging.LoggerAdapter(
            logging.getLogger(f"ric.xapp.{host.name}"), {"xapp": host.name}
        )
        self._host = host
        self._tg = tg
        self._tasks: set[asyncio.Task[None]] = set()
        self._watches: list[Callable[[], None]] = []
        sensor = host._sensor
        self.metrics: Metrics = (
            sensor.xapp_metrics(host.name)
            if isinstance(sensor, MetricsProvider)
            else MemoryMetrics(host.name)
        )

    async def control(self, action: ControlAction, timeout: float) -> ControlOutcome:
        return await self._host.services.control(self._host, action, timeout)

    def nodes(self) -> Mapping[str, NodeInfo]:
        return self._host.services.nodes()

    def spawn(self, coro: Awaitable[None], name: str) -> None:
        async def run() -> None:
            await coro

        # A coroutine becomes the task itself: cancelled before its first step (the xApp
        # stopping), it is closed, not left "never awaited"; and no wrapper frame per task.
        work = coro if asyncio.iscoroutine(coro) else run()
        task = self._tg.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def publishing(self) -> bool:
        sensor = self._host._sensor
        if isinstance(sensor, SensorSet):
            return sensor.listens("xapp_published")
        return type(sensor).xapp_published is not Sensor.xapp_published

    def publish(self, topic_suffix: str, payload: Any) -> bool:
        if not self.publishing:  # no bridge: nothing to encode, nothing to refuse
            return False
        host = self._host
        try:
            data = encode_payload(self.name, topic_suffix, payload, host.max_publish_bytes)
        except PublishRefused as exc:
            host._sensor.xapp_publish_refused(self.name, topic_suffix, exc.reason)
            self.log.error("%s; not sent", exc)
            return False
        host._sensor.xapp_published(self.name, topic_suffix, data)
        return True

    def handler_done(self, handler: str, started: float) -> None:
        seconds = self.clock.monotonic() - started
        if seconds > self._host.handler_budget_s:
            self._host.overrun(handler, seconds, started)

    async def policy_status(self, type_id: str, policy_id: str, status: PolicyStatus) -> bool:
        return await self._host.report_policy(type_id, policy_id, status)

    @property
    def sdl(self) -> Namespace:
        return _InstanceNamespace(self._host.sdl, xapp_namespace(self.name), self._watches)

    def shared(self, name: str) -> Namespace:
        granted = granted_namespace(self.name, name, self._host.shared_namespaces)
        return _InstanceNamespace(self._host.sdl, granted, self._watches)

    def stop_watches(self) -> None:
        """End the SDL watches made by this instance."""
        for stop in list(self._watches):
            stop()
        self._watches.clear()

    def cancel_tasks(self) -> None:
        """End the tasks spawned by this instance (its timers)."""
        for task in list(self._tasks):
            task.cancel()


class XAppHost:
    """Runs one xApp: queue, worker task, lifecycle hooks, restarts with back-off."""

    mode: ClassVar[str] = "loop"
    """The isolation mode (``[xapps.isolation]``): ``loop`` runs the xApp on the runtime's
    event loop; ``ric.threadhost.ThreadHost`` is ``thread``."""

    def __init__(
        self,
        cls: type[XApp],
        config: XApp.Config,
        *,
        index: int,
        services: HostServices,
        sensor: Sensor,
        clock: Clock,
        restart: RestartPolicy | None = None,
        queue_size: int | None = None,
        policies: PolicySource | None = None,
        sdl: SdlBackend | None = None,
        shared_namespaces: Mapping[str, Sequence[str]] | None = None,
        handler_budget_s: float = 0.1,
        max_publish_bytes: int = MAX_PUBLISH_BYTES,
    ) -> None:
        self.cls = cls
        self.name = cls.name
        self.config = config
        self.index = index
        self.services = services
        self.clock = clock
        self.state = XAppState.LOADED
        self.restarts = 0
        self.dropped = 0
        self.delivered = 0
        self.instance: XApp | None = None
        self._sensor = sensor
        self._restart = restart or RestartPolicy()
        size = queue_size or cls.queue_size
        self._reports: collections.deque[KpmReport] = collections.deque(maxlen=size)
        self._events: collections.deque[_Event] = collections.deque()
        self.statuses: dict[tuple[str, int], SubscriptionStatus] = {}
        """The latest SubscriptionStatus of each (node, report index)."""
        self.sdl: SdlBackend = sdl if sdl is not None else MemoryBackend()
        """The store of the xApp's own namespace and of the shared ones it is granted."""
        self.shared_namespaces: Mapping[str, Sequence[str]] = shared_namespaces or {}
        """Shared SDL namespace -> the xApps allowed to use it (``[sdl] shared``)."""
        self.policies = policies
        self.policy_types = frozenset(t.id for t in cls.policy_types)
        """The ids of the A1 policy types the xApp handles."""
        self._policies: dict[tuple[str, str], Mapping[str, Any]] = {}
        """The policies the running instance was given, by (type id, policy id)."""
        self.handler_budget_s = handler_budget_s
        """A handler call longer than this is an overrun: counted and logged."""
        self.overruns = 0
        self.max_publish_bytes = max_publish_bytes
        """The largest encoded payload the xApp may publish."""
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._stopping = False

    def __repr__(self) -> str:
        return f"XAppHost({self.name}, {self.state.value})"

    def transport(self) -> dict[str, object]:
        """How the runtime reaches the xApp, for the status API and ``ric status``: its
        process id and, for xApps attached over the northbound API, the peer, credits and
        reports sent but not yet handled."""
        return {"kind": "in-process", "pid": os.getpid()}

    @property
    def queue_depth(self) -> int:
        """Reports waiting for the handler."""
        return len(self._reports)

    @property
    def accepting(self) -> bool:
        """Whether reports for this xApp are still wanted (not stopping or stopped)."""
        return not self._stopping and self.state not in (XAppState.STOPPED, XAppState.FAILED)

    # -- called by the runtime, never blocking ------------------------------------------------

    def deliver(self, report: KpmReport) -> None:
        """Queue a report; if the queue is full the oldest report is dropped and counted."""
        queue = self._reports
        if len(queue) == queue.maxlen:
            self.dropped += 1
            self._sensor.reports_dropped(self.name, 1)
        queue.append(report)
        self.delivered += 1
        self._sensor.report_delivered(self.name, len(queue))
        self._wake.set()

    def _event(self, hook: str, arg: object) -> None:
        self._events.append((hook, arg))
        self._wake.set()

    def node_up(self, node: NodeInfo) -> None:
        """Tell the xApp a node came up (never dropped, handled before queued reports)."""
        self._event("on_node_up", node)

    def node_down(self, node: NodeInfo) -> None:
        """Tell the xApp a node went down."""
        node_id = str(node.id)
        for index in range(len(self.cls.reports)):  # its own reports, not every node's statuses
            self.statuses.pop((node_id, index), None)
        self._event("on_node_down", node)

    def subscription_status(self, index: int, status: SubscriptionStatus) -> None:
        """Tell the xApp where its report ``index`` stands on a node."""
        self.statuses[(status.node, index)] = status
        self._event("on_subscription", status)

    def conflict(self, conflict: Conflict) -> None:
        """Tell the xApp another xApp's control conflicted with one of its own."""
        self._event("on_conflict", conflict)

    def policy(self, event: PolicyEvent) -> None:
        """Tell the xApp an A1 policy of one of its types changed (never dropped; while the
        xApp restarts, its next instance gets every current policy instead)."""
        if event.type_id in self.policy_types and self.accepting:
            self._event("on_policy", event)

    async def report_policy(self, type_id: str, policy_id: str, status: PolicyStatus) -> bool:
        """Record the xApp's enforcement status of a policy; False if it no longer exists
        or the host has no policy source."""
        if self.policies is None:
            return False
        return await self.policies.report(self.name, type_id, policy_id, status)

    async def _on_policy(self, app: XApp, event: PolicyEvent) -> None:
        # Each instance sees each change once, in a consistent order: a change that its start
        # snapshot already held is skipped, a "created" for a policy it knows is an update.
        key, known = (event.type_id, event.policy_id), self._policies
        if event.kind == "deleted":
            if known.pop(key, None) is None:
                return
        elif known.get(key) == event.body:
            return
        else:
            kind: PolicyKind = "updated" if key in known else "created"
            if kind != event.kind:
                event = dataclasses.replace(event, kind=kind)
            known[key] = event.body
        status = await app.on_policy(event)
        if status is None or event.kind == "deleted":
            return
        if not isinstance(status, PolicyStatus):
            raise TypeError(
                f"xApp {self.name}: on_policy returned {status!r}, not a PolicyStatus or None"
            )
        try:
            await self.report_policy(event.type_id, event.policy_id, status)
        except Exception:  # the store failed: the xApp did its part, the status stays unknown
            log.exception(
                "xApp %s: cannot record the status of policy %s/%s",
                self.name,
                event.type_id,
                event.policy_id,
                extra={"xapp": self.name},
            )

    def fail(self, reason: str) -> None:
        """Mark the xApp failed without running it (it was refused after loading)."""
        log.error("xApp %s not started: %s", self.name, reason, extra={"xapp": self.name})
        self._stopping = True
        self._set_state(XAppState.FAILED)

    def reconfigure(self, raw: Mapping[str, Any]) -> XApp.Config:
        """Replace the xApp's settings with ``raw``, validated against its Config; the new
        Config. The running instance gets it between two handler calls (``self.config`` is
        set, then ``on_config`` is awaited); a restarted instance is built with it. Invalid
        settings raise ConfigError naming the key, and nothing changes."""
        config = configure(self.cls, dict(raw))
        self.config = config
        if self.accepting:
            self._event("on_config", config)
        return config

    def request_stop(self) -> None:
        """Ask the worker to stop after the handler call in progress (or at once while it
        waits to restart); ``run`` then returns."""
        self._stopping = True
        self._stop.set()
        self._wake.set()

    async def _backoff(self, seconds: float) -> None:
        """Wait ``seconds`` on the clock before a restart, or less if a stop is requested."""
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        stopper = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:  # both are this call's own: none outlives it
            sleeper.cancel()
            stopper.cancel()

    # -- the worker ---------------------------------------------------------------------------

    def _set_state(self, state: XAppState) -> None:
        self.state = state
        self._sensor.xapp_state(self.name, state)

    async def run(self) -> None:
        """Run the xApp until ``request_stop`` (graceful) or cancellation; restart on errors."""
        policy = self._restart
        backoff = Backoff(policy.min_s, policy.max_s, clock=self.clock)
        try:
            while not self._stopping:
                started = self.clock.monotonic()
                self._set_state(XAppState.STARTING)
                try:
                    await self._run_instance()
                except Exception as exc:
                    error = _first_leaf(exc)
                    self._sensor.xapp_crashed(self.name, error)
                    if self._stopping:
                        break
                    if self.clock.monotonic() - started >= policy.healthy_s:
                        backoff.reset()
                    limit = policy.max_restarts
                    if limit is not None and self.restarts >= limit:
                        log.error(
                            "xApp %s failed %d times; not restarting it",
                            self.name,
                            self.restarts + 1,
                            extra={"xapp": self.name},
                        )
                        self._set_state(XAppState.FAILED)
                        return
                    self.restarts += 1
                    self._set_state(XAppState.RESTARTING)
                    await self._backoff(backoff.next())
        finally:
            self._discard_left()
            if self.state is not XAppState.FAILED:
                self._set_state(XAppState.STOPPED)

    def _discard_left(self) -> None:
        """Count the reports still queued when the xApp stops as dropped, and drop them."""
        left = len(self._reports)
        if left:
            self.dropped += left
            self._sensor.reports_dropped(self.name, left)
            self._reports.clear()

    def _make_context(self, tg: asyncio.TaskGroup) -> _Context:
        """The context of a new instance whose tasks belong to ``tg``."""
        return _Context(self, tg)

    async def _run_instance(self) -> None:
        instance: XApp | None = None
        context: _Context | None = None
        try:
            async with asyncio.TaskGroup() as tg:
                context = self._make_context(tg)
                instance = self.cls(context, self.config)
                self.instance = instance
                await instance.on_start()
                await self._replay_policies()
                self._set_state(XAppState.RUNNING)
                await self._work(instance)
                context.cancel_tasks()  # a graceful stop ends the instance's timers too
        finally:
            if context is not None:
                context.stop_watches()
            if instance is not None:
                self._set_state(XAppState.STOPPING)
                await self._stop_instance(instance)

    async def _replay_policies(self) -> None:
        """Queue every current policy of the xApp's types as ``created``, ahead of the other
        events; policy events queued for the previous instance are dropped first (the
        snapshot has them), and those that arrive while it is read follow it."""
        if not self.policy_types or self.policies is None:
            return
        kept = [e for e in self._events if e[0] != "on_policy"]
        self._events.clear()
        self._events.extend(kept)
        self._policies = {}
        snapshot = await self.policies.snapshot(self.name, sorted(self.policy_types))
        self._events.extendleft(reversed([("on_policy", event) for event in snapshot]))
        if snapshot:
            self._wake.set()

    async def _stop_instance(self, instance: XApp) -> None:
        try:
            await asyncio.wait_for(instance.on_stop(), timeout=5.0)
        except TimeoutError:
            log.warning("xApp %s: on_stop took over 5 s", self.name, extra={"xapp": self.name})
        except Exception as exc:
            log.warning("xApp %s: on_stop raised %r", self.name, exc, extra={"xapp": self.name})

    async def _work(self, app: XApp) -> None:
        reports = self._reports
        events = self._events
        wake = self._wake
        clock = self.clock
        sensor = self._sensor
        name = self.name
        budget = self.handler_budget_s
        enter, leave = self._enter, self._leave
        task = asyncio.current_task()
        on_report = (task, f"xApp {name} on_report")
        while not self._stopping:
            if events:
                hook, arg = events.popleft()
                if hook == "on_config":
                    app.config = arg  # type: ignore[assignment]  # a Config from reconfigure
                t0 = clock.monotonic()
                previous = enter(hook, (task, f"xApp {name} {hook}"))
                try:
                    if hook == "on_policy":
                        await self._on_policy(app, arg)  # type: ignore[arg-type]  # PolicyEvent
                    else:
                        await getattr(app, hook)(arg)
                finally:
                    leave(previous)
                seconds = clock.monotonic() - t0
                if seconds > budget:
                    self.overrun(hook, seconds, t0)
            elif reports:
                report = reports.popleft()
                t0 = clock.monotonic()
                previous = enter("on_report", on_report)
                try:
                    await app.on_report(report)
                finally:
                    leave(previous)
                seconds = clock.monotonic() - t0
                sensor.handler_finished(name, seconds)
                if seconds > budget:
                    self.overrun("on_report", seconds, t0)
            else:
                wake.clear()
                await wake.wait()

    def _enter(self, hook: str, label: tuple[asyncio.Task[Any] | None, str]) -> object:
        """A handler call begins: the loop watchdog's activity slot names it (so a stall it
        causes names the xApp); returns what ``_leave`` puts back."""
        previous, ACTIVITY.current = ACTIVITY.current, label
        return previous

    def _leave(self, previous: object) -> None:
        """The handler call ``_enter`` began has ended."""
        ACTIVITY.current = previous  # type: ignore[assignment]  # what _enter took from it

    def overrun(self, handler: str, seconds: float, started: float) -> None:
        """Count and log one handler call over the budget, saying whether it held the loop."""
        self.overruns += 1
        self._sensor.handler_overrun(self.name, handler, seconds)
        dog = current_watchdog() if isinstance(self.clock, RealClock) else None
        if dog is None:
            how = "handlers run on the runtime's event loop: while one computes, nothing else runs"
        else:
            blocked = min(dog.stalled_since(started), seconds)
            if blocked >= 0.5 * seconds:
                how = (
                    f"it blocked the event loop for {blocked * 1e3:.0f} ms of it: handlers run "
                    "on the runtime's loop, so E2, HTTP and every other xApp waited"
                )
            else:
                how = (
                    f"it mostly awaited (the loop was held {blocked * 1e3:.0f} ms meanwhile); "
                    "its own reports waited"
                )
        log.warning(
            "xApp %s: %s took %.0f ms, over its %.0f ms budget ([xapps] handler_budget_ms); %s",
            self.name,
            handler,
            seconds * 1e3,
            self.handler_budget_s * 1e3,
            how,
            extra={"xapp": self.name},
        )


def _first_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
