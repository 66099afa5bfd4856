"""The harness example of the README, verbatim (tests/test_testing.py keeps the two equal)."""

from pathlib import Path

from kpimon import KpiMonitor
from mlb import LoadBalancer

from ric import CellIndividualOffset, OutcomeKind
from ric.testing import run_scenario, run_trace


async def test_mlb_relieves_the_hotspot(tmp_path: Path) -> None:
    """In the demo network mlb raises the cell individual offsets from the overloaded cell to
    its neighbours (the RAN's A3 then moves the UEs), and a replay of the recorded run takes
    the same decisions."""
    result = await run_scenario(
        "seeds/demo.toml",
        [LoadBalancer, KpiMonitor],
        duration_s=60,
        seed=1,
        record=tmp_path / "demo.trace.gz",
    )
    offsets = result.actions("mlb", CellIndividualOffset)  # typed
    assert offsets and offsets == result.actions("mlb")  # mlb sends nothing else
    assert "001-01-4097" in {o.cell_id for o in offsets}
    assert OutcomeKind.ACKNOWLEDGED in result.outcomes("mlb")
    assert result.metrics["kpimon"].value("cells") == 9  # kpimon's own gauge
    # Each second, the cell KPIs of 3 nodes, the RLC delay of 2 (Initech does not report
    # it) and the slice KPIs of 3.
    assert len(result.reports["kpimon"]) == 60 * (3 + 2 + 3)

    replayed = await run_trace(tmp_path / "demo.trace.gz", [LoadBalancer], controls="recorded")
    assert [c.key() for c in replayed.controls] == [c.key() for c in result.controls]
