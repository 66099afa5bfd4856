"""The loop watchdog: it measures the loop's lag and stalls, names what held the loop while it
happens, runs with the runtime on real time only, and keeps E2 loss detection from blaming a
node for the RIC's own stall (real gRPC, a node in another thread)."""

from __future__ import annotations

import asyncio
import logging
import queue
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import generate_latest

from ric._proto.e2.v1 import e2_pb2, e2_pb2_grpc
from ric.config import LoopSettings, load_config
from ric.http import build_app
from ric.metrics import PrometheusSensor
from ric.runtime import Runtime
from ric.testing import ManualClock
from ric.watchdog import ACTIVITY, LoopWatchdog, activity, current, stalled_since
from tests.conftest import RuntimeFactory, wait_for
from tests.e2node import ScriptedNode, setup_request


def hold_the_loop(seconds: float) -> None:
    """Block the event loop thread, as a handler doing blocking work would."""
    time.sleep(seconds)


def _sample(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match is not None, f"{name} is not exported"
    return float(match.group(1))


@pytest.fixture
def sensor() -> PrometheusSensor:
    return PrometheusSensor(process=False)


@pytest.fixture
async def dog(sensor: PrometheusSensor) -> AsyncIterator[LoopWatchdog]:
    watchdog = LoopWatchdog(LoopSettings(tick_ms=10, stall_warning_ms=100), sensor)
    watchdog.start()
    try:
        yield watchdog
    finally:
        watchdog.stop()


async def test_a_300_ms_block_is_measured_and_named(
    dog: LoopWatchdog, sensor: PrometheusSensor, caplog: pytest.LogCaptureFixture
) -> None:
    """A 300 ms block shows in the lag histogram and the longest stall, and is logged once
    while it lasts naming the activity and the blocking function, then once when it ends."""
    caplog.set_level(logging.INFO, logger="ric.watchdog")
    await asyncio.sleep(0.05)  # a few healthy beats first
    with activity("test: a deliberate block"):
        hold_the_loop(0.3)
    await wait_for(lambda: dog.stalls == 1, what="the beat after the block")
    text = generate_latest(sensor.registry).decode()
    assert _sample(text, "ric_event_loop_longest_stall_seconds") >= 0.25
    assert _sample(text, "ric_event_loop_recent_longest_stall_seconds") >= 0.25
    count = _sample(text, "ric_event_loop_lag_seconds_count")
    under = _sample(text, 'ric_event_loop_lag_seconds_bucket{le="0.25"}')
    assert count > under  # the one late beat, over 250 ms
    assert _sample(text, "ric_event_loop_stalls_total") == 1.0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "event loop stalled for" in warnings[0]
    assert "test: a deliberate block" in warnings[0]
    assert "hold_the_loop (tests/test_watchdog.py" in warnings[0]
    ended = [r.getMessage() for r in caplog.records if "stall over" in r.getMessage()]
    assert len(ended) == 1 and "hold_the_loop" in ended[0]


async def test_a_healthy_loop_has_no_stall(dog: LoopWatchdog, sensor: PrometheusSensor) -> None:
    """Beats keep coming on a loop that only awaits; none counts as a stall."""
    await wait_for(lambda: dog.beats >= 10, what="ten beats")
    assert dog.stalls == 0
    assert dog.stalled_since(0.0) < 0.1


async def test_stalled_since_counts_stalls_after_the_given_time_and_ongoing_ones(
    dog: LoopWatchdog,
) -> None:
    """stalled_since counts a past stall only from ``since`` on, and a stall still going on
    (asked from inside it, before the beat could run) too."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0.03)
    before = loop.time()
    hold_the_loop(0.2)
    assert stalled_since(before) >= 0.15  # the beat has not run yet: the stall is ongoing
    await wait_for(lambda: dog.longest_s >= 0.15, what="the beat after the block")
    after = loop.time()
    assert stalled_since(before) >= 0.15
    assert stalled_since(after) < 0.1


def test_there_is_no_watchdog_off_the_loop() -> None:
    """Outside a running loop there is no watchdog, and no stall is reported."""
    assert current() is None
    assert stalled_since(0.0) == 0.0


async def test_a_label_of_another_task_is_not_blamed() -> None:
    """The activity label belongs to the task that set it; it is restored when the block ends."""
    before = ACTIVITY.current
    with activity("outer"):
        assert ACTIVITY.current[1] == "outer"
        assert ACTIVITY.current[0] is asyncio.current_task()
    assert ACTIVITY.current == before


async def test_the_runtime_runs_the_watchdog_on_real_time_only() -> None:
    """A runtime on real time starts the watchdog and exports its series; one on a virtual
    clock (the test harness) starts none, and [loop] watchdog = false turns it off."""
    config = load_config(environ={}, overrides={"e2.port": 0, "http.enabled": False})
    sensor = PrometheusSensor(config.metrics, process=False)
    async with Runtime(config, sensors=[sensor], components=[sensor]) as runtime:
        assert runtime.watchdog is not None and current() is runtime.watchdog
        await wait_for(lambda: sensor.loop_lag_seconds.counts != [0] * 15, what="a beat")
        text = generate_latest(sensor.registry).decode()
    assert current() is None  # stopped with the runtime
    assert "ric_event_loop_lag_seconds_bucket" in text
    assert "ric_event_loop_longest_stall_seconds " in text
    async with Runtime(config, clock=ManualClock(), listen=False) as virtual:
        assert virtual.watchdog is None and current() is None
    off = load_config(environ={}, overrides={"e2.port": 0, "loop.watchdog": False})
    async with Runtime(off) as plain:
        assert plain.watchdog is None


# -- loss detection --------------------------------------------------------------------------


class ThreadNode(threading.Thread):
    """An E2 node on gRPC's synchronous client, in its own thread: it keeps sending
    keep-alives every 50 ms while the runtime's loop is blocked."""

    def __init__(self, target: str, node_id: int, cells: tuple[int, ...]) -> None:
        super().__init__(name=f"test-node-{node_id}", daemon=True)
        self.target = target
        self.node_id = node_id
        self.cells = cells
        self.set_up = threading.Event()
        self.ended = threading.Event()
        self.stop_sending = threading.Event()
        self.echoes: queue.SimpleQueue[int] = queue.SimpleQueue()

    def _requests(self) -> Iterator[e2_pb2.NodeMessage]:
        yield setup_request(node_id=self.node_id, cells=self.cells, keep_alive_ms=200)
        seq = 0
        while not self.stop_sending.wait(0.05):
            seq += 1
            yield e2_pb2.NodeMessage(keep_alive=e2_pb2.KeepAlive(sequence=seq))

    def run(self) -> None:
        try:
            with grpc.insecure_channel(self.target) as channel:
                stub = e2_pb2_grpc.E2TerminationStub(channel)
                for msg in stub.Connect(self._requests()):
                    kind = msg.WhichOneof("message")
                    if kind == "setup_response":
                        self.set_up.set()
                    elif kind == "keep_alive":
                        self.echoes.put(msg.keep_alive.sequence)
        except grpc.RpcError:
            pass
        finally:
            self.ended.set()


async def test_a_stalled_loop_does_not_drop_a_node_that_kept_sending(
    make_runtime: RuntimeFactory,
) -> None:
    """The loop blocked for 2 s (over three 200 ms keep-alive intervals) does not drop a node
    that kept sending keep-alives meanwhile; a node that really went silent is still declared
    lost after three of its intervals of time the loop was free."""
    runtime, stats = await make_runtime()
    target = f"127.0.0.1:{runtime.port}"
    keeper = ThreadNode(target, node_id=1, cells=(11,))
    keeper.start()
    try:
        await wait_for(keeper.set_up.is_set, what="the keeping node set up")
        async with ScriptedNode(target) as silent:
            await silent.setup(node_id=2, cells=(21,), keep_alive_ms=1000)
            await wait_for(lambda: len(runtime.nodes()) == 2, what="both nodes up")
            hold_the_loop(2.0)  # keeper: 0.6 s of silence allowed; silent: 3 s
            assert await silent.ended(timeout=10)
            await wait_for(lambda: "gnb-001-01-2" not in runtime.nodes(), what="silent lost")
            # The silent node was lost after >= 3 s of free loop time, so the keeper was
            # judged over many of its own 0.6 s windows after the block too.
            assert "gnb-001-01-1" in runtime.nodes()
            assert not keeper.ended.is_set()
            assert stats.nodes_connected == 1
    finally:
        keeper.stop_sending.set()
        await asyncio.to_thread(keeper.join, 10)
    assert not keeper.is_alive()


async def test_an_http_request_is_labelled_for_the_watchdog() -> None:
    """While the HTTP server runs a request, the activity label names its method and path
    (so a stall during it is logged with its route); after it, the label is restored."""
    routes = web.RouteTableDef()

    @routes.get("/test/activity")
    async def label(request: web.Request) -> web.Response:
        task, text = ACTIVITY.current
        assert task is asyncio.current_task()
        return web.Response(text=text)

    config = load_config(environ={}, overrides={"e2.port": 0})
    before = ACTIVITY.current
    async with Runtime(config, listen=False) as runtime:
        app = build_app(runtime, extra=[routes])
        async with TestClient(TestServer(app)) as client:
            response = await client.get("/test/activity")
            assert response.status == 200
            assert await response.text() == "HTTP GET /test/activity"
    assert ACTIVITY.current == before
