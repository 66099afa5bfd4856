"""The ``ric`` command line: run the runtime, the simulator, the demo; list xApps; show the
status of a running runtime.

Every command has ``--help``. A bad argument or configuration value gets one line naming
the option or key and the problem, and exit status 2.

Where things are: :mod:`ric.cli.parser` the argument tree and its help texts,
:mod:`ric.cli.commands` the commands that run things, :mod:`ric.cli.status` ``ric status``,
:mod:`ric.cli.new` ``ric new xapp`` (from the templates in ``ric/templates/``);
the trace, policy and eval commands live in their packages; what several commands share
(converters, tables, the HTTP client) in :mod:`ric.cliutil`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ric.cli.parser import build_parser
from ric.cli.status import render_status
from ric.cliutil import EXIT_FAILED, EXIT_USAGE
from ric.errors import ConfigError, PluginError
from ric.sdl import SdlError

__all__ = ["build_parser", "main", "render_status"]


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
        return EXIT_FAILED
    return result
