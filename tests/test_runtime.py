"""The runtime end to end with the simulator over real gRPC: the closed loop, and node
loss and return."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ric import Handover, KpmReport, NodeInfo, OutcomeKind, Report, XApp
from ric.config import load_config
from ric.plugins import Plugin
from ric.runtime import Runtime
from ric.sim import Simulator, load_scenario
from ric.types import Check
from ric.view import RuntimeView
from tests.conftest import Recorder, RuntimeFactory, wait_for
from tests.e2node import ScriptedNode

SMALL = Path(__file__).resolve().parent.parent / "seeds" / "small.toml"


class Mover(XApp):
    """Keeps the UE reports it receives; the test sends its controls."""

    name = "mover"
    reports = [Report("L1M.RSRP", "DRB.UEThpDl", period_ms=100, per="ue")]
    controls = [Handover]
    seen: list[KpmReport]
    up: list[NodeInfo]

    async def on_start(self) -> None:
        self.seen = []
        self.up = []

    async def on_node_up(self, node: NodeInfo) -> None:
        self.up.append(node)

    async def on_report(self, report: KpmReport) -> None:
        self.seen.append(report)


async def test_closed_loop_handover_moves_the_ue(make_runtime: RuntimeFactory) -> None:
    """An xApp hands a UE to another cell over gRPC, the simulated node acknowledges, and the
    next UE report from that node shows the UE on the target cell."""
    runtime, stats = await make_runtime(Mover)
    small = load_scenario(SMALL)
    # What is tested is the xApp's control loop: the RAN's own A3 must not move the UE on
    # before the next report, and acme's back-to-back sectors need a lower Qout to execute.
    small = small.model_copy(
        update={
            "radio": small.radio.model_copy(update={"rlf_sinr_db": -30.0}),
            "ran": small.ran.model_copy(update={"mobility": "none"}),
        }
    )
    async with Simulator(small, f"127.0.0.1:{runtime.port}") as sim:
        await sim.wait_ready()
        app = runtime.host("mover").instance
        assert isinstance(app, Mover)
        await wait_for(lambda: app.seen, what="a UE report")
        report = app.seen[-1]
        node = runtime.nodes()[report.node]
        world = sim.world
        # The UE whose best other cell of the same node is strongest: that handover succeeds.
        node_cells = {str(c) for c in node.cells}
        best: tuple[float, str, str, str] | None = None
        for ue, cell in zip(report.entity_ids, report.cells, strict=True):
            row = world.rsrp_dbm[world.ue_index(int(ue))]
            for j in np.argsort(-row):
                target = str(world.cell_ids[j])
                if target in node_cells and target != cell:
                    if best is None or row[j] > best[0]:
                        best = (float(row[j]), ue, cell, target)
                    break
        assert best is not None
        _, ue, serving, target = best
        outcome = await app.control(Handover(ue, serving, target), timeout=2.0)
        assert outcome.kind is OutcomeKind.ACKNOWLEDGED, outcome
        count = len(app.seen)
        await wait_for(
            lambda: any(r.node == report.node for r in app.seen[count:]), what="next report"
        )
        after = next(r for r in app.seen[count:] if r.node == report.node)
        assert after.cells[after.entity_ids.index(ue)] == target
        assert str(world.serving_cell(int(ue))) == target
    assert stats.controls[("mover", "handover", "acknowledged")] == 1


async def test_vendors_get_only_what_they_can_serve(make_runtime: RuntimeFactory) -> None:
    """With the three vendor profiles, 100 ms cell reports come from every node (Initech's at
    its 500 ms minimum, which the xApp is told), and UE reports, which the other two refuse
    with a cause, only from the node whose KPM function has UE-level styles."""
    runtime, _ = await make_runtime(Mover, Recorder)
    async with Simulator(load_scenario(SMALL), f"127.0.0.1:{runtime.port}") as sim:
        await sim.wait_ready()
        recorder = runtime.host("recorder").instance
        mover = runtime.host("mover").instance
        assert isinstance(recorder, Recorder)
        assert isinstance(mover, Mover)
        await wait_for(
            lambda: {r.node for r in recorder.seen} == set(runtime.nodes()), what="cell reports"
        )
        await wait_for(lambda: mover.seen, what="UE reports")
        assert {r.node for r in mover.seen} == {"gnb-001-01-1"}
        assert len({info.vendor for info in runtime.nodes().values()}) == 3
        periods = {
            node: st.period_ms for (node, _), st in runtime.host("recorder").statuses.items()
        }
        assert periods == {"gnb-001-01-1": 100, "gnb-001-01-2": 100, "gnb-001-01-3": 500}
        ue = runtime.host("mover").statuses
        assert ue[("gnb-001-01-1", 0)].state == "active"
        assert ue[("gnb-001-01-2", 0)].state == "refused"
        assert ue[("gnb-001-01-2", 0)].cause is not None
        assert "no KPM report style 5/4/3/2" in ue[("gnb-001-01-2", 0)].cause.detail


async def test_node_that_comes_back_is_subscribed_again(make_runtime: RuntimeFactory) -> None:
    """When a simulated node's stream drops and it sets up again, its subscriptions are
    requested again without the xApp doing anything, and the xApp sees down then up."""
    runtime, _ = await make_runtime(Recorder)
    async with Simulator(
        load_scenario(SMALL), f"127.0.0.1:{runtime.port}", nodes=[2], reconnect_initial_s=0.05
    ) as sim:
        await sim.wait_ready()
        recorder = runtime.host("recorder").instance
        assert isinstance(recorder, Recorder)
        await wait_for(lambda: recorder.seen, what="first reports")
        runtime.sessions["gnb-001-01-2"].close("test drops the node")
        await wait_for(lambda: ("down", "gnb-001-01-2") in recorder.events, what="node down")
        before = len(recorder.seen)
        await wait_for(
            lambda: recorder.events.count(("up", "gnb-001-01-2")) == 2, what="node up again"
        )
        await wait_for(lambda: len(recorder.seen) > before, what="reports after return")
        assert len(runtime.subscriptions.snapshot()) == 1


class Probe:
    """A component that records its start and stop and offers one check."""

    name = "probe"

    def __init__(self, log: list[str], fail_stop: bool = False) -> None:
        self.log = log
        self.fail_stop = fail_stop

    async def start(self, runtime: RuntimeView) -> None:
        assert isinstance(runtime, Runtime)  # components get the view; this one checks E2 too
        self.log.append(f"start {self.name} port={runtime.port != 0}")

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")
        if self.fail_stop:
            raise RuntimeError("stop failed")

    def checks(self) -> list[Check]:
        return [Check(self.name, True, "fine")]


async def test_components_start_after_e2_and_stop_in_reverse() -> None:
    """Components start once E2 listens and stop in reverse order, a failing stop not keeping
    the others from stopping; their checks join the runtime's readiness."""
    log: list[str] = []
    first, second = Probe(log), Probe(log, fail_stop=True)
    second.name = "second"
    config = load_config(environ={}, overrides={"e2.port": 0})
    async with Runtime(config, [Plugin(Recorder, "test")], components=[first, second]) as runtime:
        await wait_for(lambda: runtime.host("recorder").state.value == "running")
        checks = {c.name: c.ok for c in runtime.checks()}
        assert checks == {
            "e2": True,
            "sdl": True,
            "xapp:recorder": True,
            "probe": True,
            "second": True,
        }
    assert log == ["start probe port=True", "start second port=True", "stop second", "stop probe"]


def test_the_constructor_builds_no_component_from_the_config() -> None:
    """Runtime(config) leaves [http], [mqtt] and [trace] to the caller: with them all on it
    has no component, so a library user or a test opens no port but E2's."""
    config = load_config(
        environ={},
        overrides={"http.enabled": True, "mqtt.enabled": True, "trace.record": "x.trace"},
    )
    assert Runtime(config).components == []


def test_from_config_builds_what_the_config_asks_for(tmp_path: Path) -> None:
    """Runtime.from_config builds the Prometheus sensor and HTTP server, the MQTT bridge and
    the recorder, in that order, each a sensor too where it observes events; with them off in
    the config it builds none, and given components come after the built ones."""
    trace = str(tmp_path / "t.trace")
    on = load_config(
        environ={}, overrides={"http.port": 0, "mqtt.enabled": True, "trace.record": trace}
    )
    runtime = Runtime.from_config(on)
    assert [c.name for c in runtime.components] == ["metrics", "http", "mqtt", "trace"]
    sensors = {type(s).__name__ for s in runtime.sensor}
    assert {"PrometheusSensor", "MqttBridge", "TraceRecorder"} <= sensors
    off = load_config(environ={}, overrides={"http.enabled": False})
    extra = Runtime(off).audit  # any component will do: the audit log is one
    assert Runtime.from_config(off, components=[extra]).components == [extra]


class _Scanned(dict[Any, Any]):
    """A dict that counts the entries it hands out when walked whole (iter, keys, values,
    items); lookups, inserts and deletes are not counted."""

    walked = 0

    def _walk(self) -> None:
        self.walked += len(self)

    def __iter__(self) -> Any:
        self._walk()
        return super().__iter__()

    def keys(self) -> Any:
        self._walk()
        return super().keys()

    def values(self) -> Any:
        self._walk()
        return super().values()

    def items(self) -> Any:
        self._walk()
        return super().items()


class _ScannedSet(set[Any]):
    """A set that counts the entries it hands out when walked whole."""

    walked = 0

    def __iter__(self) -> Any:
        self.walked += len(self)
        return super().__iter__()


async def test_one_node_up_and_down_touches_only_its_own_entries(
    make_runtime: RuntimeFactory,
) -> None:
    """A node's setup, subscriptions and loss never walk the tables of all nodes (cells,
    subscriptions, held slots, xApp statuses), so N nodes joining or leaving cost O(N), not
    O(N^2); the other nodes' entries stay as they were."""
    runtime, _ = await make_runtime(Recorder, Mover)
    target = f"127.0.0.1:{runtime.port}"
    subs = runtime.subscriptions
    async with ScriptedNode(target) as n1, ScriptedNode(target) as n2, ScriptedNode(target) as n3:
        for k, node in enumerate((n1, n2, n3), start=1):
            await node.setup(node_id=k, cells=[10 * k + 1, 10 * k + 2])
            await node.accept_subscriptions(2)
        await wait_for(lambda: len(subs.snapshot()) == 6 and all(s.taps for s in subs.snapshot()))
        await wait_for(lambda: all(len(h.statuses) == 3 for h in runtime.hosts), what="statuses")
        before = sorted(runtime._cells), [s.request_id for s in subs.snapshot()]
        tables: list[_Scanned | _ScannedSet] = []

        def watch(table: Any) -> Any:
            tables.append(_ScannedSet(table) if isinstance(table, set) else _Scanned(table))
            return tables[-1]

        runtime._cells = watch(runtime._cells)
        subs._by_id = watch(subs._by_id)
        subs._by_node = watch(subs._by_node)
        for host in runtime.hosts:
            host.statuses = watch(host.statuses)
        for xapp, held in list(subs._held.items()):
            subs._held[xapp] = watch(held)
        async with ScriptedNode(target) as n4:
            await n4.setup(node_id=4, cells=[41, 42])
            await n4.accept_subscriptions(2)
            # Each xApp active on node 4 (walking every subscription here would count).
            await wait_for(lambda: all(len(h.statuses) == 4 for h in runtime.hosts))
            assert len(runtime.nodes()) == 4
        await wait_for(lambda: len(runtime.nodes()) == 3, what="node 4 gone")
        assert [t.walked for t in tables] == [0] * len(tables)
        assert (sorted(runtime._cells), [s.request_id for s in subs.snapshot()]) == before
        assert all(len(h.statuses) == 3 for h in runtime.hosts)
        assert sorted(subs._held_on) == sorted(runtime.nodes())
