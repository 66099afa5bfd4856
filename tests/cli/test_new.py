"""``ric new xapp``: the project it writes installs, lints, type-checks and passes its own
tests; bad names and occupied folders are refused with one line and exit status 2."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import sysconfig
import tempfile
import tomllib
from pathlib import Path

import pytest

from ric.cli import main
from ric.cli.new import TEMPLATE_FILES, Names

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MYPY_CACHE = Path(tempfile.gettempdir()) / "ric-test-new-xapp-mypy"
"""Kept between runs: a cold mypy of numpy, pydantic and ric takes half a minute."""


def ric(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``ric ARGS`` run in this process: exit status, stdout, stderr."""
    try:
        status = main(list(args))
    except SystemExit as exc:  # argparse's usage errors and --help
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


def run(args: list[str | Path], cwd: Path, timeout: float = 120) -> str:
    """Run a command in ``cwd``; its output, or a failed assertion that shows it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHON"))}
    result = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
        env=env,
    )
    assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``ric new xapp demo_xapp`` in a temporary folder."""
    folder = tmp_path_factory.mktemp("new") / "demo_xapp"
    run([sys.executable, "-m", "ric", "new", "xapp", "demo_xapp", "--dir", folder], folder.parent)
    return folder


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway virtual environment that sees this one's packages (ric and its
    dependencies, pip, pytest) without changing it: what the project installs goes there."""
    home = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", home], check=True)
    python = home / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    # addsitedir also reads the .pth files there (the editable installs of ric and the xApps).
    (Path(purelib) / "_ric_env.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return python


def test_the_written_project_installs_and_passes_its_own_tests(project: Path, venv: Path) -> None:
    """The project installs with pip install -e (offline), its entry point makes `ric xapps`
    list the xApp as loadable, and its tests (fakes, simulator, trace replay) pass."""
    run(
        [venv, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e", "."],
        project,
    )
    listed = run([venv, "-m", "ric", "xapps"], project)
    line = next(row for row in listed.splitlines() if row.startswith("demo_xapp "))
    assert "SlicePrbQuota" in line and line.rstrip().endswith("ok"), listed
    out = run([venv, "-m", "pytest", "-q", "-p", "no:cacheprovider"], project, timeout=300)
    assert "6 passed" in out, out


def test_the_written_project_is_lint_clean_and_type_checks(project: Path) -> None:
    """ruff (check and format, with the project's own settings) and mypy --strict pass on the
    project as written."""
    run([BIN / "ruff", "check", "--no-cache", "."], project)
    run([BIN / "ruff", "format", "--no-cache", "--check", "."], project)
    # MYPYPATH: the project's sources and ric's (its editable install is a finder mypy
    # cannot follow).
    env_path = f"{project / 'src'}{os.pathsep}{ROOT}"
    result = subprocess.run(
        [BIN / "mypy", "--cache-dir", MYPY_CACHE, "src", "tests"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=project,
        env={**os.environ, "MYPYPATH": env_path},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_project_has_every_file_with_the_names_substituted(project: Path) -> None:
    """pyproject names the entry point in ric.xapps and sets asyncio_mode = "auto"; no
    template placeholder is left in any file."""
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["ric.xapps"] == {"demo_xapp": "demo_xapp:DemoXapp"}
    assert pyproject["tool"]["pytest"]["ini_options"]["asyncio_mode"] == "auto"
    made = (".egg-info", "__pycache__", ".pytest_cache")  # by pip and pytest in other tests
    written = sorted(
        str(p.relative_to(project))
        for p in project.rglob("*")
        if p.is_file() and not any(part.endswith(made) for part in p.parts)
    )
    for path in written:
        assert "${" not in (project / path).read_text(), path
    assert {"src/demo_xapp/__init__.py", "tests/test_demo_xapp.py", "README.md"} <= set(written)


def test_the_templates_ship_as_package_data() -> None:
    """Every template file matches the package-data globs of pyproject.toml, so a wheel of
    ric carries them (setuptools globs each pattern from the package folder)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["ric"]
    package = ROOT / "ric"
    shipped = {
        Path(p).relative_to(package)
        for pattern in patterns
        for p in glob.glob(str(package / pattern), recursive=True)
    }
    needed = {Path("templates/xapp") / source for source, _ in TEMPLATE_FILES}
    assert needed <= shipped, needed - shipped


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("Demo", "'Demo' is not an xApp name: 1-40 characters of a-z"),
        ("9lives", "'9lives' is not an xApp name"),
        ("a" * 41, "is not an xApp name"),
        ("demo xapp", "is not an xApp name"),
        ("class", "'class' is a Python keyword"),
        ("json", "would shadow the module 'json' of Python or ric"),
        ("ric", "would shadow the module 'ric'"),
        ("mlb", "'mlb': a module 'mlb' is already importable"),
    ],
)
def test_a_bad_name_is_refused_with_one_line_and_status_2(
    name: str,
    needle: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A name the runtime would refuse, or whose module could not be imported as the
    package, is refused before anything is written."""
    monkeypatch.chdir(tmp_path)
    status, _, err = ric(capsys, "new", "xapp", name)
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "ric new xapp: error: argument NAME: " in lines[0], lines
    assert needle in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_a_dash_in_the_name_makes_an_underscore_module() -> None:
    """slice-guard is the xApp and entry-point name; its module is slice_guard, its class
    SliceGuard."""
    assert Names.of("slice-guard") == Names("slice-guard", "slice_guard", "SliceGuard")


def test_a_folder_that_is_not_empty_is_refused_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --force an existing, non-empty folder is refused (exit 2, nothing written);
    with --force the template's files are written and the others kept."""
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    status, _, err = ric(capsys, "new", "xapp", "mine", "--dir", str(target))
    assert status == 2
    assert err.strip() == (
        f"ric new xapp: error: {str(target)!r} exists and is not empty; choose another "
        "--dir, or --force to write the template files over the ones there (other files are "
        "kept)"
    )
    assert [p.name for p in target.iterdir()] == ["notes.txt"]

    status, _, err = ric(capsys, "new", "xapp", "mine", "--dir", str(target), "--force")
    assert status == 0, err
    assert (target / "src" / "mine" / "__init__.py").is_file()
    assert (target / "notes.txt").read_text() == "keep me"


def test_a_file_in_the_way_is_refused_even_with_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A DIR that is a file is refused with exit status 2, --force or not."""
    target = tmp_path / "taken"
    target.write_text("")
    status, _, err = ric(capsys, "new", "xapp", "taken", "--dir", str(target), "--force")
    assert status == 2
    assert "exists and is not a folder" in err


def test_the_default_folder_is_the_name_and_help_explains_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --dir the project goes to ./NAME; --help names NAME, --dir and --force."""
    monkeypatch.chdir(tmp_path)
    status, out, err = ric(capsys, "new", "xapp", "probe")
    assert status == 0, err
    assert (tmp_path / "probe" / "pyproject.toml").is_file()
    assert "pip install -e '.[test]'" in out
    status, helped, _ = ric(capsys, "new", "xapp", "--help")
    assert status == 0
    for word in ("NAME", "--dir DIR", "--force", "ric.xapps entry point", "exit status 2"):
        assert word in " ".join(helped.split()), word
