"""The generated code in ric/_proto is what proto/generate.py makes from proto/ today."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _generator() -> Any:  # proto/generate.py, loaded from its file
    spec = importlib.util.spec_from_file_location("proto_generate", ROOT / "proto" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    """Regenerating into a temporary folder gives exactly the committed files (run `make proto`
    if this fails)."""
    _generator().generate(tmp_path / "_proto")
    committed = ROOT / "ric" / "_proto"
    fresh = {
        p.relative_to(tmp_path / "_proto"): p.read_text()
        for p in (tmp_path / "_proto").rglob("*.py*")
    }
    current = {
        p.relative_to(committed): p.read_text()
        for p in committed.rglob("*.py*")
        if "__pycache__" not in p.parts
    }
    assert sorted(fresh) == sorted(current)
    stale = [str(name) for name, text in fresh.items() if current[name] != text]
    assert not stale, f"ric/_proto is stale, run `make proto`: {stale}"
