"""The runtime's contracts in one place: the clock and the sensor hooks.

A sensor observes what happens in the runtime (metrics, MQTT, the trace recorder, the audit
log are all sensors); the core calls its hooks and never knows which sensors exist. Hooks are
plain synchronous calls on the event loop: a sensor that needs I/O queues the event itself.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ric.actions import ControlOutcome
    from ric.model import Cause, NodeInfo
    from ric.runtime import Runtime

__all__ = ["Check", "Clock", "Component", "RealClock", "Sensor"]


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


@dataclass(frozen=True, slots=True)
class Check:
    """One readiness check: its name, whether it passes, and why not."""

    name: str
    ok: bool
    detail: str = ""


class Component(Protocol):
    """A service that runs alongside the runtime (HTTP API, MQTT bridge, recorder, ...).

    Started in order after the E2 termination listens and the xApps are started; stopped in
    reverse order at shutdown, each stop running even if another failed.
    """

    name: str

    async def start(self, runtime: Runtime) -> None:
        """Start serving; return once ready (for example, once listening)."""
        ...

    async def stop(self) -> None:
        """Stop and release everything; must not raise for an already stopped component."""
        ...

    def checks(self) -> list[Check]:
        """The readiness checks this component contributes (empty if none)."""
        ...


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

    def xapp_state(self, xapp: str, state: str) -> None:
        """An xApp changed state (starting, running, restarting, stopped, failed)."""

    def xapp_crashed(self, xapp: str, error: BaseException) -> None:
        """An xApp raised; it will be restarted by its host."""

    def control_finished(self, xapp: str, outcome: ControlOutcome) -> None:
        """A control action ended with ``outcome``."""

    def late_answer(self, node: str) -> None:
        """A node answered a control after it had timed out; the answer was dropped."""
