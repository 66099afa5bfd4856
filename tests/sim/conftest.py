"""Fixtures for the simulator tests: scenarios, and a tiny fake E2 termination on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from ric._proto.e2.v1 import e2_pb2, e2_pb2_grpc
from ric.sim import Scenario, load_scenario

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
WAIT_S = 5.0
"""Guard against hangs only: how long a test waits for a message before it fails."""


@pytest.fixture
def small() -> Scenario:
    """The small test scenario from seeds/small.toml."""
    return load_scenario(SEEDS / "small.toml")


class FakeSession:
    """One Connect stream as the fake RIC sees it: an inbox of node messages, an outbox."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[e2_pb2.NodeMessage] = asyncio.Queue()
        self.outbox: asyncio.Queue[e2_pb2.RicMessage | None] = asyncio.Queue()
        self.setup_request: e2_pb2.E2SetupRequest | None = None
        self.skipped: list[e2_pb2.NodeMessage] = []

    @property
    def node_id(self) -> int:
        """The node id the session's setup request announced."""
        assert self.setup_request is not None
        return self.setup_request.node_id.node_id

    def send(self, **fields: Any) -> None:
        """Send a RicMessage built from one oneof field, e.g. ``send(control_request=...)``."""
        self.outbox.put_nowait(e2_pb2.RicMessage(**fields))

    def close(self) -> None:
        """End the stream from the RIC side (status OK)."""
        self.outbox.put_nowait(None)

    async def recv(self, kind: str) -> e2_pb2.NodeMessage:
        """The next node message of ``kind``; other kinds are set aside in ``skipped``."""
        async with asyncio.timeout(WAIT_S):
            while True:
                msg = await self.inbox.get()
                if msg.WhichOneof("message") == kind:
                    return msg
                self.skipped.append(msg)

    async def setup(self, *, keep_alive_interval_ms: int = 0) -> e2_pb2.E2SetupRequest:
        """Read the node's E2SetupRequest and accept all its RAN functions."""
        msg = await self.recv("setup_request")
        req = msg.setup_request
        self.setup_request = req
        self.send(
            setup_response=e2_pb2.E2SetupResponse(
                transaction_id=req.transaction_id,
                ric_id="fake-ric",
                accepted_ran_function_ids=[f.ran_function_id for f in req.ran_functions],
                keep_alive_interval_ms=keep_alive_interval_ms,
            )
        )
        return req


class FakeRic(e2_pb2_grpc.E2TerminationServicer):
    """A fake E2 termination: every Connect stream becomes a FakeSession the test drives."""

    def __init__(self) -> None:
        self.target = ""
        self.sessions: asyncio.Queue[FakeSession] = asyncio.Queue()

    async def Connect(self, request_iterator: Any, context: Any) -> None:  # type: ignore[override]
        """Pump the node's messages into the session inbox and write its outbox back."""
        session = FakeSession()
        await self.sessions.put(session)

        async def pump() -> None:
            try:
                async for msg in request_iterator:
                    await session.inbox.put(msg)
            finally:
                session.outbox.put_nowait(None)

        async with asyncio.TaskGroup() as tg:
            reader = tg.create_task(pump())
            while (out := await session.outbox.get()) is not None:
                await context.write(out)
            reader.cancel()

    async def next_session(self) -> FakeSession:
        """The next stream a node opens."""
        async with asyncio.timeout(WAIT_S):
            return await self.sessions.get()

    async def setup_all(self, count: int) -> dict[int, FakeSession]:
        """Accept the next ``count`` streams' setups; the sessions by node id."""
        out: dict[int, FakeSession] = {}
        for _ in range(count):
            session = await self.next_session()
            await session.setup()
            out[session.node_id] = session
        return out


@contextlib.asynccontextmanager
async def _served() -> AsyncIterator[FakeRic]:
    server = grpc.aio.server()
    ric = FakeRic()
    e2_pb2_grpc.add_E2TerminationServicer_to_server(ric, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    ric.target = f"127.0.0.1:{port}"
    try:
        yield ric
    finally:
        await server.stop(grace=None)


@pytest.fixture
async def fake_ric() -> AsyncIterator[FakeRic]:
    """A FakeRic served by a real grpc.aio server on 127.0.0.1, on a free port."""
    async with _served() as ric:
        yield ric


@pytest.fixture
async def other_ric() -> AsyncIterator[FakeRic]:
    """A second FakeRic on its own port (another replica of the RIC, to fail over to)."""
    async with _served() as ric:
        yield ric


@pytest.fixture
def unused_port() -> int:
    """A loopback port nobody listens on (bound once by the OS, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
