"""The public doors (``ric``, ``ric.e2``) export exactly what they define, and the example
xApps need nothing from behind them."""

from __future__ import annotations

import ast
import types
from pathlib import Path

import pytest

import ric
import ric.e2

XAPPS = Path(__file__).resolve().parents[1] / "xapps"


def _public(module: types.ModuleType) -> list[str]:
    """The names a module binds that are not private and not one of its submodules."""
    return [
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    ]


@pytest.mark.parametrize("module", [ric, ric.e2], ids=lambda m: m.__name__)
def test_all_is_exactly_what_the_module_binds_sorted(module: types.ModuleType) -> None:
    """Every public name bound in the module is in ``__all__``, every name there exists, and
    ``__all__`` is sorted (as ruff sorts it), so a name cannot leak or vanish unnoticed."""
    exported = list(module.__all__)
    assert sorted(_public(module)) == sorted(exported)
    assert exported == sorted(exported, key=lambda n: (not n.isupper(), not n[0].isupper(), n))


def test_the_check_sees_a_leaked_name() -> None:
    """A public name bound in a module shows in what the comparison reads, so one missing from
    ``__all__`` makes the first test fail."""
    module = types.ModuleType("fake")
    for name in ("Exported", "leaked"):
        setattr(module, name, object)
    assert sorted(_public(module)) == ["Exported", "leaked"]


def test_every_public_name_has_a_docstring() -> None:
    """Each class and function of the public API carries a docstring."""
    for name in ric.__all__:
        assert getattr(ric, name).__doc__, f"ric.{name} has no docstring"


@pytest.mark.parametrize(
    "plugin", sorted(XAPPS.glob("*/*/__init__.py")), ids=lambda p: p.parent.name
)
def test_example_xapps_import_only_from_ric(plugin: Path) -> None:
    """The five example xApps take what they need from ``ric`` itself, none from a submodule
    such as ``ric.types``."""
    tree = ast.parse(plugin.read_text(encoding="utf-8"))
    behind = [
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ric.")
    ]
    behind += [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
        if alias.name.startswith("ric.")
    ]
    assert behind == [], f"{plugin} imports {behind}"


def test_there_are_five_example_xapps() -> None:
    """The import check above runs over all five example xApps, not over none."""
    assert len(list(XAPPS.glob("*/*/__init__.py"))) == 5


def test_report_states_are_their_own_text() -> None:
    """``SubscriptionStatus.state`` is a ReportState that equals its text, so an xApp that
    compares it with ``"active"`` reads it as before."""
    assert [str(s) for s in ric.ReportState] == ["active", "failed", "refused"]
    assert isinstance(ric.ReportState.ACTIVE, str)
    assert ric.ReportState("active") is ric.ReportState.ACTIVE
