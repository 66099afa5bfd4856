"""The benchmark sections, each measured side by side with its baseline in the same run.

Every section returns a JSON-ready dict with at least ``value`` (the runtime's figure),
``baseline`` (the same figure for the baseline, measured in the same run) and ``ratio``; the
runtime under test and the raw gRPC baselines run in their own processes, and so do the load
generators, so what is measured is the server, not the generator.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ric.bench import wire
from ric.bench.proc import Child, ChildError, LoadMeter, ProcSample, proc_sample, split_cpus
from ric.bench.stages import spy_stages, stage_costs
from ric.bench.wire import NodeShape
from ric.bench.xapps import PRESETS
from ric.config import DEFAULT_ISOLATION, ClusterSettings, IsolationMode
from ric.eventloop import LoopChoice, loop_factory

__all__ = ["DEFAULT_LOOP", "MODES", "SECTIONS", "BenchConfig", "run_section"]

SECTIONS = ("ingest", "control", "scale", "fanout", "replay", "cluster")
"""The sections, in the order they run."""

INGEST_REPORT: dict[str, Any] = PRESETS["ingest"][0]
INGEST_SHAPE = NodeShape(cells=3, ues_per_cell=100)
CONTROL_REPORT: dict[str, Any] = PRESETS["control"][0]
CONTROL_SHAPE = NodeShape(cells=2, ues_per_cell=1)
SCALE_REPORTS: list[dict[str, Any]] = list(PRESETS["scale"])
SCALE_SHAPE = NodeShape(cells=3, ues_per_cell=20)
MODES: tuple[IsolationMode, ...] = ("loop", "thread", "process")
"""The isolation modes the ingest and control sections measure, each beside raw gRPC."""
PROCESS_INGEST_TARGET = 5_000_000
"""Values per second into one ``process`` xApp that issue 17 asks for."""
MODE_P50_TARGET = 1.5
"""``thread`` and ``process`` control-loop p50 at most this times ``loop`` mode's (issue 17)."""
PROCESS_FANOUT_TARGET = 1.5
"""Aggregate values/s into the process fan-out's xApps above this times one process xApp."""
CLUSTER_SHORT: dict[str, float] = {
    "cluster.heartbeat_interval_s": 0.1,
    "cluster.member_ttl_s": 0.6,
    "cluster.lease_ttl_s": 2.0,
    "cluster.renew_interval_s": 0.2,
}
"""The cluster section's short ``[cluster]`` timings (those of the cluster tests): a killed
replica's nodes are free 0.6 s after its last heartbeat."""
CLUSTER_NODE_RETRY_S = (0.05, 0.5)
"""Back-off of the cluster section's nodes between association attempts: first, cap (s)."""


@dataclass(frozen=True)
class BenchConfig:
    """How long and how big each section runs. ``full()`` is ``make bench``; ``quick()`` a
    few-second smoke run; ``tiny()`` what the unit test runs."""

    name: str = "full"
    warmup_s: float = 1.5
    ingest_s: float = 5.0
    ingest_nodes: int = 2
    control_rate: float = 1000.0
    control_s: float = 8.0
    control_max_s: float = 4.0
    control_window: int = 8
    scale_nodes: int = 1000
    scale_procs: int = 1
    scale_settle_s: float = 4.0
    scale_s: float = 10.0
    fanout: tuple[int, ...] = (1, 10, 50)
    fanout_s: float = 4.0
    modes: tuple[IsolationMode, ...] = MODES
    """The isolation modes ingest and the control loop are measured in."""
    process_fanout: int = 8
    """``process`` xApps in the fan-out's process case, against one (0: not measured)."""
    replay_sim_s: float = 3600.0
    replay_cells: int = 21
    cluster_nodes: int = 4
    """Nodes in the cluster section, spread over the replicas (at least 2)."""
    cluster_takeovers: int = 3
    """Replica kills measured with the short timings, each on fresh replicas."""
    cluster_default_timings: bool = True
    """Also measure one kill with the runtime's default ``[cluster]`` timings (about 5 s)."""
    other_loop: bool = True
    """Also measure the runtime and its raw baseline on the event loop the runtime does not
    use by default (asyncio's, when uvloop is installed): what the choice buys."""
    profile_dir: Path | None = None
    """Write cProfile stats of the runtime process (ingest, control loop) here."""
    only: tuple[str, ...] = SECTIONS

    @classmethod
    def full(cls, **changes: Any) -> BenchConfig:
        """The ``make bench`` configuration (under five minutes on two cores)."""
        return cls(**changes)

    @classmethod
    def quick(cls, **changes: Any) -> BenchConfig:
        """Everything, shortly and small: a smoke run of about half a minute."""
        base: dict[str, Any] = {
            "name": "quick",
            "warmup_s": 0.5,
            "ingest_s": 1.0,
            "control_rate": 500.0,
            "control_s": 1.0,
            "control_max_s": 1.0,
            "scale_nodes": 50,
            "scale_procs": 1,
            "scale_settle_s": 1.0,
            "scale_s": 2.0,
            "fanout": (1, 5),
            "fanout_s": 1.0,
            "process_fanout": 4,
            "replay_sim_s": 120.0,
            "cluster_takeovers": 1,
            "cluster_default_timings": False,
        }
        return cls(**{**base, **changes})

    @classmethod
    def tiny(cls, **changes: Any) -> BenchConfig:
        """The smallest run that still exercises every section (the unit test's)."""
        base: dict[str, Any] = {
            "name": "tiny",
            "warmup_s": 0.2,
            "ingest_s": 0.4,
            "ingest_nodes": 1,
            "control_rate": 200.0,
            "control_s": 0.4,
            "control_max_s": 0.4,
            "scale_nodes": 4,
            "scale_procs": 1,
            "scale_settle_s": 0.3,
            "scale_s": 0.6,
            "fanout": (1, 2),
            "fanout_s": 0.3,
            "process_fanout": 2,
            "replay_sim_s": 10.0,
            "replay_cells": 6,
            "cluster_nodes": 2,
            "cluster_takeovers": 1,
            "cluster_default_timings": False,
            "other_loop": False,
        }
        return cls(**{**base, **changes})


DEFAULT_LOOP = "uvloop" if loop_factory("auto") is not None else "asyncio"
"""The event loop every server of the bench runs on unless told otherwise: the runtime's
default (``ric.eventloop``), and the raw baselines on the same, so that a ratio compares like
with like."""
OTHER_LOOP: LoopChoice = "asyncio" if DEFAULT_LOOP == "uvloop" else "uvloop"


# -- helpers ---------------------------------------------------------------------------------


def _ratio(value: float, baseline: float) -> float | None:
    return round(value / baseline, 3) if baseline else None


def _percentiles(samples_us: Sequence[float]) -> dict[str, float | int | None]:
    if not samples_us:
        return {"n": 0, "p50_us": None, "p99_us": None, "p999_us": None, "max_us": None}
    arr = np.asarray(samples_us, dtype=np.float64)
    p50, p99, p999 = np.percentile(arr, [50.0, 99.0, 99.9])
    return {
        "n": len(arr),
        "p50_us": round(float(p50), 1),
        "p99_us": round(float(p99), 1),
        "p999_us": round(float(p999), 1),
        "max_us": round(float(arr.max()), 1),
    }


@dataclass
class _Server:
    """A server child (runtime or raw baseline) and the node children that load it."""

    child: Child
    port: int
    nodes: list[Child] = field(default_factory=list)
    xapps: list[str] = field(default_factory=list)
    """The bench xApps' names (a runtime server; the MQTT bridge, say, is not one)."""

    def start_nodes(
        self,
        stack: ExitStack,
        node_ids: Sequence[Sequence[int]],
        shape: NodeShape,
        expected_subs: int,
        deadline_s: float,
        setup_timeout_s: float = 60.0,
    ) -> None:
        """Start one node process per id list and wait until every node is subscribed."""
        started = [
            stack.enter_context(
                Child(
                    "nodes",
                    {
                        "target": f"127.0.0.1:{self.port}",
                        "node_ids": list(ids),
                        "shape": {"cells": shape.cells, "ues_per_cell": shape.ues_per_cell},
                        "expected_subs": expected_subs,
                        "setup_timeout_s": setup_timeout_s,
                    },
                    deadline_s=deadline_s,
                    cpus=split_cpus()[1],
                )
            )
            for ids in node_ids
        ]
        for child in started:
            child.read(setup_timeout_s + 30.0)
        self.nodes.extend(started)

    def meter(self) -> LoadMeter:
        """A background-load meter over the server and its node processes."""
        return LoadMeter([self.child.pid, *(n.pid for n in self.nodes)])

    def all_nodes(self, cmd: str, **params: Any) -> list[dict[str, Any]]:
        """Send ``cmd`` to every node process."""
        return [n.request(cmd, **params) for n in self.nodes]


@contextmanager
def _server(
    role: str, args: dict[str, Any], deadline_s: float, cpus: Sequence[int] | None = None
) -> Iterator[_Server]:
    """The server ``role`` on ``cpus`` (default: the server core; its children inherit it)."""
    with ExitStack() as stack:
        pinned = split_cpus()[0] if cpus is None else cpus
        child = stack.enter_context(Child(role, args, deadline_s=deadline_s, cpus=pinned))
        port = int(child.read(60.0)["port"])
        server = _Server(child, port, xapps=[x["name"] for x in args.get("xapps", [])])
        try:
            yield server
        finally:
            for node in server.nodes:
                node.close()


def _runtime_args(
    xapps: list[dict[str, Any]],
    *,
    loop: LoopChoice = "auto",
    profile: Path | None = None,
    isolation: IsolationMode | None = None,
) -> dict[str, Any]:
    return {
        "xapps": xapps,
        "loop": loop,
        "profile": str(profile) if profile is not None else None,
        "isolation": isolation,
    }


@contextmanager
def _spy(pids: Sequence[int], pstats: Path | None, duration_s: float) -> Iterator[None]:
    """py-spy samples of the xApp processes (process mode) over a profiled window, written
    beside the runtime's cProfile file as ``<name>.xapp-<i>.txt`` (collapsed stacks):
    cProfile in the runtime cannot see into them. Nothing when py-spy is not installed."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if pstats is None or not pids or not os.path.exists(exe):
        yield
        return
    spies = [
        subprocess.Popen(
            [
                exe,
                "record",
                *("--pid", str(pid), "--rate", "250", "--format", "raw", "--nonblocking"),
                *("--duration", str(max(1, math.ceil(duration_s)))),
                *("--output", str(pstats.with_name(f"{pstats.stem}.xapp-{i}.txt"))),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i, pid in enumerate(pids)
    ]
    try:
        yield
    finally:
        for spy in spies:
            try:
                spy.wait(duration_s + 30.0)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()


def _xapp_samples(pids: Sequence[int]) -> list[ProcSample]:
    """/proc samples of the xApps' own processes (process mode); none in the other modes."""
    return [proc_sample(pid) for pid in pids]


def _xapp_figures(x0: Sequence[ProcSample], x1: Sequence[ProcSample]) -> dict[str, Any]:
    """CPU and memory of the xApps' own processes between two sample sets."""
    return {
        "xapp_processes": len(x1),
        "xapp_cpu_cores": round(sum(b.cpu_share(a) for a, b in zip(x0, x1, strict=True)), 3),
        "xapp_rss_mb": round(sum(b.rss_bytes for b in x1) / 2**20, 1),
    }


def _await_xapps(server: _Server, timeout_s: float = 60.0) -> dict[str, Any]:
    """The runtime's stats once every xApp runs and has counted (made its count file): a
    process xApp attaches and builds its instance a moment after the nodes subscribed."""
    deadline = time.monotonic() + timeout_s
    while True:
        stats = server.child.request("stats")
        states = stats.get("states")
        if states is None:  # a raw baseline: nothing to wait for
            return stats
        running = all(state == "running" for state in states.values())
        if running and set(server.xapps) <= set(stats["counts"]):
            return stats
        if time.monotonic() > deadline:
            raise ChildError(
                f"bench xApps not all running after {timeout_s:g} s: {states}\n"
                f"{server.child.log_tail()}"
            )
        time.sleep(0.05)


def _values(stats: dict[str, Any], names: Sequence[str] | None = None) -> tuple[int, int]:
    """(reports, values) handled: by the named xApps of a runtime, or by a raw server."""
    if "counts" in stats:
        counts = stats["counts"]
        keys = names if names is not None else list(counts)
        rows = [counts.get(k, (0, 0)) for k in keys]  # an xApp that has not counted yet: 0
        return (sum(r[0] for r in rows), sum(r[1] for r in rows))
    return int(stats["reports"]), int(stats["values"])


# -- ingest ----------------------------------------------------------------------------------


def _blast(
    role: str,
    args: dict[str, Any],
    cfg: BenchConfig,
    *,
    duration_s: float,
    profile: Path | None = None,
    names: Sequence[str] | None = None,
    cpus: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Load ``role`` with nodes that send prepared batches as fast as it takes them."""
    deadline = 60.0 + cfg.warmup_s + duration_s
    with ExitStack() as stack:
        server = stack.enter_context(_server(role, args, deadline, cpus))
        ids = [[1000 + i] for i in range(cfg.ingest_nodes)]
        server.start_nodes(stack, ids, INGEST_SHAPE, 1, deadline)
        pids = list(_await_xapps(server).get("xapp_pids", []))
        idle = [server.child.sample(), *_xapp_samples(pids)]
        server.all_nodes("start", mode="blast")
        time.sleep(cfg.warmup_s)
        if profile:
            server.child.request("profile_start")
        s0, p0, x0 = server.child.request("stats"), server.child.sample(), _xapp_samples(pids)
        g0 = sum(r["sent"] for r in server.all_nodes("stats"))
        meter = LoadMeter([server.child.pid, *(n.pid for n in server.nodes), *pids])
        with _spy(pids, profile, duration_s):
            time.sleep(duration_s)
        s1, p1, x1 = server.child.request("stats"), server.child.sample(), _xapp_samples(pids)
        g1 = sum(r["sent"] for r in server.all_nodes("stats"))
        background = meter.background_cores()
        if profile:
            server.child.request("profile_stop", timeout_s=60.0)
        server.all_nodes("halt")
    elapsed = s1["t"] - s0["t"]
    r0, v0 = _values(s0, names)
    r1, v1 = _values(s1, names)
    out: dict[str, Any] = {
        "values_per_s": round((v1 - v0) / elapsed),
        "reports_per_s": round((r1 - r0) / elapsed),
        "messages_offered_per_s": round((g1 - g0) / elapsed),
        "server_cpu_cores": round(p1.cpu_share(p0), 3),
        "server_rss_mb": round(p1.rss_bytes / 2**20, 1),
        "background_cores": background,
    }
    if "modes" in s1:
        xapps = _xapp_figures(x0, x1)
        out.update(xapps)
        out["modes"] = sorted({s1["modes"][name] for name in server.xapps})
        out["restarts"] = s1["restarts"] - s0["restarts"]
        out["total_cpu_cores"] = round(out["server_cpu_cores"] + xapps["xapp_cpu_cores"], 3)
        out["total_rss_mb"] = round(out["server_rss_mb"] + xapps["xapp_rss_mb"], 1)
        # Before any load: what hosting the xApp costs at rest (queues empty).
        out["idle_rss_mb"] = round(sum(x.rss_bytes for x in idle) / 2**20, 1)
    if "dropped" in s1:
        out["reports_dropped_per_s"] = round((s1["dropped"] - s0["dropped"]) / elapsed)
    return out


def _sink(name: str = "sink") -> list[dict[str, Any]]:
    return [{"kind": "sink", "name": name, "preset": "ingest"}]


def ingest(cfg: BenchConfig, shared: dict[str, Any]) -> dict[str, Any]:
    """Values per second into one xApp's handler, in each isolation mode, vs a raw grpc.aio
    server that only decodes (measured once, shown beside every mode)."""
    raw = _blast("raw_decode", {"reports": [INGEST_REPORT]}, cfg, duration_s=cfg.ingest_s)
    shared["raw_ingest"] = raw
    sink = _sink()
    modes: dict[str, Any] = {}
    for mode in cfg.modes:
        profile = cfg.profile_dir / f"ingest-{mode}.pstats" if cfg.profile_dir else None
        r = _blast(
            "runtime",
            _runtime_args(sink, profile=profile, isolation=mode),
            cfg,
            duration_s=cfg.ingest_s,
            profile=profile,
        )
        modes[mode] = {**r, "ratio": _ratio(r["values_per_s"], raw["values_per_s"])}
    # The runtime's default mode is the section's headline figure (as `ric run` hosts xApps).
    headline = DEFAULT_ISOLATION if DEFAULT_ISOLATION in modes else next(iter(modes), None)
    if headline is not None:
        ric = {k: v for k, v in modes[headline].items() if k != "ratio"}
    else:
        ric = _blast("runtime", _runtime_args(sink), cfg, duration_s=cfg.ingest_s)
    out: dict[str, Any] = {
        "what": "measurement values per second delivered into one xApp's on_report, through "
        "nodes -> gRPC -> termination -> subscriptions -> queue -> handler (in process mode "
        "also -> northbound stream over a Unix socket -> the xApp's process); baseline: a raw "
        "grpc.aio server that only parses each NodeMessage and turns its values into NumPy",
        "shape": {
            **INGEST_SHAPE.describe(),
            "report": "per UE, 10 metrics",
            "values_per_message": INGEST_SHAPE.ues * len(wire.UE_METRICS),
            "node_processes": cfg.ingest_nodes,
        },
        "duration_s": cfg.ingest_s,
        "value_mode": headline or DEFAULT_ISOLATION,
        "value": ric,
        "baseline": raw,
        "ratio": _ratio(ric["values_per_s"], raw["values_per_s"]),
        "modes": modes,
        "cores": "the runtime and its xApp processes share the server core; the load "
        "generators have the other",
    }
    if "process" in modes:
        got = modes["process"]["values_per_s"]
        out["process_target"] = {
            "values_per_s_min": PROCESS_INGEST_TARGET,
            "met": got >= PROCESS_INGEST_TARGET,
        }
    if cfg.other_loop and OTHER_LOOP == "asyncio":
        # What the loop choice buys: the runtime and the raw decoder both on asyncio's loop.
        other = _blast(
            "runtime", _runtime_args(sink, loop=OTHER_LOOP), cfg, duration_s=cfg.ingest_s
        )
        other_raw = _blast(
            "raw_decode",
            {"reports": [INGEST_REPORT], "loop": OTHER_LOOP},
            cfg,
            duration_s=cfg.ingest_s,
        )
        out["other_loop"] = {
            "loop": OTHER_LOOP,
            "value": other,
            "baseline": other_raw,
            "ratio": _ratio(other["values_per_s"], other_raw["values_per_s"]),
            "vs_default_loop": _ratio(other["values_per_s"], ric["values_per_s"]),
        }
    # The MQTT bridge on, its broker absent (a loopback port nobody listens on): it keeps
    # retrying; E2 ingest must not slow by more than 10% (the MQTT issue's bar).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    mqtt_args = {
        **_runtime_args(sink),
        "config": {
            "mqtt.enabled": True,
            "mqtt.port": closed_port,
            "mqtt.kpm_metrics": ["RRU.PrbUsedDl"],
        },
    }
    mq = _blast("runtime", mqtt_args, cfg, duration_s=cfg.ingest_s)
    out["mqtt_broker_absent"] = {
        **mq,
        "ratio": _ratio(mq["values_per_s"], raw["values_per_s"]),
        "vs_bridge_off": _ratio(mq["values_per_s"], ric["values_per_s"]),
    }
    target = 1_000_000
    out["target"] = {
        "values_per_s_min": target,
        "ratio_min": 0.5,
        "met": ric["values_per_s"] >= target and (out["ratio"] or 0) >= 0.5,
    }
    return out


# -- control loop ----------------------------------------------------------------------------


def _loop_phases(
    role: str,
    args: dict[str, Any],
    cfg: BenchConfig,
    phases: Sequence[float | str],
    *,
    profile: Path | None = None,
    xapp_cpus: Sequence[int] | None = None,
) -> list[dict[str, Any]]:
    """Run phases against one server: a paced rate (indications per second), "max" (closed
    loop, ``cfg.control_window`` in flight) or "80%" (paced at 80% of the last "max").
    ``xapp_cpus``: the cores the xApps' own processes (process mode) may run on; default:
    the server's core, which they inherit."""
    deadline = 120.0 + len(phases) * (cfg.control_s + cfg.control_max_s + 5.0)
    results: list[dict[str, Any]] = []
    top = 0.0
    with ExitStack() as stack:
        server = stack.enter_context(_server(role, args, deadline))
        server.start_nodes(stack, [[1]], CONTROL_SHAPE, 1, deadline)
        node = server.nodes[0]
        pids = list(_await_xapps(server).get("xapp_pids", []))
        for pid in pids:
            if xapp_cpus:
                os.sched_setaffinity(pid, xapp_cpus)
        # Warm the path (imports, first allocations) before anything is timed.
        node.request("run", mode="paced", rate=200.0, duration_s=min(0.5, cfg.warmup_s))
        for phase in phases:
            meter = LoadMeter([server.child.pid, *(n.pid for n in server.nodes), *pids])
            p0, x0 = server.child.sample(), _xapp_samples(pids)
            server.child.request("stats")  # the stall figures count from here
            if phase == "max":
                r = node.request(
                    "run",
                    mode="window",
                    window=cfg.control_window,
                    duration_s=cfg.control_max_s,
                    timeout_s=cfg.control_max_s + 30.0,
                )
                top = r["completed"] / r["elapsed_s"]
                results.append(
                    {
                        "mode": f"closed loop, {cfg.control_window} in flight",
                        "max_per_s": round(top, 1),
                        **_percentiles(r["latencies_us"]),
                        **_loop_cpu(server.child.sample(), p0, x0, _xapp_samples(pids), top),
                        "background_cores": meter.background_cores(),
                        **_stalls(server.child.request("stats")),
                    }
                )
                continue
            rate = max(1.0, 0.8 * top) if phase == "80%" else float(phase)
            # Profiled: py-spy samples the runtime from outside (cProfile inside it would
            # slow every Python call and skew the stages towards call-heavy code).
            runtime_spy: AbstractContextManager[dict[str, Any]] = (
                spy_stages(server.child.pid, profile.with_suffix(".runtime.txt"), cfg.control_s)
                if profile
                else nullcontext({})
            )
            with _spy(pids if profile else (), profile, cfg.control_s), runtime_spy as spied:
                r = node.request(
                    "run",
                    mode="paced",
                    rate=rate,
                    duration_s=cfg.control_s,
                    timeout_s=cfg.control_s + 30.0,
                )
            profile = None
            achieved = r["sent"] / r["elapsed_s"]
            # Per loop closed (a control came back), not per indication sent: a mode that
            # loses controls must not look cheap for it.
            closed = r["completed"] / r["elapsed_s"]
            results.append(
                {
                    "rate_per_s": round(rate, 1),
                    "achieved_per_s": round(achieved, 1),
                    "completed_per_s": round(closed, 1),
                    "lost": r["lost"],
                    **_percentiles(r["latencies_us"]),
                    **_loop_cpu(server.child.sample(), p0, x0, _xapp_samples(pids), closed),
                    "background_cores": meter.background_cores(),
                    **_stalls(server.child.request("stats")),
                }
            )
            if spied.get("text"):
                results[-1]["stages_us_per_loop"] = stage_costs(
                    spied["text"], spied["cpu0"], spied["cpu1"], r["completed"]
                )
    return results


def _loop_cpu(
    p1: ProcSample,
    p0: ProcSample,
    x0: Sequence[ProcSample],
    x1: Sequence[ProcSample],
    loops_per_s: float,
) -> dict[str, Any]:
    """The server's cores over a phase and its CPU microseconds per loop (indication in,
    control out); in process mode also the xApp process's, and both together."""
    cores = p1.cpu_share(p0)
    per_loop = 1e6 / loops_per_s if loops_per_s > 0 else 0.0
    out: dict[str, Any] = {
        "server_cpu_cores": round(cores, 3),
        "cpu_us_per_loop": round(cores * per_loop, 1) if per_loop else None,
        "server_rss_mb": round(p1.rss_bytes / 2**20, 1),
    }
    if x1:
        xapps = _xapp_figures(x0, x1)
        out.update(xapps)
        out["xapp_cpu_us_per_loop"] = (
            round(xapps["xapp_cpu_cores"] * per_loop, 1) if per_loop else None
        )
        out["total_cpu_us_per_loop"] = (
            round((cores + xapps["xapp_cpu_cores"]) * per_loop, 1) if per_loop else None
        )
    return out


def _stalls(stats: dict[str, Any]) -> dict[str, Any]:
    """The server's longest event-loop stall and garbage-collector pause in the window."""
    return {k: stats[k] for k in ("loop_lag_max_ms", "gc_pause_max_ms") if k in stats}


def _compare(ric: dict[str, Any], raw: dict[str, Any]) -> dict[str, float | None]:
    return {
        pct: _ratio(ric[f"{pct}_us"] or 0.0, raw[f"{pct}_us"] or 0.0)
        for pct in ("p50", "p99", "p999")
    }


def _reflex(kind: str = "reflex") -> list[dict[str, Any]]:
    return [{"kind": kind, "name": "reflex", "preset": "control"}]


def control(cfg: BenchConfig, shared: dict[str, Any]) -> dict[str, Any]:
    """Indication -> xApp handler -> control -> node in each isolation mode, vs a raw
    grpc.aio echo round trip (measured once, shown beside every mode)."""
    rate = cfg.control_rate
    headline = (
        cfg.modes[0] if cfg.modes and DEFAULT_ISOLATION not in cfg.modes else DEFAULT_ISOLATION
    )
    measured: dict[str, list[dict[str, Any]]] = {}
    # The headline mode (the runtime's default) first, with the 80%-of-max phase; the others
    # at the paced rate and closed-loop maximum.
    for mode in sorted(set(cfg.modes) | {headline}, key=lambda m: m != headline):
        profile = cfg.profile_dir / f"control-{mode}.pstats" if cfg.profile_dir else None
        measured[mode] = _loop_phases(
            "runtime",
            _runtime_args(_reflex(), profile=profile, isolation=mode),
            cfg,
            [rate, "max", "80%"] if mode == headline else [rate, "max"],
            profile=profile,
            # A process xApp's process is its own, as an xApp container would be: it runs on
            # the load generator's core (which has room), not on the runtime's.
            xapp_cpus=split_cpus()[1] if mode == "process" else None,
        )
    at_rate, top, at_high = measured[headline]
    echo_rate, echo_high, echo_top = _loop_phases(
        "raw_echo",
        {"reports": [CONTROL_REPORT]},
        cfg,
        [rate, at_high["rate_per_s"], "max"],
        profile=cfg.profile_dir / "control-raw.pstats" if cfg.profile_dir else None,
    )
    out: dict[str, Any] = {
        "what": "latency from a node writing an indication to the node receiving the "
        "ControlRequest the xApp sent for it; the xApp sends the control from its handler and "
        "collects the outcome in a task; baseline: a raw grpc.aio server that answers each "
        "indication with a ControlRequest",
        "shape": {"report": "per UE, 1 UE x 4 metrics", "nodes": 1},
        "duration_s": cfg.control_s,
        "value_mode": headline,
        "value": {"at_rate": at_rate, "at_80pct_max": at_high, "max": top},
        "baseline": {"at_rate": echo_rate, "at_80pct_max": echo_high, "max": echo_top},
        "ratio": {
            "at_rate": _compare(at_rate, echo_rate),
            "at_80pct_max": _compare(at_high, echo_high),
            "max": _ratio(top["max_per_s"], echo_top["max_per_s"]),
            "cpu_per_loop": _ratio(
                at_rate["cpu_us_per_loop"] or 0.0, echo_rate["cpu_us_per_loop"] or 0.0
            ),
        },
        "cores": "the runtime (and a thread-mode xApp) has the server core, the node the other; "
        "a process-mode xApp's process runs on the node's core",
    }
    modes: dict[str, Any] = {}
    for mode in cfg.modes:
        m_rate, m_top = measured[mode][:2]
        loop_rate = measured["loop"][0] if "loop" in measured else None
        modes[mode] = {
            "at_rate": m_rate,
            "max": m_top,
            "ratio": {
                "at_rate": _compare(m_rate, echo_rate),
                "max": _ratio(m_top["max_per_s"], echo_top["max_per_s"]),
                "cpu_per_loop": _ratio(
                    m_rate.get("total_cpu_us_per_loop") or m_rate["cpu_us_per_loop"] or 0.0,
                    echo_rate["cpu_us_per_loop"] or 0.0,
                ),
            },
            "vs_loop": _compare(m_rate, loop_rate) if loop_rate is not None else None,
        }
    out["modes"] = modes
    verdicts = {
        mode: (m["vs_loop"] or {}).get("p50")
        for mode, m in modes.items()
        if mode != "loop" and m["vs_loop"] is not None
    }
    out["mode_target"] = {
        "p50_vs_loop_max": MODE_P50_TARGET,
        "met": {mode: p50 is not None and p50 <= MODE_P50_TARGET for mode, p50 in verdicts.items()},
    }
    # The plain way to write an xApp awaits each outcome before its next report: one control
    # round trip (RIC -> node -> acknowledgement) per report caps the rate.
    (aw,) = _loop_phases("runtime", _runtime_args(_reflex("awaiting")), cfg, [rate])
    out["awaiting_handler"] = {"at_rate": aw, "ratio": _compare(aw, echo_rate)}
    if cfg.other_loop and OTHER_LOOP == "asyncio":
        # What the loop choice buys: the runtime (default mode) and the raw echo on asyncio's.
        (other,) = _loop_phases("runtime", _runtime_args(_reflex(), loop=OTHER_LOOP), cfg, [rate])
        (other_raw,) = _loop_phases(
            "raw_echo", {"reports": [CONTROL_REPORT], "loop": OTHER_LOOP}, cfg, [rate]
        )
        out["other_loop"] = {
            "loop": OTHER_LOOP,
            "at_rate": other,
            "baseline": other_raw,
            "ratio": {
                **_compare(other, other_raw),
                "cpu_per_loop": _ratio(
                    other["cpu_us_per_loop"] or 0.0, other_raw["cpu_us_per_loop"] or 0.0
                ),
            },
        }
    ratio = out["ratio"]["at_rate"]
    p50_ok = ratio["p50"] is not None and ratio["p50"] <= 2.0
    p99_ok = ratio["p99"] is not None and ratio["p99"] <= 2.0
    out["target"] = {
        "rate_per_s": rate,
        "p50_and_p99_within_x_raw": 2.0,
        "met": p50_ok and p99_ok,
        "stretch_p50_us_max": 500,
        "stretch_p99_us_max": 1000,
        "stretch_met": (at_rate["p50_us"] or math.inf) < 500
        and (at_rate["p99_us"] or math.inf) < 1000,
    }
    return out


# -- scale -----------------------------------------------------------------------------------


def _scale_run(role: str, args: dict[str, Any], cfg: BenchConfig) -> dict[str, Any]:
    n = cfg.scale_nodes
    procs = max(1, min(cfg.scale_procs, n))
    deadline = 300.0
    groups = [list(range(1 + p, n + 1, procs)) for p in range(procs)]
    with ExitStack() as stack:
        server = stack.enter_context(_server(role, args, deadline))
        time.sleep(0.5)
        idle = server.child.sample()
        t_setup = time.monotonic()
        server.start_nodes(stack, groups, SCALE_SHAPE, len(SCALE_REPORTS), deadline, 120.0)
        _await_xapps(server)
        setup_s = time.monotonic() - t_setup
        for p, child in enumerate(server.nodes):
            child.request("start", mode="periodic", period_s=1.0, phase_offset=p, total_nodes=n)
        time.sleep(cfg.scale_settle_s)
        s0, p0 = server.child.request("stats"), server.child.sample()
        g0 = [(n.sample(), n.request("stats")["sent"]) for n in server.nodes]
        meter = server.meter()
        time.sleep(cfg.scale_s)
        s1, p1 = server.child.request("stats"), server.child.sample()
        g1 = [(n.sample(), n.request("stats")["sent"]) for n in server.nodes]
        background = meter.background_cores()
        server.all_nodes("halt")
    elapsed = s1["t"] - s0["t"]
    r0, v0 = _values(s0)
    r1, v1 = _values(s1)
    out: dict[str, Any] = {
        "nodes": n,
        "setup_s": round(setup_s, 2),
        "cpu_cores": round(p1.cpu_share(p0), 3),
        "rss_mb": round(p1.rss_bytes / 2**20, 1),
        "idle_rss_mb": round(idle.rss_bytes / 2**20, 1),
        "per_node_kb": round((p1.rss_bytes - idle.rss_bytes) / n / 1024, 1),
        "reports_per_s": round((r1 - r0) / elapsed, 1),
        "values_per_s": round((v1 - v0) / elapsed),
        "batches_sent_per_s": round(
            sum(b[1] - a[1] for a, b in zip(g0, g1, strict=True)) / elapsed, 1
        ),
        "load_generators_cpu_cores": round(
            sum(b[0].cpu_share(a[0]) for a, b in zip(g0, g1, strict=True)), 3
        ),
        "background_cores": background,
    }
    if "nodes" in s1:
        out["connected"] = s1["nodes"]
        out["reports_dropped_per_s"] = round((s1["dropped"] - s0["dropped"]) / elapsed, 1)
    for key in ("loop_lag_max_ms", "loop_stalls_over_100ms", "gc_pause_max_ms"):
        out[key] = s1.get(key)
    return out


def scale(cfg: BenchConfig, shared: dict[str, Any]) -> dict[str, Any]:
    """Many nodes reporting every second: runtime CPU and memory vs a raw decoding server."""
    raw = _scale_run("raw_decode", {"reports": SCALE_REPORTS}, cfg)
    monitor = [{"kind": "sink", "name": "monitor", "preset": "scale"}]
    ric = _scale_run("runtime", _runtime_args(monitor), cfg)
    expected = 2 * cfg.scale_nodes
    out: dict[str, Any] = {
        "what": "nodes each sending one batch per second (a cell report and a UE report "
        "together); CPU share and resident memory of the server process from /proc; "
        "baseline: the raw grpc.aio decoding server with the same nodes",
        "shape": {
            **SCALE_SHAPE.describe(),
            "reports": "cell (10 metrics) + UE (7 metrics), every 1000 ms",
            "values_per_node_per_s": SCALE_SHAPE.cells * 10 + SCALE_SHAPE.ues * 7,
            "node_processes": max(1, min(cfg.scale_procs, cfg.scale_nodes)),
            "expected_reports_per_s": expected,
        },
        "duration_s": cfg.scale_s,
        "value": ric,
        "baseline": raw,
        "ratio": {
            "cpu": _ratio(ric["cpu_cores"], raw["cpu_cores"]),
            "rss": _ratio(ric["rss_mb"], raw["rss_mb"]),
        },
        "target": {
            "nodes": 1000,
            "cpu_cores_max": 0.5,
            "rss_mb_max": 300,
            "met": cfg.scale_nodes >= 1000 and ric["cpu_cores"] < 0.5 and ric["rss_mb"] < 300,
        },
        "isolation": DEFAULT_ISOLATION,
    }
    if DEFAULT_ISOLATION != "loop" and "loop" in cfg.modes:
        # The same nodes with the xApp on the runtime's loop: what the thread hand-off costs
        # when 2,000 reports a second arrive one by one (each wakes the xApp's thread).
        loop = _scale_run("runtime", _runtime_args(monitor, isolation="loop"), cfg)
        out["loop"] = {**loop, "ratio": {"cpu": _ratio(loop["cpu_cores"], raw["cpu_cores"])}}
    return out


# -- fan-out ---------------------------------------------------------------------------------


def fanout(cfg: BenchConfig, shared: dict[str, Any]) -> dict[str, Any]:
    """1, 10, 50 xApps on the same reports (one merged E2 subscription); then one and
    ``cfg.process_fanout`` xApps in process mode, the runtime and its xApps free to use every
    core."""
    raw = shared.get("raw_ingest") or _blast(
        "raw_decode", {"reports": [INGEST_REPORT]}, cfg, duration_s=cfg.fanout_s
    )
    rows = []
    for k in cfg.fanout:
        names = [f"sink-{i}" for i in range(k)]
        xapps = [s for name in names for s in _sink(name)]
        r = _blast("runtime", _runtime_args(xapps), cfg, duration_s=cfg.fanout_s, names=names)
        per_xapp = r["values_per_s"] / k
        rows.append(
            {
                "xapps": k,
                "values_per_s_per_xapp": round(per_xapp),
                "values_per_s_total": r["values_per_s"],
                "reports_per_s_total": r["reports_per_s"],
                "reports_dropped_per_s": r.get("reports_dropped_per_s", 0),
                "server_cpu_cores": r["server_cpu_cores"],
                "ratio": _ratio(per_xapp, raw["values_per_s"]),
            }
        )
    out: dict[str, Any] = {
        "what": "ingest with k identical xApps: values per second into each xApp's handler "
        "and in total; baseline: the raw decode rate of the same messages",
        "duration_s": cfg.fanout_s,
        "isolation": DEFAULT_ISOLATION,
        "value": rows,
        "baseline": {"values_per_s": raw["values_per_s"]},
        "ratio": {str(r["xapps"]): r["ratio"] for r in rows},
    }
    if cfg.process_fanout > 0:
        out["process"] = _process_fanout(cfg, raw)
    return out


def _process_fanout(cfg: BenchConfig, raw: dict[str, Any]) -> dict[str, Any]:
    """Aggregate values/s into ``cfg.process_fanout`` process xApps vs into one: whether the
    RIC spreads over the cores when its xApps have processes of their own."""
    every_core = sorted(os.sched_getaffinity(0))
    runs: dict[int, dict[str, Any]] = {}
    for k in sorted({1, cfg.process_fanout}):
        names = [f"sink-{i}" for i in range(k)]
        xapps = [s for name in names for s in _sink(name)]
        runs[k] = _blast(
            "runtime",
            _runtime_args(xapps, isolation="process"),
            cfg,
            duration_s=cfg.fanout_s,
            names=names,
            cpus=every_core,
        )
    one, many = runs[1], runs[cfg.process_fanout]
    gain = _ratio(many["values_per_s"], one["values_per_s"])
    return {
        "what": f"ingest into 1 and into {cfg.process_fanout} process-mode xApps on one merged "
        "subscription: aggregate values per second into their handlers; the runtime and its "
        "xApp processes may use every core (the load generators still run on theirs, so they "
        "share a core with the RIC here)",
        "xapps": cfg.process_fanout,
        "cores": len(every_core),
        "one": {**one, "ratio": _ratio(one["values_per_s"], raw["values_per_s"])},
        "many": {
            **many,
            "values_per_s_per_xapp": round(many["values_per_s"] / cfg.process_fanout),
            "ratio": _ratio(many["values_per_s"], raw["values_per_s"]),
        },
        "aggregate_vs_one": gain,
        "target": {
            "aggregate_vs_one_min": PROCESS_FANOUT_TARGET,
            "met": gain is not None and gain > PROCESS_FANOUT_TARGET,
        },
    }


# -- replay ----------------------------------------------------------------------------------


def replay(cfg: BenchConfig, shared: dict[str, Any]) -> dict[str, Any]:
    """An hour of a 21-cell network, replayed from a trace into kpimon and mlb on the virtual
    clock (``ric.testing.run_trace``); baseline: reading and parsing every frame of it."""
    import asyncio
    import tempfile

    from kpimon import KpiMonitor
    from mlb import LoadBalancer

    from ric._proto.e2.v1 import e2_pb2
    from ric.testing import run_trace
    from ric.trace import Direction, TraceReader
    from ric.trace.synthetic import write_network_trace

    sites = max(1, cfg.replay_cells // 3)
    seconds = round(cfg.replay_sim_s)
    with tempfile.TemporaryDirectory(prefix="ric-bench-") as folder:
        path = write_network_trace(
            Path(folder) / "hour.trace", sites=sites, seconds=seconds, ues_per_cell=2
        )
        clock = time.perf_counter
        t0 = clock()
        frames = 0
        with TraceReader(path) as reader:
            for frame in reader:
                if frame.direction is Direction.NODE_TO_RIC:
                    e2_pb2.NodeMessage.FromString(frame.message)
                frames += 1
        read_wall = clock() - t0
        t0 = clock()
        result = asyncio.run(run_trace(path, [KpiMonitor, LoadBalancer]))
        wall = clock() - t0
        size = path.stat().st_size
    scale_to_hour = 3600.0 / seconds
    reports = sum(len(v) for v in result.reports.values())
    return {
        "what": f"a synthetic trace of {seconds} s of {sites} sites x 3 cells (cell and UE rows "
        "every second) replayed in-process on the virtual clock into kpimon and mlb through the "
        "runtime's subscriptions, hosts and control path (ric.testing.run_trace); baseline: "
        "reading and parsing every frame of the same trace",
        "shape": {
            "cells": sites * 3,
            "simulated_s": seconds,
            "frames": frames,
            "trace_bytes": size,
            "reports_delivered": reports,
            "controls": len(result.controls),
        },
        "value": {"wall_s": round(wall, 2), "wall_s_per_hour": round(wall * scale_to_hour, 2)},
        "baseline": {
            "what": "TraceReader + NodeMessage parse of every frame (same trace)",
            "wall_s": round(read_wall, 2),
            "wall_s_per_hour": round(read_wall * scale_to_hour, 2),
        },
        "ratio": _ratio(wall, read_wall),
        "speedup_vs_real_time": round(seconds / wall, 1) if wall else None,
        "target": {
            "wall_s_per_hour_max": 20.0,
            "met": wall * scale_to_hour < 20.0,
            "extrapolated": seconds < 3600,
        },
    }


# -- cluster ---------------------------------------------------------------------------------


@contextmanager
def _redis_server() -> Iterator[tuple[str, int]]:
    """A redis-server of the bench's own on a free loopback port, without persistence:
    (its URL, its pid); stopped (and reaped) on leaving."""
    import tempfile

    exe = shutil.which("redis-server")
    if exe is None:
        raise ChildError(
            "the cluster section needs redis-server on PATH (apt-get install redis-server)"
        )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    with tempfile.TemporaryDirectory(prefix="ric-bench-redis-") as folder:
        log = Path(folder) / "redis.log"
        argv = [
            exe,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", folder,
            "--logfile", str(log),
        ]  # fmt: skip
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10.0
            while True:
                if proc.poll() is not None:
                    tail = log.read_text()[-2000:] if log.exists() else ""
                    raise ChildError(f"redis-server exited with {proc.returncode}: {tail}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
                        sock.sendall(b"PING\r\n")
                        if sock.recv(64).startswith(b"+PONG"):
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise ChildError(f"redis-server on port {port} did not answer within 10 s")
                time.sleep(0.01)
            yield f"redis://127.0.0.1:{port}/0", proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _replica_args(
    url: str | None, timings: dict[str, float], prefix: str = "ric"
) -> dict[str, Any]:
    """A runtime with one sink xApp; with ``url``, one replica of RIC ``bench`` on that Redis
    under the key prefix ``prefix`` (one per run, so runs never see each other's leases)."""
    args = _runtime_args(_sink())
    if url is not None:
        args["config"] = {
            "ric_id": "bench",
            "sdl.backend": "redis",
            "sdl.url": url,
            "sdl.key_prefix": prefix,
            "cluster.enabled": True,
            **timings,
        }
    return args


def _cluster(
    stack: ExitStack,
    cfg: BenchConfig,
    args: Sequence[dict[str, Any]],
    *,
    replica_cpus: Sequence[Sequence[int]],
    node_cpus: Sequence[int],
    deadline_s: float,
) -> tuple[list[_Server], list[Child]]:
    """Start one runtime per ``args`` (replicas of one RIC, or a lone runtime) and
    ``cfg.cluster_nodes`` nodes in two node processes; node group g connects first to
    replica g (mod the replicas) and fails over to the others in turn. Returns once every
    node is subscribed and every sink runs."""
    # Every replica starts before the first is waited for: they start side by side.
    started = [
        (stack.enter_context(Child("runtime", a, deadline_s=deadline_s, cpus=cpus)), a)
        for a, cpus in zip(args, replica_cpus, strict=True)
    ]
    servers = [
        _Server(child, int(child.read(60.0)["port"]), xapps=[x["name"] for x in a["xapps"]])
        for child, a in started
    ]
    n = len(servers)
    count = max(2, cfg.cluster_nodes)
    groups = [list(range(2000 + g, 2000 + count, 2)) for g in range(2)]
    children = []
    for g, ids in enumerate(groups):
        targets = [f"127.0.0.1:{servers[(g + k) % n].port}" for k in range(n)]
        children.append(
            stack.enter_context(
                Child(
                    "nodes",
                    {
                        "targets": targets,
                        "node_ids": ids,
                        "shape": {
                            "cells": INGEST_SHAPE.cells,
                            "ues_per_cell": INGEST_SHAPE.ues_per_cell,
                        },
                        "expected_subs": 1,
                        "setup_timeout_s": 60.0,
                        "retry_s": list(CLUSTER_NODE_RETRY_S),
                    },
                    deadline_s=deadline_s,
                    cpus=node_cpus,
                )
            )
        )
    for child in children:
        child.read(90.0)
    for server in servers:
        _await_xapps(server)
    return servers, children


def _cluster_ingest(
    cfg: BenchConfig, url: str | None, redis_pid: int, replicas: int
) -> dict[str, Any]:
    """Blast ingest into ``replicas`` replicas (``url`` None: one runtime without cluster).

    Each replica's sink counts what reaches its handler: the reports of the replica's own
    nodes and, when the runtime forwards reports between replicas (``ric.cluster_streams``),
    the other replica's too. The headline is each value once, in the xApp of the node's own
    replica: the sink's values minus the forwarded reports it was handed (every report of the
    section has the same number of values); delivered and forwarded are given beside it."""
    every = sorted(os.sched_getaffinity(0))
    if replicas == 1:
        # As the ingest section: the runtime alone on the server core, the load on the rest.
        server_core, load_cores = split_cpus()
        replica_cpus: list[list[int]] = [server_core]
        node_cpus = load_cores
    else:
        # A core per replica; with no core left the load generators share them (2 cores).
        replica_cpus = [[every[i % len(every)]] for i in range(replicas)]
        node_cpus = every[replicas:] or every
    deadline = 90.0 + cfg.warmup_s + cfg.ingest_s
    prefix = f"bench-{uuid.uuid4().hex[:12]}"
    args = [_replica_args(url, {}, prefix) for _ in range(replicas)]
    with ExitStack() as stack:
        servers, nodes = _cluster(
            stack, cfg, args, replica_cpus=replica_cpus, node_cpus=node_cpus, deadline_s=deadline
        )
        connected = [int(s.child.request("stats")["nodes"]) for s in servers]
        for child in nodes:
            child.request("start", mode="blast")
        time.sleep(cfg.warmup_s)
        s0 = [s.child.request("stats") for s in servers]
        p0 = [s.child.sample() for s in servers]
        g0 = [(c.sample(), c.request("stats")) for c in nodes]
        r0 = proc_sample(redis_pid) if url is not None else None
        meter = LoadMeter([*(s.child.pid for s in servers), *(c.pid for c in nodes)])
        time.sleep(cfg.ingest_s)
        s1 = [s.child.request("stats") for s in servers]
        p1 = [s.child.sample() for s in servers]
        g1 = [(c.sample(), c.request("stats")) for c in nodes]
        r1 = proc_sample(redis_pid) if url is not None else None
        background = meter.background_cores()
        for child in nodes:
            child.request("halt")
    local: list[int] = []
    delivered: list[int] = []
    forwarded: list[int] = []
    dropped = 0.0
    for a, b in zip(s0, s1, strict=True):
        elapsed = b["t"] - a["t"]
        reports = _values(b)[0] - _values(a)[0]
        values = _values(b)[1] - _values(a)[1]
        fa, fb = a.get("cluster_reports", {}), b.get("cluster_reports", {})
        received = fb.get("reports_received", 0.0) - fa.get("reports_received", 0.0)
        dropped += fb.get("reports_dropped", 0.0) - fa.get("reports_dropped", 0.0)
        per_report = values / reports if reports else 0.0
        delivered.append(round(values / elapsed))
        forwarded.append(round(received * per_report / elapsed))
        local.append(delivered[-1] - forwarded[-1])
    wall = g1[0][1]["t"] - g0[0][1]["t"]
    sent = sum(b[1]["sent"] - a[1]["sent"] for a, b in zip(g0, g1, strict=True))
    out: dict[str, Any] = {
        "replicas": replicas if url is not None else 0,
        "values_per_s": sum(local),
        "per_replica_values_per_s": local,
        "delivered_values_per_s": sum(delivered),
        "forwarded_values_per_s": sum(forwarded),
        "forward_dropped_reports_per_s": round(dropped / wall) if wall > 0 else 0,
        "offered_values_per_s": round(sent * INGEST_SHAPE.ues * len(wire.UE_METRICS) / wall)
        if wall > 0
        else 0,
        "nodes_per_replica": connected,
        "replica_cpu_cores": [round(b.cpu_share(a), 3) for a, b in zip(p0, p1, strict=True)],
        "replica_rss_mb": [round(b.rss_bytes / 2**20, 1) for b in p1],
        "load_generators_cpu_cores": round(
            sum(b[0].cpu_share(a[0]) for a, b in zip(g0, g1, strict=True)), 3
        ),
        "redis_cpu_cores": round(r1.cpu_share(r0), 3)
        if r0 is not None and r1 is not None
        else None,
        "background_cores": background,
        "cpus": {"replicas": replica_cpus, "load_generators": list(node_cpus)},
    }
    return out


def _takeover(cfg: BenchConfig, url: str, timings: dict[str, float]) -> dict[str, Any]:
    """Two replicas with nodes on both; SIGKILL the one holding more leases and time, from
    the kill, each of its nodes leased with a higher term at the survivor (its ``cluster``
    answers, polled every 10 ms) and subscribed again (the node's own clock)."""
    settings = ClusterSettings(**{k.removeprefix("cluster."): v for k, v in timings.items()})
    limit_s = settings.member_ttl_s + settings.lease_ttl_s + 30.0
    deadline = 120.0 + limit_s
    prefix = f"bench-{uuid.uuid4().hex[:12]}"
    args = [_replica_args(url, timings, prefix) for _ in range(2)]
    with ExitStack() as stack:
        # Unpinned: a takeover is a latency, not a throughput.
        servers, nodes = _cluster(
            stack, cfg, args, replica_cpus=[[], []], node_cpus=[], deadline_s=deadline
        )
        before = [s.child.request("cluster") for s in servers]
        victim = max(range(2), key=lambda i: len(before[i]["leases"]))
        survivor = servers[1 - victim]
        held: dict[str, int] = before[victim]["leases"]
        if not held or not before[1 - victim]["leases"]:
            raise ChildError(f"cluster: the nodes are not spread over both replicas: {before}")
        killed_at = time.monotonic()
        servers[victim].child.kill()
        taken: dict[str, tuple[float, int]] = {}
        while len(taken) < len(held):
            answer = survivor.child.request("cluster")
            for node, term in answer["leases"].items():
                if node in held and node not in taken and term > held[node]:
                    taken[node] = (float(answer["t"]) - killed_at, int(term))
            if time.monotonic() - killed_at > limit_s:
                raise ChildError(
                    f"cluster: {len(taken)} of the {len(held)} nodes of the killed replica "
                    f"taken over {limit_s:g} s after the kill\n{survivor.child.log_tail()}"
                )
            time.sleep(0.01)
        # The node's side: subscribed again at the survivor (its subscriptions re-armed).
        moved: list[float] = []
        while True:
            rows = [r for c in nodes for r in c.request("associations")["nodes"]]
            moved = [r["ready_at"] - killed_at for r in rows if r["setups"] > 1 and r["ready"]]
            if len(moved) >= len(held):
                break
            if time.monotonic() - killed_at > limit_s:
                raise ChildError(f"cluster: {len(moved)} of {len(held)} nodes subscribed again")
            time.sleep(0.01)
        after = survivor.child.request("cluster")
    times = sorted(t for t, _ in taken.values())
    return {
        "nodes_taken_over": len(taken),
        "nodes_kept_by_survivor": len(before[1 - victim]["leases"]),
        "takeover_s": round(times[-1], 3),
        "takeover_p50_s": round(float(np.median(times)), 3),
        "resubscribed_s": round(max(moved), 3),
        "terms_before": sorted(set(held.values())),
        "terms_after": sorted({term for _, term in taken.values()}),
        "survivor_leases": len(after["leases"]),
    }


def cluster(cfg: BenchConfig, shared: dict[str, Any]) -> dict[str, Any]:
    """Replicas of one RIC on a real redis-server (``ric.cluster``): aggregate ingest into
    two replicas vs one (and one runtime without cluster), and how long a SIGKILLed replica's
    nodes take to be leased with a new term at the survivor."""
    with _redis_server() as (url, redis_pid):
        plain = _cluster_ingest(cfg, None, redis_pid, 1)
        one = _cluster_ingest(cfg, url, redis_pid, 1)
        two = _cluster_ingest(cfg, url, redis_pid, 2)
        short = [_takeover(cfg, url, CLUSTER_SHORT) for _ in range(max(1, cfg.cluster_takeovers))]
        default = _takeover(cfg, url, {}) if cfg.cluster_default_timings else None
    defaults = ClusterSettings()

    def timing(settings: dict[str, float]) -> dict[str, float]:
        keys = ("heartbeat_interval_s", "member_ttl_s", "lease_ttl_s", "renew_interval_s")
        return {k: settings.get(f"cluster.{k}", getattr(defaults, k)) for k in keys}

    def summary(runs: list[dict[str, Any]], settings: dict[str, float]) -> dict[str, Any]:
        worst = [r["takeover_s"] for r in runs]
        return {
            "settings": timing(settings),
            "kills": len(runs),
            "takeover_p50_s": round(float(np.median(worst)), 3),
            "takeover_max_s": round(max(worst), 3),
            "resubscribed_max_s": round(max(r["resubscribed_s"] for r in runs), 3),
            "runs": runs,
        }

    takeover = {"short": summary(short, CLUSTER_SHORT)}
    if default is not None:
        takeover["default"] = summary([default], {})
    return {
        "what": "replicas of one RIC ([sdl] backend = redis, [cluster] enabled) on a redis-server "
        f"the bench starts, the nodes ({max(2, cfg.cluster_nodes)}, in two node processes, "
        "blasting) spread over 2 replicas vs all on 1: values per second into the sink xApp of "
        "each node's own replica, summed (each value once; the reports a replica forwards to "
        "the other's sink are counted apart, as forwarded, and both as delivered); baseline: "
        "the same with 1 replica. Takeover: SIGKILL the replica holding more nodes; time from "
        "the kill until each of its nodes is leased with a higher term at the survivor, the "
        "nodes failing over through their endpoint lists",
        "shape": {
            **INGEST_SHAPE.describe(),
            "report": "per UE, 10 metrics",
            "nodes": max(2, cfg.cluster_nodes),
            "node_retry_s": list(CLUSTER_NODE_RETRY_S),
        },
        "duration_s": cfg.ingest_s,
        "value": two,
        "baseline": one,
        "ratio": _ratio(two["values_per_s"], one["values_per_s"]),
        "no_cluster": plain,
        "one_replica_vs_no_cluster": _ratio(one["values_per_s"], plain["values_per_s"]),
        "takeover": takeover,
        "cores": f"{len(os.sched_getaffinity(0))} cores: 1 replica has the server core and "
        "the load generators the rest (as ingest); 2 replicas have a core each and the load "
        "generators and redis-server share them when no core is left",
    }


Section = Callable[[BenchConfig, dict[str, Any]], dict[str, Any]]
_RUNNERS: dict[str, Section] = {
    "ingest": ingest,
    "control": control,
    "scale": scale,
    "fanout": fanout,
    "replay": replay,
    "cluster": cluster,
}


def run_section(name: str, cfg: BenchConfig, shared: dict[str, Any]) -> dict[str, Any]:
    """Run one section by name; ``shared`` carries results one section may reuse."""
    return _RUNNERS[name](cfg, shared)
