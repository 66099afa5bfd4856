"""Plugins: found by entry point or module:Class, checked at load, refused with clear messages."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ric import ConfigError, KpmReport, PluginError, PolicyType, Report, XApp
from ric.plugins import check_xapp, configure, discover, load


class Good(XApp):
    name = "good"
    reports = [Report("RRU.PrbUsedDl")]

    class Config(XApp.Config):
        threshold: float = 0.5
        mode: str = "fast"

    async def on_report(self, report: KpmReport) -> None:
        pass


class NoHandler(XApp):
    name = "nohandler"
    reports = [Report("RRU.PrbUsedDl")]


class SyncHook(XApp):
    name = "synchook"

    def on_start(self) -> None:  # type: ignore[override]
        pass


class BadName(XApp):
    name = "Bad Name!"


class BadReports(XApp):
    name = "badreports"
    reports = ["RRU.PrbUsedDl"]  # type: ignore[list-item]


class BadControls(XApp):
    name = "badcontrols"
    controls = [str]  # type: ignore[list-item]


class NotAnXApp:
    name = "plain"


class BadPolicyTypes(XApp):
    name = "badpolicies"
    policy_types = ["slice-sla"]  # type: ignore[list-item]


class PolicyTypesWithoutHandler(XApp):
    name = "nopolicyhandler"
    policy_types = [PolicyType("slice-sla", {"type": "object"})]


@pytest.mark.parametrize(
    ("obj", "needle"),
    [
        (NotAnXApp, "not a subclass of ric.XApp"),
        (len, "is builtin_function_or_method, not a subclass"),
        (XApp, "is ric.XApp itself"),
        (NoHandler, "declares reports but does not override on_report"),
        (SyncHook, "on_start must be an async method"),
        (BadName, "name 'Bad Name!' must be"),
        (BadReports, "reports[0] is str, not ric.Report"),
        (BadControls, "controls[0] is <class 'str'>, not a control action class"),
        (BadPolicyTypes, "policy_types[0] is str, not ric.PolicyType"),
        (PolicyTypesWithoutHandler, "declares policy_types but does not override on_policy"),
    ],
)
def test_bad_plugins_are_refused_naming_the_problem(obj: object, needle: str) -> None:
    """Each kind of bad plugin gets a PluginError that names the plugin and the problem."""
    with pytest.raises(PluginError) as err:
        check_xapp(obj, "pkg:Thing")
    assert needle in str(err.value)
    assert "xApp plugin 'pkg:Thing'" in str(err.value)


def test_load_reference() -> None:
    """module:Class loads a good xApp; bad references say what is wrong."""
    assert load("tests.test_plugins:Good").cls is Good
    with pytest.raises(PluginError, match="not a 'module:Class' reference"):
        load("tests.test_plugins:")
    with pytest.raises(PluginError, match="cannot import module 'no_such_mod'"):
        load("no_such_mod:X")
    with pytest.raises(PluginError, match="has no attribute 'Missing'"):
        load("tests.test_plugins:Missing")
    with pytest.raises(PluginError, match="no installed xApp has this name"):
        load("nonexistent")


def test_config_is_validated_with_key_names() -> None:
    """xApp settings are checked against its Config; errors name xapps.config.<xapp>.<key>."""
    assert configure(Good, {"threshold": 0.9}).threshold == 0.9  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"xapps\.config\.good\.threshold.*got 'high'"):
        configure(Good, {"threshold": "high"})
    with pytest.raises(ConfigError, match=r"xapps\.config\.good\.colour.*extra inputs"):
        configure(Good, {"colour": "red"})


def test_entry_points_found_and_a_broken_one_does_not_hide_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Installed example xApps load by name; a broken installed plugin is reported with its
    distribution while the others still load."""
    dist = tmp_path / "broken_xapp-1.2.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-xapp\nVersion: 1.2\n")
    (dist / "entry_points.txt").write_text("[ric.xapps]\nbroken = no_such_module_xyz:Broken\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    found = {getattr(p, "name", None) or p.plugin: p for p in discover()}  # type: ignore[union-attr]
    assert {"kpimon", "mlb"} <= set(found)
    assert found["kpimon"].cls.__name__ == "KpiMonitor"  # type: ignore[union-attr]
    broken = next(p for p in found.values() if isinstance(p, PluginError))
    assert "broken (from broken-xapp 1.2)" in str(broken)
    assert "No module named 'no_such_module_xyz'" in str(broken)
    assert load("mlb").distribution == "ric-xapp-mlb"
