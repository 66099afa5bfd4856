"""Replicas of one RIC on a real redis-server: membership, node leases, terms, fencing and
what a replica does when it loses Redis (``ric.cluster``)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from ric import Handover, XApp
from ric._proto.e2.v1 import e2_pb2
from ric.actions import OutcomeKind
from ric.cli import render_status
from ric.config import RuntimeConfig, load_config
from ric.errors import ConfigError
from ric.http import HttpServer
from ric.plugins import Plugin
from ric.runtime import Runtime
from ric.sdl import SdlError
from ric.sdl.memory import MemoryBackend
from ric.sdl.redis import RedisBackend
from ric.sdl.state import NODES, SUBSCRIPTIONS
from tests.conftest import wait_for
from tests.e2node import ScriptedNode, setup_request
from tests.sdl.redis_server import RedisServer
from tests.test_http import get, problem_json, response_schema, ric_cli, validate

NODE = "gnb-001-01-1"
"""The id of the scripted node of ``setup_request(node_id=1)``."""

# Short timings keep each test a few seconds: renewals every 0.2 s, so a replica that loses
# Redis stops acting 1.6 s after its last renewal, 0.4 s before its leases could expire.
FAST = {
    "cluster.heartbeat_interval_s": 0.1,
    "cluster.member_ttl_s": 0.6,
    "cluster.lease_ttl_s": 2.0,
    "cluster.renew_interval_s": 0.2,
}


def replica_config(url: str, prefix: str, replica: str = "", **extra: Any) -> RuntimeConfig:
    """A replica of RIC ``ric1`` on ``url``: E2 on a free port, no HTTP, short timings."""
    overrides: dict[str, Any] = {
        "ric_id": "ric1",
        "e2.port": 0,
        "http.enabled": False,
        "sdl.backend": "redis",
        "sdl.url": url,
        "sdl.key_prefix": prefix,
        "sdl.probe_interval_s": 0.1,
        "cluster.enabled": True,
        "cluster.replica_id": replica,
        **FAST,
        **extra,
    }
    return load_config(environ={}, overrides=overrides)


@asynccontextmanager
async def replica(url: str, prefix: str, name: str = "", **extra: Any) -> AsyncIterator[Runtime]:
    """A running replica (a plain Runtime with the cluster on)."""
    async with Runtime(replica_config(url, prefix, name, **extra)) as runtime:
        yield runtime


@asynccontextmanager
async def store(url: str, prefix: str) -> AsyncIterator[RedisBackend]:
    """A backend of the test's own on the replicas' Redis, to look at and change keys."""
    backend = RedisBackend(url, key_prefix=prefix)
    async with backend:
        yield backend


async def first_answer(runtime: Runtime, node: ScriptedNode) -> e2_pb2.RicMessage:
    """Send the node's setup to ``runtime`` and return the first answer."""
    await node.send(setup_request(node_id=1))
    return await node.recv()


def target(runtime: Runtime) -> str:
    return f"127.0.0.1:{runtime.port}"


# -- configuration -------------------------------------------------------------------------------


def test_cluster_without_the_redis_sdl_is_refused_naming_both_keys() -> None:
    """cluster.enabled with the memory SDL is a ConfigError that names cluster.enabled and
    sdl.backend."""
    with pytest.raises(ConfigError) as err:
        load_config(environ={}, overrides={"cluster.enabled": True})
    assert err.value.key == "cluster"
    assert "cluster.enabled = true needs sdl.backend = 'redis'" in err.value.problem
    assert "got sdl.backend = 'memory'" in err.value.problem


@pytest.mark.parametrize(
    ("overrides", "key", "words"),
    [
        ({"cluster.renew_interval_s": 3.0}, "cluster", "lease_ttl_s (6) must be at least 3 x"),
        ({"cluster.heartbeat_interval_s": 2.0}, "cluster", "member_ttl_s (5) must be at least"),
        ({"cluster.replica_id": "a b"}, "cluster.replica_id", "part of Redis key names"),
        ({"cluster.replica_id": "{x}"}, "cluster.replica_id", "starting with a letter"),
        ({"cluster.lease_ttl_s": 0}, "cluster.lease_ttl_s", "greater than 0"),
        ({"cluster.max_routed_in_flight": 0}, "cluster.max_routed_in_flight", "or equal to 1"),
        ({"cluster.control_stream_maxlen": 10}, "cluster.control_stream_maxlen", "100"),
        ({"cluster.report_stream_maxlen": 10**6}, "cluster.report_stream_maxlen", "100000"),
        ({"ric_id": "ric one"}, "cluster", "got ric_id = 'ric one'"),
    ],
)
def test_bad_cluster_settings_are_refused_naming_the_key(
    overrides: dict[str, Any], key: str, words: str
) -> None:
    """Each bad [cluster] value (timings out of proportion, an id unfit for key names) is a
    ConfigError naming the key and the problem."""
    with pytest.raises(ConfigError) as err:
        load_config(
            environ={},
            overrides={"sdl.backend": "redis", "cluster.enabled": True, **overrides},
        )
    assert err.value.key == key
    assert words in err.value.problem


def test_a_replica_on_an_sdl_that_is_not_redis_is_refused() -> None:
    """A runtime given a non-Redis SDL while [cluster] is on is a ConfigError naming
    cluster.enabled (the configuration alone cannot say so when the SDL is passed in)."""
    config = load_config(
        environ={}, overrides={"sdl.backend": "redis", "cluster.enabled": True, "e2.port": 0}
    )
    with pytest.raises(ConfigError) as err:
        Runtime(config, sdl=MemoryBackend())
    assert err.value.key == "cluster.enabled"
    assert "set sdl.backend = 'redis' (the SDL is memory)" in err.value.problem


def test_safety_margin_is_the_lease_ttl_less_two_renewals() -> None:
    """A replica stops acting lease_ttl_s - 2 x renew_interval_s after its last renewal."""
    config = load_config(environ={}, overrides={"sdl.backend": "redis", **FAST})
    assert config.cluster.safety_margin_s == pytest.approx(1.6)


# -- the Redis primitives ------------------------------------------------------------------------


async def test_a_write_below_the_fence_is_refused(redis_server: RedisServer, prefix: str) -> None:
    """write_fenced refuses a term below the key's fence, takes an equal or higher one and
    raises the fence with it; deletes are fenced too."""
    async with store(redis_server.url, prefix) as sdl:
        await sdl.raise_fence(NODES, NODE, 2)
        assert await sdl.write_fenced(NODES, [(NODE, b'"old"', 1)]) == [NODE]
        assert await sdl.get(NODES, [NODE]) == {}
        assert await sdl.write_fenced(NODES, [(NODE, b'"new"', 2)]) == []
        assert await sdl.write_fenced(NODES, [(NODE, b'"newer"', 3), ("other", b"1", 1)]) == []
        assert await sdl.write_fenced(NODES, [(NODE, None, 2)]) == [NODE]
        assert await sdl.get(NODES, [NODE, "other"]) == {NODE: b'"newer"', "other": b"1"}
        assert await sdl.keys(NODES) == [NODE, "other"]
        assert await sdl.write_fenced(NODES, [(NODE, None, 3)]) == []
        assert await sdl.keys(NODES) == ["other"]


async def test_a_lease_is_taken_only_from_a_holder_that_is_gone(
    redis_server: RedisServer, prefix: str
) -> None:
    """claim_lease refuses a lease whose holder is a member, takes it (term + 1) once the
    holder's membership is gone, and renewal and release check the holder."""
    ns = "ric.cluster.ric1"
    async with store(redis_server.url, prefix) as sdl:
        await sdl.heartbeat(ns, "a", b"{}", 60_000, 1)
        assert await sdl.claim_lease(ns, NODE, "a", 60_000) == (1, "")
        assert await sdl.claim_lease(ns, NODE, "b", 60_000) == (0, "a")
        assert await sdl.renew_leases(ns, {NODE: "1 a"}, 60_000) == {NODE: True}
        await sdl.leave(ns, "a")
        assert await sdl.claim_lease(ns, NODE, "b", 60_000) == (2, "a")
        assert await sdl.renew_leases(ns, {NODE: "1 a"}, 60_000) == {NODE: False}
        assert not await sdl.release_lease(ns, NODE, "1 a")
        leases = await sdl.leases(ns)
        assert leases[NODE][0] == "2 b" and 0 < leases[NODE][1] <= 60_000
        assert await sdl.release_lease(ns, NODE, "2 b")
        assert await sdl.leases(ns) == {}
        assert await sdl.claim_lease(ns, NODE, "a", 60_000) == (3, "")


# -- replicas ------------------------------------------------------------------------------------


async def test_a_node_is_owned_by_one_replica_and_taken_over_when_it_stops(
    redis_server: RedisServer, prefix: str
) -> None:
    """A node that sets up at replica a is owned by a with term 1; replica b refuses it with a
    setup failure naming a while a lives; once a stops, it sets up at b with term 2."""
    url = redis_server.url
    async with replica(url, prefix, "b") as b:
        a = Runtime(replica_config(url, prefix, "a"))
        async with a, ScriptedNode(target(a)) as node:
            assert (await first_answer(a, node)).WhichOneof("message") == "setup_response"
            assert a.cluster is not None and a.cluster.term_of(NODE) == 1
            async with ScriptedNode(target(b)) as twin:
                answer = await first_answer(b, twin)
            assert answer.WhichOneof("message") == "setup_failure"
            detail = answer.setup_failure.cause.detail
            assert f"node {NODE} is owned by replica a of RIC ric1" in detail
            assert b.cluster is not None and b.cluster.term_of(NODE) is None
            assert b.cluster.refused == 1
        assert NODE not in a.sessions
        async with ScriptedNode(target(b)) as node:
            assert (await first_answer(b, node)).WhichOneof("message") == "setup_response"
            assert b.cluster.term_of(NODE) == 2
            await wait_for(lambda: b.state.nodes.get(NODE, {}).get("term") == 2)
            async with store(url, prefix) as sdl:
                await wait_for(lambda: not b.state._pending, what="b's node record")
                record = json.loads((await sdl.get(NODES, [NODE]))[NODE])
                assert (record["replica"], record["term"], record["connected"]) == ("b", 2, True)


async def test_a_deposed_owner_closes_its_session_and_its_writes_are_refused(
    redis_server: RedisServer, prefix: str
) -> None:
    """When a's lease is gone (as if it had expired) and the node sets up at b (term 2), a
    finds at its next renewal that it lost the lease, closes the node's session, and its
    write about the node, made with its old term, is refused by Redis."""
    url = redis_server.url
    async with replica(url, prefix, "a") as a, replica(url, prefix, "b") as b:
        assert a.cluster is not None and b.cluster is not None
        async with ScriptedNode(target(a)) as old, ScriptedNode(target(b)) as new:
            assert (await first_answer(a, old)).WhichOneof("message") == "setup_response"
            await wait_for(lambda: not a.state._pending, what="a's node record")
            async with store(url, prefix) as sdl:
                await sdl.release_lease(a.cluster.namespace, NODE, "1 a")
            assert (await first_answer(b, new)).WhichOneof("message") == "setup_response"
            assert b.cluster.term_of(NODE) == 2
            session = a.sessions[NODE]
            a.state.node_changed(session.info)  # a still believes it owns the node
            a.state.subscriptions_changed(NODE, [{"request_id": [1, 1]}])
            await wait_for(lambda: session.closed, what="a to close the session")
            assert "replica a lost the node's lease" in (session.close_reason or "")
            assert a.cluster.may_act(NODE) is not None
            await old.send(e2_pb2.NodeMessage(keep_alive=e2_pb2.KeepAlive()))
            assert await old.ended()
            await wait_for(lambda: NODE not in a.sessions, what="a's node down")
            await wait_for(lambda: a.state.refused >= 2, what="a's refused writes")
            await wait_for(lambda: not b.state._pending, what="b's node record")
            async with store(url, prefix) as sdl:
                record = json.loads((await sdl.get(NODES, [NODE]))[NODE])
                subscriptions = await sdl.get(SUBSCRIPTIONS, [NODE])
            assert (record["replica"], record["term"], record["connected"]) == ("b", 2, True)
            assert subscriptions == {}  # a's subscription record never landed
            assert a.cluster.lost == 1 and b.cluster.takeovers == 0
            assert a.cluster.fenced == a.state.refused


async def test_a_replica_that_loses_redis_stops_acting_before_its_lease_expires(
    own_redis: RedisServer, prefix: str
) -> None:
    """With Redis killed, replica a closes its node's session and refuses setups within its
    safety margin, before the lease it held could expire; /readyz's check says why; once
    Redis is back, a takes nodes again."""
    async with replica(own_redis.url, prefix, "a") as a:
        assert a.cluster is not None
        async with ScriptedNode(target(a)) as node:
            assert (await first_answer(a, node)).WhichOneof("message") == "setup_response"
            session = a.sessions[NODE]
            await wait_for(lambda: a.cluster is not None and a.cluster.leases, what="lease")
            own_redis.kill()
            await wait_for(lambda: session.closed, timeout=10, what="a to close the session")
            stopped = asyncio.get_running_loop().time()
            # The lease was last extended when the last successful renewal was sent, so it
            # cannot expire before then + lease_ttl_s: a stopped acting before that.
            assert stopped < a.cluster.last_renewal + a.config.cluster.lease_ttl_s
            assert "stopped acting: no lease renewal for 1.6 s" in (session.close_reason or "")
            (check,) = [c for c in a.checks() if c.name == "cluster"]
            assert not check.ok and "cannot renew its node leases" in check.detail
            assert "no lease renewal for 1.6 s" in check.detail
            async with ScriptedNode(target(a)) as other:
                await other.send(setup_request(node_id=2, cells=(21,)))
                answer = await other.recv()
            assert answer.WhichOneof("message") == "setup_failure"
            assert "replica a of RIC ric1 takes no nodes now" in answer.setup_failure.cause.detail
            await node.send(e2_pb2.NodeMessage(keep_alive=e2_pb2.KeepAlive()))
            assert await node.ended()
        own_redis.start()
        await wait_for(lambda: a.cluster is not None and a.cluster.acting, what="a to act again")
        async with ScriptedNode(target(a)) as node:
            assert (await first_answer(a, node)).WhichOneof("message") == "setup_response"


async def test_default_replica_id_names_the_host_and_the_bound_e2_port(
    redis_server: RedisServer, prefix: str
) -> None:
    """Without a replica_id, a replica is <hostname>:<bound E2 port>, and its heartbeat lists
    it as alive with that port; a replica that stops leaves the membership at once."""
    url = redis_server.url
    async with replica(url, prefix) as a:
        assert a.cluster is not None
        assert a.cluster.replica_id == f"{socket.gethostname()}:{a.port}"
        snapshot = await a.cluster.snapshot()
        (me,) = snapshot["replicas"]
        assert (me["id"], me["alive"], me["self"], me["e2_port"]) == (
            a.cluster.replica_id,
            True,
            True,
            a.port,
        )
    async with store(url, prefix) as sdl:
        members = await sdl.members("ric.cluster.ric1")
    assert members == []


async def test_snapshot_shows_each_replica_with_its_nodes_and_terms(
    redis_server: RedisServer, prefix: str
) -> None:
    """The cluster snapshot lists both replicas as alive, and which node each owns with the
    lease's term."""
    url = redis_server.url
    async with replica(url, prefix, "a") as a, replica(url, prefix, "b") as b:
        assert a.cluster is not None
        async with ScriptedNode(target(b)) as node:
            assert (await first_answer(b, node)).WhichOneof("message") == "setup_response"
            snapshot = await a.cluster.snapshot()
    assert [(r["id"], r["alive"], r["self"]) for r in snapshot["replicas"]] == [
        ("a", True, True),
        ("b", True, False),
    ]
    assert snapshot["replicas"][1]["nodes"] == [{"node": NODE, "term": 1}]
    (lease,) = snapshot["leases"]
    assert (lease["node"], lease["replica"], lease["term"]) == (NODE, "b", 1)
    assert snapshot["acting"] and snapshot["ric_id"] == "ric1"


async def test_snapshot_without_redis_is_an_sdl_error(own_redis: RedisServer, prefix: str) -> None:
    """Asking for the cluster snapshot while Redis is down raises SdlError naming Redis."""
    async with replica(own_redis.url, prefix, "a") as a:
        assert a.cluster is not None
        own_redis.kill()
        with pytest.raises(SdlError, match=r"Redis SDL at 127\.0\.0\.1"):
            await a.cluster.snapshot()
        own_redis.start()


class Controller(XApp):
    """Sends the handovers the test asks for."""

    name = "controller"
    controls = [Handover]


async def test_a_control_leaves_only_while_the_replica_holds_the_nodes_lease(
    redis_server: RedisServer, prefix: str
) -> None:
    """A control to a node whose lease the replica holds reaches the node, carrying the
    lease's term; once the replica no longer holds the lease, the next control is refused
    before it leaves, as not connected, naming the lease."""
    config = replica_config(redis_server.url, prefix, "a")
    plugin = Plugin(Controller, "test:Controller")
    async with Runtime(config, [plugin]) as a, ScriptedNode(target(a)) as node:
        assert (await first_answer(a, node)).WhichOneof("message") == "setup_response"
        await wait_for(lambda: a.host("controller").instance is not None, what="the xApp")
        app = a.host("controller").instance
        assert app is not None and a.cluster is not None
        action = Handover("5", "001-01-11", "001-01-12")
        sent = asyncio.create_task(app.control(action, timeout=2.0))
        request = await node.recv_kind("control_request")
        assert request.term == a.cluster.term_of(NODE) and request.term >= 1
        ack = e2_pb2.ControlAcknowledge(request_id=request.request_id)
        await node.send(e2_pb2.NodeMessage(control_acknowledge=ack))
        assert (await sent).kind is OutcomeKind.ACKNOWLEDGED
        a.cluster.release(NODE)  # the lease is gone from this replica's view
        refused = await app.control(action, timeout=2.0)
    assert refused.kind is OutcomeKind.NOT_CONNECTED
    assert refused.detail == f"replica a does not hold the lease of node {NODE}"


# -- the status API and ric status ---------------------------------------------------------------


def http_of(runtime: Runtime) -> str:
    """The base URL of ``runtime``'s HTTP server."""
    (server,) = [c for c in runtime.components if isinstance(c, HttpServer)]
    return server.url


async def test_cluster_api_and_ric_status_show_the_replicas_nodes_and_terms(
    redis_server: RedisServer, prefix: str
) -> None:
    """GET /api/v1/cluster on replica a answers, in its documented schema, both replicas
    alive and the node b owns with its term; `ric status` prints the same as a cluster
    block, and `--json` carries it."""
    url = redis_server.url
    config = replica_config(url, prefix, "a", **{"http.enabled": True, "http.port": 0})
    async with (
        Runtime.from_config(config) as a,
        replica(url, prefix, "b") as b,
        ScriptedNode(target(b)) as node,
    ):
        assert (await first_answer(b, node)).WhichOneof("message") == "setup_response"
        status, body, _ = await get(f"{http_of(a)}/api/v1/cluster")
        code, out, err = await ric_cli("status", "--url", http_of(a))
        jcode, jout, jerr = await ric_cli("status", "--url", http_of(a), "--json")
    assert status == 200
    validate(body, response_schema("/api/v1/cluster", 200))
    assert (body["ric_id"], body["replica"], body["acting"], body["reason"]) == (
        "ric1",
        "a",
        True,
        "",
    )
    rows = {r["id"]: r for r in body["replicas"]}
    assert rows["a"]["alive"] and rows["a"]["self"] and rows["a"]["nodes"] == []
    assert rows["b"]["alive"] and rows["b"]["e2_port"] == b.port
    assert rows["b"]["nodes"] == [{"node": NODE, "term": 1}]
    assert [(x["node"], x["replica"], x["term"]) for x in body["leases"]] == [(NODE, "b", 1)]
    assert code == 0, err
    block = out[out.index("cluster ric1") :].splitlines()
    assert block[0] == "cluster ric1: this is replica a (acting)"
    assert block[1].split() == [
        "REPLICA",
        "STATE",
        "HEARTBEAT",
        "E2",
        "PORT",
        "NODES",
        "(LEASE",
        "TERM)",
    ]
    assert block[2].split()[:3] == ["a", "*", "alive"] and block[2].endswith("-")
    assert block[3].split()[:2] == ["b", "alive"]
    assert block[3].endswith(f"{NODE} (term 1)")
    assert jcode == 0, jerr
    assert json.loads(jout)["cluster"]["leases"][0]["term"] == 1


async def test_cluster_api_of_a_runtime_that_is_no_replica_is_404() -> None:
    """Without [cluster], /api/v1/cluster is a 404 ProblemDetails saying clustering is off."""
    config = load_config(environ={}, overrides={"e2.port": 0, "http.port": 0})
    async with Runtime.from_config(config) as runtime:
        status, body, _ = await get(f"{http_of(runtime)}/api/v1/cluster")
    assert (status, body) == (
        404,
        problem_json(404, "this runtime is not a replica of a RIC ([cluster] enabled = false)"),
    )


async def test_cluster_api_and_status_say_when_redis_cannot_be_read(
    own_redis: RedisServer, prefix: str
) -> None:
    """With Redis down, /api/v1/cluster is a 503 ProblemDetails naming Redis, /readyz fails
    the cluster check once the replica stops acting, and `ric status` says the cluster
    cannot be read."""
    config = replica_config(own_redis.url, prefix, "a", **{"http.enabled": True, "http.port": 0})
    async with Runtime.from_config(config) as a:
        assert a.cluster is not None
        own_redis.kill()
        status, body, _ = await get(f"{http_of(a)}/api/v1/cluster")
        await wait_for(lambda: a.cluster is not None and not a.cluster.acting, what="stop")
        ready, readiness, _ = await get(f"{http_of(a)}/readyz")
        code, out, err = await ric_cli("status", "--url", http_of(a))
        async with aiohttp.ClientSession() as http, http.get(f"{http_of(a)}/metrics") as resp:
            metrics = await resp.text()
        own_redis.start()
    assert status == 503
    validate(body, response_schema("/api/v1/cluster", 503))
    assert body["detail"].startswith("cannot read the cluster's state: Redis SDL at 127.0.0.1")
    assert ready == 503
    (check,) = [c for c in readiness["checks"] if c["name"] == "cluster"]
    assert not check["ok"] and check["detail"].startswith("replica a: no lease renewal for 1.6 s")
    assert code == 0, err
    assert "\ncluster: cannot be read: cannot read the cluster's state: Redis SDL" in out
    assert "ric_cluster_acting 0.0" in metrics and "ric_cluster_leases 0.0" in metrics
    (failures,) = [
        x for x in metrics.splitlines() if x.startswith("ric_cluster_renewal_failures_total")
    ]
    assert float(failures.split()[1]) >= 1


def test_status_cluster_block_dates_heartbeats_and_marks_gone_replicas() -> None:
    """render_status's cluster block says when each replica last beat, marks a replica whose
    membership expired as gone, and says why the answering replica does not act."""
    cluster = {
        "ric_id": "ric1",
        "replica": "a",
        "acting": False,
        "reason": "no lease renewal for 4 s (cannot renew its node leases: refused)",
        "replicas": [
            {"id": "a", "alive": True, "self": True, "last_heartbeat_unix_ms": 99_000,
             "e2_port": 36421, "nodes": []},
            {"id": "b", "alive": False, "self": False, "last_heartbeat_unix_ms": 30_000,
             "e2_port": None, "nodes": [{"node": NODE, "term": 3}]},
        ],
    }  # fmt: skip
    text = render_status(
        "http://x", {"ready": True}, {"nodes": []}, {"xapps": []}, cluster, now=100
    )
    block = text[text.index("cluster ric1") :].splitlines()
    assert block[0] == (
        "cluster ric1: this is replica a (NOT ACTING: no lease renewal for 4 s (cannot renew "
        "its node leases: refused))"
    )
    assert block[2].split() == ["a", "*", "alive", "1s", "ago", "36421", "-"]
    assert block[3].split() == ["b", "gone", "1m10s", "ago", "-", NODE, "(term", "3)"]
    plain = render_status("http://x", {"ready": True}, {"nodes": []}, {"xapps": []})
    assert "cluster" not in plain
