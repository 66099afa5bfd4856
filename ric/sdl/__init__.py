"""The shared data layer (SDL): a namespaced async key-value store with change notifications.

The runtime keeps its own state here (A1 policies, subscriptions, the node registry) and
offers it to xApps, each confined to its own namespace unless config grants a shared one::

    await self.sdl.set("targets", {"2-000002": {"max_delay_ms": 5.0}})
    if await self.sdl.set_if_not_exists("leader", self.name):
        ...
    await self.sdl.group_add("hot-cells", "001-01-4097")

Layers:

- :class:`SdlBackend`: the abstract store, bytes in and out, atomic per call. Backends:
  :class:`~ric.sdl.memory.MemoryBackend` (default, one process),
  :class:`~ric.sdl.sqlite.SqliteBackend` (a file on one host, survives restarts) and
  :class:`~ric.sdl.redis.RedisBackend` (shared by several runtime replicas). One test suite
  runs against all three.
- :class:`Namespace`: what the runtime and xApps use: JSON values under one namespace.
- :func:`from_config`: the backend the ``[sdl]`` config section names.

Keys and groups live in separate spaces of a namespace: ``set("a", ...)`` and
``group_add("a", ...)`` do not collide. Every change that modifies the store is announced to
the watchers of its namespace as a :class:`Change` (after it happened; watchers are called on
the event loop and must not block). With Redis, watchers see the changes of every replica.
"""

from __future__ import annotations

import abc
import builtins
import json
import logging
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ric.errors import RicError

if TYPE_CHECKING:
    from ric.config import SdlSettings

__all__ = [
    "Change",
    "ChangeOp",
    "Listener",
    "Namespace",
    "SdlBackend",
    "SdlError",
    "check_key",
    "check_namespace",
    "decode_value",
    "encode_value",
    "from_config",
    "granted_namespace",
    "xapp_namespace",
]

log = logging.getLogger(__name__)

ChangeOp = Literal["set", "delete", "group_add", "group_remove", "group_delete"]

NAMESPACE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")
MAX_KEY_CHARS = 1024


class SdlError(RicError):
    """An SDL request is malformed (bad namespace, key or value) or its backend failed."""


@dataclass(frozen=True, slots=True)
class Change:
    """One change of the store: ``op`` on ``key`` (a key, or a group name for group ops)."""

    namespace: str
    key: str
    op: ChangeOp


Listener = Callable[[Change], None]
"""A watcher of a namespace; called on the event loop after each change, must not block."""


def check_namespace(namespace: str) -> str:
    """Return ``namespace`` if valid, else raise SdlError naming it and the rule."""
    if not isinstance(namespace, str) or not NAMESPACE_PATTERN.match(namespace):
        raise SdlError(
            f"SDL namespace {namespace!r} is not valid: 1-128 characters of letters, digits, "
            "'_', '.', ':' and '-', starting with a letter or digit"
        )
    return namespace


def check_key(key: str, what: str = "key") -> str:
    """Return ``key`` if valid (1-1024 characters, no control characters), else raise."""
    if not isinstance(key, str) or not key:
        raise SdlError(f"SDL {what} must be a non-empty string, got {key!r}")
    if len(key) > MAX_KEY_CHARS:
        raise SdlError(f"SDL {what} {key[:40]!r}... is longer than {MAX_KEY_CHARS} characters")
    if any(ord(c) < 32 or c == "\x7f" for c in key):
        raise SdlError(f"SDL {what} {key!r} contains a control character")
    try:
        key.encode()
    except UnicodeEncodeError:  # a lone surrogate: no backend can store it as UTF-8
        raise SdlError(f"SDL {what} {key!r} is not valid Unicode text") from None
    return key


def encode_value(value: Any, key: str = "") -> bytes:
    """``value`` as canonical JSON bytes (sorted keys, no NaN), so equal values compare equal."""
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SdlError(f"SDL value for key {key!r} cannot be stored as JSON: {exc}") from exc
    return text.encode()


def decode_value(data: bytes, key: str = "") -> Any:
    """The JSON value stored as ``data``."""
    try:
        return json.loads(data)
    except ValueError as exc:
        raise SdlError(f"SDL value of key {key!r} is not JSON: {exc}") from exc


class SdlBackend(abc.ABC):
    """A store of namespaced keys (bytes values) and groups (sets of bytes members).

    Every method is atomic on its own. Use as an async context manager, or call
    :meth:`open` and :meth:`close`. Implementations announce each change to the watchers of
    its namespace through :meth:`_notify` (or, for shared backends, through their server).
    """

    kind: ClassVar[str] = ""
    """Short backend name for logs and status: ``memory``, ``sqlite`` or ``redis``."""

    def __init__(self) -> None:
        self._watchers: dict[str, list[Listener]] = {}

    async def __aenter__(self) -> SdlBackend:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Connect or open files; the default does nothing."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and files; the default does nothing."""

    def describe(self) -> str:
        """Where the data lives, for logs (never a password)."""
        return self.kind

    def health(self) -> tuple[bool, str]:
        """Whether the store answers now, and why not (readiness: the runtime's ``sdl``
        check). Cheap: it reads what the backend last learnt, it does not ask."""
        return True, self.describe()

    # -- keys ----------------------------------------------------------------------------

    @abc.abstractmethod
    async def get(self, namespace: str, keys: Sequence[str]) -> dict[str, bytes]:
        """The values of those of ``keys`` that exist."""

    @abc.abstractmethod
    async def set(self, namespace: str, items: Mapping[str, bytes]) -> None:
        """Set every key of ``items`` at once."""

    @abc.abstractmethod
    async def set_if(self, namespace: str, key: str, old: bytes, new: bytes) -> bool:
        """Set ``key`` to ``new`` only if it now holds ``old``; whether it did."""

    @abc.abstractmethod
    async def set_if_not_exists(self, namespace: str, key: str, value: bytes) -> bool:
        """Set ``key`` only if it does not exist; whether it did."""

    @abc.abstractmethod
    async def delete(self, namespace: str, keys: Sequence[str]) -> int:
        """Delete ``keys``; how many existed."""

    @abc.abstractmethod
    async def delete_if(self, namespace: str, key: str, old: bytes) -> bool:
        """Delete ``key`` only if it now holds ``old``; whether it did."""

    @abc.abstractmethod
    async def keys(self, namespace: str, prefix: str = "") -> list[str]:
        """The keys of ``namespace`` starting with ``prefix``, sorted."""

    # -- groups --------------------------------------------------------------------------

    @abc.abstractmethod
    async def group_add(self, namespace: str, group: str, members: Sequence[bytes]) -> int:
        """Add ``members`` to ``group``; how many were new."""

    @abc.abstractmethod
    async def group_remove(self, namespace: str, group: str, members: Sequence[bytes]) -> int:
        """Remove ``members`` from ``group``; how many were there."""

    @abc.abstractmethod
    async def group_members(self, namespace: str, group: str) -> builtins.set[bytes]:
        """The members of ``group`` (empty if there is no such group)."""

    @abc.abstractmethod
    async def group_contains(self, namespace: str, group: str, member: bytes) -> bool:
        """Whether ``member`` is in ``group``."""

    @abc.abstractmethod
    async def group_size(self, namespace: str, group: str) -> int:
        """How many members ``group`` has."""

    @abc.abstractmethod
    async def group_delete(self, namespace: str, group: str) -> bool:
        """Delete ``group``; whether it existed."""

    # -- notifications -------------------------------------------------------------------

    def watch(self, namespace: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` for every change in ``namespace``; returns the function that
        stops it."""
        check_namespace(namespace)
        self._watchers.setdefault(namespace, []).append(listener)

        def stop() -> None:
            listeners = self._watchers.get(namespace, [])
            if listener in listeners:
                listeners.remove(listener)
            if not listeners:
                self._watchers.pop(namespace, None)

        return stop

    def _notify(self, change: Change) -> None:
        """Deliver ``change`` to the watchers of its namespace; a failing watcher is logged
        and the others still run."""
        for listener in tuple(self._watchers.get(change.namespace, ())):
            try:
                listener(change)
            except Exception:  # a watcher's bug must not break the writer
                log.exception("SDL watcher of namespace %s failed on %s", change.namespace, change)


class Namespace:
    """One namespace of an SDL backend, with JSON values and string group members.

    What xApps get as ``self.sdl`` (their own namespace) and the runtime uses for its state.
    """

    def __init__(self, backend: SdlBackend, name: str) -> None:
        self.backend = backend
        self.name = check_namespace(name)

    def __repr__(self) -> str:
        return f"Namespace({self.name!r}, {self.backend.describe()})"

    async def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when it does not exist."""
        found = await self.backend.get(self.name, [check_key(key)])
        return decode_value(found[key], key) if key in found else default

    async def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        """The values of those of ``keys`` that exist."""
        found = await self.backend.get(self.name, [check_key(k) for k in keys])
        return {k: decode_value(v, k) for k, v in found.items()}

    async def items(self, prefix: str = "") -> dict[str, Any]:
        """Every key starting with ``prefix`` with its value, sorted by key."""
        keys = await self.backend.keys(self.name, prefix)
        found = await self.backend.get(self.name, keys)
        return {k: decode_value(found[k], k) for k in keys if k in found}

    async def set(self, key: str, value: Any) -> None:
        """Set ``key`` to ``value`` (anything JSON can hold)."""
        await self.backend.set(self.name, {check_key(key): encode_value(value, key)})

    async def set_many(self, items: Mapping[str, Any]) -> None:
        """Set several keys at once (atomically)."""
        encoded = {check_key(k): encode_value(v, k) for k, v in items.items()}
        if encoded:
            await self.backend.set(self.name, encoded)

    async def set_if(self, key: str, old: Any, new: Any) -> bool:
        """Set ``key`` to ``new`` only if it holds ``old`` now; whether it did."""
        return await self.backend.set_if(
            self.name, check_key(key), encode_value(old, key), encode_value(new, key)
        )

    async def set_if_not_exists(self, key: str, value: Any) -> bool:
        """Set ``key`` only if it does not exist; whether it did."""
        return await self.backend.set_if_not_exists(
            self.name, check_key(key), encode_value(value, key)
        )

    async def delete(self, *keys: str) -> int:
        """Delete ``keys``; how many existed."""
        if not keys:
            return 0
        return await self.backend.delete(self.name, [check_key(k) for k in keys])

    async def delete_if(self, key: str, old: Any) -> bool:
        """Delete ``key`` only if it holds ``old`` now; whether it did."""
        return await self.backend.delete_if(self.name, check_key(key), encode_value(old, key))

    async def keys(self, prefix: str = "") -> list[str]:
        """The keys starting with ``prefix``, sorted."""
        if not isinstance(prefix, str):
            raise SdlError(f"SDL key prefix must be a string, got {prefix!r}")
        return await self.backend.keys(self.name, prefix)

    async def group_add(self, group: str, *members: str) -> int:
        """Add ``members`` to ``group``; how many were new."""
        return await self.backend.group_add(self.name, check_key(group, "group"), _members(members))

    async def group_remove(self, group: str, *members: str) -> int:
        """Remove ``members`` from ``group``; how many were there."""
        return await self.backend.group_remove(
            self.name, check_key(group, "group"), _members(members)
        )

    async def group_members(self, group: str) -> builtins.set[str]:
        """The members of ``group``."""
        raw = await self.backend.group_members(self.name, check_key(group, "group"))
        return {m.decode() for m in raw}

    async def group_contains(self, group: str, member: str) -> bool:
        """Whether ``member`` is in ``group``."""
        return await self.backend.group_contains(
            self.name, check_key(group, "group"), _members((member,))[0]
        )

    async def group_size(self, group: str) -> int:
        """How many members ``group`` has."""
        return await self.backend.group_size(self.name, check_key(group, "group"))

    async def group_delete(self, group: str) -> bool:
        """Delete ``group``; whether it existed."""
        return await self.backend.group_delete(self.name, check_key(group, "group"))

    def watch(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(change)`` after every change in this namespace (by anyone); returns
        the function that stops it."""
        return self.backend.watch(self.name, listener)


def _members(members: Sequence[str]) -> list[bytes]:
    out = []
    for m in members:
        if not isinstance(m, str):
            raise SdlError(f"SDL group members are strings, got {m!r}")
        try:
            out.append(m.encode())
        except UnicodeEncodeError:
            raise SdlError(f"SDL group member {m!r} is not valid Unicode text") from None
    return out


XAPP_PREFIX = "xapp."
"""Each xApp's own namespace is ``xapp.<name>``; ``ric.*`` namespaces are the runtime's."""
RESERVED_PREFIXES = (XAPP_PREFIX, "ric.")


def xapp_namespace(xapp: str) -> str:
    """The name of ``xapp``'s own namespace."""
    return check_namespace(f"{XAPP_PREFIX}{xapp}")


def granted_namespace(xapp: str, name: str, shared: Mapping[str, Collection[str]]) -> str:
    """``name`` if it is a shared namespace that config grants to ``xapp`` (``[sdl] shared``),
    else SdlError naming the xApp, the namespace and the config key to set."""
    check_namespace(name)
    if name == xapp_namespace(xapp):
        return name
    if name.startswith(RESERVED_PREFIXES):
        whose = "another xApp's own" if name.startswith(XAPP_PREFIX) else "the runtime's"
        raise SdlError(
            f"xApp {xapp!r} may not use SDL namespace {name!r}: it is {whose} and cannot be "
            "shared (use self.sdl for the xApp's own namespace)"
        )
    if xapp not in shared.get(name, ()):
        raise SdlError(
            f"xApp {xapp!r} may not use the shared SDL namespace {name!r}: list it in the "
            f'config key sdl.shared."{name}" ([sdl] shared = {{ "{name}" = ["{xapp}"] }})'
        )
    return name


def _secret(path: str, key: str) -> str | None:
    """The password in file ``path`` (None when no file is named); SdlError naming ``key``
    when it cannot be read."""
    if not path:
        return None
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise SdlError(f"cannot read {key} {path}: {exc.strerror}") from None


def from_config(settings: SdlSettings) -> SdlBackend:
    """The backend the ``[sdl]`` settings name, not yet opened (the runtime opens it)."""
    if settings.backend == "sqlite":
        from ric.sdl.sqlite import SqliteBackend

        return SqliteBackend(settings.path)
    if settings.backend == "redis":
        from ric.config import sentinel_address
        from ric.sdl.redis import RedisBackend

        return RedisBackend(
            settings.url,
            key_prefix=settings.key_prefix,
            password=_secret(settings.password_file, "sdl.password_file"),
            probe_interval_s=settings.probe_interval_s,
            sentinels=[sentinel_address(a) for a in settings.sentinels],
            sentinel_master=settings.sentinel_master,
            sentinel_password=_secret(
                settings.sentinel_password_file, "sdl.sentinel_password_file"
            ),
            term_wait_ms=settings.sentinel_term_wait_ms,
        )
    from ric.sdl.memory import MemoryBackend

    return MemoryBackend()
