"""Where the runtime's CPU goes in the control loop, stage by stage, in microseconds per loop.

``ric bench --profile DIR`` samples the runtime process with py-spy (a sampling profiler: it
reads the process from outside, so unlike cProfile it does not slow each Python call and
bias the figures towards call-heavy code) while the control loop runs at its paced rate. Each
sample is a stack of one Python thread holding the GIL (time spent waiting for it is not
work). It goes to the stage of the innermost frame of this project in it: frames of asyncio,
protobuf, json and other libraries count for the project frame that called them; a stack
with no project frame is the event loop itself or, outside any event loop, a library's
thread such as grpc.aio's poller. Each thread's samples are scaled to that thread's CPU time
from ``/proc/<pid>/task``, and the CPU of the threads py-spy never sees (gRPC's core threads)
joins the library threads' stage, so the stages add up to the process's CPU per loop.

The collapsed stacks are kept (``control-<mode>.runtime.txt``, speedscope and flamegraph.pl
read them) for a closer look at any stage.
"""

from __future__ import annotations

import collections
import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["NATIVE", "STAGES", "classify", "py_spy", "spy_stages", "stage_costs", "thread_cpu"]

NATIVE = "gRPC core threads (native, and grpc.aio's poller)"
LOOP = "event loop (asyncio, selectors)"
OTHER = "other"

STAGES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("audit record and hash chain", r"ric/audit\.py"),
        ("conflict arbiter", r"ric/conflicts"),
        (
            "control encode (RC)",
            r"^(control_request|cell_id_to_proto|_rc_\w+|_ccc_\w+) \(.*ric/e2/convert",
        ),
        ("indication decode", r"ric/e2/convert\.py|ric/report\.py"),
        ("subscription fan-out", r"ric/subscriptions\.py"),
        ("thread hand-off", r"ric/threadhost\.py"),
        # py-spy may name these files without their directory (host.py, codec.py, ...).
        (
            "northbound stream",
            r"ric/northbound/|^(AttachedHost|ProcessHost|RemoteHost|FramedChannel|_Protocol)\."
            r"|\((codec|framed)\.py:",
        ),
        ("xApp handler and host", r"ric/host\.py|ric/xapp\.py|ric/actions\.py|ric/bench/xapps\.py"),
        ("control router and grants", r"ric/control\.py|ric/grants\.py|ric/runtime\.py"),
        ("metrics and sensors", r"ric/metrics\.py|ric/sensors\.py|prometheus_client/"),
        ("E2 write (gRPC)", r"^(\w+\.)?(_write_loop|encode|send|next_outbound) \(.*ric/e2/"),
        ("E2 read (gRPC)", r"ric/e2/"),
        ("watchdog", r"ric/watchdog\.py"),
        # The raw baseline's whole handler (read, decode, echo) is here, and the lag probe.
        ("bench roles (raw echo handler, lag probe)", r"ric/bench/roles\.py"),
        (OTHER, r"ric/"),
    )
)
"""Stages and the frames that belong to them (``function (path:line)`` as py-spy writes
them); the first stage whose pattern matches a frame wins."""

_TRANSPARENT = re.compile(r"ric/bench/_child\.py|ric/__main__\.py|ric/cli/")
"""Frames at the root of every stack (how the process was started): they decide nothing."""


def classify(frames: list[str]) -> str:
    """The stage of one sampled stack (root first, as py-spy writes it)."""
    for frame in reversed(frames):
        if _TRANSPARENT.search(frame):
            continue
        for name, pattern in STAGES:
            if pattern.search(frame):
                return name
    # No frame of ours: the event loop itself, or a thread of a library (grpc.aio's poller).
    return LOOP if any("asyncio/" in f for f in frames) else NATIVE


def _parse(text: str) -> dict[int, collections.Counter[str]]:
    """Samples per thread id and stage, from py-spy's raw output with ``--threads``."""
    out: dict[int, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        match = re.match(r"thread \((\d+)\)", frames[0])
        if match is None:
            continue
        out[int(match.group(1))][classify(frames[1:])] += int(count)
    return out


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of ``pid``, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue  # the thread ended meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def stage_costs(
    text: str, cpu0: Mapping[int, float], cpu1: Mapping[int, float], loops: float
) -> dict[str, float]:
    """Microseconds of CPU per loop in each stage: each sampled thread's CPU over the window
    shared out by its samples, the rest of the process's CPU as the native threads'."""
    if loops <= 0:
        return {}
    used = {tid: cpu1[tid] - cpu0.get(tid, 0.0) for tid in cpu1}
    costs: dict[str, float] = collections.defaultdict(float)
    sampled = 0.0
    for tid, stages in _parse(text).items():
        cpu = used.get(tid, 0.0)
        total = sum(stages.values())
        if total == 0 or cpu <= 0:
            continue
        sampled += cpu
        for stage, n in stages.items():
            costs[stage] += cpu * n / total
    costs[NATIVE] = max(0.0, sum(used.values()) - sampled)
    ordered = sorted(costs.items(), key=lambda kv: -kv[1])
    return {stage: round(seconds / loops * 1e6, 1) for stage, seconds in ordered}


def py_spy() -> str | None:
    """The py-spy executable (the dev dependencies install it), or None."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return exe if os.path.exists(exe) else None


@contextmanager
def spy_stages(pid: int, out: Path, duration_s: float) -> Iterator[dict[str, Any]]:
    """Sample ``pid`` for ``duration_s`` into ``out``; the yielded dict then holds the
    threads' CPU at the start and the end (``cpu0``, ``cpu1``) and the samples (``text``)."""
    exe = py_spy()
    result: dict[str, Any] = {}
    if exe is None:
        yield result
        return
    spy = subprocess.Popen(
        [
            exe,
            "record",
            *("--pid", str(pid), "--rate", "500", "--format", "raw", "--threads", "--gil"),
            *("--nonblocking", "--duration", str(max(1, math.ceil(duration_s)))),
            *("--output", str(out)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    result["cpu0"] = thread_cpu(pid)
    try:
        yield result
    finally:
        result["cpu1"] = thread_cpu(pid)
        try:
            spy.wait(duration_s + 30.0)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()
        result["text"] = out.read_text() if out.exists() else ""
