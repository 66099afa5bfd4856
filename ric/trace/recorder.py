"""The trace recorder: every E2 frame of a runtime, both ways, into a trace file.

It is a Sensor (it listens on ``e2_frame``, the hook that shows every message crossing the
termination as bytes, and on ``node_disconnected``) and a runtime Component (it owns the file:
opened when the runtime starts, flushed every ``flush_interval_s`` and closed at shutdown).
Pass it as both::

    recorder = TraceRecorder("run.trace.gz")
    async with Runtime(config, plugins, sensors=[recorder], components=[recorder]):
        ...

(``Runtime.from_config`` builds one from ``[trace] record``, with ``recorder_from_config``.)

Nodes already set up when recording starts go into the header with their E2SetupRequest;
nodes that set up later are frames like any other. Frames are timed on the runtime's clock
(virtual under the test harness). Writing happens on the event loop, into a buffer that is
flushed once a second; if the disk fails, recording stops (logged once, and the component's
readiness check fails) and the runtime goes on.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from google.protobuf.message import DecodeError

from ric._proto.e2.v1 import e2_pb2, kpm_pb2
from ric.privacy import Pseudonymizer
from ric.trace.format import Direction, NodeSetup, TraceHeader, TraceWriter
from ric.types import Cancellable, Check, Clock, Sensor

if TYPE_CHECKING:
    from ric.config import RuntimeConfig
    from ric.model import NodeInfo
    from ric.view import RuntimeView

__all__ = ["TraceRecorder", "recorder_from_config"]

log = logging.getLogger(__name__)


class TraceRecorder(Sensor):
    """Records a runtime's E2 traffic into ``path`` (gzip when it ends in ``.gz``).

    ``frames`` counts the frames written; ``error`` is set when writing failed.
    """

    name = "trace"

    def __init__(
        self,
        path: str | Path,
        *,
        compress: bool | None = None,
        flush_interval_s: float = 1.0,
        source: str = "ric run --record",
        metadata: Mapping[str, str] | None = None,
        privacy: Pseudonymizer | None = None,
    ) -> None:
        if flush_interval_s <= 0:
            raise ValueError(f"flush_interval_s must be positive, got {flush_interval_s}")
        self.path = Path(path)
        self.compress = compress
        self.flush_interval_s = flush_interval_s
        self.source = source
        self.metadata = dict(metadata or {})
        self.privacy = privacy if privacy is not None and privacy.enabled else None
        """With a pseudonymizer, UE ids are written as numeric keyed pseudonyms."""
        self.frames = 0
        self.error: str | None = None
        self._writer: TraceWriter | None = None
        self._clock: Clock | None = None
        self._mono0 = 0.0
        self._timer: Cancellable | None = None
        # Setups of the live nodes (as the NodeMessage bytes) and when they happened, so that
        # the header can describe the nodes connected before recording started.
        self._setups: dict[str, tuple[bytes, float | None]] = {}

    def __repr__(self) -> str:
        return f"TraceRecorder({str(self.path)!r}, {self.frames} frames)"

    # -- Sensor ----------------------------------------------------------------------------------

    def e2_frame(self, node: str, inbound: bool, data: bytes) -> None:
        """Write one frame (the first one of a node's association is its setup)."""
        if inbound and node not in self._setups:
            self._setups[node] = (data, self._clock.monotonic() if self._clock else None)
        writer = self._writer
        if writer is None:
            return
        direction = Direction.NODE_TO_RIC if inbound else Direction.RIC_TO_NODE
        if self.privacy is not None:
            data = _pseudonymized(self.privacy, inbound, data)
        try:
            writer.add(self._offset_us(), node, direction, data)
        except OSError as exc:
            self._fail(exc)
            return
        self.frames += 1

    def node_disconnected(self, node: NodeInfo, reason: str) -> None:
        """Write the end of a node's association."""
        node_id = str(node.id)
        self._setups.pop(node_id, None)
        writer = self._writer
        if writer is None:
            return
        try:
            writer.add(self._offset_us(), node_id, Direction.DISCONNECTED, reason=reason)
        except OSError as exc:
            self._fail(exc)
            return
        self.frames += 1

    def _offset_us(self) -> int:
        assert self._clock is not None
        return max(0, round((self._clock.monotonic() - self._mono0) * 1e6))

    def _fail(self, exc: OSError) -> None:
        self.error = f"writing {self.path} failed: {exc}"
        log.error("trace recording stopped: %s", self.error)
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(OSError):  # the disk failed already; this is cleanup
                writer.close()

    # -- Component -------------------------------------------------------------------------------

    async def start(self, runtime: RuntimeView) -> None:
        """Open the file: the header lists the nodes connected now, with their setups."""
        if self._writer is not None:
            raise RuntimeError(f"{self!r} is already recording")
        clock = runtime.clock
        self._clock = clock
        self._mono0 = clock.monotonic()
        nodes = []
        for node_id in sorted(runtime.sessions):
            setup = self._setups.get(node_id)
            if setup is None:
                continue
            msg = e2_pb2.NodeMessage.FromString(setup[0])
            since = setup[1]
            offset = 0 if since is None else round((since - self._mono0) * 1e6)
            nodes.append(NodeSetup(node_id, msg.setup_request, min(offset, 0)))
        header = TraceHeader(
            start_unix_us=round(clock.time() * 1e6),
            source=self.source,
            ric_id=runtime.config.ric_id,
            nodes=tuple(nodes),
            metadata=self.metadata,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = TraceWriter(self.path, header, compress=self.compress)
        self._schedule_flush()
        log.info("recording E2 traffic to %s", self.path)

    def _schedule_flush(self) -> None:
        assert self._clock is not None
        self._timer = self._clock.call_later(self.flush_interval_s, self._flush)

    def _flush(self) -> None:
        writer = self._writer
        if writer is None:
            return
        try:
            writer.flush()
        except OSError as exc:
            self._fail(exc)
            return
        self._schedule_flush()

    async def stop(self) -> None:
        """Flush and close the file (nothing happens if it is not open)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            writer.close()
        except OSError as exc:
            self._fail(exc)
            return
        log.info("trace %s: %d frames recorded", self.path, self.frames)

    def checks(self) -> list[Check]:
        """Readiness: recording, unless writing failed."""
        if self.error is not None:
            return [Check("trace", False, self.error)]
        return [Check("trace", True, f"{self.path}: {self.frames} frames")]


def _pseudonymized(privacy: Pseudonymizer, inbound: bool, data: bytes) -> bytes:
    """The frame with its UE ids replaced by numeric pseudonyms (bytes that do not parse are
    kept as they are: the runtime answered them as errors and they name no UE it knows)."""
    try:
        if inbound:
            msg = e2_pb2.NodeMessage.FromString(data)
            if msg.WhichOneof("message") != "indications":
                return data
            for ind in msg.indications.indications:
                matrix = ind.kpm.matrix
                if matrix.entity_kind == kpm_pb2.ENTITY_KIND_UE:
                    ids = [
                        str(privacy.ue_number(u)) if u.isdigit() else u for u in matrix.entity_ids
                    ]
                    del matrix.entity_ids[:]
                    matrix.entity_ids.extend(ids)
            return msg.SerializeToString()
        out = e2_pb2.RicMessage.FromString(data)
        kind = out.WhichOneof("message")
        if kind == "control_request" and out.control_request.header.WhichOneof("target") == "ue":
            ue = out.control_request.header.ue
            ue.ue_id = privacy.ue_number(ue.ue_id)
        elif kind == "subscription_request":
            for action in out.subscription_request.actions:
                scope = action.kpm.scope
                numbers = [privacy.ue_number(u) for u in scope.ue_ids]
                del scope.ue_ids[:]
                scope.ue_ids.extend(numbers)
        else:
            return data
        return out.SerializeToString()
    except DecodeError:
        return data


def recorder_from_config(config: RuntimeConfig) -> TraceRecorder | None:
    """The recorder that ``[trace] record`` asks for, or None when it is empty."""
    settings = config.trace
    if not settings.record:
        return None
    privacy = (
        Pseudonymizer.from_config(True, config.privacy.key_file)
        if settings.pseudonymize or config.privacy.pseudonymize_ue_ids
        else None
    )
    return TraceRecorder(
        settings.record, flush_interval_s=settings.flush_interval_s, privacy=privacy
    )
