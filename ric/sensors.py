"""Sensors shipped with the core: the fan-out set, a log sensor and in-memory statistics."""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ric.types import Sensor

if TYPE_CHECKING:
    from ric.actions import ControlOutcome
    from ric.model import Cause, NodeInfo

__all__ = ["LogSensor", "SensorSet", "Stats"]

log = logging.getLogger("ric.events")


_HOOKS = tuple(n for n in vars(Sensor) if not n.startswith("_"))


class SensorSet(Sensor):
    """Calls every hook on each of its sensors, in order; a raising sensor is logged, not fatal.

    Only sensors that override a hook are called for it, so a hook nobody listens to costs
    one empty loop on the hot path.
    """

    def __init__(self, sensors: Iterable[Sensor] = ()) -> None:
        self._sensors: list[Sensor] = []
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

    def control_finished(self, xapp: str, outcome: ControlOutcome) -> None:
        level = logging.INFO if outcome.ok else logging.WARNING
        log.log(
            level,
            "control from %s: %s",
            xapp,
            outcome,
            extra={"xapp": xapp, "node": str(outcome.node) if outcome.node else None},
        )


@dataclass
class Stats(Sensor):
    """Counters kept in memory: what the demo view and the tests read."""

    nodes_connected: int = 0
    setups: collections.Counter[str] = field(default_factory=collections.Counter)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    node_errors: collections.Counter[str] = field(default_factory=collections.Counter)
    indication_count: int = 0
    indications_by_node: collections.Counter[str] = field(default_factory=collections.Counter)
    delivered: collections.Counter[str] = field(default_factory=collections.Counter)
    dropped: collections.Counter[str] = field(default_factory=collections.Counter)
    crashes: collections.Counter[str] = field(default_factory=collections.Counter)
    controls: collections.Counter[tuple[str, str, str]] = field(default_factory=collections.Counter)
    late_answers: int = 0
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
