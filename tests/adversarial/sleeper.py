"""An xApp written as a new author might: a blocking ``time.sleep`` inside ``on_report``.

Loaded by ``module:Class`` reference (``tests.adversarial.sleeper:Sleeper``) into a ``ric
run`` subprocess beside GapWatch, to show what a blocking call costs in each isolation mode.
"""

from __future__ import annotations

import time

from ric import KpmReport, Report, XApp


class Sleeper(XApp):
    """Sleeps ``sleep_s`` (blocking its thread) on its first ``times`` reports."""

    name = "sleeper"
    reports = [Report("RRU.PrbUsedDl", period_ms=200, per="cell")]

    class Config(XApp.Config):
        """How long and how often to block."""

        sleep_s: float = 5.0
        times: int = 1

    config: Config
    _slept = 0

    async def on_report(self, report: KpmReport) -> None:
        if self._slept < self.config.times:
            self._slept += 1
            time.sleep(self.config.sleep_s)  # noqa: ASYNC251  # the point: a blocking call
