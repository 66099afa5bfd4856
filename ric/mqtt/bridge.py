"""The MQTT bridge: what happens in the RAN, published as JSON to an operator's MQTT broker.

::

    bridge = MqttBridge(config.mqtt, ric_id=config.ric_id)     # or mqtt_bridge(config)
    async with Runtime(config, plugins, sensors=[bridge], components=[bridge]):
        ...

The bridge is a sensor (it sees node, control, conflict, xApp state and xApp publish events)
and a runtime component (it owns the connection). It never gets in the way: every hook only
puts a message on the bridge's own bounded queue (the oldest is dropped and counted when it
is full), and one task sends them to the broker. A slow or absent broker costs dropped MQTT
messages, never E2 throughput or xApp latency. The connection is retried with capped
exponential back-off; on every (re)connect the retained state (runtime, nodes, xApps) is
published again, and the client's last will marks the runtime offline if the process dies.

KPM reports reach the bridge through an internal xApp (``ric-mqtt``) whose one report is
built from the configuration (``kpm_metrics`` per cell, every ``kpm_interval_s``), so the
runtime's subscription merging serves it together with the other xApps.

Topics (``<p>`` is ``topic_prefix``; every payload is JSON, times are Unix seconds)::

    <p>/state/runtime             retained  the runtime online / offline (last will)
    <p>/state/nodes/<node>        retained  an E2 node online / offline, with its cells
    <p>/state/xapps/<xapp>        retained  an xApp's state (starting, running, ...)
    <p>/kpm/<node>/<cell>                   one cell's opted-in KPM values, with units
    <p>/controls/<xapp>                     one control action and its outcome
    <p>/conflicts                           one conflict between two xApps' controls
    <p>/audit/anchor              retained  the audit chain's last anchor (count, head, time)
    <p>/xapps/<xapp>/<suffix>               what an xApp published (XApp.publish)
    <p>/config/<xapp>/set         inbound   new settings for an xApp (inbound_config = true)
    <p>/config/<xapp>/reply                 the answer: applied, or the error naming the key

The payload schemas are in the README ("MQTT bridge").
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import math
import ssl
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiomqtt

from ric.audit import audit_record
from ric.config import MqttSettings, RuntimeConfig
from ric.errors import ConfigError, StateError
from ric.plugins import Plugin
from ric.report import EntityKind, KpmReport
from ric.types import Check, Clock, RealClock, Sensor
from ric.xapp import NAME_PATTERN, Report, SubscriptionStatus, XApp, check_topic_suffix

if TYPE_CHECKING:
    from prometheus_client.registry import Collector, CollectorRegistry

    from ric.actions import Conflict, ControlOutcome
    from ric.model import NodeInfo
    from ric.runtime import Runtime

__all__ = ["BRIDGE_XAPP", "KPM_UNITS", "MqttBridge", "MqttStats", "mqtt_bridge"]

log = logging.getLogger(__name__)

BRIDGE_XAPP = "ric-mqtt"
"""The name of the bridge's internal xApp that receives the opted-in KPM reports."""

KPM_UNITS: dict[str, str] = {
    "RRU.PrbUsedDl": "PRB",
    "RRU.PrbUsedUl": "PRB",
    "RRU.PrbAvailDl": "PRB",
    "RRU.PrbAvailUl": "PRB",
    "RRU.PrbTotDl": "%",
    "RRU.PrbTotUl": "%",
    "DRB.UEThpDl": "kbit/s",
    "DRB.UEThpUl": "kbit/s",
    "RRC.ConnMean": "UE",
    "RRC.ConnMax": "UE",
    "DRB.RlcSduDelayDl": "0.1 ms",
    "L1M.RSRP": "dBm",
    "L1M.SINR": "dB",
}
"""Units of the TS 28.552 measurements (as in ``proto/ric/e2/v1/kpm.proto``); a metric not
listed is published with ``"unit": null``."""

KPM_SLACK = 0.8
"""A cell's KPM is published when at least this share of ``kpm_interval_s`` has passed since
its last one: the slack absorbs reporting jitter, the limit still stops floods."""


@dataclass
class MqttStats:
    """What the bridge counts; exported to Prometheus as ``ric_mqtt_*`` when a
    ``ric.metrics.PrometheusSensor`` is installed."""

    connected: bool = False
    connects: int = 0
    """Successful connections (the first one and every reconnect)."""
    connect_failures: int = 0
    disconnects: int = 0
    """Connections lost (not counting a graceful stop)."""
    published: collections.Counter[str] = field(default_factory=collections.Counter)
    """Messages the broker took, by kind: state, kpm, controls, conflicts, xapps, config."""
    dropped: collections.Counter[str] = field(default_factory=collections.Counter)
    """Messages not sent, by reason: queue_full (the oldest), unencodable, shutdown."""
    kpm_rate_limited: int = 0
    """Per-cell KPM rows not published because the cell's rate limit was reached."""
    config_changes: collections.Counter[str] = field(default_factory=collections.Counter)
    """Inbound config messages, by result: applied, refused."""
    last_error: str = ""


@dataclass(slots=True)
class _Msg:
    topic: str
    body: bytes | dict[str, Any]
    qos: int
    kind: str


def _level(text: str) -> str:
    """``text`` made safe as one topic level (ids never need it; defence in depth)."""
    if any(c in text for c in "/+#\x00") or not text:
        return "".join("_" if c in "/+#\x00" else c for c in text) or "_"
    return text


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _read_password(path: str) -> str:
    file = Path(path)
    try:
        mode = file.stat().st_mode
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("mqtt.password_file", f"cannot read {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("the MQTT password file %s is readable by other users (chmod 600 it)", path)
    return text.rstrip("\r\n")


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when the TLS handshake fails (paho-mqtt leaves that socket open)."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def _tls_context(settings: MqttSettings) -> ssl.SSLContext | None:
    tls = settings.tls
    if not tls.enabled:
        return None
    try:
        context = ssl.create_default_context(cafile=tls.ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("mqtt.tls.ca_file", f"cannot load {tls.ca_file}: {exc}") from None
    # create_default_context verifies the broker's certificate and host name; nothing here
    # turns that off, on purpose.
    context.sslsocket_class = _ClosingSSLSocket
    if tls.cert_file:
        try:
            context.load_cert_chain(tls.cert_file, tls.key_file or None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                "mqtt.tls.cert_file", f"cannot load {tls.cert_file} / {tls.key_file}: {exc}"
            ) from None
    return context


def _version() -> str:
    try:
        return metadata.version("ric")
    except metadata.PackageNotFoundError:
        return "0+unknown"


class MqttBridge(Sensor):
    """Publishes runtime events to an MQTT broker; a Sensor and a runtime Component.

    Pass it both as a sensor and as a component. ``settings`` is the ``[mqtt]`` section; a
    password file or TLS file that cannot be read raises ConfigError naming the key, at
    construction. ``stats`` holds the counters; ``checks()`` reports the bridge down while
    it is not connected (readiness).
    """

    name = "mqtt"

    def __init__(
        self, settings: MqttSettings, *, ric_id: str = "ric", clock: Clock | None = None
    ) -> None:
        self.settings = settings
        self.ric_id = ric_id
        self.clock: Clock = clock or RealClock()
        self.client_id = settings.client_id or f"ric-{ric_id}"
        self.stats = MqttStats()
        self._password = _read_password(settings.password_file) if settings.password_file else None
        self._tls = _tls_context(settings)
        p = settings.topic_prefix
        self.prefix = p
        self.runtime_topic = f"{p}/state/runtime"
        self._queue: collections.deque[_Msg] = collections.deque(maxlen=settings.queue_size)
        self._retained: dict[str, tuple[dict[str, Any], int]] = {}
        self._dirty: dict[str, None] = {}  # retained topics to (re)publish, in order
        self._kpm_last: dict[tuple[str, str], float] = {}
        self._kpm_gap = settings.kpm_interval_s * KPM_SLACK
        self._seq: collections.Counter[str] = collections.Counter()
        self._wake = asyncio.Event()
        self._runtime: Runtime | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._started = False
        self._registry: CollectorRegistry | None = None
        self._collector: Collector | None = None
        self._offline_body: dict[str, Any] = {}

    def __repr__(self) -> str:
        state = "connected" if self.stats.connected else "disconnected"
        return f"MqttBridge({self.settings.host}:{self.settings.port}, {state})"

    # -- Component ----------------------------------------------------------------------

    async def start(self, runtime: Runtime) -> None:
        """Start connecting (in the background: an absent broker does not delay the runtime)
        and, when ``kpm_metrics`` are set, add the internal KPM xApp."""
        if self._started:
            raise StateError("an MqttBridge can be started once; make a new one")
        self._started = True
        if self.settings.kpm_metrics and any(h.name == BRIDGE_XAPP for h in runtime.hosts):
            raise ConfigError("xapps.load", f"the xApp name {BRIDGE_XAPP!r} is the MQTT bridge's")
        self._runtime = runtime
        now = self.clock.time()
        self._retained[self.runtime_topic] = (
            {
                "ric_id": self.ric_id,
                "online": True,
                "time": now,
                "version": _version(),
                "reason": None,
            },
            self.settings.qos.state,
        )
        self._offline_body = {
            "ric_id": self.ric_id,
            "online": False,
            "time": None,
            "version": _version(),
            "reason": "connection lost (last will)",
        }
        self._register_metrics(runtime)
        self._task = asyncio.get_running_loop().create_task(self._run(runtime), name="mqtt-bridge")
        self._task.add_done_callback(self._ended)

    async def stop(self) -> None:
        """Publish the runtime offline (retained) and what is queued, within ``timeout_s``,
        then disconnect; what is left is counted as dropped (``shutdown``)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._closing = True
        self._retained[self.runtime_topic] = (
            {**self._offline_body, "time": self.clock.time(), "reason": "shutdown"},
            self.settings.qos.state,
        )
        self._dirty[self.runtime_topic] = None
        self._wake.set()
        if self.stats.connected:
            await asyncio.wait({task}, timeout=self.settings.timeout_s)
        task.cancel()
        await asyncio.wait({task})
        left = len(self._queue)
        if left:
            self.stats.dropped["shutdown"] += left
            self._queue.clear()
        self.stats.connected = False
        if self._registry is not None and self._collector is not None:
            self._registry.unregister(self._collector)
            self._registry = self._collector = None

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.stats.last_error = f"the bridge failed: {task.exception()!r}"
            log.error(
                "the MQTT bridge failed; it publishes nothing more", exc_info=task.exception()
            )

    def checks(self) -> list[Check]:
        """Ready while connected to the broker."""
        s = self.settings
        where = f"{s.host}:{s.port}"
        if self.stats.connected:
            return [Check("mqtt", True, f"connected to {where}")]
        why = f": {self.stats.last_error}" if self.stats.last_error else ""
        return [Check("mqtt", False, f"not connected to {where}{why}")]

    @property
    def queue_depth(self) -> int:
        """Messages waiting for the broker."""
        return len(self._queue)

    # -- sensor hooks (cheap: they only queue) --------------------------------------------

    def node_connected(self, node: NodeInfo) -> None:
        """Publish the node online (retained)."""
        self._node_state(node, True, None)

    def node_disconnected(self, node: NodeInfo, reason: str) -> None:
        """Publish the node offline with the reason (retained)."""
        self._node_state(node, False, reason)
        node_id = str(node.id)
        for key in [k for k in self._kpm_last if k[0] == node_id]:
            del self._kpm_last[key]

    def _private(self, text: str) -> str:
        """``text`` with UE ids replaced by pseudonyms when [privacy] asks for it."""
        return self._runtime.privacy.text(text) if self._runtime is not None else text

    def control_finished(self, xapp: str, outcome: ControlOutcome) -> None:
        """Publish the control and its outcome (UE ids pseudonymised when configured)."""
        self._seq["controls"] += 1
        body = audit_record(self._seq["controls"], self.clock.time(), xapp, outcome)
        body["ric_id"] = self.ric_id
        body["target"] = self._private(body["target"])
        body["detail"] = self._private(body["detail"])
        if body["conflict"]:
            body["conflict"] = self._private(body["conflict"])
        topic = f"{self.prefix}/controls/{_level(xapp)}"
        self._put(topic, body, self.settings.qos.controls, "controls")

    def conflict(self, conflict: Conflict) -> None:
        """Publish the conflict and how it was decided."""
        self._seq["conflicts"] += 1

        def side(xapp: str, action: Any) -> dict[str, Any]:
            return {
                "xapp": xapp,
                "action": action.kind,
                "target": self._private(action.target),
                "parameters": action.parameters(),
            }

        body = {
            "ric_id": self.ric_id,
            "seq": self._seq["conflicts"],
            "time": self.clock.time(),
            "policy": conflict.policy,
            "target": self._private(conflict.target),
            "parameter": conflict.parameter,
            "first": side(conflict.first_xapp, conflict.first),
            "second": side(conflict.second_xapp, conflict.second),
            "winner": conflict.winner,
        }
        self._put(f"{self.prefix}/conflicts", body, self.settings.qos.conflicts, "conflicts")

    def xapp_state(self, xapp: str, state: str) -> None:
        """Publish the xApp's new state (retained)."""
        body = {"ric_id": self.ric_id, "xapp": xapp, "state": state, "time": self.clock.time()}
        self._set_retained(f"{self.prefix}/state/xapps/{_level(xapp)}", body)

    def audit_anchor(self, count: int, head: str, at: float) -> None:
        """Publish the audit chain's anchor (retained), off the machine that holds the log:
        ``anchor`` is what ``ric audit verify --anchor`` takes."""
        body = {
            "ric_id": self.ric_id,
            "count": count,
            "head": head,
            "time": at,
            "anchor": f"{count}:{head}",
        }
        self._set_retained(f"{self.prefix}/audit/anchor", body)

    def xapp_published(self, xapp: str, topic_suffix: str, payload: bytes) -> None:
        """Publish what an xApp sent, under ``<prefix>/xapps/<xapp>/``."""
        try:
            suffix = check_topic_suffix(xapp, topic_suffix)
        except ValueError as exc:  # XApp.publish checks first; this guards other callers
            log.warning("%s", exc, extra={"xapp": xapp})
            self.stats.dropped["bad_topic"] += 1
            return
        topic = f"{self.prefix}/xapps/{_level(xapp)}/{suffix}"
        self._enqueue(_Msg(topic, payload, self.settings.qos.xapps, "xapps"))

    # -- KPM (called by the internal xApp's handler) ----------------------------------------

    def kpm_report(self, report: KpmReport) -> None:
        """Queue one message per cell of a cell report, at most one per cell per
        ``kpm_interval_s`` (with ``KPM_SLACK``)."""
        if report.kind is not EntityKind.CELL:
            return
        now = self.clock.monotonic()
        wall = self.clock.time()
        qos = self.settings.qos.kpm
        node = report.node
        names = report.metrics
        units = [KPM_UNITS.get(m) for m in names]
        values = report.values
        for i, cell in enumerate(report.entity_ids):
            key = (node, cell)
            last = self._kpm_last.get(key)
            if last is not None and now - last < self._kpm_gap:
                self.stats.kpm_rate_limited += 1
                continue
            self._kpm_last[key] = now
            row = values[i].tolist()
            body = {
                "ric_id": self.ric_id,
                "node": node,
                "cell": cell,
                "time": wall,
                "collection_start": report.collection_start,
                "granularity_ms": report.granularity_ms,
                "metrics": {
                    name: {"value": _number(row[j]), "unit": units[j]}
                    for j, name in enumerate(names)
                },
            }
            self._put(f"{self.prefix}/kpm/{_level(node)}/{_level(cell)}", body, qos, "kpm")

    def kpm_plugin(self) -> Plugin | None:
        """The internal xApp that receives the opted-in KPM metrics (None if there are none)."""
        metrics = self.settings.kpm_metrics
        if not metrics:
            return None
        report = Report(
            *metrics, period_ms=max(1, round(self.settings.kpm_interval_s * 1000)), per="cell"
        )
        bridge = self

        class MqttKpm(XApp):
            """The MQTT bridge's internal xApp: hands the opted-in KPM reports to the bridge."""

            name = BRIDGE_XAPP
            version = _version()
            reports = (report,)
            queue_size = 64

            async def on_report(self, report: KpmReport) -> None:
                bridge.kpm_report(report)

            async def on_subscription(self, status: SubscriptionStatus) -> None:
                missing = status.not_admitted or (
                    {m: status.cause for m in status.report.metrics} if status.cause else {}
                )
                for metric, cause in missing.items():
                    self.log.warning(
                        "node %s does not serve %s for MQTT: %s", status.node, metric, cause
                    )

        assert NAME_PATTERN.match(MqttKpm.name)
        return Plugin(MqttKpm, "ric.mqtt (internal)")

    # -- queueing -------------------------------------------------------------------------

    def _node_state(self, node: NodeInfo, online: bool, reason: str | None) -> None:
        node_id = str(node.id)
        body = {
            "ric_id": self.ric_id,
            "node": node_id,
            "online": online,
            "time": self.clock.time(),
            "reason": reason,
            "vendor": node.vendor,
            "software_version": node.software_version,
            "cells": [str(c) for c in node.cells],
            "ran_functions": [
                {"id": f.id, "name": f.short_name, "revision": f.revision}
                for f in node.ran_functions.values()
            ],
        }
        self._set_retained(f"{self.prefix}/state/nodes/{_level(node_id)}", body)

    def _set_retained(self, topic: str, body: dict[str, Any]) -> None:
        self._retained[topic] = (body, self.settings.qos.state)
        self._dirty[topic] = None
        self._wake.set()

    def _put(self, topic: str, body: dict[str, Any], qos: int, kind: str) -> None:
        self._enqueue(_Msg(topic, body, qos, kind))

    def _enqueue(self, msg: _Msg) -> None:
        queue = self._queue
        if len(queue) == queue.maxlen:
            self.stats.dropped["queue_full"] += 1  # the oldest goes
        queue.append(msg)
        self._wake.set()

    # -- the connection -------------------------------------------------------------------

    def _client(self) -> aiomqtt.Client:
        s = self.settings
        return aiomqtt.Client(
            s.host,
            s.port,
            username=s.username or None,
            password=self._password,
            identifier=self.client_id,
            will=aiomqtt.Will(
                self.runtime_topic,
                json.dumps(self._offline_body, separators=(",", ":")).encode(),
                qos=s.qos.state,
                retain=True,
            ),
            clean_session=True,
            timeout=s.timeout_s,
            keepalive=s.keepalive_s,
            tls_context=self._tls,
            logger=logging.getLogger("ric.mqtt.client"),
        )

    async def _attach(self, runtime: Runtime) -> None:
        """Add the internal KPM xApp (the runtime takes new xApps while it runs)."""
        plugin = self.kpm_plugin()
        if plugin is not None:
            runtime.add_xapp(plugin)

    async def _run(self, runtime: Runtime) -> None:
        await self._attach(runtime)
        s = self.settings
        backoff = s.reconnect_min_s
        while not self._closing:
            connected_before = self.stats.connects
            try:
                await self._session()
            except (aiomqtt.MqttError, OSError) as exc:
                error = str(exc) or type(exc).__name__
                if self.stats.connects != connected_before:
                    self.stats.disconnects += 1
                    log.warning("lost the MQTT broker %s:%s: %s", s.host, s.port, error)
                else:
                    self.stats.connect_failures += 1
                    level = logging.DEBUG if error == self.stats.last_error else logging.WARNING
                    log.log(
                        level,
                        "cannot connect to the MQTT broker %s:%s: %s (retrying with back-off)",
                        s.host,
                        s.port,
                        error,
                    )
                self.stats.last_error = error
            finally:
                self.stats.connected = False
            if self._closing:
                break
            if self.stats.connects != connected_before:
                backoff = s.reconnect_min_s  # it was up: start the back-off again
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, s.reconnect_max_s)

    async def _session(self) -> None:
        client = self._client()
        try:
            async with client:
                self.stats.connects += 1
                if self.settings.inbound_config:
                    await client.subscribe(f"{self.prefix}/config/+/set", qos=1)
                self.stats.connected = True
                self.stats.last_error = ""
                log.info(
                    "connected to the MQTT broker %s:%s as %s",
                    self.settings.host,
                    self.settings.port,
                    self.client_id,
                )
                # Retained state first, the runtime's own status before everything else.
                self._dirty = dict.fromkeys([self.runtime_topic, *self._retained])
                async with asyncio.TaskGroup() as tg:
                    listener = tg.create_task(self._listen(client), name="mqtt-listen")
                    await self._pump(client)
                    listener.cancel()
        except BaseExceptionGroup as group:
            mqtt_errors, rest = group.split((aiomqtt.MqttError, OSError))
            if rest is not None:
                raise
            assert mqtt_errors is not None
            leaf: BaseException = mqtt_errors
            while isinstance(leaf, BaseExceptionGroup):
                leaf = leaf.exceptions[0]
            raise leaf from None

    async def _pump(self, client: aiomqtt.Client) -> None:
        """Send retained state, then queued messages, until closing and drained."""
        queue = self._queue
        while True:
            if self._dirty:
                topic = next(iter(self._dirty))
                del self._dirty[topic]
                body, qos = self._retained[topic]
                try:
                    await self._publish(client, topic, body, qos, True, "state")
                except BaseException:
                    self._dirty[topic] = None
                    raise
            elif queue:
                msg = queue.popleft()
                try:
                    await self._publish(client, msg.topic, msg.body, msg.qos, False, msg.kind)
                except BaseException:
                    if len(queue) < (queue.maxlen or 0):
                        queue.appendleft(msg)
                    else:
                        self.stats.dropped["queue_full"] += 1
                    raise
            elif self._closing:
                return
            else:
                self._wake.clear()
                await self._wake.wait()

    async def _publish(
        self,
        client: aiomqtt.Client,
        topic: str,
        body: bytes | dict[str, Any],
        qos: int,
        retain: bool,
        kind: str,
    ) -> None:
        if isinstance(body, bytes):
            data = body
        else:
            try:
                data = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
            except (TypeError, ValueError) as exc:
                self.stats.dropped["unencodable"] += 1
                log.error("MQTT message for %s cannot be encoded: %s", topic, exc)
                return
        await client.publish(topic, data, qos=qos, retain=retain)
        self.stats.published[kind] += 1

    # -- inbound config -------------------------------------------------------------------

    async def _listen(self, client: aiomqtt.Client) -> None:
        """Handle inbound messages; ends with MqttError when the connection is lost (which is
        how a broken connection is noticed even when nothing is being published)."""
        async for message in client.messages:
            self._config_message(str(message.topic.value), bytes(message.payload), message.retain)

    def _config_message(self, topic: str, payload: bytes, retained: bool) -> None:
        prefix = f"{self.prefix}/config/"
        if not (topic.startswith(prefix) and topic.endswith("/set")):
            return
        xapp = topic[len(prefix) : -len("/set")]
        reply: dict[str, Any] = {"ric_id": self.ric_id, "xapp": xapp, "time": self.clock.time()}
        try:
            if retained:
                raise _Refused("retained set messages are ignored; publish without retain")
            host = self._host(xapp)
            try:
                raw = json.loads(payload)
            except ValueError as exc:
                raise _Refused(f"the payload is not JSON: {exc}") from None
            if not isinstance(raw, dict):
                raise _Refused("the payload must be a JSON object of the xApp's settings")
            config = host.reconfigure(raw)
        except _Refused as exc:
            reply.update(ok=False, error=str(exc), key=None)
        except ConfigError as exc:
            inner = exc.key.removeprefix(f"xapps.config.{xapp}.")
            reply.update(ok=False, error=str(exc), key=inner)
        else:
            reply.update(ok=True, config=config.model_dump(mode="json"))
            log.info("xApp %s reconfigured over MQTT", xapp, extra={"xapp": xapp})
        self.stats.config_changes["applied" if reply["ok"] else "refused"] += 1
        topic = f"{self.prefix}/config/{_level(xapp)}/reply"
        self._put(topic, reply, self.settings.qos.config, "config")

    def _host(self, xapp: str) -> Any:
        runtime = self._runtime
        if runtime is None or xapp == BRIDGE_XAPP:
            raise _Refused(f"no xApp named {xapp!r} can be configured")
        try:
            return runtime.host(xapp)
        except KeyError:
            loaded = ", ".join(h.name for h in runtime.hosts if h.name != BRIDGE_XAPP)
            raise _Refused(f"no xApp named {xapp!r} is loaded (loaded: {loaded})") from None

    # -- Prometheus -----------------------------------------------------------------------

    def _register_metrics(self, runtime: Runtime) -> None:
        """Add the ``ric_mqtt_*`` series to the Prometheus sensor's registry, if there is one."""
        try:
            from ric.metrics import PrometheusSensor
        except ImportError:  # pragma: no cover - the metrics module is part of the package
            return
        for sensor in runtime.sensor:
            if isinstance(sensor, PrometheusSensor):
                self._collector = _collector(self)
                self._registry = sensor.registry
                self._registry.register(self._collector)
                return

    def samples(self) -> Iterator[tuple[str, str, str, dict[str, str], float]]:
        """The ``ric_mqtt_*`` series: (name, type, help, labels, value)."""
        st = self.stats
        yield "ric_mqtt_connected", "gauge", "1 while connected to the broker.", {}, st.connected
        yield (
            "ric_mqtt_connects",
            "counter",
            "Successful connections to the broker (the first and every reconnect).",
            {},
            st.connects,
        )
        yield (
            "ric_mqtt_connect_failures",
            "counter",
            "Connection attempts that failed.",
            {},
            st.connect_failures,
        )
        yield "ric_mqtt_disconnects", "counter", "Connections lost.", {}, st.disconnects
        yield (
            "ric_mqtt_queue_depth",
            "gauge",
            "Messages waiting for the broker.",
            {},
            len(self._queue),
        )
        yield (
            "ric_mqtt_queue_capacity",
            "gauge",
            "Messages the queue holds before it drops the oldest.",
            {},
            self.settings.queue_size,
        )
        for kind in ("state", "kpm", "controls", "conflicts", "xapps", "config"):
            yield (
                "ric_mqtt_messages_published",
                "counter",
                "Messages the broker took, by kind.",
                {"kind": kind},
                st.published[kind],
            )
        for reason in sorted({"queue_full", "shutdown", "unencodable", *st.dropped}):
            yield (
                "ric_mqtt_messages_dropped",
                "counter",
                "Messages not sent, by reason (queue_full drops the oldest).",
                {"reason": reason},
                st.dropped[reason],
            )
        yield (
            "ric_mqtt_kpm_rate_limited",
            "counter",
            "Per-cell KPM messages skipped by the per-cell rate limit.",
            {},
            st.kpm_rate_limited,
        )
        for result in ("applied", "refused"):
            yield (
                "ric_mqtt_config_changes",
                "counter",
                "Inbound xApp config messages, by result.",
                {"result": result},
                st.config_changes[result],
            )


class _Refused(Exception):
    """An inbound config message that is answered with an error (not a config key error)."""


def _collector(bridge: MqttBridge) -> Collector:
    """A Prometheus collector that reads the bridge's counters when scraped (prometheus_client
    is imported only here, once a Prometheus sensor is known to be installed)."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
    from prometheus_client.registry import Collector

    class MqttCollector(Collector):
        def describe(self) -> list[Metric]:
            return list(self.collect())

        def collect(self) -> Iterator[Metric]:
            families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
            for name, kind, doc, labels, value in bridge.samples():
                family = families.get(name)
                if family is None:
                    cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
                    family = families[name] = cls(name, doc, labels=list(labels))
                family.add_metric(list(labels.values()), float(value))
            yield from families.values()

    return MqttCollector()


def mqtt_bridge(config: RuntimeConfig) -> MqttBridge | None:
    """The bridge for ``config`` when ``[mqtt] enabled`` is true, else None."""
    if not config.mqtt.enabled:
        return None
    return MqttBridge(config.mqtt, ric_id=config.ric_id)
