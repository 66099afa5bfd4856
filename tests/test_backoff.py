"""The shared back-off: doubling up to a cap, reset, jitter within its band, virtual sleep."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ric.backoff import Backoff
from ric.testing import ManualClock


def test_delays_double_up_to_the_cap_and_reset_starts_again() -> None:
    """0.1, 0.2, 0.4 ... capped at max_s; reset goes back to min_s."""
    b = Backoff(0.1, 1.0)
    assert [round(b.next(), 3) for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    b.reset()
    assert b.next() == 0.1


def test_jitter_stays_within_its_band() -> None:
    """With jitter 0.2 every delay is within 20 % of the un-jittered one, both ends reachable."""
    low = Backoff(1.0, 1.0, jitter=0.2, random_fn=lambda: 0.0)
    high = Backoff(1.0, 1.0, jitter=0.2, random_fn=lambda: 0.999999)
    assert low.next() == pytest.approx(0.8)
    assert high.next() == pytest.approx(1.2, rel=1e-5)


@pytest.mark.parametrize(
    ("args", "kwargs", "words"),
    [
        ((0.0, 1.0), {}, "0 < min_s"),
        ((2.0, 1.0), {}, "min_s <= max_s"),
        ((0.1, 1.0), {"factor": 0.5}, "factor"),
        ((0.1, 1.0), {"jitter": 1.0}, "jitter"),
    ],
)
def test_bad_settings_are_refused_naming_them(
    args: tuple[float, float], kwargs: dict[str, Any], words: str
) -> None:
    """A back-off that could not work is refused with the setting named."""
    with pytest.raises(ValueError, match=words):
        Backoff(*args, **kwargs)


async def test_sleep_waits_on_the_given_clock() -> None:
    """sleep() waits the delay on the clock it was given (virtual time here)."""
    clock = ManualClock()
    b = Backoff(0.5, 4.0, clock=clock)
    start = clock.monotonic()
    task = asyncio.create_task(b.sleep())
    await asyncio.sleep(0)  # let it start waiting on the clock
    await clock.advance(0.5)
    assert await task == 0.5
    assert clock.monotonic() - start == pytest.approx(0.5)
