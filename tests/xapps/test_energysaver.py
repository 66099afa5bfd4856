"""energysaver switches idle cells off when neighbours can absorb their load, keeps coverage,
switches them back on before the neighbours fill up, and meets mlb through the arbiter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest
from energysaver import EnergySaver
from mlb import LoadBalancer

from ric import (
    CellAdministration,
    CellIndividualOffset,
    CellState,
    ControlOutcome,
    EnergySavingControl,
    KpmReport,
    OutcomeKind,
)
from ric.actions import ControlAction, Handover
from ric.ids import CellId, NodeId, Plmn
from ric.model import (
    CCC_OID,
    RC_OID,
    Cause,
    CauseCode,
    CccFunction,
    CellInfo,
    NodeInfo,
    RanFunction,
    RcAction,
    RcFunction,
)
from ric.report import EntityKind
from ric.testing import FakeContext, make_report, run_scenario

PLMN = Plmn("001", "01")
NODE = "gnb-001-01-1"
C1, C2, C3, C4 = (f"001-01-{n}" for n in (1, 2, 3, 4))
FAST = {"off_hold_s": 10.0, "min_on_s": 0.0, "off_gap_s": 0.0, "min_off_s": 5.0, "lead_s": 0.0}


def rc(*actions: tuple[int, int]) -> dict[int, RanFunction]:
    fn = RcFunction({a: RcAction(a[0], a[1], "x") for a in actions})
    return {3: RanFunction(3, RC_OID, "ORAN-E2SM-RC", 1, fn)}


def network(*, controllable: bool = True) -> NodeInfo:
    """One node, four cells: 1 neighbours 2, 3 and 4; 2 and 3 neighbour each other and 1."""
    c1, c2, c3, c4 = (CellId(PLMN, n) for n in (1, 2, 3, 4))
    cells = {
        c1: CellInfo(c1, 1, 78, 106, neighbours=(c2, c3, c4)),
        c2: CellInfo(c2, 2, 78, 106, neighbours=(c1, c3)),
        c3: CellInfo(c3, 3, 78, 106, neighbours=(c1, c2)),
        c4: CellInfo(c4, 4, 78, 106, neighbours=(c1,)),
    }
    functions = rc((100, 1)) if controllable else rc((3, 1))
    return NodeInfo(NodeId(PLMN, 1), "v", "1", functions, cells)


class NodesContext(FakeContext):
    """A FakeContext whose node announces each acknowledged cell switch, as a real one does."""

    def __init__(self, node: NodeInfo, refuse: bool = False) -> None:
        super().__init__("energysaver")
        self.node = node
        self.refuse = refuse

    def nodes(self) -> Mapping[str, NodeInfo]:
        return {str(self.node.id): self.node}

    async def control(self, action: ControlAction, timeout: float) -> ControlOutcome:
        self.controls.append(action)
        if self.refuse:
            cause = Cause(CauseCode.RIC_REQUEST_CONTROL_FAILED_TO_EXECUTE, "busy")
            return ControlOutcome(OutcomeKind.FAILED, action, cause=cause)
        assert isinstance(action, CellState) and action.active is not None
        cid = CellId.parse(action.cell_id)
        cells = dict(self.node.cells)
        cells[cid] = replace(cells[cid], active=action.active)
        self.node = replace(self.node, cells=cells)
        return ControlOutcome(OutcomeKind.ACKNOWLEDGED, action)


async def start(
    config: Mapping[str, Any] | None = None, node: NodeInfo | None = None, refuse: bool = False
) -> tuple[EnergySaver, NodesContext]:
    ctx = NodesContext(node or network(), refuse)
    app = EnergySaver(ctx, EnergySaver.Config.model_validate({**FAST, **(config or {})}))
    await app.on_start()
    return app, ctx


def report(loads: Mapping[str, float]) -> KpmReport:
    """A cell report; a cell given as None is off (no PRBs available)."""
    cells = list(loads)
    return make_report(
        NODE,
        EntityKind.CELL,
        {
            "RRU.PrbUsedDl": [loads[c] * 106 / 100 for c in cells],
            "RRU.PrbAvailDl": [106.0] * len(cells),
            "RRC.ConnMean": [1.0] * len(cells),
        },
        cells,
    )


async def feed(app: EnergySaver, ctx: FakeContext, loads: Mapping[str, float], n: int) -> None:
    """``n`` reports one second apart, the cells that are off reporting nothing."""
    for _ in range(n):
        on = {c: v for c, v in loads.items() if app.cells[c].active}
        await app.on_report(report(on))
        await ctx.clock.advance(1.0)


def switches(ctx: FakeContext) -> list[tuple[str, bool | None]]:
    return [(c.cell_id, c.active) for c in ctx.controls if isinstance(c, CellState)]


async def test_idle_cell_goes_off_after_hold_when_neighbours_absorb() -> None:
    """A cell below off_pct is switched off once it has been idle for off_hold_s and its first
    neighbours stay below absorb_max_pct with its load; one cell at a time."""
    app, ctx = await start()
    loads = {C1: 5.0, C2: 20.0, C3: 20.0, C4: 30.0}
    await feed(app, ctx, loads, 10)
    assert switches(ctx) == []
    await feed(app, ctx, loads, 2)
    assert switches(ctx) == [(C1, False)]
    assert app.cells[C1].absorbers == (C2, C3)
    assert ctx.metrics.value("cells_off") == 1
    assert ctx.metrics.value("switches_total", action="off", outcome="acknowledged") == 1


def ccc_network() -> NodeInfo:
    """The four cells of ``network`` on a node whose CCC function writes energy saving and
    CIOs (and no RC cell state)."""
    cells = network().cells
    ccc = CccFunction(
        frozenset({2}),
        {
            "O-CESManagementFunction": frozenset({"energySavingControl"}),
            "O-NRCellRelation": frozenset({"cellIndividualOffset"}),
        },
    )
    functions = {4: RanFunction(4, CCC_OID, "ORAN-E2SM-CCC", 1, ccc)}
    return NodeInfo(NodeId(PLMN, 1), "v", "1", functions, cells)


class CccContext(NodesContext):
    """A node that takes CCC energy saving and CIOs; a cell put to energy saving is
    announced off, one switched back on is announced on."""

    async def control(self, action: ControlAction, timeout: float) -> ControlOutcome:
        self.controls.append(action)
        if isinstance(action, CellAdministration):
            cid = CellId.parse(action.cell_id)
            cells = dict(self.node.cells)
            cells[cid] = replace(cells[cid], active=action.in_service)
            self.node = replace(self.node, cells=cells)
        return ControlOutcome(OutcomeKind.ACKNOWLEDGED, action)


async def test_ccc_cell_is_evacuated_by_cio_before_energy_saving() -> None:
    """On a CCC node the idle cell's relations to its absorbers get +6 dB (the reverse ones
    -6 dB) first; evacuate_s later it is put to energy saving (toBeEnergySaving), and the
    offsets go back to 0 once it is off."""
    ctx = CccContext(ccc_network())
    config = EnergySaver.Config.model_validate({**FAST, "evacuate_s": 5.0})
    app = EnergySaver(ctx, config)
    await app.on_start()
    loads = {C1: 5.0, C2: 20.0, C3: 20.0, C4: 30.0}
    await feed(app, ctx, loads, 12)
    offsets = [
        (c.cell_id, c.neighbour, c.offset_db)
        for c in ctx.controls
        if isinstance(c, CellIndividualOffset)
    ]
    assert offsets == [(C1, C2, 6), (C2, C1, -6), (C1, C3, 6), (C3, C1, -6)]
    assert not any(isinstance(c, CellAdministration) for c in ctx.controls)
    await feed(app, ctx, loads, 5)
    [off] = [c for c in ctx.controls if isinstance(c, CellAdministration)]
    assert off.energy_saving_control is EnergySavingControl.TO_BE_ENERGY_SAVING
    after = ctx.controls[ctx.controls.index(off) + 1 :]
    assert [(c.cell_id, c.neighbour, c.offset_db) for c in after] == [  # type: ignore[attr-defined]
        (C1, C2, 0),
        (C2, C1, 0),
        (C1, C3, 0),
        (C3, C1, 0),
    ]
    assert not app.cells[C1].active
    assert ctx.metrics.value("switches_total", action="evacuate", outcome="acknowledged") == 4


async def test_switch_on_leads_by_the_wakeup_time() -> None:
    """An absorber rising 2 %/s towards on_pct wakes the sleeping cell wakeup_s earlier than
    without a wake-up time: the cell must be serving when the absorber gets there."""

    async def first_on(wakeup_s: float) -> int:
        app, ctx = await start({"min_off_s": 0.0, "wakeup_s": wakeup_s, "smoothing_s": 1.0})
        quiet = {C1: 5.0, C2: 20.0, C3: 20.0, C4: 30.0}
        await feed(app, ctx, quiet, 12)
        assert switches(ctx) == [(C1, False)]
        for k in range(40):
            await feed(app, ctx, {**quiet, C2: 20.0 + 2.0 * k}, 1)
            if len(switches(ctx)) == 2:
                return k
        raise AssertionError("never switched on")

    assert await first_on(10.0) < await first_on(0.0)


async def test_busy_neighbour_keeps_cell_on() -> None:
    """A neighbour that would pass absorb_max_pct with the idle cell's load keeps it on."""
    app, ctx = await start()
    await feed(app, ctx, {C1: 10.0, C2: 45.0, C3: 20.0, C4: 30.0}, 20)
    assert switches(ctx) == []


async def test_coverage_is_kept() -> None:
    """A cell with fewer than min_active_neighbours neighbours on (cell 4 has one), or the last
    active cell of its node, is never switched off."""
    app, ctx = await start()
    await feed(app, ctx, {C1: 30.0, C2: 30.0, C3: 30.0, C4: 1.0}, 20)
    assert switches(ctx) == []
    c1 = CellId(PLMN, 1)
    alone = NodeInfo(
        NodeId(PLMN, 1), "v", "1", rc((100, 1)), {c1: CellInfo(c1, 1, 78, 106, neighbours=())}
    )
    app, ctx = await start({"min_active_neighbours": 1}, node=alone)
    await feed(app, ctx, {C1: 1.0}, 20)
    assert switches(ctx) == []


async def test_node_without_cell_state_control_is_left_alone() -> None:
    """Cells of a node that does not offer the cell on/off control are never switched."""
    app, ctx = await start(node=network(controllable=False))
    await feed(app, ctx, {C1: 5.0, C2: 20.0, C3: 20.0, C4: 30.0}, 20)
    assert switches(ctx) == []


async def test_off_cell_comes_back_before_absorber_fills_up() -> None:
    """A cell switched off is switched on again when a neighbour that absorbed its load passes
    on_pct, not before min_off_s, and it then stays on at least min_on_s."""
    app, ctx = await start({"min_on_s": 100.0, "min_off_s": 5.0})
    quiet = {C1: 5.0, C2: 20.0, C3: 20.0, C4: 30.0}
    await feed(app, ctx, quiet, 12)
    assert switches(ctx) == [(C1, False)]
    await feed(app, ctx, quiet, 10)
    assert switches(ctx) == [(C1, False)]
    await feed(app, ctx, {**quiet, C2: 95.0}, 15)
    assert switches(ctx) == [(C1, False), (C1, True)]
    await feed(app, ctx, quiet, 30)
    assert switches(ctx) == [(C1, False), (C1, True)]
    assert ctx.metrics.value("cells_off") == 0


async def test_refused_switch_waits_retry_s() -> None:
    """A switch the node refuses is not tried again for that cell before retry_s."""
    app, ctx = await start({"retry_s": 30.0}, refuse=True)
    loads = {C1: 5.0, C2: 20.0, C3: 20.0, C4: 30.0}
    await feed(app, ctx, loads, 25)
    assert switches(ctx) == [(C1, False)]
    await feed(app, ctx, loads, 20)
    assert switches(ctx) == [(C1, False), (C1, False)]
    assert ctx.metrics.value("switches_total", action="off", outcome="failed") == 2


def test_config_needs_hysteresis() -> None:
    """off_pct < absorb_max_pct < on_pct is required, so a switch-off cannot trigger a
    switch-on by itself."""
    with pytest.raises(ValueError, match="hysteresis"):
        EnergySaver.Config(off_pct=20.0, absorb_max_pct=60.0, on_pct=60.0)


async def test_night_scenario_switches_cells_off_and_keeps_coverage() -> None:
    """On seeds/night.toml energysaver switches several cells off, every switch is
    acknowledged, and each cell off still has an active neighbour in the world."""
    result = await run_scenario("seeds/night.toml", [EnergySaver], duration_s=130.0, seed=1)
    assert result.outcomes("energysaver")
    assert set(result.outcomes("energysaver")) == {OutcomeKind.ACKNOWLEDGED}
    world = result.world
    assert world is not None
    off = [i for i in range(world.n_cells) if not world.is_active(i)]
    assert len(off) >= 3
    assert result.metrics["energysaver"].value("cells_off") == len(off)
    for i in off:
        assert any(world.is_active(j) for j in world.neighbours(i))


async def test_with_mlb_conflicts_are_detected_and_resolved() -> None:
    """On seeds/stadium.toml the crowd arrives as energysaver starts switching the macro
    layer off: mlb steers UEs (by CIO) into a cell energysaver then evacuates or switches
    off, or both set the same relation's CIO; the arbiter refuses the later control
    (first-wins), both xApps hear of it, and every control ends in exactly one outcome."""
    result = await run_scenario(
        "seeds/stadium.toml", [LoadBalancer, EnergySaver], duration_s=65.0, seed=3
    )
    refused = [c for c in result.controls if c.kind is OutcomeKind.CONFLICT]
    assert refused
    for record in refused:
        conflict = record.outcome.conflict
        assert conflict is not None
        assert {conflict.first_xapp, conflict.second_xapp} == {"mlb", "energysaver"}
        assert conflict.parameter in ("active", "cellIndividualOffset")
        assert conflict.winner == conflict.first_xapp != record.xapp
        kinds = {type(conflict.first), type(conflict.second)}
        if conflict.parameter == "active":
            assert kinds & {Handover, CellIndividualOffset}
            assert kinds & {CellState, CellAdministration}
        else:
            assert kinds == {CellIndividualOffset}
    for name in ("mlb", "energysaver"):
        app = result.xapps[name]
        assert len(app.outcomes) == len(result.outcomes(name))  # type: ignore[attr-defined]
    ids = [c.outcome.request_id for c in result.controls if c.outcome.request_id is not None]
    assert len(ids) == len(set(ids))
