"""What the MQTT bridge counts, and those counts as statistics series.

The bridge offers ``mqtt_samples`` through the ``Sensor.stats_added`` hook; the Prometheus
sensor (``ric.metrics``) exports them as ``ric_mqtt_*`` when it is installed. Nothing here
knows a metrics library.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from dataclasses import dataclass, field

from ric.types import StatSample

__all__ = ["MqttStats", "mqtt_samples"]


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


def mqtt_samples(st: MqttStats, queue_depth: int, queue_capacity: int) -> Iterator[StatSample]:
    """The ``ric_mqtt_*`` series of ``st`` and the bridge's queue."""
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
        queue_depth,
    )
    yield (
        "ric_mqtt_queue_capacity",
        "gauge",
        "Messages the queue holds before it drops the oldest.",
        {},
        queue_capacity,
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
