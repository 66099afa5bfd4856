"""The public API of ``ric`` is exactly the curated list, so it never drifts by accident."""

from __future__ import annotations

import ric

EXPECTED = [
    "Cause",
    "CauseCode",
    "CellId",
    "CellInfo",
    "CellState",
    "Change",
    "ConfigError",
    "Conflict",
    "ControlAction",
    "ControlOutcome",
    "EntityKind",
    "GenericControl",
    "Handover",
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


def test_all_is_the_curated_sorted_list() -> None:
    """``ric.__all__`` lists exactly the expected names, sorted, and each one exists."""
    assert ric.__all__ == EXPECTED
    assert sorted(ric.__all__) == ric.__all__
    for name in ric.__all__:
        assert getattr(ric, name) is not None


def test_every_public_name_has_a_docstring() -> None:
    """Each class and function of the public API carries a docstring."""
    for name in ric.__all__:
        assert getattr(ric, name).__doc__, f"ric.{name} has no docstring"
