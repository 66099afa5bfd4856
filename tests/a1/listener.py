"""A real HTTP listener on a free loopback port that records what a non-RT RIC would receive."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Listener:
    """Where notifications go: ``url``, the bodies received in order, and how many of the
    next requests to answer 500 (``fail``)."""

    url: str = ""
    received: list[Any] = field(default_factory=list)
    attempts: int = 0
    fail: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if self.fail > 0:
            self.fail -= 1
            return web.Response(status=500)
        self.received.append(await request.json())
        return web.Response(status=204)


@contextlib.asynccontextmanager
async def listening(path: str = "/notify") -> AsyncIterator[Listener]:
    """A Listener serving POST ``path`` on 127.0.0.1 and a free port."""
    listener = Listener()
    app = web.Application()
    app.router.add_post(path, listener.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    listener.url = f"http://127.0.0.1:{port}{path}"
    try:
        yield listener
    finally:
        await runner.cleanup()
