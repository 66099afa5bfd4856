"""The northbound stream of a ``process`` xApp: the same ``ric.xapp.v1`` messages as the gRPC
``Attach`` stream, as length-prefixed frames on a private Unix socket pair.

The runtime makes a ``socketpair`` for each child it starts and hands it one end (an
inherited file descriptor: nothing listens, so nothing else can attach in its place). Each
frame is a 4-byte big-endian length and one serialized message (``XAppMessage`` from the
xApp, ``RicMessage`` from the runtime); the first frame is the xApp's Hello, the first answer
the Welcome, then the conversation is the Attach stream's, message for message.

Why not gRPC here too: in Python, grpc.aio spends 80-300 us of the runtime's loop per
message written (the HTTP/2 framing and the hand-off to gRPC's own threads), and a control
loop through a process xApp writes two or three northbound messages per loop; a buffered
socket write costs a few microseconds. Remote xApps, which need TLS, tokens, health and
reflection, keep gRPC.

``FramedChannel`` has the part of a grpc.aio stream call the hosts use: ``read()`` (a
message, or ``grpc.aio.EOF`` at the end), ``write()``, ``cancel()``, ``cancelled()``. A
frame over the size limit, or a frame that does not parse, ends the channel with a
``FrameError`` naming the problem.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import struct
from collections.abc import Callable
from typing import Generic, TypeVar, cast

import grpc
from google.protobuf.message import DecodeError, Message

__all__ = ["FrameError", "FramedChannel", "open_channel"]

M = TypeVar("M", bound=Message)

_HEADER = struct.Struct(">I")
_WRITE_HIGH_WATER = 1024 * 1024
"""Bytes buffered for the peer before a write waits for it to read (back-pressure)."""
MAX_PARSED = 1024
"""Messages parsed and not yet read before the socket is no longer read (back-pressure the
other way: a peer that sends faster than it is read waits in its own send buffer)."""


class FrameError(ConnectionError):
    """The peer sent something that is not a frame of the northbound stream."""


class _Protocol(asyncio.BufferedProtocol, Generic[M]):
    """Cuts the byte stream into frames and parses them as they complete."""

    def __init__(self, parse: Callable[[bytes], M], max_bytes: int) -> None:
        self._parse = parse
        self._max = max_bytes
        self._buffer = bytearray(64 * 1024)
        self._filled = 0
        self._need = 0
        """The size of the frame being received, when it is larger than the buffer."""
        self.messages: collections.deque[M] = collections.deque()
        self.held = False
        """Received bytes left unparsed because MAX_PARSED messages wait (reading paused)."""
        self.error: Exception | None = None
        self.closed = False
        self.transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self.paused = False

    # -- reading ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not a subclass of asyncio.Transport: no isinstance).
        self.transport = cast(asyncio.Transport, transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        # The buffer grows only here: while the transport holds a view of it (until
        # buffer_updated returns) a bytearray cannot be resized.
        need = max(self._need, self._filled + 4096)
        if len(self._buffer) < need:
            self._buffer.extend(bytes(max(need, self._filled + 64 * 1024) - len(self._buffer)))
        return memoryview(self._buffer)[self._filled :]

    def buffer_updated(self, nbytes: int) -> None:
        self._filled += nbytes
        self.parse()

    def parse(self) -> None:
        """Cut the bytes received into messages, up to MAX_PARSED waiting to be read: past
        that the socket is no longer read and the rest stays here (``held``) until the reader
        catches up."""
        self._need = 0
        self.held = False
        buffer = self._buffer
        filled = self._filled
        start = 0
        try:
            while filled - start >= 4:
                if len(self.messages) >= MAX_PARSED:
                    self.held = True
                    if self.transport is not None:
                        self.transport.pause_reading()
                    break
                (size,) = _HEADER.unpack_from(buffer, start)
                if size > self._max:
                    raise FrameError(
                        f"a frame of {size} bytes is over the limit of {self._max} bytes"
                    )
                end = start + 4 + size
                if end > filled:
                    self._need = size + 4
                    break
                try:
                    self.messages.append(self._parse(bytes(buffer[start + 4 : end])))
                except DecodeError as exc:
                    raise FrameError(f"a frame of {size} bytes does not parse: {exc}") from None
                start = end
        except FrameError as exc:
            self._fail(exc)
            return
        if start:
            # Keep the incomplete frame (if any) at the front; same-size slice assignment
            # does not resize the buffer.
            left = filled - start
            buffer[:left] = buffer[start:filled]
            self._filled = left
        if self.messages:
            self._wake()

    def eof_received(self) -> bool | None:
        self.closed = True
        self._wake()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if exc is not None and self.error is None:
            self.error = exc
        self._wake()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _fail(self, exc: Exception) -> None:
        self.error = exc
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait_readable(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    # -- writing back-pressure ---------------------------------------------------------------

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    async def drained(self) -> None:
        self._drained = asyncio.get_running_loop().create_future()
        try:
            await self._drained
        finally:
            self._drained = None


class FramedChannel(Generic[M]):
    """One end of a framed northbound stream (see the module docstring)."""

    def __init__(self, protocol: _Protocol[M], transport: asyncio.Transport, peer: str) -> None:
        self._protocol = protocol
        self._transport = transport
        self.peer = peer
        self._cancelled = False

    async def read(self) -> M | object:
        """The next message, or ``grpc.aio.EOF`` when the peer closed; FrameError (or the
        socket's error) when the stream broke."""
        protocol = self._protocol
        while not protocol.messages:
            if protocol.error is not None:
                raise protocol.error
            if protocol.closed:
                return grpc.aio.EOF
            await protocol.wait_readable()
        msg = protocol.messages.popleft()
        if protocol.held and len(protocol.messages) <= MAX_PARSED // 2:
            protocol.parse()  # what was held back while the reader was behind
            if not protocol.held and not protocol.closed:
                self._transport.resume_reading()
        return msg

    async def write(self, msg: Message) -> None:
        """Send ``msg``; waits only while the peer is more than 1 MiB behind."""
        protocol = self._protocol
        if protocol.closed:
            raise ConnectionResetError(f"the stream to {self.peer} is closed")
        data = msg.SerializeToString()
        self._transport.write(_HEADER.pack(len(data)) + data)
        if protocol.paused:
            await protocol.drained()
            if protocol.closed:
                raise ConnectionResetError(f"the stream to {self.peer} is closed")

    def write_nowait(self, msg: Message) -> None:
        """Send ``msg`` without waiting (a last word before closing: a refusal)."""
        if not self._protocol.closed:
            data = msg.SerializeToString()
            self._transport.write(_HEADER.pack(len(data)) + data)

    def cancel(self) -> bool:
        """Close the stream; a read waiting on it returns EOF."""
        self._cancelled = True
        self._protocol.closed = True
        self._transport.close()
        self._protocol._wake()
        return True

    def cancelled(self) -> bool:
        """Whether this side closed the stream."""
        return self._cancelled


async def open_channel(
    sock: socket.socket, parse: Callable[[bytes], M], *, max_bytes: int, peer: str
) -> FramedChannel[M]:
    """Wrap a connected Unix stream socket (one end of the runtime's socket pair)."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.connect_accepted_socket(
        lambda: _Protocol(parse, max_bytes), sock=sock
    )
    # No isinstance check here: uvloop's transports are not subclasses of asyncio.Transport.
    transport.set_write_buffer_limits(high=_WRITE_HIGH_WATER)
    return FramedChannel(protocol, transport, peer)
