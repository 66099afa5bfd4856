"""The xApp SDK: declare what you need as data, handle reports in async methods.

::

    class LoadBalancer(XApp):
        \"\"\"Moves UEs off cells whose downlink PRB use stays high.\"\"\"

        name = "mlb"
        reports = [Report("RRU.PrbUsedDl", "RRU.PrbAvailDl", period_ms=1000, per="cell")]
        controls = [Handover]

        class Config(XApp.Config):
            prb_high: float = 0.85

        config: Config

        async def on_report(self, report: KpmReport) -> None:
            used = report["RRU.PrbUsedDl"] / report["RRU.PrbAvailDl"]
            ...
            outcome = await self.control(Handover(ue="17", serving_cell=..., target_cell=...))

The runtime subscribes to the declared reports on every node that can serve them, delivers
them through a bounded queue, and restarts the xApp with back-off when a handler raises.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from ric.actions import ControlAction, ControlOutcome
from ric.ids import CellId
from ric.model import NodeInfo
from ric.report import EntityKind, KpmReport
from ric.types import Clock

__all__ = ["Report", "XApp", "XAppContext", "xapp"]

Per = Literal["cell", "ue", "slice"]
_METRIC = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*$")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


@dataclass(frozen=True, slots=True, init=False)
class Report:
    """A report an xApp needs: TS 28.552 metric names, a period, and what the rows are.

    ``per="cell"`` asks for one row per cell (KPM style 1), ``per="slice"`` one row per slice
    of each cell (style 1 with the slice label), ``per="ue"`` one row per UE (styles 2-5,
    the node's best). ``cells`` limits the report to those cells (text ids); empty means all.
    """

    metrics: tuple[str, ...]
    period_ms: int
    per: Per
    cells: tuple[str, ...]

    def __init__(
        self, *metrics: str, period_ms: int = 1000, per: Per = "cell", cells: Sequence[str] = ()
    ) -> None:
        if not metrics:
            raise ValueError("Report needs at least one metric name, e.g. Report('RRU.PrbUsedDl')")
        for m in metrics:
            if not isinstance(m, str) or not _METRIC.match(m):
                raise ValueError(f"Report metric {m!r} is not a measurement name")
        if len(set(metrics)) != len(metrics):
            raise ValueError(f"Report names a metric twice: {list(metrics)}")
        if not isinstance(period_ms, int) or period_ms <= 0:
            raise ValueError(f"Report period_ms must be a positive integer, got {period_ms!r}")
        if per not in ("cell", "ue", "slice"):
            raise ValueError(f"Report per must be 'cell', 'ue' or 'slice', got {per!r}")
        for c in cells:
            CellId.parse(c)
        object.__setattr__(self, "metrics", tuple(metrics))
        object.__setattr__(self, "period_ms", period_ms)
        object.__setattr__(self, "per", per)
        object.__setattr__(self, "cells", tuple(cells))

    @property
    def entity_kind(self) -> EntityKind:
        """The kind of rows the report has."""
        return {"cell": EntityKind.CELL, "ue": EntityKind.UE, "slice": EntityKind.SLICE}[self.per]


class XAppContext(Protocol):
    """What the host gives an xApp instance; xApp code uses the XApp methods instead."""

    name: str
    log: logging.LoggerAdapter[logging.Logger]

    @property
    def clock(self) -> Clock:
        """The clock the xApp's time and timers run on."""
        ...

    async def control(self, action: ControlAction, timeout: float) -> ControlOutcome:
        """Send a control; resolves with its outcome."""
        ...

    def nodes(self) -> Mapping[str, NodeInfo]:
        """The connected nodes."""
        ...

    def spawn(self, coro: Awaitable[None], name: str) -> None:
        """Run a task for this instance's lifetime."""
        ...


class XApp:
    """Base class of xApps. Override the class attributes and the hooks you need.

    Class attributes (declared as data, checked at load):

    - ``name``: unique, lower case, ``[a-z][a-z0-9_-]*``;
    - ``version``: shown by ``ric xapps`` and the status API;
    - ``reports``: the ``Report`` declarations the runtime subscribes for;
    - ``controls``: the control action classes the xApp may send;
    - ``Config``: a pydantic model of the xApp's settings (``XApp.Config`` subclass);
    - ``queue_size``: how many reports may wait; beyond that the oldest is dropped.

    Hooks are all ``async``: ``on_start``, ``on_stop``, ``on_node_up``, ``on_node_down``,
    ``on_report``.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "0.0.0"
    reports: ClassVar[Sequence[Report]] = ()
    controls: ClassVar[Sequence[type[ControlAction]]] = ()
    queue_size: ClassVar[int] = 256

    class Config(BaseModel):
        """Settings of an xApp; subclass it and add fields with defaults."""

        model_config = ConfigDict(extra="forbid", frozen=True)

    config: Config

    def __init__(self, context: XAppContext, config: XApp.Config) -> None:
        self.config = config
        self._context = context
        self.log = context.log

    # -- what xApp code calls -----------------------------------------------------------

    async def control(self, action: ControlAction, *, timeout: float = 1.0) -> ControlOutcome:
        """Send ``action`` to the node that owns its cell and wait for the outcome.

        Never raises for a refused or failed control: the outcome says acknowledged, failed
        (with the node's cause), timed out, node not connected or not supported.
        """
        return await self._context.control(action, timeout)

    def nodes(self) -> Mapping[str, NodeInfo]:
        """The connected E2 nodes, by text id."""
        return self._context.nodes()

    def every(self, interval_s: float, fn: Callable[[], Awaitable[None]]) -> None:
        """Call ``fn`` every ``interval_s`` seconds while this xApp runs (an exception in it
        restarts the xApp like one in a handler)."""
        if interval_s <= 0:
            raise ValueError(f"every(): interval_s must be positive, got {interval_s}")
        clock = self._context.clock

        async def tick() -> None:
            while True:
                await clock.sleep(interval_s)
                await fn()

        self._context.spawn(tick(), f"{self._context.name}.every({interval_s:g})")

    def now(self) -> float:
        """Current Unix time in seconds (virtual under the test harness)."""
        return self._context.clock.time()

    # -- hooks ----------------------------------------------------------------------------

    async def on_start(self) -> None:
        """Called when the xApp starts (and after each restart)."""

    async def on_stop(self) -> None:
        """Called when the xApp stops."""

    async def on_node_up(self, node: NodeInfo) -> None:
        """Called when an E2 node completes setup."""

    async def on_node_down(self, node: NodeInfo) -> None:
        """Called when an E2 node's session ends."""

    async def on_report(self, report: KpmReport) -> None:
        """Called for each report of the declared subscriptions."""


ReportHandler = Callable[[XApp, KpmReport], Awaitable[None]]


def xapp(
    name: str,
    *,
    reports: Sequence[Report] = (),
    controls: Sequence[type[ControlAction]] = (),
    config: type[XApp.Config] = XApp.Config,
    version: str = "0.0.0",
) -> Callable[[ReportHandler], type[XApp]]:
    """Make an xApp from one async report handler ``fn(app, report)``::

    @xapp("printer", reports=[Report("RRU.PrbUsedDl")])
    async def printer(app: XApp, report: KpmReport) -> None:
        app.log.info("%s", report["RRU.PrbUsedDl"])
    """

    def wrap(fn: ReportHandler) -> type[XApp]:
        async def on_report(self: XApp, report: KpmReport) -> None:
            await fn(self, report)

        attrs: dict[str, Any] = {
            "name": name,
            "version": version,
            "reports": tuple(reports),
            "controls": tuple(controls),
            "Config": config,
            "on_report": on_report,
            "__doc__": fn.__doc__,
            "__module__": fn.__module__,
            "__qualname__": fn.__qualname__,
        }
        return type(fn.__name__, (XApp,), attrs)

    return wrap
