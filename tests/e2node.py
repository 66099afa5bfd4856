"""A scripted E2 node for tests: speaks the wire contract directly, message by message.

Unlike the simulator, it does nothing by itself: the test sends each message and reads each
answer, so it can also send what a good node never would.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

import grpc

from ric._proto.e2.v1 import common_pb2, e2_pb2, e2_pb2_grpc, kpm_pb2, rc_pb2
from ric.model import KPM_OID, RC_OID

PLMN = common_pb2.PlmnId(mcc="001", mnc="01")
ALL_METRICS = ("RRU.PrbUsedDl", "RRU.PrbAvailDl", "DRB.UEThpDl", "DRB.UEThpUl", "L1M.RSRP")


def cgi(nci: int) -> common_pb2.NrCgi:
    """The NR CGI of cell ``nci`` in the test PLMN."""
    return common_pb2.NrCgi(plmn=PLMN, nr_cell_identity=nci)


def kpm_function(
    styles: Sequence[int] = (1, 5), metrics: Sequence[str] = ALL_METRICS
) -> e2_pb2.RanFunction:
    """A KPM RAN function (id 2) offering ``styles`` with ``metrics``."""
    return e2_pb2.RanFunction(
        ran_function_id=2,
        oid=KPM_OID,
        short_name="ORAN-E2SM-KPM",
        revision=3,
        kpm=kpm_pb2.KpmFunctionDefinition(
            report_styles=[
                kpm_pb2.KpmReportStyle(style=s, name=f"style {s}", metric_names=metrics)
                for s in styles
            ],
            min_reporting_period_ms=10,
        ),
    )


def rc_function(actions: Sequence[tuple[int, int]] = ((3, 1), (2, 6))) -> e2_pb2.RanFunction:
    """An RC RAN function (id 3) offering the (style, action) pairs."""
    styles: dict[int, list[rc_pb2.RcControlAction]] = {}
    for style, action in actions:
        styles.setdefault(style, []).append(
            rc_pb2.RcControlAction(action_id=action, name=f"a{action}")
        )
    return e2_pb2.RanFunction(
        ran_function_id=3,
        oid=RC_OID,
        short_name="ORAN-E2SM-RC",
        revision=1,
        rc=rc_pb2.RcFunctionDefinition(
            control_styles=[
                rc_pb2.RcControlStyle(style=s, name=f"s{s}", actions=a) for s, a in styles.items()
            ]
        ),
    )


def setup_request(
    node_id: int = 1,
    cells: Sequence[int] = (11, 12),
    functions: Sequence[e2_pb2.RanFunction] | None = None,
    keep_alive_ms: int = 0,
) -> e2_pb2.NodeMessage:
    """An E2SetupRequest for gNB ``node_id`` with cells ``cells``."""
    return e2_pb2.NodeMessage(
        setup_request=e2_pb2.E2SetupRequest(
            transaction_id=1,
            node_id=common_pb2.GlobalNodeId(
                plmn=PLMN, node_id=node_id, type=common_pb2.NODE_TYPE_GNB
            ),
            vendor="testco",
            software_version="1.0",
            ran_functions=list(functions)
            if functions is not None
            else [kpm_function(), rc_function()],
            cells=[
                common_pb2.Cell(
                    cgi=cgi(c), pci=c, band=78, bandwidth_prbs=106, active=True, tx_power_dbm=40
                )
                for c in cells
            ],
            keep_alive_interval_ms=keep_alive_ms,
        )
    )


def indication(
    request_id: common_pb2.RicRequestId,
    metrics: Sequence[str],
    entities: Sequence[str],
    values: Sequence[float] | None = None,
    *,
    kind: int = kpm_pb2.ENTITY_KIND_CELL,
    cells: Sequence[str] = (),
    seq: int = 0,
) -> e2_pb2.Indication:
    """A KPM indication; ``values`` default to 1.0, 2.0, ... (row-major)."""
    if values is None:
        values = [float(i + 1) for i in range(len(metrics) * len(entities))]
    return e2_pb2.Indication(
        request_id=request_id,
        ran_function_id=2,
        action_id=1,
        sequence_number=seq,
        type=e2_pb2.INDICATION_TYPE_REPORT,
        kpm=kpm_pb2.KpmIndication(
            collection_start_unix_ms=1_700_000_000_000,
            granularity_period_ms=1000,
            matrix=kpm_pb2.MeasurementMatrix(
                entity_kind=kind,  # type: ignore[arg-type]
                metric_names=metrics,
                entity_ids=entities,
                entity_cells=cells,
                values=[v if not math.isnan(v) else math.nan for v in values],
            ),
        ),
    )


class ScriptedNode:
    """One Connect stream, driven by the test."""

    def __init__(self, target: str, credentials: grpc.ChannelCredentials | None = None) -> None:
        self.target = target
        self.credentials = credentials
        self._channel: grpc.aio.Channel | None = None
        self.call: Any = None

    async def __aenter__(self) -> ScriptedNode:
        if self.credentials is not None:
            self._channel = grpc.aio.secure_channel(self.target, self.credentials)
        else:
            self._channel = grpc.aio.insecure_channel(self.target)
        self.call = e2_pb2_grpc.E2TerminationStub(self._channel).Connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._channel is not None
        self.call.cancel()
        await self._channel.close()

    async def send(self, msg: e2_pb2.NodeMessage) -> None:
        """Write one message."""
        await self.call.write(msg)

    async def recv(self, timeout: float = 5.0) -> e2_pb2.RicMessage:
        """Read the next message; fails the test on end of stream or timeout."""
        msg = await asyncio.wait_for(self.call.read(), timeout)
        assert msg is not grpc.aio.EOF, "the RIC ended the stream"
        return msg  # type: ignore[no-any-return]

    async def recv_kind(self, kind: str, timeout: float = 5.0) -> Any:
        """Read until a message of ``kind`` (the RicMessage oneof name) comes; return its body."""
        while True:
            msg = await self.recv(timeout)
            if msg.WhichOneof("message") == kind:
                return getattr(msg, kind)

    async def ended(self, timeout: float = 10.0) -> bool:
        """True once the RIC has ended the stream (reads and discards until then); a stream
        that ended with an error status (the node's own write raced the end) counts too."""
        while True:
            try:
                msg = await asyncio.wait_for(self.call.read(), timeout)
            except grpc.aio.AioRpcError:
                return True
            if msg is grpc.aio.EOF:
                return True

    async def setup(self, **kwargs: Any) -> e2_pb2.E2SetupResponse:
        """Send a setup request and return the response (fails on a setup failure)."""
        await self.send(setup_request(**kwargs))
        msg = await self.recv()
        assert msg.WhichOneof("message") == "setup_response", msg
        return msg.setup_response

    async def accept_subscriptions(self, count: int) -> list[e2_pb2.SubscriptionRequest]:
        """Answer the next ``count`` subscription requests with a full admission."""
        out = []
        for _ in range(count):
            req = await self.recv_kind("subscription_request")
            await self.send(
                e2_pb2.NodeMessage(
                    subscription_response=e2_pb2.SubscriptionResponse(
                        request_id=req.request_id,
                        ran_function_id=req.ran_function_id,
                        admitted_action_ids=[a.action_id for a in req.actions],
                    )
                )
            )
            out.append(req)
        return out
