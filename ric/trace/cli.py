"""The trace commands of ``ric``: ``ric trace info``, ``ric trace import-csv``, ``ric replay``.

``ric.cli`` registers them with :func:`add_commands`; heavy imports wait until a command runs.
Errors are one line naming the file and the problem: a missing, foreign or too-new trace and a
bad argument exit with status 2, a runtime that cannot be reached (or a trace damaged part
way, after what could be read was shown) with 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ric.cliutil import (
    EXIT_FAILED,
    EXIT_USAGE,
    LOG_LEVELS,
    Parser,
    add_tls_client_options,
    endpoint_list,
    existing_path,
    non_negative_seconds,
    run_async,
)

if TYPE_CHECKING:
    from ric.trace.replay import ReplayProgress

__all__ = ["add_commands", "parse_speed"]

_SHOW_SKIPPED = 20


def parse_speed(text: str) -> float | None:
    """``--speed``: a positive factor of real time, or ``max`` (None: as fast as possible)."""
    if text.strip().lower() == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a speed: give a positive number (2 = twice real time) or 'max'"
        )
    return value


def add_commands(sub: Any) -> None:
    """Add ``trace`` (``info``, ``import-csv``) and ``replay`` to the ``ric`` subparsers."""
    trace = sub.add_parser(
        "trace",
        help="inspect traces and make them from datasets",
        description="Work with E2 traces (recorded with 'ric run --record FILE'): summarise "
        "one, or import per-UE KPI tables (CSV) as one.",
    )
    tsub = trace.add_subparsers(dest="trace_command", metavar="SUBCOMMAND", parser_class=Parser)
    tsub.required = True

    info = tsub.add_parser(
        "info",
        help="summarise a trace",
        description="Read a trace once and summarise it: source, time span, frames by "
        "message type, nodes (vendors, cells, RAN functions), UEs, slices, measurements, "
        "controls and file size.",
        epilog="Exit status 0, or 1 when the trace is damaged part way (the intact part is "
        "summarised), 2 when it is not a readable trace.",
    )
    info.add_argument("file", type=existing_path, metavar="FILE", help="the trace")
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    info.set_defaults(func=_cmd_info)

    imp = tsub.add_parser(
        "import-csv",
        help="turn per-UE KPI tables (CSV) into a trace",
        description="Read per-UE KPI tables and write a trace whose nodes (one per base "
        "station folder) report the mapped TS 28.552 measurements per UE, per slice and per "
        "cell. The ready mapping 'coloran' reads the ColO-RAN dataset's <IMSI>_metrics.csv "
        "files (bs<N>/slices_bs<N>/); --mapping FILE.toml gives your own. Rows that cannot "
        "be parsed are reported with file and line, and skipped.",
        epilog="Example: ric trace import-csv coloran/rome_static_medium/sched0/tr0/exp1 "
        "-o exp1.trace.gz",
    )
    imp.add_argument(
        "sources", nargs="+", type=existing_path, metavar="SOURCE", help="CSV files or folders"
    )
    imp.add_argument(
        "-o", "--output", required=True, type=Path, metavar="FILE", help="the trace to write"
    )
    imp.add_argument(
        "--mapping",
        default="coloran",
        metavar="NAME|FILE",
        help="a ready mapping (coloran) or a TOML mapping file (default coloran)",
    )
    imp.add_argument(
        "--period-ms",
        type=int,
        metavar="MS",
        help="reporting period the rows are binned into (default: the mapping's)",
    )
    imp.set_defaults(func=_cmd_import)

    replay = sub.add_parser(
        "replay",
        help="play a trace's nodes into a running runtime",
        description="Play the nodes recorded in a trace into a running runtime over gRPC: each "
        "sets up as recorded, answers the subscriptions the xApps make with the recorded "
        "measurements at their periods, and answers controls by --controls. At the end, a "
        "summary of what the xApps sent.",
        epilog="Example: ric replay run.trace.gz --connect 127.0.0.1:36421 --speed max",
    )
    replay.add_argument("file", type=existing_path, metavar="FILE", help="the trace")
    replay.add_argument(
        "--connect",
        type=endpoint_list,
        default=("127.0.0.1:36421",),
        metavar="HOST:PORT[,HOST:PORT...]",
        help="the RIC's E2 address (default 127.0.0.1:36421), or several of one RIC's "
        "replicas: each node connects to the first and fails over to the next, round robin",
    )
    replay.add_argument(
        "--speed",
        type=parse_speed,
        default=1.0,
        metavar="X|max",
        help="trace seconds per real second, or max for as fast as the runtime takes it "
        "(default 1)",
    )
    replay.add_argument(
        "--controls",
        choices=("ack", "recorded"),
        default="ack",
        help="answer controls: acknowledge all (ack), or as the node did in the trace "
        "(recorded); default ack",
    )
    replay.add_argument(
        "--settle",
        type=non_negative_seconds,
        default=0.3,
        metavar="SECONDS",
        help="after nodes set up and at the end, wait until the RIC is this long quiet "
        "(default 0.3)",
    )
    replay.add_argument(
        "--timeout",
        type=non_negative_seconds,
        default=5.0,
        metavar="SECONDS",
        help="give up on reaching the RIC (and on each node's setup) after this long (default 5)",
    )
    replay.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_tls_client_options(replay)
    replay.add_argument("--log-level", choices=LOG_LEVELS, default="warning")
    replay.set_defaults(func=_cmd_replay)


def _error(command: str, message: object, status: int = EXIT_USAGE) -> int:
    print(f"ric {command}: error: {message}", file=sys.stderr)
    return status


def _cmd_info(args: argparse.Namespace) -> int:
    from ric.trace.format import TraceError
    from ric.trace.index import scan

    try:
        index = scan(args.file)
    except TraceError as exc:
        return _error("trace info", exc)
    if args.json:
        print(json.dumps(index.to_dict(), indent=2))
    else:
        print(index.render())
    if index.error is not None:
        return _error("trace info", index.error, EXIT_FAILED)
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from ric.errors import ConfigError
    from ric.trace.csvimport import CsvImportError, SkippedRow, import_csv, load_mapping

    try:
        mapping = load_mapping(args.mapping)
    except ConfigError as exc:
        return _error("trace import-csv", exc)
    if args.period_ms is not None:
        if not 1 <= args.period_ms <= 3_600_000:
            return _error("trace import-csv", f"--period-ms {args.period_ms} is not 1..3600000")
        mapping = mapping.model_copy(update={"period_ms": args.period_ms})
    shown = 0

    def skipped(row: SkippedRow) -> None:
        nonlocal shown
        shown += 1
        if shown <= _SHOW_SKIPPED:
            print(f"ric trace import-csv: {row}", file=sys.stderr)

    try:
        result = import_csv(args.sources, args.output, mapping, on_skip=skipped)
    except CsvImportError as exc:
        return _error("trace import-csv", exc, EXIT_FAILED)
    except OSError as exc:
        return _error("trace import-csv", exc, EXIT_FAILED)
    if shown > _SHOW_SKIPPED:
        print(
            f"ric trace import-csv: ... and {shown - _SHOW_SKIPPED} more rows skipped",
            file=sys.stderr,
        )
    print(
        f"{result.path}: {result.rows:,} rows of {len(result.files)} files "
        f"(mapping {result.mapping}), {len(result.nodes)} base stations, {len(result.ues)} UEs, "
        f"{len(result.slices)} slices, {result.duration_s:.1f} s, {result.frames:,} frames"
        + (f"; {len(result.skipped)} rows skipped" if result.skipped else "")
    )
    return 0


class _ProgressView:
    """A progress bar on a terminal, plain lines at each tenth otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.next_tenth = 1
        self.drawn = False

    def __call__(self, p: ReplayProgress) -> None:
        speed = f"x{p.speed:,.1f}" if p.wall_s > 0 else "x-"
        counts = f"nodes {p.nodes_up}  reports {p.reports:,}  controls {p.controls:,}"
        if self.tty:
            width = 30
            done = round(p.fraction * width)
            bar = "#" * done + "." * (width - done)
            self.stream.write(
                f"\r[{bar}] {p.fraction:4.0%}  {p.position_s:,.1f}/{p.duration_s:,.1f} s  "
                f"{speed}  {counts}\x1b[K"
            )
            self.stream.flush()
            self.drawn = True
            return
        while p.fraction * 10 >= self.next_tenth and self.next_tenth <= 10:
            self.stream.write(
                f"ric replay: {self.next_tenth * 10}% ({p.position_s:,.1f} of "
                f"{p.duration_s:,.1f} s), {speed}, {counts}\n"
            )
            self.stream.flush()
            self.next_tenth += 1

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def _cmd_replay(args: argparse.Namespace) -> int:
    from ric.logs import setup_logging
    from ric.trace.format import TraceError
    from ric.trace.index import scan
    from ric.trace.replay import ReplayError, replay

    setup_logging(args.log_level)
    try:
        index = scan(args.file)
    except TraceError as exc:
        return _error("replay", exc)
    view = _ProgressView(sys.stderr)
    outcome: dict[str, Any] = {}

    async def play() -> int:
        try:
            result = await replay(
                index,
                args.connect,
                speed=args.speed,
                controls=args.controls,
                settle_s=args.settle,
                connect_timeout_s=args.timeout,
                progress=view,
                tls_ca=args.tls_ca,
                tls_dir=args.tls_dir,
            )
        except ReplayError as exc:
            view.close()
            return _error("replay", exc, EXIT_FAILED)
        view.close()
        outcome["result"] = result
        return 0

    status = run_async(play)
    result = outcome.get("result")
    if result is None:
        return status
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.render())
    return EXIT_FAILED if result.errors else status
