"""The audit log: every control is exactly one record, whatever its outcome, even with nodes
dropping mid-run; records go to a JSON Lines file."""

from __future__ import annotations

import asyncio
import collections
import json
from pathlib import Path

import pytest

from ric import ConfigError, ControlOutcome, Handover, OutcomeKind, XApp
from ric._proto.e2.v1 import e2_pb2
from ric.audit import AuditLog
from ric.e2.convert import cause_to_proto
from ric.model import Cause, CauseCode
from tests.conftest import RuntimeFactory, wait_for
from tests.e2node import ScriptedNode

TOTAL = 10_000
NODES = 4


class Sender(XApp):
    controls = [Handover]


class S1(Sender):
    name = "s1"


class S2(Sender):
    name = "s2"


class S3(Sender):
    name = "s3"


async def answer(node: ScriptedNode, drop_after: int | None) -> None:
    """Acknowledge most controls, fail every 7th, ignore every 13th; close after drop_after."""
    answered = 0
    while True:
        msg = await node.recv(timeout=60)
        if msg.WhichOneof("message") != "control_request":
            continue
        rid = msg.control_request.request_id
        answered += 1
        if drop_after is not None and answered >= drop_after:
            await node.call.done_writing()
            return
        if rid.instance % 13 == 0:
            continue
        if rid.instance % 7 == 0:
            cause = cause_to_proto(Cause(CauseCode.RIC_REQUEST_CONTROL_FAILED_TO_EXECUTE, "busy"))
            reply = e2_pb2.NodeMessage(
                control_failure=e2_pb2.ControlFailure(request_id=rid, cause=cause)
            )
        else:
            reply = e2_pb2.NodeMessage(
                control_acknowledge=e2_pb2.ControlAcknowledge(request_id=rid)
            )
        await node.send(reply)


async def test_ten_thousand_controls_ten_thousand_records(
    make_runtime: RuntimeFactory, tmp_path: Path
) -> None:
    """10,000 controls from three xApps to four nodes, two of which drop mid-run, end in exactly
    10,000 outcomes and 10,000 audit records (in memory and in the file), none twice."""
    path = tmp_path / "audit" / "controls.jsonl"
    runtime, stats = await make_runtime(
        S1,
        S2,
        S3,
        **{
            "audit.path": str(path),
            "audit.keep": TOTAL,
            "xapps.max_controls_per_s": None,
            "conflicts.enabled": False,
        },
    )
    target = f"127.0.0.1:{runtime.port}"
    nodes = [ScriptedNode(target) for _ in range(NODES)]
    for k, node in enumerate(nodes, start=1):
        await node.__aenter__()
        await node.setup(node_id=k, cells=[10 * k + 1, 10 * k + 2])
    answering = [
        asyncio.create_task(answer(n, 600 if k >= 2 else None)) for k, n in enumerate(nodes)
    ]
    await wait_for(lambda: all(h.instance is not None for h in runtime.hosts))
    apps = [h.instance for h in runtime.hosts]

    async def one(i: int) -> ControlOutcome:
        app = apps[i % 3]
        assert app is not None
        k = i % NODES + 1
        return await app.control(
            Handover(str(i), f"001-01-{10 * k + 1}", f"001-01-{10 * k + 2}"), timeout=0.5
        )

    outcomes: list[ControlOutcome] = []
    for start in range(0, TOTAL, 500):
        outcomes += await asyncio.gather(*(one(i) for i in range(start, min(start + 500, TOTAL))))
    for task in answering:
        task.cancel()
    for node in nodes:
        await node.__aexit__(None, None, None)

    kinds = collections.Counter(o.kind for o in outcomes)
    assert len(outcomes) == TOTAL
    assert {
        OutcomeKind.ACKNOWLEDGED,
        OutcomeKind.FAILED,
        OutcomeKind.TIMED_OUT,
        OutcomeKind.NOT_CONNECTED,
    } <= set(kinds)
    sent = [o.request_id for o in outcomes if o.request_id is not None]
    assert len(sent) == len(set(sent))
    audit = runtime.audit
    assert audit.count == TOTAL
    assert sum(stats.controls.values()) == TOTAL
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == TOTAL
    assert sorted(r["seq"] for r in records) == list(range(1, TOTAL + 1))
    audited = [tuple(r["request_id"]) for r in records if r["request_id"]]
    assert sorted(audited) == sorted(sent)
    assert collections.Counter(r["outcome"] for r in records) == {
        k.value: n for k, n in kinds.items()
    }
    assert len(audit.last(TOTAL)) == TOTAL


async def test_rate_limit_is_an_outcome_and_audited(make_runtime: RuntimeFactory) -> None:
    """An xApp over its controls-per-second limit gets rate_limited outcomes, counted and
    audited, without any of them reaching the node."""
    runtime, stats = await make_runtime(S1, **{"xapps.max_controls_per_s": 5})
    async with ScriptedNode(f"127.0.0.1:{runtime.port}") as node:
        await node.setup(cells=[11, 12])
        await wait_for(lambda: runtime.host("s1").instance is not None)
        app = runtime.host("s1").instance
        assert app is not None
        results = await asyncio.gather(
            *(
                app.control(Handover(str(i), "001-01-11", "001-01-12"), timeout=0.2)
                for i in range(8)
            )
        )
    kinds = collections.Counter(r.kind for r in results)
    assert kinds[OutcomeKind.RATE_LIMITED] == 3
    assert "limit of 5 controls per second" in next(
        r.detail for r in results if r.kind is OutcomeKind.RATE_LIMITED
    )
    assert stats.limits[("s1", "controls_per_s")] == 3
    assert [r["outcome"] for r in runtime.audit.last(8)].count("rate_limited") == 3


def test_unwritable_audit_path_is_a_clear_error(tmp_path: Path) -> None:
    """An audit path that cannot be opened is refused naming the key and the path."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=r"'audit.path': cannot append to .*file/controls.jsonl"):
        AuditLog(blocker / "controls.jsonl").open()


async def test_controls_endpoint_serves_the_audit_log() -> None:
    """GET /api/v1/controls serves the last audited controls (per its OpenAPI schema), filters
    by xApp and outcome, and refuses a bad limit with a 400 that says why."""
    from tests.integration.stack import running_ric, xapp_plugins
    from tests.test_http import get, response_schema, validate

    async with running_ric(*xapp_plugins(S1), sim=False) as ric:
        await wait_for(lambda: ric.runtime.host("s1").instance is not None)
        app = ric.runtime.host("s1").instance
        assert app is not None
        for i in range(3):
            await app.control(Handover(str(i), "001-01-91", "001-01-92"))
        status, body, _ = await get(f"{ric.url}/api/v1/controls?limit=2")
        assert status == 200
        validate(body, response_schema("/api/v1/controls", 200))
        assert [r["target"] for r in body["controls"]] == ["ue:1", "ue:2"]
        assert {r["outcome"] for r in body["controls"]} == {"not_connected"}
        status, body, _ = await get(f"{ric.url}/api/v1/controls?outcome=acknowledged")
        assert (status, body) == (200, {"controls": []})
        status, body, _ = await get(f"{ric.url}/api/v1/controls?limit=many")
        assert status == 400
        assert "limit must be an integer" in body["error"]


def _write_log(path: Path, n: int) -> None:
    """A real audit log of ``n`` refused controls (no node needed)."""
    from ric.actions import ControlOutcome as Outcome

    log = AuditLog(path)
    log.open()
    for i in range(n):
        log.control_finished(
            "s1", Outcome(OutcomeKind.NOT_CONNECTED, Handover(str(i), "001-01-1", "001-01-2"))
        )
    log.close()


def test_chain_survives_restart_and_detects_an_edit(tmp_path: Path) -> None:
    """A log reopened after a restart continues the chain; `ric audit verify` accepts it, and
    after one record's outcome is edited it fails naming exactly that record."""
    import subprocess
    import sys

    path = tmp_path / "audit.jsonl"
    _write_log(path, 3)
    _write_log(path, 2)  # a restart: the chain and the sequence go on
    lines = path.read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3, 4, 5]
    ok = subprocess.run(
        [sys.executable, "-m", "ric", "audit", "verify", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "5 records, chain intact" in ok.stdout
    record = json.loads(lines[3])
    record["outcome"] = "acknowledged"
    lines[3] = json.dumps(record, separators=(",", ":"))
    path.write_text("\n".join(lines) + "\n")
    bad = subprocess.run(
        [sys.executable, "-m", "ric", "audit", "verify", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert "record 4 (line 4) was altered" in bad.stdout
    del lines[3]  # removing the record instead breaks the chain at the next one
    path.write_text("\n".join(lines) + "\n")
    assert (
        "record 5 (line 4) does not follow"
        in subprocess.run(
            [sys.executable, "-m", "ric", "audit", "verify", str(path)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
    )
