"""Replay over real gRPC: a recorded simulator run, played into a fresh runtime, gives the
xApp the same reports value for value; ric replay's command line."""

from __future__ import annotations

import asyncio
import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from mlb import LoadBalancer

from ric import CellIndividualOffset, KpmReport, Report, XApp
from ric.cli import main
from ric.config import load_config
from ric.e2.convert import control_request
from ric.plugins import Plugin
from ric.runtime import Runtime
from ric.sim import Simulator, load_scenario
from ric.testing import run_scenario, run_trace
from ric.trace import TraceRecorder, replay, scan
from ric.trace.player import describe_control
from tests.conftest import RuntimeFactory, wait_for

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
RIC = Path(sys.executable).parent / "ric"


class Watcher(XApp):
    """Keeps every report it gets, cell and UE rows."""

    name = "watcher"
    reports = [
        Report("RRU.PrbUsedDl", "RRU.PrbAvailDl", "DRB.UEThpDl", period_ms=500, per="cell"),
        Report("RRU.PrbUsedDl", "DRB.UEThpDl", "L1M.RSRP", period_ms=500, per="ue"),
    ]

    seen: list[KpmReport]

    async def on_start(self) -> None:
        self.seen = []

    async def on_report(self, report: KpmReport) -> None:
        self.seen.append(report)


def _runtime(*sensors: TraceRecorder) -> Runtime:
    config = load_config(environ={}, overrides={"e2.port": 0})
    return Runtime(config, [Plugin(Watcher, "tests")], sensors=sensors, components=list(sensors))


def _seen(runtime: Runtime) -> list[KpmReport]:
    app = runtime.host("watcher").instance
    assert isinstance(app, Watcher)
    return app.seen


def _by_node(reports: list[KpmReport]) -> dict[str, list[tuple[object, ...]]]:
    out: dict[str, list[tuple[object, ...]]] = {}
    for r in reports:
        values = tuple(np.nan_to_num(r.values, nan=-1e300).ravel().tolist())
        row = (r.kind, r.metrics, r.entity_ids, r.cells, r.slices, r.collection_start, values)
        out.setdefault(r.node, []).append(row)
    return out


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[KpmReport]]:
    """seeds/small.toml simulated for 3 s against a recording runtime, over gRPC."""
    path = tmp_path_factory.mktemp("rec") / "small.trace.gz"

    async def record() -> list[KpmReport]:
        recorder = TraceRecorder(path)
        async with _runtime(recorder) as runtime:
            sim = Simulator(load_scenario(SEEDS / "small.toml"), f"127.0.0.1:{runtime.port}")
            sim.duration_s = 3.0
            await sim.run()
            await wait_for(lambda: not runtime.sessions, what="the nodes to leave")
            return list(_seen(runtime))

    return path, asyncio.run(record())


async def test_replay_into_a_fresh_runtime_gives_the_same_reports(
    recorded: tuple[Path, list[KpmReport]],
) -> None:
    """Every report the xApp got live, it gets again from the replay, value for value, in
    order, per node."""
    path, live = recorded
    assert len({r.node for r in live}) == 3 and len(live) >= 3 * 4
    async with _runtime() as runtime:
        result = await replay(path, f"127.0.0.1:{runtime.port}", speed=None, settle_s=0.2)
        await wait_for(lambda: not runtime.sessions, what="the replayed nodes to leave")
        again = _seen(runtime)
    assert result.errors == []
    assert _by_node(again) == _by_node(live)
    assert result.player.reports_sent == len(live)
    assert {s.rows for s in result.player.subscriptions} == {"cell", "ue"}
    index = scan(path)
    assert len(index.nodes) == 3 and index.error is None


async def test_ric_replay_command_reports_what_the_xapps_did(
    recorded: tuple[Path, list[KpmReport]],
) -> None:
    """ric replay plays into a running runtime, prints progress as plain lines when stderr
    is not a terminal, and a JSON summary with --json."""
    path, live = recorded
    async with _runtime() as runtime:
        proc = await asyncio.create_subprocess_exec(
            str(RIC),
            "replay",
            str(path),
            "--connect",
            f"127.0.0.1:{runtime.port}",
            "--speed",
            "max",
            "--settle",
            "0.2",
            "--json",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
    summary = json.loads(out)
    assert summary["reports_sent"] == len(live)
    assert summary["nodes"] == 3 and summary["controls"] == [] and summary["errors"] == []
    assert summary["duration_s"] == pytest.approx(scan(path).duration_s, abs=1e-3)
    lines = err.decode().splitlines()
    assert lines[-1].startswith("ric replay: 100% (") and "\r" not in err.decode()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["replay", "missing.trace"], "file 'missing.trace' does not exist"),
        (["replay", "README.md"], "README.md: not a ric trace"),
        (["replay", "README.md", "--speed", "fast"], "'fast' is not a speed"),
        (["replay", "README.md", "--speed", "-2"], "'-2' is not a speed"),
        (["replay", "README.md", "--connect", "127.0.0.1:1,nowhere"], "'nowhere' is not HOST"),
        (["trace", "info", "pyproject.toml"], "pyproject.toml: not a ric trace"),
        (["trace", "info", "nowhere.trace"], "file 'nowhere.trace' does not exist"),
    ],
)
def test_cli_errors_are_one_line_with_status_2(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A missing file, a file that is not a trace, or a bad --speed: one line, status 2."""
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse exits by itself
        status = int(exc.code or 0)
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_unreachable_runtime_is_one_line_with_status_1(
    recorded: tuple[Path, list[KpmReport]], capsys: pytest.CaptureFixture[str]
) -> None:
    """Replaying towards a port nobody listens on fails with one line naming the address."""
    path, _ = recorded
    status = main(["replay", str(path), "--connect", "127.0.0.1:9", "--timeout", "0.3"])
    assert status == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "ric replay: error: cannot reach the RIC at 127.0.0.1:9 within 0.3 s "
        "(is 'ric run' running there?)"
    ]
    assert math.isfinite(scan(path).duration_s)


async def test_replayed_nodes_fail_over_to_the_next_runtime(
    recorded: tuple[Path, list[KpmReport]], make_runtime: RuntimeFactory
) -> None:
    """Replayed towards two runtimes, the nodes set up on the first; when it stops, each sets
    up again on the second with its recorded setup, and the xApp there gets their reports."""
    path, _ = recorded
    first, _ = await make_runtime(Watcher)
    second, _ = await make_runtime(Watcher)
    targets = [f"127.0.0.1:{first.port}", f"127.0.0.1:{second.port}"]
    played = asyncio.create_task(
        replay(path, targets, speed=1.0, settle_s=0.1, reconnect_initial_s=0.05)
    )
    await wait_for(lambda: len(first.sessions) == 3, what="the nodes on the first runtime")
    assert not second.sessions
    await first.__aexit__(None, None, None)
    await wait_for(lambda: len(second.sessions) == 3, what="the nodes on the second runtime")
    await wait_for(lambda: _seen(second), what="reports at the second runtime")
    result = await played
    assert result.errors == []
    assert [n.setups for n in result.player.nodes.values()] == [2, 2, 2]


def test_unreachable_runtimes_are_named_together(
    recorded: tuple[Path, list[KpmReport]], capsys: pytest.CaptureFixture[str]
) -> None:
    """Replaying towards two ports nobody listens on fails with one line naming both."""
    path, _ = recorded
    status = main(["replay", str(path), "--connect", "127.0.0.1:9,127.0.0.1:7", "--timeout", "0.2"])
    assert status == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        "ric replay: error: cannot reach the RIC at any of 127.0.0.1:9, 127.0.0.1:7 within "
        "0.2 s (is 'ric run' running there?)"
    )


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_lines_elsewhere() -> None:
    """On a terminal the progress redraws one bar line; elsewhere it prints a plain line at
    each tenth of the trace."""
    from ric.trace.cli import _ProgressView
    from ric.trace.replay import ReplayProgress

    tty, pipe = _Terminal(), io.StringIO()
    for view in (_ProgressView(tty), _ProgressView(pipe)):
        for position in (0.0, 150.0, 360.0):
            view(ReplayProgress(position, 360.0, position / 100, 3, int(position), 1))
        view.close()
    assert tty.getvalue().count("\r[") == 3 and "100%" in tty.getvalue()
    assert "#" * 30 in tty.getvalue() and tty.getvalue().endswith("\n")
    lines = pipe.getvalue().splitlines()
    assert len(lines) == 10 and lines[3].startswith("ric replay: 40% (150.0 of 360.0 s), x100.0")


async def test_replay_over_mutual_tls(tmp_path: Path) -> None:
    """ric replay's nodes connect over mutual TLS with their own certificates, and a runtime
    that checks node identities admits them."""
    from ric.certs import write_dev_pki
    from ric.trace.synthetic import write_network_trace

    trace = write_network_trace(tmp_path / "net.trace", sites=2, seconds=5)
    pki = write_dev_pki(tmp_path / "pki", ["gnb-001-01-1", "gnb-001-01-2"])
    config = load_config(
        environ={},
        overrides={
            "e2.port": 0,
            "e2.tls.enabled": True,
            "e2.tls.cert": str(pki.server_cert),
            "e2.tls.key": str(pki.server_key),
            "e2.tls.client_ca": str(pki.ca),
        },
    )
    async with Runtime(config, [Plugin(Watcher, "tests")]) as runtime:
        result = await replay(
            trace, f"localhost:{runtime.port}", tls_ca=pki.ca, tls_dir=pki.folder, settle_s=0.1
        )
        assert result.errors == []
        assert {n.setups for n in result.player.nodes.values()} == {1}
        assert _seen(runtime)


async def test_cio_controls_replay_as_recorded(tmp_path: Path) -> None:
    """mlb's E2SM-CCC cell individual offsets are recorded and, replayed with the recorded
    answers, taken again with the same outcomes (the player takes controls to a node's CCC
    function and tells them apart by their CCC content)."""
    trace = tmp_path / "demo.trace.gz"
    result = await run_scenario(
        "seeds/demo.toml", [LoadBalancer], duration_s=30, seed=1, record=trace
    )
    offsets = result.actions("mlb", CellIndividualOffset)
    assert offsets and offsets == result.actions("mlb")
    replayed = await run_trace(trace, [LoadBalancer], controls="recorded")
    assert [c.key() for c in replayed.controls] == [c.key() for c in result.controls]
    first = offsets[0]
    kind, target, params = describe_control(control_request(first, (1, 1), 4))
    assert (kind, target) == ("cell_individual_offset", f"relations:{first.cell_id}")
    assert params == {first.neighbour: first.offset_db}
