"""``ric demo``: the runtime, the simulator and example xApps in one process, with a live view.

Everything talks over real gRPC on loopback. The view shows the connected nodes, the cell
KPIs that the KPI monitor xApp sees, and the controls the xApps send, refreshed in place on
a terminal (or printed as blocks when the output is not a terminal).
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from ric.config import RuntimeConfig
from ric.plugins import Plugin
from ric.runtime import Runtime
from ric.sensors import Stats
from ric.sim import Scenario, run_sim
from ric.types import Sensor
from ric.view import Component

__all__ = ["render", "run_demo"]


def _fmt(value: float, spec: str) -> str:
    """``value`` formatted with ``spec``, or a dash of the same width when it is NaN."""
    return "-".rjust(int(spec.split(".")[0])) if math.isnan(value) else format(value, spec)


def render(runtime: Runtime, stats: Stats, started: float, rate: float) -> str:
    """The view as text: header, nodes, cell KPIs (from kpimon, if loaded), recent controls."""
    now = time.time()
    ok = sum(n for (_, _, outcome), n in stats.controls.items() if outcome == "acknowledged")
    total = sum(stats.controls.values())
    http = "".join(
        f"  HTTP {c.url}" for c in runtime.components if c.name == "http" and hasattr(c, "url")
    )
    lines = [
        f"ric demo  up {now - started:5.1f}s  E2 {runtime.config.e2.host}:{runtime.port}{http}  "
        f"nodes {len(runtime.sessions)}  indications {stats.indication_count} ({rate:.0f}/s)  "
        f"controls {total} ({ok} acknowledged)  dropped {sum(stats.dropped.values())}",
        "",
        f"{'NODE':<16}{'VENDOR':<20}{'SOFTWARE':<22}{'CELLS':>6}  {'RAN FUNCTIONS':<14}{'UP':>7}",
    ]
    for node_id, session in sorted(runtime.sessions.items()):
        info = session.info
        functions = ", ".join(
            f.short_name.removeprefix("ORAN-E2SM-") for f in info.ran_functions.values()
        )
        lines.append(
            f"{node_id:<16}{info.vendor[:19]:<20}{info.software_version[:21]:<22}{len(info.cells):>6}  "
            f"{functions:<14}{now - session.connected_at:>6.0f}s"
        )
    kpimon: Any = None
    for host in runtime.hosts:
        if host.name == "kpimon":
            kpimon = host.instance
    cells = kpimon.snapshot() if getattr(kpimon, "latest", None) is not None else []
    lines += [
        "",
        f"{'CELL':<15}{'NODE':<16}{'PRB %':>7}{'DL Mbit/s':>11}{'UL Mbit/s':>11}{'UEs':>6}{'DELAY ms':>10}",
    ]
    for k in sorted(cells, key=lambda c: (c.node, len(c.cell), c.cell)):
        lines.append(
            f"{k.cell:<15}{k.node:<16}{_fmt(k.prb_util_pct, '7.1f')}{_fmt(k.dl_mbps, '11.2f')}"
            f"{_fmt(k.ul_mbps, '11.2f')}{_fmt(k.ues, '6.1f')}{_fmt(k.delay_ms, '10.2f')}"
        )
    if not cells:
        lines.append("(waiting for the first KPM reports)")
    lines += ["", "RECENT CONTROLS"]
    recent = list(stats.recent_controls)[-8:]
    for xapp, outcome in recent:
        shown = runtime.privacy.text(str(outcome))  # the terminal is an output like the log
        lines.append(f"  {xapp:<8} {shown}  {outcome.latency_s * 1000:.1f} ms")
    if not recent:
        lines.append("  (none yet)")
    return "\n".join(lines)


async def _view(
    runtime: Runtime, stats: Stats, started: float, refresh_s: float, out: TextIO
) -> None:
    tty = out.isatty()
    last_count, last_t = 0, time.monotonic()
    while True:
        await asyncio.sleep(refresh_s)
        now = time.monotonic()
        rate = (stats.indication_count - last_count) / max(now - last_t, 1e-9)
        last_count, last_t = stats.indication_count, now
        text = render(runtime, stats, started, rate)
        if tty:
            out.write("\x1b[H\x1b[2J" + text + "\n")
        else:
            out.write(text + "\n\n")
        out.flush()


async def run_demo(
    config: RuntimeConfig,
    plugins: Sequence[Plugin],
    scenario: Scenario,
    *,
    duration_s: float | None = None,
    seed: int | None = None,
    refresh_s: float = 1.0,
    out: TextIO | None = None,
    sensors: Iterable[Sensor] = (),
    components: Sequence[Component] = (),
) -> Stats:
    """Run runtime + simulator + xApps until ``duration_s`` passes (or forever); the stats.

    The runtime builds what ``config`` asks for (``Runtime.from_config``: HTTP and metrics,
    MQTT, recording), as ``ric run`` does; ``sensors`` and ``components`` are added to them."""
    stats = Stats()
    stream = out or sys.stdout
    started = time.time()
    async with Runtime.from_config(
        config, plugins, sensors=[stats, *sensors], components=components
    ) as runtime:
        target = (
            f"127.0.0.1:{runtime.port}"
            if config.e2.host in ("0.0.0.0", "")
            else f"{config.e2.host}:{runtime.port}"
        )
        async with asyncio.TaskGroup() as tg:
            sim = tg.create_task(run_sim(scenario, target, seed=seed))
            view = tg.create_task(_view(runtime, stats, started, refresh_s, stream))
            try:
                if duration_s is not None:
                    await asyncio.sleep(duration_s)
                else:
                    await asyncio.Event().wait()
            finally:
                sim.cancel()
                view.cancel()
            rate = stats.indication_count / max(time.time() - started, 1e-9)
            stream.write("stopping: " + render(runtime, stats, started, rate).split("\n")[0] + "\n")
    return stats
