"""The configuration reference (docs/configuration.md), generated from the config models.

Every key of ``RuntimeConfig`` and its sections, with its type, default, bounds, description
and environment variable, is read from the pydantic models in ``ric.config``, so the reference
cannot drift from what the runtime accepts. ``make docs`` (``python -m ric.config_reference
docs/configuration.md``) rewrites the file; ``tests/test_config_reference.py`` fails when the
committed file differs from what this module makes. It lives in the package, not in a script
folder, so that it is type-checked with the runtime and runs from an installed image too
(``python -m ric.config_reference`` prints the reference).
"""

from __future__ import annotations

import argparse
import enum
import inspect
import sys
import types
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from ric.config import ENV_PREFIX, RuntimeConfig
from ric.errors import ConfigError

__all__ = ["main", "render"]

HEADER = """\
# Configuration reference

<!-- Generated from the config models in ric/config.py by `make docs`
     (python -m ric.config_reference docs/configuration.md); do not edit by hand.
     tests/test_config_reference.py fails when this file is out of date. -->

`ric run --config FILE` reads a TOML file; environment variables override it, then command-line
options. A key `[section] key` is set by the variable `RIC_SECTION__KEY` (`[e2.tls] cert` by
`RIC_E2__TLS__CERT`, the top-level `ric_id` by `RIC_RIC_ID`); a variable's value is read as a
TOML value (`true`, `5`, `["kpimon", "mlb"]`), else as a plain string. Unknown keys are
refused, and every error names the key, the value and where it came from.

A key shown with the default *unset* is optional: leave it out for no value (TOML has no
null). Secrets are never values in this file: keys ending in `_file` name a file holding them.
"""


def _type_name(annotation: Any) -> str:
    """A reader's name for a field's type: ``int``, ``"a" | "b"``, ``list[str]``, ..."""
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Literal:
        return " \\| ".join(f'`"{a}"`' if isinstance(a, str) else f"`{a}`" for a in args)
    if origin in (Union, types.UnionType):
        named = [_type_name(a) for a in args if a is not type(None)]
        return " \\| ".join(named)
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"table of {_type_name(args[0])} to {_type_name(args[1])}"
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return "table"
    if annotation is Any:
        return "any"
    if inspect.isclass(annotation):
        return {"str": "string", "int": "integer", "bool": "boolean"}.get(
            annotation.__name__, annotation.__name__
        )
    return str(annotation)


def _toml(value: Any) -> str:
    """``value`` written as in a TOML file."""
    if value is None:
        return "*unset*"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return _toml(value.value)
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return f"{value:.1f}"
    return str(value)


def _default(field: FieldInfo) -> Any:
    if field.default_factory is not None:
        return field.default_factory()  # type: ignore[call-arg]
    return field.default


_BOUNDS = ((Ge, "ge", ">="), (Gt, "gt", ">"), (Le, "le", "<="), (Lt, "lt", "<"))


def _bounds(field: FieldInfo) -> str:
    out: list[str] = []
    for item in field.metadata:
        for kind, attr, sign in _BOUNDS:
            if isinstance(item, kind):
                out.append(f"{sign} {_toml(getattr(item, attr))}")
        if isinstance(item, MinLen):
            out.append(f"at least {item.min_length} long")
        if isinstance(item, MaxLen):
            out.append(f"at most {item.max_length} long")
    return ", ".join(out)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _env(path: Sequence[str]) -> str:
    if list(path) == ["ric_id"]:
        return f"{ENV_PREFIX}RIC_ID"
    return ENV_PREFIX + "__".join(p.upper() for p in path)


def _model_of_dict(annotation: Any) -> type[BaseModel] | None:
    """The model of a ``dict[str, Model]`` field (``[xapps.grants.<xapp>]``), else None."""
    if get_origin(annotation) is dict:
        value = get_args(annotation)[1]
        if inspect.isclass(value) and issubclass(value, BaseModel):
            return value
    return None


def _sections(
    model: type[BaseModel], path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], type[BaseModel]]]:
    """``model`` and every table under it, depth first, in declaration order."""
    yield path, model
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
            yield from _sections(annotation, (*path, name))
        elif (inner := _model_of_dict(annotation)) is not None:
            yield from _sections(inner, (*path, name, "<xapp>"))


def _section(path: tuple[str, ...], model: type[BaseModel]) -> list[str]:
    title = f"`[{'.'.join(path)}]`" if path else "Top level"
    doc = inspect.cleandoc(model.__doc__ or "")
    lines = [f"## {title}", ""]
    if doc:
        lines += [" ".join(doc.split()).replace("``", "`"), ""]  # reST literals to Markdown
    if "<xapp>" in path:
        lines += ["One table per xApp name; set from the file only (no environment variable).", ""]
    rows: list[str] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
            continue
        key = ".".join((*path, name))
        if not field.description:
            raise ConfigError(
                key,
                "has no description: give its Field a description= (docs/configuration.md "
                "is generated from them)",
            )
        value = _default(field)
        if field.exclude:
            default = "refused"
        elif value is None:
            default = "*unset*"
        else:
            default = f"`{_cell(_toml(value))}`"
        env = "" if "<xapp>" in path else f"`{_env((*path, name))}`"
        rows.append(
            f"| `{name}` | {_cell(_type_name(annotation))} | {default} "
            f"| {_cell(_bounds(field))} | {env} | {_cell(field.description)} |"
        )
    if rows:
        lines += [
            "| key | type | default | bounds | environment | what |",
            "| --- | --- | --- | --- | --- | --- |",
            *rows,
            "",
        ]
    return lines


def render() -> str:
    """The whole reference as Markdown."""
    lines = [HEADER]
    sections = list(_sections(RuntimeConfig, ()))
    lines += ["Sections: " + ", ".join(f"`[{'.'.join(p)}]`" for p, _ in sections if p), ""]
    for path, model in sections:
        lines += _section(path, model)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Write the reference to the file given (or print it); ``--check`` compares instead."""
    parser = argparse.ArgumentParser(
        prog="python -m ric.config_reference", description=main.__doc__
    )
    parser.add_argument("output", nargs="?", type=Path, help="file to write (default: stdout)")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if OUTPUT differs from what would be written"
    )
    args = parser.parse_args(argv)
    text = render()
    if args.output is None:
        sys.stdout.write(text)
        return 0
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run `make docs`", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
