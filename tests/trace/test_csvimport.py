"""ric trace import-csv: ColO-RAN-like tables become a trace that describes and replays right."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from kpimon import KpiMonitor

from ric.cli import main
from ric.errors import ConfigError
from ric.testing import run_trace
from ric.trace import COLORAN, CsvImportError, TraceReader, import_csv, load_mapping, scan

# The 36 columns of ColO-RAN's <IMSI>_metrics.csv, five of them without a name.
HEADER = (
    "Timestamp,num_ues,IMSI,RNTI,,slicing_enabled,slice_id,slice_prb,power_multiplier,"
    "scheduling_policy,,dl_mcs,dl_n_samples,dl_buffer [bytes],tx_brate downlink [Mbps],"
    "tx_pkts downlink,tx_errors downlink (%),dl_cqi,,ul_mcs,ul_n_samples,ul_buffer [bytes],"
    "rx_brate uplink [Mbps],rx_pkts uplink,rx_errors uplink (%),ul_rssi,ul_sinr,phr,,"
    "sum_requested_prbs,sum_granted_prbs,,dl_pmi,dl_ri,ul_n,ul_turbo_iters"
)
T0 = 1_617_070_530_000


def _row(ts: int, imsi: str, slice_id: int, prbs: int, dl_mbps: float, granted: int) -> str:
    return (
        f"{ts},6,{imsi},70,,1,{slice_id},{prbs},1,0,,9,10,0,{dl_mbps},4,0,8,,12,7,0,0.5,2,0,0,"
        f"30.5,31,,{granted},{granted},,0,0,0,1"
    )


def _ue_file(folder: Path, imsi: str, slice_id: int, prbs: int, dl_mbps: float, rows: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{imsi}_metrics.csv"
    lines = [HEADER]
    lines += [_row(T0 + 250 * i + 10, imsi, slice_id, prbs, dl_mbps, 500) for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """Two base stations: bs1 with three UEs in three slices, bs2 with one UE; 10 s of rows."""
    root = tmp_path / "exp1"
    _ue_file(root / "bs1" / "slices_bs1", "1010123456002", 2, 5, 0.25, 40)
    _ue_file(root / "bs1" / "slices_bs1", "1010123456003", 0, 6, 1.5, 40)
    _ue_file(root / "bs1" / "slices_bs1", "1010123456004", 1, 39, 0.125, 40)
    _ue_file(root / "bs2" / "slices_bs2", "1010123456009", 2, 5, 2.25, 40)
    (root / "bs1" / "bs1.csv").write_text("time,nof_ue,dl_brate,ul_brate\n1,2,3,4\n")
    return root


def test_import_then_info_describes_the_dataset(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI imports the folder and trace info names its base stations, UEs, slices and
    duration."""
    out = tmp_path / "exp1.trace.gz"
    assert main(["trace", "import-csv", str(dataset), "-o", str(out)]) == 0
    said = capsys.readouterr().out
    assert "2 base stations, 4 UEs, 3 slices, 10.0 s" in said
    assert main(["trace", "info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert [n["id"] for n in info["nodes"]] == ["enb-001-01-1", "enb-001-01-2"]
    assert [n["ues"] for n in info["nodes"]] == [3, 1]
    assert info["ues"] == 4
    assert info["slices"] == ["1-000000", "2-000002", "3-000001"]
    assert info["duration_s"] == 10.0
    assert info["compressed"] is True
    assert "DRB.UEThpDl" in info["metrics"]["ue"] and "RRU.PrbAvailDl" in info["metrics"]["cell"]
    assert main(["trace", "info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "nodes     2   cells 2   UEs 4   slices 3" in text


def test_imported_values_are_in_ts_28552_units(dataset: Path, tmp_path: Path) -> None:
    """Mbit/s become kbit/s, granted PRBs per 250 ms become PRBs per TTI, and the slice and
    cell rows aggregate the UEs."""
    out = tmp_path / "t.trace"
    import_csv([dataset], out, COLORAN)
    with TraceReader(out) as reader:
        first = next(iter(reader))
    batch = first.node_message().indications.indications
    ue, per_slice, cell = (ind.kpm.matrix for ind in batch)
    names = list(ue.metric_names)
    assert list(ue.entity_ids) == ["1010123456002", "1010123456003", "1010123456004"]
    thp = names.index("DRB.UEThpDl")
    assert [ue.values[i * len(names) + thp] for i in range(3)] == [250.0, 1500.0, 125.0]
    assert ue.values[names.index("RRU.PrbUsedDl")] == 2.0  # 500 PRBs over 250 TTIs
    assert list(per_slice.entity_ids) == ["1-000000", "2-000002", "3-000001"]
    slice_names = list(per_slice.metric_names)
    avail = slice_names.index("RRU.PrbAvailDl")
    assert [per_slice.values[i * len(slice_names) + avail] for i in range(3)] == [6.0, 5.0, 39.0]
    cell_names = list(cell.metric_names)
    values = dict(zip(cell_names, cell.values, strict=True))
    assert values["DRB.UEThpDl"] == (250.0 + 1500.0 + 125.0) / 3
    assert values["RRU.PrbUsedDl"] == 6.0 and values["RRU.PrbAvailDl"] == 50.0
    assert values["RRC.ConnMean"] == 6.0
    assert first.offset_us == 250_000


async def test_imported_trace_replays_with_kpimon_showing_the_throughput(
    dataset: Path, tmp_path: Path
) -> None:
    """Replayed into the runtime, kpimon shows each base station's mean imported downlink
    throughput."""
    out = tmp_path / "t.trace.gz"
    import_csv([dataset], out)
    result = await run_trace(out, [KpiMonitor], duration_s=9.5)
    kpimon = result.xapps["kpimon"]
    assert isinstance(kpimon, KpiMonitor)
    shown = {k.cell: k for k in kpimon.snapshot()}
    assert set(shown) == {"001-01-257", "001-01-513"}
    assert shown["001-01-257"].dl_mbps == pytest.approx((0.25 + 1.5 + 0.125) / 3)
    assert shown["001-01-513"].dl_mbps == pytest.approx(2.25)
    assert shown["001-01-257"].prb_util_pct == pytest.approx(100 * 6 / 50)
    assert math.isnan(shown["001-01-257"].delay_ms)  # the dataset has no RLC delay
    gauge = result.metrics["kpimon"].value(
        "cell_dl_throughput_bytes_per_second", node="enb-001-01-2", cell="001-01-513"
    )
    assert gauge == pytest.approx(2250.0 * 125)


def test_bad_rows_are_reported_with_file_and_line_and_the_good_rows_kept(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cut-short last line, a value that is not a number and an unknown slice are each
    named with file and line and skipped; every good row is imported."""
    path = dataset / "bs2" / "slices_bs2" / "1010123456009_metrics.csv"
    lines = path.read_text().splitlines()
    lines[5] = lines[5].replace(",2.25,", ",fast,")
    lines[7] = _row(T0 + 1760, "1010123456009", 7, 5, 2.25, 500)
    lines.append(_row(T0 + 250 * 40 + 10, "1010123456009", 2, 5, 2.25, 500)[:40])
    path.write_text("\n".join(lines))  # no final newline, like the real files
    out = tmp_path / "t.trace"
    assert main(["trace", "import-csv", str(dataset), "-o", str(out)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"ric trace import-csv: {path}:6: tx_brate downlink [Mbps] 'fast' is not a number; "
        "row skipped",
        f"ric trace import-csv: {path}:8: slice_id '7' is not a known slice; row skipped",
        f"ric trace import-csv: {path}:42: 9 fields where the header has 36 (a cut-short "
        "line?); row skipped",
    ]
    result = import_csv([dataset], out)
    assert result.rows == 4 * 40 - 2 and len(result.skipped) == 3
    assert scan(out).to_dict()["ues"] == 4


def test_mapping_problems_are_one_line_errors(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing column stops the import naming file and column; a bad mapping file names
    its key; each is one line in the CLI."""
    broken = dataset / "bs1" / "slices_bs1" / "1010123456002_metrics.csv"
    broken.write_text(broken.read_text().replace("tx_brate downlink [Mbps]", "tx_brate"))
    with pytest.raises(CsvImportError, match=r"no column 'tx_brate downlink \[Mbps\]'"):
        import_csv([dataset], tmp_path / "t.trace")
    assert main(["trace", "import-csv", str(dataset), "-o", str(tmp_path / "t.trace")]) == 1
    assert "no column" in capsys.readouterr().err
    mapping = tmp_path / "m.toml"
    mapping.write_text(
        'name = "x"\ntimestamp = "t"\nue = "u"\nperiod_ms = 0\n[[metrics]]\ncolumn = "a"\nname = "DRB.UEThpDl"\n'
    )
    with pytest.raises(ConfigError, match="period_ms"):
        load_mapping(mapping)
    assert main(["trace", "import-csv", str(dataset), "-o", "x.trace", "--mapping", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope" in err[0]
