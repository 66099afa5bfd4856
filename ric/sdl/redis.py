"""The Redis SDL backend: one store shared by several runtime replicas (redis-py's asyncio
client on the runtime's own event loop).

Key layout, for ``key_prefix`` ``ric`` and namespace ``ns`` (the braces are part of the key)::

    ric:{ns}:k:<key>       a key's value (Redis string)
    ric:{ns}:g:<group>     a group (Redis set of members)
    ric:{ns}:index         the namespace's key names (sorted set, all scores 0)
    ric:{ns}:changes       the namespace's change channel (pub/sub)

Namespace names cannot contain braces, so ``{ns}`` ends unambiguously wherever the namespace
has colons, and the key and group spaces (``:k:``, ``:g:``) cannot collide. Every key of a
namespace has the same hash tag ``{ns}``, so the namespace lives in one slot of a Redis
Cluster and the scripts below, which touch several of its keys, stay valid there.

Every write is one Lua script: it changes the value, keeps the index in step and publishes
the change on the namespace's channel, all atomically, so a conditional operation cannot
interleave with another client's write and a watcher never hears of a change that did not
happen. Listing keys reads the index with ``ZRANGEBYLEX`` (sorted, and a prefix is compared
byte for byte: no glob pattern, so ``*``, ``?`` or ``[`` in it mean themselves).

Change notifications: this backend's own writes reach its watchers directly, like the other
backends; one pub/sub connection, subscribed (by pattern) to the change channels of every
namespace under the prefix from ``open`` on, delivers the other replicas' changes. Redis
pub/sub is at-most-once: a replica that is disconnected misses the changes of that time.

Sentinel: given ``sentinels`` and a ``sentinel_master`` name, the backend finds the master
through redis-py's ``Sentinel`` (``master_for``: its ``SentinelConnectionPool`` asks the
Sentinels for the master's address at each new connection, and drops connections to a master
that was demoted). The commands' bounded ``Retry`` covers a failover's first moments (a
``MasterNotFoundError`` while the Sentinels still see the dead master is a ``ConnectionError``
and is retried like the others); beyond it the caller gets an SdlError and tries again later.
The readiness probe also asks the Sentinels for the master every ``probe_interval_s``, so a
failover is logged and shown in ``health()`` ("master changed from A to B"), and an outage
reads "unreachable via sentinel ...".

Replication is asynchronous, so a failover loses whatever the old master acknowledged but had
not yet sent to the replica that was promoted. For a node lease's term that would be unsafe (a
term handed out again to another replica), so with Sentinel a claim is followed, on the same
connection, by ``WAIT 1 <term_wait_ms>``: the claim counts only once a replica holds the new
term, else it is released and refused (the node sets up again later). A master with no replica
connected (after a failover, until the old master comes back as a replica) is not waited for:
a failover then would have nothing to promote. Other writes (renewals, fences, node and
subscription records) are not waited for; what losing them means is in docs/architecture.md
("Redis failover").
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import logging
import time
import urllib.parse
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.connection import SSLConnection, parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ric.backoff import Backoff
from ric.sdl import Change, ChangeOp, SdlBackend, SdlError, check_namespace

__all__ = ["RedisBackend"]

log = logging.getLogger(__name__)

LISTEN_RETRY_MIN_S = 0.1
"""First wait before reading the change channel again after it was lost; it doubles from
here up to ``LISTEN_RETRY_MAX_S`` (redis-py's own ``Retry`` handles the commands)."""
LISTEN_RETRY_MAX_S = 2.0
"""Longest wait between two attempts to read a lost change channel."""

_OPS: frozenset[str] = frozenset(("set", "delete", "group_add", "group_remove", "group_delete"))

# KEYS[1] index, KEYS[2..n+1] value keys; ARGV[1] channel, then per key: name, value, message.
_SET = """
for i = 2, #KEYS do
  local a = 3 * (i - 2) + 2
  redis.call('SET', KEYS[i], ARGV[a + 1])
  redis.call('ZADD', KEYS[1], 0, ARGV[a])
  redis.call('PUBLISH', ARGV[1], ARGV[a + 2])
end
return #KEYS - 1
"""

# KEYS[1] index, KEYS[2] key; ARGV: channel, name, old, new, message.
_SET_IF = """
if redis.call('GET', KEYS[2]) ~= ARGV[3] then return 0 end
redis.call('SET', KEYS[2], ARGV[4])
redis.call('PUBLISH', ARGV[1], ARGV[5])
return 1
"""

# KEYS[1] index, KEYS[2] key; ARGV: channel, name, value, message.
_SET_NX = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[1], 0, ARGV[2])
redis.call('PUBLISH', ARGV[1], ARGV[4])
return 1
"""

# KEYS[1] index, KEYS[2..n+1] keys; ARGV[1] channel, then per key: name, message.
# Returns the names of the keys that existed.
_DELETE = """
local gone = {}
for i = 2, #KEYS do
  local a = 2 * (i - 2) + 2
  if redis.call('DEL', KEYS[i]) == 1 then
    redis.call('ZREM', KEYS[1], ARGV[a])
    redis.call('PUBLISH', ARGV[1], ARGV[a + 1])
    gone[#gone + 1] = ARGV[a]
  end
end
return gone
"""

# KEYS[1] index, KEYS[2] key; ARGV: channel, name, old, message.
_DELETE_IF = """
if redis.call('GET', KEYS[2]) ~= ARGV[3] then return 0 end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[1], ARGV[4])
return 1
"""

# KEYS[1] group; ARGV: channel, message, members... (SADD or SREM in place of CMD)
_GROUP = """
local n = 0
for i = 3, #ARGV do n = n + redis.call('CMD', KEYS[1], ARGV[i]) end
if n > 0 then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return n
"""

# KEYS[1] group; ARGV: channel, message.
_GROUP_DELETE = """
local n = redis.call('DEL', KEYS[1])
if n > 0 then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return n
"""

# -- replicas (ric.cluster) -------------------------------------------------------------------
# These use keys of their own kinds inside a namespace (``:m:``, ``:lease:``, ``:term:``,
# ``:f:``), so they never meet the key/group spaces above, and each script's keys share the
# namespace's hash tag.

# KEYS[1] member key, KEYS[2] members (sorted set); ARGV: replica, value, ttl ms, now ms,
# forget members whose last beat is older than this (ms).
_HEARTBEAT = """
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[5])
return 1
"""

# KEYS[1] member key, KEYS[2] members; ARGV: replica.
_LEAVE = """
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""

# KEYS[1] lease, KEYS[2] term counter, KEYS[3] the holder's member key, KEYS[4] lease index;
# ARGV: replica, ttl ms, the lease value the caller saw ('' for none), node.
# Returns {term, previous lease or ''} when taken, {0, holder's lease} when refused, {-1, lease} when the lease
# changed since the caller looked (it looks again).
_CLAIM = """
local cur = redis.call('GET', KEYS[1])
if (cur or '') ~= ARGV[3] then return {-1, cur or ''} end
if cur then
  local holder = string.match(cur, '^%d+ (.+)$')
  if holder ~= ARGV[1] and redis.call('EXISTS', KEYS[3]) == 1 then return {0, cur} end
end
local term = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], term .. ' ' .. ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[4], ARGV[4])
return {term, cur or ''}
"""

# KEYS: leases; ARGV[1] ttl ms, then the value each lease must hold (``<term> <replica>``).
_RENEW = """
local out = {}
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[i + 1] then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""

# KEYS[1] lease, KEYS[2] lease index; ARGV: the value it must hold, node.
_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2])
return 1
"""

# KEYS: leases; returns value, ms to live for each ('' and -2 when gone).
_LEASES = """
local out = {}
for i = 1, #KEYS do
  out[2 * i - 1] = redis.call('GET', KEYS[i]) or ''
  out[2 * i] = redis.call('PTTL', KEYS[i])
end
return out
"""

# KEYS[1] a key's fence; ARGV: term. The fence only grows.
_FENCE = """
local t = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > t then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""

# KEYS[1] index, then per key its value key and its fence; ARGV[1] channel, then per key:
# name, op ('s' set or 'd' delete), value, message, term. A write whose term is below the
# key's fence is refused (its writer was deposed); otherwise the fence rises to the term.
# Returns the names of the refused keys.
_WRITE_FENCED = """
local refused = {}
for i = 0, (#KEYS - 1) / 2 - 1 do
  local vk, fk, a = KEYS[2 + 2 * i], KEYS[3 + 2 * i], 5 * i + 2
  local term = tonumber(ARGV[a + 4])
  local t = tonumber(redis.call('GET', fk) or '0')
  if term < t then
    refused[#refused + 1] = ARGV[a]
  else
    if term > t then redis.call('SET', fk, ARGV[a + 4]) end
    if ARGV[a + 1] == 's' then
      redis.call('SET', vk, ARGV[a + 2])
      redis.call('ZADD', KEYS[1], 0, ARGV[a])
      redis.call('PUBLISH', ARGV[1], ARGV[a + 3])
    elseif redis.call('DEL', vk) == 1 then
      redis.call('ZREM', KEYS[1], ARGV[a])
      redis.call('PUBLISH', ARGV[1], ARGV[a + 3])
    end
  end
end
return refused
"""


def _where(url: str) -> str:
    """``host:port/db`` (or the socket path) of ``url``, without user or password."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    port = parts.port or 6379
    return f"{host}:{port}{parts.path if parts.path not in ('', '/') else ''}"


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class RedisBackend(SdlBackend):
    """Keys and groups in a Redis server at ``url`` (``redis://host:port/db``, ``rediss://``
    for TLS, ``unix:///path``), under ``key_prefix``; see the module docstring for the
    layout. ``password`` is given apart so that it never appears in the URL, logs or errors.

    With ``sentinels`` (``(host, port)`` pairs) and ``sentinel_master``, the server is the
    master those Sentinels name (``url`` then gives only TLS and the database);
    ``sentinel_password`` is the Sentinels' own, and ``term_wait_ms`` bounds the WAIT that
    makes a lease's term reach a replica (0: no wait).
    """

    kind = "redis"

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        key_prefix: str = "ric",
        password: str | None = None,
        timeout_s: float = 5.0,
        probe_interval_s: float = 1.0,
        sentinels: Sequence[tuple[str, int]] = (),
        sentinel_master: str = "",
        sentinel_password: str | None = None,
        term_wait_ms: int = 500,
    ) -> None:
        super().__init__()
        if not key_prefix or any(c in key_prefix for c in "{}*?[]\\ "):
            raise SdlError(
                f"Redis SDL key prefix {key_prefix!r} must not be empty or hold {{}}*?[]"
            )
        if bool(sentinels) != bool(sentinel_master):
            raise SdlError("Redis SDL: sentinels and sentinel_master go together")
        self.url = url
        self.key_prefix = key_prefix
        self.sentinel_master = sentinel_master
        self._sentinels = [_address(h, p) for h, p in sentinels]
        self._where = (
            f"master {sentinel_master!r} via sentinel {','.join(self._sentinels)}"
            if sentinels
            else _where(url)
        )
        self._master = ""
        """The master's address the Sentinels gave last (``host:port``; Sentinel only)."""
        self._master_note = ""
        """What the last master change was, for ``health()`` (Sentinel only)."""
        self._term_wait_ms = term_wait_ms if sentinels else 0
        self._timeout_s = timeout_s
        self._origin = uuid.uuid4().hex
        """Tags this backend's messages, so that it does not hear its own changes twice."""
        kwargs: dict[str, Any] = {
            "socket_connect_timeout": timeout_s,
            # A few quick retries ride over a server restart; then the caller gets an error.
            "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
            "socket_keepalive": True,
        }
        if password is not None:
            kwargs["password"] = password
        self._sentinel: Sentinel | None = None
        self._client: aioredis.Redis
        self._subscriber: aioredis.Redis
        try:
            if sentinels:
                self._sentinel, self._client, self._subscriber = self._via_sentinel(
                    url, sentinels, sentinel_password, kwargs
                )
            else:
                self._client = aioredis.Redis.from_url(url, socket_timeout=timeout_s, **kwargs)
                # The change channel waits for messages without end: no read timeout there.
                self._subscriber = aioredis.Redis.from_url(url, **kwargs)
        except ValueError as exc:
            raise SdlError(f"Redis SDL URL for {self._where} is not valid: {exc}") from None
        self._scripts = {
            "set": self._client.register_script(_SET),
            "set_if": self._client.register_script(_SET_IF),
            "set_nx": self._client.register_script(_SET_NX),
            "delete": self._client.register_script(_DELETE),
            "delete_if": self._client.register_script(_DELETE_IF),
            "group_add": self._client.register_script(_GROUP.replace("CMD", "SADD")),
            "group_remove": self._client.register_script(_GROUP.replace("CMD", "SREM")),
            "group_delete": self._client.register_script(_GROUP_DELETE),
            "heartbeat": self._client.register_script(_HEARTBEAT),
            "leave": self._client.register_script(_LEAVE),
            "claim": self._client.register_script(_CLAIM),
            "renew": self._client.register_script(_RENEW),
            "release": self._client.register_script(_RELEASE),
            "leases": self._client.register_script(_LEASES),
            "fence": self._client.register_script(_FENCE),
            "write_fenced": self._client.register_script(_WRITE_FENCED),
        }
        self._pubsub: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._prober: asyncio.Task[None] | None = None
        self._probe_interval_s = probe_interval_s
        self._reachable = True
        self._why = ""
        self._state = "new"

    def _via_sentinel(
        self,
        url: str,
        sentinels: Sequence[tuple[str, int]],
        sentinel_password: str | None,
        kwargs: dict[str, Any],
    ) -> tuple[Sentinel, aioredis.Redis, aioredis.Redis]:
        """The Sentinel manager and two clients of the master it names (commands, and the
        change channel without a read timeout); the URL gives TLS, the database and its
        query options, never the address."""
        params: dict[str, Any] = dict(parse_url(url))
        if params.pop("path", None) is not None:
            raise ValueError("a unix:// URL cannot be used with Sentinel")
        params.pop("host", None)
        params.pop("port", None)
        tls = params.pop("connection_class", None) is SSLConnection
        on_sentinels: dict[str, Any] = {
            "socket_timeout": self._timeout_s,
            "socket_connect_timeout": self._timeout_s,
        }
        if sentinel_password is not None:
            on_sentinels["password"] = sentinel_password
        if tls:
            on_sentinels["ssl"] = True
            params["ssl"] = True
        sentinel = Sentinel(list(sentinels), sentinel_kwargs=on_sentinels)
        master = self.sentinel_master
        client = sentinel.master_for(master, socket_timeout=self._timeout_s, **params, **kwargs)
        subscriber = sentinel.master_for(master, **params, **kwargs)
        return sentinel, client, subscriber

    def describe(self) -> str:
        if self._sentinel is not None:
            at = f" at {self._master}" if self._master else ""
            note = f"; {self._master_note}" if self._master_note else ""
            return (
                f"redis master {self.sentinel_master!r}{at} via sentinel "
                f"{','.join(self._sentinels)} prefix {self.key_prefix!r}{note}"
            )
        return f"redis {self._where} prefix {self.key_prefix!r}"

    def health(self) -> tuple[bool, str]:
        if self._state != "open":
            return False, f"the Redis SDL at {self._where} is {self._state}"
        if not self._reachable:
            if self._sentinel is not None:
                return False, (
                    f"Redis unreachable via sentinel {','.join(self._sentinels)} (master "
                    f"{self.sentinel_master!r}, last at {self._master or 'unknown'}): {self._why}"
                )
            return False, f"the Redis SDL at {self._where} is unreachable: {self._why}"
        return True, self.describe()

    @property
    def master(self) -> str:
        """The master's ``host:port`` as the Sentinels gave it last ("" without Sentinel, or
        before the first answer)."""
        return self._master

    async def _find_master(self) -> None:
        """Ask the Sentinels for the master; log and note a change (a failover)."""
        assert self._sentinel is not None
        host, port = await self._sentinel.discover_master(self.sentinel_master)
        found = _address(str(host), int(port))
        if found == self._master:
            return
        before, self._master = self._master, found
        if not before:
            log.info("Redis SDL: master %r is at %s", self.sentinel_master, found)
            return
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._master_note = f"master changed from {before} to {found} at {when}"
        log.warning(
            "Redis SDL: master %r changed from %s to %s (a Sentinel failover); the "
            "connections follow it",
            self.sentinel_master,
            before,
            found,
        )

    def _seen(self, reachable: bool, why: str = "") -> None:
        """Record what the last command or probe learnt; log when it changes."""
        if reachable == self._reachable:
            return
        self._reachable, self._why = reachable, why
        if reachable:
            log.info("Redis SDL at %s is reachable again", self._where)
        else:
            log.warning("Redis SDL at %s is unreachable: %s", self._where, why)

    async def _probe(self) -> None:
        """PING every ``probe_interval_s`` so readiness follows the server while idle."""
        while True:
            await asyncio.sleep(self._probe_interval_s)
            try:
                if self._sentinel is not None:
                    await asyncio.wait_for(self._find_master(), self._timeout_s)
                await asyncio.wait_for(self._client.ping(), self._timeout_s)
            except (RedisError, OSError, TimeoutError) as exc:
                self._seen(False, str(exc) or type(exc).__name__)
            else:
                self._seen(True)

    # -- key layout ----------------------------------------------------------------------

    def _base(self, namespace: str) -> str:
        return f"{self.key_prefix}:{{{check_namespace(namespace)}}}"

    def _key(self, namespace: str, key: str) -> bytes:
        return f"{self._base(namespace)}:k:{key}".encode()

    def _group(self, namespace: str, group: str) -> bytes:
        return f"{self._base(namespace)}:g:{group}".encode()

    def _index(self, namespace: str) -> bytes:
        return f"{self._base(namespace)}:index".encode()

    def _channel(self, namespace: str) -> bytes:
        return f"{self._base(namespace)}:changes".encode()

    def _message(self, namespace: str, key: str, op: ChangeOp) -> bytes:
        return json.dumps({"origin": self._origin, "ns": namespace, "key": key, "op": op}).encode()

    # -- lifecycle -----------------------------------------------------------------------

    def _error(self, exc: BaseException, doing: str) -> SdlError:
        return SdlError(f"Redis SDL at {self._where}: {doing} failed: {exc}")

    async def open(self) -> None:
        """Connect, check the server answers and start hearing other replicas' changes;
        SdlError naming host:port (never the password) when it cannot."""
        if self._state != "new":
            raise SdlError(f"the Redis SDL at {self._where} was {self._state}; make a new one")
        self._state = "open"
        try:
            if self._sentinel is not None:
                await self._find_master()
            await self._client.ping()
            pubsub = self._subscriber.pubsub()
            self._pubsub = pubsub
            await pubsub.psubscribe(f"{self.key_prefix}:{{*}}:changes")
            # Wait for the confirmation, so that no change made after open returns is missed.
            confirm = await pubsub.get_message(timeout=self._timeout_s)
            if confirm is None or confirm.get("type") != "psubscribe":
                raise SdlError(f"Redis SDL at {self._where}: PSUBSCRIBE was not confirmed")
        except (RedisError, OSError) as exc:
            await self.close()
            raise SdlError(f"cannot reach the Redis SDL at {self._where}: {exc}") from None
        except BaseException:
            await self.close()
            raise
        loop = asyncio.get_running_loop()
        self._listener = loop.create_task(self._listen(), name=f"sdl-redis:{self._where}")
        self._prober = loop.create_task(self._probe(), name=f"sdl-redis-probe:{self._where}")

    async def close(self) -> None:
        """Stop listening and close the connections; safe when the server is gone, and when
        called twice."""
        if self._state == "closed":
            return
        self._state = "closed"
        for task in (self._prober, self._listener):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._prober = self._listener = None
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()
        for client in (self._subscriber, self._client):
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()
        if self._sentinel is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._sentinel.aclose()

    async def _listen(self) -> None:
        """Deliver the changes other replicas publish; ride over lost connections."""
        pubsub = self._pubsub
        retry = Backoff(LISTEN_RETRY_MIN_S, LISTEN_RETRY_MAX_S)
        lost = False
        while True:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                if lost:
                    lost = False
                    retry.reset()
            except (RedisError, OSError) as exc:
                if not lost:  # one warning per outage, not one per attempt
                    lost = True
                    log.warning("Redis SDL at %s: change channel lost (%s)", self._where, exc)
                await retry.sleep()
                continue
            if message is not None and message.get("type") == "pmessage":
                self._remote(message["data"])

    def _remote(self, data: bytes) -> None:
        try:
            msg = json.loads(data)
            if msg["origin"] == self._origin:
                return  # already told to this backend's watchers when it wrote
            op = msg["op"]
            if op not in _OPS:
                raise ValueError(f"unknown op {op!r}")
            change = Change(str(msg["ns"]), str(msg["key"]), cast(ChangeOp, op))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("Redis SDL at %s: bad change message %r: %s", self._where, data, exc)
            return
        self._notify(change)

    async def _call(self, name: str, keys: Sequence[bytes], args: Sequence[bytes]) -> Any:
        self._check_open()
        try:
            result = await self._scripts[name](keys=list(keys), args=list(args))
        except (ConnectionError, TimeoutError, RedisConnectionError, RedisTimeoutError) as exc:
            self._seen(False, str(exc))
            raise self._error(exc, name) from exc
        except (RedisError, OSError) as exc:
            raise self._error(exc, name) from exc
        self._seen(True)
        return result

    async def _command(self, doing: str, *args: bytes | str) -> Any:
        self._check_open()
        try:
            result = await cast(Any, self._client).execute_command(*args)
        except (ConnectionError, TimeoutError, RedisConnectionError, RedisTimeoutError) as exc:
            self._seen(False, str(exc))
            raise self._error(exc, doing) from exc
        except (RedisError, OSError) as exc:
            raise self._error(exc, doing) from exc
        self._seen(True)
        return result

    def _check_open(self) -> None:
        if self._state != "open":
            raise SdlError(f"the Redis SDL at {self._where} is not open (use 'async with')")

    # -- keys ----------------------------------------------------------------------------

    async def get(self, namespace: str, keys: Sequence[str]) -> dict[str, bytes]:
        check_namespace(namespace)
        names = list(dict.fromkeys(keys))
        if not names:
            return {}
        values = await self._command("get", "MGET", *(self._key(namespace, k) for k in names))
        return {k: bytes(v) for k, v in zip(names, values, strict=True) if v is not None}

    async def set(self, namespace: str, items: Mapping[str, bytes]) -> None:
        if not items:
            check_namespace(namespace)
            return
        args: list[bytes] = [self._channel(namespace)]
        for key, value in items.items():
            args += [key.encode(), bytes(value), self._message(namespace, key, "set")]
        await self._call(
            "set", [self._index(namespace), *(self._key(namespace, k) for k in items)], args
        )
        for key in items:
            self._notify(Change(namespace, key, "set"))

    async def set_if(self, namespace: str, key: str, old: bytes, new: bytes) -> bool:
        done = await self._call(
            "set_if",
            [self._index(namespace), self._key(namespace, key)],
            [
                self._channel(namespace),
                key.encode(),
                old,
                new,
                self._message(namespace, key, "set"),
            ],
        )
        if done:
            self._notify(Change(namespace, key, "set"))
        return bool(done)

    async def set_if_not_exists(self, namespace: str, key: str, value: bytes) -> bool:
        done = await self._call(
            "set_nx",
            [self._index(namespace), self._key(namespace, key)],
            [self._channel(namespace), key.encode(), value, self._message(namespace, key, "set")],
        )
        if done:
            self._notify(Change(namespace, key, "set"))
        return bool(done)

    async def delete(self, namespace: str, keys: Sequence[str]) -> int:
        names = list(dict.fromkeys(keys))
        if not names:
            check_namespace(namespace)
            return 0
        args: list[bytes] = [self._channel(namespace)]
        for key in names:
            args += [key.encode(), self._message(namespace, key, "delete")]
        deleted = await self._call(
            "delete", [self._index(namespace), *(self._key(namespace, k) for k in names)], args
        )
        for name in deleted:
            self._notify(Change(namespace, bytes(name).decode(), "delete"))
        return len(deleted)

    async def delete_if(self, namespace: str, key: str, old: bytes) -> bool:
        done = await self._call(
            "delete_if",
            [self._index(namespace), self._key(namespace, key)],
            [self._channel(namespace), key.encode(), old, self._message(namespace, key, "delete")],
        )
        if done:
            self._notify(Change(namespace, key, "delete"))
        return bool(done)

    async def keys(self, namespace: str, prefix: str = "") -> list[str]:
        index = self._index(namespace)
        if prefix:
            low = b"[" + prefix.encode()
            high = b"(" + prefix.encode() + b"\xff"  # no UTF-8 text has the byte 0xff
        else:
            low, high = b"-", b"+"
        names = await self._command("keys", "ZRANGEBYLEX", index, low, high)
        return [bytes(n).decode() for n in names]

    # -- groups --------------------------------------------------------------------------

    async def _group_change(
        self, op: ChangeOp, namespace: str, group: str, members: Sequence[bytes]
    ) -> int:
        unique = list(dict.fromkeys(bytes(m) for m in members))
        if not unique:
            check_namespace(namespace)
            return 0
        n = int(
            await self._call(
                op,
                [self._group(namespace, group)],
                [self._channel(namespace), self._message(namespace, group, op), *unique],
            )
        )
        if n:
            self._notify(Change(namespace, group, op))
        return n

    async def group_add(self, namespace: str, group: str, members: Sequence[bytes]) -> int:
        return await self._group_change("group_add", namespace, group, members)

    async def group_remove(self, namespace: str, group: str, members: Sequence[bytes]) -> int:
        return await self._group_change("group_remove", namespace, group, members)

    async def group_members(self, namespace: str, group: str) -> builtins.set[bytes]:
        members = await self._command("group_members", "SMEMBERS", self._group(namespace, group))
        return {bytes(m) for m in members}

    async def group_contains(self, namespace: str, group: str, member: bytes) -> bool:
        found = await self._command(
            "group_contains", "SISMEMBER", self._group(namespace, group), member
        )
        return bool(found)

    async def group_size(self, namespace: str, group: str) -> int:
        size = await self._command("group_size", "SCARD", self._group(namespace, group))
        return int(size)

    async def group_delete(self, namespace: str, group: str) -> bool:
        done = await self._call(
            "group_delete",
            [self._group(namespace, group)],
            [self._channel(namespace), self._message(namespace, group, "group_delete")],
        )
        if done:
            self._notify(Change(namespace, group, "group_delete"))
        return bool(done)

    # -- replicas (ric.cluster) ----------------------------------------------------------------

    def _kind(self, namespace: str, kind: str, name: str = "") -> bytes:
        """A key of one of the replica kinds (``m``, ``members``, ``lease``, ``leases``,
        ``term``, ``f``) in ``namespace``."""
        return f"{self._base(namespace)}:{kind}{':' + name if name else ''}".encode()

    async def heartbeat(
        self, namespace: str, replica: str, value: bytes, ttl_ms: int, now_ms: int
    ) -> None:
        """Write ``replica``'s membership key (expiring after ``ttl_ms``) and its last beat;
        members silent for 100 TTLs are forgotten, so the list stays bounded."""
        await self._call(
            "heartbeat",
            [self._kind(namespace, "m", replica), self._kind(namespace, "members")],
            [
                replica.encode(),
                value,
                b"%d" % ttl_ms,
                b"%d" % now_ms,
                b"%d" % (now_ms - 100 * ttl_ms),
            ],
        )

    async def leave(self, namespace: str, replica: str) -> None:
        """Remove ``replica``'s membership at once (a graceful stop)."""
        await self._call(
            "leave",
            [self._kind(namespace, "m", replica), self._kind(namespace, "members")],
            [replica.encode()],
        )

    async def members(self, namespace: str) -> list[tuple[str, int, bytes | None]]:
        """Every replica heard of lately: (id, last beat in Unix ms, its membership value or
        None when its key expired, i.e. it is gone), by id."""
        found = await self._command(
            "members", "ZRANGE", self._kind(namespace, "members"), "0", "-1", "WITHSCORES"
        )
        # redis-py pairs the reply up ([(member, score), ...]) for WITHSCORES.
        pairs = [(bytes(member).decode(), int(float(score))) for member, score in found]
        if not pairs:
            return []
        values = await self._command(
            "members", "MGET", *(self._kind(namespace, "m", r) for r, _ in pairs)
        )
        return sorted(
            (r, at, None if v is None else bytes(v))
            for (r, at), v in zip(pairs, values, strict=True)
        )

    async def claim_lease(
        self, namespace: str, node: str, replica: str, ttl_ms: int
    ) -> tuple[int, str]:
        """Take ``node``'s lease for ``replica`` with the next term: ``(term, previous
        holder or "")``; or ``(0, holder)`` when another replica holds it and is still a member. A lease held by
        ``replica`` itself, expired, or held by a replica whose membership expired is taken."""
        lease = self._kind(namespace, "lease", node)
        for _ in range(8):  # a lease that changes between the look and the script: look again
            seen = await self._command("claim", "GET", lease)
            cur = b"" if seen is None else bytes(seen)
            holder = cur.decode().partition(" ")[2] or replica
            keys = [
                lease,
                self._kind(namespace, "term", node),
                self._kind(namespace, "m", holder),
                self._kind(namespace, "leases"),
            ]
            args = [replica.encode(), b"%d" % ttl_ms, cur, node.encode()]
            wait = self._term_wait_ms and await self._has_replicas()
            if wait:
                (term, other), acked = await self._replicated("claim", keys, args)
            else:
                term, other = await self._call("claim", keys, args)
                acked = 1
            if int(term) > 0 and acked < 1:
                # Not on any replica yet: a failover now could hand the same term out again.
                value = f"{int(term)} {replica}"
                with contextlib.suppress(SdlError):
                    await self.release_lease(namespace, node, value)
                raise SdlError(
                    f"Redis SDL at {self._where}: the new term {int(term)} of {node} reached "
                    f"no replica within sdl.sentinel_term_wait_ms ({self._term_wait_ms} ms); "
                    "the claim was given up, so that a failover cannot repeat the term"
                )
            if int(term) >= 0:
                return int(term), bytes(other).decode().partition(" ")[2]
        raise SdlError(f"Redis SDL at {self._where}: the lease of {node} kept changing")

    async def _has_replicas(self) -> bool:
        """Whether the master has a replica connected now (``ROLE``). Without one there is
        nothing to wait for: a failover would have no replica to promote."""
        role = await self._command("claim", "ROLE")
        return bool(role) and bytes(role[0]) == b"master" and bool(role[2])

    async def _replicated(
        self, name: str, keys: Sequence[bytes], args: Sequence[bytes]
    ) -> tuple[Any, int]:
        """Run script ``name`` then ``WAIT 1 <term_wait_ms>`` on the same connection (a
        pipeline: WAIT counts the replicas that have this connection's writes); the script's
        result and how many replicas acknowledged it."""
        self._check_open()
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                await self._scripts[name](keys=list(keys), args=list(args), client=pipe)
                pipe.execute_command("WAIT", 1, self._term_wait_ms)
                result, acked = await pipe.execute()
        except (ConnectionError, TimeoutError, RedisConnectionError, RedisTimeoutError) as exc:
            self._seen(False, str(exc))
            raise self._error(exc, name) from exc
        except (RedisError, OSError) as exc:
            raise self._error(exc, name) from exc
        self._seen(True)
        return result, int(acked)

    async def renew_leases(
        self, namespace: str, leases: Mapping[str, str], ttl_ms: int
    ) -> dict[str, bool]:
        """Extend each of ``leases`` (node -> the ``<term> <replica>`` value it must hold) by
        ``ttl_ms``, in one script; which were still held. With no leases it is still one
        round trip (the caller learns Redis answers)."""
        nodes = list(leases)
        done = await self._call(
            "renew",
            [self._kind(namespace, "lease", n) for n in nodes],
            [b"%d" % ttl_ms, *(leases[n].encode() for n in nodes)],
        )
        return {n: bool(d) for n, d in zip(nodes, done, strict=True)}

    async def release_lease(self, namespace: str, node: str, value: str) -> bool:
        """Give ``node``'s lease up if it still holds ``value``; whether it did."""
        done = await self._call(
            "release",
            [self._kind(namespace, "lease", node), self._kind(namespace, "leases")],
            [value.encode(), node.encode()],
        )
        return bool(done)

    async def leases(self, namespace: str) -> dict[str, tuple[str, int]]:
        """The nodes' current leases: node -> (``<term> <replica>``, ms to live), by node."""
        found = await self._command("leases", "SMEMBERS", self._kind(namespace, "leases"))
        nodes = sorted(bytes(n).decode() for n in found)
        if not nodes:
            return {}
        out = await self._call("leases", [self._kind(namespace, "lease", n) for n in nodes], [])
        return {
            n: (bytes(out[2 * i]).decode(), int(out[2 * i + 1]))
            for i, n in enumerate(nodes)
            if out[2 * i]
        }

    async def raise_fence(self, namespace: str, key: str, term: int) -> None:
        """Raise ``key``'s fence to ``term``: from now on writes with a lower term are
        refused (a new owner calls it before it acts, so the old one is fenced at once)."""
        await self._call("fence", [self._kind(namespace, "f", key)], [b"%d" % term])

    async def write_fenced(
        self, namespace: str, writes: Sequence[tuple[str, bytes | None, int]]
    ) -> list[str]:
        """Set (or delete, for a None value) each ``(key, value, term)`` unless the key's
        fence is above ``term``, atomically; the keys refused (their writer was deposed)."""
        if not writes:
            check_namespace(namespace)
            return []
        keys: list[bytes] = [self._index(namespace)]
        args: list[bytes] = [self._channel(namespace)]
        for key, value, term in writes:
            keys += [self._key(namespace, key), self._kind(namespace, "f", key)]
            op: ChangeOp = "set" if value is not None else "delete"
            args += [
                key.encode(),
                b"s" if value is not None else b"d",
                value or b"",
                self._message(namespace, key, op),
                b"%d" % term,
            ]
        refused = {bytes(n).decode() for n in await self._call("write_fenced", keys, args)}
        for key, value, _ in writes:
            if key not in refused:
                self._notify(Change(namespace, key, "set" if value is not None else "delete"))
        return sorted(refused)

    # -- other modules' scripts (ric.conflicts_shared) ------------------------------------------

    def add_script(self, name: str, source: str) -> None:
        """Register a Lua script of another module under ``name`` (once per backend), to run
        with ``run_script``; its keys come from ``kind_key``, so they share the namespace's
        hash tag like every script here."""
        if name in self._scripts:
            raise SdlError(f"Redis SDL at {self._where}: a script named {name!r} exists")
        self._scripts[name] = self._client.register_script(source)

    async def run_script(self, name: str, keys: Sequence[bytes], args: Sequence[bytes]) -> Any:
        """Run the script ``add_script`` registered as ``name``; SdlError when Redis cannot
        be reached or the script fails."""
        return await self._call(name, keys, args)

    async def command(self, doing: str, *args: bytes | str) -> Any:
        """Run one Redis command of another module (``ric.cluster_streams``: stream commands,
        which are not part of the SDL's interface) on the backend's connection; SdlError
        naming ``doing`` and the server when it fails."""
        return await self._command(doing, *args)

    def kind_key(self, namespace: str, kind: str, name: str = "") -> bytes:
        """The key ``<prefix>:{<namespace>}:<kind>:<name>``, of a kind of another module's
        own (it must not be ``k``, ``g``, ``index`` or ``changes``)."""
        if kind in ("k", "g", "index", "changes"):
            raise SdlError(f"Redis SDL key kind {kind!r} belongs to the SDL itself")
        return self._kind(namespace, kind, name)

    def change_channel(self, namespace: str) -> bytes:
        """The pub/sub channel of ``namespace``'s changes: a message published there in the
        SDL's format (``{"origin", "ns", "key", "op"}``) reaches every replica's watchers."""
        return self._channel(namespace)
