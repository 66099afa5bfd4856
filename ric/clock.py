"""The manual clock: virtual time that moves only when a test or the replay harness says so.

It fills the ``ric.types.Clock`` contract (``RealClock`` is the real one) and imports nothing
of the runtime, so the harness, the simulator and ``ric.testing`` can all build on it;
``ric.testing`` re-exports it for xApp tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ric.types import Cancellable

__all__ = ["ManualClock"]


class ManualClock:
    """A clock that moves only when told: ``advance(seconds)`` wakes the sleepers that are due."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = 0.0
        self._epoch = start
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def monotonic(self) -> float:
        """Seconds since the clock was made, as advanced."""
        return self._now

    def time(self) -> float:
        """Unix time: the start plus what was advanced."""
        return self._epoch + self._now

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock has been advanced by ``seconds``."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + seconds, future))
        await future

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Cancellable:
        """Call ``callback`` once the clock has been advanced by ``seconds``."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + seconds, future))
        future.add_done_callback(lambda done: None if done.cancelled() else callback())
        return future

    async def advance(self, seconds: float) -> None:
        """Move time forward and let every task whose sleep ended run."""
        await self.advance_to(self._now + seconds)

    async def advance_to(self, monotonic: float) -> None:
        """Move time forward to ``monotonic`` exactly (never back); wake the sleepers that are
        due, earliest first, and let them run."""
        self._now = max(self._now, monotonic)
        due = sorted(((t, f) for t, f in self._sleepers if t <= self._now), key=lambda d: d[0])
        self._sleepers = [(t, f) for t, f in self._sleepers if t > self._now and not f.done()]
        for _, future in due:
            if not future.done():
                future.set_result(None)
        for _ in range(3):
            await asyncio.sleep(0)

    def next_due(self) -> float | None:
        """When the earliest pending sleep or ``call_later`` is due (``monotonic`` seconds), or
        None when nothing waits on this clock (the replay harness steps time with this)."""
        return min((t for t, f in self._sleepers if not f.done()), default=None)
