"""The A1-P REST API on a live runtime's HTTP server: the issue's end-to-end path, access
rules, ProblemDetails for every bad request, restarts on a persistent store, and a
schema-driven run of schemathesis over the A1 paths."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import hypothesis
import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.failures import FailureGroup

from ric import XApp
from ric.config import load_config
from ric.http import HttpServer, openapi_document
from ric.runtime import Runtime
from ric.sdl import SdlBackend
from ric.sdl.sqlite import SqliteBackend
from tests.conftest import wait_for
from tests.integration.stack import Ric, running_ric, xapp_plugins
from tests.test_a1 import GOLD, SLA, SLA_SCHEMA, enforcer, kinds

TOKEN = "a1-token-for-tests-only-0123"
BASE = "/A1-P/v2/policytypes"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    """A bearer token file for the runtime and the client."""
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


async def call(
    method: str, url: str, body: Any = None, token: str | None = TOKEN, raw: bytes | None = None
) -> tuple[int, Any, aiohttp.ClientResponse]:
    """One request: status, decoded JSON body (None when empty), response."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    kwargs: dict[str, Any] = {"json": body} if body is not None else {}
    if raw is not None:
        kwargs = {"data": raw}
        headers["Content-Type"] = "application/json"
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, headers=headers, **kwargs) as response,
    ):
        text = await response.text()
        return response.status, (await response.json(content_type=None)) if text else None, response


def schema_of(name: str) -> dict[str, Any]:
    """A component schema of the OpenAPI document, with refs resolvable."""
    components = openapi_document()["components"]
    return {**components["schemas"][name], "components": components}


def assert_problem(status: int, body: Any, response: aiohttp.ClientResponse, code: int) -> str:
    """The answer is a ProblemDetails with status ``code``; its detail."""
    assert status == code, body
    assert response.content_type == "application/problem+json"
    jsonschema.validate(body, schema_of("ProblemDetails"))
    assert body["status"] == code
    return str(body["detail"])


@pytest.fixture
async def ric(token_file: Path) -> AsyncIterator[Ric]:
    """A runtime with HTTP (token protected writes) and the enforcer xApp."""
    plugins = xapp_plugins(enforcer())
    overrides = {"http.token_file": str(token_file)}
    async with running_ric(*plugins, sim=False, overrides=overrides) as running:
        yield running


async def test_a1_end_to_end(ric: Ric) -> None:
    """A type put, a policy put reaches the xApp and its enforcement shows in the status; an
    invalid policy is refused naming the field and changes nothing; delete reaches the xApp,
    and then both A1 and the runtime's own API answer 404 ProblemDetails for it."""
    url, app = f"{ric.url}{BASE}", ric.runtime.host("enforcer").cls
    status, body, _ = await call("PUT", f"{url}/slice-sla", SLA.to_json())
    assert (status, body) == (200, SLA.to_json())  # declared by the xApp: same definition
    status, body, _ = await call("PUT", f"{url}/other", {"policySchema": {"type": "object"}})
    assert (status, body) == (201, {"policySchema": {"type": "object"}})
    assert (await call("GET", url))[:2] == (200, ["other", "slice-sla"])
    status, body, response = await call("PUT", f"{url}/slice-sla/policies/gold", GOLD)
    assert (status, body) == (201, GOLD)
    assert response.headers["Location"] == f"{url}/slice-sla/policies/gold"
    await wait_for(lambda: kinds(app) == [("created", "gold")])  # type: ignore[arg-type]
    for _ in range(500):
        status, body, _ = await call("GET", f"{url}/slice-sla/policies/gold/status")
        if body["enforceStatus"] == "ENFORCED":
            break
        await asyncio.sleep(0.01)
    assert (status, body) == (200, {"enforceStatus": "ENFORCED"})
    jsonschema.validate(body, schema_of("PolicyStatusObject"))
    status, detail, _ = await call("GET", f"{ric.url}/api/v1/policies/slice-sla/gold")
    assert status == 200 and detail["detail"] == "enforced by xApp enforcer"
    assert [x["name"] for x in detail["xapps"]] == ["enforcer"] and detail["xapps"][0]["enforced"]
    jsonschema.validate(detail, schema_of("PolicyStatusDetail"))

    bad = {"sst": 1, "max_delay_ms": -3, "cells": [7]}
    status, body, response = await call("PUT", f"{url}/slice-sla/policies/gold", bad)
    detail = assert_problem(status, body, response, 400)
    assert detail.startswith("policy 'gold' does not satisfy the schema of policy type 'slice-sla'")
    assert body["title"] == "Invalid policy"
    fields = {e["field"]: e["reason"] for e in body["errors"]}
    assert set(fields) == {"cells[0]", "max_delay_ms"}
    assert "-3 is less than or equal to the minimum of 0" in fields["max_delay_ms"]
    assert "7 is not of type 'string'" in fields["cells[0]"]
    assert (await call("GET", f"{url}/slice-sla/policies/gold"))[:2] == (200, GOLD)

    status, body, _ = await call("PUT", f"{url}/slice-sla/policies/gold", {**GOLD, "sst": 2})
    assert (status, body) == (200, {**GOLD, "sst": 2})
    assert (await call("GET", f"{url}/slice-sla/policies"))[:2] == (200, ["gold"])
    assert (await call("DELETE", f"{url}/slice-sla/policies/gold"))[:2] == (204, None)
    await wait_for(lambda: len(app.events) == 3)  # type: ignore[attr-defined]
    assert kinds(app) == [  # type: ignore[arg-type]
        ("created", "gold"),
        ("updated", "gold"),
        ("deleted", "gold"),
    ]
    status, body, response = await call("GET", f"{url}/slice-sla/policies/gold")
    assert assert_problem(status, body, response, 404) == (
        "policy type 'slice-sla' has no policy 'gold'"
    )
    status, body, response = await call("GET", f"{ric.url}/api/v1/policies/slice-sla/gold")
    assert assert_problem(status, body, response, 404) == (
        "policy type 'slice-sla' has no policy 'gold'"
    )
    assert (await call("DELETE", f"{url}/other"))[:2] == (204, None)
    assert (await call("GET", f"{ric.url}/A1-P/v2/healthcheck"))[:2] == (200, None)


@pytest.mark.parametrize(
    ("method", "path", "body", "code", "needle"),
    [
        ("GET", "/nope", None, 404, "there is no policy type 'nope'"),
        ("GET", "/nope/policies", None, 404, "there is no policy type 'nope'"),
        ("PUT", "/nope/policies/p", GOLD, 404, "there is no policy type 'nope'"),
        ("GET", "/slice-sla/policies/nope/status", None, 404, "has no policy 'nope'"),
        ("DELETE", "/slice-sla/policies/nope", None, 404, "has no policy 'nope'"),
        ("GET", "/bad%20id", None, 400, "policy type id 'bad id' is not valid"),
        ("GET", "/k%0A", None, 400, "policy type id 'k\\n' is not valid: 1-128 letters"),
        ("GET", "/k%0A/policies", None, 400, "policy type id 'k\\n' is not valid"),
        ("GET", "/slice-sla/policies/k%0A", None, 400, "policy id 'k\\n' is not valid"),
        ("PUT", "/slice-sla/policies/k%0A", GOLD, 400, "policy id 'k\\n' is not valid"),
        ("DELETE", "/slice-sla/policies/k%0A", None, 400, "policy id 'k\\n' is not valid"),
        ("GET", "/slice-sla/policies/k%0A/status", None, 400, "policy id 'k\\n' is not valid"),
        ("PUT", f"/slice-sla/policies/{'p' * 129}", GOLD, 400, "1-128 letters, digits"),
        ("PUT", "/slice-sla/policies/-x", GOLD, 400, "policy id '-x' is not valid"),
        ("PUT", "/t", {"policySchema": {"type": 5}}, 400, "is not a valid JSON Schema: at /type"),
        ("PUT", "/t", {"policySchema": []}, 400, "must be a JSON Schema object, got an array"),
        ("PUT", "/t", {"name": "x"}, 400, "policy type 't' needs a policySchema"),
        ("PUT", "/t", b"{not json", 400, "the body is not JSON"),
        ("PUT", "/t", b"", 400, "PUT /A1-P/v2/policytypes/t needs a JSON body"),
        ("PUT", "/slice-sla/policies/p", [GOLD], 400, "a policy is a JSON object"),
        ("PUT", "/slice-sla", {"policySchema": {}}, 409, "is declared by xApp enforcer"),
        ("DELETE", "/slice-sla", None, 409, "declared by loaded xApp enforcer"),
    ],
)
async def test_bad_requests_get_problem_details_and_change_nothing(
    ric: Ric, method: str, path: str, body: Any, code: int, needle: str
) -> None:
    """Each bad request gets a ProblemDetails naming the type, policy or problem, and the
    types and policies stay as they were."""
    url = f"{ric.url}{BASE}"
    await call("PUT", f"{url}/slice-sla/policies/gold", GOLD)
    before = [(await call("GET", url))[1], (await call("GET", f"{url}/slice-sla/policies"))[1]]
    raw = body if isinstance(body, bytes) else None
    status, answer, response = await call(
        method, f"{url}{path}", None if raw is not None else body, raw=raw
    )
    assert needle in assert_problem(status, answer, response, code)
    after = [(await call("GET", url))[1], (await call("GET", f"{url}/slice-sla/policies"))[1]]
    assert after == before == [["slice-sla"], ["gold"]]


async def test_every_error_the_server_answers_is_problem_details(
    ric: Ric, token_file: Path
) -> None:
    """401, 404 for an unknown A1 path, 405, 413 and 415 from the server itself are
    ProblemDetails like the handlers' own errors, and so is a 404 on the runtime's own API."""
    url = f"{ric.url}{BASE}"
    status, body, response = await call("PUT", f"{url}/t", {"policySchema": {}}, token=None)
    assert "needs a bearer token or a client certificate" in assert_problem(
        status, body, response, 401
    )
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="ric"'
    status, body, response = await call("GET", f"{ric.url}/A1-P/v2/nope")
    assert assert_problem(status, body, response, 404) == "Not Found: GET /A1-P/v2/nope"
    status, body, response = await call("POST", f"{url}/slice-sla")
    assert "Method Not Allowed" in assert_problem(status, body, response, 405)
    assert "PUT" in response.headers["Allow"]
    huge = b'{"x": "' + b"a" * (300 * 1024) + b'"}'
    status, body, response = await call("PUT", f"{url}/big", raw=huge)
    assert "[http] max_body_bytes" in assert_problem(status, body, response, 413)
    async with (
        aiohttp.ClientSession() as http,
        http.put(
            f"{url}/t",
            data=b'{"policySchema": {}}',
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/plain"},
        ) as response,
    ):
        body = await response.json(content_type=None)
    assert "takes application/json, not 'text/plain'" in assert_problem(
        response.status, body, response, 415
    )
    status, body, response = await call("GET", f"{ric.url}/api/v1/nope")
    assert assert_problem(status, body, response, 404) == "Not Found: GET /api/v1/nope"
    assert (body["type"], body["title"]) == ("about:blank", "Not Found")


async def test_a_policy_id_in_use_under_another_type_is_400(ric: Ric) -> None:
    """A policy id is unique in the RIC: putting 'gold' under a second type while it exists
    under 'slice-sla' is 400 naming the other type, and both types stay as they were."""
    url = f"{ric.url}{BASE}"
    assert (await call("PUT", f"{url}/slice-sla/policies/gold", GOLD))[0] == 201
    assert (await call("PUT", f"{url}/loose", {"policySchema": {"type": "object"}}))[0] == 201
    status, body, response = await call("PUT", f"{url}/loose/policies/gold", {"x": 1})
    detail = assert_problem(status, body, response, 400)
    assert detail.startswith("policy id 'gold' exists already under policy type 'slice-sla'")
    assert (await call("GET", f"{url}/loose/policies"))[:2] == (200, [])
    assert (await call("PUT", f"{url}/slice-sla/policies/gold", GOLD))[0] == 200


@pytest.mark.parametrize(
    ("destination", "needle"),
    [
        ("not a uri", "is not an absolute http or https URI"),
        ("ftp://127.0.0.1/x", "is not an absolute http or https URI"),
        ("/relative/path", "is not an absolute http or https URI"),
        ("http://127.0.0.1:99999/x", "is not a URI"),
        ("http://user@127.0.0.1/x", "no user information"),
        ("http://10.0.0.1/x", "is refused: [a1] notify_hosts is empty"),
    ],
)
async def test_a_bad_notification_destination_is_400_and_changes_nothing(
    ric: Ric, destination: str, needle: str
) -> None:
    """A notificationDestination that is not an absolute http(s) URI, or any destination
    while [a1] notify_hosts is empty, is 400 naming the problem; no policy is created."""
    url = f"{ric.url}{BASE}/slice-sla/policies/gold"
    query = urllib.parse.urlencode({"notificationDestination": destination})
    status, body, response = await call("PUT", f"{url}?{query}", GOLD)
    assert needle in assert_problem(status, body, response, 400)
    assert (await call("GET", url))[0] == 404


async def test_a_type_with_policies_cannot_be_deleted(ric: Ric) -> None:
    """Deleting a type that still has policies is 409 naming them."""
    url = f"{ric.url}{BASE}"
    await call("PUT", f"{url}/loose", {"policySchema": {"type": "object"}})
    await call("PUT", f"{url}/loose/policies/a", {"x": 1})
    status, body, response = await call("DELETE", f"{url}/loose")
    assert assert_problem(status, body, response, 409) == (
        "policy type 'loose' still has 1 policies (a); delete them first"
    )


async def test_writes_need_the_token_and_reads_follow_protect_reads(
    ric: Ric, token_file: Path
) -> None:
    """Without the token A1 writes are 401 and change nothing, reads are open; with
    protect_reads the reads need the token too, the A1 healthcheck included."""
    url = f"{ric.url}{BASE}"
    status, _, _ = await call("PUT", f"{url}/t", {"policySchema": {}}, token=None)
    assert status == 401
    assert (await call("DELETE", f"{url}/slice-sla", token="wrong-token-0123456789"))[0] == 401
    assert (await call("GET", url, token=None))[:2] == (200, ["slice-sla"])
    overrides = {"http.token_file": str(token_file), "http.protect_reads": True}
    async with running_ric(sim=False, overrides=overrides) as other:
        assert (await call("GET", f"{other.url}{BASE}", token=None))[0] == 401
        assert (await call("GET", f"{other.url}/A1-P/v2/healthcheck", token=None))[0] == 401
        assert (await call("GET", f"{other.url}{BASE}"))[:2] == (200, [])


async def test_writes_are_refused_when_no_authentication_is_configured() -> None:
    """With no token file or client CA, A1 writes are 403 saying how to allow them."""
    async with running_ric(sim=False) as ric:
        status, body, _ = await call("PUT", f"{ric.url}{BASE}/t", {"policySchema": {}})
    assert status == 403 and "set [http] token_file or client_ca" in body["detail"]


@contextlib.asynccontextmanager
async def served(
    token_file: Path, sdl: SdlBackend, *classes: type[XApp], **http: str
) -> AsyncIterator[str]:
    """A runtime with ``classes`` on the store ``sdl``, HTTP on a free port (``http``: more
    [http] settings); its URL."""
    overrides = {"e2.port": 0, "http.port": 0, "http.token_file": str(token_file)}
    overrides.update({f"http.{key}": value for key, value in http.items()})
    config = load_config(environ={}, overrides=overrides)
    server = HttpServer(config.http)
    async with Runtime(config, xapp_plugins(*classes), components=[server], sdl=sdl):
        yield server.url


async def test_policies_survive_a_restart_on_sqlite(token_file: Path, tmp_path: Path) -> None:
    """Policies put over A1 in one runtime on an SQLite store are served by the next one and
    delivered to its xApp as it starts."""
    async with served(token_file, SqliteBackend(tmp_path / "ric.db")) as url:
        assert (await call("PUT", f"{url}{BASE}/slice-sla", SLA.to_json()))[0] == 201
        assert (await call("PUT", f"{url}{BASE}/slice-sla/policies/gold", GOLD))[0] == 201
    app = enforcer()
    async with served(token_file, SqliteBackend(tmp_path / "ric.db"), app) as url:
        await wait_for(lambda: kinds(app) == [("created", "gold")])
        assert (await call("GET", f"{url}{BASE}/slice-sla/policies/gold"))[:2] == (200, GOLD)
        assert (await call("GET", f"{url}{BASE}/slice-sla"))[:2] == (200, SLA.to_json())


def schemathesis_run(url: str) -> list[str]:
    """Run schemathesis over every A1 operation (valid and invalid requests, with the
    token); the failures it found, as text."""
    schema = schemathesis.openapi.from_dict(openapi_document()).include(path_regex="^/A1-P/")
    failures: list[str] = []
    calls: list[str] = []
    excluded: list[Any] = []
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # the document is valid
        variants: list[dict[str, Any]] = [{}]
        if "{policy_id}" in operation.path:  # also on the existing type, so policies validate
            variants.append({"path_parameters": {"policy_type_id": "slice-sla"}})
        # A policy's schema is its type's, which the document cannot know: a body that is
        # valid for the document (any object) is rightly refused by the type's schema.
        excluded.clear()
        if operation.path.endswith("{policy_id}"):
            excluded.append(positive_data_acceptance)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for variant in variants:
                strategy = operation.as_strategy(generation_mode=mode, **variant)

                @given(case=strategy)
                @settings(
                    max_examples=20,
                    database=None,
                    deadline=None,
                    derandomize=True,
                    suppress_health_check=list(HealthCheck),
                    phases=[hypothesis.Phase.generate],
                )
                def check(case: Any) -> None:
                    calls.append(case.method)
                    response = case.call(base_url=url, headers=headers, timeout=10)
                    if response.status_code >= 500:
                        failures.append(
                            f"{case.method} {case.formatted_path}: "
                            f"{response.status_code} {response.text[:200]}"
                        )
                    try:
                        case.validate_response(response, headers=headers, excluded_checks=excluded)
                    except (Exception, FailureGroup) as exc:  # a check failed: keep it, go on
                        failures.append(f"{case.method} {case.formatted_path}: {exc}"[:600])

                with contextlib.suppress(hypothesis.errors.Unsatisfiable):
                    check()  # unsatisfiable: no invalid request exists (healthcheck)
    assert {"GET", "PUT", "DELETE"} <= set(calls) and len(calls) > 300, len(calls)
    return failures


async def test_schemathesis_finds_no_server_error_in_the_a1_api(ric: Ric) -> None:
    """schemathesis, driven by ric/openapi.json, sends valid and invalid requests with the
    token to every A1 operation of a live runtime and finds no server error and no answer
    outside the document."""
    await call("PUT", f"{ric.url}{BASE}/slice-sla/policies/gold", GOLD)
    failures = await asyncio.to_thread(schemathesis_run, ric.url)
    assert failures == [], "\n".join(failures[:20])
    assert SLA_SCHEMA  # the seeded type stayed the xApp's


async def test_a_failing_store_is_503_naming_it(token_file: Path, tmp_path: Path) -> None:
    """When the policy store fails (here: its SQLite file closed under it), the A1 API says
    503 with the store's reason, and the healthcheck does too."""
    store = SqliteBackend(tmp_path / "ric.db")
    async with served(token_file, store) as url:
        assert (await call("GET", f"{url}/A1-P/v2/healthcheck"))[0] == 200
        await store.close()
        for path in ("/A1-P/v2/healthcheck", BASE, f"{BASE}/t/policies/p"):
            status, body, response = await call("GET", f"{url}{path}")
            detail = assert_problem(status, body, response, 503)
            assert detail.startswith("the policy store is not available: ")


# -- bounds: bodies, JSON, patterns, budgets, requests in flight ---------------------------


def refused(ric: Ric, reason: str) -> float:
    """``ric_http_refused_total{reason}`` as the runtime's Prometheus sensor has it."""
    value = ric.sensor.registry.get_sample_value("ric_http_refused_total", {"reason": reason})
    return value or 0.0


class Ticks:
    """The longest gap between 10 ms ticks of a task on the loop, while it runs."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(0.01)
            now = loop.time()
            self.longest = max(self.longest, now - last)
            last = now

    async def __aenter__(self) -> Ticks:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def test_a_redos_policy_answers_at_once_and_the_loop_keeps_ticking(ric: Ric) -> None:
    """The issue's ReDoS: a type with pattern ^(a+)+$, then a policy of 40 'a' and a '!',
    answers 400 naming the field in under a second (RE2 matches in linear time, in a worker)
    while a 10 ms tick on the runtime's loop never waits 100 ms."""
    url = f"{ric.url}{BASE}/redos"
    schema = {"type": "object", "properties": {"name": {"type": "string", "pattern": "^(a+)+$"}}}
    assert (await call("PUT", url, {"policySchema": schema}))[0] == 201
    loop = asyncio.get_running_loop()
    async with Ticks() as ticks:
        started = loop.time()
        status, body, response = await call("PUT", f"{url}/policies/p", {"name": "a" * 40 + "!"})
        took = loop.time() - started
    assert_problem(status, body, response, 400)
    assert body["errors"][0]["field"] == "name" and "does not match" in body["errors"][0]["reason"]
    assert took < 1.0, took
    assert ticks.longest < 0.1, ticks.longest
    assert (await call("PUT", f"{url}/policies/p", {"name": "a" * 40}))[0] == 201


async def test_a_backreference_pattern_is_refused_at_type_put(ric: Ric) -> None:
    """A pattern RE2 cannot compile is refused at type PUT with 400 naming it and why."""
    schema = {"properties": {"x": {"pattern": "(a)\\1"}}}
    status, body, response = await call("PUT", f"{ric.url}{BASE}/t", {"policySchema": schema})
    detail = assert_problem(status, body, response, 400)
    assert "pattern '(a)\\\\1' cannot be used: invalid escape sequence" in detail


async def test_nan_and_infinity_are_400_naming_the_field(ric: Ric) -> None:
    """{"max_delay_ms": NaN} (which the issue saw answered 503) and 1e400 are 400 naming
    the field, counted by reason, and nothing is stored."""
    url = f"{ric.url}{BASE}/slice-sla/policies/gold"
    before = refused(ric, "not_finite")
    status, body, response = await call("PUT", url, raw=b'{"sst": 1, "max_delay_ms": NaN}')
    assert assert_problem(status, body, response, 400) == (
        "max_delay_ms: NaN is not a JSON number (NaN and Infinity are not JSON)"
    )
    status, body, response = await call("PUT", url, raw=b'{"sst": 1, "max_delay_ms": 1e400}')
    assert "max_delay_ms: 1e400 does not fit a double" in assert_problem(
        status, body, response, 400
    )
    assert refused(ric, "not_finite") == before + 1
    assert refused(ric, "number_out_of_range") >= 1
    assert (await call("GET", url))[0] == 404


async def test_a_100000_deep_body_is_400_too_deep_without_an_error_log(
    ric: Ric, caplog: pytest.LogCaptureFixture
) -> None:
    """A 100,000-deep JSON body (a 500 with a RecursionError before) is 400 "too deep" naming
    the bound, and nothing is logged as an error."""
    deep = b"[" * 100_000 + b"]" * 100_000
    status, body, response = await call("PUT", f"{ric.url}{BASE}/t", raw=deep)
    detail = assert_problem(status, body, response, 400)
    assert (
        detail.startswith("the JSON body is too deep: 100000 levels") and "max_json_depth" in detail
    )
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert refused(ric, "too_deep") == 1


async def test_a_body_over_the_bound_is_413_declared_or_chunked(ric: Ric) -> None:
    """A body over [http] max_body_bytes is 413 naming the bound, whether its size is
    declared (refused before reading) or it comes chunked (refused while reading)."""
    big = b'{"policySchema": {"description": "' + b"x" * 300_000 + b'"}}'
    status, body, response = await call("PUT", f"{ric.url}{BASE}/t", raw=big)
    assert "larger than the bound of 262144 bytes" in assert_problem(status, body, response, 413)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"x" * 10_000

    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as http,
        http.put(f"{ric.url}{BASE}/t", data=chunks(), headers=headers) as answer,
    ):
        assert answer.status == 413
        assert "max_body_bytes" in (await answer.json(content_type=None))["detail"]
    assert refused(ric, "body_too_large") == 2
    assert (await call("GET", f"{ric.url}{BASE}"))[1] == ["slice-sla"]


async def test_validation_over_budget_is_503_and_the_runtime_goes_on(token_file: Path) -> None:
    """A policy whose validation outlives [a1] budget_s (uniqueItems over 10,000 objects,
    quadratic) is answered 503 with Retry-After naming the budget, counted; the next
    request is served."""
    overrides = {"http.token_file": str(token_file), "a1.budget_s": 0.3}
    async with running_ric(sim=False, overrides=overrides) as ric:
        url = f"{ric.url}{BASE}/uniq"
        schema = {"type": "object", "properties": {"xs": {"type": "array", "uniqueItems": True}}}
        assert (await call("PUT", url, {"policySchema": schema}))[0] == 201
        slow = {"xs": [{"i": i} for i in range(10_000)]}
        status, body, response = await call("PUT", f"{url}/policies/p", slow)
        detail = assert_problem(status, body, response, 503)
        assert "longer than the budget of 0.3 s ([a1] budget_s)" in detail
        assert response.headers["Retry-After"] == "1"
        assert refused(ric, "budget") == 1
        assert (await call("PUT", f"{url}/policies/p", {"xs": [1, 2]}))[0] == 201


async def test_beyond_max_in_flight_requests_get_503_with_retry_after(token_file: Path) -> None:
    """With one request in flight (a PUT whose body never comes) and max_in_flight = 1,
    another request is answered 503 with Retry-After at once, and counted; probes still
    answer; when the first ends, requests are served again."""
    overrides = {"http.token_file": str(token_file), "http.max_in_flight": 1}
    async with running_ric(sim=False, overrides=overrides) as ric:
        port = int(ric.url.rsplit(":", 1)[1])
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"PUT {BASE}/t HTTP/1.1\r\nHost: ric\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n".encode()
        )
        await writer.drain()
        for _ in range(500):
            status, body, response = await call("GET", f"{ric.url}/api/v1/nodes")
            if status == 503:
                break
            await asyncio.sleep(0.01)
        assert status == 503, "the stalled PUT never counted as in flight"
        assert response.headers["Retry-After"] == "1"
        detail = assert_problem(status, body, response, 503)
        assert "1 requests are in flight already ([http] max_in_flight)" in detail
        assert (await call("GET", f"{ric.url}/healthz"))[0] == 200
        assert refused(ric, "in_flight") >= 1
        writer.close()  # the stalled PUT ends with its connection
        await writer.wait_closed()
        for _ in range(500):
            if (await call("GET", f"{ric.url}/api/v1/nodes"))[0] == 200:
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("requests were not served again after the stalled one ended")
