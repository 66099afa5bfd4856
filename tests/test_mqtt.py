"""The MQTT bridge without a broker: its configuration, the SDK's publish and config hooks,
its bounded queue, the KPM rate limit and its Prometheus series. The tests against a real
mosquitto are in tests/integration/test_mqtt_bridge.py."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import generate_latest

from ric import ControlOutcome, Handover, OutcomeKind, Report, XApp
from ric.config import MqttSettings, load_config
from ric.errors import ConfigError, PluginError
from ric.metrics import PrometheusSensor
from ric.mqtt import BRIDGE_XAPP, KPM_UNITS, MqttBridge, mqtt_bridge
from ric.plugins import Plugin, check_xapp
from ric.report import EntityKind
from ric.runtime import Runtime
from ric.testing import ManualClock, make_report, start_xapp
from ric.xapp import MAX_PUBLISH_BYTES, PublishRefused, encode_payload
from tests.conftest import wait_for


def _settings(**values: Any) -> MqttSettings:
    return load_config(environ={}, overrides={f"mqtt.{k}": v for k, v in values.items()}).mqtt


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class Talker(XApp):
    """Publishes what the test asks it to, and records config changes."""

    name = "talker"

    class Config(XApp.Config):
        threshold: float = 0.5
        label: str = "a"

    config: Config
    changes: list[XApp.Config]

    async def on_start(self) -> None:
        self.changes = []

    async def on_config(self, config: XApp.Config) -> None:
        self.changes.append(config)


# -- configuration ------------------------------------------------------------------------


def test_mqtt_section_is_off_by_default_with_documented_defaults() -> None:
    """Without an [mqtt] section the bridge is off and mqtt_bridge() gives None."""
    config = load_config(environ={})
    s = config.mqtt
    assert not s.enabled
    assert (s.host, s.port, s.topic_prefix, s.kpm_metrics) == ("127.0.0.1", 1883, "ric", [])
    assert not s.inbound_config
    assert not s.tls.enabled
    assert (s.qos.state, s.qos.kpm, s.qos.controls) == (1, 0, 1)
    assert mqtt_bridge(config) is None


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("topic_prefix", "a/+/b", "wildcards"),
        ("topic_prefix", "/ric", "topic levels"),
        ("topic_prefix", "a//b", "empty levels"),
        ("kpm_metrics", ["RRU.PrbUsedDl", "not a name"], "not a measurement name"),
        ("qos", {"kpm": 3}, "mqtt.qos.kpm"),
        ("port", 0, "mqtt.port"),
        ("reconnect_max_s", 0.1, "reconnect_max_s must not be below"),
        ("queue_size", 0, "mqtt.queue_size"),
    ],
)
def test_bad_mqtt_values_name_the_key(key: str, value: Any, message: str) -> None:
    """A bad [mqtt] value is refused with a ConfigError naming the key and the problem."""
    with pytest.raises(ConfigError, match="mqtt") as err:
        _settings(**{key: value})
    assert message in str(err.value)


def test_a_password_in_the_config_is_refused_and_never_echoed() -> None:
    """``password`` is not a key: the error points to password_file and does not repeat it."""
    with pytest.raises(ConfigError) as err:
        load_config(environ={"RIC_MQTT__PASSWORD": "s3cr3t"})
    assert err.value.key == "mqtt.password"
    assert "password_file" in str(err.value)
    assert "s3cr3t" not in str(err.value)


def test_password_and_tls_files_are_read_at_construction(tmp_path: Path) -> None:
    """A missing password file or CA file is a ConfigError naming the key; a password file's
    trailing newline is not part of the password."""
    with pytest.raises(ConfigError) as err:
        MqttBridge(_settings(password_file=str(tmp_path / "nope")))
    assert err.value.key == "mqtt.password_file"
    with pytest.raises(ConfigError) as err:
        MqttBridge(_settings(tls={"enabled": True, "ca_file": str(tmp_path / "ca.pem")}))
    assert err.value.key == "mqtt.tls.ca_file"
    secret = tmp_path / "pw"
    secret.write_text("hunter2\n")
    secret.chmod(0o600)
    bridge = MqttBridge(_settings(username="ric", password_file=str(secret)), ric_id="r1")
    assert bridge._password == "hunter2"
    assert bridge.client_id == "ric-r1"


# -- the SDK: publish and on_config -----------------------------------------------------------


async def test_publish_encodes_json_and_records_it_in_the_fake_context() -> None:
    """``XApp.publish`` sends JSON (NumPy values as numbers, NaN as null) or bytes as given."""
    app, ctx = await start_xapp(Talker)
    app.publish("alerts/overload", {"cell": "001-01-1", "pct": np.float64(93.5), "x": np.nan})
    app.publish("matrix", np.array([[1, 2], [3, 4]]))
    assert ctx.published == [
        ("alerts/overload", b'{"cell":"001-01-1","pct":93.5,"x":null}'),
        ("matrix", b"[[1,2],[3,4]]"),
    ]
    assert ctx.published_json()[0][1]["pct"] == 93.5
    app.publish("raw", b"\x00\x01")
    assert ctx.published[2] == ("raw", b"\x00\x01")


@pytest.mark.parametrize(
    ("suffix", "problem"),
    [
        ("alerts/+", "wildcards"),
        ("#", "wildcards"),
        ("../other/x", "'..'"),
        ("a/../../b", "'..'"),
        ("/absolute", "must not start with '/'"),
        ("a//b", "empty or '.' level"),
        ("trailing/", "empty or '.' level"),
        ("", "non-empty"),
        ("bad\nline", "control characters"),
    ],
)
async def test_a_bad_publish_suffix_is_refused_with_a_clear_error(
    suffix: str, problem: str
) -> None:
    """A suffix that could leave or widen the xApp's topic space raises ValueError naming the
    xApp, the suffix and the problem, and nothing is published."""
    app, ctx = await start_xapp(Talker)
    with pytest.raises(ValueError, match="xApp talker: publish topic suffix") as err:
        app.publish(suffix, {"a": 1})
    assert problem in str(err.value)
    assert ctx.published == []


async def test_a_payload_that_cannot_be_sent_is_refused_not_raised() -> None:
    """A payload JSON cannot encode, or one over the size limit, is refused: publish returns
    False, nothing is sent, and the xApp goes on (no exception)."""
    app, ctx = await start_xapp(Talker)
    assert app.publish("x", {"when": object()}) is False
    assert app.publish("x", b"0" * (MAX_PUBLISH_BYTES + 1)) is False
    assert app.publish("x", {"cells": list(range(MAX_PUBLISH_BYTES))}) is False
    assert ctx.published == []
    assert ctx.refused == [("x", "unencodable"), ("x", "too_large"), ("x", "too_large")]
    assert app.publish("x", {"ok": 1}) is True


def test_a_payload_far_over_the_limit_is_refused_before_it_is_encoded() -> None:
    """The size check gives up on a huge payload after about the limit's worth of elements,
    so a 1,000,000-element list is refused without encoding (the error names the limit)."""

    class Counted(float):
        """A number that counts how often the encoder converts it."""

        seen = 0

        def tolist(self) -> float:
            Counted.seen += 1
            return float(self)

    payload = {"cells": [Counted(1.0) for _ in range(1_000_000)]}
    with pytest.raises(PublishRefused, match="over 1024 bytes") as err:
        encode_payload("kpimon", "kpis", payload, limit=1024)
    assert err.value.reason == "too_large"
    assert Counted.seen == 0


class Publisher(XApp):
    """Publishes a small and a huge payload on each report; counts what publish returned."""

    name = "publisher"
    reports = [Report("RRU.PrbUsedDl", period_ms=100)]
    results: list[bool]

    async def on_start(self) -> None:
        self.results = []

    async def on_report(self, report: Any) -> None:
        self.results.append(self.publish("small", {"n": 1}))
        self.results.append(self.publish("huge", {"cells": ["001-01-1"] * 100_000}))


class Unencodable:
    """A payload whose encoding would fail loudly: it must never be encoded without a bridge."""

    def tolist(self) -> Any:
        raise AssertionError("encoded although no MQTT bridge is configured")


async def test_publish_without_a_bridge_costs_nothing_and_never_fails() -> None:
    """With no MQTT bridge, publish returns False at once without encoding (not even a payload
    that cannot be encoded or is far over the limit), and refuses nothing."""
    config = load_config(environ={}, overrides={"e2.port": 0, "http.enabled": False})
    sensor = PrometheusSensor(config.metrics, process=False)
    plugins = [Plugin(Talker, "test:Talker")]
    async with Runtime(config, plugins, sensors=[sensor], components=[sensor]) as runtime:
        host = runtime.host("talker")
        await wait_for(lambda: host.instance is not None, what="talker started")
        app = host.instance
        assert isinstance(app, Talker)
        assert app.publishing is False
        assert app.publish("x", Unencodable()) is False
        assert app.publish("x", b"0" * (10 * MAX_PUBLISH_BYTES)) is False
        text = generate_latest(sensor.registry).decode()
    assert 'ric_xapp_publish_refused_total{reason="too_large",xapp="talker"} 0.0' in text


async def test_an_over_size_publish_with_a_bridge_is_refused_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With a bridge, a payload over [xapps] max_publish_bytes is refused: publish returns
    False, ric_xapp_publish_refused_total counts it, an error names the xApp, the topic and
    the limit, the xApp keeps running; payloads within the limit still reach the bridge."""
    config = load_config(
        environ={},
        overrides={
            "e2.port": 0,
            "http.enabled": False,
            "mqtt.enabled": True,
            "mqtt.port": _closed_port(),
            "xapps.max_publish_bytes": 100_000,
        },
    )
    sensor = PrometheusSensor(config.metrics, process=False)
    bridge = mqtt_bridge(config)
    assert bridge is not None
    plugins = [Plugin(Publisher, "test:Publisher")]
    async with Runtime(
        config, plugins, sensors=[sensor, bridge], components=[sensor, bridge]
    ) as rt:
        host = rt.host("publisher")
        await wait_for(lambda: host.instance is not None, what="publisher started")
        app = host.instance
        assert isinstance(app, Publisher) and app.publishing
        for _ in range(2):
            host.deliver(make_report("n", EntityKind.CELL, {"RRU.PrbUsedDl": [1.0]}, ["c"]))
        await wait_for(lambda: len(app.results) == 4, what="two reports handled")
        # A thread-mode xApp's publishes and refusals reach the bridge and the metrics on the
        # runtime's loop, a hand-off after its handler returned: wait for the last of them.
        refused = 'ric_xapp_publish_refused_total{reason="too_large",xapp="publisher"} 2.0'
        await wait_for(
            lambda: refused in generate_latest(sensor.registry).decode(),
            what="both refusals counted",
        )
        text = generate_latest(sensor.registry).decode()
        assert host.state.value == "running" and host.restarts == 0
        topics = [m.topic for m in bridge._queue]
    assert app.results == [True, False, True, False]
    assert topics.count("ric/xapps/publisher/small") == 2
    assert "ric/xapps/publisher/huge" not in topics
    assert 'ric_xapp_publish_refused_total{reason="too_large",xapp="publisher"} 2.0' in text
    assert 'ric_xapp_crashes_total{xapp="publisher"}' not in text
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any(
        "xApp publisher: the payload published to 'huge'" in m and "100000 byte" in m
        for m in errors
    ), errors


def test_on_config_must_be_async() -> None:
    """A plugin whose on_config hook is not async is refused at load."""

    class Sync(XApp):
        """Has a synchronous on_config."""

        name = "sync"

        def on_config(self, config: XApp.Config) -> None:  # type: ignore[override]
            """Wrong: not async."""

    with pytest.raises(PluginError, match="on_config must be an async method"):
        check_xapp(Sync, "test:Sync")


async def test_reconfigure_replaces_the_config_or_changes_nothing() -> None:
    """``XAppHost.reconfigure`` validates against the Config: a valid change reaches the
    running instance through on_config; an invalid one names the key and changes nothing."""
    config = load_config(environ={}, overrides={"e2.port": 0, "http.enabled": False})
    async with Runtime(config, [Plugin(Talker, "test:Talker")]) as runtime:
        host = runtime.host("talker")
        await wait_for(lambda: host.instance is not None, what="talker started")
        app = host.instance
        assert isinstance(app, Talker)
        new = host.reconfigure({"threshold": 0.9})
        await wait_for(lambda: app.changes, what="on_config")
        assert app.config.threshold == 0.9 and app.changes == [new]
        assert host.config == new
        with pytest.raises(ConfigError) as err:
            host.reconfigure({"threshold": "high"})
        assert err.value.key == "xapps.config.talker.threshold"
        with pytest.raises(ConfigError, match="bogus"):
            host.reconfigure({"bogus": 1})
        assert host.config == new and app.config == new and len(app.changes) == 1


# -- the bridge's queue, rate limit and metrics, with no broker ---------------------------------


def _outcome(ue: str) -> ControlOutcome:
    return ControlOutcome(
        OutcomeKind.ACKNOWLEDGED, Handover(ue, "001-01-4097", "001-01-4098"), latency_s=0.001
    )


def test_a_full_queue_drops_the_oldest_and_counts_it() -> None:
    """With no broker, events wait in the bounded queue; beyond it the oldest are dropped and
    counted, the hooks never block, and readiness says the bridge is down."""
    bridge = MqttBridge(_settings(queue_size=3))
    for ue in range(10):
        bridge.control_finished("mlb", _outcome(str(ue)))
    bridge.xapp_published("mlb", "insight", b"{}")
    assert bridge.queue_depth == 3
    assert bridge.stats.dropped["queue_full"] == 8
    kept = [m.topic for m in bridge._queue]
    assert kept == ["ric/controls/mlb", "ric/controls/mlb", "ric/xapps/mlb/insight"]
    check = bridge.checks()[0]
    assert (check.name, check.ok) == ("mqtt", False)


def test_retained_state_is_kept_apart_from_the_queue() -> None:
    """Node and xApp states are not dropped with the queue: the latest of each is kept to be
    (re)published on every connect."""
    bridge = MqttBridge(_settings(queue_size=1))
    bridge.xapp_state("mlb", "starting")
    bridge.xapp_state("mlb", "running")
    for ue in range(5):
        bridge.control_finished("mlb", _outcome(str(ue)))
    body, qos = bridge._retained["ric/state/xapps/mlb"]
    assert body["state"] == "running" and qos == 1


async def test_kpm_is_published_per_cell_with_units_and_rate_limited() -> None:
    """One message per cell with each metric's value and unit (NaN as null); a second report
    within ``kpm_interval_s`` is skipped and counted, a later one goes out."""
    clock = ManualClock()
    bridge = MqttBridge(
        _settings(kpm_metrics=["RRU.PrbUsedDl", "DRB.RlcSduDelayDl"], kpm_interval_s=1.0),
        ric_id="r1",
        clock=clock,
    )
    report = make_report(
        "gnb-001-01-1",
        EntityKind.CELL,
        {"RRU.PrbUsedDl": [10.0, 20.0], "DRB.RlcSduDelayDl": [float("nan"), 3.0]},
        ["001-01-4097", "001-01-4098"],
    )
    bridge.kpm_report(report)
    bridge.kpm_report(report)
    assert bridge.queue_depth == 2 and bridge.stats.kpm_rate_limited == 2
    first = bridge._queue[0]
    assert first.topic == "ric/kpm/gnb-001-01-1/001-01-4097"
    assert isinstance(first.body, dict)
    assert first.body["metrics"] == {
        "RRU.PrbUsedDl": {"value": 10.0, "unit": "PRB"},
        "DRB.RlcSduDelayDl": {"value": None, "unit": "0.1 ms"},
    }
    assert first.body["ric_id"] == "r1" and first.body["node"] == "gnb-001-01-1"
    json.dumps(first.body, allow_nan=False)
    await clock.advance(1.0)
    bridge.kpm_report(report)
    assert bridge.queue_depth == 4
    assert KPM_UNITS["DRB.UEThpDl"] == "kbit/s"


def test_the_internal_kpm_xapp_declares_the_configured_report() -> None:
    """The bridge's internal xApp asks for the opted-in metrics per cell at the interval."""
    bridge = MqttBridge(_settings(kpm_metrics=["RRU.PrbUsedDl"], kpm_interval_s=2.5))
    plugin = bridge.kpm_plugin()
    assert plugin is not None
    cls = check_xapp(plugin.cls, plugin.source)
    assert cls.name == BRIDGE_XAPP
    (report,) = cls.reports
    assert (report.metrics, report.period_ms, report.per) == (("RRU.PrbUsedDl",), 2500, "cell")
    assert MqttBridge(_settings()).kpm_plugin() is None


async def test_mqtt_series_are_exported_to_prometheus() -> None:
    """With a Prometheus sensor installed, the bridge's counters appear as ric_mqtt_* series
    (here with no broker: not connected, failures counted)."""
    config = load_config(
        environ={},
        overrides={
            "e2.port": 0,
            "http.enabled": False,
            "mqtt.enabled": True,
            "mqtt.port": _closed_port(),
            "mqtt.reconnect_min_s": 0.01,
            "mqtt.reconnect_max_s": 0.05,
        },
    )
    sensor = PrometheusSensor(config.metrics, process=False)
    bridge = mqtt_bridge(config)
    assert bridge is not None
    async with Runtime(config, sensors=[sensor, bridge], components=[sensor, bridge]):
        await wait_for(lambda: bridge.stats.connect_failures >= 2, what="failed connects")
        bridge.xapp_published("x", "y", b"1")
        text = generate_latest(sensor.registry).decode()
    assert "ric_mqtt_connected 0.0" in text
    assert 'ric_mqtt_messages_dropped_total{reason="queue_full"} 0.0' in text
    assert 'ric_mqtt_messages_published_total{kind="kpm"} 0.0' in text
    assert "ric_mqtt_queue_depth 1.0" in text
    assert "ric_mqtt_connect_failures_total" in text
    assert "ric_mqtt" not in generate_latest(sensor.registry).decode()  # unregistered at stop


async def test_control_messages_carry_pseudonyms_when_privacy_is_on() -> None:
    """With [privacy] pseudonymize_ue_ids, the control published for a UE names its pseudonym,
    never its RAN UE id."""
    config = load_config(environ={}, overrides={"e2.port": 0, "privacy.pseudonymize_ue_ids": True})
    async with Runtime(config, listen=False) as runtime:
        bridge = MqttBridge(_settings())
        bridge._runtime = runtime
        bridge.control_finished("mlb", _outcome("4242"))
        [message] = list(bridge._queue)
    body = message.body
    assert isinstance(body, dict)
    assert body["target"] == f"ue:{runtime.privacy.ue(4242)}"
    assert "4242" not in json.dumps(body)
