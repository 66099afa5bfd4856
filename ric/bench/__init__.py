"""``ric bench``: the performance suite, each figure side by side with a raw gRPC baseline.

::

    results = run_bench(BenchConfig.full())      # what `make bench` runs
    print(format_table(results))

Layout:

- :mod:`ric.bench.suite`  the sections (ingest, control, scale, fanout, replay, cluster) and
  configs
- :mod:`ric.bench.roles`  what each child process does: the runtime under test, the raw
  ``grpc.aio`` baselines, and the benchmark E2 nodes that load them
- :mod:`ric.bench.proc`   starting a role in its own process, JSON lines to and fro, /proc
- :mod:`ric.bench.wire`   the messages the nodes send (shared by runtime and baselines)
- :mod:`ric.bench.xapps`  the xApps inside the runtime under test (Sink, Reflex)

The runtime under test, each baseline server and the load generators run in processes of
their own, so the server is measured, not the generator. Figures are never asserted by tests;
they go to a JSON file and a short table.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from ric.bench.proc import split_cpus
from ric.bench.suite import DEFAULT_LOOP, SECTIONS, BenchConfig, run_section
from ric.cliutil import table

__all__ = ["SECTIONS", "BenchConfig", "format_table", "machine", "run_bench", "write_results"]


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as fh:
            mem_kb = int(fh.readline().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kb = 0
    from google.protobuf.internal import api_implementation

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 2**20, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "grpcio": _version("grpcio"),
        "protobuf": f"{_version('protobuf')} ({api_implementation.Type()})",
        "numpy": _version("numpy"),
        "uvloop": _version("uvloop"),
    }


def run_bench(cfg: BenchConfig, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the sections of ``cfg.only`` in order; a JSON-ready dict of everything measured."""
    say = progress or (lambda _text: None)
    if cfg.profile_dir is not None:
        cfg.profile_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results: dict[str, Any] = {
        "meta": {
            "config": cfg.name,
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "event_loop": DEFAULT_LOOP,
            "other_loop_measured": cfg.other_loop and DEFAULT_LOOP == "uvloop",
            "cores": {"server_under_test": split_cpus()[0], "load_generators": split_cpus()[1]},
            "sections": list(cfg.only),
        }
    }
    shared: dict[str, Any] = {}
    for name in SECTIONS:
        if name not in cfg.only:
            continue
        say(f"bench: {name} ...")
        t0 = time.monotonic()
        section = run_section(name, cfg, shared)
        section["elapsed_s"] = round(time.monotonic() - t0, 1)
        results[name] = section
        say(f"bench: {name} done in {section['elapsed_s']:.0f} s")
    results["meta"]["elapsed_s"] = round(time.monotonic() - started, 1)
    return results


def write_results(results: dict[str, Any], path: Path) -> None:
    """Write ``results`` as indented JSON."""
    path.write_text(json.dumps(results, indent=2) + "\n")


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text}{unit}"


def _ratio(value: float, baseline: float) -> float | None:
    return value / baseline if baseline else None


def _met(flag: bool | None) -> str:
    return "-" if flag is None else ("met" if flag else "NOT met")


def format_table(results: dict[str, Any]) -> str:
    """The short table ``ric bench`` prints (and the README shows)."""
    rows: list[tuple[str, str, str, str, str]] = [("figure", "ric", "baseline", "ratio", "target")]
    if "ingest" in results:
        s = results["ingest"]
        rows.append(
            (
                f"ingest values/s into 1 xApp ({s.get('value_mode', 'default')})",
                _num(s["value"]["values_per_s"]),
                _num(s["baseline"]["values_per_s"]),
                _num(s["ratio"]),
                f">= 1,000,000 and >= 0.5: {_met(s['target']['met'])}",
            )
        )
        if "other_loop" in s:
            o = s["other_loop"]
            rows.append(
                (
                    f"  same, runtime and raw on {o['loop']}",
                    _num(o["value"]["values_per_s"]),
                    _num(o["baseline"]["values_per_s"]),
                    _num(o["ratio"]),
                    f"runtime {_num(o['vs_default_loop'])}x on {DEFAULT_LOOP}'s",
                )
            )
        for mode, m in s.get("modes", {}).items():
            target = ""
            if mode == "process" and "process_target" in s:
                target = f">= 5,000,000: {_met(s['process_target']['met'])}"
            rows.append(
                (
                    f"  {mode} mode (RSS MB {_num(m.get('total_rss_mb'))})",
                    _num(m["values_per_s"]),
                    _num(s["baseline"]["values_per_s"]),
                    _num(m["ratio"]),
                    target,
                )
            )
        if "mqtt_broker_absent" in s:
            mq = s["mqtt_broker_absent"]
            slower = mq["vs_bridge_off"]
            rows.append(
                (
                    "  same, MQTT bridge on, broker absent",
                    _num(mq["values_per_s"]),
                    _num(s["value"]["values_per_s"]),
                    _num(slower),
                    f"vs bridge off >= 0.9: {'met' if slower is not None and slower >= 0.9 else 'NOT met'}",
                )
            )
    if "control" in results:
        s = results["control"]
        v, b, r = s["value"], s["baseline"], s["ratio"]
        rate = _num(s["target"]["rate_per_s"])
        for label, key in ((f"@{rate}/s", "at_rate"), ("@80% max", "at_80pct_max")):
            rate_note = f" ({_num(v[key]['rate_per_s'])}/s)" if key == "at_80pct_max" else ""
            for pct in ("p50", "p99", "p999"):
                target = ""
                if key == "at_rate" and pct == "p50":
                    target = f"p50, p99 <= 2x raw: {_met(s['target']['met'])}"
                rows.append(
                    (
                        f"control loop {pct} us {label}{rate_note if pct == 'p50' else ''}"
                        + (f" ({s['value_mode']})" if "value_mode" in s and pct == "p50" else ""),
                        _num(v[key][f"{pct}_us"]),
                        _num(b[key][f"{pct}_us"]),
                        _num(r[key][pct]),
                        target,
                    )
                )
        rows.append(
            (
                "control loop max indications/s",
                _num(v["max"]["max_per_s"]),
                _num(b["max"]["max_per_s"]),
                _num(r["max"]),
                "",
            )
        )
        modes = s.get("modes", {})
        met = s.get("mode_target", {}).get("met", {})
        for mode, m in modes.items():
            at, vs = m["at_rate"], m["vs_loop"] or {}
            target = ""
            if mode in met:
                target = f"p50 <= 1.5x loop ({_num(vs.get('p50'))}x): {_met(met[mode])}"
            rows.append(
                (
                    f"  {mode} mode p50/p99 us @{rate}/s",
                    f"{_num(at['p50_us'])}/{_num(at['p99_us'])}",
                    f"{_num(b['at_rate']['p50_us'])}/{_num(b['at_rate']['p99_us'])}",
                    f"{_num(m['ratio']['at_rate']['p50'])}/{_num(m['ratio']['at_rate']['p99'])}",
                    target,
                )
            )
            rows.append(
                (
                    f"  {mode} mode max/s, CPU us per loop",
                    f"{_num(m['max']['max_per_s'])}, "
                    f"{_num(at.get('total_cpu_us_per_loop') or at['cpu_us_per_loop'])}",
                    f"{_num(b['max']['max_per_s'])}, {_num(b['at_rate']['cpu_us_per_loop'])}",
                    f"{_num(m['ratio']['max'])}, {_num(m['ratio']['cpu_per_loop'])}",
                    f"{at['lost']:,} of {at['n'] + at['lost']:,} controls lost"
                    if at["lost"]
                    else "",
                )
            )
        staged = {
            mode: m["at_rate"]["stages_us_per_loop"]
            for mode, m in modes.items()
            if m["at_rate"].get("stages_us_per_loop")
        }
        if staged and b["at_rate"].get("stages_us_per_loop"):
            staged["raw"] = b["at_rate"]["stages_us_per_loop"]
        if staged:
            rows.append((f"  runtime CPU us per loop by stage @{rate}/s (py-spy)", "", "", "", ""))
            order = list(next(iter(staged.values())))
            for stage in order + sorted({k for v in staged.values() for k in v} - set(order)):
                rows.append(
                    (
                        f"    {stage}",
                        ", ".join(
                            f"{mode} {_num(v.get(stage, 0.0))}" for mode, v in staged.items()
                        ),
                        "",
                        "",
                        "",
                    )
                )
        if "awaiting_handler" in s:
            alt = s["awaiting_handler"]["at_rate"]
            rows.append(
                (
                    f"  p50/p99 us @{rate}/s, awaiting each outcome",
                    f"{_num(alt['p50_us'])}/{_num(alt['p99_us'])}",
                    f"{_num(b['at_rate']['p50_us'])}/{_num(b['at_rate']['p99_us'])}",
                    f"{_num(s['awaiting_handler']['ratio']['p50'])}/"
                    f"{_num(s['awaiting_handler']['ratio']['p99'])}",
                    "",
                )
            )
        if "other_loop" in s:
            o = s["other_loop"]
            alt, ob = o["at_rate"], o["baseline"]
            rows.append(
                (
                    f"  p50/p99 us, CPU us per loop @{rate}/s, runtime and raw on {o['loop']}",
                    f"{_num(alt['p50_us'])}/{_num(alt['p99_us'])}, {_num(alt['cpu_us_per_loop'])}",
                    f"{_num(ob['p50_us'])}/{_num(ob['p99_us'])}, {_num(ob['cpu_us_per_loop'])}",
                    f"{_num(o['ratio']['p50'])}/{_num(o['ratio']['p99'])}, "
                    f"{_num(o['ratio']['cpu_per_loop'])}",
                    "",
                )
            )
    if "scale" in results:
        s = results["scale"]
        n = s["value"]["nodes"]
        rows.append(
            (
                f"scale {n} nodes: CPU cores ({s.get('isolation', 'thread')})",
                _num(s["value"]["cpu_cores"]),
                _num(s["baseline"]["cpu_cores"]),
                _num(s["ratio"]["cpu"]),
                f"< 0.5 at 1,000 nodes: {_met(s['target']['met'])}",
            )
        )
        if "loop" in s:
            rows.append(
                (
                    f"scale {n} nodes: CPU cores (loop mode)",
                    _num(s["loop"]["cpu_cores"]),
                    _num(s["baseline"]["cpu_cores"]),
                    _num(s["loop"]["ratio"]["cpu"]),
                    "",
                )
            )
        rows.append(
            (
                f"scale {n} nodes: RSS MB",
                _num(s["value"]["rss_mb"]),
                _num(s["baseline"]["rss_mb"]),
                _num(s["ratio"]["rss"]),
                "< 300",
            )
        )
        rows.append(
            (
                "scale: memory per node KB",
                _num(s["value"]["per_node_kb"]),
                _num(s["baseline"]["per_node_kb"]),
                "",
                "",
            )
        )
    if "fanout" in results:
        s = results["fanout"]
        for row in s["value"]:
            rows.append(
                (
                    f"fan-out {row['xapps']} xApps: values/s per xApp",
                    _num(row["values_per_s_per_xapp"]),
                    _num(s["baseline"]["values_per_s"]),
                    _num(row["ratio"]),
                    f"total {_num(row['values_per_s_total'])}/s",
                )
            )
        if "process" in s:
            p = s["process"]
            rows.append(
                (
                    f"fan-out {p['xapps']} process xApps: values/s in all",
                    _num(p["many"]["values_per_s"]),
                    _num(p["one"]["values_per_s"]),
                    _num(p["aggregate_vs_one"]),
                    f"> 1.5x one process xApp: {_met(p['target']['met'])}",
                )
            )
    if "replay" in results:
        s = results["replay"]
        rows.append(
            (
                f"replay 1 h, {s['shape']['cells']} cells: wall s",
                _num(s["value"]["wall_s_per_hour"]),
                _num(s["baseline"]["wall_s_per_hour"]),
                _num(s["ratio"]),
                f"< 20 s: {_met(s['target']['met'])}",
            )
        )
    if "cluster" in results:
        s = results["cluster"]
        two, one = s["value"], s["baseline"]
        rows.append(
            (
                f"cluster ingest values/s, {two['replicas']} replicas vs 1",
                _num(two["values_per_s"]),
                _num(one["values_per_s"]),
                _num(s["ratio"]),
                "per replica " + " + ".join(_num(v) for v in two["per_replica_values_per_s"]),
            )
        )
        rows.append(
            (
                "  delivered into the sinks, incl. forwarded",
                _num(two["delivered_values_per_s"]),
                _num(one["delivered_values_per_s"]),
                _num(_ratio(two["delivered_values_per_s"], one["delivered_values_per_s"])),
                f"forwarded {_num(two['forwarded_values_per_s'])}/s",
            )
        )
        rows.append(
            (
                "  1 replica vs 1 runtime without cluster",
                _num(one["values_per_s"]),
                _num(s["no_cluster"]["values_per_s"]),
                _num(s["one_replica_vs_no_cluster"]),
                "",
            )
        )
        for name, t in s["takeover"].items():
            st = t["settings"]
            rows.append(
                (
                    f"takeover s after SIGKILL, p50/max of {t['kills']} ({name} timings)",
                    f"{_num(t['takeover_p50_s'])}/{_num(t['takeover_max_s'])}",
                    "",
                    "",
                    f"member TTL {st['member_ttl_s']:g} s, lease TTL {st['lease_ttl_s']:g} s",
                )
            )
    return "\n".join(table(rows[0], rows[1:], right={1, 2, 3}, rule=True))
