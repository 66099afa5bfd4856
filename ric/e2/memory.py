"""An in-memory E2 transport: a node wired straight into a runtime, with no network.

It goes through the same ``E2Endpoint`` as the gRPC server (bytes in, bytes out, the same
setup, checks and sensors), but synchronously: what a node sends is handled before ``send``
returns, and what the RIC sends waits in the session until the node calls ``take``. The test
harness runs xApps against simulated or recorded nodes on a virtual clock this way.

::

    link = MemoryLink(runtime.endpoint)
    answer = link.setup(setup_request)        # E2SetupResponse or E2SetupFailure
    link.send(indications)                    # handled now
    for msg in link.take():                   # subscription requests, controls, ...
        ...
"""

from __future__ import annotations

from ric._proto.e2.v1 import e2_pb2
from ric.e2.endpoint import E2Endpoint
from ric.e2.session import NodeSession
from ric.errors import ProtocolError, StateError

__all__ = ["MemoryLink"]


class MemoryLink:
    """One node's association with a runtime, in memory."""

    def __init__(self, endpoint: E2Endpoint, peer: str = "memory") -> None:
        self.endpoint = endpoint
        self.peer = peer
        self.session: NodeSession | None = None
        self._pending: list[e2_pb2.RicMessage] = []

    @property
    def up(self) -> bool:
        """Whether the association is set up and not closed."""
        return self.session is not None and not self.session.closed

    def setup(self, msg: e2_pb2.NodeMessage) -> e2_pb2.RicMessage:
        """Send the first message; returns the RIC's E2SetupResponse or E2SetupFailure."""
        if self.up:
            raise StateError(f"MemoryLink to {self.peer}: already set up; close it first")
        data = msg.SerializeToString()
        try:
            session = self.endpoint.setup(data, self.peer)
        except ProtocolError as exc:
            return e2_pb2.RicMessage.FromString(self.endpoint.setup_failure(exc.cause, data))
        self.session = session
        first = session.take_outbound()
        self.endpoint.up(session)
        if not first:
            raise StateError("E2 setup produced no response")
        self._pending = first[1:]
        return self._decode(session, first[0])

    def send(self, msg: e2_pb2.NodeMessage) -> None:
        """Deliver one message to the RIC; it is handled before this returns."""
        self.send_bytes(msg.SerializeToString())

    def send_bytes(self, data: bytes) -> None:
        """Deliver one message as raw bytes (recorded frames, or fuzzed input)."""
        session = self._session()
        self.endpoint.receive(session, data)
        if session.closed:  # the RIC ended it (for example too many bad messages)
            self.close(session.close_reason)

    def take(self) -> list[e2_pb2.RicMessage]:
        """The messages the RIC has sent since the last call, in order."""
        if self.session is None:
            return []
        session = self.session
        out = [self._decode(session, m) for m in (*self._pending, *session.take_outbound())]
        self._pending = []
        return out

    def close(self, reason: str = "the node closed the link") -> None:
        """End the association, as a stream end would."""
        if self.session is not None:
            self.endpoint.down(self.session, reason)
        self.session = None

    def _session(self) -> NodeSession:
        if self.session is None:
            raise StateError(f"MemoryLink to {self.peer}: not set up")
        return self.session

    def _decode(self, session: NodeSession, msg: e2_pb2.RicMessage) -> e2_pb2.RicMessage:
        # Through bytes, as on the wire: the sensors (the recorder) see the same frames.
        return e2_pb2.RicMessage.FromString(self.endpoint.encode(session, msg))
