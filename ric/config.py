"""Runtime configuration: a TOML file, then environment overrides, validated by pydantic.

Environment variables ``RIC_<SECTION>__<KEY>`` override the file, for example
``RIC_E2__PORT=36500`` or ``RIC_XAPPS__LOAD='["kpimon"]'`` (values are read as TOML values,
falling back to plain strings). Every error names the key and the problem.

.. code-block:: toml

    ric_id = "ric"

    [e2]                      # the E2 termination (gRPC)
    host = "127.0.0.1"
    port = 36421
    keep_alive_s = 1.0

    [log]
    level = "info"            # debug | info | warning | error
    format = "text"           # text | json

    [xapps]                   # which xApps run, and how they are hosted
    load = ["kpimon"]         # entry-point names or module:Class references
    queue_size = 256

    [xapps.config.kpimon]     # one xApp's own settings, checked by its Config schema
    print_every_s = 2.0
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ric.errors import ConfigError

__all__ = ["E2Settings", "LogSettings", "RuntimeConfig", "XAppsSettings", "load_config"]

ENV_PREFIX = "RIC_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class E2Settings(_Section):
    """The E2 termination: where it listens and how it watches nodes."""

    host: str = "127.0.0.1"
    port: int = Field(36421, ge=0, le=65535)
    keep_alive_s: float = Field(1.0, gt=0, le=60, description="keep-alive interval asked of nodes")
    setup_timeout_s: float = Field(5.0, gt=0, description="time a new stream has to set up")
    error_burst: int = Field(20, ge=1, description="bad messages tolerated at once per node")
    error_refill_per_s: float = Field(1.0, ge=0, description="bad messages tolerated per second")


class LogSettings(_Section):
    """Logging: level and line format."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"


class XAppsSettings(_Section):
    """Which xApps run and how they are hosted."""

    load: list[str] = Field(default_factory=list, description="entry-point names or module:Class")
    queue_size: int | None = Field(None, ge=1, description="reports an xApp may have waiting")
    control_timeout_s: float = Field(1.0, gt=0, description="default control timeout")
    restart_min_s: float = Field(0.1, gt=0)
    restart_max_s: float = Field(30.0, gt=0)
    max_restarts: int | None = Field(None, ge=0)
    config: dict[str, dict[str, Any]] = Field(default_factory=dict)


class RuntimeConfig(_Section):
    """The whole runtime configuration."""

    ric_id: str = "ric"
    e2: E2Settings = E2Settings()
    log: LogSettings = LogSettings()
    xapps: XAppsSettings = XAppsSettings()


def _env_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """Merge ``RIC_A__B=value`` variables into ``data``; returns key -> variable name."""
    origin: dict[str, str] = {}
    for var, text in sorted(environ.items()):
        if not var.startswith(ENV_PREFIX) or "__" not in var:
            continue
        path = [p.lower() for p in var[len(ENV_PREFIX) :].split("__")]
        if not all(path):
            raise ConfigError(var, "environment variable name has an empty part")
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(".".join(path), f"{var} sets a key inside a non-table value")
            node = child
        node[path[-1]] = _env_value(text)
        origin[".".join(path)] = var
    return origin


def _key(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_config(
    path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> RuntimeConfig:
    """Read ``path`` (if given), apply ``RIC_*`` environment variables, then ``overrides``
    (dotted keys, e.g. ``{"e2.port": 0}``), and validate. Raises ConfigError naming the key."""
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError("--config", f"file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("--config", f"{path} is not valid TOML: {exc}") from None
    origin = _apply_env(data, os.environ if environ is None else environ)
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
        origin[dotted] = "command line"
    try:
        return RuntimeConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = _key(tuple(err["loc"]))
        where = origin.get(key, source)
        got = f", got {err['input']!r}" if err["type"] != "missing" and "input" in err else ""
        raise ConfigError(key, f"{err['msg'].lower()}{got} (from {where})") from None
