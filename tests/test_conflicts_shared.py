"""The conflict window shared by a RIC's replicas on a real redis-server
(``ric.conflicts_shared``): the same decisions as one replica's arbiter, atomic under races,
the first xApp told on its own replica, and a control refused when Redis is gone or slow."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import aiohttp
import pytest
import redis.asyncio as aioredis

from ric import (
    CellIndividualOffset,
    CellState,
    Conflict,
    ControlAction,
    ControlOutcome,
    Handover,
    OutcomeKind,
    SlicePrbQuota,
)
from ric.config import load_config
from ric.conflicts import Arbiter, Decision, Policy
from ric.conflicts_shared import MAX_RETRACTS, SharedArbiter, canonical
from ric.plugins import Plugin
from ric.runtime import Runtime
from ric.sdl import SdlError
from ric.sdl.redis import RedisBackend
from ric.sensors import Stats
from tests.conftest import wait_for
from tests.e2node import ScriptedNode, rc_function
from tests.sdl.redis_server import RedisServer
from tests.test_cluster import http_of, replica_config, target
from tests.test_conflicts import Es, Mlb, Steerer, acking, control

NAMESPACE = "ric.cluster.ric1"
"""The cluster namespace of RIC ``ric1`` (the replicas of tests.test_cluster)."""
WINDOWS = {"handover": 5.0, "slice_prb_quota": 10.0, "cell_state": 60.0}


@dataclass
class Side:
    """One replica's arbiter and what it was told through notices."""

    name: str
    arbiter: SharedArbiter
    told: list[tuple[str, Conflict]] = field(default_factory=list)


@asynccontextmanager
async def sides(
    url: str,
    prefix: str,
    names: tuple[str, ...] = ("a", "b"),
    policy: Policy = "first-wins",
    priorities: dict[str, int] | None = None,
    windows: dict[str, float] | None = None,
    timeout_s: float = 2.0,
) -> AsyncIterator[dict[str, Side]]:
    """Started shared arbiters of replicas ``names`` of RIC ric1, each on its own backend."""
    async with AsyncExitStack() as stack:
        out: dict[str, Side] = {}
        for name in names:
            backend = await stack.enter_async_context(RedisBackend(url, key_prefix=prefix))
            told: list[tuple[str, Conflict]] = []
            arbiter = SharedArbiter(
                policy,
                windows or WINDOWS,
                priorities or {},
                backend,
                NAMESPACE,
                lambda name=name: name,  # type: ignore[misc]
                timeout_s=timeout_s,
                notify=lambda xapp, conflict, told=told: told.append((xapp, conflict)),  # type: ignore[misc]
            )
            await arbiter.start()
            stack.push_async_callback(arbiter.stop)
            out[name] = Side(name, arbiter, told)
        yield out


@asynccontextmanager
async def raw(url: str) -> AsyncIterator[aioredis.Redis]:
    """A plain redis-py client, to look at the keys behind the arbiters' backs."""
    client = aioredis.Redis.from_url(url)
    try:
        yield client
    finally:
        await client.aclose()


def window_key(prefix: str, target: str) -> str:
    return f"{prefix}:{{{NAMESPACE}}}:cw:{target}"


HO_A = Handover("7", "001-01-1", "001-01-2")
HO_B = Handover("7", "001-01-1", "001-01-3")

# Each step: the xApp and its control. The replica of an xApp is fixed below, so that every
# conflict is between replicas and some are within one.
STEPS: list[tuple[str, ControlAction]] = [
    ("mlb", HO_A),
    ("ts", HO_B),  # another handover of the same UE
    ("mlb", HO_B),  # the same xApp changes its mind
    ("ts", Handover("7", "001-01-1", "001-01-3")),  # the same value as mlb's latest
    ("es", CellState("001-01-3", active=False)),  # switches off the cell mlb hands UEs into
    ("es", CellState("001-01-9", active=False)),
    ("mlb", Handover("8", "001-01-1", "001-01-9")),  # a handover into a cell switched off
    ("es", SlicePrbQuota("001-01-1", "1", 10, 50)),
    ("mlb", SlicePrbQuota("001-01-1", "1", 20, 60)),
    ("es", SlicePrbQuota("001-01-1", "1", 10, 50)),
    ("es", CellState("001-01-4", tx_power_dbm=40.0)),
    ("ts", CellState("001-01-4", tx_power_dbm=30.0)),
    ("es", CellState("001-01-4", tx_power_dbm=41.0)),
    ("mlb", CellIndividualOffset("001-01-1", "001-01-2", 4)),
    ("es", CellIndividualOffset("001-01-1", "001-01-2", -6)),
    ("es", CellIndividualOffset("001-01-1", "001-01-2", 4)),
    ("mlb", CellIndividualOffset("001-01-5", "001-01-9", 6)),  # steers into a switched-off cell
]
REPLICA_OF = {"mlb": "a", "ts": "b", "es": "b"}


def seen(decision: Decision) -> tuple[Any, ...]:
    """What two arbiters must agree on for one control."""
    c = decision.conflict
    if c is None:
        return (decision.allowed,)
    return (decision.allowed, c.policy, c.target, c.parameter, c.first_xapp, c.first, c.winner)


@pytest.mark.parametrize("policy", ["first-wins", "priority", "reject-both"])
async def test_replicas_decide_as_one_arbiter_does(
    redis_server: RedisServer, prefix: str, policy: Policy
) -> None:
    """The same controls from xApps spread over two replicas get the decisions one replica's
    arbiter gives them (allowed, target, parameter, first xApp, winner), and the first xApp of
    each conflict is told once, on its own replica."""
    priorities = {"es": 1, "mlb": 5, "ts": 3}
    local = Arbiter(policy, WINDOWS, priorities, lambda: 0.0)
    expected = [seen(local.decide(xapp, action)) for xapp, action in STEPS]
    local = Arbiter(policy, WINDOWS, priorities, lambda: 0.0)
    local_told = [d.notify for d in (local.decide(x, a) for x, a in STEPS) if d.notify]
    async with sides(redis_server.url, prefix, policy=policy, priorities=priorities) as rs:
        got, told_here = [], []
        for xapp, action in STEPS:
            decision = await rs[REPLICA_OF[xapp]].arbiter.decide(xapp, action)
            got.append(seen(decision))
            if decision.notify:
                told_here.append(decision.notify)
        assert got == expected
        await wait_for(
            lambda: len(told_here) + len(rs["a"].told) + len(rs["b"].told) >= len(local_told),
            what="the notices",
        )
        assert sorted(told_here + [x for s in rs.values() for x, _ in s.told]) == sorted(local_told)
        for side in rs.values():  # a notice reaches the replica of the xApp it names
            assert all(REPLICA_OF[x] == side.name for x, _ in side.told)
        assert any(x == "mlb" for x, _ in rs["a"].told)  # some went from replica b to a


async def test_two_replicas_racing_on_one_target_cannot_both_win(
    redis_server: RedisServer, prefix: str
) -> None:
    """Two replicas checking conflicting handovers of the same UE at the same moment: for
    every UE exactly one is allowed, the other refused naming it."""
    async with sides(redis_server.url, prefix) as rs:
        for ue in range(30):
            one, two = await asyncio.gather(
                rs["a"].arbiter.decide("mlb", Handover(str(ue), "001-01-1", "001-01-2")),
                rs["b"].arbiter.decide("ts", Handover(str(ue), "001-01-1", "001-01-3")),
            )
            assert [one.allowed, two.allowed].count(True) == 1
            loser = two if one.allowed else one
            assert loser.conflict is not None
            assert loser.conflict.winner == ("mlb" if one.allowed else "ts")


async def test_the_loser_on_another_replica_is_told_with_the_winner_and_both_controls(
    redis_server: RedisServer, prefix: str
) -> None:
    """Under priority, a higher xApp on replica b overrides es's quota recorded on replica a:
    es is told on a (winner mlb, its own control first), b is told nothing, and es's next
    try is refused."""
    es_quota = SlicePrbQuota("001-01-1", "1", 10, 50)
    mlb_quota = SlicePrbQuota("001-01-1", "1", 20, 60)
    async with sides(
        redis_server.url, prefix, policy="priority", priorities={"es": 1, "mlb": 5}
    ) as rs:
        assert (await rs["a"].arbiter.decide("es", es_quota)).allowed
        over = await rs["b"].arbiter.decide("mlb", mlb_quota)
        assert over.allowed and over.notify is None
        await wait_for(lambda: rs["a"].told, what="the notice on replica a")
        [(xapp, conflict)] = rs["a"].told
        assert xapp == "es"
        assert (conflict.first_xapp, conflict.first, conflict.second_xapp) == (
            "es",
            es_quota,
            "mlb",
        )
        assert (conflict.second, conflict.winner, conflict.policy) == (mlb_quota, "mlb", "priority")
        assert not (await rs["a"].arbiter.decide("es", es_quota)).allowed
        assert rs["b"].told == []
        assert (rs["b"].arbiter.notices_sent, rs["a"].arbiter.notices_received) == (1, 1)


async def test_a_touch_expires_with_its_window_and_its_key_with_it(
    redis_server: RedisServer, prefix: str
) -> None:
    """A touch holds its target for its kind's window only: after it, the other replica's
    conflicting control is allowed, and a target no one touched since has no key left."""
    windows = {"handover": 0.3, "cell_state": 0.3}
    async with sides(redis_server.url, prefix, windows=windows) as rs, raw(redis_server.url) as r:
        assert (await rs["a"].arbiter.decide("es", CellState("001-01-2", active=False))).allowed
        assert not (await rs["b"].arbiter.decide("mlb", HO_A)).allowed
        assert await r.pttl(window_key(prefix, "cell:001-01-2")) > 0
        await asyncio.sleep(0.35)  # real time: the window is Redis's clock
        assert (await rs["b"].arbiter.decide("mlb", HO_A)).allowed
        await asyncio.sleep(0.35)
        assert not await r.exists(window_key(prefix, "ue:7"))


async def test_a_retracted_control_no_longer_holds_its_target_on_other_replicas(
    redis_server: RedisServer, prefix: str
) -> None:
    """A control that did not take effect is retracted in Redis, so the other replica's
    conflicting control is allowed."""
    async with sides(redis_server.url, prefix) as rs, raw(redis_server.url) as r:
        first = await rs["a"].arbiter.decide("mlb", HO_A)
        assert first.allowed and first.token
        rs["a"].arbiter.retract(first.token)

        async def gone() -> bool:
            return not await r.exists(window_key(prefix, "ue:7"))

        for _ in range(200):
            if await gone():
                break
            await asyncio.sleep(0.01)
        assert (await rs["b"].arbiter.decide("ts", HO_B)).allowed


async def test_a_check_while_redis_is_stopped_mid_window_is_refused(
    own_redis: RedisServer, prefix: str
) -> None:
    """With Redis stopped in the middle of a window, the other replica's check fails closed
    (SdlError naming the shared window) and is counted; Redis restarted without persistence
    has forgotten the window, so the control is then allowed."""
    async with sides(own_redis.url, prefix, timeout_s=0.3) as rs:
        assert (await rs["a"].arbiter.decide("mlb", HO_A)).allowed
        own_redis.kill()
        with pytest.raises(SdlError) as err:
            await rs["b"].arbiter.decide("ts", HO_B)
        assert "replica b cannot check the conflict window shared in Redis" in str(err.value)
        assert rs["b"].arbiter.unavailable == 1
        own_redis.start()
        assert (await rs["b"].arbiter.decide("ts", HO_B)).allowed


async def test_a_check_redis_answers_too_late_is_refused_and_leaves_nothing(
    redis_server: RedisServer, prefix: str
) -> None:
    """While Redis is paused longer than shared_timeout_s, a check is refused ("no answer in
    0.2 s"); once Redis answers again the touch it may have left is retracted."""
    async with sides(redis_server.url, prefix, timeout_s=0.2) as rs, raw(redis_server.url) as r:
        await cast(Any, r).execute_command("CLIENT", "PAUSE", "600", "ALL")
        with pytest.raises(SdlError) as err:
            await rs["a"].arbiter.decide("mlb", HO_A)
        assert "no answer in 0.2 s" in str(err.value)
        for _ in range(300):
            if not await r.exists(window_key(prefix, "ue:7")):
                break
            await asyncio.sleep(0.01)
        assert (await rs["b"].arbiter.decide("ts", HO_B)).allowed


def test_values_compare_as_python_compares_them() -> None:
    """Equal values give equal text in Redis (3 and 3.0 too), different ones do not."""
    assert canonical(3) == canonical(3.0)
    assert canonical((10, 50, 0)) != canonical((10, 60, 0))
    assert canonical(False) == "false" and canonical(True) != canonical("true")
    assert canonical((("a", 1),)) == canonical((("a", 1.0),))


def test_an_sdl_that_is_not_redis_is_refused() -> None:
    """A shared window on another SDL backend is an SdlError naming it."""
    from ric.sdl.memory import MemoryBackend

    with pytest.raises(SdlError, match="needs the Redis SDL, not memory"):
        SharedArbiter(
            "first-wins",
            WINDOWS,
            {},
            MemoryBackend(),
            NAMESPACE,
            lambda: "a",
            timeout_s=1.0,
            notify=lambda x, c: None,
        )


# -- two runtimes --------------------------------------------------------------------------------


@asynccontextmanager
async def two_replicas(
    url: str, prefix: str, **extra: Any
) -> AsyncIterator[tuple[Runtime, Runtime, Stats, Stats]]:
    """Replica a with xApp mlb and node 1 (cells 11, 12), replica b with xApp es and node 2
    (cells 21, 22), each with its HTTP server; both nodes acknowledge every control."""
    stats_a, stats_b = Stats(), Stats()
    web = {"http.enabled": True, "http.port": 0}
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(
            Runtime.from_config(
                replica_config(url, prefix, "a", **web, **extra),
                [Plugin(Mlb, "t")],
                sensors=[stats_a],
            )
        )
        b = await stack.enter_async_context(
            Runtime.from_config(
                replica_config(url, prefix, "b", **web, **extra),
                [Plugin(Es, "t")],
                sensors=[stats_b],
            )
        )
        for runtime, node_id, cells in ((a, 1, [11, 12]), (b, 2, [21, 22])):
            node = await stack.enter_async_context(ScriptedNode(target(runtime)))
            await node.setup(
                node_id=node_id, cells=cells, functions=[rc_function(actions=[(3, 1), (100, 1)])]
            )
            task = asyncio.create_task(acking(node))
            stack.callback(task.cancel)
        await wait_for(lambda: all(h.instance for r in (a, b) for h in r.hosts), what="xApps")
        yield a, b, stats_a, stats_b


async def scrape(runtime: Runtime) -> str:
    """The Prometheus text of ``runtime``'s /metrics."""
    async with aiohttp.ClientSession() as http, http.get(f"{http_of(runtime)}/metrics") as resp:
        return await resp.text()


@pytest.mark.parametrize(
    ("policy", "into_kind", "winner"),
    [("first-wins", OutcomeKind.CONFLICT, "es"), ("priority", OutcomeKind.ACKNOWLEDGED, "mlb")],
)
async def test_xapps_on_two_replicas_conflict_and_the_first_is_told_on_its_own(
    redis_server: RedisServer,
    prefix: str,
    policy: str,
    into_kind: OutcomeKind,
    winner: str,
) -> None:
    """es on replica b switches off a cell of b's node; mlb on replica a then hands a UE of
    a's node into it: the policy decides on a (the conflict counted and in the outcome
    there), and es is told through on_conflict on b."""
    extra = {"conflicts.policy": policy, "conflicts.priority": {"mlb": 5, "es": 1}}
    async with two_replicas(redis_server.url, prefix, **extra) as (a, b, stats_a, stats_b):
        off = await control(b, "es", CellState("001-01-21", active=False))
        assert off.kind is OutcomeKind.ACKNOWLEDGED
        into = await control(a, "mlb", Handover("4", "001-01-11", "001-01-21"))
        es = b.host("es").instance
        assert isinstance(es, Steerer)
        await wait_for(lambda: es.conflicts, what="es told on replica b")
        mlb = a.host("mlb").instance
        assert isinstance(mlb, Steerer)
        metrics_a, metrics_b = await scrape(a), await scrape(b)
        records_a, records_b = a.audit.last(10), b.audit.last(10)
    assert into.kind is into_kind
    assert into.conflict is not None
    assert (into.conflict.target, into.conflict.parameter) == ("cell:001-01-21", "active")
    assert into.conflict.winner == winner
    [told] = es.conflicts
    assert (told.first_xapp, told.second_xapp, told.winner) == ("es", "mlb", winner)
    assert mlb.conflicts == []
    assert (stats_a.conflicts[policy], stats_b.conflicts[policy]) == (1, 0)
    assert f'ric_conflicts_total{{policy="{policy}"}} 1.0' in metrics_a
    [record] = [r for r in records_a if r["xapp"] == "mlb"]  # one record, on mlb's replica
    assert record["conflict"] == str(into.conflict)
    assert [r["conflict"] for r in records_b] == [None]  # es's switch-off, audited before
    assert "ric_conflict_window_checks_total 1.0" in metrics_a  # mlb's (es's was b's)
    assert "ric_conflict_window_notices_sent_total 1.0" in metrics_a
    assert "ric_conflict_window_notices_received_total 1.0" in metrics_b


async def test_a_replica_refuses_a_control_when_redis_stops_mid_window(
    own_redis: RedisServer, prefix: str
) -> None:
    """Redis stopped while es's switch-off holds its cell: mlb's handover into it on the other
    replica is refused as not connected, naming the shared window, not sent unarbitrated."""
    async with two_replicas(own_redis.url, prefix, **{"conflicts.shared_timeout_s": 0.3}) as (
        a,
        b,
        _,
        _,
    ):
        off = await control(b, "es", CellState("001-01-21", active=False))
        assert off.kind is OutcomeKind.ACKNOWLEDGED
        own_redis.kill()
        into = await control(a, "mlb", Handover("4", "001-01-11", "001-01-21"))
        metrics = await scrape(a)
    assert into.kind is OutcomeKind.NOT_CONNECTED
    assert "replica a cannot check the conflict window shared in Redis" in into.detail
    assert "ric_conflict_window_unavailable_total 1.0" in metrics


def test_only_a_replica_has_the_shared_window(redis_server: RedisServer, prefix: str) -> None:
    """A runtime that is no replica keeps the in-process arbiter (the fast path); a replica
    has the shared window instead, as a component."""
    alone = Runtime(load_config(environ={}, overrides={"e2.port": 0}))
    assert isinstance(alone.controls.arbiter, Arbiter)
    assert alone.controls.shared_arbiter is None
    one = Runtime(replica_config(redis_server.url, prefix, "a"))
    assert one.controls.arbiter is None
    assert isinstance(one.controls.shared_arbiter, SharedArbiter)
    assert one.controls.shared_arbiter in one.components


async def test_arbitrate_alone_uses_the_shared_window_for_a_control_sent_elsewhere(
    redis_server: RedisServer, prefix: str
) -> None:
    """ControlRouter.arbitrate (the arbiter's step of a control another replica sends) checks
    the shared window: mlb's handover into the cell es switched off on the other replica is
    refused as a conflict; an allowed one, retracted, no longer holds its UE."""
    async with two_replicas(redis_server.url, prefix) as (a, b, _, _):
        off = await control(b, "es", CellState("001-01-21", active=False))
        assert off.kind is OutcomeKind.ACKNOWLEDGED
        refused = await a.controls.arbitrate(a.host("mlb"), Handover("4", "001-01-11", "001-01-21"))
        assert isinstance(refused, ControlOutcome)
        assert refused.kind is OutcomeKind.CONFLICT
        decided = await a.controls.arbitrate(a.host("mlb"), Handover("5", "001-01-11", "001-01-12"))
        assert not isinstance(decided, ControlOutcome)
        token, conflict = decided
        assert token and conflict is None
        a.controls.retract(token)
        es_move = Handover("5", "001-01-21", "001-01-22")
        for _ in range(300):  # the retraction is sent in the background
            after = await b.controls.arbitrate(b.host("es"), es_move)
            if not isinstance(after, ControlOutcome):
                break
            await asyncio.sleep(0.01)
        assert not isinstance(after, ControlOutcome)


async def test_arbitrate_alone_uses_the_local_arbiter_without_the_cluster() -> None:
    """Without the cluster, ControlRouter.arbitrate asks the in-process arbiter."""
    config = load_config(environ={}, overrides={"e2.port": 0})
    async with Runtime(config, [Plugin(Mlb, "t"), Plugin(Es, "t")]) as runtime:
        router = runtime.controls
        off = await router.arbitrate(runtime.host("es"), CellState("001-01-21", active=False))
        assert not isinstance(off, ControlOutcome)
        into = await router.arbitrate(runtime.host("mlb"), Handover("4", "001-01-11", "001-01-21"))
        assert isinstance(into, ControlOutcome)
        assert into.kind is OutcomeKind.CONFLICT


async def test_a_retraction_redis_does_not_take_is_kept_and_sent_later(
    redis_server: RedisServer, prefix: str
) -> None:
    """A retraction made while Redis is paused stays queued and is sent once Redis answers
    again, so the other replica's control is then allowed."""
    async with sides(redis_server.url, prefix, timeout_s=0.2) as rs, raw(redis_server.url) as r:
        first = await rs["a"].arbiter.decide("mlb", HO_A)
        await cast(Any, r).execute_command("CLIENT", "PAUSE", "500", "ALL")
        rs["a"].arbiter.retract(first.token)  # its first try times out (0.2 s < 0.5 s)
        for _ in range(100):  # the next try: at the worker's next poll
            if not await r.exists(window_key(prefix, "ue:7")):
                break
            await asyncio.sleep(0.05)
        assert rs["a"].arbiter.retractions_pending == 0
        assert (await rs["b"].arbiter.decide("ts", HO_B)).allowed


def test_retractions_waiting_for_redis_are_bounded() -> None:
    """At most MAX_RETRACTS retractions wait for Redis; the oldest are dropped beyond."""
    backend = RedisBackend("redis://127.0.0.1:1/0", key_prefix="t")
    arbiter = SharedArbiter(
        "first-wins",
        WINDOWS,
        {},
        backend,
        NAMESPACE,
        lambda: "a",
        timeout_s=1.0,
        notify=lambda x, c: None,
    )
    touch = Arbiter("first-wins", WINDOWS, {}, lambda: 0.0).decide("mlb", HO_A).token
    for _ in range(MAX_RETRACTS + 10):
        arbiter.retract(touch)
    assert arbiter.retractions_pending == MAX_RETRACTS


@pytest.mark.parametrize(
    ("policy", "mlb_kind", "winner"),
    [("first-wins", OutcomeKind.CONFLICT, "es"), ("priority", OutcomeKind.ACKNOWLEDGED, "mlb")],
)
async def test_xapps_on_two_replicas_quota_one_slice_of_one_node(
    redis_server: RedisServer,
    prefix: str,
    policy: str,
    mlb_kind: OutcomeKind,
    winner: str,
) -> None:
    """One node, owned by replica b: es on b quotas a slice of it, then mlb on a quotas the
    same slice otherwise (routed to b when allowed): the policy decides as on one replica,
    and es is told on b."""
    extra = {"conflicts.policy": policy, "conflicts.priority": {"mlb": 5, "es": 1}}
    async with (
        Runtime(replica_config(redis_server.url, prefix, "a", **extra), [Plugin(Mlb, "t")]) as a,
        Runtime(replica_config(redis_server.url, prefix, "b", **extra), [Plugin(Es, "t")]) as b,
        ScriptedNode(target(b)) as node,
    ):
        await node.setup(functions=[rc_function(actions=[(3, 1), (2, 6)])])
        answering = asyncio.create_task(acking(node))
        await wait_for(lambda: all(h.instance for r in (a, b) for h in r.hosts), what="xApps")
        await wait_for(lambda: "gnb-001-01-1" in a.nodes(), what="b's node seen from a")
        first = await control(b, "es", SlicePrbQuota("001-01-11", "1-000001", 10, 40))
        second = await control(a, "mlb", SlicePrbQuota("001-01-11", "1-000001", 30, 80))
        es = b.host("es").instance
        assert isinstance(es, Steerer)
        await wait_for(lambda: es.conflicts, what="es told on replica b")
        answering.cancel()
    assert first.kind is OutcomeKind.ACKNOWLEDGED
    assert second.kind is mlb_kind, second
    assert second.conflict is not None
    assert (second.conflict.target, second.conflict.parameter) == (
        "slice:001-01-11/1-000001",
        "prb_quota",
    )
    assert (es.conflicts[0].first_xapp, es.conflicts[0].winner) == ("es", winner)
