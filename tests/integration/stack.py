"""A whole RIC on loopback for the observability tests: runtime, HTTP, metrics, simulator.

``running_ric`` starts a runtime with the Prometheus sensor and the HTTP server on free
ports, optionally with the simulator (``seeds/small.toml``: three vendors, four cells) set up
against it, and always shuts everything down.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ric.config import load_config
from ric.http import HttpServer
from ric.metrics import PrometheusSensor
from ric.plugins import Plugin, load
from ric.runtime import Runtime
from ric.sim import Simulator, load_scenario
from ric.view import Component
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
SMALL = ROOT / "seeds" / "small.toml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "ric.json"
SMALL_CELLS = 4
"""Cells in seeds/small.toml: acme with two sectors, globex and initech with one each."""


@dataclass
class Ric:
    """What ``running_ric`` started."""

    runtime: Runtime
    sensor: PrometheusSensor
    http: HttpServer
    sim: Simulator | None

    @property
    def url(self) -> str:
        """The HTTP server's base URL."""
        return self.http.url

    async def wait_for_cell_kpis(self) -> None:
        """Wait until kpimon (if loaded) has KPIs of every cell of the small scenario."""
        kpimon = self.runtime.host("kpimon")
        await wait_for(
            lambda: (
                kpimon.instance is not None
                and len(getattr(kpimon.instance, "latest", {})) == SMALL_CELLS
            ),
            what="kpimon's KPIs of every cell",
        )


@contextlib.asynccontextmanager
async def running_ric(
    *xapps: str | Plugin,
    sim: bool = True,
    overrides: dict[str, Any] | None = None,
    components: Sequence[Component] = (),
) -> AsyncIterator[Ric]:
    """A runtime with ``xapps`` (entry-point names or Plugins), metrics with per-node and
    per-cell series, HTTP on a free port, ``components`` after those, and the small simulated
    network set up."""
    config = load_config(
        environ={},
        overrides={
            "e2.port": 0,
            "http.port": 0,
            "http.readiness_interval_s": 0.05,
            "metrics.per_node": True,
            "metrics.per_cell": True,
            **(overrides or {}),
        },
    )
    plugins = [load(x) if isinstance(x, str) else x for x in xapps]
    sensor = PrometheusSensor(config.metrics)
    http = HttpServer(config.http, registry=sensor.registry)
    runtime = Runtime(config, plugins, sensors=[sensor], components=[sensor, http, *components])
    async with runtime:
        if not sim:
            yield Ric(runtime, sensor, http, None)
            return
        async with Simulator(load_scenario(SMALL), f"127.0.0.1:{runtime.port}") as simulator:
            await simulator.wait_ready()
            await wait_for(lambda: len(runtime.sessions) == 3, what="three nodes set up")
            yield Ric(runtime, sensor, http, simulator)


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tool(name: str) -> str:
    """The path of a required program; fails (not skips) the test when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: the observability tests need Prometheus' {name} "
            "(run `make test`, which installs Debian's prometheus package, or apt-get install "
            "prometheus)"
        )
    return path


def hostport(url: str) -> str:
    """``host:port`` of an ``http://host:port`` URL."""
    return url.split("://", 1)[1].rstrip("/")


def xapp_plugins(*classes: type[Any]) -> Sequence[Plugin]:
    """Plugins for xApp classes defined in tests."""
    return [Plugin(c, f"test:{c.__name__}") for c in classes]


def dashboard_metrics() -> set[str]:
    """Every metric name the Grafana dashboard's queries use."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs: list[str] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            exprs.extend(target["expr"] for target in panel.get("targets", []))
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    names: set[str] = set()
    for expr in exprs:
        unquoted = re.sub(r'"[^"]*"', '""', expr)
        names |= set(re.findall(r"\b(?:ric|xapp|process|python)_[a-z0-9_]+\b", unquoted))
    return names
