"""The exception tree in ric.errors' docstring is whole, and the errors name what is wrong."""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import ric.errors
from ric.errors import ConfigError, PluginError, RicError

RIC = Path(ric.errors.__file__).resolve().parent


def _exception_classes() -> dict[str, str]:
    """Every class in the ric package that derives from an exception, by name -> module."""
    classes: list[tuple[str, list[str], str]] = []
    for path in sorted(RIC.rglob("*.py")):
        if "_proto" in path.parts:
            continue
        parts = path.relative_to(RIC.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = [ast.unparse(b).rsplit(".", 1)[-1] for b in node.bases]
                classes.append((node.name, bases, module))
    known = {
        name
        for name, value in vars(builtins).items()
        if isinstance(value, type) and issubclass(value, BaseException)
    }
    found: dict[str, str] = {}
    grew = True
    while grew:
        grew = False
        for name, bases, module in classes:
            if name not in found and any(b in known for b in bases):
                found[name] = module
                known.add(name)
                grew = True
    return found


def test_every_exception_class_is_drawn_in_the_tree() -> None:
    """Each exception class defined anywhere in ric appears in ric.errors' docstring, with the
    module it lives in."""
    doc = ric.errors.__doc__ or ""
    classes = _exception_classes()
    assert "RicError" in classes and "SdlError" in classes
    missing = sorted(f"{name} ({module})" for name, module in classes.items() if name not in doc)
    assert missing == []
    misplaced = sorted(
        name
        for name, module in classes.items()
        if module != "ric.errors" and f"({module})" not in doc
    )
    assert misplaced == []


def test_config_and_plugin_errors_name_the_key_and_the_plugin() -> None:
    """ConfigError and PluginError messages name what is wrong, and both are RicErrors."""
    assert str(ConfigError("e2.port", "must be a port")) == "config key 'e2.port': must be a port"
    assert str(PluginError("mlb", "no XApp")) == "xApp plugin 'mlb': no XApp"
    assert issubclass(ConfigError, RicError) and issubclass(PluginError, RicError)
