"""The RIC under attack: a real ``ric run`` process, a well-behaved simulated node, and the
means to see from outside whether the attack hurt anyone but the attacker.

Each adversarial test starts the runtime as a child process (so the attacker in the test
process and the runtime do not share an event loop or a GIL), with the ``GapWatch`` xApp
recording every report's arrival and the HTTP server on a free port. A second child process,
``ric sim`` with one node of ``seeds/small.toml``, is the well-behaved node. After the attack
``assert_unharmed`` checks the three promises: the good node kept reporting with
no gap longer than two report periods, it stayed connected (same session), and the runtime's
own loop watchdog saw no stall of 100 ms or more.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.adversarial.watch import PERIOD_MS
from tests.e2node import ScriptedNode, kpm_function, rc_function

ROOT = Path(__file__).resolve().parents[2]
SMALL = ROOT / "seeds" / "small.toml"
TOKEN = "adversarial-test-token-0123456789"
MAX_GAP_S = 2 * PERIOD_MS / 1000
"""The longest gap allowed between two reports of the good node: two report periods."""
MAX_STALL_S = 0.1
"""The longest loop stall allowed during an attack."""
ALL_CORES = os.sched_getaffinity(0)
PEER_CORES = set(sorted(ALL_CORES)[1:]) if len(ALL_CORES) > 1 else set()
"""The attacker (this process) and the good node keep off one core, as the load generators
of ``make bench`` do, so what is measured is the runtime, not the operating system sharing
two cores between an attacker at full speed and its target; the runtime may use them all."""


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def write_config(path: Path, sections: dict[str, dict[str, Any]], top: dict[str, Any]) -> None:
    """Write a runtime config: top-level keys, then one table per (dotted) section name."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in top.items()]
    for name, keys in sections.items():
        lines.append(f"\n[{name}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in keys.items()]
    path.write_text("\n".join(lines) + "\n")


@dataclass(frozen=True)
class Window:
    """The start of an attack, as the checks after it need it."""

    t0: float
    late: float


@dataclass
class Ric:
    """A ``ric run`` child process and what the tests read from it."""

    workdir: Path
    e2_port: int
    http_port: int
    config: Path
    log: Path
    arrivals: Path
    e2_name: str = "127.0.0.1"
    """The name nodes connect to (``localhost`` with TLS: the server certificate's name)."""
    sim_args: tuple[str, ...] = ()
    """Extra ``ric sim`` arguments for the good node (its TLS files)."""
    proc: asyncio.subprocess.Process | None = None
    sim: asyncio.subprocess.Process | None = None
    good_node: str = ""
    good_since: str = ""
    _session: aiohttp.ClientSession | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The HTTP server's base URL."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def e2(self) -> str:
        """The E2 address, as a gRPC target."""
        return f"{self.e2_name}:{self.e2_port}"

    @property
    def session(self) -> aiohttp.ClientSession:
        """An HTTP client session that sends the write token."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=aiohttp.ClientTimeout(total=30),
            )
        return self._session

    async def start(self) -> None:
        """Start the runtime and wait until /readyz says it is ready."""
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "ric",
                "run",
                "--config",
                str(self.config),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env=env,
                cwd=self.workdir,
            )
        os.sched_setaffinity(self.proc.pid, ALL_CORES)  # the runtime may use every core
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.returncode is not None:
                raise AssertionError(f"ric run exited {self.proc.returncode}:\n{self.log_text()}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with self.session.get(f"{self.url}/readyz") as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.1)
        raise AssertionError(f"ric run did not become ready in 60 s:\n{self.log_text()}")

    async def start_good_node(self) -> None:
        """Start ``ric sim`` with one node of the small scenario and wait for its reports."""
        started = time.time()
        with (self.workdir / "sim.log").open("ab") as out:
            self.sim = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "ric",
                "sim",
                str(SMALL),
                "--nodes",
                "2",
                "--connect",
                self.e2,
                "--log-level",
                "warning",
                *self.sim_args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                cwd=self.workdir,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            nodes = {n for t, n, _ in self.read_arrivals() if t >= started}
            if nodes:
                self.good_node = sorted(nodes)[0]
                status, body = await self.get_json(f"/api/v1/nodes/{self.good_node}")
                assert status == 200, body
                self.good_since = body["connected_since"]
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the simulated node sent no report in 30 s")

    async def stop(self) -> None:
        """Stop the node and the runtime (SIGTERM, then SIGKILL after 15 s)."""
        for proc in (self.sim, self.proc):
            if proc is None or proc.returncode is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def log_text(self) -> str:
        """What the runtime has logged so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def read_arrivals(self) -> list[tuple[float, str, int]]:
        """Every (time, node, rows) line GapWatch has written."""
        if not self.arrivals.exists():
            return []
        out = []
        for line in self.arrivals.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3:
                out.append((float(parts[0]), parts[1], int(parts[2])))
        return out

    async def get_json(self, path: str) -> tuple[int, Any]:
        """GET ``path``; the status and the decoded body."""
        async with self.session.get(f"{self.url}{path}") as r:
            return r.status, await r.json(content_type=None)

    async def metrics(self) -> dict[str, float]:
        """The runtime's /metrics, as ``name{label="v",...}`` -> value."""
        async with self.session.get(f"{self.url}/metrics") as r:
            assert r.status == 200
            text = await r.text()
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
        return out

    async def metric(self, name: str, **labels: str) -> float:
        """One sample of /metrics (0 when absent)."""
        key = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        return (await self.metrics()).get(f"{name}{{{key}}}" if key else name, 0.0)

    async def late_beats(self) -> float:
        """How many beats of the runtime's loop watchdog so far came later than the stall
        budget (two readings of the lag histogram apart give the count in a window)."""
        m = await self.metrics()
        within = m.get(f'ric_event_loop_lag_seconds_bucket{{le="{MAX_STALL_S}"}}')
        assert within is not None, "the runtime exports no ric_event_loop_lag_seconds"
        return m["ric_event_loop_lag_seconds_count"] - within

    async def begin(self) -> Window:
        """Mark the start of an attack: the time and the watchdog's late beats so far."""
        return Window(time.time(), await self.late_beats())

    def good_gaps(self, t0: float, t1: float) -> list[float]:
        """Gaps between the good node's reports in [t0, t1], including both window edges."""
        times = sorted(t for t, n, _ in self.read_arrivals() if n == self.good_node)
        before = [t for t in times if t < t0]
        inside = [t for t in times if t0 <= t <= t1]
        edges = [before[-1] if before else t0, *inside, t1]
        return [b - a for a, b in itertools.pairwise(edges)]

    async def assert_unharmed(
        self, window: Window, *, settle_s: float = 2 * PERIOD_MS / 1000
    ) -> None:
        """Since ``window`` began, the good node kept reporting with no gap over two periods
        and kept its session, and the loop never stalled 100 ms or more."""
        await asyncio.sleep(settle_s)
        t1 = time.time() - PERIOD_MS / 1000  # the last period may still be on its way
        gaps = self.good_gaps(window.t0, t1)
        assert gaps, "no window to check"
        assert max(gaps) <= MAX_GAP_S, (
            f"the good node {self.good_node} had a gap of {max(gaps) * 1000:.0f} ms "
            f"(allowed {MAX_GAP_S * 1000:.0f} ms) during the attack"
        )
        status, body = await self.get_json(f"/api/v1/nodes/{self.good_node}")
        assert status == 200 and body.get("connected", True), body
        assert body["connected_since"] == self.good_since, "the good node was reconnected"
        late = await self.late_beats() - window.late
        longest = await self.metric("ric_event_loop_recent_longest_stall_seconds")
        assert late == 0, (
            f"the loop stalled {MAX_STALL_S * 1000:.0f} ms or more {late:g} times during the "
            f"attack (longest stall in the recent window: {longest * 1000:.0f} ms)"
        )

    def good_rate(self, t0: float, t1: float) -> float:
        """The good node's reports per second in [t0, t1]."""
        n = sum(
            1 for t, node, _ in self.read_arrivals() if node == self.good_node and t0 <= t <= t1
        )
        return n / (t1 - t0)


@pytest.fixture
async def ric(tmp_path: Path) -> AsyncIterator[Ric]:
    """The runtime under attack with the good node reporting; defaults for every bound."""
    async with running_ric(tmp_path) as r:
        yield r


def _prepare(workdir: Path) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    token = workdir / "token"
    token.write_text(TOKEN)
    return token


@contextlib.asynccontextmanager
async def running_ric(
    workdir: Path,
    sections: dict[str, dict[str, Any]] | None = None,
    *,
    good_node: bool = True,
    e2_name: str = "127.0.0.1",
    sim_args: Sequence[str] = (),
) -> AsyncIterator[Ric]:
    """Start ``ric run`` in ``workdir`` with ``sections`` merged over the harness's config."""
    token = _prepare(workdir)
    own = os.sched_getaffinity(0)
    if PEER_CORES:
        os.sched_setaffinity(0, PEER_CORES)  # and so the good node's process, started below
    r = Ric(
        workdir=workdir,
        e2_port=free_port(),
        http_port=free_port(),
        config=workdir / "ric.toml",
        log=workdir / "ric.log",
        arrivals=workdir / "arrivals.txt",
        e2_name=e2_name,
        sim_args=tuple(sim_args),
    )
    merged: dict[str, dict[str, Any]] = {
        "e2": {"host": "127.0.0.1", "port": r.e2_port, "keep_alive_s": 1.0},
        # Every scrape sees the runtime as it is now (the default shares one for a second).
        "http": {
            "host": "127.0.0.1",
            "port": r.http_port,
            "token_file": str(token),
            "metrics_cache_s": 0.0,
        },
        "xapps": {"load": ["tests.adversarial.watch:GapWatch"]},
        "xapps.config.gapwatch": {"path": str(r.arrivals)},
    }
    for name, keys in (sections or {}).items():
        merged.setdefault(name, {}).update(keys)
    write_config(r.config, merged, {"ric_id": "ric-adversarial"})
    try:
        await r.start()
        if good_node:
            await r.start_good_node()
        yield r
    finally:
        await r.stop()
        os.sched_setaffinity(0, own)


class Hostile(ScriptedNode):
    """A node written from the contract alone, that sends what a good node never would."""

    def __init__(self, target: str, node_id: int = 9) -> None:
        super().__init__(target)
        self.node_id = node_id
        self.subscription: Any = None

    async def __aenter__(self) -> Hostile:
        await super().__aenter__()
        return self

    async def join(self, cells: Sequence[int] = (91,)) -> Any:
        """Set up and admit GapWatch's subscription; returns the SubscriptionRequest."""
        await self.setup(
            node_id=self.node_id,
            cells=cells,
            functions=[kpm_function(styles=(1,)), rc_function()],
        )
        self.subscription = (await self.accept_subscriptions(1))[0]
        return self.subscription


def assert_error_indication(msg: Any, *words: str) -> None:
    """``msg`` (an ErrorIndication) has a cause detail naming every one of ``words``."""
    detail = msg.cause.detail
    for w in words:
        assert w in detail, f"ErrorIndication cause {detail!r} does not name {w!r}"
