"""The docs show what the code does: the README's endpoint table and the listing of the demo
network in docs/xapps.md are checked against the routes and the scenario."""

from __future__ import annotations

import re
from pathlib import Path

from ric.cli.commands import scenario_listing
from ric.http import routes
from ric.sim import load_scenario

ROOT = Path(__file__).resolve().parent.parent


def test_readme_endpoint_table_names_every_status_api_route() -> None:
    """Every route ric.http serves (/metrics, health, the status API) is in the README's
    endpoint table, so an endpoint cannot be added without being documented."""
    readme = (ROOT / "README.md").read_text()
    table = "\n".join(line for line in readme.splitlines() if line.startswith("| `GET "))
    documented = re.sub(r"\{[^}]*\}", "{}", table)
    paths = [re.sub(r"\{[^}]*\}", "{}", getattr(route, "path", "")) for route in routes]
    assert "/api/v1/controls" in paths
    for path in paths:
        assert f"`{path}`" in documented or f"`GET {path}`" in documented, path


def test_xapp_guide_shows_the_demo_network_as_ric_sim_list_prints_it() -> None:
    """docs/xapps.md's `ric sim --list` output is what the command prints for the demo."""
    guide = (ROOT / "docs" / "xapps.md").read_text()
    block = re.search(r"\$ \.venv/bin/ric sim --list\n(.*?)```", guide, flags=re.DOTALL)
    assert block is not None
    listing = scenario_listing(load_scenario(ROOT / "seeds" / "demo.toml"))
    assert block.group(1).splitlines() == listing
