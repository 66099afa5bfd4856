"""Entry point of a benchmark child process: ``python -m ric.bench._child '<json>'``.

The JSON names the role (a coroutine of :mod:`ric.bench.roles`), its arguments and the
deadline after which the child stops by itself. Kept apart from :mod:`ric.bench.proc` so that
running it as ``__main__`` does not import it twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from ric.bench import roles
from ric.bench.proc import Commands
from ric.eventloop import loop_factory


def main(argv: list[str]) -> int:
    """Run the role described by ``argv[0]`` until it is told to stop or its deadline."""
    spec = json.loads(argv[0])
    # A child is a program of its own: its logs go to stderr (the parent's temporary file).
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    role: Callable[[dict[str, Any], Commands], Awaitable[None]] = getattr(roles, spec["role"])
    commands = Commands(float(spec["deadline_s"]))
    args: dict[str, Any] = spec["args"]
    if spec.get("cpus"):
        # Before grpc starts its threads, so that they inherit the same cores.
        os.sched_setaffinity(0, spec["cpus"])
    if args.get("switch_interval_s"):
        # Experiment: how long a thread waits for the GIL before it asks for it.
        sys.setswitchinterval(float(args["switch_interval_s"]))

    async def run() -> None:
        try:
            await role(args, commands)
        except Exception as exc:
            commands.answer({"error": f"{type(exc).__name__}: {exc}"})
            raise

    # The runtime's default loop unless told (ric.eventloop); the raw baselines alike.
    with asyncio.Runner(loop_factory=loop_factory(args.get("loop", "auto"))) as runner:
        runner.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
