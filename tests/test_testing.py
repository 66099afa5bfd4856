"""The test harness of ric.testing: xApps in a real runtime on virtual time, deterministic."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from kpimon import KpiMonitor
from mlb import LoadBalancer

from ric import CellIndividualOffset, KpmReport, Report, XApp
from ric.testing import FakeContext, HarnessResult, run_scenario, run_trace, start_xapp
from ric.trace import TraceError, scan

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def demo_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40 s recording of the demo network with kpimon and mlb (made by the harness)."""
    path = tmp_path_factory.mktemp("trace") / "demo.trace"
    xapps = [KpiMonitor, LoadBalancer]
    asyncio.run(run_scenario("seeds/demo.toml", xapps, duration_s=40, record=path))
    return path


def _first_half(source: Path, dest: Path) -> Path:
    data = source.read_bytes()
    dest.write_bytes(data[: len(data) // 2])
    return dest


def _keys(result: HarnessResult) -> list[tuple[object, ...]]:
    return [c.key() for c in result.controls]


async def test_mlb_against_a_trace_twice_gives_identical_controls(demo_trace: Path) -> None:
    """mlb replayed against the same trace on the virtual clock sends the same controls (cell
    individual offsets: the demo's nodes take them), at the same virtual times, with the same
    outcomes, twice."""
    first = await run_trace(demo_trace, [LoadBalancer])
    second = await run_trace(demo_trace, [LoadBalancer])
    assert first.controls and all(isinstance(a, CellIndividualOffset) for a in first.actions())
    assert _keys(first) == _keys(second)
    assert first.duration_s == second.duration_s == pytest.approx(40.0)


async def test_same_scenario_and_seed_give_the_same_controls() -> None:
    """A simulated run is deterministic: the same scenario and seed, the same controls (and
    the world ends in the same state)."""
    runs = [
        await run_scenario("seeds/demo.toml", [LoadBalancer], duration_s=20, seed=2)
        for _ in range(2)
    ]
    assert runs[0].controls and _keys(runs[0]) == _keys(runs[1])
    worlds = [r.world for r in runs]
    assert worlds[0] is not None and worlds[1] is not None
    assert worlds[0].serving.tolist() == worlds[1].serving.tolist()


async def test_result_holds_reports_metrics_and_the_kpi_series(demo_trace: Path) -> None:
    """The result gives each xApp's reports and metrics, its instance as it ended, and the KPI
    series the nodes sent, timed on the virtual clock (stopping before the recording's end,
    where its nodes left)."""
    result = await run_trace(
        demo_trace, [KpiMonitor], duration_s=39.5, xapp_config={"kpimon": {"print_every_s": 5}}
    )
    kpimon = result.xapps["kpimon"]
    assert isinstance(kpimon, KpiMonitor)
    assert len(kpimon.snapshot()) == 9
    assert result.metrics["kpimon"].value("cells") == 9
    reports = result.reports["kpimon"]
    assert reports and all(isinstance(r, KpmReport) for r in reports)
    series = result.series("RRU.PrbUsedDl", "001-01-4097")
    assert [t for t, _ in series] == [float(s) for s in range(1, 40)]
    assert all(v > 0 for _, v in series)
    assert result.player is not None and not result.player.controls


async def test_harness_and_recording_agree_with_controls_recorded(tmp_path: Path) -> None:
    """A scenario recorded by the harness, replayed with --controls recorded, makes mlb take
    exactly the decisions it took live, and the recording describes itself."""
    path = tmp_path / "live.trace.gz"
    live = await run_scenario("seeds/demo.toml", [LoadBalancer], duration_s=30, seed=5, record=path)
    replayed = await run_trace(path, [LoadBalancer], controls="recorded")
    assert live.controls and _keys(live) == _keys(replayed)
    index = scan(path)
    assert index.duration_s == pytest.approx(30.0)
    assert index.header.source == "ric.testing (scenario demo)"
    assert len(index.controls) == len(live.controls)


class _Crashy(XApp):
    """Raises on its third report."""

    name = "crashy"
    reports = [Report("RRU.PrbUsedDl", period_ms=1000, per="cell")]
    seen = 0

    async def on_report(self, report: KpmReport) -> None:
        type(self).seen += 1
        if type(self).seen == 3:
            raise RuntimeError("third report")


async def test_a_crashing_xapp_is_restarted_and_the_run_completes(demo_trace: Path) -> None:
    """An xApp that raises is restarted on virtual time; the crash is in the result."""
    result = await run_trace(demo_trace, [_Crashy], duration_s=20)
    assert [(xapp, str(error)) for _, xapp, error in result.crashes] == [("crashy", "third report")]
    assert len(result.reports["crashy"]) > 3


async def test_a_damaged_trace_is_refused_unless_asked_to_play_its_intact_part(
    demo_trace: Path, tmp_path: Path
) -> None:
    """strict (the default) refuses a truncated trace with TraceError; strict=False plays
    what is intact."""
    cut = _first_half(demo_trace, tmp_path / "cut.trace")
    with pytest.raises(TraceError, match="truncated"):
        await run_trace(cut, [KpiMonitor])
    result = await run_trace(cut, [KpiMonitor], strict=False)
    assert 0 < len(result.reports["kpimon"]) < 40 * 5


def test_readme_example_is_the_tested_one() -> None:
    """The harness example in the README is tests/trace/test_readme_example.py, verbatim."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    source = (ROOT / "tests" / "trace" / "test_readme_example.py").read_text()
    body = source.split('"""\n\n', 1)[1]
    assert body in blocks


class _Ticker(XApp):
    """Counts the ticks of a 5 s timer started in on_start."""

    name = "ticker"

    async def on_start(self) -> None:
        self.ticks = 0
        self.every(5.0, self.tick)

    async def tick(self) -> None:
        self.ticks += 1


async def test_start_xapp_timers_fire_at_the_first_advance_of_their_interval() -> None:
    """A timer made in on_start fires when the test first advances the clock by its
    interval, with no extra yield needed in the test."""
    app, ctx = await start_xapp(_Ticker)
    await ctx.clock.advance(5.0)
    assert app.ticks == 1
    await ctx.clock.advance(10.0)
    assert app.ticks == 2  # one sleep ended per advance; the next one starts from there
    await ctx.close()


async def test_closing_before_a_timer_ran_leaves_no_unawaited_coroutine() -> None:
    """FakeContext.close cancels a timer that never ran without a 'never awaited' warning
    (which filterwarnings=error would fail)."""
    ctx = FakeContext("ticker")
    app = _Ticker(ctx, _Ticker.Config())
    await app.on_start()
    await ctx.close()
    assert app.ticks == 0
