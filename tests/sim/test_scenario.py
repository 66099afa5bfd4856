"""Tests of scenario files and their validation in ric.sim.scenario."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from ric.errors import ConfigError
from ric.sim import load_scenario, parse_scenario

from .conftest import SEEDS

BASE: dict[str, Any] = {
    "name": "t",
    "plmn": {"mcc": "001", "mnc": "01"},
    "nodes": [
        {"id": 1, "vendor": "acme", "position_m": [0.0, 0.0]},
        {"id": 2, "vendor": "globex", "position_m": [500.0, 0.0], "sectors": 1},
    ],
    "ue_groups": [{"count": 4, "slice": "1-000001"}],
}


def _with(path: str, value: Any) -> dict[str, Any]:
    """BASE with the value at a dotted path (list indices as numbers) replaced or added."""
    data = copy.deepcopy(BASE)
    target: Any = data
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target.setdefault(part, {})
    last = parts[-1]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return data


def test_shipped_scenarios_load() -> None:
    """seeds/demo.toml and seeds/small.toml load and have the documented shape."""
    demo = load_scenario(SEEDS / "demo.toml")
    assert [n.vendor for n in demo.nodes] == ["acme", "globex", "initech"]
    assert all(n.sectors == 3 for n in demo.nodes)
    assert 50 <= demo.ue_count <= 70
    assert any(g.hotspot is not None for g in demo.ue_groups)
    small = load_scenario(SEEDS / "small.toml")
    assert {n.vendor for n in small.nodes} == {"acme", "globex", "initech"}
    assert sum(n.sectors for n in small.nodes) <= 6
    assert small.ue_count <= 16


def test_minimal_scenario_gets_defaults() -> None:
    """A scenario naming only nodes and UE groups gets the three default slices and a tick."""
    sc = parse_scenario(BASE)
    assert [s.id for s in sc.slices] == ["1-000001", "2-000002", "3-000003"]
    assert sc.tick_ms == 100
    assert sc.nodes[0].bandwidth_prbs == 106


@pytest.mark.parametrize(
    ("data", "key", "fragment"),
    [
        (_with("nodes.1.vendor", "hooli"), "nodes[1].vendor", "unknown vendor profile 'hooli'"),
        (_with("nodes.1.id", 1), "nodes[1].id", "duplicate node id 1"),
        (_with("nodes.0.bandwidth_mhz", 33), "nodes[0].bandwidth_mhz", "not a channel bandwidth"),
        (_with("nodes.0.band", 5000), "nodes[0].band", "unknown band"),
        (_with("nodes.0.sectors", 4), "nodes[0].sectors", "less than or equal to 3"),
        (_with("nodes.0.position_m", [1.0]), "nodes[0].position_m[1]", "required"),
        (_with("nodes.0.colour", "red"), "nodes[0].colour", "unknown key"),
        (_with("plmn.mcc", "1"), "plmn.mcc", "pattern"),
        (
            _with("ue_groups.0.slice", "9-000009"),
            "ue_groups[0].slice",
            "not among the scenario's slices",
        ),
        (_with("ue_groups.0.slice", "embb"), "ue_groups[0].slice", "slice id 'embb'"),
        (_with("ue_groups.0.speed_mps", [3.0, 1.0]), "ue_groups[0].speed_mps", "min <= max"),
        (
            _with(
                "ue_groups.0",
                {
                    "count": 1,
                    "area": {"x_m": [0.0, 10.0], "y_m": [0.0, 10.0]},
                    "hotspot": {"center_m": [0.0, 0.0], "radius_m": 5.0},
                },
            ),
            "ue_groups[0]",
            "not both",
        ),
        (
            _with("ue_groups.0.area", {"x_m": [10.0, 0.0], "y_m": [0.0, 10.0]}),
            "ue_groups[0].area",
            "min < max",
        ),
        (
            _with("slices", [{"id": "1-000001", "min_pct": 70}, {"id": "2-000002", "min_pct": 40}]),
            "slices",
            "adds up to 110",
        ),
        (
            _with("slices", [{"id": "1-000001", "min_pct": 50, "max_pct": 20}]),
            "slices[0]",
            "min_pct <= max_pct",
        ),
        (_with("tick_ms", 1), "tick_ms", "greater than or equal to 10"),
        (_with("nodes", []), "nodes", "at least 1"),
        (_with("ran.mobility", "magic"), "ran.mobility", "'a3' or 'none'"),
        (_with("ran.time_to_trigger_ms", 300), "ran.time_to_trigger_ms", "one of 0, 40, 64"),
        (_with("ran.filter_coefficient", 10), "ran.filter_coefficient", "one of 0, 1"),
        (_with("ran.t310_ms", 9000), "ran.t310_ms", "less than or equal to 6000"),
        (
            _with("ran.cells", [{"cell": "001-01-999", "hysteresis_db": 2.0}]),
            "ran.cells[0].cell",
            "unknown cell '001-01-999'",
        ),
        (
            _with("ran.cells", [{"cell": "001-01-4097", "time_to_trigger_ms": 33}]),
            "ran.cells[0].time_to_trigger_ms",
            "TS 38.331",
        ),
        (
            _with("ran.relations", [{"source": "001-01-4097", "target": "001-01-4097"}]),
            "ran.relations[0].target",
            "two different cells",
        ),
        (
            _with("ran.relations", [{"source": "001-01-4097", "target": "001-01-1", "cio_db": 1}]),
            "ran.relations[0].target",
            "unknown cell",
        ),
        (
            _with(
                "ran.relations",
                [{"source": "001-01-4097", "target": "001-01-4098", "cio_db": 7.0}],
            ),
            "ran.relations[0].cio_db",
            "one of -24",
        ),
        (_with("ran.a5_threshold1_dbm", -100.0), "ran.a5_threshold2_dbm", "both thresholds"),
        (
            _with("ran.cells", [{"cell": "001-01-4097", "a5_threshold2_dbm": -100.0}]),
            "ran.cells[0].a5_threshold1_dbm",
            "both thresholds",
        ),
        (_with("ran.cell_wakeup_s", -1.0), "ran.cell_wakeup_s", "greater than or equal"),
        (
            _with("ran.cell_shutdown_timeout_s", 1e6),
            "ran.cell_shutdown_timeout_s",
            "less than or equal",
        ),
    ],
)
def test_bad_scenario_names_the_key(data: dict[str, Any], key: str, fragment: str) -> None:
    """Each kind of bad value raises ConfigError whose key is the path of the bad value."""
    with pytest.raises(ConfigError) as info:
        parse_scenario(data)
    assert info.value.key == key
    assert fragment in info.value.problem


def test_bad_toml_and_missing_file_raise_config_error(tmp_path: Path) -> None:
    """A file that is not TOML, or not there, raises ConfigError naming the file."""
    bad = tmp_path / "bad.toml"
    bad.write_text("nodes = [ {id = 1, \n")
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_scenario(bad)
    assert info.value.key == str(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_scenario(tmp_path / "missing.toml")
