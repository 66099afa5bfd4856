"""The [sdl] config section and the backend it makes (``ric.sdl.from_config``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ric.config import load_config
from ric.errors import ConfigError
from ric.runtime import Runtime
from ric.sdl import Namespace, SdlError, from_config
from ric.sdl.memory import MemoryBackend
from ric.sdl.redis import RedisBackend
from ric.sdl.sqlite import SqliteBackend
from tests.sdl.redis_server import RedisServer


def test_defaults_are_memory_with_sqlite_and_redis_places() -> None:
    """By default the SDL is in memory; the SQLite path and the Redis URL have defaults."""
    sdl = load_config(environ={}).sdl
    assert (sdl.backend, sdl.path, sdl.url, sdl.key_prefix) == (
        "memory",
        "ric-data/sdl.sqlite3",
        "redis://127.0.0.1:6379/0",
        "ric",
    )
    assert sdl.shared == {}
    assert isinstance(from_config(sdl), MemoryBackend)


async def test_environment_picks_a_sqlite_backend_for_the_runtime(tmp_path: Path) -> None:
    """RIC_SDL__BACKEND and RIC_SDL__PATH make the runtime keep its state in that file."""
    path = tmp_path / "new" / "sdl.sqlite3"
    env = {"RIC_SDL__BACKEND": "sqlite", "RIC_SDL__PATH": str(path)}
    config = load_config(environ=env, overrides={"e2.port": 0})
    async with Runtime(config, listen=False) as runtime:
        assert isinstance(runtime.sdl, SqliteBackend) and runtime.sdl.path == path
    assert path.exists()


def test_redis_backend_from_config_reads_the_password_file(tmp_path: Path) -> None:
    """backend = "redis" gives a RedisBackend on the URL and prefix; the password comes from
    password_file, and a missing file is an SdlError naming the key."""
    secret = tmp_path / "redis.pw"
    secret.write_text("pw-from-file\n")
    config = load_config(
        environ={},
        overrides={
            "sdl.backend": "redis",
            "sdl.url": "redis://db.example:6390/2",
            "sdl.key_prefix": "site1",
            "sdl.password_file": str(secret),
        },
    )
    backend = from_config(config.sdl)
    assert isinstance(backend, RedisBackend)
    assert backend.describe() == "redis db.example:6390/2 prefix 'site1'"
    assert "pw-from-file" not in backend.describe()
    missing = config.sdl.model_copy(update={"password_file": str(tmp_path / "nope")})
    with pytest.raises(SdlError, match=r"sdl\.password_file"):
        from_config(missing)


async def test_redis_password_file_is_used(tmp_path: Path, key_prefix: str) -> None:
    """With password_file, the runtime's backend logs in to a server that requires it."""
    secret = tmp_path / "redis.pw"
    secret.write_text("the-password")
    with RedisServer(tmp_path / "server", password="the-password") as server:
        config = load_config(
            environ={},
            overrides={
                "sdl.backend": "redis",
                "sdl.url": server.url,
                "sdl.key_prefix": key_prefix,
                "sdl.password_file": str(secret),
            },
        )
        async with from_config(config.sdl) as backend:
            await Namespace(backend, "app").set("k", 1)
            assert await Namespace(backend, "app").get("k") == 1


def test_a_password_in_the_url_is_refused_and_not_echoed() -> None:
    """A Redis URL holding a password is refused with the key named, never showing it."""
    with pytest.raises(ConfigError) as err:
        load_config(environ={"RIC_SDL__URL": "redis://user:hunter2@db:6379/0"})
    assert "sdl.url" in str(err.value) and "password_file" in str(err.value)
    assert "hunter2" not in str(err.value)
    with pytest.raises(ConfigError, match=r"sdl\.url"):
        load_config(environ={"RIC_SDL__URL": "http://db:6379"})


@pytest.mark.parametrize(
    ("shared", "message"),
    [
        ({"xapp.mlb": ["kpimon"]}, "reserved"),
        ({"ric.nodes": ["mlb"]}, "reserved"),
        ({"bad name": ["mlb"]}, "not a namespace"),
        ({"cells": [""]}, "xApp names"),
    ],
)
def test_shared_grants_are_checked(shared: dict[str, list[str]], message: str) -> None:
    """[sdl] shared refuses reserved or malformed namespaces and empty xApp names."""
    with pytest.raises(ConfigError, match=message):
        load_config(environ={}, overrides={"sdl.shared": shared})


def test_bad_backend_and_prefix_are_refused() -> None:
    """An unknown backend or a key prefix with glob characters is refused, naming the key."""
    with pytest.raises(ConfigError, match=r"sdl\.backend"):
        load_config(environ={"RIC_SDL__BACKEND": "etcd"})
    with pytest.raises(ConfigError, match=r"sdl\.key_prefix"):
        load_config(environ={"RIC_SDL__KEY_PREFIX": "ric*"})
