"""A real ``redis-server`` child process on a free loopback port, for the SDL tests.

Started without persistence in a temporary directory and always stopped (and waited for).
A missing ``redis-server`` fails the test, it does not skip it: ``make test`` installs it.
"""

from __future__ import annotations

import abc
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest

START_TIMEOUT_S = 10.0


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def program_path(name: str) -> str:
    """The Debian program ``name`` (redis-server, redis-sentinel); fails the test when it is
    not installed (make test installs both)."""
    for candidate in (shutil.which(name), f"/usr/bin/{name}", f"/usr/sbin/{name}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(f"{name} is not installed: apt-get install {name} (make test does it)")


def redis_server_path() -> str:
    """The redis-server program; fails the test when it is not installed."""
    return program_path("redis-server")


def pong(port: int) -> bool:
    """Whether a server on loopback ``port`` answers PING now (or asks for a password)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


class ServerProcess(abc.ABC):
    """A child server process with a log file: killed (SIGKILL) and waited for at the end."""

    log_path: Path
    proc: subprocess.Popen[bytes] | None
    LOG_TAIL: int = 2000

    @abc.abstractmethod
    def start(self) -> Self:
        """Start the server and wait until it answers."""

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would, and wait for it."""
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait()

    def log_tail(self) -> str:
        """The end of the server's log, for failure messages."""
        try:
            return self.log_path.read_text()[-self.LOG_TAIL :]
        except OSError:
            return "(no log)"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.kill()


class RedisServer(ServerProcess):
    """One redis-server process at a time on a fixed loopback port: start, kill, start again."""

    def __init__(
        self, folder: Path, password: str | None = None, replica_of: int | None = None
    ) -> None:
        self.exe = redis_server_path()
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.password = password
        self.replica_of = replica_of
        """The loopback port of the master this server replicates, or None (a master)."""
        self.log_path = folder / f"redis-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0`` (never with the password)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the server and wait until it answers PING."""
        assert self.proc is None, "redis-server is already running"
        argv = [
            self.exe,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.folder),
            "--logfile", str(self.log_path),
        ]  # fmt: skip
        if self.password is not None:
            argv += ["--requirepass", self.password]
        if self.replica_of is not None:
            argv += ["--replicaof", "127.0.0.1", str(self.replica_of)]
        # A master syncs a new replica at once (the default waits 5 s for more replicas).
        argv += ["--repl-diskless-sync-delay", "0"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"redis-server exited: {self.log_tail()}")
            if pong(self.port):
                return self
            time.sleep(0.01)
        pytest.fail(f"redis-server did not answer within {START_TIMEOUT_S} s: {self.log_tail()}")
