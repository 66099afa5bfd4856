"""UE pseudonyms: keyed, stable, unlinkable without the key; applied to log lines."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from ric.errors import ConfigError
from ric.logs import setup_logging
from ric.privacy import Pseudonymizer


def test_pseudonyms_are_keyed_and_stable() -> None:
    """The same key gives the same pseudonym; another key a different one; disabled keeps ids."""
    a = Pseudonymizer(b"k" * 32)
    assert a.ue(17) == a.ue("17")
    assert a.ue(17).startswith("ue-")
    assert len(a.ue(17)) == 19
    assert a.ue(17) != a.ue(18)
    assert Pseudonymizer(b"j" * 32).ue(17) != a.ue(17)
    assert Pseudonymizer(None, enabled=False).ue(17) == "17"
    assert (
        a.text("handover ue:17 on gnb-001-01-1 to cell 001-01-17")
        == f"handover ue:{a.ue(17)} on gnb-001-01-1 to cell 001-01-17"
    )


def test_key_file_errors(tmp_path: Path) -> None:
    """A missing or too short key file is refused naming privacy.key_file."""
    with pytest.raises(ConfigError, match=r"privacy\.key_file.*cannot read"):
        Pseudonymizer.from_config(True, str(tmp_path / "none"))
    short = tmp_path / "short"
    short.write_bytes(b"abc")
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        Pseudonymizer.from_config(True, str(short))


def test_logs_carry_pseudonyms_only() -> None:
    """With privacy on, a log line about a UE shows its pseudonym, never its id."""
    out = io.StringIO()
    privacy = Pseudonymizer(b"x" * 32)
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    setup_logging("info", "json", stream=out, privacy=privacy)
    try:
        logging.getLogger("ric.test").info("control: handover ue:%s: acknowledged", 4242)
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
    line = out.getvalue()
    assert "4242" not in line
    assert privacy.ue(4242) in line
