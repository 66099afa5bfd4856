"""Configuration: TOML file, environment overrides, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ric.config import load_config
from ric.errors import ConfigError


def test_defaults() -> None:
    """With nothing given, E2 listens on 127.0.0.1:36421 and no xApp is loaded."""
    config = load_config(environ={})
    assert (config.e2.host, config.e2.port) == ("127.0.0.1", 36421)
    assert config.xapps.load == []


def test_file_then_env_then_overrides(tmp_path: Path) -> None:
    """Environment variables override the file, and explicit overrides beat both."""
    path = tmp_path / "ric.toml"
    path.write_text(
        '[e2]\nport = 1000\nkeep_alive_s = 2.5\n[xapps]\nload = ["kpimon"]\n[xapps.config.kpimon]\nprint_every_s = 3\n'
    )
    config = load_config(
        path, environ={"RIC_E2__PORT": "2000", "RIC_LOG__FORMAT": "json", "RIC_RIC_ID": "ric-7"}
    )
    assert (config.e2.port, config.e2.keep_alive_s, config.log.format) == (2000, 2.5, "json")
    assert config.ric_id == "ric-7"
    assert config.xapps.config["kpimon"] == {"print_every_s": 3}
    assert (
        load_config(path, environ={"RIC_E2__PORT": "2000"}, overrides={"e2.port": 3000}).e2.port
        == 3000
    )


@pytest.mark.parametrize(
    ("text", "env", "needle"),
    [
        (
            "[e2]\nport = 70000\n",
            {},
            r"config key 'e2.port': input should be less than or equal to 65535, got 70000 \(from .*ric.toml\)",
        ),
        ("[e2]\nprot = 1\n", {}, r"config key 'e2.prot': extra inputs are not permitted"),
        ("", {"RIC_E2__PORT": "abc"}, r"'e2.port'.*got 'abc' \(from RIC_E2__PORT\)"),
        ("", {"RIC_LOG__LEVEL": "loud"}, r"'log.level'.*'debug', 'info', 'warning' or 'error'"),
        (
            '[loop]\nimplementation = "trio"\n',
            {},
            r"'loop.implementation'.*'auto', 'asyncio' or 'uvloop'.*got 'trio'",
        ),
        ("[e2\n", {}, r"'--config'.*is not valid TOML"),
        ('[xapps]\nload = "kpimon"\n', {}, r"'xapps.load': input should be a valid list"),
        (
            "[xapps]\nrestart_min_s = 5\nrestart_max_s = 1\n",
            {},
            r"'xapps'.*restart_max_s must not be below restart_min_s",
        ),
    ],
)
def test_bad_values_name_the_key(
    tmp_path: Path, text: str, env: dict[str, str], needle: str
) -> None:
    """Each bad value raises ConfigError naming the key, the value and where it came from."""
    path = tmp_path / "ric.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        load_config(path, environ=env)


def test_missing_file() -> None:
    """A config path that does not exist is named in the error."""
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Path("/nonexistent/ric.toml"), environ={})
