"""Fixtures for the SDL tests: a real redis-server, and one backend of each kind."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from ric.sdl import SdlBackend
from ric.sdl.memory import MemoryBackend
from ric.sdl.redis import RedisBackend
from ric.sdl.sqlite import SqliteBackend
from tests.sdl.redis_server import RedisServer

BACKENDS = ["memory", "sqlite", "redis"]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session (tests isolate themselves with their own key prefix);
    stopped at the end."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def key_prefix() -> str:
    """A Redis key prefix of this test's own, so tests sharing the server do not meet."""
    return f"t{uuid.uuid4().hex[:12]}"


def make_backend(kind: str, tmp_path: Path, url: str = "", key_prefix: str = "ric") -> SdlBackend:
    """A new, unopened backend of ``kind``: sqlite in ``tmp_path``, redis at ``url``."""
    if kind == "sqlite":
        return SqliteBackend(tmp_path / "sdl" / "sdl.sqlite3")
    if kind == "redis":
        return RedisBackend(url, key_prefix=key_prefix)
    return MemoryBackend()


@pytest.fixture(params=BACKENDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    """Each backend kind in turn."""
    kind: str = request.param
    return kind


@pytest.fixture
def new_backend(
    backend_kind: str, tmp_path: Path, request: pytest.FixtureRequest, key_prefix: str
) -> Callable[[], SdlBackend]:
    """A factory of unopened backends of the current kind on the same store (same SQLite
    file, same Redis server and prefix)."""
    url = request.getfixturevalue("redis_server").url if backend_kind == "redis" else ""

    def make() -> SdlBackend:
        return make_backend(backend_kind, tmp_path, url, key_prefix)

    return make


@pytest.fixture
async def backend(new_backend: Callable[[], SdlBackend]) -> AsyncIterator[SdlBackend]:
    """An open backend of each kind in turn (the memory one, a SQLite file, a Redis server);
    closed after the test."""
    sdl = new_backend()
    async with sdl:
        yield sdl
