"""Tests of the simulator as a whole (ric.sim.simulator) and of the ric.sim public API."""

from __future__ import annotations

import asyncio

import pytest

import ric.sim
from ric._proto.e2.v1 import common_pb2, e2_pb2, kpm_pb2
from ric.errors import ConfigError, StateError
from ric.sim import Scenario, Simulator, run_sim

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
