"""``ric xapp run``: run one xApp here, attached to a runtime elsewhere (northbound API)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from ric.cliutil import Parser, existing_file
from ric.eventloop import loop_factory

__all__ = ["add_command"]

log = logging.getLogger("ric.xapp.run")


def _target(text: str) -> str:
    """``HOST:PORT`` (or ``fd:N``, the socket the runtime hands the xApp processes it starts)."""
    if text.startswith("fd:"):
        if not text[3:].isdigit():
            raise argparse.ArgumentTypeError(f"{text!r}: fd: needs a file descriptor number")
        return text
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:36422)")
    return text


def add_command(sub: Any) -> None:
    """Add ``ric xapp run`` to the ``ric`` command's subparsers."""
    xapp = sub.add_parser(
        "xapp",
        help="run an xApp in this process, attached to a running runtime",
        description="Commands for xApps that live outside the runtime's process.",
    )
    xsub = xapp.add_subparsers(dest="xapp_command", metavar="ACTION", parser_class=Parser)
    xsub.required = True
    run = xsub.add_parser(
        "run",
        help="attach one xApp to a runtime over the northbound API",
        description="Load one xApp (an installed entry-point name, or module:Class) and run "
        "it here, attached to a running runtime over the northbound API (gRPC, "
        "proto/ric/xapp/v1): it gets its reports, sends its controls and sees its A1 "
        "policies as if it ran inside the runtime, and shows there in 'ric status'. If the "
        "stream breaks it reattaches with back-off and resumes its session (subscriptions "
        "kept, no report handled twice) within the runtime's [northbound] resume_window_s.",
        epilog="The runtime must listen for remote xApps: [northbound] port = 36422 (and "
        "token_file / [northbound.tls] when not on loopback). Exit status 0 when the runtime "
        "stopped the xApp, 1 when the attach was refused (the reason is printed), 2 for bad "
        "arguments. Example: ric xapp run mlb --connect 127.0.0.1:36422",
    )
    run.add_argument("xapp", metavar="NAME|MODULE:CLASS", help="the xApp to run")
    run.add_argument(
        "--connect",
        type=_target,
        required=True,
        metavar="HOST:PORT",
        help="the runtime's northbound address",
    )
    run.add_argument(
        "--token-file",
        type=existing_file,
        metavar="FILE",
        help="file holding the runtime's northbound bearer token",
    )
    run.add_argument(
        "--tls-ca", type=existing_file, metavar="FILE", help="connect over TLS, trusting this CA"
    )
    run.add_argument(
        "--tls-cert",
        type=existing_file,
        metavar="FILE",
        help="this xApp's certificate for mTLS (its CN or a SAN is the xApp's name)",
    )
    run.add_argument("--tls-key", type=existing_file, metavar="FILE", help="... and its key")
    run.add_argument(
        "--config",
        type=existing_file,
        metavar="FILE",
        help="the xApp's settings as a TOML or JSON file (checked by its Config)",
    )
    run.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="log level (default info)",
    )
    run.add_argument("--process-of-runtime", action="store_true", help=argparse.SUPPRESS)
    run.set_defaults(func=cmd_xapp_run)


def _settings(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    text = path.read_text()
    if path.suffix == ".json":
        data = json.loads(text)
    else:
        import tomllib

        data = tomllib.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the xApp's settings must be a table/object")
    return data


def cmd_xapp_run(args: argparse.Namespace) -> int:
    """Run ``args.xapp`` attached to the runtime at ``args.connect``."""
    from ric.errors import ConfigError, PluginError
    from ric.logs import setup_logging
    from ric.northbound.client import AttachError, ClientTls, XAppClient
    from ric.plugins import configure, load

    setup_logging(args.log_level)
    if args.connect.startswith("fd:") and not args.process_of_runtime:
        print(
            "ric xapp run: --connect fd:N is the socket the runtime hands the xApp processes "
            "it starts; attach to a runtime with --connect HOST:PORT",
            file=sys.stderr,
        )
        return 2
    if args.process_of_runtime:
        # Its records go to the runtime over the stream (and from there to the runtime's log);
        # printing them here too would show each twice on the runtime's inherited stderr.
        logging.getLogger("ric.xapp").propagate = False
    try:
        plugin = load(args.xapp)
        config = configure(plugin.cls, _settings(args.config)) if args.config else None
    except (PluginError, ConfigError, ValueError, OSError) as exc:
        print(f"ric xapp run: {exc}", file=sys.stderr)
        return 2
    token = ""
    if args.token_file is not None:
        token = Path(args.token_file).read_text().strip()
    tls = None
    if args.tls_ca is not None:
        tls = ClientTls(
            ca=Path(args.tls_ca).read_bytes(),
            cert=Path(args.tls_cert).read_bytes() if args.tls_cert else None,
            key=Path(args.tls_key).read_bytes() if args.tls_key else None,
        )
    client = XAppClient(
        plugin.cls,
        args.connect,
        config=config,
        token=token,
        tls=tls,
        from_runtime=args.process_of_runtime,
    )

    async def main() -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, client.stop)
        try:
            await client.run()
        except AttachError as exc:
            print(f"ric xapp run: {exc}", file=sys.stderr)
            return 1
        return 0

    # Like the runtime's, on uvloop when it is installed (ric.eventloop).
    with asyncio.Runner(loop_factory=loop_factory("auto")) as runner:
        return runner.run(main())
