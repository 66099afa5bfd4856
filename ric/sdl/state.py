"""The runtime's own records in the SDL: the nodes it has seen and the subscriptions it held.

Two namespaces, one JSON value per node id in each::

    ric.nodes           {"id", "type", "plmn", "vendor", "software_version", "ran_functions",
                         "cells", "first_seen", "last_seen" (Unix s), "connected", "ric_id"}
    ric.subscriptions   [{"request_id", "node", "xapps", "per", "cells", "metrics",
                          "period_ms", "style", "state", "xapp_period_ms"}, ...]

They are written when something changes (a node sets up, goes, changes its cells or
functions; a node's subscriptions change), never per indication, by one background flush at
a time that writes the latest value of each changed record in order. A node's subscription
record is kept when the node goes (it says what is re-armed when it comes back) and replaced
once it is back and its subscriptions change. A runtime started on a store that has them
(SQLite, Redis) reads them back: the nodes are known but disconnected, and the subscriptions
are shown as ``restored`` until their node reconnects and they are requested again. Runtimes
sharing one store (Redis) each read back only the nodes they held last (by ``ric_id``, which
must differ between them), and their subscriptions.

Replicas of one RIC (``ric.cluster``) share the ``ric_id`` and read back every node of the
RIC. Their writes are fenced: each write about a node carries the term the replica held the
node's lease with when the write was queued, and Redis refuses it once a later owner has
raised the node's fence (the write is dropped, logged and counted in ``refused``, never
retried). The node records then also say which replica wrote them, with which term.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from ric.backoff import Backoff
from ric.model import NodeInfo
from ric.sdl import Namespace, SdlBackend, SdlError, encode_value
from ric.types import Clock

__all__ = ["NODES", "SUBSCRIPTIONS", "Fencing", "RuntimeState", "node_summary"]

log = logging.getLogger(__name__)

NODES = "ric.nodes"
SUBSCRIPTIONS = "ric.subscriptions"
RETRY_MIN_S = 0.1
"""First wait before writing records again when the store fails; it doubles up to the next."""
RETRY_MAX_S = 5.0
"""Longest wait between two attempts to write records when the store fails."""

_DELETE = object()


class Fencing(Protocol):
    """How a replica's writes about nodes carry its terms (``ric.cluster.Cluster``)."""

    replica_id: str

    def term_of(self, node: str) -> int | None:
        """The term this replica holds ``node``'s lease with, or None."""
        ...

    async def write_fenced(
        self, namespace: str, writes: Sequence[tuple[str, bytes | None, int]]
    ) -> list[str]:
        """Write each ``(key, value or None to delete, term)`` unless fenced; refused keys."""
        ...


def node_summary(info: NodeInfo) -> dict[str, Any]:
    """What identifies a node and what it offers, as the status API shows it."""
    return {
        "id": str(info.id),
        "type": info.id.type.value,
        "plmn": str(info.id.plmn),
        "vendor": info.vendor,
        "software_version": info.software_version,
        "ran_functions": [
            {"id": f.id, "oid": f.oid, "name": f.short_name, "revision": f.revision}
            for f in sorted(info.ran_functions.values(), key=lambda f: f.id)
        ],
        "cells": [
            {
                "id": str(c.id),
                "pci": c.pci,
                "band": c.band,
                "bandwidth_prbs": c.bandwidth_prbs,
                "active": c.active,
            }
            for c in sorted(info.cells.values(), key=lambda c: str(c.id))
        ],
    }


class RuntimeState:
    """Keeps ``ric.nodes`` and ``ric.subscriptions`` in ``backend`` in step with the runtime.

    The runtime calls the sync methods from its event handlers; they only queue the write.
    ``start`` gives the task group the flushes run in; ``flush`` writes everything queued now;
    ``close`` flushes for the last time (the runtime calls it at shutdown, before the store is
    closed). A failed write is retried after a wait on ``clock`` (real time unless given) that
    doubles from ``RETRY_MIN_S`` to ``RETRY_MAX_S``.
    """

    def __init__(
        self,
        backend: SdlBackend,
        ric_id: str,
        time: Callable[[], float],
        *,
        clock: Clock | None = None,
        fencing: Fencing | None = None,
    ) -> None:
        self.fencing = fencing
        """The replica's terms, when the runtime is one replica of a RIC; writes are fenced."""
        self.refused = 0
        """Writes Redis refused because a later owner of their node fenced this replica."""
        self._nodes_ns = Namespace(backend, NODES)
        self._subs_ns = Namespace(backend, SUBSCRIPTIONS)
        self._ric_id = ric_id
        self._time = time
        self._retry = Backoff(RETRY_MIN_S, RETRY_MAX_S, clock=clock)
        """Waits between attempts while the store fails to take a write."""
        self.nodes: dict[str, dict[str, Any]] = {}
        """Every node record, by node id: loaded at start, then kept current."""
        self.subscriptions: dict[str, list[dict[str, Any]]] = {}
        """The subscription records last written (or loaded) for each node."""
        self.restored: dict[str, list[dict[str, Any]]] = {}
        """The previous run's subscriptions of the nodes that have not come back yet."""
        self.recording = True
        """Whether subscription changes are recorded (off from the start of shutdown, so the
        deletes a graceful stop sends do not erase what is re-armed after a restart)."""
        self._pending: dict[tuple[str, str], tuple[Any, int | None]] = {}
        """(namespace, key) -> (value or _DELETE, the term it is written with)."""
        self._tg: asyncio.TaskGroup | None = None
        self._flusher: asyncio.Task[None] | None = None

    async def load(self) -> None:
        """Read the records a previous run left (a store that cannot be read is logged: the
        runtime starts without them)."""
        log.info("shared data layer: %s", self._nodes_ns.backend.describe())
        try:
            nodes = await self._nodes_ns.items()
            subscriptions = await self._subs_ns.items()
        except SdlError as exc:
            log.error("cannot read the runtime's records from the SDL: %s", exc)
            return
        others = set()
        for node, record in nodes.items():
            if not isinstance(record, dict):
                continue
            if record.get("ric_id", self._ric_id) != self._ric_id:
                others.add(node)  # last held by another runtime sharing the store
                continue
            self.nodes[node] = {**record, "connected": False}
        for node, records in subscriptions.items():
            if isinstance(records, list) and node not in others:
                kept = [r for r in records if isinstance(r, dict)]
                self.subscriptions[node] = kept
                self.restored[node] = kept
        if self.nodes or self.restored:
            log.info(
                "restored %d known nodes and the subscriptions of %d from the SDL",
                len(self.nodes),
                len(self.restored),
            )

    def start(self, tg: asyncio.TaskGroup) -> None:
        """Write queued records in ``tg`` from now on."""
        self._tg = tg
        self._kick()

    # -- what the runtime reports --------------------------------------------------------

    def node_up(self, info: NodeInfo) -> None:
        """A node completed setup."""
        node = str(info.id)
        self.restored.pop(node, None)
        self._put_node(info, connected=True)

    def node_changed(self, info: NodeInfo) -> None:
        """A connected node changed its cells or RAN functions."""
        self._put_node(info, connected=True)

    def node_down(self, info: NodeInfo) -> None:
        """A node's session ended."""
        self._put_node(info, connected=False)

    def subscriptions_changed(self, node: str, records: list[dict[str, Any]]) -> None:
        """The subscriptions held on ``node`` are now ``records``."""
        if not self.recording or self.subscriptions.get(node) == records:
            return
        self.subscriptions[node] = records
        self._queue(SUBSCRIPTIONS, node, records if records else _DELETE)

    def _put_node(self, info: NodeInfo, *, connected: bool) -> None:
        node = str(info.id)
        now = self._time()
        first = self.nodes.get(node, {}).get("first_seen", now)
        record = {
            **node_summary(info),
            "first_seen": first,
            "last_seen": now,
            "connected": connected,
            "ric_id": self._ric_id,
        }
        if self.fencing is not None:
            record["replica"] = self.fencing.replica_id
            record["term"] = self.fencing.term_of(node)
        self.nodes[node] = record
        self._queue(NODES, node, record)

    # -- writing ---------------------------------------------------------------------------

    def _queue(self, namespace: str, key: str, value: Any) -> None:
        self._pending.pop((namespace, key), None)  # re-queued last: writes keep their order
        term = None if self.fencing is None else self.fencing.term_of(key)
        self._pending[(namespace, key)] = (value, term)
        self._kick()

    def _kick(self) -> None:
        if self._tg is None or not self._pending:
            return
        if self._flusher is None or self._flusher.done():
            flush = self._flush_all()
            try:
                self._flusher = self._tg.create_task(flush, name="sdl:runtime-state")
            except RuntimeError:  # the task group has ended: close() writes what is queued
                flush.close()
                self._tg = None

    async def _flush_all(self) -> None:
        retry = self._retry
        retry.reset()
        while self._pending:
            batch = dict(self._pending)
            self._pending.clear()
            try:
                await self._write(batch)
                retry.reset()
            except asyncio.CancelledError:  # flush() takes over: nothing is lost
                for item, value in batch.items():
                    self._pending.setdefault(item, value)
                raise
            except SdlError as exc:
                log.warning("cannot write the runtime's records to the SDL (retrying): %s", exc)
                for item, value in batch.items():
                    self._pending.setdefault(item, value)  # newer values stay
                await retry.sleep()

    async def _write(self, batch: Mapping[tuple[str, str], tuple[Any, int | None]]) -> None:
        if self.fencing is not None:
            await self._write_fenced(self.fencing, batch)
            return
        for ns in (self._nodes_ns, self._subs_ns):
            mine = {key: value for (name, key), (value, _) in batch.items() if name == ns.name}
            gone = [key for key, value in mine.items() if value is _DELETE]
            if gone:
                await ns.delete(*gone)
            await ns.set_many({k: v for k, v in mine.items() if v is not _DELETE})

    async def _write_fenced(
        self, fencing: Fencing, batch: Mapping[tuple[str, str], tuple[Any, int | None]]
    ) -> None:
        for namespace in (NODES, SUBSCRIPTIONS):
            writes = [
                # A node this replica never held (term None) writes with term 0: refused as
                # soon as any owner has fenced the node.
                (key, None if value is _DELETE else encode_value(value, key), term or 0)
                for (name, key), (value, term) in batch.items()
                if name == namespace
            ]
            if not writes:
                continue
            refused = await fencing.write_fenced(namespace, writes)
            if refused:
                self.refused += len(refused)
                log.warning(
                    "the SDL refused this replica's writes to %s for %s: a later owner fenced "
                    "them (this replica was deposed)",
                    namespace,
                    ", ".join(refused),
                )

    async def close(self) -> None:
        """Write everything queued, then no more (the runtime calls it as it shuts down)."""
        self._tg = None
        await self.flush()

    async def flush(self) -> None:
        """Write everything queued now; gives up (logging what is lost) if the store fails."""
        flusher, self._flusher = self._flusher, None
        if flusher is not None and not flusher.done():
            flusher.cancel()
            try:
                await flusher
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
        if not self._pending:
            return
        batch = dict(self._pending)
        self._pending.clear()
        try:
            await self._write(batch)
        except SdlError as exc:
            log.error("the runtime's last %d records were not written: %s", len(batch), exc)

    # -- reading ---------------------------------------------------------------------------

    def known_nodes(self, connected: Mapping[str, object]) -> list[dict[str, Any]]:
        """The records of the known nodes that are not in ``connected``, by id."""
        return [
            {**record, "connected": False}
            for node, record in sorted(self.nodes.items())
            if node not in connected
        ]

    def restored_subscriptions(self, connected: Mapping[str, object]) -> list[dict[str, Any]]:
        """The previous run's subscriptions of nodes not in ``connected``, as ``restored``."""
        return [
            {**record, "state": "restored"}
            for node, records in sorted(self.restored.items())
            if node not in connected
            for record in records
        ]
