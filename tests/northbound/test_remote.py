"""Remote xApps: a Python xApp attached over the northbound API gets what an in-process one
gets (shared subscriptions, control outcomes, A1 policies) and survives a reconnect."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from ric.actions import OutcomeKind, SlicePrbQuota
from ric.northbound.client import AttachError, XAppClient
from ric.runtime import Runtime
from ric.sensors import MemoryMetrics
from ric.sim import Simulator, load_scenario
from tests.conftest import Recorder, RuntimeFactory, wait_for
from tests.e2node import ScriptedNode, rc_function
from tests.northbound.apps import Counter

SMALL = Path(__file__).resolve().parents[2] / "seeds" / "small.toml"
NB = {"northbound.port": 0, "xapps.isolation": {"default": "loop"}}


def _instance(client: XAppClient) -> Counter:
    host = client.host
    assert host is not None and isinstance(host.instance, Counter)
    return host.instance


async def test_remote_xapp_gets_reports_and_control_outcomes(
    make_runtime: RuntimeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A remote xApp receives its reports (sharing the E2 subscription of a local xApp that
    wants the same rows), its control ends acknowledged, its metrics and log records show at
    the runtime, and when it leaves its host goes at once."""
    runtime, _ = await make_runtime(Recorder, **NB)
    assert isinstance(runtime, Runtime) and runtime.northbound.port
    client = XAppClient(Counter, f"127.0.0.1:{runtime.northbound.port}")
    task = asyncio.create_task(client.run())
    async with Simulator(load_scenario(SMALL), f"127.0.0.1:{runtime.port}") as sim:
        await sim.wait_ready()
        await wait_for(lambda: client.host is not None and client.host.instance is not None)
        app = _instance(client)
        await wait_for(lambda: len(app.seen) >= 3, what="reports at the remote xApp")
        await wait_for(lambda: app.outcomes, what="the control's outcome")
        assert app.outcomes == ["acknowledged"]
        assert sorted(app.ups) == sorted(runtime.nodes())
        host = runtime.host("nbcounter")
        assert host.mode == "remote"
        # Its counters, gauges and log records reach the runtime.
        metrics = runtime.sensor.xapp_metrics("nbcounter")
        assert isinstance(metrics, MemoryMetrics)  # no Prometheus sensor in this runtime
        await wait_for(
            lambda: (
                "reports_handled" in metrics.names()
                and sum(metrics.value("reports_handled", node=n) for n in runtime.nodes()) >= 3
            ),
            what="the forwarded counter",
        )
        assert metrics.value("last_rows") >= 1
        await wait_for(
            lambda: any(
                r.name == "ric.northbound.xapp.nbcounter" and "three reports" in r.getMessage()
                for r in caplog.records
            ),
            what="the forwarded log record",
        )
        # Same metrics and period as the recorder's: one E2 subscription per node serves both.
        session = runtime.sessions["gnb-001-01-1"]
        assert len(runtime.subscriptions.live(session)) == 1
        client.stop()
        await asyncio.wait_for(task, 10)
        # It said goodbye: its host goes at once, not after the 30 s resume window.
        await wait_for(
            lambda: all(h.name != "nbcounter" for h in runtime.hosts), timeout=5, what="release"
        )


async def test_remote_xapp_resumes_without_gap_or_duplicate(make_runtime: RuntimeFactory) -> None:
    """When its stream breaks, the remote xApp reattaches with its resume token: the session
    (subscriptions) is kept and the reports it had not handled are re-sent, none twice."""
    runtime, _ = await make_runtime(**NB)
    client = XAppClient(Counter, f"127.0.0.1:{runtime.northbound.port}")
    task = asyncio.create_task(client.run())
    async with Simulator(load_scenario(SMALL), f"127.0.0.1:{runtime.port}") as sim:
        await sim.wait_ready()
        await wait_for(lambda: client.host is not None and client.host.instance is not None)
        app = _instance(client)
        await wait_for(lambda: len(app.seen) >= 5, what="first reports")
        nodes = set(runtime.nodes())
        host = runtime.host("nbcounter")
        client._call.cancel()  # the stream breaks (as a network failure would)
        await wait_for(lambda: client.attaches == 2 and host.attached, what="the reattach")
        before = len(app.seen)

        def each_node_again() -> bool:
            after = [r.node for r in app.seen[before:]]
            return all(after.count(n) >= 2 for n in nodes)

        await wait_for(each_node_again, what="two reports of each node after the reattach")
        assert _instance(client) is app  # the same instance carried on
        seen = [(r.node, r.collection_start) for r in app.seen]
        assert len(seen) == len(set(seen)), "a report was handled twice"
        period = {r.node: r.granularity_ms / 1000.0 for r in app.seen}
        for node in runtime.nodes():
            starts = sorted(t for n, t in seen if n == node)
            gaps = [b - a for a, b in itertools.pairwise(starts)]
            assert gaps and max(gaps) < 1.5 * period[node], f"{node}: a gap of {max(gaps):.3f} s"
    client.stop()
    await asyncio.wait_for(task, 10)


async def test_attach_with_a_taken_name_is_refused(make_runtime: RuntimeFactory) -> None:
    """A remote xApp whose name a loaded xApp already has is refused with a message naming it."""
    runtime, _ = await make_runtime(Recorder, **NB)

    class Impostor(Counter):
        name = "recorder"

    client = XAppClient(Impostor, f"127.0.0.1:{runtime.northbound.port}")
    with pytest.raises(AttachError, match="named 'recorder' is loaded by the runtime"):
        await asyncio.wait_for(client.run(), 10)


async def test_conflicts_are_arbitrated_across_the_boundary(make_runtime: RuntimeFactory) -> None:
    """A remote and a local xApp quota the same slice: the local one, second, is refused as a
    conflict (its outcome names the remote one), and the remote one is told through its
    on_conflict across the northbound API."""
    from tests.test_conflicts import Es, Mlb, acking

    class RemoteMlb(Mlb):
        name = "rmlb"

    runtime, stats = await make_runtime(Es, **NB)
    client = XAppClient(RemoteMlb, f"127.0.0.1:{runtime.northbound.port}")
    task = asyncio.create_task(client.run())
    async with ScriptedNode(f"127.0.0.1:{runtime.port}") as node:
        await node.setup(functions=[rc_function(actions=[(3, 1), (2, 6), (100, 1)])])
        answering = asyncio.create_task(acking(node))
        await wait_for(lambda: client.host is not None and client.host.instance is not None)
        await wait_for(lambda: runtime.host("es").instance is not None)
        remote = client.host.instance  # type: ignore[union-attr]
        local = runtime.host("es").instance
        assert isinstance(remote, RemoteMlb) and isinstance(local, Es)
        one = await remote.control(SlicePrbQuota("001-01-11", "1-000001", 10, 40), timeout=2.0)
        two = await local.control(SlicePrbQuota("001-01-11", "1-000001", 30, 80), timeout=2.0)
        three = await remote.control(SlicePrbQuota("001-01-12", "1-000001", 10, 40), timeout=2.0)
        answering.cancel()
    assert (one.kind, two.kind) == (OutcomeKind.ACKNOWLEDGED, OutcomeKind.CONFLICT)
    assert two.conflict is not None and two.conflict.first_xapp == "rmlb"
    await wait_for(lambda: remote.conflicts, what="the remote xApp told of the conflict")
    assert remote.conflicts[0].second_xapp == "es"
    assert three.kind is OutcomeKind.ACKNOWLEDGED  # another cell: no conflict
    assert stats.conflicts["first-wins"] == 1
    client.stop()
    await asyncio.wait_for(task, 10)


async def test_a1_policies_reach_a_remote_xapp_on_every_attach(
    make_runtime: RuntimeFactory,
) -> None:
    """A policy put before the remote xApp attaches is delivered on attach, one put later
    arrives as it changes, the xApp's status is recorded, and a reattach does not deliver
    them twice to the same instance."""
    runtime, _ = await make_runtime(**NB)
    client = XAppClient(Counter, f"127.0.0.1:{runtime.northbound.port}")
    task = asyncio.create_task(client.run())
    await wait_for(lambda: client.host is not None and client.host.instance is not None)
    app = _instance(client)
    await runtime.a1.put_policy("nb-test-sla", "p1", {"max_pct": 60})
    await wait_for(lambda: len(app.policies) == 1, what="the first policy")
    await runtime.a1.put_policy("nb-test-sla", "p2", {"max_pct": 70})
    await wait_for(lambda: len(app.policies) == 2, what="the second policy")
    status = await runtime.a1.status("nb-test-sla", "p1")
    assert status["enforceStatus"] == "ENFORCED", status
    client._call.cancel()
    await wait_for(lambda: client.attaches == 2, what="the reattach")
    await runtime.a1.put_policy("nb-test-sla", "p1", {"max_pct": 50})
    await wait_for(lambda: len(app.policies) == 3, what="the update after the reattach")
    assert [(e.kind, e.policy_id) for e in app.policies] == [
        ("created", "p1"),
        ("created", "p2"),
        ("updated", "p1"),
    ]
    client.stop()
    await asyncio.wait_for(task, 10)


async def test_grants_hold_for_a_remote_xapp(make_runtime: RuntimeFactory) -> None:
    """The runtime's grants apply to a remote xApp by its name: a control kind it is not
    granted ends not_permitted, and is audited like a local xApp's."""
    runtime, stats = await make_runtime(
        **NB,
        **{
            "xapps.grants": {"nbcounter": {"controls": ["handover"]}},
        },
    )
    client = XAppClient(Counter, f"127.0.0.1:{runtime.northbound.port}")
    task = asyncio.create_task(client.run())
    async with Simulator(load_scenario(SMALL), f"127.0.0.1:{runtime.port}") as sim:
        await sim.wait_ready()
        await wait_for(lambda: client.host is not None and client.host.instance is not None)
        app = _instance(client)
        await wait_for(lambda: app.outcomes, what="the control's outcome")
    assert app.outcomes == ["not_permitted"]
    assert [o.kind.value for x, o in stats.recent_controls if x == "nbcounter"] == ["not_permitted"]
    client.stop()
    await asyncio.wait_for(task, 10)


async def test_a_blocking_remote_xapp_delays_no_one_else(make_runtime: RuntimeFactory) -> None:
    """time.sleep(5) in a remote xApp (its own `ric xapp run` process) stalls only it: a
    loop-mode xApp keeps getting every report on time and the runtime's loop never stalls
    100 ms; the overrun is counted at the runtime once the call returns."""
    import sys

    from ric.sdl import Namespace

    runtime, _ = await make_runtime(Recorder, **NB)
    target = f"127.0.0.1:{runtime.northbound.port}"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ric", "xapp", "run", "tests.northbound.apps:Sleeper",
        "--connect", target,
    )  # fmt: skip
    try:
        async with Simulator(load_scenario(SMALL), f"127.0.0.1:{runtime.port}") as sim:
            await sim.wait_ready()
            recorder = runtime.host("recorder").instance
            assert isinstance(recorder, Recorder)
            sdl = Namespace(runtime.sdl, "xapp.nbsleeper")
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while (await sdl.get("reports", 0)) < 2:
                assert loop.time() < deadline, "the remote xApp got no reports"
                await asyncio.sleep(0.05)
            start, since = len(recorder.seen), loop.time()
            await asyncio.sleep(3.0)  # inside the sleep
            arrivals = [
                r.collection_start for r in recorder.seen[start:] if r.node == "gnb-001-01-1"
            ]
            gaps = [b - a for a, b in itertools.pairwise(arrivals)]
            assert len(arrivals) >= 20 and max(gaps) <= 0.2, f"gaps up to {max(gaps):.3f} s"
            dog = runtime.watchdog
            stall = 0.0 if dog is None else dog.longest_since(since)
            assert stall < 0.1, f"the runtime's loop stalled {stall:.3f} s"
            host = runtime.host("nbsleeper")
            assert host.mode == "remote"
            await wait_for(lambda: host.overruns >= 1, timeout=10, what="the overrun")
    finally:
        child.terminate()
        await asyncio.wait_for(child.wait(), 10)


async def test_a_slow_remote_xapp_gets_drop_markers_and_bounded_memory(
    make_runtime: RuntimeFactory,
) -> None:
    """An xApp slower than its reports is sent no more than its credits; the runtime keeps at
    most its queue, drops the oldest and tells the xApp how many in the next batch, so the
    counts agree on both sides."""
    from tests.northbound.apps import Slow

    runtime, stats = await make_runtime(**NB)
    client = XAppClient(Slow, f"127.0.0.1:{runtime.northbound.port}")
    task = asyncio.create_task(client.run())
    async with Simulator(load_scenario(SMALL), f"127.0.0.1:{runtime.port}") as sim:
        await sim.wait_ready()
        await wait_for(lambda: any(h.name == "nbslow" for h in runtime.hosts))
        host = runtime.host("nbslow")
        depths = []
        for _ in range(30):
            await asyncio.sleep(0.1)
            depths.append(host.queue_depth)
            assert host.unacknowledged <= Slow.queue_size  # never more than its credits
        await wait_for(lambda: client.dropped > 0, what="a drop marker at the xApp")
        assert max(depths) <= Slow.queue_size
        assert host.dropped > 0 and stats.dropped["nbslow"] >= host.dropped
    client.stop()
    await asyncio.wait_for(task, 10)
    assert client.dropped <= host.dropped  # what it was told never exceeds what was dropped


async def test_calls_and_metric_series_of_a_remote_xapp_are_bounded(
    make_runtime: RuntimeFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An attached xApp over its bound of calls in flight gets an error naming the limit at
    once, and forwarded metric series past their bound are refused with a notice, while the
    stream and the runtime carry on."""
    import ric.northbound.host as nbhost
    from ric._proto.xapp.v1 import xapp_pb2 as pb
    from ric.sdl import SdlError

    monkeypatch.setattr(nbhost, "MAX_CALLS_IN_FLIGHT", 0)
    monkeypatch.setattr(nbhost, "MAX_METRIC_SERIES", 1)
    runtime, _ = await make_runtime(**NB)
    client = XAppClient(Counter, f"127.0.0.1:{runtime.northbound.port}")
    task = asyncio.create_task(client.run())
    await wait_for(lambda: client.host is not None and client.host.instance is not None)
    with pytest.raises(SdlError, match="the limit of 0"):
        await client._sdl.set("xapp.nbcounter", {"k": b"1"})
    family = pb.MetricFamily(name="hits", help="h", type="counter", labels=["cell"])
    for cell in ("a", "b"):
        family.samples.add(label_values=[cell], value=1.0)
    client._enqueue(pb.XAppMessage(metrics=pb.MetricsReport(families=[family])))
    await wait_for(
        lambda: any("over 1 forwarded series" in r.getMessage() for r in caplog.records),
        what="the notice",
    )
    metrics = runtime.sensor.xapp_metrics("nbcounter")
    assert isinstance(metrics, MemoryMetrics) and "hits" not in metrics.names()
    assert runtime.host("nbcounter").attached
    client.stop()
    await asyncio.wait_for(task, 10)
