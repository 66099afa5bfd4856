"""The SQLite SDL backend: one file on one host, kept across restarts.

The standard library's ``sqlite3`` module is blocking, so every call runs on ONE worker thread
that owns the only connection (a single-thread executor), never on the event loop. That one
thread serialises every request: a conditional operation (set-if, set-if-not-exists,
delete-if) reads and writes inside one ``BEGIN IMMEDIATE`` transaction that nothing in this
process can interleave with, and that also holds the database's write lock against another
process using the same file. No ``aiosqlite``: it is this same design (a thread per
connection) with a queue in front, and one more dependency for no gain.

Watchers hear the changes made through this backend; another process writing the same file
is not heard (use Redis to share a store, and its changes, between runtimes).

The file is in WAL mode with ``synchronous=NORMAL``: readers do not block the writer, and a
committed change survives a crash of the process (a power loss may lose the last
transactions, never corrupt the file). Its directory is created when missing.

Tables (``WITHOUT ROWID``, keyed by namespace first)::

    kv(ns, key, value)          the keys of each namespace
    grp(ns, name, member)       one row per member of each group
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import enum
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from ric.sdl import Change, SdlBackend, SdlError, check_namespace

__all__ = ["SqliteBackend"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (ns, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS grp (
    ns TEXT NOT NULL, name TEXT NOT NULL, member BLOB NOT NULL, PRIMARY KEY (ns, name, member)
) WITHOUT ROWID;
"""

BUSY_TIMEOUT_MS = 5000
"""How long a write waits for another process holding the file's write lock."""


class _State(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


class SqliteBackend(SdlBackend):
    """Keys and groups in a SQLite file at ``path``; see the module docstring for the design."""

    kind = "sqlite"

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self._state = _State.NEW
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None  # used only on the executor's thread

    def describe(self) -> str:
        return f"sqlite {self.path}"

    def health(self) -> tuple[bool, str]:
        if self._state is _State.OPEN:
            return True, self.describe()
        return False, f"{self.describe()} is {self._state.value}"

    async def open(self) -> None:
        """Create the directory and file if missing, and open the connection; SdlError naming
        the path when that fails."""
        if self._state is not _State.NEW:
            raise SdlError(f"the SQLite SDL at {self.path} was {self._state.value}; make a new one")
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ric-sdl")
        self._state = _State.OPEN
        try:
            await self._run(self._connect)
        except BaseException:
            await self.close()
            raise

    def _connect(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        except (OSError, sqlite3.Error) as exc:
            raise SdlError(f"cannot open the SQLite SDL file {self.path}: {exc}") from exc
        try:
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            db.execute("PRAGMA synchronous = NORMAL")
            db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            db.close()
            raise SdlError(f"cannot use {self.path} as the SQLite SDL file: {exc}") from exc
        if str(mode).lower() != "wal":
            db.close()
            raise SdlError(f"{self.path} cannot be put in WAL mode (journal mode {mode})")
        self._db = db

    async def close(self) -> None:
        """Close the connection (committed data is on disk); closing twice does nothing."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
        finally:
            executor.shutdown(wait=True)

    def _disconnect(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._state is not _State.OPEN or self._executor is None:
            raise SdlError(f"the SQLite SDL at {self.path} is not open (use 'async with')")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise SdlError(f"the SQLite SDL at {self.path} is not open")
        return self._db

    async def _tx(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one transaction on the worker thread (rolled back if it raises)."""

        def work() -> T:
            db = self._conn()
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(db)
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise SdlError(f"SQLite SDL {self.path}: {exc}") from exc
            return result

        return await self._run(work)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def work() -> T:
            try:
                return fn(self._conn())
            except sqlite3.Error as exc:
                raise SdlError(f"SQLite SDL {self.path}: {exc}") from exc

        return await self._run(work)

    # -- keys ----------------------------------------------------------------------------

    async def get(self, namespace: str, keys: Sequence[str]) -> dict[str, bytes]:
        check_namespace(namespace)
        wanted = list(dict.fromkeys(keys))

        def read(db: sqlite3.Connection) -> dict[str, bytes]:
            out: dict[str, bytes] = {}
            for i in range(0, len(wanted), 500):  # below SQLite's bound-parameter limit
                chunk = wanted[i : i + 500]
                marks = ",".join("?" * len(chunk))
                rows = db.execute(
                    f"SELECT key, value FROM kv WHERE ns = ? AND key IN ({marks})",
                    (namespace, *chunk),
                )
                out.update((k, bytes(v)) for k, v in rows)
            return out

        return await self._read(read) if wanted else {}

    async def set(self, namespace: str, items: Mapping[str, bytes]) -> None:
        check_namespace(namespace)
        rows = [(namespace, k, bytes(v)) for k, v in items.items()]

        def write(db: sqlite3.Connection) -> None:
            db.executemany(
                "INSERT INTO kv (ns, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value",
                rows,
            )

        await self._tx(write)
        for key in items:
            self._notify(Change(namespace, key, "set"))

    async def set_if(self, namespace: str, key: str, old: bytes, new: bytes) -> bool:
        check_namespace(namespace)

        def write(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "UPDATE kv SET value = ? WHERE ns = ? AND key = ? AND value = ?",
                (new, namespace, key, old),
            )
            return cur.rowcount == 1

        done = await self._tx(write)
        if done:
            self._notify(Change(namespace, key, "set"))
        return done

    async def set_if_not_exists(self, namespace: str, key: str, value: bytes) -> bool:
        check_namespace(namespace)

        def write(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "INSERT INTO kv (ns, key, value) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (namespace, key, value),
            )
            return cur.rowcount == 1

        done = await self._tx(write)
        if done:
            self._notify(Change(namespace, key, "set"))
        return done

    async def delete(self, namespace: str, keys: Sequence[str]) -> int:
        check_namespace(namespace)
        unique = list(dict.fromkeys(keys))

        def write(db: sqlite3.Connection) -> list[str]:
            gone = []
            for key in unique:
                cur = db.execute("DELETE FROM kv WHERE ns = ? AND key = ?", (namespace, key))
                if cur.rowcount == 1:
                    gone.append(key)
            return gone

        gone = await self._tx(write) if unique else []
        for key in gone:
            self._notify(Change(namespace, key, "delete"))
        return len(gone)

    async def delete_if(self, namespace: str, key: str, old: bytes) -> bool:
        check_namespace(namespace)

        def write(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "DELETE FROM kv WHERE ns = ? AND key = ? AND value = ?", (namespace, key, old)
            )
            return cur.rowcount == 1

        done = await self._tx(write)
        if done:
            self._notify(Change(namespace, key, "delete"))
        return done

    async def keys(self, namespace: str, prefix: str = "") -> list[str]:
        check_namespace(namespace)
        # substr() compares the prefix literally (LIKE would read '%' and '_' as wildcards);
        # 'key >= prefix' lets the primary key index skip what sorts before it.
        return await self._read(
            lambda db: [
                k
                for (k,) in db.execute(
                    "SELECT key FROM kv WHERE ns = ? AND key >= ? AND substr(key, 1, ?) = ? "
                    "ORDER BY key",
                    (namespace, prefix, len(prefix), prefix),
                )
            ]
        )

    # -- groups --------------------------------------------------------------------------

    async def group_add(self, namespace: str, group: str, members: Sequence[bytes]) -> int:
        check_namespace(namespace)
        rows = [(namespace, group, bytes(m)) for m in dict.fromkeys(members)]

        def write(db: sqlite3.Connection) -> int:
            before = db.total_changes
            db.executemany(
                "INSERT INTO grp (ns, name, member) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                rows,
            )
            return db.total_changes - before

        added = await self._tx(write) if rows else 0
        if added:
            self._notify(Change(namespace, group, "group_add"))
        return added

    async def group_remove(self, namespace: str, group: str, members: Sequence[bytes]) -> int:
        check_namespace(namespace)
        rows = [(namespace, group, bytes(m)) for m in dict.fromkeys(members)]

        def write(db: sqlite3.Connection) -> int:
            before = db.total_changes
            db.executemany("DELETE FROM grp WHERE ns = ? AND name = ? AND member = ?", rows)
            return db.total_changes - before

        removed = await self._tx(write) if rows else 0
        if removed:
            self._notify(Change(namespace, group, "group_remove"))
        return removed

    async def group_members(self, namespace: str, group: str) -> builtins.set[bytes]:
        check_namespace(namespace)
        return await self._read(
            lambda db: {
                bytes(m)
                for (m,) in db.execute(
                    "SELECT member FROM grp WHERE ns = ? AND name = ?", (namespace, group)
                )
            }
        )

    async def group_contains(self, namespace: str, group: str, member: bytes) -> bool:
        check_namespace(namespace)
        return await self._read(
            lambda db: (
                db.execute(
                    "SELECT 1 FROM grp WHERE ns = ? AND name = ? AND member = ?",
                    (namespace, group, member),
                ).fetchone()
                is not None
            )
        )

    async def group_size(self, namespace: str, group: str) -> int:
        check_namespace(namespace)
        return await self._read(
            lambda db: int(
                db.execute(
                    "SELECT count(*) FROM grp WHERE ns = ? AND name = ?", (namespace, group)
                ).fetchone()[0]
            )
        )

    async def group_delete(self, namespace: str, group: str) -> bool:
        check_namespace(namespace)

        def write(db: sqlite3.Connection) -> bool:
            cur = db.execute("DELETE FROM grp WHERE ns = ? AND name = ?", (namespace, group))
            return cur.rowcount > 0

        existed = await self._tx(write)
        if existed:
            self._notify(Change(namespace, group, "group_delete"))
        return existed
