"""Replicas of one RIC: membership, node leases with terms, fencing, and what a replica does
when it loses Redis.

N ``ric run`` processes with the same ``ric_id``, ``[sdl] backend = "redis"`` and
``[cluster] enabled = true`` form one RIC. Each terminates E2 for the nodes that set up at it.
Everything they agree on lives in Redis, under the RIC's own namespace
``ric.cluster.<ric_id>`` (one hash tag, so the scripts stay valid on a Redis Cluster)::

    m:<replica>      membership: expires after member_ttl_s unless the replica beats again
    members          sorted set replica -> last beat (Unix ms), for listing
    lease:<node>     "<term> <replica>", expires after lease_ttl_s unless renewed
    term:<node>      the node's term counter (INCR: it only grows)
    leases           the nodes that have had a lease, for listing

**Taking a node.** At E2 setup (after the local checks, before the E2SetupResponse) the
replica takes the node's lease in one Lua script: it INCRs the term and SETs the lease with
PX. The lease is taken when there is none (expired or released), when this replica holds it
(a reconnection here: a new term all the same, so anything the old session had in flight is
fenced), or when its holder is no longer a member (its membership key expired: dead or cut
off from Redis). Otherwise the setup is refused with an E2SetupFailure naming the owner, and
the node tries its next RIC endpoint. So a takeover needs the old owner's lease *or* its
membership to have expired; a live owner keeps its nodes.

**Fencing.** Before the setup is answered, the new owner raises the fence of the node's
records (``ric.nodes`` and ``ric.subscriptions``, key = node id) to its term; every write the
runtime makes about the node carries the term it owned the node with, and the write script
refuses a term below the fence (``RedisBackend.write_fenced``). A deposed owner's late writes
are therefore refused, however late they arrive. The control path checks the local view of
the lease (``may_act``) before a control leaves.

**Renewal and partition.** Every ``renew_interval_s`` one script renews all this replica's
leases, checking each still holds ``<term> <replica>``; a lease found taken ends that node's
session. When no renewal has succeeded for ``lease_ttl_s - 2 x renew_interval_s`` (Redis
unreachable, or too slow), the replica stops acting: it closes every E2 session (the nodes
fail over to another endpoint), refuses controls and setups, and ``/readyz`` says why, all
before any lease it held can expire and be taken. It acts again after the next successful
renewal round. A timer armed at each success does this, so a hung Redis call cannot delay it.

**The whole RIC to every xApp.** ``ric.cluster_streams`` routes an xApp's control for a node
another replica owns to that owner through the node's control stream in Redis (a stream,
because it outlives the replica that read it: the next owner claims what a dead one left
pending and re-sends it with the same ``control_id``, which the node applies at most once),
forwards reports of every replica's nodes to every replica's xApps, and tells them node up
and down for the nodes other replicas own. At takeover the new owner re-arms the node's
subscriptions at once for the xApps of every live replica. The conflict arbiter's window is
shared too: ``ric.conflicts_shared``.

The term is checked by the RIC before a control leaves, and it is on the wire (the E2
ControlRequest's ``term``): a node refuses a control whose term is below the highest it has
seen, so a deposed owner cannot act for it even if it still reaches the node.

Simplified for now: a forwarded node's NodeInfo is the one it set up with (later configuration updates are not
forwarded); an xApp is not told the admission status of its subscriptions on other replicas'
nodes. Redis is one master (with Sentinel when configured), not a Redis Cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ric.config import ClusterSettings
from ric.errors import ConfigError
from ric.model import Cause, CauseCode
from ric.sdl import SdlBackend, SdlError
from ric.sdl.state import NODES, SUBSCRIPTIONS
from ric.types import Check, Clock, Sensor, StatSample

if TYPE_CHECKING:
    from ric.sdl.redis import RedisBackend
    from ric.view import RuntimeView

__all__ = ["Cluster", "Lease", "cluster_namespace"]

log = logging.getLogger(__name__)


def cluster_namespace(ric_id: str) -> str:
    """The SDL namespace holding the replicas' membership and leases of RIC ``ric_id``."""
    return f"ric.cluster.{ric_id}"


@dataclass(frozen=True, slots=True)
class Lease:
    """This replica's lease on one node: its term and the value the lease key holds."""

    node: str
    term: int

    def value(self, replica: str) -> str:
        """The lease key's value while ``replica`` holds it."""
        return f"{self.term} {replica}"


async def _wait(event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set or ``timeout`` s pass; whether it is set. Not wait_for: on
    Python 3.11 wait_for returns instead of raising when it is cancelled just as its waiter
    completes (a release sets the event while the runtime stops the loop), and the
    cancellation is lost."""
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=timeout)
    finally:
        waiter.cancel()
    return event.is_set()


def _owner(value: str) -> tuple[int, str]:
    """(term, replica) of a lease value ``<term> <replica>``."""
    term, _, replica = value.partition(" ")
    return (int(term) if term.isdigit() else 0), replica


class Cluster:
    """This process as one replica of the RIC (see the module docstring).

    The runtime builds it when ``[cluster] enabled``, starts it right after the E2 server
    listens (the default replica id names the bound port) and stops it before the SDL
    closes. ``on_lost(nodes, reason)`` is called when this replica must stop acting for
    ``nodes`` (the runtime closes their sessions). ``e2_port`` gives the bound E2 port.
    """

    name = "cluster"

    def __init__(
        self,
        settings: ClusterSettings,
        ric_id: str,
        backend: SdlBackend,
        clock: Clock,
        *,
        e2_port: Callable[[], int],
        on_lost: Callable[[Sequence[str], str], None],
    ) -> None:
        if backend.kind != "redis":
            raise ConfigError(
                "cluster.enabled",
                f"replicas share Redis: set sdl.backend = 'redis' (the SDL is {backend.kind})",
            )
        self.settings = settings
        self.ric_id = ric_id
        self.namespace = cluster_namespace(ric_id)
        self._backend = cast("RedisBackend", backend)  # its kind was checked just above
        self._clock = clock
        self._e2_port = e2_port
        self._on_lost = on_lost
        self.replica_id = settings.replica_id
        """This replica's id (resolved at start when the setting is empty)."""
        self._leases: dict[str, Lease] = {}
        self._claiming: set[str] = set()
        self._releases: dict[str, str] = {}
        self._wake = asyncio.Event()
        self._acting = False
        self._why = "not started"
        self._last_ok = 0.0
        """Monotonic time the last successful renewal round was sent."""
        self._deadline: asyncio.TimerHandle | None = None
        self._started = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._started_at = 0.0
        self._renew_failing = False
        self._problem = ""
        """What the last failed renewal round met."""
        self._stopping = False
        self.takeovers = 0
        """Nodes this replica took from another replica (a higher term than 1, other holder)."""
        self.lost = 0
        """Node leases this replica lost (taken over, or dropped when it stopped acting)."""
        self.refused = 0
        """Node setups refused (another live replica owns the node, or this one cannot act)."""
        self.renewal_failures = 0
        """Renewal rounds that failed (Redis unreachable or too slow)."""
        self.fenced = 0
        """Writes about nodes that Redis refused because a later owner fenced this replica."""
        self._sensor: Sensor | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self, runtime: RuntimeView | None = None) -> None:
        """Resolve the replica id, beat once, and start the heartbeat and renewal loops."""
        if self._tasks:
            raise RuntimeError("the cluster component is started already")
        if not self.replica_id:
            self.replica_id = f"{socket.gethostname()}:{self._e2_port()}"
        if runtime is not None:
            self._sensor = runtime.sensor
            runtime.sensor.stats_added("cluster", self.samples)
        self._started_at = self._clock.time()
        try:
            await self._beat()
        except (SdlError, TimeoutError) as exc:  # the loops retry; claims wait for Redis
            log.warning("replica %s: first heartbeat failed: %s", self.replica_id, exc)
        self._acting = True
        self._why = ""
        self._renewed(self._clock.monotonic())
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._heartbeats(), name=f"cluster-heartbeat:{self.replica_id}"),
            loop.create_task(self._renewals(), name=f"cluster-renew:{self.replica_id}"),
        ]
        self._started.set()
        log.info(
            "replica %s of RIC %s: lease TTL %g s, renewed every %g s, stops acting %g s "
            "after its last renewal",
            self.replica_id,
            self.ric_id,
            self.settings.lease_ttl_s,
            self.settings.renew_interval_s,
            self.settings.safety_margin_s,
        )

    async def stop(self) -> None:
        """Stop the loops, give up the leases still held and leave the membership, so that
        another replica may take the nodes at once (best effort: Redis may be gone)."""
        tasks, self._tasks = self._tasks, []
        self._stopping = True  # the loops end even if a cancellation were lost
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._deadline is not None:
            self._deadline.cancel()
        if self._sensor is not None:
            self._sensor.stats_removed("cluster")
            self._sensor = None
        if not tasks:
            return
        self._acting = False
        self._why = "stopped"
        for node, lease in self._leases.items():
            self._releases[node] = lease.value(self.replica_id)
        self._leases.clear()
        try:
            async with asyncio.timeout(self.settings.renew_interval_s * 2):
                await self._release_all()
                await self._backend.leave(self.namespace, self.replica_id)
        except (SdlError, TimeoutError) as exc:
            log.warning("replica %s could not leave cleanly: %s", self.replica_id, exc)

    def samples(self) -> Iterator[StatSample]:
        """The ``ric_cluster_*`` series, offered to the sensors while the replica runs."""
        yield (
            "ric_cluster_acting",
            "gauge",
            "1 while this replica acts for nodes.",
            {},
            self._acting,
        )
        yield (
            "ric_cluster_leases",
            "gauge",
            "Node leases this replica holds.",
            {},
            len(self._leases),
        )
        yield (
            "ric_cluster_takeovers",
            "counter",
            "Nodes taken over from another replica (with a higher term).",
            {},
            self.takeovers,
        )
        yield (
            "ric_cluster_leases_lost",
            "counter",
            "Node leases lost: taken by another replica, or dropped on stopping to act.",
            {},
            self.lost,
        )
        yield (
            "ric_cluster_setups_refused",
            "counter",
            "E2 setups refused: another live replica owns the node, or this one cannot act.",
            {},
            self.refused,
        )
        yield (
            "ric_cluster_renewal_failures",
            "counter",
            "Lease renewal rounds that failed (Redis unreachable or too slow).",
            {},
            self.renewal_failures,
        )
        yield (
            "ric_cluster_fenced_writes",
            "counter",
            "Writes about nodes refused by Redis because a later owner fenced this replica.",
            {},
            self.fenced,
        )

    def checks(self) -> list[Check]:
        """Readiness: whether this replica acts for its nodes, and if not why."""
        if not self._acting:
            return [Check("cluster", False, f"replica {self.replica_id}: {self._why}")]
        ago = self._clock.monotonic() - self._last_ok
        return [
            Check(
                "cluster",
                True,
                f"replica {self.replica_id}: {len(self._leases)} node leases, last renewal "
                f"{ago:.1f} s ago",
            )
        ]

    # -- what the runtime asks ------------------------------------------------------------------

    @property
    def acting(self) -> bool:
        """Whether this replica acts for nodes now (false while it cannot renew)."""
        return self._acting

    @property
    def redis(self) -> RedisBackend:
        """The Redis SDL backend the replicas share (``ric.cluster_streams`` uses it too)."""
        return self._backend

    @property
    def last_renewal(self) -> float:
        """When (monotonic s) the last successful renewal round was sent: no lease this
        replica holds expires before this + ``lease_ttl_s``."""
        return self._last_ok

    @property
    def leases(self) -> dict[str, Lease]:
        """This replica's node leases, by node id (a copy)."""
        return dict(self._leases)

    def term_of(self, node: str) -> int | None:
        """The term this replica holds ``node`` with, or None."""
        lease = self._leases.get(node)
        return None if lease is None else lease.term

    def may_act(self, node: str) -> str | None:
        """None when this replica may send to ``node`` now (it holds the lease, renewed
        within the safety margin), else why not. Local: no Redis round trip."""
        if not self._acting:
            return f"replica {self.replica_id} is not acting for its nodes: {self._why}"
        if node not in self._leases:
            return f"replica {self.replica_id} does not hold the lease of node {node}"
        if self._clock.monotonic() - self._last_ok >= self.settings.safety_margin_s:
            return f"replica {self.replica_id} has not renewed its leases in time"
        return None

    async def claim(self, node: str) -> Cause | None:
        """Take ``node``'s lease at its E2 setup; None when taken, else the cause the node is
        told in its E2SetupFailure (the owner, or why this replica cannot take nodes now)."""
        if not await _wait(self._started, self.settings.lease_ttl_s):
            self.refused += 1
            return Cause(CauseCode.RIC_REQUEST_SYSTEM_NOT_READY, "the replica is not started")
        if not self._acting:
            self.refused += 1
            return Cause(
                CauseCode.RIC_REQUEST_SYSTEM_NOT_READY,
                f"replica {self.replica_id} of RIC {self.ric_id} takes no nodes now: {self._why}",
            )
        if node in self._claiming:
            self.refused += 1
            return Cause(
                CauseCode.MISC_DUPLICATE_NODE_ID, f"node {node} is setting up here already"
            )
        self._claiming.add(node)
        try:
            cause = await self._claim(node)
        finally:
            self._claiming.discard(node)
        if cause is not None:
            self.refused += 1
        return cause

    async def _claim(self, node: str) -> Cause | None:
        ttl_ms = int(self.settings.lease_ttl_s * 1000)
        before = self._leases.pop(node, None)
        try:
            async with asyncio.timeout(self.settings.renew_interval_s * 2):
                term, holder = await self._backend.claim_lease(
                    self.namespace, node, self.replica_id, ttl_ms
                )
                if term == 0:
                    return Cause(
                        CauseCode.MISC_DUPLICATE_NODE_ID,
                        f"node {node} is owned by replica {holder} of RIC {self.ric_id}, which "
                        "is alive; connect to it or to another replica",
                    )
                # Fence the old owner before the node is answered: its writes are refused now.
                for namespace in (NODES, SUBSCRIPTIONS):
                    await self._backend.raise_fence(namespace, node, term)
        except (SdlError, TimeoutError) as exc:
            if before is not None:
                self._leases[node] = before
            return Cause(
                CauseCode.RIC_REQUEST_SYSTEM_NOT_READY,
                f"replica {self.replica_id} cannot take node {node}: "
                f"{exc or 'Redis did not answer in time'}",
            )
        self._leases[node] = Lease(node, term)
        if holder and holder != self.replica_id:
            self.takeovers += 1
            log.warning(
                "replica %s took node %s over from replica %s with term %d",
                self.replica_id,
                node,
                holder,
                term,
                extra={"node": node},
            )
        else:
            log.info(
                "replica %s owns node %s with term %d",
                self.replica_id,
                node,
                term,
                extra={"node": node},
            )
        return None

    def release(self, node: str, term: int | None = None) -> None:
        """``node``'s session here ended: give its lease up (in the renewal loop, at once)."""
        lease = self._leases.get(node)
        if lease is None or (term is not None and lease.term != term):
            return
        del self._leases[node]
        self._releases[node] = lease.value(self.replica_id)
        self._wake.set()

    async def snapshot(self) -> dict[str, Any]:
        """The RIC as Redis knows it: the replicas with their last heartbeat and the nodes
        each owns, and every lease with its term (SdlError when Redis cannot be read)."""
        members = await self._backend.members(self.namespace)
        leases = await self._backend.leases(self.namespace)
        owned: dict[str, list[dict[str, Any]]] = {}
        lease_rows = []
        for node, (value, ttl_ms) in leases.items():
            term, replica = _owner(value)
            row = {"node": node, "replica": replica, "term": term, "expires_in_ms": ttl_ms}
            lease_rows.append(row)
            owned.setdefault(replica, []).append({"node": node, "term": term})
        replicas = []
        for replica, beat_ms, member in members:
            info: dict[str, Any] = {}
            if member is not None:
                with contextlib.suppress(ValueError):
                    info = json.loads(member)
            replicas.append(
                {
                    "id": replica,
                    "alive": member is not None,
                    "self": replica == self.replica_id,
                    "last_heartbeat_unix_ms": beat_ms,
                    "e2_port": info.get("e2_port"),
                    "host": info.get("host"),
                    "pid": info.get("pid"),
                    "nodes": owned.get(replica, []),
                }
            )
        return {
            "ric_id": self.ric_id,
            "replica": self.replica_id,
            "acting": self._acting,
            "reason": self._why,
            "settings": {
                "lease_ttl_s": self.settings.lease_ttl_s,
                "renew_interval_s": self.settings.renew_interval_s,
                "member_ttl_s": self.settings.member_ttl_s,
                "heartbeat_interval_s": self.settings.heartbeat_interval_s,
            },
            "replicas": replicas,
            "leases": lease_rows,
        }

    # -- fenced writes (ric.sdl.state) ----------------------------------------------------------

    async def write_fenced(
        self, namespace: str, writes: Sequence[tuple[str, bytes | None, int]]
    ) -> list[str]:
        """Write each ``(node, value or None to delete, term)`` of ``namespace`` unless a
        later owner has raised the node's fence; the nodes whose writes were refused."""
        refused = await self._backend.write_fenced(namespace, writes)
        self.fenced += len(refused)
        return refused

    # -- loops ------------------------------------------------------------------------------------

    async def _beat(self) -> None:
        value = json.dumps(
            {
                "replica": self.replica_id,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "e2_port": self._e2_port(),
                "started_unix_s": self._started_at,
            }
        ).encode()
        async with asyncio.timeout(self.settings.heartbeat_interval_s):
            await self._backend.heartbeat(
                self.namespace,
                self.replica_id,
                value,
                int(self.settings.member_ttl_s * 1000),
                int(self._clock.time() * 1000),
            )

    async def _heartbeats(self) -> None:
        failing = False
        while not self._stopping:
            await asyncio.sleep(self.settings.heartbeat_interval_s)
            try:
                await self._beat()
            except (SdlError, TimeoutError) as exc:
                if not failing:  # once per outage; the renewal loop decides what it means
                    log.warning("replica %s: heartbeat failed: %s", self.replica_id, exc)
                failing = True
            else:
                failing = False

    async def _renewals(self) -> None:
        while not self._stopping:
            await _wait(self._wake, self.settings.renew_interval_s)
            self._wake.clear()
            if not self._stopping:
                await self._round()

    async def _release_all(self) -> None:
        for node, value in list(self._releases.items()):
            await self._backend.release_lease(self.namespace, node, value)
            if self._releases.get(node) == value:
                del self._releases[node]

    async def _round(self) -> None:
        """One renewal round: releases first, then every lease in one script."""
        sent = self._clock.monotonic()
        held = dict(self._leases)
        try:
            async with asyncio.timeout(self.settings.renew_interval_s):
                await self._release_all()
                renewed = await self._backend.renew_leases(
                    self.namespace,
                    {n: lease.value(self.replica_id) for n, lease in held.items()},
                    int(self.settings.lease_ttl_s * 1000),
                )
        except (SdlError, TimeoutError) as exc:
            self._problem = str(exc) or "Redis did not answer in time"
            self.renewal_failures += 1
            if not self._renew_failing:
                log.warning(
                    "replica %s cannot renew its %d node leases: %s",
                    self.replica_id,
                    len(held),
                    self._problem,
                )
            self._renew_failing = True
            if not self._acting:
                self._why = self._stopped_why()
            return
        self._renew_failing = False
        lost = [n for n, ok in renewed.items() if not ok and self._leases.get(n) == held[n]]
        for node in lost:
            del self._leases[node]
        if lost:
            self.lost += len(lost)
            self._on_lost(lost, f"replica {self.replica_id} lost the node's lease")
        self._renewed(sent)
        if not self._acting:
            self._acting = True
            self._why = ""
            log.warning("replica %s renews again: it takes nodes again", self.replica_id)

    def _renewed(self, sent: float) -> None:
        """A renewal round sent at ``sent`` succeeded: re-arm the stop-acting timer."""
        self._last_ok = sent
        if self._deadline is not None:
            self._deadline.cancel()
        loop = asyncio.get_running_loop()
        delay = sent + self.settings.safety_margin_s - self._clock.monotonic()
        self._deadline = loop.call_later(max(delay, 0.0), self._stop_acting)

    def _stopped_why(self) -> str:
        return (
            f"no lease renewal for {self.settings.safety_margin_s:g} s (cannot renew its node "
            f"leases: {self._problem or 'Redis did not answer in time'})"
        )

    def _stop_acting(self) -> None:
        """No renewal succeeded within the safety margin: stop acting before any lease held
        can expire (another replica may take the nodes then)."""
        self._deadline = None
        if not self._acting:
            return
        self._acting = False
        self._why = self._stopped_why()
        nodes = sorted(self._leases)
        self._leases.clear()
        self.lost += len(nodes)
        log.error(
            "replica %s stops acting for its %d nodes: %s", self.replica_id, len(nodes), self._why
        )
        self._on_lost(nodes, f"replica {self.replica_id} stopped acting: {self._why}")
