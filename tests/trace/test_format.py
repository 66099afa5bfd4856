"""The trace file format: round trips, streaming, compression, and clear errors on damage."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import pytest

from ric._proto.e2.v1 import e2_pb2
from ric._proto.trace.v1 import trace_pb2
from ric.cli import main
from ric.trace import (
    FORMAT_VERSION,
    Direction,
    Frame,
    NodeSetup,
    TraceError,
    TraceHeader,
    TraceReader,
    TraceWriter,
)
from ric.trace.format import MAGIC
from tests.e2node import setup_request


def _header() -> TraceHeader:
    setup = setup_request(node_id=7).setup_request
    return TraceHeader(
        start_unix_us=1_700_000_000_000_000,
        source="tests",
        ric_id="ric-a",
        nodes=(NodeSetup("gnb-001-01-7", setup, -5_000),),
        metadata={"scenario": "none"},
    )


def _frames(n: int) -> list[Frame]:
    out = []
    for i in range(n):
        msg = e2_pb2.NodeMessage(keep_alive=e2_pb2.KeepAlive(sequence=i))
        out.append(Frame(i * 1000, "gnb-001-01-7", Direction.NODE_TO_RIC, msg.SerializeToString()))
    out.append(Frame(n * 1000, "gnb-001-01-7", Direction.DISCONNECTED, reason="bye"))
    return out


def _write(path: Path, frames: list[Frame], **kwargs: object) -> None:
    with TraceWriter(path, _header(), **kwargs) as writer:  # type: ignore[arg-type]
        for frame in frames:
            writer.write(frame)


@pytest.mark.parametrize("name", ["t.trace", "t.trace.gz"])
def test_round_trip_keeps_header_and_frames(tmp_path: Path, name: str) -> None:
    """What is written is read back identically, plain or gzip (chosen by the .gz suffix)."""
    path = tmp_path / name
    frames = _frames(50)
    _write(path, frames)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    with TraceReader(path) as reader:
        header = reader.header
        assert reader.compressed == name.endswith(".gz")
        assert list(reader) == frames
    assert header.format_version == FORMAT_VERSION
    assert header.source == "tests" and header.ric_id == "ric-a"
    assert header.metadata == {"scenario": "none"}
    assert header.created_unix_us > 0
    assert [(n.node, n.setup_offset_us) for n in header.nodes] == [("gnb-001-01-7", -5_000)]
    assert header.nodes[0].setup.node_id.node_id == 7
    assert frames[3].node_message().keep_alive.sequence == 3


def test_frames_stream_one_at_a_time(tmp_path: Path) -> None:
    """Reading is lazy: the first frame comes before the rest are read, and a reader reads
    once."""
    path = tmp_path / "t.trace"
    _write(path, _frames(20_000))
    with TraceReader(path) as reader:
        frames = iter(reader)
        assert next(frames).offset_us == 0
        assert reader.frames_read == 1
        with pytest.raises(TraceError, match="reads once"):
            reader.frames()


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_trace_yields_every_complete_frame_then_names_the_damage(
    tmp_path: Path, compress: bool
) -> None:
    """A trace cut short gives all complete frames, then a TraceError naming the file, the
    frame and the byte offset."""
    path = tmp_path / "t.trace"
    frames = _frames(300)
    _write(path, frames, compress=compress)
    data = path.read_bytes()
    cut = tmp_path / "cut.trace"
    cut.write_bytes(data[: len(data) * 2 // 3])
    got: list[Frame] = []
    with TraceReader(cut) as reader:
        frames_of = reader.frames()
        with pytest.raises(TraceError) as caught:
            got.extend(frames_of)
    err = caught.value
    assert got and got == frames[: len(got)]
    assert err.frame == len(got) + 1 and err.frames_ok == len(got)
    assert err.path == str(cut) and err.offset is not None and err.offset > 0
    text = str(err)
    assert str(cut) in text and f"frame {len(got) + 1}" in text and f"byte {err.offset}" in text


def test_corrupted_frame_fails_its_crc_and_the_frames_before_it_are_kept(tmp_path: Path) -> None:
    """A flipped byte inside a record is caught by its CRC; earlier frames stay readable,
    and a lenient read stops there keeping the error."""
    path = tmp_path / "t.trace"
    frames = _frames(10)
    _write(path, frames)
    data = bytearray(path.read_bytes())
    data[-12] ^= 0xFF  # inside the last record's payload
    path.write_bytes(bytes(data))
    with TraceReader(path) as reader:
        got = list(reader.frames(strict=False))
        assert got == frames[:-1]
        assert reader.error is not None and "CRC" in str(reader.error)
        assert reader.error.frame == len(frames)


def test_foreign_and_empty_files_are_refused_at_open(tmp_path: Path) -> None:
    """A file that is not a trace (text, an unrelated gzip, nothing) is refused by name."""
    text = tmp_path / "notes.txt"
    text.write_text("hello world\n")
    with pytest.raises(TraceError, match=r"notes\.txt: not a ric trace"):
        TraceReader(text)
    other = tmp_path / "other.gz"
    other.write_bytes(gzip.compress(b"PK\x03\x04 something else"))
    with pytest.raises(TraceError, match="not a ric trace"):
        TraceReader(other)
    empty = tmp_path / "empty.trace"
    empty.write_bytes(b"")
    with pytest.raises(TraceError, match="not a ric trace"):
        TraceReader(empty)
    with pytest.raises(TraceError, match="no such file"):
        TraceReader(tmp_path / "missing.trace")
    only_magic = tmp_path / "magic.trace"
    only_magic.write_bytes(MAGIC)
    with pytest.raises(TraceError, match="ends before the header"):
        TraceReader(only_magic)


def test_newer_format_version_is_refused(tmp_path: Path) -> None:
    """A trace written by a newer format version says so instead of misreading it."""
    path = tmp_path / "new.trace"
    header = trace_pb2.TraceHeader(format_version=FORMAT_VERSION + 1).SerializeToString()
    path.write_bytes(MAGIC + struct.pack("<II", len(header), zlib.crc32(header)) + header)
    with pytest.raises(TraceError, match=r"format version 2 is newer"):
        TraceReader(path)


def test_writer_refuses_frames_out_of_time_order(tmp_path: Path) -> None:
    """Frames go in time order; an earlier one is refused with both offsets named."""
    with TraceWriter(tmp_path / "t.trace", _header()) as writer:
        writer.add(2000, "n", Direction.NODE_TO_RIC, b"")
        with pytest.raises(ValueError, match="offset 1000 us after 2000 us"):
            writer.add(1000, "n", Direction.NODE_TO_RIC, b"")
    with pytest.raises(TraceError, match="closed"):
        writer.add(3000, "n", Direction.NODE_TO_RIC, b"")


def test_flushed_gzip_trace_is_readable_before_close(tmp_path: Path) -> None:
    """After flush, a compressed trace that is still being written reads up to that point."""
    path = tmp_path / "live.trace.gz"
    writer = TraceWriter(path, _header())
    for frame in _frames(5)[:-1]:
        writer.write(frame)
    writer.flush()
    with TraceReader(path) as reader:
        assert len(list(reader.frames(strict=False))) == 5
        assert reader.error is not None and "damaged" in str(reader.error)
    writer.close()


def test_trace_info_summarises_the_intact_part_of_a_damaged_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ric trace info on a truncated trace prints what is intact, then one error line, and
    exits with status 1."""
    path = tmp_path / "t.trace"
    _write(path, _frames(100))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 7])
    assert main(["trace", "info", str(path)]) == 1
    captured = capsys.readouterr()
    assert "frames    100: keep_alive 100" in captured.out and "DAMAGED" in captured.out
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "frame 101" in err[0] and "truncated" in err[0]
