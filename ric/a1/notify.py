"""Policy status notifications: the A1-P callback to a policy's ``notificationDestination``.

A non-RT RIC that puts a policy with ``?notificationDestination=<uri>`` is sent the policy's
status object (``enforceStatus``, ``enforceReason``) as ``POST <uri>`` whenever it changes: an
xApp reports, an xApp stops, the policy is replaced. The A1 service decides *when*
(``ric.a1.service``); this module decides *where to* and *how*:

- ``check_destination`` refuses, at PUT, a destination that is not an absolute http(s) URI or
  whose host ``[a1] notify_hosts`` does not list. The list is empty by default, so a PUT cannot
  make the RIC send requests into the operator's network (no server-side request forgery);
  loopback is reachable only when listed.
- ``Notifier`` sends from its own task, never on the E2 path's time: a bounded queue
  (``[a1] notify_queue``; the newest is dropped and counted when full), one POST at a time in
  order, each with a timeout and retries with back-off (``ric.backoff``); redirects are not
  followed (they could lead anywhere). Outcomes go to ``Sensor.a1_notification``.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import logging
import urllib.parse
from typing import TYPE_CHECKING, Any

from ric.a1.policy import PolicyError
from ric.backoff import Backoff
from ric.config import A1Settings
from ric.types import Clock, RealClock, Sensor

if TYPE_CHECKING:
    import aiohttp

__all__ = ["MAX_DESTINATION", "Notifier", "check_destination"]

log = logging.getLogger(__name__)

MAX_DESTINATION = 1024
"""The longest notificationDestination accepted, in characters."""


def _host(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.lower()


def check_destination(value: object, allowed: frozenset[str]) -> str:
    """``value`` if it is an absolute http(s) URI whose host is in ``allowed`` (``[a1]
    notify_hosts``, normalised), else PolicyError 400 saying why and naming the setting."""
    what = "notificationDestination"
    if not isinstance(value, str) or not value or len(value) > MAX_DESTINATION:
        raise PolicyError(
            400, f"{what} must be an absolute http(s) URI of at most {MAX_DESTINATION} characters"
        )
    try:
        parts = urllib.parse.urlsplit(value)
        port = parts.port  # raises for a port that is not a number or out of range
    except ValueError as exc:
        raise PolicyError(400, f"{what} {value!r} is not a URI: {exc}") from None
    del port
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PolicyError(400, f"{what} {value!r} is not an absolute http or https URI")
    if parts.username is not None or parts.fragment or any(ord(c) < 33 for c in value):
        raise PolicyError(
            400, f"{what} {value!r}: no user information, fragment, spaces or control characters"
        )
    host = _host(parts.hostname)
    if not allowed:
        raise PolicyError(
            400,
            f"{what} {value!r} is refused: [a1] notify_hosts is empty, so this RIC sends no "
            "policy status notifications; list the non-RT RIC's host there to allow it",
        )
    if host not in allowed:
        raise PolicyError(
            400, f"{what} {value!r} is refused: host {host!r} is not in [a1] notify_hosts"
        )
    return value


class Notifier:
    """Sends policy status notifications from one task (see the module docstring).

    ``start`` makes the task in the runtime's task group; ``close`` ends it (notifications
    still queued are not sent). ``submit`` never blocks and never raises.
    """

    def __init__(
        self, settings: A1Settings, sensor: Sensor | None = None, clock: Clock | None = None
    ) -> None:
        self.settings = settings
        self.allowed = frozenset(settings.notify_hosts)
        self._sensor = sensor or Sensor()
        self._clock: Clock = clock or RealClock()
        self._queue: collections.deque[tuple[str, dict[str, Any]]] = collections.deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    def __repr__(self) -> str:
        return f"Notifier({len(self._queue)} queued, {self.sent} sent)"

    @property
    def queued(self) -> int:
        """Notifications waiting to be sent."""
        return len(self._queue)

    def start(self, tg: asyncio.TaskGroup) -> None:
        """Start sending, in ``tg``."""
        if self._task is None:
            self._task = tg.create_task(self._run(), name="a1:notify")

    def close(self) -> None:
        """Stop sending (the runtime shuts down)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        self._queue.clear()

    def submit(self, destination: str, status: dict[str, Any]) -> None:
        """Queue ``status`` for ``destination``; dropped and counted when the queue is full."""
        if len(self._queue) >= self.settings.notify_queue:
            self.dropped += 1
            self._sensor.a1_notification("dropped")
            log.warning(
                "A1: a policy status notification to %s was dropped: %d are queued already "
                "([a1] notify_queue)",
                destination,
                len(self._queue),
            )
            return
        self._queue.append((destination, status))
        self._wake.set()

    async def _run(self) -> None:
        import aiohttp  # here, not at import: the core and the SDK do not load aiohttp

        timeout = aiohttp.ClientTimeout(total=self.settings.notify_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                if not self._queue:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                destination, status = self._queue.popleft()
                await self._send(http, destination, status)

    async def _send(
        self, http: aiohttp.ClientSession, destination: str, status: dict[str, Any]
    ) -> None:
        import aiohttp

        s = self.settings
        retry = Backoff(
            s.notify_retry_min_s,
            max(s.notify_retry_min_s, s.notify_retry_max_s),
            jitter=0.1,
            clock=self._clock,
        )
        why = ""
        for attempt in range(s.notify_retries + 1):
            if attempt:
                await retry.sleep()
            try:
                async with http.post(destination, json=status, allow_redirects=False) as answer:
                    if 200 <= answer.status < 300:
                        self.sent += 1
                        self._sensor.a1_notification("sent")
                        return
                    why = f"answered {answer.status}"
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        self.failed += 1
        self._sensor.a1_notification("failed")
        log.warning(
            "A1: the policy status notification to %s failed after %d attempts (%s)",
            destination,
            s.notify_retries + 1,
            why,
        )
