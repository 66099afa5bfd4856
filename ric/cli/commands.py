"""The ``ric`` command line: run the runtime, the simulator, the demo; list xApps; show the
status of a running runtime.

Every command has ``--help``. A bad argument or configuration value gets one line naming
the option or key and the problem, and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from ric.errors import ConfigError, PluginError
from ric.sdl import SdlError

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


def _http_url(text: str) -> str:
    if not text.startswith(("http://", "https://")) or len(text.split("://", 1)[1]) == 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an http:// URL, e.g. http://127.0.0.1:8080"
        )
    return text.rstrip("/")


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


def add_tls_client_options(parser: argparse.ArgumentParser) -> None:
    """--tls-ca / --tls-dir for commands whose nodes connect to a RIC (sim, replay)."""
    parser.add_argument(
        "--tls-ca",
        type=_existing_file,
        metavar="FILE",
        help="connect over TLS, verifying the RIC's certificate against this CA (PEM)",
    )
    parser.add_argument(
        "--tls-dir",
        type=Path,
        metavar="DIR",
        help="present each node's certificate, <node id>.pem/.key in DIR (as 'ric certs' writes)",
    )


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
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--http",
        type=_address,
        metavar="HOST:PORT",
        help="where the HTTP server (/metrics, /healthz, /readyz, /api/v1) listens "
        "(default 127.0.0.1:8080; port 0 picks a free one)",
    )
    group.add_argument(
        "--no-http",
        action="store_true",
        help="do not start the HTTP server (as [http] enabled = false)",
    )


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
    run.add_argument(
        "--record",
        type=Path,
        metavar="FILE",
        help="record every E2 frame into this trace file (.gz: compressed) ([trace] record)",
    )
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
    add_tls_client_options(sim)
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
        help="xApps to run instead of the examples (kpimon, mlb, slicesla with a 5 ms URLLC "
        "delay target, anomaly); repeatable",
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
    xapps.add_argument(
        "--pins",
        action="store_true",
        help="print the [xapps.pins] lines that pin the installed xApps (distribution, version "
        "and hash of their files)",
    )
    xapps.set_defaults(func=_cmd_xapps)

    status = sub.add_parser(
        "status",
        help="show the nodes and xApps of a running runtime",
        description="Ask a running runtime's HTTP API (GET /readyz, /api/v1/nodes and "
        "/api/v1/xapps) and print its readiness, its E2 nodes and its xApps as tables. The "
        "runtime serves HTTP unless started with --no-http or [http] enabled = false.",
        epilog="Exit status 0 when the runtime answered (ready or not), 1 when it cannot be "
        "reached. Example: ric status --url http://127.0.0.1:8080 --json",
    )
    status.add_argument(
        "--url",
        type=_http_url,
        metavar="URL",
        help="the runtime's HTTP address (default http://127.0.0.1:8080, or [http] host and "
        "port from --config and RIC_HTTP__* variables)",
    )
    status.add_argument(
        "--config", type=_existing_file, metavar="FILE", help="take the address from this file"
    )
    status.add_argument(
        "--json", action="store_true", help="print the three answers as one JSON object"
    )
    status.add_argument(
        "--timeout",
        type=_positive,
        default=5.0,
        metavar="SECONDS",
        help="give up on an answer after this long (default 5)",
    )
    status.set_defaults(func=_cmd_status)

    certs = sub.add_parser(
        "certs",
        help="make a DEVELOPMENT CA and certificates for mutual TLS on E2",
        description="Write a development CA, a server certificate for the runtime and one "
        "client certificate per node id (its subject and SAN are the node id, which the runtime "
        "checks against the setup). FOR DEVELOPMENT AND TESTS ONLY: the CA key is written "
        "unprotected next to the certificates.",
    )
    certs.add_argument(
        "--out",
        type=Path,
        default=Path("certs"),
        metavar="DIR",
        help="folder to write (default ./certs)",
    )
    certs.add_argument(
        "--nodes",
        default="gnb-001-01-1,gnb-001-01-2,gnb-001-01-3",
        metavar="ID,ID",
        help="node ids to make client certificates for (default: the demo's three)",
    )
    certs.add_argument(
        "--server-name",
        action="append",
        metavar="NAME",
        help="DNS name of the runtime in its certificate (repeatable; default localhost)",
    )
    certs.set_defaults(func=_cmd_certs)

    audit = sub.add_parser(
        "audit",
        help="check a control audit log",
        description="Work with the JSON Lines audit log the runtime writes when [audit] path is "
        "set. Each record carries the hash of the one before it.",
    )
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="ACTION", parser_class=_Parser)
    audit_sub.required = True
    verify = audit_sub.add_parser(
        "verify",
        help="check the hash chain and name the first broken record",
        description="Check that no record of an audit log was altered, removed, inserted or "
        "reordered, whether its last line was torn by a crash, and, against an anchor the "
        "runtime wrote (log line 'audit anchor COUNT:HEAD', MQTT <prefix>/audit/anchor, or "
        "the SDL), whether records were cut from its end. Exit status 0 when all is intact, "
        "1 at the first broken record (tampering, named), 3 for a torn last line only (a "
        "crash: 'ric run' moves it aside), 4 when records the anchor covers are missing, "
        "2 when the file or the anchor cannot be read. Records written after the last anchor "
        "and cut before the next one cannot be detected.",
    )
    verify.add_argument(
        "file", type=_existing_file, metavar="FILE", help="the audit log (JSON Lines)"
    )
    anchor = verify.add_mutually_exclusive_group()
    anchor.add_argument(
        "--anchor",
        type=_anchor,
        metavar="COUNT:HEAD",
        help="an anchor the runtime logged or published: its record COUNT must hash to HEAD",
    )
    anchor.add_argument(
        "--anchor-sdl",
        type=_existing_file,
        metavar="CONFIG",
        help="check against the last anchor in the SDL this runtime config names "
        "(sqlite or redis; [ric_id] picks the runtime)",
    )
    verify.set_defaults(func=_cmd_audit_verify)

    bench = sub.add_parser(
        "bench",
        help="run the performance suite against raw gRPC baselines",
        description="Measure ingest, the control loop, 1,000 nodes, fan-out and replay, each "
        "side by side with a raw grpc.aio baseline in the same run; the runtime and the load "
        "generators run in processes of their own, on loopback. Writes JSON and prints a table.",
    )
    bench.add_argument("--quick", action="store_true", help="a short, small run (about 30 s)")
    bench.add_argument(
        "--out",
        type=Path,
        default=Path("bench-results.json"),
        metavar="FILE",
        help="where the JSON results go (default bench-results.json)",
    )
    bench.add_argument(
        "--only",
        type=_bench_sections,
        metavar="NAME,...",
        help="run only these sections: ingest, control, scale, fanout, replay",
    )
    bench.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="also write cProfile stats of the runtime process (ingest, control) to DIR",
    )
    bench.set_defaults(func=_cmd_bench)

    from ric.trace.cli import add_commands as add_trace_commands  # ric trace ..., ric replay

    add_trace_commands(sub, _address, _run_async, add_tls_client_options)

    from ric.a1.cli import add_command as add_policy_command  # ric policy ...

    add_policy_command(sub, _http_url, _existing_file, _positive, _Parser)

    from ric.eval.cli import add_command as add_eval_command  # ric eval

    add_eval_command(sub, _run_async)
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
    if getattr(args, "http", None):
        overrides["http.host"], overrides["http.port"] = args.http
        overrides["http.enabled"] = True
    if getattr(args, "no_http", False):
        overrides["http.enabled"] = False
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


def _announce_http(components: Sequence[Any]) -> None:
    for component in components:
        if component.name == "http":
            print(
                f"ric: HTTP on {component.url} (/metrics, /healthz, /readyz, /api/v1)",
                file=sys.stderr,
                flush=True,
            )


def _add_mqtt(config: Any, sensors: list[Any], components: list[Any]) -> None:
    """Add the MQTT bridge, as a sensor and a component, when ``[mqtt] enabled``."""
    from ric.mqtt import mqtt_bridge

    bridge = mqtt_bridge(config)
    if bridge is not None:
        sensors.append(bridge)
        components.append(bridge)


def _privacy(config: Any) -> Any:
    from ric.privacy import Pseudonymizer

    p = config.privacy
    return Pseudonymizer.from_config(p.pseudonymize_ue_ids, p.key_file)


def _cmd_run(args: argparse.Namespace) -> int:
    from ric.http import observability
    from ric.logs import setup_logging
    from ric.plugins import load
    from ric.runtime import Runtime, tune_gc
    from ric.trace.recorder import recorder_from_config

    config = _config(args, {"trace.record": str(args.record)} if args.record else None)
    setup_logging(config.log.level, config.log.format, privacy=_privacy(config))
    plugins = [load(ref) for ref in [*config.xapps.load, *args.xapp]]
    sensors, components = observability(config)
    _add_mqtt(config, sensors, components)
    recorder = recorder_from_config(config)
    if recorder is not None:  # a sensor (it sees every E2 frame) and a component (the file)
        sensors, components = [*sensors, recorder], [*components, recorder]

    async def serve() -> int:
        runtime = Runtime(config, plugins, sensors=sensors, components=components)
        with contextlib.ExitStack() as stack:
            if config.e2.tls.enabled:  # failed handshakes are only in gRPC core's own log
                _tap_grpc_log(runtime.sensor, stack)
            async with runtime:
                tune_gc()
                return await announce_and_wait(runtime)

    async def announce_and_wait(runtime: Runtime) -> int:
        names = ", ".join(p.name for p in plugins) or "none"
        print(
            f"ric: E2 on {config.e2.host}:{runtime.port}, xApps: {names}",
            file=sys.stderr,
            flush=True,
        )
        _announce_http(components)
        if args.duration:
            await asyncio.sleep(args.duration)
        else:
            await runtime.wait_closed()
        return 0

    return _run_async(serve)


def _tap_grpc_log(sensor: Any, stack: contextlib.ExitStack) -> None:
    """Count and log the TLS handshake failures gRPC's core prints on standard error."""
    from ric.e2.corelog import CoreLogTap

    loop = asyncio.get_running_loop()

    def failed(reason: str, detail: str) -> None:  # on the tap's thread
        loop.call_soon_threadsafe(sensor.e2_tls_failure, reason, detail)

    tap = CoreLogTap(failed)
    tap.start()
    stack.callback(tap.stop)


def _cmd_sim(args: argparse.Namespace) -> int:
    from ric.logs import setup_logging
    from ric.sim import load_scenario, run_sim

    setup_logging(args.log_level)
    scenario = load_scenario(args.scenario or _default_scenario("demo.toml"))
    host, port = args.connect

    async def simulate() -> int:
        await run_sim(
            scenario,
            f"{host}:{port}",
            duration_s=args.duration,
            seed=args.seed,
            nodes=args.nodes,
            tls_ca=args.tls_ca,
            tls_dir=args.tls_dir,
        )
        return 0

    return _run_async(simulate)


DEMO_XAPPS = ("kpimon", "mlb", "slicesla", "anomaly")
"""The example xApps ``ric demo`` runs unless ``--xapp`` names others."""
DEMO_SLICE_TARGETS = {"2-000002": {"max_delay_ms": 5.0}}
"""slicesla's targets in the demo, unless the config sets ``[xapps.config.slicesla]``."""


def _cmd_demo(args: argparse.Namespace) -> int:
    from ric.demo import run_demo
    from ric.http import observability
    from ric.logs import setup_logging
    from ric.plugins import load
    from ric.sim import load_scenario

    config = _config(args)
    if not args.xapp and not args.scenario and "slicesla" not in config.xapps.config:
        # demo.toml's URLLC slice, with a delay target its busiest cell misses.
        config = _config(args, {"xapps.config.slicesla": {"targets": DEMO_SLICE_TARGETS}})
    # The live view shows nodes, KPIs and controls; logs below error level would only garble it.
    setup_logging(args.log_level or "error", config.log.format, privacy=_privacy(config))
    scenario = load_scenario(args.scenario or _default_scenario("demo.toml"))
    refs = args.xapp or list(DEMO_XAPPS)
    plugins = [load(ref) for ref in refs]
    sensors, components = observability(config)
    _add_mqtt(config, sensors, components)

    async def demo() -> int:
        await run_demo(
            config,
            plugins,
            scenario,
            duration_s=args.duration,
            seed=args.seed,
            refresh_s=args.refresh,
            sensors=sensors,
            components=components,
        )
        return 0

    return _run_async(demo)


def _cmd_xapps(args: argparse.Namespace) -> int:
    from ric.plugins import Plugin, discover, pin_of

    if args.pins:
        print("[xapps.pins]")
        for item in discover():
            if isinstance(item, Plugin) and item.distribution:
                print(f'{item.name} = "{pin_of(item)}"')
        return 0

    rows = [("NAME", "VERSION", "PACKAGE", "REPORTS", "CONTROLS", "A1 POLICY TYPES", "STATUS")]
    for item in discover():
        if isinstance(item, Plugin):
            cls = item.cls
            reports = "; ".join(
                f"{len(r.metrics)} metrics/{r.per}/{r.period_ms}ms" for r in cls.reports
            )
            controls = ", ".join(c.__name__ for c in cls.controls)
            policies = ", ".join(t.id for t in cls.policy_types)
            package = f"{item.distribution} {item.dist_version}".strip()
            rows.append(
                (
                    cls.name,
                    cls.version,
                    package,
                    reports or "-",
                    controls or "-",
                    policies or "-",
                    "ok",
                )
            )
        else:
            rows.append((item.plugin, "", "", "", "", "", f"error: {item.problem}"))
    if len(rows) == 1:
        print("no xApps installed (entry-point group ric.xapps)")
        return 0
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1]
        )
    return 0


class _Unreachable(Exception):
    """The runtime's HTTP API cannot be reached or does not answer as one."""


def _get_json(url: str, timeout: float) -> Any:
    """GET ``url`` and decode its JSON body, also for an error status (503 from /readyz)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
    try:
        return json.loads(body)
    except ValueError:
        raise _Unreachable(f"{url} did not answer JSON (is this a ric runtime?)") from None


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def render_status(url: str, ready: Any, nodes: Any, xapps: Any) -> str:
    """The text ``ric status`` prints for the answers of /readyz, /api/v1/nodes, /api/v1/xapps."""
    if ready.get("ready"):
        head = f"ric at {url}: ready ({len(ready.get('checks', []))} checks pass)"
    else:
        failed = [c for c in ready.get("checks", []) if not c.get("ok")]
        why = ", ".join(
            f"{c['name']} ({c['detail']})" if c.get("detail") else c["name"] for c in failed
        )
        head = f"ric at {url}: NOT READY: {why}"
    lines = [head, ""]
    node_rows = [
        [
            n["id"],
            n["vendor"],
            n["software_version"],
            str(len(n["cells"])),
            ", ".join(f["name"].removeprefix("ORAN-E2SM-") for f in n["ran_functions"]),
            f"{n['indication_rate_per_s']:.1f}" if n.get("connected", True) else "-",
            _duration(n["uptime_s"]) if n.get("connected", True) else "down",
        ]
        for n in nodes["nodes"]
    ]
    header = ["NODE", "VENDOR", "SOFTWARE", "CELLS", "RAN FUNCTIONS", "IND/S", "UP"]
    lines += _table(header, node_rows, {3, 5, 6}) if node_rows else ["(no E2 nodes connected)"]
    lines.append("")
    xapp_rows = [
        [
            x["name"],
            x["version"],
            x["state"],
            f"{x['queue_depth']}/{x['queue_capacity']}",
            str(x["delivered"]),
            str(x["dropped"]),
            str(x["restarts"]),
            f"{x['subscriptions']['active']}/{x['subscriptions']['total']}",
        ]
        for x in xapps["xapps"]
    ]
    header = ["XAPP", "VERSION", "STATE", "QUEUE", "REPORTS", "DROPPED", "RESTARTS", "SUBS"]
    lines += _table(header, xapp_rows, {3, 4, 5, 6, 7}) if xapp_rows else ["(no xApps loaded)"]
    return "\n".join(lines)


def _cmd_certs(args: argparse.Namespace) -> int:
    from ric.certs import DEV_MARK, write_dev_pki
    from ric.ids import NodeId

    nodes = [n for n in args.nodes.split(",") if n]
    for node in nodes:
        try:
            NodeId.parse(node)
        except ValueError as exc:
            raise ConfigError("--nodes", str(exc)) from None
    pki = write_dev_pki(args.out, nodes, server_names=args.server_name or ["localhost"])
    print(f"{DEV_MARK}: wrote {pki.folder}/ (ca.pem, server.pem/.key, one .pem/.key per node)")
    print(
        "runtime: [e2.tls] enabled = true, "
        f'cert = "{pki.server_cert}", key = "{pki.server_key}", client_ca = "{pki.ca}"'
    )
    return 0


def _anchor(text: str) -> Any:
    from ric.audit import Anchor

    try:
        return Anchor.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _sdl_anchor(config_file: Path) -> Any:
    """The last audit anchor in the SDL a runtime config names; ConfigError when none."""
    from ric.audit import read_anchor
    from ric.config import load_config
    from ric.sdl import from_config

    config = load_config(config_file)
    if config.sdl.backend == "memory":
        raise ConfigError(
            "--anchor-sdl",
            f"{config_file} keeps the SDL in memory: its anchors ended with the runtime; use "
            "--anchor COUNT:HEAD from the 'audit anchor' log line or MQTT",
        )
    backend = from_config(config.sdl)

    async def read() -> Any:
        async with backend:
            return await read_anchor(backend, config.ric_id)

    try:
        anchor = asyncio.run(read())
    except (ValueError, SdlError) as exc:  # exit status 2: the anchor cannot be read
        raise ConfigError("--anchor-sdl", f"{backend.describe()}: {exc}") from None
    if anchor is None:
        raise ConfigError(
            "--anchor-sdl",
            f"no audit anchor for ric_id {config.ric_id!r} in {backend.describe()}",
        )
    return anchor


def _cmd_audit_verify(args: argparse.Namespace) -> int:
    from ric.audit import verify

    anchor = _sdl_anchor(args.anchor_sdl) if args.anchor_sdl else args.anchor
    try:
        result = verify(args.file, anchor)
    except OSError as exc:
        print(f"ric audit verify: error: cannot read {args.file}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(result.message(args.file))
    return result.status.value


def _cmd_status(args: argparse.Namespace) -> int:
    url = args.url
    if url is None:
        from ric.config import load_config

        settings = load_config(args.config).http
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "", "::") else settings.host
        url = f"http://{host}:{settings.port}"
    try:
        ready = _get_json(f"{url}/readyz", args.timeout)
        nodes = _get_json(f"{url}/api/v1/nodes", args.timeout)
        xapps = _get_json(f"{url}/api/v1/xapps", args.timeout)
    except (urllib.error.URLError, OSError, http.client.HTTPException, _Unreachable) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, ConnectionRefusedError):
            reason = "connection refused"
        print(
            f"ric status: error: cannot reach the runtime at {url}: {reason} "
            "(is 'ric run' running, with HTTP on?)",
            file=sys.stderr,
        )
        return 1
    if args.json:
        print(json.dumps({"url": url, "readiness": ready, **nodes, **xapps}, indent=2))
    else:
        print(render_status(url, ready, nodes, xapps))
    return 0


def _bench_sections(text: str) -> tuple[str, ...]:
    from ric.bench import SECTIONS

    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [n for n in names if n not in SECTIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"{text!r} names no known section (known: {', '.join(SECTIONS)})"
        )
    return names


def _cmd_bench(args: argparse.Namespace) -> int:
    from ric.bench import BenchConfig, format_table, run_bench, write_results

    changes: dict[str, Any] = {"profile_dir": args.profile}
    if args.only:
        changes["only"] = args.only
    cfg = BenchConfig.quick(**changes) if args.quick else BenchConfig.full(**changes)
    from ric.bench.proc import ChildError

    try:
        results = run_bench(cfg, progress=lambda line: print(line, file=sys.stderr, flush=True))
    except ChildError as exc:
        print(f"ric bench: error: {exc}", file=sys.stderr)
        return 1
    write_results(results, args.out)
    print(format_table(results))
    print(f"\nresults: {args.out}")
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
    except (OSError, SdlError) as exc:  # SdlError: the configured store cannot be opened
        print(f"ric {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return result


if __name__ == "__main__":
    sys.exit(main())
