"""E2 procedures independent of the transport: setup, and one message at a time after it.

The gRPC server (``ric.e2.termination``) and the in-memory link (``ric.e2.memory``) both move
bytes; this module decides what the bytes mean at the edge: it parses them (a malformed
message is answered, never a crashed stream), runs E2 setup, echoes keep-alives, refuses
out-of-order messages, hands the rest to the ``E2Handler`` (the runtime core), and shows every
frame, both ways, to the sensors (the trace recorder listens there).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from google.protobuf.message import DecodeError

from ric._proto.e2.v1 import e2_pb2
from ric.e2.convert import cause_to_proto, node_info_from_setup, ran_function_from_proto
from ric.e2.session import NodeSession
from ric.errors import ProtocolError
from ric.model import CCC_OID, KPM_OID, RC_OID, Cause, CauseCode, NodeInfo, RanFunction
from ric.types import Sensor

__all__ = ["E2Endpoint", "E2Handler", "TerminationConfig", "parse_node_message"]

log = logging.getLogger(__name__)

_SUPPORTED_OIDS = {KPM_OID: "kpm", RC_OID: "rc", CCC_OID: "ccc"}


class E2Handler(Protocol):
    """What the E2 edge needs from the runtime core."""

    def admit(self, info: NodeInfo) -> Cause | None:
        """None to accept a node's setup, or the cause of refusal (for example a duplicate id)."""
        ...

    async def claim(self, info: NodeInfo) -> Cause | None:
        """After ``admit``, before the setup is answered: None to take the node, or the cause
        of refusal (a replica of a RIC takes the node's lease here, ``ric.cluster``)."""
        ...

    def node_up(self, session: NodeSession) -> None:
        """A node completed setup; its session is ready for requests."""
        ...

    def node_down(self, session: NodeSession, reason: str) -> None:
        """A node's session ended."""
        ...

    def handle(self, session: NodeSession, kind: str, msg: Any) -> None:
        """A message of type ``kind`` (the NodeMessage oneof name) from a set-up node.

        Raises ``ProtocolError`` when the message is wrong; the node is told the cause.
        """
        ...


@dataclass(frozen=True)
class TerminationConfig:
    """Settings of the E2 termination."""

    host: str = "127.0.0.1"
    port: int = 36421
    # Keep-alive interval the RIC asks for, in seconds; a node is lost after three silent ones.
    keep_alive_s: float = 1.0
    # How long a new stream may take to send its E2SetupRequest, in seconds.
    setup_timeout_s: float = 5.0
    # Error budget per node: this many bad messages at once, refilled at error_refill_per_s.
    error_burst: int = 20
    error_refill_per_s: float = 1.0
    # Bounds on what a node may send (see E2Settings for why each default).
    max_message_bytes: int = 4 * 1024 * 1024
    max_entities_per_matrix: int = 20_000
    max_values_per_batch: int = 250_000
    max_values_per_s_per_node: float | None = 2_000_000.0
    max_indications_per_batch: int = 256
    max_indications_per_s_per_node: float | None = 1000.0
    ric_id: str = "ric"
    # TLS: server certificate chain and key (PEM files); empty: plaintext (loopback only).
    tls_cert: str = ""
    tls_key: str = ""
    # CA bundle node certificates must chain to; empty: nodes need no certificate.
    tls_client_ca: str = ""
    # With client certificates: the node id claimed in setup must be the certificate's name.
    check_node_identity: bool = True


def parse_node_message(data: bytes) -> e2_pb2.NodeMessage:
    """Parse one NodeMessage; ProtocolError (transfer syntax) when the bytes are not one."""
    try:
        return e2_pb2.NodeMessage.FromString(data)
    except DecodeError as exc:
        raise ProtocolError(
            Cause(CauseCode.PROTOCOL_TRANSFER_SYNTAX_ERROR, f"undecodable NodeMessage: {exc}")
        ) from exc


_NO_MESSAGE = Cause(
    CauseCode.PROTOCOL_ABSTRACT_SYNTAX_ERROR_FALSELY_CONSTRUCTED_MESSAGE,
    "NodeMessage carries no message",
)
_SETUP_AGAIN = Cause(
    CauseCode.PROTOCOL_MESSAGE_NOT_COMPATIBLE_WITH_RECEIVER_STATE,
    "setup_request on a stream that is already set up",
)


class E2Endpoint:
    """The E2 edge of one runtime, shared by every transport."""

    def __init__(self, handler: E2Handler, config: TerminationConfig, sensor: Sensor) -> None:
        self.handler = handler
        self.config = config
        self.sensor = sensor

    # -- setup --------------------------------------------------------------------------------

    def setup(
        self, data: bytes, peer: str, identities: frozenset[str] | None = None
    ) -> NodeSession:
        """Run E2 setup on a stream's first message; the response is queued on the session.

        ``identities`` are the names in the node's verified TLS certificate (subject CN and
        SANs), when the transport has one: the node id claimed must be among them.
        Raises ProtocolError with the cause the node is to be told in an E2SetupFailure (the
        caller sends it with ``setup_failure``); the refusal is counted.
        """
        msg: e2_pb2.NodeMessage | None = None
        too_big = self._too_big(data)
        try:
            if too_big is not None:
                raise ProtocolError(too_big)
            msg = parse_node_message(data)
            session = self._setup(msg, peer, identities)
        except ProtocolError as exc:
            claimed = _claimed_id(msg)
            if too_big is not None:
                self.sensor.e2_refused(claimed, "message_size", too_big.detail)
            self.sensor.setup_result(False, claimed, exc.cause)
            self.sensor.e2_error(None if claimed == "?" else claimed, exc.cause)
            raise
        self.sensor.e2_frame(session.id, True, data)
        return session

    def setup_failure(self, cause: Cause, data: bytes | None) -> bytes:
        """The serialized E2SetupFailure answering a refused first message."""
        transaction_id = 0
        if data is not None and self._too_big(data) is None:
            with contextlib.suppress(DecodeError):
                transaction_id = e2_pb2.NodeMessage.FromString(data).setup_request.transaction_id
        fail = e2_pb2.E2SetupFailure(transaction_id=transaction_id, cause=cause_to_proto(cause))
        return e2_pb2.RicMessage(setup_failure=fail).SerializeToString()

    def _setup(
        self, msg: e2_pb2.NodeMessage, peer: str, identities: frozenset[str] | None
    ) -> NodeSession:
        which = msg.WhichOneof("message")
        if which != "setup_request":
            raise ProtocolError(
                Cause(
                    CauseCode.PROTOCOL_MESSAGE_NOT_COMPATIBLE_WITH_RECEIVER_STATE,
                    f"the first message of a stream must be setup_request, got {which or 'nothing'}",
                )
            )
        req = msg.setup_request
        accepted: dict[int, RanFunction] = {}
        rejected: list[e2_pb2.RanFunctionRejection] = []
        for fn in req.ran_functions:
            cause = _check_function(fn, accepted)
            if cause is None:
                accepted[fn.ran_function_id] = ran_function_from_proto(fn)
            else:
                rejected.append(
                    e2_pb2.RanFunctionRejection(
                        ran_function_id=fn.ran_function_id, cause=cause_to_proto(cause)
                    )
                )
        info = node_info_from_setup(req, accepted)
        if identities is not None and str(info.id) not in identities:
            names = ", ".join(sorted(identities)) or "no name"
            raise ProtocolError(
                Cause(
                    CauseCode.MISC_NOT_AUTHORIZED,
                    f"the certificate of {peer} is for {names}, not for node {info.id} "
                    "that the setup claims",
                )
            )
        refusal = self.handler.admit(info)
        if refusal is not None:
            raise ProtocolError(refusal)
        keep_alive_ms = req.keep_alive_interval_ms or int(self.config.keep_alive_s * 1000)
        keep_alive_ms = min(max(keep_alive_ms, 100), 60_000)
        session = NodeSession(
            info,
            peer,
            keep_alive_ms / 1000.0,
            self.sensor,
            error_burst=self.config.error_burst,
            error_refill_per_s=self.config.error_refill_per_s,
            max_values_per_s=self.config.max_values_per_s_per_node,
            max_indications_per_s=self.config.max_indications_per_s_per_node,
        )
        session.send(
            e2_pb2.RicMessage(
                setup_response=e2_pb2.E2SetupResponse(
                    transaction_id=req.transaction_id,
                    ric_id=self.config.ric_id,
                    accepted_ran_function_ids=sorted(accepted),
                    rejected_ran_functions=rejected,
                    keep_alive_interval_ms=keep_alive_ms,
                )
            )
        )
        for r in rejected:
            log.info(
                "node %s: RAN function %d rejected: %s",
                info.id,
                r.ran_function_id,
                r.cause.detail,
                extra={"node": str(info.id)},
            )
        return session

    async def claim(self, session: NodeSession) -> Cause | None:
        """Let the core take the node of a session that passed setup, before its response is
        sent; a refusal is counted, closes the session and is the cause the node is told
        (the caller sends it with ``setup_failure``). The in-memory link does not call it:
        replicas (the only core that claims) serve E2 over gRPC."""
        cause = await self.handler.claim(session.info)
        if cause is not None:
            self.sensor.setup_result(False, session.id, cause)
            self.sensor.e2_error(session.id, cause)
            session.close(cause.detail)
        return cause

    def up(self, session: NodeSession) -> None:
        """The transport carries the session now: count the setup and tell the core."""
        self.sensor.setup_result(True, session.id, None)
        self.handler.node_up(session)

    def down(self, session: NodeSession, reason: str) -> None:
        """The transport lost the session: close it and tell the core."""
        session.close(reason)
        self.handler.node_down(session, session.close_reason or reason)

    # -- after setup --------------------------------------------------------------------------

    def receive(self, session: NodeSession, data: bytes) -> None:
        """Handle one message from a set-up node; a bad one is answered, never raised.

        A message over ``max_message_bytes`` is refused unparsed (and not shown to the frame
        sensors, so the trace recorder does not copy it either).
        """
        too_big = self._too_big(data)
        if too_big is not None:
            session.protocol_error(too_big, refused="message_size")
            return
        self.sensor.e2_frame(session.id, True, data)
        try:
            msg = parse_node_message(data)
            kind = msg.WhichOneof("message")
            if kind is None:
                raise ProtocolError(_NO_MESSAGE)
            if kind == "setup_request":
                raise ProtocolError(_SETUP_AGAIN)
            if kind == "keep_alive":
                session.send(e2_pb2.RicMessage(keep_alive=msg.keep_alive))
                return
            self.handler.handle(session, kind, getattr(msg, kind))
        except ProtocolError as exc:
            session.protocol_error(exc.cause, exc.request_id, ran_function_id=exc.ran_function_id)

    def _too_big(self, data: bytes) -> Cause | None:
        limit = self.config.max_message_bytes
        if len(data) <= limit:
            return None
        return Cause(
            CauseCode.RIC_SERVICE_RIC_RESOURCE_LIMIT,
            f"message of {len(data):,} bytes is over e2.max_message_bytes = {limit:,}",
        )

    def encode(self, session: NodeSession, msg: e2_pb2.RicMessage) -> bytes:
        """Serialize one message for the node (and show it to the sensors)."""
        data = msg.SerializeToString()
        self.sensor.e2_frame(session.id, False, data)
        return data


def _claimed_id(msg: e2_pb2.NodeMessage | None) -> str:
    if msg is None or msg.WhichOneof("message") != "setup_request":
        return "?"
    gid = msg.setup_request.node_id
    return f"node {gid.node_id} of {gid.plmn.mcc}-{gid.plmn.mnc}"


def _check_function(fn: e2_pb2.RanFunction, accepted: dict[int, RanFunction]) -> Cause | None:
    if fn.ran_function_id in accepted:
        return Cause(
            CauseCode.PROTOCOL_SEMANTIC_ERROR,
            f"RAN function id {fn.ran_function_id} is announced twice",
        )
    kind = _SUPPORTED_OIDS.get(fn.oid)
    if kind is None:
        return Cause(
            CauseCode.RIC_SERVICE_RAN_FUNCTION_NOT_SUPPORTED,
            f"service model {fn.short_name or '?'} (OID {fn.oid or 'none'}) is not supported",
        )
    if fn.WhichOneof("definition") != kind:
        return Cause(
            CauseCode.PROTOCOL_SEMANTIC_ERROR,
            f"RAN function {fn.ran_function_id} ({fn.short_name}) has no {kind} definition",
        )
    return None
