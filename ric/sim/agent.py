"""One simulated E2 node: a gRPC client of the RIC's E2 termination, speaking the wire contract.

A :class:`NodeAgent` opens ``E2Termination.Connect``, announces itself with an
E2SetupRequest (identity, vendor profile's RAN functions, cells), and then serves the RIC:
KPM subscriptions reported from the shared :class:`~ric.sim.world.World`, RC controls applied
to it, subscription deletes, resets and keep-alives. When the stream is lost it reconnects with
capped exponential back-off and sets up again; its subscriptions die with the stream (the RIC
re-subscribes).

The agent is driven from outside: :meth:`NodeAgent.run` keeps the association, and the
simulator calls :meth:`NodeAgent.on_tick` after each world step, which sends the reports due
at that tick together in one IndicationBatch.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import grpc
import numpy as np
import numpy.typing as npt

from ric._proto.e2.v1 import common_pb2, e2_pb2, e2_pb2_grpc, kpm_pb2, rc_pb2
from ric.ids import CellId, NodeId, NodeType, Plmn, SliceId
from ric.model import CauseCode, CellInfo
from ric.sim.profiles import VENDOR_PROFILES, VendorProfile
from ric.sim.world import SimControlError, Snapshot, World

__all__ = ["NodeAgent", "cell_to_proto", "nr_cgi"]

log = logging.getLogger(__name__)

MAX_ACTIONS: Final = 16
"""Most actions one subscription may carry (E2AP maxofRICactionID is 16)."""
DEFAULT_KEEP_ALIVE_MS: Final = 5_000
MAX_PENDING: Final = 256
"""Messages queued for the RIC beyond which new indication batches are dropped."""
UE_STYLES: Final = frozenset({2, 3, 4, 5})


def nr_cgi(cell: CellId) -> common_pb2.NrCgi:
    """The NrCgi proto of a cell id."""
    return common_pb2.NrCgi(
        plmn=common_pb2.PlmnId(mcc=cell.plmn.mcc, mnc=cell.plmn.mnc), nr_cell_identity=cell.nci
    )


def _cell_id(cgi: common_pb2.NrCgi) -> CellId | None:
    try:
        return CellId(Plmn(cgi.plmn.mcc, cgi.plmn.mnc), cgi.nr_cell_identity)
    except ValueError:
        return None


def _slice_id(snssai: common_pb2.Snssai) -> SliceId | None:
    try:
        return SliceId(snssai.sst, snssai.sd or "ffffff")
    except ValueError:
        return None


def cell_to_proto(info: CellInfo) -> common_pb2.Cell:
    """The Cell proto a node announces for ``info``."""
    return common_pb2.Cell(
        cgi=nr_cgi(info.id),
        pci=info.pci,
        band=info.band,
        bandwidth_prbs=info.bandwidth_prbs,
        subcarrier_spacing_khz=info.subcarrier_spacing_khz,
        neighbours=[nr_cgi(n) for n in info.neighbours],
        active=info.active,
        tx_power_dbm=info.tx_power_dbm,
    )


def _cause(code: CauseCode, detail: str = "") -> common_pb2.Cause:
    return common_pb2.Cause(code=common_pb2.CauseCode.ValueType(code), detail=detail)


def _cause_name(code: int) -> str:
    try:
        return CauseCode(code).name
    except ValueError:
        return f"cause {code}"


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name} {exc.details() or ''}".strip()
    return str(exc) or type(exc).__name__


class _Refused(Exception):
    """A request the node turns down, with the E2 cause it answers."""

    def __init__(self, code: CauseCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class _SetupRefused(Exception):
    def __init__(self, wait_s: float, cause: str) -> None:
        super().__init__(cause)
        self.wait_s = wait_s


class _StreamEnded(Exception):
    pass


@dataclass(slots=True)
class _Action:
    action_id: int
    style: int
    metrics: tuple[str, ...]
    cells: tuple[int, ...]
    """Scoped cells of this node (world indices)."""
    ue_ids: frozenset[int]
    slices: tuple[int, ...]
    """Scoped slices (world indices); all when the scope names none."""
    slice_filter: bool
    per_slice: bool
    sequence: int = 0


@dataclass(slots=True)
class _Subscription:
    request_id: tuple[int, int]
    ran_function_id: int
    period_s: float
    period_ms: int
    actions: list[_Action]
    since: Snapshot
    next_due_s: float


class NodeAgent:
    """One simulated E2 node of a :class:`~ric.sim.world.World`, connected to a RIC at ``target``.

    ``ready`` is set while the node has a live, set-up association; ``setups`` counts
    successful E2 setups (so reconnects can be observed).
    """

    def __init__(
        self,
        world: World,
        node_id: int,
        target: str,
        *,
        epoch_unix_ms: int = 0,
        keep_alive_interval_ms: int = DEFAULT_KEEP_ALIVE_MS,
        reconnect_initial_s: float = 0.5,
        reconnect_max_s: float = 30.0,
        setup_timeout_s: float = 10.0,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        if node_id not in world.nodes:
            raise KeyError(f"the world has no node {node_id}")
        self.world = world
        self.target = target
        self.credentials = credentials
        """TLS credentials (the RIC's CA, and this node's certificate for mutual TLS); None:
        plaintext."""
        self.layout = world.nodes[node_id]
        self.profile: VendorProfile = VENDOR_PROFILES[self.layout.vendor]
        self.node_id = NodeId(world.plmn, node_id, NodeType.GNB)
        self.epoch_unix_ms = epoch_unix_ms
        """Unix time in ms of world time 0, for indication timestamps."""
        self.ready = asyncio.Event()
        self.setups = 0
        """Successful E2 setups so far (1 + reconnects)."""
        self.dropped_batches = 0
        """Indication batches dropped because the RIC did not keep up."""
        self._dropping = False
        self._keep_alive_ms = keep_alive_interval_ms
        self._reconnect_initial_s = reconnect_initial_s
        self._reconnect_max_s = reconnect_max_s
        self._setup_timeout_s = setup_timeout_s
        self._cells = self.layout.cells
        self._cell_set = frozenset(self._cells)
        tick_ms = world.scenario.tick_ms
        self._min_period_ms = max(self.profile.min_reporting_period_ms, tick_ms)
        self._subs: dict[tuple[int, int], _Subscription] = {}
        self._out: asyncio.Queue[e2_pb2.NodeMessage] | None = None
        self._sink: Callable[[e2_pb2.NodeMessage], None] | None = None
        self._transaction = 0
        self._keep_alive_seq = 0
        self._after_control: list[e2_pb2.NodeMessage] = []

    def __repr__(self) -> str:
        return f"NodeAgent({self.node_id}, {self.profile.name}, target={self.target!r})"

    # ---------------------------------------------------------------- association

    def setup_request(self) -> e2_pb2.E2SetupRequest:
        """The E2SetupRequest this node sends: identity, RAN functions and cells."""
        return e2_pb2.E2SetupRequest(
            transaction_id=self._next_transaction(),
            node_id=common_pb2.GlobalNodeId(
                plmn=common_pb2.PlmnId(mcc=self.node_id.plmn.mcc, mnc=self.node_id.plmn.mnc),
                node_id=self.node_id.node_id,
                type=common_pb2.NODE_TYPE_GNB,
            ),
            vendor=self.profile.vendor,
            software_version=self.profile.software_version,
            ran_functions=self.profile.ran_functions(min_reporting_period_ms=self._min_period_ms),
            cells=[cell_to_proto(self.world.cell_info(c)) for c in self._cells],
            keep_alive_interval_ms=self._keep_alive_ms,
        )

    def attach(self, send: Callable[[e2_pb2.NodeMessage], None]) -> None:
        """Serve an association set up elsewhere: what the node says goes to ``send`` (for
        example an in-memory link's ``send``) instead of a gRPC stream, and the caller hands
        the RIC's messages to :meth:`handle`. Use instead of :meth:`run`, after the caller did
        the E2 setup with :meth:`setup_request`; subscriptions start afresh."""
        self._sink = send
        self._subs.clear()
        self.setups += 1
        self.ready.set()

    def detach(self) -> None:
        """End an association made with :meth:`attach`; its subscriptions die with it."""
        self._sink = None
        self._drop_session()

    async def run(self) -> None:
        """Keep an E2 association with the RIC until cancelled: connect, set up, serve, retry."""
        backoff = self._reconnect_initial_s
        while True:
            wait = backoff
            setups_before = self.setups
            try:
                await self._connect_once()
                log.info("%s: the RIC closed the stream; reconnecting", self.node_id)
            except _SetupRefused as exc:
                log.warning("%s: E2 setup refused: %s", self.node_id, exc)
                if exc.wait_s > 0:
                    wait = exc.wait_s
            except Exception as exc:  # the association is gone, whatever ended it; retry
                self._log_loss(exc)
            finally:
                self._drop_session()
            if self.setups > setups_before:
                backoff = self._reconnect_initial_s
                wait = min(wait, backoff)
            if wait == backoff:
                # Jitter, so that many nodes that lost the RIC together do not return together.
                wait *= random.uniform(0.8, 1.2)
            await asyncio.sleep(wait)
            backoff = min(backoff * 2.0, self._reconnect_max_s)

    def _log_loss(self, exc: Exception) -> None:
        leaves = _leaves(exc)
        expected = (grpc.aio.AioRpcError, _StreamEnded, TimeoutError)
        reason = "; ".join(_describe(e) for e in leaves)
        if all(isinstance(e, expected) for e in leaves):
            log.info("%s: association with %s lost: %s", self.node_id, self.target, reason)
        else:
            log.error(
                "%s: association with %s failed: %s",
                self.node_id,
                self.target,
                reason,
                exc_info=exc,
            )

    def _drop_session(self) -> None:
        self.ready.clear()
        self._subs.clear()
        self._out = None

    async def _connect_once(self) -> None:
        channel = (
            grpc.aio.secure_channel(self.target, self.credentials)
            if self.credentials is not None
            else grpc.aio.insecure_channel(self.target)
        )
        async with channel:
            stub = e2_pb2_grpc.E2TerminationStub(channel)
            call = stub.Connect()
            try:
                await self._session(call)
            finally:
                call.cancel()

    async def _session(
        self, call: grpc.aio.StreamStreamCall[e2_pb2.NodeMessage, e2_pb2.RicMessage]
    ) -> None:
        await call.write(e2_pb2.NodeMessage(setup_request=self.setup_request()))
        async with asyncio.timeout(self._setup_timeout_s):
            first = await call.read()
        if not isinstance(first, e2_pb2.RicMessage):
            raise _StreamEnded("the RIC closed the stream before answering E2 setup")
        kind = first.WhichOneof("message")
        if kind == "setup_failure":
            failure = first.setup_failure
            raise _SetupRefused(
                failure.time_to_wait_ms / 1000.0,
                f"{_cause_name(failure.cause.code)} {failure.cause.detail}".strip(),
            )
        if kind != "setup_response":
            raise _StreamEnded(f"expected E2 setup response, got {kind}")
        response = first.setup_response
        if response.rejected_ran_functions:
            log.warning(
                "%s: the RIC rejected RAN functions %s",
                self.node_id,
                [r.ran_function_id for r in response.rejected_ran_functions],
            )
        keep_alive_ms = (
            response.keep_alive_interval_ms or self._keep_alive_ms or DEFAULT_KEEP_ALIVE_MS
        )
        out: asyncio.Queue[e2_pb2.NodeMessage] = asyncio.Queue()
        self._out = out
        self._subs.clear()
        self.setups += 1
        self.ready.set()
        log.info(
            "%s (%s) set up with RIC %s", self.node_id, self.profile.name, response.ric_id or "?"
        )
        async with asyncio.TaskGroup() as tg:
            writer = tg.create_task(self._write_loop(call, out))
            keeper = tg.create_task(self._keep_alive_loop(keep_alive_ms / 1000.0))
            try:
                await self._read_loop(call)
            finally:
                writer.cancel()
                keeper.cancel()

    async def _write_loop(
        self,
        call: grpc.aio.StreamStreamCall[e2_pb2.NodeMessage, e2_pb2.RicMessage],
        out: asyncio.Queue[e2_pb2.NodeMessage],
    ) -> None:
        while True:
            msg = await out.get()
            await call.write(msg)

    async def _keep_alive_loop(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            self._keep_alive_seq += 1
            self._send(
                e2_pb2.NodeMessage(
                    keep_alive=e2_pb2.KeepAlive(
                        sequence=self._keep_alive_seq, sent_at_unix_ms=int(time.time() * 1000)
                    )
                )
            )

    async def _read_loop(
        self, call: grpc.aio.StreamStreamCall[e2_pb2.NodeMessage, e2_pb2.RicMessage]
    ) -> None:
        while True:
            msg = await call.read()
            if not isinstance(msg, e2_pb2.RicMessage):
                return
            try:
                self.handle(msg)
            except Exception:  # a bug in one handler must not end the association
                log.exception("%s: failed to handle %s", self.node_id, msg.WhichOneof("message"))

    def _send(self, msg: e2_pb2.NodeMessage) -> None:
        if self._sink is not None:
            self._sink(msg)
        elif self._out is not None:
            self._out.put_nowait(msg)

    def _next_transaction(self) -> int:
        self._transaction = (self._transaction + 1) % 256
        return self._transaction

    # ---------------------------------------------------------------- RIC messages

    def handle(self, msg: e2_pb2.RicMessage) -> None:
        """Handle one message from the RIC (after setup); answers go to the send queue."""
        kind = msg.WhichOneof("message")
        if kind == "subscription_request":
            self._on_subscription(msg.subscription_request)
        elif kind == "subscription_delete_request":
            self._on_subscription_delete(msg.subscription_delete_request)
        elif kind == "control_request":
            self._on_control(msg.control_request)
        elif kind == "reset_request":
            dropped = len(self._subs)
            self._subs.clear()
            log.info("%s: reset by the RIC, %d subscriptions dropped", self.node_id, dropped)
            self._send(
                e2_pb2.NodeMessage(
                    reset_response=e2_pb2.ResetResponse(
                        transaction_id=msg.reset_request.transaction_id
                    )
                )
            )
        elif kind == "error_indication":
            err = msg.error_indication
            log.warning(
                "%s: error indication from the RIC: %s %s (request %d/%d)",
                self.node_id,
                _cause_name(err.cause.code),
                err.cause.detail,
                err.request_id.requestor,
                err.request_id.instance,
            )
        elif kind in (
            "keep_alive",
            "configuration_update_acknowledge",
            "service_update_acknowledge",
            "reset_response",
        ):
            log.debug("%s: %s from the RIC", self.node_id, kind)
        else:
            log.warning("%s: unexpected %s from the RIC", self.node_id, kind)
            self._send(
                e2_pb2.NodeMessage(
                    error_indication=e2_pb2.ErrorIndication(
                        cause=_cause(
                            CauseCode.PROTOCOL_MESSAGE_NOT_COMPATIBLE_WITH_RECEIVER_STATE,
                            f"{kind} is not expected after E2 setup",
                        )
                    )
                )
            )

    # ---------------------------------------------------------------- subscriptions

    def _on_subscription(self, req: e2_pb2.SubscriptionRequest) -> None:
        key = (req.request_id.requestor, req.request_id.instance)
        try:
            sub = self._admit(req, key)
        except _Refused as exc:
            log.info("%s: subscription %s refused: %s", self.node_id, key, exc.detail)
            self._send(
                e2_pb2.NodeMessage(
                    subscription_failure=e2_pb2.SubscriptionFailure(
                        request_id=req.request_id,
                        ran_function_id=req.ran_function_id,
                        cause=_cause(exc.code, exc.detail),
                    )
                )
            )
            return
        self._subs[key] = sub

    def _admit(self, req: e2_pb2.SubscriptionRequest, key: tuple[int, int]) -> _Subscription:
        if req.ran_function_id != self.profile.kpm_function_id:
            raise _Refused(
                CauseCode.RIC_REQUEST_RAN_FUNCTION_ID_INVALID,
                f"RAN function {req.ran_function_id} is not this node's KPM function "
                f"({self.profile.kpm_function_id})",
            )
        if key in self._subs:
            raise _Refused(
                CauseCode.RIC_REQUEST_DUPLICATE_ACTION, f"request id {key[0]}/{key[1]} is in use"
            )
        if req.WhichOneof("event_trigger") != "kpm_trigger":
            raise _Refused(CauseCode.PROTOCOL_SEMANTIC_ERROR, "no KPM event trigger")
        period_ms = req.kpm_trigger.reporting_period_ms
        if period_ms < self._min_period_ms:
            raise _Refused(
                CauseCode.RIC_REQUEST_FUNCTION_RESOURCE_LIMIT,
                f"reporting period {period_ms} ms is below this node's minimum {self._min_period_ms} ms",
            )
        if not req.actions:
            raise _Refused(CauseCode.RIC_REQUEST_ACTION_NOT_SUPPORTED, "no actions")
        if len(req.actions) > MAX_ACTIONS:
            raise _Refused(
                CauseCode.RIC_REQUEST_EXCESSIVE_ACTIONS,
                f"{len(req.actions)} actions, at most {MAX_ACTIONS}",
            )
        ids = [a.action_id for a in req.actions]
        if len(set(ids)) != len(ids):
            raise _Refused(CauseCode.RIC_REQUEST_DUPLICATE_ACTION, f"action ids repeat: {ids}")
        response = e2_pb2.SubscriptionResponse(
            request_id=req.request_id, ran_function_id=req.ran_function_id
        )
        actions: list[_Action] = []
        refusals: list[_Refused] = []
        for action in req.actions:
            try:
                admitted, skipped = self._admit_action(action)
            except _Refused as exc:
                refusals.append(exc)
                response.not_admitted_actions.add(
                    action_id=action.action_id, cause=_cause(exc.code, exc.detail)
                )
                continue
            actions.append(admitted)
            response.admitted_action_ids.append(action.action_id)
            for name in skipped:
                response.not_admitted_measurements.add(
                    action_id=action.action_id,
                    metric_name=name,
                    cause=_cause(
                        CauseCode.RIC_REQUEST_MEASUREMENT_NOT_SUPPORTED,
                        f"style {admitted.style} of {self.profile.name} does not report {name}",
                    ),
                )
        if not actions:
            first = refusals[0]
            detail = "; ".join(
                f"action {a.action_id}: {r.detail}"
                for a, r in zip(req.actions, refusals, strict=True)
            )
            raise _Refused(first.code, f"no action admitted ({detail})")
        self._send(e2_pb2.NodeMessage(subscription_response=response))
        now = self.world.time_s
        return _Subscription(
            request_id=key,
            ran_function_id=req.ran_function_id,
            period_s=period_ms / 1000.0,
            period_ms=period_ms,
            actions=actions,
            since=self.world.snapshot(),
            next_due_s=now + period_ms / 1000.0,
        )

    def _admit_action(self, action: e2_pb2.Action) -> tuple[_Action, list[str]]:
        if action.type != e2_pb2.ACTION_TYPE_REPORT:
            raise _Refused(
                CauseCode.RIC_REQUEST_ACTION_NOT_SUPPORTED, "only REPORT actions are supported"
            )
        if action.WhichOneof("definition") != "kpm":
            raise _Refused(CauseCode.RIC_REQUEST_ACTION_NOT_SUPPORTED, "no KPM action definition")
        defn = action.kpm
        supported = self.profile.metrics(defn.report_style)
        if not supported:
            raise _Refused(
                CauseCode.RIC_REQUEST_ACTION_NOT_SUPPORTED,
                f"report style {defn.report_style} is not supported by {self.profile.name} "
                f"(styles {sorted(self.profile.kpm_styles)})",
            )
        if defn.per_slice and defn.report_style != 1:
            raise _Refused(
                CauseCode.RIC_REQUEST_ACTION_NOT_SUPPORTED, "per_slice is for report style 1 only"
            )
        wanted = list(dict.fromkeys(defn.metric_names))
        admitted = tuple(m for m in wanted if m in supported)
        skipped = [m for m in wanted if m not in supported]
        if not admitted:
            raise _Refused(
                CauseCode.RIC_REQUEST_MEASUREMENT_NOT_SUPPORTED,
                f"none of the measurements {wanted} is reported by style {defn.report_style}"
                if wanted
                else "no measurements requested",
            )
        scope = defn.scope
        cells = self._cells
        if scope.cells:
            named = {self.world.cell_index(c) for c in map(_cell_id, scope.cells) if c is not None}
            cells = tuple(c for c in self._cells if c in named)
        slice_ids = [s for s in map(_slice_id, scope.slices) if s is not None]
        slices = (
            tuple(i for i in (self.world.slice_index(s) for s in slice_ids) if i is not None)
            if scope.slices
            else tuple(range(self.world.n_slices))
        )
        return (
            _Action(
                action_id=action.action_id,
                style=defn.report_style,
                metrics=admitted,
                cells=cells,
                ue_ids=frozenset(scope.ue_ids),
                slices=slices,
                slice_filter=bool(scope.slices),
                per_slice=defn.per_slice,
            ),
            skipped,
        )

    def _on_subscription_delete(self, req: e2_pb2.SubscriptionDeleteRequest) -> None:
        key = (req.request_id.requestor, req.request_id.instance)
        sub = self._subs.get(key)
        if sub is None or sub.ran_function_id != req.ran_function_id:
            self._send(
                e2_pb2.NodeMessage(
                    subscription_delete_failure=e2_pb2.SubscriptionDeleteFailure(
                        request_id=req.request_id,
                        ran_function_id=req.ran_function_id,
                        cause=_cause(
                            CauseCode.RIC_REQUEST_ID_UNKNOWN,
                            f"no subscription {key[0]}/{key[1]} on RAN function {req.ran_function_id}",
                        ),
                    )
                )
            )
            return
        del self._subs[key]
        self._send(
            e2_pb2.NodeMessage(
                subscription_delete_response=e2_pb2.SubscriptionDeleteResponse(
                    request_id=req.request_id, ran_function_id=req.ran_function_id
                )
            )
        )

    # ---------------------------------------------------------------- reporting

    def on_tick(self) -> None:
        """Send, in one IndicationBatch, every report due at the world's current time."""
        if (self._out is None and self._sink is None) or not self._subs:
            return
        now = self.world.time_s
        due = [sub for sub in self._subs.values() if now + 1e-9 >= sub.next_due_s]
        if not due:
            return
        snap = self.world.snapshot()
        batch = e2_pb2.IndicationBatch()
        for sub in due:
            start_ms = self.epoch_unix_ms + round(sub.since.time_s * 1000.0)
            for action in sub.actions:
                ind = batch.indications.add()
                ind.request_id.requestor, ind.request_id.instance = sub.request_id
                ind.ran_function_id = sub.ran_function_id
                ind.action_id = action.action_id
                ind.sequence_number = action.sequence
                ind.type = e2_pb2.INDICATION_TYPE_REPORT
                ind.kpm.collection_start_unix_ms = start_ms
                ind.kpm.granularity_period_ms = sub.period_ms
                self._fill_matrix(ind.kpm.matrix, action, sub.since)
                action.sequence += 1
            sub.since = snap
            sub.next_due_s += sub.period_s
            if sub.next_due_s <= now:
                sub.next_due_s = now + sub.period_s
        if self._out is not None and self._out.qsize() >= MAX_PENDING:
            if not self._dropping:
                log.warning(
                    "%s: the RIC is not keeping up; dropping indication batches", self.node_id
                )
            self._dropping = True
            self.dropped_batches += 1
            return
        if self._dropping:
            self._dropping = False
            log.warning(
                "%s: sending again; %d batches dropped so far", self.node_id, self.dropped_batches
            )
        self._send(e2_pb2.NodeMessage(indications=batch))

    def _fill_matrix(
        self, matrix: kpm_pb2.MeasurementMatrix, action: _Action, since: Snapshot
    ) -> None:
        world = self.world
        matrix.metric_names.extend(action.metrics)
        values: npt.NDArray[np.float64]
        if action.style in UE_STYLES:
            ues = self._scoped_ues(action)
            matrix.entity_kind = kpm_pb2.ENTITY_KIND_UE
            serving = world.serving[ues]
            ue_slice = world.ue_slice[ues]
            matrix.entity_ids.extend([world.ue_text[u] for u in ues.tolist()])
            matrix.entity_cells.extend([world.cell_text[c] for c in serving.tolist()])
            matrix.entity_slices.extend([world.slice_text[s] for s in ue_slice.tolist()])
            values = world.ue_matrix(since, ues, action.metrics)
        elif action.per_slice:
            matrix.entity_kind = kpm_pb2.ENTITY_KIND_SLICE
            for c in action.cells:
                for s in action.slices:
                    matrix.entity_ids.append(world.slice_text[s])
                    matrix.entity_cells.append(world.cell_text[c])
            values = world.slice_matrix(since, action.cells, action.slices, action.metrics)
        else:
            matrix.entity_kind = kpm_pb2.ENTITY_KIND_CELL
            matrix.entity_ids.extend([world.cell_text[c] for c in action.cells])
            values = world.cell_matrix(since, action.cells, action.metrics)
        matrix.values.extend(values.ravel().tolist())

    def _scoped_ues(self, action: _Action) -> npt.NDArray[np.int64]:
        ues = self.world.ues_in_cells(action.cells)
        if action.ue_ids:
            wanted = np.fromiter((u - 1 for u in action.ue_ids), dtype=np.int64)
            ues = ues[np.isin(ues, wanted)]
        if action.slice_filter:
            ues = ues[np.isin(self.world.ue_slice[ues], np.asarray(action.slices, dtype=np.int64))]
        return ues

    # ---------------------------------------------------------------- control

    def _on_control(self, req: e2_pb2.ControlRequest) -> None:
        self._after_control.clear()
        try:
            outcome = self._control(req)
        except _Refused as exc:
            self._after_control.clear()
            log.info(
                "%s: control %d/%d failed: %s",
                self.node_id,
                req.request_id.requestor,
                req.request_id.instance,
                exc.detail,
            )
            self._send(
                e2_pb2.NodeMessage(
                    control_failure=e2_pb2.ControlFailure(
                        request_id=req.request_id,
                        ran_function_id=req.ran_function_id,
                        cause=_cause(exc.code, exc.detail),
                    )
                )
            )
            return
        log.info("%s: control applied: %s", self.node_id, outcome)
        if req.ack_requested:
            self._send(
                e2_pb2.NodeMessage(
                    control_acknowledge=e2_pb2.ControlAcknowledge(
                        request_id=req.request_id,
                        ran_function_id=req.ran_function_id,
                        outcome=outcome,
                    )
                )
            )
        # What the control changed is announced after it is acknowledged.
        for msg in self._after_control:
            self._send(msg)
        self._after_control.clear()

    def _control(self, req: e2_pb2.ControlRequest) -> str:
        if req.ran_function_id != self.profile.rc_function_id:
            raise _Refused(
                CauseCode.RIC_REQUEST_RAN_FUNCTION_ID_INVALID,
                f"RAN function {req.ran_function_id} is not this node's RC function "
                f"({self.profile.rc_function_id})",
            )
        header = req.header
        spec = self.profile.rc_action(header.style, header.action_id)
        if spec is None:
            raise _Refused(
                CauseCode.RIC_REQUEST_ACTION_NOT_SUPPORTED,
                f"RC style {header.style} action {header.action_id} is not supported by {self.profile.name}",
            )
        key = (header.style, header.action_id)
        message = req.message
        kind = message.WhichOneof("action")
        params = dict(message.generic.parameters) if kind == "generic" else {}
        try:
            if key == (3, 1):
                return self._handover(
                    header, message.handover if kind == "handover" else None, params
                )
            if key == (2, 6):
                return self._slice_quota(
                    header, message.slice_prb_quota if kind == "slice_prb_quota" else None, params
                )
            if key == (100, 1):
                return self._cell_state(
                    header, message.cell_state if kind == "cell_state" else None, params
                )
        except SimControlError as exc:
            raise _Refused(CauseCode.RIC_REQUEST_CONTROL_FAILED_TO_EXECUTE, str(exc)) from exc
        raise _Refused(
            CauseCode.RIC_REQUEST_ACTION_NOT_SUPPORTED,
            f"RC style {key[0]} action {key[1]} has no handler",
        )

    def _own_cell(self, cgi: common_pb2.NrCgi, what: str) -> int:
        cell = _cell_id(cgi)
        idx = None if cell is None else self.world.cell_index(cell)
        if idx is None or idx not in self._cell_set:
            raise _Refused(
                CauseCode.RIC_REQUEST_TARGET_UNKNOWN,
                f"{what} {cell or cgi} is not a cell of this node",
            )
        return idx

    def _handover(
        self,
        header: rc_pb2.RcControlHeader,
        msg: rc_pb2.Handover | None,
        params: dict[str, rc_pb2.Value],
    ) -> str:
        if header.WhichOneof("target") != "ue":
            raise _Refused(
                CauseCode.RIC_REQUEST_CONTROL_MESSAGE_INVALID, "handover needs a UE target"
            )
        ue_id = header.ue.ue_id
        idx = self.world.ue_index(ue_id)
        if idx is None or int(self.world.serving[idx]) not in self._cell_set:
            raise _Refused(
                CauseCode.RIC_REQUEST_TARGET_UNKNOWN, f"UE {ue_id} is not served by this node"
            )
        target: CellId | None
        if msg is not None:
            target = _cell_id(msg.target_cell)
        elif "target_cell" in params and params["target_cell"].WhichOneof("kind") == "string_value":
            try:
                target = CellId.parse(params["target_cell"].string_value)
            except ValueError:
                target = None
        else:
            raise _Refused(
                CauseCode.RIC_REQUEST_CONTROL_MESSAGE_INVALID, "handover needs a target cell"
            )
        if target is None:
            raise _Refused(CauseCode.RIC_REQUEST_CONTROL_MESSAGE_INVALID, "malformed target cell")
        source = self.world.handover(ue_id, target)
        return f"UE {ue_id} handed over from {self.world.cell_text[source]} to {target}"

    def _slice_quota(
        self,
        header: rc_pb2.RcControlHeader,
        msg: rc_pb2.SlicePrbQuota | None,
        params: dict[str, rc_pb2.Value],
    ) -> str:
        if header.WhichOneof("target") != "slice":
            raise _Refused(
                CauseCode.RIC_REQUEST_CONTROL_MESSAGE_INVALID,
                "slice PRB quota needs a slice target",
            )
        cell = self._own_cell(header.slice.cell, "cell")
        slice_id = _slice_id(header.slice.slice)
        if slice_id is None or self.world.slice_index(slice_id) is None:
            raise _Refused(
                CauseCode.RIC_REQUEST_TARGET_UNKNOWN,
                f"unknown slice {slice_id or header.slice.slice}",
            )
        if msg is not None:
            quota = (msg.min_prb_ratio_pct, msg.max_prb_ratio_pct, msg.dedicated_prb_ratio_pct)
        else:
            quota = (
                _int_param(params, "min_prb_ratio_pct"),
                _int_param(params, "max_prb_ratio_pct"),
                _int_param(params, "dedicated_prb_ratio_pct"),
            )
        lo, hi, ded = quota
        self.world.set_slice_quota(
            self.world.cell_ids[cell], slice_id, min_pct=lo, max_pct=hi, dedicated_pct=ded
        )
        return f"slice {slice_id} in {self.world.cell_text[cell]}: PRB quota min {lo}% max {hi}% dedicated {ded}%"

    def _cell_state(
        self,
        header: rc_pb2.RcControlHeader,
        msg: rc_pb2.CellState | None,
        params: dict[str, rc_pb2.Value],
    ) -> str:
        if header.WhichOneof("target") != "cell":
            raise _Refused(
                CauseCode.RIC_REQUEST_CONTROL_MESSAGE_INVALID, "cell state needs a cell target"
            )
        cell = self._own_cell(header.cell, "cell")
        active: bool | None
        power: float | None
        if msg is not None:
            active = msg.active if msg.HasField("active") else None
            power = msg.tx_power_dbm if msg.HasField("tx_power_dbm") else None
        else:
            active = _bool_param(params, "active") if "active" in params else None
            power = _float_param(params, "tx_power_dbm") if "tx_power_dbm" in params else None
        if active is None and power is None:
            raise _Refused(
                CauseCode.RIC_REQUEST_CONTROL_MESSAGE_INVALID,
                "cell state needs active and/or tx_power_dbm",
            )
        before = self.world.cell_info(cell)
        moved = self.world.set_cell_state(
            self.world.cell_ids[cell], active=active, tx_power_dbm=power
        )
        after = self.world.cell_info(cell)
        if after != before:
            self._after_control.append(
                e2_pb2.NodeMessage(
                    configuration_update=e2_pb2.NodeConfigurationUpdate(
                        transaction_id=self._next_transaction(),
                        cells_modified=[cell_to_proto(after)],
                    )
                )
            )
        state = "on" if after.active else "off"
        return f"cell {after.id} {state}, {after.tx_power_dbm:.1f} dBm, {len(moved)} UEs moved"


def _int_param(params: dict[str, rc_pb2.Value], name: str) -> int:
    value = params.get(name)
    if value is None or value.WhichOneof("kind") != "int_value":
        raise _Refused(
            CauseCode.RIC_REQUEST_CONTROL_MESSAGE_INVALID, f"parameter {name} (int) is missing"
        )
    return value.int_value


def _bool_param(params: dict[str, rc_pb2.Value], name: str) -> bool:
    value = params[name]
    if value.WhichOneof("kind") != "bool_value":
        raise _Refused(
            CauseCode.RIC_REQUEST_CONTROL_MESSAGE_INVALID, f"parameter {name} must be a bool"
        )
    return value.bool_value


def _float_param(params: dict[str, rc_pb2.Value], name: str) -> float:
    value = params[name]
    kind = value.WhichOneof("kind")
    if kind == "double_value":
        return value.double_value
    if kind == "int_value":
        return float(value.int_value)
    raise _Refused(
        CauseCode.RIC_REQUEST_CONTROL_MESSAGE_INVALID, f"parameter {name} must be a number"
    )
