"""Subscriptions over real gRPC: made where a node can serve them, removed with the xApp,
re-made after a reset, failed with the node's cause."""

from __future__ import annotations

from ric import KpmReport, Report, XApp
from ric._proto.e2.v1 import e2_pb2
from ric.e2.convert import cause_to_proto
from ric.model import Cause, CauseCode, KpmFunction, KpmStyle
from ric.subscriptions import SubscriptionState, plan_report
from tests.conftest import Recorder, RuntimeFactory, wait_for
from tests.e2node import ScriptedNode, indication, kpm_function, rc_function


class UeWatcher(XApp):
    name = "uewatch"
    reports = [Report("DRB.UEThpDl", "L1M.RSRP", period_ms=200, per="ue")]

    async def on_report(self, report: KpmReport) -> None:
        pass


def test_plan_picks_a_style_that_has_every_metric() -> None:
    """UE reports prefer style 5; a missing metric or too short a period says why not."""
    kpm = KpmFunction(
        styles={
            1: KpmStyle(1, "", frozenset({"a", "b"})),
            4: KpmStyle(4, "", frozenset({"a"})),
            5: KpmStyle(5, "", frozenset({"a", "b"})),
        },
        min_reporting_period_ms=100,
    )
    assert plan_report(Report("a", "b", per="ue"), kpm) == (5, "")
    assert plan_report(Report("a", per="cell"), kpm) == (1, "")
    assert plan_report(Report("a", "c"), kpm) == (0, "style 1 does not report c")
    assert plan_report(Report("a", period_ms=50), kpm)[1].startswith("period 50 ms is below")
    assert plan_report(Report("a", per="ue"), KpmFunction({1: KpmStyle(1, "", frozenset("a"))}))[
        1
    ].startswith("no KPM report style 5/4/3/2")


async def test_subscribes_only_where_the_node_can_serve(make_runtime: RuntimeFactory) -> None:
    """A UE-level report is requested from a node with KPM style 5 and not from a style-1-only
    node; the cell-level report goes to both."""
    runtime, _ = await make_runtime(Recorder, UeWatcher)
    target = f"127.0.0.1:{runtime.port}"
    async with ScriptedNode(target) as rich, ScriptedNode(target) as basic:
        await rich.setup(node_id=1, cells=[11])
        await basic.setup(
            node_id=2, cells=[21], functions=[kpm_function(styles=[1]), rc_function()]
        )
        rich_reqs = await rich.accept_subscriptions(2)
        basic_reqs = await basic.accept_subscriptions(1)
        assert sorted(r.actions[0].kpm.report_style for r in rich_reqs) == [1, 5]
        assert [r.actions[0].kpm.report_style for r in basic_reqs] == [1]
        await wait_for(
            lambda: (
                len(
                    [
                        s
                        for s in runtime.subscriptions.snapshot()
                        if s.state is SubscriptionState.ACTIVE
                    ]
                )
                == 3
            )
        )
        ue_req = next(r for r in rich_reqs if r.actions[0].kpm.report_style == 5)
        assert ue_req.kpm_trigger.reporting_period_ms == 200


async def test_subscription_failure_is_recorded_with_cause(make_runtime: RuntimeFactory) -> None:
    """A SubscriptionFailure marks the subscription failed with the node's cause."""
    runtime, _ = await make_runtime(Recorder)
    async with ScriptedNode(f"127.0.0.1:{runtime.port}") as node:
        await node.setup()
        req = await node.recv_kind("subscription_request")
        cause = Cause(CauseCode.RIC_REQUEST_FUNCTION_RESOURCE_LIMIT, "busy")
        await node.send(
            e2_pb2.NodeMessage(
                subscription_failure=e2_pb2.SubscriptionFailure(
                    request_id=req.request_id, cause=cause_to_proto(cause)
                )
            )
        )
        await wait_for(
            lambda: runtime.subscriptions.snapshot()[0].state is SubscriptionState.FAILED
        )
        assert runtime.subscriptions.snapshot()[0].cause == cause
        # Indications for a failed subscription are answered, not delivered.
        await node.send(
            e2_pb2.NodeMessage(
                indications=e2_pb2.IndicationBatch(
                    indications=[indication(req.request_id, ["RRU.PrbUsedDl"], ["001-01-11"])]
                )
            )
        )
        err = await node.recv_kind("error_indication")
        assert err.cause.code == CauseCode.PROTOCOL_MESSAGE_NOT_COMPATIBLE_WITH_RECEIVER_STATE


async def test_reset_resubscribes(make_runtime: RuntimeFactory) -> None:
    """After a node's ResetRequest the RIC answers and requests the subscriptions again."""
    runtime, _ = await make_runtime(Recorder)
    async with ScriptedNode(f"127.0.0.1:{runtime.port}") as node:
        await node.setup()
        [first] = await node.accept_subscriptions(1)
        await node.send(e2_pb2.NodeMessage(reset_request=e2_pb2.ResetRequest(transaction_id=9)))
        assert (await node.recv_kind("reset_response")).transaction_id == 9
        [again] = await node.accept_subscriptions(1)
        assert again.request_id != first.request_id
        assert list(again.actions[0].kpm.metric_names) == list(first.actions[0].kpm.metric_names)


async def test_runtime_shutdown_deletes_subscriptions(make_runtime: RuntimeFactory) -> None:
    """When the runtime stops, each xApp's E2 subscription is deleted on the node."""
    runtime, _ = await make_runtime(Recorder)
    async with ScriptedNode(f"127.0.0.1:{runtime.port}") as node:
        await node.setup()
        [req] = await node.accept_subscriptions(1)
        await wait_for(
            lambda: runtime.subscriptions.snapshot()[0].state is SubscriptionState.ACTIVE
        )
        runtime.subscriptions.unsubscribe(runtime.host("recorder"))
        delete = await node.recv_kind("subscription_delete_request")
        assert delete.request_id == req.request_id
        await node.send(
            e2_pb2.NodeMessage(
                subscription_delete_response=e2_pb2.SubscriptionDeleteResponse(
                    request_id=req.request_id
                )
            )
        )
        await wait_for(lambda: not runtime.subscriptions.snapshot(), what="subscription forgotten")


async def test_delete_required_by_node(make_runtime: RuntimeFactory) -> None:
    """A node that ends a subscription by itself has it removed; later indications for it are
    answered as unknown."""
    runtime, _ = await make_runtime(Recorder)
    async with ScriptedNode(f"127.0.0.1:{runtime.port}") as node:
        await node.setup()
        [req] = await node.accept_subscriptions(1)
        await node.send(
            e2_pb2.NodeMessage(
                subscription_delete_required=e2_pb2.SubscriptionDeleteRequired(
                    subscriptions=[e2_pb2.SubscriptionToDelete(request_id=req.request_id)]
                )
            )
        )
        await wait_for(lambda: not runtime.subscriptions.snapshot())
        await node.send(
            e2_pb2.NodeMessage(
                indications=e2_pb2.IndicationBatch(
                    indications=[indication(req.request_id, ["RRU.PrbUsedDl"], ["001-01-11"])]
                )
            )
        )
        assert (
            await node.recv_kind("error_indication")
        ).cause.code == CauseCode.RIC_REQUEST_ID_UNKNOWN


async def test_configuration_update_changes_cells(make_runtime: RuntimeFactory) -> None:
    """A NodeConfigurationUpdate adding and removing cells is acknowledged and applied."""
    from ric._proto.e2.v1 import common_pb2
    from tests.e2node import cgi

    runtime, _ = await make_runtime()
    async with ScriptedNode(f"127.0.0.1:{runtime.port}") as node:
        await node.setup(cells=[11, 12])
        await node.send(
            e2_pb2.NodeMessage(
                configuration_update=e2_pb2.NodeConfigurationUpdate(
                    transaction_id=4,
                    cells_added=[common_pb2.Cell(cgi=cgi(13), bandwidth_prbs=52, active=True)],
                    cells_removed=[cgi(11)],
                )
            )
        )
        assert (await node.recv_kind("configuration_update_acknowledge")).transaction_id == 4
        assert sorted(str(c) for c in runtime.nodes()["gnb-001-01-1"].cells) == [
            "001-01-12",
            "001-01-13",
        ]
