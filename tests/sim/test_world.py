"""Tests of the simulated world in ric.sim.world: determinism, controls and measurements."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ric.actions import AdministrativeState
from ric.ids import CellId, SliceId
from ric.sim import Scenario, SimControlError, World, load_scenario, parse_scenario

from .conftest import SEEDS

CELL_METRICS = [
    "RRU.PrbUsedDl",
    "RRU.PrbAvailDl",
    "RRU.PrbTotDl",
    "DRB.UEThpDl",
    "DRB.UEThpUl",
    "RRC.ConnMean",
    "DRB.RlcSduDelayDl",
]
UE_METRICS = [
    "DRB.UEThpDl",
    "DRB.UEThpUl",
    "RRU.PrbUsedDl",
    "DRB.RlcSduDelayDl",
    "L1M.RSRP",
    "L1M.SINR",
]
SLICE_METRICS = [
    "RRU.PrbUsedDl",
    "RRU.PrbTotDl",
    "DRB.UEThpDl",
    "RRC.ConnMean",
    "DRB.RlcSduDelayDl",
]
TICK_S = 0.1


@pytest.fixture(scope="module")
def demo() -> Scenario:
    """The demo scenario: nine cells, sixty UEs, one overloaded cell."""
    return load_scenario(SEEDS / "demo.toml")


def _fixed(scenario: Scenario) -> Scenario:
    """``scenario`` with RAN mobility off, so only controls move UEs between cells."""
    return scenario.model_copy(update={"ran": scenario.ran.model_copy(update={"mobility": "none"})})


def _steps(world: World, n: int) -> None:
    for _ in range(n):
        world.step(TICK_S)


def _handover_candidate(world: World) -> tuple[int, int, int]:
    """(UE id, source cell, target cell) of a UE another active cell could take, with a
    usable SINR there (so the handover executes instead of failing)."""
    rsrp = world.rsrp_dbm
    qout = world.scenario.radio.rlf_sinr_db
    for u, src in enumerate(world.serving.tolist()):
        if src < 0:
            continue
        for t in world.neighbours(src):
            if rsrp[u, t] > -105.0 and world.sinr_db[u, t] > qout + 2.0:
                return u + 1, src, t
    raise AssertionError("no handover candidate in this world")


def _run(scenario: Scenario, seed: int, *, handover: bool) -> tuple[np.ndarray, np.ndarray]:
    world = World(scenario, seed=seed)
    since = world.snapshot()
    _steps(world, 10)
    if handover:
        ue, _src, target = _handover_candidate(world)
        world.handover(ue, world.cell_ids[target])
    _steps(world, 20)
    cells = world.cell_matrix(since, range(world.n_cells), CELL_METRICS)
    ues = world.ue_matrix(since, np.arange(world.n_ues), UE_METRICS)
    return cells, ues


def test_same_seed_and_controls_give_identical_measurements(small: Scenario) -> None:
    """Two worlds with one seed and the same controls measure exactly the same; seeds differ."""
    a_cells, a_ues = _run(small, 3, handover=True)
    b_cells, b_ues = _run(small, 3, handover=True)
    np.testing.assert_array_equal(a_cells, b_cells)
    np.testing.assert_array_equal(a_ues, b_ues)
    c_cells, _ = _run(small, 4, handover=True)
    assert not np.array_equal(a_cells, c_cells, equal_nan=True)


def test_handover_moves_the_ue_and_shows_in_measurements(demo: Scenario) -> None:
    """A handover changes the UE's serving cell, and UE and cell measurements follow it."""
    world = World(_fixed(demo))
    twin = World(_fixed(demo))
    _steps(world, 5)
    _steps(twin, 5)
    ue, src, target = _handover_candidate(world)
    assert world.handover(ue, world.cell_ids[target]) == src
    assert world.serving_cell(ue) == world.cell_ids[target]
    since, twin_since = world.snapshot(), twin.snapshot()
    _steps(world, 10)
    _steps(twin, 10)
    assert ue - 1 in world.ues_in_cells([target]).tolist()
    assert ue - 1 not in world.ues_in_cells([src]).tolist()
    conn = CELL_METRICS.index("RRC.ConnMean")
    moved = world.cell_matrix(since, [src, target], CELL_METRICS)[:, conn]
    stayed = twin.cell_matrix(twin_since, [src, target], CELL_METRICS)[:, conn]
    np.testing.assert_allclose(moved - stayed, [-1.0, 1.0])
    rsrp = world.ue_matrix(since, [ue - 1], ["L1M.RSRP"])[0, 0]
    twin_rsrp = twin.ue_matrix(twin_since, [ue - 1], ["L1M.RSRP"])[0, 0]
    assert rsrp != twin_rsrp


def test_handover_refusals_say_why() -> None:
    """Handover to an unknown, switched-off or too-weak cell is refused with a reason."""
    far: dict[str, Any] = {
        "nodes": [
            {"id": 1, "vendor": "acme", "position_m": [0.0, 0.0], "sectors": 1},
            {"id": 2, "vendor": "initech", "position_m": [20000.0, 0.0], "sectors": 1},
            {"id": 3, "vendor": "globex", "position_m": [100.0, 0.0], "sectors": 1},
        ],
        "ue_groups": [{"count": 3, "hotspot": {"center_m": [0.0, 0.0], "radius_m": 20.0}}],
        "area": {"x_m": [-100.0, 100.0], "y_m": [-100.0, 100.0]},
    }
    world = World(parse_scenario(far))
    near, remote, other = world.cell_ids
    assert world.serving_cell(1) in (near, other)
    with pytest.raises(SimControlError, match="below"):
        world.handover(1, remote)
    with pytest.raises(SimControlError, match="unknown cell"):
        world.handover(1, CellId(world.plmn, 999))
    with pytest.raises(SimControlError, match="unknown UE"):
        world.handover(99, near)
    world.set_cell_state(other, active=False)
    with pytest.raises(SimControlError, match="switched off"):
        world.handover(1, other)


def test_cell_off_moves_its_ues_and_removes_its_interference(demo: Scenario) -> None:
    """Switching a cell off hands its UEs to active cells and raises everyone else's SINR."""
    world, twin = World(demo), World(demo)
    _steps(world, 5)
    _steps(twin, 5)
    off = 0
    victims = world.ues_in_cells([off]).tolist()
    assert victims
    # The twin gets a control that changes nothing, so its radio state is refreshed alike.
    twin.set_cell_state(twin.cell_ids[off], tx_power_dbm=twin.cell_info(off).tx_power_dbm)
    before = twin.sinr_db
    moved = world.set_cell_state(world.cell_ids[off], active=False)
    assert sorted(moved) == [u + 1 for u in victims]
    assert not world.is_active(off)
    assert off not in world.serving.tolist()
    new_cells = world.serving[victims]
    assert np.all(new_cells[new_cells >= 0] != off)
    # A UE is dropped only when no active cell reaches it at the minimum RSRP.
    dropped = [u for u, c in zip(victims, new_cells.tolist(), strict=True) if c < 0]
    assert len(dropped) < len(victims) / 2
    for u in dropped:
        assert world.rsrp_dbm[u].max() < demo.radio.min_rsrp_dbm
    assert np.all(np.isneginf(world.rsrp_dbm[:, off]))
    others = [c for c in range(world.n_cells) if c != off]
    gain = world.sinr_db[:, others] - before[:, others]
    assert np.all(gain >= -1e-9)
    assert np.any(gain > 0.1)
    since = world.snapshot()
    _steps(world, 5)
    row = world.cell_matrix(since, [off], ["RRU.PrbAvailDl", "RRU.PrbUsedDl", "RRC.ConnMean"])[0]
    np.testing.assert_array_equal(row, [0.0, 0.0, 0.0])
    world.set_cell_state(world.cell_ids[off], active=True)
    assert world.cell_info(off).active


def test_tx_power_shifts_rsrp(small: Scenario) -> None:
    """Lowering a cell's transmit power by 10 dB lowers its RSRP at every UE by 10 dB."""
    world = World(small)
    before = world.rsrp_dbm[:, 0].copy()
    world.set_cell_state(world.cell_ids[0], tx_power_dbm=33.0)
    np.testing.assert_allclose(world.rsrp_dbm[:, 0], before - 10.0)
    assert world.cell_info(0).tx_power_dbm == 33.0
    with pytest.raises(SimControlError, match="transmit power"):
        world.set_cell_state(world.cell_ids[0], tx_power_dbm=80.0)


def test_slice_quota_changes_slice_prb_shares(demo: Scenario) -> None:
    """Capping the eMBB slice of the overloaded cell caps its PRBs and frees some for others."""
    world = World(demo)
    _steps(world, 20)
    cell, embb = 0, 0
    since = world.snapshot()
    _steps(world, 20)
    before = world.slice_matrix(since, [cell], [0, 1, 2], ["RRU.PrbUsedDl"])[:, 0]
    world.set_slice_quota(
        world.cell_ids[cell], SliceId(1, "000001"), min_pct=0, max_pct=30, dedicated_pct=0
    )
    assert world.slice_quota(cell, embb) == (0, 30, 0)
    since = world.snapshot()
    for _ in range(20):
        world.step(TICK_S)
        assert world.slice_prb_dl[cell, embb] <= 0.30 * 106 + 1e-9
    after = world.slice_matrix(since, [cell], [0, 1, 2], ["RRU.PrbUsedDl"])[:, 0]
    assert before[embb] > 0.5 * 106, "the eMBB slice should have been using most of the cell"
    assert after[embb] <= 0.30 * 106 + 1e-9


@pytest.mark.parametrize(
    ("quota", "fragment"),
    [
        ((50, 20, 0), "dedicated <= min <= max"),
        ((0, 120, 0), "0..100"),
        ((20, 30, 25), "dedicated <= min <= max"),
        ((95, 100, 0), "add up to 105"),
    ],
)
def test_slice_quota_refuses_bad_ratios(
    demo: Scenario, quota: tuple[int, int, int], fragment: str
) -> None:
    """Out-of-range or inconsistent PRB ratios are refused and change nothing."""
    world = World(demo)
    lo, hi, ded = quota
    with pytest.raises(SimControlError, match=fragment):
        world.set_slice_quota(
            world.cell_ids[0], SliceId(1, "000001"), min_pct=lo, max_pct=hi, dedicated_pct=ded
        )
    assert world.slice_quota(0, 0) == (0, 100, 0)
    with pytest.raises(SimControlError, match="unknown slice"):
        world.set_slice_quota(
            world.cell_ids[0], SliceId(7), min_pct=0, max_pct=100, dedicated_pct=0
        )


def test_measurements_are_sane_and_consistent(demo: Scenario) -> None:
    """PRBs used stay within available, rates are non-negative, and the levels agree."""
    world = World(demo)
    _steps(world, 10)
    since = world.snapshot()
    serving_then = world.serving.copy()
    _steps(world, 30)
    cells = range(world.n_cells)
    m = world.cell_matrix(since, cells, CELL_METRICS)
    used, avail, tot, thp_dl, thp_ul, conn, delay = m.T
    assert np.all(used <= avail + 1e-9)
    np.testing.assert_array_equal(avail, 106.0)
    assert np.all((tot >= 0.0) & (tot <= 100.0))
    assert np.all(thp_dl[conn > 0] >= 0.0)
    assert np.all(thp_ul[conn > 0] >= 0.0)
    assert conn.sum() == pytest.approx(world.n_ues, abs=1.0)
    assert np.all(delay[conn > 0] >= 10 * 0.5)  # 0.1 ms units, at least URLLC's 0.5 ms base
    assert np.any(tot > 90.0), "the demo hotspot cell should be overloaded"

    per_slice = world.slice_matrix(since, cells, range(world.n_slices), SLICE_METRICS)
    slice_used = per_slice[:, 0].reshape(world.n_cells, world.n_slices).sum(axis=1)
    np.testing.assert_allclose(slice_used, used)
    slice_conn = per_slice[:, 3].reshape(world.n_cells, world.n_slices).sum(axis=1)
    np.testing.assert_allclose(slice_conn, conn)

    ues = world.ue_matrix(since, np.arange(world.n_ues), UE_METRICS)
    thp, _ul, prb, _delay, rsrp, sinr = ues.T
    assert np.all(thp >= 0.0)
    assert np.all(prb >= 0.0)
    assert np.all((rsrp > -140.0) & (rsrp < -30.0))
    assert np.all((sinr > -30.0) & (sinr < 60.0))
    # Cell throughput (kbit/s, mean over UE-seconds) times mean UEs is the sum of its UEs'
    # throughputs, in every cell whose UEs stayed the same over the period.
    same = [
        c
        for c in cells
        if np.array_equal(np.flatnonzero(serving_then == c), np.flatnonzero(world.serving == c))
    ]
    assert same
    per_cell = np.bincount(
        world.serving[world.serving >= 0], thp[world.serving >= 0], world.n_cells
    )
    np.testing.assert_allclose((np.nan_to_num(thp_dl) * conn)[same], per_cell[same], rtol=1e-9)


def test_step_refuses_non_positive_time(small: Scenario) -> None:
    """step() needs a positive, finite number of seconds."""
    world = World(small)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="dt_s"):
            world.step(bad)


NEIGHBOUR_METRICS = [name for k in (1, 2, 3) for name in (f"L1M.RSRP.Nbr{k}", f"L1M.Nbr{k}.Nci")]


def _expected_neighbours(world: World, ue: int) -> list[tuple[int, float]]:
    """(cell, RSRP) of the active cells other than the UE's serving one, strongest first."""
    rsrp = world.rsrp_dbm[ue]
    others = [
        (c, float(rsrp[c]))
        for c in range(world.n_cells)
        if c != world.serving[ue] and world.active[c]
    ]
    return sorted(others, key=lambda x: -x[1])[:3]


def test_neighbour_measurements_are_the_strongest_other_active_cells(demo: Scenario) -> None:
    """Each UE reports its k-th strongest active non-serving cell now, as RSRP and an NR cell
    identity that decodes to that cell of the world; a cell switched off is never reported."""
    world = World(demo, seed=5)
    _steps(world, 5)
    strongest = int(np.bincount(world.serving[world.serving >= 0]).argmax())
    world.set_cell_state(world.cell_ids[(strongest + 1) % world.n_cells], active=False)
    off = (strongest + 1) % world.n_cells
    _steps(world, 5)
    since = world.snapshot()
    _steps(world, 10)
    ues = np.arange(world.n_ues)
    values = world.ue_matrix(since, ues, NEIGHBOUR_METRICS)
    for ue in ues.tolist():
        expected = _expected_neighbours(world, ue)
        assert len(expected) == 3
        for k, (_cell, rsrp) in enumerate(expected):
            assert values[ue, 2 * k] == rsrp
            nci = values[ue, 2 * k + 1]
            assert nci == int(nci)
            cell_id = CellId(world.plmn, int(nci))
            cell = world.cell_index(cell_id)
            assert cell is not None and cell != off  # sectors may tie: any cell of that RSRP
            assert world.rsrp_dbm[ue, cell] == rsrp
            assert cell_id != world.serving_cell(ue + 1)


def test_neighbour_measurements_are_taken_now_not_averaged(demo: Scenario) -> None:
    """The neighbour measurements are the same whatever the period start, and follow the UE:
    after a handover its old serving cell may be reported, its new one is not."""
    world = World(demo, seed=2)
    first = world.snapshot()
    _steps(world, 10)
    second = world.snapshot()
    _steps(world, 3)
    ues = np.arange(world.n_ues)
    a = world.ue_matrix(first, ues, NEIGHBOUR_METRICS)
    b = world.ue_matrix(second, ues, NEIGHBOUR_METRICS)
    np.testing.assert_array_equal(a, b)
    ue, _src, target = _handover_candidate(world)
    world.handover(ue, world.cell_ids[target])
    after = world.ue_matrix(second, [ue - 1], NEIGHBOUR_METRICS)[0]
    assert world.cell_ids[target].nci not in {int(x) for x in after[1::2]}
    assert list(after[::2]) == [r for _, r in _expected_neighbours(world, ue - 1)]


def test_neighbour_measurements_are_nan_when_there_is_no_such_neighbour() -> None:
    """With two cells a UE has one neighbour: ranks 2 and 3 are NaN, and with that neighbour
    switched off so is rank 1; averaged metrics stay as they were."""
    pair: dict[str, Any] = {
        "nodes": [{"id": 1, "vendor": "acme", "position_m": [0.0, 0.0], "sectors": 2}],
        "ue_groups": [{"count": 4, "hotspot": {"center_m": [0.0, 50.0], "radius_m": 30.0}}],
    }
    scenario = parse_scenario(pair)
    world = World(scenario, seed=1)
    since = world.snapshot()
    _steps(world, 2)
    names = ["L1M.RSRP", *NEIGHBOUR_METRICS]
    values = world.ue_matrix(since, np.arange(4), names)
    assert np.isfinite(values[:, :3]).all()
    assert np.isnan(values[:, 3:]).all()
    other = world.cell_ids[1 - int(world.serving[0])]
    world.set_cell_state(other, active=False)
    values = world.ue_matrix(since, np.arange(4), names)
    assert np.isfinite(values[:, 0]).all()
    assert np.isnan(values[:, 1:]).all()
    cells, rsrp = world.strongest_neighbours([])
    assert cells.shape == rsrp.shape == (0, 3)


def test_cells_below_the_reporting_range_are_not_neighbours() -> None:
    """A cell 20 km away, heard below -156 dBm (the bottom of the RSRP reporting range), is
    not reported as a neighbour even when it is the only other cell."""
    far: dict[str, Any] = {
        "nodes": [
            {"id": 1, "vendor": "acme", "position_m": [0.0, 0.0], "sectors": 1},
            {"id": 2, "vendor": "acme", "position_m": [20000.0, 0.0], "sectors": 1},
        ],
        "ue_groups": [{"count": 3, "hotspot": {"center_m": [0.0, 0.0], "radius_m": 20.0}}],
        "area": {"x_m": [-100.0, 100.0], "y_m": [-100.0, 100.0]},
    }
    world = World(parse_scenario(far))
    assert (world.rsrp_dbm[:, 1] < -156.0).all()
    cells, rsrp = world.strongest_neighbours(np.arange(3))
    assert (cells == -1).all()
    assert np.isnan(rsrp).all()


def _busiest(world: World) -> int:
    served = world.serving[world.serving >= 0]
    return int(np.bincount(served, minlength=world.n_cells).argmax())


def test_shutting_down_hands_the_ues_out_before_the_cell_switches_off(demo: Scenario) -> None:
    """administrativeState SHUTTING_DOWN: the cell keeps transmitting while it hands its UEs
    to neighbours (cell_off handovers, none dropped where a neighbour covers them), admits no
    new UE meanwhile, then switches off and becomes LOCKED."""
    world = World(demo, seed=3)
    _steps(world, 5)
    c = _busiest(world)
    cell = world.cell_ids[c]
    victims = world.ues_in_cells([c])
    assert len(victims)
    state = world.configure_cell(cell, administrative_state=AdministrativeState.SHUTTING_DOWN)
    assert state in ("shutting_down", "off")
    report = world.mobility_report()
    handed = report.handovers.count("cell_off")
    assert handed > 0
    assert world.is_active(c) or handed == len(victims)
    with pytest.raises(SimControlError, match=r"shutting down|switched off"):
        world.handover(int(world.ue_ids[world.serving != c][0]), cell)
    for _ in range(round(demo.ran.cell_shutdown_timeout_s / TICK_S) + 1):
        world.step(TICK_S)
    assert world.cell_state(c) == "off" and not world.is_active(c)
    assert world.administrative_state(c) is AdministrativeState.LOCKED
    assert c not in world.serving.tolist()
    report = world.mobility_report()
    covered = [u for u in victims.tolist() if world.rsrp_dbm[u].max() >= demo.radio.min_rsrp_dbm]
    assert report.handovers.count("cell_off") + report.dropped >= len(victims)
    assert report.dropped <= len(victims) - len(covered) + 1


def test_locked_switches_off_at_once_and_drops_the_ues(demo: Scenario) -> None:
    """administrativeState LOCKED takes the cell out at once: its UEs are dropped (counted,
    as radio link failures) and re-establish on other cells after the re-establishment time."""
    world = World(demo, seed=3)
    _steps(world, 5)
    c = _busiest(world)
    victims = world.ues_in_cells([c])
    world.configure_cell(world.cell_ids[c], administrative_state=AdministrativeState.LOCKED)
    assert world.cell_state(c) == "off" and not world.is_active(c)
    report = world.mobility_report()
    assert report.dropped == len(victims) and report.rlf >= len(victims)
    assert report.handovers.count("cell_off") == 0
    _steps(world, 5)
    back = world.serving[victims]
    assert np.all(back != c) and np.any(back >= 0)


def test_a_sleeping_cell_wakes_up_only_after_the_wakeup_time(demo: Scenario) -> None:
    """A cell switched on from energy saving is powered but serves no one (and no one may be
    handed to it) for ran.cell_wakeup_s, then transmits again."""
    slow = demo.model_copy(update={"ran": demo.ran.model_copy(update={"cell_wakeup_s": 2.0})})
    world = World(slow, seed=3)
    _steps(world, 2)
    c = 0
    cell = world.cell_ids[c]
    world.set_cell_state(cell, active=False)
    assert world.energy_saving(c) and not world.powered[c]
    assert world.configure_cell(cell, energy_saving=False) == "waking"
    changes = world.cell_changes
    for _ in range(19):
        world.step(TICK_S)
        assert world.cell_state(c) == "waking"
        assert world.powered[c] and not world.is_active(c)
        assert np.all(np.isneginf(world.rsrp_dbm[:, c]))
        assert c not in world.serving.tolist()
    with pytest.raises(SimControlError, match="waking up"):
        world.handover(1, cell)
    _steps(world, 2)
    assert world.cell_state(c) == "active" and world.is_active(c)
    assert world.cell_changes > changes
    # Back to energy saving before the end of a wake-up: it goes back to sleep at once.
    world.set_cell_state(cell, active=False)
    world.configure_cell(cell, energy_saving=False)
    assert world.configure_cell(cell, energy_saving=True) == "off"


def test_cio_is_refused_outside_q_offset_range_and_on_unknown_relations(demo: Scenario) -> None:
    """A CIO must be a Q-OffsetRange value on one of the cell's neighbour relations."""
    world = World(demo)
    a = world.cell_ids[0]
    nbr = world.cell_ids[world.neighbours(0)[0]]
    world.set_cio(a, nbr, -24)
    assert world.cio(a, nbr) == -24.0
    with pytest.raises(SimControlError, match="not a Q-OffsetRange value"):
        world.set_cio(a, nbr, 7)
    with pytest.raises(SimControlError, match="unknown cell"):
        world.set_cio(a, CellId(world.plmn, 999), 2)
    strangers = [c for c in range(world.n_cells) if c and c not in world.neighbours(0)]
    if strangers:
        with pytest.raises(SimControlError, match="no neighbour relation"):
            world.set_cio(a, world.cell_ids[strangers[0]], 2)
