"""The in-memory E2 link: the same endpoint as gRPC, synchronously, with no network."""

from __future__ import annotations

import asyncio

from ric import Handover, OutcomeKind
from ric._proto.e2.v1 import common_pb2, e2_pb2
from ric.config import load_config
from ric.e2.memory import MemoryLink
from ric.model import CauseCode
from ric.plugins import Plugin
from ric.runtime import Runtime
from ric.sensors import Stats
from tests.conftest import Recorder, wait_for
from tests.e2node import indication, setup_request


async def test_memory_link_runs_the_whole_loop() -> None:
    """Over a MemoryLink a node sets up, is subscribed, reports to the xApp, answers a control;
    bad bytes are answered like on gRPC; closing the link is node loss. No port is opened."""
    stats = Stats()
    config = load_config(environ={}, overrides={"e2.port": 0})
    async with Runtime(
        config, [Plugin(Recorder, "test")], sensors=[stats], listen=False
    ) as runtime:
        assert runtime.server.port == 0
        await wait_for(lambda: runtime.host("recorder").instance is not None)
        link = MemoryLink(runtime.endpoint)
        answer = link.setup(setup_request())
        assert answer.WhichOneof("message") == "setup_response"
        [sub] = [m.subscription_request for m in link.take()]
        link.send(
            e2_pb2.NodeMessage(
                subscription_response=e2_pb2.SubscriptionResponse(
                    request_id=sub.request_id, admitted_action_ids=[1]
                )
            )
        )
        metrics = list(sub.actions[0].kpm.metric_names)
        link.send(
            e2_pb2.NodeMessage(
                indications=e2_pb2.IndicationBatch(
                    indications=[indication(sub.request_id, metrics, ["001-01-11"])]
                )
            )
        )
        recorder = runtime.host("recorder").instance
        assert isinstance(recorder, Recorder)
        await wait_for(lambda: recorder.seen, what="report over the link")
        control = asyncio.create_task(recorder.control(Handover("3", "001-01-11", "001-01-12")))
        taken: list[e2_pb2.RicMessage] = []

        def took() -> bool:
            taken.extend(link.take())
            return bool(taken)

        await wait_for(took, what="the control request")
        [req] = [m.control_request for m in taken]
        link.send(
            e2_pb2.NodeMessage(
                control_acknowledge=e2_pb2.ControlAcknowledge(request_id=req.request_id)
            )
        )
        assert (await control).kind is OutcomeKind.ACKNOWLEDGED
        link.send(
            e2_pb2.NodeMessage(
                subscription_failure=e2_pb2.SubscriptionFailure(
                    request_id=common_pb2.RicRequestId(requestor=9, instance=9)
                )
            )
        )
        [err] = link.take()
        assert CauseCode(err.error_indication.cause.code) is CauseCode.RIC_REQUEST_ID_UNKNOWN
        link.close()
        assert not runtime.nodes()
        await wait_for(lambda: ("down", "gnb-001-01-1") in recorder.events, what="node down")
    assert stats.setups["accepted"] == 1


async def test_memory_link_setup_refused() -> None:
    """A refused setup over a MemoryLink returns the E2SetupFailure with its cause."""
    async with Runtime(load_config(environ={}), listen=False) as runtime:
        first = MemoryLink(runtime.endpoint)
        assert first.setup(setup_request()).WhichOneof("message") == "setup_response"
        second = MemoryLink(runtime.endpoint)
        failure = second.setup(setup_request()).setup_failure
        assert CauseCode(failure.cause.code) is CauseCode.MISC_DUPLICATE_NODE_ID
        assert not second.up
