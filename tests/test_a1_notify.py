"""ric.a1.notify: destinations checked against the allow-list, and a Notifier that retries,
drops beyond its queue and counts each outcome, against a real listener."""

from __future__ import annotations

import asyncio

import pytest

from ric.a1 import PolicyError
from ric.a1.notify import Notifier, check_destination
from ric.config import A1Settings
from ric.types import Sensor
from tests.a1.listener import listening
from tests.conftest import wait_for

LOOPBACK = frozenset({"127.0.0.1", "::1", "ric-nonrt.example"})


class Outcomes(Sensor):
    """Records every a1_notification outcome."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def a1_notification(self, outcome: str) -> None:
        self.seen.append(outcome)


def settings(**values: object) -> A1Settings:
    """A1 settings with quick retries."""
    base: dict[str, object] = {"notify_retry_min_s": 0.01, "notify_retry_max_s": 0.02}
    return A1Settings.model_validate({**base, **values})


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:8080/cb",
        "https://ric-nonrt.example/a1/notify?x=1",
        "http://RIC-NONRT.example/cb",
        "http://[::1]:9000/cb",
    ],
)
def test_an_absolute_uri_to_a_listed_host_is_accepted(uri: str) -> None:
    """http(s) URIs whose host (any case, IPv6 in brackets) is listed are accepted as given."""
    assert check_destination(uri, LOOPBACK) == uri


@pytest.mark.parametrize(
    ("uri", "needle"),
    [
        (5, "must be an absolute http(s) URI"),
        ("", "must be an absolute http(s) URI"),
        ("h" * 1025, "at most 1024 characters"),
        ("mailto:a@b", "is not an absolute http or https URI"),
        ("//127.0.0.1/cb", "is not an absolute http or https URI"),
        ("http://127.0.0.1:70000/cb", "is not a URI"),
        ("http://127.0.0.1/cb#frag", "no user information, fragment"),
        ("http://127.0.0.1/c b", "no user information, fragment"),
        ("http://127.0.0.1/cb\n", "no user information, fragment"),
        ("http://localhost/cb", "host 'localhost' is not in [a1] notify_hosts"),
        ("http://169.254.169.254/latest", "host '169.254.169.254' is not in [a1] notify_hosts"),
    ],
)
def test_a_bad_or_unlisted_destination_is_400_saying_why(uri: object, needle: str) -> None:
    """Anything but an absolute http(s) URI to a listed host is a 400 naming the problem."""
    with pytest.raises(PolicyError) as caught:
        check_destination(uri, LOOPBACK)
    assert caught.value.status == 400 and needle in caught.value.detail


def test_with_no_hosts_listed_every_destination_is_refused_naming_the_setting() -> None:
    """The default allow-list is empty: even loopback is refused, and the refusal says which
    setting allows it."""
    with pytest.raises(PolicyError, match=r"\[a1\] notify_hosts is empty") as caught:
        check_destination("http://127.0.0.1/cb", frozenset(A1Settings().notify_hosts))
    assert caught.value.status == 400


async def test_a_notification_is_retried_until_the_listener_takes_it() -> None:
    """A listener that fails twice gets the status on the third attempt: one 'sent'."""
    outcomes = Outcomes()
    notifier = Notifier(settings(notify_retries=3), outcomes)
    async with listening() as listener, asyncio.TaskGroup() as tg:
        listener.fail = 2
        notifier.start(tg)
        notifier.submit(listener.url, {"enforceStatus": "ENFORCED"})
        await wait_for(lambda: outcomes.seen, what="an outcome")
        notifier.close()
    assert outcomes.seen == ["sent"] and listener.attempts == 3
    assert listener.received == [{"enforceStatus": "ENFORCED"}]


async def test_a_notification_fails_after_its_retries_and_the_next_one_goes_on() -> None:
    """Every attempt failing (retries + 1 of them) counts one 'failed', logged; the next
    notification is sent."""
    outcomes = Outcomes()
    notifier = Notifier(settings(notify_retries=1), outcomes)
    async with listening() as listener, asyncio.TaskGroup() as tg:
        listener.fail = 2
        notifier.start(tg)
        notifier.submit(listener.url, {"enforceStatus": "ENFORCED"})
        notifier.submit(listener.url, {"enforceStatus": "NOT_ENFORCED"})
        await wait_for(lambda: len(outcomes.seen) == 2, what="two outcomes")
        notifier.close()
    assert outcomes.seen == ["failed", "sent"] and listener.attempts == 3
    assert listener.received == [{"enforceStatus": "NOT_ENFORCED"}]


async def test_beyond_the_queue_notifications_are_dropped_and_counted() -> None:
    """With notify_queue 2 and no sender running, a third notification is dropped at once and
    counted; submit never blocks."""
    outcomes = Outcomes()
    notifier = Notifier(settings(notify_queue=2), outcomes)
    for _ in range(3):
        notifier.submit("http://127.0.0.1:9/cb", {"enforceStatus": "ENFORCED"})
    assert (notifier.queued, notifier.dropped, outcomes.seen) == (2, 1, ["dropped"])
