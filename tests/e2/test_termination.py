"""The E2 termination over real gRPC: setup, bad input, keep-alive loss, health, reflection."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from ric._proto.e2.v1 import common_pb2, e2_pb2
from ric.model import CauseCode
from tests.conftest import Recorder, RuntimeFactory, wait_for
from tests.e2node import ScriptedNode, indication, kpm_function, rc_function, setup_request


def target(runtime: object) -> str:
    return f"127.0.0.1:{runtime.port}"  # type: ignore[attr-defined]


async def test_setup_accepts_known_functions_and_rejects_unknown(
    make_runtime: RuntimeFactory,
) -> None:
    """A setup is answered with the KPM and RC functions accepted and an unknown model rejected."""
    runtime, stats = await make_runtime()
    unknown = e2_pb2.RanFunction(ran_function_id=9, oid="1.2.3.4", short_name="ORAN-E2SM-CCC")
    async with ScriptedNode(target(runtime)) as node:
        resp = await node.setup(functions=[kpm_function(), rc_function(), unknown])
        assert list(resp.accepted_ran_function_ids) == [2, 3]
        assert [r.ran_function_id for r in resp.rejected_ran_functions] == [9]
        cause = CauseCode(resp.rejected_ran_functions[0].cause.code)
        assert cause is CauseCode.RIC_SERVICE_RAN_FUNCTION_NOT_SUPPORTED
        assert "ORAN-E2SM-CCC" in resp.rejected_ran_functions[0].cause.detail
        await wait_for(lambda: "gnb-001-01-1" in runtime.nodes(), what="node registered")
        info = runtime.nodes()["gnb-001-01-1"]
        assert sorted(str(c) for c in info.cells) == ["001-01-11", "001-01-12"]
        assert stats.setups["accepted"] == 1


async def test_first_message_not_setup_gets_setup_failure(make_runtime: RuntimeFactory) -> None:
    """A stream that starts with anything but a setup gets E2SetupFailure with a cause, and the
    runtime goes on accepting good nodes."""
    runtime, stats = await make_runtime()
    async with ScriptedNode(target(runtime)) as bad:
        await bad.send(e2_pb2.NodeMessage(keep_alive=e2_pb2.KeepAlive(sequence=1)))
        msg = await bad.recv()
        assert msg.WhichOneof("message") == "setup_failure"
        cause = CauseCode(msg.setup_failure.cause.code)
        assert cause is CauseCode.PROTOCOL_MESSAGE_NOT_COMPATIBLE_WITH_RECEIVER_STATE
        assert "keep_alive" in msg.setup_failure.cause.detail
        assert await bad.ended()
    assert stats.setups["rejected"] == 1
    assert stats.errors["PROTOCOL_MESSAGE_NOT_COMPATIBLE_WITH_RECEIVER_STATE"] == 1
    async with ScriptedNode(target(runtime)) as good:
        await good.setup()


async def test_second_session_for_connected_node_is_refused(make_runtime: RuntimeFactory) -> None:
    """A second stream claiming a connected node id gets a duplicate-id setup failure; the first
    session keeps working."""
    runtime, stats = await make_runtime(Recorder)
    async with ScriptedNode(target(runtime)) as first:
        await first.setup()
        [req] = await first.accept_subscriptions(1)
        async with ScriptedNode(target(runtime)) as second:
            await second.send(setup_request())
            msg = await second.recv()
            assert CauseCode(msg.setup_failure.cause.code) is CauseCode.MISC_DUPLICATE_NODE_ID
            assert "gnb-001-01-1" in msg.setup_failure.cause.detail
        metrics = list(req.actions[0].kpm.metric_names)
        await first.send(
            e2_pb2.NodeMessage(
                indications=e2_pb2.IndicationBatch(
                    indications=[indication(req.request_id, metrics, ["001-01-11"])]
                )
            )
        )
        recorder = runtime.host("recorder").instance
        await wait_for(lambda: len(recorder.seen) == 1, what="report after the refused duplicate")
    assert stats.setups == {"accepted": 1, "rejected": 1}


async def test_undecodable_bytes_get_error_indication(make_runtime: RuntimeFactory) -> None:
    """Bytes that are not a NodeMessage get an ErrorIndication with a transfer-syntax cause, and
    the session stays up."""
    runtime, stats = await make_runtime()
    channel = grpc.aio.insecure_channel(target(runtime))
    call: Any = channel.stream_stream("/ric.e2.v1.E2Termination/Connect")()  # raw bytes
    try:
        await call.write(setup_request().SerializeToString())
        first = e2_pb2.RicMessage.FromString(await call.read())
        assert first.WhichOneof("message") == "setup_response"
        await call.write(b"\xff\xff\xff\xff")
        err = e2_pb2.RicMessage.FromString(await call.read())
        assert (
            CauseCode(err.error_indication.cause.code) is CauseCode.PROTOCOL_TRANSFER_SYNTAX_ERROR
        )
        await call.write(
            e2_pb2.NodeMessage(keep_alive=e2_pb2.KeepAlive(sequence=7)).SerializeToString()
        )
        echo = e2_pb2.RicMessage.FromString(await call.read())
        assert echo.keep_alive.sequence == 7
    finally:
        call.cancel()
        await channel.close()
    assert stats.errors["PROTOCOL_TRANSFER_SYNTAX_ERROR"] == 1
    assert "gnb-001-01-1" in runtime.nodes()


async def test_indication_for_unknown_subscription(make_runtime: RuntimeFactory) -> None:
    """An indication for a subscription the RIC never made gets an ErrorIndication naming it."""
    runtime, stats = await make_runtime()
    async with ScriptedNode(target(runtime)) as node:
        await node.setup()
        rid = common_pb2.RicRequestId(requestor=42, instance=4242)
        await node.send(
            e2_pb2.NodeMessage(
                indications=e2_pb2.IndicationBatch(
                    indications=[indication(rid, ["x.y"], ["001-01-11"])]
                )
            )
        )
        err = await node.recv_kind("error_indication")
        assert CauseCode(err.cause.code) is CauseCode.RIC_REQUEST_ID_UNKNOWN
        assert (err.request_id.requestor, err.request_id.instance) == (42, 4242)
    assert stats.errors["RIC_REQUEST_ID_UNKNOWN"] == 1


async def test_matrix_size_mismatch_is_refused_and_good_rows_delivered(
    make_runtime: RuntimeFactory,
) -> None:
    """A matrix whose value count does not match names x entities gets an ErrorIndication; the
    good indication in the same batch still reaches the xApp."""
    runtime, stats = await make_runtime(Recorder)
    async with ScriptedNode(target(runtime)) as node:
        await node.setup()
        [req] = await node.accept_subscriptions(1)
        metrics = list(req.actions[0].kpm.metric_names)
        bad = indication(req.request_id, metrics, ["001-01-11", "001-01-12"], [1.0, 2.0, 3.0])
        good = indication(req.request_id, metrics, ["001-01-11"], [5.0, 10.0], seq=1)
        await node.send(
            e2_pb2.NodeMessage(indications=e2_pb2.IndicationBatch(indications=[bad, good]))
        )
        err = await node.recv_kind("error_indication")
        assert (
            CauseCode(err.cause.code)
            is CauseCode.PROTOCOL_ABSTRACT_SYNTAX_ERROR_FALSELY_CONSTRUCTED_MESSAGE
        )
        assert "3 values for 2 entities x 2 metrics" in err.cause.detail
        recorder = runtime.host("recorder").instance
        await wait_for(lambda: len(recorder.seen) == 1, what="the good report")
        report = recorder.seen[0]
        assert report.entity_ids == ("001-01-11",)
        assert list(report["RRU.PrbAvailDl"]) == [10.0]
    assert stats.errors["PROTOCOL_ABSTRACT_SYNTAX_ERROR_FALSELY_CONSTRUCTED_MESSAGE"] == 1


async def test_answer_to_request_never_sent(make_runtime: RuntimeFactory) -> None:
    """A control acknowledgement and a subscription response for requests the RIC never sent
    each get an ErrorIndication, and the session stays up."""
    runtime, stats = await make_runtime()
    async with ScriptedNode(target(runtime)) as node:
        await node.setup()
        rid = common_pb2.RicRequestId(requestor=7, instance=99)
        await node.send(
            e2_pb2.NodeMessage(control_acknowledge=e2_pb2.ControlAcknowledge(request_id=rid))
        )
        err = await node.recv_kind("error_indication")
        assert CauseCode(err.cause.code) is CauseCode.RIC_REQUEST_ID_UNKNOWN
        assert "ControlAcknowledge" in err.cause.detail
        await node.send(
            e2_pb2.NodeMessage(
                subscription_response=e2_pb2.SubscriptionResponse(
                    request_id=rid, admitted_action_ids=[1]
                )
            )
        )
        err = await node.recv_kind("error_indication")
        assert "SubscriptionResponse" in err.cause.detail
        await node.send(e2_pb2.NodeMessage(keep_alive=e2_pb2.KeepAlive(sequence=3)))
        assert (await node.recv_kind("keep_alive")).sequence == 3
    assert stats.errors["RIC_REQUEST_ID_UNKNOWN"] == 2


async def test_second_setup_on_a_set_up_stream(make_runtime: RuntimeFactory) -> None:
    """A setup request on a stream that is already set up gets an ErrorIndication."""
    runtime, _ = await make_runtime()
    async with ScriptedNode(target(runtime)) as node:
        await node.setup()
        await node.send(setup_request())
        err = await node.recv_kind("error_indication")
        assert (
            CauseCode(err.cause.code)
            is CauseCode.PROTOCOL_MESSAGE_NOT_COMPATIBLE_WITH_RECEIVER_STATE
        )


async def test_garbage_repeatedly_disconnects_only_that_node(make_runtime: RuntimeFactory) -> None:
    """A node that keeps sending bad messages is disconnected; another node is unaffected."""
    runtime, _ = await make_runtime(**{"e2.error_burst": 5})
    async with ScriptedNode(target(runtime)) as good, ScriptedNode(target(runtime)) as bad:
        await good.setup(node_id=1, cells=[11])
        await bad.setup(node_id=2, cells=[21])
        rid = common_pb2.RicRequestId(requestor=1, instance=1)
        for _ in range(10):
            try:
                await bad.send(
                    e2_pb2.NodeMessage(control_failure=e2_pb2.ControlFailure(request_id=rid))
                )
            except grpc.aio.AioRpcError:
                break  # the RIC ended the stream before all ten were written
        assert await bad.ended()
        await wait_for(lambda: "gnb-001-01-2" not in runtime.nodes(), what="bad node dropped")
        await good.send(e2_pb2.NodeMessage(keep_alive=e2_pb2.KeepAlive(sequence=5)))
        assert (await good.recv_kind("keep_alive")).sequence == 5
        assert "gnb-001-01-1" in runtime.nodes()


async def test_missed_keep_alives_end_the_session(make_runtime: RuntimeFactory) -> None:
    """A node silent for three keep-alive intervals is declared lost and xApps hear node-down."""
    runtime, stats = await make_runtime(Recorder)
    async with ScriptedNode(target(runtime)) as node:
        resp = await node.setup(keep_alive_ms=100)
        assert resp.keep_alive_interval_ms == 100
        recorder = runtime.host("recorder").instance
        await wait_for(lambda: ("up", "gnb-001-01-1") in recorder.events, what="node up")
        assert await node.ended(timeout=5)
        await wait_for(lambda: ("down", "gnb-001-01-1") in recorder.events, what="node down")
    assert not runtime.nodes()
    assert stats.nodes_connected == 0


async def test_stream_end_is_node_loss(make_runtime: RuntimeFactory) -> None:
    """A node that closes its stream is removed and its pending subscriptions forgotten."""
    runtime, _ = await make_runtime(Recorder)
    async with ScriptedNode(target(runtime)) as node:
        await node.setup()
        await node.accept_subscriptions(1)
        await node.call.done_writing()
    await wait_for(lambda: not runtime.nodes(), what="node removed")
    assert runtime.subscriptions.snapshot() == []


async def test_health_and_reflection(make_runtime: RuntimeFactory) -> None:
    """The server answers the standard health check as SERVING and lists its services by
    reflection."""
    runtime, _ = await make_runtime()
    async with grpc.aio.insecure_channel(target(runtime)) as channel:
        health: Any = health_pb2_grpc.HealthStub(channel)  # the stubs type the sync channel
        resp = await health.Check(health_pb2.HealthCheckRequest(service="ric.e2.v1.E2Termination"))
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
        stub: Any = reflection_pb2_grpc.ServerReflectionStub
        refl = stub(channel)  # likewise
        call = refl.ServerReflectionInfo()
        await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
        answer = await call.read()
        names = {s.name for s in answer.list_services_response.service}
        assert "ric.e2.v1.E2Termination" in names
        await call.done_writing()


async def test_setup_timeout(make_runtime: RuntimeFactory) -> None:
    """A stream that never sends its setup is ended after the setup timeout and counted."""
    runtime, stats = await make_runtime(**{"e2.setup_timeout_s": 0.2})
    async with ScriptedNode(target(runtime)) as node:
        await node.call.wait_for_connection()
        assert await node.ended(timeout=5)
    assert stats.setups["rejected"] == 1
    await asyncio.sleep(0)
