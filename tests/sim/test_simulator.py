"""Tests of the simulator as a whole (ric.sim.simulator) and of the ric.sim public API."""

from __future__ import annotations

import asyncio
import logging

import pytest

import ric.sim
from ric._proto.e2.v1 import common_pb2, e2_pb2, kpm_pb2
from ric.cli import main
from ric.errors import ConfigError, StateError
from ric.sim import Scenario, Simulator, run_sim
from tests.conftest import RuntimeFactory, wait_for

from .conftest import WAIT_S, FakeRic


def test_public_api_is_what_the_cli_needs() -> None:
    """ric.sim exports exactly its documented names, sorted."""
    assert ric.sim.__all__ == [
        "VENDOR_PROFILES",
        "NodeAgent",
        "Scenario",
        "SimControlError",
        "Simulator",
        "Snapshot",
        "VendorProfile",
        "World",
        "load_scenario",
        "parse_scenario",
        "run_sim",
    ]
    for name in ric.sim.__all__:
        assert getattr(ric.sim, name) is not None


async def test_run_sim_stops_after_its_duration(small: Scenario, fake_ric: FakeRic) -> None:
    """run_sim returns by itself once duration_s of simulated time has passed."""
    async with asyncio.timeout(WAIT_S):
        await run_sim(small, fake_ric.target, duration_s=0.3, seed=5)


async def test_simulator_steps_the_world_while_running(small: Scenario, fake_ric: FakeRic) -> None:
    """A running simulator of a node subset advances its world tick by tick and reports on it."""
    async with Simulator(small, fake_ric.target, nodes=[2]) as sim:
        session = await fake_ric.next_session()
        await session.setup()
        async with asyncio.timeout(WAIT_S):
            await sim.wait_ready()
        assert list(sim.agents) == [2]
        assert session.node_id == 2
        session.send(
            subscription_request=e2_pb2.SubscriptionRequest(
                request_id=common_pb2.RicRequestId(requestor=1, instance=1),
                ran_function_id=1,
                kpm_trigger=kpm_pb2.KpmEventTrigger(reporting_period_ms=100),
                actions=[
                    e2_pb2.Action(
                        action_id=1,
                        type=e2_pb2.ACTION_TYPE_REPORT,
                        kpm=kpm_pb2.KpmActionDefinition(
                            report_style=1, metric_names=["RRC.ConnMean"]
                        ),
                    )
                ],
            )
        )
        await session.recv("subscription_response")
        for _ in range(2):
            await session.recv("indications")
        assert sim.ticks >= 2
        assert sim.world.time_s == pytest.approx(sim.ticks * small.tick_ms / 1000.0)


def test_node_filter_and_seed_are_checked_and_applied(small: Scenario) -> None:
    """Unknown node ids are a ConfigError naming 'nodes'; a seed overrides the scenario's."""
    with pytest.raises(ConfigError) as info:
        Simulator(small, "127.0.0.1:1", nodes=[1, 42])
    assert info.value.key == "nodes"
    assert "42" in info.value.problem
    sim = Simulator(small, "127.0.0.1:1", nodes=[3, 1], seed=99)
    assert list(sim.agents) == [3, 1]
    assert sim.world.seed == 99


async def test_a_simulator_runs_once(small: Scenario, fake_ric: FakeRic) -> None:
    """Entering or running a simulator a second time is refused with StateError."""
    sim = Simulator(small, fake_ric.target, duration_s=0.1)
    async with asyncio.timeout(WAIT_S):
        await sim.run()
    with pytest.raises(StateError):
        await sim.run()
    with pytest.raises(StateError):
        async with sim:
            pass


async def test_nodes_fail_over_to_the_next_runtime(
    small: Scenario, make_runtime: RuntimeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Given two runtimes, every node sets up on the first; when it stops, every node sets up
    on the second and logs where it moved."""
    first, _ = await make_runtime()
    second, _ = await make_runtime()
    targets = [f"127.0.0.1:{first.port}", f"127.0.0.1:{second.port}"]
    caplog.set_level(logging.INFO, logger="ric.sim.agent")
    sim = Simulator(small, ",".join(targets), reconnect_initial_s=0.05, reconnect_max_s=0.2)
    assert sim.targets == tuple(targets)
    async with sim:
        await wait_for(lambda: len(first.sessions) == len(sim.agents), what="nodes on the first")
        assert not second.sessions
        await first.__aexit__(None, None, None)
        await wait_for(lambda: len(second.sessions) == len(sim.agents), what="nodes on the second")
        await wait_for(lambda: sim.all_ready, what="every node set up")
        assert sorted(second.sessions) == sorted(str(a.node_id) for a in sim.agents.values())
    assert {a.target for a in sim.agents.values()} == {targets[1]}
    assert all(a.setups == 2 for a in sim.agents.values())
    moved = [r.getMessage() for r in caplog.records if "failing over" in r.getMessage()]
    assert len(moved) >= len(sim.agents)
    assert all(m.endswith(f"from {targets[0]} to {targets[1]}") for m in moved[: len(sim.agents)])


async def test_a_refused_setup_fails_over_without_its_time_to_wait(
    small: Scenario, fake_ric: FakeRic, other_ric: FakeRic
) -> None:
    """A node refused by the first endpoint with a long time-to-wait sets up on the next one
    after its short back-off: the wait is the refusing endpoint's, not the RIC's."""
    target = f"{fake_ric.target},{other_ric.target}"
    async with Simulator(small, target, nodes=[1], reconnect_initial_s=0.02) as sim:
        first = await fake_ric.next_session()
        req = (await first.recv("setup_request")).setup_request
        first.send(
            setup_failure=e2_pb2.E2SetupFailure(
                transaction_id=req.transaction_id,
                cause=common_pb2.Cause(code=common_pb2.CAUSE_MISC_OM_INTERVENTION),
                time_to_wait_ms=600_000,
            )
        )
        await (await other_ric.next_session()).setup()
        async with asyncio.timeout(WAIT_S):
            await sim.wait_ready()
        assert sim.agents[1].target == other_ric.target


async def test_an_unreachable_first_endpoint_is_skipped(
    small: Scenario, fake_ric: FakeRic, unused_port: int
) -> None:
    """A node whose first endpoint listens nowhere sets up on the second."""
    target = f"127.0.0.1:{unused_port},{fake_ric.target}"
    async with Simulator(small, target, nodes=[1], reconnect_initial_s=0.02) as sim:
        await (await fake_ric.next_session()).setup()
        async with asyncio.timeout(WAIT_S):
            await sim.wait_ready()
        assert sim.agents[1].target == fake_ric.target


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("127.0.0.1:36421,nowhere", "'nowhere' is not HOST:PORT"),
        ("127.0.0.1:36421,", "'' is not HOST:PORT"),
        ("a:1,b:1,a:1", "RIC endpoint a:1 is given more than once"),
        (["127.0.0.1:0"], "'127.0.0.1:0' is not HOST:PORT with a port 1-65535"),
    ],
)
def test_bad_endpoints_are_refused_by_name(
    small: Scenario, target: str | list[str], message: str
) -> None:
    """A bad or repeated endpoint is a ConfigError of 'connect' naming it."""
    with pytest.raises(ConfigError, match="connect") as caught:
        Simulator(small, target)
    assert message in str(caught.value)


def test_ric_sim_names_a_bad_endpoint_with_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    """ric sim --connect with a bad endpoint in its list exits 2 with one line naming it."""
    try:
        status = main(["sim", "--connect", "127.0.0.1:36421,ric-b", "--list"])
    except SystemExit as exc:  # argparse exits by itself
        status = int(exc.code or 0)
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--connect" in err[0] and "'ric-b' is not HOST:PORT" in err[0]
