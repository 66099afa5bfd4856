"""xApps see the whole RIC (``ric.cluster_streams``): on a real redis-server, a replica's xApp
controls a node another replica owns and receives its reports, a control left pending by a
dead owner is re-sent by the next one with the same id, and a second outcome is ignored."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ric import KpmReport, NodeInfo, Report, XApp
from ric._proto.e2.v1 import e2_pb2
from ric.actions import ControlOutcome, Handover, OutcomeKind, SlicePrbQuota
from ric.cluster_streams import FORWARDED_REQUESTOR
from ric.plugins import Plugin
from ric.runtime import Runtime
from ric.sim import Simulator, load_scenario
from tests.conftest import wait_for
from tests.e2node import ScriptedNode, rc_function, setup_request
from tests.sdl.redis_server import RedisServer
from tests.test_cluster import replica, replica_config, target

SMALL = Path(__file__).resolve().parents[1] / "seeds" / "small.toml"


class Watcher(XApp):
    """Keeps every report, node event and control outcome it gets."""

    name = "watcher"
    reports = [Report("RRU.PrbUsedDl", period_ms=100, per="cell")]
    controls = [Handover, SlicePrbQuota]

    async def on_start(self) -> None:
        self.seen: list[KpmReport] = []
        self.events: list[tuple[str, str]] = []

    async def on_node_up(self, node: NodeInfo) -> None:
        self.events.append(("up", str(node.id)))

    async def on_node_down(self, node: NodeInfo) -> None:
        self.events.append(("down", str(node.id)))

    async def on_report(self, report: KpmReport) -> None:
        self.seen.append(report)


def _app(runtime: Runtime) -> Watcher:
    app = runtime.host("watcher").instance
    assert isinstance(app, Watcher)
    return app


async def test_an_xapp_controls_and_hears_a_node_another_replica_owns(
    redis_server: RedisServer, prefix: str
) -> None:
    """Replica a's xApp sees the simulated nodes that set up at replica b come up, receives
    their reports through b's report streams, and its control of one of b's cells is sent
    by b and acknowledged; a writes the control's one audit record, b writes none."""
    url = redis_server.url
    plugin = Plugin(Watcher, "test:Watcher")
    config = replica_config(url, prefix, "a")
    async with (
        Runtime(config, [plugin]) as a,
        replica(url, prefix, "b") as b,
        Simulator(load_scenario(SMALL), target(b)) as sim,
    ):
        await sim.wait_ready()
        assert a.routing is not None and b.routing is not None
        await wait_for(lambda: a.host("watcher").instance is not None, what="the xApp")
        app = _app(a)
        await wait_for(lambda: len(app.events) == 3, what="three remote node-ups")
        assert sorted(app.events) == sorted(("up", n) for n in b.sessions)
        assert set(a.nodes()) == set(b.sessions)
        await wait_for(
            lambda: {r.node for r in app.seen} == set(b.sessions), what="every node's reports"
        )
        outcome = await app.control(
            SlicePrbQuota(cell_id="001-01-4097", slice="1-000001", max_pct=70), timeout=5.0
        )
        assert outcome.kind is OutcomeKind.ACKNOWLEDGED, outcome
        assert outcome.control_id is not None and outcome.control_id.startswith("ric1-")
        mine = [r for r in a.audit.last(10) if r.get("control_id") == outcome.control_id]
        assert len(mine) == 1 and mine[0]["outcome"] == "acknowledged"
        assert not [r for r in b.audit.last(10) if r.get("control_id") == outcome.control_id]
        assert b.routing.stats.served == 1 and a.routing.stats.routed == 1
        a_series = {name: value for name, _, _, _, value in a.routing.samples()}
        assert a_series["ric_cluster_controls_routed"] == 1
        assert a_series["ric_cluster_reports_received"] >= 3
        assert a_series["ric_cluster_controls_routed_waiting"] == 0
        b_series = {name: value for name, _, _, _, value in b.routing.samples()}
        assert b_series["ric_cluster_controls_served"] == 1
        assert b_series["ric_cluster_report_batches_forwarded"] >= 1
        # b's subscription serves a's xApp (forwarded) on every node; the forwarding host
        # keeps its statuses without queueing events it would never handle.
        for session in b.sessions.values():
            (sub,) = b.subscriptions.live(session)
            assert [w.host.name for w in sub.wants] == ["watcher"]
        (forward,) = b.routing.forward_hosts()
        assert forward.origin == "a" and len(forward.statuses) == 3 and not forward._events


async def test_a_control_pending_at_a_dead_owner_is_resent_once_with_its_id(
    redis_server: RedisServer, prefix: str
) -> None:
    """A control routed to replica b, which sends it and stops before the node answers, is
    claimed by replica c when the node sets up there and sent again with the same control
    id; the xApp on a gets exactly one outcome, and a late second outcome is ignored."""
    url = redis_server.url
    plugin = Plugin(Watcher, "test:Watcher")
    async with Runtime(replica_config(url, prefix, "a"), [plugin]) as a:
        assert a.routing is not None
        b = Runtime(replica_config(url, prefix, "b"))
        async with b, ScriptedNode(target(b)) as node:
            await node.send(setup_request(node_id=1, functions=[rc_function()]))
            assert (await node.recv()).WhichOneof("message") == "setup_response"
            await wait_for(lambda: _app(a).events == [("up", "gnb-001-01-1")], what="node up")
            sent = asyncio.create_task(
                _app(a).control(Handover("5", "001-01-11", "001-01-12"), timeout=8.0)
            )
            first = await node.recv_kind("control_request")
            assert first.request_id.requestor == FORWARDED_REQUESTOR
            assert first.control_id.startswith("ric1-")
        # b stopped without an answer: c takes the node and sends the control again.
        async with (
            replica(url, prefix, "c") as c,
            ScriptedNode(target(c)) as node,
        ):
            await node.send(setup_request(node_id=1, functions=[rc_function()]))
            assert (await node.recv()).WhichOneof("message") == "setup_response"
            again = await node.recv_kind("control_request")
            assert again.control_id == first.control_id
            ack = e2_pb2.ControlAcknowledge(request_id=again.request_id)
            await node.send(e2_pb2.NodeMessage(control_acknowledge=ack))
            outcome: ControlOutcome = await asyncio.wait_for(sent, 8.0)
            assert outcome.kind is OutcomeKind.ACKNOWLEDGED
            assert outcome.control_id == first.control_id
            assert "routed when the owner's term was 1" in outcome.detail
            assert c.routing is not None and c.routing.stats.resent == 1
            # A second outcome for the same id (an owner that died after answering, before
            # its XACK, and a re-send) is ignored at the origin.
            await c.routing._write_answer(
                "gnb-001-01-1", b"0-1", "a", first.control_id, OutcomeKind.FAILED, 2, None, ""
            )
            await wait_for(lambda: a.routing is not None and a.routing.stats.late_outcomes == 1)
        records = [r for r in a.audit.last(20) if r.get("control_id") == first.control_id]
        assert [r["outcome"] for r in records] == ["acknowledged"]


async def test_a_taken_over_node_is_rearmed_at_once_and_the_xapp_sees_down_then_up(
    redis_server: RedisServer, prefix: str
) -> None:
    """When the replica owning a node stops, the node sets up at the next replica, which
    subscribes on the new stream at once for the other replica's xApp; that xApp sees the
    node go down and come up (nothing else) and its reports resume, from the new owner."""
    url = redis_server.url
    plugin = Plugin(Watcher, "test:Watcher")
    node = "gnb-001-01-2"
    async with (
        Runtime(replica_config(url, prefix, "a"), [plugin]) as a,
        replica(url, prefix, "c") as c,
    ):
        b = Runtime(replica_config(url, prefix, "b"))
        await b.__aenter__()
        running = True
        try:
            async with Simulator(
                load_scenario(SMALL),
                [target(b), target(c)],
                nodes=[2],
                reconnect_initial_s=0.05,
                reconnect_max_s=0.2,
            ) as sim:
                await sim.wait_ready()
                await wait_for(lambda: a.host("watcher").instance is not None, what="the xApp")
                app = _app(a)
                await wait_for(lambda: any(r.node == node for r in app.seen), what="b's reports")
                running = False
                await b.__aexit__(None, None, None)  # b stops: its lease is released at once
                await wait_for(lambda: node in c.sessions, what="the takeover by c")
                assert c.cluster is not None and c.cluster.term_of(node) == 2
                (sub,) = c.subscriptions.live(c.sessions[node])
                assert [w.host.name for w in sub.wants] == ["watcher"]
                agent = sim.agents[2]
                await wait_for(lambda: bool(agent.subscriptions), what="re-armed at the node")
                seen = len(app.seen)
                await wait_for(lambda: len(app.seen) > seen + 2, what="reports from c")
        finally:
            if running:
                await b.__aexit__(None, None, None)
        assert app.events[:3] == [("up", node), ("down", node), ("up", node)]


async def test_routed_controls_beyond_the_cap_are_refused_naming_the_setting(
    redis_server: RedisServer, prefix: str
) -> None:
    """With cluster.max_routed_in_flight = 1, a second control routed while the first waits
    for its outcome is refused as rate limited, naming the setting; the first still ends
    with the node's answer."""
    url = redis_server.url
    plugin = Plugin(Watcher, "test:Watcher")
    config = replica_config(url, prefix, "a", **{"cluster.max_routed_in_flight": 1})
    async with (
        Runtime(config, [plugin]) as a,
        replica(url, prefix, "b") as b,
        ScriptedNode(target(b)) as node,
    ):
        await node.send(setup_request(node_id=1, functions=[rc_function()]))
        assert (await node.recv()).WhichOneof("message") == "setup_response"
        await wait_for(lambda: a.host("watcher").instance is not None, what="the xApp")
        app = _app(a)
        await wait_for(lambda: ("up", "gnb-001-01-1") in app.events, what="node up")
        handover = Handover("5", "001-01-11", "001-01-12")
        first = asyncio.create_task(app.control(handover, timeout=5.0))
        request = await node.recv_kind("control_request")
        second = await app.control(Handover("6", "001-01-11", "001-01-12"), timeout=5.0)
        assert second.kind is OutcomeKind.RATE_LIMITED
        assert "cluster.max_routed_in_flight = 1" in second.detail
        ack = e2_pb2.ControlAcknowledge(request_id=request.request_id)
        await node.send(e2_pb2.NodeMessage(control_acknowledge=ack))
        assert (await first).kind is OutcomeKind.ACKNOWLEDGED
