"""The framed northbound stream of process xApps: messages cross whole however the bytes are
cut, a peer that sends too much or garbage is named and cut off, a slow reader holds the
writer back, and either side's close ends the other's reads."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator

import grpc
import pytest

from ric._proto.xapp.v1 import xapp_pb2 as pb
from ric.northbound.framed import MAX_PARSED, FramedChannel, FrameError, open_channel


@pytest.fixture
async def pair() -> AsyncIterator[tuple[FramedChannel[pb.XAppMessage], socket.socket]]:
    """A channel reading XAppMessages, and the raw socket at its other end."""
    ours, theirs = socket.socketpair()
    channel = await open_channel(ours, pb.XAppMessage.FromString, max_bytes=1 << 20, peer="t")
    theirs.setblocking(False)
    yield channel, theirs
    channel.cancel()
    theirs.close()


def _frame(msg: pb.XAppMessage) -> bytes:
    data = msg.SerializeToString()
    return struct.pack(">I", len(data)) + data


async def _send(sock: socket.socket, data: bytes) -> None:
    await asyncio.get_running_loop().sock_sendall(sock, data)


async def test_messages_cross_whole_however_the_bytes_are_cut(
    pair: tuple[FramedChannel[pb.XAppMessage], socket.socket],
) -> None:
    """Frames cut mid-header and mid-body, several in one write, and one larger than the
    reading buffer all arrive as the messages sent, in order."""
    channel, sock = pair
    small = [pb.XAppMessage(credit=pb.Credit(reports=i)) for i in range(5)]
    large = [*small, pb.XAppMessage(log=pb.LogRecord(message="x" * 300_000))]
    for msgs, cut in ((small, 1), (small, 3), (small, 7), (large, 4096), (large, 1 << 20)):
        data = b"".join(_frame(m) for m in msgs)
        for start in range(0, len(data), cut):
            await _send(sock, data[start : start + cut])
            await asyncio.sleep(0)
        got = [await channel.read() for _ in msgs]
        assert got == msgs


async def test_a_frame_over_the_limit_is_named_and_ends_the_stream(
    pair: tuple[FramedChannel[pb.XAppMessage], socket.socket],
) -> None:
    """A length above max_bytes is refused before its body is read, naming both sizes."""
    channel, sock = pair
    await _send(sock, struct.pack(">I", 2 << 20))
    with pytest.raises(FrameError, match=r"2097152 bytes is over the limit of 1048576"):
        await channel.read()


async def test_a_frame_that_does_not_parse_is_named(
    pair: tuple[FramedChannel[pb.XAppMessage], socket.socket],
) -> None:
    """Bytes that are not an XAppMessage end the stream with an error saying so."""
    channel, sock = pair
    await _send(sock, struct.pack(">I", 3) + b"\xff\xff\xff")
    with pytest.raises(FrameError, match="does not parse"):
        await channel.read()


async def test_the_peer_closing_ends_reads_after_what_it_sent(
    pair: tuple[FramedChannel[pb.XAppMessage], socket.socket],
) -> None:
    """What was sent before the close is read first; then reads return EOF, as on gRPC."""
    channel, sock = pair
    msg = pb.XAppMessage(credit=pb.Credit(reports=9))
    await _send(sock, _frame(msg))
    sock.close()
    assert await channel.read() == msg
    assert await channel.read() is grpc.aio.EOF


async def test_a_slow_reader_holds_the_writer_back() -> None:
    """Writes wait once the peer is about 1 MiB behind, and go on when it reads: the
    runtime's memory is bounded by the peer's pace, not by what it is given to send."""
    a, b = socket.socketpair()
    writer = await open_channel(a, pb.RicMessage.FromString, max_bytes=1 << 24, peer="w")
    reader = await open_channel(b, pb.RicMessage.FromString, max_bytes=1 << 24, peer="r")
    big = pb.RicMessage(notice=pb.Notice(level="info", message="y" * 256 * 1024))

    async def write_all() -> None:
        for _ in range(64):  # 16 MiB: far more than the socket and the write buffer hold
            await writer.write(big)

    task = asyncio.create_task(write_all())
    for _ in range(50):
        await asyncio.sleep(0)
    assert not task.done()
    pending = writer._transport.get_write_buffer_size()
    assert pending <= 2 * 1024 * 1024
    for _ in range(64):
        assert await reader.read() == big
    await task
    writer.cancel()
    assert await reader.read() is grpc.aio.EOF
    reader.cancel()


async def test_writing_after_cancel_is_an_error_naming_the_peer() -> None:
    """A write on a closed stream raises at once (the host ends the instance on it)."""
    a, b = socket.socketpair()
    channel = await open_channel(a, pb.RicMessage.FromString, max_bytes=1 << 20, peer="xapp 7")
    channel.cancel()
    assert channel.cancelled()
    with pytest.raises(ConnectionError, match="xapp 7"):
        await channel.write(pb.RicMessage(notice=pb.Notice(message="late")))
    b.close()


async def test_a_fast_sender_is_held_back_by_a_reader_that_does_not_read(
    pair: tuple[FramedChannel[pb.XAppMessage], socket.socket],
) -> None:
    """Past MAX_PARSED messages parsed and not read, the channel parses no more and stops
    reading the socket (the rest waits in its buffer and the sender's), and reading on takes
    every message, in order, then the sender's close."""
    channel, sock = pair
    count = 4 * MAX_PARSED
    data = b"".join(_frame(pb.XAppMessage(credit=pb.Credit(reports=i))) for i in range(count))

    async def send_and_close() -> None:
        await _send(sock, data)
        sock.shutdown(socket.SHUT_WR)

    sending = asyncio.create_task(send_and_close())
    for _ in range(100):
        await asyncio.sleep(0)
    assert not channel._transport.is_reading()
    assert len(channel._protocol.messages) == MAX_PARSED
    got = []
    for _ in range(count):
        msg = await channel.read()
        assert isinstance(msg, pb.XAppMessage)
        got.append(msg.credit.reports)
    await sending
    assert got == list(range(count))
    assert await channel.read() is grpc.aio.EOF
