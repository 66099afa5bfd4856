"""The configuration reference: docs/configuration.md is what ric.config_reference makes from
the config models, and every key in it has a type, a default and a description."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from ric import config_reference
from ric.config import RuntimeConfig
from ric.errors import ConfigError

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_committed_reference_is_up_to_date() -> None:
    """docs/configuration.md equals a fresh rendering; if not, the failure says to run `make
    docs`."""
    assert DOC.read_text() == config_reference.render(), (
        "docs/configuration.md is out of date: run `make docs` and commit it"
    )


def test_check_mode_names_the_refresh_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--check` exits 1 on a stale file naming `make docs`, and 0 once the file is rewritten."""
    out = tmp_path / "configuration.md"
    out.write_text("stale\n")
    assert config_reference.main([str(out), "--check"]) == 1
    assert "make docs" in capsys.readouterr().err
    assert config_reference.main([str(out)]) == 0
    assert config_reference.main([str(out), "--check"]) == 0


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    out: list[str] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out += _keys(annotation, f"{prefix}{name}.")
        else:
            out.append(f"{prefix}{name}")
    return out


def test_every_key_is_in_the_reference_with_its_variable() -> None:
    """Each key of RuntimeConfig and its sections has a row, with its RIC_* variable."""
    text = config_reference.render()
    keys = _keys(RuntimeConfig)
    assert len(keys) > 100
    for key in keys:
        *section, name = key.split(".")
        heading = f"## `[{'.'.join(section)}]`" if section else "## Top level"
        body = text.split(heading + "\n", 1)[1].split("\n## ", 1)[0]
        assert f"| `{name}` |" in body, key
        if key != "ric_id":
            assert "`RIC_" + key.upper().replace(".", "__") + "`" in body, key


def test_security_keys_are_documented_with_defaults() -> None:
    """The keys the README once left out (tokens, TLS, grants, pins, privacy) have rows with
    their defaults and bounds."""
    text = config_reference.render()
    for row in (
        '| `token_file` | string | `""` |',
        "| `protect_reads` | boolean | `false` |",
        '| `client_ca` | string | `""` |',
        "| `pins` | table of string to string | `{}` |",
        "| `pseudonymize_ue_ids` | boolean | `false` |",
        "| `port` | integer | `36421` | >= 0, <= 65535 | `RIC_E2__PORT` |",
        "| `max_restarts` | integer | *unset* | >= 0 |",
    ):
        assert row in text, row
    assert "## `[xapps.grants.<xapp>]`" in text
    assert "| `password` | string | refused |" in text


def test_a_key_without_description_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A config field without a description stops the rendering with an error naming the key."""

    class Bare(BaseModel):
        """A section for the test."""

        documented: int = Field(1, description="has one")
        bare: int = 2

    class Root(BaseModel):
        """A root for the test."""

        part: Bare = Bare()

    monkeypatch.setattr(config_reference, "RuntimeConfig", Root)
    with pytest.raises(ConfigError, match=r"'part\.bare': has no description"):
        config_reference.render()
