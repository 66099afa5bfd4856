"""The MQTT bridge against a real mosquitto broker on a free loopback port.

The broker is started by the ``broker`` fixture (``broker_off`` gives one not yet started)
with a temporary configuration, and always stopped. The tests fail, not skip, when mosquitto
is not installed (``make test`` installs it on Debian).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np
import pytest

from ric import KpmReport, SlicePrbQuota, XApp
from ric.config import load_config
from ric.mqtt import MqttBridge, mqtt_bridge
from ric.plugins import Plugin
from ric.runtime import Runtime
from ric.sensors import Stats
from ric.sim import Simulator, load_scenario
from tests.conftest import Recorder, wait_for

ROOT = Path(__file__).resolve().parents[2]
SMALL = ROOT / "seeds" / "small.toml"
SMALL_CELLS = {"001-01-4097", "001-01-4098", "001-01-8193", "001-01-12289"}
KPM = ["RRU.PrbUsedDl", "RRU.PrbAvailDl", "DRB.UEThpDl"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _mosquitto() -> str:
    for candidate in (
        shutil.which("mosquitto"),
        "/usr/sbin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("mosquitto is not installed: apt-get install mosquitto (make test does it)")


class Broker:
    """One mosquitto process at a time on a fixed loopback port: start, kill, start again."""

    def __init__(self, folder: Path, extra: str = "") -> None:
        self.exe = _mosquitto()
        self.port = _free_port()
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence false\n"  # a restarted broker has lost the retained messages
            "log_dest stderr\n" + extra
        )
        self.log_path = folder / f"mosquitto-{self.port}.log"
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed by close()
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start the broker and wait until it accepts connections."""
        assert self.proc is None, "the broker is already running"
        self.proc = await asyncio.create_subprocess_exec(
            self.exe, "-c", str(self.conf), stdout=self.log, stderr=self.log
        )
        for _ in range(500):
            if self.proc.returncode is not None:
                pytest.fail(f"mosquitto exited: {self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                await writer.wait_closed()
                return
            await asyncio.sleep(0.01)
        pytest.fail("mosquitto did not listen within 5 s")

    async def kill(self) -> None:
        """Kill the broker at once (SIGKILL), as a crash would."""
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()

    async def close(self) -> None:
        """Kill the broker if it runs, and close its log."""
        await self.kill()
        self.log.close()


@pytest.fixture
async def broker_off(tmp_path: Path) -> AsyncIterator[Broker]:
    """A mosquitto broker not yet started; it is always stopped after the test."""
    broker = Broker(tmp_path)
    try:
        yield broker
    finally:
        await broker.close()


@pytest.fixture
async def broker(broker_off: Broker) -> Broker:
    """A running mosquitto broker on a free loopback port."""
    await broker_off.start()
    return broker_off


@dataclass
class Received:
    """One message a test subscriber received."""

    topic: str
    payload: bytes
    retain: bool

    def json(self) -> Any:
        """The payload decoded from JSON."""
        return json.loads(self.payload)


class Subscriber:
    """Collects every message under ``topic`` in the background."""

    def __init__(self, port: int, topic: str = "ric/#") -> None:
        self.port = port
        self.topic = topic
        self.messages: list[Received] = []
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Subscriber:
        client = aiomqtt.Client("127.0.0.1", self.port)
        await self._stack.enter_async_context(client)
        await client.subscribe(self.topic, qos=1)
        tg = await self._stack.enter_async_context(asyncio.TaskGroup())
        task = tg.create_task(self._collect(client))
        self._stack.callback(task.cancel)
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            await self._stack.aclose()

    async def _collect(self, client: aiomqtt.Client) -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            async for message in client.messages:
                payload = message.payload
                assert isinstance(payload, bytes)
                self.messages.append(Received(str(message.topic), payload, message.retain))

    def on(self, topic: str) -> list[Received]:
        """The messages on ``topic`` (``+`` matches one level), in order."""
        return [m for m in self.messages if aiomqtt.Topic(m.topic).matches(topic)]

    async def first(
        self, topic: str, where: Callable[[Any], bool] = lambda _: True, timeout: float = 10.0
    ) -> Any:
        """The first JSON payload on ``topic`` for which ``where`` holds (waiting for it)."""
        found: list[Any] = []

        def seen() -> bool:
            found[:] = [m.json() for m in self.on(topic) if where(m.json())]
            return bool(found)

        await wait_for(seen, timeout=timeout, what=f"a message on {topic}")
        return found[0]


@contextlib.asynccontextmanager
async def ric_with_bridge(
    port: int, *classes: type[XApp], **mqtt: Any
) -> AsyncIterator[tuple[Runtime, MqttBridge, Stats]]:
    """A runtime on a free E2 port with ``classes`` and the bridge on ``port``."""
    overrides = {
        "e2.port": 0,
        "http.enabled": False,
        "mqtt.enabled": True,
        "mqtt.port": port,
        "mqtt.reconnect_min_s": 0.05,
        "mqtt.reconnect_max_s": 0.2,
        "mqtt.timeout_s": 2.0,
        **{f"mqtt.{k}": v for k, v in mqtt.items()},
    }
    config = load_config(environ={}, overrides=overrides)
    bridge = mqtt_bridge(config)
    assert bridge is not None
    stats = Stats()
    plugins = [Plugin(c, f"test:{c.__name__}") for c in classes]
    async with Runtime(config, plugins, sensors=[stats, bridge], components=[bridge]) as runtime:
        yield runtime, bridge, stats


def _ready(runtime: Runtime, name: str = "mqtt") -> bool:
    return next(c.ok for c in runtime.checks() if c.name == name)


def _recorder(runtime: Runtime) -> Recorder:
    app = runtime.host("recorder").instance
    assert isinstance(app, Recorder)
    return app


async def test_a_subscriber_gets_kpm_node_and_control_messages_in_the_documented_schema(
    broker: Broker,
) -> None:
    """With the simulated network, a subscriber receives the runtime and node states
    (retained), per-cell KPM with units, xApp states, and a control with its outcome; when the
    network stops, the nodes are marked offline with the reason."""
    async with (
        Subscriber(broker.port) as sub,
        ric_with_bridge(broker.port, Recorder, kpm_metrics=KPM, kpm_interval_s=0.2) as (
            runtime,
            bridge,
            _,
        ),
    ):
        async with Simulator(load_scenario(SMALL), f"127.0.0.1:{runtime.port}") as sim:
            await sim.wait_ready()
            status = await sub.first("ric/state/runtime")
            assert status == {
                "ric_id": "ric",
                "online": True,
                "time": status["time"],
                "version": status["version"],
                "reason": None,
            }
            assert isinstance(status["time"], float)

            node = await sub.first("ric/state/nodes/gnb-001-01-1", lambda b: b["online"])
            assert set(node) == {
                "ric_id",
                "node",
                "online",
                "time",
                "reason",
                "vendor",
                "software_version",
                "cells",
                "ran_functions",
            }
            assert node["vendor"] == "Acme Radio Systems"
            assert set(node["cells"]) == {"001-01-4097", "001-01-4098"}
            assert {f["name"] for f in node["ran_functions"]} == {
                "ORAN-E2SM-KPM",
                "ORAN-E2SM-RC",
                "ORAN-E2SM-CCC",
            }

            await wait_for(
                lambda: {m.json()["cell"] for m in sub.on("ric/kpm/+/+")} == SMALL_CELLS,
                what="KPM of every cell",
            )
            kpm = sub.on("ric/kpm/gnb-001-01-1/001-01-4097")[0].json()
            assert set(kpm) == {
                "ric_id",
                "node",
                "cell",
                "time",
                "collection_start",
                "granularity_ms",
                "metrics",
            }
            assert (kpm["node"], kpm["cell"]) == ("gnb-001-01-1", "001-01-4097")
            assert kpm["metrics"]["RRU.PrbUsedDl"]["unit"] == "PRB"
            assert kpm["metrics"]["DRB.UEThpDl"]["unit"] == "kbit/s"
            assert set(kpm["metrics"]) == set(KPM)
            for value in kpm["metrics"].values():
                assert value["value"] is None or isinstance(value["value"], float)
            assert kpm["granularity_ms"] > 0 and kpm["collection_start"] > 0

            app = _recorder(runtime)
            outcome = await app.control(
                SlicePrbQuota(cell_id="001-01-4097", slice="1-000001", max_pct=80), timeout=2.0
            )
            control = await sub.first("ric/controls/recorder")
            assert control["outcome"] == outcome.kind.value
            assert control["action"] == "slice_prb_quota"
            assert control["node"] == "gnb-001-01-1"
            assert control["parameters"]["max_pct"] == 80
            assert isinstance(control["latency_ms"], float)
            assert {"seq", "time", "xapp", "target", "cause", "detail", "request_id"} <= set(
                control
            )
            state = await sub.first("ric/state/xapps/recorder", lambda b: b["state"] == "running")
            assert set(state) == {"ric_id", "xapp", "state", "time"}
        down = await sub.first("ric/state/nodes/gnb-001-01-2", lambda b: not b["online"])
        assert down["reason"]
        assert bridge.stats.published["kpm"] >= len(SMALL_CELLS)
        assert bridge.stats.dropped["queue_full"] == 0


async def test_broker_killed_and_restarted_mid_run(broker: Broker) -> None:
    """Killing the broker does not pause E2 or the xApps (reports keep arriving); the bridge
    reports itself down, counts what its full queue drops, reconnects when the broker is back
    and publishes the retained state again."""
    async with (
        ric_with_bridge(
            broker.port, Recorder, kpm_metrics=KPM, kpm_interval_s=0.1, queue_size=5
        ) as (runtime, bridge, stats),
        Simulator(load_scenario(SMALL), f"127.0.0.1:{runtime.port}") as sim,
    ):
        await sim.wait_ready()
        app = _recorder(runtime)
        await wait_for(lambda: bridge.stats.published["kpm"] > 0, what="KPM published")

        await broker.kill()
        await wait_for(lambda: not _ready(runtime), what="the bridge to report itself down")
        assert _ready(runtime, "e2") and _ready(runtime, "xapp:recorder")
        reports, indications = len(app.seen), stats.indication_count
        await wait_for(lambda: bridge.stats.dropped["queue_full"] > 0, what="queue drops")
        await wait_for(lambda: len(app.seen) >= reports + 10, what="reports in the outage")
        assert stats.indication_count > indications
        await wait_for(lambda: bridge.stats.connect_failures >= 1, what="a failed reconnect")
        assert bridge.stats.disconnects == 1 and not bridge.stats.connected

        kpm, state = bridge.stats.published["kpm"], bridge.stats.published["state"]
        await broker.start()
        await wait_for(lambda: _ready(runtime), what="the bridge to reconnect")
        # The restarted broker lost every retained message; the bridge publishes them again.
        retained = len(bridge._retained)
        await wait_for(
            lambda: bridge.stats.published["state"] >= state + retained, what="republished"
        )
        async with Subscriber(broker.port) as sub:
            status = await sub.first("ric/state/runtime")
            assert status["online"] is True
            assert sub.on("ric/state/runtime")[0].retain
            assert (await sub.first("ric/state/nodes/gnb-001-01-3"))["online"] is True
            assert sub.on("ric/state/nodes/gnb-001-01-3")[0].retain
            await wait_for(lambda: bridge.stats.published["kpm"] > kpm, what="KPM resumes")
            await sub.first("ric/kpm/+/+")
        assert bridge.stats.connects == 2


async def test_broker_absent_at_start(broker_off: Broker) -> None:
    """With no broker the runtime serves E2 and xApps while readiness says the bridge is down;
    once the broker appears the bridge connects and readiness passes."""
    async with (
        ric_with_bridge(broker_off.port, Recorder) as (runtime, bridge, _),
        Simulator(load_scenario(SMALL), f"127.0.0.1:{runtime.port}", nodes=[2]) as sim,
    ):
        await sim.wait_ready()
        await wait_for(lambda: _recorder(runtime).seen, what="reports without a broker")
        await wait_for(lambda: bridge.stats.connect_failures >= 2, what="connect retries")
        check = next(c for c in runtime.checks() if c.name == "mqtt")
        assert not check.ok
        assert f"not connected to 127.0.0.1:{broker_off.port}" in check.detail
        assert _ready(runtime, "e2") and _ready(runtime, "xapp:recorder")

        await broker_off.start()
        await wait_for(lambda: _ready(runtime), what="the bridge to connect")
        retained = len(bridge._retained)
        await wait_for(lambda: bridge.stats.published["state"] >= retained, what="state sent")
        async with Subscriber(broker_off.port) as sub:
            node = await sub.first("ric/state/nodes/gnb-001-01-2")
            assert node["online"] is True
            assert sub.on("ric/state/nodes/gnb-001-01-2")[0].retain


async def test_last_will_marks_the_runtime_offline_when_it_is_killed(
    broker: Broker, tmp_path: Path
) -> None:
    """``ric run`` with [mqtt] enabled publishes itself online (retained); killed with
    SIGKILL, the broker publishes its last will, and a new subscriber finds it offline."""
    config = tmp_path / "ric.toml"
    config.write_text(
        'ric_id = "lw"\n'
        "[e2]\nport = 0\n"
        "[http]\nenabled = false\n"
        f'[mqtt]\nenabled = true\nport = {broker.port}\ntopic_prefix = "lw"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIC_")}
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "ric", "run", "--config", str(config), "--log-level", "warning"),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with Subscriber(broker.port, "lw/#") as sub:
            started = sub.first("lw/state/runtime", lambda b: b["online"], timeout=30)
            exited = asyncio.ensure_future(proc.wait())
            done, _ = await asyncio.wait(
                {asyncio.ensure_future(started), exited}, return_when=asyncio.FIRST_COMPLETED
            )
            if exited in done:
                assert proc.stderr is not None
                pytest.fail(f"ric run exited: {(await proc.stderr.read()).decode()[-2000:]}")
            online = done.pop().result()
            assert online["ric_id"] == "lw"
            os.kill(proc.pid, signal.SIGKILL)
            await exited
            will = await sub.first("lw/state/runtime", lambda b: not b["online"])
            assert will["reason"] == "connection lost (last will)"
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
    async with Subscriber(broker.port, "lw/state/runtime") as late:
        kept = await late.first("lw/state/runtime")
        assert kept["online"] is False
        assert late.on("lw/state/runtime")[0].retain


class Publisher(XApp):
    """Publishes its insights through the SDK."""

    name = "insight"


async def test_an_xapp_publishes_under_its_own_topics(broker: Broker) -> None:
    """What an xApp publishes arrives under ``<prefix>/xapps/<xapp>/``; a suffix that would
    leave or widen that space is refused with a clear error and never sent."""
    async with (
        Subscriber(broker.port, "site1/#") as sub,
        ric_with_bridge(broker.port, Publisher, topic_prefix="site1") as (runtime, bridge, _),
    ):
        await wait_for(lambda: _ready(runtime), what="the bridge to connect")
        app = runtime.host("insight").instance
        assert app is not None
        app.publish("cells/001-01-4097/load", {"prb_pct": np.float64(91.5), "ues": np.int64(3)})
        for bad in ("../mlb/x", "a/+", "#", "/abs"):
            with pytest.raises(ValueError, match="xApp insight: publish topic suffix"):
                app.publish(bad, {"x": 1})
        body = await sub.first("site1/xapps/insight/cells/001-01-4097/load")
        assert body == {"prb_pct": 91.5, "ues": 3}
        await wait_for(lambda: bridge.stats.published["xapps"] == 1, what="published count")
        assert [m.topic for m in sub.on("site1/xapps/#")] == [
            "site1/xapps/insight/cells/001-01-4097/load"
        ]


class Tuner(XApp):
    """An xApp with settings that can be changed while it runs."""

    name = "tuner"

    class Config(XApp.Config):
        threshold: float = 0.5
        mode: str = "gentle"

    config: Config
    changes: list[XApp.Config]

    async def on_start(self) -> None:
        self.changes = []

    async def on_config(self, config: XApp.Config) -> None:
        self.changes.append(config)

    async def on_report(self, report: KpmReport) -> None:
        """Unused."""


async def test_inbound_config_change_applied_or_refused_with_the_key(broker: Broker) -> None:
    """A valid message on ``<prefix>/config/<xapp>/set`` replaces the xApp's config and is
    acknowledged on ``.../reply``; an invalid one is answered with the key and the error and
    changes nothing; an unknown xApp is answered too."""
    async with (
        Subscriber(broker.port, "ric/config/#") as sub,
        ric_with_bridge(broker.port, Tuner, inbound_config=True) as (runtime, bridge, _),
        aiomqtt.Client("127.0.0.1", broker.port) as operator,
    ):
        await wait_for(lambda: _ready(runtime), what="the bridge to connect")
        host = runtime.host("tuner")
        app = host.instance
        assert isinstance(app, Tuner)

        await operator.publish("ric/config/tuner/set", json.dumps({"threshold": 0.9}), qos=1)
        reply = await sub.first("ric/config/tuner/reply")
        assert reply["ok"] is True
        assert reply["config"] == {"threshold": 0.9, "mode": "gentle"}
        await wait_for(lambda: app.changes, what="on_config")
        assert app.config.threshold == 0.9 and host.config == app.config

        await operator.publish("ric/config/tuner/set", json.dumps({"threshold": "high"}), qos=1)
        refused = await sub.first("ric/config/tuner/reply", lambda b: not b["ok"])
        assert refused["key"] == "threshold"
        assert "xapps.config.tuner.threshold" in refused["error"]
        await operator.publish("ric/config/tuner/set", b"not json", qos=1)
        await operator.publish("ric/config/nobody/set", b"{}", qos=1)
        unknown = await sub.first("ric/config/nobody/reply")
        assert unknown["ok"] is False and "no xApp named 'nobody'" in unknown["error"]
        await wait_for(lambda: bridge.stats.config_changes["refused"] == 3, what="refusals")
        assert app.config.threshold == 0.9 and len(app.changes) == 1
        assert getattr(host.config, "threshold") == 0.9  # noqa: B009  # the xApp's own Config


def _openssl(*args: str | Path) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        pytest.fail("openssl is not installed (apt-get install openssl)")
    subprocess.run([exe, *map(str, args)], check=True, capture_output=True)


def _certificates(folder: Path) -> tuple[Path, Path]:
    """A CA, a broker certificate it signed for 127.0.0.1, and an unrelated CA; the two CAs."""
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    for name in ("ca", "other-ca"):
        _openssl("req", "-x509", *ec, "-keyout", folder / f"{name}.key", "-out", folder / f"{name}.crt", "-days", "2", "-subj", f"/CN=test {name}")  # fmt: skip
    _openssl("req", *ec, "-keyout", folder / "broker.key", "-out", folder / "broker.csr", "-subj", "/CN=localhost")  # fmt: skip
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", folder / "broker.csr", "-CA", folder / "ca.crt", "-CAkey", folder / "ca.key", "-CAcreateserial", "-out", folder / "broker.crt", "-days", "2", "-extfile", folder / "san.cnf")  # fmt: skip
    return folder / "ca.crt", folder / "other-ca.crt"


async def test_tls_verifies_the_broker_certificate(tmp_path: Path) -> None:
    """Over TLS the bridge connects to a broker whose certificate its CA signed, and refuses
    (readiness down, the verification error named) one that an unknown CA signed."""
    ca, other = _certificates(tmp_path)
    user = "root" if os.geteuid() == 0 else ""  # as root, mosquitto would drop to 'mosquitto'
    tls = Broker(
        tmp_path,
        f"cafile {ca}\ncertfile {tmp_path / 'broker.crt'}\nkeyfile {tmp_path / 'broker.key'}\n"
        + (f"user {user}\n" if user else ""),
    )
    try:
        await tls.start()
        async with ric_with_bridge(tls.port, tls={"enabled": True, "ca_file": str(ca)}) as (
            runtime,
            bridge,
            _,
        ):
            await wait_for(lambda: _ready(runtime), what="a TLS connection")
            await wait_for(lambda: bridge.stats.published["state"] > 0, what="state over TLS")
        async with ric_with_bridge(tls.port, tls={"enabled": True, "ca_file": str(other)}) as (
            runtime,
            bridge,
            _,
        ):
            await wait_for(lambda: bridge.stats.connect_failures >= 1, what="a refused broker")
            check = next(c for c in runtime.checks() if c.name == "mqtt")
            assert not check.ok and "certificate verify failed" in check.detail
            assert bridge.stats.connects == 0
    finally:
        await tls.close()
