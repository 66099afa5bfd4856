"""The ``ric`` command line: run the runtime, the simulator, the demo; list xApps.

Every command has ``--help``. A bad argument or configuration value gets one line naming
the option or key and the problem, and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from ric.errors import ConfigError, PluginError

__all__ = ["main"]

REPO_SEEDS = Path(__file__).resolve().parent.parent / "seeds"
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that names the problem and points to --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT, e.g. 127.0.0.1:36421")
    return host, int(port)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 seconds")
    return value


def _node_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of node numbers"
        ) from None


def _existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"file {text!r} does not exist")
    return path


def _default_scenario(name: str) -> Path:
    for folder in (Path.cwd() / "seeds", REPO_SEEDS):
        if (folder / name).is_file():
            return folder / name
    return REPO_SEEDS / name


def _add_runtime_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", type=_existing_file, metavar="FILE", help="runtime configuration (TOML)"
    )
    p.add_argument(
        "--e2",
        type=_address,
        metavar="HOST:PORT",
        help="where the E2 termination listens (default 127.0.0.1:36421)",
    )
    p.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        help="log level (default info)",
    )
    p.add_argument("--log-format", choices=("text", "json"), help="log line format (default text)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``ric`` command."""
    parser = _Parser(
        prog="ric",
        description="A near-real-time RIC: E2 nodes connect over gRPC, Python xApps read their "
        "telemetry and control them.",
        epilog="Start with 'ric demo': the runtime, simulated base stations and example xApps.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    run = sub.add_parser(
        "run",
        help="run the RIC runtime with xApps",
        description="Run the RIC: serve E2 on gRPC and host the configured xApps until stopped "
        "(Ctrl-C or SIGTERM shut it down gracefully). Settings come from --config, then RIC_* "
        "environment variables (e.g. RIC_E2__PORT=36500), then these options.",
    )
    _add_runtime_options(run)
    run.add_argument(
        "--xapp",
        action="append",
        default=[],
        metavar="NAME|MODULE:CLASS",
        help="load this xApp (an installed entry-point name or module:Class); repeatable",
    )
    run.add_argument("--duration", type=_positive, metavar="SECONDS", help="stop after this long")
    run.set_defaults(func=_cmd_run)

    sim = sub.add_parser(
        "sim",
        help="run simulated E2 nodes against a RIC",
        description="Run simulated base stations of several vendor profiles from a scenario "
        "file; each connects to the RIC as an E2 node, reports KPM measurements and applies "
        "controls.",
    )
    sim.add_argument(
        "scenario",
        nargs="?",
        type=_existing_file,
        metavar="SCENARIO",
        help="scenario file (default seeds/demo.toml)",
    )
    sim.add_argument(
        "--connect",
        type=_address,
        default=("127.0.0.1", 36421),
        metavar="HOST:PORT",
        help="the RIC's E2 address (default 127.0.0.1:36421)",
    )
    sim.add_argument("--duration", type=_positive, metavar="SECONDS", help="stop after this long")
    sim.add_argument("--seed", type=int, help="random seed (default: the scenario's)")
    sim.add_argument("--nodes", type=_node_list, metavar="N,N", help="run only these node numbers")
    sim.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    sim.set_defaults(func=_cmd_sim)

    demo = sub.add_parser(
        "demo",
        help="runtime + simulator + example xApps in one command",
        description="Start the runtime, a simulated network of several vendors and the example "
        "xApps in one process, over real gRPC on loopback, and show a live view of nodes, cell "
        "KPIs and controls.",
    )
    _add_runtime_options(demo)
    demo.add_argument(
        "--scenario", type=_existing_file, metavar="FILE", help="default seeds/demo.toml"
    )
    demo.add_argument("--duration", type=_positive, metavar="SECONDS", help="stop after this long")
    demo.add_argument("--seed", type=int, help="random seed (default: the scenario's)")
    demo.add_argument(
        "--xapp",
        action="append",
        metavar="NAME|MODULE:CLASS",
        help="xApps to run instead of the examples (kpimon, mlb); repeatable",
    )
    demo.add_argument(
        "--refresh", type=_positive, default=1.0, metavar="SECONDS", help="view refresh period"
    )
    demo.set_defaults(func=_cmd_demo)

    xapps = sub.add_parser(
        "xapps",
        help="list installed xApps and whether they load",
        description="List the xApps installed in the ric.xapps entry-point group, with what "
        "each declares; a plugin that cannot load is listed with the reason.",
    )
    xapps.set_defaults(func=_cmd_xapps)
    return parser


def _config(args: argparse.Namespace, extra: dict[str, Any] | None = None) -> Any:
    from ric.config import load_config

    overrides: dict[str, Any] = dict(extra or {})
    if getattr(args, "e2", None):
        overrides["e2.host"], overrides["e2.port"] = args.e2
    if getattr(args, "log_level", None):
        overrides["log.level"] = args.log_level
    if getattr(args, "log_format", None):
        overrides["log.format"] = args.log_format
    return load_config(args.config, overrides=overrides)


def _run_async(factory: Callable[[], Awaitable[int]]) -> int:
    """Run a coroutine; SIGTERM and Ctrl-C cancel it, which shuts down gracefully."""

    async def runner() -> int:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            return await factory()
        except asyncio.CancelledError:
            return 0

    try:
        return asyncio.run(runner())
    except KeyboardInterrupt:
        return 130


def _cmd_run(args: argparse.Namespace) -> int:
    from ric.logs import setup_logging
    from ric.plugins import load
    from ric.runtime import Runtime

    config = _config(args)
    setup_logging(config.log.level, config.log.format)
    plugins = [load(ref) for ref in [*config.xapps.load, *args.xapp]]

    async def serve() -> int:
        async with Runtime(config, plugins) as runtime:
            names = ", ".join(p.name for p in plugins) or "none"
            print(
                f"ric: E2 on {config.e2.host}:{runtime.port}, xApps: {names}",
                file=sys.stderr,
                flush=True,
            )
            if args.duration:
                await asyncio.sleep(args.duration)
            else:
                await runtime.wait_closed()
        return 0

    return _run_async(serve)


def _cmd_sim(args: argparse.Namespace) -> int:
    from ric.logs import setup_logging
    from ric.sim import load_scenario, run_sim

    setup_logging(args.log_level)
    scenario = load_scenario(args.scenario or _default_scenario("demo.toml"))
    host, port = args.connect

    async def simulate() -> int:
        await run_sim(
            scenario, f"{host}:{port}", duration_s=args.duration, seed=args.seed, nodes=args.nodes
        )
        return 0

    return _run_async(simulate)


def _cmd_demo(args: argparse.Namespace) -> int:
    from ric.demo import run_demo
    from ric.logs import setup_logging
    from ric.plugins import load
    from ric.sim import load_scenario

    config = _config(args)
    # The live view shows nodes, KPIs and controls; logs below error level would only garble it.
    setup_logging(args.log_level or "error", config.log.format)
    scenario = load_scenario(args.scenario or _default_scenario("demo.toml"))
    refs = args.xapp or ["kpimon", "mlb"]
    plugins = [load(ref) for ref in refs]

    async def demo() -> int:
        await run_demo(
            config,
            plugins,
            scenario,
            duration_s=args.duration,
            seed=args.seed,
            refresh_s=args.refresh,
        )
        return 0

    return _run_async(demo)


def _cmd_xapps(args: argparse.Namespace) -> int:
    from ric.plugins import Plugin, discover

    rows = [("NAME", "VERSION", "PACKAGE", "REPORTS", "CONTROLS", "STATUS")]
    for item in discover():
        if isinstance(item, Plugin):
            cls = item.cls
            reports = "; ".join(
                f"{len(r.metrics)} metrics/{r.per}/{r.period_ms}ms" for r in cls.reports
            )
            controls = ", ".join(c.__name__ for c in cls.controls)
            package = f"{item.distribution} {item.dist_version}".strip()
            rows.append((cls.name, cls.version, package, reports or "-", controls or "-", "ok"))
        else:
            rows.append((item.plugin, "", "", "", "", f"error: {item.problem}"))
    if len(rows) == 1:
        print("no xApps installed (entry-point group ric.xapps)")
        return 0
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1]
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ric`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except (ConfigError, PluginError) as exc:
        print(f"ric {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"ric {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return result


if __name__ == "__main__":
    sys.exit(main())
