"""Hostile HTTP clients against a real ``ric run``: a backtracking regular expression, a flood
of requests and a body nested 100,000 deep; each is answered at once and E2 does not notice."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from tests.adversarial.conftest import TOKEN, Ric, running_ric
from tests.adversarial.watch import PERIOD_MS

A1 = "/A1-P/v2"
REDOS_TYPE = {
    "name": "redos",
    "description": "a schema whose pattern backtracks exponentially on Python's re",
    "policySchema": {
        "type": "object",
        "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}},
        "required": ["s"],
    },
}


async def put(ric: Ric, path: str, body: Any) -> tuple[int, Any]:
    """PUT ``body`` as JSON; the status and the decoded answer."""
    async with ric.session.put(f"{ric.url}{path}", json=body) as r:
        return r.status, await r.json(content_type=None)


async def test_a_backtracking_pattern_answers_at_once(ric: Ric) -> None:
    """The ReDoS policy (40 'a' and a '!') against '^(a+)+$' answers in under a second and the
    loop never stalls: patterns run on a linear-time engine."""
    status, body = await put(ric, f"{A1}/policytypes/redos", REDOS_TYPE)
    assert status == 201, body
    window = await ric.begin()
    started = time.monotonic()
    status, body = await put(ric, f"{A1}/policytypes/redos/policies/p1", {"s": "a" * 40 + "!"})
    elapsed = time.monotonic() - started
    assert status == 400, body
    assert elapsed < 1.0, f"the policy took {elapsed:.2f} s to answer"
    status, body = await put(ric, f"{A1}/policytypes/redos/policies/p2", {"s": "a" * 40})
    assert status == 201, body
    await ric.assert_unharmed(window)


async def test_a_flood_of_requests_does_not_slow_e2(tmp_path: Path) -> None:
    """2,000 concurrent requests (1,000 A1 PUTs, 1,000 GET /metrics) are each answered, some
    with 503 and Retry-After beyond the in-flight bound, while the good node's reports keep
    their rate within 10 %."""
    # The default /metrics sharing (one exposition a second) is part of what is tested.
    async with running_ric(tmp_path, {"http": {"metrics_cache_s": 1.0}}) as ric:
        await flood(ric)


async def raw_request(ric: Ric, request: bytes) -> tuple[int, bytes]:
    """Send one prepared HTTP/1.1 request on a connection of its own and read the answer to
    its end: the attacker spends almost nothing per request, so the flood is as dense as the
    runtime lets it be. Returns the status and the raw head of the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", ric.http_port)
    try:
        writer.write(request)
        answer = await reader.read()
    finally:
        writer.close()
    head = answer.split(b"\r\n\r\n", 1)[0]
    return int(head.split(b" ", 2)[1]), head


def prepared(method: str, path: str, body: bytes = b"") -> bytes:
    """One HTTP/1.1 request with the write token, closing the connection after the answer."""
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body


async def flood(ric: Ric) -> None:
    """The flood of the test above, against ``ric``."""
    status, body = await put(
        ric,
        f"{A1}/policytypes/flood",
        {"policySchema": {"type": "object", "properties": {"n": {"type": "integer"}}}},
    )
    assert status == 201, body
    requests = [
        prepared("PUT", f"{A1}/policytypes/flood/policies/p{i}", b'{"n": %d}' % i)
        if i % 2
        else prepared("GET", "/metrics")
        for i in range(2000)
    ]
    window = await ric.begin()
    answers = await asyncio.gather(*(raw_request(ric, r) for r in requests))
    t1 = time.time()
    statuses = [status for status, _ in answers]
    assert set(statuses) <= {200, 201, 503}, sorted(set(statuses))
    for status, head in answers:
        if status == 503:
            assert b"\r\nretry-after: " in head.lower(), head
    await ric.assert_unharmed(window, settle_s=1.5)
    if t1 - window.t0 >= 1.0:  # a rate over a window shorter than five periods says little
        expected = 1000 / PERIOD_MS
        rate = ric.good_rate(window.t0, t1)
        assert rate >= 0.9 * expected, f"{rate:.2f} reports/s during the flood, {expected} due"


async def test_a_body_nested_100000_deep_is_refused_as_too_deep(ric: Ric) -> None:
    """A JSON body nested 100,000 deep gets 400 'too deep', with no error or traceback logged."""
    status, body = await put(ric, f"{A1}/policytypes/deep", {"policySchema": {"type": "object"}})
    assert status == 201, body
    window = await ric.begin()
    data = "[" * 100_000 + "]" * 100_000
    async with ric.session.put(
        f"{ric.url}{A1}/policytypes/deep/policies/p1",
        data=data,
        headers={"Content-Type": "application/json"},
    ) as r:
        assert r.status == 400
        answer = await r.text()
    assert "too deep" in answer
    await ric.assert_unharmed(window)
    log = ric.log_text()
    assert "Traceback" not in log and "RecursionError" not in log
    assert " ERROR " not in log


async def test_not_a_number_in_a_policy_is_refused_naming_the_field(ric: Ric) -> None:
    """NaN in a policy body is 400 naming the field, never 503 from the store."""
    status, body = await put(
        ric,
        f"{A1}/policytypes/nan",
        {"policySchema": {"type": "object", "properties": {"max_delay_ms": {"type": "number"}}}},
    )
    assert status == 201, body
    window = await ric.begin()
    async with ric.session.put(
        f"{ric.url}{A1}/policytypes/nan/policies/p1",
        data='{"max_delay_ms": NaN}',
        headers={"Content-Type": "application/json"},
    ) as r:
        assert r.status == 400
        assert "max_delay_ms" in await r.text()
    await ric.assert_unharmed(window)
