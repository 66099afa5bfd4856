"""The benchmark suite runs end to end in a tiny configuration; figures are never asserted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ric.bench import SECTIONS, BenchConfig, format_table, run_bench, write_results
from ric.cli import main


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    """One tiny run of every section (a few seconds of load per section)."""
    return run_bench(BenchConfig.tiny())


def test_every_section_has_value_baseline_and_ratio(results: dict[str, Any]) -> None:
    """Each section reports its figure, the baseline measured in the same run, and a ratio."""
    for name in SECTIONS:
        section = results[name]
        assert {"what", "value", "baseline", "ratio"} <= set(section), name


def test_ingest_and_control_measured_something(results: dict[str, Any]) -> None:
    """Values reached the xApp and controls came back: the path was exercised, not skipped."""
    ingest = results["ingest"]
    assert ingest["value"]["values_per_s"] > 0
    assert ingest["baseline"]["values_per_s"] > 0
    control = results["control"]
    for side in ("value", "baseline"):
        at_rate = control[side]["at_rate"]
        assert at_rate["n"] > 0
        assert {"p50_us", "p99_us", "p999_us"} <= set(at_rate)
        assert control[side]["max"]["max_per_s"] > 0
    assert {"at_rate", "at_80pct_max", "max"} <= set(control["ratio"])


def test_scale_fanout_and_replay_shapes(results: dict[str, Any]) -> None:
    """Scale reads CPU and memory of both servers; fan-out has a row per xApp count; replay
    says it stands in for the missing trace tool."""
    scale = results["scale"]
    for side in ("value", "baseline"):
        assert scale[side]["rss_mb"] > 0
        assert "cpu_cores" in scale[side]
    assert scale["value"]["connected"] == BenchConfig.tiny().scale_nodes
    assert [row["xapps"] for row in results["fanout"]["value"]] == list(BenchConfig.tiny().fanout)
    assert "ric.testing.run_trace" in results["replay"]["what"]
    assert results["replay"]["shape"]["frames"] > 0
    assert results["replay"]["target"]["extrapolated"] is True


def test_results_round_trip_as_json_and_table(results: dict[str, Any], tmp_path: Path) -> None:
    """The JSON file reads back the same, and the table has a row for every section."""
    out = tmp_path / "bench.json"
    write_results(results, out)
    assert json.loads(out.read_text()) == json.loads(json.dumps(results))
    table = format_table(results)
    for word in ("ingest", "control loop", "scale", "fan-out", "replay"):
        assert word in table


def test_cli_refuses_an_unknown_section(capsys: pytest.CaptureFixture[str]) -> None:
    """`ric bench --only` names the known sections when given another."""
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--only", "ingest,warp"])
    assert exc.value.code == 2
    assert "ingest, control, scale, fanout, replay" in capsys.readouterr().err
