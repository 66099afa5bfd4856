"""Capped exponential back-off: the one way the runtime, the simulator and the bridges wait
before trying again.

::

    retry = Backoff(0.1, 30.0, clock=clock)
    while True:
        try:
            await connect()
            retry.reset()                 # it worked: the next failure starts short again
        except OSError:
            await retry.sleep()           # 0.1, 0.2, 0.4 ... 30, 30 s

The delay doubles (``factor``) from ``min_s`` up to ``max_s``. ``jitter`` spreads each delay
uniformly by that fraction either way, so that many peers that failed together do not retry
together. Sleeping goes through a ``Clock``, so it runs on virtual time under the test
harness.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from ric.types import Clock, RealClock

__all__ = ["Backoff"]


class Backoff:
    """Delays that double from ``min_s`` to ``max_s``; ``reset`` starts again from ``min_s``."""

    __slots__ = ("_clock", "_current", "_random", "factor", "jitter", "max_s", "min_s")

    def __init__(
        self,
        min_s: float,
        max_s: float,
        *,
        factor: float = 2.0,
        jitter: float = 0.0,
        clock: Clock | None = None,
        random_fn: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < min_s <= max_s:
            raise ValueError(f"Backoff needs 0 < min_s <= max_s, got {min_s} and {max_s}")
        if factor < 1.0:
            raise ValueError(f"Backoff factor must be at least 1, got {factor}")
        if not 0.0 <= jitter < 1.0:
            raise ValueError(f"Backoff jitter must be in [0, 1), got {jitter}")
        self.min_s = min_s
        self.max_s = max_s
        self.factor = factor
        self.jitter = jitter
        self._clock: Clock = clock or RealClock()
        self._random = random_fn
        self._current = min_s

    def __repr__(self) -> str:
        return f"Backoff({self.min_s:g}..{self.max_s:g} s, next {self._current:g} s)"

    @property
    def current(self) -> float:
        """The delay the next ``next()`` or ``sleep()`` starts from (before jitter)."""
        return self._current

    def next(self) -> float:
        """The delay to wait now (with jitter); the one after it is ``factor`` times longer,
        up to ``max_s``."""
        delay = self._current
        self._current = min(self._current * self.factor, self.max_s)
        if self.jitter:
            delay *= 1.0 + self.jitter * (2.0 * self._random() - 1.0)
        return delay

    def reset(self) -> None:
        """Start again from ``min_s`` (after a success)."""
        self._current = self.min_s

    async def sleep(self) -> float:
        """Wait ``next()`` seconds on the clock; returns how long it waited."""
        delay = self.next()
        await self._clock.sleep(delay)
        return delay
