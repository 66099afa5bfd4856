"""The conflict arbiter: each policy deciding a real conflict between two xApps, including
the indirect case of a handover into a cell that another xApp switches off."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ric import (
    CellAdministration,
    CellIndividualOffset,
    CellState,
    Conflict,
    ControlOutcome,
    Handover,
    OutcomeKind,
    SlicePrbQuota,
    XApp,
)
from ric._proto.e2.v1 import e2_pb2
from ric.conflicts import Arbiter
from ric.runtime import Runtime
from tests.conftest import RuntimeFactory, wait_for
from tests.e2node import ScriptedNode, rc_function


class Clock:
    def __init__(self) -> None:
        self.now = 0.0


def arbiter(policy: str, **priorities: int) -> tuple[Arbiter, Clock]:
    clock = Clock()
    windows = {"handover": 5.0, "slice_prb_quota": 10.0, "cell_state": 60.0}
    return Arbiter(policy, windows, priorities, lambda: clock.now), clock  # type: ignore[arg-type]


HO_A = Handover("7", "001-01-1", "001-01-2")
HO_B = Handover("7", "001-01-1", "001-01-3")


def test_first_wins_and_window() -> None:
    """Under first-wins the second xApp's different handover of the same UE is refused; after
    the guard window, or from the same xApp, or with the same value, there is no conflict."""
    arb, clock = arbiter("first-wins")
    assert arb.decide("mlb", HO_A).allowed
    second = arb.decide("ts", HO_B)
    assert not second.allowed
    assert second.conflict is not None
    assert (second.conflict.winner, second.notify, second.conflict.parameter) == (
        "mlb",
        "mlb",
        "serving_cell",
    )
    assert arb.decide("mlb", HO_B).allowed  # the same xApp may change its mind
    assert (
        arb.decide("ts", Handover("7", "001-01-1", "001-01-3")).conflict is None
    )  # same value as mlb's latest
    clock.now = 5.1
    assert arb.decide("ts", HO_A).allowed


def test_priority_lets_the_higher_override() -> None:
    """Under priority a higher-priority xApp overrides (the lower is told), and a lower one is
    refused; equal priorities fall back to first-wins."""
    arb, _ = arbiter("priority", es=1, mlb=5)
    assert arb.decide("es", SlicePrbQuota("001-01-1", "1", 10, 50)).allowed
    over = arb.decide("mlb", SlicePrbQuota("001-01-1", "1", 20, 60))
    assert over.allowed
    assert over.conflict is not None
    assert (over.conflict.winner, over.notify) == ("mlb", "es")
    back = arb.decide("es", SlicePrbQuota("001-01-1", "1", 10, 50))
    assert not back.allowed
    assert back.conflict is not None
    assert back.conflict.winner == "mlb"


def test_reject_both_contests_the_target() -> None:
    """Under reject-both the second control is refused and the target stays contested for both
    xApps until the window passes."""
    arb, clock = arbiter("reject-both")
    assert arb.decide("a", CellState("001-01-1", tx_power_dbm=40.0)).allowed
    refused = arb.decide("b", CellState("001-01-1", tx_power_dbm=30.0))
    assert not refused.allowed
    assert refused.conflict is not None
    assert refused.conflict.winner is None
    assert not arb.decide("a", CellState("001-01-1", tx_power_dbm=41.0)).allowed
    clock.now = 61.0
    assert arb.decide("b", CellState("001-01-1", tx_power_dbm=30.0)).allowed


def test_indirect_handover_into_cell_being_switched_off() -> None:
    """A handover into a cell another xApp switched off conflicts, and so does switching off a
    cell another xApp just handed UEs into; switching it on does not."""
    arb, _ = arbiter("first-wins")
    assert arb.decide("es", CellState("001-01-2", active=False)).allowed
    into = arb.decide("mlb", HO_A)
    assert not into.allowed
    assert into.conflict is not None
    assert (into.conflict.parameter, into.conflict.target) == ("active", "cell:001-01-2")
    arb2, _ = arbiter("first-wins")
    assert arb2.decide("mlb", HO_A).allowed
    off = arb2.decide("es", CellState("001-01-2", active=False))
    assert not off.allowed
    assert arb2.decide("es", CellState("001-01-3", active=True)).allowed


def test_two_xapps_setting_the_same_cio_conflict() -> None:
    """Two xApps setting different cell individual offsets on the same relation within the
    window conflict on ``cellIndividualOffset``; the same value, another relation or the
    reverse relation do not."""
    arb, clock = arbiter("first-wins")
    assert arb.decide("mlb", CellIndividualOffset("001-01-1", "001-01-2", 4)).allowed
    clash = arb.decide("es", CellIndividualOffset("001-01-1", "001-01-2", -6))
    assert not clash.allowed
    assert clash.conflict is not None
    assert (clash.conflict.target, clash.conflict.parameter, clash.conflict.winner) == (
        "relation:001-01-1>001-01-2",
        "cellIndividualOffset",
        "mlb",
    )
    assert arb.decide("es", CellIndividualOffset("001-01-1", "001-01-2", 4)).conflict is None
    assert arb.decide("es", CellIndividualOffset("001-01-1", "001-01-3", -6)).allowed
    assert arb.decide("es", CellIndividualOffset("001-01-2", "001-01-1", -6)).allowed
    clock.now = 5.1  # the default window (no cell_individual_offset entry): 5 s
    assert arb.decide("es", CellIndividualOffset("001-01-1", "001-01-2", -6)).allowed


def test_cio_steering_into_a_cell_being_switched_off_conflicts() -> None:
    """A positive CIO towards a cell another xApp is taking out of service (CCC energy saving
    or RC cell state) is the indirect conflict of a handover into it; a negative one is not."""
    arb, _ = arbiter("first-wins")
    off = CellAdministration("001-01-2", energy_saving_control="toBeEnergySaving")  # type: ignore[arg-type]
    assert arb.decide("es", off).allowed
    into = arb.decide("mlb", CellIndividualOffset("001-01-1", "001-01-2", 6))
    assert into.conflict is not None and not into.allowed
    assert (into.conflict.target, into.conflict.parameter) == ("cell:001-01-2", "active")
    assert arb.decide("mlb", CellIndividualOffset("001-01-1", "001-01-2", -6)).allowed
    # A CCC lock and an RC switch-on of the same cell are one parameter too.
    assert not arb.decide("other", CellState("001-01-2", active=True)).allowed


def test_retracted_control_does_not_hold_the_target() -> None:
    """A control that did not take effect is retracted and no longer blocks others."""
    arb, _ = arbiter("first-wins")
    first = arb.decide("mlb", HO_A)
    arb.retract(first.token)
    assert arb.decide("ts", HO_B).allowed


class Steerer(XApp):
    controls = [Handover, CellState, SlicePrbQuota]
    conflicts: list[Conflict]

    async def on_start(self) -> None:
        self.conflicts = []

    async def on_conflict(self, conflict: Conflict) -> None:
        self.conflicts.append(conflict)


class Mlb(Steerer):
    name = "mlb"


class Es(Steerer):
    name = "es"


async def acking(node: ScriptedNode) -> None:
    """Acknowledge every control request until cancelled."""
    while True:
        req = await node.recv_kind("control_request", timeout=60)
        await node.send(
            e2_pb2.NodeMessage(
                control_acknowledge=e2_pb2.ControlAcknowledge(request_id=req.request_id)
            )
        )


async def control(runtime: Runtime, xapp: str, action: Any) -> ControlOutcome:
    instance = runtime.host(xapp).instance
    assert instance is not None
    return await instance.control(action, timeout=2.0)


@pytest.mark.parametrize(
    ("policy", "first", "second", "second_kind", "told"),
    [
        ("first-wins", "es", "mlb", OutcomeKind.CONFLICT, "es"),
        ("priority", "es", "mlb", OutcomeKind.ACKNOWLEDGED, "es"),
        ("priority", "mlb", "es", OutcomeKind.CONFLICT, "mlb"),
        ("reject-both", "es", "mlb", OutcomeKind.CONFLICT, "es"),
    ],
)
async def test_policies_over_grpc(
    make_runtime: RuntimeFactory,
    policy: str,
    first: str,
    second: str,
    second_kind: OutcomeKind,
    told: str,
) -> None:
    """Two xApps quota the same slice differently through a real node: the policy decides, the
    refused one gets a conflict outcome, the other is told, and the conflict is counted."""
    runtime, stats = await make_runtime(
        Mlb, Es, **{"conflicts.policy": policy, "conflicts.priority": {"mlb": 5, "es": 1}}
    )
    async with ScriptedNode(f"127.0.0.1:{runtime.port}") as node:
        await node.setup(functions=[rc_function(actions=[(3, 1), (2, 6), (100, 1)])])
        answering = asyncio.create_task(acking(node))
        await wait_for(lambda: all(h.instance is not None for h in runtime.hosts))
        one = await control(runtime, first, SlicePrbQuota("001-01-11", "1-000001", 10, 40))
        two = await control(runtime, second, SlicePrbQuota("001-01-11", "1-000001", 30, 80))
        answering.cancel()
    assert one.kind is OutcomeKind.ACKNOWLEDGED
    assert two.kind is second_kind
    assert two.conflict is not None
    assert two.conflict.policy == policy
    other = runtime.host(told).instance
    assert isinstance(other, Steerer)
    await wait_for(lambda: other.conflicts, what="the other xApp told")
    assert other.conflicts[0].first_xapp == first
    assert stats.conflicts[policy] == 1


async def test_indirect_conflict_over_grpc(make_runtime: RuntimeFactory) -> None:
    """es switches a cell off; mlb then hands a UE into it: the handover is refused as a
    conflict on the cell's activity, and es is told."""
    runtime, stats = await make_runtime(Mlb, Es)
    async with ScriptedNode(f"127.0.0.1:{runtime.port}") as node:
        await node.setup(cells=[11, 12], functions=[rc_function(actions=[(3, 1), (100, 1)])])
        answering = asyncio.create_task(acking(node))
        await wait_for(lambda: all(h.instance is not None for h in runtime.hosts))
        off = await control(runtime, "es", CellState("001-01-12", active=False))
        into = await control(runtime, "mlb", Handover("4", "001-01-11", "001-01-12"))
        answering.cancel()
    assert off.ok
    assert into.kind is OutcomeKind.CONFLICT
    assert into.conflict is not None
    assert into.conflict.parameter == "active"
    assert stats.conflicts["first-wins"] == 1
