"""E2SM-CCC cell configuration controls on the wire: encoding round trip, the RAN function
definition, and bad values refused with the cause the node is told."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from ric import AdministrativeState, CellAdministration, CellIndividualOffset, EnergySavingControl
from ric._proto.e2.v1 import ccc_pb2, e2_pb2
from ric.e2.convert import (
    ccc_actions_from_proto,
    cell_id_to_proto,
    control_request,
    ran_function_from_proto,
)
from ric.errors import ProtocolError
from ric.ids import CellId
from ric.model import CCC_OID, CauseCode, CccFunction


@pytest.mark.parametrize(
    "action",
    [
        CellIndividualOffset("001-01-4097", "001-01-4098", -6),
        CellIndividualOffset("001-01-4097", "001-01-8193", 24),
        CellAdministration("001-01-4097", administrative_state=AdministrativeState.SHUTTING_DOWN),
        CellAdministration("001-01-4097", administrative_state=AdministrativeState.LOCKED),
        CellAdministration(
            "001-01-4097", energy_saving_control=EnergySavingControl.TO_BE_ENERGY_SAVING
        ),
        CellAdministration(
            "001-01-4097",
            administrative_state=AdministrativeState.UNLOCKED,
            energy_saving_control=EnergySavingControl.TO_BE_NOT_ENERGY_SAVING,
        ),
    ],
    ids=lambda a: f"{a.kind}:{sorted(a.parameters().items())}",
)
def test_ccc_control_round_trip(
    action: CellIndividualOffset | CellAdministration,
) -> None:
    """A CCC action becomes a ControlRequest with only ``ccc`` set (no RC header or message),
    survives serialisation, and decodes to an equal action."""
    req = control_request(action, (3, 9), 4)
    wire = e2_pb2.ControlRequest.FromString(req.SerializeToString())
    assert wire.ran_function_id == 4 and wire.ack_requested
    assert wire.HasField("ccc") and not wire.HasField("header") and not wire.HasField("message")
    assert wire.ccc.style == 2
    assert ccc_actions_from_proto(wire.ccc) == [action]


def test_ccc_function_definition_lists_writable_attributes() -> None:
    """A node's CCC RanFunction becomes a CccFunction that says which structure attributes
    cell-level control may write."""
    msg = e2_pb2.RanFunction(
        ran_function_id=4,
        oid=CCC_OID,
        short_name="ORAN-E2SM-CCC",
        revision=1,
        ccc=ccc_pb2.CccFunctionDefinition(
            control_styles=[2],
            cell_structures=[
                ccc_pb2.CccConfigurationStructure(
                    name="O-NRCellRelation", attributes=["cellIndividualOffset"]
                )
            ],
        ),
    )
    fn = ran_function_from_proto(msg).definition
    assert isinstance(fn, CccFunction)
    assert fn.writable("O-NRCellRelation", "cellIndividualOffset")
    assert not fn.writable("O-NRCellDU", "administrativeState")


def _ccc(**fields: object) -> ccc_pb2.CccControl:
    return ccc_pb2.CccControl(cell=cell_id_to_proto(CellId.parse("001-01-4097")), **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("msg", "code", "words"),
    [
        (
            _ccc(
                style=2,
                relations=[
                    ccc_pb2.NrCellRelation(
                        adjacent_cell=cell_id_to_proto(CellId.parse("001-01-4098")),
                        cell_individual_offset=ccc_pb2.CellIndividualOffset(rsrp_offset_ssb_db=7),
                    )
                ],
            ),
            CauseCode.RIC_REQUEST_CONTROL_MESSAGE_INVALID,
            "offset_db 7 dB is not a Q-OffsetRange value",
        ),
        (
            _ccc(style=2, nr_cell_du=ccc_pb2.NrCellDu(administrative_state=9)),  # type: ignore[arg-type]
            CauseCode.RIC_REQUEST_CONTROL_MESSAGE_INVALID,
            "administrativeState 9 is not a state",
        ),
        (_ccc(style=2), CauseCode.RIC_REQUEST_CONTROL_MESSAGE_INVALID, "changes nothing"),
        (_ccc(style=1), CauseCode.RIC_REQUEST_ACTION_NOT_SUPPORTED, "only style 2"),
    ],
    ids=["cio-not-in-range", "unknown-state", "empty", "node-style"],
)
def test_bad_ccc_messages_are_refused_with_their_cause(
    msg: ccc_pb2.CccControl, code: CauseCode, words: str
) -> None:
    """A CCC message with a value outside the contract is refused: the cause names it."""
    with pytest.raises(ProtocolError) as err:
        ccc_actions_from_proto(msg)
    assert err.value.cause.code is code
    assert words in err.value.cause.detail


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda: CellIndividualOffset("001-01-1", "001-01-2", 7), "not a Q-OffsetRange value"),
        (
            lambda: CellIndividualOffset("001-01-1", "001-01-2", 2.5),  # type: ignore[arg-type]
            "not a Q-OffsetRange value",
        ),
        (lambda: CellIndividualOffset("001-01-1", "001-01-1", 2), "not its own neighbour"),
        (lambda: CellIndividualOffset("001-01-1", "x", 2), "neighbour"),
        (lambda: CellAdministration("001-01-1"), "needs administrative_state"),
        (
            lambda: CellAdministration("001-01-1", administrative_state="OFF"),  # type: ignore[arg-type]
            "LOCKED, UNLOCKED, SHUTTING_DOWN, got 'OFF'",
        ),
    ],
    ids=["cio-7", "cio-2.5", "self", "bad-neighbour", "empty", "bad-state"],
)
def test_bad_ccc_actions_are_refused_when_built(build: Callable[[], object], words: str) -> None:
    """An xApp building a CCC action with a bad value gets a ValueError saying which."""
    with pytest.raises(ValueError, match=re.escape(words)):
        build()


def test_states_may_be_given_in_their_ts_28541_spelling() -> None:
    """``"SHUTTING_DOWN"`` and ``"toBeEnergySaving"`` become the enum members."""
    action = CellAdministration(
        "001-01-1",
        administrative_state="SHUTTING_DOWN",  # type: ignore[arg-type]
        energy_saving_control="toBeEnergySaving",  # type: ignore[arg-type]
    )
    assert action.administrative_state is AdministrativeState.SHUTTING_DOWN
    assert action.energy_saving_control is EnergySavingControl.TO_BE_ENERGY_SAVING
    assert not action.in_service
    assert action.parameters() == {
        "administrativeState": "SHUTTING_DOWN",
        "energySavingControl": "toBeEnergySaving",
    }
