"""The runtime's contracts in one place: the clock, the sensor hooks and xApp metrics.

A sensor observes what happens in the runtime (metrics, MQTT, the trace recorder, the audit
log are all sensors); the core calls its hooks and never knows which sensors exist. Hooks are
plain synchronous calls on the event loop: a sensor that needs I/O queues the event itself.

An xApp declares its own metrics through ``Metrics`` (``self.metrics`` in the SDK). The core
and the SDK know only these protocols: the in-memory implementation is
``ric.sensors.MemoryMetrics``, the Prometheus one comes from a ``MetricsProvider`` sensor
(``ric.metrics.PrometheusSensor``).

What a component (HTTP, MQTT, the recorder) is and what it sees of the runtime are in
``ric.view``: that view names concrete runtime parts, and this module stays below them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ric.actions import Conflict, ControlOutcome
    from ric.model import Cause, NodeInfo

__all__ = [
    "Cancellable",
    "Check",
    "Clock",
    "Counter",
    "Gauge",
    "Histogram",
    "Metrics",
    "MetricsProvider",
    "RealClock",
    "Sensor",
    "StatSample",
]


class Clock(Protocol):
    """Where the runtime gets time from; tests and the replay harness inject a virtual one."""

    def monotonic(self) -> float:
        """Seconds on a monotonic clock, for timeouts and latencies."""
        ...

    def time(self) -> float:
        """Unix time in seconds, for timestamps that leave the process."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on this clock."""
        ...

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Cancellable:
        """Call ``callback`` once ``seconds`` have passed on this clock (cancellable)."""
        ...


class Cancellable(Protocol):
    """A scheduled call that can be cancelled (an ``asyncio.TimerHandle`` is one)."""

    def cancel(self) -> object:
        """Do not make the call."""
        ...


class RealClock:
    """The event loop's monotonic clock and the system's wall clock."""

    def monotonic(self) -> float:
        """Seconds on the running loop's monotonic clock."""
        return asyncio.get_running_loop().time()

    def time(self) -> float:
        """Unix time in seconds."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep``."""
        await asyncio.sleep(seconds)

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Cancellable:
        """``loop.call_later``."""
        return asyncio.get_running_loop().call_later(seconds, callback)


@dataclass(frozen=True, slots=True)
class Check:
    """One readiness check: its name, whether it passes, and why not."""

    name: str
    ok: bool
    detail: str = ""


StatSample = tuple[str, str, str, dict[str, str], float]
"""One series of a component's own statistics: (name, ``counter`` or ``gauge``, help,
labels, value); a counter's name has no ``_total`` (the exposition adds it)."""


class Sensor:
    """Observer of runtime events; every hook is a no-op here, override what you need.

    Hooks must be cheap and must not raise: they run on the E2 hot path.
    """

    def node_connected(self, node: NodeInfo) -> None:
        """A node completed E2 setup."""

    def node_disconnected(self, node: NodeInfo, reason: str) -> None:
        """A node's session ended (stream end, missed keep-alives, shutdown)."""

    def setup_result(self, accepted: bool, node: str, cause: Cause | None) -> None:
        """An E2 setup was accepted or refused (``node`` is the claimed id, or ``?``)."""

    def e2_error(self, node: str | None, cause: Cause) -> None:
        """A bad E2 message was answered with an ErrorIndication or a setup failure."""

    def e2_refused(self, node: str, reason: str, detail: str) -> None:
        """An E2 message or indication from ``node`` was refused for a bound or a mismatch:
        ``reason`` is ``message_size``, ``matrix_size``, ``batch_size``, ``indication_rate``
        or ``matrix_mismatch``; ``detail`` names the bound and the figure."""

    def values_replaced(self, node: str, reason: str, count: int) -> None:
        """``count`` indication values from ``node`` were outside the contract and replaced by
        NaN: ``reason`` is ``infinite`` or ``out_of_range``."""

    def e2_tls_failure(self, reason: str, detail: str) -> None:
        """A TLS handshake on the E2 port failed (``ric.e2.corelog``): ``reason`` is one of
        ``ric.e2.corelog.REASONS``' values or ``other``; ``detail`` is gRPC's own words. The
        peer is unknown: gRPC does not report it."""

    def node_error_indication(self, node: str, cause: Cause) -> None:
        """A node sent the RIC an ErrorIndication."""

    def indications(self, node: str, count: int) -> None:
        """``count`` indications arrived from ``node`` in one message."""

    def subscription_changed(self, node: str, xapp: str, state: str) -> None:
        """An E2 subscription of ``xapp`` on ``node`` changed state (active, failed, deleted)."""

    def report_delivered(self, xapp: str, queue_depth: int) -> None:
        """A report entered an xApp's queue."""

    def reports_dropped(self, xapp: str, count: int) -> None:
        """An xApp's queue was full; its ``count`` oldest reports were dropped."""

    def handler_finished(self, xapp: str, seconds: float) -> None:
        """An xApp handler call took ``seconds``."""

    def handler_overrun(self, xapp: str, handler: str, seconds: float) -> None:
        """An xApp handler call (``on_report``, another hook, or a timer) took ``seconds``,
        over ``[xapps] handler_budget_ms``."""

    def xapp_state(self, xapp: str, state: str) -> None:
        """An xApp changed state (starting, running, restarting, stopped, failed)."""

    def xapp_crashed(self, xapp: str, error: BaseException) -> None:
        """An xApp raised; it will be restarted by its host."""

    def control_finished(self, xapp: str, outcome: ControlOutcome) -> None:
        """A control action ended with ``outcome``."""

    def late_answer(self, node: str) -> None:
        """A node answered a control after it had timed out; the answer was dropped."""

    def e2_frame(self, node: str, inbound: bool, data: bytes) -> None:
        """One E2 message crossed the termination: from ``node`` (inbound) or to it, as the
        serialized NodeMessage / RicMessage. Only the trace recorder should need this."""

    def conflict(self, conflict: Conflict) -> None:
        """The arbiter found two xApps' controls in conflict (``conflict.policy`` decided)."""

    def permission_denied(self, xapp: str, what: str, detail: str) -> None:
        """The runtime refused an xApp something outside its grant (a report or a control)."""

    def limit_reached(self, xapp: str, limit: str) -> None:
        """An xApp was refused for reaching a limit: ``subscriptions`` or ``controls_per_s``."""

    def http_refused(self, reason: str) -> None:
        """The HTTP server refused a request at a bound: ``in_flight``, ``body_too_large``,
        ``too_deep``, ``too_many_values``, ``not_finite``, ``number_out_of_range``,
        ``not_json`` or ``budget`` (A1 schema work over ``[a1] budget_s``)."""

    def a1_notification(self, outcome: str) -> None:
        """A policy status notification to a non-RT RIC ended: ``sent``, ``failed`` (every
        attempt failed) or ``dropped`` (the queue of ``[a1] notify_queue`` was full)."""

    def xapp_published(self, xapp: str, topic_suffix: str, payload: bytes) -> None:
        """An xApp published ``payload`` (JSON, or the bytes it gave) under its own topic
        ``topic_suffix`` (already checked: no wildcards, no ``..``, no leading ``/``)."""

    def xapp_publish_refused(self, xapp: str, topic_suffix: str, reason: str) -> None:
        """An xApp's publish was refused and not sent: ``reason`` is ``too_large`` (over
        ``[xapps] max_publish_bytes``) or ``unencodable`` (not JSON)."""

    def loop_lag(self, seconds: float) -> None:
        """The watchdog's beat ran ``seconds`` late (every tick, ``[loop] tick_ms``)."""

    def loop_stalled(self, seconds: float, what: str) -> None:
        """The event loop was held ``seconds``, over ``[loop] stall_warning_ms``; ``what``
        is what the watchdog saw running (activity, task, code)."""

    def audit_anchor(self, count: int, head: str, at: float) -> None:
        """The audit chain was anchored: its first ``count`` records end in the record whose
        hash is ``head`` (Unix time ``at``); sensors keep it outside the log (MQTT, the log)."""

    def stats_added(self, source: str, samples: Callable[[], Iterable[StatSample]]) -> None:
        """A component (``source``, e.g. ``mqtt``) offers its own statistics: ``samples`` is
        called whenever a sensor wants them (the Prometheus sensor, at each scrape), so the
        component counts in plain numbers and knows no metrics library."""

    def stats_removed(self, source: str) -> None:
        """The component ``source`` stopped: its statistics are gone."""


# -- xApp metrics ------------------------------------------------------------------------------


class Counter(Protocol):
    """A counter an xApp declared: a value that only goes up (exposed with a ``_total`` suffix)."""

    def labels(self, **values: str) -> Counter:
        """The series of one label set; every declared label must be given, by name."""
        ...

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` (not negative)."""
        ...

    def remove(self, **values: str) -> None:
        """Forget the series of one label set (for example a cell that went away)."""
        ...


class Gauge(Protocol):
    """A gauge an xApp declared: a value that goes up and down."""

    def labels(self, **values: str) -> Gauge:
        """The series of one label set; every declared label must be given, by name."""
        ...

    def set(self, value: float) -> None:
        """Set the value."""
        ...

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount``."""
        ...

    def dec(self, amount: float = 1.0) -> None:
        """Subtract ``amount``."""
        ...

    def remove(self, **values: str) -> None:
        """Forget the series of one label set (for example a cell that went away)."""
        ...


class Histogram(Protocol):
    """A histogram an xApp declared: observations counted into buckets, with their sum."""

    def labels(self, **values: str) -> Histogram:
        """The series of one label set; every declared label must be given, by name."""
        ...

    def observe(self, value: float) -> None:
        """Count one observation."""
        ...

    def remove(self, **values: str) -> None:
        """Forget the series of one label set."""
        ...


class Metrics(Protocol):
    """Where an xApp declares its own metrics (``self.metrics``).

    Names and label names are ``snake_case``; the runtime prefixes names with
    ``xapp_<xapp name>_`` and adds the label ``xapp``. Declaring the same name again (an xApp
    restarted) returns the same metric; declaring it with another type or labels is an error.
    """

    def counter(self, name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
        """Declare (or get) a counter."""
        ...

    def gauge(self, name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
        """Declare (or get) a gauge."""
        ...

    def histogram(
        self,
        name: str,
        doc: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] | None = None,
    ) -> Histogram:
        """Declare (or get) a histogram; ``buckets`` are upper bounds (default: Prometheus')."""
        ...


@runtime_checkable
class MetricsProvider(Protocol):
    """A sensor that gives each xApp its metrics (the Prometheus sensor is one)."""

    def xapp_metrics(self, xapp: str) -> Metrics:
        """The metrics of the xApp called ``xapp`` (the same object on every call)."""
        ...
