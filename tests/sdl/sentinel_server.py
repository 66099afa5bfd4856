"""A real ``redis-sentinel`` child process on a free loopback port, for the Sentinel tests.

Each one has its own temporary directory and config file (Sentinel rewrites it), watches one
master on loopback with a quorum of 1 and short timings so a failover takes a second or two,
and is always stopped. A missing ``redis-sentinel`` fails the test, it does not skip it:
``make test`` installs it (the Makefile's SYSTEM_DEPS).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tests.sdl.redis_server import START_TIMEOUT_S, ServerProcess, free_port, pong, program_path

MASTER = "ric"
"""The name the test Sentinels monitor the master under."""


def redis_sentinel_path() -> str:
    """The redis-sentinel program; fails the test when it is not installed."""
    return program_path("redis-sentinel")


class SentinelServer(ServerProcess):
    """One redis-sentinel watching the master on ``master_port`` (quorum 1)."""

    LOG_TAIL = 3000

    def __init__(
        self,
        folder: Path,
        master_port: int,
        *,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
        password: str | None = None,
        master_password: str | None = None,
    ) -> None:
        self.exe = redis_sentinel_path()
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.master_port = master_port
        self.conf = folder / f"sentinel-{self.port}.conf"
        self.log_path = folder / f"sentinel-{self.port}.log"
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.password = password
        """The Sentinel's own password (``requirepass``), or None."""
        self.master_password = master_password
        """The password of the master and its replicas (``sentinel auth-pass``), or None."""
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``, as ``sdl.sentinels`` takes it."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> SentinelServer:
        """Write the config, start the Sentinel and wait until it answers PING."""
        assert self.proc is None, "redis-sentinel is already running"
        self.conf.write_text(
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            f"dir {self.folder}\n"
            f"logfile {self.log_path}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {self.master_port} 1\n"
            f"sentinel down-after-milliseconds {MASTER} {self.down_after_ms}\n"
            f"sentinel failover-timeout {MASTER} {self.failover_timeout_ms}\n"
            f"sentinel parallel-syncs {MASTER} 1\n"
            + (f"requirepass {self.password}\n" if self.password else "")
            + (
                f"sentinel auth-pass {MASTER} {self.master_password}\n"
                if self.master_password
                else ""
            )
        )
        self.proc = subprocess.Popen(
            [self.exe, str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"redis-sentinel exited: {self.log_tail()}")
            if pong(self.port):
                return self
            time.sleep(0.01)
        pytest.fail(f"redis-sentinel did not answer within {START_TIMEOUT_S} s")

    async def master(self) -> int | None:
        """The port of the master this Sentinel names now (None when it cannot say)."""
        async with aioredis.Redis(
            port=self.port, password=self.password, socket_timeout=1
        ) as sentinel:
            try:
                found: Any = await sentinel.sentinel_get_master_addr_by_name(MASTER)
            except (RedisError, OSError):
                return None
        return None if found is None else int(found[1])

    async def knows_replica(self, port: int) -> bool:
        """Whether this Sentinel lists the replica on ``port`` as up."""
        async with aioredis.Redis(
            port=self.port, password=self.password, socket_timeout=1
        ) as sentinel:
            try:
                replicas: Any = await sentinel.sentinel_slaves(MASTER)
            except (RedisError, OSError):
                return False
        return any(
            int(r["port"]) == port and not r["is_sdown"] and r.get("master-link-status") == "ok"
            for r in replicas
        )
