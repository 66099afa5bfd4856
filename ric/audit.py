"""The audit log: one JSON Lines record per control and its outcome, tamper-evident.

Every control an xApp sends ends in exactly one outcome, and each outcome becomes exactly one
record here: in memory (the last ``keep``, served at ``GET /api/v1/controls``) and, when a
path is configured, appended to a JSON Lines file that is flushed record by record. Requests
refused for being outside an xApp's grant are recorded in the same chain. A control record::

    {"seq": 1, "time": 1767000000.123, "type": "control", "xapp": "mlb",
     "node": "gnb-001-01-1", "action": "handover", "target": "ue:17",
     "parameters": {"target_cell": "001-01-4098"}, "outcome": "acknowledged", "cause": null,
     "detail": "", "latency_ms": 0.8, "request_id": [0, 41], "conflict": null,
     "prev": "9f2c...", "hash": "41d0..."}

The file is tamper-evident: each record carries ``prev``, the hash of the record before it
(64 zeros for the first), and ``hash``, the SHA-256 of its own canonical JSON without the
``hash`` field. Editing, removing or inserting a record breaks the chain at that record, and
``ric audit verify FILE`` names the first broken one. A log reopened after a restart continues
the chain and the sequence numbers of the last record in the file.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ric.actions import ControlOutcome
from ric.errors import ConfigError
from ric.types import Check, Sensor

if TYPE_CHECKING:
    from ric.runtime import Runtime

__all__ = ["GENESIS", "AuditLog", "Verification", "audit_record", "record_hash", "verify"]

GENESIS = "0" * 64
"""The ``prev`` of the first record of a chain."""


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 of a record's canonical JSON (sorted keys, no spaces), without its ``hash``."""
    body = {k: v for k, v in record.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Verification:
    """The result of checking an audit file's chain."""

    records: int
    broken_line: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        """True when every record is intact and chained to the one before."""
        return self.broken_line is None


def verify(path: Path) -> Verification:
    """Check every record of an audit file; report the first broken one (1-based line)."""
    prev = GENESIS
    count = 0
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                return Verification(count, line_no, f"line {line_no} is not JSON: {exc.msg}")
            if not isinstance(record, dict) or "hash" not in record or "prev" not in record:
                return Verification(
                    count, line_no, f"line {line_no} is not an audit record (no hash or prev)"
                )
            seq = record.get("seq", "?")
            if record["prev"] != prev:
                return Verification(
                    count,
                    line_no,
                    f"record {seq} (line {line_no}) does not follow the record before it: "
                    "a record was removed, inserted or reordered here",
                )
            if record_hash(record) != record["hash"]:
                return Verification(
                    count,
                    line_no,
                    f"record {seq} (line {line_no}) was altered: its hash does not match "
                    "its content",
                )
            prev = record["hash"]
            count += 1
    return Verification(count)


def _last_line(path: Path) -> str:
    """The last non-empty line of a file, read backwards from its end."""
    with open(path, "rb") as fh:
        pos = fh.seek(0, os.SEEK_END)
        chunk = b""
        while pos > 0:
            step = min(65536, pos)
            pos -= step
            fh.seek(pos)
            chunk = fh.read(step) + chunk
            lines = chunk.rstrip(b"\n").split(b"\n")
            if len(lines) > 1 or pos == 0:
                return lines[-1].decode("utf-8", errors="replace")
    return ""


def audit_record(seq: int, at: float, xapp: str, outcome: ControlOutcome) -> dict[str, Any]:
    """The JSON-ready audit record of one control outcome (without its chain fields)."""
    action = outcome.action
    return {
        "seq": seq,
        "time": round(at, 6),
        "type": "control",
        "xapp": xapp,
        "node": str(outcome.node) if outcome.node else None,
        "action": action.kind,
        "target": action.target,
        "parameters": action.parameters(),
        "outcome": outcome.kind.value,
        "cause": str(outcome.cause) if outcome.cause else None,
        "detail": outcome.detail,
        "latency_ms": round(outcome.latency_s * 1000.0, 3),
        "request_id": list(outcome.request_id) if outcome.request_id else None,
        "conflict": str(outcome.conflict) if outcome.conflict else None,
    }


class AuditLog(Sensor):
    """Records every control outcome and refused request; also the component that owns the
    file."""

    name = "audit"

    def __init__(self, path: Path | None = None, keep: int = 1000) -> None:
        self.path = path
        self.records: collections.deque[dict[str, Any]] = collections.deque(maxlen=keep)
        self.count = 0
        """Records written by this log since it was made."""
        self._seq = 0
        self._prev = GENESIS
        self._file: IO[str] | None = None
        self._error = ""

    def open(self) -> None:
        """Open the file for appending (creating its folder), continuing its chain; ConfigError
        if it cannot be opened or does not end with an audit record."""
        if self.path is None or self._file is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists() and self.path.stat().st_size:
                self._resume(_last_line(self.path))
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - see close()
        except OSError as exc:
            raise ConfigError(
                "audit.path", f"cannot append to {self.path}: {exc.strerror}"
            ) from None

    def _resume(self, last: str) -> None:
        try:
            record = json.loads(last)
            self._prev = str(record["hash"])
            self._seq = int(record["seq"])
        except (ValueError, KeyError, TypeError):
            raise ConfigError(
                "audit.path",
                f"{self.path} does not end with an audit record; check it with "
                f"'ric audit verify {self.path}'",
            ) from None

    def close(self) -> None:
        """Flush and close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None

    async def start(self, runtime: Runtime) -> None:
        """Component start: open the file."""
        self.open()

    async def stop(self) -> None:
        """Component stop: close the file."""
        self.close()

    def checks(self) -> list[Check]:
        """Ready while the file (if any) can be written."""
        if self.path is None:
            return []
        return [Check("audit", not self._error, self._error or str(self.path))]

    def control_finished(self, xapp: str, outcome: ControlOutcome) -> None:
        """Append the record of one finished control."""
        self._append(audit_record(self._seq + 1, time.time(), xapp, outcome))

    def permission_denied(self, xapp: str, what: str, detail: str) -> None:
        """Append the record of a refused subscription (refused controls come as outcomes)."""
        self._append(
            {
                "seq": self._seq + 1,
                "time": round(time.time(), 6),
                "type": "permission",
                "xapp": xapp,
                "what": what,
                "detail": detail,
            }
        )

    def _append(self, record: dict[str, Any]) -> None:
        self._seq = record["seq"]
        self.count += 1
        record["prev"] = self._prev
        record["hash"] = self._prev = record_hash(record)
        self.records.append(record)
        if self._file is not None:
            try:
                self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
                self._file.flush()
            except OSError as exc:
                self._error = f"cannot write {self.path}: {exc.strerror}"

    def last(self, n: int) -> list[dict[str, Any]]:
        """The last ``n`` control records, oldest first."""
        if n <= 0:
            return []
        controls = [r for r in self.records if r.get("type") == "control"]
        return controls[-n:]
