"""The simulated radio world: sites, cells, slices, moving UEs, and what they measure.

Columnar by design: every per-UE quantity is a numpy array indexed by UE index (RAN UE id
minus one), every per-cell quantity an array indexed by cell index; the step loop never
iterates over UEs in Python. The world is synchronous and deterministic: :meth:`World.step`
advances it by ``dt_s`` seconds, so it runs as well on a real-time tick as on a virtual clock,
and the same seed with the same controls at the same times gives the same measurements.

One step:

1. UEs move (random waypoint inside their group's area or hotspot); shadowing decorrelates
   with the distance moved; traffic demand follows each UE group's traffic model
   (:mod:`ric.sim.traffic`: log-normal AR(1), CBR, Poisson bursts into a buffer, full buffer);
2. radio: coupling loss UE-to-cell (path loss, sector antenna, shadowing), RSRP, and SINR
   with interference from the other *active* co-channel cells, weighted by their PRB load;
   scenario events active at the step's start (``at_s <= t < until_s``) apply here: a SINR
   degradation lowers every UE's SINR on its cell, a traffic surge multiplies demand;
3. connections (:mod:`ric.sim.mobility`): radio link monitoring (T310 while the serving SINR
   is below Qout), the RAN's own A3 handovers (``[ran] mobility = "a3"``, the default) with
   their interruption time and failures, re-establishment after a radio link failure; UEs
   out of sync, failed or in a handover gap carry no traffic for that share of the step;
   idle UEs attach to the best active cell;
4. scheduling: each cell's PRBs are shared between slices under their quotas, then between
   the slice's UEs by the scenario's scheduler (:mod:`ric.sim.scheduler`: proportional fair,
   round robin, or in proportion to need); throughput = PRBs x per-PRB rate, never more than
   the demand; URLLC and other delays grow with the slice's load;
5. the time-integrals behind every measurement grow by value x dt.

Measurements over any period are the difference of two :class:`Snapshot` of the integrals,
see :mod:`ric.sim.metrics`; the UEs' neighbour measurements are taken from the present state
instead (:meth:`World.strongest_neighbours`), as a UE's measurement report would give them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import numpy as np
import numpy.typing as npt

from ric.actions import Q_OFFSET_RANGE_DB, AdministrativeState
from ric.ids import CellId, Plmn, SliceId
from ric.model import CellInfo
from ric.sim import metrics as _m
from ric.sim.metrics import CellCol, SliceCol, UeCol
from ric.sim.mobility import HO_CELL_OFF, HO_XAPP, Mobility, MobilityReport
from ric.sim.radio import (
    BANDS,
    bearing_deg,
    noise_per_re_dbm,
    path_loss_db,
    prb_rate_kbps,
    queue_delay_ms,
    sector_gain_db,
    share_prbs,
    spectral_efficiency,
)
from ric.sim.scenario import AreaSpec, EventSpec, Scenario, SinrDegradation
from ric.sim.scheduler import Scheduler
from ric.sim.traffic import Traffic

__all__ = ["CELL_STATES", "NodeLayout", "SimControlError", "Snapshot", "World"]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

OMNI_GAIN_DBI: Final = 5.0
"""Gain of a single-sector (omni) site antenna, dBi."""
UL_ALLOC_PRB: Final = 10.0
"""PRBs a UE's uplink power is assumed spread over, for its per-PRB uplink SNR."""
UL_IOT_DB: Final = 3.0
"""Uplink interference over thermal, dB."""
HARQ_DELAY_MS: Final = 1.0
"""Extra delay at 0 dB SINR from HARQ retransmissions, ms; it fades as SINR grows."""
NEIGHBOUR_MARGIN_DB: Final = 6.0
"""Two cells are neighbours when somewhere one is best and the other within this margin."""
MAX_NEIGHBOURS: Final = 16
DEFAULT_MARGIN_M: Final = 250.0
"""How far the default UE area reaches beyond the outermost sites, metres."""
MAX_TX_POWER_DBM: Final = 49.0
MIN_HEARD_RSRP_DBM: Final = -156.0
"""Weakest RSRP a UE measures and reports, dBm (the bottom of the TS 38.133 reporting range)."""


CELL_ACTIVE: Final = 0
CELL_SHUTTING_DOWN: Final = 1
CELL_OFF: Final = 2
CELL_WAKING: Final = 3
CELL_STATES: Final = ("active", "shutting_down", "off", "waking")
"""A cell's state, by its number: serving; serving its UEs but admitting none and handing them
out; off (asleep or locked); waking up (powered, not serving yet). See
:meth:`World.configure_cell`."""
_STATE_TEXT: Final = (
    "active",
    "shutting down (it admits no UE)",
    "switched off",
    "waking up (it serves no UE yet)",
)


SHUTDOWN_RAMP_DB: Final = 20.0
"""How far a cell shutting down lowers its transmit power, linearly over
``ran.cell_shutdown_timeout_s``, so that its UEs' own A3 events hand them out and its
interference fades (a gradual switch-off; the ramp's depth is this model's choice)."""


class SimControlError(ValueError):
    """The world refuses a control (unknown target, cell off, weak signal, bad quota)."""


@dataclass(frozen=True, slots=True)
class NodeLayout:
    """A node of the world: its id, vendor profile name and cell indices."""

    node_id: int
    vendor: str
    cells: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The world's measurement integrals at one instant (read-only arrays)."""

    time_s: float
    time_us: int
    """The same instant in integer microseconds, the time base of the integrals."""
    cell: FloatArray
    """cells x :class:`~ric.sim.metrics.CellCol`."""
    ue: FloatArray
    """UEs x :class:`~ric.sim.metrics.UeCol`."""
    slice: FloatArray
    """cells x slices x :class:`~ric.sim.metrics.SliceCol`."""


_Array = TypeVar("_Array", bound="np.ndarray[Any, Any]")


def _ro(arr: _Array) -> _Array:
    """A read-only view of ``arr``."""
    view = arr.view()
    view.flags.writeable = False
    return view


class World:
    """A scenario's radio network, steppable with :meth:`step` and controllable.

    Cells are indexed in scenario order (node by node, sector by sector), slices in scenario
    order, UEs by RAN UE id minus one (ids run from 1, group by group).
    """

    def __init__(self, scenario: Scenario, *, seed: int | None = None) -> None:
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        self._rng = np.random.default_rng(self.seed)
        self._radio = scenario.radio
        self._ran = scenario.ran
        self.plmn = Plmn(scenario.plmn.mcc, scenario.plmn.mnc)
        self._time_us = 0
        self._build_cells()
        self._build_slices()
        self._build_ues()
        self._build_events()
        self._load = np.where(self._active, 0.5, 0.0)  # PRB utilisation 0..1, last step
        self._acc_cell = np.zeros((self.n_cells, CellCol.COUNT))
        self._acc_ue = np.zeros((self.n_ues, UeCol.COUNT))
        self._acc_slice = np.zeros((self.n_cells, self.n_slices, SliceCol.COUNT))
        self._snapshot: Snapshot | None = None
        self._zero_instant()
        self._refresh_radio()
        self._neighbours = self._compute_neighbours()
        self._serving = np.full(self.n_ues, -1, dtype=np.int64)
        nbr = np.zeros((self.n_cells, self.n_cells), dtype=np.bool_)
        for c, others in enumerate(self._neighbours):
            nbr[c, list(others)] = True
        self._mobility = Mobility(scenario, self.cell_text, nbr)
        self._air = np.ones(self.n_ues)
        self._attach(np.arange(self.n_ues))

    # ---------------------------------------------------------------- construction

    def _build_cells(self) -> None:
        sc = self.scenario
        cell_ids: list[CellId] = []
        site: list[int] = []
        x: list[float] = []
        y: list[float] = []
        az: list[float] = []
        sectorised: list[bool] = []
        band: list[int] = []
        prbs: list[int] = []
        tx: list[float] = []
        height: list[float] = []
        pci: list[int] = []
        nodes: dict[int, NodeLayout] = {}
        for s, node in enumerate(sc.nodes):
            idx: list[int] = []
            for k in range(node.sectors):
                idx.append(len(cell_ids))
                cell_ids.append(CellId(self.plmn, node.id * 4096 + k + 1))
                site.append(s)
                x.append(node.position_m[0])
                y.append(node.position_m[1])
                az.append((node.azimuth_deg + k * 360.0 / node.sectors) % 360.0)
                sectorised.append(node.sectors > 1)
                band.append(node.band)
                prbs.append(node.bandwidth_prbs)
                tx.append(node.tx_power_dbm)
                height.append(node.height_m)
                pci.append((3 * node.id + k) % 1008)
            nodes[node.id] = NodeLayout(node.id, node.vendor, tuple(idx))
        self.nodes: dict[int, NodeLayout] = nodes
        """Nodes by node id."""
        self.cell_ids: tuple[CellId, ...] = tuple(cell_ids)
        self.cell_text: tuple[str, ...] = tuple(str(c) for c in cell_ids)
        """Cell ids in text form, by cell index."""
        self._cell_index = {c: i for i, c in enumerate(cell_ids)}
        self._nci = np.array([float(c.nci) for c in cell_ids], dtype=np.float64)
        self.n_cells = len(cell_ids)
        self.n_sites = len(sc.nodes)
        self._site = np.array(site, dtype=np.int64)
        self._site_xy_m = np.array([n.position_m for n in sc.nodes], dtype=np.float64)
        self._cx_m = np.array(x)
        self._cy_m = np.array(y)
        self._az_deg = np.array(az)
        self._sectorised = np.array(sectorised)
        self._band = np.array(band, dtype=np.int64)
        self._n_prb = np.array(prbs, dtype=np.float64)  # PRBs per cell
        self._tx_dbm = np.array(tx)
        self._h_bs_m = np.array(height)
        self._pci = pci
        self._active = np.ones(self.n_cells, dtype=np.bool_)
        """Whether each cell transmits (CELL_ACTIVE or CELL_SHUTTING_DOWN)."""
        self._state = np.full(self.n_cells, CELL_ACTIVE, dtype=np.int64)
        self._admin = [AdministrativeState.UNLOCKED] * self.n_cells
        self._es = np.zeros(self.n_cells, dtype=np.bool_)
        self._state_until_us = np.zeros(self.n_cells, dtype=np.int64)
        self._ramp_db = np.zeros(self.n_cells)  # transmit power ramp-down while shutting down
        self.cell_changes = 0
        """Counts every cell state change (on, off, shutting down, waking), so that a node
        can tell cheaply when to announce its cells again."""
        bands = [BANDS[b] for b in band]
        self._freq_ghz = np.array([b.centre_ghz for b in bands])
        self._scs_khz = np.array([float(b.scs_khz) for b in bands])
        self._dl_share = np.array([b.dl_share for b in bands])
        self._ul_share = np.array([b.ul_share for b in bands])
        self._re_per_cell_db = 10.0 * np.log10(12.0 * self._n_prb)
        self._noise_dl_mw = 10.0 ** (
            noise_per_re_dbm(self._scs_khz, self._radio.ue_noise_figure_db) / 10.0
        )
        self._noise_ul_dbm = noise_per_re_dbm(self._scs_khz, self._radio.bs_noise_figure_db)
        same_band = self._band[:, None] == self._band[None, :]
        self._co_channel = same_band & ~np.eye(self.n_cells, dtype=np.bool_)

    def _build_slices(self) -> None:
        specs = self.scenario.slices
        self.slice_ids: tuple[SliceId, ...] = tuple(s.slice_id for s in specs)
        self.slice_text: tuple[str, ...] = tuple(str(s) for s in self.slice_ids)
        """Slice ids in text form, by slice index."""
        self._slice_index = {s: i for i, s in enumerate(self.slice_ids)}
        self.n_slices = len(specs)
        shape = (self.n_cells, self.n_slices)
        self._min_pct = np.broadcast_to(np.array([s.min_pct for s in specs], float), shape).copy()
        self._max_pct = np.broadcast_to(np.array([s.max_pct for s in specs], float), shape).copy()
        self._ded_pct = np.broadcast_to(
            np.array([s.dedicated_pct for s in specs], float), shape
        ).copy()
        self._base_delay_ms = np.array([s.traffic()[2] for s in specs])

    def _default_area(self) -> AreaSpec:
        if self.scenario.area is not None:
            return self.scenario.area
        xy = self._site_xy_m
        lo = xy.min(axis=0) - DEFAULT_MARGIN_M
        hi = xy.max(axis=0) + DEFAULT_MARGIN_M
        return AreaSpec(x_m=(float(lo[0]), float(hi[0])), y_m=(float(lo[1]), float(hi[1])))

    def _build_ues(self) -> None:
        sc = self.scenario
        slice_traffic = {s.id: s.traffic() for s in sc.slices}
        default_area = self._default_area()
        kind: list[int] = []
        region: list[tuple[float, float, float, float]] = []
        speed: list[tuple[float, float]] = []
        ue_slice: list[int] = []
        dl: list[float] = []
        ul: list[float] = []
        group: list[int] = []
        for g, spec in enumerate(sc.ue_groups):
            if spec.hotspot is not None:
                k, reg = 1, (*spec.hotspot.center_m, spec.hotspot.radius_m, 0.0)
            else:
                area = spec.area or default_area
                k, reg = 0, (*area.x_m, *area.y_m)
            s_dl, s_ul, _ = slice_traffic[spec.slice]
            sl = self._slice_index[SliceId.parse(spec.slice)]
            for _ in range(spec.count):
                kind.append(k)
                region.append(reg)
                speed.append(spec.speed_mps)
                ue_slice.append(sl)
                dl.append(s_dl if spec.dl_kbps is None else spec.dl_kbps)
                ul.append(s_ul if spec.ul_kbps is None else spec.ul_kbps)
                group.append(g)
        self.n_ues = len(kind)
        n = self.n_ues
        self.ue_ids: IntArray = np.arange(1, n + 1, dtype=np.int64)
        """RAN UE ids, by UE index."""
        self.ue_text: tuple[str, ...] = tuple(str(u) for u in range(1, n + 1))
        """RAN UE ids in text form, by UE index."""
        self._ue_group = np.array(group, dtype=np.int64)
        self._reg_kind = np.array(kind, dtype=np.int64)
        # Rectangle (x0, x1, y0, y1) or disc (centre x, centre y, radius, -), metres.
        self._region = np.array(region, dtype=np.float64).reshape(n, 4)
        self._speed_range_mps = np.array(speed, dtype=np.float64).reshape(n, 2)
        self._ue_slice = np.array(ue_slice, dtype=np.int64)
        self._dl_base_kbps = np.array(dl, dtype=np.float64)
        self._ul_base_kbps = np.array(ul, dtype=np.float64)
        all_ues = np.arange(n)
        self._ux_m, self._uy_m = self._sample_points(all_ues)
        self._wx_m, self._wy_m = self._sample_points(all_ues)
        self._speed_mps = self._sample_speeds(all_ues)
        self._shadow_db = self._radio.shadowing_std_db * self._rng.standard_normal(
            (n, self.n_sites)
        )
        self._traffic = Traffic(
            sc.ue_groups,
            self._ue_group,
            self._dl_base_kbps,
            self._ul_base_kbps,
            self._radio,
            self._rng,
            self.seed,
        )
        self._surge: FloatArray | None = None
        self._demand_dl_kbps = self._traffic.dl_kbps
        self._demand_ul_kbps = self._traffic.ul_kbps
        self._scheduler = Scheduler(sc.scheduler.kind, n, sc.scheduler.pf_time_constant_ms / 1000.0)

    def _build_events(self) -> None:
        self.events: tuple[EventSpec, ...] = self.scenario.events
        """The scenario's events (faults, traffic changes), in file order; each has ``kind``,
        ``at_s`` and ``until_s`` (None: to the end) and ``active_at(t_s)``."""
        names = [g.name for g in self.scenario.ue_groups]
        # Per event: the cell index it names (or -1) and, for a group surge, its UE mask.
        self._event_cell: list[int] = []
        self._event_ues: list[BoolArray | None] = []
        for event in self.events:
            cell = -1 if event.cell is None else self.cell_text.index(event.cell)
            self._event_cell.append(cell)
            group = getattr(event, "group", None)
            if group is None:
                self._event_ues.append(None)
            else:
                groups = [g for g, name in enumerate(names) if name == group]
                self._event_ues.append(np.isin(self._ue_group, groups))
        self._sinr_offset_db = np.zeros(self.n_cells)
        self._active_events: tuple[int, ...] = ()

    def _sample_points(self, idx: IntArray) -> tuple[FloatArray, FloatArray]:
        u = self._rng.random((len(idx), 2))
        reg = self._region[idx]
        rect_x = reg[:, 0] + u[:, 0] * (reg[:, 1] - reg[:, 0])
        rect_y = reg[:, 2] + u[:, 1] * (reg[:, 3] - reg[:, 2])
        r = reg[:, 2] * np.sqrt(u[:, 0])
        theta = 2.0 * np.pi * u[:, 1]
        disc_x = reg[:, 0] + r * np.cos(theta)
        disc_y = reg[:, 1] + r * np.sin(theta)
        disc = self._reg_kind[idx] == 1
        return np.where(disc, disc_x, rect_x), np.where(disc, disc_y, rect_y)

    def _sample_speeds(self, idx: IntArray) -> FloatArray:
        lo = self._speed_range_mps[idx, 0]
        hi = self._speed_range_mps[idx, 1]
        out: FloatArray = lo + self._rng.random(len(idx)) * (hi - lo)
        return out

    def _compute_neighbours(self) -> tuple[tuple[int, ...], ...]:
        """Neighbour relations from coverage overlap on a grid, with shadowing left out."""
        area = self._default_area()
        gx, gy = np.meshgrid(np.linspace(*area.x_m, 48), np.linspace(*area.y_m, 48))
        px, py = gx.ravel(), gy.ravel()
        dx = px[:, None] - self._cx_m[None, :]
        dy = py[:, None] - self._cy_m[None, :]
        rsrp = (
            self._tx_dbm[None, :]
            - self._re_per_cell_db[None, :]
            + self._antenna_gain(dx, dy)
            - path_loss_db(np.hypot(dx, dy), self._freq_ghz, self._h_bs_m, self._radio.ue_height_m)
        )
        best = np.argmax(rsrp, axis=1)
        best_rsrp = rsrp[np.arange(len(px)), best]
        close = rsrp >= best_rsrp[:, None] - NEIGHBOUR_MARGIN_DB
        overlap = np.zeros((self.n_cells, self.n_cells))
        np.add.at(overlap, best, close.astype(np.float64))
        overlap = overlap + overlap.T
        same_site = self._site[:, None] == self._site[None, :]
        overlap[same_site] += 1.0
        np.fill_diagonal(overlap, 0.0)
        out: list[tuple[int, ...]] = []
        for i in range(self.n_cells):
            order = np.argsort(-overlap[i], kind="stable")
            out.append(tuple(int(j) for j in order[:MAX_NEIGHBOURS] if overlap[i, j] > 0.0))
        return tuple(out)

    # ---------------------------------------------------------------- radio

    def _antenna_gain(self, dx: FloatArray, dy: FloatArray) -> FloatArray:
        gain = sector_gain_db(bearing_deg(dx, dy), self._az_deg[None, :])
        out: FloatArray = np.where(self._sectorised[None, :], gain, OMNI_GAIN_DBI)
        return out

    def _refresh_radio(self) -> None:
        """Recompute coupling, RSRP and SINR (UEs x cells) from positions and cell state."""
        dx = self._ux_m[:, None] - self._cx_m[None, :]
        dy = self._uy_m[:, None] - self._cy_m[None, :]
        pl = path_loss_db(np.hypot(dx, dy), self._freq_ghz, self._h_bs_m, self._radio.ue_height_m)
        self._coupling_db = self._antenna_gain(dx, dy) - pl - self._shadow_db[:, self._site]
        rsrp = (self._tx_dbm + self._ramp_db - self._re_per_cell_db)[None, :] + self._coupling_db
        self._rsrp_dbm = np.where(self._active[None, :], rsrp, -np.inf)
        rx_mw = np.where(self._active[None, :], 10.0 ** (rsrp / 10.0), 0.0)
        weight = np.where(self._active, np.maximum(self._load, self._radio.interference_floor), 0.0)
        interference = rx_mw @ (self._co_channel * weight[:, None])
        with np.errstate(divide="ignore"):
            self._sinr_db = 10.0 * np.log10(rx_mw / (interference + self._noise_dl_mw[None, :]))
        self._sinr_db += self._sinr_offset_db[None, :]

    def _best_cells(self, ues: IntArray, candidates: IntArray | None = None) -> IntArray:
        """Best active cell by RSRP for each UE (among ``candidates``), -1 if too weak; a cell
        shutting down admits no UE."""
        rsrp = (
            self._rsrp_dbm[ues] if candidates is None else self._rsrp_dbm[np.ix_(ues, candidates)]
        )
        admits = self._state == CELL_ACTIVE
        if not admits.all():
            rsrp = np.where(admits if candidates is None else admits[candidates], rsrp, -np.inf)
        if rsrp.shape[1] == 0:
            return np.full(len(ues), -1, dtype=np.int64)
        best = np.argmax(rsrp, axis=1)
        ok = rsrp[np.arange(len(ues)), best] >= self._radio.min_rsrp_dbm
        cells = best if candidates is None else candidates[best]
        out: IntArray = np.where(ok, cells, -1).astype(np.int64)
        return out

    def _attach(self, ues: IntArray) -> None:
        if len(ues):
            self._serving[ues] = self._best_cells(ues)

    # ---------------------------------------------------------------- stepping

    @property
    def time_s(self) -> float:
        """Simulated seconds since the start."""
        return self._time_us / 1e6

    def step(self, dt_s: float) -> None:
        """Advance the world by ``dt_s`` seconds (at least 1 us)."""
        if not dt_s >= 1e-6 or not math.isfinite(dt_s):
            raise ValueError(f"dt_s must be a positive number of seconds, got {dt_s}")
        dt_us = round(dt_s * 1e6)
        moved = self._move(dt_s)
        corr = np.exp(-moved / self._radio.shadowing_decorrelation_m)[:, None]
        noise = self._rng.standard_normal(self._shadow_db.shape)
        self._shadow_db = (
            corr * self._shadow_db + np.sqrt(1.0 - corr**2) * self._radio.shadowing_std_db * noise
        )
        self._apply_events()
        self._update_demand(dt_s)
        self._refresh_radio()
        self._advance_cells()
        self._associate(dt_us)
        self._serve(dt_us)
        self._time_us += dt_us
        self._snapshot = None

    def _move(self, dt_s: float) -> FloatArray:
        """Random waypoint: move towards the waypoint; on arrival draw a new one and speed."""
        vx = self._wx_m - self._ux_m
        vy = self._wy_m - self._uy_m
        dist = np.hypot(vx, vy)
        travel = self._speed_mps * dt_s
        frac = np.ones_like(dist)
        np.divide(travel, dist, out=frac, where=dist > travel)
        self._ux_m += vx * frac
        self._uy_m += vy * frac
        arrived = np.flatnonzero(dist <= travel)
        if len(arrived):
            self._wx_m[arrived], self._wy_m[arrived] = self._sample_points(arrived)
            self._speed_mps[arrived] = self._sample_speeds(arrived)
        out: FloatArray = np.minimum(travel, dist)
        return out

    def _update_demand(self, dt_s: float) -> None:
        self._traffic.update(dt_s, self._surge)
        self._demand_dl_kbps = self._traffic.dl_kbps
        self._demand_ul_kbps = self._traffic.ul_kbps

    def _apply_events(self) -> None:
        """Set the SINR offsets and the traffic surge factors for the events active at this
        step's start (a loop over events; each one acts on whole arrays)."""
        t_s = self.time_s
        offset = np.zeros(self.n_cells)
        surge = np.ones(self.n_ues)
        active: list[int] = []
        for i, event in enumerate(self.events):
            if not event.active_at(t_s):
                continue
            active.append(i)
            cell = self._event_cell[i]
            if isinstance(event, SinrDegradation):
                offset[cell] -= event.db
                continue
            mask = self._event_ues[i]
            if mask is None:
                mask = self._serving == cell
            surge = np.where(mask, surge * event.factor, surge)
        self._sinr_offset_db = offset
        self._active_events = tuple(active)
        self._surge = surge if active else None

    def _associate(self, dt_us: int) -> None:
        self._air = self._mobility.step(
            dt_us,
            self._time_us,
            self._serving,
            self._rsrp_dbm,
            self._sinr_db,
            self._best_cells,
            barred=self._state == CELL_SHUTTING_DOWN,
        )
        idle = np.flatnonzero((self._serving < 0) & ~self._mobility.failed)
        self._attach(idle)

    def _zero_instant(self) -> None:
        n = self.n_ues
        self.ue_thp_dl_kbps = np.zeros(n)
        """Downlink throughput of each UE in the last step, kbit/s."""
        self.ue_thp_ul_kbps = np.zeros(n)
        self.ue_prb_dl = np.zeros(n)
        """Downlink PRBs of each UE in the last step."""
        self.ue_delay_ms = np.zeros(n)
        """Downlink delay (RLC SDU, HARQ included) of each UE in the last step, ms."""
        self.slice_prb_dl = np.zeros((self.n_cells, self.n_slices))
        """Downlink PRBs each slice of each cell used in the last step."""

    def _serve(self, dt_us: int) -> None:
        """Schedule one step and grow the integrals by value x ``dt_us`` (integer us, so
        integer-valued measurements such as PRBs available stay exact)."""
        n_c, n_s = self.n_cells, self.n_slices
        self._zero_instant()
        ues = np.flatnonzero(self._serving >= 0)
        cell = self._serving[ues]
        sl = self._ue_slice[ues]
        key = cell * n_s + sl
        sinr = self._sinr_db[ues, cell]
        rsrp = self._rsrp_dbm[ues, cell]
        scs = self._scs_khz[cell]
        rate_dl = prb_rate_kbps(spectral_efficiency(sinr), scs, self._dl_share[cell])
        ul_snr = (
            self._radio.ue_tx_power_dbm
            - 10.0 * math.log10(12.0 * UL_ALLOC_PRB)
            + self._coupling_db[ues, cell]
            - self._noise_ul_dbm[cell]
            - UL_IOT_DB
        )
        rate_ul = prb_rate_kbps(spectral_efficiency(ul_snr), scs, self._ul_share[cell])
        # A UE out of sync, failed or in a handover gap for part of the step has no traffic
        # scheduled for that part.
        air = self._air[ues]
        # A full-buffer UE (infinite demand) could fill its cell alone: its need is all the
        # cell's PRBs, so no UE's need is ever infinite.
        full = self._traffic.full_buffer[ues]
        cell_prb = self._n_prb[cell] * air
        need_dl = np.zeros(len(ues))
        dl = np.where(full, 0.0, self._demand_dl_kbps[ues])
        np.divide(dl * air, rate_dl, out=need_dl, where=rate_dl > 0.0)
        need_dl = np.where(full & (rate_dl > 0.0), cell_prb, need_dl)
        need_ul = np.zeros(len(ues))
        ul = np.where(full, 0.0, self._demand_ul_kbps[ues])
        np.divide(ul * air, rate_ul, out=need_ul, where=rate_ul > 0.0)
        need_ul = np.where(full & (rate_ul > 0.0), cell_prb, need_ul)

        total = self._n_prb * self._active
        need_cs = np.asarray(np.bincount(key, need_dl, n_c * n_s), dtype=np.float64).reshape(
            n_c, n_s
        )
        share = share_prbs(need_cs, total, self._min_pct, self._max_pct, self._ded_pct)
        # Inside a slice's PRBs: the scenario's scheduler; no UE gets more than its need.
        dt_s = dt_us / 1e6
        self._scheduler.follow(self._serving)
        prb_dl = self._scheduler.share(
            ues, key, need_cs.ravel(), share.used.ravel(), need_dl, rate_dl, dt_s
        )
        thp_dl = prb_dl * rate_dl

        need_ul_c = np.asarray(np.bincount(cell, need_ul, n_c), dtype=np.float64)
        frac_ul = np.ones(n_c)
        np.divide(total, need_ul_c, out=frac_ul, where=need_ul_c > total)
        prb_ul = need_ul * frac_ul[cell]
        thp_ul = prb_ul * rate_ul

        slice_delay = queue_delay_ms(self._base_delay_ms[None, :], need_cs, share.capacity)
        delay = slice_delay.ravel()[key] + HARQ_DELAY_MS / (1.0 + 10.0 ** (sinr / 10.0))

        self.ue_thp_dl_kbps[ues] = thp_dl
        self.ue_thp_ul_kbps[ues] = thp_ul
        self.ue_prb_dl[ues] = prb_dl
        self.ue_delay_ms[ues] = delay
        self.slice_prb_dl = share.used
        self._scheduler.update(self.ue_thp_dl_kbps, dt_s)
        self._traffic.served(self.ue_thp_dl_kbps, dt_s)

        used_c = share.used.sum(axis=1)
        acc = self._acc_cell
        acc[:, CellCol.PRB_DL] += used_c * dt_us
        acc[:, CellCol.PRB_AVAIL_DL] += total * dt_us
        acc[:, CellCol.PRB_UL] += np.bincount(cell, prb_ul, n_c) * dt_us
        acc[:, CellCol.PRB_AVAIL_UL] += total * dt_us
        acc[:, CellCol.CONN] += np.bincount(cell, None, n_c) * dt_us
        acc[:, CellCol.VOL_DL] += np.bincount(cell, thp_dl, n_c) * dt_us
        acc[:, CellCol.VOL_UL] += np.bincount(cell, thp_ul, n_c) * dt_us
        acc[:, CellCol.DELAY_VOL_DL] += np.bincount(cell, delay * thp_dl, n_c) * dt_us

        ue_cols = np.array(
            [
                UeCol.VOL_DL,
                UeCol.VOL_UL,
                UeCol.PRB_DL,
                UeCol.PRB_UL,
                UeCol.DELAY_VOL_DL,
                UeCol.RSRP,
                UeCol.SINR,
                UeCol.ATTACHED,
            ]
        )
        ue_vals = np.stack(
            [thp_dl, thp_ul, prb_dl, prb_ul, delay * thp_dl, rsrp, sinr, np.ones(len(ues))], axis=1
        )
        self._acc_ue[np.ix_(ues, ue_cols)] += ue_vals * dt_us

        sacc = self._acc_slice.reshape(n_c * n_s, SliceCol.COUNT)
        size = n_c * n_s
        sacc[:, SliceCol.PRB_DL] += share.used.ravel() * dt_us
        sacc[:, SliceCol.CONN] += np.bincount(key, None, size) * dt_us
        sacc[:, SliceCol.VOL_DL] += np.bincount(key, thp_dl, size) * dt_us
        sacc[:, SliceCol.VOL_UL] += np.bincount(key, thp_ul, size) * dt_us
        sacc[:, SliceCol.DELAY_VOL_DL] += np.bincount(key, delay * thp_dl, size) * dt_us

        load = np.zeros(n_c)
        np.divide(used_c, total, out=load, where=total > 0.0)
        self._load = load

    # ---------------------------------------------------------------- lookups

    def cell_index(self, cell: CellId) -> int | None:
        """Index of a cell, or None if the world has no such cell."""
        return self._cell_index.get(cell)

    def slice_index(self, slice_id: SliceId) -> int | None:
        """Index of a slice, or None."""
        return self._slice_index.get(slice_id)

    def ue_index(self, ue_id: int) -> int | None:
        """Index of a UE by RAN UE id, or None."""
        return ue_id - 1 if 1 <= ue_id <= self.n_ues else None

    def cell_info(self, index: int) -> CellInfo:
        """The cell at ``index`` as a node announces it (identity, neighbours, state)."""
        return CellInfo(
            id=self.cell_ids[index],
            pci=self._pci[index],
            band=int(self._band[index]),
            bandwidth_prbs=int(self._n_prb[index]),
            subcarrier_spacing_khz=int(self._scs_khz[index]),
            neighbours=tuple(self.cell_ids[j] for j in self._neighbours[index]),
            active=bool(self._active[index]),
            tx_power_dbm=float(self._tx_dbm[index]),
        )

    def neighbours(self, index: int) -> tuple[int, ...]:
        """Neighbour cell indices of cell ``index``, closest overlap first."""
        return self._neighbours[index]

    def is_active(self, index: int) -> bool:
        """Whether cell ``index`` is switched on."""
        return bool(self._active[index])

    def serving_cell(self, ue_id: int) -> CellId | None:
        """The cell serving UE ``ue_id``, or None when it is not attached."""
        idx = self.ue_index(ue_id)
        if idx is None:
            raise KeyError(f"unknown UE {ue_id}")
        cell = int(self._serving[idx])
        return self.cell_ids[cell] if cell >= 0 else None

    @property
    def mobility_model(self) -> str:
        """The scenario's RAN mobility model: ``"a3"`` or ``"none"``."""
        return self._mobility.model

    @property
    def scheduler_model(self) -> str:
        """The scheduler inside each slice's PRBs: ``"pf"``, ``"rr"`` or ``"need"``."""
        return self._scheduler.kind

    @property
    def pf_avg_thp_kbps(self) -> FloatArray:
        """Each UE's averaged downlink throughput in its cell, PF's ``T_i``, kbit/s, read-only."""
        return self._scheduler.avg_thp_kbps

    @property
    def buffer_kbit(self) -> FloatArray:
        """Each UE's downlink buffer, kbit: Poisson UEs' queued bursts, 0 for the others."""
        return self._traffic.buffer_kbit

    @property
    def dropped_kbit(self) -> float:
        """Downlink bits that arrived at a full Poisson buffer and were dropped so far, kbit."""
        return self._traffic.dropped_kbit

    @property
    def rlf_count(self) -> int:
        """Radio link failures so far: T310 expiries and failed handovers."""
        return self._mobility.rlf

    def mobility_report(self) -> MobilityReport:
        """Handovers by cause, failures by cause, outage and interruption per UE so far."""
        return self._mobility.report()

    @property
    def serving(self) -> IntArray:
        """Serving cell index of each UE (-1: not attached), read-only."""
        return _ro(self._serving)

    @property
    def active(self) -> BoolArray:
        """Whether each cell is switched on, read-only."""
        return _ro(self._active)

    @property
    def cell_load(self) -> FloatArray:
        """Downlink PRB utilisation of each cell in the last step, 0..1 (0 when off), read-only."""
        return _ro(self._load)

    @property
    def demand_dl_kbps(self) -> FloatArray:
        """Downlink traffic demand of each UE in the last step, kbit/s (surges included; inf
        for a full-buffer UE, 0 for a Poisson UE with an empty buffer)."""
        return _ro(self._demand_dl_kbps)

    @property
    def sinr_offset_db(self) -> FloatArray:
        """SINR change the active events put on each cell, dB (0, or negative), read-only."""
        return _ro(self._sinr_offset_db)

    @property
    def active_events(self) -> tuple[int, ...]:
        """Indices into :attr:`events` of the events active in the last step."""
        return self._active_events

    @property
    def ue_group(self) -> IntArray:
        """Index into the scenario's ``ue_groups`` of each UE, read-only."""
        return _ro(self._ue_group)

    @property
    def ue_slice(self) -> IntArray:
        """Slice index of each UE, read-only."""
        return _ro(self._ue_slice)

    @property
    def rsrp_dbm(self) -> FloatArray:
        """RSRP of every cell at every UE (UEs x cells), dBm; -inf for cells off."""
        return _ro(self._rsrp_dbm)

    @property
    def sinr_db(self) -> FloatArray:
        """SINR every UE would have on every cell (UEs x cells), dB; -inf for cells off."""
        return _ro(self._sinr_db)

    def ues_in_cells(self, cells: Iterable[int]) -> IntArray:
        """Indices of the UEs served by any of ``cells``, in UE id order."""
        mask = np.isin(self._serving, np.fromiter(cells, dtype=np.int64))
        return np.flatnonzero(mask).astype(np.int64)

    def slice_quota(self, cell: int, slice_index: int) -> tuple[int, int, int]:
        """(min, max, dedicated) PRB percentages of a slice in a cell."""
        return (
            int(self._min_pct[cell, slice_index]),
            int(self._max_pct[cell, slice_index]),
            int(self._ded_pct[cell, slice_index]),
        )

    # ---------------------------------------------------------------- controls

    def _cell(self, cell: CellId) -> int:
        idx = self._cell_index.get(cell)
        if idx is None:
            raise SimControlError(f"unknown cell {cell}")
        return idx

    def handover(self, ue_id: int, target: CellId) -> int:
        """Hand UE ``ue_id`` to cell ``target`` as an xApp commanded; return the source cell
        index.

        Refused when the UE or cell is unknown, the UE has no connection or is out of sync
        (the command cannot reach it), the cell is off or already serves the UE, or the
        cell's RSRP at the UE is below the scenario's ``min_rsrp_dbm``. Accepted, it executes
        as a RAN handover does: the UE pays the interruption time, or, when the target's SINR
        is below Qout, the handover fails and the UE re-establishes.
        """
        ue = self.ue_index(ue_id)
        if ue is None:
            raise SimControlError(f"unknown UE {ue_id}")
        t = self._cell(target)
        if self._state[t] != CELL_ACTIVE:
            raise SimControlError(f"target cell {target} is {_STATE_TEXT[self._state[t]]}")
        source = int(self._serving[ue])
        if source < 0:
            raise SimControlError(f"UE {ue_id} has no connection (radio link failure or idle)")
        if source == t:
            raise SimControlError(f"UE {ue_id} is already served by {target}")
        if self._mobility.out_of_sync(ue):
            raise SimControlError(
                f"UE {ue_id} is out of sync with {self.cell_text[source]} (T310 running): "
                "the handover command cannot reach it"
            )
        rsrp = float(self._rsrp_dbm[ue, t])
        if rsrp < self._radio.min_rsrp_dbm:
            raise SimControlError(
                f"RSRP of {target} at UE {ue_id} is {rsrp:.1f} dBm, "
                f"below the {self._radio.min_rsrp_dbm:.1f} dBm needed"
            )
        self._mobility.execute(
            np.array([ue], dtype=np.int64),
            np.array([t], dtype=np.int64),
            HO_XAPP,
            self._time_us,
            self._serving,
            self._rsrp_dbm,
            self._sinr_db,
        )
        return source

    def walk(self, ue_id: int, to_m: tuple[float, float], speed_mps: float) -> None:
        """Send UE ``ue_id`` walking straight to ``to_m`` (metres east, north) at
        ``speed_mps``; on arrival it goes on as its group's random waypoint says. For scripted
        paths (a UE crossing a cell border) in scenarios and tests."""
        ue = self.ue_index(ue_id)
        if ue is None:
            raise SimControlError(f"unknown UE {ue_id}")
        if not 0.0 <= speed_mps <= 100.0:
            raise SimControlError(f"speed must be 0..100 m/s, got {speed_mps}")
        self._wx_m[ue], self._wy_m[ue] = to_m
        self._speed_mps[ue] = speed_mps

    def set_slice_quota(
        self, cell: CellId, slice_id: SliceId, *, min_pct: int, max_pct: int, dedicated_pct: int
    ) -> None:
        """Set a slice's PRB quota in a cell, in percent: ``dedicated <= min <= max``.

        Refused when out of 0..100, out of order, or when the minimum shares of the cell's
        slices would add up to more than 100 percent.
        """
        c = self._cell(cell)
        s = self._slice_index.get(slice_id)
        if s is None:
            raise SimControlError(f"unknown slice {slice_id}")
        for name, value in (("min", min_pct), ("max", max_pct), ("dedicated", dedicated_pct)):
            if not 0 <= value <= 100:
                raise SimControlError(f"{name} PRB ratio must be 0..100 percent, got {value}")
        if not dedicated_pct <= min_pct <= max_pct:
            raise SimControlError(
                "PRB ratios need dedicated <= min <= max, got "
                f"{dedicated_pct} / {min_pct} / {max_pct}"
            )
        others = float(self._min_pct[c].sum() - self._min_pct[c, s])
        if others + min_pct > 100:
            raise SimControlError(
                f"minimum PRB ratios of the slices of {cell} would add up to {others + min_pct:.0f} > 100"
            )
        self._min_pct[c, s] = min_pct
        self._max_pct[c, s] = max_pct
        self._ded_pct[c, s] = dedicated_pct

    def set_cell_state(
        self, cell: CellId, *, active: bool | None = None, tx_power_dbm: float | None = None
    ) -> list[int]:
        """Switch a cell on or off at once and/or set its transmit power (dBm): the instant
        switch, for tests and scripted set-ups. Nodes take the realistic path instead
        (:meth:`configure_cell`: shutdown with hand-outs, wake-up time).

        A cell switched off stops transmitting (its interference disappears) and hands each
        of its UEs to the best active neighbour, or else to the best active cell, or leaves it
        unattached; it is then energy saving (:meth:`configure_cell` can wake it). Returns the
        RAN UE ids that had to leave the cell.
        """
        c = self._cell(cell)
        if active is None and tx_power_dbm is None:
            raise SimControlError("nothing to change: give active and/or tx_power_dbm")
        if tx_power_dbm is not None and not 0.0 <= tx_power_dbm <= MAX_TX_POWER_DBM:
            raise SimControlError(
                f"transmit power must be 0..{MAX_TX_POWER_DBM:.0f} dBm, got {tx_power_dbm}"
            )
        if tx_power_dbm is not None:
            self._tx_dbm[c] = tx_power_dbm
        moved: list[int] = []
        if active is not None:
            self._es[c] = not active
            if active:
                self._admin[c] = AdministrativeState.UNLOCKED
        if active is not None and active != (self._state[c] == CELL_ACTIVE):
            if active:
                self._switch_on(c)
            else:
                moved = self._evacuate(c)
                self._switch_off(c)
        else:
            self._refresh_radio()
        return moved

    def _evacuate(self, c: int) -> list[int]:
        ues = np.flatnonzero(self._serving == c).astype(np.int64)
        if not len(ues):
            return []
        nbrs = np.array(
            [j for j in self._neighbours[c] if self._state[j] == CELL_ACTIVE], dtype=np.int64
        )
        target = self._best_cells(ues, nbrs)
        lost = target < 0
        if lost.any():
            target[lost] = self._best_cells(ues[lost])
        self._serving[ues] = target
        self._mobility.moved(ues, np.full(len(ues), c, dtype=np.int64), target, self._time_us)
        log.debug("cell %s off: %d UEs moved", self.cell_text[c], len(ues))
        return [int(u) + 1 for u in ues]

    # ---------------------------------------------------------------- cell configuration

    def configure_cell(
        self,
        cell: CellId,
        *,
        administrative_state: AdministrativeState | None = None,
        energy_saving: bool | None = None,
    ) -> str:
        """Set a cell's administrative state and/or energy saving (E2SM-CCC O-NRCellDU
        ``administrativeState``, O-CESManagementFunction ``energySavingControl``) as a node
        does; returns the cell's state name (:data:`CELL_STATES`).

        A cell serves while it is UNLOCKED and not energy saving. Taken out of service by
        SHUTTING_DOWN or energy saving, it admits no new UE, hands its UEs to neighbours as
        soon as each can take one (``cell_off`` handovers, with the interruption time), and
        switches off when empty or after ``ran.cell_shutdown_timeout_s``, dropping the UEs
        still on it; SHUTTING_DOWN then becomes LOCKED. LOCKED switches it off at once and
        drops its UEs. Put back in service, a cell that is off wakes up: it draws power but
        serves no one for ``ran.cell_wakeup_s``; a cell still shutting down simply resumes.
        """
        c = self._cell(cell)
        if administrative_state is None and energy_saving is None:
            raise SimControlError(
                "nothing to change: give administrative_state and/or energy_saving"
            )
        if administrative_state is not None:
            self._admin[c] = administrative_state
        if energy_saving is not None:
            self._es[c] = energy_saving
        self._reconcile(c)
        return CELL_STATES[self._state[c]]

    def _reconcile(self, c: int) -> None:
        """Move cell ``c`` towards what its administrative state and energy saving ask."""
        state = int(self._state[c])
        admin = self._admin[c]
        if admin is AdministrativeState.UNLOCKED and not self._es[c]:
            if state == CELL_OFF:
                self._set_state(c, CELL_WAKING, self._ran.cell_wakeup_s)
                if self._ran.cell_wakeup_s <= 0.0:
                    self._switch_on(c)
            elif state == CELL_SHUTTING_DOWN:
                self._set_state(c, CELL_ACTIVE)
            return
        if admin is AdministrativeState.LOCKED:
            if state in (CELL_ACTIVE, CELL_SHUTTING_DOWN):
                self._switch_off(c)
            elif state == CELL_WAKING:
                self._set_state(c, CELL_OFF)
            return
        if state == CELL_ACTIVE:
            self._set_state(c, CELL_SHUTTING_DOWN, self._ran.cell_shutdown_timeout_s)
            self._drain(c)
        elif state == CELL_WAKING:
            self._set_state(c, CELL_OFF)
        if self._state[c] == CELL_OFF and admin is AdministrativeState.SHUTTING_DOWN:
            self._admin[c] = AdministrativeState.LOCKED

    def _set_state(self, c: int, state: int, for_s: float = 0.0) -> None:
        self._state[c] = state
        self._ramp_db[c] = 0.0
        self._state_until_us[c] = self._time_us + round(for_s * 1e6)
        self.cell_changes += 1

    def _switch_on(self, c: int) -> None:
        self._set_state(c, CELL_ACTIVE)
        self._active[c] = True
        self._refresh_radio()

    def _switch_off(self, c: int) -> None:
        """Stop transmitting; UEs still on the cell are dropped."""
        left = np.flatnonzero(self._serving == c).astype(np.int64)
        self._mobility.drop(left, self._time_us, self._serving)
        self._set_state(c, CELL_OFF)
        if self._admin[c] is AdministrativeState.SHUTTING_DOWN:
            self._admin[c] = AdministrativeState.LOCKED
        self._active[c] = False
        self._load[c] = 0.0
        self._refresh_radio()
        if len(left):
            log.debug("cell %s off: %d UEs dropped", self.cell_text[c], len(left))

    def _drain(self, c: int) -> None:
        """Hand the UEs of cell ``c`` (shutting down) that a neighbour can take now to the
        best one (cell_off handovers); the others wait for a later step."""
        ues = np.flatnonzero(self._serving == c).astype(np.int64)
        if not len(ues):
            return
        ues = ues[[not self._mobility.out_of_sync(int(u)) for u in ues]]
        nbrs = np.array(
            [j for j in self._neighbours[c] if self._state[j] == CELL_ACTIVE], dtype=np.int64
        )
        target = self._best_cells(ues, nbrs)
        lost = target < 0
        if lost.any():
            target[lost] = self._best_cells(ues[lost])
        go = target >= 0
        if not go.any():
            return
        ues, target = ues[go], target[go]
        # Only to a neighbour usable now: the cell's power ramp-down makes more of them
        # usable step by step.
        ok = self._sinr_db[ues, target] >= self._radio.rlf_sinr_db
        if ok.any():
            self._mobility.execute(
                ues[ok],
                target[ok],
                HO_CELL_OFF,
                self._time_us,
                self._serving,
                self._rsrp_dbm,
                self._sinr_db,
            )

    def _advance_cells(self) -> None:
        """Per step: cells shutting down hand UEs out and switch off when empty or timed out;
        cells waking up start serving when their wake-up time is over."""
        busy = np.flatnonzero(self._state != CELL_ACTIVE)
        ramped = False
        for c in busy.tolist():
            if self._state[c] == CELL_SHUTTING_DOWN:
                span_us = round(self._ran.cell_shutdown_timeout_s * 1e6)
                left_us = int(self._state_until_us[c]) - self._time_us
                done = 1.0 - left_us / span_us if span_us > 0 else 1.0
                self._ramp_db[c] = -SHUTDOWN_RAMP_DB * min(max(done, 0.0), 1.0)
                ramped = True
        if ramped:
            self._refresh_radio()
        for c in busy.tolist():
            if self._state[c] == CELL_SHUTTING_DOWN:
                self._drain(c)
                if not (self._serving == c).any() or self._time_us >= self._state_until_us[c]:
                    self._switch_off(c)
            elif self._state[c] == CELL_WAKING and self._time_us >= self._state_until_us[c]:
                self._switch_on(c)

    def cell_state(self, index: int) -> str:
        """The state of cell ``index``: one of :data:`CELL_STATES`."""
        return CELL_STATES[self._state[index]]

    def administrative_state(self, index: int) -> AdministrativeState:
        """The administrative state of cell ``index`` (TS 28.541 ``administrativeState``)."""
        return self._admin[index]

    def energy_saving(self, index: int) -> bool:
        """Whether cell ``index`` is asked to save energy (``toBeEnergySaving``)."""
        return bool(self._es[index])

    @property
    def powered(self) -> BoolArray:
        """Whether each cell draws more than its sleep power: it transmits, or is waking up,
        read-only."""
        return _ro(self._state != CELL_OFF)

    def cio(self, source: CellId, target: CellId) -> float:
        """The cell individual offset of the relation ``source`` -> ``target``, dB."""
        return self._mobility.cio(self._cell(source), self._cell(target))

    def set_cio(self, source: CellId, target: CellId, offset_db: float) -> None:
        """Set the cell individual offset (CIO) of the neighbour relation ``source`` ->
        ``target``: a TS 38.331 Q-OffsetRange value, dB, added to ``target``'s RSRP in the
        A3/A5 evaluation of the UEs ``source`` serves. Refused for an unknown cell, a cell
        that is not one of ``source``'s neighbour relations, or a value outside the range."""
        s, t = self._cell(source), self._cell(target)
        if not self._mobility.is_relation(s, t):
            raise SimControlError(f"{source} has no neighbour relation to {target}")
        if offset_db not in Q_OFFSET_RANGE_DB:
            raise SimControlError(
                f"cell individual offset {offset_db} dB is not a Q-OffsetRange value (TS 38.331)"
            )
        self._mobility.set_cio(s, t, float(offset_db))

    # ---------------------------------------------------------------- measurements

    def snapshot(self) -> Snapshot:
        """The measurement integrals now; cheap to call again before the next step."""
        if self._snapshot is None:
            cell = self._acc_cell.copy()
            ue = self._acc_ue.copy()
            sl = self._acc_slice.copy()
            for arr in (cell, ue, sl):
                arr.flags.writeable = False
            self._snapshot = Snapshot(self.time_s, self._time_us, cell, ue, sl)
        return self._snapshot

    def cell_matrix(
        self, since: Snapshot, cells: Sequence[int], metrics: Sequence[str]
    ) -> FloatArray:
        """Cell measurements (cells x metrics) averaged since ``since``; NaN for no value."""
        rows = np.asarray(cells, dtype=np.int64)
        delta = self._acc_cell[rows] - since.cell[rows]
        return _m.derive(_m.CELL_METRICS, delta, self._time_us - since.time_us, tuple(metrics))

    def slice_matrix(
        self, since: Snapshot, cells: Sequence[int], slices: Sequence[int], metrics: Sequence[str]
    ) -> FloatArray:
        """Per-slice measurements, one row per (cell, slice), cell-major; NaN for no value."""
        c = np.repeat(np.asarray(cells, dtype=np.int64), len(slices))
        s = np.tile(np.asarray(slices, dtype=np.int64), len(cells))
        delta = self._acc_slice[c, s] - since.slice[c, s]
        avail = self._acc_cell[c, CellCol.PRB_AVAIL_DL] - since.cell[c, CellCol.PRB_AVAIL_DL]
        return _m.derive(
            _m.SLICE_METRICS, delta, self._time_us - since.time_us, tuple(metrics), avail
        )

    def strongest_neighbours(
        self, ues: Sequence[int] | IntArray, k: int = _m.NEIGHBOUR_RANKS
    ) -> tuple[IntArray, FloatArray]:
        """The ``k`` strongest cells each UE hears now besides its serving cell, strongest
        first: (cell indices, RSRP in dBm), both UEs x ``k``, -1 and NaN where there is none.

        Cells switched off (RSRP -inf) and cells below :data:`MIN_HEARD_RSRP_DBM` are not
        heard; a UE that is not attached reports no neighbour.
        """
        rows = np.asarray(ues, dtype=np.int64)
        n = len(rows)
        cells = np.full((n, k), -1, dtype=np.int64)
        rsrp_out = np.full((n, k), np.nan)
        take = min(k, self.n_cells)
        if n == 0 or take == 0:
            return cells, rsrp_out
        rsrp = self._rsrp_dbm[rows].copy()
        serving = self._serving[rows]
        attached = serving >= 0
        rsrp[np.flatnonzero(attached), serving[attached]] = -np.inf
        if take < self.n_cells:
            top = np.argpartition(-rsrp, take - 1, axis=1)[:, :take]
        else:
            top = np.broadcast_to(np.arange(self.n_cells), (n, self.n_cells))
        top_rsrp = np.take_along_axis(rsrp, top, axis=1)
        order = np.argsort(-top_rsrp, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        top_rsrp = np.take_along_axis(top_rsrp, order, axis=1)
        heard = (top_rsrp >= MIN_HEARD_RSRP_DBM) & attached[:, None]
        cells[:, :take] = np.where(heard, top, -1)
        rsrp_out[:, :take] = np.where(heard, top_rsrp, np.nan)
        return cells, rsrp_out

    def ue_matrix(
        self, since: Snapshot, ues: Sequence[int] | IntArray, metrics: Sequence[str]
    ) -> FloatArray:
        """UE measurements (UEs x metrics) averaged since ``since``, except the neighbour
        ones, which are the UEs' measurements now; NaN for no value."""
        rows = np.asarray(ues, dtype=np.int64)
        names = tuple(metrics)
        delta = self._acc_ue[rows] - since.ue[rows]
        out = _m.derive(_m.UE_METRICS, delta, self._time_us - since.time_us, names)
        if any(name in _m.UE_SNAPSHOT_METRICS for name in names):
            cells, rsrp = self.strongest_neighbours(rows)
            nci = np.where(cells >= 0, self._nci[np.maximum(cells, 0)], np.nan)
            _m.derive_snapshot(_m.UE_SNAPSHOT_METRICS, _m.UeNeighbours(rsrp, nci), names, out)
        return out
