"""What the runtime knows about E2 nodes: causes, cells, RAN functions, node identity.

These are the domain objects at the edge of the transport: the E2 layer converts protobuf
into them (``ric.e2.convert``), so protobuf types never reach xApp code.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ric.ids import CellId, NodeId

__all__ = [
    "CCC_OID",
    "KPM_OID",
    "RC_OID",
    "Cause",
    "CauseCode",
    "CccFunction",
    "CellInfo",
    "KpmFunction",
    "KpmStyle",
    "NodeInfo",
    "RanFunction",
    "RcAction",
    "RcFunction",
]

KPM_OID = "1.3.6.1.4.1.53148.1.2.2.2"
"""OID of E2SM-KPM (v2 and later)."""
RC_OID = "1.3.6.1.4.1.53148.1.1.2.3"
"""OID of E2SM-RC."""
CCC_OID = "1.3.6.1.4.1.53148.1.1.2.4"
"""OID of E2SM-CCC (cell configuration and control), version 1."""


class CauseCode(enum.IntEnum):
    """E2 cause codes, mirrored from ``CauseCode`` in the wire contract (a test keeps them equal)."""

    UNSPECIFIED = 0
    RIC_REQUEST_RAN_FUNCTION_ID_INVALID = 1
    RIC_REQUEST_ACTION_NOT_SUPPORTED = 2
    RIC_REQUEST_EXCESSIVE_ACTIONS = 3
    RIC_REQUEST_DUPLICATE_ACTION = 4
    RIC_REQUEST_DUPLICATE_EVENT_TRIGGER = 5
    RIC_REQUEST_FUNCTION_RESOURCE_LIMIT = 6
    RIC_REQUEST_ID_UNKNOWN = 7
    RIC_REQUEST_INCONSISTENT_ACTION_SUBSEQUENT_ACTION_SEQUENCE = 8
    RIC_REQUEST_CONTROL_MESSAGE_INVALID = 9
    RIC_REQUEST_CALL_PROCESS_ID_INVALID = 10
    RIC_REQUEST_CONTROL_TIMER_EXPIRED = 11
    RIC_REQUEST_CONTROL_FAILED_TO_EXECUTE = 12
    RIC_REQUEST_SYSTEM_NOT_READY = 13
    RIC_REQUEST_MEASUREMENT_NOT_SUPPORTED = 14
    RIC_REQUEST_TARGET_UNKNOWN = 15
    RIC_REQUEST_UNSPECIFIED = 19
    RIC_SERVICE_RAN_FUNCTION_NOT_SUPPORTED = 20
    RIC_SERVICE_EXCESSIVE_FUNCTIONS = 21
    RIC_SERVICE_RIC_RESOURCE_LIMIT = 22
    E2_NODE_COMPONENT_UNKNOWN = 30
    TRANSPORT_RESOURCE_UNAVAILABLE = 40
    TRANSPORT_UNSPECIFIED = 41
    PROTOCOL_TRANSFER_SYNTAX_ERROR = 50
    PROTOCOL_ABSTRACT_SYNTAX_ERROR_REJECT = 51
    PROTOCOL_ABSTRACT_SYNTAX_ERROR_IGNORE_AND_NOTIFY = 52
    PROTOCOL_MESSAGE_NOT_COMPATIBLE_WITH_RECEIVER_STATE = 53
    PROTOCOL_SEMANTIC_ERROR = 54
    PROTOCOL_ABSTRACT_SYNTAX_ERROR_FALSELY_CONSTRUCTED_MESSAGE = 55
    PROTOCOL_UNSPECIFIED = 56
    MISC_CONTROL_PROCESSING_OVERLOAD = 60
    MISC_HARDWARE_FAILURE = 61
    MISC_OM_INTERVENTION = 62
    MISC_UNSPECIFIED = 63
    MISC_DUPLICATE_NODE_ID = 64
    MISC_NOT_AUTHORIZED = 65


@dataclass(frozen=True, slots=True)
class Cause:
    """Why something was refused or failed: an E2 cause code plus a human-readable detail."""

    code: CauseCode
    detail: str = ""

    def __str__(self) -> str:
        name = self.code.name.lower()
        return f"{name}: {self.detail}" if self.detail else name


@dataclass(frozen=True, slots=True)
class CellInfo:
    """A cell as its node announced it."""

    id: CellId
    pci: int
    band: int
    bandwidth_prbs: int
    subcarrier_spacing_khz: int = 30
    neighbours: tuple[CellId, ...] = ()
    active: bool = True
    tx_power_dbm: float = 43.0


@dataclass(frozen=True, slots=True)
class KpmStyle:
    """A KPM report style and the 3GPP TS 28.552 measurements it can report."""

    style: int
    name: str
    metric_names: frozenset[str]


@dataclass(frozen=True, slots=True)
class KpmFunction:
    """A node's E2SM-KPM function: its report styles and shortest reporting period."""

    styles: dict[int, KpmStyle]
    min_reporting_period_ms: int = 10


@dataclass(frozen=True, slots=True)
class RcAction:
    """One control action an RC function supports, named by style and action id."""

    style: int
    action_id: int
    name: str
    parameters: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RcFunction:
    """A node's E2SM-RC function: the (style, action id) pairs it accepts."""

    actions: dict[tuple[int, int], RcAction]


@dataclass(frozen=True, slots=True)
class CccFunction:
    """A node's E2SM-CCC function: its control styles and, per cell-level configuration
    structure (``"O-NRCellDU"``), the attributes it lets the RIC write."""

    styles: frozenset[int]
    cell_structures: dict[str, frozenset[str]]

    def writable(self, structure: str, attribute: str) -> bool:
        """Whether cell-level control (style 2) may set ``attribute`` of ``structure``."""
        return 2 in self.styles and attribute in self.cell_structures.get(structure, ())


@dataclass(frozen=True, slots=True)
class RanFunction:
    """A RAN function a node offers; ``definition`` is typed for KPM, RC and CCC, else None."""

    id: int
    oid: str
    short_name: str
    revision: int
    definition: KpmFunction | RcFunction | CccFunction | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node's identity and capabilities as announced at E2 setup (and updated since)."""

    id: NodeId
    vendor: str
    software_version: str
    ran_functions: dict[int, RanFunction]
    cells: dict[CellId, CellInfo] = field(default_factory=dict)

    def kpm(self) -> tuple[int, KpmFunction] | None:
        """The node's KPM function as ``(ran function id, definition)``, or None."""
        for fn in self.ran_functions.values():
            if isinstance(fn.definition, KpmFunction):
                return fn.id, fn.definition
        return None

    def rc(self) -> tuple[int, RcFunction] | None:
        """The node's RC function as ``(ran function id, definition)``, or None."""
        for fn in self.ran_functions.values():
            if isinstance(fn.definition, RcFunction):
                return fn.id, fn.definition
        return None

    def ccc(self) -> tuple[int, CccFunction] | None:
        """The node's CCC function as ``(ran function id, definition)``, or None."""
        for fn in self.ran_functions.values():
            if isinstance(fn.definition, CccFunction):
                return fn.id, fn.definition
        return None
