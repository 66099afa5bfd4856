"""One simulated E2 node: a gRPC client of the RIC's E2 termination, speaking the wire contract.

A :class:`NodeAgent` opens ``E2Termination.Connect``, announces itself with an
E2SetupRequest (identity, vendor profile's RAN functions, cells), and then serves the RIC:
KPM subscriptions reported from the shared :class:`~ric.sim.world.World`, RC controls applied
to it, subscription deletes, resets and keep-alives. When the stream is lost it reconnects with
capped exponential back-off and sets up again; its subscriptions die with the stream (the RIC
re-subscribes). Given several RIC endpoints (a RIC's replicas) it moves to the next one each
time, round robin (:class:`~ric.e2node.Endpoints`); a control id it already applied is
answered, not applied again, whichever endpoint sends it (:class:`~ric.e2node.E2Node`).

The agent is driven from outside: :meth:`NodeAgent.run` keeps the association, and the
simulator calls :meth:`NodeAgent.on_tick` after each world step, which sends the reports due
at that tick together in one IndicationBatch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import grpc
import numpy as np
import numpy.typing as npt

from ric._proto.e2.v1 import common_pb2, e2_pb2, e2_pb2_grpc, kpm_pb2, rc_pb2
from ric.actions import (
    AdministrativeState,
    CellAdministration,
    CellIndividualOffset,
    EnergySavingControl,
)
from ric.backoff import Backoff
from ric.e2.convert import ccc_actions_from_proto, cell_to_proto
from ric.e2node import (
    Applied,
    E2Node,
    Endpoints,
    NodeDescription,
    Refused,
    RequestKey,
    SetupFailed,
    SetupRefused,
    read_setup_answer,
    setup_request,
)
from ric.errors import ProtocolError
from ric.ids import CellId, NodeId, NodeType, Plmn, SliceId
from ric.model import CauseCode, CellInfo
from ric.sim.profiles import VENDOR_PROFILES, VendorProfile
from ric.sim.world import SimControlError, Snapshot, World

__all__ = ["NodeAgent"]

log = logging.getLogger(__name__)

DEFAULT_KEEP_ALIVE_MS: Final = 5_000
MAX_PENDING: Final = 256
"""Messages queued for the RIC beyond which new indication batches are dropped."""
UE_STYLES: Final = frozenset({2, 3, 4, 5})
RECONNECT_JITTER: Final = 0.2
"""Each reconnect delay is spread this much either way, so that many nodes that lost the RIC
together do not return together."""


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


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name} {exc.details() or ''}".strip()
    return str(exc) or type(exc).__name__


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
    request_id: RequestKey
    ran_function_id: int
    period_s: float
    period_ms: int
    actions: list[_Action]
    since: Snapshot
    next_due_s: float


class NodeAgent(E2Node[_Action, _Subscription]):
    """One simulated E2 node of a :class:`~ric.sim.world.World`, connected to a RIC at ``target``:
    ``HOST:PORT``, or several (a sequence, or comma-separated) to fail over between.

    The world is the data source behind the shared E2 procedures (:class:`ric.e2node.E2Node`):
    it says what each admitted action reports, and controls change it.

    ``ready`` is set while the node has a live, set-up association; ``setups`` counts
    successful E2 setups (so reconnects can be observed).
    """

    def __init__(
        self,
        world: World,
        node_id: int,
        target: str | Sequence[str],
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
        self.node_id = NodeId(world.plmn, node_id, NodeType.GNB)
        super().__init__(str(self.node_id), log)
        self.world = world
        # Not checked here: the Simulator checks them, and the in-memory harness names none.
        self.endpoints = Endpoints(
            target.split(",") if isinstance(target, str) else target, check=False
        )
        """The RIC endpoints, and the one in use."""
        self.credentials = credentials
        """TLS credentials (the RIC's CA, and this node's certificate for mutual TLS); None:
        plaintext."""
        self.layout = world.nodes[node_id]
        self.profile: VendorProfile = VENDOR_PROFILES[self.layout.vendor]
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
        self._out: asyncio.Queue[e2_pb2.NodeMessage] | None = None
        self._sink: Callable[[e2_pb2.NodeMessage], None] | None = None
        self._announced: dict[int, CellInfo] = {}
        self._seen_changes = -1

    def __repr__(self) -> str:
        return f"NodeAgent({self.node_id}, {self.profile.name}, target={self.target!r})"

    @property
    def target(self) -> str:
        """The RIC endpoint the node uses now (or tries next)."""
        return self.endpoints.current

    # ---------------------------------------------------------------- association

    def describe(self) -> NodeDescription:
        """What this node announces in E2 setup: identity, RAN functions and cells."""
        self._announced = {c: self.world.cell_info(c) for c in self._cells}
        self._seen_changes = self.world.cell_changes
        return NodeDescription(
            node_id=self.node_id,
            vendor=self.profile.vendor,
            software_version=self.profile.software_version,
            ran_functions=self.profile.ran_functions(min_reporting_period_ms=self._min_period_ms),
            cells=list(self._announced.values()),
            keep_alive_interval_ms=self._keep_alive_ms,
        )

    def _cell_updates(self) -> list[e2_pb2.NodeMessage]:
        """A configuration update for the node's cells whose state changed since they were
        last announced (a cell switched off or back on after its shutdown or wake-up)."""
        self._seen_changes = self.world.cell_changes
        changed = []
        for c in self._cells:
            info = self.world.cell_info(c)
            if self._announced.get(c) != info:
                self._announced[c] = info
                changed.append(cell_to_proto(info))
        if not changed:
            return []
        return [
            e2_pb2.NodeMessage(
                configuration_update=e2_pb2.NodeConfigurationUpdate(
                    transaction_id=self.next_transaction(), cells_modified=changed
                )
            )
        ]

    def setup_request(self) -> e2_pb2.E2SetupRequest:
        """The E2SetupRequest this node sends (a new transaction each time)."""
        return setup_request(self.describe(), self.next_transaction())

    def attach(self, send: Callable[[e2_pb2.NodeMessage], None]) -> None:
        """Serve an association set up elsewhere: what the node says goes to ``send`` (for
        example an in-memory link's ``send``) instead of a gRPC stream, and the caller hands
        the RIC's messages to :meth:`handle`. Use instead of :meth:`run`, after the caller did
        the E2 setup with :meth:`setup_request`; subscriptions start afresh."""
        self._sink = send
        self.new_association()
        self.setups += 1
        self.ready.set()

    def detach(self) -> None:
        """End an association made with :meth:`attach`; its subscriptions die with it."""
        self._sink = None
        self._drop_session()

    async def run(self) -> None:
        """Keep an E2 association with the RIC until cancelled: connect, set up, serve, retry.

        Between attempts it waits a capped exponential back-off with jitter, starting short
        again after an association that was set up; a refused setup with a time-to-wait waits
        exactly that long instead. With several endpoints each attempt goes to the next one,
        and the time-to-wait is that of the endpoint about to be tried."""
        # An initial delay above the cap raises the cap, rather than refusing the node.
        cap_s = max(self._reconnect_initial_s, self._reconnect_max_s)
        retry = Backoff(self._reconnect_initial_s, cap_s, jitter=RECONNECT_JITTER)
        while True:
            setups_before = self.setups
            try:
                await self._connect_once()
                log.info("%s: the RIC at %s closed the stream", self.node_id, self.target)
            except SetupRefused as exc:
                log.warning("%s: E2 setup refused by %s: %s", self.node_id, self.target, exc)
                self.endpoints.refused(exc.wait_s)
            except Exception as exc:  # the association is gone, whatever ended it; retry
                self._log_loss(exc)
            finally:
                self._drop_session()
            if self.setups > setups_before:
                retry.reset()
            delay = retry.next()
            if len(self.endpoints) > 1:
                left = self.target
                log.info(
                    "%s: failing over from %s to %s", self.node_id, left, self.endpoints.fail_over()
                )
            await asyncio.sleep(self.endpoints.wait_s() or delay)

    def _log_loss(self, exc: Exception) -> None:
        leaves = _leaves(exc)
        expected = (grpc.aio.AioRpcError, SetupFailed, TimeoutError)
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
        self.drop_subscriptions()
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
        accepted = read_setup_answer(first)
        if accepted.rejected_ran_functions:
            log.warning(
                "%s: the RIC rejected RAN functions %s",
                self.node_id,
                list(accepted.rejected_ran_functions),
            )
        keep_alive_ms = (
            accepted.keep_alive_interval_ms or self._keep_alive_ms or DEFAULT_KEEP_ALIVE_MS
        )
        out: asyncio.Queue[e2_pb2.NodeMessage] = asyncio.Queue()
        self._out = out
        self.new_association()
        self.setups += 1
        self.ready.set()
        log.info(
            "%s (%s) set up with RIC %s", self.node_id, self.profile.name, accepted.ric_id or "?"
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
            self._send(self.keep_alive())

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

    def handle(self, msg: e2_pb2.RicMessage) -> None:
        """Handle one message from the RIC (after setup); answers go to the send queue."""
        for answer in self.answer(msg):
            self._send(answer)

    # ---------------------------------------------------------------- subscriptions (source)

    @property
    def kpm_function_id(self) -> int:
        """This node's KPM RAN function id (its vendor profile's)."""
        return self.profile.kpm_function_id

    @property
    def min_period_ms(self) -> int:
        """The profile's minimum reporting period, and never below one world tick."""
        return self._min_period_ms

    def is_rc_function(self, ran_function_id: int) -> bool:
        """Whether ``ran_function_id`` is this node's RC function or its CCC function (both
        take controls)."""
        return ran_function_id == self.profile.rc_function_id or self._is_ccc(ran_function_id)

    def _is_ccc(self, ran_function_id: int) -> bool:
        return bool(self.profile.ccc_structures) and ran_function_id == self.profile.ccc_function_id

    def subscribe(
        self, key: RequestKey, ran_function_id: int, period_ms: int, actions: list[_Action]
    ) -> _Subscription:
        """Report the subscription from now on, one period after now."""
        return _Subscription(
            request_id=key,
            ran_function_id=ran_function_id,
            period_s=period_ms / 1000.0,
            period_ms=period_ms,
            actions=actions,
            since=self.world.snapshot(),
            next_due_s=self.world.time_s + period_ms / 1000.0,
        )

    def not_reported(self, action: _Action, metric: str) -> str:
        """The action's style does not report ``metric`` on this vendor's node."""
        return f"style {action.style} of {self.profile.name} does not report {metric}"

    def admit_action(self, defn: kpm_pb2.KpmActionDefinition, action_id: int) -> _Action:
        """The action on the world: its style's measurements on this profile, and its scope as
        world indices."""
        supported = self.profile.metrics(defn.report_style)
        if not supported:
            raise Refused(
                CauseCode.RIC_REQUEST_ACTION_NOT_SUPPORTED,
                f"report style {defn.report_style} is not supported by {self.profile.name} "
                f"(styles {sorted(self.profile.kpm_styles)})",
            )
        wanted = list(dict.fromkeys(defn.metric_names))
        admitted = tuple(m for m in wanted if m in supported)
        if not admitted:
            raise Refused(
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
        return _Action(
            action_id=action_id,
            style=defn.report_style,
            metrics=admitted,
            cells=cells,
            ue_ids=frozenset(scope.ue_ids),
            slices=slices,
            slice_filter=bool(scope.slices),
            per_slice=defn.per_slice,
        )

    # ---------------------------------------------------------------- reporting

    def on_tick(self) -> None:
        """Send, in one IndicationBatch, every report due at the world's current time, after a
        configuration update if a cell of the node changed state in the step."""
        if self._out is None and self._sink is None:
            return
        if self.world.cell_changes != self._seen_changes:
            for update in self._cell_updates():
                self._send(update)
        if not self.subscriptions:
            return
        now = self.world.time_s
        due = [sub for sub in self.subscriptions.values() if now + 1e-9 >= sub.next_due_s]
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

    def apply_control(self, req: e2_pb2.ControlRequest) -> Applied:
        """Apply an RC or CCC control to the world; a cell state change is announced afterwards
        in a configuration update (when it happens: a shutdown or a wake-up takes time)."""
        if self._is_ccc(req.ran_function_id):
            try:
                return self._ccc(req)
            except SimControlError as exc:
                raise Refused(CauseCode.RIC_REQUEST_CONTROL_FAILED_TO_EXECUTE, str(exc)) from exc
        header = req.header
        spec = self.profile.rc_action(header.style, header.action_id)
        if spec is None:
            raise Refused(
                CauseCode.RIC_REQUEST_ACTION_NOT_SUPPORTED,
                f"RC style {header.style} action {header.action_id} is not supported by {self.profile.name}",
            )
        key = (header.style, header.action_id)
        message = req.message
        kind = message.WhichOneof("action")
        params = dict(message.generic.parameters) if kind == "generic" else {}
        try:
            if key == (3, 1):
                return Applied(
                    self._handover(header, message.handover if kind == "handover" else None, params)
                )
            if key == (2, 6):
                return Applied(
                    self._slice_quota(
                        header,
                        message.slice_prb_quota if kind == "slice_prb_quota" else None,
                        params,
                    )
                )
            if key == (100, 1):
                return self._cell_state(
                    header, message.cell_state if kind == "cell_state" else None, params
                )
        except SimControlError as exc:
            raise Refused(CauseCode.RIC_REQUEST_CONTROL_FAILED_TO_EXECUTE, str(exc)) from exc
        raise Refused(
            CauseCode.RIC_REQUEST_ACTION_NOT_SUPPORTED,
            f"RC style {key[0]} action {key[1]} has no handler",
        )

    def _own_cell(self, cgi: common_pb2.NrCgi, what: str) -> int:
        cell = _cell_id(cgi)
        idx = None if cell is None else self.world.cell_index(cell)
        if idx is None or idx not in self._cell_set:
            raise Refused(
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
            raise Refused(
                CauseCode.RIC_REQUEST_CONTROL_MESSAGE_INVALID, "handover needs a UE target"
            )
        ue_id = header.ue.ue_id
        idx = self.world.ue_index(ue_id)
        if idx is None or int(self.world.serving[idx]) not in self._cell_set:
            raise Refused(
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
            raise Refused(
                CauseCode.RIC_REQUEST_CONTROL_MESSAGE_INVALID, "handover needs a target cell"
            )
        if target is None:
            raise Refused(CauseCode.RIC_REQUEST_CONTROL_MESSAGE_INVALID, "malformed target cell")
        source = self.world.handover(ue_id, target)
        return f"UE {ue_id} handed over from {self.world.cell_text[source]} to {target}"

    def _slice_quota(
        self,
        header: rc_pb2.RcControlHeader,
        msg: rc_pb2.SlicePrbQuota | None,
        params: dict[str, rc_pb2.Value],
    ) -> str:
        if header.WhichOneof("target") != "slice":
            raise Refused(
                CauseCode.RIC_REQUEST_CONTROL_MESSAGE_INVALID,
                "slice PRB quota needs a slice target",
            )
        cell = self._own_cell(header.slice.cell, "cell")
        slice_id = _slice_id(header.slice.slice)
        if slice_id is None or self.world.slice_index(slice_id) is None:
            raise Refused(
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
    ) -> Applied:
        if header.WhichOneof("target") != "cell":
            raise Refused(
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
            raise Refused(
                CauseCode.RIC_REQUEST_CONTROL_MESSAGE_INVALID,
                "cell state needs active and/or tx_power_dbm",
            )
        cell_id = self.world.cell_ids[cell]
        if power is not None:
            self.world.set_cell_state(cell_id, tx_power_dbm=power)
        if active is not None:
            # The deprecated vendor control takes the CCC path: energy saving, with the UEs
            # handed out first and a wake-up time.
            self.world.configure_cell(
                cell_id,
                administrative_state=AdministrativeState.UNLOCKED if active else None,
                energy_saving=not active,
            )
        after = self.world.cell_info(cell)
        return Applied(
            f"cell {after.id} {self.world.cell_state(cell)}, {after.tx_power_dbm:.1f} dBm",
            self._cell_updates(),
        )

    def _ccc(self, req: e2_pb2.ControlRequest) -> Applied:
        """Apply an E2SM-CCC cell configuration control: every change, or none."""
        if not req.HasField("ccc"):
            raise Refused(
                CauseCode.RIC_REQUEST_CONTROL_MESSAGE_INVALID,
                "a control to the CCC function carries its content in ControlRequest.ccc",
            )
        try:
            actions = ccc_actions_from_proto(req.ccc)
        except ProtocolError as exc:
            raise Refused(exc.cause.code, exc.cause.detail) from exc
        world = self.world
        cell = self._own_cell(req.ccc.cell, "cell")
        for action in actions:
            for structure, attribute in action.writes():
                if not self.profile.ccc_writable(structure, attribute):
                    raise Refused(
                        CauseCode.RIC_REQUEST_ACTION_NOT_SUPPORTED,
                        f"{self.profile.name} does not let the RIC write {structure}.{attribute}",
                    )
            if isinstance(action, CellIndividualOffset):
                neighbour = world.cell_index(CellId.parse(action.neighbour))
                if neighbour is None or neighbour not in world.neighbours(cell):
                    raise Refused(
                        CauseCode.RIC_REQUEST_TARGET_UNKNOWN,
                        f"{action.cell_id} has no neighbour relation to {action.neighbour}",
                    )
        done: list[str] = []
        for action in actions:
            if isinstance(action, CellIndividualOffset):
                world.set_cio(
                    world.cell_ids[cell], CellId.parse(action.neighbour), action.offset_db
                )
                done.append(f"CIO {action.cell_id}>{action.neighbour} {action.offset_db:+d} dB")
            elif isinstance(action, CellAdministration):
                es = action.energy_saving_control
                state = world.configure_cell(
                    world.cell_ids[cell],
                    administrative_state=action.administrative_state,
                    energy_saving=None
                    if es is None
                    else es is EnergySavingControl.TO_BE_ENERGY_SAVING,
                )
                done.append(f"cell {action.cell_id} {state}")
        return Applied("; ".join(done), self._cell_updates())


def _int_param(params: dict[str, rc_pb2.Value], name: str) -> int:
    value = params.get(name)
    if value is None or value.WhichOneof("kind") != "int_value":
        raise Refused(
            CauseCode.RIC_REQUEST_CONTROL_MESSAGE_INVALID, f"parameter {name} (int) is missing"
        )
    return value.int_value


def _bool_param(params: dict[str, rc_pb2.Value], name: str) -> bool:
    value = params[name]
    if value.WhichOneof("kind") != "bool_value":
        raise Refused(
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
    raise Refused(
        CauseCode.RIC_REQUEST_CONTROL_MESSAGE_INVALID, f"parameter {name} must be a number"
    )
