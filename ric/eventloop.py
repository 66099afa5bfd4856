"""Which event loop the RIC's processes run on: uvloop when it is installed, else asyncio's.

Chosen by measurement (README, Performance): in A/B runs on these 2-core machines uvloop took
the runtime's CPU per control loop down by about 6 % with xApps on the runtime's loop and 12 %
with xApps in their own threads (whose loops use it too), and ingest into a thread-mode xApp
up by 3 % to 20 % (the figure moves with the machine's load). It is a dependency on every platform it builds for, and optional in
the code: where it cannot be imported, ``auto`` falls back to asyncio's loop.

``[loop] implementation`` picks it for ``ric run``: ``auto`` (the default), ``asyncio`` or
``uvloop`` (an error when it is not installed). The other commands (``ric sim``, ``ric xapp
run``, ...) use ``auto``.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from typing import Literal

__all__ = ["LoopChoice", "kind", "loop_factory", "same_kind"]

LoopChoice = Literal["auto", "asyncio", "uvloop"]

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def loop_factory(choice: LoopChoice = "auto") -> LoopFactory | None:
    """What ``asyncio.Runner(loop_factory=...)`` should make for ``choice``; None: asyncio's
    own loop. ValueError naming the setting when ``uvloop`` is asked for and not installed."""
    if choice == "asyncio":
        return None
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError as exc:
        if choice == "uvloop":
            raise ValueError(
                f"loop.implementation = 'uvloop', but uvloop cannot be imported ({exc}); "
                "install it or use 'auto' or 'asyncio'"
            ) from None
        return None
    factory: LoopFactory = uvloop.new_event_loop
    return factory


def kind(loop: asyncio.AbstractEventLoop) -> str:
    """``uvloop`` or ``asyncio``: what ``loop`` is (for logs, status and the bench)."""
    return "uvloop" if type(loop).__module__.split(".")[0] == "uvloop" else "asyncio"


def same_kind(loop: asyncio.AbstractEventLoop | None) -> LoopFactory | None:
    """A factory of loops of ``loop``'s kind (for a thread that should run like the runtime),
    None for asyncio's own."""
    if loop is None or kind(loop) == "asyncio":
        return None
    return loop_factory("uvloop")
