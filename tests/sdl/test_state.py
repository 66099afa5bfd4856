"""The runtime's own state in the SDL: nodes and subscriptions survive a restart on SQLite and
Redis, are served by the status API, and the subscriptions are re-armed when the node is back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiohttp.test_utils import TestClient, TestServer
from slicesla import SliceSla

from ric._proto.e2.v1 import e2_pb2
from ric.cli import render_status
from ric.config import RuntimeConfig, load_config
from ric.e2.memory import MemoryLink
from ric.http import build_app, openapi_document
from ric.ids import NodeId, NodeType, Plmn
from ric.model import NodeInfo
from ric.plugins import Plugin
from ric.runtime import Runtime
from ric.sdl import Namespace, SdlError
from ric.sdl.memory import MemoryBackend
from ric.sdl.state import NODES, RETRY_MIN_S, SUBSCRIPTIONS, RuntimeState
from ric.testing import ManualClock
from tests.conftest import Recorder, wait_for
from tests.e2node import indication, setup_request
from tests.sdl.redis_server import RedisServer

NODE = "gnb-001-01-1"


def validate(body: Any, path: str) -> None:
    """Check ``body`` against the OpenAPI schema of GET ``path`` answering 200."""
    doc = openapi_document()
    schema = doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
    jsonschema.validate(body, {**schema["schema"], "components": doc["components"]})


@pytest.fixture(params=["sqlite", "redis"])
def store_config(request: pytest.FixtureRequest, tmp_path: Path, key_prefix: str) -> RuntimeConfig:
    """A runtime config whose [sdl] names a SQLite file, or a real Redis server."""
    sdl: dict[str, Any] = {"sdl.backend": request.param}
    if request.param == "sqlite":
        sdl["sdl.path"] = str(tmp_path / "data" / "sdl.sqlite3")
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        sdl |= {"sdl.url": server.url, "sdl.key_prefix": key_prefix}
    return load_config(environ={}, overrides={"e2.port": 0, **sdl})


@pytest.fixture
async def client_of() -> AsyncIterator[Any]:
    """Opens an HTTP test client on a runtime's status API; all are closed after the test."""
    clients: list[TestClient[Any, Any]] = []

    async def make(runtime: Runtime) -> TestClient[Any, Any]:
        client: TestClient[Any, Any] = TestClient(TestServer(build_app(runtime)))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def get(client: TestClient[Any, Any], path: str) -> Any:
    """GET ``path``: the JSON body of a 200 answer."""
    response = await client.get(path)
    assert response.status == 200, await response.text()
    return await response.json()


def accept(link: MemoryLink) -> e2_pb2.SubscriptionRequest:
    """Admit the one subscription request the RIC sent on ``link``."""
    [request] = [m.subscription_request for m in link.take() if m.HasField("subscription_request")]
    link.send(
        e2_pb2.NodeMessage(
            subscription_response=e2_pb2.SubscriptionResponse(
                request_id=request.request_id, admitted_action_ids=[1]
            )
        )
    )
    return request


def runtime_of(config: RuntimeConfig) -> Runtime:
    """A runtime with the Recorder xApp and no E2 port (nodes attach with a MemoryLink)."""
    return Runtime(config, [Plugin(Recorder, "test")], listen=False)


async def test_nodes_and_subscriptions_survive_a_restart(
    store_config: RuntimeConfig, client_of: Any
) -> None:
    """A node connects and the xApp subscribes; after a restart on the same store the API shows
    the node as known but disconnected and the subscription as restored; when the node is back
    the subscription is requested again and active."""
    async with runtime_of(store_config) as first:
        await wait_for(lambda: first.host("recorder").instance is not None)
        link = MemoryLink(first.endpoint)
        assert link.setup(setup_request()).HasField("setup_response")
        old = accept(link)
        await wait_for(lambda: first.subscriptions.snapshot()[0].state.value == "active")
        await wait_for(
            lambda: first.state.subscriptions.get(NODE, [{}])[0].get("state") == "active",
            what="the active subscription recorded",
        )
        assert first.sdl.kind == store_config.sdl.backend
    async with runtime_of(store_config) as second:
        api = await client_of(second)
        nodes = await get(api, "/api/v1/nodes")
        validate(nodes, "/api/v1/nodes")
        [node] = nodes["nodes"]
        assert (node["id"], node["connected"], node["vendor"]) == (NODE, False, "testco")
        assert "peer" not in node and node["last_seen"] >= node["first_seen"]
        assert [c["id"] for c in node["cells"]] == ["001-01-11", "001-01-12"]
        assert (await get(api, f"/api/v1/nodes/{NODE}"))["connected"] is False
        subs = await get(api, "/api/v1/subscriptions")
        validate(subs, "/api/v1/subscriptions")
        [restored] = subs["subscriptions"]
        assert restored["state"] == "restored" and restored["node"] == NODE
        assert restored["xapps"] == ["recorder"]
        assert restored["request_id"] == [old.request_id.requestor, old.request_id.instance]
        assert restored["metrics"] == list(old.actions[0].kpm.metric_names)
        assert restored["xapp_period_ms"] == {"recorder": 100}

        await wait_for(lambda: second.host("recorder").instance is not None)
        link = MemoryLink(second.endpoint)
        assert link.setup(setup_request()).HasField("setup_response")
        again = accept(link)
        assert list(again.actions[0].kpm.metric_names) == restored["metrics"]
        await wait_for(lambda: second.subscriptions.snapshot()[0].state.value == "active")
        subs = await get(api, "/api/v1/subscriptions")
        assert [s["state"] for s in subs["subscriptions"]] == ["active"]
        [node] = (await get(api, "/api/v1/nodes"))["nodes"]
        assert node["connected"] is True and node["first_seen"] <= node["connected_since"]
        link.close()
        [node] = (await get(api, "/api/v1/nodes"))["nodes"]
        assert node["connected"] is False


async def test_records_are_written_on_changes_only(client_of: Any) -> None:
    """ric.nodes and ric.subscriptions follow node up and down and subscription changes; a
    node that goes keeps its subscription record, and a shutdown does not erase it."""
    sdl = MemoryBackend()
    config = load_config(environ={}, overrides={"e2.port": 0})
    nodes, subs = Namespace(sdl, NODES), Namespace(sdl, SUBSCRIPTIONS)
    async with Runtime(config, [Plugin(Recorder, "test")], listen=False, sdl=sdl) as runtime:
        await wait_for(lambda: runtime.host("recorder").instance is not None)
        writes: list[str] = []
        nodes.watch(lambda change: writes.append(f"node {change.op}"))
        subs.watch(lambda change: writes.append(f"subs {change.op}"))
        link = MemoryLink(runtime.endpoint)
        link.setup(setup_request())
        request = accept(link)
        await wait_for(lambda: "node set" in writes and "subs set" in writes, what="records")
        await runtime.state.flush()
        record = await nodes.get(NODE)
        assert record["connected"] is True and record["ric_id"] == "ric"
        [sub] = await subs.get(NODE)
        assert (sub["state"], sub["xapps"], sub["period_ms"]) == ("active", ["recorder"], 100)
        written = len(writes)
        metrics = list(request.actions[0].kpm.metric_names)
        for seq in range(5):
            batch = [indication(request.request_id, metrics, ["001-01-11"], seq=seq)]
            link.send(e2_pb2.NodeMessage(indications=e2_pb2.IndicationBatch(indications=batch)))
        recorder = runtime.host("recorder").instance
        assert isinstance(recorder, Recorder)
        await wait_for(lambda: len(recorder.seen) == 5, what="the reports")
        assert len(writes) == written  # nothing is written per indication
        link.close()
        await wait_for(lambda: writes[-1] == "node set", what="the node-down record")
        assert (await nodes.get(NODE))["connected"] is False
        assert (await subs.get(NODE))[0]["state"] == "active"
    assert (await subs.get(NODE))[0]["xapps"] == ["recorder"]


class FlakyBackend(MemoryBackend):
    """An in-memory store whose first ``failures`` writes fail, like a store that is away."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def set(self, namespace: str, items: Mapping[str, bytes]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise SdlError("store away")
        await super().set(namespace, items)


def node_info(node_id: int = 1) -> NodeInfo:
    """A small NodeInfo for gNB ``node_id`` of the test PLMN."""
    return NodeInfo(NodeId(Plmn("001", "01"), node_id, NodeType.GNB), "testco", "1.0", {})


async def test_records_are_retried_until_the_store_takes_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When writes fail, the latest value of each record is retried (with a warning) until the
    store takes it; at close, what still cannot be written is logged, not waited for."""
    sdl = FlakyBackend(failures=2)
    state = RuntimeState(sdl, "ric", lambda: 1_700_000_000.0)
    async with asyncio.TaskGroup() as tg:
        state.start(tg)
        state.node_up(node_info())
        state.node_down(node_info())
        await wait_for(lambda: sdl.failures == 0 and not state._pending, what="the retries")
        await state.flush()
        record = await Namespace(sdl, NODES).get(NODE)
        assert record["connected"] is False and record["first_seen"] == 1_700_000_000.0
        assert "retrying" in caplog.text
        sdl.failures = 5
        state.node_up(node_info())
        with caplog.at_level(logging.ERROR, logger="ric.sdl.state"):
            await state.close()
        assert "not written" in caplog.text
    assert (await Namespace(sdl, NODES).get(NODE))["connected"] is False


async def test_write_retries_wait_on_the_clock_doubling_and_start_short_after_a_success() -> None:
    """Failed writes are retried after waits on the given clock that double from RETRY_MIN_S
    (0.1, 0.2, 0.4 s), and the first wait after a successful write is short again."""
    clock = ManualClock()
    sdl = FlakyBackend(failures=3)
    state = RuntimeState(sdl, "ric", clock.time, clock=clock)
    waits: list[float] = []

    async def next_wait() -> None:
        start = clock.monotonic()
        await wait_for(lambda: clock.next_due() is not None, what="a retry wait")
        due = clock.next_due()
        assert due is not None
        waits.append(round(due - start, 6))
        await clock.advance_to(due)

    async with asyncio.TaskGroup() as tg:
        state.start(tg)
        state.node_up(node_info())
        for _ in range(3):
            await next_wait()
        await wait_for(lambda: not state._pending, what="the write")
        sdl.failures = 1
        state.node_down(node_info())
        await next_wait()
        await wait_for(lambda: not state._pending, what="the second write")
        await state.close()
    assert waits == [RETRY_MIN_S, 0.2, 0.4, RETRY_MIN_S]
    assert (await Namespace(sdl, NODES).get(NODE))["connected"] is False


def test_status_table_shows_known_nodes_as_down() -> None:
    """ric status prints a known but disconnected node with no rate and 'down'."""
    known = {
        "id": NODE,
        "vendor": "testco",
        "software_version": "1.0",
        "connected": False,
        "cells": [],
        "ran_functions": [{"name": "ORAN-E2SM-KPM"}],
    }
    text = render_status("http://x", {"ready": True}, {"nodes": [known]}, {"xapps": []})
    [row] = [line for line in text.splitlines() if line.startswith(NODE)]
    assert row.split()[-2:] == ["-", "down"]


async def test_runtimes_sharing_a_store_restore_only_their_own_nodes() -> None:
    """A runtime with another ric_id on the same store does not take the first one's nodes and
    subscriptions as its own; one with the same ric_id does."""
    sdl = MemoryBackend()

    def runtime(ric_id: str) -> Runtime:
        config = load_config(environ={}, overrides={"e2.port": 0, "ric_id": ric_id})
        return Runtime(config, [Plugin(Recorder, "test")], listen=False, sdl=sdl)

    async with runtime("ric-a") as first:
        await wait_for(lambda: first.host("recorder").instance is not None)
        link = MemoryLink(first.endpoint)
        link.setup(setup_request())
        accept(link)
        await wait_for(lambda: first.state.subscriptions.get(NODE), what="the record")
    async with runtime("ric-b") as other:
        assert other.state.nodes == {} and other.state.restored == {}
    async with runtime("ric-a") as again:
        assert set(again.state.nodes) == {NODE} and set(again.state.restored) == {NODE}


async def test_a1_policies_survive_a_restart_and_reach_the_slice_sla_xapp(
    store_config: RuntimeConfig,
) -> None:
    """A slice-sla policy put through A1 in one runtime is in the next one on the same SQLite
    file or Redis server, delivered to slicesla as it starts and enforced (its targets in
    force)."""
    policy = {"targets": {"2-000002": {"max_delay_ms": 5.0}}}
    async with Runtime(store_config, [Plugin(SliceSla, "slicesla")], listen=False) as first:
        await first.a1.put_policy("slice-sla", "urllc", policy)
    async with Runtime(store_config, [Plugin(SliceSla, "slicesla")], listen=False) as second:
        host = second.host("slicesla")
        await wait_for(
            lambda: isinstance(host.instance, SliceSla) and "2-000002" in host.instance.targets,
            what="the stored policy delivered to slicesla",
        )
        assert await second.a1.get_policy("slice-sla", "urllc") == policy
        for _ in range(500):
            status = await second.a1.status("slice-sla", "urllc")
            if status["enforceStatus"] == "ENFORCED":
                break
            await asyncio.sleep(0.01)
        assert status["enforceStatus"] == "ENFORCED", status
