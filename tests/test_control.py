"""Control outcomes over real gRPC: every way a control can end, each happening."""

from __future__ import annotations

import asyncio
import re

from ric import (
    CellState,
    ControlAction,
    ControlOutcome,
    Handover,
    OutcomeKind,
    SlicePrbQuota,
    XApp,
)
from ric._proto.e2.v1 import e2_pb2
from ric.e2.convert import cause_to_proto
from ric.model import Cause, CauseCode
from ric.runtime import Runtime
from ric.sensors import Stats
from tests.conftest import RuntimeFactory, wait_for
from tests.e2node import ScriptedNode, rc_function

HO = Handover("5", "001-01-11", "001-01-12")


class Controller(XApp):
    """Sends what the test asks and keeps the outcomes."""

    name = "controller"
    controls = [Handover, CellState]


async def send(
    runtime: Runtime, action: ControlAction, timeout: float = 2.0
) -> asyncio.Task[ControlOutcome]:
    app = runtime.host("controller").instance
    assert app is not None
    return asyncio.create_task(app.control(action, timeout=timeout))


async def started(make_runtime: RuntimeFactory, **overrides: object) -> tuple[Runtime, Stats]:
    runtime, stats = await make_runtime(Controller, **overrides)
    await wait_for(lambda: runtime.host("controller").instance is not None)
    return runtime, stats


async def test_acknowledged_and_failed(make_runtime: RuntimeFactory) -> None:
    """An acknowledged control resolves ACKNOWLEDGED; a ControlFailure resolves FAILED with the
    node's cause."""
    runtime, stats = await started(make_runtime)
    async with ScriptedNode(f"127.0.0.1:{runtime.port}") as node:
        await node.setup()
        task = await send(runtime, HO)
        req = await node.recv_kind("control_request")
        assert req.header.ue.ue_id == 5 and req.message.handover.target_cell.nr_cell_identity == 12
        await node.send(
            e2_pb2.NodeMessage(
                control_acknowledge=e2_pb2.ControlAcknowledge(request_id=req.request_id)
            )
        )
        ok = await task
        assert ok.kind is OutcomeKind.ACKNOWLEDGED and ok.ok and str(ok.node) == "gnb-001-01-1"
        task = await send(runtime, HO)
        req = await node.recv_kind("control_request")
        cause = Cause(CauseCode.RIC_REQUEST_CONTROL_FAILED_TO_EXECUTE, "target too weak")
        await node.send(
            e2_pb2.NodeMessage(
                control_failure=e2_pb2.ControlFailure(
                    request_id=req.request_id, cause=cause_to_proto(cause)
                )
            )
        )
        failed = await task
        assert failed.kind is OutcomeKind.FAILED and failed.cause == cause
    assert stats.controls[("controller", "handover", "acknowledged")] == 1
    assert stats.controls[("controller", "handover", "failed")] == 1


async def test_timeout_then_late_answer_is_counted_and_dropped(
    make_runtime: RuntimeFactory,
) -> None:
    """No answer within the timeout resolves TIMED_OUT; the late answer is counted, not
    delivered and not treated as an error."""
    runtime, stats = await started(make_runtime)
    async with ScriptedNode(f"127.0.0.1:{runtime.port}") as node:
        await node.setup()
        task = await send(runtime, HO, timeout=0.1)
        req = await node.recv_kind("control_request")
        outcome = await task
        assert outcome.kind is OutcomeKind.TIMED_OUT and "0.1 s" in outcome.detail
        await node.send(
            e2_pb2.NodeMessage(
                control_acknowledge=e2_pb2.ControlAcknowledge(request_id=req.request_id)
            )
        )
        await wait_for(lambda: stats.late_answers == 1, what="late answer counted")
    assert not stats.errors
    assert sum(stats.controls.values()) == 1


async def test_not_connected_and_not_supported(make_runtime: RuntimeFactory) -> None:
    """A control for a cell no node serves is NOT_CONNECTED; one the node's RC function does not
    offer, or one the xApp did not declare, is NOT_SUPPORTED; none reaches the node."""
    runtime, _ = await started(make_runtime)
    async with ScriptedNode(f"127.0.0.1:{runtime.port}") as node:
        await node.setup(functions=[rc_function(actions=[(2, 6)])])
        nowhere = await (await send(runtime, Handover("5", "001-01-99", "001-01-12")))
        assert nowhere.kind is OutcomeKind.NOT_CONNECTED and "001-01-99" in nowhere.detail
        unsupported = await (await send(runtime, HO))
        assert (
            unsupported.kind is OutcomeKind.NOT_SUPPORTED
            and "style 3 action 1" in unsupported.detail
        )
        undeclared = await (await send(runtime, SlicePrbQuota("001-01-11", "1", 10, 20)))
        assert (
            undeclared.kind is OutcomeKind.NOT_SUPPORTED
            and "does not declare SlicePrbQuota" in undeclared.detail
        )
        await node.send(e2_pb2.NodeMessage(keep_alive=e2_pb2.KeepAlive(sequence=1)))
        first = await node.recv()
        assert first.WhichOneof("message") == "keep_alive"  # no control request came before it


async def test_node_lost_while_waiting(make_runtime: RuntimeFactory) -> None:
    """A control whose node drops before answering resolves NOT_CONNECTED at once."""
    runtime, _ = await started(make_runtime)
    async with ScriptedNode(f"127.0.0.1:{runtime.port}") as node:
        await node.setup(functions=[rc_function(actions=[(100, 1)])])
        task = await send(runtime, CellState("001-01-11", active=False), timeout=30)
        req = await node.recv_kind("control_request")
        assert req.header.cell.nr_cell_identity == 11 and req.message.cell_state.active is False
    outcome = await asyncio.wait_for(task, 5)
    assert outcome.kind is OutcomeKind.NOT_CONNECTED and "node lost" in outcome.detail


async def test_error_indication_fails_pending_control(make_runtime: RuntimeFactory) -> None:
    """An ErrorIndication that names a pending control's request id fails that control."""
    runtime, stats = await started(make_runtime)
    async with ScriptedNode(f"127.0.0.1:{runtime.port}") as node:
        await node.setup()
        task = await send(runtime, HO)
        req = await node.recv_kind("control_request")
        cause = Cause(CauseCode.PROTOCOL_SEMANTIC_ERROR, "cannot parse header")
        await node.send(
            e2_pb2.NodeMessage(
                error_indication=e2_pb2.ErrorIndication(
                    request_id=req.request_id, cause=cause_to_proto(cause)
                )
            )
        )
        outcome = await task
        assert outcome.kind is OutcomeKind.FAILED and outcome.cause == cause
    assert stats.node_errors["PROTOCOL_SEMANTIC_ERROR"] == 1


async def test_audit_records_carry_both_cells_and_cause_apart_from_detail(
    make_runtime: RuntimeFactory,
) -> None:
    """A handover's audit record names its serving and target cells, and a failed control's
    record carries the node's cause (name and code) and its detail text in separate fields."""
    runtime, _ = await started(make_runtime)
    async with ScriptedNode(f"127.0.0.1:{runtime.port}") as node:
        await node.setup()
        task = await send(runtime, HO)
        req = await node.recv_kind("control_request")
        cause = Cause(CauseCode.RIC_REQUEST_CONTROL_FAILED_TO_EXECUTE, "target too weak")
        await node.send(
            e2_pb2.NodeMessage(
                control_failure=e2_pb2.ControlFailure(
                    request_id=req.request_id, cause=cause_to_proto(cause)
                )
            )
        )
        await task
    (record,) = runtime.audit.last(1)
    assert record["parameters"] == {"serving_cell": "001-01-11", "target_cell": "001-01-12"}
    assert (record["cell"], record["rc"], record["target"]) == ("001-01-11", [3, 1], "ue:5")
    assert record["outcome"] == "failed"
    assert record["cause"] == "ric_request_control_failed_to_execute"
    assert record["cause_code"] == 12
    assert record["detail"] == "target too weak"


async def test_every_control_carries_a_ric_wide_control_id(make_runtime: RuntimeFactory) -> None:
    """Each control sent gets a new control_id, <ric_id>-<incarnation>-<counter>, on the wire,
    in its outcome and in its audit record; a refused one has none; two runtimes of one RIC
    (replicas, or before and after a restart) never share an incarnation."""
    runtime, _ = await started(make_runtime, ric_id="ric-7")
    other, _ = await make_runtime(ric_id="ric-7")
    prefix = runtime.controls.control_id_prefix
    assert re.fullmatch(r"ric-7-[0-9a-f]{12}-", prefix)
    assert other.controls.control_id_prefix != prefix
    async with ScriptedNode(f"127.0.0.1:{runtime.port}") as node:
        await node.setup()
        ids = []
        for _ in range(2):
            task = await send(runtime, HO)
            req = await node.recv_kind("control_request")
            ack = e2_pb2.ControlAcknowledge(request_id=req.request_id)
            await node.send(e2_pb2.NodeMessage(control_acknowledge=ack))
            outcome = await task
            assert outcome.ok and outcome.control_id == req.control_id
            ids.append(req.control_id)
        assert ids == [f"{prefix}1", f"{prefix}2"]
    await wait_for(lambda: not runtime.sessions, what="the node to leave")
    refused = await (await send(runtime, HO))
    assert refused.kind is OutcomeKind.NOT_CONNECTED and refused.control_id is None
    records = runtime.audit.last(3)
    assert [r["control_id"] for r in records] == [*ids, None]


async def test_a_control_whose_waiter_gave_up_still_ends_once(make_runtime: RuntimeFactory) -> None:
    """The xApp's task is cancelled while the node has the control: the node's later answer
    still ends it, in one audit record and one counted outcome, and the cancelled task stays
    cancelled."""
    runtime, stats = await started(make_runtime)
    async with ScriptedNode(f"127.0.0.1:{runtime.port}") as node:
        await node.setup()
        task = await send(runtime, HO)
        req = await node.recv_kind("control_request")
        task.cancel()
        await asyncio.sleep(0)
        await node.send(
            e2_pb2.NodeMessage(
                control_acknowledge=e2_pb2.ControlAcknowledge(request_id=req.request_id)
            )
        )
        await wait_for(lambda: runtime.controls.pending == 0, what="the control's end")
    assert task.cancelled()
    records = [r for r in runtime.audit.records if r.get("type") == "control"]
    assert [r["outcome"] for r in records] == ["acknowledged"]
    assert stats.controls[("controller", "handover", "acknowledged")] == 1
