"""Setting an E2 node up: the E2SetupRequest from a node's description, and what the RIC's
answer means.

Both the transport loops (the simulator agent's reconnecting gRPC client, the trace replay's
streams) and the in-memory harness send what :func:`setup_request` builds (or a recorded
request) and read the first answer with :func:`read_setup_answer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ric._proto.e2.v1 import e2_pb2
from ric.e2.convert import cause_from_proto, cell_to_proto, node_id_to_proto
from ric.errors import RicError
from ric.ids import NodeId
from ric.model import Cause, CellInfo

__all__ = [
    "NodeDescription",
    "SetupAccepted",
    "SetupFailed",
    "SetupRefused",
    "read_setup_answer",
    "setup_request",
]


@dataclass(frozen=True, slots=True)
class NodeDescription:
    """What a node announces about itself in E2 setup."""

    node_id: NodeId
    vendor: str
    software_version: str
    ran_functions: Sequence[e2_pb2.RanFunction]
    cells: Sequence[CellInfo]
    keep_alive_interval_ms: int


def setup_request(node: NodeDescription, transaction_id: int) -> e2_pb2.E2SetupRequest:
    """The E2SetupRequest announcing ``node``."""
    return e2_pb2.E2SetupRequest(
        transaction_id=transaction_id,
        node_id=node_id_to_proto(node.node_id),
        vendor=node.vendor,
        software_version=node.software_version,
        ran_functions=node.ran_functions,
        cells=[cell_to_proto(c) for c in node.cells],
        keep_alive_interval_ms=node.keep_alive_interval_ms,
    )


class SetupFailed(RicError):
    """The RIC did not answer E2 setup with a response or a failure."""


class SetupRefused(SetupFailed):
    """The RIC answered E2 setup with a failure: its cause, and how long to wait (0: the RIC
    did not say) before trying again."""

    def __init__(self, cause: Cause, wait_s: float) -> None:
        super().__init__(f"{cause.code.name} {cause.detail}".strip())
        self.cause = cause
        self.wait_s = wait_s


@dataclass(frozen=True, slots=True)
class SetupAccepted:
    """The RIC's E2SetupResponse, as a node needs it."""

    ric_id: str
    keep_alive_interval_ms: int
    """The interval the RIC asked for (0: it did not say)."""
    rejected_ran_functions: tuple[int, ...]


def read_setup_answer(msg: object) -> SetupAccepted:
    """What the RIC's first message (``msg``, whatever the stream's read gave) says about the
    setup; SetupRefused for an E2SetupFailure, SetupFailed for an ended stream or another
    message."""
    if not isinstance(msg, e2_pb2.RicMessage):
        raise SetupFailed("the RIC ended the stream before answering E2 setup")
    kind = msg.WhichOneof("message")
    if kind == "setup_failure":
        failure = msg.setup_failure
        raise SetupRefused(cause_from_proto(failure.cause), failure.time_to_wait_ms / 1000.0)
    if kind != "setup_response":
        raise SetupFailed(f"expected an E2 setup response, got {kind}")
    response = msg.setup_response
    return SetupAccepted(
        ric_id=response.ric_id,
        keep_alive_interval_ms=response.keep_alive_interval_ms,
        rejected_ran_functions=tuple(r.ran_function_id for r in response.rejected_ran_functions),
    )
