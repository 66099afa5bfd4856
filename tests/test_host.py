"""The xApp host: bounded queue that drops the oldest, restarts with back-off, lifecycle."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Mapping

import numpy as np
import pytest
from prometheus_client import generate_latest

from ric import ControlOutcome, KpmReport, NodeInfo, OutcomeKind, Report, XApp
from ric.actions import ControlAction
from ric.config import LoopSettings
from ric.host import RestartPolicy, XAppHost, XAppState
from ric.ids import NodeId, Plmn
from ric.metrics import PrometheusSensor
from ric.report import EntityKind
from ric.sensors import Stats
from ric.testing import ManualClock
from ric.types import RealClock, Sensor
from ric.watchdog import LoopWatchdog
from tests.conftest import wait_for


class Services:
    async def control(
        self, host: XAppHost, action: ControlAction, timeout: float
    ) -> ControlOutcome:
        return ControlOutcome(OutcomeKind.ACKNOWLEDGED, action)

    def nodes(self) -> Mapping[str, NodeInfo]:
        return {}


def report(value: float) -> KpmReport:
    return KpmReport(
        node="n", kind=EntityKind.CELL, metrics=("m",), entity_ids=("c",), values=np.array([value])
    )


def host_for(cls: type[XApp], stats: Sensor, **kwargs: object) -> XAppHost:
    return XAppHost(
        cls,
        cls.Config(),
        index=1,
        services=Services(),
        sensor=stats,
        clock=RealClock(),
        restart=RestartPolicy(min_s=0.01, max_s=0.05),
        **kwargs,  # type: ignore[arg-type]
    )


class Slow(XApp):
    name = "slow"
    reports = [Report("m")]
    queue_size = 3
    gate: asyncio.Event
    values: list[float]

    async def on_start(self) -> None:
        self.gate = asyncio.Event()
        self.values = []

    async def on_report(self, report: KpmReport) -> None:
        await self.gate.wait()
        self.values.append(float(report["m"][0]))


async def test_full_queue_drops_oldest_and_counts() -> None:
    """A blocked xApp keeps only its newest reports; every dropped one is counted."""
    stats = Stats()
    host = host_for(Slow, stats)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(host.run())
        await wait_for(lambda: host.state is XAppState.RUNNING)
        host.deliver(report(0))
        await asyncio.sleep(0.01)  # the handler takes report 0 and blocks on the gate
        for v in range(1, 7):
            host.deliver(report(v))
        assert host.queue_depth == 3
        assert host.dropped == 3 and stats.dropped["slow"] == 3
        app = host.instance
        assert isinstance(app, Slow)
        app.gate.set()
        await wait_for(lambda: len(app.values) == 4)
        assert app.values == [0, 4, 5, 6]
        host.request_stop()
    assert host.state is XAppState.STOPPED


class Crashy(XApp):
    name = "crashy"
    reports = [Report("m")]
    starts = 0
    handled: list[float] = []

    async def on_start(self) -> None:
        type(self).starts += 1

    async def on_report(self, report: KpmReport) -> None:
        value = float(report["m"][0])
        if value < 0:
            raise RuntimeError("negative value")
        type(self).handled.append(value)


async def test_exception_restarts_the_xapp_and_others_go_on() -> None:
    """A handler exception is counted and the xApp restarted (fresh instance); a second xApp is
    untouched and both keep receiving reports."""
    stats = Stats()
    crashy = host_for(Crashy, stats)
    other = host_for(Slow, stats)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(crashy.run())
        tg.create_task(other.run())
        await wait_for(
            lambda: crashy.state is XAppState.RUNNING and other.state is XAppState.RUNNING
        )
        first = crashy.instance
        other_app = other.instance
        assert isinstance(other_app, Slow)
        other_app.gate.set()
        crashy.deliver(report(-1))
        other.deliver(report(7))
        await wait_for(lambda: crashy.restarts == 1 and crashy.state is XAppState.RUNNING)
        assert crashy.instance is not first
        crashy.deliver(report(3))
        await wait_for(lambda: Crashy.handled == [3.0])
        await wait_for(lambda: other_app.values == [7.0])
        assert stats.crashes["crashy"] == 1 and Crashy.starts == 2
        crashy.request_stop()
        other.request_stop()


class BadStart(XApp):
    name = "badstart"

    async def on_start(self) -> None:
        raise ValueError("cannot start")


async def test_max_restarts_then_failed() -> None:
    """An xApp that keeps failing is restarted with back-off until max_restarts, then FAILED."""
    stats = Stats()
    host = XAppHost(
        BadStart,
        BadStart.Config(),
        index=1,
        services=Services(),
        sensor=stats,
        clock=RealClock(),
        restart=RestartPolicy(min_s=0.001, max_s=0.004, max_restarts=3),
    )
    await asyncio.wait_for(host.run(), 5)
    assert host.state is XAppState.FAILED
    assert host.restarts == 3 and stats.crashes["badstart"] == 4


class Flaky(XApp):
    """Raises in on_start, after running for the next of ``runs_s`` seconds on its clock."""

    name = "flaky"
    clock_ = ManualClock(start=0.0)
    runs_s: list[float] = []
    starts: list[float] = []

    async def on_start(self) -> None:
        self.starts.append(self.now())
        run_s = self.runs_s.pop(0) if self.runs_s else 0.0
        if run_s:
            await self.clock_.sleep(run_s)
        raise RuntimeError("flaky")


async def test_restart_back_off_doubles_to_its_cap_and_resets_after_a_healthy_run() -> None:
    """Restarts wait min_s, doubling up to max_s, on the host's clock; a run that lasted
    healthy_s makes the next wait min_s again."""
    clock = Flaky.clock_ = ManualClock(start=0.0)
    Flaky.runs_s = [0.0, 0.0, 0.0, 0.0, 12.0]
    Flaky.starts = []
    host = XAppHost(
        Flaky,
        Flaky.Config(),
        index=1,
        services=Services(),
        sensor=Stats(),
        clock=clock,
        restart=RestartPolicy(min_s=1.0, max_s=4.0, healthy_s=10.0),
    )
    task = asyncio.create_task(host.run())
    while len(Flaky.starts) < 7:
        await wait_for(lambda: clock.next_due() is not None, what="the next wait")
        due = clock.next_due()
        assert due is not None
        await clock.advance_to(due)
    host.request_stop()
    await asyncio.wait_for(task, 5)
    # waits 1, 2, 4, 4 (capped); the 12 s run resets the next wait to 1, then 2.
    assert Flaky.starts == [0.0, 1.0, 3.0, 7.0, 11.0, 24.0, 26.0]


def test_a_restart_policy_with_its_bounds_crossed_is_refused() -> None:
    """A RestartPolicy whose min_s exceeds max_s (or is not positive) is refused by name."""
    with pytest.raises(ValueError, match="RestartPolicy needs 0 < min_s <= max_s"):
        RestartPolicy(min_s=5.0, max_s=1.0)
    with pytest.raises(ValueError, match="min_s=0"):
        RestartPolicy(min_s=0.0)


class Events(XApp):
    name = "events"
    log_: list[str] = []

    async def on_start(self) -> None:
        self.log_.append("start")
        self.every(0.01, self._tick)

    async def _tick(self) -> None:
        if "tick" not in self.log_:
            self.log_.append("tick")

    async def on_node_up(self, node: NodeInfo) -> None:
        self.log_.append(f"up {node.id}")

    async def on_node_down(self, node: NodeInfo) -> None:
        self.log_.append(f"down {node.id}")

    async def on_stop(self) -> None:
        self.log_.append("stop")


async def test_lifecycle_hooks_and_timer() -> None:
    """start, node up/down, a timer tick and stop reach the xApp in order."""
    host = host_for(Events, Stats())
    node = NodeInfo(NodeId(Plmn("001", "01"), 5), "v", "1", {})
    task = asyncio.create_task(host.run())
    await wait_for(lambda: host.state is XAppState.RUNNING)
    host.node_up(node)
    host.node_down(node)
    await wait_for(lambda: "tick" in Events.log_ and "down gnb-001-01-5" in Events.log_)
    host.request_stop()
    await asyncio.wait_for(task, 5)
    assert Events.log_[0] == "start" and Events.log_[-1] == "stop"
    assert Events.log_.index("up gnb-001-01-5") < Events.log_.index("down gnb-001-01-5")


async def test_stop_interrupts_the_restart_back_off() -> None:
    """A stop requested while the xApp waits a long back-off ends it at once."""
    host = XAppHost(
        BadStart,
        BadStart.Config(),
        index=1,
        services=Services(),
        sensor=Stats(),
        clock=RealClock(),
        restart=RestartPolicy(min_s=3600.0, max_s=3600.0),
    )
    task = asyncio.create_task(host.run())
    await wait_for(lambda: host.state is XAppState.RESTARTING)
    host.request_stop()
    await asyncio.wait_for(task, 5)
    assert host.state is XAppState.STOPPED


class Sleeper(XApp):
    """Blocks the loop with time.sleep on a positive report; a timer that awaits."""

    name = "sleeper"
    reports = [Report("m")]
    handled: list[float]
    ticks: int

    async def on_start(self) -> None:
        self.handled = []
        self.ticks = 0
        self.every(0.01, self.slow_timer)

    async def slow_timer(self) -> None:
        if self.ticks == 0:
            await asyncio.sleep(0.15)  # awaits: the loop stays free
        self.ticks += 1

    async def on_report(self, report: KpmReport) -> None:
        value = float(report["m"][0])
        if value > 0:
            time.sleep(0.15)  # noqa: ASYNC251  # the point: a handler that blocks the loop
        self.handled.append(value)


def _overruns(sensor: PrometheusSensor) -> float:
    text = generate_latest(sensor.registry).decode()
    match = re.search(r'^ric_xapp_handler_overruns_total\{xapp="sleeper"\} (\S+)$', text, re.M)
    assert match is not None
    return float(match.group(1))


async def test_a_handler_over_its_budget_is_counted_and_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An on_report that blocks 150 ms (budget 100 ms) is counted in
    ric_xapp_handler_overruns_total and named in one warning that says it blocked the loop; a
    timer that awaits 150 ms is an overrun too, named as awaiting; fast calls are not."""
    sensor = PrometheusSensor(process=False)
    dog = LoopWatchdog(LoopSettings(), sensor)
    dog.start()
    host = host_for(Sleeper, sensor, handler_budget_s=0.1)
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(host.run())
            await wait_for(lambda: host.state is XAppState.RUNNING)
            app = host.instance
            assert isinstance(app, Sleeper)
            await wait_for(lambda: app.ticks >= 3, what="the slow timer and fast ones")
            host.deliver(report(0))
            host.deliver(report(1))
            host.deliver(report(0))
            await wait_for(lambda: len(app.handled) == 3, what="three reports")
            host.request_stop()
    finally:
        dog.stop()
    assert host.overruns == 2 and _overruns(sensor) == 2.0
    lines = [r.getMessage() for r in caplog.records if r.name == "ric.host"]
    [blocking] = [line for line in lines if "on_report" in line]
    assert blocking.startswith("xApp sleeper: on_report took ")
    assert "over its 100 ms budget" in blocking and "it blocked the event loop" in blocking
    [awaiting] = [line for line in lines if "timer" in line]
    assert "timer Sleeper.slow_timer took" in awaiting and "mostly awaited" in awaiting


def test_xapp_states_are_their_own_text() -> None:
    """Each XAppState is the text sensors, the state metric and the MQTT topic carry."""
    assert [str(state) for state in XAppState] == [state.value for state in XAppState]
    assert isinstance(XAppState.RUNNING, str) and XAppState("running") is XAppState.RUNNING
    assert json.dumps(XAppState.FAILED) == '"failed"'


async def test_sensors_hear_the_states_in_order() -> None:
    """A crashing xApp's sensor hears each state as an XAppState: starting, stopping (its
    instance is stopped), restarting, and at the restart cap failed."""
    states: list[str] = []

    class States(Sensor):
        def xapp_state(self, xapp: str, state: str) -> None:
            states.append(state)

    host = XAppHost(
        BadStart,
        BadStart.Config(),
        index=1,
        services=Services(),
        sensor=States(),
        clock=RealClock(),
        restart=RestartPolicy(min_s=0.001, max_s=0.001, max_restarts=1),
    )
    await asyncio.wait_for(host.run(), 5)
    assert states == ["starting", "stopping", "restarting", "starting", "stopping", "failed"]
    assert all(isinstance(state, XAppState) for state in states)
