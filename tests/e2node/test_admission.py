"""The E2-node rules of ric.e2node, held by both kinds of node over real gRPC: the simulator's
agent (a simulated world) and the trace replay's played node (a recorded trace), each
connected to a fake E2 termination on a loopback grpc.aio server and driven message by message.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ric._proto.e2.v1 import common_pb2, e2_pb2, kpm_pb2, rc_pb2
from ric.e2node import MAX_ACTIONS
from ric.model import KPM_OID, RC_OID, CauseCode
from ric.sim import Simulator, load_scenario
from ric.trace import Direction, NodeSetup, TraceHeader, TraceWriter, replay
from tests.e2node import setup_request
from tests.sim.conftest import SEEDS, WAIT_S, FakeRic, FakeSession

START_US = 1_700_000_000_000_000
TRACE_NODE = "gnb-001-01-1"
METRIC = "RRU.PrbUsedDl"
PERIOD_MS = 1000
_CHATTER = frozenset({"keep_alive", "indications", "configuration_update"})
"""What a node sends by itself; an answer is anything else."""


@dataclass
class Node:
    """One connected node as the fake RIC sees it, with what the tests need to know of it."""

    session: FakeSession
    kpm: int
    rc: int
    cell: common_pb2.NrCgi

    async def ask(self, **fields: Any) -> e2_pb2.NodeMessage:
        """Send one RIC message; the node's next answer (its own reports and keep-alives are
        passed over)."""
        self.session.send(**fields)
        async with asyncio.timeout(WAIT_S):
            while True:
                msg = await self.session.inbox.get()
                if msg.WhichOneof("message") not in _CHATTER:
                    return msg


def _function(setup: e2_pb2.E2SetupRequest, oid: str) -> int:
    return next(f.ran_function_id for f in setup.ran_functions if f.oid == oid)


def _indication(start_ms: int) -> bytes:
    batch = e2_pb2.IndicationBatch()
    ind = batch.indications.add(ran_function_id=2, action_id=1)
    ind.kpm.collection_start_unix_ms = start_ms
    ind.kpm.granularity_period_ms = PERIOD_MS
    m = ind.kpm.matrix
    m.entity_kind = kpm_pb2.ENTITY_KIND_CELL
    m.metric_names.append(METRIC)
    m.entity_ids.extend(["001-01-11", "001-01-12"])
    m.values.extend([10.0, 20.0])
    return e2_pb2.NodeMessage(indications=batch).SerializeToString()


def _trace(path: Path) -> Path:
    """One node with cell reports of one metric, long enough to outlast any test."""
    setup = setup_request(node_id=1).setup_request
    with TraceWriter(path, TraceHeader(START_US, nodes=(NodeSetup(TRACE_NODE, setup),))) as w:
        for offset_s in (1, 600):
            start_ms = START_US // 1000 + (offset_s - 1) * PERIOD_MS
            w.add(offset_s * 1_000_000, TRACE_NODE, Direction.NODE_TO_RIC, _indication(start_ms))
    return path


async def _connected(session: FakeSession) -> Node:
    setup = await session.setup()
    return Node(session, _function(setup, KPM_OID), _function(setup, RC_OID), setup.cells[0].cgi)


@pytest.fixture(params=["sim-agent", "trace-player"])
async def node(
    request: pytest.FixtureRequest, fake_ric: FakeRic, tmp_path: Path
) -> AsyncIterator[Node]:
    """Node 1 of the small scenario's simulator, or the one node of a trace played by
    ``replay`` (controls: ack), set up with the fake RIC."""
    if request.param == "sim-agent":
        async with Simulator(load_scenario(SEEDS / "small.toml"), fake_ric.target, nodes=[1]):
            yield await _connected(await fake_ric.next_session())
        return
    played = asyncio.create_task(replay(_trace(tmp_path / "t.trace"), fake_ric.target, speed=1.0))
    try:
        yield await _connected(await fake_ric.next_session())
    finally:
        played.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await played


def _rid(instance: int) -> common_pb2.RicRequestId:
    return common_pb2.RicRequestId(requestor=7, instance=instance)


def _action(
    action_id: int, style: int = 1, metrics: Sequence[str] = (METRIC,), *, per_slice: bool = False
) -> e2_pb2.Action:
    return e2_pb2.Action(
        action_id=action_id,
        type=e2_pb2.ACTION_TYPE_REPORT,
        kpm=kpm_pb2.KpmActionDefinition(
            report_style=style, metric_names=metrics, per_slice=per_slice
        ),
    )


def _subscription(instance: int, fn: int, *actions: e2_pb2.Action) -> e2_pb2.SubscriptionRequest:
    return e2_pb2.SubscriptionRequest(
        request_id=_rid(instance),
        ran_function_id=fn,
        kpm_trigger=kpm_pb2.KpmEventTrigger(reporting_period_ms=PERIOD_MS),
        actions=actions,
    )


def _quota(node: Node, instance: int, fn: int, *, ack: bool = True) -> e2_pb2.ControlRequest:
    """A slice PRB quota control on the node's first cell."""
    return e2_pb2.ControlRequest(
        request_id=_rid(instance),
        ran_function_id=fn,
        header=rc_pb2.RcControlHeader(
            style=2,
            action_id=6,
            slice=rc_pb2.SliceTarget(cell=node.cell, slice=common_pb2.Snssai(sst=2, sd="000002")),
        ),
        message=rc_pb2.RcControlMessage(
            slice_prb_quota=rc_pb2.SlicePrbQuota(
                min_prb_ratio_pct=20, max_prb_ratio_pct=60, dedicated_prb_ratio_pct=10
            )
        ),
        ack_requested=ack,
    )


def _refusal(answer: e2_pb2.NodeMessage) -> tuple[int, CauseCode]:
    """(request instance, cause) of a SubscriptionFailure."""
    assert answer.WhichOneof("message") == "subscription_failure", answer
    failure = answer.subscription_failure
    return failure.request_id.instance, CauseCode(failure.cause.code)


async def test_sixteen_actions_are_admitted_and_seventeen_refused(node: Node) -> None:
    """A subscription may carry at most 16 actions; one more is refused as excessive."""
    most = [_action(i) for i in range(1, MAX_ACTIONS + 1)]
    answer = await node.ask(subscription_request=_subscription(1, node.kpm, *most))
    assert list(answer.subscription_response.admitted_action_ids) == list(range(1, 17))
    too_many = [*most, _action(MAX_ACTIONS + 1)]
    answer = await node.ask(subscription_request=_subscription(2, node.kpm, *too_many))
    assert _refusal(answer) == (2, CauseCode.RIC_REQUEST_EXCESSIVE_ACTIONS)


async def test_a_repeated_action_id_refuses_the_subscription(node: Node) -> None:
    """Two actions with the same id refuse the whole subscription as a duplicate action."""
    answer = await node.ask(
        subscription_request=_subscription(1, node.kpm, _action(4), _action(5), _action(4))
    )
    assert _refusal(answer) == (1, CauseCode.RIC_REQUEST_DUPLICATE_ACTION)
    assert "action ids repeat" in answer.subscription_failure.cause.detail


async def test_a_request_id_in_use_is_refused(node: Node) -> None:
    """A second subscription with a live subscription's request id is refused as a duplicate."""
    answer = await node.ask(subscription_request=_subscription(1, node.kpm, _action(1)))
    assert answer.HasField("subscription_response")
    answer = await node.ask(subscription_request=_subscription(1, node.kpm, _action(2)))
    assert _refusal(answer) == (1, CauseCode.RIC_REQUEST_DUPLICATE_ACTION)


async def test_an_unknown_ran_function_is_refused(node: Node) -> None:
    """A subscription to a RAN function that is not the node's KPM function is refused."""
    answer = await node.ask(subscription_request=_subscription(1, 99, _action(1)))
    assert _refusal(answer) == (1, CauseCode.RIC_REQUEST_RAN_FUNCTION_ID_INVALID)


async def test_an_unsupported_style_or_measurement_is_not_admitted(node: Node) -> None:
    """An unsupported style, per_slice outside style 1, or only unknown measurements refuse
    the action; an unknown measurement next to a known one is left out with its own cause."""
    cases = [
        (_action(1, style=9), CauseCode.RIC_REQUEST_ACTION_NOT_SUPPORTED),
        (_action(1, style=5, per_slice=True), CauseCode.RIC_REQUEST_ACTION_NOT_SUPPORTED),
        (_action(1, metrics=["No.Such"]), CauseCode.RIC_REQUEST_MEASUREMENT_NOT_SUPPORTED),
    ]
    for instance, (action, cause) in enumerate(cases, start=1):
        answer = await node.ask(subscription_request=_subscription(instance, node.kpm, action))
        assert _refusal(answer) == (instance, cause)

    answer = await node.ask(
        subscription_request=_subscription(
            10, node.kpm, _action(1, metrics=[METRIC, "No.Such"]), _action(2, style=9)
        )
    )
    response = answer.subscription_response
    assert list(response.admitted_action_ids) == [1]
    [skipped] = response.not_admitted_measurements
    assert (skipped.action_id, skipped.metric_name) == (1, "No.Such")
    assert CauseCode(skipped.cause.code) == CauseCode.RIC_REQUEST_MEASUREMENT_NOT_SUPPORTED
    [refused] = response.not_admitted_actions
    assert refused.action_id == 2
    assert CauseCode(refused.cause.code) == CauseCode.RIC_REQUEST_ACTION_NOT_SUPPORTED


async def test_deleting_an_unknown_subscription_fails(node: Node) -> None:
    """A delete of a subscription the node does not have fails with request id unknown; a
    live one is deleted once."""
    delete = e2_pb2.SubscriptionDeleteRequest(request_id=_rid(1), ran_function_id=node.kpm)
    answer = await node.ask(subscription_delete_request=delete)
    failure = answer.subscription_delete_failure
    assert failure.request_id.instance == 1
    assert CauseCode(failure.cause.code) == CauseCode.RIC_REQUEST_ID_UNKNOWN

    await node.ask(subscription_request=_subscription(1, node.kpm, _action(1)))
    answer = await node.ask(subscription_delete_request=delete)
    assert answer.subscription_delete_response.request_id.instance == 1
    answer = await node.ask(subscription_delete_request=delete)
    assert answer.HasField("subscription_delete_failure")


async def test_controls_are_answered_in_their_frame(node: Node) -> None:
    """A control to a function that is not RC fails naming it; an applied one is acknowledged
    with its request id and function only when an acknowledgement was asked for."""
    answer = await node.ask(control_request=_quota(node, 1, node.kpm))
    failure = answer.control_failure
    assert (failure.request_id.instance, failure.ran_function_id) == (1, node.kpm)
    assert CauseCode(failure.cause.code) == CauseCode.RIC_REQUEST_RAN_FUNCTION_ID_INVALID

    answer = await node.ask(control_request=_quota(node, 2, node.rc))
    ack = answer.control_acknowledge
    assert (ack.request_id.instance, ack.ran_function_id) == (2, node.rc)
    assert ack.outcome

    # Unacknowledged: the next answer the node gives is to the request after it.
    node.session.send(control_request=_quota(node, 3, node.rc, ack=False))
    delete = e2_pb2.SubscriptionDeleteRequest(request_id=_rid(9), ran_function_id=node.kpm)
    answer = await node.ask(subscription_delete_request=delete)
    assert answer.HasField("subscription_delete_failure")


async def test_unexpected_messages_are_answered_with_an_error_indication(node: Node) -> None:
    """A second setup response after setup is answered with an ErrorIndication."""
    answer = await node.ask(setup_response=e2_pb2.E2SetupResponse(transaction_id=1))
    cause = answer.error_indication.cause
    assert CauseCode(cause.code) == CauseCode.PROTOCOL_MESSAGE_NOT_COMPATIBLE_WITH_RECEIVER_STATE


async def test_a_repeated_control_id_is_answered_as_the_first_time(node: Node) -> None:
    """A control_id already answered gets the same answer under its new request id (a
    ControlAcknowledge with the same outcome, or the same ControlFailure); a new id does not."""
    first = _quota(node, 1, node.rc)
    first.control_id = "ric-t-1"
    ack = (await node.ask(control_request=first)).control_acknowledge
    again = _quota(node, 2, node.rc)
    again.control_id = "ric-t-1"
    repeat = (await node.ask(control_request=again)).control_acknowledge
    assert (repeat.request_id.instance, repeat.outcome) == (2, ack.outcome)
    bad = _quota(node, 3, 99)
    bad.control_id = "ric-t-2"
    failed = (await node.ask(control_request=bad)).control_failure
    bad.request_id.instance = 4
    refailed = (await node.ask(control_request=bad)).control_failure
    assert refailed.request_id.instance == 4 and refailed.cause == failed.cause
    assert CauseCode(failed.cause.code) is CauseCode.RIC_REQUEST_RAN_FUNCTION_ID_INVALID


async def test_a_control_from_a_lower_term_is_refused_and_not_remembered(node: Node) -> None:
    """Once a control of term 5 arrived, one of term 4 (a deposed replica) is refused with
    MISC_NOT_AUTHORIZED naming both terms, and its id is not remembered: the same id sent
    again with the current term is applied."""
    current = _quota(node, 1, node.rc)
    current.control_id, current.term = "ric-t-10", 5
    assert (await node.ask(control_request=current)).HasField("control_acknowledge")
    stale = _quota(node, 2, node.rc)
    stale.control_id, stale.term = "ric-t-11", 4
    failure = (await node.ask(control_request=stale)).control_failure
    assert CauseCode(failure.cause.code) is CauseCode.MISC_NOT_AUTHORIZED
    assert "term 4 is below term 5" in failure.cause.detail
    stale.request_id.instance, stale.term = 3, 5
    assert (await node.ask(control_request=stale)).HasField("control_acknowledge")


async def test_a_new_association_starts_the_term_again(node: Node, fake_ric: FakeRic) -> None:
    """After the stream ends and the node sets up again, it takes the term its new owner
    sends, even a lower one (a Redis that lost its counters starts terms again at 1): the
    term belongs to the association."""
    current = _quota(node, 1, node.rc)
    current.term = 7
    assert (await node.ask(control_request=current)).HasField("control_acknowledge")
    node.session.close()
    again = await _connected(await fake_ric.next_session())
    lower = _quota(again, 2, again.rc)
    lower.term = 1
    assert (await again.ask(control_request=lower)).HasField("control_acknowledge")
