"""xApps see the whole RIC: controls routed to the node's owner and reports forwarded between
replicas, through Redis Streams (``ric.cluster`` keeps the leases this relies on).

Why streams: an entry outlives the replica that read it. A control queued for a node's owner
stays in the node's control stream, pending in its consumer group, until an owner acknowledges
it; when the owner dies the node's next owner claims the pending entries at takeover and
re-sends them with the same ``control_id`` (a node answers an id it already applied with its
first answer, without applying it again). Pub/sub or a replica-to-replica RPC would lose
what the dead replica held. The keys, under the RIC's hash tag ``ric.cluster.<ric_id>`` (one
slot on a Redis Cluster)::

    ctl:<node>       stream, group "owners": controls for the node's owner, MAXLEN ~
                     cluster.control_stream_maxlen; fields id (control_id), xapp, origin
                     (the replica the xApp is on), term (of the owner the origin saw),
                     deadline_ms (Unix), action (the northbound contract's Action bytes)
    out:<replica>    stream: outcomes for the controls routed from that replica (same MAXLEN;
                     it expires 100 membership TTLs after its last outcome);
                     fields id, kind, cause, cause_detail, detail, node, by (the replica that
                     sent it to the node), term (its lease term)
    rep:<node>       stream: the node's indications for other replicas' xApps, one entry per
                     indication batch, MAXLEN ~ cluster.report_stream_maxlen; each field
                     ``<replica>|<xapp>`` holds a northbound ReportBatch (the columnar matrix
                     as the northbound API sends it: names, entity ids, packed doubles)
    int:<replica>    the reports the replica's xApps declare (their northbound Hello), with
                     a TTL of max(member_ttl_s, 10 x renew_interval_s): an owner subscribes
                     on its nodes for the union
    info:<node>      the node's NodeInfo (a northbound Node) as its owner took it

**Controls.** An xApp's control for a cell of a node another replica owns is checked here
(declaration, rate limit, grant, the conflict arbiter, at most
``cluster.max_routed_in_flight`` waiting), given a control id and XADDed to the node's
control stream. The owner reads its nodes' streams through the group, checks the node offers
the action, sends it and XADDs the answer to the origin's outcome stream, then XACKs the
entry. A new owner claims every entry still pending (XAUTOCLAIM) when the node sets up. The origin completes the xApp's
control with the first outcome for its id and ignores any later one (counted): an owner that
dies after answering but before XACK lets the next owner re-send, and the node repeats its
first answer. The origin's timer ends a control that gets no outcome in time, as timed out
when the node had a live owner and not connected when it had none; the owner never sends an
entry past its deadline (it answers timed out instead). The control's one audit record is
written by the origin, where the xApp waits and where the one outcome is decided: an owner
that recorded it could die before doing so, and a re-send would record it twice.

**Reports.** Every renewal interval a replica publishes its xApps' report declarations
(``int:``) and reads the others'. An owner keeps, per other replica and xApp, a ``ForwardHost`` that its
subscription manager serves like a local xApp (so E2 subscriptions are shared and replaced
make-before-break; the tap cuts the xApp's own names at its own period); what it is given is
XADDed, one entry per node per loop turn. A replica XREADs (BLOCK) the report streams of the
nodes other replicas own and hands each report to its xApp as if local. Node up and down for
those nodes follow the leases and membership it reads every renewal interval: across a
takeover the xApp sees a node-down / node-up pair. At takeover the new owner subscribes at once
for every live replica's xApps (in the node's setup), and reads the interest again if the
node's registered subscription record names an xApp it does not serve yet.

Simplified: a node's NodeInfo is the one its owner had at setup (later configuration
updates are not forwarded); statuses of remote subscriptions (admitted names) are not sent to
the xApp; report streams are read from the newest entry when first watched, so a replica does
not replay history; a routed control is not rate-limited again at the owner. Latency across
replicas is at least one Redis round trip each way, plus up to ``BLOCK_MS`` for a new stream.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
from collections.abc import Awaitable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

from ric._proto.e2.v1 import e2_pb2
from ric._proto.xapp.v1 import xapp_pb2 as pb
from ric.actions import CccControlAction, Conflict, ControlAction, ControlOutcome, OutcomeKind
from ric.actions import rc_key as action_rc_key
from ric.conflicts import Token
from ric.e2.convert import cause_from_proto, control_request
from ric.host import HostServices, XAppHost
from ric.ids import NodeId
from ric.model import Cause, CauseCode, NodeInfo
from ric.northbound import codec
from ric.report import KpmReport
from ric.sdl import SdlError
from ric.sdl.state import SUBSCRIPTIONS
from ric.types import Cancellable, Clock, Sensor, StatSample
from ric.xapp import SubscriptionStatus

if TYPE_CHECKING:
    from ric.cluster import Cluster
    from ric.control import ControlRouter
    from ric.e2.session import NodeSession

__all__ = ["FORWARDED_REQUESTOR", "ClusterRouting", "ForwardHost", "ReplicaCore"]

log = logging.getLogger(__name__)

FORWARDED_REQUESTOR: Final = 65535
"""The RIC request id requestor of controls an owner sends for another replica's xApp (xApp
hosts use their index from 1, subscriptions 0)."""

GROUP: Final = b"owners"
"""The consumer group of every node's control stream: one consumer per replica."""

BLOCK_MS: Final = 100
"""How long one blocking stream read waits: also how soon a new stream is read."""

READ_COUNT: Final = 256
"""Entries taken per stream per read."""

SPAWNED_LIMIT_S: Final = 30.0
"""Longest a one-off job (a takeover's claims, an outcome's write) may take."""

MAX_FORWARD_BUFFER: Final = 10_000
"""Reports waiting to be XADDed for other replicas; beyond, the oldest are dropped (counted)."""


class ReplicaCore(Protocol):
    """What the routing uses of the runtime."""

    @property
    def sessions(self) -> Mapping[str, NodeSession]:
        """The live node sessions, by node id."""
        ...

    @property
    def hosts(self) -> Sequence[XAppHost]:
        """The local xApps' hosts."""
        ...

    @property
    def sensor(self) -> Sensor:
        """Every sensor at once."""
        ...

    @property
    def clock(self) -> Clock:
        """The runtime's clock."""
        ...

    @property
    def controls(self) -> ControlRouter:
        """The local control router (its checks, arbiter and id prefix)."""
        ...

    def resync_subscriptions(self) -> None:
        """Bring every live node's subscriptions in line with the hosts (forward ones too)."""
        ...

    def remote_nodes_changed(self, down: Sequence[NodeInfo], up: Sequence[NodeInfo]) -> None:
        """Nodes owned elsewhere went (``down``) or came (``up``): tell the xApps."""
        ...


class ForwardHost(XAppHost):
    """Another replica's xApp as this owner's subscription manager sees it: it declares that
    xApp's reports, and what it is given goes to the node's report stream."""

    mode = "forward"

    def __init__(
        self,
        cls: type[Any],
        origin: str,
        routing: ClusterRouting,
        services: HostServices,
        sensor: Sensor,
        clock: Clock,
    ) -> None:
        super().__init__(cls, cls.Config(), index=0, services=services, sensor=sensor, clock=clock)
        self.origin = origin
        """The replica the xApp is on."""
        self.live = True
        self._routing = routing

    def __repr__(self) -> str:
        return f"ForwardHost({self.name}@{self.origin})"

    @property
    def accepting(self) -> bool:
        return self.live

    def deliver(self, report: KpmReport) -> None:
        self.delivered += 1
        self._routing.forward(self.origin, self.name, report)

    def subscription_status(self, index: int, status: SubscriptionStatus) -> None:
        # Kept, not queued: this host never runs a worker, so a queued event would stay.
        self.statuses[(status.node, index)] = status


@dataclass(eq=False)
class _Routed:
    """A control this replica routed to another replica: waiting for its outcome."""

    future: asyncio.Future[ControlOutcome]
    host: XAppHost
    action: ControlAction
    node: str
    started: float
    token: Token
    conflict: Conflict | None
    timer: Cancellable | None = None


@dataclass(eq=False)
class _Sending:
    """A control this owner sent to its node for another replica's xApp."""

    node: str
    entry: bytes
    origin: str
    control_id: str
    session: NodeSession
    term: int
    routed_term: int
    timer: Cancellable | None = None


@dataclass(eq=False)
class _Remote:
    """A node owned by another live replica."""

    info: NodeInfo
    replica: str
    term: int


@dataclass
class _Stats:
    routed: int = 0
    served: int = 0
    resent: int = 0
    late_outcomes: int = 0
    forwarded_batches: int = 0
    forwarded_reports: int = 0
    received_reports: int = 0
    dropped_reports: int = 0
    stream_errors: int = 0
    kinds: dict[str, int] = field(default_factory=dict)


def _s(value: Any) -> str:
    return (
        bytes(value).decode() if isinstance(value, bytes | bytearray | memoryview) else str(value)
    )


class ClusterRouting:
    """Routes this replica's controls to their nodes' owners and forwards reports between
    replicas (see the module docstring). The runtime builds it with its ``Cluster`` when
    ``[cluster] enabled``, starts it after the cluster and stops it before."""

    name = "cluster-routing"

    def __init__(self, cluster: Cluster, core: ReplicaCore, services: HostServices) -> None:
        self._cluster = cluster
        self._core = core
        self._services = services
        self._redis = cluster.redis
        self._ns = cluster.namespace
        self.settings = cluster.settings
        self._ids = itertools.count(1)
        self._instances = itertools.count(1)
        self._routed: dict[str, _Routed] = {}
        self._sending: dict[tuple[int, int], _Sending] = {}
        self._sending_ids: set[str] = set()
        self.remote: dict[str, _Remote] = {}
        """Nodes owned by other live replicas, by node id."""
        self._cells: dict[str, str] = {}
        """Cell id -> the remote node serving it."""
        self._forward: dict[tuple[str, str], tuple[bytes, ForwardHost]] = {}
        self._buffer: dict[str, dict[tuple[str, str], list[KpmReport]]] = {}
        self._buffered = 0
        self._flush = asyncio.Event()
        self._kick_consumer = asyncio.Event()
        self._positions: dict[bytes, bytes] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.stats = _Stats()
        self._failing: dict[str, bool] = {}
        self._stopping = False
        self._spawned: set[asyncio.Task[None]] = set()

    # -- keys ---------------------------------------------------------------------------------

    def _key(self, kind: str, name: str) -> bytes:
        return self._redis.kind_key(self._ns, kind, name)

    async def _cmd(self, doing: str, *args: bytes | str) -> Any:
        # Streams are this module's alone, so they are not part of the SDL's interface; the
        # backend's command path makes their errors SdlErrors naming the server.
        return await self._redis.command(doing, *args)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self, tg: asyncio.TaskGroup) -> None:
        """Start the view, consumer, reader and forwarding loops in ``tg``."""
        if self._tasks:
            raise RuntimeError("cluster routing is started already")
        self._tg = tg
        replica = self._cluster.replica_id
        out = self._key("out", replica)
        try:
            self._positions[out] = await self._last_id(out)
        except SdlError as exc:
            log.warning("replica %s: cannot read its outcome stream yet: %s", replica, exc)
            self._positions[out] = b"0-0"
        self._tasks = [
            tg.create_task(self._views(), name=f"cluster-view:{replica}"),
            tg.create_task(self._consume(), name=f"cluster-controls:{replica}"),
            tg.create_task(self._read(), name=f"cluster-read:{replica}"),
            tg.create_task(self._forwarding(), name=f"cluster-forward:{replica}"),
        ]
        self._core.sensor.stats_added("cluster_routing", self.samples)

    async def stop(self) -> None:
        """Stop the loops; controls still waiting end as not connected (once each)."""
        tasks, self._tasks = self._tasks, []
        self._stopping = True  # the loops end even if a cancellation were lost in a call
        self._flush.set()
        tasks += list(self._spawned)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if tasks:
            self._core.sensor.stats_removed("cluster_routing")
        for cid in list(self._routed):
            self._finish(cid, OutcomeKind.NOT_CONNECTED, detail="the replica is stopping")
        for sending in self._sending.values():
            if sending.timer is not None:
                sending.timer.cancel()
        self._sending.clear()
        self._sending_ids.clear()
        with contextlib.suppress(SdlError, TimeoutError):
            async with asyncio.timeout(self.settings.renew_interval_s):
                await self._cmd("interest", "DEL", self._key("int", self._cluster.replica_id))

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``coro`` in the runtime's task group, bounded in time and ended at stop (a
        call into Redis that never returns must not hold the runtime's shutdown)."""
        if self._tg is None or self._stopping:
            coro.close()
            return

        async def bounded() -> None:
            try:
                async with asyncio.timeout(SPAWNED_LIMIT_S):
                    await coro
            except TimeoutError:
                self._trouble(name, TimeoutError(f"no answer within {SPAWNED_LIMIT_S:g} s"))

        task = self._tg.create_task(bounded(), name=name)
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)
        # A task cancelled before its first step (the runtime stopping) never awaits ``coro``:
        # close it then, or Python warns that it was never awaited. Closing a coroutine that
        # ran to its end does nothing.
        task.add_done_callback(lambda _: coro.close())

    def samples(self) -> Iterator[StatSample]:
        """The ``ric_cluster_*`` routing series."""
        s = self.stats
        yield (
            "ric_cluster_controls_routed",
            "counter",
            "Controls sent to other replicas' nodes.",
            {},
            s.routed,
        )
        yield (
            "ric_cluster_controls_routed_waiting",
            "gauge",
            "Routed controls waiting for their outcome.",
            {},
            len(self._routed),
        )
        yield (
            "ric_cluster_controls_served",
            "counter",
            "Controls sent to this replica's nodes for other replicas' xApps.",
            {},
            s.served,
        )
        yield (
            "ric_cluster_controls_resent",
            "counter",
            "Controls claimed from a previous owner at takeover and sent again with the same id.",
            {},
            s.resent,
        )
        yield (
            "ric_cluster_late_outcomes",
            "counter",
            "Second outcomes of a routed control, ignored (the first one counts).",
            {},
            s.late_outcomes,
        )
        yield (
            "ric_cluster_report_batches_forwarded",
            "counter",
            "Report stream entries written for other replicas' xApps.",
            {},
            s.forwarded_batches,
        )
        yield (
            "ric_cluster_reports_forwarded",
            "counter",
            "Reports written for other replicas' xApps.",
            {},
            s.forwarded_reports,
        )
        yield (
            "ric_cluster_reports_received",
            "counter",
            "Reports of other replicas' nodes handed to this replica's xApps.",
            {},
            s.received_reports,
        )
        yield (
            "ric_cluster_reports_dropped",
            "counter",
            "Reports for other replicas dropped because Redis did not keep up.",
            {},
            s.dropped_reports,
        )
        yield (
            "ric_cluster_stream_errors",
            "counter",
            "Redis stream calls that failed (retried).",
            {},
            s.stream_errors,
        )

    def _trouble(self, loop: str, exc: BaseException | None) -> None:
        """Log a loop's Redis trouble once per outage."""
        if exc is None:
            if self._failing.pop(loop, False):
                log.info("replica %s: %s works again", self._cluster.replica_id, loop)
            return
        self.stats.stream_errors += 1
        if not self._failing.get(loop):
            self._failing[loop] = True
            log.warning("replica %s: %s failed: %s", self._cluster.replica_id, loop, exc)

    # -- what the runtime asks ------------------------------------------------------------------

    def node_infos(self) -> dict[str, NodeInfo]:
        """The nodes other live replicas own, by node id."""
        return {node: r.info for node, r in self.remote.items()}

    def forward_hosts(self) -> list[ForwardHost]:
        """The other replicas' xApps this owner serves reports for."""
        return [host for _, host in self._forward.values()]

    def route(
        self, host: XAppHost, action: ControlAction, timeout: float
    ) -> Awaitable[ControlOutcome] | None:
        """The routed control when ``action``'s cell is on a node another replica owns, else
        None (the local path serves it, or says no node serves the cell)."""
        node = self._cells.get(action.cell)
        if node is None:
            return None
        return self._route(host, action, timeout, node)

    async def _route(
        self, host: XAppHost, action: ControlAction, timeout: float, node: str
    ) -> ControlOutcome:
        started = self._core.clock.monotonic()
        remote = self.remote.get(node)
        node_id = NodeId.parse(node)
        refused = self._core.controls.admit_routed(host, action, node_id)
        if refused is None and len(self._routed) >= self.settings.max_routed_in_flight:
            refused = ControlOutcome(
                OutcomeKind.RATE_LIMITED,
                action,
                node=node_id,
                xapp=host.name,
                detail=f"this replica has cluster.max_routed_in_flight = "
                f"{self.settings.max_routed_in_flight} controls waiting at other replicas",
            )
        token: Token = []
        conflict: Conflict | None = None
        if refused is None:  # the conflict arbiter, shared by the replicas when configured
            arbitrated = await self._core.controls.arbitrate(host, action, node_id)
            if isinstance(arbitrated, ControlOutcome):
                refused = arbitrated
            else:
                token, conflict = arbitrated
        if refused is not None:
            self._core.sensor.control_finished(host.name, refused)
            return refused
        control_id = f"{self._core.controls.control_id_prefix}r{next(self._ids)}"
        future: asyncio.Future[ControlOutcome] = asyncio.get_running_loop().create_future()
        routed = _Routed(future, host, action, node, started, token, conflict)
        self._routed[control_id] = routed
        routed.timer = self._core.clock.call_later(
            timeout, lambda: self._expire(control_id, timeout)
        )
        msg = pb.Action()
        try:
            codec.action_to_proto(action, msg)
        except (TypeError, ValueError) as exc:
            self._finish(control_id, OutcomeKind.FAILED, detail=f"cannot encode the control: {exc}")
            return await asyncio.shield(future)
        deadline_ms = int((self._core.clock.time() + timeout) * 1000)
        try:
            await self._cmd(
                "route control",
                "XADD",
                self._key("ctl", node),
                "MAXLEN",
                "~",
                str(self.settings.control_stream_maxlen),
                "*",
                "id",
                control_id,
                "xapp",
                host.name,
                "origin",
                self._cluster.replica_id,
                "term",
                str(remote.term if remote is not None else 0),
                "deadline_ms",
                str(deadline_ms),
                "action",
                msg.SerializeToString(),
            )
        except SdlError as exc:
            self._finish(
                control_id, OutcomeKind.NOT_CONNECTED, detail=f"cannot reach the owner: {exc}"
            )
        else:
            self.stats.routed += 1
        # Shielded: if the xApp stops waiting, the control still ends (and is audited) once.
        return await asyncio.shield(future)

    def _expire(self, control_id: str, timeout: float) -> None:
        routed = self._routed.get(control_id)
        if routed is None:
            return
        remote = self.remote.get(routed.node)
        if remote is None and routed.node not in self._core.sessions:
            self._finish(
                control_id,
                OutcomeKind.NOT_CONNECTED,
                detail=f"no live replica owned node {routed.node} within {timeout:g} s",
            )
        else:
            self._finish(
                control_id, OutcomeKind.TIMED_OUT, detail=f"no answer within {timeout:g} s"
            )

    def _finish(
        self,
        control_id: str,
        kind: OutcomeKind,
        cause: Cause | None = None,
        detail: str = "",
    ) -> bool:
        routed = self._routed.pop(control_id, None)
        if routed is None:
            return False
        if routed.timer is not None:
            routed.timer.cancel()
        outcome = ControlOutcome(
            kind,
            routed.action,
            node=NodeId.parse(routed.node),
            cause=cause,
            latency_s=self._core.clock.monotonic() - routed.started,
            detail=detail,
            xapp=routed.host.name,
            conflict=routed.conflict,
            control_id=control_id,
        )
        if kind is not OutcomeKind.ACKNOWLEDGED:
            self._core.controls.retract(routed.token)
        if not routed.future.done():
            routed.future.set_result(outcome)
        self._core.sensor.control_finished(routed.host.name, outcome)
        return True

    def _outcome(self, fields: Mapping[bytes, bytes]) -> None:
        """An outcome on this replica's stream: the first for its id ends the control."""
        control_id = _s(fields.get(b"id", b""))
        try:
            kind = OutcomeKind(_s(fields.get(b"kind", b"")))
        except ValueError:
            kind = OutcomeKind.FAILED
        cause = None
        code = _s(fields.get(b"cause", b""))
        if code:
            try:
                cause = Cause(CauseCode[code], _s(fields.get(b"cause_detail", b"")))
            except KeyError:
                cause = Cause(CauseCode.MISC_UNSPECIFIED, _s(fields.get(b"cause_detail", b"")))
        if not self._finish(control_id, kind, cause, _s(fields.get(b"detail", b""))):
            self.stats.late_outcomes += 1
            log.info("outcome of control %s arrived after its first one; ignored", control_id)

    # -- owner: local nodes ---------------------------------------------------------------------

    def local_up(self, session: NodeSession) -> None:
        """``session``'s node set up here: it leaves the remote view (down first, so the xApps
        see a down / up pair), its info is published, and the controls its previous owner left
        pending are claimed and sent again."""
        node = session.id
        gone = self.remote.pop(node, None)
        if gone is not None:
            self._index()
            self._core.remote_nodes_changed([gone.info], [])
        self._spawn(self._take(session), f"cluster-take:{node}")

    def local_down(self, session: NodeSession) -> None:
        """``session`` ended: the controls it was sending stay pending in the stream for the
        node's next owner (never answered from here)."""
        for key in [k for k, s in self._sending.items() if s.session is session]:
            sending = self._sending.pop(key)
            self._sending_ids.discard(sending.control_id)
            if sending.timer is not None:
                sending.timer.cancel()

    async def _take(self, session: NodeSession) -> None:
        node = session.id
        info = pb.Node()
        codec.node_to_proto(session.info, info)
        stream = self._key("ctl", node)
        try:
            await self._cmd("node info", "SET", self._key("info", node), info.SerializeToString())
            await self._rearmed(node)
            with contextlib.suppress(SdlError):  # BUSYGROUP: it exists (the usual case)
                await self._cmd("control group", "XGROUP", "CREATE", stream, GROUP, "0", "MKSTREAM")
            start = b"0-0"
            claimed = 0
            for _ in range(100):  # bounded: 100 x READ_COUNT entries at most
                found = await self._cmd(
                    "claim controls",
                    "XAUTOCLAIM",
                    stream,
                    GROUP,
                    self._cluster.replica_id,
                    "0",
                    start,
                    "COUNT",
                    str(READ_COUNT),
                )
                start, entries = bytes(found[0]), found[1]
                for entry_id, fields in entries:
                    if fields is None:
                        continue
                    if self._serve(node, bytes(entry_id), fields, resent=True):
                        claimed += 1
                if start == b"0-0":
                    break
        except SdlError as exc:
            self._trouble("takeover of " + node, exc)
            return
        if claimed:
            log.warning(
                "replica %s re-sent %d controls its previous owner left pending on node %s",
                self._cluster.replica_id,
                claimed,
                node,
                extra={"node": node},
            )
        self._kick_consumer.set()

    async def _rearmed(self, node: str) -> None:
        """Check the node's subscriptions were re-armed for every xApp its registered record
        (``ric.subscriptions``, kept in the SDL) names: one this replica does not serve yet
        (its replica's interest not read since it attached) makes it read the interest now;
        one on no live replica is logged (nobody would receive its reports)."""
        found = await self._redis.get(SUBSCRIPTIONS, [node])
        try:
            records = json.loads(found[node]) if node in found else []
            named = {x for r in records if isinstance(r, dict) for x in r.get("xapps", [])}
        except (ValueError, TypeError):
            return
        served = {h.name for h in self._core.hosts if h.accepting} | {
            name for _, name in self._forward
        }
        missing = sorted(str(x) for x in named if x not in served)
        if not missing:
            return
        await self._view()
        served |= {name for _, name in self._forward}
        gone = [x for x in missing if x not in served]
        if gone:
            log.info(
                "node %s: not re-armed for %s: on no live replica",
                node,
                ", ".join(gone),
                extra={"node": node},
            )

    def _serve(
        self, node: str, entry: bytes, fields: Mapping[bytes, bytes], *, resent: bool = False
    ) -> bool:
        """Send one control of the node's stream; whether it was sent."""
        control_id = _s(fields.get(b"id", b""))
        if not control_id or control_id in self._sending_ids:
            return False
        origin = _s(fields.get(b"origin", b""))
        session = self._core.sessions.get(node)
        term = self._cluster.term_of(node)
        if session is None or session.closed or term is None:
            return False  # stays pending: the node's next owner claims it
        if self._cluster.may_act(node) is not None:
            return False
        try:
            routed_term = int(_s(fields.get(b"term", b"0")))
            deadline_ms = int(_s(fields.get(b"deadline_ms", b"0")))
        except ValueError:
            routed_term, deadline_ms = 0, 0
        now_ms = int(self._core.clock.time() * 1000)
        if now_ms >= deadline_ms:
            self._answer(
                node,
                entry,
                origin,
                control_id,
                OutcomeKind.TIMED_OUT,
                term,
                detail="its deadline passed before the node's owner could send it",
            )
            return False
        msg = pb.Action()
        try:
            msg.ParseFromString(bytes(fields.get(b"action", b"")))
            action = codec.action_from_proto(msg)
        except (ValueError, TypeError) as exc:
            self._answer(
                node,
                entry,
                origin,
                control_id,
                OutcomeKind.FAILED,
                term,
                detail=f"the owner cannot read the control: {exc}",
            )
            return False
        function = self._function(session, action)
        if isinstance(function, str):
            self._answer(
                node, entry, origin, control_id, OutcomeKind.NOT_SUPPORTED, term, detail=function
            )
            return False
        request_id = (FORWARDED_REQUESTOR, next(self._instances))
        try:
            request = control_request(action, request_id, function, control_id, term)
        except (ValueError, TypeError) as exc:
            self._answer(
                node,
                entry,
                origin,
                control_id,
                OutcomeKind.FAILED,
                term,
                detail=f"cannot encode the control: {exc}",
            )
            return False
        sending = _Sending(node, entry, origin, control_id, session, term, routed_term)
        if not session.send(e2_pb2.RicMessage(control_request=request)):
            return False
        self._sending[request_id] = sending
        self._sending_ids.add(control_id)
        delay = max(0.0, deadline_ms / 1000.0 - self._core.clock.time())
        sending.timer = self._core.clock.call_later(delay, lambda: self._sent_expired(request_id))
        self.stats.served += 1
        if resent:
            self.stats.resent += 1
        return True

    @staticmethod
    def _function(session: NodeSession, action: ControlAction) -> int | str:
        """The node's RAN function for ``action``, or why it has none."""
        if isinstance(action, CccControlAction):
            ccc = session.info.ccc()
            missing = [
                f"{s}.{a}" for s, a in action.writes() if ccc is None or not ccc[1].writable(s, a)
            ]
            if ccc is None or missing:
                return (
                    f"node {session.id} does not offer E2SM-CCC cell configuration of "
                    f"{', '.join(missing)}"
                )
            return ccc[0]
        rc = session.info.rc()
        key = action_rc_key(action)
        if rc is None or key not in rc[1].actions:
            return f"node {session.id} does not offer RC style {key[0]} action {key[1]}"
        return rc[0]

    def _sent_expired(self, request_id: tuple[int, int]) -> None:
        sending = self._sending.pop(request_id, None)
        if sending is None:
            return
        self._sending_ids.discard(sending.control_id)
        self._answer(
            sending.node,
            sending.entry,
            sending.origin,
            sending.control_id,
            OutcomeKind.TIMED_OUT,
            sending.term,
            detail="the node did not answer before the deadline",
        )

    def on_answer(self, session: NodeSession, kind: str, msg: Any) -> bool:
        """A node's ControlAcknowledge / ControlFailure / ErrorIndication: True when it answers
        a control this owner sent for another replica (it is handled here)."""
        rid = msg.request_id
        if rid.requestor != FORWARDED_REQUESTOR:
            return False
        key = (rid.requestor, rid.instance)
        sending = self._sending.get(key)
        if sending is None or sending.session is not session:
            return kind != "error_indication"  # a late answer to a control that ended: dropped
        del self._sending[key]
        self._sending_ids.discard(sending.control_id)
        if sending.timer is not None:
            sending.timer.cancel()
        if kind == "control_acknowledge":
            outcome, cause = OutcomeKind.ACKNOWLEDGED, None
        else:
            outcome, cause = OutcomeKind.FAILED, cause_from_proto(msg.cause)
        detail = ""
        if sending.routed_term and sending.routed_term != sending.term:
            detail = (
                f"sent by replica {self._cluster.replica_id} with term {sending.term} (routed "
                f"when the owner's term was {sending.routed_term})"
            )
        self._answer(
            sending.node,
            sending.entry,
            sending.origin,
            sending.control_id,
            outcome,
            sending.term,
            cause=cause,
            detail=detail,
        )
        return True

    def _answer(
        self,
        node: str,
        entry: bytes,
        origin: str,
        control_id: str,
        kind: OutcomeKind,
        term: int,
        *,
        cause: Cause | None = None,
        detail: str = "",
    ) -> None:
        """Queue the outcome for the origin's stream and the entry's XACK."""
        self._spawn(
            self._write_answer(node, entry, origin, control_id, kind, term, cause, detail),
            f"cluster-answer:{control_id}",
        )

    async def _write_answer(
        self,
        node: str,
        entry: bytes,
        origin: str,
        control_id: str,
        kind: OutcomeKind,
        term: int,
        cause: Cause | None,
        detail: str,
    ) -> None:
        try:
            await self._cmd(
                "control outcome",
                "XADD",
                self._key("out", origin),
                "MAXLEN",
                "~",
                str(self.settings.control_stream_maxlen),
                "*",
                "id",
                control_id,
                "kind",
                kind.value,
                "cause",
                cause.code.name if cause is not None else "",
                "cause_detail",
                cause.detail if cause is not None else "",
                "detail",
                detail,
                "node",
                node,
                "by",
                self._cluster.replica_id,
                "term",
                str(term),
            )
            # A replica that is gone for good leaves its outcome stream; it expires after
            # 100 membership TTLs without an outcome (the members list forgets it then too).
            await self._cmd(
                "outcome stream expiry",
                "PEXPIRE",
                self._key("out", origin),
                str(int(self.settings.member_ttl_s * 100_000)),
            )
            await self._cmd("control ack", "XACK", self._key("ctl", node), GROUP, entry)
        except SdlError as exc:
            # Not acknowledged: the entry stays pending and the node's next owner sends it
            # again (the node repeats its answer); the origin keeps the first outcome.
            self._trouble("control outcomes", exc)

    # -- loops ----------------------------------------------------------------------------------

    async def _consume(self) -> None:
        """Read the controls queued for the nodes this replica owns."""
        replica = self._cluster.replica_id
        while not self._stopping:
            nodes = sorted(n for n in self._cluster.leases if n in self._core.sessions)
            if not nodes:
                self._kick_consumer.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(BLOCK_MS / 1000):
                        await self._kick_consumer.wait()
                continue
            keys = [self._key("ctl", n) for n in nodes]
            try:
                found = await self._cmd(
                    "read controls",
                    "XREADGROUP",
                    "GROUP",
                    GROUP,
                    replica,
                    "COUNT",
                    str(READ_COUNT),
                    "BLOCK",
                    str(BLOCK_MS),
                    "STREAMS",
                    *keys,
                    *([">"] * len(keys)),
                )
            except SdlError as exc:
                self._trouble("control stream reads", exc)
                if "NOGROUP" in str(exc):  # a node whose group is not made yet: make it
                    for n in nodes:
                        with contextlib.suppress(SdlError):
                            await self._cmd(
                                "control group",
                                "XGROUP",
                                "CREATE",
                                self._key("ctl", n),
                                GROUP,
                                "0",
                                "MKSTREAM",
                            )
                await asyncio.sleep(self.settings.renew_interval_s)
                continue
            self._trouble("control stream reads", None)
            by_key = dict(zip(keys, nodes, strict=True))
            for stream, entries in self._streams(found):
                node = by_key.get(stream)
                if node is None:
                    continue
                for entry_id, fields in entries:
                    self._serve(node, entry_id, fields)

    @staticmethod
    def _streams(found: Any) -> list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]:
        """XREAD / XREADGROUP replies as (stream, [(id, fields)]) whatever the RESP version."""
        if not found:
            return []
        items = found.items() if isinstance(found, dict) else found
        out = []
        for stream, entries in items:
            if isinstance(entries, list) and len(entries) == 1 and isinstance(entries[0], list):
                entries = entries[0]
            out.append(
                (
                    bytes(stream),
                    [(bytes(i), dict(f) if f is not None else {}) for i, f in entries],
                )
            )
        return out

    async def _last_id(self, key: bytes) -> bytes:
        found = await self._cmd("stream position", "XREVRANGE", key, "+", "-", "COUNT", "1")
        return bytes(found[0][0]) if found else b"0-0"

    async def _read(self) -> None:
        """Read this replica's outcomes and the report streams of remote nodes it needs."""
        out = self._key("out", self._cluster.replica_id)
        while not self._stopping:
            wanted = {out}
            if any(h.accepting and h.cls.reports for h in self._core.hosts):
                wanted.update(self._key("rep", n) for n in self.remote)
            try:
                for key in wanted - set(self._positions):
                    self._positions[key] = await self._last_id(key)
                for key in set(self._positions) - wanted:
                    del self._positions[key]
                keys = sorted(self._positions)
                found = await self._cmd(
                    "read streams",
                    "XREAD",
                    "COUNT",
                    str(READ_COUNT),
                    "BLOCK",
                    str(BLOCK_MS),
                    "STREAMS",
                    *keys,
                    *(self._positions[k] for k in keys),
                )
            except SdlError as exc:
                self._trouble("stream reads", exc)
                await asyncio.sleep(self.settings.renew_interval_s)
                continue
            self._trouble("stream reads", None)
            for stream, entries in self._streams(found):
                if not entries:
                    continue
                if stream in self._positions:
                    self._positions[stream] = entries[-1][0]
                for _, fields in entries:
                    if stream == out:
                        self._outcome(fields)
                    else:
                        self._reports(fields)

    def _reports(self, fields: Mapping[bytes, bytes]) -> None:
        prefix = f"{self._cluster.replica_id}|".encode()
        for name, data in fields.items():
            if not name.startswith(prefix):
                continue
            xapp = name[len(prefix) :].decode()
            host = next((h for h in self._core.hosts if h.name == xapp and h.accepting), None)
            if host is None:
                continue
            batch = pb.ReportBatch()
            try:
                batch.ParseFromString(bytes(data))
                reports = [codec.report_from_proto(r) for r in batch.reports]
            except ValueError as exc:
                log.warning("a forwarded report batch for %s is not readable: %s", xapp, exc)
                continue
            for report in reports:
                host.deliver(report)
            self.stats.received_reports += len(reports)

    def forward(self, origin: str, xapp: str, report: KpmReport) -> None:
        """Queue ``report`` for ``origin``'s xApp ``xapp`` (written once per loop turn)."""
        if self._buffered >= MAX_FORWARD_BUFFER:
            self.stats.dropped_reports += 1
            return
        self._buffer.setdefault(report.node, {}).setdefault((origin, xapp), []).append(report)
        self._buffered += 1
        self._flush.set()

    async def _forwarding(self) -> None:
        """Write the queued reports: one XADD per node per turn, every batch in it."""
        while not self._stopping:
            await self._flush.wait()
            self._flush.clear()
            buffer, self._buffer = self._buffer, {}
            self._buffered = 0
            for node, groups in buffer.items():
                args: list[bytes | str] = []
                count = 0
                for (origin, xapp), reports in groups.items():
                    batch = pb.ReportBatch()
                    for report in reports:
                        codec.report_to_proto(report, batch.reports.add())
                    args += [f"{origin}|{xapp}", batch.SerializeToString()]
                    count += len(reports)
                try:
                    await self._cmd(
                        "forward reports",
                        "XADD",
                        self._key("rep", node),
                        "MAXLEN",
                        "~",
                        str(self.settings.report_stream_maxlen),
                        "*",
                        *args,
                    )
                except SdlError as exc:
                    self._trouble("report forwarding", exc)
                    self.stats.dropped_reports += count
                    continue
                self._trouble("report forwarding", None)
                self.stats.forwarded_batches += 1
                self.stats.forwarded_reports += count

    async def _views(self) -> None:
        """Every renewal interval: publish this replica's report interest, read the others'
        and which replica owns which node."""
        while not self._stopping:
            try:
                await self._view()
            except SdlError as exc:
                self._trouble("cluster view", exc)
            else:
                self._trouble("cluster view", None)
            await asyncio.sleep(self.settings.renew_interval_s)

    def refresh(self) -> None:
        """Look again now (a local xApp came or went, a node was taken)."""
        self._spawn(self._refresh(), "cluster-view-now")

    async def _refresh(self) -> None:
        with contextlib.suppress(SdlError):
            await self._view()

    async def _view(self) -> None:
        me = self._cluster.replica_id
        # Generous: a late round must not drop the interest (an owner reads only live
        # replicas' interest, so a dead replica's is ignored at once anyway).
        ttl_ms = int(max(self.settings.member_ttl_s, 10 * self.settings.renew_interval_s) * 1000)
        interest = {
            h.name: base64.b64encode(codec.hello_for(h.cls, credits=0).SerializeToString()).decode()
            for h in self._core.hosts
            if h.accepting and h.cls.reports
        }
        await self._cmd(
            "publish interest", "SET", self._key("int", me), json.dumps(interest), "PX", str(ttl_ms)
        )
        members = await self._redis.members(self._ns)
        live = sorted(r for r, _, value in members if value is not None and r != me)
        leases = await self._redis.leases(self._ns)
        # Report interest of the other live replicas.
        values = (
            await self._cmd("read interest", "MGET", *(self._key("int", r) for r in live))
            if live
            else []
        )
        wanted: dict[tuple[str, str], bytes] = {}
        for replica, value in zip(live, values, strict=True):
            if value is None:
                continue
            try:
                for xapp, hello in json.loads(bytes(value)).items():
                    wanted[(replica, str(xapp))] = base64.b64decode(hello)
            except (ValueError, AttributeError) as exc:
                log.warning("replica %s's report interest is not readable: %s", replica, exc)
        self._set_interest(wanted)
        # Nodes owned by other live replicas.
        owners: dict[str, tuple[str, int]] = {}
        for node, (value, _) in leases.items():
            term_text, _, replica = value.partition(" ")
            if replica in live and node not in self._core.sessions and term_text.isdigit():
                owners[node] = (replica, int(term_text))
        down: list[NodeInfo] = []
        up: list[NodeInfo] = []
        for node in [n for n in self.remote if n not in owners]:
            down.append(self.remote.pop(node).info)
        need = [
            n
            for n, (r, t) in owners.items()
            if n not in self.remote or (self.remote[n].replica, self.remote[n].term) != (r, t)
        ]
        if need:
            infos = await self._cmd("node infos", "MGET", *(self._key("info", n) for n in need))
            for node, data in zip(need, infos, strict=True):
                if data is None or node in self._core.sessions:
                    continue
                msg = pb.Node()
                try:
                    msg.ParseFromString(bytes(data))
                    info = codec.node_from_proto(msg)
                except ValueError as exc:
                    log.warning("node %s's info is not readable: %s", node, exc)
                    continue
                old = self.remote.get(node)
                if old is not None:
                    down.append(old.info)
                replica, term = owners[node]
                self.remote[node] = _Remote(info, replica, term)
                up.append(info)
        if down or up:
            self._index()
            self._core.remote_nodes_changed(down, up)

    def _index(self) -> None:
        self._cells = {str(c): node for node, r in self.remote.items() for c in r.info.cells}

    def _set_interest(self, wanted: Mapping[tuple[str, str], bytes]) -> None:
        changed = False
        for key in [k for k in self._forward if k not in wanted]:
            _, host = self._forward.pop(key)
            host.live = False
            changed = True
        for key, hello_bytes in wanted.items():
            known = self._forward.get(key)
            if known is not None and known[0] == hello_bytes:
                continue
            hello = pb.Hello()
            try:
                hello.ParseFromString(hello_bytes)
                cls = codec.declared_class(hello)
            except ValueError as exc:
                log.warning("replica %s's xApp %s cannot be served: %s", key[0], key[1], exc)
                continue
            if known is not None:
                known[1].live = False
            host = ForwardHost(
                cls, key[0], self, self._services, self._core.sensor, self._core.clock
            )
            self._forward[key] = (hello_bytes, host)
            changed = True
        if changed:
            self._core.resync_subscriptions()
