"""xApps the northbound tests run in other processes or attach remotely: importable by name."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from ric import KpmReport, NodeInfo, Report, XApp
from ric.a1.policy import PolicyEvent, PolicyStatus, PolicyType
from ric.actions import Handover, SlicePrbQuota

SLA = PolicyType(
    "nb-test-sla",
    {"type": "object", "required": ["max_pct"], "properties": {"max_pct": {"type": "integer"}}},
    name="northbound test SLA",
)


class Counter(XApp):
    """Counts reports and node events in its own SDL namespace, so the runtime can see them."""

    name = "nbcounter"
    reports = [Report("RRU.PrbUsedDl", "RRU.PrbAvailDl", period_ms=100, per="cell")]
    controls = [Handover, SlicePrbQuota]
    policy_types = [SLA]

    class Config(XApp.Config):
        quota_max: int = 80

    config: Config

    async def on_start(self) -> None:
        self.seen: list[KpmReport] = []
        self.ups: list[str] = []
        self.policies: list[PolicyEvent] = []
        self.outcomes: list[str] = []
        self.handled = self.metrics.counter("reports_handled", "reports handled", ["node"])
        self.rows = self.metrics.gauge("last_rows", "rows in the last report")

    async def on_node_up(self, node: NodeInfo) -> None:
        self.ups.append(str(node.id))
        await self.sdl.set("ups", self.ups)

    async def on_report(self, report: KpmReport) -> None:
        self.seen.append(report)
        self.handled.labels(node=report.node).inc()
        self.rows.set(len(report))
        await self.sdl.set("reports", len(self.seen))
        if len(self.seen) == 3:
            self.log.warning(
                "three reports handled, sending a quota"
            )  # one control per instance, through the whole path
            cell = report.entity_ids[0]
            outcome = await self.control(
                SlicePrbQuota(cell_id=cell, slice="1-000001", max_pct=self.config.quota_max)
            )
            self.outcomes.append(outcome.kind.value)
            await self.sdl.set("outcomes", self.outcomes)

    async def on_policy(self, event: PolicyEvent) -> PolicyStatus | None:
        self.policies.append(event)
        await self.sdl.set("policies", [f"{e.kind}:{e.policy_id}" for e in self.policies])
        return PolicyStatus(enforced=True)


class Sleeper(XApp):
    """Blocks its whole thread in its first report (time.sleep), as a careless xApp would."""

    name = "nbsleeper"
    reports = [Report("RRU.PrbUsedDl", period_ms=100, per="cell")]

    async def on_report(self, report: KpmReport) -> None:
        n = (await self.sdl.get("reports", 0)) + 1
        await self.sdl.set("reports", n)
        if n == 2:
            time.sleep(5)  # noqa: ASYNC251 - the careless blocking call under test


class Crasher(XApp):
    """Sends controls, then dies of SIGSEGV in its third report (a native crash)."""

    name = "nbcrasher"
    reports = [Report("RRU.PrbUsedDl", period_ms=100, per="cell")]
    controls = [SlicePrbQuota]

    async def on_report(self, report: KpmReport) -> None:
        n = (await self.sdl.get("reports", 0)) + 1
        await self.sdl.set("reports", n)
        starts = await self.sdl.get("pids", [])
        if os.getpid() not in starts:
            await self.sdl.set("pids", [*starts, os.getpid()])
        if len(starts) <= 1 and n % 3 == 0:
            cell = report.entity_ids[0]
            asyncio.get_running_loop().create_task(
                self.control(SlicePrbQuota(cell_id=cell, slice="1-000001", max_pct=70))
            )
            await asyncio.sleep(0.02)  # the control reaches the runtime; its outcome cannot
            os.kill(os.getpid(), signal.SIGSEGV)


class Slow(XApp):
    """Takes 0.3 s per report with a queue of 4: the runtime must drop, and say so."""

    name = "nbslow"
    queue_size = 4
    reports = [Report("RRU.PrbUsedDl", period_ms=100, per="cell")]

    async def on_start(self) -> None:
        self.handled = 0

    async def on_report(self, report: KpmReport) -> None:
        await asyncio.sleep(0.3)
        self.handled += 1
