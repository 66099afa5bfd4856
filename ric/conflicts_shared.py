"""The conflict arbiter's window shared by the replicas of a RIC, in Redis (``[cluster]``).

With ``[cluster] enabled`` the replicas of one RIC keep one guard window between them, so two
xApps on different replicas conflict exactly as two xApps on one replica do (the rules are
``ric.conflicts``'s: same pair with another value, the indirect handover into a cell being
switched off, the three policies). The state lives under the cluster's namespace
``ric.cluster.<ric_id>`` (one hash tag, like ``ric.cluster``'s keys)::

    cw:<target>   hash entry id -> JSON touch (xApp, replica, priority, parameter, value,
                  when, until, contested, sequence number, the action); the key expires
                  (PX) after the longest window of its entries
    cwseq         a counter ordering the touches of the whole RIC (the "first" of a conflict)
    cwnotices     stream of conflict notices for the first xApp of a conflict when it runs
                  on another replica (capped near 1,000, expires after 10 idle minutes)

**One script per check.** A control's check is one Lua script: it reads the touched targets'
live entries (dropping expired ones), finds the rivals, applies the policy, and either records
the control's touches or marks the rivals contested, all atomically; so two replicas racing
on one target cannot both win. Time is the Redis server's (``TIME``): the replicas' clocks
are never compared, and a conflict's ``at`` is that time (Unix s; on one replica it is the
runtime's monotonic clock). It returns what this replica needs to decide and tell the xApps: allowed
or not, the winner, and the first rival's xApp, replica, priority, time and action.

**Who is told.** As on one replica: the later xApp through its outcome, the first through
``on_conflict``. When the first runs on another replica, the script appends a notice to
``cwnotices`` and publishes a change on the namespace's SDL channel; every replica reads the
stream from where it was (it starts at the stream's end) and hands the notices addressed to
it to its xApp. The conflict is counted (``ric_conflicts``) and audited once, by the replica
of the later control, as on one replica. A notice whose change message is lost (Redis
pub/sub is at-most-once) is read at the next one, or at the next poll (every 2 s).

**Priorities** are compared as the recording replica's configuration gave them (each touch
carries its xApp's priority); replicas of one RIC share a configuration. An xApp is its name:
the same xApp name on two replicas is one xApp to the window.

**When Redis is slow or unreachable** a check waits at most ``conflicts.shared_timeout_s``
and the control is then refused, as not connected, naming the window: it fails closed. A
local fallback would let two replicas' xApps change one target unseen by each other (a
handover's target cell is often on another replica's node), and the replica is about to
stop acting anyway: ``ric.cluster`` stops a replica that cannot renew its leases within the
safety margin. A check that timed out after Redis ran it may leave its touches behind; they
are retracted at once, best effort, or expire with their window.

Simplified: a retraction (a control refused, failed or timed out at the node) is sent in the
background, so for a round trip another replica may still see the control; a Redis restart
without persistence forgets the window (a conflicting control is then allowed).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, cast

from google.protobuf.message import DecodeError

from ric._proto.xapp.v1 import xapp_pb2 as pb
from ric.actions import Conflict, ControlAction
from ric.conflicts import Decision, Policy, Token, _Touch, touches
from ric.northbound.codec import action_from_proto, action_to_proto
from ric.sdl import Change, SdlBackend, SdlError
from ric.types import Sensor, StatSample

if TYPE_CHECKING:
    from ric.sdl.redis import RedisBackend
    from ric.types import Check
    from ric.view import RuntimeView

__all__ = ["SharedArbiter"]

log = logging.getLogger(__name__)

NOTICES_KEY = "conflicts"
"""The SDL change key a notice is announced with (in the cluster's namespace)."""
POLL_S = 2.0
"""How often a replica reads the notice stream without being told (a lost change message)."""
_MAX_NOTICES = 1000
MAX_RETRACTS = 10_000
"""Retractions kept while Redis does not answer; beyond, the oldest are dropped (their
touches expire with their window anyway)."""
_RETRACT_BATCH = 500

# KEYS[1] sequence counter, KEYS[2] notice stream, KEYS[3..] the touched targets' hashes.
# ARGV: xapp, replica, priority, policy, window ms, entry id prefix, action (hex), channel,
# change message, notice stream cap, then per touch: target, parameter, value.
# Returns {1} when allowed without conflict; else {allowed, winner or '', touch index,
# parameter, first xapp, first replica, first priority, first at ms, first action, now ms,
# 1 if a notice went to the first's replica}.
_CHECK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local xapp, replica, prio, policy = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local window = tonumber(ARGV[5])
local n = #KEYS - 2
local function touch(i) return ARGV[8 + 3 * i], ARGV[9 + 3 * i], ARGV[10 + 3 * i] end
local function clash(np, nv, e)
  if np == e.k then
    if nv ~= e.v or e.c == 1 then return np end
    return nil
  end
  if (np == 'receives_ues' and e.k == 'active') or (np == 'active' and e.k == 'receives_ues') then
    local off = e.v
    if np == 'active' then off = nv end
    if off == 'false' then return 'active' end
  end
  return nil
end
local rivals = {}
for i = 1, n do
  local key = KEYS[i + 2]
  local _, np, nv = touch(i)
  local flat = redis.call('HGETALL', key)
  for j = 1, #flat, 2 do
    local e = cjson.decode(flat[j + 1])
    if e.u <= now then
      redis.call('HDEL', key, flat[j])
    elseif not (e.x == xapp and e.c == 0) then
      local p = clash(np, nv, e)
      if p then rivals[#rivals + 1] = {i = i, f = flat[j], e = e, p = p} end
    end
  end
end
local function record()
  for i = 1, n do
    local key = KEYS[i + 2]
    local _, np, nv = touch(i)
    local flat = redis.call('HGETALL', key)
    for j = 1, #flat, 2 do
      local e = cjson.decode(flat[j + 1])
      if e.x == xapp and e.k == np and e.c == 0 then redis.call('HDEL', key, flat[j]) end
    end
    local seq = redis.call('INCR', KEYS[1])
    redis.call('HSET', key, ARGV[6] .. i, cjson.encode({x = xapp, r = replica, p = prio,
      k = np, v = nv, a = now, u = now + window, c = 0, s = seq, act = ARGV[7]}))
    if redis.call('PTTL', key) < window then redis.call('PEXPIRE', key, window) end
  end
end
if #rivals == 0 then
  record()
  return {1}
end
local first = rivals[1]
for _, r in ipairs(rivals) do if r.e.s < first.e.s then first = r end end
local allowed, winner = 0, first.e.x
if policy == 'priority' then
  local above = true
  for _, r in ipairs(rivals) do if not (prio > r.e.p) then above = false end end
  if above then allowed, winner = 1, xapp end
elseif policy == 'reject-both' then
  winner = ''
  for _, r in ipairs(rivals) do
    r.e.c = 1
    redis.call('HSET', KEYS[r.i + 2], r.f, cjson.encode(r.e))
  end
end
if allowed == 1 then
  for _, r in ipairs(rivals) do
    if r.e.c == 0 then redis.call('HDEL', KEYS[r.i + 2], r.f) end
  end
  record()
end
local target = touch(first.i)
local remote = 0
if first.e.x ~= xapp and first.e.r ~= replica then
  remote = 1
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[10], '*', 'to', first.e.r, 'n',
    cjson.encode({policy = policy, target = target, parameter = first.p, first_xapp = first.e.x,
      first = first.e.act, second_xapp = xapp, second = ARGV[7], winner = winner, at = now}))
  redis.call('PEXPIRE', KEYS[2], 600000)
  redis.call('PUBLISH', ARGV[8], ARGV[9])
end
return {allowed, winner, first.i, first.p, first.e.x, first.e.r, first.e.p, first.e.a,
  first.e.act, now, remote}
"""

# KEYS: the targets' hashes; ARGV: the entry id of each. A contested entry stays.
_RETRACT = """
local gone = 0
for i = 1, #KEYS do
  local v = redis.call('HGET', KEYS[i], ARGV[i])
  if v and cjson.decode(v).c == 0 then gone = gone + redis.call('HDEL', KEYS[i], ARGV[i]) end
end
return gone
"""

# KEYS[1] notice stream; ARGV[1] the last id read ('' for none yet: return the stream's end).
# Returns {last id, then per notice: to, notice}.
_READ = """
if ARGV[1] == '' then
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if #last == 0 then return {'0-0'} end
  return {last[1][1]}
end
local out = {ARGV[1]}
for _, m in ipairs(redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])) do
  out[1] = m[1]
  local f = m[2]
  for j = 1, #f, 2 do
    if f[j] == 'to' then out[#out + 1] = f[j + 1] end
    if f[j] == 'n' then out[#out + 1] = f[j + 1] end
  end
end
return out
"""


def canonical(value: object) -> str:
    """The text two touches' values are compared by in Redis: equal values give equal text
    (numbers as floats, so 3 and 3.0 match as they do in Python)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(float(value))
    if isinstance(value, tuple | list):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    return json.dumps(str(value))


def _encode(action: ControlAction) -> str:
    msg = pb.Action()
    action_to_proto(action, msg)
    return msg.SerializeToString().hex()


def _decode(text: str) -> ControlAction:
    try:
        return action_from_proto(pb.Action.FromString(bytes.fromhex(text)))
    except (ValueError, DecodeError) as exc:  # written by another version of the RIC
        raise SdlError(
            f"the shared conflict window holds an action this RIC cannot read: {exc}"
        ) from exc


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class SharedArbiter:
    """The arbiter of a replica of a RIC: the guard window is in Redis (module docstring).

    Same policy, windows and priorities as ``ric.conflicts.Arbiter``; ``decide`` is a
    coroutine (one script) and raises SdlError when Redis does not answer within
    ``timeout_s``. ``replica()`` gives this replica's id (known once ``ric.cluster`` has
    started); ``notify(xapp, conflict)`` tells a local xApp of a conflict another replica
    found. A runtime component: ``start`` follows the notices, ``stop`` ends that.
    """

    name = "conflict-window"

    def __init__(
        self,
        policy: Policy,
        windows_s: Mapping[str, float],
        priorities: Mapping[str, int],
        backend: SdlBackend,
        namespace: str,
        replica: Callable[[], str],
        *,
        timeout_s: float,
        notify: Callable[[str, Conflict], None],
    ) -> None:
        if backend.kind != "redis":
            raise SdlError(f"the shared conflict window needs the Redis SDL, not {backend.kind}")
        self.policy: Policy = policy
        self._windows = dict(windows_s)
        self._priorities = dict(priorities)
        self._backend = cast("RedisBackend", backend)  # its kind was checked just above
        self.namespace = namespace
        self._replica = replica
        self.timeout_s = timeout_s
        self._notify = notify
        for name, source in (("cw_check", _CHECK), ("cw_retract", _RETRACT), ("cw_read", _READ)):
            self._backend.add_script(name, source)
        self._seq_key = self._backend.kind_key(namespace, "cwseq")
        self._stream_key = self._backend.kind_key(namespace, "cwnotices")
        self._channel = self._backend.change_channel(namespace)
        self._message = json.dumps(
            {"origin": "conflicts", "ns": namespace, "key": NOTICES_KEY, "op": "set"}
        ).encode()
        self._ids = itertools.count(1)
        self._incarnation = secrets.token_hex(6)
        """In the entry ids, so a replica restarted within a window never reuses one."""
        self._retracts: list[tuple[bytes, bytes]] = []
        self._wake = asyncio.Event()
        self._read_from = ""
        self._worker: asyncio.Task[None] | None = None
        self._stopping = False
        self._unwatch: Callable[[], None] | None = None
        self._sensor: Sensor | None = None
        self.checks_made = 0
        """Checks run in Redis."""
        self.unavailable = 0
        """Checks that failed or timed out (the control was refused)."""
        self.notices_sent = 0
        """Conflicts whose first xApp runs on another replica (a notice went there)."""
        self.notices_received = 0
        """Notices of other replicas handed to an xApp here."""

    def window_s(self, kind: str) -> float:
        """The guard window of an action kind, in seconds."""
        return self._windows.get(kind, self._windows.get("default", 5.0))

    def _key(self, target: str) -> bytes:
        return self._backend.kind_key(self.namespace, "cw", target)

    # -- the check ------------------------------------------------------------------------------

    async def decide(self, xapp: str, action: ControlAction) -> Decision:
        """Decide whether ``action`` from ``xapp`` may leave, against the whole RIC's recent
        controls; record it if so. SdlError when Redis fails or is slower than the timeout."""
        wanted = touches(action)
        if not wanted:
            return Decision(True)
        replica = self._replica()
        window = self.window_s(action.kind)
        prefix = f"{replica}/{self._incarnation}/{next(self._ids)}/"
        mine = _encode(action)
        keys = [self._seq_key, self._stream_key, *(self._key(t) for t, _, _ in wanted)]
        args: list[bytes] = [
            xapp.encode(),
            replica.encode(),
            b"%d" % self._priorities.get(xapp, 0),
            self.policy.encode(),
            b"%d" % max(1, round(window * 1000)),
            prefix.encode(),
            mine.encode(),
            self._channel,
            self._message,
            b"%d" % _MAX_NOTICES,
        ]
        for target, parameter, value in wanted:
            args += [target.encode(), parameter.encode(), canonical(value).encode()]
        self.checks_made += 1
        try:
            async with asyncio.timeout(self.timeout_s):
                out = await self._backend.run_script("cw_check", keys, args)
        except (SdlError, TimeoutError) as exc:
            self.unavailable += 1
            # Redis may have run the script before the answer was lost: take its touches back.
            self.retract(
                [
                    (t, _Touch(t, xapp, action, p, v, 0.0, window, entry=f"{prefix}{i}"))
                    for i, (t, p, v) in enumerate(wanted, 1)
                ]
            )
            why = str(exc) if isinstance(exc, SdlError) else f"no answer in {self.timeout_s:g} s"
            raise SdlError(
                f"replica {replica} cannot check the conflict window shared in Redis: {why}"
            ) from exc
        allowed = bool(int(out[0]))
        token: Token = []
        if allowed:
            token = [
                (t, _Touch(t, xapp, action, p, v, 0.0, window, entry=f"{prefix}{i}"))
                for i, (t, p, v) in enumerate(wanted, 1)
            ]
        if len(out) == 1:
            return Decision(True, token=token)
        winner = _text(out[1]) or None
        target = wanted[int(out[2]) - 1][0]
        first_xapp, first_replica = _text(out[4]), _text(out[5])
        conflict = Conflict(
            policy=self.policy,
            target=target,
            parameter=_text(out[3]),
            first_xapp=first_xapp,
            first=_decode(_text(out[8])),
            second_xapp=xapp,
            second=action,
            winner=winner,
            at=int(out[9]) / 1000,
        )
        log.warning(
            "conflict: %s (first from replica %s, priority %s)",
            conflict,
            first_replica,
            int(out[6]),
            extra={"xapp": xapp, "control": conflict.target},
        )
        if int(out[10]):
            self.notices_sent += 1
        local = first_xapp != xapp and first_replica == replica
        return Decision(allowed, conflict, first_xapp if local else None, token)

    @property
    def retractions_pending(self) -> int:
        """Retractions not yet sent to Redis (at most ``MAX_RETRACTS``)."""
        return len(self._retracts)

    def retract(self, token: Token) -> None:
        """Forget a control that did not take effect (sent to Redis in the background)."""
        self._retracts += [(self._key(t), touch.entry.encode()) for t, touch in token]
        if len(self._retracts) > MAX_RETRACTS:
            del self._retracts[: len(self._retracts) - MAX_RETRACTS]
        self._wake.set()

    # -- the component ----------------------------------------------------------------------------

    async def start(self, runtime: RuntimeView | None = None) -> None:
        """Follow the notices addressed to this replica (from the stream's current end)."""
        if self._worker is not None:
            raise RuntimeError("the shared conflict window is started already")
        if runtime is not None:
            self._sensor = runtime.sensor
            runtime.sensor.stats_added("conflict_window", self.samples)
        self._unwatch = self._backend.watch(self.namespace, self._changed)
        try:  # from the stream's end: older notices were for xApps of an earlier start
            async with asyncio.timeout(self.timeout_s):
                await self._read()
        except (SdlError, TimeoutError) as exc:  # read at the first wake-up instead
            log.warning("shared conflict window: cannot read the notices yet: %s", exc)
        self._worker = asyncio.get_running_loop().create_task(self._work(), name="conflict-window")

    async def stop(self) -> None:
        """Send the retractions still queued (bounded by the timeout), stop following."""
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        worker, self._worker = self._worker, None
        self._stopping = True  # the worker ends even if a cancellation were lost
        self._wake.set()
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        with contextlib.suppress(SdlError, TimeoutError):
            async with asyncio.timeout(self.timeout_s):
                await self._flush()
        if self._sensor is not None:
            self._sensor.stats_removed("conflict_window")
            self._sensor = None

    def checks(self) -> list[Check]:
        """No readiness check of its own: ``ric.cluster`` and the SDL say when Redis is gone."""
        return []

    def samples(self) -> Iterator[StatSample]:
        """The ``ric_conflict_window_*`` series, while the component runs."""
        yield (
            "ric_conflict_window_checks",
            "counter",
            "Conflict checks run in the window shared by the replicas (Redis).",
            {},
            self.checks_made,
        )
        yield (
            "ric_conflict_window_unavailable",
            "counter",
            "Controls refused because the shared conflict window did not answer in time.",
            {},
            self.unavailable,
        )
        yield (
            "ric_conflict_window_notices_sent",
            "counter",
            "Conflicts whose first xApp runs on another replica (a notice went there).",
            {},
            self.notices_sent,
        )
        yield (
            "ric_conflict_window_notices_received",
            "counter",
            "Conflict notices from other replicas handed to an xApp here.",
            {},
            self.notices_received,
        )

    def _changed(self, change: Change) -> None:
        if change.key == NOTICES_KEY:
            self._wake.set()

    async def _work(self) -> None:
        """Send retractions and read notices when woken, and poll the notices every POLL_S."""
        while not self._stopping:
            # asyncio.wait, not a timeout block: on Python 3.11 a timeout that fires as the
            # task is cancelled can turn the cancellation into a TimeoutError, lost here.
            waiter = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({waiter}, timeout=POLL_S)
            finally:
                waiter.cancel()
            self._wake.clear()
            if self._stopping:
                return
            try:
                async with asyncio.timeout(self.timeout_s):
                    await self._flush()
                    await self._read()
            except (SdlError, TimeoutError) as exc:  # Redis is gone: the next round retries
                log.debug("shared conflict window: %s", exc or "no answer in time")

    async def _flush(self) -> None:
        while self._retracts:
            batch = self._retracts[:_RETRACT_BATCH]
            del self._retracts[:_RETRACT_BATCH]
            try:
                await self._backend.run_script(
                    "cw_retract", [k for k, _ in batch], [e for _, e in batch]
                )
            except BaseException:
                self._retracts[:0] = batch  # kept for the next round
                raise

    async def _read(self) -> None:
        out = await self._backend.run_script(
            "cw_read", [self._stream_key], [self._read_from.encode(), b"%d" % _MAX_NOTICES]
        )
        first_read = not self._read_from
        self._read_from = _text(out[0])
        if first_read:
            return
        me = self._replica()
        for i in range(1, len(out) - 1, 2):
            if _text(out[i]) == me:
                self._deliver(_text(out[i + 1]))

    def _deliver(self, text: str) -> None:
        try:
            n = json.loads(text)
            conflict = Conflict(
                policy=str(n["policy"]),
                target=str(n["target"]),
                parameter=str(n["parameter"]),
                first_xapp=str(n["first_xapp"]),
                first=_decode(str(n["first"])),
                second_xapp=str(n["second_xapp"]),
                second=_decode(str(n["second"])),
                winner=str(n["winner"]) or None,
                at=float(n["at"]) / 1000,
            )
        except (ValueError, KeyError, TypeError, SdlError) as exc:
            log.warning("shared conflict window: a notice cannot be read (%s): %r", exc, text)
            return
        self.notices_received += 1
        self._notify(conflict.first_xapp, conflict)
