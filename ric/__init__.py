"""ric: an asyncio near-real-time RIC and the SDK for its xApps.

Three doors, for three audiences:

- ``ric`` (this module): what an xApp author needs: ``XApp``, ``Report``, ``KpmReport``, the
  control actions and their outcomes, the A1 policy types and events, the SDL namespace, the
  metric types ``self.metrics`` hands out (``Counter``, ``Gauge``, ``Histogram``);
- ``ric.e2``: the E2 transport (termination, sessions, conversion), for transport work;
- ``ric.sim`` and ``ric.testing``: the simulator and the fakes for tests.
"""

from ric.a1 import PolicyEvent, PolicyStatus, PolicyType
from ric.actions import (
    AdministrativeState,
    CellAdministration,
    CellIndividualOffset,
    CellState,
    Conflict,
    ControlAction,
    ControlOutcome,
    EnergySavingControl,
    GenericControl,
    Handover,
    OutcomeKind,
    SlicePrbQuota,
)
from ric.errors import (
    ConfigError,
    NotConnectedError,
    PluginError,
    ProtocolError,
    RicError,
    StateError,
)
from ric.ids import CellId, NodeId, SliceId
from ric.model import Cause, CauseCode, CellInfo, NodeInfo
from ric.report import EntityKind, KpmReport, Row
from ric.sdl import Change, Namespace, SdlError
from ric.types import Counter, Gauge, Histogram
from ric.xapp import Report, ReportState, SubscriptionStatus, XApp, xapp

__all__ = [
    "AdministrativeState",
    "Cause",
    "CauseCode",
    "CellAdministration",
    "CellId",
    "CellIndividualOffset",
    "CellInfo",
    "CellState",
    "Change",
    "ConfigError",
    "Conflict",
    "ControlAction",
    "ControlOutcome",
    "Counter",
    "EnergySavingControl",
    "EntityKind",
    "Gauge",
    "GenericControl",
    "Handover",
    "Histogram",
    "KpmReport",
    "Namespace",
    "NodeId",
    "NodeInfo",
    "NotConnectedError",
    "OutcomeKind",
    "PluginError",
    "PolicyEvent",
    "PolicyStatus",
    "PolicyType",
    "ProtocolError",
    "Report",
    "ReportState",
    "RicError",
    "Row",
    "SdlError",
    "SliceId",
    "SlicePrbQuota",
    "StateError",
    "SubscriptionStatus",
    "XApp",
    "xapp",
]

# The one place the version is written: pyproject.toml reads it (dynamic), ric_build and the
# MQTT status report it.
__version__ = "0.1.0"
