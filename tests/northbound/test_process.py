"""Process isolation: the runtime starts each such xApp as a child process that attaches over
a private Unix socket, restarts it when it dies, and nothing else notices."""

from __future__ import annotations

import asyncio
import itertools
import os
from pathlib import Path
from typing import Any

import pytest

from ric.northbound.host import ProcessHost
from ric.runtime import Runtime
from ric.sim import Simulator, load_scenario
from tests.conftest import Recorder, RuntimeFactory, wait_for

SMALL = Path(__file__).resolve().parents[2] / "seeds" / "small.toml"


async def _sdl(runtime: Runtime, xapp: str, key: str, default: Any = None) -> Any:
    from ric.sdl import Namespace

    return await Namespace(runtime.sdl, f"xapp.{xapp}").get(key, default)


async def _eventually(runtime: Runtime, xapp: str, key: str, check: Any, what: str) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30.0
    while True:
        value = await _sdl(runtime, xapp, key)
        if check(value):
            return value
        assert loop.time() < deadline, f"timed out waiting for {what} (last: {value!r})"
        await asyncio.sleep(0.05)


async def test_process_xapp_runs_in_a_child_and_gets_its_control_acknowledged(
    make_runtime: RuntimeFactory,
) -> None:
    """A process-mode xApp runs in its own process (another pid), receives reports, sends a
    control that is acknowledged, and is given its settings and A1 policies by the runtime."""
    from tests.northbound.apps import Counter

    runtime, stats = await make_runtime(
        Counter,
        **{
            "xapps.isolation": {"nbcounter": "process"},
            "xapps.config": {"nbcounter": {"quota_max": 77}},
        },
    )
    host = runtime.host("nbcounter")
    assert isinstance(host, ProcessHost)
    await runtime.a1.put_policy("nb-test-sla", "p1", {"max_pct": 60})
    async with Simulator(load_scenario(SMALL), f"127.0.0.1:{runtime.port}") as sim:
        await sim.wait_ready()
        await _eventually(runtime, "nbcounter", "reports", lambda v: (v or 0) >= 3, "reports")
        outcomes = await _eventually(runtime, "nbcounter", "outcomes", bool, "an outcome")
        assert outcomes == ["acknowledged"]
        policies = await _eventually(runtime, "nbcounter", "policies", bool, "the A1 policy")
        assert policies == ["created:p1"]
        assert host.pid and host.pid != os.getpid()
        assert host.mode == "process"
        assert host.transport()["kind"] == "northbound socket pair"
        assert host.transport()["pid"] == host.pid
        quota = [o.action for x, o in stats.recent_controls if x == "nbcounter"]
        assert [getattr(a, "max_pct", None) for a in quota] == [77]


async def test_a_blocking_process_xapp_delays_no_one_else(
    make_runtime: RuntimeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """time.sleep(5) in a process xApp's on_report stalls only that process: a loop-mode xApp
    keeps getting every report on time, the runtime's loop never stalls 100 ms, and the
    overrun is counted and named once the call returns."""
    from tests.northbound.apps import Sleeper

    runtime, _ = await make_runtime(
        Recorder, Sleeper, **{"xapps.isolation": {"nbsleeper": "process", "default": "loop"}}
    )
    async with Simulator(load_scenario(SMALL), f"127.0.0.1:{runtime.port}") as sim:
        await sim.wait_ready()
        recorder = runtime.host("recorder").instance
        assert isinstance(recorder, Recorder)
        await _eventually(runtime, "nbsleeper", "reports", lambda v: (v or 0) >= 2, "the sleep")
        start = len(recorder.seen)
        since = asyncio.get_running_loop().time()
        await asyncio.sleep(3.0)  # well inside the 5 s sleep
        node = "gnb-001-01-1"
        arrivals = [r.collection_start for r in recorder.seen[start:] if r.node == node]
        gaps = [b - a for a, b in itertools.pairwise(arrivals)]
        assert len(arrivals) >= 20 and max(gaps) <= 0.2, f"recorder gaps: {max(gaps):.3f} s"
        dog = runtime.watchdog
        stall = 0.0 if dog is None else dog.longest_since(since)
        assert stall < 0.1, f"the runtime's loop stalled {stall:.3f} s during the sleep"
        assert len(runtime.sessions) == 3 and not any(s.closed for s in runtime.sessions.values())
        # When the sleep ends, the overrun is counted and named at the runtime.
        host = runtime.host("nbsleeper")
        await wait_for(lambda: host.overruns >= 1, timeout=10, what="the overrun")
        assert any(
            "nbsleeper" in r.getMessage() and "own process" in r.getMessage()
            for r in caplog.records
        )


async def test_a_crashing_process_xapp_is_restarted_and_its_control_ends_once(
    make_runtime: RuntimeFactory,
) -> None:
    """An xApp process killed by SIGSEGV is seen, named and restarted with a new pid; the
    control it had in flight ends with exactly one outcome record; other xApps carry on."""
    from tests.northbound.apps import Crasher

    runtime, stats = await make_runtime(
        Recorder,
        Crasher,
        **{
            "xapps.isolation": {"nbcrasher": "process", "default": "loop"},
            "xapps.restart_min_s": 0.1,
        },
    )
    host = runtime.host("nbcrasher")
    assert isinstance(host, ProcessHost)
    async with Simulator(load_scenario(SMALL), f"127.0.0.1:{runtime.port}") as sim:
        await sim.wait_ready()
        pids = await _eventually(
            runtime, "nbcrasher", "pids", lambda v: v and len(v) >= 2, "a restart"
        )
        assert len(set(pids)) == len(pids)
        await wait_for(lambda: host.exits, what="the exit to be recorded")
        assert "SIGSEGV" in host.exits[0]
        await wait_for(lambda: host.state.value == "running", what="running again")
        recorder = runtime.host("recorder").instance
        assert isinstance(recorder, Recorder)
        before = len(recorder.seen)
        await wait_for(lambda: len(recorder.seen) > before + 5, what="the others carry on")
        await asyncio.sleep(1.5)  # the in-flight control's timeout has passed
        mine = [o for x, o in stats.recent_controls if x == "nbcrasher"]
        assert len(mine) == 1, mine
        assert host.restarts >= 1
