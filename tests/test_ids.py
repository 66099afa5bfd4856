"""Identifiers parse their text form and refuse bad values with a message naming them."""

from __future__ import annotations

import pytest

from ric.ids import CellId, NodeId, NodeType, Plmn, SliceId, parse_ue_id


def test_round_trips() -> None:
    """Each id's text form parses back to an equal id."""
    for text in ("gnb-001-01-1", "enb-310-410-4294967295", "gnbdu-001-001-7"):
        assert str(NodeId.parse(text)) == text
    assert str(CellId.parse("001-01-4097")) == "001-01-4097"
    assert SliceId.parse("1-000001") == SliceId(1, "000001")
    assert str(SliceId.parse("2")) == "2-ffffff"
    assert NodeId.parse("gnb-001-01-1").type is NodeType.GNB
    assert parse_ue_id("17") == 17


@pytest.mark.parametrize(
    ("factory", "text", "needle"),
    [
        (NodeId.parse, "gnb-001-01", "not '<type>-<mcc>-<mnc>-<id>'"),
        (NodeId.parse, "xyz-001-01-1", "type must be one of"),
        (NodeId.parse, "gnb-1-01-1", "MCC must be 3 digits"),
        (CellId.parse, "001-01-x", "not '<mcc>-<mnc>-<nci>'"),
        (SliceId.parse, "a-000001", "not '<sst>-<sd>'"),
        (SliceId.parse, "1-XYZ", "6 lower-case hex digits"),
        (parse_ue_id, "-3", "not a decimal RAN UE id"),
    ],
)
def test_bad_text_is_refused_with_its_name(factory, text: str, needle: str) -> None:  # type: ignore[no-untyped-def]
    """A malformed id raises ValueError that quotes the problem."""
    with pytest.raises(ValueError, match=needle):
        factory(text)


def test_ranges_are_checked() -> None:
    """Out-of-range numbers are refused."""
    with pytest.raises(ValueError, match="NR cell identity"):
        CellId(Plmn("001", "01"), 1 << 36)
    with pytest.raises(ValueError, match="node id"):
        NodeId(Plmn("001", "01"), -1)
    with pytest.raises(ValueError, match="SST"):
        SliceId(300)


def test_parsed_cell_ids_are_kept_in_a_bounded_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cell id parsed again is the same object (no work per control), bad text is still
    refused, and the memory is cleared when it reaches its bound."""
    import ric.ids

    monkeypatch.setattr(ric.ids, "_CELLS", {})
    monkeypatch.setattr(ric.ids, "_CELL_MEMORY", 3)
    first = CellId.parse("001-01-4097")
    assert CellId.parse("001-01-4097") is first and first == CellId(Plmn("001", "01"), 4097)
    for nci in (1, 2, 3):
        CellId.parse(f"001-01-{nci}")
    assert len(ric.ids._CELLS) <= 3
    with pytest.raises(ValueError, match="is not '<mcc>-<mnc>-<nci>'"):
        CellId.parse("001-01")
