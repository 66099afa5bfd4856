"""The benchmark suite runs end to end in a tiny configuration; figures are never asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ric.bench import SECTIONS, BenchConfig, format_table, run_bench, write_results
from ric.bench.proc import ChildError
from ric.bench.suite import CLUSTER_SHORT, MODES, _redis_server
from ric.bench.xapps import class_name, make_xapp
from ric.cli import main
from ric.config import DEFAULT_ISOLATION
from ric.errors import PluginError
from ric.plugins import load

# The cluster section runs apart, so that each run stays inside the per-test timeout.
SINGLE = tuple(name for name in SECTIONS if name != "cluster")


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    """One tiny run of every section but cluster (a few seconds of load per section)."""
    return run_bench(BenchConfig.tiny(only=SINGLE))


@pytest.fixture(scope="module")
def cluster_results() -> dict[str, Any]:
    """One tiny run of the cluster section (its own redis-server and replicas)."""
    return run_bench(BenchConfig.tiny(only=("cluster",)))


def test_every_section_has_value_baseline_and_ratio(results: dict[str, Any]) -> None:
    """Each section reports its figure, the baseline measured in the same run, and a ratio."""
    for name in SINGLE:
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


def test_ingest_is_measured_in_every_isolation_mode(results: dict[str, Any]) -> None:
    """Ingest runs once per isolation mode, each really hosted so (process mode with an xApp
    process of its own), each with its ratio to the one raw figure and its memory cost."""
    ingest = results["ingest"]
    assert list(ingest["modes"]) == list(MODES)
    raw = ingest["baseline"]["values_per_s"]
    for mode, m in ingest["modes"].items():
        assert m["modes"] == [mode]
        assert m["values_per_s"] > 0 and m["restarts"] == 0
        assert m["ratio"] == pytest.approx(m["values_per_s"] / raw, abs=1e-3)
        assert m["total_rss_mb"] >= m["server_rss_mb"] > 0
        assert m["xapp_processes"] == (1 if mode == "process" else 0)
    process = ingest["modes"]["process"]
    assert process["xapp_rss_mb"] > 0
    assert process["total_rss_mb"] == pytest.approx(
        process["server_rss_mb"] + process["xapp_rss_mb"], abs=0.2
    )
    target = ingest["process_target"]
    assert target["met"] is (process["values_per_s"] >= target["values_per_s_min"])
    assert ingest["value_mode"] == DEFAULT_ISOLATION
    assert ingest["value"]["values_per_s"] == ingest["modes"][DEFAULT_ISOLATION]["values_per_s"]


def test_control_loop_is_measured_in_every_isolation_mode(results: dict[str, Any]) -> None:
    """The control loop runs once per isolation mode beside the one raw echo: percentiles at
    the paced rate, the closed-loop maximum, CPU per loop (the xApp process's too), and each
    mode's p50 as a ratio to loop mode's with the 1.5x verdict."""
    control = results["control"]
    modes = control["modes"]
    assert list(modes) == list(MODES)
    for m in modes.values():
        at_rate = m["at_rate"]
        assert at_rate["n"] > 0 and at_rate["p50_us"] > 0
        assert at_rate["cpu_us_per_loop"] > 0
        assert m["max"]["max_per_s"] > 0
        assert {"p50", "p99", "p999"} <= set(m["ratio"]["at_rate"])
        assert m["vs_loop"]["p50"] == pytest.approx(
            at_rate["p50_us"] / modes["loop"]["at_rate"]["p50_us"], abs=1e-3
        )
    assert modes["loop"]["vs_loop"]["p50"] == 1.0
    process = modes["process"]["at_rate"]
    assert process["xapp_processes"] == 1 and process["xapp_cpu_us_per_loop"] > 0
    assert process["total_cpu_us_per_loop"] == pytest.approx(
        process["cpu_us_per_loop"] + process["xapp_cpu_us_per_loop"], abs=0.2
    )
    assert control["baseline"]["at_rate"]["cpu_us_per_loop"] > 0
    verdict = control["mode_target"]["met"]
    assert set(verdict) == {"thread", "process"}
    for mode, met in verdict.items():
        assert met is (modes[mode]["vs_loop"]["p50"] <= control["mode_target"]["p50_vs_loop_max"])
    # The headline figures are the default mode's, as before.
    assert control["value"]["at_rate"] is not None and control["value_mode"] == DEFAULT_ISOLATION


def test_scale_fanout_and_replay_shapes(results: dict[str, Any]) -> None:
    """Scale reads CPU and memory of both servers (and of the runtime in loop mode too, when
    that is not the default); fan-out has a row per xApp count; replay says it stands in for
    the missing trace tool."""
    scale = results["scale"]
    for side in ("value", "baseline", "loop"):
        assert scale[side]["rss_mb"] > 0
        assert "cpu_cores" in scale[side]
    assert scale["value"]["connected"] == scale["loop"]["connected"]
    assert scale["value"]["connected"] == BenchConfig.tiny().scale_nodes
    assert [row["xapps"] for row in results["fanout"]["value"]] == list(BenchConfig.tiny().fanout)
    process = results["fanout"]["process"]
    assert process["xapps"] == BenchConfig.tiny().process_fanout
    assert process["one"]["xapp_processes"] == 1
    assert process["many"]["xapp_processes"] == process["xapps"]
    assert process["many"]["values_per_s"] > 0 and process["one"]["values_per_s"] > 0
    assert process["aggregate_vs_one"] == pytest.approx(
        process["many"]["values_per_s"] / process["one"]["values_per_s"], abs=1e-3
    )
    assert "ric.testing.run_trace" in results["replay"]["what"]
    assert results["replay"]["shape"]["frames"] > 0
    assert results["replay"]["target"]["extrapolated"] is True


def test_cluster_spreads_ingest_over_replicas_and_times_a_takeover(
    cluster_results: dict[str, Any],
) -> None:
    """Two replicas on the bench's redis-server each took a node and counted values; the
    killed replica's node failed over and was leased at the survivor with a higher term."""
    cluster = cluster_results["cluster"]
    assert {"what", "value", "baseline", "ratio"} <= set(cluster)
    nodes = BenchConfig.tiny().cluster_nodes
    two, one = cluster["value"], cluster["baseline"]
    assert two["replicas"] == 2 and two["nodes_per_replica"] == [nodes // 2, nodes // 2]
    assert all(v > 0 for v in two["per_replica_values_per_s"])
    assert two["values_per_s"] == sum(two["per_replica_values_per_s"])
    # Forwarded reports (another replica's nodes) are counted apart from each value's first.
    assert two["delivered_values_per_s"] == two["values_per_s"] + two["forwarded_values_per_s"]
    assert one["forwarded_values_per_s"] == 0 and two["offered_values_per_s"] > 0
    assert one["replicas"] == 1 and one["nodes_per_replica"] == [nodes]
    assert cluster["no_cluster"]["replicas"] == 0 and cluster["no_cluster"]["values_per_s"] > 0
    assert cluster["ratio"] == pytest.approx(two["values_per_s"] / one["values_per_s"], abs=1e-3)
    short = cluster["takeover"]["short"]
    assert short["kills"] == BenchConfig.tiny().cluster_takeovers == len(short["runs"])
    assert short["settings"]["member_ttl_s"] == CLUSTER_SHORT["cluster.member_ttl_s"]
    for run in short["runs"]:
        assert run["nodes_taken_over"] >= 1 and run["survivor_leases"] == nodes
        assert min(run["terms_after"]) > max(run["terms_before"])
        assert run["takeover_s"] > 0 and run["resubscribed_s"] > 0
    assert "default" not in cluster["takeover"]  # tiny leaves the 5 s default timings out
    table = format_table(cluster_results)
    assert "2 replicas vs 1" in table and "takeover s after SIGKILL" in table


def test_the_cluster_section_names_a_missing_redis_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without redis-server on PATH the section stops with an error that names it."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ChildError, match="redis-server"), _redis_server():
        pass


def test_results_round_trip_as_json_and_table(results: dict[str, Any], tmp_path: Path) -> None:
    """The JSON file reads back the same, and the table has a row for every section."""
    out = tmp_path / "bench.json"
    write_results(results, out)
    assert json.loads(out.read_text()) == json.loads(json.dumps(results))
    table = format_table(results)
    for word in ("ingest", "control loop", "scale", "fan-out", "replay"):
        assert word in table
    for mode in MODES:
        assert f"{mode} mode" in table
    assert "process xApps" in table


def test_cli_refuses_an_unknown_section(capsys: pytest.CaptureFixture[str]) -> None:
    """`ric bench --only` names the known sections when given another."""
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--only", "ingest,warp"])
    assert exc.value.code == 2
    assert "ingest, control, scale, fanout, replay" in capsys.readouterr().err


def test_a_bench_xapp_is_found_by_its_reference_in_another_process() -> None:
    """The class a process xApp's child loads by ``module:Class`` declares what the runtime's
    does: the name encodes kind, xApp name and report preset, and a fresh import rebuilds it."""
    made = make_xapp("reflex", "reflex-2", "control")
    assert made.__qualname__ == class_name("reflex", "reflex-2", "control")
    loaded = load(f"ric.bench.xapps:{made.__qualname__}").cls
    assert loaded is made
    code = (
        "from ric.plugins import load; "
        f"c = load('ric.bench.xapps:{made.__qualname__}').cls; "
        "print(c.name, len(c.reports), c.pipelined)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["reflex-2", "1", "True"]


def test_a_bad_bench_xapp_is_refused_by_name() -> None:
    """An unknown kind or preset, or a name that cannot round-trip, is named in the error."""
    with pytest.raises(ValueError, match="kind 'warp'"):
        make_xapp("warp", "x", "ingest")
    with pytest.raises(ValueError, match="preset 'huge'"):
        make_xapp("sink", "x", "huge")
    with pytest.raises(ValueError, match="name 'Bad_Name'"):
        make_xapp("sink", "Bad_Name", "ingest")
    with pytest.raises(PluginError, match="no attribute 'Sink__x__huge'"):
        load("ric.bench.xapps:Sink__x__huge")
