"""``ric eval``: the command line of :mod:`ric.eval` (``ric.cli`` adds it to ``ric``)."""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

from ric.cliutil import LOG_LEVELS, positive_seconds, run_async
from ric.errors import ConfigError

__all__ = ["add_command"]

_POLICIES = ("first-wins", "priority", "reject-both")


def _scenario_path(text: str) -> Path:
    path = Path(text)
    if path.is_file():
        return path
    repo = Path(__file__).resolve().parents[2] / path
    if not path.is_absolute() and repo.is_file():
        return repo
    raise argparse.ArgumentTypeError(f"scenario file {text!r} does not exist")


def _names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"{text!r} names no xApp, e.g. mlb or mlb,kpimon")
    return names


def _seeds(text: str) -> list[int]:
    parts = [part.strip() for part in text.split(",") if part.strip()]
    try:
        seeds = [int(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integer seeds, e.g. 1,2,3"
        ) from None
    if not seeds or any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(f"{text!r} needs one or more seeds >= 0, e.g. 1,2,3")
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"{text!r} repeats a seed")
    return seeds


def parse_setting(text: str) -> tuple[str, str, Any]:
    """``XAPP.KEY=VALUE`` as (xapp, key, value); the value is read as TOML (``70``,
    ``true``, ``"text"``, ``[1, 2]``), and taken as a plain string if it is not TOML."""
    name, sep, raw = text.partition("=")
    xapp, dot, key = name.strip().partition(".")
    if not sep or not dot or not xapp or not key or not raw.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not XAPP.KEY=VALUE, e.g. mlb.high_pct=70")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return xapp, key.strip(), value


def add_command(sub: Any) -> None:
    """Add ``ric eval`` to the ``ric`` sub-command parsers ``sub``."""
    p = sub.add_parser(
        "eval",
        help="measure what xApps do to a simulated network, against a run without them",
        description="For each seed, run a scenario on the virtual clock twice, with no xApp at "
        "all (baseline) and with the given xApps, measure both from the simulated world's "
        "ground truth every tick, and report per run and over seeds: UE throughput (mean, 5th "
        "percentile), cell PRB use (peak, 95th percentile, busiest cell), slice SLA "
        "violations, handovers, ping-pongs, radio link failures, active cell-hours, controls "
        "by outcome and conflicts, with the paired difference and whether it is beyond the "
        "seed-to-seed noise.",
        epilog="Example: ric eval seeds/hotspot.toml --xapps mlb --seeds 1,2,3 --duration 300 "
        "--plot eval.png. A difference is beyond noise when a paired t-test over the seeds "
        "rejects 'no effect' at 5 % (two or more seeds). Exit status 0 after a report, 2 for "
        "a bad argument, scenario or xApp.",
    )
    p.add_argument(
        "scenario",
        type=_scenario_path,
        metavar="SCENARIO",
        help="scenario file, e.g. seeds/demo.toml",
    )
    p.add_argument(
        "--xapps",
        type=_names,
        required=True,
        metavar="NAME[,NAME...]",
        help="the xApps to evaluate together: installed entry-point names or module:Class",
    )
    p.add_argument(
        "--seeds",
        type=_seeds,
        default=[1, 2, 3],
        metavar="N[,N...]",
        help="random seeds; each gives a baseline run and a run with the xApps (default 1,2,3)",
    )
    p.add_argument(
        "--duration",
        type=positive_seconds,
        metavar="SECONDS",
        help="simulated seconds per run (default: the scenario's duration_s, else 300)",
    )
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="runtime configuration (TOML, as for 'ric run'): [xapps.config.<name>] settings and "
        "[conflicts] policy, priorities and windows",
    )
    p.add_argument(
        "--set",
        dest="settings",
        type=parse_setting,
        action="append",
        default=[],
        metavar="XAPP.KEY=VALUE",
        help="an xApp setting, e.g. mlb.high_pct=70 (value read as TOML); repeatable; wins "
        "over --config",
    )
    p.add_argument(
        "--conflicts",
        choices=_POLICIES,
        help="conflict arbiter policy (default: --config's [conflicts] policy, else first-wins)",
    )
    p.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="write a PNG of the KPIs over time (first seed)",
    )
    p.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="table for people (default), json for machines (schema in ric.eval.report)",
    )
    p.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="error",
        help="log level of the runtime during the runs (default error)",
    )
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args: argparse.Namespace) -> int:
    from ric.config import load_config
    from ric.eval.plot import write_plot
    from ric.eval.report import render_table, to_json
    from ric.eval.runner import evaluate
    from ric.logs import setup_logging
    from ric.plugins import configure, load
    from ric.sim.scenario import load_scenario

    # Everything that can be wrong is checked before the first run.
    scenario = load_scenario(args.scenario)
    plugins = [load(name) for name in args.xapps]
    names = {p.name for p in plugins}
    xapp_config: dict[str, dict[str, Any]] = {}
    overrides: dict[str, Any] = {}
    if args.conflicts:
        overrides["conflicts.policy"] = args.conflicts
    if args.config is not None and not args.config.is_file():
        raise ConfigError("--config", f"file {str(args.config)!r} does not exist")
    config = load_config(args.config, environ={}, overrides=overrides)
    for name, settings in config.xapps.config.items():
        if name in names:
            xapp_config[name] = dict(settings)
    for xapp, key, value in args.settings:
        if xapp not in names:
            raise ConfigError(
                "--set", f"{xapp}.{key}: {xapp!r} is not among --xapps ({', '.join(sorted(names))})"
            )
        xapp_config.setdefault(xapp, {})[key] = value
    for plugin in plugins:
        if plugin.name in xapp_config:
            configure(plugin.cls, xapp_config[plugin.name])
    if args.plot is not None and not args.plot.parent.is_dir():
        raise ConfigError("--plot", f"folder {str(args.plot.parent)!r} does not exist")

    setup_logging(args.log_level)

    def progress(line: str) -> None:
        print(f"ric eval: {line}", file=sys.stderr, flush=True)

    async def run() -> int:
        ev = await evaluate(
            scenario,
            plugins,
            seeds=args.seeds,
            duration_s=args.duration,
            config=config,
            xapp_config=xapp_config,
            progress=progress,
        )
        ev.source = str(args.scenario)
        plot = None
        if args.plot is not None:
            plot = str(write_plot(ev, args.plot))
        if args.format == "json":
            print(json.dumps(to_json(ev, plot), indent=2, allow_nan=False))
        else:
            print(render_table(ev, plot))
        return 0

    return run_async(run)
