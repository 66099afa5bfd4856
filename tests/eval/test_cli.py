"""Tests of ``ric eval``: real runs in table and JSON form, the plot, and bad arguments."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ric.cli import main
from ric.eval.cli import parse_setting

SEEDS = Path(__file__).resolve().parents[2] / "seeds"


def ric(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ric", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_eval_table_and_plot(tmp_path: Path) -> None:
    """A short evaluation of mlb on the small scenario prints the RAN mobility and scheduler
    models, every run, the summary with the noise verdicts and the RAN figures, and writes a non-empty
    PNG."""
    png = tmp_path / "kpis.png"
    args = [str(SEEDS / "small.toml"), "--xapps", "mlb", "--seeds", "1,2", "--duration", "10"]
    result = ric("eval", *args, "--plot", str(png), "--set", "mlb.high_pct=70")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "xApps mlb, seeds 1,2, 10 s simulated per run" in out
    runs = [line.split()[:2] for line in out.splitlines() if line.startswith(("1 ", "2 "))]
    assert runs == [["1", "baseline"], ["1", "xApps"], ["2", "baseline"], ["2", "xApps"]]
    assert "BEYOND NOISE" in out and "UE DL throughput, 5th pct (Mbit/s)" in out
    assert "active cell-hours" in out and "ping-pongs, all handovers (<= 10 s)" in out
    assert "RAN mobility: a3 (hysteresis 3 dB, time-to-trigger 320 ms" in out
    assert "Scheduler: pf (proportional fair, time constant 1000 ms)" in out
    for label in ("handovers by the RAN (A3)", "failures: too late", "outage", "energy"):
        assert label in out
    assert f"plot: {png}" in out
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 10_000
    assert "seed 2 xapps: 10 s simulated" in result.stderr


def test_eval_json_document(tmp_path: Path) -> None:
    """--format json prints the documented keys, a run per seed and variant, and a summary
    entry with baseline, with-xApps and difference for every figure; xApp settings come from
    --config and --set, the policy from --conflicts over --config."""
    config = tmp_path / "ric.toml"
    config.write_text(
        '[conflicts]\npolicy = "reject-both"\n\n[xapps.config.mlb]\nhigh_pct = 75.0\n'
        "low_pct = 50.0\n"
    )
    args = [str(SEEDS / "small.toml"), "--xapps", "mlb", "--seeds", "3", "--duration", "5"]
    options = ["--config", str(config), "--set", "mlb.low_pct=40", "--conflicts", "priority"]
    result = ric("eval", *args, *options, "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["schema"] == "ric.eval/1"
    assert doc["xapps"] == ["mlb"] and doc["seeds"] == [3] and doc["duration_s"] == 5.0
    assert doc["conflict_policy"] == "priority" and doc["plot"] is None
    assert doc["xapp_config"] == {"mlb": {"high_pct": 75.0, "low_pct": 40}}
    assert doc["scenario"]["name"] == "small" and doc["scenario"]["cells"] == 4
    assert [(r["seed"], r["variant"]) for r in doc["runs"]] == [(3, "baseline"), (3, "xapps")]
    base = doc["runs"][0]["metrics"]
    assert base["controls"] == 0 and base["active_cell_hours"] == pytest.approx(4 * 5 / 3600)
    assert doc["scenario"]["ran"]["mobility"] == "a3" and doc["ran_mobility"].startswith("a3 (")
    assert doc["scenario"]["scheduler"]["kind"] == "pf" and doc["scheduler"].startswith("pf (")
    keys = ("ue_thp_dl_p5_kbps", "prb_util_peak_pct", "handovers", "conflicts", "rlf")
    for key in (*keys, "handovers_a3", "too_late", "outage_ue_s", "energy_kwh"):
        entry = doc["summary"][key]
        assert set(entry) == {"baseline", "xapps", "diff"}
        assert entry["diff"]["beyond_noise"] is None  # one seed cannot tell
        assert key in doc["metrics"]
    assert "slice.1-000001.ue_thp_dl_p5_kbps" in doc["summary"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["seeds/small.toml", "--xapps", "nope"], "xApp plugin 'nope': no installed xApp"),
        (["/no/such.toml", "--xapps", "mlb"], "scenario file '/no/such.toml' does not exist"),
        (
            ["seeds/small.toml", "--xapps", "mlb", "--set", "mlb.high_pct"],
            "'mlb.high_pct' is not XAPP.KEY=VALUE",
        ),
        (
            ["seeds/small.toml", "--xapps", "mlb", "--set", "high_pct=7"],
            "'high_pct=7' is not XAPP.KEY=VALUE",
        ),
        (
            ["seeds/small.toml", "--xapps", "mlb", "--set", "kpimon.x=1"],
            "'kpimon' is not among --xapps",
        ),
        (
            ["seeds/small.toml", "--xapps", "mlb", "--seeds", "1,two"],
            "'1,two' is not a comma-separated list of integer seeds",
        ),
        (["seeds/small.toml", "--xapps", "mlb", "--seeds", "1,1"], "'1,1' repeats a seed"),
        (
            ["seeds/small.toml", "--xapps", "mlb", "--duration", "0"],
            "'0' must be more than 0 seconds",
        ),
        (["seeds/small.toml", "--xapps", "mlb", "--conflicts", "coin"], "invalid choice"),
        (
            ["seeds/small.toml", "--xapps", "mlb", "--config", "/no/ric.toml"],
            "file '/no/ric.toml' does not exist",
        ),
        (["seeds/small.toml"], "the following arguments are required: --xapps"),
        (
            ["seeds/small.toml", "--xapps", "mlb", "--set", "mlb.high_pct=lots"],
            "config key 'xapps.config.mlb.high_pct'",
        ),
        (
            ["seeds/small.toml", "--xapps", "mlb", "--plot", "/no/such/dir/p.png"],
            "folder '/no/such/dir' does not exist",
        ),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad argument gets one line on stderr naming it, and exit status 2, before any run."""
    try:
        status = main(["eval", *args])
    except SystemExit as exc:  # argparse's own usage errors
        status = int(exc.code or 0)
    err = capsys.readouterr().err
    assert status == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1


def test_bad_scenario_content_names_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A scenario whose event names an unknown cell is refused with the event's key, exit 2."""
    text = (SEEDS / "small.toml").read_text() + (
        '\n[[events]]\nkind = "sinr_degradation"\ncell = "001-01-1"\nat_s = 1.0\ndb = 3.0\n'
    )
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    assert main(["eval", str(bad), "--xapps", "mlb"]) == 2
    assert "config key 'events[0].cell': unknown cell '001-01-1'" in capsys.readouterr().err


def test_settings_are_read_as_toml_values() -> None:
    """--set values are TOML (numbers, booleans, strings), or else taken as text."""
    assert parse_setting("mlb.high_pct=70") == ("mlb", "high_pct", 70)
    assert parse_setting("mlb.on = true") == ("mlb", "on", True)
    assert parse_setting('es.mode="night"') == ("es", "mode", "night")
    assert parse_setting("es.mode=night") == ("es", "mode", "night")


def test_eval_has_help() -> None:
    """``ric eval --help`` describes the command, its options and the noise test."""
    result = ric("eval", "--help")
    assert result.returncode == 0
    for needle in ("--xapps", "--seeds", "--set", "--plot", "--format", "--conflicts", "t-test"):
        assert needle in result.stdout


async def test_evaluate_and_plot_in_process(tmp_path: Path) -> None:
    """evaluate() with a scenario that has events runs both variants, and write_plot draws
    them without a warning (the events shaded)."""
    from ric.eval import evaluate, render_table, write_plot
    from ric.sim import load_scenario, parse_scenario

    small = load_scenario(SEEDS / "small.toml")
    event = {"kind": "traffic_surge", "group": "embb", "at_s": 1.0, "until_s": 2.0, "factor": 3}
    sc = parse_scenario({**small.model_dump(exclude={"events"}), "events": [event]})
    ev = await evaluate(sc, ["kpimon"], seeds=[5], duration_s=3.0)
    assert [(r.seed, r.variant) for r in ev.runs] == [(5, "baseline"), (5, "xapps")]
    # kpimon sends no controls: the world goes exactly as without it
    base, with_x = (r.metrics.scalars() for r in ev.runs)
    assert base == with_x
    png = write_plot(ev, tmp_path / "p.png")
    assert png.read_bytes().startswith(b"\x89PNG")
    assert "xApps kpimon, seeds 5" in render_table(ev)
