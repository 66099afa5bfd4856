"""What only the Redis backend does, against a real redis-server: the key layout, changes heard
across replicas, passwords kept out of errors, and a server that goes away."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from ric.sdl import Change, Namespace, SdlError
from ric.sdl.redis import RedisBackend
from tests.conftest import wait_for
from tests.sdl.redis_server import RedisServer, free_port


async def test_key_layout(redis_server: RedisServer, key_prefix: str) -> None:
    """Keys, groups and the key index sit under <prefix>:{<namespace>}, in separate spaces."""
    async with RedisBackend(redis_server.url, key_prefix=key_prefix) as sdl:
        app = Namespace(sdl, "a:b")
        await app.set("k", 1)
        await app.group_add("k", "m")
        assert key_prefix in sdl.describe() and str(redis_server.port) in sdl.describe()
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        keys = sorted(await client.keys(f"{key_prefix}:*"))
        assert keys == [
            f"{key_prefix}:{{a:b}}:g:k".encode(),
            f"{key_prefix}:{{a:b}}:index".encode(),
            f"{key_prefix}:{{a:b}}:k:k".encode(),
        ]
        assert await client.get(f"{key_prefix}:{{a:b}}:k:k") == b"1"
    finally:
        await client.aclose()


async def test_replicas_hear_each_others_changes(
    redis_server: RedisServer, key_prefix: str
) -> None:
    """A change made through one backend reaches the watchers of another on the same server,
    once, and only in the namespace watched."""
    async with (
        RedisBackend(redis_server.url, key_prefix=key_prefix) as one,
        RedisBackend(redis_server.url, key_prefix=key_prefix) as two,
    ):
        heard_one: list[Change] = []
        heard_two: list[Change] = []
        Namespace(one, "shared").watch(heard_one.append)
        Namespace(two, "shared").watch(heard_two.append)
        await Namespace(one, "shared").set("k", 1)
        await Namespace(one, "quiet").set("k", 1)
        await Namespace(two, "shared").group_add("g", "m")
        await wait_for(lambda: len(heard_two) == 2 and len(heard_one) == 2, what="both changes")
        assert heard_one == [Change("shared", "k", "set"), Change("shared", "g", "group_add")]
        assert heard_two == [Change("shared", "k", "set"), Change("shared", "g", "group_add")]
        assert await Namespace(two, "shared").get("k") == 1
        await asyncio.sleep(0.05)
        assert len(heard_one) == len(heard_two) == 2  # nobody heard a change twice


async def test_other_prefixes_are_other_stores(redis_server: RedisServer, key_prefix: str) -> None:
    """Two key prefixes on one server share neither keys nor change notifications."""
    async with (
        RedisBackend(redis_server.url, key_prefix=key_prefix) as one,
        RedisBackend(redis_server.url, key_prefix=key_prefix + "x") as two,
    ):
        heard: list[Change] = []
        Namespace(two, "app").watch(heard.append)
        await Namespace(one, "app").set("k", 1)
        assert await Namespace(two, "app").get("k") is None
        await asyncio.sleep(0.05)
        assert heard == []


async def test_unreachable_server_is_named_without_the_password() -> None:
    """Nothing listening: open raises SdlError naming host:port, never the password."""
    port = free_port()
    sdl = RedisBackend(f"redis://127.0.0.1:{port}/0", password="s3cret-pw")
    with pytest.raises(SdlError, match=f"127.0.0.1:{port}") as err:
        await sdl.open()
    assert "s3cret-pw" not in str(err.value) and "s3cret-pw" not in repr(err.value.__cause__)
    await sdl.close()


async def test_password_is_used_and_a_wrong_one_is_refused(tmp_path: Path) -> None:
    """Against a server that requires a password, the right one works and a wrong one is an
    SdlError that does not show either."""
    with RedisServer(tmp_path, password="right-pw") as server:
        async with RedisBackend(server.url, password="right-pw") as sdl:
            await Namespace(sdl, "app").set("k", 1)
        wrong = RedisBackend(server.url, password="wrong-pw")
        with pytest.raises(SdlError, match=f"127.0.0.1:{server.port}") as err:
            await wrong.open()
        assert "pw" not in str(err.value)
        await wrong.close()


async def test_server_loss_is_an_error_and_close_stays_clean(
    tmp_path: Path, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """When the server dies, calls fail with SdlError naming it; when it is back on the same
    port they work again and other replicas' changes are heard again (each backend warns once
    that its change channel is lost, however many retries it took); close is clean either way."""
    caplog.set_level(logging.WARNING, logger="ric.sdl.redis")
    server = RedisServer(tmp_path).start()
    try:
        sdl = RedisBackend(server.url, key_prefix=key_prefix, timeout_s=1.0)
        other = RedisBackend(server.url, key_prefix=key_prefix, timeout_s=1.0)
        async with sdl, other:
            app = Namespace(sdl, "app")
            heard: list[Change] = []
            Namespace(other, "app").watch(heard.append)
            await app.set("k", 1)
            server.kill()
            with pytest.raises(SdlError, match=f"127.0.0.1:{server.port}"):
                await app.set("k", 2)
            server.start()
            await app.set("k", 3)  # the client reconnects by itself
            assert await app.get("k") == 3
            await wait_for(lambda: len(heard) >= 1, what="the first change")

            async def heard_after_restart() -> bool:
                await app.set("again", len(heard))  # until the subscriber is back
                await asyncio.sleep(0.05)
                return Change("app", "again", "set") in heard

            for _ in range(100):
                if await heard_after_restart():
                    break
            else:
                pytest.fail("changes were not heard after the server came back")
            lost = [r for r in caplog.records if "change channel lost" in r.getMessage()]
            assert len(lost) == 2  # one per backend: sdl's and other's listeners
            server.kill()
        await sdl.close()
    finally:
        server.kill()


async def test_bad_prefix_and_url_are_refused() -> None:
    """A key prefix with glob characters or braces, or a URL that is not Redis's, is refused."""
    with pytest.raises(SdlError, match="prefix"):
        RedisBackend("redis://127.0.0.1:1/0", key_prefix="a*{b}")
    with pytest.raises(SdlError, match="not valid"):
        RedisBackend("http://127.0.0.1:1/0")


async def test_readiness_follows_the_redis_server(
    tmp_path: Path, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """/readyz has an sdl check: it fails while the Redis server is down (WARNING logged once)
    and passes again when it is back (INFO logged), found by the backend's probe alone."""
    import aiohttp

    from ric.config import load_config
    from ric.http import HttpServer
    from ric.runtime import Runtime

    async def readyz(url: str) -> tuple[int, dict[str, object]]:
        async with aiohttp.ClientSession() as http, http.get(f"{url}/readyz") as response:
            return response.status, await response.json()

    caplog.set_level(logging.INFO, logger="ric.sdl.redis")
    server = RedisServer(tmp_path).start()
    try:
        config = load_config(environ={}, overrides={"e2.port": 0, "http.port": 0})
        sdl = RedisBackend(server.url, key_prefix=key_prefix, timeout_s=1.0, probe_interval_s=0.05)
        http = HttpServer(config.http)
        async with Runtime(config, components=[http], sdl=sdl):
            status, body = await readyz(http.url)
            assert (
                status == 200
                and {"name": "sdl", "ok": True, "detail": sdl.describe()}
                in (
                    body["checks"]  # type: ignore[operator]
                )
            )
            server.kill()
            await wait_for(lambda: not sdl.health()[0], what="the sdl check to fail")
            status, body = await readyz(http.url)
            assert status == 503 and body["failed"] == ["sdl"]
            warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
            assert sum(f"127.0.0.1:{server.port}/0 is unreachable" in w for w in warnings) == 1
            server.start()
            await wait_for(lambda: sdl.health()[0], what="the sdl check to pass again")
            assert (await readyz(http.url))[0] == 200
            infos = [r.getMessage() for r in caplog.records if r.levelname == "INFO"]
            assert f"Redis SDL at 127.0.0.1:{server.port}/0 is reachable again" in infos
    finally:
        server.kill()
