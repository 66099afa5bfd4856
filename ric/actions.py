"""Typed control actions an xApp can send, and the outcome every control ends in.

Each action maps to one E2SM-RC control style and action id:

=================  =====  ======  =============================================
action             style  action  meaning
=================  =====  ======  =============================================
``Handover``       3      1       connected-mode mobility: move a UE to a cell
``SlicePrbQuota``  2      6       slice-level PRB quota in a cell
``CellState``      100    1       energy saving: cell on/off and transmit power
``GenericControl`` any    any     whatever else a node advertises
=================  =====  ======  =============================================

Style 100 is outside the range E2SM-RC standardises (1-10) and stands for the vendor-defined
energy-saving control that real nodes expose today; it is deprecated in favour of the
E2SM-CCC controls, which go to the node's CCC function (cell configuration, control style 2,
with TS 28.541 names; see ``ccc.proto``):

========================  ==========================================================
action                    structure and attribute
========================  ==========================================================
``CellIndividualOffset``  O-NRCellRelation ``cellIndividualOffset`` (Q-OffsetRange dB)
``CellAdministration``    O-NRCellDU ``administrativeState`` and/or
                          O-CESManagementFunction ``energySavingControl``
========================  ==========================================================
"""

from __future__ import annotations

import abc
import enum
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar, overload

from ric.ids import CellId, NodeId, SliceId, parse_ue_id
from ric.model import Cause

__all__ = [
    "Q_OFFSET_RANGE_DB",
    "AdministrativeState",
    "CccControlAction",
    "CellAdministration",
    "CellIndividualOffset",
    "CellState",
    "Conflict",
    "ControlAction",
    "ControlOutcome",
    "EnergySavingControl",
    "GenericControl",
    "Handover",
    "OutcomeKind",
    "SlicePrbQuota",
]

ParamValue = int | float | str | bool


class ControlAction(abc.ABC):
    """Base of the typed control actions; ``style`` and ``action_id`` name the RC action."""

    style: ClassVar[int]
    action_id: ClassVar[int]
    kind: ClassVar[str]

    @property
    @abc.abstractmethod
    def cell(self) -> str:
        """The cell whose node receives this control (text form)."""

    @property
    def target(self) -> str:
        """What the action changes, in text form, for logs and the conflict arbiter."""
        return self.cell

    def parameters(self) -> dict[str, ParamValue]:
        """The action's parameters, for logs and audit records."""
        return {}


def _check_cell(value: str, what: str) -> None:
    try:
        CellId.parse(value)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None


def _check_pct(name: str, value: int) -> None:
    if not 0 <= value <= 100:
        raise ValueError(f"SlicePrbQuota {name} must be a percentage 0..100, got {value}")


@dataclass(frozen=True, slots=True, init=False)
class Handover(ControlAction):
    """Hand UE ``ue`` over from its serving cell ``cell_id`` to ``target_cell`` (RC style 3,
    action 1): ``Handover(ue="7", cell_id="001-01-4097", target_cell="001-01-4098")``.

    ``cell_id`` is the cell the control acts on, as in every other action. ``serving_cell``
    is its old name, kept so that existing xApps run: as a keyword and as an attribute it
    still works, with a DeprecationWarning.
    """

    style: ClassVar[int] = 3
    action_id: ClassVar[int] = 1
    kind: ClassVar[str] = "handover"

    ue: str
    cell_id: str
    target_cell: str

    @overload
    def __init__(self, ue: str, cell_id: str, target_cell: str) -> None: ...

    @overload
    def __init__(self, ue: str, *, target_cell: str, serving_cell: str) -> None: ...

    def __init__(
        self,
        ue: str,
        cell_id: str | None = None,
        target_cell: str | None = None,
        *,
        serving_cell: str | None = None,
    ) -> None:
        if serving_cell is not None:
            if cell_id is not None:
                raise TypeError(
                    "Handover takes cell_id or its deprecated alias serving_cell, not both"
                )
            warnings.warn(_SERVING_CELL_DEPRECATED, DeprecationWarning, stacklevel=2)
            cell_id = serving_cell
        if cell_id is None or target_cell is None:
            missing = "cell_id" if cell_id is None else "target_cell"
            raise TypeError(
                f"Handover needs {missing}: Handover(ue='7', cell_id=..., target_cell=...)"
            )
        object.__setattr__(self, "ue", str(ue))
        object.__setattr__(self, "cell_id", cell_id)
        object.__setattr__(self, "target_cell", target_cell)
        parse_ue_id(self.ue)
        _check_cell(self.cell_id, "Handover cell_id")
        _check_cell(self.target_cell, "Handover target_cell")
        if self.cell_id == self.target_cell:
            raise ValueError(f"Handover of UE {self.ue}: target cell is the serving cell")

    @property
    def serving_cell(self) -> str:
        """Deprecated name of :attr:`cell_id` (warns; read ``cell_id``)."""
        warnings.warn(_SERVING_CELL_DEPRECATED, DeprecationWarning, stacklevel=2)
        return self.cell_id

    @property
    def cell(self) -> str:
        return self.cell_id

    @property
    def target(self) -> str:
        return f"ue:{self.ue}"

    def parameters(self) -> dict[str, ParamValue]:
        # Both cells: a record of a handover must say where the UE was moved from, too. The
        # key stays "serving_cell" (what the UE's serving cell was): audit records, MQTT
        # messages and /api/v1/controls carry it, and readers of those depend on it.
        return {"serving_cell": self.cell_id, "target_cell": self.target_cell}


_SERVING_CELL_DEPRECATED = (
    "Handover's serving_cell is deprecated: it is cell_id now, the name every control uses "
    "for the cell it acts on (Handover(ue, cell_id=..., target_cell=...))"
)


@dataclass(frozen=True, slots=True)
class SlicePrbQuota(ControlAction):
    """Set a slice's PRB quota in a cell, in percent of its PRBs (RC style 2, action 6).

    ``dedicated_pct <= min_pct <= max_pct``: dedicated PRBs are reserved even when idle, the
    minimum is guaranteed when the slice has traffic, the maximum is a cap.
    """

    style: ClassVar[int] = 2
    action_id: ClassVar[int] = 6
    kind: ClassVar[str] = "slice_prb_quota"

    cell_id: str
    slice: str
    min_pct: int = 0
    max_pct: int = 100
    dedicated_pct: int = 0

    def __post_init__(self) -> None:
        _check_cell(self.cell_id, "SlicePrbQuota cell_id")
        SliceId.parse(self.slice)
        for name in ("min_pct", "max_pct", "dedicated_pct"):
            _check_pct(name, getattr(self, name))
        if not self.dedicated_pct <= self.min_pct <= self.max_pct:
            raise ValueError(
                "SlicePrbQuota needs dedicated_pct <= min_pct <= max_pct, got "
                f"{self.dedicated_pct} / {self.min_pct} / {self.max_pct}"
            )

    @property
    def cell(self) -> str:
        return self.cell_id

    @property
    def target(self) -> str:
        return f"slice:{self.cell_id}/{self.slice}"

    def parameters(self) -> dict[str, ParamValue]:
        return {
            "min_pct": self.min_pct,
            "max_pct": self.max_pct,
            "dedicated_pct": self.dedicated_pct,
        }


@dataclass(frozen=True, slots=True)
class CellState(ControlAction):
    """Switch a cell on or off and/or set its transmit power (energy saving, style 100/1).

    At least one of ``active`` and ``tx_power_dbm`` is given. A cell switched off hands its
    UEs to its neighbours.
    """

    style: ClassVar[int] = 100
    action_id: ClassVar[int] = 1
    kind: ClassVar[str] = "cell_state"

    cell_id: str
    active: bool | None = None
    tx_power_dbm: float | None = None

    def __post_init__(self) -> None:
        _check_cell(self.cell_id, "CellState cell_id")
        if self.active is None and self.tx_power_dbm is None:
            raise ValueError("CellState needs active=True/False, tx_power_dbm=..., or both")

    @property
    def cell(self) -> str:
        return self.cell_id

    @property
    def target(self) -> str:
        return f"cell:{self.cell_id}"

    def parameters(self) -> dict[str, ParamValue]:
        out: dict[str, ParamValue] = {}
        if self.active is not None:
            out["active"] = self.active
        if self.tx_power_dbm is not None:
            out["tx_power_dbm"] = self.tx_power_dbm
        return out


@dataclass(frozen=True, slots=True)
class GenericControl(ControlAction):
    """Any RC control a node advertises: style, action id, target and named parameters.

    The target is a cell (``cell_id``), optionally narrowed to a UE (``ue``) or a slice
    (``slice``) of that cell; the cell also picks the node that receives the control.
    """

    kind: ClassVar[str] = "generic"

    control_style: int
    control_action_id: int
    cell_id: str
    params: Mapping[str, ParamValue] = field(default_factory=dict)
    ue: str | None = None
    slice: str | None = None

    def __post_init__(self) -> None:
        _check_cell(self.cell_id, "GenericControl cell_id")
        if self.ue is not None and self.slice is not None:
            raise ValueError("GenericControl targets a UE or a slice, not both")
        if self.ue is not None:
            parse_ue_id(self.ue)
        if self.slice is not None:
            SliceId.parse(self.slice)
        for key, value in self.params.items():
            if not isinstance(value, int | float | str | bool):
                raise ValueError(
                    f"GenericControl parameter {key!r} must be int, float, str or bool"
                )

    @property
    def cell(self) -> str:
        return self.cell_id

    @property
    def target(self) -> str:
        if self.ue is not None:
            return f"ue:{self.ue}"
        if self.slice is not None:
            return f"slice:{self.cell_id}/{self.slice}"
        return f"cell:{self.cell_id}"

    def parameters(self) -> dict[str, ParamValue]:
        return dict(self.params)

    @property
    def rc_key(self) -> tuple[int, int]:
        """The (style, action id) pair this control asks for."""
        return (self.control_style, self.control_action_id)


def rc_key(action: ControlAction) -> tuple[int, int]:
    """The (style, action id) pair of any action."""
    if isinstance(action, GenericControl):
        return action.rc_key
    return (action.style, action.action_id)


class OutcomeKind(enum.Enum):
    """How a control ended; every control ends in exactly one of these."""

    ACKNOWLEDGED = "acknowledged"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    NOT_CONNECTED = "not_connected"
    NOT_SUPPORTED = "not_supported"
    RATE_LIMITED = "rate_limited"
    CONFLICT = "conflict"
    NOT_PERMITTED = "not_permitted"


@dataclass(frozen=True, slots=True)
class Conflict:
    """Two xApps changing the same thing within the guard window, and how it was decided.

    ``parameter`` is what both touched (for example ``serving_cell`` of ``ue:17``, or
    ``active`` of ``cell:001-01-4097`` for the indirect case of a handover into a cell being
    switched off). ``winner`` is the xApp whose control stands (None under ``reject-both``).
    """

    policy: str
    target: str
    parameter: str
    first_xapp: str
    first: ControlAction
    second_xapp: str
    second: ControlAction
    winner: str | None
    at: float

    def __str__(self) -> str:
        won = f"{self.winner} wins" if self.winner else "both rejected"
        return (
            f"{self.policy}: {self.first_xapp} {self.first.kind} vs {self.second_xapp} "
            f"{self.second.kind} on {self.target} ({self.parameter}): {won}"
        )


@dataclass(frozen=True, slots=True)
class ControlOutcome:
    """The end of one control: its kind, the cause when it did not succeed, and timings."""

    kind: OutcomeKind
    action: ControlAction
    node: NodeId | None = None
    cause: Cause | None = None
    latency_s: float = 0.0
    detail: str = ""
    xapp: str = ""
    request_id: tuple[int, int] | None = None
    conflict: Conflict | None = None
    control_id: str | None = None
    """The RIC's id of the control on the E2 wire (ControlRequest.control_id), unique within
    the RIC; None for a control refused before it was sent to a node."""

    @property
    def ok(self) -> bool:
        """True when the node acknowledged the control."""
        return self.kind is OutcomeKind.ACKNOWLEDGED

    def __str__(self) -> str:
        where = f" on {self.node}" if self.node else ""
        why = f" ({self.cause})" if self.cause else (f" ({self.detail})" if self.detail else "")
        return f"{self.action.kind} {self.action.target}{where}: {self.kind.value}{why}"


# ---------------------------------------------------------------------------------------------
# E2SM-CCC cell configuration controls (ccc.proto): cell-level configuration (CCC control style
# 2) with the TS 28.541 names. They go to the node's CCC RAN function, not its RC function.

Q_OFFSET_RANGE_DB: tuple[int, ...] = (-24, -22, -20, -18, -16, -14, -12, -10, -8, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24)  # fmt: skip
"""The Q-OffsetRange values of TS 38.331, dB: what a cell individual offset may be."""


class CccControlAction(ControlAction):
    """Base of the E2SM-CCC controls: each writes attributes of configuration structures of
    one cell (``writes``), which the node's CCC function must advertise as writable."""

    style: ClassVar[int] = 2
    """E2SM-CCC control style 2: cell configuration and control."""
    action_id: ClassVar[int] = 0
    """E2SM-CCC has no action ids: the structures and attributes say what changes."""

    @abc.abstractmethod
    def writes(self) -> tuple[tuple[str, str], ...]:
        """The (configuration structure, attribute) pairs this control sets."""


@dataclass(frozen=True, slots=True)
class CellIndividualOffset(CccControlAction):
    """Set the cell individual offset (CIO) of the relation from ``cell_id`` to ``neighbour``:
    ``offset_db`` is added to the neighbour's RSRP when a UE served by ``cell_id`` evaluates
    its handover events (A3, A5), so a positive offset hands UEs to the neighbour earlier and
    a negative one later. E2SM-CCC structure O-NRCellRelation, attribute
    ``cellIndividualOffset`` (TS 28.541); a TS 38.331 Q-OffsetRange value in dB.
    """

    kind: ClassVar[str] = "cell_individual_offset"

    cell_id: str
    neighbour: str
    offset_db: int

    def __post_init__(self) -> None:
        _check_cell(self.cell_id, "CellIndividualOffset cell_id")
        _check_cell(self.neighbour, "CellIndividualOffset neighbour")
        if self.cell_id == self.neighbour:
            raise ValueError(f"CellIndividualOffset: {self.cell_id} is not its own neighbour")
        offset = self.offset_db
        if isinstance(offset, bool) or not isinstance(offset, int | float):
            raise ValueError(
                f"CellIndividualOffset offset_db must be a number of dB, got {offset!r}"
            )
        if offset not in Q_OFFSET_RANGE_DB:
            raise ValueError(
                f"CellIndividualOffset offset_db {offset} dB is not a Q-OffsetRange value "
                f"(TS 38.331): one of {', '.join(map(str, Q_OFFSET_RANGE_DB))}"
            )
        object.__setattr__(self, "offset_db", int(offset))

    @property
    def cell(self) -> str:
        return self.cell_id

    @property
    def target(self) -> str:
        return f"relation:{self.cell_id}>{self.neighbour}"

    def parameters(self) -> dict[str, ParamValue]:
        return {"neighbour": self.neighbour, "cellIndividualOffset": self.offset_db}

    def writes(self) -> tuple[tuple[str, str], ...]:
        return (("O-NRCellRelation", "cellIndividualOffset"),)


class AdministrativeState(enum.Enum):
    """A cell's administrative state (TS 28.541 NRCellDU ``administrativeState``, X.731)."""

    LOCKED = "LOCKED"
    """Out of service at once: the cell's UEs are dropped and re-establish elsewhere."""
    UNLOCKED = "UNLOCKED"
    """In service (after the node's wake-up time, for a cell that was off)."""
    SHUTTING_DOWN = "SHUTTING_DOWN"
    """No new UEs; the node hands the cell's UEs out, then locks it."""


class EnergySavingControl(enum.Enum):
    """A cell's energy saving command (TS 28.541 CESManagementFunction
    ``energySavingControl``, TS 28.310)."""

    TO_BE_ENERGY_SAVING = "toBeEnergySaving"
    """Empty the cell as for SHUTTING_DOWN, then let it sleep."""
    TO_BE_NOT_ENERGY_SAVING = "toBeNotEnergySaving"
    """Wake the cell up; it serves again after the node's wake-up time."""


_E = TypeVar("_E", bound=enum.Enum)


def _enum_value(kind: type[_E], value: _E | str, what: str) -> _E:
    if isinstance(value, kind):
        return value
    for member in kind:
        if value in (member.value, member.name):
            return member
    allowed = ", ".join(m.value for m in kind)
    raise ValueError(f"CellAdministration {what} must be one of {allowed}, got {value!r}")


@dataclass(frozen=True, slots=True)
class CellAdministration(CccControlAction):
    """Take a cell out of service or put it back, administratively and/or for energy saving.

    ``administrative_state`` is E2SM-CCC O-NRCellDU ``administrativeState``;
    ``energy_saving_control`` is O-CESManagementFunction ``energySavingControl`` (values as
    enums or their TS 28.541 spellings, ``"SHUTTING_DOWN"``, ``"toBeEnergySaving"``). At least
    one is given. A cell serves only while it is UNLOCKED and not energy saving; see
    :class:`AdministrativeState` and :class:`EnergySavingControl` for what each value does.
    """

    kind: ClassVar[str] = "cell_administration"

    cell_id: str
    administrative_state: AdministrativeState | None = None
    energy_saving_control: EnergySavingControl | None = None

    def __post_init__(self) -> None:
        _check_cell(self.cell_id, "CellAdministration cell_id")
        if self.administrative_state is None and self.energy_saving_control is None:
            raise ValueError(
                "CellAdministration needs administrative_state (LOCKED, UNLOCKED, SHUTTING_DOWN)"
                ", energy_saving_control (toBeEnergySaving, toBeNotEnergySaving), or both"
            )
        if self.administrative_state is not None:
            object.__setattr__(
                self,
                "administrative_state",
                _enum_value(AdministrativeState, self.administrative_state, "administrative_state"),
            )
        if self.energy_saving_control is not None:
            object.__setattr__(
                self,
                "energy_saving_control",
                _enum_value(
                    EnergySavingControl, self.energy_saving_control, "energy_saving_control"
                ),
            )

    @property
    def cell(self) -> str:
        return self.cell_id

    @property
    def target(self) -> str:
        return f"cell:{self.cell_id}"

    @property
    def in_service(self) -> bool:
        """Whether this control asks for the cell to serve (False: to stop serving)."""
        return (
            self.administrative_state in (None, AdministrativeState.UNLOCKED)
            and self.energy_saving_control is not EnergySavingControl.TO_BE_ENERGY_SAVING
        )

    def parameters(self) -> dict[str, ParamValue]:
        out: dict[str, ParamValue] = {}
        if self.administrative_state is not None:
            out["administrativeState"] = self.administrative_state.value
        if self.energy_saving_control is not None:
            out["energySavingControl"] = self.energy_saving_control.value
        return out

    def writes(self) -> tuple[tuple[str, str], ...]:
        out: list[tuple[str, str]] = []
        if self.administrative_state is not None:
            out.append(("O-NRCellDU", "administrativeState"))
        if self.energy_saving_control is not None:
            out.append(("O-CESManagementFunction", "energySavingControl"))
        return tuple(out)
