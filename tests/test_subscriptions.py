"""Subscriptions over real gRPC: made where a node can serve them, removed with the xApp,
re-made after a reset, failed with the node's cause."""

from __future__ import annotations

import math
from typing import Any

from ric import KpmReport, Report, XApp
from ric._proto.e2.v1 import e2_pb2
from ric.e2.convert import cause_to_proto
from ric.model import Cause, CauseCode, KpmFunction, KpmStyle
from ric.plugins import Plugin
from ric.runtime import Runtime
from ric.subscriptions import Plan, SubscriptionState, plan
from ric.xapp import SubscriptionStatus
from tests.conftest import Recorder, RuntimeFactory, wait_for
from tests.e2node import ScriptedNode, indication, kpm_function, rc_function


class UeWatcher(XApp):
    name = "uewatch"
    reports = [Report("DRB.UEThpDl", "L1M.RSRP", period_ms=200, per="ue")]

    async def on_report(self, report: KpmReport) -> None:
        pass


def test_plan_merges_names_and_takes_the_finest_period() -> None:
    """Declarations merge into the union of names at the finest period (never below the node's
    minimum); names the node does not advertise are left out, each with a cause."""
    kpm = KpmFunction(
        styles={
            1: KpmStyle(1, "", frozenset({"a", "b"})),
            4: KpmStyle(4, "", frozenset({"a"})),
            5: KpmStyle(5, "", frozenset({"a", "b"})),
        },
        min_reporting_period_ms=100,
    )
    merged = plan([Report("a", period_ms=200), Report("b", "a", period_ms=1000)], kpm)
    assert merged == Plan(1, ("a", "b"), 200, {})
    assert plan([Report("a", "b", per="ue")], kpm) == Plan(5, ("a", "b"), 1000, {})
    assert plan([Report("a", period_ms=50)], kpm).period_ms == 100  # type: ignore[union-attr]
    partial = plan([Report("a", "c")], kpm)
    assert isinstance(partial, Plan)
    assert partial.metrics == ("a",)
    assert partial.unsupported["c"].code is CauseCode.RIC_REQUEST_MEASUREMENT_NOT_SUPPORTED
    none = plan([Report("c")], kpm)
    assert isinstance(none, Cause)
    assert "reports none of c" in none.detail
    no_ue = plan([Report("a", per="ue")], KpmFunction({1: KpmStyle(1, "", frozenset("a"))}))
    assert isinstance(no_ue, Cause)
    assert "no KPM report style 5/4/3/2" in no_ue.detail


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


async def test_stopping_xapp_deletes_its_subscription(make_runtime: RuntimeFactory) -> None:
    """When the only xApp of a subscription stops, the E2 subscription is deleted on the node."""
    runtime, _ = await make_runtime(Recorder)
    async with ScriptedNode(f"127.0.0.1:{runtime.port}") as node:
        await node.setup()
        [req] = await node.accept_subscriptions(1)
        await wait_for(
            lambda: runtime.subscriptions.snapshot()[0].state is SubscriptionState.ACTIVE
        )
        runtime.host("recorder").request_stop()
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


M1, M2, M3 = "RRU.PrbUsedDl", "RRU.PrbAvailDl", "DRB.UEThpDl"


def _watcher(name: str, metrics: tuple[str, ...], period_ms: int) -> type[XApp]:
    class Watcher(XApp):
        reports = [Report(*metrics, period_ms=period_ms)]
        seen: list[KpmReport]
        statuses: list[SubscriptionStatus]

        async def on_start(self) -> None:
            self.seen = []
            self.statuses = []

        async def on_report(self, report: KpmReport) -> None:
            self.seen.append(report)

        async def on_subscription(self, status: SubscriptionStatus) -> None:
            self.statuses.append(status)

    Watcher.name = name
    Watcher.__name__ = f"Watcher_{name}"
    return Watcher


A = _watcher("a", (M1, M2), 100)
B = _watcher("b", (M2, M3), 200)
C = _watcher("c", (M1,), 300)


def app(runtime: Runtime, name: str) -> Any:
    instance = runtime.host(name).instance
    assert instance is not None
    return instance


async def send_reports(
    node: ScriptedNode, req: e2_pb2.SubscriptionRequest, rows: list[list[float]]
) -> None:
    """One indication per row of values (metrics in the request's order, one cell)."""
    metrics = list(req.actions[0].kpm.metric_names)
    batch = [
        indication(req.request_id, metrics, ["001-01-11"], row, seq=i) for i, row in enumerate(rows)
    ]
    await node.send(e2_pb2.NodeMessage(indications=e2_pb2.IndicationBatch(indications=batch)))


async def test_overlapping_reports_share_one_subscription_per_node(
    make_runtime: RuntimeFactory,
) -> None:
    """Three xApps with overlapping cell reports get one E2 subscription per node (the union of
    names at the finest period), and each receives exactly its own names at its own period,
    averaged over its period where slower."""
    runtime, _ = await make_runtime(A, B, C)
    target = f"127.0.0.1:{runtime.port}"
    async with ScriptedNode(target) as n1, ScriptedNode(target) as n2:
        await n1.setup(node_id=1, cells=[11])
        await n2.setup(node_id=2, cells=[21])
        [req1] = await n1.accept_subscriptions(1)
        [req2] = await n2.accept_subscriptions(1)
        for req in (req1, req2):
            assert list(req.actions[0].kpm.metric_names) == [M1, M2, M3]
            assert req.kpm_trigger.reporting_period_ms == 100
        await wait_for(
            lambda: all(len(app(runtime, x).statuses) == 2 for x in "abc"), what="statuses"
        )
        # Six 100 ms reports: values (M1, M2, M3) = (k, 10k, 100k) for k = 1..6.
        await send_reports(n1, req1, [[k, 10 * k, 100 * k] for k in range(1, 7)])
        await wait_for(lambda: len(app(runtime, "c").seen) == 2, what="c's reports")
        a, b, c = (app(runtime, x) for x in "abc")
        assert [r.metrics for r in a.seen] == [(M1, M2)] * 6
        assert [list(r.values[0]) for r in a.seen] == [[k, 10 * k] for k in range(1, 7)]
        assert [r.metrics for r in b.seen] == [(M2, M3)] * 3
        assert [list(r.values[0]) for r in b.seen] == [[15.0, 150.0], [35.0, 350.0], [55.0, 550.0]]
        assert [r.granularity_ms for r in b.seen] == [2000] * 3
        assert [list(r.values[0]) for r in c.seen] == [[2.0], [5.0]]
        assert {s.period_ms for s in b.statuses} == {200}
    assert len({s.request_id for s in runtime.subscriptions.snapshot()}) <= 2


async def test_adding_and_removing_an_xapp_replaces_without_gap(
    make_runtime: RuntimeFactory,
) -> None:
    """An xApp joining with a new name makes the runtime request a wider subscription while the
    old one keeps delivering; the switch happens when the node admits it, the old one is then
    deleted, and the first xApp misses no report and sees none twice. Leaving works alike."""
    runtime, _ = await make_runtime(A)
    async with ScriptedNode(f"127.0.0.1:{runtime.port}") as node:
        await node.setup(cells=[11])
        [old] = await node.accept_subscriptions(1)
        a = app(runtime, "a")
        await wait_for(lambda: a.statuses, what="a active")
        runtime.add_xapp(Plugin(B, "test:B"))
        new = await node.recv_kind("subscription_request")
        assert list(new.actions[0].kpm.metric_names) == [M1, M2, M3]
        await send_reports(node, old, [[1, 1], [2, 2]])  # the old one still serves a
        await wait_for(lambda: len(a.seen) == 2, what="reports while the new one is pending")
        await node.send(
            e2_pb2.NodeMessage(
                subscription_response=e2_pb2.SubscriptionResponse(
                    request_id=new.request_id, admitted_action_ids=[1]
                )
            )
        )
        delete = await node.recv_kind("subscription_delete_request")
        assert delete.request_id == old.request_id
        await send_reports(node, old, [[99, 99]])  # in flight on the old one: not delivered again
        await send_reports(node, new, [[3, 3, 3], [4, 4, 4]])
        await wait_for(lambda: len(a.seen) == 4, what="reports from the new one")
        assert [r.values[0][0] for r in a.seen] == [1, 2, 3, 4]
        b = app(runtime, "b")
        await wait_for(lambda: len(b.seen) == 1, what="b's first report")
        assert list(b.seen[0].values[0]) == [3.5, 3.5]
        await node.send(
            e2_pb2.NodeMessage(
                subscription_delete_response=e2_pb2.SubscriptionDeleteResponse(
                    request_id=old.request_id
                )
            )
        )
        runtime.host("b").request_stop()
        narrow = await node.recv_kind("subscription_request")
        assert list(narrow.actions[0].kpm.metric_names) == [M1, M2]
        await send_reports(node, new, [[5, 5, 5]])
        await wait_for(lambda: len(a.seen) == 5, what="a served by the wide one until the switch")
        await node.send(
            e2_pb2.NodeMessage(
                subscription_response=e2_pb2.SubscriptionResponse(
                    request_id=narrow.request_id, admitted_action_ids=[1]
                )
            )
        )
        assert (await node.recv_kind("subscription_delete_request")).request_id == new.request_id


async def test_node_back_gets_every_subscription_once(make_runtime: RuntimeFactory) -> None:
    """A node that drops and sets up again is sent all of its subscriptions right after the
    setup response (before anything else it asks), each once."""
    runtime, _ = await make_runtime(A, UeWatcher)
    target = f"127.0.0.1:{runtime.port}"
    async with ScriptedNode(target) as node:
        await node.setup(cells=[11])
        first = await node.accept_subscriptions(2)
    await wait_for(lambda: not runtime.nodes(), what="node gone")
    async with ScriptedNode(target) as node:
        await node.setup(cells=[11])
        again = [await node.recv() for _ in range(2)]
        assert [m.WhichOneof("message") for m in again] == ["subscription_request"] * 2
        await node.send(e2_pb2.NodeMessage(keep_alive=e2_pb2.KeepAlive(sequence=1)))
        assert (await node.recv()).WhichOneof("message") == "keep_alive"  # nothing duplicated
        styles = sorted(m.subscription_request.actions[0].kpm.report_style for m in again)
        assert styles == sorted(r.actions[0].kpm.report_style for r in first)


async def test_partial_admission_is_reported_per_measurement(make_runtime: RuntimeFactory) -> None:
    """When the node admits the subscription but not one measurement, each xApp learns which of
    its names it will not get and the node's cause, as data; an xApp left with nothing learns
    its report failed; reports carry only admitted names."""
    only_m2 = _watcher("m2only", (M2,), 100)
    runtime, _ = await make_runtime(A, only_m2)
    async with ScriptedNode(f"127.0.0.1:{runtime.port}") as node:
        await node.setup(cells=[11])
        req = await node.recv_kind("subscription_request")
        cause = Cause(CauseCode.RIC_REQUEST_MEASUREMENT_NOT_SUPPORTED, "no PRB counter on this DU")
        await node.send(
            e2_pb2.NodeMessage(
                subscription_response=e2_pb2.SubscriptionResponse(
                    request_id=req.request_id,
                    admitted_action_ids=[1],
                    not_admitted_measurements=[
                        e2_pb2.MeasurementNotAdmitted(
                            action_id=1, metric_name=M2, cause=cause_to_proto(cause)
                        )
                    ],
                )
            )
        )
        a, lonely = app(runtime, "a"), app(runtime, "m2only")
        await wait_for(lambda: a.statuses and lonely.statuses, what="statuses")
        assert a.statuses[-1].state == "active"
        assert a.statuses[-1].metrics == (M1,)
        assert a.statuses[-1].not_admitted == {M2: cause}
        assert lonely.statuses[-1].state == "failed"
        assert lonely.statuses[-1].not_admitted == {M2: cause}
        await send_reports(node, req, [[7.0, math.nan]])
        await wait_for(lambda: a.seen, what="report")
        assert a.seen[0].metrics == (M1,)
        assert lonely.seen == []


async def test_subscription_limit_per_xapp(make_runtime: RuntimeFactory) -> None:
    """An xApp over its subscription limit is refused on the extra node with a clear cause,
    counted, while its existing subscription and other xApps go on."""
    runtime, stats = await make_runtime(A, C, **{"xapps.max_subscriptions": 1})
    target = f"127.0.0.1:{runtime.port}"
    async with ScriptedNode(target) as n1, ScriptedNode(target) as n2:
        await n1.setup(node_id=1, cells=[11])
        await n1.accept_subscriptions(1)
        await n2.setup(node_id=2, cells=[21])
        await wait_for(lambda: len(app(runtime, "a").statuses) == 2, what="a's statuses")
        refused = app(runtime, "a").statuses[-1]
        assert refused.state == "refused"
        assert refused.cause.code is CauseCode.RIC_SERVICE_RIC_RESOURCE_LIMIT
        assert "limit of 1 subscriptions" in refused.cause.detail
    assert stats.limits[("a", "subscriptions")] >= 1


async def test_second_change_while_replacement_pending(make_runtime: RuntimeFactory) -> None:
    """When a second xApp joins while the first replacement is still unanswered, the pending
    one is superseded (deleted when the node answers it) and the original keeps serving until
    the newest is admitted: no gap."""
    ul = _watcher("ul", ("DRB.UEThpUl",), 100)
    runtime, _ = await make_runtime(A)
    async with ScriptedNode(f"127.0.0.1:{runtime.port}") as node:
        await node.setup(cells=[11])
        [old] = await node.accept_subscriptions(1)
        a = app(runtime, "a")
        await wait_for(lambda: a.statuses, what="a active")
        runtime.add_xapp(Plugin(B, "test:B"))
        first = await node.recv_kind("subscription_request")
        runtime.add_xapp(Plugin(ul, "test:ul"))
        second = await node.recv_kind("subscription_request")
        assert list(second.actions[0].kpm.metric_names) == [M1, M2, M3, "DRB.UEThpUl"]
        for req in (first, second):
            await node.send(
                e2_pb2.NodeMessage(
                    subscription_response=e2_pb2.SubscriptionResponse(
                        request_id=req.request_id, admitted_action_ids=[1]
                    )
                )
            )
        deletes = [
            (await node.recv_kind("subscription_delete_request")).request_id for _ in range(2)
        ]
        assert sorted((d.requestor, d.instance) for d in deletes) == sorted(
            (r.requestor, r.instance) for r in (first.request_id, old.request_id)
        )
        await send_reports(node, second, [[1, 1, 1, 1]])
        await wait_for(lambda: a.seen and app(runtime, "ul").seen, what="reports from the newest")
        assert [r.values[0][0] for r in a.seen] == [1]
