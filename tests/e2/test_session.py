"""A node session's buckets on a virtual clock: the value rate, its throttled notice, and the
error budget it spends."""

from __future__ import annotations

from ric.e2.session import NodeSession
from ric.ids import NodeId, NodeType, Plmn
from ric.model import CauseCode, NodeInfo
from ric.sensors import Stats


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def session(
    stats: Stats,
    clock: FakeClock,
    rate: float | None = 1000.0,
    burst: int = 20,
    indications: float | None = None,
) -> NodeSession:
    info = NodeInfo(
        id=NodeId(Plmn("001", "01"), 1, NodeType.GNB),
        vendor="t",
        software_version="1",
        ran_functions={},
        cells={},
    )
    return NodeSession(
        info,
        "peer",
        1.0,
        stats,
        error_burst=burst,
        error_refill_per_s=0.0,
        max_values_per_s=rate,
        max_indications_per_s=indications,
        clock=clock,
    )


async def test_value_bucket_holds_one_second_and_refills_at_the_rate() -> None:
    """A node may send one second's worth of values at once, then values at the rate."""
    clock = FakeClock()
    s = session(Stats(), clock)
    assert s.take_indication(600)
    assert s.take_indication(400)
    assert not s.take_indication(1)
    clock.now += 0.25
    assert not s.take_indication(251)
    assert s.take_indication(250)
    clock.now += 10.0
    assert not s.take_indication(1001)  # never more than one second's worth banked
    assert s.take_indication(1000)


async def test_indication_bucket_counts_indications_whatever_their_size() -> None:
    """With an indication rate, tiny indications run out of it; the value bucket is charged
    only for the indications that pass."""
    clock = FakeClock()
    s = session(Stats(), clock, rate=1000.0, indications=2.0)
    assert s.take_indication(600)
    assert s.take_indication(300)
    assert not s.take_indication(1)  # values left, but no indication
    clock.now += 0.5  # one indication and 500 values accrue
    assert not s.take_indication(601)
    assert s.take_indication(600)
    assert not s.take_indication(0)


async def test_no_rate_means_no_limit() -> None:
    """Without rates every indication and value passes."""
    s = session(Stats(), FakeClock(), rate=None)
    assert all(s.take_indication(10**12) for _ in range(100))


async def test_over_rate_notice_at_most_once_a_second() -> None:
    """Every dropped indication is counted, but the node is told at most once per second."""
    clock = FakeClock()
    stats = Stats()
    s = session(stats, clock)
    for _ in range(5):
        s.over_rate(2, 3000, (1, 7), 2)
        clock.now += 0.1
    notices = [m.error_indication for m in s.take_outbound()]
    assert len(notices) == 1
    assert CauseCode(notices[0].cause.code) is CauseCode.MISC_CONTROL_PROCESSING_OVERLOAD
    assert notices[0].ran_function_id == 2
    assert (notices[0].request_id.requestor, notices[0].request_id.instance) == (1, 7)
    assert "2 indication(s) of 3,000 values dropped" in notices[0].cause.detail
    assert stats.refused[("gnb-001-01-1", "indication_rate")] == 10
    clock.now += 0.6
    s.over_rate(1, 10, None, 0)
    assert len(s.take_outbound()) == 1


async def test_over_rate_spends_the_error_budget() -> None:
    """Each message with dropped indications spends one token of the error budget; when it is
    empty the session closes."""
    s = session(Stats(), FakeClock(), burst=3)
    for _ in range(3):
        s.over_rate(1, 10)
        assert not s.closed
    s.over_rate(1, 10)
    assert s.closed
    assert s.close_reason == "too many bad messages"
