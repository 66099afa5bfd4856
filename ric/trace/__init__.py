"""Record, replay and import E2 traffic: the ``ric`` trace format and its tools.

A trace is everything that crossed a runtime's E2 termination, both ways, with when:

- :mod:`ric.trace.format`: the file format (versioned, streamed, optionally gzip-compressed;
  ``TraceWriter`` / ``TraceReader``; ``TraceError`` for a foreign or damaged file);
- :mod:`ric.trace.recorder`: ``TraceRecorder``, a sensor and component that records a
  runtime (``ric run --record FILE``, or ``[trace] record`` in the configuration);
- :mod:`ric.trace.index`: ``scan``, one pass that summarises a trace (``ric trace info``);
- :mod:`ric.trace.player`: ``TracePlayer``, the recorded nodes played back: they answer the
  subscriptions the xApps make now with the recorded measurements, and controls by a policy;
- :mod:`ric.trace.replay`: ``replay``, the player over real gRPC into a running runtime
  (``ric replay``);
- :mod:`ric.trace.harness`: ``run_trace`` and ``run_scenario``, xApps in-process on virtual
  time (exported by ``ric.testing``);
- :mod:`ric.trace.csvimport`: ``import_csv``, KPI tables into a trace (``ric trace
  import-csv``), with the ready ``COLORAN`` mapping.

The file layout, version 1 (messages in ``proto/ric/trace/v1/trace.proto``)::

    b"RICTRACE"                                     magic, 8 bytes
    u32 length | u32 CRC-32 | TraceHeader           format version, start time (Unix us),
                                                    source, RIC id, nodes already set up
                                                    (id + E2SetupRequest), metadata
    u32 length | u32 CRC-32 | TraceFrame            one per E2 message, in time order:
    ...                                             offset from the start (us), node id,
                                                    direction, the message as on the wire
                                                    (NodeMessage or RicMessage bytes), or
                                                    the end of an association with its reason
"""

from ric.trace.csvimport import (
    COLORAN,
    CsvImportError,
    CsvMapping,
    ImportResult,
    MetricColumn,
    SkippedRow,
    import_csv,
    load_mapping,
)
from ric.trace.format import (
    FORMAT_VERSION,
    Direction,
    Frame,
    NodeSetup,
    TraceError,
    TraceHeader,
    TraceReader,
    TraceWriter,
)
from ric.trace.index import TraceIndex, scan
from ric.trace.player import ControlPolicy, SeenControl, SeenSubscription, TracePlayer
from ric.trace.recorder import TraceRecorder
from ric.trace.replay import ReplayError, ReplayProgress, ReplayResult, replay

__all__ = [
    "COLORAN",
    "FORMAT_VERSION",
    "ControlPolicy",
    "CsvImportError",
    "CsvMapping",
    "Direction",
    "Frame",
    "ImportResult",
    "MetricColumn",
    "NodeSetup",
    "ReplayError",
    "ReplayProgress",
    "ReplayResult",
    "SeenControl",
    "SeenSubscription",
    "SkippedRow",
    "TraceError",
    "TraceHeader",
    "TraceIndex",
    "TracePlayer",
    "TraceReader",
    "TraceRecorder",
    "TraceWriter",
    "import_csv",
    "load_mapping",
    "replay",
    "scan",
]
