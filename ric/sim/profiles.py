"""Vendor profiles: what each kind of simulated E2 node says it is and what it offers.

A profile names the vendor and software version a node announces at E2 setup, the KPM report
styles it supports with the TS 28.552 measurements of each, and the RC control actions it
accepts, and the E2SM-CCC cell configuration it lets the RIC write. The shipped profiles
differ on purpose, so the RIC meets a mixed network:

========  ===============  =====================  ============================  ==========
profile   KPM function id  KPM styles             RC (style/action)             RC fn id
========  ===============  =====================  ============================  ==========
acme      2                1-5 (1 with UL PRBs)   3/1 handover, 2/6 slice quota 3
globex    1                1                      2/6 slice quota               4
initech   2                1 (no delay metric)    100/1 cell state              3
umbrella  5                1-5 (1 with UL PRBs)   3/1 handover, 2/6 slice       7
                                                  quota, 100/1 cell state
========  ===============  =====================  ============================  ==========

E2SM-CCC (control style 2, cell configuration; TS 28.541 names): acme (function 4) writes
O-NRCellRelation ``cellIndividualOffset``; initech (4) and umbrella (8) write that,
O-NRCellDU ``administrativeState`` and O-CESManagementFunction ``energySavingControl``;
globex offers no CCC function. RC style 100 (cell state) is the vendor control the nodes
kept from before CCC: it works, as energy saving, and is deprecated.

The UE-level styles of acme and umbrella also report each UE's three strongest neighbour cells
(``L1M.RSRP.Nbr1..3``, ``L1M.Nbr1..3.Nci``, see :mod:`ric.sim.metrics`).

RAN function ids are the node's own numbering: the RIC must find functions by OID.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from ric._proto.e2.v1 import ccc_pb2, e2_pb2, kpm_pb2, rc_pb2
from ric.actions import CellState, Handover, SlicePrbQuota
from ric.model import CCC_OID, KPM_OID, RC_OID
from ric.sim.metrics import UE_NEIGHBOUR_METRICS

__all__ = [
    "KPM_STYLE_NAMES",
    "VENDOR_PROFILES",
    "RcActionSpec",
    "VendorProfile",
]

KPM_STYLE_NAMES: Final[Mapping[int, str]] = {
    1: "E2 Node Measurement",
    2: "E2 Node Measurement for a single UE",
    3: "Condition-based, UE-level E2 Node Measurement",
    4: "Common Condition-based, UE-level Measurement",
    5: "E2 Node Measurement for multiple UEs",
}
"""E2SM-KPM report style names (E2SM-KPM 7.4.1)."""

RC_STYLE_NAMES: Final[Mapping[int, str]] = {
    2: "Radio Resource Allocation Control",
    3: "Connected Mode Mobility Control",
    100: "Energy Saving Control",
}

_CELL_FULL: Final = (
    "RRU.PrbUsedDl",
    "RRU.PrbAvailDl",
    "RRU.PrbTotDl",
    "RRU.PrbUsedUl",
    "RRU.PrbAvailUl",
    "RRU.PrbTotUl",
    "DRB.UEThpDl",
    "DRB.UEThpUl",
    "RRC.ConnMean",
    "DRB.RlcSduDelayDl",
)
_CELL_BASIC: Final = (
    "RRU.PrbUsedDl",
    "RRU.PrbAvailDl",
    "RRU.PrbTotDl",
    "DRB.UEThpDl",
    "DRB.UEThpUl",
    "RRC.ConnMean",
    "DRB.RlcSduDelayDl",
)
_CELL_NO_DELAY: Final = tuple(m for m in _CELL_BASIC if m != "DRB.RlcSduDelayDl")
_UE_FULL: Final = (
    "DRB.UEThpDl",
    "DRB.UEThpUl",
    "RRU.PrbUsedDl",
    "RRU.PrbUsedUl",
    "DRB.RlcSduDelayDl",
    "L1M.RSRP",
    "L1M.SINR",
    *UE_NEIGHBOUR_METRICS,
)

_INT = rc_pb2.VALUE_TYPE_INT
_DOUBLE = rc_pb2.VALUE_TYPE_DOUBLE
_STRING = rc_pb2.VALUE_TYPE_STRING
_BOOL = rc_pb2.VALUE_TYPE_BOOL


@dataclass(frozen=True, slots=True)
class RcActionSpec:
    """An RC control action a profile accepts, with its parameters (name, value type).

    The parameter names are also the keys a GenericControl for this action must use.
    """

    style: int
    action_id: int
    name: str
    parameters: tuple[tuple[str, int], ...] = ()


HANDOVER: Final = RcActionSpec(
    Handover.style, Handover.action_id, "Handover Control", (("target_cell", _STRING),)
)
SLICE_PRB_QUOTA: Final = RcActionSpec(
    SlicePrbQuota.style,
    SlicePrbQuota.action_id,
    "Slice-level PRB quota",
    (
        ("min_prb_ratio_pct", _INT),
        ("max_prb_ratio_pct", _INT),
        ("dedicated_prb_ratio_pct", _INT),
    ),
)
CELL_STATE: Final = RcActionSpec(
    CellState.style,
    CellState.action_id,
    "Cell on/off and transmit power",
    (("active", _BOOL), ("tx_power_dbm", _DOUBLE)),
)


CCC_RELATION: Final = ("O-NRCellRelation", ("cellIndividualOffset",))
CCC_CELL_DU: Final = ("O-NRCellDU", ("administrativeState",))
CCC_ENERGY_SAVING: Final = ("O-CESManagementFunction", ("energySavingControl",))


@dataclass(frozen=True, slots=True)
class VendorProfile:
    """What a simulated node of one vendor announces and accepts."""

    name: str
    """Profile name used in scenario files, e.g. "acme"."""
    vendor: str
    software_version: str
    kpm_styles: Mapping[int, tuple[str, ...]]
    """KPM report style -> the TS 28.552 measurement names it can report."""
    rc_actions: tuple[RcActionSpec, ...]
    kpm_function_id: int = 2
    rc_function_id: int = 3
    min_reporting_period_ms: int = 100
    """Shortest KPM reporting period the node accepts, in ms."""
    kpm_revision: int = 3
    rc_revision: int = 1
    ccc_structures: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """E2SM-CCC cell-level configuration structures and their writable attributes; none:
    the node offers no CCC function."""
    ccc_function_id: int = 4
    ccc_revision: int = 1
    _actions: dict[tuple[int, int], RcActionSpec] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        self._actions.update({(a.style, a.action_id): a for a in self.rc_actions})

    def metrics(self, style: int) -> tuple[str, ...]:
        """The measurements report style ``style`` supports (empty if the style is not)."""
        return self.kpm_styles.get(style, ())

    def rc_action(self, style: int, action_id: int) -> RcActionSpec | None:
        """The advertised RC action (style, action id), or None."""
        return self._actions.get((style, action_id))

    def ccc_writable(self, structure: str, attribute: str) -> bool:
        """Whether the node's CCC function lets the RIC write ``attribute`` of ``structure``."""
        return any(name == structure and attribute in attrs for name, attrs in self.ccc_structures)

    def ran_functions(
        self, *, min_reporting_period_ms: int | None = None
    ) -> list[e2_pb2.RanFunction]:
        """The RanFunction protos for E2 setup; the KPM minimum period may be raised."""
        period = max(self.min_reporting_period_ms, min_reporting_period_ms or 0)
        kpm = e2_pb2.RanFunction(
            ran_function_id=self.kpm_function_id,
            oid=KPM_OID,
            short_name="ORAN-E2SM-KPM",
            revision=self.kpm_revision,
            description=f"{self.vendor} KPM monitor",
            kpm=kpm_pb2.KpmFunctionDefinition(
                min_reporting_period_ms=period,
                report_styles=[
                    kpm_pb2.KpmReportStyle(style=s, name=KPM_STYLE_NAMES[s], metric_names=list(m))
                    for s, m in sorted(self.kpm_styles.items())
                ],
            ),
        )
        styles: dict[int, rc_pb2.RcControlStyle] = {}
        for spec in self.rc_actions:
            style = styles.setdefault(
                spec.style,
                rc_pb2.RcControlStyle(style=spec.style, name=RC_STYLE_NAMES[spec.style]),
            )
            style.actions.append(
                rc_pb2.RcControlAction(
                    action_id=spec.action_id,
                    name=spec.name,
                    parameters=[
                        rc_pb2.RcParameter(
                            parameter_id=i, name=name, type=rc_pb2.ValueType.ValueType(vtype)
                        )
                        for i, (name, vtype) in enumerate(spec.parameters, start=1)
                    ],
                )
            )
        rc = e2_pb2.RanFunction(
            ran_function_id=self.rc_function_id,
            oid=RC_OID,
            short_name="ORAN-E2SM-RC",
            revision=self.rc_revision,
            description=f"{self.vendor} RAN control",
            rc=rc_pb2.RcFunctionDefinition(control_styles=[styles[k] for k in sorted(styles)]),
        )
        if not self.ccc_structures:
            return [kpm, rc]
        ccc = e2_pb2.RanFunction(
            ran_function_id=self.ccc_function_id,
            oid=CCC_OID,
            short_name="ORAN-E2SM-CCC",
            revision=self.ccc_revision,
            description=f"{self.vendor} cell configuration",
            ccc=ccc_pb2.CccFunctionDefinition(
                control_styles=[2],
                cell_structures=[
                    ccc_pb2.CccConfigurationStructure(name=name, attributes=list(attrs))
                    for name, attrs in self.ccc_structures
                ],
            ),
        )
        return [kpm, rc, ccc]


VENDOR_PROFILES: Final[Mapping[str, VendorProfile]] = {
    "acme": VendorProfile(
        name="acme",
        vendor="Acme Radio Systems",
        software_version="acme-gnb 5.2.1",
        kpm_styles={1: _CELL_FULL, 2: _UE_FULL, 3: _UE_FULL, 4: _UE_FULL, 5: _UE_FULL},
        rc_actions=(HANDOVER, SLICE_PRB_QUOTA),
        min_reporting_period_ms=10,
        ccc_structures=(CCC_RELATION,),
    ),
    "globex": VendorProfile(
        name="globex",
        vendor="Globex Networks",
        software_version="GX-RAN 21.4.0",
        kpm_styles={1: _CELL_BASIC},
        rc_actions=(SLICE_PRB_QUOTA,),
        kpm_function_id=1,
        rc_function_id=4,
        min_reporting_period_ms=100,
    ),
    "initech": VendorProfile(
        name="initech",
        vendor="Initech Wireless",
        software_version="initech-cu 0.9.7-rc2",
        kpm_styles={1: _CELL_NO_DELAY},
        rc_actions=(CELL_STATE,),
        min_reporting_period_ms=500,
        ccc_structures=(CCC_RELATION, CCC_CELL_DU, CCC_ENERGY_SAVING),
    ),
    # A node that offers mobility and energy saving on the same cells, so that a load
    # balancer and an energy saver can meet (and conflict) on them.
    "umbrella": VendorProfile(
        name="umbrella",
        vendor="Umbrella Radio Networks",
        software_version="URN-gNB 3.0.2",
        kpm_styles={1: _CELL_FULL, 2: _UE_FULL, 3: _UE_FULL, 4: _UE_FULL, 5: _UE_FULL},
        rc_actions=(HANDOVER, SLICE_PRB_QUOTA, CELL_STATE),
        kpm_function_id=5,
        rc_function_id=7,
        min_reporting_period_ms=10,
        ccc_structures=(CCC_RELATION, CCC_CELL_DU, CCC_ENERGY_SAVING),
        ccc_function_id=8,
    ),
}
"""The shipped vendor profiles, by name."""
