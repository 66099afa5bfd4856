"""The thread isolation mode: an xApp on its own loop in its own thread, behind a real runtime
(E2 over gRPC on loopback, A1, the SDL), with restarts, controls, policies, the stall check
and the bounded stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest
from prometheus_client import generate_latest

from ric import (
    ControlOutcome,
    Handover,
    KpmReport,
    OutcomeKind,
    PolicyEvent,
    PolicyStatus,
    Report,
    XApp,
)
from ric._proto.e2.v1 import e2_pb2
from ric.cli import render_status
from ric.config import load_config
from ric.eventloop import kind, loop_factory
from ric.host import XAppHost, XAppState
from ric.http import xapp_json
from ric.metrics import PrometheusSensor
from ric.plugins import Plugin
from ric.runtime import Runtime
from ric.sdl import Change
from ric.sdl.memory import MemoryBackend
from ric.sensors import Stats
from ric.testing import ManualClock
from ric.threadhost import ThreadHost
from ric.types import Sensor
from tests.conftest import wait_for
from tests.e2node import ScriptedNode, indication
from tests.test_a1 import SLA
from tests.test_http import response_schema, validate

METRIC = "RRU.PrbUsedDl"


class Threads(Sensor):
    """Records the thread each xApp-related sensor hook was called on."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def xapp_state(self, xapp: str, state: str) -> None:
        self.calls.append((f"state:{state}", threading.current_thread().name))

    def xapp_published(self, xapp: str, topic_suffix: str, payload: bytes) -> None:
        self.calls.append((f"published:{topic_suffix}", threading.current_thread().name))

    def handler_overrun(self, xapp: str, handler: str, seconds: float) -> None:
        self.calls.append((f"overrun:{handler}", threading.current_thread().name))


@contextlib.asynccontextmanager
async def running(
    *classes: type[XApp], sensors: tuple[Sensor, ...] = (), **overrides: Any
) -> AsyncIterator[tuple[Runtime, Stats]]:
    """A runtime on real time with E2 on a free loopback port and quick restarts."""
    stats = Stats()
    config = load_config(
        environ={}, overrides={"e2.port": 0, "xapps.restart_min_s": 0.01, **overrides}
    )
    plugins = [Plugin(c, f"test:{c.__name__}") for c in classes]
    async with Runtime(config, plugins, sensors=[stats, *sensors], sdl=MemoryBackend()) as rt:
        yield rt, stats


async def subscribed(node: ScriptedNode) -> e2_pb2.SubscriptionRequest:
    """Set the node up and admit the one subscription the runtime asks for."""
    await node.setup()
    [request] = await node.accept_subscriptions(1)
    return request


async def report(node: ScriptedNode, request: e2_pb2.SubscriptionRequest, value: float) -> None:
    """Send one cell report of METRIC with ``value``."""
    await node.send(
        e2_pb2.NodeMessage(
            indications=e2_pb2.IndicationBatch(
                indications=[indication(request.request_id, [METRIC], ["001-01-11"], [value])]
            )
        )
    )


# -- which host --------------------------------------------------------------------------------


class Plain(XApp):
    """Does nothing; hosted as configured."""

    name = "plain"


async def test_thread_is_the_default_and_loop_is_chosen_by_name_or_by_a_virtual_clock() -> None:
    """A loaded xApp runs in a ThreadHost unless [xapps.isolation] says loop; under a virtual
    clock every xApp runs in loop mode."""
    plugins = [Plugin(Plain, "test:Plain")]
    default = Runtime(load_config(environ={}), plugins, listen=False)
    assert type(default.host("plain")) is ThreadHost and default.host("plain").mode == "thread"
    config = load_config(environ={}, overrides={"xapps.isolation": {"plain": "loop"}})
    looped = Runtime(config, plugins, listen=False)
    assert type(looped.host("plain")) is XAppHost and looped.host("plain").mode == "loop"
    virtual = Runtime(load_config(environ={}), plugins, listen=False, clock=ManualClock())
    assert type(virtual.host("plain")) is XAppHost


# -- reports, restarts, sensors ----------------------------------------------------------------


class Crashy(XApp):
    """Raises on a negative value; records the thread each report was handled on."""

    name = "crashy"
    reports = [Report(METRIC, period_ms=100)]
    starts: ClassVar[int] = 0
    handled: ClassVar[list[float]] = []
    threads: ClassVar[set[str]] = set()

    async def on_start(self) -> None:
        type(self).starts += 1

    async def on_report(self, report: KpmReport) -> None:
        type(self).threads.add(threading.current_thread().name)
        value = float(report[METRIC][0])
        if value < 0:
            raise RuntimeError("negative value")
        type(self).handled.append(value)
        self.publish("seen", {"value": value})


async def test_reports_reach_the_thread_and_an_exception_restarts_the_xapp() -> None:
    """Reports are handled in the xApp's own thread; a handler exception is counted and the
    xApp restarted there (a fresh instance), and later reports go on; sensors hear states and
    publishes on the runtime's thread."""
    threads = Threads()
    async with running(Crashy, sensors=(threads,)) as (rt, stats):
        host = rt.host("crashy")
        async with ScriptedNode(f"127.0.0.1:{rt.port}") as node:
            request = await subscribed(node)
            for value in (1.0, -1.0):
                await report(node, request, value)
            await wait_for(lambda: host.restarts == 1, what="a restart")
            await wait_for(lambda: host.state is XAppState.RUNNING, what="running again")
            await report(node, request, 2.0)
            await wait_for(lambda: Crashy.handled == [1.0, 2.0], what="both good reports")
    assert stats.crashes["crashy"] == 1 and Crashy.starts == 2
    assert Crashy.threads == {"xapp-crashy"}
    assert host.state is XAppState.STOPPED and host.delivered == 3
    main = threading.current_thread().name
    assert {thread for _, thread in threads.calls} == {main}
    states = [what for what, _ in threads.calls if what.startswith("state:")]
    assert states[:4] == ["state:starting", "state:running", "state:stopping", "state:restarting"]
    assert states[-2:] == ["state:stopping", "state:stopped"]
    assert [w for w, _ in threads.calls if w.startswith("published")] == ["published:seen"] * 2


class Finished(Sensor):
    """Records each handler_finished call and the thread it came on."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def handler_finished(self, xapp: str, seconds: float) -> None:
        self.calls.append(threading.current_thread().name)


class Counting(XApp):
    """Counts its reports and does nothing else (so nothing else wakes the runtime loop)."""

    name = "counting"
    reports = [Report(METRIC, period_ms=100)]
    handled: ClassVar[int] = 0

    async def on_report(self, report: KpmReport) -> None:
        type(self).handled += 1


async def test_each_reports_metrics_reach_the_runtime_without_a_wake_up_of_their_own() -> None:
    """handler_finished, called in the xApp's thread once per report, is not a wake-up of the
    runtime loop: it waits for the next hand-off or the host's periodic check, and arrives
    there, on the runtime's thread, once per report."""
    finished = Finished()
    async with (
        running(Counting, sensors=(finished,)) as (rt, _),
        ScriptedNode(f"127.0.0.1:{rt.port}") as node,
    ):
        request = await subscribed(node)
        for value in (1.0, 2.0, 3.0):
            await report(node, request, value)
        await wait_for(lambda: Counting.handled == 3, what="three reports handled")
        await wait_for(lambda: len(finished.calls) == 3, what="three handler_finished")
    assert set(finished.calls) == {threading.current_thread().name}


class LoopKind(XApp):
    """Notes which kind of event loop it starts on."""

    name = "loopkind"
    seen: ClassVar[list[str]] = []

    async def on_start(self) -> None:
        type(self).seen.append(kind(asyncio.get_running_loop()))


def test_a_thread_xapp_runs_on_its_runtimes_kind_of_loop() -> None:
    """A thread-mode xApp's own loop is uvloop when the runtime runs on uvloop (its default)."""

    async def main() -> None:
        async with running(LoopKind) as (rt, _):
            assert rt.host("loopkind").mode == "thread"
            await wait_for(lambda: bool(LoopKind.seen), what="the xApp's start")

    LoopKind.seen = []
    with asyncio.Runner(loop_factory=loop_factory("uvloop")) as runner:
        runner.run(main())
    assert LoopKind.seen == ["uvloop"]


# -- controls, policies, the SDL ---------------------------------------------------------------


class Steerer(XApp):
    """Hands over UE 5 on every report; enforces slice SLAs; keeps state in the SDL."""

    name = "steerer"
    reports = [Report(METRIC, period_ms=100)]
    controls = [Handover]
    policy_types: ClassVar = [SLA]
    outcomes: ClassVar[list[ControlOutcome]] = []
    policies: ClassVar[list[tuple[str, str]]] = []
    changes: ClassVar[list[tuple[str, str]]] = []
    stored: ClassVar[list[Any]] = []

    async def on_start(self) -> None:
        self.sdl.watch(self._changed)

    def _changed(self, change: Change) -> None:
        type(self).changes.append((change.key, threading.current_thread().name))

    async def on_report(self, report: KpmReport) -> None:
        await self.sdl.set("last", float(report[METRIC][0]))
        type(self).stored.append(await self.sdl.get("last"))
        action = Handover(ue="5", cell_id="001-01-11", target_cell="001-01-12")
        type(self).outcomes.append(await self.control(action, timeout=2.0))

    async def on_policy(self, event: PolicyEvent) -> PolicyStatus | None:
        type(self).policies.append((event.kind, threading.current_thread().name))
        if event.kind != "deleted":
            await self.policy_status(SLA.id, event.policy_id, PolicyStatus(True, "later too"))
        return PolicyStatus(True)


async def test_controls_policies_and_the_sdl_work_from_the_thread() -> None:
    """From its thread the xApp sends a control and gets its outcome, stores and reads SDL
    values (its watch called on its own thread), and gets A1 policies whose statuses it
    reports; all of them run on the runtime's loop."""
    async with running(Steerer) as (rt, _):
        await rt.a1.put_policy(SLA.id, "gold", {"sst": 1, "max_delay_ms": 10.0})
        await wait_for(lambda: len(Steerer.policies) == 1, what="the policy")
        status = await rt.a1.status_detail(SLA.id, "gold")
        for _ in range(200):
            if status["enforceStatus"] == "ENFORCED":
                break
            await asyncio.sleep(0.01)
            status = await rt.a1.status_detail(SLA.id, "gold")
        assert status["enforceStatus"] == "ENFORCED"
        async with ScriptedNode(f"127.0.0.1:{rt.port}") as node:
            request = await subscribed(node)
            await report(node, request, 7.0)
            control = await node.recv_kind("control_request")
            await node.send(
                e2_pb2.NodeMessage(
                    control_acknowledge=e2_pb2.ControlAcknowledge(request_id=control.request_id)
                )
            )
            await wait_for(lambda: len(Steerer.outcomes) == 1, what="the outcome")
        assert await rt.sdl.get("xapp.steerer", ["last"]) == {"last": b"7.0"}
        await rt.a1.delete_policy(SLA.id, "gold")
        await wait_for(lambda: len(Steerer.policies) == 2, what="the deletion")
    assert Steerer.outcomes[0].kind is OutcomeKind.ACKNOWLEDGED
    assert Steerer.stored == [7.0]
    assert Steerer.changes == [("last", "xapp-steerer")]
    assert Steerer.policies == [("created", "xapp-steerer"), ("deleted", "xapp-steerer")]


class Impatient(XApp):
    """Sends a control to a cell no node serves, then one it stops waiting for."""

    name = "impatient"
    reports = [Report(METRIC, period_ms=100)]
    controls = [Handover]
    seen: ClassVar[list[object]] = []

    async def on_report(self, report: KpmReport) -> None:
        lost = Handover(ue="5", cell_id="001-01-99", target_cell="001-01-12")
        type(self).seen.append((await self.control(lost, timeout=2.0)).kind)
        action = Handover(ue="5", cell_id="001-01-11", target_cell="001-01-12")
        try:
            await asyncio.wait_for(self.control(action, timeout=2.0), 0.05)
        except TimeoutError:
            type(self).seen.append("gave up")


async def test_a_control_refused_at_once_or_abandoned_by_its_thread_ends_once() -> None:
    """A thread's control that the runtime refuses at once comes back as its outcome; one
    whose wait the thread cancels still ends once on the runtime, when the node answers."""
    Impatient.seen = []
    async with running(Impatient) as (rt, stats), ScriptedNode(f"127.0.0.1:{rt.port}") as node:
        request = await subscribed(node)
        await report(node, request, 1.0)
        control = await node.recv_kind("control_request")
        await wait_for(lambda: len(Impatient.seen) == 2, what="the xApp giving up")
        assert rt.controls.pending == 1
        await node.send(
            e2_pb2.NodeMessage(
                control_acknowledge=e2_pb2.ControlAcknowledge(request_id=control.request_id)
            )
        )
        await wait_for(lambda: rt.controls.pending == 0, what="the acknowledgement")
    assert Impatient.seen == [OutcomeKind.NOT_CONNECTED, "gave up"]
    assert stats.controls == {
        ("impatient", "handover", "not_connected"): 1,
        ("impatient", "handover", "acknowledged"): 1,
    }


# -- the stall check ---------------------------------------------------------------------------


class Blocker(XApp):
    """Blocks its thread in on_report until the test releases it."""

    name = "blocker"
    reports = [Report(METRIC, period_ms=100)]
    release: ClassVar[threading.Event]
    handled: ClassVar[int] = 0

    async def on_report(self, report: KpmReport) -> None:
        type(self).release.wait(30)  # the point: a blocking call
        type(self).handled += 1


def _lines(caplog: pytest.LogCaptureFixture, needle: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if needle in r.getMessage()]


async def test_a_handler_still_running_past_its_budget_is_named_during_the_stall(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A handler blocked in its thread is named once while it still runs ("has been running
    for ... in its own thread"); when it returns it is counted as an overrun and named as
    having held only its own reports."""
    caplog.set_level(logging.WARNING)
    Blocker.release = threading.Event()
    threads = Threads()
    async with running(Blocker, sensors=(threads,)) as (rt, _):
        host = rt.host("blocker")
        async with ScriptedNode(f"127.0.0.1:{rt.port}") as node:
            request = await subscribed(node)
            await report(node, request, 1.0)
            await wait_for(lambda: _lines(caplog, "has been running for"), what="the warning")
            assert Blocker.handled == 0  # named while it is still blocked
            await asyncio.sleep(0.3)  # several more checks: still one warning for this call
            Blocker.release.set()
            await wait_for(lambda: host.overruns == 1, what="the overrun")
    [during] = _lines(caplog, "has been running for")
    assert during.startswith("xApp blocker: on_report has been running for ")
    assert "in its own thread (over its 100 ms budget" in during
    [after] = _lines(caplog, "over its 100 ms budget ([xapps] handler_budget_ms); it ran")
    assert after.startswith("xApp blocker: on_report took ")
    assert "only its own reports waited" in after
    assert ("overrun:on_report", threading.current_thread().name) in threads.calls


async def test_a_thread_that_does_not_stop_in_time_is_named_and_left_behind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A shutdown does not wait for ever for a thread stuck in a blocking call: after the stop
    wait the xApp is logged by name, counted as stopped, and its daemon thread left; it ends by
    itself once the call returns."""
    Blocker.release = threading.Event()
    Blocker.handled = 0
    async with running(Blocker) as (rt, _):
        host = rt.host("blocker")
        assert isinstance(host, ThreadHost)
        host.stop_wait_s = 0.2
        async with ScriptedNode(f"127.0.0.1:{rt.port}") as node:
            request = await subscribed(node)
            await report(node, request, 1.0)
            await wait_for(lambda: host.overruns == 0 and host.queue_depth == 0, what="taken")
            await wait_for(lambda: _lines(caplog, "has been running for"), what="blocked")
    assert host.state is XAppState.STOPPED
    [left] = _lines(caplog, "did not stop within")
    assert left.startswith("xApp blocker: its thread xapp-blocker did not stop within 0.2 s")
    assert "in on_report for " in left and "left running as a daemon" in left
    thread = host.thread
    assert thread is not None and thread.is_alive()
    Blocker.release.set()
    await asyncio.to_thread(thread.join, 10)
    assert not thread.is_alive() and Blocker.handled == 1
    assert host.state is XAppState.STOPPED  # the late thread no longer speaks for the xApp


async def test_the_xapps_api_and_ric_status_show_each_xapps_mode() -> None:
    """/api/v1/xapps gives each xApp's isolation mode (valid against the OpenAPI document)
    and ``ric status`` shows it in a MODE column."""
    looped = type("Looped", (Plain,), {"name": "looped"})
    config = load_config(environ={}, overrides={"xapps.isolation": {"looped": "loop"}})
    plugins = [Plugin(Plain, "test:Plain"), Plugin(looped, "test:Looped")]
    runtime = Runtime(config, plugins, listen=False)
    body = {"xapps": [xapp_json(h, runtime, []) for h in runtime.hosts]}
    validate(body, response_schema("/api/v1/xapps", 200))
    assert [(x["name"], x["mode"]) for x in body["xapps"]] == [
        ("plain", "thread"),
        ("looped", "loop"),
    ]
    text = render_status("http://ric", {"ready": True, "checks": []}, {"nodes": []}, body)
    header, plain, loop_row = text.splitlines()[-3:]
    assert header.split()[:4] == ["XAPP", "VERSION", "MODE", "STATE"]
    assert plain.split()[:4] == ["plain", "0.0.0", "thread", "loaded"]
    assert loop_row.split()[2] == "loop"


async def test_prometheus_has_each_xapps_mode_in_an_info_metric() -> None:
    """ric_xapp_info{xapp,version,mode} is 1 for each loaded xApp, naming its mode."""
    looped = type("Looped", (Plain,), {"name": "looped"})
    config = load_config(
        environ={}, overrides={"e2.port": 0, "xapps.isolation": {"looped": "loop"}}
    )
    sensor = PrometheusSensor(config.metrics, process=False)
    plugins = [Plugin(Plain, "test:Plain"), Plugin(looped, "test:Looped")]
    async with Runtime(config, plugins, sensors=[sensor], components=[sensor]):
        text = generate_latest(sensor.registry).decode()
    assert 'ric_xapp_info{mode="thread",version="0.0.0",xapp="plain"} 1.0' in text
    assert 'ric_xapp_info{mode="loop",version="0.0.0",xapp="looped"} 1.0' in text


async def test_cancelling_run_stops_the_thread_and_is_not_swallowed() -> None:
    """Cancelling the runtime's task of a ThreadHost asks the thread to stop, waits for it
    and re-raises the cancellation."""
    runtime = Runtime(load_config(environ={}), [Plugin(Plain, "test:Plain")], listen=False)
    host = runtime.host("plain")
    assert isinstance(host, ThreadHost)
    task = asyncio.create_task(host.run())
    await wait_for(lambda: host.state is XAppState.RUNNING, what="running")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    thread = host.thread
    assert thread is not None
    await asyncio.to_thread(thread.join, 5)  # it settled run() as its last step
    assert not thread.is_alive() and host.state is XAppState.STOPPED
