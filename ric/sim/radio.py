"""Radio models of the simulator: bands, path loss, antennas, SINR, rates and PRB sharing.

Pure functions over numpy arrays, vectorised over UEs, cells and slices. They keep no state
and draw no random numbers: the :class:`ric.sim.world.World` owns both.

The models are deliberately simple and documented, not calibrated:

- path loss: 3GPP TR 38.901 Urban Macro, NLOS form (``max(PL_LOS, PL'_NLOS)``), without
  the LOS probability and breakpoint; log-normal shadowing is added by the world;
- antenna: the 3GPP horizontal sector pattern (TR 36.814 / 38.901), 65 degree beamwidth;
- rate: attenuated Shannon (TR 36.942 A.1) capped at 256-QAM efficiency, times the PRB
  bandwidth, the duplex share of the band and a fixed control overhead;
- PRB sharing: slice quotas after O-RAN's RRM policy ratios (dedicated / min / max, percent of
  the cell's PRBs), then proportional to need among the UEs of a slice;
- delay: a per-slice base delay stretched by an M/M/1-like factor of the slice's load.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "BANDS",
    "NRB_TABLE",
    "Band",
    "PrbShare",
    "bearing_deg",
    "noise_per_re_dbm",
    "path_loss_db",
    "prb_count",
    "prb_rate_kbps",
    "queue_delay_ms",
    "sector_gain_db",
    "share_prbs",
    "spectral_efficiency",
]

FloatArray = npt.NDArray[np.float64]

THERMAL_NOISE_DBM_PER_HZ: Final = -174.0
"""Thermal noise density at 290 K, dBm/Hz."""
SUBCARRIERS_PER_PRB: Final = 12
CONTROL_OVERHEAD: Final = 0.14
"""Share of resource elements lost to reference signals and control channels."""
SHANNON_ATTENUATION: Final = 0.6
"""Implementation margin of the attenuated Shannon bound (TR 36.942 A.1)."""
SE_MAX_BPS_PER_HZ: Final = 7.4
"""Spectral efficiency cap in bit/s/Hz: 256-QAM, code rate 0.93 (TS 38.214 CQI 15)."""
SINR_MIN_DB: Final = -10.0
"""Below this SINR (dB) no transport block decodes: the rate is zero."""
MAX_LOAD: Final = 0.98
"""Queue load ceiling of the delay model, so an overloaded slice has a large finite delay."""


@dataclass(frozen=True, slots=True)
class Band:
    """An NR operating band as the simulator models it."""

    number: int
    centre_ghz: float
    """Carrier frequency used for path loss, GHz."""
    duplex: str
    """"FDD" or "TDD"."""
    scs_khz: int
    """Subcarrier spacing, kHz."""
    dl_share: float
    """Share of time-frequency resources for the downlink (TDD slot pattern), 0..1."""
    ul_share: float
    """Share for the uplink, 0..1."""


_TDD_DL: Final = 0.74  # DDDSU with a 10:2:2 special slot
_TDD_UL: Final = 0.23

BANDS: Final[dict[int, Band]] = {
    1: Band(1, 2.14, "FDD", 15, 1.0, 1.0),
    3: Band(3, 1.84, "FDD", 15, 1.0, 1.0),
    7: Band(7, 2.655, "FDD", 15, 1.0, 1.0),
    28: Band(28, 0.78, "FDD", 15, 1.0, 1.0),
    41: Band(41, 2.593, "TDD", 30, _TDD_DL, _TDD_UL),
    77: Band(77, 3.8, "TDD", 30, _TDD_DL, _TDD_UL),
    78: Band(78, 3.55, "TDD", 30, _TDD_DL, _TDD_UL),
}
"""The bands a scenario may use, by NR band number (TS 38.101-1 Table 5.2-1)."""

NRB_TABLE: Final[dict[int, dict[int, int]]] = {
    15: {5: 25, 10: 52, 15: 79, 20: 106, 25: 133, 30: 160, 35: 188, 40: 216, 45: 242, 50: 270},
    30: {
        5: 11,
        10: 24,
        15: 38,
        20: 51,
        25: 65,
        30: 78,
        35: 92,
        40: 106,
        45: 119,
        50: 133,
        60: 162,
        70: 189,
        80: 217,
        90: 245,
        100: 273,
    },
}
"""Maximum transmission bandwidth in PRBs by subcarrier spacing (kHz) and channel bandwidth
(MHz), TS 38.101-1 Table 5.3.2-1."""


def prb_count(band: int, bandwidth_mhz: int) -> int:
    """PRBs of a carrier of ``bandwidth_mhz`` MHz in ``band``; ValueError if not allowed."""
    if band not in BANDS:
        raise ValueError(f"unknown band n{band}; known: {', '.join(f'n{b}' for b in BANDS)}")
    scs = BANDS[band].scs_khz
    table = NRB_TABLE[scs]
    if bandwidth_mhz not in table:
        allowed = ", ".join(str(mhz) for mhz in table)
        raise ValueError(
            f"{bandwidth_mhz} MHz is not a channel bandwidth of n{band} at {scs} kHz SCS; "
            f"allowed (MHz): {allowed}"
        )
    return table[bandwidth_mhz]


def path_loss_db(
    d2d_m: FloatArray, fc_ghz: FloatArray | float, h_bs_m: FloatArray | float, h_ut_m: float
) -> FloatArray:
    """3GPP TR 38.901 UMa NLOS path loss in dB for 2D distances ``d2d_m`` (metres).

    Distances are floored at 10 m; arrays broadcast (UEs x cells).
    """
    d3d = np.sqrt(np.square(d2d_m) + np.square(np.asarray(h_bs_m) - h_ut_m))
    d3d = np.maximum(d3d, 10.0)
    log_d = np.log10(d3d)
    log_f = 20.0 * np.log10(fc_ghz)
    pl_los = 28.0 + 22.0 * log_d + log_f
    pl_nlos = 13.54 + 39.08 * log_d + log_f - 0.6 * (h_ut_m - 1.5)
    out: FloatArray = np.maximum(pl_los, pl_nlos)
    return out


def bearing_deg(dx_m: FloatArray, dy_m: FloatArray) -> FloatArray:
    """Compass bearing in degrees (0 = north, clockwise) of the vector (dx east, dy north)."""
    out: FloatArray = np.degrees(np.arctan2(dx_m, dy_m))
    return out


def sector_gain_db(
    bearing: FloatArray,
    azimuth_deg: FloatArray,
    *,
    max_gain_dbi: float = 14.0,
    beamwidth_deg: float = 65.0,
    front_to_back_db: float = 30.0,
) -> FloatArray:
    """Gain in dBi of a sector antenna pointing at ``azimuth_deg`` towards ``bearing`` degrees.

    3GPP horizontal pattern: ``G_max - min(12 (theta / theta_3dB)^2, A_m)``.
    """
    off = (bearing - azimuth_deg + 180.0) % 360.0 - 180.0
    out: FloatArray = max_gain_dbi - np.minimum(
        12.0 * np.square(off / beamwidth_deg), front_to_back_db
    )
    return out


def noise_per_re_dbm(scs_khz: FloatArray | float, noise_figure_db: float) -> FloatArray:
    """Thermal noise plus receiver noise figure in one resource element, dBm."""
    out: FloatArray = np.asarray(
        THERMAL_NOISE_DBM_PER_HZ + 10.0 * np.log10(np.asarray(scs_khz) * 1e3) + noise_figure_db,
        dtype=np.float64,
    )
    return out


def spectral_efficiency(sinr_db: FloatArray) -> FloatArray:
    """Attenuated-Shannon spectral efficiency in bit/s/Hz; 0 below SINR_MIN_DB, capped."""
    sinr_lin = np.power(10.0, np.asarray(sinr_db) / 10.0)
    se = np.minimum(SHANNON_ATTENUATION * np.log2(1.0 + sinr_lin), SE_MAX_BPS_PER_HZ)
    out: FloatArray = np.where(np.asarray(sinr_db) < SINR_MIN_DB, 0.0, se)
    return out


def prb_rate_kbps(
    se_bps_per_hz: FloatArray, scs_khz: FloatArray, duplex_share: FloatArray
) -> FloatArray:
    """Throughput of one PRB in kbit/s at spectral efficiency ``se_bps_per_hz``.

    bit/s/Hz times kHz gives kbit/s: 12 subcarriers x SCS, less overhead, times the share of
    time the band gives this direction.
    """
    out: FloatArray = (
        se_bps_per_hz * SUBCARRIERS_PER_PRB * scs_khz * duplex_share * (1.0 - CONTROL_OVERHEAD)
    )
    return out


@dataclass(frozen=True, slots=True)
class PrbShare:
    """Result of :func:`share_prbs`, per cell and slice (shape cells x slices), in PRBs."""

    used: FloatArray
    """PRBs each slice uses."""
    capacity: FloatArray
    """PRBs each slice could use at most right now (its use plus what it could still take)."""


def share_prbs(
    need_prb: FloatArray,
    total_prb: FloatArray,
    min_pct: FloatArray,
    max_pct: FloatArray,
    dedicated_pct: FloatArray,
) -> PrbShare:
    """Share each cell's PRBs between its slices under RRM-policy quotas.

    ``need_prb`` (cells x slices) is what each slice's UEs would need to meet their demand;
    ``total_prb`` (cells) the cell's PRBs (0 when the cell is off); the percentages (cells x
    slices) follow O-RAN's RRM policy ratios with ``dedicated <= min <= max`` and the sum of
    ``min`` over slices at most 100:

    1. each slice first gets up to its minimum share (its guarantee);
    2. a slice's dedicated PRBs it does not use stay idle: nobody else may use them;
    3. the remaining PRBs go to slices still in need, up to their maximum share,
       proportionally to what they still need.
    """
    total = total_prb[:, None]
    dedicated = dedicated_pct / 100.0 * total
    guaranteed = np.maximum(min_pct, dedicated_pct) / 100.0 * total
    cap = max_pct / 100.0 * total
    first = np.minimum(need_prb, guaranteed)
    idle_reserved = np.maximum(dedicated - first, 0.0)
    pool = np.maximum(total[:, 0] - first.sum(axis=1) - idle_reserved.sum(axis=1), 0.0)
    residual = np.maximum(np.minimum(need_prb, cap) - first, 0.0)
    residual_sum = residual.sum(axis=1)
    scale = np.ones_like(pool)
    over = residual_sum > pool
    scale[over] = pool[over] / residual_sum[over]
    extra = residual * scale[:, None]
    used = first + extra
    leftover = np.maximum(pool - extra.sum(axis=1), 0.0)
    # What a slice could still take: the pool left over, its own idle dedicated PRBs, within
    # its cap.
    capacity = np.minimum(used + leftover[:, None] + idle_reserved, np.maximum(cap, dedicated))
    return PrbShare(used=used, capacity=np.maximum(capacity, used))


def queue_delay_ms(
    base_ms: FloatArray, need_prb: FloatArray, capacity_prb: FloatArray
) -> FloatArray:
    """Mean queueing delay in ms: ``base / (1 - load)``, load = need / capacity, capped."""
    with np.errstate(divide="ignore", invalid="ignore"):
        load = np.where(
            capacity_prb > 0.0, need_prb / capacity_prb, np.where(need_prb > 0, 1.0, 0.0)
        )
    out: FloatArray = base_ms / (1.0 - np.minimum(load, MAX_LOAD))
    return out
