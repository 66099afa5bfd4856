"""An hour of 21 cells replays through the harness on virtual time, and deterministically."""

from __future__ import annotations

import time
from pathlib import Path

from mlb import LoadBalancer

from ric import Handover
from ric.testing import run_trace
from ric.trace.synthetic import write_network_trace


async def test_an_hour_of_21_cells_replays_twice_with_identical_controls(tmp_path: Path) -> None:
    """mlb against one hour of seven three-cell sites completes, twice, with the same
    handovers at the same virtual times (the wall time is printed, never asserted)."""
    path = write_network_trace(tmp_path / "hour.trace", sites=7, seconds=3600)
    runs = []
    for _ in range(2):
        started = time.perf_counter()
        result = await run_trace(path, [LoadBalancer])
        runs.append((result, time.perf_counter() - started))
    first, second = (r for r, _ in runs)
    assert first.duration_s == 3600.0
    assert len(first.reports["mlb"]) == 2 * 7 * 3600
    assert first.controls and all(isinstance(a, Handover) for a in first.actions())
    assert [c.key() for c in first.controls] == [c.key() for c in second.controls]
    print(f"\none hour of 21 cells: {', '.join(f'{s:.1f} s' for _, s in runs)} of wall time")
