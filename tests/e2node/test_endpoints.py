"""The RIC endpoints a node is given (ric.e2node.endpoints): checked, round robin, and each
endpoint's own time-to-wait."""

from __future__ import annotations

import re

import pytest

from ric.e2node import Endpoints, parse_endpoint


def test_endpoints_are_parsed_in_order_and_go_round_robin() -> None:
    """A comma-separated list keeps its order; failing over goes to the next and, after the
    last, back to the first."""
    endpoints = Endpoints.parse("10.0.0.1:36421, ric-b:36421,[::1]:36421")
    assert endpoints.targets == ("10.0.0.1:36421", "ric-b:36421", "[::1]:36421")
    assert endpoints.current == "10.0.0.1:36421"
    assert [endpoints.fail_over() for _ in range(4)] == [
        "ric-b:36421",
        "[::1]:36421",
        "10.0.0.1:36421",
        "ric-b:36421",
    ]


def test_one_endpoint_fails_over_to_itself() -> None:
    """With one endpoint, failing over is reconnecting to it."""
    endpoints = Endpoints(["127.0.0.1:36421"])
    assert endpoints.fail_over() == endpoints.current == "127.0.0.1:36421"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ric", "'ric' is not HOST:PORT"),
        ("ric:", "'ric:' is not HOST:PORT"),
        (":36421", "':36421' is not HOST:PORT"),
        ("ric:0", "'ric:0' is not HOST:PORT with a port 1-65535"),
        ("ric:65536", "'ric:65536' is not HOST:PORT"),
        ("ric:http", "'ric:http' is not HOST:PORT"),
        ("::1:36421", "an IPv6 host goes in brackets"),
    ],
)
def test_a_bad_endpoint_is_named(text: str, message: str) -> None:
    """Each malformed endpoint is refused with a message naming it and what is wrong."""
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_endpoint(text)
    with pytest.raises(ValueError, match=re.escape(message)):
        Endpoints.parse(f"127.0.0.1:36421,{text}")


def test_no_endpoint_or_a_repeated_one_is_refused() -> None:
    """An empty list, a repeated endpoint and a bare string are refused, each saying why."""
    with pytest.raises(ValueError, match="no RIC endpoint"):
        Endpoints([])
    with pytest.raises(ValueError, match="a:1 is given more than once"):
        Endpoints.parse("a:1,b:2,a:1")
    with pytest.raises(TypeError, match=r"Endpoints\.parse"):
        Endpoints("a:1")


def test_unchecked_endpoints_are_taken_as_they_are() -> None:
    """check=False keeps names that are not addresses (a node served in memory)."""
    assert Endpoints(["memory"], check=False).current == "memory"


def test_time_to_wait_belongs_to_the_endpoint_that_asked() -> None:
    """A refusal's time-to-wait holds back only the endpoint that asked, for what remains of
    it; 0 says use the back-off."""
    clock = [100.0]
    endpoints = Endpoints.parse("a:1,b:1", now=lambda: clock[0])
    endpoints.refused(5.0)
    assert endpoints.wait_s() == 5.0
    endpoints.fail_over()
    assert endpoints.wait_s() == 0.0
    clock[0] = 102.0
    endpoints.fail_over()
    assert endpoints.current == "a:1" and endpoints.wait_s() == 3.0
    clock[0] = 105.0
    assert endpoints.wait_s() == 0.0
    endpoints.refused(2.0)
    endpoints.refused(0.0)  # refused again without a wait: the old one no longer holds
    assert endpoints.wait_s() == 0.0
