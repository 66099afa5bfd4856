"""What only the SQLite backend does: a file that survives, in WAL mode, with clear errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ric.sdl import Namespace, SdlError
from ric.sdl.sqlite import SqliteBackend


async def test_data_survives_close_and_reopen(tmp_path: Path) -> None:
    """Keys and groups written before close are there in a new backend on the same file."""
    path = tmp_path / "deep" / "er" / "sdl.sqlite3"
    async with SqliteBackend(path) as sdl:
        app = Namespace(sdl, "app")
        await app.set_many({"a": {"n": 1}, "b": [1, 2]})
        await app.group_add("cells", "c1", "c2")
        assert sdl.describe() == f"sqlite {path}"
    assert path.exists()
    async with SqliteBackend(path) as again:
        app = Namespace(again, "app")
        assert await app.items() == {"a": {"n": 1}, "b": [1, 2]}
        assert await app.group_members("cells") == {"c1", "c2"}


async def test_file_is_in_wal_mode(tmp_path: Path) -> None:
    """The file is put in WAL mode (readers never block the writer)."""
    path = tmp_path / "sdl.sqlite3"
    async with SqliteBackend(path) as sdl:
        await Namespace(sdl, "app").set("k", 1)
        db = sqlite3.connect(path)
        try:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            db.close()


async def test_unopenable_path_is_an_error_naming_it(tmp_path: Path) -> None:
    """A path under a regular file, or a file that is not a database, is an SdlError naming
    the path; the backend can be closed after."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    sdl = SqliteBackend(blocker / "sdl.sqlite3")
    with pytest.raises(SdlError, match=str(blocker / "sdl.sqlite3")):
        await sdl.open()
    await sdl.close()
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a SQLite database, not at all" * 100)
    with pytest.raises(SdlError, match=str(junk)):
        async with SqliteBackend(junk):
            pass


async def test_use_before_open_and_reopen_are_refused(tmp_path: Path) -> None:
    """Calls before open or after close, and opening twice, are refused with a clear message."""
    sdl = SqliteBackend(tmp_path / "sdl.sqlite3")
    with pytest.raises(SdlError, match="not open"):
        await Namespace(sdl, "app").get("k")
    async with sdl:
        with pytest.raises(SdlError, match="make a new one"):
            await sdl.open()
    with pytest.raises(SdlError, match="not open"):
        await Namespace(sdl, "app").get("k")
    with pytest.raises(SdlError, match="make a new one"):
        await sdl.open()
    await sdl.close()
