"""Sensors shipped with the core: the fan-out set, a log sensor and in-memory statistics; and
the in-memory xApp metrics (the default when no metrics sensor is installed, and what
``ric.testing.FakeContext`` gives xApps so that their tests can read the values)."""

from __future__ import annotations

import abc
import collections
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, NoReturn, Self, TypeVar

from ric.types import Counter, Gauge, Histogram, Metrics, MetricsProvider, Sensor

if TYPE_CHECKING:
    from ric.actions import Conflict, ControlOutcome
    from ric.model import Cause, NodeInfo

__all__ = [
    "LogSensor",
    "MemoryMetrics",
    "MetricFamily",
    "MetricSeries",
    "SensorSet",
    "Stats",
    "XAppMetricsBase",
    "check_metric",
    "label_key",
]

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


_UNBOUND: Any = object()
"""The slot of a declared metric that has labels, before ``.labels(...)`` names a series."""

F = TypeVar("F", bound="MetricFamily")
S = TypeVar("S", bound="MetricSeries[Any]")


class MetricFamily(abc.ABC):
    """One declared xApp metric as both implementations see it: whose, what kind, which
    labels. A subclass says what a series of one label set is (``bind``) and how it goes."""

    __slots__ = ("kind", "labels", "name", "xapp")

    def __init__(self, xapp: str, kind: str, name: str, labels: tuple[str, ...]) -> None:
        self.xapp = xapp
        self.kind = kind
        self.name = name
        self.labels = labels

    def key(self, values: Mapping[str, str]) -> tuple[str, ...]:
        """The label values of one series in declaration order (``label_key``)."""
        return label_key(self.xapp, self.name, self.labels, values)

    @abc.abstractmethod
    def bind(self, values: Mapping[str, str]) -> Any:
        """What a series of the label set ``values`` writes to."""

    @abc.abstractmethod
    def remove(self, values: Mapping[str, str]) -> None:
        """Forget the series of the label set ``values`` (nothing happens if it has none)."""


class MetricSeries(Generic[F]):
    """One declared metric (unbound when it has labels) or one series of it: the rules both
    implementations share; the subclasses of each kind only write to their slot."""

    kind: ClassVar[str] = ""
    __slots__ = ("_family", "_slot")

    def __init__(self, family: F, slot: Any) -> None:
        self._family = family
        self._slot = slot

    def labels(self, **values: str) -> Self:
        """The series of one label set."""
        family = self._family
        if self._slot is not _UNBOUND:
            raise ValueError(
                f"xApp {family.xapp}: metric {family.name!r} "
                + ("has no labels" if not family.labels else "already has its labels")
            )
        return type(self)(family, family.bind(values))

    def remove(self, **values: str) -> None:
        """Forget one label set's series (nothing happens if it has none)."""
        self._family.remove(values)

    def _target(self) -> Any:
        """What this series writes to; ValueError on a declared metric with labels."""
        slot = self._slot
        if slot is _UNBOUND:
            family = self._family
            raise ValueError(
                f"xApp {family.xapp}: metric {family.name!r} has labels {family.labels}; "
                "call .labels(...) first"
            )
        return slot

    def _negative(self, amount: float) -> NoReturn:
        family = self._family
        raise ValueError(
            f"xApp {family.xapp}: counter {family.name!r} only goes up, got inc({amount})"
        )


class XAppMetricsBase(abc.ABC, Generic[F]):
    """An xApp's declared metrics: the declaration rules both implementations share (names
    and labels checked by ``check_metric``, a name declared again only as the same kind with
    the same labels). A subclass makes the family of a new metric (``_new_family``)."""

    _series: ClassVar[tuple[type[Any], type[Any], type[Any]]]
    """This implementation's series classes: counter, gauge, histogram."""

    def __init__(self, xapp: str) -> None:
        self.xapp = xapp
        self._declared: dict[str, MetricSeries[F]] = {}

    def counter(self, name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
        """Declare (or get) a counter (Prometheus exposes it as ``xapp_<xapp>_<name>_total``)."""
        series: Counter = self._declare(self._series[0], name, doc, labels)
        return series

    def gauge(self, name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
        """Declare (or get) a gauge."""
        series: Gauge = self._declare(self._series[1], name, doc, labels)
        return series

    def histogram(
        self,
        name: str,
        doc: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] | None = None,
    ) -> Histogram:
        """Declare (or get) a histogram; ``buckets`` are upper bounds (default: Prometheus';
        in memory only the count and the sum are kept)."""
        extra: dict[str, Any] = {} if buckets is None else {"buckets": tuple(buckets)}
        series: Histogram = self._declare(self._series[2], name, doc, labels, **extra)
        return series

    @abc.abstractmethod
    def _new_family(
        self, kind: str, name: str, doc: str, names: tuple[str, ...], **kwargs: Any
    ) -> F:
        """The family of a metric declared for the first time."""

    def _declare(
        self, cls: type[S], name: str, doc: str, labels: Sequence[str], **kwargs: Any
    ) -> S:
        names = check_metric(self.xapp, cls.kind, name, labels)
        known = self._declared.get(name)
        if known is not None:
            family = known._family
            if not isinstance(known, cls) or family.labels != names:
                raise ValueError(
                    f"xApp {self.xapp}: metric {name!r} is already declared as a {family.kind} "
                    f"with labels {family.labels}"
                )
            return known
        new = self._new_family(cls.kind, name, doc, names, **kwargs)
        series = cls(new, new.bind({}) if not names else _UNBOUND)
        self._declared[name] = series
        return series


class _MemoryFamily(MetricFamily):
    __slots__ = ("values",)

    def __init__(self, xapp: str, kind: str, name: str, labels: tuple[str, ...]) -> None:
        super().__init__(xapp, kind, name, labels)
        self.values: dict[tuple[str, ...], list[float]] = {}

    def bind(self, values: Mapping[str, str]) -> tuple[str, ...]:
        return self.key(values)

    def remove(self, values: Mapping[str, str]) -> None:
        self.values.pop(self.key(values), None)


class _MemorySeries(MetricSeries[_MemoryFamily]):
    __slots__ = ()

    def _cell(self) -> list[float]:
        return self._family.values.setdefault(self._target(), [0.0, 0.0])


class _MemoryCounter(_MemorySeries):
    kind = "counter"
    __slots__ = ()

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` (not negative)."""
        if amount < 0:
            self._negative(amount)
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


class MemoryMetrics(XAppMetricsBase[_MemoryFamily]):
    """An xApp's metrics kept in memory, with the same rules as the Prometheus ones.

    The runtime's default when no metrics sensor is installed, and what ``FakeContext`` gives
    an xApp under test, so the test can read the values back::

        app, ctx = await start_xapp(KpiMonitor)
        ...
        assert ctx.metrics.value("cells") == 2
    """

    _series = (_MemoryCounter, _MemoryGauge, _MemoryHistogram)

    def _new_family(
        self, kind: str, name: str, doc: str, names: tuple[str, ...], **kwargs: Any
    ) -> _MemoryFamily:
        return _MemoryFamily(self.xapp, kind, name, names)

    # -- reading, for tests -------------------------------------------------------------------

    def names(self) -> list[str]:
        """The declared metric names, sorted."""
        return sorted(self._declared)

    def _declared_family(self, name: str) -> _MemoryFamily:
        try:
            return self._declared[name]._family
        except KeyError:
            raise KeyError(f"xApp {self.xapp} declared no metric {name!r}") from None

    def series(self, name: str) -> list[dict[str, str]]:
        """The label sets that metric ``name`` has series for."""
        family = self._declared_family(name)
        return [dict(zip(family.labels, key, strict=True)) for key in family.values]

    def _cell(self, name: str, values: Mapping[str, str]) -> tuple[_MemoryFamily, list[float]]:
        family = self._declared_family(name)
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
