"""The 3GPP TS 28.552 measurements the simulator computes, and how each is derived.

The world keeps running time-integrals (value x microseconds, summed) per cell, per UE and
per cell-and-slice, in the columns named below. A report over any period is the difference of
two snapshots of those integrals, turned into measurements by the functions here, so a node can
serve any number of subscriptions with any reporting periods at the cost of one subtraction.

The UE neighbour measurements are not period averages but the UE's last measurement at report
time, as an RRC measurement report gives them: they come from the world's present state
(:class:`UeNeighbours`) through :data:`UE_SNAPSHOT_METRICS`.

Units are those of ``proto/ric/e2/v1/kpm.proto``:

=====================  ============  ====================================================
metric                 unit          meaning here
=====================  ============  ====================================================
RRU.PrbUsedDl / Ul     PRBs          mean PRBs used for traffic over the period
RRU.PrbAvailDl / Ul    PRBs          mean PRBs available (0 while the cell is off)
RRU.PrbTotDl / Ul      percent       used / available x 100
DRB.UEThpDl / Ul       kbit/s        cell or slice: mean over UE-seconds; UE: its own mean
RRC.ConnMean           UEs           mean number of connected UEs
DRB.RlcSduDelayDl      0.1 ms        data-volume-weighted mean RLC SDU delay
L1M.RSRP               dBm           mean RSRP of the serving cell (UE only)
L1M.SINR               dB            mean SINR on the serving cell (UE only)
L1M.RSRP.Nbr1 .. 3     dBm           RSRP of the UE's k-th strongest neighbour cell, now
                                     (UE only; active cells other than the serving one)
L1M.Nbr1.Nci .. 3      NR cell id    that neighbour's NR cell identity (36 bits, exact as
                                     a double); its cell id is ``<mcc>-<mnc>-<nci>`` with
                                     the serving cell's PLMN
=====================  ============  ====================================================

A metric with no value for a row (no UEs, no traffic, no time attached; no k-th neighbour
heard, or the UE not attached) is NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "CELL_METRICS",
    "NEIGHBOUR_RANKS",
    "SLICE_METRICS",
    "UE_METRICS",
    "UE_NEIGHBOUR_METRICS",
    "UE_SNAPSHOT_METRICS",
    "CellCol",
    "SliceCol",
    "UeCol",
    "UeNeighbours",
    "derive",
    "derive_snapshot",
    "neighbour_nci_metric",
    "neighbour_rsrp_metric",
]

FloatArray = npt.NDArray[np.float64]
Derivation = Callable[[FloatArray, float, FloatArray], FloatArray]
"""(integral deltas rows x columns, period in us, cell PRBs-available integral per row) -> column."""


class CellCol:
    """Columns of the per-cell integrals."""

    PRB_DL = 0  # PRB x us used, downlink
    PRB_AVAIL_DL = 1  # PRB x us available, downlink
    PRB_UL = 2  # PRB x us used, uplink
    PRB_AVAIL_UL = 3  # PRB x us available, uplink
    CONN = 4  # UE x us connected
    VOL_DL = 5  # kbit/s x us (1e-6 kbit) delivered, downlink
    VOL_UL = 6  # kbit/s x us delivered, uplink
    DELAY_VOL_DL = 7  # ms x kbit/s x us: downlink delay weighted by volume
    COUNT = 8


class UeCol:
    """Columns of the per-UE integrals."""

    VOL_DL = 0  # kbit/s x us
    VOL_UL = 1  # kbit/s x us
    PRB_DL = 2  # PRB x us
    PRB_UL = 3  # PRB x us
    DELAY_VOL_DL = 4  # ms x kbit/s x us
    RSRP = 5  # dBm x us, while attached
    SINR = 6  # dB x us, while attached
    ATTACHED = 7  # us attached to a cell
    COUNT = 8


class SliceCol:
    """Columns of the per-cell-and-slice integrals."""

    PRB_DL = 0  # PRB x us
    CONN = 1  # UE x us
    VOL_DL = 2  # kbit/s x us
    VOL_UL = 3  # kbit/s x us
    DELAY_VOL_DL = 4  # ms x kbit/s x us
    COUNT = 5


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0.0)
    return out


def _per_s(col: int) -> Derivation:
    return lambda d, dt_us, _avail: d[:, col] / dt_us


def _per(num: int, den: int, scale: float = 1.0) -> Derivation:
    return lambda d, _dt_us, _avail: scale * _ratio(d[:, num], d[:, den])


CELL_METRICS: Final[Mapping[str, Derivation]] = {
    "RRU.PrbUsedDl": _per_s(CellCol.PRB_DL),
    "RRU.PrbAvailDl": _per_s(CellCol.PRB_AVAIL_DL),
    "RRU.PrbTotDl": _per(CellCol.PRB_DL, CellCol.PRB_AVAIL_DL, 100.0),
    "RRU.PrbUsedUl": _per_s(CellCol.PRB_UL),
    "RRU.PrbAvailUl": _per_s(CellCol.PRB_AVAIL_UL),
    "RRU.PrbTotUl": _per(CellCol.PRB_UL, CellCol.PRB_AVAIL_UL, 100.0),
    "DRB.UEThpDl": _per(CellCol.VOL_DL, CellCol.CONN),
    "DRB.UEThpUl": _per(CellCol.VOL_UL, CellCol.CONN),
    "RRC.ConnMean": _per_s(CellCol.CONN),
    # ms -> 0.1 ms
    "DRB.RlcSduDelayDl": _per(CellCol.DELAY_VOL_DL, CellCol.VOL_DL, 10.0),
}
"""Cell-level measurements (KPM style 1 rows)."""

UE_METRICS: Final[Mapping[str, Derivation]] = {
    "DRB.UEThpDl": _per_s(UeCol.VOL_DL),
    "DRB.UEThpUl": _per_s(UeCol.VOL_UL),
    "RRU.PrbUsedDl": _per_s(UeCol.PRB_DL),
    "RRU.PrbUsedUl": _per_s(UeCol.PRB_UL),
    "DRB.RlcSduDelayDl": _per(UeCol.DELAY_VOL_DL, UeCol.VOL_DL, 10.0),
    "L1M.RSRP": _per(UeCol.RSRP, UeCol.ATTACHED),
    "L1M.SINR": _per(UeCol.SINR, UeCol.ATTACHED),
}
"""UE-level measurements (KPM styles 2-5 rows)."""

SLICE_METRICS: Final[Mapping[str, Derivation]] = {
    "RRU.PrbUsedDl": _per_s(SliceCol.PRB_DL),
    "RRU.PrbTotDl": lambda d, _dt_us, avail: 100.0 * _ratio(d[:, SliceCol.PRB_DL], avail),
    "DRB.UEThpDl": _per(SliceCol.VOL_DL, SliceCol.CONN),
    "DRB.UEThpUl": _per(SliceCol.VOL_UL, SliceCol.CONN),
    "RRC.ConnMean": _per_s(SliceCol.CONN),
    "DRB.RlcSduDelayDl": _per(SliceCol.DELAY_VOL_DL, SliceCol.VOL_DL, 10.0),
}
"""Per-slice measurements of a cell (KPM style 1 with ``per_slice``). RRU.PrbTotDl is the
slice's share of the cell's available PRBs, in percent."""

NEIGHBOUR_RANKS: Final = 3
"""How many of its strongest neighbour cells a UE reports."""


def neighbour_rsrp_metric(rank: int) -> str:
    """The name of the RSRP of a UE's ``rank``-th strongest neighbour (1-based), in dBm."""
    return f"L1M.RSRP.Nbr{rank}"


def neighbour_nci_metric(rank: int) -> str:
    """The name of the NR cell identity of a UE's ``rank``-th strongest neighbour (1-based)."""
    return f"L1M.Nbr{rank}.Nci"


@dataclass(frozen=True, slots=True)
class UeNeighbours:
    """The strongest neighbour cells of some UEs, now: rows x :data:`NEIGHBOUR_RANKS`,
    strongest first, NaN where a UE hears fewer neighbours."""

    rsrp_dbm: FloatArray
    nci: FloatArray
    """NR cell identities (integers, exact as doubles)."""


SnapshotDerivation = Callable[[UeNeighbours], FloatArray]
"""(the UEs' present neighbour measurements) -> column."""


def _rank_col(field: str, rank: int) -> SnapshotDerivation:
    return lambda n: np.asarray(getattr(n, field)[:, rank - 1], dtype=np.float64)


UE_SNAPSHOT_METRICS: Final[Mapping[str, SnapshotDerivation]] = {
    name: derivation
    for k in range(1, NEIGHBOUR_RANKS + 1)
    for name, derivation in (
        (neighbour_rsrp_metric(k), _rank_col("rsrp_dbm", k)),
        (neighbour_nci_metric(k), _rank_col("nci", k)),
    )
}
"""UE-level measurements taken at report time, not averaged over the period."""

UE_NEIGHBOUR_METRICS: Final[tuple[str, ...]] = tuple(UE_SNAPSHOT_METRICS)
"""The neighbour measurement names, rank by rank: RSRP then cell identity."""


def derive(
    table: Mapping[str, Derivation],
    delta: FloatArray,
    dt_us: int,
    metrics: list[str] | tuple[str, ...],
    cell_avail: FloatArray | None = None,
) -> FloatArray:
    """Measurements (rows x metrics) from integral deltas; metrics not in ``table`` are NaN."""
    rows = delta.shape[0]
    out = np.full((rows, len(metrics)), np.nan)
    if rows == 0 or dt_us <= 0:
        return out
    avail = cell_avail if cell_avail is not None else np.zeros(rows)
    for j, name in enumerate(metrics):
        fn = table.get(name)
        if fn is not None:
            out[:, j] = fn(delta, dt_us, avail)
    return out


def derive_snapshot(
    table: Mapping[str, SnapshotDerivation],
    state: UeNeighbours,
    metrics: list[str] | tuple[str, ...],
    out: FloatArray,
) -> None:
    """Fill the columns of ``out`` (rows x metrics) whose metric is in ``table`` from ``state``;
    the other columns are left as they are."""
    for j, name in enumerate(metrics):
        fn = table.get(name)
        if fn is not None:
            out[:, j] = fn(state)
