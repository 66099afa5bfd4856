"""``Runtime.from_config`` against ``ric run --config``: one TOML file, the same RIC.

Both read the same file: E2 and HTTP on free loopback ports, the MQTT bridge to a real
mosquitto (the ``broker`` fixture), a trace recording. Each serves /readyz with the same
checks and /metrics with the MQTT series, publishes its state on the broker, and leaves a
trace file behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ric.config import RuntimeConfig
from ric.runtime import Runtime
from ric.trace.format import TraceReader
from tests.adversarial.conftest import free_port, write_config
from tests.conftest import wait_for
from tests.integration.test_mqtt_bridge import Broker, Subscriber

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def mosquitto(tmp_path: Path) -> AsyncIterator[Broker]:
    """A running mosquitto on a free loopback port, always stopped after the test."""
    folder = tmp_path / "broker"
    folder.mkdir()
    broker = Broker(folder)
    try:
        await broker.start()
        yield broker
    finally:
        await broker.close()


def _config_file(folder: Path, broker: Broker) -> tuple[Path, int, Path]:
    """The TOML file both runs read; its HTTP port and trace path."""
    http_port = free_port()
    trace = folder / "run.trace.gz"
    write_config(
        folder / "ric.toml",
        {
            "e2": {"host": "127.0.0.1", "port": free_port()},
            "http": {"host": "127.0.0.1", "port": http_port, "readiness_interval_s": 0.1},
            "mqtt": {
                "enabled": True,
                "port": broker.port,
                "topic_prefix": "one",
                "reconnect_min_s": 0.05,
                "reconnect_max_s": 0.2,
            },
            "trace": {"record": str(trace)},
            "log": {"level": "warning"},
        },
        {"ric_id": "same-file"},
    )
    return folder / "ric.toml", http_port, trace


async def _observe(http_port: int, sub: Subscriber) -> dict[str, Any]:
    """What a RIC serves once ready: its readiness checks, the MQTT series it exports, and
    the runtime state it published."""
    url = f"http://127.0.0.1:{http_port}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        ready: dict[str, Any] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(f"{url}/readyz") as r:
                    ready = await r.json()
                    if r.status == 200:
                        break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"{url}/readyz did not answer 200 in 30 s: {ready}")
        async with http.get(f"{url}/metrics") as r:
            assert r.status == 200
            metrics = await r.text()
    state = await sub.first("one/state/runtime", lambda body: body["online"])
    return {
        "checks": sorted(c["name"] for c in ready["checks"]),
        "mqtt_connected": "ric_mqtt_connected 1.0" in metrics,
        "ready_series": "ric_ready 1.0" in metrics,
        "state": {k: state[k] for k in ("ric_id", "online")},
    }


def _trace(path: Path) -> dict[str, Any]:
    reader = TraceReader(path)
    try:
        return {"ric_id": reader.header.ric_id, "source": reader.header.source}
    finally:
        reader.close()


async def test_from_config_serves_as_ric_run_does(tmp_path: Path, mosquitto: Broker) -> None:
    """A Runtime built by from_config from RuntimeConfig.from_file serves the same readiness
    checks, /metrics with the MQTT series, MQTT state and a trace file as ``ric run --config``
    on the same file."""
    broker = mosquitto
    path, http_port, trace = _config_file(tmp_path, broker)

    async with Subscriber(broker.port, "one/#") as sub:
        runtime = Runtime.from_config(RuntimeConfig.from_file(path, environ={}))
        async with runtime:
            embedded = await _observe(http_port, sub)
        embedded_trace = _trace(trace)
    trace.rename(tmp_path / "embedded.trace.gz")

    env = {k: v for k, v in os.environ.items() if not k.startswith("RIC_")}
    env["PYTHONPATH"] = str(ROOT)
    log = tmp_path / "ric-run.log"
    async with Subscriber(broker.port, "one/#") as sub:
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "ric", "run", "--config", str(path),
                stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out, env=env,
            )  # fmt: skip
        try:
            child = await _observe(http_port, sub)
        finally:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0, log.read_text()
    await wait_for(trace.exists, what="the child's trace file")

    assert embedded == child
    assert embedded["checks"] == ["e2", "http", "mqtt", "sdl", "trace"]
    assert embedded["mqtt_connected"] and embedded["ready_series"]
    assert embedded["state"] == {"ric_id": "same-file", "online": True}
    assert embedded_trace == _trace(trace) == {"ric_id": "same-file", "source": "ric run --record"}
