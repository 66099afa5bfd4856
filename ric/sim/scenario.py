"""Simulator scenarios: TOML files in ``seeds/``, validated with pydantic.

A scenario names the PLMN, the random seed, the tick, the E2 nodes (vendor profile, site,
sectors, band, bandwidth, power), the slices and their default PRB quotas, and the UE groups
(count, slice, where they roam, how fast, how much traffic). For example::

    name = "small"
    seed = 7
    tick_ms = 100
    plmn = { mcc = "001", mnc = "01" }

    [[nodes]]
    id = 1
    vendor = "acme"
    position_m = [0.0, 0.0]
    sectors = 2
    band = 78
    bandwidth_mhz = 40

    [[ue_groups]]
    count = 8
    slice = "1-000001"
    hotspot = { center_m = [0.0, 150.0], radius_m = 80.0 }

Slices may carry a service-level agreement that ``ric eval`` checks every tick, and the
scenario may inject faults and traffic changes at given times (see :class:`SinrDegradation`
and :class:`TrafficSurge`; :mod:`ric.sim.world` applies them)::

    [[slices]]
    id = "2-000002"
    min_pct = 10
    sla = { max_delay_ms = 5.0 }      # and/or min_thp_kbps = 2000.0

    [[events]]
    kind = "sinr_degradation"         # every UE's downlink SINR on `cell` drops by `db` dB
    cell = "001-01-4097"
    at_s = 120.0
    until_s = 300.0                   # optional: absent = until the end
    db = 15.0

    [[events]]
    kind = "traffic_surge"            # demand x `factor` for the UEs of `group` (a ue_groups
    group = "hotspot"                 # name), or of `cell` (the UEs it serves at each step)
    at_s = 200.0
    until_s = 260.0
    factor = 4.0

An event is active during the steps that start at a time ``t`` with ``at_s <= t < until_s``.

The scheduler inside a slice's PRBs and each UE group's traffic model are named too (see
:class:`SchedulerSpec` and :class:`UeGroupSpec`; :mod:`ric.sim.scheduler` and
:mod:`ric.sim.traffic` implement them)::

    [scheduler]
    kind = "pf"                       # or "rr", "need"; pf_time_constant_ms = 1000.0

    [[ue_groups]]
    count = 10
    traffic = "poisson"               # or "lognormal" (default), "cbr", "full_buffer"
    arrival_rate_hz = 2.0
    burst_kbit = 4000.0

A bad file raises :class:`ric.errors.ConfigError` whose key is the path of the bad value,
such as ``nodes[1].vendor``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ric.actions import Q_OFFSET_RANGE_DB
from ric.errors import ConfigError
from ric.ids import CellId, Plmn, SliceId
from ric.sim.profiles import VENDOR_PROFILES
from ric.sim.radio import BANDS, prb_count

__all__ = [
    "AreaSpec",
    "EventSpec",
    "HotspotSpec",
    "NodeSpec",
    "PlmnSpec",
    "PowerSpec",
    "RadioSpec",
    "RanCellSpec",
    "RanRelationSpec",
    "RanSpec",
    "Scenario",
    "SchedulerSpec",
    "SinrDegradation",
    "SlaSpec",
    "SliceSpec",
    "TrafficSurge",
    "UeGroupSpec",
    "load_scenario",
    "parse_scenario",
]

MAX_NODE_ID: Final = (1 << 24) - 1
"""gNB ids are 24 bits here: a cell's NR cell identity is ``node id * 4096 + sector``."""

Vec2 = tuple[float, float]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlmnSpec(_Spec):
    """The network's PLMN: MCC (3 digits) and MNC (2 or 3 digits), as strings."""

    mcc: str = Field(pattern=r"^\d{3}$")
    mnc: str = Field(pattern=r"^\d{2,3}$")


class AreaSpec(_Spec):
    """A rectangle, metres east (x) and north (y) of the scenario origin."""

    x_m: Vec2
    y_m: Vec2

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not (self.x_m[0] < self.x_m[1] and self.y_m[0] < self.y_m[1]):
            raise ValueError("area needs x_m = [min, max] and y_m = [min, max] with min < max")
        return self


class HotspotSpec(_Spec):
    """A disc where a UE group stays: centre in metres, radius in metres."""

    center_m: Vec2
    radius_m: float = Field(gt=0.0, le=100_000.0)


class RadioSpec(_Spec):
    """Radio model knobs; the defaults suit a dense-urban macro layout."""

    shadowing_std_db: float = Field(6.0, ge=0.0, le=20.0)
    shadowing_decorrelation_m: float = Field(50.0, gt=0.0)
    ue_noise_figure_db: float = Field(7.0, ge=0.0, le=20.0)
    bs_noise_figure_db: float = Field(5.0, ge=0.0, le=20.0)
    ue_height_m: float = Field(1.5, gt=0.0, le=50.0)
    ue_tx_power_dbm: float = Field(23.0, ge=-10.0, le=33.0)
    min_rsrp_dbm: float = Field(-120.0, ge=-156.0, le=-44.0)
    """Weakest RSRP a UE attaches or is handed over to, dBm."""
    rlf_sinr_db: float = Field(-8.0, ge=-30.0, le=10.0)
    """Qout: below this serving SINR (dB) a UE is out of sync and T310 runs (see RanSpec)."""
    interference_floor: float = Field(0.1, ge=0.0, le=1.0)
    """Share of an idle active cell's PRBs that still radiate (SSB, PDCCH), 0..1."""
    demand_sigma: float = Field(0.4, ge=0.0, le=3.0)
    """Log-normal spread of each UE's traffic demand around its group's mean."""
    demand_tau_s: float = Field(10.0, gt=0.0)
    """Correlation time of the demand fluctuation, s."""


TIME_TO_TRIGGER_MS: Final = (0, 40, 64, 80, 100, 128, 160, 256, 320, 480, 512, 640, 1024, 1280, 2560, 5120)  # fmt: skip
"""The TimeToTrigger values of TS 38.331, ms."""
Q_OFFSET_DB: Final = Q_OFFSET_RANGE_DB
"""The Q-OffsetRange values of TS 38.331 (cell individual offsets), dB."""
FILTER_COEFFICIENTS: Final = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 15, 17, 19)
"""The FilterCoefficient values of TS 38.331 (layer-3 RSRP filter)."""


def _one_of(value: float, allowed: tuple[int, ...], what: str) -> float:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(map(str, allowed))} (TS 38.331)")
    return value


class RanCellSpec(_Spec):
    """Handover parameters of one serving cell, overriding the ``[ran]`` defaults."""

    cell: str
    """The cell, as its NR CGI text (``001-01-4097``)."""
    hysteresis_db: float | None = Field(None, ge=0.0, le=30.0)
    time_to_trigger_ms: int | None = None
    a5_threshold1_dbm: float | None = Field(
        None,
        ge=-156.0,
        le=-31.0,
        description="Event A5 threshold 1 of this serving cell, dBm (overrides the [ran] one).",
    )
    a5_threshold2_dbm: float | None = Field(
        None,
        ge=-156.0,
        le=-31.0,
        description="Event A5 threshold 2 of this serving cell, dBm (overrides the [ran] one).",
    )

    @field_validator("time_to_trigger_ms")
    @classmethod
    def _ttt(cls, value: int | None) -> int | None:
        if value is not None:
            _one_of(value, TIME_TO_TRIGGER_MS, "time_to_trigger_ms")
        return value


class RanRelationSpec(_Spec):
    """A neighbour relation's cell individual offset (CIO, ``Ocn`` of event A3): the dB added
    to ``target``'s RSRP when a UE served by ``source`` compares it with its serving cell."""

    source: str
    target: str
    cio_db: float = 0.0

    @field_validator("cio_db")
    @classmethod
    def _cio(cls, value: float) -> float:
        return _one_of(value, Q_OFFSET_DB, "cio_db")


class RanSpec(_Spec):
    """The RAN's own mobility and radio link failure handling (TS 38.331 names and defaults).

    With ``mobility = "a3"`` a connected UE is handed over by its serving cell when a
    neighbour's layer-3 filtered RSRP plus the relation's CIO exceeds the serving cell's by
    the hysteresis plus ``a3_offset_db`` for ``time_to_trigger_ms``; ``"none"`` leaves
    mobility to handover controls (the radio link failure model runs either way).
    """

    mobility: Literal["a3", "none"] = "a3"
    hysteresis_db: float = Field(3.0, ge=0.0, le=30.0)
    """A3 hysteresis of every cell, dB (TS 38.331 Hysteresis, 0..30 in 0.5 dB)."""
    time_to_trigger_ms: int = 320
    """A3 time-to-trigger of every cell, ms (a TS 38.331 TimeToTrigger value)."""
    a3_offset_db: float = Field(0.0, ge=-15.0, le=15.0)
    """A3 offset (``Off``), dB."""
    filter_coefficient: int = 4
    """Layer-3 RSRP filter coefficient k (TS 38.331 FilterCoefficient; fc4 is its default)."""
    interruption_ms: float = Field(40.0, ge=0.0, le=1000.0)
    """Time a UE carries no traffic during a successful handover, ms."""
    t304_ms: int = Field(1000, ge=50, le=10_000)
    """How long a UE tries to reach a handover target before the handover fails, ms."""
    t310_ms: int = Field(1000, ge=0, le=6000)
    """How long a UE may stay out of sync (serving SINR below Qout) before radio link
    failure, ms; it stops when the SINR is back above Qin."""
    qin_offset_db: float = Field(2.0, ge=0.0, le=10.0)
    """Qin (back in sync) above Qout (``radio.rlf_sinr_db``), dB."""
    t311_ms: int = Field(1000, ge=1000, le=30_000)
    """How long a UE looks for a cell to re-establish on after a failure before it goes
    idle, ms."""
    reestablishment_ms: float = Field(200.0, ge=0.0, le=10_000.0)
    """Time from a failure to a re-established connection on a suitable cell, ms."""
    mro_window_ms: int = Field(1000, ge=0, le=60_000)
    """A failure this soon after a handover counts against that handover (too early or to
    the wrong cell), ms."""
    a5_threshold1_dbm: float | None = Field(
        None,
        ge=-156.0,
        le=-31.0,
        description="Event A5 (TS 38.331 5.5.4.7) threshold 1, dBm: with threshold 2 set, a "
        "UE whose serving cell's filtered RSRP plus the hysteresis is below it, and that hears "
        "a neighbour (plus the relation's CIO, less the hysteresis) above threshold 2 for the "
        "time-to-trigger, is handed over to it, whatever A3 says. Unset (the default): no A5. "
        "It hands over coverage-limited UEs, for example those of a cell that energy saving "
        "shrinks.",
    )
    a5_threshold2_dbm: float | None = Field(
        None,
        ge=-156.0,
        le=-31.0,
        description="Event A5 threshold 2, dBm: the neighbour's RSRP it needs (see "
        "a5_threshold1_dbm).",
    )
    cell_shutdown_timeout_s: float = Field(
        5.0,
        ge=0.0,
        le=600.0,
        description="Longest a cell shutting down (administrativeState SHUTTING_DOWN, energy "
        "saving, or the RC cell-off control) spends handing its UEs to neighbours, s: it "
        "admits no new UE, hands each UE over as soon as a neighbour can take it, and switches "
        "off when empty or at this timeout, dropping the UEs still on it (they re-establish "
        "elsewhere).",
    )
    cell_wakeup_s: float = Field(
        1.0,
        ge=0.0,
        le=600.0,
        description="Time from switching a sleeping cell on to its first served UE, s; the "
        "cell draws its idle power meanwhile and serves no one. 1 s is the transition time of "
        "the deepest base-station sleep mode (SM4) in Debaillie et al., 'A flexible and "
        "future-proof power model for cellular base stations', IEEE VTC2015-Spring; a full "
        "cell restart can take longer.",
    )
    cells: tuple[RanCellSpec, ...] = ()
    """Per-cell hysteresis, time-to-trigger and A5 thresholds."""
    relations: tuple[RanRelationSpec, ...] = ()
    """Cell individual offsets per neighbour relation (default 0 dB)."""

    @field_validator("time_to_trigger_ms")
    @classmethod
    def _ttt(cls, value: int) -> int:
        _one_of(value, TIME_TO_TRIGGER_MS, "time_to_trigger_ms")
        return value

    @field_validator("filter_coefficient")
    @classmethod
    def _fc(cls, value: int) -> int:
        _one_of(value, FILTER_COEFFICIENTS, "filter_coefficient")
        return value


class SchedulerSpec(_Spec):
    """How each cell shares a slice's PRBs between the slice's UEs (:mod:`ric.sim.scheduler`).

    Slices first get their PRBs under their RRM policy ratios whatever the kind; ``kind``
    names the scheduler inside a slice: ``"pf"`` proportional fair, ``"rr"`` round robin,
    ``"need"`` in proportion to each UE's need (the simulator's scheduler before kinds
    existed). The uplink is shared in proportion to need under every kind.
    """

    kind: Literal["pf", "rr", "need"] = Field(
        "pf",
        description="Scheduler inside a slice's PRBs: pf (proportional fair), rr (round "
        "robin: equal PRBs per UE with traffic) or need (in proportion to each UE's need).",
    )
    pf_time_constant_ms: float = Field(
        1000.0,
        ge=1.0,
        le=600_000.0,
        description="Time constant of the exponential average throughput in the PF metric, "
        "ms (of the order of the 1000 slots of Jalali et al., VTC 2000).",
    )


class PowerSpec(_Spec):
    """Input power of each cell of a node, W, for the energy figures of ``ric eval``.

    Linear in the cell's PRB use between ``idle_w`` and ``full_load_w`` while it is on;
    ``sleep_w`` while it is off. The defaults follow the EARTH power model for a macro sector
    with two transmit chains at 20 W each (Auer et al., IEEE Wireless Communications, 2011:
    P0 = 130 W, slope 4.7, sleep 75 W per chain); they do not follow ``tx_power_dbm``.
    """

    idle_w: float = Field(260.0, ge=0.0, le=100_000.0)
    full_load_w: float = Field(448.0, ge=0.0, le=100_000.0)
    sleep_w: float = Field(150.0, ge=0.0, le=100_000.0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.sleep_w <= self.idle_w <= self.full_load_w:
            raise ValueError(
                "needs sleep_w <= idle_w <= full_load_w, got "
                f"{self.sleep_w} / {self.idle_w} / {self.full_load_w}"
            )
        return self


class NodeSpec(_Spec):
    """One E2 node (a gNB) at one site with 1-3 sector cells."""

    id: int = Field(ge=1, le=MAX_NODE_ID)
    vendor: str
    position_m: Vec2
    sectors: int = Field(3, ge=1, le=3)
    azimuth_deg: float = Field(0.0, ge=0.0, lt=360.0)
    """Compass azimuth of the first sector; the others follow at 360/sectors degrees."""
    band: int = 78
    bandwidth_mhz: int = 40
    tx_power_dbm: float = Field(43.0, ge=0.0, le=49.0)
    height_m: float = Field(25.0, gt=0.0, le=300.0)
    power: PowerSpec = PowerSpec()
    """Input power of each of the node's cells (energy figures only)."""

    @field_validator("vendor")
    @classmethod
    def _known_vendor(cls, value: str) -> str:
        if value not in VENDOR_PROFILES:
            known = ", ".join(sorted(VENDOR_PROFILES))
            raise ValueError(f"unknown vendor profile {value!r}; known: {known}")
        return value

    @field_validator("band")
    @classmethod
    def _known_band(cls, value: int) -> int:
        if value not in BANDS:
            raise ValueError(f"unknown band {value}; known: {', '.join(map(str, BANDS))}")
        return value

    @field_validator("bandwidth_mhz")
    @classmethod
    def _bandwidth_fits_band(cls, value: int, info: ValidationInfo) -> int:
        band = info.data.get("band")
        if band is not None:
            prb_count(band, value)
        return value

    @property
    def bandwidth_prbs(self) -> int:
        """Downlink bandwidth in PRBs (TS 38.101-1)."""
        return prb_count(self.band, self.bandwidth_mhz)


_SST_DEFAULTS: Final[dict[int, tuple[float, float, float]]] = {
    # sst: (DL kbit/s, UL kbit/s, base delay ms)
    1: (5_000.0, 1_000.0, 2.0),  # eMBB
    2: (1_000.0, 500.0, 0.5),  # URLLC
    3: (50.0, 50.0, 10.0),  # mMTC
}


class SlaSpec(_Spec):
    """A slice's service-level agreement, per UE: what ``ric eval`` counts violations of.

    A (UE, tick) sample of an attached UE with traffic violates it when the UE's downlink
    delay exceeds ``max_delay_ms``, or when its downlink throughput falls short of
    ``min_thp_kbps`` (or of its own demand, when that is lower) by more than 1 %. A UE of the
    slice that has traffic but no cell violates it too.
    """

    max_delay_ms: float | None = Field(None, gt=0.0)
    """Largest acceptable RLC SDU delay in the downlink, ms."""
    min_thp_kbps: float | None = Field(None, gt=0.0)
    """Smallest acceptable per-UE mean downlink throughput, kbit/s."""

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.max_delay_ms is None and self.min_thp_kbps is None:
            raise ValueError("an sla needs max_delay_ms and/or min_thp_kbps")
        return self


class SliceSpec(_Spec):
    """A network slice, its default PRB quota in every cell, its traffic profile and SLA."""

    id: str
    min_pct: int = Field(0, ge=0, le=100)
    max_pct: int = Field(100, ge=0, le=100)
    dedicated_pct: int = Field(0, ge=0, le=100)
    dl_kbps: float | None = Field(None, ge=0.0)
    """Mean downlink demand per UE, kbit/s (default by SST)."""
    ul_kbps: float | None = Field(None, ge=0.0)
    base_delay_ms: float | None = Field(None, gt=0.0)
    """RLC SDU delay of an unloaded cell, ms (default by SST)."""
    sla: SlaSpec | None = None
    """The slice's service-level agreement, if any."""

    @field_validator("id")
    @classmethod
    def _slice_id(cls, value: str) -> str:
        return str(SliceId.parse(value))

    @model_validator(mode="after")
    def _quota_order(self) -> Self:
        if not self.dedicated_pct <= self.min_pct <= self.max_pct:
            raise ValueError(
                "needs dedicated_pct <= min_pct <= max_pct, got "
                f"{self.dedicated_pct} / {self.min_pct} / {self.max_pct}"
            )
        return self

    @property
    def slice_id(self) -> SliceId:
        """The slice's S-NSSAI."""
        return SliceId.parse(self.id)

    def traffic(self) -> tuple[float, float, float]:
        """(DL kbit/s, UL kbit/s, base delay ms) with SST defaults filled in."""
        dl, ul, delay = _SST_DEFAULTS.get(self.slice_id.sst, _SST_DEFAULTS[1])
        return (
            dl if self.dl_kbps is None else self.dl_kbps,
            ul if self.ul_kbps is None else self.ul_kbps,
            delay if self.base_delay_ms is None else self.base_delay_ms,
        )


DEFAULT_SLICES: Final = (
    SliceSpec(id="1-000001"),
    SliceSpec(id="2-000002"),
    SliceSpec(id="3-000003"),
)
"""eMBB, URLLC and mMTC, no quotas."""


class UeGroupSpec(_Spec):
    """UEs that share a slice, a roaming region, a speed range and a traffic profile."""

    name: str = ""
    count: int = Field(ge=0, le=100_000)
    slice: str = "1-000001"
    area: AreaSpec | None = None
    """Random-waypoint region; default the scenario area."""
    hotspot: HotspotSpec | None = None
    """A disc to stay in instead of an area."""
    speed_mps: Vec2 = (0.5, 1.5)
    """Speed range, m/s; each leg draws a speed from it."""
    dl_kbps: float | None = Field(None, ge=0.0)
    """Mean downlink demand per UE, kbit/s (default: the slice's)."""
    ul_kbps: float | None = Field(None, ge=0.0)
    traffic: Literal["lognormal", "cbr", "poisson", "full_buffer"] = Field(
        "lognormal",
        description="Traffic model of the group's UEs (ric.sim.traffic): lognormal (the mean "
        "rate x a log-normal AR(1) factor), cbr (dl_kbps / ul_kbps constant), poisson "
        "(downlink bursts of mean burst_kbit at arrival_rate_hz into a buffer; uplink ul_kbps) "
        "or full_buffer (always more than the cell can serve).",
    )
    arrival_rate_hz: float | None = Field(
        None,
        gt=0.0,
        le=10_000.0,
        description="Poisson traffic: bursts per second per UE (needed by, and only for, "
        "traffic = poisson).",
    )
    burst_kbit: float | None = Field(
        None,
        gt=0.0,
        le=10_000_000.0,
        description="Poisson traffic: mean burst (file) size, kbit, exponentially distributed "
        "(needed by, and only for, traffic = poisson).",
    )
    max_buffer_kbit: float | None = Field(
        None,
        gt=0.0,
        le=100_000_000.0,
        description="Poisson traffic: a UE's downlink buffer limit, kbit; bursts that do not "
        "fit are dropped (default 80000, 10 MB; only for traffic = poisson).",
    )

    @field_validator("slice")
    @classmethod
    def _slice_id(cls, value: str) -> str:
        return str(SliceId.parse(value))

    @field_validator("speed_mps")
    @classmethod
    def _speeds(cls, value: Vec2) -> Vec2:
        if not 0.0 <= value[0] <= value[1] <= 100.0:
            raise ValueError("needs [min, max] speeds in m/s with 0 <= min <= max <= 100")
        return value

    @model_validator(mode="after")
    def _one_region(self) -> Self:
        if self.area is not None and self.hotspot is not None:
            raise ValueError("give either area or hotspot, not both")
        return self


class _EventBase(_Spec):
    at_s: float = Field(ge=0.0)
    """When the event starts, seconds from the start of the run."""
    until_s: float | None = None
    """When it ends (exclusive), seconds; None: at the end of the run."""

    def active_at(self, t_s: float) -> bool:
        """Whether the event is on at ``t_s``: ``at_s <= t_s < until_s``."""
        return self.at_s <= t_s and (self.until_s is None or t_s < self.until_s)


class SinrDegradation(_EventBase):
    """A fault or interference: every UE's downlink SINR on ``cell`` drops by ``db`` dB."""

    kind: Literal["sinr_degradation"]
    cell: str
    """The cell, as its NR CGI text (``001-01-4097``)."""
    db: float = Field(gt=0.0, le=100.0)
    """How far the SINR drops, dB."""


class TrafficSurge(_EventBase):
    """Downlink and uplink demand times ``factor``, for a UE group or a cell's UEs.

    With ``group``, the UEs of every ``ue_groups`` entry of that name; with ``cell``, the UEs
    that cell serves at each step (a UE that leaves the cell leaves the surge).
    """

    kind: Literal["traffic_surge"]
    group: str | None = None
    """A ``ue_groups`` name."""
    cell: str | None = None
    """A cell, as its NR CGI text; instead of ``group``."""
    factor: float = Field(gt=0.0, le=1000.0)
    """Demand multiplier (below 1: a drop in traffic)."""

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        if (self.group is None) == (self.cell is None):
            raise ValueError("a traffic_surge needs exactly one of group and cell")
        return self


EventSpec = Annotated[SinrDegradation | TrafficSurge, Field(discriminator="kind")]
"""A scenario event: a fault or traffic change over a time window."""

EVENT_KINDS: Final = ("sinr_degradation", "traffic_surge")


def cell_names(plmn: PlmnSpec, nodes: tuple[NodeSpec, ...]) -> list[str]:
    """The text ids of the cells of ``nodes``, in world order (node by node, sector by sector)."""
    p = Plmn(plmn.mcc, plmn.mnc)
    return [str(CellId(p, n.id * 4096 + k + 1)) for n in nodes for k in range(n.sectors)]


class Scenario(_Spec):
    """A whole simulated network: nodes, slices, UE groups, radio model, seed and tick."""

    name: str = "scenario"
    description: str = ""
    seed: int = Field(0, ge=0)
    tick_ms: int = Field(100, ge=10, le=10_000)
    """World step and reporting granularity, ms."""
    duration_s: float | None = Field(None, gt=0.0)
    """Stop after this long; None runs until cancelled."""
    plmn: PlmnSpec = PlmnSpec(mcc="001", mnc="01")
    area: AreaSpec | None = None
    """Default UE region; default the sites' bounding box widened by 250 m."""
    radio: RadioSpec = RadioSpec()
    ran: RanSpec = RanSpec()
    """The RAN's own handovers and radio link failure timers."""
    scheduler: SchedulerSpec = Field(
        SchedulerSpec(), description="The downlink scheduler inside each slice's PRBs."
    )
    slices: tuple[SliceSpec, ...] = DEFAULT_SLICES
    nodes: tuple[NodeSpec, ...] = Field(min_length=1)
    ue_groups: tuple[UeGroupSpec, ...] = ()
    events: tuple[EventSpec, ...] = ()
    """Faults and traffic changes injected at given times, in file order."""

    @model_validator(mode="after")
    def _references(self) -> Self:
        # Cross-references: raise ConfigError directly so the key names the list element.
        seen: dict[int, int] = {}
        for i, node in enumerate(self.nodes):
            if node.id in seen:
                raise ConfigError(
                    f"nodes[{i}].id", f"duplicate node id {node.id} (also nodes[{seen[node.id]}])"
                )
            seen[node.id] = i
        slices: dict[str, int] = {}
        for i, spec in enumerate(self.slices):
            if spec.id in slices:
                raise ConfigError(f"slices[{i}].id", f"duplicate slice {spec.id}")
            slices[spec.id] = i
        if not self.slices:
            raise ConfigError("slices", "at least one slice is needed")
        total_min = sum(s.min_pct for s in self.slices)
        if total_min > 100:
            raise ConfigError("slices", f"min_pct over all slices adds up to {total_min} > 100")
        for i, group in enumerate(self.ue_groups):
            if group.slice not in slices:
                raise ConfigError(
                    f"ue_groups[{i}].slice",
                    f"slice {group.slice} is not among the scenario's slices ({', '.join(slices)})",
                )
        self._check_events()
        self._check_ran()
        self._check_traffic()
        return self

    def _check_traffic(self) -> None:
        poisson_keys = ("arrival_rate_hz", "burst_kbit", "max_buffer_kbit")
        for i, group in enumerate(self.ue_groups):
            model = group.traffic
            if model == "poisson":
                for key in poisson_keys[:2]:
                    if getattr(group, key) is None:
                        raise ConfigError(
                            f"ue_groups[{i}].{key}", "traffic = 'poisson' needs it (> 0)"
                        )
                if group.dl_kbps is not None:
                    raise ConfigError(
                        f"ue_groups[{i}].dl_kbps",
                        "does not apply to traffic = 'poisson': its mean downlink rate is "
                        "arrival_rate_hz x burst_kbit",
                    )
            else:
                for key in poisson_keys:
                    if getattr(group, key) is not None:
                        raise ConfigError(
                            f"ue_groups[{i}].{key}",
                            f"only for traffic = 'poisson', not {model!r}",
                        )
            if model == "full_buffer":
                for key in ("dl_kbps", "ul_kbps"):
                    if getattr(group, key) is not None:
                        raise ConfigError(
                            f"ue_groups[{i}].{key}",
                            "does not apply to traffic = 'full_buffer' (always more than the "
                            "cell can serve)",
                        )

    def _check_ran(self) -> None:
        cells = cell_names(self.plmn, self.nodes)
        known = ", ".join(cells)
        ran = self.ran
        if (ran.a5_threshold1_dbm is None) != (ran.a5_threshold2_dbm is None):
            missing = "a5_threshold2_dbm" if ran.a5_threshold2_dbm is None else "a5_threshold1_dbm"
            raise ConfigError(f"ran.{missing}", "event A5 needs both thresholds, or neither")
        for i, spec in enumerate(ran.cells):
            if spec.cell not in cells:
                raise ConfigError(
                    f"ran.cells[{i}].cell", f"unknown cell {spec.cell!r}; the scenario's: {known}"
                )
            t1 = (
                spec.a5_threshold1_dbm
                if spec.a5_threshold1_dbm is not None
                else ran.a5_threshold1_dbm
            )
            t2 = (
                spec.a5_threshold2_dbm
                if spec.a5_threshold2_dbm is not None
                else ran.a5_threshold2_dbm
            )
            if (t1 is None) != (t2 is None):
                missing = "a5_threshold2_dbm" if t2 is None else "a5_threshold1_dbm"
                raise ConfigError(
                    f"ran.cells[{i}].{missing}", "event A5 needs both thresholds, or neither"
                )
        for i, rel in enumerate(self.ran.relations):
            for end in ("source", "target"):
                if getattr(rel, end) not in cells:
                    raise ConfigError(
                        f"ran.relations[{i}].{end}",
                        f"unknown cell {getattr(rel, end)!r}; the scenario's: {known}",
                    )
            if rel.source == rel.target:
                raise ConfigError(
                    f"ran.relations[{i}].target", "a relation needs two different cells"
                )

    def _check_events(self) -> None:
        cells = cell_names(self.plmn, self.nodes)
        groups = sorted({g.name for g in self.ue_groups if g.name})
        for i, event in enumerate(self.events):
            if event.until_s is not None and event.until_s <= event.at_s:
                raise ConfigError(
                    f"events[{i}].until_s",
                    f"until_s ({event.until_s}) must be after at_s ({event.at_s})",
                )
            if event.cell is not None and event.cell not in cells:
                raise ConfigError(
                    f"events[{i}].cell",
                    f"unknown cell {event.cell!r}; the scenario's cells: {', '.join(cells)}",
                )
            group = getattr(event, "group", None)
            if group is not None and group not in groups:
                known = ", ".join(groups) or "none has a name"
                raise ConfigError(
                    f"events[{i}].group", f"unknown UE group {group!r}; named ue_groups: {known}"
                )

    def node(self, node_id: int) -> NodeSpec:
        """The node with id ``node_id``; KeyError if none."""
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    @property
    def ue_count(self) -> int:
        """How many UEs the scenario has."""
        return sum(g.count for g in self.ue_groups)


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for k, part in enumerate(loc):
        if k >= 2 and loc[k - 2] == "events" and part in EVENT_KINDS:
            continue  # the union's tag, not a key of the file
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "<scenario>"


def parse_scenario(data: Mapping[str, Any]) -> Scenario:
    """Validate a scenario given as a mapping (parsed TOML); ConfigError names the bad key."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        problem = first["msg"]
        if "input" in first and first["type"] not in ("missing", "extra_forbidden"):
            problem += f" (got {first['input']!r})"
        if first["type"] == "extra_forbidden":
            problem = "unknown key"
        if first["type"] == "union_tag_not_found":
            problem = f"needs kind = one of {', '.join(map(repr, EVENT_KINDS))}"
        if len(errors) > 1:
            others = ", ".join(_key_path(e["loc"]) for e in errors[1:4])
            problem += f"; {len(errors) - 1} more error(s), at {others}"
        raise ConfigError(_key_path(first["loc"]), problem) from exc


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario TOML file; ConfigError names the bad key and problem."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read scenario file: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from exc
    return parse_scenario(data)
