"""The trace file format: a header, then time-stamped E2 frames; streamed both ways.

Layout (format version 1; the protobuf messages are in ``proto/ric/trace/v1/trace.proto``)::

    magic      b"RICTRACE"                       8 bytes
    record 0   TraceHeader                       length (u32 LE) | CRC-32 (u32 LE) | payload
    record 1.. TraceFrame, in time order         the same framing, one record per frame

The whole file may be gzip-compressed (``compress=True``, or a path ending in ``.gz``); a
reader recognises that by the first bytes, not by the name. Records are read one at a time,
so a trace of hours never has to fit in memory. A reader that meets damage (a record cut
short, a CRC that does not match, a gzip stream that ends early) first yields every complete
frame before it, then raises :class:`TraceError` naming the file, the frame number and the
byte offset (of the uncompressed stream, for a compressed file).
"""

from __future__ import annotations

import enum
import gzip
import io
import struct
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import IO, Final, Self

from google.protobuf.message import DecodeError

from ric._proto.e2.v1 import e2_pb2
from ric._proto.trace.v1 import trace_pb2
from ric.errors import RicError

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "Direction",
    "Frame",
    "NodeSetup",
    "TraceError",
    "TraceHeader",
    "TraceReader",
    "TraceWriter",
]

FORMAT_VERSION: Final = 1
"""The version this code writes, and the newest it reads."""
MAGIC: Final = b"RICTRACE"
"""The first 8 bytes of every (uncompressed) trace."""
_GZIP_MAGIC: Final = b"\x1f\x8b"
_RECORD = struct.Struct("<II")  # payload length, CRC-32 of the payload
_MAX_RECORD: Final = 256 << 20
"""A record longer than this (256 MiB) is taken for damage, not allocated."""
_CHUNK: Final = 1 << 16


class TraceError(RicError):
    """A trace file cannot be read (or written): foreign, damaged, truncated or too new.

    ``path`` is the file; ``frame`` the number of the frame where the damage is (1 is the
    first frame after the header, None for the header or the whole file); ``offset`` the byte
    where that record starts; ``frames_ok`` how many complete frames came before it.
    """

    def __init__(
        self,
        path: str | Path,
        problem: str,
        *,
        frame: int | None = None,
        offset: int | None = None,
        frames_ok: int | None = None,
    ) -> None:
        self.path = str(path)
        self.problem = problem
        self.frame = frame
        self.offset = offset
        self.frames_ok = frames_ok
        where = ""
        if frame is not None:
            where = f" at frame {frame}"
        elif offset is not None:
            where = " in the header"
        if offset is not None:
            where += f" (byte {offset})"
        kept = f"; the {frames_ok} frames before it are intact" if frames_ok is not None else ""
        super().__init__(f"trace {self.path}: {problem}{where}{kept}")


class Direction(enum.Enum):
    """Which way a frame went (or that the association ended)."""

    NODE_TO_RIC = trace_pb2.DIRECTION_NODE_TO_RIC
    RIC_TO_NODE = trace_pb2.DIRECTION_RIC_TO_NODE
    DISCONNECTED = trace_pb2.DIRECTION_DISCONNECTED


@dataclass(frozen=True, slots=True)
class Frame:
    """One E2 message as it crossed the termination, ``offset_us`` after the trace start.

    ``message`` is the serialized ``NodeMessage`` (node to RIC) or ``RicMessage`` (RIC to
    node), exactly as on the wire; a DISCONNECTED frame has no message and a ``reason``.
    """

    offset_us: int
    node: str
    direction: Direction
    message: bytes = b""
    reason: str = ""

    @property
    def offset_s(self) -> float:
        """The offset in seconds."""
        return self.offset_us / 1e6

    def node_message(self) -> e2_pb2.NodeMessage:
        """The message of a NODE_TO_RIC frame, parsed (DecodeError if it is not one)."""
        if self.direction is not Direction.NODE_TO_RIC:
            raise ValueError(f"a {self.direction.name} frame carries no NodeMessage")
        return e2_pb2.NodeMessage.FromString(self.message)

    def ric_message(self) -> e2_pb2.RicMessage:
        """The message of a RIC_TO_NODE frame, parsed (DecodeError if it is not one)."""
        if self.direction is not Direction.RIC_TO_NODE:
            raise ValueError(f"a {self.direction.name} frame carries no RicMessage")
        return e2_pb2.RicMessage.FromString(self.message)


@dataclass(frozen=True, slots=True)
class NodeSetup:
    """A node already set up when a trace starts: its id and its E2SetupRequest."""

    node: str
    setup: e2_pb2.E2SetupRequest
    setup_offset_us: int = 0
    """When it set up, relative to the trace start (0 or negative: before the trace)."""


@dataclass(frozen=True, slots=True)
class TraceHeader:
    """What a trace says about itself before its first frame."""

    start_unix_us: int
    """When the trace starts, Unix time in microseconds; frame offsets count from here."""
    source: str = ""
    ric_id: str = ""
    nodes: tuple[NodeSetup, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    created_unix_us: int = 0
    """When the file was written (0: now, filled in by the writer)."""
    format_version: int = FORMAT_VERSION

    @property
    def start_unix_s(self) -> float:
        """The trace start, Unix time in seconds."""
        return self.start_unix_us / 1e6

    def to_proto(self) -> trace_pb2.TraceHeader:
        """The header as its protobuf message."""
        return trace_pb2.TraceHeader(
            format_version=self.format_version,
            start_unix_us=self.start_unix_us,
            created_unix_us=self.created_unix_us,
            source=self.source,
            ric_id=self.ric_id,
            nodes=[
                trace_pb2.TraceNode(node=n.node, setup=n.setup, setup_offset_us=n.setup_offset_us)
                for n in self.nodes
            ],
            metadata=dict(self.metadata),
        )

    @classmethod
    def from_proto(cls, msg: trace_pb2.TraceHeader) -> TraceHeader:
        """The header a protobuf message describes."""
        return cls(
            start_unix_us=msg.start_unix_us,
            source=msg.source,
            ric_id=msg.ric_id,
            nodes=tuple(NodeSetup(n.node, n.setup, n.setup_offset_us) for n in msg.nodes),
            metadata=MappingProxyType(dict(msg.metadata)),
            created_unix_us=msg.created_unix_us,
            format_version=msg.format_version,
        )


def _record(payload: bytes) -> bytes:
    return _RECORD.pack(len(payload), zlib.crc32(payload)) + payload


class TraceWriter:
    """Writes a trace, one frame at a time; a context manager (leaving it closes the file).

    The magic and the header are written when it is made. ``compress`` gzips the whole file
    (None: when the path ends in ``.gz``). Frames are buffered; :meth:`flush` pushes them to
    the operating system (and, compressed, to a point a reader can decode up to), so a crash
    loses at most what came after the last flush. Frames must come in time order.
    """

    def __init__(
        self,
        path: str | Path,
        header: TraceHeader,
        *,
        compress: bool | None = None,
        buffer_bytes: int = _CHUNK,
    ) -> None:
        self.path = Path(path)
        self.compressed = self.path.suffix == ".gz" if compress is None else compress
        if header.created_unix_us == 0:
            header = TraceHeader(
                start_unix_us=header.start_unix_us,
                source=header.source,
                ric_id=header.ric_id,
                nodes=header.nodes,
                metadata=header.metadata,
                created_unix_us=int(time.time() * 1e6),
                format_version=header.format_version,
            )
        self.header = header
        self.frames = 0
        """Frames written so far."""
        self.closed = False
        self._last_us = 0
        self._limit = buffer_bytes
        self._buf = bytearray()
        self._raw: IO[bytes] = open(self.path, "wb")  # noqa: SIM115 - closed by close()
        self._gzip: gzip.GzipFile | None = None
        if self.compressed:
            self._gzip = gzip.GzipFile(fileobj=self._raw, mode="wb", compresslevel=6, mtime=0)
        self._out: IO[bytes] | gzip.GzipFile = self._gzip or self._raw
        self._buf += MAGIC
        self._buf += _record(header.to_proto().SerializeToString())
        self.flush()

    def __repr__(self) -> str:
        return f"TraceWriter({str(self.path)!r}, {self.frames} frames)"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(
        self,
        offset_us: int,
        node: str,
        direction: Direction,
        message: bytes = b"",
        reason: str = "",
    ) -> None:
        """Append one frame (the fast path of :meth:`write`)."""
        if self.closed:
            raise TraceError(self.path, "the writer is closed; frames cannot be added")
        if offset_us < self._last_us:
            raise ValueError(
                f"trace frames must come in time order: offset {offset_us} us after "
                f"{self._last_us} us"
            )
        self._last_us = offset_us
        payload = trace_pb2.TraceFrame(
            offset_us=offset_us,
            node=node,
            direction=direction.value,
            message=message,
            reason=reason,
        ).SerializeToString()
        self._buf += _RECORD.pack(len(payload), zlib.crc32(payload))
        self._buf += payload
        self.frames += 1
        if len(self._buf) >= self._limit:
            self._out.write(self._buf)
            self._buf.clear()

    def write(self, frame: Frame) -> None:
        """Append one frame."""
        self.add(frame.offset_us, frame.node, frame.direction, frame.message, frame.reason)

    def flush(self) -> None:
        """Push everything written so far to the operating system."""
        if self.closed:
            return
        if self._buf:
            self._out.write(self._buf)
            self._buf.clear()
        if self._gzip is not None:
            self._gzip.flush(zlib.Z_SYNC_FLUSH)
        self._raw.flush()

    def close(self) -> None:
        """Flush and close the file (again: nothing happens)."""
        if self.closed:
            return
        try:
            self.flush()
            if self._gzip is not None:
                self._gzip.close()
        finally:
            self.closed = True
            self._raw.close()


class TraceReader:
    """Reads a trace: the header when opened, then the frames one at a time, streaming.

    ``TraceError`` when the file is not a trace, is of a newer format version, or its header
    is damaged. Iterating yields the frames; at damage further on, every complete frame before
    it has been yielded when TraceError is raised (or, with ``frames(strict=False)``, the
    iteration just ends and ``error`` holds the TraceError). A reader reads once.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.error: TraceError | None = None
        """The damage met by a lenient iteration, if any."""
        self.frames_read = 0
        try:
            self._raw: io.BufferedReader = open(self.path, "rb")  # noqa: SIM115 - see close()
        except FileNotFoundError:
            raise TraceError(self.path, "no such file") from None
        except IsADirectoryError:
            raise TraceError(self.path, "is a directory, not a trace file") from None
        self.compressed = self._raw.read(2) == _GZIP_MAGIC
        self._raw.seek(0)
        self._in: io.BufferedReader | gzip.GzipFile = (
            gzip.GzipFile(fileobj=self._raw, mode="rb") if self.compressed else self._raw
        )
        self._buf = b""
        self._pos = 0
        self._consumed = 0  # bytes of the (uncompressed) stream before self._buf[0]
        self._eof = False
        self._stream_error = ""
        self._used = False
        try:
            self.header = self._read_header()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"TraceReader({str(self.path)!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        try:
            if self._in is not self._raw:
                self._in.close()
        finally:
            self._raw.close()

    # -- low level -----------------------------------------------------------------------------

    @property
    def _offset(self) -> int:
        return self._consumed + self._pos

    def _fill(self, n: int) -> bool:
        """Make ``n`` bytes available at ``_pos``; False if the stream ends first."""
        while len(self._buf) - self._pos < n:
            if self._eof:
                return False
            try:
                # read1: what is there now, so data before a damaged gzip tail is not lost.
                chunk = self._in.read1(max(_CHUNK, n))
            except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
                self._stream_error = str(exc) or type(exc).__name__
                chunk = b""
            if not chunk:
                self._eof = True
                continue
            self._consumed += self._pos
            self._buf = self._buf[self._pos :] + chunk
            self._pos = 0
        return True

    def _next_record(self, what: str, frame: int | None) -> bytes | None:
        """The next record's payload; None at a clean end; TraceError at damage."""
        start = self._offset
        if not self._fill(1):
            if self._stream_error:
                raise self._damage(
                    f"the compressed stream is damaged ({self._stream_error})", frame, start
                )
            return None
        if not self._fill(_RECORD.size):
            raise self._damage(f"truncated: the {what} is cut short", frame, start)
        length, crc = _RECORD.unpack_from(self._buf, self._pos)
        if length > _MAX_RECORD:
            raise self._damage(f"damaged: the {what} claims {length} bytes", frame, start)
        if not self._fill(_RECORD.size + length):
            reason = f" ({self._stream_error})" if self._stream_error else ""
            raise self._damage(f"truncated: the {what} is cut short{reason}", frame, start)
        begin = self._pos + _RECORD.size
        payload = self._buf[begin : begin + length]
        if zlib.crc32(payload) != crc:
            raise self._damage(f"damaged: the {what} fails its CRC check", frame, start)
        self._pos = begin + length
        return payload

    def _damage(self, problem: str, frame: int | None, offset: int) -> TraceError:
        if self.compressed:
            problem += " (offsets count bytes of the uncompressed stream)"
        return TraceError(
            self.path,
            problem,
            frame=frame,
            offset=offset,
            frames_ok=None if frame is None else frame - 1,
        )

    def _read_header(self) -> TraceHeader:
        if not self._fill(len(MAGIC)) or self._buf[: len(MAGIC)] != MAGIC:
            if self._stream_error:
                raise TraceError(
                    self.path, f"not a ric trace: unreadable gzip stream ({self._stream_error})"
                )
            head = bytes(self._buf[: len(MAGIC)])
            raise TraceError(
                self.path,
                f"not a ric trace (it starts with {head!r}, a trace starts with {MAGIC!r})",
            )
        self._pos = len(MAGIC)
        payload = self._next_record("header", None)
        if payload is None:
            raise TraceError(
                self.path, "truncated: the file ends before the header", offset=len(MAGIC)
            )
        try:
            msg = trace_pb2.TraceHeader.FromString(payload)
        except DecodeError as exc:
            raise TraceError(
                self.path, f"damaged: the header does not decode ({exc})", offset=len(MAGIC)
            ) from None
        if msg.format_version == 0:
            raise TraceError(self.path, "damaged: the header has no format version")
        if msg.format_version > FORMAT_VERSION:
            raise TraceError(
                self.path,
                f"format version {msg.format_version} is newer than this ric reads "
                f"(up to {FORMAT_VERSION}); upgrade ric",
            )
        return TraceHeader.from_proto(msg)

    # -- frames --------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def frames(self, *, strict: bool = True) -> Iterator[Frame]:
        """The frames, in file order. At damage: raise TraceError (``strict``), or stop and
        keep it in ``error``. The file is closed when the frames end."""
        if self._used:
            raise TraceError(self.path, "a TraceReader reads once; open the trace again")
        self._used = True
        return self._frames(strict)

    def _frames(self, strict: bool) -> Iterator[Frame]:
        try:
            yield from self._records(strict)
        finally:
            self.close()  # a read-once reader is done once its frames are

    def _records(self, strict: bool) -> Iterator[Frame]:
        parse = trace_pb2.TraceFrame.FromString
        directions = {d.value: d for d in Direction}
        number = 0
        while True:
            number += 1
            start = self._offset
            try:
                payload = self._next_record("record", number)
                if payload is None:
                    return
                try:
                    msg = parse(payload)
                except DecodeError as exc:
                    raise self._damage(
                        f"damaged: the frame does not decode ({exc})", number, start
                    ) from None
                direction = directions.get(msg.direction)
                if direction is None:
                    raise self._damage(
                        f"damaged: the frame has direction {msg.direction}", number, start
                    )
            except TraceError as exc:
                self.error = exc
                if strict:
                    raise
                return
            self.frames_read = number
            yield Frame(msg.offset_us, msg.node, direction, msg.message, msg.reason)
