"""Domain model: cause codes mirror the wire contract; causes read well."""

from __future__ import annotations

from ric._proto.e2.v1 import common_pb2
from ric.model import Cause, CauseCode


def test_cause_codes_mirror_the_proto_enum() -> None:
    """CauseCode has exactly the codes of the proto's CauseCode, with the same numbers."""
    wire = {name.removeprefix("CAUSE_"): num for name, num in common_pb2.CauseCode.items()}
    assert {c.name: c.value for c in CauseCode} == wire


def test_cause_str_names_code_and_detail() -> None:
    """A cause prints as its code in lower case plus the detail."""
    assert (
        str(Cause(CauseCode.RIC_REQUEST_ID_UNKNOWN, "req 1:2")) == "ric_request_id_unknown: req 1:2"
    )
    assert str(Cause(CauseCode.MISC_UNSPECIFIED)) == "misc_unspecified"
