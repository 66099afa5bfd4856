"""Benchmark processes: start a role in its own Python process and talk to it in JSON lines.

The parent (the bench runner) writes one JSON command per line on the child's stdin and reads
one JSON answer per line from its stdout; the child's logs go to a temporary file that is
shown when it fails. A child stops by itself: when told to, when its stdin closes (the parent
is gone), or when its deadline passes, whichever comes first.

Roles are the coroutines ``role(args, commands)`` of :mod:`ric.bench.roles`; a child runs
``python -m ric.bench._child '<json>'``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import IO, Any

__all__ = [
    "Child",
    "ChildError",
    "Commands",
    "LoadMeter",
    "ProcSample",
    "proc_sample",
    "split_cpus",
]

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


class ChildError(RuntimeError):
    """A benchmark child process failed, did not answer in time, or answered an error."""


class ProcSample:
    """CPU seconds and resident memory of a process at one instant, read from /proc."""

    __slots__ = ("cpu_s", "rss_bytes", "wall_s")

    def __init__(self, wall_s: float, cpu_s: float, rss_bytes: int) -> None:
        self.wall_s = wall_s
        self.cpu_s = cpu_s
        self.rss_bytes = rss_bytes

    def cpu_share(self, since: ProcSample) -> float:
        """Cores used between ``since`` and this sample (1.0 = one full core)."""
        wall = self.wall_s - since.wall_s
        return (self.cpu_s - since.cpu_s) / wall if wall > 0 else 0.0


def proc_sample(pid: int) -> ProcSample:
    """User + system CPU time and resident set size of ``pid`` (Linux /proc)."""
    wall = time.monotonic()
    with open(f"/proc/{pid}/stat") as fh:
        stat = fh.read()
    fields = stat[stat.rindex(")") + 2 :].split()
    # Fields after the command: state is [0], utime [11], stime [12] (proc(5) numbers 14, 15).
    cpu = (int(fields[11]) + int(fields[12])) / _CLK_TCK
    with open(f"/proc/{pid}/statm") as fh:
        rss_pages = int(fh.read().split()[1])
    return ProcSample(wall, cpu, rss_pages * _PAGE)


def _system_busy_s() -> float:
    """CPU seconds all processes of the machine have used (/proc/stat, all but idle/iowait)."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / _CLK_TCK


class LoadMeter:
    """What else the machine did during a measurement: system-wide busy cores minus the cores
    of the benchmark's own processes. The bench shares the machine; this says how much."""

    def __init__(self, pids: list[int]) -> None:
        self._pids = [*pids, os.getpid()]
        self._t = time.monotonic()
        self._system = _system_busy_s()
        self._own = self._own_cpu()

    def _own_cpu(self) -> float:
        total = 0.0
        for pid in self._pids:
            with contextlib.suppress(OSError, ValueError, IndexError):  # a child that ended
                total += proc_sample(pid).cpu_s
        return total

    def background_cores(self) -> float:
        """Cores used by other processes since the meter was made."""
        wall = time.monotonic() - self._t
        if wall <= 0:
            return 0.0
        other = (_system_busy_s() - self._system) - (self._own_cpu() - self._own)
        return round(max(0.0, other / wall), 2)


def split_cpus() -> tuple[list[int], list[int]]:
    """(cores for the server under test, cores for the load generators): one core for the
    server, the others for the load, so neither steals the other's core. One core: no split."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return [], []
    return cores[:1], cores[1:]


class Child:
    """One role running in its own process; ``request`` sends a command and waits for the answer.

    Use as a context manager: leaving it stops the child (politely, then by signal).
    ``cpus`` pins the child to those cores; ``entry`` is what Python runs (experiments can
    wrap ``ric.bench._child``).
    """

    def __init__(
        self,
        role: str,
        args: dict[str, Any],
        *,
        deadline_s: float,
        cpus: Sequence[int] = (),
        entry: Sequence[str] = ("-m", "ric.bench._child"),
    ) -> None:
        self.role = role
        # Lives as long as the child; closed by close().
        self._log: IO[str] = tempfile.TemporaryFile("w+", prefix=f"ric-bench-{role}-")  # noqa: SIM115
        payload = json.dumps(
            {"role": role, "args": args, "deadline_s": deadline_s, "cpus": list(cpus)}
        )
        env = dict(os.environ)
        # Profiling and optimisation flags are the bench's business, not the environment's.
        env.pop("PYTHONASYNCIODEBUG", None)
        self._proc = subprocess.Popen(
            [sys.executable, *entry, payload],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
            env=env,
        )
        self.pid = self._proc.pid

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, timeout_s: float) -> dict[str, Any]:
        """The child's next JSON line; ChildError (with its log) if none comes in time."""
        out = self._proc.stdout
        assert out is not None
        ready, _, _ = select.select([out], [], [], timeout_s)
        line = out.readline() if ready else ""
        if not line:
            code = self._proc.poll()
            state = f"exited with {code}" if code is not None else f"silent for {timeout_s:g} s"
            raise ChildError(f"bench {self.role} process {state}\n{self.log_tail()}")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise ChildError(f"bench {self.role} process: {answer['error']}\n{self.log_tail()}")
        return answer

    def request(self, cmd: str, timeout_s: float = 30.0, **params: Any) -> dict[str, Any]:
        """Send ``cmd`` and return the child's answer."""
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps({"cmd": cmd, **params}) + "\n")
            stdin.flush()
        except BrokenPipeError:
            raise ChildError(f"bench {self.role} process is gone\n{self.log_tail()}") from None
        return self.read(timeout_s)

    def sample(self) -> ProcSample:
        """CPU time and resident memory of the child, from /proc."""
        return proc_sample(self.pid)

    def kill(self) -> None:
        """SIGKILL the child at once, as a crash would (no stop, no cleanup), and reap it."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()

    def log_tail(self, chars: int = 3000) -> str:
        """The end of what the child wrote to stderr."""
        self._log.seek(0)
        text = self._log.read()
        return text[-chars:]

    def close(self, timeout_s: float = 10.0) -> None:
        """Ask the child to stop; terminate, then kill it if it does not."""
        if self._proc.poll() is None:
            with contextlib.suppress(ChildError, OSError, ValueError):
                self.request("stop", timeout_s=timeout_s)
            with contextlib.suppress(OSError, ValueError):
                if self._proc.stdin is not None:
                    self._proc.stdin.close()
            try:
                self._proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._proc.terminate()
                try:
                    self._proc.wait(5.0)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout):
            with contextlib.suppress(OSError, ValueError):
                if stream is not None:
                    stream.close()
        self._log.close()


Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]


class Commands:
    """The child's side of the line protocol: ``answer`` writes a JSON line to the parent,
    ``serve(handler)`` runs until "stop", end of stdin, or the deadline."""

    def __init__(self, deadline_s: float) -> None:
        self.deadline = time.monotonic() + deadline_s

    @staticmethod
    def answer(payload: dict[str, Any]) -> None:
        """Write one JSON line to the parent."""
        sys.stdout.write(json.dumps(payload) + "\n")
        sys.stdout.flush()

    async def serve(self, handler: Handler) -> None:
        """Answer commands with ``handler`` until "stop", EOF or the deadline."""
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str] = asyncio.Queue()
        fd = sys.stdin.fileno()
        os.set_blocking(fd, False)
        buffer = b""

        def readable() -> None:
            nonlocal buffer
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return
            if not chunk:
                loop.remove_reader(fd)
                lines.put_nowait("")
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                lines.put_nowait(line.decode())

        loop.add_reader(fd, readable)
        try:
            while True:
                left = self.deadline - time.monotonic()
                if left <= 0:
                    return
                try:
                    line = await asyncio.wait_for(lines.get(), left)
                except TimeoutError:
                    return
                if not line:
                    return
                cmd: dict[str, Any] = json.loads(line)
                if cmd.get("cmd") == "stop":
                    reply = await handler(cmd)
                    self.answer(reply or {"ok": True})
                    return
                try:
                    reply = await handler(cmd)
                except Exception as exc:  # tell the parent, and go on serving
                    reply = {"error": f"{cmd.get('cmd')}: {type(exc).__name__}: {exc}"}
                self.answer(reply or {"ok": True})
        finally:
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(fd)
