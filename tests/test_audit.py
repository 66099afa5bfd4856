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
        return await app.control(  # type: ignore[no-any-return]  # apps are the test's xApps, typed loosely
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
        status, body, response = await get(f"{ric.url}/api/v1/controls?limit=many")
        assert (status, response.content_type) == (400, "application/problem+json")
        assert (body["status"], body["title"]) == (400, "Bad Request")
        assert "limit must be an integer" in body["detail"]
        validate(body, response_schema("/api/v1/controls", 400))


HO_OLD = Handover("5", "001-01-1", "001-01-2")


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


# -- torn tails, tampering and anchors ---------------------------------------------------------


def _verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``ric audit verify ARGS`` through the CLI's entry point: exit status and stdout."""
    from ric.cli import main

    status = main(["audit", "verify", *args])
    return status, capsys.readouterr().out


def test_torn_tail_is_moved_aside_and_the_chain_continues(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A half-written last line is appended to <path>.torn (never overwritten), cut from the
    log with a WARNING, and the reopened log continues the chain after a torn_tail record."""
    path = tmp_path / "audit.jsonl"
    _write_log(path, 3)
    with open(path, "ab") as fh:
        fh.write(b'{"seq":4,"time":17670')  # power lost mid-write
    with caplog.at_level("WARNING", logger="ric.audit"):
        _write_log(path, 1)
    torn = tmp_path / "audit.jsonl.torn"
    assert torn.read_bytes() == b'{"seq":4,"time":17670\n'
    assert "moved it to" in caplog.text and str(torn) in caplog.text
    assert "after record 3" in caplog.text
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["seq"], r["type"]) for r in records] == [
        (1, "control"),
        (2, "control"),
        (3, "control"),
        (4, "torn_tail"),
        (5, "control"),
    ]
    assert records[3]["bytes"] == 21 and records[3]["moved_to"] == str(torn)
    # A second crash: its bytes are added to the .torn file, the first ones stay.
    with open(path, "ab") as fh:
        fh.write(b"\x00" * 40 + b'{"seq":6}\n')  # zeros a crash can leave, then a garbled line
    _write_log(path, 1)
    assert torn.read_bytes() == b'{"seq":4,"time":17670\n' + b"\x00" * 40 + b'{"seq":6}\n'
    assert [json.loads(line)["seq"] for line in path.read_text().splitlines()][-2:] == [6, 7]


def test_a_log_that_is_only_a_torn_line_starts_a_new_chain(tmp_path: Path) -> None:
    """A log whose only line is torn (the first write was cut) is moved aside whole and the
    chain starts from the genesis again."""
    from ric.audit import GENESIS, verify

    path = tmp_path / "audit.jsonl"
    path.write_bytes(b'{"seq":1,"ti')
    _write_log(path, 1)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["type"] for r in records] == ["torn_tail", "control"]
    assert records[0]["prev"] == GENESIS
    assert verify(path).ok


def test_two_bad_lines_at_the_end_are_not_a_crash(tmp_path: Path) -> None:
    """Two lines at the end that are not records are more than a torn write: the log is not
    opened, with an error naming the file and the command that checks it; nothing is moved."""
    path = tmp_path / "audit.jsonl"
    _write_log(path, 2)
    with open(path, "ab") as fh:
        fh.write(b"garbage\n{half")
    with pytest.raises(ConfigError, match=r"ends in two lines that are not audit records.*verify"):
        AuditLog(path).open()
    assert not (tmp_path / "audit.jsonl.torn").exists()


def test_verify_tells_a_torn_tail_from_tampering(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ric audit verify` answers a torn last line with exit status 3 and "torn tail (crash)",
    a changed record in the body with 1 naming it, and an intact log with 0."""
    path = tmp_path / "audit.jsonl"
    _write_log(path, 4)
    assert _verify(capsys, str(path)) == (0, f"{path}: 4 records, chain intact\n")
    intact = path.read_bytes()
    path.write_bytes(intact + b'{"seq":5,"time":1')
    status, out = _verify(capsys, str(path))
    assert status == 3
    assert "torn tail (crash): the last line (line 5, 17 bytes)" in out
    assert "the 4 records before it are intact" in out
    lines = intact.decode().splitlines()
    record = json.loads(lines[1])
    record["target"] = "ue:99"
    lines[1] = json.dumps(record, separators=(",", ":"))
    path.write_text("\n".join(lines) + '\n{"seq":5,"time":1')
    status, out = _verify(capsys, str(path))
    assert status == 1
    assert "record 2 (line 2) was altered" in out


async def test_a_cut_tail_is_found_only_against_an_anchor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Cutting the last records leaves an intact chain (verify alone says 0: it cannot see a
    cut), but against the anchor taken before the cut it reports the records missing (4);
    a cut log that went on with new records is reported as not matching the anchor."""
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.open()
    for i in range(6):
        log.control_finished(
            "s1",
            ControlOutcome(OutcomeKind.NOT_CONNECTED, Handover(str(i), "001-01-1", "001-01-2")),
        )
    anchor = await log.anchor(1767000000.0)
    log.close()
    assert anchor is not None and anchor.count == 6
    lines = path.read_text().splitlines()
    assert anchor.head == json.loads(lines[-1])["hash"]
    assert _verify(capsys, str(path), "--anchor", str(anchor)) == (
        0,
        f"{path}: 6 records, chain intact; anchor 6 matches\n",
    )
    path.write_text("\n".join(lines[:4]) + "\n")  # two records cut
    assert _verify(capsys, str(path)) == (0, f"{path}: 4 records, chain intact\n")
    status, out = _verify(capsys, str(path), "--anchor", str(anchor))
    assert status == 4
    assert out.startswith(f"{path}: 2 records missing after record 4: the anchor 6:")
    assert "of 2026-01-" not in out  # a hand-given anchor has no time
    _write_log(path, 3)  # the runtime restarted on the cut log and went on
    status, out = _verify(capsys, str(path), "--anchor", str(anchor))
    assert status == 4
    assert "records missing: record 6 does not hash to the anchor" in out


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("57", "an anchor is COUNT:HEAD"),
        ("x:" + "0" * 64, "an anchor is COUNT:HEAD"),
        ("0:" + "a" * 64, "counts at least 1 record"),
        ("5:abc", "64 lower-case hex digits"),
    ],
)
def test_a_bad_anchor_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, needle: str
) -> None:
    """A malformed --anchor is refused with exit status 2 and a line saying what an anchor is."""
    from ric.cli import main

    path = tmp_path / "audit.jsonl"
    _write_log(path, 1)
    with pytest.raises(SystemExit) as exc:
        main(["audit", "verify", str(path), "--anchor", text])
    assert exc.value.code == 2
    assert needle in capsys.readouterr().err


def _append_bytes(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


class Quiet(XApp):
    name = "quiet"
    controls = [Handover]


async def _controls(runtime: object, n: int) -> None:
    """``n`` handovers from the ``quiet`` xApp (no node: each ends not_connected)."""
    await wait_for(lambda: runtime.host("quiet").instance is not None)  # type: ignore[attr-defined]
    app = runtime.host("quiet").instance  # type: ignore[attr-defined]
    for i in range(n):
        await app.control(Handover(str(i), "001-01-91", "001-01-92"))


async def test_the_runtime_anchors_in_the_sdl_the_log_and_mqtt(
    make_runtime: RuntimeFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """At shutdown a real runtime anchors its audit chain in the SQLite SDL, an INFO log line
    and the MQTT bridge's retained topic; `verify --anchor-sdl CONFIG` then passes, and after
    the last records are cut it reports them missing; a runtime restarted on the cut log says
    so in an ERROR line."""
    from ric.mqtt import MqttBridge

    path = tmp_path / "audit.jsonl"
    config = tmp_path / "ric.toml"
    config.write_text(
        f'ric_id = "ric-a"\n[sdl]\nbackend = "sqlite"\npath = "{tmp_path / "sdl.sqlite3"}"\n'
    )
    settings = {
        "ric_id": "ric-a",
        "audit.path": str(path),
        "sdl.backend": "sqlite",
        "sdl.path": str(tmp_path / "sdl.sqlite3"),
    }
    runtime, _ = await make_runtime(Quiet, **settings)
    bridge = MqttBridge(runtime.config.mqtt, ric_id="ric-a")
    runtime.sensor.add(bridge)
    await _controls(runtime, 5)
    with caplog.at_level("INFO", logger="ric.events"):
        await runtime.__aexit__(None, None, None)
    head = json.loads(path.read_text().splitlines()[-1])["hash"]
    assert f"audit anchor 5:{head} at " in caplog.text
    body, _ = bridge._retained["ric/audit/anchor"]
    assert (body["ric_id"], body["count"], body["anchor"]) == ("ric-a", 5, f"5:{head}")
    # In a thread: the CLI runs its own event loop to read the SDL.
    status, out = await asyncio.to_thread(_verify, capsys, str(path), "--anchor-sdl", str(config))
    assert status == 0 and "5 records, chain intact; anchor 5 matches" in out

    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:3]) + "\n")
    status, out = await asyncio.to_thread(_verify, capsys, str(path), "--anchor-sdl", str(config))
    assert status == 4 and "2 records missing after record 3" in out

    with caplog.at_level("ERROR", logger="ric.audit"):
        again, _ = await make_runtime(Quiet, **settings)
        await wait_for(lambda: "does not hold what its last anchor covers" in caplog.text)
    assert "2 records missing after record 3" in caplog.text
    await again.__aexit__(None, None, None)


def test_anchor_sdl_needs_a_store_that_outlives_the_runtime(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--anchor-sdl with an in-memory SDL, or a store with no anchor, is exit status 2 with a
    line saying why."""
    from ric.cli import main

    path = tmp_path / "audit.jsonl"
    _write_log(path, 1)
    memory = tmp_path / "memory.toml"
    memory.write_text('[sdl]\nbackend = "memory"\n')
    assert main(["audit", "verify", str(path), "--anchor-sdl", str(memory)]) == 2
    assert "keeps the SDL in memory" in capsys.readouterr().err
    empty = tmp_path / "empty.toml"
    empty.write_text(f'[sdl]\nbackend = "sqlite"\npath = "{tmp_path / "e.sqlite3"}"\n')
    assert main(["audit", "verify", str(path), "--anchor-sdl", str(empty)]) == 2
    assert "no audit anchor for ric_id 'ric'" in capsys.readouterr().err


async def test_a_runtime_starts_on_a_torn_log_and_continues_its_chain(
    make_runtime: RuntimeFactory, tmp_path: Path
) -> None:
    """A runtime whose audit log ends in a torn line (a power loss) starts, keeps the torn
    bytes in <path>.torn and appends its controls to an intact chain."""
    from ric.audit import verify

    path = tmp_path / "audit.jsonl"
    first, _ = await make_runtime(Quiet, **{"audit.path": str(path)})
    await _controls(first, 2)
    await first.__aexit__(None, None, None)
    _append_bytes(path, b'{"seq":3,"time":1767000000.5,"type":"cont')  # power lost mid-write
    second, _ = await make_runtime(Quiet, **{"audit.path": str(path)})
    await _controls(second, 2)
    await second.__aexit__(None, None, None)
    assert (tmp_path / "audit.jsonl.torn").read_bytes().startswith(b'{"seq":3,"time":17')
    result = verify(path)
    assert result.ok and result.records == 5
    types = [json.loads(line)["type"] for line in path.read_text().splitlines()]
    assert types == ["control", "control", "torn_tail", "control", "control"]


def test_records_carry_the_control_id_and_old_records_still_verify(tmp_path: Path) -> None:
    """A record shows its control's E2 control_id (null when it never left); a log whose
    first records were written before the field existed (no such key) continues its chain,
    and verify finds every record intact."""
    from ric.actions import ControlOutcome as Outcome
    from ric.audit import GENESIS, audit_record, record_hash, verify

    path = tmp_path / "audit.jsonl"
    prev, lines = GENESIS, []
    for seq in (1, 2):  # what the runtime wrote before control_id: the same record without it
        old = audit_record(seq, 1767000000.0 + seq, "s1", Outcome(OutcomeKind.TIMED_OUT, HO_OLD))
        del old["control_id"]
        old["prev"] = prev
        old["hash"] = prev = record_hash(old)
        lines.append(json.dumps(old, separators=(",", ":")))
    path.write_text("\n".join(lines) + "\n")
    log = AuditLog(path)
    log.open()
    sent = Outcome(OutcomeKind.ACKNOWLEDGED, HO_OLD, control_id="ric-0123456789ab-7")
    log.control_finished("s1", sent)
    log.control_finished("s1", Outcome(OutcomeKind.NOT_CONNECTED, HO_OLD))
    log.close()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert ["control_id" in r for r in records] == [False, False, True, True]
    assert [r["control_id"] for r in records[2:]] == ["ric-0123456789ab-7", None]
    result = verify(path)
    assert result.records == 4 and result.ok
