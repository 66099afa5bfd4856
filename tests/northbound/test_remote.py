"""Remote xApps: a Python xApp attached over the northbound API gets what an in-process one
gets (shared subscriptions, control outcomes, A1 policies) and survives a reconnect."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from ric.northbound.client import AttachError, XAppClient
from ric.runtime import Runtime
from ric.sim import Simulator, load_scenario
from tests.conftest import Recorder, RuntimeFactory, wait_for
from tests.northbound.apps import Counter

SMALL = Path(__file__).resolve().parents[2] / "seeds" / "small.toml"
NB = {"northbound.port": 0, "xapps.isolation": {"default": "loop"}}


def _instance(client: XAppClient) -> Counter:
    host = client.host
    assert host is not None and isinstance(host.instance, Counter)
    return host.instance


async def test_remote_xapp_gets_reports_and_control_outcomes(make_runtime: RuntimeFactory) -> None:
    """A remote xApp receives its reports (sharing the E2 subscription of a local xApp that
    wants the same rows) and its control ends acknowledged, audited once by the runtime."""
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
