"""The control loop's per-stage costs: stacks go to the stage of their innermost project frame,
the stages add up to the process's CPU, and a real py-spy run finds where a real process
spends its time."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from ric.bench.stages import LOOP, NATIVE, classify, py_spy, spy_stages, stage_costs

ROOT = "main (ric/bench/_child.py:40);run (asyncio/runners.py:190)"


@pytest.mark.parametrize(
    ("stack", "stage"),
    [
        (
            "E2Server._read_loop (ric/e2/termination.py:263);E2Endpoint.receive "
            "(ric/e2/endpoint.py:272);Router.send (ric/control.py:135);control_request "
            "(ric/e2/convert.py:340);SerializeToString (google/protobuf/message.py:1)",
            "control encode (RC)",
        ),
        (
            "E2Server._read_loop (ric/e2/termination.py:263);SubscriptionManager.on_indications "
            "(ric/subscriptions.py:712);report_from_indication (ric/e2/convert.py:255)",
            "indication decode",
        ),
        (
            "Router._finish (ric/control.py:270);AuditLog.control_finished (ric/audit.py:589);"
            "dumps (json/__init__.py:231)",
            "audit record and hash chain",
        ),
        (
            "AttachedHost._write_all (host.py:402);report_to_proto (codec.py:135)",
            "northbound stream",
        ),
        ("E2Server._write_loop (ric/e2/termination.py:231)", "E2 write (gRPC)"),
        ("BaseEventLoop._run_once (asyncio/base_events.py:1922)", LOOP),
    ],
)
def test_a_stack_goes_to_its_innermost_project_frame(stack: str, stage: str) -> None:
    """Library frames count for the project frame that called them; the process's own entry
    frames decide nothing; no project frame under the loop is the loop itself."""
    assert classify(f"{ROOT};{stack}".split(";")) == stage


def test_a_library_thread_outside_any_loop_is_native() -> None:
    """grpc.aio's poller thread shows as a bare Thread.run: it joins the native threads."""
    frames = ["Thread._bootstrap_inner (threading.py:1045)", "Thread.run (threading.py:982)"]
    assert classify(frames) == NATIVE


def test_stages_add_up_to_the_process_cpu_per_loop() -> None:
    """Each thread's CPU is shared out by its samples, the unsampled threads' CPU is the
    native stage, and the whole is the process's CPU over the loops."""
    text = "\n".join(
        [
            f"thread (10): MainThread;{ROOT};Router.send (ric/control.py:1) 30",
            f"thread (10): MainThread;{ROOT};AuditLog._append (ric/audit.py:1) 10",
            "thread (11): xapp;Thread.run (threading.py:982);XAppHost._work (ric/host.py:1) 5",
        ]
    )
    cpu0 = {10: 1.0, 11: 0.0, 12: 0.0}
    cpu1 = {10: 1.4, 11: 0.1, 12: 0.05}  # 12: a native thread py-spy cannot see
    costs = stage_costs(text, cpu0, cpu1, loops=1000)
    assert costs == {
        "control router and grants": 300.0,
        "xApp handler and host": 100.0,
        "audit record and hash chain": 100.0,
        NATIVE: 50.0,
    }
    assert sum(costs.values()) == pytest.approx((0.4 + 0.1 + 0.05) / 1000 * 1e6)


def test_py_spy_finds_the_stage_a_busy_process_is_in(tmp_path: Path) -> None:
    """A process hashing audit records in a loop spends most of its sampled CPU in the audit
    stage (py-spy is a dev dependency, so the test runs wherever the tests do)."""
    assert py_spy() is not None, "py-spy is in the dev dependencies (make test installs it)"
    code = (
        "import time\nfrom ric.audit import record_hash\nend = time.monotonic() + 20\n"
        "while time.monotonic() < end:\n    record_hash({'seq': 1, 'xapp': 'x' * 100})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(1.5)  # past its imports
        with spy_stages(proc.pid, tmp_path / "spy.txt", 2.0) as spied:
            time.sleep(2.2)
    finally:
        proc.kill()
        proc.wait()
    costs = stage_costs(spied["text"], spied["cpu0"], spied["cpu1"], loops=1)
    assert costs, "py-spy took no samples"
    assert max(costs, key=lambda k: costs[k]) == "audit record and hash chain"
