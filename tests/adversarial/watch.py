"""An xApp the adversarial tests load into the runtime under attack: it writes down when each
report arrives, so a test can see from outside whether a well-behaved node kept reporting.

It is loaded by ``module:Class`` reference (``tests.adversarial.watch:GapWatch``) into a
``ric run`` subprocess; each report becomes one line ``<unix time> <node id> <rows>`` in the
file its config names (line-buffered: a few bytes per report, far below what would disturb
the loop it is measuring).
"""

from __future__ import annotations

import time
from typing import IO

from ric import KpmReport, Report, SlicePrbQuota, XApp

PERIOD_MS = 200
"""The report period the watcher subscribes with; the tests allow gaps of two periods."""


class GapWatch(XApp):
    """Records the arrival time of every cell report from every node."""

    name = "gapwatch"
    reports = [Report("RRU.PrbUsedDl", period_ms=PERIOD_MS, per="cell")]
    controls = [SlicePrbQuota]
    queue_size = 10_000

    class Config(XApp.Config):
        """Where the arrival lines go; and, for the audit tests, how often to send a control."""

        path: str
        quota_every_s: float = 0.0
        """Every this many seconds, a slice PRB quota to the first cell of a report (0: none)."""

    config: Config

    _out: IO[str] | None = None
    _last_control = 0.0

    async def on_start(self) -> None:
        self._out = self._open()

    def _open(self) -> IO[str]:
        return open(self.config.path, "a", buffering=1)  # open for the xApp's life

    async def on_stop(self) -> None:
        if self._out is not None:
            self._out.close()

    async def on_report(self, report: KpmReport) -> None:
        assert self._out is not None
        now = time.time()
        self._out.write(f"{now:.6f} {report.node} {len(report)}\n")
        every = self.config.quota_every_s
        if every > 0 and now - self._last_control >= every and len(report):
            self._last_control = now
            action = SlicePrbQuota(cell_id=report.entity_ids[0], slice="1-000001", max_pct=90)
            await self.control(action, timeout=1.0)
