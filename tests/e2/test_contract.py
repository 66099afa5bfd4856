"""A node that knows only proto/ can set up, be subscribed, report and be controlled."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from grpc_tools import protoc

from ric import Handover, KpmReport, OutcomeKind, Report, XApp
from tests.conftest import RuntimeFactory, wait_for

ROOT = Path(__file__).resolve().parents[2]


class HandOverOnLoad(XApp):
    """Hands UE 5 from the first cell of a report to the second when the first is loaded."""

    name = "contract"
    reports = [Report("RRU.PrbUsedDl", "RRU.PrbAvailDl", period_ms=500)]
    controls = [Handover]
    outcomes: list[object]
    reports_seen: list[KpmReport]

    async def on_start(self) -> None:
        self.outcomes = []
        self.reports_seen = []

    async def on_report(self, report: KpmReport) -> None:
        self.reports_seen.append(report)
        if not self.outcomes and report["RRU.PrbUsedDl"][0] > 80:
            self.outcomes.append(
                await self.control(Handover("5", report.entity_ids[0], report.entity_ids[1]))
            )


def compile_contract(out: Path) -> None:
    include = Path(protoc.__file__).parent / "_proto"
    protos = sorted(str(p.relative_to(ROOT / "proto")) for p in (ROOT / "proto").rglob("*.proto"))
    args = [
        "protoc",
        f"-I{ROOT / 'proto'}",
        f"-I{include}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        *protos,
    ]
    assert protoc.main(args) == 0
    for folder in (out / "ric", out / "ric" / "e2", out / "ric" / "e2" / "v1"):
        (folder / "__init__.py").touch()


async def test_node_built_from_proto_files_only(
    tmp_path: Path, make_runtime: RuntimeFactory
) -> None:
    """A subprocess node compiled from proto/ alone is subscribed, its reports reach the xApp,
    and the xApp's handover reaches it and is acknowledged."""
    compile_contract(tmp_path)
    runtime, _ = await make_runtime(HandOverOnLoad)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).with_name("contract_node.py")),
        str(tmp_path),
        f"127.0.0.1:{runtime.port}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    seen = json.loads(out)
    assert seen["accepted"] == [1, 2]
    assert seen["subscription"] == {
        "period_ms": 500,
        "metrics": ["RRU.PrbUsedDl", "RRU.PrbAvailDl"],
        "style": 1,
    }
    assert seen["control"] == {"style": 3, "action": 1, "ue": 5, "target_nci": 102}
    app = runtime.host("contract").instance
    await wait_for(lambda: app.outcomes, what="control outcome")
    assert app.outcomes[0].kind is OutcomeKind.ACKNOWLEDGED
    assert [list(r["RRU.PrbUsedDl"]) for r in app.reports_seen[:2]] == [[90.0, 10.0], [91.0, 10.0]]
