"""Prometheus metrics: sensor hooks, what is read from the runtime at scrape time, xApp metrics
through the SDK (in Prometheus and in memory), kpimon's cell KPIs, promtool and Grafana."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import prometheus_client as prom
import pytest
from kpimon import KpiMonitor
from prometheus_client.parser import text_string_to_metric_families

from ric import Handover, KpmReport, NodeInfo, Report, XApp
from ric.actions import Conflict, ControlOutcome, OutcomeKind
from ric.config import MetricsSettings
from ric.ids import CellId, NodeId, Plmn
from ric.metrics import PrometheusSensor
from ric.model import Cause, CauseCode, CellInfo
from ric.report import EntityKind
from ric.sensors import MemoryMetrics, SensorSet
from ric.testing import make_report, start_xapp
from ric.types import Counter, Metrics, MetricsProvider
from tests.conftest import wait_for
from tests.integration.stack import (
    DASHBOARD,
    ROOT,
    dashboard_metrics,
    running_ric,
    tool,
    xapp_plugins,
)


def value(sensor: PrometheusSensor, name: str, **labels: str) -> float | None:
    """One sample's value from the sensor's registry (None when there is no such sample)."""
    return sensor.registry.get_sample_value(name, labels)


def handover() -> Handover:
    """A handover to count."""
    return Handover(ue="7", cell_id="001-01-1", target_cell="001-01-2")


async def test_hooks_become_metrics() -> None:
    """Each sensor hook moves its metric: nodes, setups, errors by cause, indications,
    handler and control histograms, controls by outcome, conflicts, late answers, limits."""
    sensor = PrometheusSensor(process=False)
    node = NodeInfo(NodeId(Plmn("001", "01"), 1), "acme", "1.0", {})
    sensor.node_connected(node)
    sensor.node_connected(node)
    sensor.node_disconnected(node, "gone")
    sensor.setup_result(True, "gnb-001-01-1", None)
    sensor.setup_result(False, "?", Cause(CauseCode.MISC_DUPLICATE_NODE_ID))
    sensor.e2_error("gnb-001-01-1", Cause(CauseCode.RIC_REQUEST_ID_UNKNOWN, "who?"))
    sensor.indications("gnb-001-01-1", 5)
    sensor.handler_finished("app", 0.0003)
    ok = ControlOutcome(OutcomeKind.ACKNOWLEDGED, handover(), latency_s=0.002)
    timed_out = ControlOutcome(OutcomeKind.TIMED_OUT, handover(), latency_s=1.0)
    sensor.control_finished("app", ok)
    sensor.control_finished("app", timed_out)
    sensor.conflict(
        Conflict("priority", "ue:7", "serving_cell", "a", handover(), "b", handover(), "a", 0.0)
    )
    sensor.late_answer("gnb-001-01-1")
    sensor.limit_reached("app", "controls_per_s")

    assert value(sensor, "ric_e2_nodes_connected") == 1
    assert value(sensor, "ric_e2_setups_total", outcome="accepted") == 1
    assert value(sensor, "ric_e2_setups_total", outcome="rejected") == 1
    assert value(sensor, "ric_e2_errors_total", cause="ric_request_id_unknown") == 1
    assert value(sensor, "ric_e2_indications_total") == 5
    assert value(sensor, "ric_xapp_handler_seconds_bucket", xapp="app", le="0.0005") == 1
    assert value(sensor, "ric_xapp_handler_seconds_bucket", xapp="app", le="0.00025") == 0
    assert value(sensor, "ric_xapp_handler_seconds_count", xapp="app") == 1
    for outcome in ("acknowledged", "timed_out"):
        labels = {"xapp": "app", "action": "handover", "outcome": outcome}
        assert value(sensor, "ric_control_requests_total", **labels) == 1
    # Only answered controls have a round trip worth a latency: the timeout is not observed.
    assert value(sensor, "ric_control_latency_seconds_count", action="handover") == 1
    assert value(sensor, "ric_control_latency_seconds_sum", action="handover") == 0.002
    assert value(sensor, "ric_conflicts_total", policy="priority") == 1
    assert value(sensor, "ric_control_late_answers_total") == 1
    assert value(sensor, "ric_xapp_limit_refusals_total", xapp="app", limit="controls_per_s") == 1
    assert value(sensor, "process_resident_memory_bytes") is None  # process=False


def test_each_sensor_has_its_own_registry() -> None:
    """Two sensors never share values, and neither touches prometheus_client's global one."""
    first, second = PrometheusSensor(), PrometheusSensor()
    first.indications("n", 3)
    assert value(first, "ric_e2_indications_total") == 3
    assert value(second, "ric_e2_indications_total") == 0
    assert prom.REGISTRY.get_sample_value("ric_e2_indications_total") is None
    assert value(first, "process_resident_memory_bytes")
    injected = prom.CollectorRegistry()
    assert PrometheusSensor(registry=injected).registry is injected


def test_per_node_series_are_opt_in() -> None:
    """Per-node indication counts exist only with [metrics] per_node."""
    off, on = PrometheusSensor(process=False), PrometheusSensor(MetricsSettings(per_node=True))
    for sensor in (off, on):
        sensor.indications("gnb-001-01-1", 2)
    assert value(off, "ric_e2_node_indications_total", node="gnb-001-01-1") is None
    assert value(on, "ric_e2_node_indications_total", node="gnb-001-01-1") == 2


async def test_runtime_state_is_read_at_scrape_time() -> None:
    """Queues, deliveries, drops, restarts, states, subscriptions and nodes come from the
    runtime itself when scraped, and declared controls have zero series from the start."""
    async with running_ric("kpimon", "mlb") as ric:
        await ric.wait_for_cell_kpis()
        sensor, runtime = ric.sensor, ric.runtime
        for host in runtime.hosts:
            assert value(sensor, "ric_xapp_reports_total", xapp=host.name) == host.delivered > 0
            assert value(sensor, "ric_xapp_reports_dropped_total", xapp=host.name) == host.dropped
            assert value(sensor, "ric_xapp_queue_depth", xapp=host.name) == host.queue_depth
            assert value(sensor, "ric_xapp_queue_capacity", xapp=host.name) == 256
            assert value(sensor, "ric_xapp_restarts_total", xapp=host.name) == 0
            assert value(sensor, "ric_xapp_state", xapp=host.name, state="running") == 1
            assert value(sensor, "ric_xapp_state", xapp=host.name, state="failed") == 0
        active = [s for s in runtime.subscriptions.snapshot() if s.state.value == "active"]
        assert value(sensor, "ric_e2_subscriptions_active") == len(active) > 0
        assert value(sensor, "ric_e2_nodes_connected") == 3
        assert value(sensor, "ric_e2_setups_total", outcome="accepted") == 3
        assert value(sensor, "ric_ready") == 1
        info = {
            "node": "gnb-001-01-2",
            "vendor": "Globex Networks",
            "software_version": "GX-RAN 21.4.0",
        }
        assert value(sensor, "ric_e2_node_info", **info) == 1
        assert value(sensor, "ric_e2_node_cells", node="gnb-001-01-1") == 2
        zero = {"xapp": "mlb", "action": "handover", "outcome": "not_connected"}
        assert value(sensor, "ric_control_requests_total", **zero) == 0
        assert value(sensor, "ric_control_latency_seconds_count", action="handover") is not None
        policy = runtime.config.conflicts.policy
        assert value(sensor, "ric_conflicts_total", policy=policy) == 0
        total = value(sensor, "ric_e2_indications_total")
        per_node = sum(
            value(sensor, "ric_e2_node_indications_total", node=n) or 0 for n in runtime.sessions
        )
        assert total == per_node > 0


# -- xApp metrics ------------------------------------------------------------------------------


def test_xapp_metrics_are_prefixed_and_labelled_with_the_xapp() -> None:
    """An xApp's counter, gauge and histogram become xapp_<name>_... with label xapp; a
    counter gets _total; a name-dashed xApp gets underscores."""
    sensor = PrometheusSensor(process=False)
    metrics = sensor.xapp_metrics("traffic-steer")
    metrics.counter("handovers_total", "Handovers sent.").inc(2)
    metrics.gauge("load", "Load.", ["slice"]).labels(slice="1-000001").set(0.5)
    hist = metrics.histogram("decide_seconds", "Decision time.", buckets=[0.1, 1.0])
    hist.observe(0.05)
    assert value(sensor, "xapp_traffic_steer_handovers_total", xapp="traffic-steer") == 2
    labels = {"xapp": "traffic-steer", "slice": "1-000001"}
    assert value(sensor, "xapp_traffic_steer_load", **labels) == 0.5
    bucket = {"xapp": "traffic-steer", "le": "0.1"}
    assert value(sensor, "xapp_traffic_steer_decide_seconds_bucket", **bucket) == 1
    assert sensor.xapp_metrics("traffic-steer") is metrics


@pytest.mark.parametrize(
    "make",
    [lambda: PrometheusSensor(process=False).xapp_metrics("x"), lambda: MemoryMetrics("x")],
    ids=["prometheus", "memory"],
)
def test_declarations_are_checked_the_same_everywhere(make: Callable[[], Metrics]) -> None:
    """Both implementations return the same metric on a second declaration and refuse bad
    names, reserved or duplicate labels, a changed type or labels, wrong label sets,
    unlabelled updates of a labelled metric and a counter going down, naming the metric."""
    metrics = make()
    counter = metrics.counter("hits", "Hits.", ["cell"])
    assert metrics.counter("hits", "Hits.", ["cell"]) is counter
    bad: list[tuple[Callable[[], object], str]] = [
        (lambda: metrics.gauge("Bad-Name", "x"), "must be snake_case"),
        (lambda: metrics.gauge("g", "x", ["xapp"]), "label 'xapp' is reserved"),
        (lambda: metrics.gauge("g", "x", ["a", "a"]), "declared twice"),
        (lambda: metrics.gauge("g", "x", "cell"), "got the string 'cell'"),
        (lambda: metrics.gauge("hits", "x", ["cell"]), "already declared as a counter"),
        (lambda: metrics.counter("hits", "x", ["node"]), "already declared as a counter"),
        (lambda: counter.labels(node="1"), "has labels ('cell',), got ('node',)"),
        (lambda: counter.inc(), "call .labels(...) first"),
        (lambda: counter.labels(cell="1").inc(-1), "only goes up"),
        (lambda: counter.labels(cell="1").labels(cell="2"), "already has its labels"),
    ]
    for call, needle in bad:
        with pytest.raises(ValueError, match=re.escape(needle)) as info:
            call()
        assert "xApp x" in str(info.value)


def test_cell_and_node_series_are_opt_in() -> None:
    """xApp series with a cell label need [metrics] per_cell, with a node label per_node;
    the xApp's code does not change, the series just are not there."""
    for per_cell in (False, True):
        sensor = PrometheusSensor(MetricsSettings(per_cell=per_cell), process=False)
        metrics = sensor.xapp_metrics("k")
        metrics.gauge("prb", "PRB.", ["node", "cell"]).labels(node="n", cell="c").set(1)
        metrics.gauge("up", "Up.", ["node"]).labels(node="n").set(1)
        metrics.gauge("cells", "Cells.").set(4)
        got = value(sensor, "xapp_k_prb", xapp="k", node="n", cell="c")
        assert got == (1 if per_cell else None)
        assert value(sensor, "xapp_k_up", xapp="k", node="n") is None
        assert value(sensor, "xapp_k_cells", xapp="k") == 4


def test_series_beyond_the_limit_are_dropped_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    """A metric stops at [metrics] max_series label sets; more are counted, warned once."""
    sensor = PrometheusSensor(MetricsSettings(max_series=2, per_cell=True), process=False)
    gauge = sensor.xapp_metrics("k").gauge("g", "G.", ["cell"])
    with caplog.at_level(logging.WARNING, logger="ric.metrics"):
        for cell in "abcd":
            gauge.labels(cell=cell).set(1)
        gauge.labels(cell="a").set(2)  # an existing series still updates
    assert value(sensor, "xapp_k_g", xapp="k", cell="a") == 2
    assert value(sensor, "xapp_k_g", xapp="k", cell="c") is None
    assert value(sensor, "ric_xapp_metric_series_refused_total", xapp="k") == 2
    assert [r.getMessage() for r in caplog.records] == [
        "xApp k: metric g reached 2 series; new label sets are dropped"
    ]


def test_removed_series_leave_the_exposition() -> None:
    """remove() forgets one label set's series, in Prometheus and in memory."""
    sensor = PrometheusSensor(MetricsSettings(per_cell=True), process=False)
    memory = MemoryMetrics("k")
    for metrics in (sensor.xapp_metrics("k"), memory):
        gauge = metrics.gauge("g", "G.", ["cell"])
        gauge.labels(cell="a").set(1)
        gauge.labels(cell="b").set(2)
        gauge.remove(cell="a")
        gauge.remove(cell="never")
    assert value(sensor, "xapp_k_g", xapp="k", cell="a") is None
    assert value(sensor, "xapp_k_g", xapp="k", cell="b") == 2
    assert memory.series("g") == [{"cell": "b"}]


def test_memory_metrics_can_be_read_back() -> None:
    """In memory, counters and gauges have values, histograms a count and a sum, and reading
    something that does not exist names it."""
    memory = MemoryMetrics("k")
    memory.counter("c", "C.").inc(3)
    memory.histogram("h", "H.", ["a"]).labels(a="1").observe(0.5)
    assert memory.value("c") == 3
    assert memory.observations("h", a="1") == (1, 0.5)
    assert memory.names() == ["c", "h"]
    with pytest.raises(KeyError, match="declared no metric 'nope'"):
        memory.value("nope")
    with pytest.raises(KeyError, match="has no series"):
        memory.observations("h", a="2")
    with pytest.raises(ValueError, match="is a histogram"):
        memory.value("h", a="1")


def test_sensor_set_gives_each_xapp_one_metrics_object() -> None:
    """The sensor set asks the first metrics provider, else keeps metrics in memory, and
    answers with the same object for the same xApp."""
    sensor = PrometheusSensor(process=False)
    assert isinstance(sensor, MetricsProvider)
    with_prom, plain = SensorSet([sensor]), SensorSet([])
    assert with_prom.xapp_metrics("a") is sensor.xapp_metrics("a")
    assert isinstance(plain.xapp_metrics("a"), MemoryMetrics)
    assert plain.xapp_metrics("a") is plain.xapp_metrics("a")


class Counting(XApp):
    """Counts its reports in a metric of its own, and raises on the first one."""

    name = "counting"
    reports = [Report("RRU.PrbUsedDl", period_ms=1000)]
    raised = False
    seen: Counter

    async def on_start(self) -> None:
        self.seen = self.metrics.counter("reports", "Reports seen.")

    async def on_report(self, report: KpmReport) -> None:
        self.seen.inc()
        if not Counting.raised:
            Counting.raised = True
            raise RuntimeError("first report")


async def test_xapp_metrics_reach_prometheus_and_survive_restarts() -> None:
    """An xApp's own counter is in the runtime's exposition, and after the xApp raised and was
    restarted its new instance counts on in the same series."""
    Counting.raised = False
    overrides = {"xapps.restart_min_s": 0.01}
    async with running_ric(*xapp_plugins(Counting), overrides=overrides) as ric:
        host = ric.runtime.host("counting")
        await wait_for(lambda: host.restarts == 1 and host.delivered >= 3, what="a restart")
        await wait_for(
            lambda: (value(ric.sensor, "xapp_counting_reports_total", xapp="counting") or 0) >= 2
        )
        assert value(ric.sensor, "ric_xapp_restarts_total", xapp="counting") == 1
        assert value(ric.sensor, "ric_xapp_crashes_total", xapp="counting") == 1


# -- kpimon ------------------------------------------------------------------------------------


async def test_kpimon_exports_cell_kpis_in_base_units() -> None:
    """kpimon's gauges carry each cell's KPIs in base units (ratio, bytes/s, seconds), skip
    what a node does not report, and forget a node's cells when it goes down."""
    app, ctx = await start_xapp(KpiMonitor, {"print_every_s": 0})
    main = {
        "RRU.PrbUsedDl": [53.0],
        "RRU.PrbAvailDl": [106.0],
        "DRB.UEThpDl": [12_000.0],
        "DRB.UEThpUl": [2_000.0],
        "RRC.ConnMean": [12.0],
    }
    node = "gnb-001-01-1"
    await app.on_report(make_report(node, EntityKind.CELL, main, ["001-01-1"]))
    cell = {"node": node, "cell": "001-01-1"}
    metrics = ctx.metrics
    assert metrics.value("cell_prb_utilization_ratio", **cell) == 0.5
    assert metrics.value("cell_dl_throughput_bytes_per_second", **cell) == 1_500_000
    assert metrics.value("cell_ul_throughput_bytes_per_second", **cell) == 250_000
    assert metrics.value("cell_rrc_connections", **cell) == 12
    assert metrics.series("cell_rlc_delay_seconds") == []
    await app.on_report(
        make_report(node, EntityKind.CELL, {"DRB.RlcSduDelayDl": [25.0]}, ["001-01-1"])
    )
    assert math.isclose(metrics.value("cell_rlc_delay_seconds", **cell), 0.0025)
    assert metrics.value("cells") == 1
    info = CellInfo(CellId(Plmn("001", "01"), 1), pci=1, band=78, bandwidth_prbs=106)
    await app.on_node_down(NodeInfo(NodeId(Plmn("001", "01"), 1), "v", "1", {}, {info.id: info}))
    assert metrics.series("cell_prb_utilization_ratio") == []
    assert metrics.value("cells") == 0


# -- the exposition as a whole -------------------------------------------------------------


async def exposition(url: str) -> str:
    """GET /metrics as Prometheus' text format."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
        assert response.status == 200
        return await response.text()


async def test_promtool_accepts_the_exposition() -> None:
    """`promtool check metrics` finds no error and no lint problem in a live runtime's
    exposition, with kpimon's and mlb's metrics and per-node and per-cell series in it."""
    promtool = tool("promtool")
    async with running_ric("kpimon", "mlb") as ric:
        await ric.wait_for_cell_kpis()
        text = await exposition(ric.url)
    assert "xapp_kpimon_cell_prb_utilization_ratio{" in text and "ric_e2_node_info{" in text
    proc = await asyncio.create_subprocess_exec(
        promtool,
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate(text.encode())
    assert (proc.returncode, out.decode()) == (0, "")


async def test_every_dashboard_metric_is_exposed() -> None:
    """Each metric the Grafana dashboard queries is in the exposition of a runtime running
    the example xApps with per-node and per-cell series on."""
    wanted = dashboard_metrics()
    assert {"ric_e2_nodes_connected", "xapp_kpimon_cell_prb_utilization_ratio"} <= wanted
    async with running_ric("kpimon", "mlb", sim=False) as ric:
        text = await exposition(ric.url)
    exposed: set[str] = set()
    for family in text_string_to_metric_families(text):
        exposed.add(family.name)
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
        exposed |= {family.name + s for s in suffixes.get(family.type, [])}
    assert sorted(wanted - exposed) == []


def test_grafana_and_prometheus_provisioning_files_are_well_formed() -> None:
    """The Grafana datasource and dashboard providers are provisioning v1 files naming the
    dashboard's datasource, and the dashboard has a stable uid."""
    import yaml

    grafana = ROOT / "deploy" / "grafana" / "provisioning"
    datasources = yaml.safe_load((grafana / "datasources" / "prometheus.yml").read_text())
    assert datasources["apiVersion"] == 1
    (source,) = datasources["datasources"]
    assert (source["type"], source["uid"]) == ("prometheus", "prometheus")
    providers = yaml.safe_load((grafana / "dashboards" / "ric.yml").read_text())
    assert providers["providers"][0]["type"] == "file"
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "ric-overview"
    assert dashboard["templating"]["list"][0]["current"]["value"] == source["uid"]


async def test_promtool_accepts_the_scrape_config(tmp_path: Path) -> None:
    """deploy/prometheus/prometheus.yml is a valid Prometheus configuration (its rules too),
    with the token file compose mounts put where it points here."""
    promtool = tool("promtool")
    shipped = ROOT / "deploy" / "prometheus"
    token = tmp_path / "ric-http-token"
    token.write_text("a-token-of-at-least-16-characters")
    config = (shipped / "prometheus.yml").read_text()
    assert "credentials_file: /run/secrets/ric-http-token" in config
    (tmp_path / "prometheus.yml").write_text(
        config.replace("/run/secrets/ric-http-token", str(token))
    )
    (tmp_path / "alerts.yml").write_text((shipped / "alerts.yml").read_text())
    proc = await asyncio.create_subprocess_exec(
        promtool,
        "check",
        "config",
        str(tmp_path / "prometheus.yml"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()


async def test_the_core_does_not_import_prometheus() -> None:
    """Importing the runtime, the SDK, the fakes and the simulator loads neither
    prometheus_client nor aiohttp: only ric.metrics and ric.http do."""
    code = (
        "import sys, ric, ric.runtime, ric.testing, ric.sim, ric.cli;"
        "print(sorted(m for m in ('prometheus_client', 'aiohttp') if m in sys.modules))"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert (proc.returncode, out.decode().strip()) == (0, "[]")
