"""``ric new xapp NAME``: write a complete xApp package an author starts from.

The package is made from the templates in ``ric/templates/xapp/`` (package data, shipped with
``ric``): ``pyproject.toml`` with the ``ric.xapps`` entry point and the pytest-asyncio
settings, the xApp module (a Report, a Config, a guarded control, ``self.now()``, a timer), a
README, a small scenario and two test files (one with ``ric.testing``'s fakes, one through
the harness against the simulator and a trace it records). ``$name``, ``$module``,
``$class_name`` and ``$ric_version`` in a template are replaced (``string.Template``).

A bad NAME, a NAME whose module would shadow one Python already finds, and a target folder
that exists and is not empty (unless ``--force``) are refused with one line, exit status 2.
"""

from __future__ import annotations

import argparse
import importlib.util
import keyword
import sys
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from string import Template

from ric.cliutil import EXIT_USAGE, Parser
from ric.xapp import NAME_PATTERN

__all__ = ["TEMPLATE_FILES", "Names", "add_command", "cmd_new_xapp", "render_xapp", "xapp_name"]

TEMPLATE_FILES: tuple[tuple[str, str], ...] = (
    ("pyproject.toml.tmpl", "pyproject.toml"),
    ("README.md.tmpl", "README.md"),
    ("gitignore.tmpl", ".gitignore"),
    ("src/xapp.py.tmpl", "src/$module/__init__.py"),
    ("src/py.typed.tmpl", "src/$module/py.typed"),
    ("tests/test_xapp.py.tmpl", "tests/test_$module.py"),
    ("tests/test_network.py.tmpl", "tests/test_network.py"),
    ("tests/network.toml.tmpl", "tests/network.toml"),
)
"""(template under ``ric/templates/xapp/``, where it goes in the new project; ``$module``
is replaced in the second)."""


@dataclass(frozen=True, slots=True)
class Names:
    """What an xApp NAME becomes: the xApp and entry-point name, the Python module (``-``
    becomes ``_``) and the class (CamelCase of the parts)."""

    name: str
    module: str
    class_name: str

    @classmethod
    def of(cls, name: str) -> Names:
        """The names made from NAME; ValueError saying what is wrong with it."""
        if not NAME_PATTERN.match(name):
            raise ValueError(
                f"{name!r} is not an xApp name: 1-40 characters of a-z, 0-9, '_' or '-', "
                "starting with a letter (e.g. slice_guard)"
            )
        module = name.replace("-", "_")
        if keyword.iskeyword(module) or keyword.issoftkeyword(module):
            raise ValueError(f"{name!r} is a Python keyword; the package could not be imported")
        if module in sys.stdlib_module_names or module in ("ric", "xapps", "tests", "test"):
            raise ValueError(
                f"{name!r} would shadow the module {module!r} of Python or ric; pick another name"
            )
        found = importlib.util.find_spec(module)
        if found is not None:
            where = found.origin or ", ".join(found.submodule_search_locations or ())
            raise ValueError(
                f"{name!r}: a module {module!r} is already importable ({where}); the new "
                "package would clash with it, pick another name"
            )
        class_name = "".join(part.capitalize() for part in module.split("_") if part)
        return cls(name, module, class_name)


def xapp_name(text: str) -> Names:
    """The argparse converter of NAME (its error is one line naming the problem)."""
    try:
        return Names.of(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _templates() -> Traversable:
    return files("ric").joinpath("templates", "xapp")


def render_xapp(names: Names, ric_version: str) -> dict[str, str]:
    """The new project's files, path relative to its folder -> text."""
    values = {
        "name": names.name,
        "module": names.module,
        "class_name": names.class_name,
        "ric_version": ric_version,
    }
    root = _templates()
    out: dict[str, str] = {}
    for source, dest in TEMPLATE_FILES:
        text = root.joinpath(*source.split("/")).read_text(encoding="utf-8")
        out[Template(dest).substitute(values)] = Template(text).substitute(values)
    return out


def cmd_new_xapp(args: argparse.Namespace) -> int:
    """Write the project of ``args.name`` into ``args.dir`` (default ``./NAME``)."""
    from ric import __version__

    names: Names = args.name
    target: Path = args.dir if args.dir is not None else Path(names.name)
    where = f"ric new xapp: error: {str(target)!r}"
    if target.exists() and not target.is_dir():
        print(f"{where} exists and is not a folder", file=sys.stderr)
        return EXIT_USAGE
    if target.is_dir() and any(target.iterdir()) and not args.force:
        print(
            f"{where} exists and is not empty; choose another --dir, or --force to write "
            "the template files over the ones there (other files are kept)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    rendered = render_xapp(names, __version__)
    for relative, text in rendered.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    print(f"wrote xApp {names.name} ({names.module}:{names.class_name}) into {target}/:")
    for relative in sorted(rendered):
        print(f"  {relative}")
    python = Path(sys.executable)
    print(
        "next, with the Python the RIC runs in:\n"
        f"  cd {target}\n"
        f"  {python} -m pip install -e '.[test]'\n"
        f"  {python} -m pytest\n"
        f"  {python} -m ric xapps\n"
        f"  {python} -m ric demo --xapp {names.name} --xapp kpimon"
    )
    return 0


def add_command(sub: argparse._SubParsersAction[Parser]) -> None:
    """Add ``ric new xapp`` to the ``ric`` command's subparsers."""
    new = sub.add_parser(
        "new",
        help="start a new xApp package from a template",
        description="Write a new project to start from. 'ric new xapp NAME' writes a complete, "
        "working xApp package.",
    )
    kinds = new.add_subparsers(dest="new_command", metavar="KIND", parser_class=Parser)
    kinds.required = True
    xapp = kinds.add_parser(
        "xapp",
        help="a complete xApp package: pyproject.toml, the xApp, a README and passing tests",
        description="Write an xApp package into DIR (default ./NAME): pyproject.toml with the "
        "ric.xapps entry point and the pytest-asyncio settings, src/MODULE/__init__.py with an "
        "XApp subclass (a cell PRB report, a Config, a slice quota control guarded by a "
        "threshold and a cool-down on self.now(), a timer made with every), a README (install, "
        "test, run against 'ric sim' or 'ric demo', load with [xapps] load), and tests: one "
        "with ric.testing's fakes, one in the harness against a small simulated network and a "
        "trace recorded from it. Its tests pass as written.",
        epilog="Example: ric new xapp slice_guard && cd slice_guard && pip install -e '.[test]' "
        "&& python -m pytest. A bad NAME, or a DIR that exists and is not empty (without "
        "--force), is refused with exit status 2.",
    )
    xapp.add_argument(
        "name",
        type=xapp_name,
        metavar="NAME",
        help="the xApp's name: 1-40 characters of a-z, 0-9, '_' or '-', starting with a letter; "
        "the Python package is NAME with '-' as '_', the class its CamelCase",
    )
    xapp.add_argument(
        "--dir",
        type=Path,
        metavar="DIR",
        help="the folder to write the project into (default ./NAME)",
    )
    xapp.add_argument(
        "--force",
        action="store_true",
        help="write into DIR even when it is not empty (the template's files are overwritten, "
        "others kept)",
    )
    xapp.set_defaults(func=cmd_new_xapp)
