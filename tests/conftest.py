"""Shared fixtures: a runtime on a free loopback port, and xApps that record what they see."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ric import KpmReport, NodeInfo, Report, XApp
from ric.actions import CellState, GenericControl, Handover, SlicePrbQuota
from ric.config import load_config
from ric.plugins import Plugin
from ric.runtime import Runtime
from ric.sensors import Stats
from tests.sdl.redis_server import RedisServer


class Recorder(XApp):
    """Records reports and node events; used by many tests."""

    name = "recorder"
    reports = [Report("RRU.PrbUsedDl", "RRU.PrbAvailDl", period_ms=100, per="cell")]
    controls = [Handover, SlicePrbQuota, CellState, GenericControl]

    seen: list[KpmReport]
    events: list[tuple[str, str]]

    async def on_start(self) -> None:
        self.seen = []
        self.events = []

    async def on_node_up(self, node: NodeInfo) -> None:
        self.events.append(("up", str(node.id)))

    async def on_node_down(self, node: NodeInfo) -> None:
        self.events.append(("down", str(node.id)))

    async def on_report(self, report: KpmReport) -> None:
        self.seen.append(report)


async def wait_for(
    predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition"
) -> None:
    """Poll ``predicate`` on the loop until it is true; fail the test after ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


RuntimeFactory = Callable[..., Any]


@pytest.fixture(autouse=True)
def _keep_root_logging() -> Iterator[None]:
    """Tests that run the CLI in-process call setup_logging; put the root logger back after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


@pytest.fixture
async def make_runtime() -> AsyncIterator[RuntimeFactory]:
    """Start runtimes on free loopback ports (E2 port 0); all are shut down after the test."""
    started: list[Runtime] = []

    async def make(*classes: type[XApp], **overrides: Any) -> tuple[Runtime, Stats]:
        stats = Stats()
        config = load_config(environ={}, overrides={"e2.port": 0, **overrides})
        runtime = Runtime(
            config, [Plugin(c, f"test:{c.__name__}") for c in classes], sensors=[stats]
        )
        await runtime.__aenter__()
        started.append(runtime)
        return runtime, stats

    yield make
    for runtime in reversed(started):
        await runtime.__aexit__(None, None, None)


# -- Redis for the replica tests (test_cluster*, test_conflicts_shared) -----------------------


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the module's tests (each uses its own key prefix)."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, which the test may kill and start again."""
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test's own."""
    return f"t{uuid.uuid4().hex[:12]}"
