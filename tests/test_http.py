"""The HTTP server: health and readiness (with gRPC health in step), /metrics, the status API
against its OpenAPI document (schemathesis), JSON errors, and the CLI's HTTP side."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import json
import logging
import re
import socket
import sys
from collections.abc import AsyncIterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import jsonschema
import pytest
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc
from schemathesis.core.warnings import SchemathesisWarning

from ric import KpmReport, Report, XApp
from ric.config import load_config
from ric.http import RUNTIME, HttpServer, build_app, observability, openapi_document
from ric.metrics import PrometheusSensor
from ric.runtime import Runtime
from ric.types import Check
from ric.view import RuntimeView
from tests.conftest import wait_for
from tests.integration.stack import (
    ROOT,
    SMALL,
    SMALL_CELLS,
    Ric,
    hostport,
    running_ric,
    xapp_plugins,
)

OPENAPI_FILE = ROOT / "ric" / "openapi.json"
QUIET_WARNINGS = {"missing_auth", "missing_test_data"}


def validate(body: Any, schema: dict[str, Any]) -> None:
    """Validate ``body`` against an OpenAPI schema (refs resolve in the whole document)."""
    jsonschema.validate(body, {**schema, "components": openapi_document()["components"]})


def response_schema(path: str, status: int) -> dict[str, Any]:
    """The JSON schema the OpenAPI document gives for GET ``path`` answering ``status``
    (``application/problem+json`` for an error, ``application/json`` otherwise)."""
    response = openapi_document()["paths"][path]["get"]["responses"][str(status)]
    kind = "application/problem+json" if status >= 400 and path != "/readyz" else "application/json"
    schema: dict[str, Any] = response["content"][kind]["schema"]
    return schema


def problem_json(status: int, detail: str) -> dict[str, Any]:
    """The RFC 9457 ProblemDetails every error of the server answers with."""
    return {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }


async def get(url: str, **kwargs: Any) -> tuple[int, Any, aiohttp.ClientResponse]:
    """GET ``url``: status, decoded JSON body, response."""
    async with aiohttp.ClientSession() as http, http.get(url, **kwargs) as response:
        return response.status, await response.json(), response


@pytest.fixture
async def ric() -> AsyncIterator[Ric]:
    """kpimon and mlb with the small simulated network, HTTP on a free port."""
    async with running_ric("kpimon", "mlb") as running:
        yield running


async def test_healthz_says_alive() -> None:
    """/healthz answers 200 while the process serves HTTP."""
    async with running_ric(sim=False) as ric:
        status, body, _ = await get(f"{ric.url}/healthz")
    assert (status, body) == (200, {"status": "alive"})
    validate(body, response_schema("/healthz", 200))


async def test_readyz_lists_every_check() -> None:
    """/readyz answers 200 with each check (E2, the SDL, every xApp, the HTTP server) passing."""
    async with running_ric("kpimon", sim=False) as ric:
        await wait_for(lambda: ric.runtime.host("kpimon").state.value == "running")
        status, body, _ = await get(f"{ric.url}/readyz")
    assert status == 200
    assert body["ready"] is True and body["failed"] == []
    assert [c["name"] for c in body["checks"]] == ["e2", "sdl", "xapp:kpimon", "http"]
    validate(body, response_schema("/readyz", 200))


class Broken(XApp):
    """Fails in on_start, every time."""

    name = "broken"
    reports = [Report("RRU.PrbUsedDl")]

    async def on_start(self) -> None:
        raise RuntimeError("cannot start")

    async def on_report(self, report: KpmReport) -> None:
        """Never reached."""


async def health_status(port: int) -> int:
    """The gRPC health service's answer for the E2 service."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)  # the stubs type the sync channel
        request = health_pb2.HealthCheckRequest(service="ric.e2.v1.E2Termination")
        response = await stub.Check(request)
        return int(response.status)


async def test_readyz_503_names_the_failed_xapp_and_grpc_health_follows() -> None:
    """An xApp that failed makes /readyz answer 503 naming its check, the E2 port's gRPC
    health service says NOT_SERVING too, and `ric status` shows it."""
    overrides = {"xapps.max_restarts": 0}
    async with running_ric(*xapp_plugins(Broken), sim=False, overrides=overrides) as ric:
        await wait_for(lambda: ric.runtime.host("broken").state.value == "failed")
        await wait_for_health(ric.runtime.port, health_pb2.HealthCheckResponse.NOT_SERVING)
        status, body, _ = await get(f"{ric.url}/readyz")
        code, out, _ = await ric_cli("status", "--url", ric.url)
    assert status == 503
    assert body["ready"] is False and body["failed"] == ["xapp:broken"]
    assert {"name": "xapp:broken", "ok": False, "detail": "failed"} in body["checks"]
    validate(body, response_schema("/readyz", 503))
    assert code == 0
    assert out.splitlines()[0] == f"ric at {ric.url}: NOT READY: xapp:broken (failed)"


class Switch:
    """A component whose readiness check a test turns on and off."""

    name = "switch"

    def __init__(self) -> None:
        self.ok = True

    async def start(self, runtime: RuntimeView) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""

    def checks(self) -> list[Check]:
        """One check, as the test set it."""
        return [Check("switch", self.ok, "" if self.ok else "switched off by the test")]


async def wait_for_health(port: int, status: int) -> None:
    """Poll the gRPC health service until it answers ``status`` (fail after 10 s)."""
    deadline = asyncio.get_running_loop().time() + 10
    while await health_status(port) != status:
        assert asyncio.get_running_loop().time() < deadline, f"gRPC health never became {status}"
        await asyncio.sleep(0.02)


async def test_readiness_and_grpc_health_follow_a_check_both_ways() -> None:
    """A component's check failing turns /readyz to 503 and gRPC health to NOT_SERVING; when it
    passes again both return to ready and SERVING, without anyone calling /readyz."""
    switch = Switch()
    async with running_ric(sim=False, components=[switch]) as ric:
        port = ric.runtime.port
        await wait_for_health(port, health_pb2.HealthCheckResponse.SERVING)
        switch.ok = False
        await wait_for_health(port, health_pb2.HealthCheckResponse.NOT_SERVING)
        status, body, _ = await get(f"{ric.url}/readyz")
        assert (status, body["failed"]) == (503, ["switch"])
        switch.ok = True
        await wait_for_health(port, health_pb2.HealthCheckResponse.SERVING)
        status, body, _ = await get(f"{ric.url}/readyz")
        assert (status, body["failed"]) == (200, [])


async def test_nodes_api_describes_each_node(ric: Ric) -> None:
    """/api/v1/nodes gives each node's id, vendor, software, RAN functions, cells, when it
    connected and its indication rate, per the OpenAPI document; one node by id too."""
    await ric.wait_for_cell_kpis()
    status, body, _ = await get(f"{ric.url}/api/v1/nodes")
    assert status == 200
    validate(body, response_schema("/api/v1/nodes", 200))
    nodes = {n["id"]: n for n in body["nodes"]}
    assert sorted(nodes) == ["gnb-001-01-1", "gnb-001-01-2", "gnb-001-01-3"]
    acme = nodes["gnb-001-01-1"]
    assert (acme["vendor"], acme["software_version"]) == ("Acme Radio Systems", "acme-gnb 5.2.1")
    assert [f["name"] for f in acme["ran_functions"]] == [
        "ORAN-E2SM-KPM",
        "ORAN-E2SM-RC",
        "ORAN-E2SM-CCC",
    ]
    assert [c["id"] for c in acme["cells"]] == ["001-01-4097", "001-01-4098"]
    assert sum(len(n["cells"]) for n in nodes.values()) == SMALL_CELLS
    session = ric.runtime.sessions["gnb-001-01-1"]
    since = datetime.datetime.fromisoformat(acme["connected_since"])
    assert since.timestamp() == pytest.approx(session.connected_at, abs=0.001)
    assert acme["indications"] > 0 and acme["indication_rate_per_s"] > 0
    status, one, _ = await get(f"{ric.url}/api/v1/nodes/gnb-001-01-2")
    assert status == 200 and one["vendor"] == "Globex Networks"
    validate(one, response_schema("/api/v1/nodes/{node_id}", 200))


async def test_xapps_and_subscriptions_api(ric: Ric) -> None:
    """/api/v1/xapps gives each xApp's version, state, queue, drops, restarts and its
    subscriptions; /api/v1/subscriptions lists them, filtered by node, xApp or state."""
    await ric.wait_for_cell_kpis()
    status, body, _ = await get(f"{ric.url}/api/v1/xapps")
    assert status == 200
    validate(body, response_schema("/api/v1/xapps", 200))
    kpimon, mlb = body["xapps"]
    assert (kpimon["name"], kpimon["version"], kpimon["state"]) == ("kpimon", "0.1.0", "running")
    assert kpimon["delivered"] > 0 and kpimon["dropped"] == 0 and kpimon["restarts"] == 0
    assert kpimon["queue_capacity"] == 256 and mlb["controls"] == [
        "cell_individual_offset",
        "handover",
    ]
    assert kpimon["subscriptions"]["active"] >= 3  # one or more on each of the three nodes
    status, subs, _ = await get(f"{ric.url}/api/v1/subscriptions")
    assert status == 200
    validate(subs, response_schema("/api/v1/subscriptions", 200))
    live = ric.runtime.subscriptions.snapshot()
    assert len(subs["subscriptions"]) == len(live)
    _, only, _ = await get(f"{ric.url}/api/v1/subscriptions", params={"node": "gnb-001-01-3"})
    assert {s["node"] for s in only["subscriptions"]} == {"gnb-001-01-3"}
    _, mine, _ = await get(
        f"{ric.url}/api/v1/subscriptions", params={"xapp": "kpimon", "state": "active"}
    )
    assert len(mine["subscriptions"]) == kpimon["subscriptions"]["active"]
    status, one, _ = await get(f"{ric.url}/api/v1/xapps/mlb")
    assert status == 200 and one["name"] == "mlb"


async def test_errors_are_problem_details_naming_the_problem() -> None:
    """Unknown nodes, xApps and paths get 404 and a wrong method 405 with Allow, each an
    application/problem+json ProblemDetails whose detail names the problem."""
    async with running_ric(sim=False) as ric:
        status, body, response = await get(f"{ric.url}/api/v1/nodes/gnb-001-01-9")
        assert (status, body) == (404, problem_json(404, "no node 'gnb-001-01-9' is connected"))
        assert response.content_type == "application/problem+json"
        validate(body, response_schema("/api/v1/nodes/{node_id}", 404))
        status, body, response = await get(f"{ric.url}/api/v1/xapps/nope")
        assert (status, body) == (404, problem_json(404, "no xApp 'nope' is loaded"))
        assert response.content_type == "application/problem+json"
        status, body, response = await get(f"{ric.url}/api/v2/nodes")
        assert (status, body) == (404, problem_json(404, "Not Found: GET /api/v2/nodes"))
        assert response.content_type == "application/problem+json"
        async with aiohttp.ClientSession() as http, http.post(f"{ric.url}/healthz") as response:
            assert response.status == 405
            assert response.content_type == "application/problem+json"
            assert "GET" in response.headers["Allow"]
            assert await response.json() == problem_json(405, "Method Not Allowed: POST /healthz")


async def test_extra_routes_are_served_and_their_failures_are_500_problem_details(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A route table passed to HttpServer is served with the others; an exception in its
    handler is logged and answered 500 as a ProblemDetails without the exception's text."""
    extra = web.RouteTableDef()

    @extra.get("/api/v1/boom")
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret detail")

    @extra.get("/api/v1/echo")
    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"nodes": len(request.app[RUNTIME].sessions)})

    config = load_config(environ={}, overrides={"e2.port": 0, "http.port": 0})
    http = HttpServer(config.http, routes=[extra])
    with caplog.at_level(logging.ERROR, logger="ric.http"):
        async with Runtime(config, components=[http]):
            assert (await get(f"{http.url}/api/v1/echo"))[:2] == (200, {"nodes": 0})
            status, body, _ = await get(f"{http.url}/api/v1/boom")
    assert (status, body) == (
        500,
        problem_json(500, "internal error while serving GET /api/v1/boom"),
    )
    assert [r.getMessage() for r in caplog.records] == ["HTTP GET /api/v1/boom failed"]


async def test_metrics_endpoint_speaks_both_formats() -> None:
    """/metrics is Prometheus text by default, OpenMetrics when asked, gzip when accepted."""
    async with running_ric(sim=False) as ric, aiohttp.ClientSession() as http:
        async with http.get(f"{ric.url}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert "ric_e2_nodes_connected 0.0" in await response.text()
        accept = {"Accept": "application/openmetrics-text; version=1.0.0"}
        async with http.get(f"{ric.url}/metrics", headers=accept) as response:
            assert response.headers["Content-Type"].startswith("application/openmetrics-text")
            assert (await response.text()).endswith("# EOF\n")
        headers = {"Accept-Encoding": "gzip"}
        async with http.get(f"{ric.url}/metrics", headers=headers, auto_decompress=False) as r:
            assert r.headers["Content-Encoding"] == "gzip"
            assert b"ric_ready" in gzip.decompress(await r.read())


async def test_concurrent_scrapes_share_one_exposition() -> None:
    """1,000 concurrent GET /metrics within [http] metrics_cache_s cost one exposition per
    format (not one each) and all get the same body; after the window a new one is built."""
    overrides = {
        "http.metrics_cache_s": 60.0,
        "http.max_in_flight": 2000,
        "http.max_connections": 2000,
    }
    async with running_ric(sim=False, overrides=overrides) as ric:
        exposition = ric.http.exposition
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:

            async def scrape() -> bytes:
                async with http.get(f"{ric.url}/metrics") as response:
                    assert response.status == 200
                    return await response.read()

            bodies = await asyncio.gather(*(scrape() for _ in range(1000)))
        assert exposition.builds == 1 and len(set(bodies)) == 1
        exposition.fresh_s = 0.0
        await asyncio.sleep(0.01)
        async with aiohttp.ClientSession() as http, http.get(f"{ric.url}/metrics") as response:
            assert response.status == 200
        assert exposition.builds == 2


async def test_metrics_without_a_registry_is_404() -> None:
    """An HTTP server built without a metrics registry says so at /metrics."""
    config = load_config(environ={}, overrides={"e2.port": 0, "http.port": 0})
    http = HttpServer(config.http)
    async with Runtime(config, components=[http]):
        status, body, _ = await get(f"{http.url}/metrics")
    assert (status, body) == (404, problem_json(404, "metrics are not enabled on this runtime"))


async def test_openapi_document_is_served_and_covers_every_route() -> None:
    """/api/v1/openapi.json is ric/openapi.json, and it documents exactly the app's routes."""
    async with running_ric(sim=False) as ric:
        status, body, _ = await get(f"{ric.url}/api/v1/openapi.json")
        app = build_app(ric.runtime, PrometheusSensor(process=False).registry)
    assert status == 200 and body == json.loads(OPENAPI_FILE.read_text())
    assert body["openapi"].startswith("3.")
    routes = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    documented = {(method.upper(), path) for path, item in body["paths"].items() for method in item}
    assert routes == documented


async def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    ric: Ric, tmp_path: Path
) -> None:
    """schemathesis, driven by ric/openapi.json, sends valid and invalid requests to every
    operation of a live runtime and finds no server error, no response outside the schema,
    and no other failed check."""
    await ric.wait_for_cell_kpis()
    cli = Path(sys.executable).with_name("schemathesis")
    assert cli.exists(), f"{cli} is missing: install the dev extra (pip install -e '.[dev]')"
    proc = await asyncio.create_subprocess_exec(
        str(cli),
        "run",
        f"{ric.url}/api/v1/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        "15",
        "--seed",
        "1",
        "--generation-database",
        "none",
        "--no-color",
        "--request-timeout",
        "10",
        # This runtime has no token and no A1 policy types, so the A1 writes can only be
        # refused and its reads find nothing; tests/test_a1_http.py drives the A1 API with one.
        "--warnings",
        ",".join(w.value for w in SchemathesisWarning if w.value not in QUIET_WARNINGS),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    text = out.decode()
    assert proc.returncode == 0, text
    assert re.search(r"Selected: (\d+)/\1\b", text) and "No issues found" in text, text


async def test_port_in_use_is_a_clear_error() -> None:
    """A busy HTTP port stops the runtime from starting with an error naming the address."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = load_config(
            environ={}, overrides={"e2.port": 0, "http.port": port, "http.host": "127.0.0.1"}
        )
        sensors, components = observability(config)
        with pytest.raises(OSError, match=f"HTTP on 127.0.0.1:{port}: address already in use$"):
            async with Runtime(config, sensors=sensors, components=components):
                pass


def test_observability_follows_the_config() -> None:
    """[http] enabled = false means no HTTP server and no metrics sensor."""
    off = load_config(environ={"RIC_HTTP__ENABLED": "false"})
    assert observability(off) == ([], [])
    sensors, components = observability(load_config(environ={}))
    assert [type(s).__name__ for s in sensors] == ["PrometheusSensor"]
    assert [c.name for c in components] == ["metrics", "http"]


# -- the command line --------------------------------------------------------------------------


async def ric_cli(*args: str, timeout: float = 30) -> tuple[int, str, str]:
    """Run ``python -m ric ARGS`` as a child process: exit status, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ric",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_status_prints_nodes_and_xapps_as_tables(ric: Ric) -> None:
    """`ric status --url` prints readiness, a node table and an xApp table."""
    await ric.wait_for_cell_kpis()
    code, out, err = await ric_cli("status", "--url", ric.url)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"ric at {ric.url}: ready (5 checks pass)"
    assert lines[2].split() == [
        "NODE",
        "VENDOR",
        "SOFTWARE",
        "CELLS",
        "RAN",
        "FUNCTIONS",
        "IND/S",
        "UP",
    ]
    assert lines[3].startswith("gnb-001-01-1  Acme Radio Systems  acme-gnb 5.2.1")
    assert "KPM, RC" in lines[3]
    header = lines.index(next(line for line in lines if line.startswith("XAPP")))
    assert lines[header + 1].split()[:4] == ["kpimon", "0.1.0", "thread", "running"]
    assert lines[header + 2].split()[:4] == ["mlb", "0.1.0", "thread", "running"]


async def test_status_json_is_the_api_answers(ric: Ric) -> None:
    """`ric status --json` prints the readiness, nodes and xApps as one JSON object."""
    code, out, err = await ric_cli("status", "--url", ric.url, "--json")
    assert code == 0, err
    body = json.loads(out)
    assert body["url"] == ric.url and body["readiness"]["ready"] is True
    assert len(body["nodes"]) == 3 and [x["name"] for x in body["xapps"]] == ["kpimon", "mlb"]


async def test_status_of_an_unreachable_runtime_is_one_line_and_status_1() -> None:
    """With nothing listening, `ric status` says so in one line naming the URL, exit 1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    code, out, err = await ric_cli("status", "--url", url)
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        f"ric status: error: cannot reach the runtime at {url}: connection refused "
        "(is 'ric run' running, with HTTP on?)"
    ]
    code, _, err = await ric_cli("status", "--url", "127.0.0.1:8080")
    assert code == 2 and "is not an http:// URL" in err


async def test_status_help_reads_well() -> None:
    """`ric status --help` says what it shows, where from, and the exit statuses."""
    code, out, _ = await ric_cli("status", "--help")
    assert code == 0
    text = " ".join(out.split())
    for needle in (
        "--url URL",
        "--json",
        "/api/v1/nodes",
        "Exit status 0",
        "1 when it cannot be reached",
    ):
        assert needle in text


async def test_ric_run_serves_http_where_asked() -> None:
    """`ric run --http 127.0.0.1:0` says where HTTP listens, and answers there until stopped."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ric",
        "run",
        "--e2",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--xapp",
        "kpimon",
        "--log-level",
        "warning",
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        url = ""
        while not url:
            line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
            assert line, "ric run ended before saying where HTTP listens"
            match = re.match(r"ric: HTTP on (http://127\.0\.0\.1:\d+) ", line)
            url = match.group(1) if match else ""
        status, body, _ = await get(f"{url}/readyz")
        assert status == 200 and body["ready"] is True
        code, out, _ = await ric_cli("status", "--url", url)
        assert code == 0 and "(no E2 nodes connected)" in out
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0


async def test_ric_demo_shows_its_http_address() -> None:
    """`ric demo --http 127.0.0.1:0` serves HTTP and shows the address in its view."""
    code, out, err = await ric_cli(
        "demo",
        "--scenario",
        str(SMALL),
        "--e2",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--duration",
        "1.5",
        "--refresh",
        "0.5",
    )
    assert code == 0, err
    assert re.search(r"E2 127\.0\.0\.1:\d+  HTTP http://127\.0\.0\.1:\d+", out), out
    assert hostport("http://127.0.0.1:1/") == "127.0.0.1:1"


async def test_connections_beyond_the_bound_get_a_prepared_503_and_probes_still_pass() -> None:
    """With [http] max_connections taken by a client that sends nothing, a new request gets a
    503 ProblemDetails with Retry-After before it is parsed (counted by reason), on the A1
    paths and the runtime's own alike, and /healthz is still served."""
    overrides = {"e2.port": 0, "http.port": 0, "http.max_connections": 1, "http.retry_after_s": 7}
    config = load_config(environ={}, overrides=overrides)
    sensors, components = observability(config)
    async with Runtime(config, sensors=sensors, components=components):
        http = next(c for c in components if isinstance(c, HttpServer))
        _, idle = await asyncio.open_connection("127.0.0.1", http.port)  # holds the one slot
        try:
            await asyncio.sleep(0.1)

            async def raw(path: str) -> bytes:
                reader, writer = await asyncio.open_connection("127.0.0.1", http.port)
                writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
                )
                answer = await reader.read()
                writer.close()
                return answer

            plain, a1, probe = (
                await raw("/api/v1/nodes"),
                await raw("/A1-P/v2/policytypes"),
                await raw("/healthz"),
            )
        finally:
            idle.close()
        sensor = next(s for s in sensors if isinstance(s, PrometheusSensor))
        refused = sensor.registry.get_sample_value(
            "ric_http_refused_total", {"reason": "connections"}
        )
    detail = "1 connections are being served already ([http] max_connections); retry after 7 s"
    for answer in (plain, a1):
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503") and b"\r\nRetry-After: 7\r\n" in head
        assert b"\r\nContent-Type: application/problem+json\r\n" in head
        assert json.loads(body) == problem_json(503, detail)
    assert probe.startswith(b"HTTP/1.1 200")
    assert refused == 2


async def test_status_against_protected_reads_needs_the_token_and_says_so(tmp_path: Path) -> None:
    """With [http] protect_reads, `ric status` without a token fails in one line naming the
    401 (exit 1, nothing on stdout, also with --json); with --token-file it prints the tables."""
    token = tmp_path / "token"
    token.write_text("a-status-token-0123456789")
    overrides = {"http.token_file": str(token), "http.protect_reads": True}
    async with running_ric(sim=False, overrides=overrides) as ric:
        for extra in ((), ("--json",)):
            code, out, err = await ric_cli("status", "--url", ric.url, *extra)
            assert (code, out) == (1, ""), err
            assert len(err.splitlines()) == 1 and "401" in err and "Traceback" not in err
        code, out, err = await ric_cli("status", "--url", ric.url, "--token-file", str(token))
        assert code == 0, err
        assert out.splitlines()[0].startswith(f"ric at {ric.url}: ready")
        code, out, err = await ric_cli("status", "--url", ric.url, "--token-file", "missing")
        assert code == 2 and "cannot read token file 'missing'" in err
