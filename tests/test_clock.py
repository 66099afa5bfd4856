"""Tests of ric.clock: the manual clock that tests and the replay harness run on."""

from __future__ import annotations

import asyncio

import ric.testing
from ric.clock import ManualClock


async def test_manual_clock_steps_to_each_deadline() -> None:
    """next_due names the earliest pending wait; advance_to wakes waits in time order."""
    clock = ManualClock()
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(name)

    tasks = [asyncio.create_task(sleeper("b", 2.0)), asyncio.create_task(sleeper("a", 1.0))]
    handle = clock.call_later(0.5, lambda: woke.append("cancelled"))
    await asyncio.sleep(0)
    handle.cancel()
    assert clock.next_due() == 1.0
    await clock.advance_to(5.0)
    await asyncio.gather(*tasks)
    assert woke == ["a", "b"] and clock.monotonic() == 5.0 and clock.next_due() is None


async def test_time_is_the_start_plus_what_was_advanced_and_never_goes_back() -> None:
    """time() is the given start plus the advances; advance_to an earlier moment keeps it."""
    clock = ManualClock(start=1000.0)
    await clock.advance(2.5)
    await clock.advance_to(1.0)
    assert (clock.monotonic(), clock.time()) == (2.5, 1002.5)


def test_ric_testing_re_exports_the_same_class() -> None:
    """``from ric.testing import ManualClock`` is the class of ric.clock, not a copy."""
    assert ric.testing.ManualClock is ManualClock
    assert "ManualClock" in ric.testing.__all__
