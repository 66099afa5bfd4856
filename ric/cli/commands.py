"""The commands of ``ric`` that run things: ``run``, ``sim``, ``demo``, ``xapps``, ``certs``,
``audit verify`` and ``bench``.

Each takes the parsed arguments (:mod:`ric.cli.parser`) and returns the exit status; heavy
imports wait until a command runs, so ``ric --help`` stays quick.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ric.cliutil import EXIT_USAGE, run_async, table
from ric.errors import ConfigError
from ric.sdl import SdlError

__all__ = [
    "DEMO_SLICE_TARGETS",
    "DEMO_XAPPS",
    "cmd_audit_verify",
    "cmd_bench",
    "cmd_certs",
    "cmd_demo",
    "cmd_run",
    "cmd_sim",
    "cmd_xapps",
    "scenario_listing",
]

REPO_SEEDS = Path(__file__).resolve().parents[2] / "seeds"


def _default_scenario(name: str) -> Path:
    for folder in (Path.cwd() / "seeds", REPO_SEEDS):
        if (folder / name).is_file():
            return folder / name
    return REPO_SEEDS / name


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
    if getattr(args, "northbound", None):
        overrides["northbound.host"], overrides["northbound.port"] = args.northbound
    return load_config(args.config, overrides=overrides)


def _announce_http(components: Sequence[Any]) -> None:
    for component in components:
        if component.name == "http":
            print(
                f"ric: HTTP on {component.url} (/metrics, /healthz, /readyz, /api/v1)",
                file=sys.stderr,
                flush=True,
            )


def _privacy(config: Any) -> Any:
    from ric.privacy import Pseudonymizer

    p = config.privacy
    return Pseudonymizer.from_config(p.pseudonymize_ue_ids, p.key_file)


def cmd_run(args: argparse.Namespace) -> int:
    from ric.eventloop import kind
    from ric.logs import setup_logging
    from ric.plugins import load
    from ric.runtime import Runtime, tune_gc

    config = _config(args, {"trace.record": str(args.record)} if args.record else None)
    setup_logging(config.log.level, config.log.format, privacy=_privacy(config))
    plugins = [load(ref) for ref in [*config.xapps.load, *args.xapp]]

    async def serve() -> int:
        # HTTP and metrics, MQTT and the recorder come from the config, as for any embedder.
        runtime = Runtime.from_config(config, plugins)
        with contextlib.ExitStack() as stack:
            if config.e2.tls.enabled:  # failed handshakes are only in gRPC core's own log
                _tap_grpc_log(runtime.sensor, stack)
            async with runtime:
                tune_gc()
                return await announce_and_wait(runtime)

    async def announce_and_wait(runtime: Runtime) -> int:
        names = ", ".join(p.name for p in plugins) or "none"
        loop = kind(asyncio.get_running_loop())
        print(
            f"ric: E2 on {config.e2.host}:{runtime.port}, xApps: {names}, event loop: {loop}",
            file=sys.stderr,
            flush=True,
        )
        _announce_http(runtime.components)
        if runtime.northbound.port is not None:
            print(
                f"ric: remote xApps attach on {config.northbound.host}:{runtime.northbound.port}"
                " (ric xapp run NAME --connect HOST:PORT)",
                file=sys.stderr,
                flush=True,
            )
        if args.duration:
            await asyncio.sleep(args.duration)
        else:
            await runtime.wait_closed()
        return 0

    try:
        return run_async(serve, config.loop.implementation)
    except ValueError as exc:  # uvloop asked for and not installed
        print(f"ric run: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _tap_grpc_log(sensor: Any, stack: contextlib.ExitStack) -> None:
    """Count and log the TLS handshake failures gRPC's core prints on standard error."""
    from ric.e2.corelog import CoreLogTap

    loop = asyncio.get_running_loop()

    def failed(reason: str, detail: str) -> None:  # on the tap's thread
        loop.call_soon_threadsafe(sensor.e2_tls_failure, reason, detail)

    tap = CoreLogTap(failed)
    tap.start()
    stack.callback(tap.stop)


def cmd_sim(args: argparse.Namespace) -> int:
    from ric.logs import setup_logging
    from ric.sim import load_scenario, run_sim

    scenario = load_scenario(args.scenario or _default_scenario("demo.toml"))
    if args.list:
        print("\n".join(scenario_listing(scenario)))
        return 0
    setup_logging(args.log_level)

    async def simulate() -> int:
        await run_sim(
            scenario,
            args.connect,
            duration_s=args.duration,
            seed=args.seed,
            nodes=args.nodes,
            tls_ca=args.tls_ca,
            tls_dir=args.tls_dir,
        )
        return 0

    return run_async(simulate)


def scenario_listing(scenario: Any) -> list[str]:
    """The lines ``ric sim --list`` prints: each node with its vendor, cells and the controls
    it takes, then the slices (the ids xApps use: ``SlicePrbQuota(slice=...)``)."""
    from ric.actions import CellState, Handover, SlicePrbQuota
    from ric.ids import NodeId, NodeType, Plmn
    from ric.sim.profiles import VENDOR_PROFILES
    from ric.sim.scenario import cell_names

    kinds = {(a.style, a.action_id): a.kind for a in (Handover, SlicePrbQuota, CellState)}
    plmn = Plmn(scenario.plmn.mcc, scenario.plmn.mnc)
    nodes = [
        [
            str(NodeId(plmn, node.id, NodeType.GNB)),
            node.vendor,
            " ".join(cell_names(scenario.plmn, (node,))),
            ", ".join(
                kinds.get((a.style, a.action_id), f"generic {a.style}/{a.action_id}")
                for a in VENDOR_PROFILES[node.vendor].rc_actions
            ),
        ]
        for node in scenario.nodes
    ]
    ues: dict[str, int] = {}
    for group in scenario.ue_groups:
        ues[group.slice] = ues.get(group.slice, 0) + group.count
    slices = [
        [s.id, f"{s.min_pct}-{s.max_pct} %", f"{s.dedicated_pct} %", str(ues.get(s.id, 0))]
        for s in scenario.slices
    ]
    return [
        f"scenario {scenario.name}: {scenario.description}",
        "",
        *table(("NODE", "VENDOR", "CELLS", "CONTROLS"), nodes),
        "",
        *table(("SLICE", "PRB QUOTA", "DEDICATED", "UEs"), slices, right=(3,)),
    ]


DEMO_XAPPS = ("kpimon", "mlb", "slicesla", "anomaly")
"""The example xApps ``ric demo`` runs unless ``--xapp`` names others."""
DEMO_SLICE_TARGETS = {"2-000002": {"max_delay_ms": 5.0}}
"""slicesla's targets in the demo, unless the config sets ``[xapps.config.slicesla]``."""


def cmd_demo(args: argparse.Namespace) -> int:
    from ric.cli.demo import run_demo
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

    return run_async(demo)


def cmd_xapps(args: argparse.Namespace) -> int:
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
    print("\n".join(table(rows[0], rows[1:])))
    return 0


def cmd_certs(args: argparse.Namespace) -> int:
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


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from ric.audit import verify

    anchor = _sdl_anchor(args.anchor_sdl) if args.anchor_sdl else args.anchor
    try:
        result = verify(args.file, anchor)
    except OSError as exc:
        print(f"ric audit verify: error: cannot read {args.file}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(result.message(args.file))
    return result.status.value


def cmd_bench(args: argparse.Namespace) -> int:
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
