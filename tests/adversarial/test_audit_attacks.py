"""The audit log against power loss and a cut tail, on a real ``ric run``: a torn last line is
moved aside and the chain continues after a restart; records cut from the end are found
against the anchor the runtime wrote to the SDL and the log."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.adversarial.conftest import ROOT, Ric, running_ric


def audit_sections(workdir: Path) -> dict[str, dict[str, Any]]:
    """Audit to a file, anchors every second in a SQLite SDL, GapWatch sending controls."""
    return {
        "audit": {"path": str(workdir / "audit.jsonl"), "anchor_interval_s": 1.0},
        "sdl": {"backend": "sqlite", "path": str(workdir / "sdl.sqlite3")},
        "xapps.config.gapwatch": {"quota_every_s": 0.2},
    }


def records(path: Path) -> list[bytes]:
    """The complete lines of an audit file (none when there is no file yet)."""
    if not path.exists():
        return []
    return [line for line in path.read_bytes().split(b"\n") if line]


async def wait_records(path: Path, count: int, timeout: float = 20.0) -> None:
    """Wait until the audit file holds at least ``count`` records."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(records(path)) >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {count} audit records in {timeout} s")


def verify(*args: str) -> subprocess.CompletedProcess[str]:
    """``ric audit verify`` with ``args``, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "ric", "audit", "verify", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


async def run_for_records(workdir: Path, count: int) -> Ric:
    """Run the RIC until the audit file has ``count`` records, then stop it (anchoring)."""
    async with running_ric(workdir, audit_sections(workdir)) as ric:
        await wait_records(workdir / "audit.jsonl", count)
    return ric


async def test_a_torn_audit_tail_is_moved_aside_and_the_chain_continues(tmp_path: Path) -> None:
    """Power loss mid-write leaves half a record; the restarted RIC moves it to ``.torn``,
    continues the chain, keeps serving the good node unharmed, and the whole file verifies."""
    audit = tmp_path / "audit.jsonl"
    await run_for_records(tmp_path, 5)
    before = len(records(audit))
    torn = b'{"seq": 9999, "xapp": "gapwatch", "kind": "slice_prb'
    with audit.open("ab") as fh:
        fh.write(torn)
    assert verify(str(audit)).returncode == 3  # a crash, not tampering
    async with running_ric(tmp_path, audit_sections(tmp_path)) as ric:
        window = await ric.begin()
        await wait_records(audit, before + 5)
        await ric.assert_unharmed(window)
        assert "was not a complete record" in ric.log_text()
    assert torn in (tmp_path / "audit.jsonl.torn").read_bytes()
    result = verify(str(audit))
    assert result.returncode == 0, result.stdout + result.stderr
    assert b"torn_tail" in audit.read_bytes()


async def test_a_cut_audit_tail_is_found_against_its_anchor(tmp_path: Path) -> None:
    """Records deleted from the end are invisible to the hash chain alone but found against
    the anchor the runtime left in the SDL and in its log; the restarted RIC says so and
    keeps serving the good node."""
    audit = tmp_path / "audit.jsonl"
    config = tmp_path / "ric.toml"
    await run_for_records(tmp_path, 8)
    lines = records(audit)
    audit.write_bytes(b"".join(line + b"\n" for line in lines[:-3]))
    assert verify(str(audit)).returncode == 0  # the chain alone cannot see a cut tail
    anchors = re.findall(r"audit anchor (\d+:[0-9a-f]+)", (tmp_path / "ric.log").read_text())
    assert anchors, "the runtime logged no anchor"
    from_log = verify(str(audit), "--anchor", anchors[-1])
    assert from_log.returncode == 4, from_log.stdout + from_log.stderr
    assert "3 records missing" in from_log.stdout + from_log.stderr
    from_sdl = verify(str(audit), "--anchor-sdl", str(config))
    assert from_sdl.returncode == 4, from_sdl.stdout + from_sdl.stderr
    async with running_ric(tmp_path, audit_sections(tmp_path)) as ric:
        window = await ric.begin()
        await asyncio.sleep(1.0)
        await ric.assert_unharmed(window)
        assert "missing" in ric.log_text().split("audit anchor")[-1] or "missing" in ric.log_text()
