"""A real Prometheus server scrapes a running runtime with the simulated network, and its query
API shows the ric_* series with the values the runtime and the network produced; it also loads
the shipped alert rules, and scrapes a runtime that protects /metrics with its bearer token."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml
from kpimon import KpiMonitor

from tests.integration.stack import (
    ROOT,
    SMALL_CELLS,
    Ric,
    dashboard_metrics,
    free_port,
    hostport,
    running_ric,
    tool,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

SCRAPE = "200ms"
"""Scrape interval of the test server (the shipped config says 5s), so a run takes seconds."""
WAIT_S = 30.0
"""Guard against hangs only: how long to wait for Prometheus to start or to have data."""


@dataclass
class Scraped:
    """A runtime with the small network, and a Prometheus server scraping it."""

    ric: Ric
    prometheus: str

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """The result vector of an instant query."""
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{self.prometheus}/api/v1/query", params={"query": expr}) as response,
        ):
            body = await response.json()
        assert response.status == 200 and body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def scalar(self, expr: str) -> float:
        """The single value of an instant query (fails unless there is exactly one)."""
        result = await self.query(expr)
        assert len(result) == 1, f"{expr}: {result}"
        return float(result[0]["value"][1])

    async def eventually(self, expr: str, what: str) -> list[dict[str, Any]]:
        """Poll a query until it returns something; fail after WAIT_S naming ``what``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_S
        while not (result := await self.query(expr)):
            if loop.time() > deadline:
                pytest.fail(f"Prometheus never had {what} ({expr})")
            await asyncio.sleep(0.1)
        return result


PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"


def scrape_config(target: str, token_file: Path) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml, scraping ``target`` every SCRAPE with the bearer token
    in ``token_file`` and evaluating the shipped alert rules as often."""
    config: dict[str, Any] = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update(
        scrape_interval=SCRAPE, scrape_timeout=SCRAPE, evaluation_interval=SCRAPE
    )
    assert config["rule_files"] == ["alerts.yml"], config["rule_files"]
    config["rule_files"] = [str(PROMETHEUS_DIR / "alerts.yml")]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "ric" and job["metrics_path"] == "/metrics"
    assert job["authorization"]["type"] == "Bearer", job["authorization"]
    job["authorization"]["credentials_file"] = str(token_file)
    job["static_configs"] = [{"targets": [target]}]
    return config


@contextlib.asynccontextmanager
async def prometheus_server(
    target: str, workdir: Path, token_file: Path | None = None
) -> AsyncIterator[str]:
    """A `prometheus` child process on a free loopback port scraping ``target`` (with the token
    in ``token_file``; without one, a token the runtime does not know); its URL. The process is
    always stopped."""
    binary = tool("prometheus")
    if token_file is None:
        token_file = workdir / "unknown-token"
        token_file.write_text("not-the-runtime-token\n")
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(target, token_file)))
    log = (workdir / "prometheus.log").open("wb")
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_S
        async with aiohttp.ClientSession() as http:
            while True:
                if proc.returncode is not None:
                    pytest.fail(f"prometheus exited: {(workdir / 'prometheus.log').read_text()}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{url}/-/ready") as response:
                        if response.status == 200:
                            break
                if loop.time() > deadline:
                    pytest.fail("prometheus did not become ready")
                await asyncio.sleep(0.1)
        yield url
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def scraped(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Scraped]:
    """kpimon and mlb on the small network, scraped by a real Prometheus until the module ends."""
    workdir = tmp_path_factory.mktemp("prometheus")
    async with (
        running_ric("kpimon", "mlb") as ric,
        prometheus_server(hostport(ric.url), workdir) as url,
    ):
        await ric.wait_for_cell_kpis()
        yield Scraped(ric, url)


async def test_prometheus_scrapes_the_runtime_with_matching_values(scraped: Scraped) -> None:
    """Through Prometheus' query API: the target is up, three nodes are connected and were set
    up, indications arrive at a positive rate and add up per node, the xApps' reports,
    handler times, states and subscriptions match the runtime, and the process is measured."""
    ric = scraped.ric
    await scraped.eventually("rate(ric_e2_indications_total[2s]) > 0", "an indication rate")
    assert await scraped.scalar('up{job="ric"}') == 1
    assert await scraped.scalar("ric_e2_nodes_connected") == len(ric.runtime.sessions) == 3
    assert await scraped.scalar('ric_e2_setups_total{outcome="accepted"}') == 3
    assert await scraped.scalar('ric_e2_setups_total{outcome="rejected"}') == 0
    assert await scraped.scalar("ric_ready") == 1

    # One query sees both series from the same scrape: the per-node counts add up to the
    # total, which cannot be ahead of what the runtime has counted by now.
    difference = "sum(ric_e2_node_indications_total) - sum(ric_e2_indications_total)"
    assert await scraped.scalar(difference) == 0
    assert 0 < await scraped.scalar("ric_e2_indications_total") <= ric.sensor.indication_count
    rates = await scraped.query("rate(ric_e2_node_indications_total[2s])")
    assert {r["metric"]["node"] for r in rates} == set(ric.runtime.sessions)

    for host in ric.runtime.hosts:
        xapp = f'{{xapp="{host.name}"}}'
        assert 0 < await scraped.scalar(f"ric_xapp_reports_total{xapp}") <= host.delivered
        assert await scraped.scalar(f"ric_xapp_reports_dropped_total{xapp}") == host.dropped
        assert await scraped.scalar(f"ric_xapp_restarts_total{xapp}") == 0
        assert await scraped.scalar(f"ric_xapp_handler_seconds_count{xapp}") > 0
        running = f'ric_xapp_state{{xapp="{host.name}",state="running"}}'
        assert await scraped.scalar(running) == 1

    active = [s for s in ric.runtime.subscriptions.snapshot() if s.state.value == "active"]
    assert await scraped.scalar("ric_e2_subscriptions_active") == len(active) > 0
    policy = ric.runtime.config.conflicts.policy
    assert await scraped.scalar(f'ric_conflicts_total{{policy="{policy}"}}') == 0
    outcomes = await scraped.query('ric_control_requests_total{xapp="mlb",action="handover"}')
    assert {r["metric"]["outcome"] for r in outcomes} >= {"acknowledged", "failed", "timed_out"}
    assert await scraped.scalar("process_resident_memory_bytes") > 0


async def test_prometheus_has_kpimon_cell_kpis(scraped: Scraped) -> None:
    """kpimon's per-cell KPIs reach Prometheus: one series per cell of the scenario, labelled
    with node and cell, PRB utilisation between 0 and 1, and the cells gauge matches."""
    prb = await scraped.eventually(
        f"count(xapp_kpimon_cell_prb_utilization_ratio) == {SMALL_CELLS}", "every cell's PRB use"
    )
    assert float(prb[0]["value"][1]) == SMALL_CELLS
    series = await scraped.query("xapp_kpimon_cell_prb_utilization_ratio")
    kpimon = scraped.ric.runtime.host("kpimon").instance
    assert isinstance(kpimon, KpiMonitor)
    for item in series:
        labels = item["metric"]
        assert labels["xapp"] == "kpimon"
        assert kpimon.node_of[labels["cell"]] == labels["node"]
        assert 0.0 <= float(item["value"][1]) <= 1.0
    assert await scraped.scalar('xapp_kpimon_cells{xapp="kpimon"}') == SMALL_CELLS
    throughput = await scraped.query("xapp_kpimon_cell_dl_throughput_bytes_per_second")
    assert len(throughput) == SMALL_CELLS


async def test_dashboard_series_exist_in_prometheus(scraped: Scraped) -> None:
    """Every metric the Grafana dashboard queries that has samples by now (all but the error,
    crash and limit counters, which stay empty until such an event) is in Prometheus."""
    await scraped.eventually("xapp_kpimon_cell_rrc_connections", "kpimon's cells")
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{scraped.prometheus}/api/v1/label/__name__/values") as response,
    ):
        names = set((await response.json())["data"])
    eventful = {
        "ric_e2_errors_total",
        "ric_e2_node_errors_total",
        "ric_xapp_crashes_total",
        "ric_xapp_limit_refusals_total",
    }
    assert sorted(dashboard_metrics() - eventful - names) == []


def alert_names() -> set[str]:
    """The alerts deploy/prometheus/alerts.yml defines."""
    groups = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}


async def test_prometheus_evaluates_the_shipped_alert_rules(scraped: Scraped) -> None:
    """Prometheus loads deploy/prometheus/alerts.yml with the shipped config and evaluates every
    rule against the live runtime without an error; RicDown stays inactive while it scrapes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(f"{scraped.prometheus}/api/v1/rules") as response:
                body = await response.json()
            rules = [r for g in body["data"]["groups"] for r in g["rules"]]
            if rules and all(not r["lastEvaluation"].startswith("0001-") for r in rules):
                break
            if loop.time() > deadline:
                pytest.fail(f"Prometheus never evaluated every rule: {rules}")
            await asyncio.sleep(0.1)
    assert {r["name"] for r in rules} == alert_names()
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []
    down = next(r for r in rules if r["name"] == "RicDown")
    assert down["state"] == "inactive", down
    assert await scraped.scalar('ric_readiness_check{check="sdl"}') == 1
    assert await scraped.scalar('ric_readiness_check{check="e2"}') == 1


async def test_prometheus_scrapes_a_runtime_that_protects_reads(tmp_path: Path) -> None:
    """With [http] protect_reads and a token file, Prometheus scraping with the shipped config
    and that token file gets the metrics (up 1, ready 1); with another token it gets none."""
    token = tmp_path / "http-token"
    token.write_text("a-token-of-32-characters-for-ric\n")
    overrides = {"http.protect_reads": True, "http.token_file": str(token)}
    async with running_ric(sim=False, overrides=overrides) as ric:
        async with aiohttp.ClientSession() as http, http.get(f"{ric.url}/metrics") as response:
            assert response.status == 401
        (tmp_path / "good").mkdir()
        async with prometheus_server(hostport(ric.url), tmp_path / "good", token) as url:
            scraped = Scraped(ric, url)
            await scraped.eventually('up{job="ric"} == 1', "a successful scrape")
            assert await scraped.scalar("ric_ready") == 1
            assert await scraped.scalar('ric_readiness_check{check="sdl"}') == 1
        (tmp_path / "bad").mkdir()
        async with prometheus_server(hostport(ric.url), tmp_path / "bad") as url:
            scraped = Scraped(ric, url)
            await scraped.eventually('up{job="ric"} == 0', "a refused scrape")
            assert await scraped.query("ric_ready") == []
