"""The MQTT bridge: a sensor that turns runtime events into JSON messages and a component
that owns the connection to the broker (see the package docstring for the topics).

It never gets in the way: every hook only puts a message on the bridge's own bounded queue
(the oldest is dropped and counted when it is full), and one task sends them to the broker. A
slow or absent broker costs dropped MQTT messages, never E2 throughput or xApp latency. The
connection is retried with capped exponential back-off (``ric.backoff``); on every
(re)connect the retained state (runtime, nodes, xApps) is published again, and the client's
last will marks the runtime offline if the process dies.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiomqtt

from ric import __version__
from ric.audit import audit_record
from ric.backoff import Backoff
from ric.config import MqttSettings, RuntimeConfig
from ric.errors import ConfigError, StateError
from ric.mqtt.client import make_client, read_password, tls_context, topic_level
from ric.mqtt.config_topic import ConfigTopic
from ric.mqtt.kpm import BRIDGE_XAPP, KPM_SLACK, KPM_UNITS, kpm_plugin
from ric.mqtt.stats import MqttStats, mqtt_samples
from ric.plugins import Plugin
from ric.report import EntityKind, KpmReport
from ric.types import Check, Clock, RealClock, Sensor, StatSample
from ric.xapp import check_topic_suffix

if TYPE_CHECKING:
    from ric.actions import Conflict, ControlOutcome
    from ric.model import NodeInfo
    from ric.view import RuntimeView

__all__ = ["MqttBridge", "mqtt_bridge"]

log = logging.getLogger("ric.mqtt")


@dataclass(slots=True)
class _Msg:
    topic: str
    body: bytes | dict[str, Any]
    qos: int
    kind: str


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None


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
        self._password = read_password(settings.password_file) if settings.password_file else None
        self._tls = tls_context(settings)
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
        self._runtime: RuntimeView | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._started = False
        self._config_topic = ConfigTopic(p, ric_id, self.clock, reserved=BRIDGE_XAPP)
        self._offline_body: dict[str, Any] = {}

    def __repr__(self) -> str:
        state = "connected" if self.stats.connected else "disconnected"
        return f"MqttBridge({self.settings.host}:{self.settings.port}, {state})"

    # -- Component ----------------------------------------------------------------------

    async def start(self, runtime: RuntimeView) -> None:
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
                "version": __version__,
                "reason": None,
            },
            self.settings.qos.state,
        )
        self._offline_body = {
            "ric_id": self.ric_id,
            "online": False,
            "time": None,
            "version": __version__,
            "reason": "connection lost (last will)",
        }
        runtime.sensor.stats_added("mqtt", self.samples)
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
        if self._runtime is not None:
            self._runtime.sensor.stats_removed("mqtt")

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
        topic = f"{self.prefix}/controls/{topic_level(xapp)}"
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
        self._set_retained(f"{self.prefix}/state/xapps/{topic_level(xapp)}", body)

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
        topic = f"{self.prefix}/xapps/{topic_level(xapp)}/{suffix}"
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
            self._put(
                f"{self.prefix}/kpm/{topic_level(node)}/{topic_level(cell)}", body, qos, "kpm"
            )

    def kpm_plugin(self) -> Plugin | None:
        """The internal xApp that receives the opted-in KPM metrics (None if there are none)."""
        return kpm_plugin(self.settings, __version__, self.kpm_report)

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
        self._set_retained(f"{self.prefix}/state/nodes/{topic_level(node_id)}", body)

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
        return make_client(
            self.settings,
            client_id=self.client_id,
            password=self._password,
            tls=self._tls,
            will_topic=self.runtime_topic,
            will_body=self._offline_body,
        )

    async def _attach(self, runtime: RuntimeView) -> None:
        """Add the internal KPM xApp (the runtime takes new xApps while it runs)."""
        plugin = self.kpm_plugin()
        if plugin is not None:
            runtime.add_xapp(plugin)

    async def _run(self, runtime: RuntimeView) -> None:
        await self._attach(runtime)
        s = self.settings
        backoff = Backoff(s.reconnect_min_s, s.reconnect_max_s, clock=self.clock)
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
                backoff.reset()  # it was up: start the back-off again
            await backoff.sleep()

    async def _session(self) -> None:
        client = self._client()
        try:
            async with client:
                self.stats.connects += 1
                if self.settings.inbound_config:
                    await client.subscribe(self._config_topic.filter, qos=1)
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
        answer = self._config_topic.handle(self._runtime, topic, payload, retained)
        if answer is None:
            return
        reply_topic, reply = answer
        self.stats.config_changes["applied" if reply["ok"] else "refused"] += 1
        self._put(reply_topic, reply, self.settings.qos.config, "config")

    # -- statistics -----------------------------------------------------------------------

    def samples(self) -> Iterator[StatSample]:
        """The ``ric_mqtt_*`` series: (name, type, help, labels, value); offered to the sensors
        (``stats_added``) while the bridge runs."""
        return mqtt_samples(self.stats, len(self._queue), self.settings.queue_size)


def mqtt_bridge(config: RuntimeConfig) -> MqttBridge | None:
    """The bridge for ``config`` when ``[mqtt] enabled`` is true, else None."""
    if not config.mqtt.enabled:
        return None
    return MqttBridge(config.mqtt, ric_id=config.ric_id)
