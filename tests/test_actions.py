"""Control actions validate themselves and describe their target and parameters."""

from __future__ import annotations

import pytest

from ric.actions import CellState, GenericControl, Handover, SlicePrbQuota, rc_key


def test_typed_actions_map_to_rc_styles() -> None:
    """Each typed action names its RC (style, action id) and its target."""
    ho = Handover(ue=17, cell_id="001-01-1", target_cell="001-01-2")  # type: ignore[call-overload]
    assert (rc_key(ho), ho.ue, ho.cell, ho.target) == ((3, 1), "17", "001-01-1", "ue:17")
    quota = SlicePrbQuota("001-01-1", "1-000001", min_pct=20, max_pct=60, dedicated_pct=10)
    assert rc_key(quota) == (2, 6)
    assert quota.parameters() == {"min_pct": 20, "max_pct": 60, "dedicated_pct": 10}
    off = CellState("001-01-1", active=False)
    assert (rc_key(off), off.target, off.parameters()) == (
        (100, 1),
        "cell:001-01-1",
        {"active": False},
    )
    generic = GenericControl(7, 3, "001-01-1", {"x": 1.5}, slice="2-000002")
    assert (rc_key(generic), generic.target) == ((7, 3), "slice:001-01-1/2-000002")


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda: Handover("17", "001-01-1", "001-01-1"), "target cell is the serving cell"),
        (lambda: Handover("ue7", "001-01-1", "001-01-2"), "not a decimal RAN UE id"),
        (lambda: Handover("7", "cell-a", "001-01-2"), "Handover cell_id"),
        (
            lambda: SlicePrbQuota("001-01-1", "1", min_pct=50, max_pct=40),
            "dedicated_pct <= min_pct <= max_pct",
        ),
        (lambda: SlicePrbQuota("001-01-1", "1", max_pct=140), "percentage 0..100"),
        (lambda: CellState("001-01-1"), "needs active=True/False"),
        (lambda: GenericControl(1, 1, "001-01-1", {"x": [1]}), "parameter 'x'"),  # type: ignore[dict-item]
        (lambda: GenericControl(1, 1, "001-01-1", ue="1", slice="1"), "not both"),
    ],
)
def test_bad_actions_are_refused(make, needle: str) -> None:  # type: ignore[no-untyped-def]
    """A control built with bad values raises ValueError saying which value and why."""
    with pytest.raises(ValueError, match=needle):
        make()


def test_handover_serving_cell_is_a_deprecated_alias_of_cell_id() -> None:
    """Handover(serving_cell=...) and .serving_cell still work, each with a DeprecationWarning,
    and make the same action as cell_id=...; the audit parameters keep their serving_cell key."""
    with pytest.warns(DeprecationWarning, match="serving_cell is deprecated: it is cell_id"):
        old = Handover(ue="7", serving_cell="001-01-1", target_cell="001-01-2")
    new = Handover(ue="7", cell_id="001-01-1", target_cell="001-01-2")
    assert old == new
    assert (new.cell, new.cell_id) == ("001-01-1", "001-01-1")
    with pytest.warns(DeprecationWarning, match="serving_cell is deprecated"):
        assert new.serving_cell == "001-01-1"
    assert new.parameters() == {"serving_cell": "001-01-1", "target_cell": "001-01-2"}


def test_handover_refuses_both_cell_names_or_none() -> None:
    """Giving both cell_id and serving_cell, or neither, is a TypeError naming the argument."""
    with pytest.raises(TypeError, match="cell_id or its deprecated alias serving_cell"):
        Handover("7", "001-01-1", "001-01-2", serving_cell="001-01-1")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="needs cell_id"):
        Handover(ue="7", target_cell="001-01-2")  # type: ignore[call-overload]
