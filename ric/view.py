"""What a component sees of the runtime, and what a component is.

A component (the HTTP server, the Prometheus sensor, the MQTT bridge, the trace recorder) is
started with a ``RuntimeView``: the narrow part of the runtime it may read and call. It never
imports the concrete ``ric.runtime.Runtime``, so the runtime can build every component from
its configuration without an import cycle (as faust's sensors and agents depend on ``AppT``,
not on ``App``). ``Runtime`` satisfies ``RuntimeView``; a test may pass anything else that
does.

These two protocols live here rather than in ``ric.types`` because the view names concrete
runtime parts (hosts, sessions, the SDL state); ``ric.types`` stays below all of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ric.a1 import A1Service
    from ric.audit import AuditLog
    from ric.cluster import Cluster
    from ric.config import RuntimeConfig
    from ric.e2.session import NodeSession
    from ric.host import XAppHost
    from ric.plugins import Plugin
    from ric.privacy import Pseudonymizer
    from ric.sdl.state import RuntimeState
    from ric.subscriptions import SubscriptionManager
    from ric.types import Check, Clock, Sensor

__all__ = ["Component", "RuntimeView"]


class RuntimeView(Protocol):
    """The runtime as its components see it: read-only state and a few calls.

    Everything here is what HTTP, MQTT, metrics and the recorder use today; a component that
    needs more adds it here first, so the surface stays written down.
    """

    @property
    def config(self) -> RuntimeConfig:
        """The configuration the runtime was built from."""
        ...

    @property
    def clock(self) -> Clock:
        """The runtime's clock (virtual under the test harness)."""
        ...

    @property
    def sensor(self) -> Sensor:
        """Every sensor at once: a hook called here reaches all of them."""
        ...

    @property
    def privacy(self) -> Pseudonymizer:
        """UE-id pseudonyms for whatever leaves the runtime."""
        ...

    @property
    def hosts(self) -> Sequence[XAppHost]:
        """The loaded xApps' hosts, in load order."""
        ...

    @property
    def sessions(self) -> Mapping[str, NodeSession]:
        """The live node sessions, by node id."""
        ...

    @property
    def state(self) -> RuntimeState:
        """The node and subscription registries kept in the SDL (``ric.sdl.state``)."""
        ...

    @property
    def subscriptions(self) -> SubscriptionManager:
        """The E2 subscriptions (``snapshot()`` lists them)."""
        ...

    @property
    def audit(self) -> AuditLog:
        """The audit log of controls and refusals (``last(n)`` reads its tail)."""
        ...

    @property
    def cluster(self) -> Cluster | None:
        """This runtime as one replica of a RIC (``ric.cluster``); None when it is not."""
        ...

    @property
    def a1(self) -> A1Service:
        """A1 policy types and policies."""
        ...

    def checks(self) -> list[Check]:
        """Readiness: every check of the runtime and its components, now."""
        ...

    def host(self, name: str) -> XAppHost:
        """The host of the xApp called ``name``; KeyError naming it if there is none."""
        ...

    def add_xapp(self, plugin: Plugin) -> XAppHost:
        """Load and start one more xApp in the running runtime."""
        ...

    async def set_serving(self, serving: bool) -> None:
        """Publish readiness to the gRPC health service of the E2 termination."""
        ...


class Component(Protocol):
    """A service that runs alongside the runtime (HTTP API, MQTT bridge, recorder, ...).

    Started in order after the E2 termination listens and the xApps are started; stopped in
    reverse order at shutdown, each stop running even if another failed.
    """

    name: str

    async def start(self, runtime: RuntimeView) -> None:
        """Start serving; return once ready (for example, once listening)."""
        ...

    async def stop(self) -> None:
        """Stop and release everything; must not raise for an already stopped component."""
        ...

    def checks(self) -> list[Check]:
        """The readiness checks this component contributes (empty if none)."""
        ...
