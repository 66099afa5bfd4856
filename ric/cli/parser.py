"""The argument tree of the ``ric`` command: every command, option and ``--help`` text.

The commands themselves are in :mod:`ric.cli.commands` and :mod:`ric.cli.status`;
``ric trace``/``ric replay``, ``ric policy`` and ``ric eval`` add their own parsers from their
packages. Converters shared by several commands are in :mod:`ric.cliutil`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ric.cli.commands import (
    cmd_audit_verify,
    cmd_bench,
    cmd_certs,
    cmd_demo,
    cmd_run,
    cmd_sim,
    cmd_xapps,
)
from ric.cli.status import cmd_status
from ric.cliutil import (
    LOG_LEVELS,
    Parser,
    add_http_auth_options,
    add_tls_client_options,
    address,
    endpoint_list,
    existing_file,
    http_url,
    int_list,
    positive_seconds,
)

__all__ = ["build_parser"]


def _add_runtime_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", type=existing_file, metavar="FILE", help="runtime configuration (TOML)"
    )
    p.add_argument(
        "--e2",
        type=address,
        metavar="HOST:PORT",
        help="where the E2 termination listens (default 127.0.0.1:36421)",
    )
    p.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        help="log level (default info)",
    )
    p.add_argument("--log-format", choices=("text", "json"), help="log line format (default text)")
    p.add_argument(
        "--northbound",
        type=address,
        metavar="HOST:PORT",
        help="let remote xApps attach here ('ric xapp run NAME --connect HOST:PORT'; as "
        "[northbound] host and port; off unless set, 36422 by convention)",
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--http",
        type=address,
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
    parser = Parser(
        prog="ric",
        description="A near-real-time RIC: E2 nodes connect over gRPC, Python xApps read their "
        "telemetry and control them.",
        epilog="Start with 'ric demo': the runtime, simulated base stations and example xApps.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
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
    run.add_argument(
        "--duration", type=positive_seconds, metavar="SECONDS", help="stop after this long"
    )
    run.add_argument(
        "--record",
        type=Path,
        metavar="FILE",
        help="record every E2 frame into this trace file (.gz: compressed) ([trace] record)",
    )
    run.set_defaults(func=cmd_run)

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
        type=existing_file,
        metavar="SCENARIO",
        help="scenario file (default seeds/demo.toml)",
    )
    sim.add_argument(
        "--connect",
        type=endpoint_list,
        default=("127.0.0.1:36421",),
        metavar="HOST:PORT[,HOST:PORT...]",
        help="the RIC's E2 address (default 127.0.0.1:36421), or several of one RIC's "
        "replicas: each node connects to the first and fails over to the next, round robin",
    )
    sim.add_argument(
        "--duration", type=positive_seconds, metavar="SECONDS", help="stop after this long"
    )
    sim.add_argument("--seed", type=int, help="random seed (default: the scenario's)")
    sim.add_argument("--nodes", type=int_list, metavar="N,N", help="run only these node numbers")
    sim.add_argument(
        "--list",
        action="store_true",
        help="print the scenario's nodes (vendor, cell ids, the controls each takes) and "
        "slice ids, and exit without connecting",
    )
    add_tls_client_options(sim)
    sim.add_argument("--log-level", choices=LOG_LEVELS, default="info")
    sim.set_defaults(func=cmd_sim)

    demo = sub.add_parser(
        "demo",
        help="runtime + simulator + example xApps in one command",
        description="Start the runtime, a simulated network of several vendors and the example "
        "xApps in one process, over real gRPC on loopback, and show a live view of nodes, cell "
        "KPIs and controls.",
    )
    _add_runtime_options(demo)
    demo.add_argument(
        "--scenario", type=existing_file, metavar="FILE", help="default seeds/demo.toml"
    )
    demo.add_argument(
        "--duration", type=positive_seconds, metavar="SECONDS", help="stop after this long"
    )
    demo.add_argument("--seed", type=int, help="random seed (default: the scenario's)")
    demo.add_argument(
        "--xapp",
        action="append",
        metavar="NAME|MODULE:CLASS",
        help="xApps to run instead of the examples (kpimon, mlb, slicesla with a 5 ms URLLC "
        "delay target, anomaly); repeatable",
    )
    demo.add_argument(
        "--refresh",
        type=positive_seconds,
        default=1.0,
        metavar="SECONDS",
        help="view refresh period",
    )
    demo.set_defaults(func=cmd_demo)

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
    xapps.set_defaults(func=cmd_xapps)

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
        type=http_url,
        metavar="URL",
        help="the runtime's HTTP address (default http://127.0.0.1:8080, or [http] host and "
        "port from --config and RIC_HTTP__* variables)",
    )
    status.add_argument(
        "--config", type=existing_file, metavar="FILE", help="take the address from this file"
    )
    status.add_argument(
        "--json", action="store_true", help="print the three answers as one JSON object"
    )
    add_http_auth_options(status)
    status.add_argument(
        "--timeout",
        type=positive_seconds,
        default=5.0,
        metavar="SECONDS",
        help="give up on an answer after this long (default 5)",
    )
    status.set_defaults(func=cmd_status)

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
    certs.set_defaults(func=cmd_certs)

    audit = sub.add_parser(
        "audit",
        help="check a control audit log",
        description="Work with the JSON Lines audit log the runtime writes when [audit] path is "
        "set. Each record carries the hash of the one before it.",
    )
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="ACTION", parser_class=Parser)
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
        "file", type=existing_file, metavar="FILE", help="the audit log (JSON Lines)"
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
        type=existing_file,
        metavar="CONFIG",
        help="check against the last anchor in the SDL this runtime config names "
        "(sqlite or redis; [ric_id] picks the runtime)",
    )
    verify.set_defaults(func=cmd_audit_verify)

    bench = sub.add_parser(
        "bench",
        help="run the performance suite against raw gRPC baselines",
        description="Measure ingest, the control loop, 1,000 nodes, fan-out, replay and "
        "replicas, each side by side with a baseline in the same run; the runtime and the load "
        "generators run in processes of their own, on loopback. Writes JSON and prints a table.",
    )
    bench.add_argument("--quick", action="store_true", help="a short, small run (about a minute)")
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
        help="run only these sections: ingest, control, scale, fanout, replay, cluster",
    )
    bench.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="also profile into DIR: the control loop's runtime CPU per stage (us per loop, "
        "in the table and the JSON) from py-spy samples, kept as collapsed stacks "
        "(control-<mode>.runtime.txt, and control-process.xapp-0.txt for a process xApp); "
        "cProfile stats of the runtime for ingest (ingest-<mode>.pstats)",
    )
    bench.set_defaults(func=cmd_bench)

    # Imported when a parser is built, not with this module: ric.eval and ric.trace load the
    # runtime, which a bare ``import ric.cli`` should not.
    from ric.a1.cli import add_command as add_policy_command
    from ric.cli.new import add_command as add_new_command
    from ric.cli.xapp import add_command as add_xapp_command
    from ric.eval.cli import add_command as add_eval_command
    from ric.trace.cli import add_commands as add_trace_commands

    add_trace_commands(sub)  # ric trace ..., ric replay
    add_policy_command(sub)  # ric policy ...
    add_eval_command(sub)  # ric eval
    add_new_command(sub)  # ric new xapp
    add_xapp_command(sub)  # ric xapp run
    return parser


def _anchor(text: str) -> Any:
    from ric.audit import Anchor

    try:
        return Anchor.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _bench_sections(text: str) -> tuple[str, ...]:
    from ric.bench import SECTIONS

    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [n for n in names if n not in SECTIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"{text!r} names no known section (known: {', '.join(SECTIONS)})"
        )
    return names
