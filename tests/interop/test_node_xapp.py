"""Any language: the Node.js xApp in tests/interop/node attaches over the northbound API, gets
its reports, and sends a control the runtime routes, acknowledges and audits like its own.

``make test`` installs the node modules (``npm ci``); without them these tests fail and say so.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ric.northbound.host import RemoteHost
from ric.runtime import Runtime
from ric.sim import Simulator, load_scenario
from tests.conftest import RuntimeFactory

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = Path(__file__).resolve().parent / "node"
XAPP_JS = NODE_DIR / "xapp.js"
SMALL = ROOT / "seeds" / "small.toml"
NB = {"northbound.port": 0}
METRICS = ["RRU.PrbUsedDl", "RRU.PrbAvailDl"]


@dataclass
class Run:
    """What one run of xapp.js did: its pid, exit status, JSON events and stderr."""

    pid: int
    returncode: int
    events: list[dict[str, Any]]
    stderr: str

    def of(self, event: str) -> list[dict[str, Any]]:
        """The events of one kind, in order."""
        return [e for e in self.events if e["event"] == event]


async def run_node(*args: str, limit_s: float = 60.0) -> Run:
    """Run ``node xapp.js ARGS`` to its end; fail (not skip) when node or its modules are missing."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: `make test` installs it (Debian: nodejs npm)")
    if not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.fail(f"the node modules are missing: run `make test` (or npm ci in {NODE_DIR})")
    proc = await asyncio.create_subprocess_exec(
        node,
        str(XAPP_JS),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"xapp.js {' '.join(args)} did not exit within {limit_s:g} s")
    events = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    assert proc.returncode is not None
    return Run(proc.pid, proc.returncode, events, err.decode())


async def test_node_xapp_gets_reports_and_its_control_is_acknowledged(
    make_runtime: RuntimeFactory,
) -> None:
    """The Node.js xApp attaches as a remote xApp in language node, receives the cells' PRB
    reports of the runtime's nodes, and its one control is acknowledged and audited once."""
    runtime, stats = await make_runtime(**NB)
    assert isinstance(runtime, Runtime) and runtime.northbound.port
    async with Simulator(load_scenario(SMALL), f"127.0.0.1:{runtime.port}") as sim:
        await sim.wait_ready()
        run = await run_node("--connect", f"127.0.0.1:{runtime.northbound.port}", "--reports", "5")
        assert run.returncode == 0, run.stderr
        nodes = set(runtime.nodes())
        cells = {str(c) for node in runtime.nodes().values() for c in node.cells}

    (attached,) = run.of("attached")
    assert {n["id"] for n in attached["nodes"]} == nodes
    host = runtime.host("nodexapp")
    assert isinstance(host, RemoteHost)
    described = host.transport()
    assert (host.mode, described["language"]) == ("remote", "node")
    assert (described["pid"], described["attaches"]) == (run.pid, 1)

    reports = run.of("report")
    assert len(reports) >= 5
    assert [r["seq"] for r in reports] == list(range(1, len(reports) + 1))
    assert {r["node"] for r in reports} <= nodes
    for report in reports:
        assert report["metrics"] == METRICS
        assert report["entity_kind"] == "ENTITY_KIND_CELL"
        assert report["cells"] and set(report["cells"]) <= cells
    assert any(r["cells"][c]["RRU.PrbAvailDl"] > 0 for r in reports for c in r["cells"])

    (control,) = run.of("control")
    (outcome,) = run.of("outcome")
    assert outcome["control_id"] == control["control_id"]
    assert outcome["kind"] == "acknowledged", outcome
    assert outcome["node"] == control["node"]
    records = [r for r in runtime.audit.records if r.get("xapp") == "nodexapp"]
    assert len(records) == 1
    assert (records[0]["action"], records[0]["outcome"]) == ("slice_prb_quota", "acknowledged")
    assert records[0]["cell"] == control["slice_prb_quota"]["cell_id"]
    assert stats.controls[("nodexapp", "slice_prb_quota", "acknowledged")] == 1


async def test_a_control_not_acknowledged_ends_it_with_the_runtimes_reason(
    make_runtime: RuntimeFactory,
) -> None:
    """A control the runtime refuses (a quota above 100 %) gets its one outcome, invalid, with
    the runtime's reason, and xapp.js exits 1 repeating it."""
    runtime, _ = await make_runtime(**NB)
    async with Simulator(load_scenario(SMALL), f"127.0.0.1:{runtime.port}") as sim:
        await sim.wait_ready()
        run = await run_node(
            "--connect",
            f"127.0.0.1:{runtime.northbound.port}",
            "--reports",
            "1",
            "--max-pct",
            "150",
        )
    assert run.returncode == 1
    (control,) = run.of("control")
    (outcome,) = run.of("outcome")
    assert (outcome["control_id"], outcome["kind"]) == (control["control_id"], "invalid")
    reason = "SlicePrbQuota max_pct must be a percentage 0..100, got 150"
    assert reason in outcome["detail"]
    assert f"control {control['control_id']} ended invalid" in run.stderr and reason in run.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "--connect HOST:PORT is required"),
        (("--connect", "localhost"), '--connect "localhost" is not HOST:PORT'),
        (("--connect", "127.0.0.1:1", "--reports", "0"), '--reports "0" is not a whole number'),
        (("--connect", "127.0.0.1:1", "--max-pct", "1.5"), '--max-pct "1.5" is not a whole'),
        (("--connect", "127.0.0.1:1", "--timeout", "soon"), '--timeout "soon" is not a positive'),
        (("--connect", "127.0.0.1:1", "--bogus"), "Unknown option '--bogus'"),
        (("--connect", "127.0.0.1:1", "--token-file", "/nonexistent"), "cannot read /nonexistent"),
    ],
)
async def test_bad_arguments_are_named(args: tuple[str, ...], message: str) -> None:
    """A bad or missing command-line argument ends xapp.js with status 1 and a line naming it."""
    run = await run_node(*args)
    assert run.returncode == 1
    assert message in run.stderr
    assert run.events == []


async def test_unreachable_runtime_is_said(unused_tcp_port: int) -> None:
    """With nothing listening at --connect, xapp.js exits 1 saying it cannot reach the RIC."""
    run = await run_node("--connect", f"127.0.0.1:{unused_tcp_port}")
    assert run.returncode == 1
    assert f"cannot reach the RIC at 127.0.0.1:{unused_tcp_port}" in run.stderr


async def test_refused_attach_carries_the_runtimes_reason(make_runtime: RuntimeFactory) -> None:
    """An attach the runtime refuses (a name that is no xApp name) ends xapp.js with status 1
    and the runtime's own reason."""
    runtime, _ = await make_runtime(**NB)
    run = await run_node("--connect", f"127.0.0.1:{runtime.northbound.port}", "--name", "Bad!")
    assert run.returncode == 1
    assert "(INVALID_ARGUMENT)" in run.stderr
    assert "hello.name 'Bad!' is not an xApp name" in run.stderr
    assert run.events == []


async def test_token_is_sent_and_the_timeout_names_what_was_awaited(
    make_runtime: RuntimeFactory, tmp_path: Path
) -> None:
    """With --token-file the runtime's bearer token is sent (the attach is welcomed; without it,
    refused), and with no node to report, --timeout ends it naming the reports it awaited."""
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    runtime, _ = await make_runtime(**NB, **{"northbound.token_file": str(token)})
    target = f"127.0.0.1:{runtime.northbound.port}"

    refused = await run_node("--connect", target)
    assert refused.returncode == 1
    assert "(UNAUTHENTICATED)" in refused.stderr and "a bearer token is required" in refused.stderr

    run = await run_node("--connect", target, "--token-file", str(token), "--timeout", "2")
    assert run.returncode == 1
    assert [e["event"] for e in run.events] == ["attached"]
    assert "timed out after 2 s waiting for 5 reports" in run.stderr
