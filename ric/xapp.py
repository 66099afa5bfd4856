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
            outcome = await self.control(Handover(ue="17", cell_id=..., target_cell=...))

The runtime subscribes to the declared reports on every node that can serve them, delivers
them through a bounded queue, and restarts the xApp with back-off when a handler raises.
"""

from __future__ import annotations

import enum
import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from ric.a1.policy import PolicyEvent, PolicyStatus, PolicyType
from ric.actions import Conflict, ControlAction, ControlOutcome
from ric.ids import CellId
from ric.model import Cause, NodeInfo
from ric.report import EntityKind, KpmReport
from ric.sdl import Namespace
from ric.types import Clock, Metrics

__all__ = [
    "MAX_PUBLISH_BYTES",
    "PublishRefused",
    "Report",
    "ReportState",
    "SubscriptionStatus",
    "XApp",
    "XAppContext",
    "check_topic_suffix",
    "encode_payload",
    "xapp",
]

Per = Literal["cell", "ue", "slice"]
_METRIC = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*$")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
MAX_PUBLISH_BYTES = 256 * 1024
"""The largest payload ``XApp.publish`` accepts, once encoded, unless ``[xapps]
max_publish_bytes`` says otherwise."""


def check_topic_suffix(xapp: str, suffix: str) -> str:
    """Return ``suffix`` if it may follow ``<prefix>/xapps/<xapp>/``, else raise ValueError
    naming the xApp, the suffix and the problem.

    A suffix is 1-200 characters of topic levels separated by ``/``: no MQTT wildcard (``+``,
    ``#``), no ``..`` (it could not leave the xApp's topics anyway, but it reads as if it
    could), no leading ``/``, no empty level, no control character.
    """
    what = f"xApp {xapp}: publish topic suffix {suffix!r}"
    if not isinstance(suffix, str) or not suffix:
        raise ValueError(f"{what} must be a non-empty string such as 'alerts/overload'")
    if len(suffix) > 200:
        raise ValueError(f"{what} is longer than 200 characters")
    if suffix.startswith("/"):
        raise ValueError(f"{what} must not start with '/': it is relative to the xApp's topics")
    if "+" in suffix or "#" in suffix:
        raise ValueError(f"{what} must not contain the MQTT wildcards '+' or '#'")
    if ".." in suffix:
        raise ValueError(f"{what} must not contain '..': it stays under the xApp's own topics")
    if any(ord(c) < 32 or c == "\x7f" for c in suffix):
        raise ValueError(f"{what} must not contain control characters")
    if "" in suffix.split("/") or "." in suffix.split("/"):
        raise ValueError(f"{what} has an empty or '.' level ('//', '/./' or a trailing '/')")
    return suffix


def _jsonable(value: Any) -> Any:
    """``value`` with NaN and infinities as None and NumPy values as plain Python ones."""
    if isinstance(value, float):  # NumPy's float64 too
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str | int | float | bool):
                raise TypeError(f"keys must be strings or numbers, not {type(key).__name__}")
            out[str(key) if not isinstance(key, str) else key] = _jsonable(item)
        return out
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    tolist = getattr(value, "tolist", None)  # NumPy arrays and scalars
    if callable(tolist):
        return _jsonable(tolist())
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class PublishRefused(ValueError):
    """A payload ``XApp.publish`` does not send; ``reason`` is ``too_large`` or
    ``unencodable``, and the message names the xApp, the topic suffix and the figure."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


_SCALARS = frozenset({float, int, bool, type(None)})


def _at_least(value: Any, budget: int) -> int:
    """A lower bound of ``value``'s encoded JSON size, given up on once it passes ``budget``:
    the walk visits at most ``budget`` elements, so a payload far over the limit is refused
    without the cost of encoding it."""
    if isinstance(value, str):
        return len(value) + 2
    if isinstance(value, Mapping):
        total = 2
        for key, item in value.items():
            total += (len(key) if isinstance(key, str) else 1) + 4
            if type(item) not in _SCALARS:
                total += _at_least(item, budget - total)
            if total > budget:
                break
        return total
    if isinstance(value, list | tuple):
        total = 1 + 2 * len(value)  # every item is at least one character and a comma
        if total <= budget:
            for item in value:
                if type(item) not in _SCALARS:
                    total += _at_least(item, budget - total) - 1
                    if total > budget:
                        break
        return total
    size = getattr(value, "size", None)  # NumPy arrays: at least one digit and a comma each
    if isinstance(size, int) and getattr(value, "ndim", None):
        return 2 * size
    return 1


def _plain(value: Any) -> Any:
    """``json.dumps``' fallback for NumPy values (arrays and scalars)."""
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode_payload(xapp: str, suffix: str, payload: Any, limit: int = MAX_PUBLISH_BYTES) -> bytes:
    """``payload`` as the bytes ``XApp.publish`` sends: ``bytes`` as they are, anything else
    as compact JSON (NumPy values as numbers and lists, NaN and infinities as null).

    Raises ``PublishRefused`` (a ValueError) naming the xApp and the topic suffix when JSON
    cannot encode it or it is larger than ``limit`` bytes; a payload plainly over the limit is
    refused before it is encoded.
    """
    what = f"xApp {xapp}: the payload published to {suffix!r}"
    if isinstance(payload, bytes | bytearray | memoryview):
        data = bytes(payload)
    else:
        try:
            least = _at_least(payload, limit)
            if least > limit:
                raise PublishRefused(
                    f"{what} is over {limit} bytes (at least {least} when encoded), the "
                    "[xapps] max_publish_bytes limit; send it in parts",
                    "too_large",
                )
            try:  # at C speed when there is no NaN or infinity to turn into null
                text = json.dumps(payload, separators=(",", ":"), allow_nan=False, default=_plain)
            except (TypeError, ValueError):
                text = json.dumps(_jsonable(payload), separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            if isinstance(exc, PublishRefused):
                raise
            raise PublishRefused(f"{what} cannot be encoded as JSON: {exc}", "unencodable") from exc
        data = text.encode()
    if len(data) > limit:
        raise PublishRefused(
            f"{what} is {len(data)} bytes, over the {limit} byte limit ([xapps] "
            "max_publish_bytes); send it in parts",
            "too_large",
        )
    return data


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


class ReportState(enum.StrEnum):
    """Where one of an xApp's reports stands on one node (``SubscriptionStatus.state``); each
    member is its own text, so ``status.state == "active"`` holds as before."""

    ACTIVE = "active"
    """Reports flow."""
    FAILED = "failed"
    """The node refused the subscription (the status has its cause)."""
    REFUSED = "refused"
    """The runtime refused it: a limit, a grant, or a node that cannot serve it."""


@dataclass(frozen=True, slots=True)
class SubscriptionStatus:
    """Where one of an xApp's reports stands on one node, as data.

    ``state`` is ``active`` (reports flow), ``failed`` (the node refused, see ``cause``) or
    ``refused`` (the runtime refused it, for example a limit or a node that cannot serve it).
    ``metrics`` are the names the xApp will receive; ``not_admitted`` maps each requested name
    it will not receive to the cause (the node's, or the runtime's when the node does not
    advertise it). ``period_ms`` is the period reports arrive at.
    """

    node: str
    report: Report
    state: ReportState
    metrics: tuple[str, ...] = ()
    not_admitted: Mapping[str, Cause] = field(default_factory=dict)
    period_ms: int = 0
    cause: Cause | None = None


class XAppContext(Protocol):
    """What the host gives an xApp instance; xApp code uses the XApp methods instead."""

    name: str
    log: logging.LoggerAdapter[logging.Logger]

    @property
    def clock(self) -> Clock:
        """The clock the xApp's time and timers run on."""
        ...

    @property
    def metrics(self) -> Metrics:
        """Where the xApp declares its own metrics."""
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

    def handler_done(self, handler: str, started: float) -> None:
        """A handler the xApp runs itself (a timer) ended; it began at ``clock.monotonic()``
        ``started`` (the host holds it to ``[xapps] handler_budget_ms``)."""
        ...

    @property
    def publishing(self) -> bool:
        """Whether a published message goes anywhere (an MQTT bridge is installed)."""
        ...

    def publish(self, topic_suffix: str, payload: Any) -> bool:
        """Encode ``payload`` and hand it to the MQTT bridge under the checked suffix; False
        when nothing was sent (no bridge, so nothing encoded; or refused, counted and logged)."""
        ...

    @property
    def sdl(self) -> Namespace:
        """The xApp's own SDL namespace (``xapp.<name>``)."""
        ...

    def shared(self, name: str) -> Namespace:
        """A shared SDL namespace the config grants this xApp; SdlError if it does not."""
        ...

    async def policy_status(self, type_id: str, policy_id: str, status: PolicyStatus) -> bool:
        """Record the xApp's enforcement status of an A1 policy; whether it was recorded."""
        ...


class XApp:
    """Base class of xApps. Override the class attributes and the hooks you need.

    Class attributes (declared as data, checked at load):

    - ``name``: unique, lower case, ``[a-z][a-z0-9_-]*``;
    - ``version``: shown by ``ric xapps`` and the status API;
    - ``reports``: the ``Report`` declarations the runtime subscribes for;
    - ``controls``: the control action classes the xApp may send;
    - ``Config``: a pydantic model of the xApp's settings (``XApp.Config`` subclass);
    - ``queue_size``: how many reports may wait; beyond that the oldest is dropped;
    - ``policy_types``: the A1 policy types (``PolicyType``) the xApp handles; their
      policies arrive in ``on_policy``.

    Hooks are all ``async``: ``on_start``, ``on_stop``, ``on_node_up``, ``on_node_down``,
    ``on_report``, ``on_subscription``, ``on_conflict``, ``on_config``, ``on_policy``.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "0.0.0"
    reports: ClassVar[Sequence[Report]] = ()
    controls: ClassVar[Sequence[type[ControlAction]]] = ()
    queue_size: ClassVar[int] = 256
    policy_types: ClassVar[Sequence[PolicyType]] = ()

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
        context = self._context
        clock = context.clock
        what = f"timer {getattr(fn, '__qualname__', 'every')}"

        async def tick() -> None:
            while True:
                await clock.sleep(interval_s)
                started = clock.monotonic()
                await fn()
                context.handler_done(what, started)

        self._context.spawn(tick(), f"{self._context.name}.every({interval_s:g})")

    def now(self) -> float:
        """Current Unix time in seconds (virtual under the test harness)."""
        return self._context.clock.time()

    @property
    def publishing(self) -> bool:
        """Whether :meth:`publish` sends anything (the runtime has an MQTT bridge): build a
        costly payload only when it does."""
        return self._context.publishing

    def publish(self, topic_suffix: str, payload: Any) -> bool:
        """Publish ``payload`` under this xApp's own topics: on the MQTT bridge (when one is
        configured) it goes to ``<prefix>/xapps/<name>/<topic_suffix>``::

            self.publish("alerts/overload", {"cell": cell, "prb_pct": float(pct)})

        ``payload`` is sent as JSON (NumPy values become numbers and lists, NaN and
        infinities ``null``); ``bytes`` are sent as they are. It never waits for the broker:
        when the broker is slow or away, the message is dropped and counted.

        Returns True when the message was handed to the bridge, False when it was not sent:
        no bridge is configured (then nothing is encoded: it costs nothing; see
        :attr:`publishing`), or the payload was refused: over ``[xapps] max_publish_bytes``
        once encoded (send it in parts) or not encodable as JSON. A refusal is logged as an
        error and counted (``ric_xapp_publish_refused_total{xapp,reason}``), never raised.
        Only a bad suffix raises ValueError naming the problem (a wildcard ``+`` or ``#``,
        a ``..``, a leading ``/``, an empty level): that is a bug in the xApp, not its data.
        """
        suffix = check_topic_suffix(self._context.name, topic_suffix)
        return self._context.publish(suffix, payload)

    async def policy_status(self, type_id: str, policy_id: str, status: PolicyStatus) -> bool:
        """Report the enforcement status of an A1 policy later than ``on_policy`` returned
        (for example once a control it needed was acknowledged); the A1 status endpoint
        serves it. Returns False when the policy no longer exists. Raises ValueError when
        the xApp does not declare ``type_id`` in ``policy_types``."""
        if type_id not in {t.id for t in type(self).policy_types}:
            raise ValueError(
                f"xApp {self._context.name}: policy_status for policy type {type_id!r}, which "
                "it does not declare in policy_types"
            )
        if not isinstance(status, PolicyStatus):
            raise TypeError(f"policy_status needs a ric.PolicyStatus, got {status!r}")
        return await self._context.policy_status(type_id, policy_id, status)

    @property
    def metrics(self) -> Metrics:
        """This xApp's own metrics: declare them (in ``on_start``), then update them::

            self.prb = self.metrics.gauge("cell_prb_utilization_ratio", "PRB use", ["cell"])
            self.prb.labels(cell="001-01-4097").set(0.93)

        In Prometheus they are named ``xapp_<name>_<metric>`` and labelled ``xapp=<name>``;
        under ``ric.testing`` they are kept in memory (``ctx.metrics.value(...)``).
        """
        return self._context.metrics

    @property
    def sdl(self) -> Namespace:
        """This xApp's own namespace of the shared data layer (``xapp.<name>``): JSON values,
        groups and change notifications, kept across restarts of the xApp (and of the
        runtime, with the SQLite or Redis backend)::

            await self.sdl.set("targets", {"001-01-4097": 0.8})
            if await self.sdl.set_if_not_exists("leader", self.now()):
                ...

        No other xApp can name it; see :meth:`shared` for state shared between xApps.
        """
        return self._context.sdl

    def shared(self, name: str) -> Namespace:
        """The shared SDL namespace ``name``, if the runtime's config grants it to this xApp
        (``[sdl] shared = { "cells" = ["mlb", "energysaver"] }``); otherwise SdlError naming
        the xApp, the namespace and the config key to set. Watches made through it (and
        through :attr:`sdl`) end when this instance stops."""
        return self._context.shared(name)

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

    async def on_subscription(self, status: SubscriptionStatus) -> None:
        """Called when one of the xApp's reports becomes active, partly admitted or refused on a
        node (see SubscriptionStatus)."""

    async def on_conflict(self, conflict: Conflict) -> None:
        """Called when another xApp's control conflicted with one of this xApp's controls (the
        xApp's own refused controls carry the conflict in their outcome)."""

    async def on_config(self, config: XApp.Config) -> None:
        """Called when the xApp's settings were changed while it runs (for example over the
        MQTT bridge's config topic), between two handler calls; ``self.config`` is already
        ``config``. The default does nothing: handlers read ``self.config`` each time."""

    async def on_policy(self, event: PolicyEvent) -> PolicyStatus | None:
        """Called when an A1 policy of one of the declared ``policy_types`` is created,
        updated or deleted (and, on every start, once per current policy as ``created``).
        Return a ``PolicyStatus`` to report enforcement now, or None to report it later with
        ``policy_status`` (or not at all; the status then says the xApp has not reported)."""
        return None


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
