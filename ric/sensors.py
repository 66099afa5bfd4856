"""Sensors shipped with the core: the fan-out set, a log sensor and in-memory statistics; and
the in-memory xApp metrics (the default when no metrics sensor is installed, and what
``ric.testing.FakeContext`` gives xApps so that their tests can read the values)."""

from __future__ import annotations

import collections
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Self

from ric.types import Metrics, MetricsProvider, Sensor

if TYPE_CHECKING:
    from ric.actions import Conflict, ControlOutcome
    from ric.model import Cause, NodeInfo

__all__ = ["LogSensor", "MemoryMetrics", "SensorSet", "Stats", "check_metric", "label_key"]

log = logging.getLogger("ric.events")


_HOOKS = tuple(n for n in vars(Sensor) if not n.startswith("_"))


class SensorSet(Sensor):
    """Calls every hook on each of its sensors, in order; a raising sensor is logged, not fatal.

    Only sensors that override a hook are called for it, so a hook nobody listens to costs
    one empty loop on the hot path.
    """

    def __init__(self, sensors: Iterable[Sensor] = ()) -> None:
        self._sensors: list[Sensor] = []
        self._metrics: dict[str, Metrics] = {}
        self._listeners: dict[str, list[Callable[..., None]]] = {name: [] for name in _HOOKS}
        for sensor in sensors:
            self.add(sensor)

    def add(self, sensor: Sensor) -> None:
        """Add a sensor; it sees events from now on."""
        self._sensors.append(sensor)
        for name in _HOOKS:
            if getattr(type(sensor), name) is not getattr(Sensor, name):
                self._listeners[name].append(getattr(sensor, name))

    def __iter__(self) -> Iterator[Sensor]:
        return iter(self._sensors)

    def listens(self, hook: str) -> bool:
        """Whether any sensor overrides ``hook`` (so callers can skip work nobody sees, such
        as encoding an xApp's publish when no MQTT bridge is installed)."""
        return bool(self._listeners[hook])

    def xapp_metrics(self, xapp: str) -> Metrics:
        """The metrics of ``xapp``: from the first sensor that provides them (the Prometheus
        sensor), else in memory; the same object on every call, so restarts keep them."""
        metrics = self._metrics.get(xapp)
        if metrics is None:
            providers = [s for s in self._sensors if isinstance(s, MetricsProvider)]
            metrics = providers[0].xapp_metrics(xapp) if providers else MemoryMetrics(xapp)
            self._metrics[xapp] = metrics
        return metrics


def _fan_out(name: str) -> Callable[..., None]:
    def hook(self: SensorSet, *args: object) -> None:
        for listener in self._listeners[name]:
            try:
                listener(*args)
            except Exception:
                log.exception("sensor hook %s failed", getattr(listener, "__qualname__", name))

    hook.__name__ = name
    hook.__doc__ = getattr(Sensor, name).__doc__
    return hook


for _name in _HOOKS:
    setattr(SensorSet, _name, _fan_out(_name))


class LogSensor(Sensor):
    """Logs node, xApp and control events with their ids as structured fields."""

    def node_connected(self, node: NodeInfo) -> None:
        log.info(
            "node %s (%s %s) connected with %d cells",
            node.id,
            node.vendor,
            node.software_version,
            len(node.cells),
            extra={"node": str(node.id)},
        )

    def node_disconnected(self, node: NodeInfo, reason: str) -> None:
        log.warning("node %s disconnected: %s", node.id, reason, extra={"node": str(node.id)})

    def setup_result(self, accepted: bool, node: str, cause: Cause | None) -> None:
        if not accepted:
            log.warning("E2 setup from %s refused: %s", node, cause, extra={"node": node})

    def e2_error(self, node: str | None, cause: Cause) -> None:
        log.warning("E2 error from %s: %s", node or "unknown node", cause, extra={"node": node})

    def node_error_indication(self, node: str, cause: Cause) -> None:
        log.warning("node %s reports an error: %s", node, cause, extra={"node": node})

    def e2_tls_failure(self, reason: str, detail: str) -> None:
        log.warning(
            "E2 TLS handshake failed (%s): %s; the peer is unknown (gRPC does not report it)",
            reason,
            detail,
        )

    def xapp_state(self, xapp: str, state: str) -> None:
        log.info("xApp %s is %s", xapp, state, extra={"xapp": xapp})

    def xapp_crashed(self, xapp: str, error: BaseException) -> None:
        log.error(
            "xApp %s raised %s: %s",
            xapp,
            type(error).__name__,
            error,
            exc_info=error,
            extra={"xapp": xapp},
        )

    def limit_reached(self, xapp: str, limit: str) -> None:
        log.warning("xApp %s reached its %s limit", xapp, limit, extra={"xapp": xapp})

    def control_finished(self, xapp: str, outcome: ControlOutcome) -> None:
        level = logging.INFO if outcome.ok else logging.WARNING
        log.log(
            level,
            "control from %s: %s",
            xapp,
            outcome,
            extra={"xapp": xapp, "node": str(outcome.node) if outcome.node else None},
        )

    def audit_anchor(self, count: int, head: str, at: float) -> None:
        # The figures in the form 'ric audit verify --anchor' takes, so a log archive is an
        # anchor store of its own.
        log.info("audit anchor %d:%s at %.3f", count, head, at)


@dataclass
class Stats(Sensor):
    """Counters kept in memory: what the demo view and the tests read."""

    nodes_connected: int = 0
    setups: collections.Counter[str] = field(default_factory=collections.Counter)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    node_errors: collections.Counter[str] = field(default_factory=collections.Counter)
    refused: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    """E2 refusals by (node, reason)."""
    replaced: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    """Indication values replaced by NaN, by (node, reason)."""
    tls_failures: collections.Counter[str] = field(default_factory=collections.Counter)
    """Failed TLS handshakes on the E2 port, by reason."""
    indication_count: int = 0
    indications_by_node: collections.Counter[str] = field(default_factory=collections.Counter)
    delivered: collections.Counter[str] = field(default_factory=collections.Counter)
    dropped: collections.Counter[str] = field(default_factory=collections.Counter)
    crashes: collections.Counter[str] = field(default_factory=collections.Counter)
    controls: collections.Counter[tuple[str, str, str]] = field(default_factory=collections.Counter)
    late_answers: int = 0
    conflicts: collections.Counter[str] = field(default_factory=collections.Counter)
    limits: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    recent_controls: collections.deque[tuple[str, ControlOutcome]] = field(
        default_factory=lambda: collections.deque(maxlen=50)
    )

    def node_connected(self, node: NodeInfo) -> None:
        self.nodes_connected += 1

    def node_disconnected(self, node: NodeInfo, reason: str) -> None:
        self.nodes_connected -= 1

    def setup_result(self, accepted: bool, node: str, cause: Cause | None) -> None:
        self.setups["accepted" if accepted else "rejected"] += 1

    def e2_error(self, node: str | None, cause: Cause) -> None:
        self.errors[cause.code.name] += 1

    def node_error_indication(self, node: str, cause: Cause) -> None:
        self.node_errors[cause.code.name] += 1

    def e2_refused(self, node: str, reason: str, detail: str) -> None:
        self.refused[(node, reason)] += 1

    def values_replaced(self, node: str, reason: str, count: int) -> None:
        self.replaced[(node, reason)] += count

    def e2_tls_failure(self, reason: str, detail: str) -> None:
        self.tls_failures[reason] += 1

    def indications(self, node: str, count: int) -> None:
        self.indication_count += count
        self.indications_by_node[node] += count

    def report_delivered(self, xapp: str, queue_depth: int) -> None:
        self.delivered[xapp] += 1

    def reports_dropped(self, xapp: str, count: int) -> None:
        self.dropped[xapp] += count

    def xapp_crashed(self, xapp: str, error: BaseException) -> None:
        self.crashes[xapp] += 1

    def control_finished(self, xapp: str, outcome: ControlOutcome) -> None:
        self.controls[(xapp, outcome.action.kind, outcome.kind.value)] += 1
        self.recent_controls.append((xapp, outcome))

    def late_answer(self, node: str) -> None:
        self.late_answers += 1

    def conflict(self, conflict: Conflict) -> None:
        self.conflicts[conflict.policy] += 1

    def limit_reached(self, xapp: str, limit: str) -> None:
        self.limits[(xapp, limit)] += 1


# -- xApp metrics in memory ------------------------------------------------------------------

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
RESERVED_LABELS = frozenset({"xapp", "le", "quantile"})
"""Label names an xApp may not declare: ``xapp`` is added by the runtime, the others are
Prometheus' own."""


def check_metric(xapp: str, kind: str, name: str, labels: Sequence[str]) -> tuple[str, ...]:
    """Check an xApp's metric declaration; the label names as a tuple.

    Raises ValueError naming the xApp, the metric and the problem.
    """
    what = f"xApp {xapp}: {kind} {name!r}"
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{what}: the name must be snake_case ([a-z][a-z0-9_]*)")
    if isinstance(labels, str):
        raise ValueError(f"{what}: labels must be a sequence of names, got the string {labels!r}")
    names = tuple(labels)
    for label in names:
        if not isinstance(label, str) or not _NAME.match(label):
            raise ValueError(f"{what}: label {label!r} must be snake_case ([a-z][a-z0-9_]*)")
        if label in RESERVED_LABELS:
            raise ValueError(f"{what}: label {label!r} is reserved")
    if len(set(names)) != len(names):
        raise ValueError(f"{what}: a label is declared twice in {names}")
    return names


def label_key(
    xapp: str, name: str, declared: tuple[str, ...], values: Mapping[str, str]
) -> tuple[str, ...]:
    """The label values of one series in declaration order; ValueError unless ``values`` names
    exactly the declared labels."""
    if len(values) != len(declared) or any(k not in values for k in declared):
        raise ValueError(f"xApp {xapp}: metric {name!r} has labels {declared}, got {tuple(values)}")
    return tuple(str(values[k]) for k in declared)


class _MemoryFamily:
    __slots__ = ("kind", "labels", "name", "values", "xapp")

    def __init__(self, xapp: str, kind: str, name: str, labels: tuple[str, ...]) -> None:
        self.xapp = xapp
        self.kind = kind
        self.name = name
        self.labels = labels
        self.values: dict[tuple[str, ...], list[float]] = {}


class _MemorySeries:
    """One declared metric (unbound when it has labels) or one series of it."""

    kind: ClassVar[str] = ""
    __slots__ = ("_family", "_key")

    def __init__(self, family: _MemoryFamily, key: tuple[str, ...] | None) -> None:
        self._family = family
        self._key = key

    def labels(self, **values: str) -> Self:
        """The series of one label set."""
        family = self._family
        if self._key is not None:
            raise ValueError(
                f"xApp {family.xapp}: metric {family.name!r} "
                + ("has no labels" if not family.labels else "already has its labels")
            )
        return type(self)(family, label_key(family.xapp, family.name, family.labels, values))

    def remove(self, **values: str) -> None:
        """Forget one label set's series (nothing happens if it has none)."""
        family = self._family
        family.values.pop(label_key(family.xapp, family.name, family.labels, values), None)

    def _cell(self) -> list[float]:
        if self._key is None:
            family = self._family
            raise ValueError(
                f"xApp {family.xapp}: metric {family.name!r} has labels {family.labels}; "
                "call .labels(...) first"
            )
        return self._family.values.setdefault(self._key, [0.0, 0.0])


class _MemoryCounter(_MemorySeries):
    kind = "counter"
    __slots__ = ()

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` (not negative)."""
        if amount < 0:
            raise ValueError(
                f"xApp {self._family.xapp}: counter {self._family.name!r} only goes up, "
                f"got inc({amount})"
            )
        self._cell()[0] += amount


class _MemoryGauge(_MemorySeries):
    kind = "gauge"
    __slots__ = ()

    def set(self, value: float) -> None:
        """Set the value."""
        self._cell()[0] = float(value)

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount``."""
        self._cell()[0] += amount

    def dec(self, amount: float = 1.0) -> None:
        """Subtract ``amount``."""
        self._cell()[0] -= amount


class _MemoryHistogram(_MemorySeries):
    kind = "histogram"
    __slots__ = ()

    def observe(self, value: float) -> None:
        """Count one observation (the count and the sum are kept)."""
        cell = self._cell()
        cell[0] += 1
        cell[1] += value


class MemoryMetrics:
    """An xApp's metrics kept in memory, with the same rules as the Prometheus ones.

    The runtime's default when no metrics sensor is installed, and what ``FakeContext`` gives
    an xApp under test, so the test can read the values back::

        app, ctx = await start_xapp(KpiMonitor)
        ...
        assert ctx.metrics.value("cells") == 2
    """

    def __init__(self, xapp: str) -> None:
        self.xapp = xapp
        self._families: dict[str, tuple[_MemoryFamily, _MemorySeries]] = {}

    def _declare(self, cls: type[_MemorySeries], name: str, labels: Sequence[str]) -> _MemorySeries:
        names = check_metric(self.xapp, cls.kind, name, labels)
        known = self._families.get(name)
        if known is not None:
            family, series = known
            if family.kind != cls.kind or family.labels != names:
                raise ValueError(
                    f"xApp {self.xapp}: metric {name!r} is already declared as a {family.kind} "
                    f"with labels {family.labels}"
                )
            return series
        family = _MemoryFamily(self.xapp, cls.kind, name, names)
        series = cls(family, None if names else ())
        self._families[name] = (family, series)
        return series

    def counter(self, name: str, doc: str, labels: Sequence[str] = ()) -> _MemoryCounter:
        """Declare (or get) a counter."""
        series = self._declare(_MemoryCounter, name, labels)
        assert isinstance(series, _MemoryCounter)
        return series

    def gauge(self, name: str, doc: str, labels: Sequence[str] = ()) -> _MemoryGauge:
        """Declare (or get) a gauge."""
        series = self._declare(_MemoryGauge, name, labels)
        assert isinstance(series, _MemoryGauge)
        return series

    def histogram(
        self,
        name: str,
        doc: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] | None = None,
    ) -> _MemoryHistogram:
        """Declare (or get) a histogram (in memory only the count and the sum are kept)."""
        series = self._declare(_MemoryHistogram, name, labels)
        assert isinstance(series, _MemoryHistogram)
        return series

    # -- reading, for tests -------------------------------------------------------------------

    def names(self) -> list[str]:
        """The declared metric names, sorted."""
        return sorted(self._families)

    def _family(self, name: str) -> _MemoryFamily:
        try:
            return self._families[name][0]
        except KeyError:
            raise KeyError(f"xApp {self.xapp} declared no metric {name!r}") from None

    def series(self, name: str) -> list[dict[str, str]]:
        """The label sets that metric ``name`` has series for."""
        family = self._family(name)
        return [dict(zip(family.labels, key, strict=True)) for key in family.values]

    def _cell(self, name: str, values: Mapping[str, str]) -> tuple[_MemoryFamily, list[float]]:
        family = self._family(name)
        key = label_key(self.xapp, name, family.labels, values)
        try:
            return family, family.values[key]
        except KeyError:
            raise KeyError(
                f"xApp {self.xapp}: metric {name!r} has no series {dict(values)}"
            ) from None

    def value(self, name: str, **labels: str) -> float:
        """The value of a counter's or gauge's series; KeyError if it has none."""
        family, cell = self._cell(name, labels)
        if family.kind == "histogram":
            raise ValueError(f"xApp {self.xapp}: {name!r} is a histogram; use observations()")
        return cell[0]

    def observations(self, name: str, **labels: str) -> tuple[int, float]:
        """A histogram series' count of observations and their sum; KeyError if it has none."""
        family, cell = self._cell(name, labels)
        if family.kind != "histogram":
            raise ValueError(f"xApp {self.xapp}: {name!r} is a {family.kind}; use value()")
        return int(cell[0]), cell[1]
