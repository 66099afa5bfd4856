"""ric/cli/commands.py: ``ric sim --list`` shows a scenario's nodes, cells and slices."""

from __future__ import annotations

from pathlib import Path

import pytest

from ric.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_sim_list_shows_the_demo_networks_cells_controls_and_slices(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """ric sim --list prints every node with its cell ids and the controls it takes, and the
    slice ids with their quotas and UEs, without connecting anywhere."""
    assert main(["sim", "--list", str(ROOT / "seeds" / "demo.toml")]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert rows["gnb-001-01-1"][1:5] == ["acme", "001-01-4097", "001-01-4098", "001-01-4099"]
    assert "handover, slice_prb_quota" in out
    assert rows["gnb-001-01-3"][-1] == "cell_state"
    assert rows["1-000001"] == ["1-000001", "0-100", "%", "0", "%", "40"]
    assert rows["2-000002"] == ["2-000002", "10-100", "%", "5", "%", "8"]
    assert rows["3-000003"][-1] == "12"


def test_sim_list_of_a_bad_scenario_names_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A scenario with a bad value is refused with the key named and exit status 2."""
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[[nodes]]\nid = 1\nvendor = "nokio"\nposition_m = [0.0, 0.0]\n')
    assert main(["sim", "--list", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "vendor" in err and "nokio" in err
