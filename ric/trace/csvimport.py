"""``ric trace import-csv``: per-UE KPI tables (CSV) turned into a trace that replays.

A :class:`CsvMapping` says which column holds what: the timestamp, the UE, its slice, and
the measurements, each mapped to a 3GPP TS 28.552 name in that name's unit (a factor
converts: Mbit/s x 1000 -> kbit/s). Rows are binned into reporting periods of
``period_ms``; each period becomes, per base station, one IndicationBatch with three
measurement matrices: per UE (KPM style 5), per slice and per cell (style 1), the slice and
cell rows aggregated from the UEs by each metric's rule (``mean`` or ``sum``), plus
``RRU.PrbAvailDl`` (the slice's PRBs, the cell's bandwidth) and ``RRC.ConnMean`` (the UEs
the base station reports, or counted). Each base station (found by a folder name such as
``bs3``) is one E2 node with one cell, set up at the start of the trace with a KPM function
announcing exactly the imported names and an RC function (handover, slice PRB quota), so
that xApps can be replayed against it with ``--controls ack``.

:data:`COLORAN` is the ready mapping for the public ColO-RAN dataset's per-UE slice metrics
files (``<IMSI>_metrics.csv``, in ``bs<N>/slices_bs<N>/``; srsLTE, 10 MHz = 50 PRBs, a row
every 250 ms). Measurements with no TS 28.552 counterpart keep a ``ColoRAN.`` name.

Files are read as streams and merged by time, so an import never holds more than one period.
A row that cannot be parsed (a short or truncated line, a value that is not a number, an
unknown slice, a time that goes back) is reported with its file and line and skipped, never
silently; a file that lacks a mapped column stops the import with :class:`CsvImportError`.
"""

from __future__ import annotations

import csv
import heapq
import math
import re
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ric._proto.e2.v1 import common_pb2, e2_pb2, kpm_pb2, rc_pb2
from ric.e2.convert import cell_id_to_proto
from ric.errors import ConfigError, RicError
from ric.ids import CellId, NodeId, NodeType, Plmn, SliceId
from ric.model import KPM_OID, RC_OID
from ric.trace.format import Direction, NodeSetup, TraceHeader, TraceWriter

__all__ = [
    "COLORAN",
    "MAPPINGS",
    "CsvImportError",
    "CsvMapping",
    "ImportResult",
    "MetricColumn",
    "SkippedRow",
    "import_csv",
    "load_mapping",
]

KPM_FUNCTION_ID = 1
RC_FUNCTION_ID = 2
PRB_AVAIL = "RRU.PrbAvailDl"
CONN_MEAN = "RRC.ConnMean"
Aggregate = Literal["mean", "sum", "none"]


class CsvImportError(RicError):
    """A CSV import cannot go on (no files, a file without a mapped column)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricColumn(_Model):
    """One CSV column imported as one measurement."""

    column: str
    """The column's name in the CSV header."""
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.\-]*$")
    """The measurement name in the trace (TS 28.552 where there is one)."""
    factor: float = 1.0
    """The CSV value times this is the value in the measurement's unit."""
    cell: Aggregate = "mean"
    """How the UEs' values make the cell's: mean, sum, or none (no cell-level value)."""
    slice: Aggregate = "mean"
    """How the UEs' values make the slice's."""


class CsvMapping(_Model):
    """How the columns of per-UE KPI tables map to a trace (see the module docstring)."""

    name: str
    files: str = "*.csv"
    """Glob of the files to read under a source folder (searched recursively)."""
    timestamp: str
    timestamp_unit: Literal["ms", "s", "us"] = "ms"
    ue: str
    """The column with the UE's id (decimal digits; it becomes the RAN UE id)."""
    slice: str | None = None
    """The column with the UE's slice, if any."""
    slices: dict[str, str] = Field(default_factory=dict)
    """Slice column value -> S-NSSAI ``sst-sd``; empty: the values are S-NSSAIs already."""
    slice_prbs: str | None = None
    """The column with the PRBs of the UE's slice (slice-level RRU.PrbAvailDl)."""
    cell_ues: str | None = None
    """The column with the number of UEs the base station serves (cell RRC.ConnMean)."""
    node_folder: str = r"bs(\d+)"
    """A folder name on a file's path that names its base station; group 1 is its number
    (files outside any such folder belong to base station 1)."""
    node_type: Literal["gnb", "enb"] = "gnb"
    plmn: str = "001-01"
    period_ms: int = Field(1000, ge=1, le=3_600_000)
    bandwidth_prbs: int = Field(106, ge=1, le=275)
    subcarrier_spacing_khz: int = 30
    vendor: str = ""
    metrics: tuple[MetricColumn, ...] = Field(min_length=1)

    @field_validator("slices")
    @classmethod
    def _check_slices(cls, value: dict[str, str]) -> dict[str, str]:
        for raw, text in value.items():
            try:
                SliceId.parse(text)
            except ValueError as exc:
                raise ValueError(f"slice {raw!r}: {exc}") from None
        return value

    @field_validator("node_folder")
    @classmethod
    def _check_pattern(cls, value: str) -> str:
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise ValueError(f"is not a regular expression: {exc}") from None
        if pattern.groups < 1:
            raise ValueError("needs a group for the base station number, e.g. 'bs(\\d+)'")
        return value

    @field_validator("plmn")
    @classmethod
    def _check_plmn(cls, value: str) -> str:
        mcc, _, mnc = value.partition("-")
        Plmn(mcc, mnc)
        return value

    @field_validator("metrics")
    @classmethod
    def _check_metrics(cls, value: tuple[MetricColumn, ...]) -> tuple[MetricColumn, ...]:
        names = [m.name for m in value]
        if len(set(names)) != len(names):
            raise ValueError("a measurement name is mapped twice")
        if {PRB_AVAIL, CONN_MEAN} & set(names):
            raise ValueError(f"{PRB_AVAIL} and {CONN_MEAN} are made by the import itself")
        return value


COLORAN = CsvMapping(
    name="coloran",
    files="*_metrics.csv",
    timestamp="Timestamp",
    timestamp_unit="ms",
    ue="IMSI",
    slice="slice_id",
    # ColO-RAN slices: 0 eMBB, 1 MTC, 2 URLLC -> SST 1 (eMBB), 3 (MIoT), 2 (URLLC).
    slices={"0": "1-000000", "1": "3-000001", "2": "2-000002"},
    slice_prbs="slice_prb",
    cell_ues="num_ues",
    node_folder=r"bs(\d+)",
    node_type="enb",
    period_ms=250,
    bandwidth_prbs=50,
    subcarrier_spacing_khz=15,
    vendor="ColO-RAN dataset (srsLTE on Colosseum)",
    metrics=(
        MetricColumn(column="tx_brate downlink [Mbps]", name="DRB.UEThpDl", factor=1000.0),
        MetricColumn(column="rx_brate uplink [Mbps]", name="DRB.UEThpUl", factor=1000.0),
        # PRBs granted, summed over the 250 TTIs (1 ms) of a row: / 250 = mean PRBs per TTI.
        MetricColumn(
            column="sum_granted_prbs",
            name="RRU.PrbUsedDl",
            factor=1 / 250,
            cell="sum",
            slice="sum",
        ),
        MetricColumn(
            column="sum_requested_prbs",
            name="ColoRAN.PrbReqDl",
            factor=1 / 250,
            cell="sum",
            slice="sum",
        ),
        MetricColumn(column="dl_mcs", name="ColoRAN.McsDl"),
        MetricColumn(column="dl_cqi", name="ColoRAN.CqiDl"),
        MetricColumn(column="dl_buffer [bytes]", name="ColoRAN.BufferDl", cell="sum", slice="sum"),
        MetricColumn(column="ul_sinr", name="ColoRAN.SinrUl"),
    ),
)
"""The mapping for ColO-RAN's ``<IMSI>_metrics.csv`` files (see the module docstring)."""

MAPPINGS = {"coloran": COLORAN}
"""The ready mappings, by name."""


def load_mapping(name_or_path: str | Path) -> CsvMapping:
    """A ready mapping by name (``coloran``), or one from a TOML file with the same keys."""
    if isinstance(name_or_path, str) and name_or_path in MAPPINGS:
        return MAPPINGS[name_or_path]
    path = Path(name_or_path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        names = ", ".join(MAPPINGS)
        raise ConfigError(
            "--mapping", f"{path} is neither a mapping file nor a ready mapping ({names})"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--mapping", f"{path} is not valid TOML: {exc}") from None
    try:
        return CsvMapping.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "mapping"
        raise ConfigError(key, f"{err['msg'].lower()} (in {path})") from None


@dataclass(frozen=True, slots=True)
class SkippedRow:
    """A row that could not be imported: where, and why."""

    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}; row skipped"


@dataclass
class ImportResult:
    """What an import wrote."""

    path: Path
    mapping: str
    files: list[Path]
    rows: int = 0
    frames: int = 0
    nodes: list[str] = field(default_factory=list)
    ues: set[str] = field(default_factory=set)
    slices: set[str] = field(default_factory=set)
    duration_s: float = 0.0
    skipped: list[SkippedRow] = field(default_factory=list)


@dataclass(slots=True)
class _Row:
    ts_ms: int
    node: int
    ue: str
    slice: str
    values: list[float]
    slice_prbs: float
    cell_ues: float
    path: Path
    line: int


_UNIT_MS = {"ms": 1.0, "s": 1000.0, "us": 0.001}


def _node_of(path: Path, pattern: re.Pattern[str]) -> int:
    for part in reversed(path.parent.parts):
        match = pattern.fullmatch(part)
        if match:
            return int(match.group(1))
    return 1


def _number(text: str) -> float:
    text = text.strip()
    return math.nan if text == "" else float(text)


class _File:
    """One CSV file, read as a stream of parsed rows."""

    def __init__(self, path: Path, mapping: CsvMapping, node: int) -> None:
        self.path = path
        self.mapping = mapping
        self.node = node

    def rows(self, skip: Callable[[SkippedRow], None]) -> Iterator[_Row]:
        m = self.mapping
        with open(self.path, newline="", encoding="utf-8", errors="replace") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                skip(SkippedRow(self.path, 1, "the file is empty (no header)"))
                return
            columns: dict[str, int] = {}
            for i, name in enumerate(header):
                if name.strip() and name not in columns:
                    columns[name] = i

            def col(name: str | None) -> int:
                if name is None:
                    return -1
                if name not in columns:
                    known = ", ".join(repr(c) for c in columns)
                    raise CsvImportError(
                        f"{self.path}: no column {name!r}, which mapping {m.name!r} needs "
                        f"(the columns are {known})"
                    )
                return columns[name]

            i_ts, i_ue, i_slice = col(m.timestamp), col(m.ue), col(m.slice)
            i_prbs, i_ues = col(m.slice_prbs), col(m.cell_ues)
            i_metrics = [(mc.column, col(mc.column), mc.factor) for mc in m.metrics]
            width = len(header)
            unit = _UNIT_MS[m.timestamp_unit]
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != width:
                    skip(
                        SkippedRow(
                            self.path,
                            line,
                            f"{len(row)} fields where the header has {width} (a cut-short line?)",
                        )
                    )
                    continue
                try:
                    ts = float(row[i_ts])
                    if not math.isfinite(ts):
                        raise ValueError
                except ValueError:
                    skip(SkippedRow(self.path, line, f"{m.timestamp} {row[i_ts]!r} is not a time"))
                    continue
                ue = row[i_ue].strip()
                if not ue.isdigit():
                    skip(SkippedRow(self.path, line, f"{m.ue} {ue!r} is not a decimal UE id"))
                    continue
                slice_text = ""
                if i_slice >= 0:
                    raw = row[i_slice].strip()
                    mapped = m.slices.get(raw) if m.slices else raw
                    try:
                        slice_text = str(SliceId.parse(mapped or ""))
                    except ValueError:
                        skip(SkippedRow(self.path, line, f"{m.slice} {raw!r} is not a known slice"))
                        continue
                values: list[float] = []
                bad = ""
                for name, index, factor in i_metrics:
                    try:
                        values.append(_number(row[index]) * factor)
                    except ValueError:
                        bad = f"{name} {row[index]!r} is not a number"
                        break
                try:
                    prbs = _number(row[i_prbs]) if i_prbs >= 0 else math.nan
                    ues = _number(row[i_ues]) if i_ues >= 0 else math.nan
                except ValueError:
                    bad = bad or "the slice PRBs or UE count is not a number"
                if bad:
                    skip(SkippedRow(self.path, line, bad))
                    continue
                yield _Row(
                    round(ts * unit), self.node, ue, slice_text, values, prbs, ues, self.path, line
                )


def _files(sources: Sequence[str | Path], mapping: CsvMapping) -> list[Path]:
    out: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            found = sorted(p for p in path.rglob(mapping.files) if p.is_file())
            if not found:
                raise CsvImportError(f"{path}: no files match {mapping.files!r}")
            out += found
        elif path.is_file():
            out.append(path)
        else:
            raise CsvImportError(f"{path}: no such file or folder")
    if not out:
        raise CsvImportError("no CSV files to import")
    return list(dict.fromkeys(out))


def _setup(mapping: CsvMapping, node: int, plmn: Plmn) -> tuple[str, e2_pb2.E2SetupRequest]:
    node_type = NodeType.ENB if mapping.node_type == "enb" else NodeType.GNB
    node_id = NodeId(plmn, node, node_type)
    nci = node * 256 + 1 if node_type is NodeType.ENB else node * 4096 + 1
    cell = CellId(plmn, nci)
    plmn_pb = common_pb2.PlmnId(mcc=plmn.mcc, mnc=plmn.mnc)
    ue_names = [m.name for m in mapping.metrics]
    cell_names = [m.name for m in mapping.metrics if m.cell != "none" or m.slice != "none"]
    cell_names += [PRB_AVAIL, CONN_MEAN]
    kpm = e2_pb2.RanFunction(
        ran_function_id=KPM_FUNCTION_ID,
        oid=KPM_OID,
        short_name="ORAN-E2SM-KPM",
        revision=3,
        description=f"KPIs imported with mapping {mapping.name}",
        kpm=kpm_pb2.KpmFunctionDefinition(
            report_styles=[
                kpm_pb2.KpmReportStyle(
                    style=1, name="E2 node measurement", metric_names=cell_names
                ),
                kpm_pb2.KpmReportStyle(style=5, name="multiple UEs", metric_names=ue_names),
            ],
            min_reporting_period_ms=mapping.period_ms,
        ),
    )
    rc = e2_pb2.RanFunction(
        ran_function_id=RC_FUNCTION_ID,
        oid=RC_OID,
        short_name="ORAN-E2SM-RC",
        revision=1,
        description="controls are not applied to imported data; replay them with --controls ack",
        rc=rc_pb2.RcFunctionDefinition(
            control_styles=[
                rc_pb2.RcControlStyle(
                    style=3,
                    name="connected mode mobility",
                    actions=[rc_pb2.RcControlAction(action_id=1, name="handover")],
                ),
                rc_pb2.RcControlStyle(
                    style=2,
                    name="radio resource allocation",
                    actions=[rc_pb2.RcControlAction(action_id=6, name="slice PRB quota")],
                ),
            ]
        ),
    )
    setup = e2_pb2.E2SetupRequest(
        transaction_id=1,
        node_id=common_pb2.GlobalNodeId(
            plmn=plmn_pb,
            node_id=node,
            type=common_pb2.NODE_TYPE_ENB
            if node_type is NodeType.ENB
            else common_pb2.NODE_TYPE_GNB,
        ),
        vendor=mapping.vendor or f"imported CSV ({mapping.name})",
        software_version=f"ric trace import-csv ({mapping.name})",
        ran_functions=[kpm, rc],
        cells=[
            common_pb2.Cell(
                cgi=cell_id_to_proto(cell),
                pci=node % 1008,
                bandwidth_prbs=mapping.bandwidth_prbs,
                subcarrier_spacing_khz=mapping.subcarrier_spacing_khz,
                active=True,
            )
        ],
    )
    return str(node_id), setup


def _aggregate(
    rule: Aggregate, column: npt.NDArray[np.float64], groups: list[list[int]]
) -> list[float]:
    """Per group of rows, the sum or mean of the column's values that are not NaN."""
    out = []
    for rows in groups:
        values = [v for v in column[rows].tolist() if not math.isnan(v)]
        if not values:
            out.append(math.nan)
        elif rule == "sum":
            out.append(math.fsum(values))
        else:
            out.append(math.fsum(values) / len(values))
    return out


class _Period:
    """The rows of one reporting period, by node and UE; turned into one batch per node."""

    def __init__(self, mapping: CsvMapping, cells: dict[int, str]) -> None:
        self.mapping = mapping
        self.cells = cells
        self.rows: dict[int, dict[str, list[_Row]]] = {}

    def add(self, row: _Row) -> None:
        self.rows.setdefault(row.node, {}).setdefault(row.ue, []).append(row)

    def batches(self, start_ms: int) -> Iterator[tuple[int, e2_pb2.NodeMessage]]:
        m = self.mapping
        names = tuple(mc.name for mc in m.metrics)
        for node in sorted(self.rows):
            by_ue = self.rows[node]
            cell = self.cells[node]
            ues = sorted(by_ue, key=lambda u: (len(u), u))
            ue_values = np.array(
                [_mean_rows([r.values for r in by_ue[u]]) for u in ues], dtype=np.float64
            ).reshape(len(ues), len(names))
            ue_slices = [by_ue[u][-1].slice for u in ues]
            batch = e2_pb2.IndicationBatch()
            matrix = _Matrix(batch, start_ms, m.period_ms)
            matrix.add(
                1,
                kpm_pb2.ENTITY_KIND_UE,
                names,
                ues,
                cells=[cell] * len(ues),
                slices=ue_slices if m.slice else [],
                values=ue_values.ravel().tolist(),
            )
            slice_ids = sorted(set(ue_slices)) if m.slice else []
            if slice_ids:
                groups = [[i for i, s in enumerate(ue_slices) if s == sid] for sid in slice_ids]
                kept = [(j, mc) for j, mc in enumerate(m.metrics) if mc.slice != "none"]
                columns = [_aggregate(mc.slice, ue_values[:, j], groups) for j, mc in kept]
                prbs = [
                    _mean([r.slice_prbs for u in ues for r in by_ue[u] if r.slice == sid])
                    for sid in slice_ids
                ]
                counts = [float(len(g)) for g in groups]
                matrix.add(
                    2,
                    kpm_pb2.ENTITY_KIND_SLICE,
                    (*(mc.name for _, mc in kept), PRB_AVAIL, CONN_MEAN),
                    slice_ids,
                    cells=[cell] * len(slice_ids),
                    values=np.array([*columns, prbs, counts]).T.ravel().tolist(),
                )
            everyone = [list(range(len(ues)))]
            kept = [(j, mc) for j, mc in enumerate(m.metrics) if mc.cell != "none"]
            columns = [_aggregate(mc.cell, ue_values[:, j], everyone) for j, mc in kept]
            conn = _mean([r.cell_ues for u in ues for r in by_ue[u]])
            matrix.add(
                3,
                kpm_pb2.ENTITY_KIND_CELL,
                (*(mc.name for _, mc in kept), PRB_AVAIL, CONN_MEAN),
                [cell],
                values=[
                    *(c[0] for c in columns),
                    float(m.bandwidth_prbs),
                    float(len(ues)) if math.isnan(conn) else conn,
                ],
            )
            yield node, e2_pb2.NodeMessage(indications=batch)


def _mean(values: Sequence[float]) -> float:
    """The mean of the values that are not NaN (NaN if none is)."""
    kept = [v for v in values if not math.isnan(v)]
    return math.fsum(kept) / len(kept) if kept else math.nan


def _mean_rows(rows: Sequence[Sequence[float]]) -> list[float]:
    """Column by column, the mean of the values that are not NaN."""
    if len(rows) == 1:
        return list(rows[0])
    return [_mean(column) for column in zip(*rows, strict=True)]


class _Matrix:
    """Adds measurement matrices of one period to an IndicationBatch."""

    def __init__(self, batch: e2_pb2.IndicationBatch, start_ms: int, period_ms: int) -> None:
        self.batch = batch
        self.start_ms = start_ms
        self.period_ms = period_ms

    def add(
        self,
        action_id: int,
        kind: kpm_pb2.EntityKind.ValueType,
        metrics: Sequence[str],
        ids: Sequence[str],
        *,
        cells: Sequence[str] = (),
        slices: Sequence[str] = (),
        values: list[float],
    ) -> None:
        ind = self.batch.indications.add()
        ind.ran_function_id = KPM_FUNCTION_ID
        ind.action_id = action_id
        ind.type = e2_pb2.INDICATION_TYPE_REPORT
        ind.kpm.collection_start_unix_ms = self.start_ms
        ind.kpm.granularity_period_ms = self.period_ms
        matrix = ind.kpm.matrix
        matrix.entity_kind = kind
        matrix.metric_names.extend(metrics)
        matrix.entity_ids.extend(ids)
        matrix.entity_cells.extend(cells)
        matrix.entity_slices.extend(slices)
        matrix.values.extend(values)


def import_csv(
    sources: Sequence[str | Path],
    out: str | Path,
    mapping: CsvMapping = COLORAN,
    *,
    compress: bool | None = None,
    on_skip: Callable[[SkippedRow], None] | None = None,
) -> ImportResult:
    """Import the CSV files of ``sources`` (files, or folders searched for ``mapping.files``)
    into the trace ``out``; see the module docstring. ``on_skip`` hears of each skipped row as
    it is found (all are also in ``result.skipped``)."""
    files = _files(sources, mapping)
    mcc, _, mnc = mapping.plmn.partition("-")
    plmn = Plmn(mcc, mnc)
    pattern = re.compile(mapping.node_folder)
    readers = [_File(p, mapping, _node_of(p, pattern)) for p in files]
    setups = {r.node: _setup(mapping, r.node, plmn) for r in sorted(readers, key=lambda r: r.node)}
    cells = {n: f"{plmn}-{s.cells[0].cgi.nr_cell_identity}" for n, (_, s) in setups.items()}
    result = ImportResult(Path(out), mapping.name, files)

    def skip(row: SkippedRow) -> None:
        result.skipped.append(row)
        if on_skip is not None:
            on_skip(row)

    merged = heapq.merge(*(r.rows(skip) for r in readers), key=lambda row: row.ts_ms)
    first = next(merged, None)
    if first is None:
        raise CsvImportError(
            f"no row of the {len(files)} file(s) could be imported ({len(result.skipped)} skipped)"
        )
    period = mapping.period_ms
    start_ms = first.ts_ms // period * period
    header = TraceHeader(
        start_unix_us=start_ms * 1000,
        source=f"ric trace import-csv (mapping {mapping.name})",
        nodes=tuple(NodeSetup(node_id, setup) for node_id, setup in setups.values()),
        metadata={
            "import.mapping": mapping.name,
            "import.period_ms": str(period),
            "import.files": str(len(files)),
            "import.sources": ", ".join(str(s) for s in sources),
        },
    )
    result.nodes = [node_id for node_id, _ in setups.values()]
    bin_index = first.ts_ms // period
    current = _Period(mapping, cells)
    end_ms = start_ms
    with TraceWriter(out, header, compress=compress) as writer:

        def flush(index: int) -> None:
            nonlocal end_ms
            bin_start = index * period
            end_ms = bin_start + period
            offset_us = (end_ms - start_ms) * 1000
            for node, msg in current.batches(bin_start):
                writer.add(
                    offset_us, setups[node][0], Direction.NODE_TO_RIC, msg.SerializeToString()
                )
                result.frames += 1

        row: _Row | None = first
        while row is not None:
            index = row.ts_ms // period
            if index < bin_index:
                skip(
                    SkippedRow(
                        row.path,
                        row.line,
                        "the time goes back before a period already written (the file is not "
                        "in time order)",
                    )
                )
            else:
                if index > bin_index:
                    flush(bin_index)
                    current = _Period(mapping, cells)
                    bin_index = index
                current.add(row)
                result.rows += 1
                result.ues.add(row.ue)
                if row.slice:
                    result.slices.add(row.slice)
            row = next(merged, None)
        flush(bin_index)
    result.duration_s = (end_ms - start_ms) / 1000.0
    return result
