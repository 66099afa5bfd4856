"""The test harness: xApps against a trace or a simulated network, in-process, on virtual time.

``ric.testing`` exports these for xApp authors::

    result = await run_scenario("seeds/demo.toml", [LoadBalancer], duration_s=60, seed=1)
    result = await run_trace("field.trace.gz", [KpiMonitor])

Both build a real :class:`~ric.runtime.Runtime` with no gRPC server (``listen=False``) on a
:class:`~ric.testing.ManualClock`, and attach the nodes through in-memory links
(:class:`~ric.e2.memory.MemoryLink`): the same E2 edge, subscription manager, control router
and xApp hosts as in production, but no network and no sleeping. Time jumps from one thing
that happens to the next (a world tick, a report due, an xApp timer, a control timeout), and
between jumps everything in flight is let run to rest. The same trace (or scenario and seed)
and the same xApps give the same controls, run after run.

- scenarios: the simulator's :class:`~ric.sim.world.World` is stepped tick by tick, and each
  :class:`~ric.sim.agent.NodeAgent` serves its node through its link (``NodeAgent.attach``);
  controls change the world as in ``ric sim``;
- traces: a :class:`~ric.trace.player.TracePlayer` plays the recorded nodes, as ``ric
  replay`` does over gRPC (controls answered by the ``controls`` policy).

The :class:`HarnessResult` holds every control with its outcome, the reports each xApp's
``on_report`` received, each xApp's own metrics, the xApp instances as they ended, and every
KPM report the nodes sent (the KPI time series), all timed in virtual seconds from the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, overload

from ric._proto.e2.v1 import e2_pb2
from ric.actions import ControlAction, ControlOutcome, OutcomeKind
from ric.clock import ManualClock
from ric.config import RuntimeConfig, load_config
from ric.e2.convert import report_from_indication
from ric.e2.memory import MemoryLink
from ric.errors import ProtocolError, RicError
from ric.host import XAppState
from ric.plugins import Plugin, check_xapp, load
from ric.report import KpmReport
from ric.runtime import Runtime
from ric.sensors import MemoryMetrics
from ric.sim.agent import NodeAgent
from ric.sim.scenario import Scenario, load_scenario
from ric.sim.world import World
from ric.trace.index import NodeEvent, TraceIndex
from ric.trace.player import ControlPolicy, TracePlayer
from ric.trace.recorder import TraceRecorder
from ric.types import Sensor
from ric.xapp import XApp

__all__ = [
    "ControlRecord",
    "HarnessError",
    "HarnessResult",
    "XAppSpec",
    "run_scenario",
    "run_trace",
]

log = logging.getLogger(__name__)

A = TypeVar("A", bound=ControlAction)

XAppSpec = type[XApp] | Plugin | str
"""An xApp to run: its class, a loaded plugin, or an entry-point name / ``module:Class``."""

_IDLE_ROUNDS = 3
"""Loop turns with nothing moving before the harness takes the runtime to be at rest ..."""
_BUSY_ROUNDS = 24
"""... or, while a handler is running, before it is taken to wait on virtual time."""
_MAX_SPINS = 200_000
_MAX_SAME_TIME = 10_000


class HarnessError(RicError):
    """The harness cannot run: a node was refused, or virtual time stopped advancing."""


@dataclass(frozen=True, slots=True)
class ControlRecord:
    """One control an xApp sent, when (virtual seconds from the start), and how it ended."""

    time_s: float
    xapp: str
    outcome: ControlOutcome

    @property
    def action(self) -> ControlAction:
        """The control action."""
        return self.outcome.action

    @property
    def kind(self) -> OutcomeKind:
        """How it ended."""
        return self.outcome.kind

    def key(self) -> tuple[float, str, ControlAction, OutcomeKind]:
        """What two deterministic runs must agree on: when, who, what, and how it ended."""
        return (round(self.time_s, 6), self.xapp, self.action, self.kind)


@dataclass
class HarnessResult:
    """What a harness run saw. Times are virtual seconds from the start of the run."""

    duration_s: float
    controls: list[ControlRecord]
    """Every control the xApps sent, in the order they ended, with outcomes."""
    reports: dict[str, list[KpmReport]]
    """Per xApp, the reports its ``on_report`` received, in order."""
    metrics: dict[str, MemoryMetrics]
    """Per xApp, its own metrics: ``result.metrics["kpimon"].value("cells")``."""
    xapps: dict[str, XApp]
    """Per xApp, its (last) instance, with the state it ended in."""
    sent: list[tuple[float, str, e2_pb2.IndicationBatch]] = field(repr=False)
    """Every indication batch the nodes sent, as on the wire (see ``kpis``)."""
    world: World | None = None
    """For scenarios: the simulated world as the run left it."""
    player: TracePlayer | None = None
    """For traces: the player (``player.controls`` are the controls as the nodes saw them)."""
    crashes: list[tuple[float, str, BaseException]] = field(default_factory=list)
    """Every exception an xApp raised (it was restarted): ``(time, xapp, error)``."""
    errors: list[str] = field(default_factory=list)
    """Problems that did not stop the run (a node refused at setup, ...)."""

    @functools.cached_property
    def kpis(self) -> list[tuple[float, KpmReport]]:
        """Every KPM report the nodes sent over E2, with when: the KPI time series (decoded
        on first use)."""
        out = []
        for at, node, batch in self.sent:
            for ind in batch.indications:
                # A bad one is not a KPI; the runtime answered it with an ErrorIndication.
                with contextlib.suppress(ProtocolError):
                    out.append((at, report_from_indication(node, ind)))
        return out

    @overload
    def actions(self, xapp: str | None = None) -> list[ControlAction]: ...

    @overload
    def actions(self, xapp: str | None, kind: type[A]) -> list[A]: ...

    def actions(self, xapp: str | None = None, kind: type[Any] = ControlAction) -> list[Any]:
        """The control actions sent (by ``xapp`` only, if given), in order; with ``kind``
        (e.g. ``Handover``) only those of that type, typed as such."""
        return [
            c.action
            for c in self.controls
            if (xapp is None or c.xapp == xapp) and isinstance(c.action, kind)
        ]

    def outcomes(self, xapp: str | None = None) -> list[OutcomeKind]:
        """How each control ended (of ``xapp`` only, if given), in order."""
        return [c.kind for c in self.controls if xapp is None or c.xapp == xapp]

    def series(self, metric: str, entity: str) -> list[tuple[float, float]]:
        """``(time, value)`` of ``metric`` for one entity (a cell, UE or slice id) in every
        report the nodes sent that carries it."""
        out = []
        for at, report in self.kpis:
            if metric not in report.metrics or entity not in report.entity_ids:
                continue
            out.append((at, report.row(entity)[metric]))
        return out


class _Collector(Sensor):
    """Keeps the controls and gives each xApp in-memory metrics (a MetricsProvider)."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self.controls: list[ControlRecord] = []
        self.crashes: list[tuple[float, str, BaseException]] = []
        self.handled = 0
        self.metrics: dict[str, MemoryMetrics] = {}

    def xapp_metrics(self, xapp: str) -> MemoryMetrics:
        metrics = self.metrics.get(xapp)
        if metrics is None:
            metrics = self.metrics[xapp] = MemoryMetrics(xapp)
        return metrics

    def control_finished(self, xapp: str, outcome: ControlOutcome) -> None:
        self.controls.append(ControlRecord(self._now(), xapp, outcome))

    def handler_finished(self, xapp: str, seconds: float) -> None:
        self.handled += 1

    def xapp_crashed(self, xapp: str, error: BaseException) -> None:
        self.crashes.append((self._now(), xapp, error))


def _plugin(spec: XAppSpec) -> Plugin:
    if isinstance(spec, Plugin):
        return spec
    if isinstance(spec, str):
        return load(spec)
    return Plugin(check_xapp(spec, f"{spec.__module__}:{spec.__qualname__}"), "ric.testing")


def _observed(plugin: Plugin, sink: list[KpmReport]) -> Plugin:
    """The plugin with its class wrapped so that every report its handler gets is kept."""
    cls = plugin.cls
    handler = cls.on_report

    async def on_report(self: XApp, report: KpmReport) -> None:
        sink.append(report)
        await handler(self, report)

    wrapped = type(
        cls.__name__,
        (cls,),
        {
            "on_report": on_report,
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
            "__doc__": cls.__doc__,
        },
    )
    return Plugin(wrapped, plugin.source, plugin.distribution, plugin.dist_version)


def _config(
    config: RuntimeConfig | None, xapp_config: Mapping[str, Mapping[str, Any]] | None
) -> RuntimeConfig:
    base = config or load_config(environ={})
    if not xapp_config:
        return base
    merged = {**base.xapps.config, **{k: dict(v) for k, v in xapp_config.items()}}
    return base.model_copy(update={"xapps": base.xapps.model_copy(update={"config": merged})})


class _Run:
    """One harness run: runtime, clock, links, and the settling between time steps."""

    def __init__(
        self,
        xapps: Sequence[XAppSpec],
        config: RuntimeConfig | None,
        xapp_config: Mapping[str, Mapping[str, Any]] | None,
        record: str | Path | None,
        start_unix_s: float,
        source: str,
    ) -> None:
        self.clock = ManualClock(start=start_unix_s)
        self.collector = _Collector(self.clock.monotonic)
        self.reports: dict[str, list[KpmReport]] = {}
        plugins = []
        for spec in xapps:
            plugin = _plugin(spec)
            plugins.append(_observed(plugin, self.reports.setdefault(plugin.name, [])))
        sensors: list[Sensor] = [self.collector]
        components: list[TraceRecorder] = []
        if record is not None:
            recorder = TraceRecorder(record, source=source)
            sensors.append(recorder)
            components.append(recorder)
        self.runtime = Runtime(
            _config(config, xapp_config),
            plugins,
            sensors=sensors,
            components=components,
            clock=self.clock,
            listen=False,
        )
        self.links: dict[str, tuple[MemoryLink, Callable[[e2_pb2.RicMessage], None]]] = {}
        self.sent: list[tuple[float, str, e2_pb2.IndicationBatch]] = []
        self.errors: list[str] = []
        self.end_s = 0.0

    async def __aenter__(self) -> _Run:
        await self.runtime.__aenter__()
        await self.settle()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        """Shut the runtime down; the nodes stay attached until the runtime ends their
        sessions, so the xApps stop with their state and metrics as the run left them."""
        self.end_s = self.clock.monotonic()
        # An xApp waiting out a restart back-off waits on the virtual clock, and its host
        # does not stop before the wait ends: let virtual time run until none does.
        for _ in range(_MAX_SAME_TIME):
            due = self.clock.next_due()
            if due is None or not any(h.state is XAppState.RESTARTING for h in self.runtime.hosts):
                break
            await self.clock.advance_to(due)
            await self.settle()
        stopping = asyncio.Event()

        async def answer_nodes() -> None:
            while not stopping.is_set():
                await asyncio.sleep(0)
                self.pump()  # the nodes confirm the subscription deletes

        pump = asyncio.get_running_loop().create_task(answer_nodes(), name="harness-pump")
        try:
            await self.runtime.__aexit__(*exc_info)
        finally:
            stopping.set()
            await pump
            self.links.clear()  # the runtime ended their sessions

    def sender(self, node: str, link: MemoryLink) -> Callable[[e2_pb2.NodeMessage], None]:
        """What a node calls to send: keeps its reports (the KPI series), then sends."""

        def send(msg: e2_pb2.NodeMessage) -> None:
            if msg.HasField("indications"):
                self.sent.append((self.clock.monotonic(), node, msg.indications))
            if link.up:
                link.send(msg)

        return send

    def pump(self) -> bool:
        """Hand every message the RIC sent to its node; True if there were any."""
        moved = False
        for node, (link, handle) in list(self.links.items()):
            messages = link.take()
            for msg in messages:
                try:
                    handle(msg)
                except Exception:  # a node bug must not stop the run; it is logged
                    log.exception("node %s failed to handle %s", node, msg.WhichOneof("message"))
            moved = moved or bool(messages)
        return moved

    async def settle(self) -> None:
        """Let the runtime, the xApps and the nodes run until nothing moves."""
        idle = spins = 0
        before = self._progress()
        # At rest: no message moved and no handler took a report or ended a control for a few
        # loop turns. A handler that is running may be between two awaits for some turns, so it
        # gets more; one that waits on virtual time (a control's timeout, a timer) is at rest.
        while idle < (_BUSY_ROUNDS if self._handling() else _IDLE_ROUNDS):
            await asyncio.sleep(0)
            moved = self.pump()
            now = self._progress()
            idle = 0 if moved or now != before else idle + 1
            before = now
            spins += 1
            if spins > _MAX_SPINS:
                raise HarnessError(
                    f"the runtime never comes to rest at t={self.clock.monotonic():.3f} s "
                    "(an xApp or node keeps exchanging messages without end)"
                )

    def _handling(self) -> bool:
        """Whether some xApp handler took a report and has not finished with it."""
        taken = sum(h.delivered - h.dropped - h.queue_depth for h in self.runtime.hosts)
        return taken > self.collector.handled + len(self.collector.crashes)

    def _progress(self) -> tuple[int, ...]:
        hosts = self.runtime.hosts
        return (
            *(h.queue_depth for h in hosts),
            *(h.delivered for h in hosts),
            len(self.collector.controls),
            self.collector.handled,
            self.runtime.controls.pending,
        )

    async def run_clock_until(self, t_s: float) -> None:
        """Advance the clock to ``t_s``, stopping at every timer due on the way."""
        same = 0
        while True:
            due = self.clock.next_due()
            if due is None or due > t_s:
                break
            same += 1
            if same > _MAX_SAME_TIME:
                raise HarnessError(
                    f"virtual time does not advance past {due:.6f} s (timers of 0 s in a loop?)"
                )
            await self.clock.advance_to(due)
            await self.settle()
        await self.clock.advance_to(t_s)
        await self.settle()

    def result(self, **extra: Any) -> HarnessResult:
        xapps: dict[str, XApp] = {}
        for host in self.runtime.hosts:
            if host.instance is not None:
                xapps[host.name] = host.instance
        metrics = {h.name: self.collector.xapp_metrics(h.name) for h in self.runtime.hosts}
        return HarnessResult(
            duration_s=self.end_s,
            controls=list(self.collector.controls),
            reports=self.reports,
            metrics=metrics,
            xapps=xapps,
            sent=self.sent,
            crashes=list(self.collector.crashes),
            errors=self.errors,
            **extra,
        )


def _scenario(scenario: str | Path | Scenario) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    path = Path(scenario)
    if not path.exists():
        repo = Path(__file__).resolve().parents[2] / path
        if repo.exists():
            path = repo
    return load_scenario(path)


async def run_scenario(
    scenario: str | Path | Scenario,
    xapps: Sequence[XAppSpec],
    *,
    duration_s: float,
    seed: int | None = None,
    nodes: Sequence[int] | None = None,
    config: RuntimeConfig | None = None,
    xapp_config: Mapping[str, Mapping[str, Any]] | None = None,
    record: str | Path | None = None,
    start_unix_s: float = 1_700_000_000.0,
    on_tick: Callable[[World], None] | None = None,
) -> HarnessResult:
    """Run ``xapps`` against a simulated network for ``duration_s`` virtual seconds.

    ``scenario`` is a scenario file (relative paths also resolve against the ric source tree,
    so ``"seeds/demo.toml"`` works from anywhere) or a loaded Scenario; ``seed`` overrides its
    seed; ``nodes`` runs only those node ids. ``xapp_config`` gives xApps their settings by
    name (``{"mlb": {"high_pct": 70}}``). ``record`` writes the run as a trace.
    ``on_tick(world)`` is called after every world step, before the nodes report it: the
    ground truth of each tick (``ric eval`` measures with it); it must not change the world.
    """
    if not duration_s > 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
    spec = _scenario(scenario)
    world = World(spec, seed=seed)
    run = _Run(
        xapps, config, xapp_config, record, start_unix_s, f"ric.testing (scenario {spec.name})"
    )
    selected = [n.id for n in spec.nodes] if nodes is None else list(nodes)
    epoch_ms = round(start_unix_s * 1000)
    agents = [NodeAgent(world, n, "memory", epoch_unix_ms=epoch_ms) for n in selected]
    tick_s = spec.tick_ms / 1000.0
    steps = math.ceil(duration_s / tick_s - 1e-9)
    async with run:
        for agent in agents:
            node = str(agent.node_id)
            link = MemoryLink(run.runtime.endpoint, peer=f"sim:{node}")
            answer = link.setup(e2_pb2.NodeMessage(setup_request=agent.setup_request()))
            if answer.WhichOneof("message") != "setup_response":
                cause = answer.setup_failure.cause
                raise HarnessError(f"node {node} was refused at E2 setup: {cause.detail}")
            agent.attach(run.sender(node, link))
            run.links[node] = (link, agent.handle)
            await run.settle()
        for k in range(1, steps + 1):
            await run.run_clock_until(k * tick_s)
            world.step(tick_s)
            if on_tick is not None:
                on_tick(world)
            for agent in agents:
                try:
                    agent.on_tick()
                except Exception:  # one node's reporting bug must not stop the others
                    log.exception("%r: reporting failed at t=%.1f s", agent, world.time_s)
            await run.settle()
    # The xApps stopped with the runtime, before their nodes went away: their state and
    # metrics are what the last report left.
    for agent in agents:
        agent.detach()
    return run.result(world=world)


async def run_trace(
    trace: str | Path | TraceIndex,
    xapps: Sequence[XAppSpec],
    *,
    controls: ControlPolicy = "ack",
    duration_s: float | None = None,
    config: RuntimeConfig | None = None,
    xapp_config: Mapping[str, Mapping[str, Any]] | None = None,
    record: str | Path | None = None,
    strict: bool = True,
) -> HarnessResult:
    """Run ``xapps`` against the nodes recorded in ``trace``, on virtual time.

    The nodes set up and leave when the trace says, serve the subscriptions the xApps make
    from the recorded measurements, and answer controls by ``controls`` (``"ack"``: all
    acknowledged; ``"recorded"``: as in the trace). ``duration_s`` stops early (default: the
    whole trace). The virtual wall clock starts at the trace's start, so ``XApp.now()`` gives
    the recorded times. With ``strict`` (the default) a damaged trace raises TraceError before
    anything runs; without, its intact part is played.
    """
    player = TracePlayer(trace, controls=controls, strict=strict)
    header = player.index.header
    start = player.start_us
    end = (
        player.end_us if duration_s is None else min(player.end_us, start + round(duration_s * 1e6))
    )
    run = _Run(
        xapps,
        config,
        xapp_config,
        record,
        (header.start_unix_us + start) / 1e6,
        f"ric.testing (trace {player.index.path.name})",
    )

    def handler(node: str, link: MemoryLink) -> Callable[[e2_pb2.RicMessage], None]:
        played = player.nodes[node]
        send = run.sender(node, link)

        def handle(msg: e2_pb2.RicMessage) -> None:
            for answer in played.handle(msg, player.now_us):
                send(answer)

        return handle

    async def apply(event: NodeEvent, now_us: int) -> None:
        played = player.nodes[event.node]
        current = run.links.get(event.node)
        if event.kind == "update":
            if current is not None:
                run.sender(event.node, current[0])(event.message or e2_pb2.NodeMessage())
            return
        if current is not None:  # a disconnect, or a new setup without one in the trace
            last = played.due(now_us, flush=True)
            if last is not None:  # the last reports, and what the xApps do about them
                run.sender(event.node, current[0])(last)
                await run.settle()
            current[0].close(event.reason or "the trace ends this association")
            del run.links[event.node]
            played.down()
        if event.kind != "setup":
            return
        link = MemoryLink(run.runtime.endpoint, peer=f"trace:{event.node}")
        answer = link.setup(played.setup_message(event))
        if answer.WhichOneof("message") != "setup_response":
            cause = answer.setup_failure.cause
            run.errors.append(f"node {event.node} was refused at E2 setup: {cause.detail}")
            return
        played.up()
        run.links[event.node] = (link, handler(event.node, link))

    with player:
        async with run:
            t = start
            while True:
                events = player.advance(t)
                # Reports due now go first: a node that leaves at this instant reported first.
                for played in player.connected():
                    link = run.links[played.node][0]
                    if not link.up:  # the RIC ended this association
                        del run.links[played.node]
                        played.down()
                        continue
                    msg = played.due(t)
                    if msg is not None:
                        run.sender(played.node, link)(msg)
                await run.settle()
                for event in events:
                    await apply(event, t)
                    await run.settle()
                if t >= end:
                    break
                candidates = [end]
                upcoming = player.next_time()
                if upcoming is not None:
                    candidates.append(max(upcoming, t + 1))
                due = run.clock.next_due()
                if due is not None:
                    candidates.append(max(start + math.ceil(due * 1e6), t + 1))
                t = min(candidates)
                await run.run_clock_until((t - start) / 1e6)
            if duration_s is None:
                for node, msg in player.finish().items():
                    run.sender(node, run.links[node][0])(msg)
                await run.settle()
        for played in player.connected():
            played.down()
    return run.result(player=player)
