"""Fakes for testing xApps without a network: drive one xApp by hand, see what it sends.

::

    app, ctx = await start_xapp(LoadBalancer, nodes=[node_info])
    await app.on_report(report)
    assert ctx.controls == [Handover(...)]

The fake context answers every control with the outcome ``answer`` returns (acknowledged by
default) and records it; the metrics the xApp declares are kept in memory, so a test reads
them with ``ctx.metrics.value(name, **labels)``. The xApp's SDL (``self.sdl`` and the shared
namespaces ``shared={"cells": ["mlb"]}`` grants) is an in-memory store, ``ctx.sdl_backend``.

A1 policies are handed to ``on_policy`` by hand, and what the xApp reports later is kept::

    status = await app.on_policy(policy_event("slice-sla", "gold", {"sst": 1}))
    assert ctx.policy_statuses == []        # (type id, policy id, PolicyStatus) of policy_status

The harness runs whole xApps in a real runtime against a trace or a simulated network, on
virtual time, and returns what they did (see ``ric.trace.harness``)::

    result = await run_scenario("seeds/demo.toml", [LoadBalancer], duration_s=60, seed=1)
    result = await run_trace("field.trace.gz", [KpiMonitor], controls="recorded")
    assert all(c.outcome.ok for c in result.controls)
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from ric.a1.policy import PolicyEvent, PolicyKind, PolicyStatus
from ric.actions import ControlAction, ControlOutcome, OutcomeKind
from ric.clock import ManualClock
from ric.model import NodeInfo
from ric.report import EntityKind, KpmReport
from ric.sdl import Namespace, SdlBackend, granted_namespace, xapp_namespace
from ric.sdl.memory import MemoryBackend
from ric.sensors import MemoryMetrics
from ric.trace.harness import (
    ControlRecord,
    HarnessError,
    HarnessResult,
    XAppSpec,
    run_scenario,
    run_trace,
)
from ric.xapp import MAX_PUBLISH_BYTES, PublishRefused, XApp, encode_payload

__all__ = [
    "ControlRecord",
    "FakeContext",
    "HarnessError",
    "HarnessResult",
    "ManualClock",
    "XAppSpec",
    "make_report",
    "policy_event",
    "run_scenario",
    "run_trace",
    "start_xapp",
]

X = TypeVar("X", bound=XApp)


class FakeContext:
    """An XAppContext with no runtime behind it: controls are recorded and answered."""

    def __init__(
        self,
        name: str,
        *,
        nodes: Iterable[NodeInfo] = (),
        answer: Callable[[ControlAction], ControlOutcome] | None = None,
        clock: ManualClock | None = None,
        sdl: SdlBackend | None = None,
        shared: Mapping[str, Sequence[str]] | None = None,
        max_publish_bytes: int = MAX_PUBLISH_BYTES,
    ) -> None:
        self.name = name
        self.clock = clock or ManualClock()
        self.sdl_backend: SdlBackend = sdl if sdl is not None else MemoryBackend()
        """The xApp's SDL store: in memory unless given; a test can look at any namespace."""
        self.shared_namespaces: Mapping[str, Sequence[str]] = shared or {}
        """Shared namespace -> xApps allowed, like ``[sdl] shared`` in the runtime's config."""
        self.log = logging.LoggerAdapter(logging.getLogger(f"ric.xapp.{name}"), {"xapp": name})
        self.metrics = MemoryMetrics(name)
        """The xApp's own metrics, in memory: ``ctx.metrics.value("name", label=...)``."""
        self.controls: list[ControlAction] = []
        self.outcomes: list[ControlOutcome] = []
        self.published: list[tuple[str, bytes]] = []
        """What the xApp published: (topic suffix, payload bytes), in order."""
        self.max_publish_bytes = max_publish_bytes
        self.refused: list[tuple[str, str]] = []
        """Publishes refused: (topic suffix, reason: ``too_large`` or ``unencodable``)."""
        self.policy_statuses: list[tuple[str, str, PolicyStatus]] = []
        """What the xApp reported with ``policy_status``: (type id, policy id, status)."""
        self._nodes = {str(n.id): n for n in nodes}
        self._answer = answer or (lambda action: ControlOutcome(OutcomeKind.ACKNOWLEDGED, action))
        self._tasks: set[asyncio.Task[None]] = set()

    async def control(self, action: ControlAction, timeout: float) -> ControlOutcome:
        """Record the control and return the answer's outcome."""
        self.controls.append(action)
        outcome = self._answer(action)
        self.outcomes.append(outcome)
        return outcome

    publishing = True
    """A FakeContext acts as if an MQTT bridge were installed: payloads are encoded."""

    def publish(self, topic_suffix: str, payload: Any) -> bool:
        """Encode and record a message the xApp published (``published``,
        ``published_json()``) as the runtime with a bridge would; a refused one (over
        ``max_publish_bytes``, or not JSON) goes to ``refused`` and returns False."""
        try:
            data = encode_payload(self.name, topic_suffix, payload, self.max_publish_bytes)
        except PublishRefused as exc:
            self.refused.append((topic_suffix, exc.reason))
            return False
        self.published.append((topic_suffix, data))
        return True

    def handler_done(self, handler: str, started: float) -> None:
        """Nothing to hold a timer to without a runtime."""

    def published_json(self) -> list[tuple[str, Any]]:
        """What the xApp published, with each payload decoded from JSON."""
        return [(suffix, json.loads(payload)) for suffix, payload in self.published]

    async def policy_status(self, type_id: str, policy_id: str, status: PolicyStatus) -> bool:
        """Record an enforcement status the xApp reported later (``policy_statuses``)."""
        self.policy_statuses.append((type_id, policy_id, status))
        return True

    def nodes(self) -> Mapping[str, NodeInfo]:
        """The nodes given at construction."""
        return self._nodes

    @property
    def sdl(self) -> Namespace:
        """The xApp's own namespace (``xapp.<name>``) in ``sdl_backend``."""
        return Namespace(self.sdl_backend, xapp_namespace(self.name))

    def shared(self, name: str) -> Namespace:
        """A shared namespace, if ``shared`` grants it to this xApp (else SdlError)."""
        return Namespace(
            self.sdl_backend, granted_namespace(self.name, name, self.shared_namespaces)
        )

    def spawn(self, coro: Awaitable[None], name: str) -> None:
        """Run the xApp's timer as a task (it sleeps on the manual clock)."""

        async def run() -> None:
            await coro

        # A coroutine becomes the task itself: cancelled by close() before its first step, it
        # is closed, not left "never awaited" (which pytest's filterwarnings=error fails).
        work = coro if asyncio.iscoroutine(coro) else run()
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel the tasks the xApp spawned."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def start_xapp(
    cls: type[X], config: Mapping[str, Any] | None = None, **context: Any
) -> tuple[X, FakeContext]:
    """Build ``cls`` with a FakeContext (``context`` goes to it) and run its ``on_start``."""
    ctx = FakeContext(cls.name, **context)
    app = cls(ctx, cls.Config.model_validate(dict(config or {})))
    await app.on_start()
    # Let the timers on_start made (self.every) begin their first sleep, so that the test's
    # first ``ctx.clock.advance(interval)`` fires them, as the runtime's clock would.
    await asyncio.sleep(0)
    return app, ctx


def policy_event(
    type_id: str, policy_id: str, body: Mapping[str, Any], kind: PolicyKind = "created"
) -> PolicyEvent:
    """An A1 policy event to hand to ``app.on_policy``, as the runtime would deliver it::

    status = await app.on_policy(policy_event("slice-sla", "gold", {"sst": 1, ...}))
    """
    return PolicyEvent(type_id, policy_id, kind, dict(body))


def make_report(
    node: str,
    kind: EntityKind,
    columns: Mapping[str, Iterable[float]],
    entity_ids: Iterable[str],
    *,
    cells: Iterable[str] = (),
    slices: Iterable[str] = (),
) -> KpmReport:
    """A report from columns: ``{"RRU.PrbUsedDl": [..], ...}`` in entity order."""
    ids = tuple(entity_ids)
    metrics = tuple(columns)
    values = np.column_stack([np.asarray(list(columns[m]), dtype=np.float64) for m in metrics])
    return KpmReport(
        node=node,
        kind=kind,
        metrics=metrics,
        entity_ids=ids,
        values=values.reshape(len(ids), len(metrics)),
        cells=tuple(cells),
        slices=tuple(slices),
        collection_start=time.time(),
        granularity_ms=1000,
    )
