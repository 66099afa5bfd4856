"""The Redis SDL through Sentinel (``[sdl] sentinels``): the settings, finding the master, the
lease term that must reach a replica, and a replica of the RIC that carries on when a real
``redis-server`` master is SIGKILLed and a real ``redis-sentinel`` promotes its replica."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import pytest
import redis.asyncio as aioredis

from ric._proto.e2.v1 import e2_pb2
from ric.config import RuntimeConfig, load_config
from ric.errors import ConfigError
from ric.runtime import Runtime
from ric.sdl import Change, SdlError, from_config
from ric.sdl.redis import RedisBackend
from ric.sdl.state import NODES
from tests.conftest import wait_for
from tests.e2node import ScriptedNode, setup_request
from tests.sdl.redis_server import RedisServer
from tests.sdl.sentinel_server import MASTER, SentinelServer

NODE = "gnb-001-01-1"
"""The id of the scripted node of ``setup_request(node_id=1)``."""
FAILOVER_S = 30.0
"""Guard against hangs only: how long a failover may take before the test fails."""


class RedisHa:
    """A master, its replica and one Sentinel watching them, all on loopback."""

    def __init__(self, master: RedisServer, replica: RedisServer, sentinel: SentinelServer):
        self.master = master
        self.replica = replica
        self.sentinel = sentinel

    def overrides(self, prefix: str) -> dict[str, Any]:
        """The ``[sdl]`` settings of a runtime on this Redis through the Sentinel."""
        return {
            "sdl.backend": "redis",
            "sdl.key_prefix": prefix,
            "sdl.sentinels": [self.sentinel.address],
            "sdl.sentinel_master": MASTER,
            "sdl.probe_interval_s": 0.1,
        }

    def backend(self, prefix: str, **extra: Any) -> RedisBackend:
        """An unopened backend on the master the Sentinel names."""
        return RedisBackend(
            key_prefix=prefix,
            sentinels=[("127.0.0.1", self.sentinel.port)],
            sentinel_master=MASTER,
            probe_interval_s=0.1,
            **extra,
        )


async def replica_count(port: int) -> int:
    """How many replicas the master on loopback ``port`` has connected."""
    async with aioredis.Redis(port=port, socket_timeout=2) as master:
        info: dict[str, Any] = await master.info("replication")
    return int(info["connected_slaves"])


async def wait_for_async(get: Callable[[], Awaitable[Any]], want: Any) -> None:
    """Await ``get()`` until it returns ``want``; fail after FAILOVER_S."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FAILOVER_S
    while (got := await get()) != want:
        if loop.time() > deadline:
            pytest.fail(f"still {got!r}, not {want!r}")
        await asyncio.sleep(0.05)


async def replica_online(port: int) -> bool:
    """Whether the master on loopback ``port`` has a replica in sync that acknowledges writes
    (just after the first sync its first acknowledgement can take a second)."""
    async with aioredis.Redis(port=port, socket_timeout=2) as master:
        info: dict[str, Any] = await master.info("replication")
        replica = info.get("slave0")
        if not isinstance(replica, dict) or replica.get("state") != "online":
            return False
        await master.set("replica-check", "1")
        acked: Any = await cast(Any, master).execute_command("WAIT", 1, 100)
    return int(acked) == 1


@pytest.fixture
async def redis_ha(tmp_path: Path) -> AsyncIterator[RedisHa]:
    """A master, a replica in sync with it and a Sentinel that knows both (quorum 1, master
    down after 1 s), each in its own folder; all stopped after the test."""
    master = RedisServer(tmp_path / "master")
    replica = RedisServer(tmp_path / "replica", replica_of=master.port)
    sentinel = SentinelServer(tmp_path / "sentinel", master.port)
    try:
        master.start()
        replica.start()
        sentinel.start()
        port = replica.port
        # The replica must be in sync (WAIT counts only replicas online), and Sentinel must
        # have learnt of it from the master's INFO: a failover before that would have nothing
        # to promote.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FAILOVER_S
        while not (await replica_online(master.port) and await sentinel.knows_replica(port)):
            if loop.time() > deadline:
                pytest.fail(f"the replica never came online: {sentinel.log_tail()}")
            await asyncio.sleep(0.1)
        yield RedisHa(master, replica, sentinel)
    finally:
        sentinel.kill()
        replica.kill()
        master.kill()


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test's own."""
    return f"t{uuid.uuid4().hex[:12]}"


async def raw_get(port: int, key: bytes) -> bytes | None:
    """``key``'s value read straight from the server on loopback ``port`` (a replica too)."""
    async with aioredis.Redis(port=port, socket_timeout=2) as server:
        value: Any = await server.get(key)
    return None if value is None else bytes(value)


# -- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "key", "words"),
    [
        ({"sdl.sentinels": ["sentinel"]}, "sdl.sentinels", "'sentinel' is not host:port"),
        ({"sdl.sentinels": ["s:0"]}, "sdl.sentinels", "with a port 1-65535"),
        ({"sdl.sentinels": ["::1:26379"]}, "sdl.sentinels", "write an IPv6 address as [addr]"),
        ({"sdl.sentinels": ["s:26379"]}, "sdl.sentinel_master", "must name the master"),
        ({"sdl.sentinel_master": "ric"}, "sdl.sentinel_master", "needs sdl.sentinels"),
        (
            {"sdl.sentinels": ["s:26379"], "sdl.sentinel_master": "a b"},
            "sdl.sentinel_master",
            "letters, digits",
        ),
        (
            {"sdl.sentinels": ["s:1"], "sdl.sentinel_master": "m", "sdl.url": "unix:///r.sock"},
            "sdl.sentinel_master",
            "cannot be used with a unix:// sdl.url",
        ),
        ({"sdl.sentinel_term_wait_ms": -1}, "sdl.sentinel_term_wait_ms", "greater than or"),
    ],
)
def test_bad_sentinel_settings_are_refused_naming_the_key(
    overrides: dict[str, Any], key: str, words: str
) -> None:
    """A Sentinel address that is not host:port, sentinels without a master name (or the
    reverse), a bad master name, a unix:// URL or a negative wait is a ConfigError naming the
    key."""
    with pytest.raises(ConfigError) as err:
        load_config(environ={}, overrides={"sdl.backend": "redis", **overrides})
    assert err.value.key == key
    assert words in err.value.problem


def test_sentinel_settings_from_the_environment_make_a_sentinel_backend(tmp_path: Path) -> None:
    """RIC_SDL__SENTINELS (a JSON list) and RIC_SDL__SENTINEL_MASTER give a RedisBackend that
    names the master and its Sentinels (IPv6 in brackets), never the URL's host; an unreadable
    sentinel_password_file is an SdlError naming the key."""
    env = {
        "RIC_SDL__BACKEND": "redis",
        "RIC_SDL__SENTINELS": '["s1.example:26379", "[fd00::2]:26380"]',
        "RIC_SDL__SENTINEL_MASTER": "ric-sdl",
        "RIC_SDL__URL": "redis://ignored.example:6379/3",
    }
    config = load_config(environ=env)
    assert config.sdl.sentinels == ["s1.example:26379", "[fd00::2]:26380"]
    backend = from_config(config.sdl)
    assert isinstance(backend, RedisBackend)
    assert backend.describe() == (
        "redis master 'ric-sdl' via sentinel s1.example:26379,[fd00::2]:26380 prefix 'ric'"
    )
    missing = config.sdl.model_copy(update={"sentinel_password_file": str(tmp_path / "nope")})
    with pytest.raises(SdlError, match=r"cannot read sdl\.sentinel_password_file"):
        from_config(missing)


def test_a_backend_given_half_of_the_sentinel_settings_or_a_socket_url_is_refused() -> None:
    """RedisBackend itself refuses sentinels without a master name (and the reverse) and a
    unix:// URL with Sentinel, each an SdlError saying what is wrong."""
    with pytest.raises(SdlError, match="sentinels and sentinel_master go together"):
        RedisBackend(sentinels=[("127.0.0.1", 26379)])
    with pytest.raises(SdlError, match="sentinels and sentinel_master go together"):
        RedisBackend(sentinel_master="ric")
    with pytest.raises(SdlError, match="a unix:// URL cannot be used with Sentinel"):
        RedisBackend(
            "unix:///run/redis.sock", sentinels=[("127.0.0.1", 26379)], sentinel_master="ric"
        )


# -- against real servers ------------------------------------------------------------------------


async def test_the_backend_finds_the_master_and_a_claims_term_is_on_the_replica(
    redis_ha: RedisHa, prefix: str
) -> None:
    """Through the Sentinel the backend writes to the master it names (health says where), and
    a lease claim returns only once the replica holds the new term."""
    backend = redis_ha.backend(prefix)
    async with backend:
        assert backend.master == f"127.0.0.1:{redis_ha.master.port}"
        ok, detail = backend.health()
        assert ok and f"redis master 'ric' at 127.0.0.1:{redis_ha.master.port} via" in detail
        await backend.set("ns", {"k": b"v"})
        assert await backend.get("ns", ["k"]) == {"k": b"v"}
        term, holder = await backend.claim_lease("ric.cluster.r", NODE, "a", 5000)
        assert (term, holder) == (1, "")
        key = f"{prefix}:{{ric.cluster.r}}:term:{NODE}".encode()
        # No wait here: the WAIT inside the claim is what put it on the replica.
        assert await raw_get(redis_ha.replica.port, key) == b"1"


async def test_a_claim_no_replica_acknowledges_is_given_up(redis_ha: RedisHa, prefix: str) -> None:
    """With the replica connected but frozen (SIGSTOP), a claim's term reaches no replica
    within sentinel_term_wait_ms: the claim is an SdlError saying so and the lease it had taken
    is released."""
    backend = redis_ha.backend(prefix, term_wait_ms=200)
    async with backend:
        proc = redis_ha.replica.proc
        assert proc is not None
        proc.send_signal(signal.SIGSTOP)
        try:
            with pytest.raises(SdlError, match=r"new term 1 of .* reached no replica within"):
                await backend.claim_lease("ric.cluster.r", NODE, "a", 5000)
            assert await backend.leases("ric.cluster.r") == {}
        finally:
            proc.send_signal(signal.SIGCONT)


async def test_a_master_without_replicas_is_not_waited_for(redis_ha: RedisHa, prefix: str) -> None:
    """Once the replica is gone (as after a failover, until the old master returns), a claim
    does not wait: there is no replica a failover could promote."""
    backend = redis_ha.backend(prefix, term_wait_ms=5000)
    async with backend:
        redis_ha.replica.kill()
        await wait_for_async(lambda: replica_count(redis_ha.master.port), 0)
        assert await backend.claim_lease("ric.cluster.r", NODE, "a", 5000) == (1, "")


async def test_passwords_for_the_master_and_for_the_sentinels_are_used_and_never_shown(
    tmp_path: Path, prefix: str
) -> None:
    """A master with a password behind a Sentinel with a password of its own: given both (as
    password_file and sentinel_password_file give them) the backend works; with the wrong
    Sentinel password it cannot find the master, an SdlError that does not show a password."""
    with (
        RedisServer(tmp_path / "master", password="data-pw-1") as master,
        SentinelServer(
            tmp_path / "sentinel",
            master.port,
            password="sentinel-pw-2",
            master_password="data-pw-1",
        ) as sentinel,
    ):
        where = [("127.0.0.1", sentinel.port)]
        good = RedisBackend(
            key_prefix=prefix,
            password="data-pw-1",
            sentinels=where,
            sentinel_master=MASTER,
            sentinel_password="sentinel-pw-2",
        )
        async with good:
            await good.set("ns", {"k": b"v"})
            assert await good.get("ns", ["k"]) == {"k": b"v"}
            assert good.master == f"127.0.0.1:{master.port}"
            assert "pw" not in good.describe()
        bad = RedisBackend(
            key_prefix=prefix,
            password="data-pw-1",
            sentinels=where,
            sentinel_master=MASTER,
            sentinel_password="wrong-pw-3",
        )
        with pytest.raises(SdlError) as err:
            await bad.open()
        assert "cannot reach the Redis SDL at master 'ric' via sentinel" in str(err.value)
        assert "pw-" not in str(err.value)


def replica_config(ha: RedisHa, prefix: str) -> RuntimeConfig:
    """Replica ``a`` of RIC ``ric1`` on the Sentinel's master: E2 on a free port, no HTTP; its
    leases outlast a failover (it stops acting 7 s after its last renewal)."""
    return load_config(
        environ={},
        overrides={
            "ric_id": "ric1",
            "e2.port": 0,
            "http.enabled": False,
            **ha.overrides(prefix),
            "cluster.enabled": True,
            "cluster.replica_id": "a",
            "cluster.heartbeat_interval_s": 0.5,
            "cluster.member_ttl_s": 6.0,
            "cluster.lease_ttl_s": 8.0,
            "cluster.renew_interval_s": 0.5,
        },
    )


async def test_a_replica_carries_on_when_the_master_is_killed_and_sentinel_promotes(
    redis_ha: RedisHa, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGKILL the master under a running replica of the RIC: readiness says Redis is
    unreachable via the Sentinel, then, once the Sentinel promotes the replica, that the master
    changed from the old to the new; the node keeps its session, the lease renews on the new
    master with its term, writes succeed there, another replica's changes are heard again, and
    a new claim gets a higher term."""
    caplog.set_level(logging.INFO, logger="ric.sdl.redis")
    old = f"127.0.0.1:{redis_ha.master.port}"
    new = f"127.0.0.1:{redis_ha.replica.port}"
    async with Runtime(replica_config(redis_ha, prefix)) as runtime:
        cluster = runtime.cluster
        assert cluster is not None
        async with ScriptedNode(f"127.0.0.1:{runtime.port}") as node:
            await node.send(setup_request(node_id=1))
            assert (await node.recv()).WhichOneof("message") == "setup_response"
            assert cluster.term_of(NODE) == 1
            await wait_for(lambda: not runtime.state._pending, what="the node record")
            session = runtime.sessions[NODE]

            details: list[str] = []

            async def sample() -> None:
                """Keep the node alive and note every readiness detail of the SDL."""
                while True:
                    (check,) = [c for c in runtime.checks() if c.name == "sdl"]
                    if not details or details[-1] != check.detail:
                        details.append(check.detail)
                    await node.send(e2_pb2.NodeMessage(keep_alive=e2_pb2.KeepAlive()))
                    await asyncio.sleep(0.05)

            sampler = asyncio.get_running_loop().create_task(sample())
            try:
                redis_ha.master.kill()
                await wait_for(
                    lambda: "master changed" in runtime.sdl.health()[1],
                    timeout=FAILOVER_S,
                    what=f"the failover to be seen\n{redis_ha.sentinel.log_tail()}",
                )
            except BaseException:
                sampler.cancel()
                raise
            assert await redis_ha.sentinel.master() == redis_ha.replica.port
            ok, detail = runtime.sdl.health()
            assert ok and f"master changed from {old} to {new} at " in detail
            assert f"redis master 'ric' at {new} via sentinel" in detail
            assert any(d.startswith("Redis unreachable via sentinel ") for d in details), details
            assert any(
                f"changed from {old} to {new} (a Sentinel failover)" in m for m in caplog.messages
            )

            # The replica renews its lease on the new master, with the term it held.
            killed_at = asyncio.get_running_loop().time()
            await wait_for(
                lambda: cluster.last_renewal > killed_at, timeout=FAILOVER_S, what="a renewal"
            )
            assert not session.closed and cluster.acting and cluster.term_of(NODE) == 1
            assert isinstance(runtime.sdl, RedisBackend)
            leases = await runtime.sdl.leases(cluster.namespace)
            assert leases[NODE][0] == "1 a"

            await runtime.sdl.set("after", {"k": b"v"})
            assert await runtime.sdl.get("after", ["k"]) == {"k": b"v"}
            record = await raw_get(redis_ha.replica.port, f"{prefix}:{{{NODES}}}:k:{NODE}".encode())
            assert record is not None and json.loads(record)["term"] == 1

            # The change channel followed the master too: another replica's write is heard.
            heard: list[Change] = []
            runtime.sdl.watch("others", heard.append)
            other = redis_ha.backend(prefix)
            async with other:
                loop = asyncio.get_running_loop()
                deadline = loop.time() + FAILOVER_S
                while not heard:  # a write before the channel is back is not heard: again
                    assert loop.time() < deadline, "the other replica's change was not heard"
                    await other.set("others", {"x": b"1"})
                    await asyncio.sleep(0.2)
            assert heard[0] == Change("others", "x", "set")
            sampler.cancel()

        await wait_for(lambda: NODE not in runtime.sessions, what="the node to go")
        async with ScriptedNode(f"127.0.0.1:{runtime.port}") as node:
            await node.send(setup_request(node_id=1))
            assert (await node.recv()).WhichOneof("message") == "setup_response"
            assert cluster.term_of(NODE) == 2  # the term the old master gave survived it
