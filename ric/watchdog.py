"""The event-loop watchdog: how late the loop is, how long it stalled, and what held it.

Every E2 stream, xApp, HTTP request and exporter shares one asyncio loop, so one piece of work
that does not yield holds them all. The watchdog makes that visible and lets the rest of the
runtime tell the RIC's own stalls from a silent peer::

    dog = LoopWatchdog(config.loop, sensor)
    dog.start()                       # on the running loop; Runtime does this
    ...
    stalled = stalled_since(t)        # seconds the loop could not run since loop time t
    dog.stop()

Two parts, sharing nothing but plain attributes (reads and writes of one attribute are atomic
under the GIL, so no lock is ever needed):

- a beat on the loop (a ``call_at`` callback, no task) every ``tick_ms``: it measures its own
  lateness (the loop's lag) and reports it to the sensors (``Sensor.loop_lag``), and keeps the
  stalls it saw for :func:`stalled_since`;
- a monitor thread that wakes a few times per ``stall_warning_ms`` and, when the beat is
  overdue by more than ``stall_warning_ms``, logs ONE warning per stall while it is happening,
  naming what runs: the activity label the running code set (:data:`ACTIVITY`), the running
  task, and the innermost frame of project or xApp code in the loop thread's stack. When the
  beat comes back, the stall's duration is logged (``Sensor.loop_stalled``).

A C call that holds the GIL (a backtracking ``re`` match, a huge ``json.dumps``) keeps the
monitor thread from running until it returns; the thread then samples the stack at once, which
still shows the Python code that made the call, and the beat logs the duration.

Times are the real monotonic clock (the loop's own ``time()``), never an injected virtual clock:
the runtime starts a watchdog only when it runs on real time.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import os
import sys
import sysconfig
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import TYPE_CHECKING

from ric.errors import StateError

if TYPE_CHECKING:
    from ric.config import LoopSettings
    from ric.types import Sensor

__all__ = [
    "ACTIVITY",
    "Activity",
    "LoopWatchdog",
    "activity",
    "add_project_package",
    "current",
    "stalled_since",
]

log = logging.getLogger(__name__)

_STALL_HISTORY = 16_384
"""Stalls kept for ``stalled_since`` (about 1 MB): even with every 10 ms beat late, close to
three minutes, the longest E2 silence window (three 60 s keep-alive intervals)."""


class Activity:
    """What the loop is running, as ``(task, label)``: set by the code that runs a unit of
    work (the host around an xApp handler, the E2 reader around one node's message, the HTTP
    server around a request) and restored after it. A label whose task is not the running one
    is stale and ignored. Hot paths store a prepared tuple (one attribute write each way)."""

    __slots__ = ("current",)

    def __init__(self) -> None:
        self.current: tuple[asyncio.Task[object] | None, str] = (None, "")


ACTIVITY = Activity()
"""The process's one activity slot (there is one event loop thread per runtime process)."""


@contextlib.contextmanager
def activity(label: str) -> Iterator[None]:
    """Label what the current task runs inside the block, for the watchdog's warnings (for
    paths that are not per-message hot: an HTTP request, an A1 operation)."""
    previous = ACTIVITY.current
    ACTIVITY.current = (asyncio.current_task(), label)
    try:
        yield
    finally:
        ACTIVITY.current = previous


_running: dict[asyncio.AbstractEventLoop, LoopWatchdog] = {}


def current(loop: asyncio.AbstractEventLoop | None = None) -> LoopWatchdog | None:
    """The watchdog running on ``loop`` (default: the running loop), or None."""
    if loop is None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
    return _running.get(loop)


def stalled_since(since: float) -> float:
    """Seconds the running loop was stalled since loop time ``since`` (0.0 when no watchdog
    runs on it, so callers keep their plain behaviour without one)."""
    dog = current()
    return 0.0 if dog is None else dog.stalled_since(since)


class LoopWatchdog:
    """Measures the running loop's lag and stalls, and names what held it (see the module)."""

    def __init__(self, settings: LoopSettings, sensor: Sensor) -> None:
        self.tick_s = settings.tick_ms / 1000.0
        self.warn_s = settings.stall_warning_ms / 1000.0
        self._sensor = sensor
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._loop_thread = 0
        self._due = 0.0
        """When the next beat is due (loop time); written by the loop, read by the monitor."""
        self._stalls: collections.deque[tuple[float, float]] = collections.deque(
            maxlen=_STALL_HISTORY
        )
        """(start, end) of every beat that came later than a tick, oldest first."""
        self._warned_for = -1.0
        """The ``_due`` of the stall the monitor warned about (one warning per stall)."""
        self._sampled = ""
        """What the monitor saw running during the stall it warned about."""
        self.longest_s = 0.0
        """The longest stall seen since start, seconds."""
        self.beats = 0
        self.stalls = 0
        """Stalls longer than ``stall_warning_ms`` since start."""

    def __repr__(self) -> str:
        state = "running" if self._loop is not None else "stopped"
        return f"LoopWatchdog({state}, tick {self.tick_s * 1000:g} ms)"

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start beating on the running loop and start the monitor thread."""
        if self._loop is not None:
            raise StateError("LoopWatchdog.start: already running")
        loop = asyncio.get_running_loop()
        if loop in _running:
            raise StateError("LoopWatchdog.start: another watchdog already runs on this loop")
        self._loop = loop
        self._loop_thread = threading.get_ident()
        _running[loop] = self
        self._due = loop.time() + self.tick_s
        self._handle = loop.call_at(self._due, self._beat)
        self._stop.clear()
        self._thread = threading.Thread(target=self._monitor, name="ric-loop-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the beat and the monitor thread (waits for the thread; it never blocks)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._loop is not None:
            _running.pop(self._loop, None)
            self._loop = None
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    # -- on the loop --------------------------------------------------------------------------

    def _beat(self) -> None:
        loop = self._loop
        if loop is None:
            return
        now = loop.time()
        due = self._due
        lag = now - due
        if lag < 0.0:
            lag = 0.0
        self.beats += 1
        self._sensor.loop_lag(lag)
        if lag > self.tick_s:
            self._stalls.append((due, now))
            if lag > self.longest_s:
                self.longest_s = lag
            if lag > self.warn_s:
                self._stall_ended(lag, due)
        self._due = now + self.tick_s
        self._handle = loop.call_at(self._due, self._beat)

    def _stall_ended(self, lag: float, due: float) -> None:
        self.stalls += 1
        if self._warned_for == due:
            what = self._sampled
            log.info("event loop stall over: the loop was blocked %.0f ms (%s)", lag * 1e3, what)
        else:  # the monitor could not run during it (a C call held the GIL): say so once here
            what = "not sampled: the loop thread held the GIL until it ended"
            log.warning(
                "event loop stalled %.0f ms (over %.0f ms; %s)", lag * 1e3, self.warn_s * 1e3, what
            )
        self._sensor.loop_stalled(lag, what)

    def stalled_since(self, since: float) -> float:
        """Seconds of loop stall between loop time ``since`` and now, including a stall that
        is still going on (the beat is overdue): the time the loop could not run."""
        loop = self._loop
        if loop is None:
            return 0.0
        now = loop.time()
        total = 0.0
        for start, end in reversed(self._stalls):
            if end <= since:
                break
            total += end - max(start, since)
        overdue = now - max(self._due, since)  # the beat has not run yet: the loop was held
        if overdue > self.tick_s:
            total += overdue
        return total

    def longest_since(self, since: float) -> float:
        """The longest single stall between loop time ``since`` and now, seconds (one still
        going on counts as far as it has come)."""
        loop = self._loop
        if loop is None:
            return 0.0
        longest = 0.0
        for start, end in reversed(self._stalls):
            if end <= since:
                break
            longest = max(longest, end - max(start, since))
        overdue = loop.time() - max(self._due, since)
        return max(longest, overdue if overdue > self.tick_s else 0.0)

    # -- the monitor thread -------------------------------------------------------------------

    def _monitor(self) -> None:
        period = min(self.warn_s / 4.0, 0.05)
        clock = time.monotonic  # the loop's time() is time.monotonic() (default selector loop)
        while not self._stop.wait(period):
            due = self._due
            overdue = clock() - due
            if overdue > self.warn_s and self._warned_for != due:
                self._sampled = self._describe()
                self._warned_for = due
                log.warning(
                    "event loop stalled for %.0f ms so far (over %.0f ms): %s",
                    overdue * 1e3,
                    self.warn_s * 1e3,
                    self._sampled,
                )

    def _describe(self) -> str:
        """What the loop thread runs now: activity label, task, innermost project frame."""
        parts: list[str] = []
        task, label = ACTIVITY.current
        running: asyncio.Task[object] | None = None
        if self._loop is not None:
            with contextlib.suppress(Exception):  # read from another thread: best effort
                running = asyncio.current_task(self._loop)
        if label and task is running:
            parts.append(label)
        if running is not None:
            parts.append(f"task {running.get_name()}")
        frame = sys._current_frames().get(self._loop_thread)
        if frame is not None:
            parts.append(_frames(frame))
        return "; ".join(parts) or "nothing identifiable"


_STDLIB_DIRS = tuple(
    os.path.normcase(os.path.realpath(sysconfig.get_paths()[k])) + os.sep
    for k in ("stdlib", "platstdlib")
)
_SITE_DIRS = tuple(
    os.path.normcase(os.path.realpath(sysconfig.get_paths()[k])) + os.sep
    for k in ("purelib", "platlib")
)
_OWN_FILE = os.path.normcase(os.path.realpath(__file__))
_PROJECT_PACKAGES = {"ric"}


def add_project_package(module: str) -> None:
    """Count the top-level package of ``module`` as project code even when it is installed
    (the runtime adds each loaded xApp's), so warnings name its frames, not a library's."""
    _PROJECT_PACKAGES.add(module.partition(".")[0])
    _is_library.cache_clear()


@functools.lru_cache(maxsize=4096)
def _is_library(filename: str) -> bool:
    """Standard library and installed third-party code (not ours, not a loaded xApp's)."""
    if filename.startswith("<"):
        return True
    path = os.path.normcase(os.path.realpath(filename))
    if path == _OWN_FILE:
        return True
    for site in _SITE_DIRS:
        if path.startswith(site):
            top = path[len(site) :].split(os.sep, 1)[0]
            return top not in _PROJECT_PACKAGES
    return path.startswith(_STDLIB_DIRS)


def _where(frame: FrameType) -> str:
    code = frame.f_code
    return f"{code.co_qualname} ({_short(code.co_filename)}:{frame.f_lineno})"


def _short(filename: str) -> str:
    with contextlib.suppress(ValueError):
        rel = os.path.relpath(filename)
        if not rel.startswith(".."):
            return rel
    return filename


def _frames(frame: FrameType) -> str:
    """``in <innermost project frame>`` and, when a library runs below it, that frame too."""
    innermost = frame
    f: FrameType | None = frame
    while f is not None:
        if not _is_library(f.f_code.co_filename):
            text = f"in {_where(f)}"
            if f is not innermost:
                text += f", inside {_where(innermost)}"
            return text
        f = f.f_back
    return f"in {_where(innermost)}"
