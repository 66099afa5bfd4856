"""The audit log: one JSON Lines record per control and its outcome, tamper-evident.

Every control an xApp sends ends in exactly one outcome, and each outcome becomes exactly one
record here: in memory (the last ``keep``, served at ``GET /api/v1/controls``) and, when a
path is configured, appended to a JSON Lines file. Requests refused for being outside an
xApp's grant are recorded in the same chain. A control record::

    {"seq": 1, "time": 1767000000.123, "type": "control", "xapp": "mlb",
     "node": "gnb-001-01-1", "action": "handover", "rc": [3, 1], "cell": "001-01-4097",
     "target": "ue:17", "parameters": {"serving_cell": "001-01-4097",
     "target_cell": "001-01-4098"}, "outcome": "failed",
     "cause": "ric_request_control_failed_to_execute", "cause_code": 12,
     "detail": "target too weak", "latency_ms": 0.8, "request_id": [0, 41],
     "control_id": "ric-3fa9c07d12e4-41", "conflict": null, "prev": "9f2c...",
     "hash": "41d0..."}

``cell`` is the cell whose node the control went to (a handover's serving cell); ``cause``
and ``cause_code`` are the E2 cause of a failure and ``detail`` the node's (or the
runtime's) text. ``control_id`` is the RIC's id of the control on the E2 wire (null for a
control refused before it was sent); records written before it existed have no such key and
still verify, since a record's hash covers the keys it has. With ``[privacy] pseudonymize_ue_ids`` every UE id is written as the same
keyed pseudonym the log lines show (``"target": "ue:ue-1f0c..."``), in the file, in memory
and so at ``/api/v1/controls``: records are pseudonymised when they are made.

**The chain.** Each record carries ``prev``, the hash of the record before it (64 zeros for
the first), and ``hash``, the SHA-256 of its own canonical JSON without ``hash``. A log
reopened after a restart continues the chain and the sequence numbers.

**Writes and power loss.** Each record is one ``write`` of its line on a file opened for
appending. With ``[audit] fsync = false`` (the default) the file is fsynced before each anchor
and at close, not per record: an fsync per control would stall the event loop for a disk
flush each time; a power loss then loses at most the records since the last anchor, never
one an anchor counts. A crash can leave a torn last line (no newline at its end, or zero bytes
in it). At the next start that line is moved aside: appended to ``<path>.torn`` (never
overwritten or deleted, fsynced before the log is cut), the log truncated to its last good
record, a WARNING logged, and the chain continues with a ``torn_tail`` record that names the
bytes moved (count and SHA-256). More than one bad line at the end is not a crash: the
runtime refuses to start and points to ``ric audit verify``. If a write fails (disk full),
the partial line is cut off and the file is not written again in this run (a later record
after a gap would look like tampering); the records stay in memory and readiness fails.

**Anchors.** The runtime anchors the chain head outside the log every
``[audit] anchor_interval_s`` (default 60 s) and at shutdown, after an fsync: the record
count, the head hash and the time go to the SDL (namespace ``ric.audit``, key ``ric_id``;
with Redis on another machine), to an INFO log line ``audit anchor COUNT:HEAD at TIME`` and
to MQTT (retained, ``<prefix>/audit/anchor``) when the bridge is on. At start the runtime
checks the file against the last anchor in the SDL and logs an ERROR if it does not hold
what the anchor covers (the old anchor is kept under ``<ric_id>.mismatch``).

``ric audit verify FILE [--anchor COUNT:HEAD | --anchor-sdl CONFIG]`` answers, by exit status:

- 0: every record intact and chained (and the anchor's record is there with its hash);
- 1: tampering in the body: a record altered, removed, inserted or reordered (named);
- 3: torn tail (crash): only the last line is incomplete; the records before it are intact;
- 4: records missing against the anchor: the file ends before record COUNT, or its record
  COUNT does not hash to HEAD (cut and continued, or rewritten with a new chain);
- 2: the file or the anchor cannot be read.

What is detected and what is not:

- An edited, removed, inserted or reordered record before the last one: always (1).
- A torn last line: always, and told apart from tampering (3). A last line cut short (no
  newline) or holding zero bytes looks the same whether a crash or a person made it, so it
  is reported as torn; if it was an anchored record, the anchor check reports it (4). A
  complete last line that is not a record (text, JSON without a hash) is tampering (1).
- Records cut from the end: only against an anchor, and only those the anchor covers (4).
  Records written after the last anchor and cut before the next one are not detectable, and
  neither is a cut with no anchor given (the rest of the chain is intact).
- A whole file rewritten with a new, self-consistent chain: only against an anchor (4).
- Anything an attacker who also controls the anchor stores (SDL, MQTT broker, log archive)
  rewrites consistently: not detectable.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ric.actions import ControlOutcome, rc_key
from ric.errors import ConfigError
from ric.privacy import Pseudonymizer
from ric.sdl import Namespace, SdlBackend, SdlError
from ric.types import Check, Clock, Sensor

__all__ = [
    "ANCHORS",
    "GENESIS",
    "Anchor",
    "AuditAnchors",
    "AuditLog",
    "Status",
    "Verification",
    "audit_record",
    "read_anchor",
    "record_hash",
    "verify",
]

log = logging.getLogger(__name__)

GENESIS = "0" * 64
"""The ``prev`` of the first record of a chain."""

ANCHORS = "ric.audit"
"""The SDL namespace of the anchors: the last one under each ``ric_id``."""

_HEX = frozenset("0123456789abcdef")
_CHUNK = 65536


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
"""The canonical JSON of a record (made once: ``json.dumps`` with options builds an encoder
per call)."""


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 of a record's canonical JSON (sorted keys, no spaces), without its ``hash``."""
    body = {k: v for k, v in record.items() if k != "hash"} if "hash" in record else record
    return hashlib.sha256(_CANONICAL.encode(body).encode()).hexdigest()


@dataclass(frozen=True)
class Anchor:
    """The chain head at one moment: the first ``count`` records end in the one whose hash
    is ``head``; ``time`` is when (Unix s; NaN when given by hand)."""

    count: int
    head: str
    time: float = math.nan

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"an anchor counts at least 1 record, got {self.count}")
        if len(self.head) != 64 or not set(self.head) <= _HEX:
            raise ValueError(
                f"an anchor's head is a SHA-256 in 64 lower-case hex digits, got {self.head!r}"
            )

    def __str__(self) -> str:
        return f"{self.count}:{self.head}"

    @classmethod
    def parse(cls, text: str) -> Anchor:
        """From ``COUNT:HEAD`` (as the ``audit anchor`` log line and MQTT show it)."""
        count, sep, head = text.strip().partition(":")
        if not sep or not count.isdigit():
            raise ValueError(f"an anchor is COUNT:HEAD, e.g. 57:9f2c...; got {text!r}")
        return cls(int(count), head.lower())

    @classmethod
    def from_json(cls, value: Any) -> Anchor:
        """From the JSON form the SDL holds; ValueError saying what is wrong."""
        if not isinstance(value, dict):
            raise ValueError(f"an anchor is a JSON object, got {type(value).__name__}")
        try:
            return cls(int(value["count"]), str(value["head"]), float(value.get("time", "nan")))
        except KeyError as exc:
            raise ValueError(f"an anchor needs {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"not an anchor: {exc}") from None

    def as_json(self, ric_id: str, path: str) -> dict[str, Any]:
        """The JSON form kept in the SDL."""
        return {
            "count": self.count,
            "head": self.head,
            "time": self.time,
            "ric_id": ric_id,
            "path": path,
        }

    def describe(self) -> str:
        """``COUNT:HEAD...`` with the time when known, for messages."""
        when = ""
        if not math.isnan(self.time):
            when = time.strftime(" of %Y-%m-%d %H:%M:%S UTC", time.gmtime(self.time))
        return f"{self.count}:{self.head[:16]}...{when}"


class Status(enum.Enum):
    """What ``verify`` found; the value is the exit status of ``ric audit verify``."""

    INTACT = 0
    TAMPERED = 1
    TORN = 3
    MISSING = 4


@dataclass(frozen=True)
class Verification:
    """The result of checking an audit file's chain (and an anchor, if one was given)."""

    records: int
    """Intact, chained records from the start of the file."""
    broken_line: int | None = None
    """The first line that breaks the chain (tampering), 1-based."""
    reason: str = ""
    torn_line: int | None = None
    """The last line, when it is an incomplete write."""
    torn_bytes: int = 0
    anchor: Anchor | None = None
    missing: int | None = None
    """Anchored records the file does not hold (0 when the anchor's record does not match
    and the number cannot be known)."""

    @property
    def status(self) -> Status:
        """The most serious finding."""
        if self.broken_line is not None:
            return Status.TAMPERED
        if self.missing is not None:
            return Status.MISSING
        if self.torn_line is not None:
            return Status.TORN
        return Status.INTACT

    @property
    def ok(self) -> bool:
        """True when every record is intact and chained and the anchor (if any) holds."""
        return self.status is Status.INTACT

    def message(self, path: Path | str) -> str:
        """One line for ``ric audit verify``: what was found, for whom reads it."""
        status = self.status
        if status is Status.TAMPERED:
            return f"{path}: {self.reason} ({self.records} records before it are intact)"
        anchor = self.anchor
        if status is Status.MISSING and anchor is not None:
            if self.missing:
                head = (
                    f"{path}: {self.missing} records missing after record {self.records}: "
                    f"the anchor {anchor.describe()} counts {anchor.count}, the file holds "
                    f"{self.records} intact records; its end was cut"
                )
            else:
                head = (
                    f"{path}: records missing: record {anchor.count} does not hash to the "
                    f"anchor {anchor.describe()}; the log was cut at or before it and "
                    "continued, or rewritten with a new chain"
                )
            torn = (
                f" (and its last line is torn: {self.torn_bytes} bytes)" if self.torn_line else ""
            )
            return head + torn
        if status is Status.TORN:
            return (
                f"{path}: torn tail (crash): the last line (line {self.torn_line}, "
                f"{self.torn_bytes} bytes) is not a complete record; the {self.records} "
                "records before it are intact, not tampered with; 'ric run' moves it to "
                f"{path}.torn and continues the chain"
            )
        tail = f"; anchor {anchor.count} matches" if anchor is not None else ""
        return f"{path}: {self.records} records, chain intact{tail}"


def _record(raw: bytes) -> dict[str, Any] | None:
    """The audit record a line holds, or None when it is not one."""
    try:
        record = json.loads(raw)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError both are
        return None
    if (
        isinstance(record, dict)
        and isinstance(record.get("hash"), str)
        and isinstance(record.get("seq"), int)
        and "prev" in record
    ):
        return record
    return None


def _torn(last: bytes) -> bool:
    """Whether a final line is what a crash leaves: no newline at its end, or zero bytes
    (file systems show blocks they had not written yet as zeros)."""
    return not last.endswith(b"\n") or b"\x00" in last


def _is_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True


def verify(path: Path, anchor: Anchor | None = None, *, limit: int | None = None) -> Verification:
    """Check every record of an audit file (the first ``limit`` only, if given): the chain,
    a torn last line, and the ``anchor``'s record."""
    prev = GENESIS
    count = 0
    anchored: str | None = None
    torn_line: int | None = None
    torn_bytes = 0
    with open(path, "rb") as fh:
        line_no = 0
        raw = fh.readline()
        while raw and (limit is None or count < limit):
            line_no += 1
            following = fh.readline()
            record = _record(raw)
            if not following and _torn(raw):
                torn_line, torn_bytes = line_no, len(raw)
                break
            if record is None:
                what = "not an audit record (no hash, seq or prev)" if _is_json(raw) else "not JSON"
                return Verification(count, line_no, f"line {line_no} is {what}")
            seq = record["seq"]
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
            if anchor is not None and count == anchor.count:
                anchored = prev
            raw = following
    missing: int | None = None
    if anchor is not None:
        if count < anchor.count:
            missing = anchor.count - count
        elif anchored != anchor.head:
            missing = 0
    return Verification(
        count,
        torn_line=torn_line,
        torn_bytes=torn_bytes,
        anchor=anchor,
        missing=missing,
    )


def _line_start(fh: IO[bytes], end: int) -> int:
    """Where the line that ends at ``end`` (with or without its newline) starts."""
    fh.seek(end - 1)
    pos = end - 1 if fh.read(1) == b"\n" else end
    while pos > 0:
        step = min(_CHUNK, pos)
        fh.seek(pos - step)
        found = fh.read(step).rfind(b"\n")
        if found >= 0:
            return pos - step + found + 1
        pos -= step
    return 0


def _fsync_dir(folder: Path) -> None:
    """Make a new file's name durable (best effort: not every platform allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _same(text: str) -> str:
    return text


def audit_record(
    seq: int,
    at: float,
    xapp: str,
    outcome: ControlOutcome,
    privacy: Pseudonymizer | None = None,
) -> dict[str, Any]:
    """The JSON-ready audit record of one control outcome (without its chain fields), with
    UE ids pseudonymised when ``privacy`` is enabled."""
    private = privacy.text if privacy is not None and privacy.enabled else _same
    action = outcome.action
    cause = outcome.cause
    detail = "; ".join(d for d in (outcome.detail, cause.detail if cause else "") if d)
    return {
        "seq": seq,
        "time": round(at, 6),
        "type": "control",
        "xapp": xapp,
        "node": str(outcome.node) if outcome.node else None,
        "action": action.kind,
        "rc": list(rc_key(action)),
        "cell": action.cell,
        "target": private(action.target),
        "parameters": {
            k: private(v) if isinstance(v, str) else v for k, v in action.parameters().items()
        },
        "outcome": outcome.kind.value,
        "cause": cause.code.name.lower() if cause else None,
        "cause_code": int(cause.code) if cause else None,
        "detail": private(detail),
        "latency_ms": round(outcome.latency_s * 1000.0, 3),
        "request_id": list(outcome.request_id) if outcome.request_id else None,
        "control_id": outcome.control_id,
        "conflict": private(str(outcome.conflict)) if outcome.conflict else None,
    }


class AuditLog(Sensor):
    """Records every control outcome and refused request; also the component that owns the
    file. ``privacy`` pseudonymises UE ids as records are made; ``fsync`` syncs every
    record to disk (otherwise only before anchors and at close)."""

    name = "audit"

    def __init__(
        self,
        path: Path | None = None,
        keep: int = 1000,
        *,
        privacy: Pseudonymizer | None = None,
        fsync: bool = False,
    ) -> None:
        self.path = path
        self.records: collections.deque[dict[str, Any]] = collections.deque(maxlen=keep)
        self.count = 0
        """Records written by this log since it was made."""
        self._privacy = privacy if privacy is not None and privacy.enabled else None
        self._private = self._privacy.text if self._privacy is not None else _same
        self._fsync = fsync
        self._seq = 0
        self._prev = GENESIS
        self._fd: int | None = None
        self._size = 0
        self._error = ""
        self._torn: tuple[int, str, Path] | None = None

    @property
    def head(self) -> tuple[int, str]:
        """The sequence number and hash of the last record (0 and ``GENESIS`` when none)."""
        return self._seq, self._prev

    def open(self) -> None:
        """Open the file for appending (creating its folder), continuing its chain after
        moving a torn last line aside; ConfigError if it cannot be opened or ends in more
        than one line that is not a record."""
        if self.path is None or self._fd is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists() and self.path.stat().st_size:
                self._resume()
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            self._size = os.fstat(self._fd).st_size
        except OSError as exc:
            raise ConfigError(
                "audit.path", f"cannot append to {self.path}: {exc.strerror}"
            ) from None
        if self._torn is not None:
            size, digest, where = self._torn
            self._torn = None
            self._append(
                {
                    "seq": self._seq + 1,
                    "time": round(time.time(), 6),
                    "type": "torn_tail",
                    "bytes": size,
                    "sha256": digest,
                    "moved_to": str(where),
                }
            )

    def _resume(self) -> None:
        assert self.path is not None
        with open(self.path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            start = _line_start(fh, size)
            fh.seek(start)
            last = fh.read(size - start)
            torn = _torn(last)
            record = None if torn else _record(last)
            if record is None and not torn:
                raise ConfigError(
                    "audit.path",
                    f"{self.path} does not end with an audit record; check it with "
                    f"'ric audit verify {self.path}'",
                )
            if torn:
                before = None
                if start:
                    fh.seek(prev_start := _line_start(fh, start))
                    before = _record(fh.read(start - prev_start))
                    if before is None:
                        raise ConfigError(
                            "audit.path",
                            f"{self.path} ends in two lines that are not audit records, more "
                            "than a crash leaves; check it with "
                            f"'ric audit verify {self.path}'",
                        )
                self._move_aside(fh, start, size, int(before["seq"]) if before else 0)
                record = before
        if record is not None:
            self._prev = str(record["hash"])
            self._seq = int(record["seq"])

    def _move_aside(self, fh: IO[bytes], start: int, size: int, after: int) -> None:
        """Append the bytes from ``start`` to ``<path>.torn``, make them durable, then cut
        the log there: a crash in between leaves them in both places, never in neither."""
        assert self.path is not None
        where = self.path.with_name(self.path.name + ".torn")
        digest = hashlib.sha256()
        fh.seek(start)
        with open(where, "ab") as out:
            tail = b""
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                tail = chunk[-1:]
            if tail != b"\n":  # one torn tail per line of the .torn file
                out.write(b"\n")
            out.flush()
            os.fsync(out.fileno())
        _fsync_dir(where.parent)
        with open(self.path, "r+b") as cut:
            cut.truncate(start)
            cut.flush()
            os.fsync(cut.fileno())
        self._torn = (size - start, digest.hexdigest(), where)
        log.warning(
            "audit log %s: its last line (%d bytes) was not a complete record (a crash "
            "mid-write); moved it to %s and continuing the chain after record %d",
            self.path,
            size - start,
            where,
            after,
        )

    def close(self) -> None:
        """Sync and close the file."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                if not self._error:
                    os.fsync(fd)
            except OSError as exc:
                log.error("cannot sync the audit log %s: %s", self.path, exc.strerror)
            finally:
                os.close(fd)

    async def anchor(self, at: float) -> Anchor | None:
        """The chain head as an anchor, once the file holds it durably (fsynced in a thread,
        so the loop goes on); None when there is no file, no record, or a write failed."""
        fd, count, head = self._fd, self._seq, self._prev
        if fd is None or self._error or count == 0:
            return None
        if not self._fsync:
            try:
                await asyncio.to_thread(os.fsync, fd)
            except OSError as exc:
                log.error("cannot sync the audit log %s: %s", self.path, exc.strerror)
                return None
        return Anchor(count, head, at)

    async def start(self, runtime: object) -> None:
        """Component start: open the file (it reads nothing of the runtime)."""
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
        self._append(audit_record(self._seq + 1, time.time(), xapp, outcome, self._privacy))

    def permission_denied(self, xapp: str, what: str, detail: str) -> None:
        """Append the record of a refused subscription (refused controls come as outcomes)."""
        self._append(
            {
                "seq": self._seq + 1,
                "time": round(time.time(), 6),
                "type": "permission",
                "xapp": xapp,
                "what": self._private(what),
                "detail": self._private(detail),
            }
        )

    def _append(self, record: dict[str, Any]) -> None:
        self._seq = record["seq"]
        self.count += 1
        record["prev"] = self._prev
        # One encoding serves the hash and the line: the line is the canonical JSON with the
        # hash added last (readers parse it; the order of keys carries nothing).
        canonical = _CANONICAL.encode(record)
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        record["hash"] = self._prev = digest
        self.records.append(record)
        if self._fd is None or self._error:
            return
        data = f'{canonical[:-1]},"hash":"{digest}"}}\n'.encode()
        try:
            _write_all(self._fd, data)  # one write per record: a crash tears one line at most
            if self._fsync:
                os.fsync(self._fd)
            self._size += len(data)
        except OSError as exc:
            # Cut a partial line off, then write no more: a record after a gap would break
            # the chain as tampering does.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            self._error = (
                f"cannot write {self.path}: {exc.strerror}; records from {self._seq} on are "
                "kept in memory only until a restart"
            )
            log.error("audit log: %s", self._error)

    def last(self, n: int) -> list[dict[str, Any]]:
        """The last ``n`` control records, oldest first."""
        if n <= 0:
            return []
        controls = [r for r in self.records if r.get("type") == "control"]
        return controls[-n:]


async def read_anchor(sdl: SdlBackend, ric_id: str) -> Anchor | None:
    """The last anchor the runtime ``ric_id`` wrote to ``sdl`` (opened), or None;
    ValueError when what is there is not an anchor."""
    value = await Namespace(sdl, ANCHORS).get(ric_id)
    return None if value is None else Anchor.from_json(value)


class AuditAnchors:
    """Anchors an audit log's chain head outside it: in the SDL (namespace ``ric.audit``,
    key ``ric_id``) and through the sensors' ``audit_anchor`` hook (the log line, MQTT).

    ``run`` (a task of the runtime) first checks the file against the previous anchor, then
    anchors every ``interval_s``; the runtime cancels it and calls ``anchor`` once more at
    shutdown.
    """

    def __init__(
        self,
        audit: AuditLog,
        sdl: SdlBackend,
        ric_id: str,
        sensor: Sensor,
        clock: Clock,
        interval_s: float,
    ) -> None:
        self._audit = audit
        self._ns = Namespace(sdl, ANCHORS)
        self._ric_id = ric_id
        self._sensor = sensor
        self._clock = clock
        self._interval = interval_s
        self.last: Anchor | None = None
        """The last anchor this runtime made."""
        self._stored = False

    async def run(self) -> None:
        """Check the file against the previous anchor, then anchor every interval."""
        # A failure here is logged, never raised: it would take the runtime's task group down.
        try:
            await self.check()
        except Exception:
            log.exception("cannot check the audit log against its last anchor")
        while True:
            await self._clock.sleep(self._interval)
            try:
                await self.anchor()
            except Exception:
                log.exception("cannot anchor the audit log")

    async def check(self) -> Verification | None:
        """The file against the last anchor in the SDL; when records it covers are missing
        (or altered), an ERROR log line and the anchor kept under ``<ric_id>.mismatch``."""
        path = self._audit.path
        if path is None:
            return None
        try:
            value = await self._ns.get(self._ric_id)
        except SdlError as exc:
            log.warning("cannot read the last audit anchor from the SDL: %s", exc)
            return None
        if value is None:
            return None
        try:
            anchor = Anchor.from_json(value)
        except ValueError as exc:
            log.error("the last audit anchor in the SDL (%s) is unusable: %s", self._ric_id, exc)
            return None
        # Only the anchored records: the loop may be appending to the end meanwhile.
        result = await asyncio.to_thread(verify, path, anchor, limit=anchor.count)
        if result.status in (Status.MISSING, Status.TAMPERED):
            log.error(
                "audit log does not hold what its last anchor covers: %s", result.message(path)
            )
            with contextlib.suppress(SdlError):
                await self._ns.set(f"{self._ric_id}.mismatch", value)
        return result

    async def anchor(self) -> Anchor | None:
        """Anchor the current head (when there is a new one): SDL, then the sensors."""
        anchor = await self._audit.anchor(self._clock.time())
        last = self.last
        if anchor is None or (last is not None and last.count == anchor.count and self._stored):
            return last
        path = str(self._audit.path)
        try:
            await self._ns.set(self._ric_id, anchor.as_json(self._ric_id, path))
            self._stored = True
        except SdlError as exc:
            self._stored = False  # tried again at the next interval even with no new record
            log.warning("audit anchor %s not written to the SDL: %s", anchor, exc)
        if last is None or last.count != anchor.count:
            self._sensor.audit_anchor(anchor.count, anchor.head, anchor.time)
        self.last = anchor
        return anchor
