"""Prometheus metrics of the runtime and of its xApps, through the sensor interface.

::

    sensor = PrometheusSensor(config.metrics)          # its own CollectorRegistry
    async with Runtime(config, plugins, sensors=[sensor], components=[sensor, http]):
        ...                                            # ric.http serves sensor.registry

(``Runtime.from_config`` builds both from ``[http]``.) Components export their own counts
through the ``stats_added`` hook (the MQTT bridge's ``ric_mqtt_*``).

The core never imports ``prometheus_client``: it calls sensor hooks, and this module turns
them into metrics. The hot path stays cheap: indications and handler times are counted in
plain Python numbers, and what the runtime already counts (queue depth, reports delivered
and dropped, restarts, subscriptions) is read from it when Prometheus scrapes, by a custom
collector. Rare events (setups, errors, crashes, conflicts) use ordinary counters.

Series that grow with the network are opt-in (``[metrics] per_node``, ``per_cell``), so a RIC
with 1,000 nodes exposes a bounded number of series by default. xApps declare their own
metrics through ``XApp.metrics``; here they become ``xapp_<name>_<metric>{xapp="<name>"}``.
"""

from __future__ import annotations

import bisect
import collections
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import prometheus_client as prom
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ric.actions import OutcomeKind
from ric.config import MetricsSettings
from ric.e2.session import E2_REFUSAL_REASONS, VALUE_REPLACEMENT_REASONS
from ric.host import XAppState
from ric.sensors import MetricFamily, MetricSeries, XAppMetricsBase
from ric.types import Check, Sensor

if TYPE_CHECKING:
    from ric.actions import Conflict, ControlOutcome
    from ric.model import Cause, NodeInfo
    from ric.types import StatSample
    from ric.view import RuntimeView

__all__ = [
    "CONTROL_BUCKETS",
    "HANDLER_BUCKETS",
    "PrometheusSensor",
    "PrometheusXAppMetrics",
]

log = logging.getLogger(__name__)

HANDLER_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Upper bounds (seconds) of ``ric_xapp_handler_seconds``: 100 us to 10 s, near-RT scale."""

CONTROL_BUCKETS = (
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
"""Upper bounds (seconds) of ``ric_control_latency_seconds``."""

LOOP_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
"""Upper bounds (seconds) of ``ric_event_loop_lag_seconds``; 0.1 is the stall budget, so the
number of beats later than it in a window is two bucket readings apart."""

_ANSWERED = frozenset({OutcomeKind.ACKNOWLEDGED.value, OutcomeKind.FAILED.value})
"""Outcomes that a node answered: only these have a round-trip latency worth observing."""

_XAPP_STATES = tuple(state.value for state in XAppState)


class _FastHistogram:
    """A histogram counted in plain numbers: one bisect and two additions per observation."""

    __slots__ = ("bounds", "counts", "les", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.les = [repr(float(b)) for b in self.bounds]
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def add_to(self, family: HistogramMetricFamily, labels: Sequence[str]) -> None:
        cumulative = 0
        buckets: list[tuple[str, float]] = []
        for le, count in zip(self.les, self.counts, strict=False):
            cumulative += count
            buckets.append((le, cumulative))
        buckets.append(("+Inf", cumulative + self.counts[-1]))
        family.add_metric(list(labels), buckets, self.sum)


class _RecentMax:
    """The largest value seen in the last ``window_s``, in ten slots (so a value leaves the
    window at most a tenth of it late): two comparisons per observation."""

    __slots__ = ("current", "end", "slot", "slots", "window")

    def __init__(self, window_s: float) -> None:
        self.window = window_s
        self.slot = window_s / 10.0
        self.slots: collections.deque[tuple[float, float]] = collections.deque(maxlen=11)
        self.end = 0.0
        self.current = 0.0

    def observe(self, value: float, now: float) -> None:
        if now >= self.end:
            if self.current > 0.0:
                self.slots.append((self.end, self.current))
            self.end = now + self.slot
            self.current = 0.0
        if value > self.current:
            self.current = value

    def value(self, now: float) -> float:
        since = now - self.window
        recent = [v for end, v in self.slots if end > since]
        if self.end > since:
            recent.append(self.current)
        return max(recent, default=0.0)


class _RuntimeCollector(Collector):
    """What the runtime already counts, and the sensor's hot-path numbers, read at scrape."""

    def __init__(self, sensor: PrometheusSensor) -> None:
        self._sensor = sensor

    def describe(self) -> Iterable[Metric]:
        return list(self.collect())

    def collect(self) -> Iterator[Metric]:
        sensor = self._sensor
        runtime = sensor.runtime
        per_node = sensor.settings.per_node

        family = CounterMetricFamily(
            "ric_e2_indications", "E2 indications received from all nodes.", labels=[]
        )
        family.add_metric([], sensor.indication_count)
        yield family
        if per_node:
            family = CounterMetricFamily(
                "ric_e2_node_indications",
                "E2 indications received per node (opt-in: [metrics] per_node).",
                labels=["node"],
            )
            for node, count in sorted(sensor.indications_by_node.items()):
                family.add_metric([node], count)
            yield family
            for name, doc, counts in (
                (
                    "ric_e2_node_refused",
                    "E2 refusals per node and reason (opt-in: [metrics] per_node).",
                    sensor.refused_by_node,
                ),
                (
                    "ric_e2_node_values_replaced",
                    "Indication values replaced by NaN per node and reason "
                    "(opt-in: [metrics] per_node).",
                    sensor.replaced_by_node,
                ),
            ):
                family = CounterMetricFamily(name, doc, labels=["node", "reason"])
                for (node, reason), count in sorted(counts.items()):
                    family.add_metric([node, reason], count)
                yield family

        handlers = dict(sensor.handler_seconds)
        latencies = dict(sensor.control_latency)
        controls = dict.fromkeys(sensor.declared_controls(), 0)
        controls.update(sensor.control_counts)
        if runtime is not None:
            for host in runtime.hosts:
                handlers.setdefault(host.name, _FastHistogram(HANDLER_BUCKETS))
            for _, action, _ in controls:
                latencies.setdefault(action, _FastHistogram(CONTROL_BUCKETS))
        histogram = HistogramMetricFamily(
            "ric_xapp_handler_seconds",
            "Time the xApp's on_report handler took per report.",
            labels=["xapp"],
        )
        for xapp, values in sorted(handlers.items()):
            values.add_to(histogram, [xapp])
        yield histogram
        histogram = HistogramMetricFamily(
            "ric_control_latency_seconds",
            "Round trip of controls a node answered (acknowledged or failed).",
            labels=["action"],
        )
        for action, values in sorted(latencies.items()):
            values.add_to(histogram, [action])
        yield histogram
        family = CounterMetricFamily(
            "ric_control_requests",
            "Control actions by xApp, action kind and outcome.",
            labels=["xapp", "action", "outcome"],
        )
        for key, count in sorted(controls.items()):
            family.add_metric(list(key), count)
        yield family
        yield from self._xapps(runtime)
        yield from self._e2(runtime, per_node)
        yield from self._loop()

    def _loop(self) -> Iterator[Metric]:
        sensor = self._sensor
        histogram = HistogramMetricFamily(
            "ric_event_loop_lag_seconds",
            "How late the watchdog's beat ran on the event loop (every [loop] tick_ms).",
            labels=[],
        )
        sensor.loop_lag_seconds.add_to(histogram, [])
        longest = GaugeMetricFamily(
            "ric_event_loop_longest_stall_seconds",
            "The longest time the event loop was held (the latest beat), since start.",
            labels=[],
        )
        longest.add_metric([], sensor.loop_longest)
        recent = GaugeMetricFamily(
            "ric_event_loop_recent_longest_stall_seconds",
            "The longest time the event loop was held in the last [loop] recent_window_s.",
            labels=[],
        )
        recent.add_metric([], sensor.loop_recent.value(time.monotonic()))
        yield from (histogram, longest, recent)

    def _xapps(self, runtime: RuntimeView | None) -> Iterator[Metric]:
        xapp = ["xapp"]
        reports = CounterMetricFamily(
            "ric_xapp_reports", "Reports delivered into the xApp's queue.", labels=xapp
        )
        dropped = CounterMetricFamily(
            "ric_xapp_reports_dropped",
            "Reports dropped because the xApp's queue was full (oldest first) or it stopped.",
            labels=xapp,
        )
        depth = GaugeMetricFamily(
            "ric_xapp_queue_depth", "Reports waiting for the xApp's handler.", labels=xapp
        )
        capacity = GaugeMetricFamily(
            "ric_xapp_queue_capacity",
            "Reports the xApp's queue holds before it drops the oldest.",
            labels=xapp,
        )
        restarts = CounterMetricFamily(
            "ric_xapp_restarts", "Restarts of the xApp after it raised.", labels=xapp
        )
        states = GaugeMetricFamily(
            "ric_xapp_state",
            "1 for the xApp's current state, 0 for the others.",
            labels=["xapp", "state"],
        )
        info = GaugeMetricFamily(
            "ric_xapp_info",
            "1 per loaded xApp, labelled with its version and isolation mode.",
            labels=["xapp", "version", "mode"],
        )
        if runtime is not None:
            queue_size = runtime.config.xapps.queue_size
            for host in runtime.hosts:
                name = [host.name]
                reports.add_metric(name, host.delivered)
                dropped.add_metric(name, host.dropped)
                depth.add_metric(name, host.queue_depth)
                capacity.add_metric(name, queue_size or host.cls.queue_size)
                restarts.add_metric(name, host.restarts)
                state = host.state.value
                for candidate in _XAPP_STATES:
                    states.add_metric([host.name, candidate], float(candidate == state))
                info.add_metric([host.name, host.cls.version, host.mode], 1.0)
        yield from (reports, dropped, depth, capacity, restarts, states, info)

    def _e2(self, runtime: RuntimeView | None, per_node: bool) -> Iterator[Metric]:
        active = GaugeMetricFamily(
            "ric_e2_subscriptions_active",
            "E2 subscriptions the nodes have admitted and report on.",
            labels=[],
        )
        by_state = GaugeMetricFamily(
            "ric_e2_subscriptions", "E2 subscriptions by state.", labels=["state"]
        )
        ready = GaugeMetricFamily(
            "ric_ready", "1 when every readiness check passes (as GET /readyz).", labels=[]
        )
        # One series per check, so an alert can say which one fails (sdl, mqtt, xapp:<name>).
        check = GaugeMetricFamily(
            "ric_readiness_check",
            "1 when the readiness check passes, 0 when it fails (as GET /readyz lists them).",
            labels=["check"],
        )
        info = GaugeMetricFamily(
            "ric_e2_node_info",
            "1 per connected node, with its vendor and software (opt-in: [metrics] per_node).",
            labels=["node", "vendor", "software_version"],
        )
        cells = GaugeMetricFamily(
            "ric_e2_node_cells",
            "Cells of each connected node (opt-in: [metrics] per_node).",
            labels=["node"],
        )
        since = GaugeMetricFamily(
            "ric_e2_node_connected_since_seconds",
            "Unix time each connected node set up (opt-in: [metrics] per_node).",
            labels=["node"],
        )
        if runtime is not None:
            states: dict[str, int] = {}
            for sub in runtime.subscriptions.snapshot():
                state = str(sub.state.value)
                states[state] = states.get(state, 0) + 1
            active.add_metric([], states.get("active", 0))
            for state, count in sorted(states.items()):
                by_state.add_metric([state], count)
            checks = runtime.checks()
            ready.add_metric([], float(all(c.ok for c in checks)))
            # A name twice (two components of a kind) would be a duplicate series Prometheus
            # refuses with the whole scrape: one series per name, failing when any fails.
            passing: dict[str, bool] = {}
            for c in checks:
                passing[c.name] = passing.get(c.name, True) and c.ok
            for name, ok in sorted(passing.items()):
                check.add_metric([name], float(ok))
            if per_node:
                for node_id, session in sorted(runtime.sessions.items()):
                    node = session.info
                    info.add_metric([node_id, node.vendor, node.software_version], 1)
                    cells.add_metric([node_id], len(node.cells))
                    since.add_metric([node_id], session.connected_at)
        yield from (active, by_state, ready, check)
        if per_node:
            yield from (info, cells, since)


class _StatsCollector(Collector):
    """A component's own statistics (``Sensor.stats_added``) as metric families, read when
    scraped: the component counts in plain numbers and never imports prometheus_client."""

    def __init__(self, samples: Callable[[], Iterable[StatSample]]) -> None:
        self._samples = samples

    def describe(self) -> Iterable[Metric]:
        return list(self.collect())

    def collect(self) -> Iterator[Metric]:
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
        for name, kind, doc, labels, value in self._samples():
            family = families.get(name)
            if family is None:
                cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
                family = families[name] = cls(name, doc, labels=list(labels))
            family.add_metric(list(labels.values()), float(value))
        yield from families.values()


class PrometheusSensor(Sensor):
    """Runtime events as Prometheus metrics, in ``registry`` (a fresh one by default).

    Pass it as a sensor (events) and as a component (so that it reads the runtime's queues,
    subscriptions and readiness when scraped). ``process=False`` leaves out the process and
    platform collectors. It also gives xApps their metrics (``xapp_metrics``).
    """

    name = "metrics"

    def __init__(
        self,
        settings: MetricsSettings | None = None,
        *,
        registry: prom.CollectorRegistry | None = None,
        process: bool = True,
    ) -> None:
        self.settings = settings or MetricsSettings()
        self.registry = registry if registry is not None else prom.CollectorRegistry()
        self.runtime: RuntimeView | None = None
        self._stats: dict[str, _StatsCollector] = {}  # by source, from stats_added
        # Hot-path numbers, read by the collector at scrape time.
        self.indication_count = 0
        self.indications_by_node: dict[str, int] = {}
        # Per (node, reason), kept only with [metrics] per_node.
        self.refused_by_node: dict[tuple[str, str], int] = {}
        self.replaced_by_node: dict[tuple[str, str], int] = {}
        self.handler_seconds: dict[str, _FastHistogram] = {}
        self.loop_lag_seconds = _FastHistogram(LOOP_BUCKETS)
        self.loop_longest = 0.0
        self.loop_recent = _RecentMax(60.0)
        self.control_counts: dict[tuple[str, str, str], int] = {}
        self.control_latency: dict[str, _FastHistogram] = {}
        self._xapps: dict[str, PrometheusXAppMetrics] = {}
        r = self.registry
        self.nodes_connected = prom.Gauge(
            "ric_e2_nodes_connected", "E2 nodes with a set-up session.", registry=r
        )
        self.setups = prom.Counter(
            "ric_e2_setups", "E2 setup requests by outcome.", ["outcome"], registry=r
        )
        for outcome in ("accepted", "rejected"):
            self.setups.labels(outcome)
        self.errors = prom.Counter(
            "ric_e2_errors",
            "Bad E2 messages the RIC answered with an error, by cause.",
            ["cause"],
            registry=r,
        )
        self.refused = prom.Counter(
            "ric_e2_refused",
            "E2 messages or indications refused for a bound or a mismatch with their "
            "subscription, by reason; each answered with an ErrorIndication naming it.",
            ["reason"],
            registry=r,
        )
        for reason in E2_REFUSAL_REASONS:
            self.refused.labels(reason)
        self.tls_failures = prom.Counter(
            "ric_e2_tls_failures",
            "TLS handshakes on the E2 port that failed, by reason (what gRPC's core logged; "
            "the peer is not reported). Counted by `ric run` with E2 TLS on.",
            ["reason"],
            registry=r,
        )
        self.replaced = prom.Counter(
            "ric_e2_values_replaced",
            "Indication values outside the contract (infinite, or beyond +-1e15) replaced by "
            "NaN, by reason.",
            ["reason"],
            registry=r,
        )
        for reason in VALUE_REPLACEMENT_REASONS:
            self.replaced.labels(reason)
        self.node_errors = prom.Counter(
            "ric_e2_node_errors",
            "Error indications nodes sent to the RIC, by cause.",
            ["cause"],
            registry=r,
        )
        self.subscription_changes = prom.Counter(
            "ric_e2_subscription_changes",
            "E2 subscription state changes (active, failed, deleted, node_lost, ...).",
            ["state"],
            registry=r,
        )
        self.loop_stalls = prom.Counter(
            "ric_event_loop_stalls",
            "Times the event loop was held longer than [loop] stall_warning_ms (each logged "
            "naming what ran).",
            registry=r,
        )
        self.overruns = prom.Counter(
            "ric_xapp_handler_overruns",
            "xApp handler calls (reports, events, timers) over [xapps] handler_budget_ms.",
            ["xapp"],
            registry=r,
        )
        self.publish_refused = prom.Counter(
            "ric_xapp_publish_refused",
            "XApp.publish payloads refused and not sent, by reason (too_large: over [xapps] "
            "max_publish_bytes; unencodable: not JSON).",
            ["xapp", "reason"],
            registry=r,
        )
        self.crashes = prom.Counter(
            "ric_xapp_crashes", "Exceptions raised by the xApp's handlers.", ["xapp"], registry=r
        )
        self.limits = prom.Counter(
            "ric_xapp_limit_refusals",
            "Requests refused because the xApp reached a limit.",
            ["xapp", "limit"],
            registry=r,
        )
        self.a1_notifications = prom.Counter(
            "ric_a1_notifications",
            "A1 policy status notifications to non-RT RICs, by outcome (sent, failed after "
            "every retry, dropped with the queue of [a1] notify_queue full).",
            ["outcome"],
            registry=r,
        )
        self.http_refusals = prom.Counter(
            "ric_http_refused",
            "HTTP requests refused at a bound ([http] max_connections, max_in_flight, "
            "max_body_bytes, max_json_depth, max_json_values; non-finite numbers; [a1] "
            "budget_s), by reason.",
            ["reason"],
            registry=r,
        )
        self.late_answers = prom.Counter(
            "ric_control_late_answers",
            "Node answers to controls that had already timed out.",
            registry=r,
        )
        self.conflicts = prom.Counter(
            "ric_conflicts",
            "Control conflicts between xApps, by the policy that decided them.",
            ["policy"],
            registry=r,
        )
        self.series_refused = prom.Counter(
            "ric_xapp_metric_series_refused",
            "Updates of xApp metric series dropped: the metric had [metrics] max_series series.",
            ["xapp"],
            registry=r,
        )
        prom.Info("ric_build", "The ric package version.", registry=r).info({"version": _version()})
        r.register(_RuntimeCollector(self))
        if process:
            prom.ProcessCollector(registry=r)
            prom.PlatformCollector(registry=r)
            prom.GCCollector(registry=r)

    def __repr__(self) -> str:
        return f"PrometheusSensor(runtime={'bound' if self.runtime else 'none'})"

    # -- Component --------------------------------------------------------------------------

    async def start(self, runtime: RuntimeView) -> None:
        """Read this runtime's state at scrape time; make zero series for what it can do."""
        self.runtime = runtime
        self.conflicts.labels(runtime.config.conflicts.policy)
        if runtime.config.loop.recent_window_s != self.loop_recent.window:
            self.loop_recent = _RecentMax(runtime.config.loop.recent_window_s)
        for host in runtime.hosts:
            self.overruns.labels(host.name)
            for reason in ("too_large", "unencodable"):
                self.publish_refused.labels(host.name, reason)

    async def stop(self) -> None:
        """Stop reading the runtime (its last counts stay)."""
        self.runtime = None

    def checks(self) -> list[Check]:
        """No readiness checks of its own."""
        return []

    def stats_added(self, source: str, samples: Callable[[], Iterable[StatSample]]) -> None:
        """Export a component's own statistics (``ric_mqtt_*`` from the MQTT bridge), read
        from ``samples`` at each scrape."""
        self.stats_removed(source)  # a component started again replaces its series
        collector = _StatsCollector(samples)
        self.registry.register(collector)
        self._stats[source] = collector

    def stats_removed(self, source: str) -> None:
        """Stop exporting the statistics of ``source``."""
        collector = self._stats.pop(source, None)
        if collector is not None:
            self.registry.unregister(collector)

    def declared_controls(self) -> list[tuple[str, str, str]]:
        """``(xapp, action, outcome)`` for every control the loaded xApps declare: these
        series exist from the start, at zero, so that rates and alerts work at once."""
        if self.runtime is None:
            return []
        out = []
        for host in self.runtime.hosts:
            for action in host.cls.controls:
                out += [(host.name, action.kind, kind.value) for kind in OutcomeKind]
        return out

    # -- xApp metrics -----------------------------------------------------------------------

    def xapp_metrics(self, xapp: str) -> PrometheusXAppMetrics:
        """The Prometheus metrics of the xApp called ``xapp`` (the same on every call)."""
        metrics = self._xapps.get(xapp)
        if metrics is None:
            metrics = PrometheusXAppMetrics(
                xapp, self.registry, self.settings, self.series_refused.labels(xapp)
            )
            self._xapps[xapp] = metrics
        return metrics

    # -- sensor hooks -------------------------------------------------------------------------

    def node_connected(self, node: NodeInfo) -> None:
        self.nodes_connected.inc()

    def node_disconnected(self, node: NodeInfo, reason: str) -> None:
        self.nodes_connected.dec()

    def setup_result(self, accepted: bool, node: str, cause: Cause | None) -> None:
        self.setups.labels("accepted" if accepted else "rejected").inc()

    def e2_error(self, node: str | None, cause: Cause) -> None:
        self.errors.labels(cause.code.name.lower()).inc()

    def node_error_indication(self, node: str, cause: Cause) -> None:
        self.node_errors.labels(cause.code.name.lower()).inc()

    def e2_refused(self, node: str, reason: str, detail: str) -> None:
        self.refused.labels(reason).inc()
        if self.settings.per_node:
            key = (node, reason)
            self.refused_by_node[key] = self.refused_by_node.get(key, 0) + 1

    def e2_tls_failure(self, reason: str, detail: str) -> None:
        self.tls_failures.labels(reason).inc()

    def values_replaced(self, node: str, reason: str, count: int) -> None:
        self.replaced.labels(reason).inc(count)
        if self.settings.per_node:
            key = (node, reason)
            self.replaced_by_node[key] = self.replaced_by_node.get(key, 0) + count

    def indications(self, node: str, count: int) -> None:
        self.indication_count += count
        if self.settings.per_node:
            by_node = self.indications_by_node
            by_node[node] = by_node.get(node, 0) + count

    def subscription_changed(self, node: str, xapp: str, state: str) -> None:
        self.subscription_changes.labels(state).inc()

    def handler_finished(self, xapp: str, seconds: float) -> None:
        histogram = self.handler_seconds.get(xapp)
        if histogram is None:
            histogram = self.handler_seconds[xapp] = _FastHistogram(HANDLER_BUCKETS)
        histogram.observe(seconds)

    def xapp_crashed(self, xapp: str, error: BaseException) -> None:
        self.crashes.labels(xapp).inc()

    def handler_overrun(self, xapp: str, handler: str, seconds: float) -> None:
        self.overruns.labels(xapp).inc()

    def xapp_publish_refused(self, xapp: str, topic_suffix: str, reason: str) -> None:
        self.publish_refused.labels(xapp, reason).inc()

    def loop_lag(self, seconds: float) -> None:
        self.loop_lag_seconds.observe(seconds)
        if seconds > self.loop_longest:
            self.loop_longest = seconds
        self.loop_recent.observe(seconds, time.monotonic())

    def loop_stalled(self, seconds: float, what: str) -> None:
        self.loop_stalls.inc()

    def control_finished(self, xapp: str, outcome: ControlOutcome) -> None:
        action = outcome.action.kind
        kind = outcome.kind.value
        key = (xapp, action, kind)
        self.control_counts[key] = self.control_counts.get(key, 0) + 1
        if kind in _ANSWERED:
            histogram = self.control_latency.get(action)
            if histogram is None:
                histogram = self.control_latency[action] = _FastHistogram(CONTROL_BUCKETS)
            histogram.observe(outcome.latency_s)

    def late_answer(self, node: str) -> None:
        self.late_answers.inc()

    def conflict(self, conflict: Conflict) -> None:
        self.conflicts.labels(conflict.policy).inc()

    def limit_reached(self, xapp: str, limit: str) -> None:
        self.limits.labels(xapp, limit).inc()

    def http_refused(self, reason: str) -> None:
        self.http_refusals.labels(reason).inc()

    def a1_notification(self, outcome: str) -> None:
        self.a1_notifications.labels(outcome).inc()


def _version() -> str:
    from ric import __version__

    return __version__


# -- xApp metrics in Prometheus ------------------------------------------------------------


class _XFamily(MetricFamily):
    """The Prometheus side of one xApp metric: the metric, its gate and its series."""

    __slots__ = ("children", "exported", "limit", "metric", "refused", "warned")

    def __init__(
        self,
        xapp: str,
        kind: str,
        name: str,
        labels: tuple[str, ...],
        metric: Any,
        exported: bool,
        limit: int,
        refused: Any,
    ) -> None:
        super().__init__(xapp, kind, name, labels)
        self.metric = metric
        self.exported = exported
        self.limit = limit
        self.refused = refused
        self.children: dict[tuple[str, ...], Any] = {}
        self.warned = False

    def bind(self, values: Mapping[str, str]) -> Any:
        """The prometheus_client child of a label set; None when it is not exported."""
        key = self.key(values)
        child = self.children.get(key)
        if child is None:
            if not self.exported:
                return None
            if len(self.children) >= self.limit:
                self.refused.inc()
                if not self.warned:
                    self.warned = True
                    log.warning(
                        "xApp %s: metric %s reached %d series; new label sets are dropped",
                        self.xapp,
                        self.name,
                        self.limit,
                        extra={"xapp": self.xapp},
                    )
                return None
            child = self.children[key] = self.metric.labels(self.xapp, *key)
        return child

    def remove(self, values: Mapping[str, str]) -> None:
        key = self.key(values)
        if self.children.pop(key, None) is not None:
            self.metric.remove(self.xapp, *key)


class _XSeries(MetricSeries[_XFamily]):
    """One declared xApp metric (unbound when it has labels) or one series of it; a series
    that is not exported (its target is None) takes its updates and does nothing."""

    __slots__ = ()


class _XCounter(_XSeries):
    kind = "counter"
    __slots__ = ()

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` (not negative)."""
        if amount < 0:
            self._negative(amount)
        child = self._target()
        if child is not None:
            child.inc(amount)


class _XGauge(_XSeries):
    kind = "gauge"
    __slots__ = ()

    def set(self, value: float) -> None:
        """Set the value."""
        child = self._target()
        if child is not None:
            child.set(value)

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount``."""
        child = self._target()
        if child is not None:
            child.inc(amount)

    def dec(self, amount: float = 1.0) -> None:
        """Subtract ``amount``."""
        child = self._target()
        if child is not None:
            child.dec(amount)


class _XHistogram(_XSeries):
    kind = "histogram"
    __slots__ = ()

    def observe(self, value: float) -> None:
        """Count one observation."""
        child = self._target()
        if child is not None:
            child.observe(value)


class PrometheusXAppMetrics(XAppMetricsBase[_XFamily]):
    """One xApp's metrics in a Prometheus registry: ``xapp_<name>_<metric>{xapp="<name>"}``.

    Metrics with a ``cell`` label are exported only with ``[metrics] per_cell``, those with a
    ``node`` label (and no ``cell``) only with ``per_node``; either way the xApp's code is the
    same. One metric has at most ``max_series`` series; beyond that new label sets are dropped
    and counted in ``ric_xapp_metric_series_refused_total``.
    """

    _series = (_XCounter, _XGauge, _XHistogram)

    def __init__(
        self,
        xapp: str,
        registry: prom.CollectorRegistry,
        settings: MetricsSettings,
        refused: Any,
    ) -> None:
        super().__init__(xapp)
        self.prefix = f"xapp_{xapp.replace('-', '_')}_"
        self._registry = registry
        self._settings = settings
        self._refused = refused
        self._told: set[str] = set()

    def _exported(self, labels: tuple[str, ...]) -> bool:
        if "cell" in labels:
            return self._settings.per_cell
        if "node" in labels:
            return self._settings.per_node
        return True

    def _new_family(
        self, kind: str, name: str, doc: str, names: tuple[str, ...], **kwargs: Any
    ) -> _XFamily:
        """Register the Prometheus metric of a newly declared xApp metric."""
        factory = {"counter": prom.Counter, "gauge": prom.Gauge, "histogram": prom.Histogram}
        full = self.prefix + (name.removesuffix("_total") if kind == "counter" else name)
        try:
            metric = factory[kind](
                full,
                doc or name,
                ["xapp", *names],
                registry=self._registry,
                **kwargs,
            )
        except ValueError as exc:
            raise ValueError(f"xApp {self.xapp}: cannot declare metric {name!r}: {exc}") from exc
        exported = self._exported(names)
        if not exported:
            option = "per_cell" if "cell" in names else "per_node"
            if option not in self._told:
                self._told.add(option)
                log.info(
                    "xApp %s: metrics with a %s label (%s, ...) are not exported; "
                    "set [metrics] %s = true to export them",
                    self.xapp,
                    option.removeprefix("per_"),
                    name,
                    option,
                    extra={"xapp": self.xapp},
                )
        return _XFamily(
            self.xapp,
            kind,
            name,
            names,
            metric,
            exported,
            self._settings.max_series,
            self._refused,
        )

    def names(self) -> Iterator[str]:
        """The declared metric names (as the xApp gave them)."""
        return iter(sorted(self._declared))
