"""The runtime: E2 termination, node registry, subscriptions, controls and xApp hosts in one
asyncio program.

::

    config = RuntimeConfig.from_file("ric.toml")
    async with Runtime.from_config(config, plugins) as runtime:  # listening, xApps started
        await runtime.wait_closed()                                # until cancelled

``Runtime.from_config`` builds every component the configuration asks for (``[http]``: the
Prometheus sensor and the HTTP server; ``[mqtt]``: the bridge; ``[trace] record``: the
recorder), in one place, ``configured_components``: ``ric run``, ``ric demo``, the bench and an
embedder get the same RIC from the same file. ``Runtime(config, plugins)`` builds none of
them: the library's plain constructor opens no port but E2's (tests build hundreds of
runtimes, and an embedder may bring its own components); turn a built one off in the
configuration (``[http] enabled = false``, ``[mqtt] enabled = false``, no ``[trace] record``).
Components see the runtime through ``ric.view.RuntimeView``, never this class.

Leaving the block is a graceful shutdown: xApps stop (their E2 subscriptions are deleted,
their queues counted), sessions end, the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import grpc

from ric._proto.e2.v1 import e2_pb2
from ric.a1 import A1Service
from ric.actions import Conflict, ControlAction, ControlOutcome
from ric.audit import AuditAnchors, AuditLog
from ric.cluster import Cluster
from ric.cluster_streams import ClusterRouting
from ric.config import RuntimeConfig
from ric.conflicts import Arbiter
from ric.conflicts_shared import SharedArbiter
from ric.control import ControlRouter
from ric.e2.convert import (
    cause_from_proto,
    cell_from_proto,
    cell_id_from_proto,
    ran_function_from_proto,
)
from ric.e2.endpoint import E2Endpoint, TerminationConfig
from ric.e2.session import NodeSession
from ric.e2.termination import E2Server
from ric.errors import ConfigError, PluginError, ProtocolError, StateError
from ric.grants import Grant, Grants
from ric.host import RestartPolicy, XAppHost, XAppState
from ric.model import Cause, CauseCode, NodeInfo
from ric.northbound.codec import declared_class
from ric.northbound.host import ProcessHost, RemoteHost, Stream
from ric.northbound.server import AttachRefused, NorthboundServer
from ric.plugins import Plugin, check_pin, configure
from ric.privacy import Pseudonymizer
from ric.sdl import SdlBackend, from_config
from ric.sdl.state import RuntimeState
from ric.sensors import LogSensor, SensorSet
from ric.subscriptions import SubscriptionManager
from ric.threadhost import ThreadHost
from ric.types import Check, Clock, RealClock, Sensor
from ric.view import Component
from ric.watchdog import LoopWatchdog, add_project_package
from ric.watchdog import current as current_watchdog

__all__ = ["Runtime", "configured_components"]

log = logging.getLogger(__name__)


def tune_gc() -> None:
    """Garbage-collector settings for a long-running runtime process, called by ``ric run``
    once the runtime is up (the benchmark saw 12-77 ms collection pauses at 1,000 nodes with
    the defaults): what is loaded by then stays out of collections, and young collections run
    less often. A process-wide choice, so the library never makes it by itself."""
    gc.freeze()
    gc.set_threshold(10_000, 50, 100)


def configured_components(config: RuntimeConfig) -> tuple[list[Sensor], list[Component]]:
    """The sensors and components ``config`` asks for, in start order: the Prometheus sensor
    and the HTTP server (``[http] enabled``), the MQTT bridge (``[mqtt] enabled``), the trace
    recorder (``[trace] record``). The bridge and the recorder are both (they see events and
    own a connection or a file)."""
    # Imported here: a runtime that builds none of them does not load aiohttp, paho-mqtt or
    # prometheus_client (the test harness and the unit tests build many such runtimes).
    from ric.http import observability
    from ric.mqtt import mqtt_bridge
    from ric.trace.recorder import recorder_from_config

    sensors, components = observability(config)
    bridge = mqtt_bridge(config)
    if bridge is not None:
        sensors.append(bridge)
        components.append(bridge)
    recorder = recorder_from_config(config)
    if recorder is not None:
        sensors.append(recorder)
        components.append(recorder)
    return sensors, components


class Runtime:
    """The near-RT RIC runtime; an async context manager that serves until it is left.

    ``plugins`` are checked xApps (see ``ric.plugins``); their settings come from
    ``config.xapps.config[name]``. ``sensors`` observe runtime events in addition to the
    built-in log sensor; ``components`` are services started with the runtime (a component
    that is also a Sensor should be passed in both). With ``listen=False`` no gRPC server is
    started: nodes attach through ``ric.e2.memory.MemoryLink(runtime.endpoint)`` (the test
    harness does, on a virtual ``clock``). ``sdl`` is the shared data layer; by default the
    backend ``config.sdl`` names (in memory unless configured otherwise).
    """

    def __init__(
        self,
        config: RuntimeConfig | None = None,
        plugins: Sequence[Plugin] = (),
        *,
        sensors: Iterable[Sensor] = (),
        components: Sequence[Component] = (),
        clock: Clock | None = None,
        listen: bool = True,
        sdl: SdlBackend | None = None,
    ) -> None:
        self.config = config or RuntimeConfig()
        self.sdl: SdlBackend = sdl if sdl is not None else from_config(self.config.sdl)
        """The shared data layer: the runtime's own state and the xApps' namespaces; opened
        and closed with the runtime."""
        self.components = list(components)
        self.listen = listen
        self.sensor = SensorSet([LogSensor(), *sensors])
        self.clock: Clock = clock or RealClock()
        self._sessions: dict[str, NodeSession] = {}
        self._cells: dict[str, NodeSession] = {}
        self._cells_of: dict[NodeSession, list[str]] = {}
        """The cell ids each session holds in ``_cells``: re-indexing one touches only its own."""
        self._infos: dict[str, NodeInfo] = {}
        """The connected nodes' infos, kept in step with ``_sessions``."""
        self._nodes_view: Mapping[str, NodeInfo] = MappingProxyType({})
        instances = itertools.count(1)
        xcfg = self.config.xapps
        grants = Grants(
            {
                name: Grant(
                    reports=None if g.reports is None else tuple(g.reports),
                    per=None if g.per is None else tuple(g.per),
                    controls=tuple(g.controls),
                    nodes=None if g.nodes is None else tuple(g.nodes),
                    cells=None if g.cells is None else tuple(g.cells),
                    slices=None if g.slices is None else tuple(g.slices),
                )
                for name, g in xcfg.grants.items()
            },
            required=xcfg.require_grants,
        )
        self.cluster: Cluster | None = None
        """This runtime as one replica of the RIC (``[cluster] enabled``; ``ric.cluster``)."""
        if self.config.cluster.enabled:
            self.cluster = Cluster(
                self.config.cluster,
                self.config.ric_id,
                self.sdl,
                self.clock,
                e2_port=lambda: self.server.port,
                on_lost=self._leases_lost,
            )
        self.state = RuntimeState(
            self.sdl, self.config.ric_id, self.clock.time, fencing=self.cluster
        )
        """The node and subscription registries kept in the SDL (``ric.sdl.state``)."""
        self.subscriptions = SubscriptionManager(
            self.sensor,
            instances.__next__,
            max_per_xapp=xcfg.max_subscriptions,
            grants=grants,
            on_change=self._subscriptions_changed,
            max_entities_per_matrix=self.config.e2.max_entities_per_matrix,
            max_values_per_batch=self.config.e2.max_values_per_batch,
            max_indications_per_batch=self.config.e2.max_indications_per_batch,
        )
        ccfg = self.config.conflicts
        arbiter = (
            Arbiter(ccfg.policy, ccfg.window_s, ccfg.priority, self.clock.monotonic)
            if ccfg.enabled and self.cluster is None
            else None
        )
        shared: SharedArbiter | None = None
        if ccfg.enabled and self.cluster is not None:  # one window for the replicas, in Redis
            cluster = self.cluster
            shared = SharedArbiter(
                ccfg.policy,
                ccfg.window_s,
                ccfg.priority,
                self.sdl,
                cluster.namespace,
                lambda: cluster.replica_id,
                timeout_s=ccfg.shared_timeout_s,
                notify=self._notify_conflict,
            )
            self.components.append(shared)  # started after the cluster: it follows notices
        self.controls = ControlRouter(
            self.sensor,
            self.clock,
            self._cells.get,
            instances.__next__,
            arbiter=arbiter,
            rate_per_s=xcfg.max_controls_per_s,
            notify_conflict=self._notify_conflict,
            grants=grants,
            may_send=None if self.cluster is None else self.cluster.may_act,
            term_of=None if self.cluster is None else self.cluster.term_of,
            ric_id=self.config.ric_id,
            shared_arbiter=shared,
        )
        self.routing: ClusterRouting | None = (
            None if self.cluster is None else ClusterRouting(self.cluster, self, self)
        )
        """Controls routed to other replicas' nodes, reports forwarded between replicas
        (``ric.cluster_streams``); None when the runtime is not a replica."""
        pcfg = self.config.privacy
        self.privacy = Pseudonymizer.from_config(pcfg.pseudonymize_ue_ids, pcfg.key_file)
        """UE-id pseudonyms for whatever leaves the runtime (MQTT, traces; logs via the CLI)."""
        acfg = self.config.audit
        self.audit = AuditLog(
            Path(acfg.path) if acfg.path else None,
            keep=acfg.keep,
            privacy=self.privacy,  # pseudonyms at the record's making: every reader sees them
            fsync=acfg.fsync,
        )
        self.audit.open()
        self.sensor.add(self.audit)
        self.anchors = AuditAnchors(
            self.audit,
            self.sdl,
            self.config.ric_id,
            self.sensor,
            self.clock,
            acfg.anchor_interval_s,
        )
        """Anchors the audit chain's head in the SDL, the log and MQTT (with a file only)."""
        self._anchoring: asyncio.Task[None] | None = None
        e2 = self.config.e2
        self.endpoint = E2Endpoint(
            self,
            TerminationConfig(
                host=e2.host,
                port=e2.port,
                keep_alive_s=e2.keep_alive_s,
                setup_timeout_s=e2.setup_timeout_s,
                error_burst=e2.error_burst,
                error_refill_per_s=e2.error_refill_per_s,
                max_message_bytes=e2.max_message_bytes,
                max_entities_per_matrix=e2.max_entities_per_matrix,
                max_values_per_batch=e2.max_values_per_batch,
                max_values_per_s_per_node=e2.max_values_per_s_per_node,
                max_indications_per_batch=e2.max_indications_per_batch,
                max_indications_per_s_per_node=e2.max_indications_per_s_per_node,
                ric_id=self.config.ric_id,
                tls_cert=e2.tls.cert if e2.tls.enabled else "",
                tls_key=e2.tls.key if e2.tls.enabled else "",
                tls_client_ca=e2.tls.client_ca if e2.tls.enabled else "",
                check_node_identity=e2.tls.check_node_identity,
            ),
            self.sensor,
        )
        self.server = E2Server(self.endpoint)
        lcfg = self.config.loop
        self.watchdog: LoopWatchdog | None = (
            LoopWatchdog(lcfg, self.sensor)
            if lcfg.watchdog and isinstance(self.clock, RealClock)
            else None
        )
        """Measures the loop's lag and stalls (``ric.watchdog``); on real time only: under a
        virtual clock the loop runs batches of virtual time and no peer waits in real time."""
        self.hosts: list[XAppHost] = []
        self.northbound = NorthboundServer(self, self.config.northbound)
        """The northbound API: where process and remote xApps attach (``ric.northbound``)."""
        self.a1 = A1Service(
            self.sdl, lambda: self.hosts, self.clock.time, self.config.a1, self.sensor
        )
        """A1 policy types and policies (in the SDL) and their delivery to xApps."""
        self._sources: dict[str, str] = {}
        for plugin in plugins:
            check_pin(plugin, xcfg.pins, required=xcfg.require_pins)
            self._make_host(plugin)
        self._handlers: dict[str, Callable[[NodeSession, Any], None]] = {
            "indications": self._on_indications,
            "subscription_response": self.subscriptions.on_response,
            "subscription_failure": self.subscriptions.on_failure,
            "subscription_delete_response": self.subscriptions.on_delete_response,
            "subscription_delete_failure": self.subscriptions.on_delete_failure,
            "subscription_delete_required": self.subscriptions.on_delete_required,
            "control_acknowledge": self.controls.on_acknowledge,
            "control_failure": self.controls.on_failure,
            "error_indication": self._on_error_indication,
            "configuration_update": self._on_configuration_update,
            "service_update": self._on_service_update,
            "reset_request": self._on_reset_request,
            "reset_response": self._on_reset_response,
        }
        if self.routing is not None:  # answers to controls sent for other replicas' xApps
            self._handlers["control_acknowledge"] = self._routed_answer(
                "control_acknowledge", self.controls.on_acknowledge
            )
            self._handlers["control_failure"] = self._routed_answer(
                "control_failure", self.controls.on_failure
            )
        self._stack: contextlib.AsyncExitStack | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._closed = asyncio.Event()
        self._started = False

    @classmethod
    def from_config(
        cls,
        config: RuntimeConfig,
        plugins: Sequence[Plugin] = (),
        *,
        sensors: Iterable[Sensor] = (),
        components: Sequence[Component] = (),
        clock: Clock | None = None,
        listen: bool = True,
        sdl: SdlBackend | None = None,
    ) -> Runtime:
        """The runtime with every component ``config`` asks for (``configured_components``),
        then ``sensors`` and ``components`` given here; the rest as in the constructor."""
        built_sensors, built_components = configured_components(config)
        return cls(
            config,
            plugins,
            sensors=[*built_sensors, *sensors],
            components=[*built_components, *components],
            clock=clock,
            listen=listen,
            sdl=sdl,
        )

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> Runtime:
        if self._started:
            raise StateError("a Runtime can be started once; make a new one")
        self._started = True
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        try:
            if self.watchdog is not None and current_watchdog() is not None:
                # One watchdog per loop: a second runtime on the same loop (an embedder's
                # tests, two replicas in one process) is measured by the first one's.
                self.watchdog = None
            if self.watchdog is not None:  # first in, last out: it sees start-up and shutdown
                self.watchdog.start()
                stack.callback(self.watchdog.stop)
            await stack.enter_async_context(self.sdl)
            stack.push_async_callback(self.a1.workers.aclose)  # after the SDL's writers stop
            await self.state.load()
            for host in self.hosts:  # before any xApp starts: a conflict refuses the plugin
                await self.a1.register(host.cls, self._sources[host.name])
            self._tg = await stack.enter_async_context(asyncio.TaskGroup())
            await self.a1.start(self._tg)  # A1 policy changes reach the xApps from now on
            self.state.start(self._tg)
            if self.audit.path is not None:
                self._anchoring = self._tg.create_task(self.anchors.run(), name="audit-anchors")
            nb = self.config.northbound
            if nb.enabled and nb.port is not None:
                await self.northbound.start()
                stack.push_async_callback(self.northbound.stop)
            for host in self.hosts:
                self._tg.create_task(self._run_host(host), name=f"xapp:{host.name}")
            if self.listen:
                await self.server.start()
            if self.cluster is not None:  # after listening: its default id names the port
                await self.cluster.start(self)
                stack.push_async_callback(self.cluster.stop)  # before the SDL closes
                if self.routing is not None:
                    await self.routing.start(self._tg)
                    stack.push_async_callback(self.routing.stop)  # before the cluster stops
            for component in self.components:
                await component.start(self)
                stack.push_async_callback(self._stop_component, component)
        except BaseException:
            self.a1.close()
            for host in self.hosts:
                host.request_stop()
            await self.server.stop()
            await self.northbound.stop()
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        stack, self._stack = self._stack, None
        if stack is None:
            return
        try:
            await self._shutdown()
        finally:
            self._closed.set()
            try:
                await stack.__aexit__(*exc_info)
            finally:
                self.audit.close()

    def _make_host(self, plugin: Plugin) -> XAppHost:
        if any(h.name == plugin.name for h in self.hosts):
            raise StateError(f"two xApps are named {plugin.name!r}; names must be unique")
        A1Service.check_declaration(plugin.cls, plugin.source)
        xcfg = self.config.xapps
        host_class = self._host_class(plugin.name)
        extra: dict[str, Any] = {}
        if host_class is ProcessHost:
            extra = {
                "settings": self.config.northbound,
                "ric_id": self.config.ric_id,
                "reference": _child_reference(plugin),
            }
        host = host_class(
            plugin.cls,
            configure(plugin.cls, xcfg.config.get(plugin.name)),
            index=len(self.hosts) + 1,
            services=self,
            sensor=self.sensor,
            clock=self.clock,
            restart=RestartPolicy(
                xcfg.restart_min_s, xcfg.restart_max_s, max_restarts=xcfg.max_restarts
            ),
            queue_size=xcfg.queue_size,
            handler_budget_s=xcfg.handler_budget_ms / 1000.0,
            max_publish_bytes=xcfg.max_publish_bytes,
            policies=self.a1,
            sdl=self.sdl,
            shared_namespaces=self.config.sdl.shared,
            **extra,
        )
        self.hosts.append(host)
        self._sources[host.name] = plugin.source
        add_project_package(plugin.cls.__module__)  # stall warnings name the xApp's frames
        return host

    def _host_class(self, xapp: str) -> type[XAppHost]:
        """The host of ``xapp``'s isolation mode (``[xapps.isolation]``). Under a virtual
        clock (the test harness, ``ric.testing``) every xApp runs in loop mode: virtual time
        moves in steps of the one loop, and only that keeps a replay deterministic."""
        if not isinstance(self.clock, RealClock):
            return XAppHost
        mode = self.config.xapps.isolation_of(xapp)
        if mode == "thread":
            return ThreadHost
        if mode == "process":
            if not self.config.northbound.enabled:
                key = "xapps.isolation." + (
                    xapp if xapp in self.config.xapps.isolation else "default"
                )
                raise ConfigError(
                    key,
                    f"xApp {xapp!r} asks for 'process' isolation, which attaches over the "
                    "northbound API: set northbound.enabled = true, or use 'thread' or 'loop'",
                )
            return ProcessHost
        return XAppHost

    async def attach_remote(self, stream: Stream) -> RemoteHost:
        """Create and start the host of an xApp that attached from elsewhere (``remote``);
        AttachRefused naming the problem when the runtime cannot take it."""
        if self._tg is None or self._closed.is_set():
            raise AttachRefused(grpc.StatusCode.UNAVAILABLE, "the runtime is not running")
        remote = sum(1 for h in self.hosts if isinstance(h, RemoteHost))
        limit = self.config.northbound.max_xapps
        if remote >= limit:
            raise AttachRefused(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{remote} remote xApps are attached, the [northbound] max_xapps limit",
            )
        cls = declared_class(stream.hello)
        source = f"remote xApp from {stream.peer}"
        try:
            A1Service.check_declaration(cls, source)
            await self.a1.register(cls, source)
        except PluginError as exc:
            raise AttachRefused(grpc.StatusCode.FAILED_PRECONDITION, str(exc)) from None
        xcfg = self.config.xapps
        try:
            config = configure(cls, None)
        except ConfigError as exc:
            raise AttachRefused(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        host = RemoteHost(
            cls,
            config,
            first=stream,
            settings=self.config.northbound,
            ric_id=self.config.ric_id,
            index=max((h.index for h in self.hosts), default=0) + 1,
            services=self,
            sensor=self.sensor,
            clock=self.clock,
            queue_size=xcfg.queue_size,
            handler_budget_s=xcfg.handler_budget_ms / 1000.0,
            max_publish_bytes=xcfg.max_publish_bytes,
            policies=self.a1,
            sdl=self.sdl,
            shared_namespaces=self.config.sdl.shared,
        )
        self.hosts.append(host)
        self._sources[host.name] = source
        self._tg.create_task(self._run_remote(host), name=f"xapp:{host.name}")
        return host

    async def _run_remote(self, host: RemoteHost) -> None:
        try:
            await self._run_host(host)
        finally:  # gone for good: its name and subscriptions are free again
            if host in self.hosts:
                self.hosts.remove(host)
            self._sources.pop(host.name, None)
            self.a1.unregister(host.name)
            for session in list(self._sessions.values()):
                self.subscriptions.sync(session, self._wanting())

    def add_xapp(self, plugin: Plugin) -> XAppHost:
        """Load and start one more xApp in a running runtime; its reports join the shared
        subscriptions (which are replaced without a gap for the other xApps)."""
        if self._tg is None or self._closed.is_set():
            raise StateError("add_xapp needs a running runtime (inside 'async with Runtime')")
        host = self._make_host(plugin)
        self._tg.create_task(self._run_host(host), name=f"xapp:{host.name}")
        return host

    @staticmethod
    async def _stop_component(component: Component) -> None:
        try:
            await component.stop()
        except Exception:
            log.exception("component %s failed to stop", component.name)

    def checks(self) -> list[Check]:
        """Readiness: E2 listening, every xApp running, and each component's own checks."""
        if self.listen:
            e2 = Check(
                "e2", self.server.port != 0 and self._stack is not None, f"port {self.server.port}"
            )
        else:
            e2 = Check("e2", self._stack is not None, "in-memory links only")
        sdl_ok, sdl_detail = self.sdl.health()
        out = [e2, Check("sdl", sdl_ok, sdl_detail)]
        for host in self.hosts:
            running = host.state is XAppState.RUNNING
            out.append(Check(f"xapp:{host.name}", running, host.state.value))
        if self.cluster is not None:
            out.extend(self.cluster.checks())
        for component in self.components:
            out.extend(component.checks())
        return out

    async def _shutdown(self) -> None:
        self.a1.close()
        self.state.recording = False  # what the nodes held is what a restart re-arms
        for host in self.hosts:
            host.request_stop()
        sessions = set(self._sessions.values())
        for session in sessions:
            self.subscriptions.sync(session, self.hosts)  # no host accepts: everything is deleted
        # Give nodes a moment to confirm the deletes before their streams end.
        for _ in range(20):
            if not any(s.node in sessions for s in self.subscriptions.snapshot()):
                break
            await asyncio.sleep(0.01)
        await self.server.stop()
        for session in list(self._sessions.values()):  # in-memory links have no server to end them
            self.endpoint.down(session, "RIC shutting down")
        if self._anchoring is not None:  # the last anchor covers every control that ended
            self._anchoring.cancel()
            await asyncio.wait({self._anchoring})
            await self.anchors.anchor()
        await self.state.close()

    async def _run_host(self, host: XAppHost) -> None:
        if not self.a1.registered(host.name):  # added to a running runtime
            try:
                await self.a1.register(host.cls, self._sources[host.name])
            except PluginError as exc:
                host.fail(str(exc))
                return
        for session in list(self._sessions.values()):
            host.node_up(session.info)
            self.subscriptions.sync(session, self._wanting())
        if self.routing is not None:  # the other replicas' nodes, and its reports from them
            for info in self.routing.node_infos().values():
                host.node_up(info)
            self.routing.refresh()
        await host.run()
        for session in list(self._sessions.values()):
            self.subscriptions.sync(session, self._wanting())
        if self.routing is not None:
            self.routing.refresh()

    def _routed_answer(
        self, kind: str, local: Callable[[NodeSession, Any], None]
    ) -> Callable[[NodeSession, Any], None]:
        """``local`` unless the answer is to a control sent for another replica's xApp."""
        routing = self.routing
        assert routing is not None

        def handle(session: NodeSession, msg: Any) -> None:
            if not routing.on_answer(session, kind, msg):
                local(session, msg)

        return handle

    def _wanting(self) -> Sequence[XAppHost]:
        """The hosts the nodes' subscriptions serve: the local xApps and, on a replica, the
        other replicas' xApps that want this replica's nodes (``ric.cluster_streams``)."""
        if self.routing is None:
            return self.hosts
        return [*self.hosts, *self.routing.forward_hosts()]

    def resync_subscriptions(self) -> None:
        """Bring every live node's subscriptions in line with the hosts (``ReplicaCore``)."""
        for session in list(self._sessions.values()):
            self.subscriptions.sync(session, self._wanting())

    def remote_nodes_changed(self, down: Sequence[NodeInfo], up: Sequence[NodeInfo]) -> None:
        """Nodes other replicas own went or came: tell the xApps (``ReplicaCore``)."""
        self._index_cells(None)
        for host in self.hosts:
            if host.accepting:
                for info in down:
                    host.node_down(info)
                for info in up:
                    host.node_up(info)

    def _notify_conflict(self, xapp: str, conflict: Conflict) -> None:
        for host in self.hosts:
            if host.name == xapp and host.accepting:
                host.conflict(conflict)

    async def wait_closed(self) -> None:
        """Wait until the runtime is shut down (cancel the waiting task to shut it down)."""
        await self._closed.wait()

    async def set_serving(self, serving: bool) -> None:
        """Publish readiness to the E2 termination's gRPC health service (the HTTP server's
        readiness watch calls it when the checks' answer changes)."""
        await self.server.set_serving(serving)

    @property
    def port(self) -> int:
        """The bound E2 port (useful when configured as 0)."""
        return self.server.port

    def host(self, name: str) -> XAppHost:
        """The host of the xApp called ``name``; KeyError naming it if there is none."""
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(f"no xApp named {name!r} is loaded")

    # -- HostServices ------------------------------------------------------------------------

    async def control(
        self, host: XAppHost, action: ControlAction, timeout: float
    ) -> ControlOutcome:
        """Route a control (HostServices)."""
        if self.routing is not None and action.cell not in self._cells:
            routed = self.routing.route(host, action, timeout)  # a node another replica owns
            if routed is not None:
                return await routed
        return await self.controls.send(host, action, timeout)

    def submit_control(
        self, host: XAppHost, action: ControlAction, timeout: float
    ) -> asyncio.Future[ControlOutcome] | None:
        """``control`` without the wait, for a host on another thread (``ric.threadhost``):
        the future of the outcome, or None when the control needs a round trip first (a node
        another replica owns, or a shared conflict window): then use ``control``."""
        if self.routing is not None and action.cell not in self._cells:
            return None
        return self.controls.submit(host, action, timeout)

    def nodes(self) -> Mapping[str, NodeInfo]:
        """The connected nodes, by text id (a read-only view)."""
        return self._nodes_view

    @property
    def sessions(self) -> Mapping[str, NodeSession]:
        """The live node sessions, by node id."""
        return MappingProxyType(self._sessions)

    # -- E2Handler -----------------------------------------------------------------------------

    def admit(self, info: NodeInfo) -> Cause | None:
        """Refuse a second session for a connected node id, or cells owned by another node."""
        node = str(info.id)
        live = self._sessions.get(node)
        if live is not None:
            return Cause(
                CauseCode.MISC_DUPLICATE_NODE_ID,
                f"node {node} is already connected from {live.peer}",
            )
        for cell in info.cells:
            owner = self._cells.get(str(cell))
            if owner is not None:
                return Cause(
                    CauseCode.PROTOCOL_SEMANTIC_ERROR,
                    f"cell {cell} already belongs to connected node {owner.id}",
                )
        return None

    async def claim(self, info: NodeInfo) -> Cause | None:
        """As one replica of a RIC, take the node's lease (``ric.cluster``); else accept."""
        if self.cluster is None:
            return None
        return await self.cluster.claim(str(info.id))

    def _leases_lost(self, nodes: Sequence[str], reason: str) -> None:
        """This replica no longer owns ``nodes``: end their sessions (they fail over)."""
        for node in nodes:
            session = self._sessions.get(node)
            if session is not None:
                log.warning("closing node %s: %s", node, reason, extra={"node": node})
                session.close(reason)

    def _index_cells(self, session: NodeSession | None, *, remove: bool = False) -> None:
        """Re-index ``session``'s cells (or drop them) and refresh the nodes view.

        Only ``session``'s own entries are touched. The view is still a fresh copy of every
        node's info (a C-level dict copy): it is immutable so that xApps on their own thread
        read it without a lock (``ric.threadhost``)."""
        if session is not None:
            for cell_id in self._cells_of.pop(session, ()):
                if self._cells.get(cell_id) is session:
                    del self._cells[cell_id]
            if remove:
                self._infos.pop(session.id, None)
            else:
                cell_ids = [str(cell) for cell in session.info.cells]
                for cell_id in cell_ids:
                    self._cells[cell_id] = session
                self._cells_of[session] = cell_ids
                if self._sessions.get(session.id) is session:
                    self._infos[session.id] = session.info
        nodes = dict(self._infos)
        if self.routing is not None:  # the xApps see the nodes of every replica
            nodes = {**self.routing.node_infos(), **nodes}
        self._nodes_view = MappingProxyType(nodes)

    def node_up(self, session: NodeSession) -> None:
        """A node set up: register it, subscribe the xApps' reports, tell the xApps."""
        self._sessions[session.id] = session
        if self.routing is not None:  # owned elsewhere until now: the xApps see it go first
            self.routing.local_up(session)
        self._index_cells(session)
        self.state.node_up(session.info)
        self.sensor.node_connected(session.info)
        self.subscriptions.sync(session, self._wanting())
        for host in self.hosts:
            if host.accepting:
                host.node_up(session.info)

    def node_down(self, session: NodeSession, reason: str) -> None:
        """A node's session ended: forget it, end its controls, tell the xApps."""
        if self._sessions.get(session.id) is not session:
            return
        del self._sessions[session.id]
        self._index_cells(session, remove=True)
        self.controls.node_down(session, reason)
        if self.routing is not None:  # what it sent for other replicas stays for the next owner
            self.routing.local_down(session)
        self.subscriptions.node_down(session)
        self.state.node_down(session.info)  # written with the term it was held with
        if self.cluster is not None:
            self.cluster.release(session.id)
        self.sensor.node_disconnected(session.info, reason)
        for host in self.hosts:
            if host.accepting:
                host.node_down(session.info)

    def _subscriptions_changed(self, session: NodeSession) -> None:
        """Record a live node's subscriptions (those of a node that went are kept as they
        were: they are what is re-armed when it is back)."""
        if self._sessions.get(session.id) is session:
            self.state.subscriptions_changed(
                session.id,
                [
                    s.record()
                    for s in self.subscriptions.live(session)
                    if not s.superseded and s.wants
                ],
            )

    def handle(self, session: NodeSession, kind: str, msg: Any) -> None:
        """Dispatch one message from a set-up node."""
        handler = self._handlers.get(kind)
        if handler is None:
            raise ProtocolError(
                Cause(
                    CauseCode.PROTOCOL_MESSAGE_NOT_COMPATIBLE_WITH_RECEIVER_STATE,
                    f"{kind} is not expected from an E2 node",
                )
            )
        handler(session, msg)

    def _on_indications(self, session: NodeSession, msg: e2_pb2.IndicationBatch) -> None:
        self.subscriptions.on_indications(session, msg)

    def _on_error_indication(self, session: NodeSession, msg: e2_pb2.ErrorIndication) -> None:
        cause = cause_from_proto(msg.cause)
        self.sensor.node_error_indication(session.id, cause)
        if self.routing is not None and self.routing.on_answer(session, "error_indication", msg):
            return
        self.controls.on_error_indication(session, msg)

    def _on_configuration_update(
        self, session: NodeSession, msg: e2_pb2.NodeConfigurationUpdate
    ) -> None:
        cells = dict(session.info.cells)
        for c in [*msg.cells_added, *msg.cells_modified]:
            cell = cell_from_proto(c)
            owner = self._cells.get(str(cell.id))
            if owner is not None and owner is not session:
                raise ProtocolError(
                    Cause(
                        CauseCode.PROTOCOL_SEMANTIC_ERROR,
                        f"cell {cell.id} already belongs to connected node {owner.id}",
                    )
                )
            cells[cell.id] = cell
        for cgi in msg.cells_removed:
            cells.pop(cell_id_from_proto(cgi), None)
        self._replace_info(session, cells=cells)
        session.send(
            e2_pb2.RicMessage(
                configuration_update_acknowledge=e2_pb2.NodeConfigurationUpdateAcknowledge(
                    transaction_id=msg.transaction_id
                )
            )
        )

    def _on_service_update(self, session: NodeSession, msg: e2_pb2.ServiceUpdate) -> None:
        functions = dict(session.info.ran_functions)
        accepted = []
        for fn in [*msg.added, *msg.modified]:
            functions[fn.ran_function_id] = ran_function_from_proto(fn)
            accepted.append(fn.ran_function_id)
        for fid in msg.deleted_ran_function_ids:
            functions.pop(fid, None)
        self._replace_info(session, ran_functions=functions)
        session.send(
            e2_pb2.RicMessage(
                service_update_acknowledge=e2_pb2.ServiceUpdateAcknowledge(
                    transaction_id=msg.transaction_id, accepted_ran_function_ids=accepted
                )
            )
        )

    def _replace_info(self, session: NodeSession, **changes: Any) -> None:
        old = session.info
        session.info = NodeInfo(
            id=old.id,
            vendor=old.vendor,
            software_version=old.software_version,
            ran_functions=changes.get("ran_functions", old.ran_functions),
            cells=changes.get("cells", old.cells),
        )
        self._index_cells(session)
        self.state.node_changed(session.info)

    def _on_reset_request(self, session: NodeSession, msg: e2_pb2.ResetRequest) -> None:
        log.warning("node %s reset: %s", session.id, msg.cause.detail, extra={"node": session.id})
        self.subscriptions.on_reset(session)
        session.send(
            e2_pb2.RicMessage(
                reset_response=e2_pb2.ResetResponse(transaction_id=msg.transaction_id)
            )
        )
        self.subscriptions.sync(session, self._wanting())

    def _on_reset_response(self, session: NodeSession, msg: e2_pb2.ResetResponse) -> None:
        log.info("node %s confirmed a reset", session.id, extra={"node": session.id})


def _child_reference(plugin: Plugin) -> str:
    """How a ``process`` xApp's child loads the same class: its entry-point name when it
    was installed as one, else ``module:Class``; ConfigError if it cannot be imported."""
    if plugin.distribution:
        return plugin.name
    cls = plugin.cls
    if "<locals>" in cls.__qualname__ or cls.__module__ == "__main__":
        raise ConfigError(
            f"xapps.isolation.{plugin.name}",
            f"xApp {plugin.name!r} ({cls.__module__}.{cls.__qualname__}) cannot run in "
            "'process' isolation: its class must be importable by its child process (defined "
            "at the top level of a module); use 'thread' or 'loop'",
        )
    return f"{cls.__module__}:{cls.__qualname__}"
