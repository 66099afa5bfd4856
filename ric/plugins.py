"""Finding and checking xApp plugins.

xApps are found through the ``ric.xapps`` entry-point group, or named on the command line as
``module:Class``. Every plugin is checked when it is loaded, not at its first report: a bad
one is refused with a ``PluginError`` naming the plugin (and its distribution) and the
problem, and the others load as usual.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ric.actions import ControlAction
from ric.errors import ConfigError, PluginError
from ric.xapp import NAME_PATTERN, Report, XApp

__all__ = [
    "GROUP",
    "Plugin",
    "check_pin",
    "check_xapp",
    "configure",
    "discover",
    "load",
    "load_reference",
    "package_hash",
    "pin_of",
]

GROUP = "ric.xapps"
_HOOKS = (
    "on_start",
    "on_stop",
    "on_node_up",
    "on_node_down",
    "on_report",
    "on_subscription",
    "on_conflict",
    "on_config",
)


@dataclass(frozen=True)
class Plugin:
    """A loadable xApp: its class and where it came from."""

    cls: type[XApp]
    source: str
    distribution: str = ""
    dist_version: str = ""

    @property
    def name(self) -> str:
        """The xApp's name."""
        return self.cls.name


def check_xapp(obj: Any, source: str) -> type[XApp]:
    """Return ``obj`` as an XApp class, or raise PluginError saying what is wrong with it."""
    if not (inspect.isclass(obj) and issubclass(obj, XApp)):
        kind = "a class" if inspect.isclass(obj) else type(obj).__name__
        raise PluginError(source, f"is {kind}, not a subclass of ric.XApp")
    if obj is XApp:
        raise PluginError(source, "is ric.XApp itself; subclass it")
    if not isinstance(obj.name, str) or not NAME_PATTERN.match(obj.name):
        raise PluginError(
            source,
            f"name {obj.name!r} must be 1-40 characters of a-z, 0-9, '_' or '-', "
            "starting with a letter",
        )
    if not isinstance(obj.version, str) or not obj.version:
        raise PluginError(source, f"version must be a non-empty string, got {obj.version!r}")
    reports = obj.reports
    if isinstance(reports, str | bytes) or not isinstance(reports, list | tuple):
        raise PluginError(source, "reports must be a list of ric.Report")
    for i, report in enumerate(reports):
        if not isinstance(report, Report):
            raise PluginError(source, f"reports[{i}] is {type(report).__name__}, not ric.Report")
    controls = obj.controls
    if isinstance(controls, str | bytes) or not isinstance(controls, list | tuple):
        raise PluginError(source, "controls must be a list of control action classes")
    for i, action in enumerate(controls):
        if not (inspect.isclass(action) and issubclass(action, ControlAction)):
            raise PluginError(
                source,
                f"controls[{i}] is {action!r}, not a control action class "
                "(Handover, SlicePrbQuota, CellState, GenericControl)",
            )
    if not (inspect.isclass(obj.Config) and issubclass(obj.Config, XApp.Config)):
        raise PluginError(source, "Config must subclass ric.XApp.Config")
    if not isinstance(obj.queue_size, int) or obj.queue_size < 1:
        raise PluginError(source, f"queue_size must be a positive integer, got {obj.queue_size!r}")
    for hook in _HOOKS:
        fn = getattr(obj, hook)
        if not inspect.iscoroutinefunction(fn):
            raise PluginError(source, f"{hook} must be an async method (async def {hook})")
    if reports and obj.on_report is XApp.on_report:
        raise PluginError(source, "declares reports but does not override on_report")
    from ric.a1.service import A1Service  # late: ric.a1 builds on the xApp SDK

    A1Service.check_declaration(obj, source)
    return obj


def load_reference(ref: str) -> Plugin:
    """Import ``module:Class`` and check it."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise PluginError(ref, "is not a 'module:Class' reference, e.g. kpimon:KpiMonitor")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise PluginError(ref, f"cannot import module {module_name!r}: {exc}") from exc
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise PluginError(ref, f"module {module_name!r} has no attribute {attr!r}") from None
    return Plugin(check_xapp(obj, ref), ref)


def _entry_points() -> list[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=GROUP), key=lambda ep: ep.name)


def _load_entry_point(ep: metadata.EntryPoint) -> Plugin:
    dist = ep.dist
    dist_name = dist.metadata["Name"] if dist is not None else ""
    dist_version = dist.version if dist is not None else ""
    source = f"{ep.name} (from {dist_name} {dist_version})" if dist_name else ep.name
    try:
        obj = ep.load()
    except Exception as exc:
        raise PluginError(source, f"cannot load {ep.value}: {type(exc).__name__}: {exc}") from exc
    cls = check_xapp(obj, source)
    if cls.name != ep.name:
        raise PluginError(
            source, f"entry point name {ep.name!r} differs from the xApp's name {cls.name!r}"
        )
    return Plugin(cls, source, dist_name, dist_version)


def discover() -> list[Plugin | PluginError]:
    """Every installed plugin of the ``ric.xapps`` group, loaded and checked, by name.

    A plugin that fails is returned as its PluginError, so one bad package does not hide the
    others.
    """
    found: list[Plugin | PluginError] = []
    for ep in _entry_points():
        try:
            found.append(_load_entry_point(ep))
        except PluginError as exc:
            found.append(exc)
    return found


def load(name_or_ref: str) -> Plugin:
    """Load one xApp by entry-point name or ``module:Class`` reference."""
    if ":" in name_or_ref:
        return load_reference(name_or_ref)
    matches = [ep for ep in _entry_points() if ep.name == name_or_ref]
    if not matches:
        installed = ", ".join(ep.name for ep in _entry_points()) or "none"
        raise PluginError(
            name_or_ref,
            f"no installed xApp has this name (installed: {installed}); "
            "use module:Class for one that is not installed",
        )
    return _load_entry_point(matches[0])


def package_hash(cls: type[XApp]) -> str:
    """SHA-256 over the Python files of the top-level package that defines ``cls`` (their
    paths relative to the package and their bytes, in path order)."""
    top = cls.__module__.split(".")[0]
    spec = importlib.util.find_spec(top)
    if spec is None or spec.origin is None:
        raise PluginError(cls.name, f"cannot find the files of package {top!r} to hash")
    origin = Path(spec.origin)
    root = origin.parent if origin.name == "__init__.py" else origin
    files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
    digest = hashlib.sha256()
    for path in files:
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(root.parent).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def pin_of(plugin: Plugin) -> str:
    """The pin that matches ``plugin`` as installed: ``dist==version sha256:<hex>``."""
    if not plugin.distribution:
        raise PluginError(
            plugin.source, "is not from an installed distribution, so it cannot be pinned"
        )
    return f"{plugin.distribution}=={plugin.dist_version} sha256:{package_hash(plugin.cls)}"


def check_pin(plugin: Plugin, pins: Mapping[str, str], *, required: bool) -> None:
    """Refuse ``plugin`` if its pin (``dist==version`` and optional ``sha256:<hex>``) does not
    match what is installed, or if pins are required and it has none."""
    pin = pins.get(plugin.name)
    if pin is None:
        if required:
            raise PluginError(
                plugin.source,
                f"is not pinned; add xapps.pins.{plugin.name} (see 'ric xapps --pins')",
            )
        return
    spec, _, digest = pin.partition(" sha256:")
    dist, sep, version = spec.strip().partition("==")
    if not sep or not dist or not version:
        raise ConfigError(
            f"xapps.pins.{plugin.name}", f"{pin!r} is not 'distribution==version [sha256:<hex>]'"
        )
    if (plugin.distribution, plugin.dist_version) != (dist, version):
        have = (
            f"{plugin.distribution}=={plugin.dist_version}"
            if plugin.distribution
            else "no distribution"
        )
        raise PluginError(plugin.source, f"is pinned to {dist}=={version} but {have} is installed")
    if digest and package_hash(plugin.cls) != digest.strip():
        raise PluginError(
            plugin.source, f"files differ from the pinned sha256 (pinned {digest.strip()[:12]}...)"
        )


def configure(cls: type[XApp], raw: dict[str, Any] | None) -> XApp.Config:
    """Validate an xApp's settings against its Config; ConfigError names the key."""
    try:
        return cls.Config.model_validate(raw or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        got = f", got {err['input']!r}" if err["type"] != "missing" else ""
        raise ConfigError(
            f"xapps.config.{cls.name}.{field}", f"{err['msg'][:1].lower()}{err['msg'][1:]}{got}"
        ) from None
