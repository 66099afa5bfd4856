"""The version is written once, as ``ric.__version__``; the package metadata reads it."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import ric

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def test_pyproject_takes_its_version_from_the_package() -> None:
    """pyproject.toml writes no version of its own: setuptools reads ``ric.__version__``."""
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    assert "version" not in config["project"]
    assert "version" in config["project"]["dynamic"]
    assert config["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "ric.__version__"}


def test_installed_metadata_agrees_with_the_package() -> None:
    """The installed distribution reports the same version (reinstall after changing it)."""
    assert metadata.version("ric") == ric.__version__
