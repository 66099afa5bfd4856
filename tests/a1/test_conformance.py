"""A1-P v2 conformance, written from the standard's text (O-RAN.WG2.A1AP v2 and its OpenAPI,
``A1-P Policy Management Service`` 2.0.0): every operation's status codes, headers and bodies,
against the real runtime, driven as a non-RT RIC does: HTTPS with a client certificate and no
token.

====================================  =======================================================
operation                             what the standard says, and what is checked
====================================  =======================================================
GET /policytypes                      200, an array of policy type ids
GET /policytypes/{t}                  200, a PolicyTypeObject (``policySchema``); 404
GET /policytypes/{t}/policies         200, an array of policy ids
PUT /policytypes/{t}/policies/{p}     201 with ``Location`` (the URI of the created policy)
                                      and the policy; 200 and the policy when updated; 400
                                      for a policy its type's schema refuses
GET /policytypes/{t}/policies/{p}     200, the policy; 404
DELETE .../policies/{p}               204, no body; 404
GET .../policies/{p}/status           200, a PolicyStatusObject valid against the type's
                                      statusSchema; 404
errors                                ``application/problem+json`` ProblemDetails
====================================  =======================================================
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest

from ric import PolicyType
from ric.certs import write_dev_pki
from tests.conftest import wait_for
from tests.integration.stack import Ric, running_ric, xapp_plugins
from tests.test_a1 import STRICT_STATUS, enforcer
from tests.test_http_access import client_context

STATUS_SCHEMA = STRICT_STATUS
"""A statusSchema that allows nothing but the standard's two members."""
POLICY_SCHEMA = {
    "type": "object",
    "required": ["sst"],
    "properties": {"sst": {"type": "integer", "minimum": 0, "maximum": 255}},
    "additionalProperties": False,
}
PROBLEM = {
    "type": "object",
    "required": ["title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "number"},
        "detail": {"type": "string"},
    },
}


class Client:
    """A non-RT RIC's A1 client: HTTPS with its certificate, no Authorization header."""

    def __init__(self, base: str, context: ssl.SSLContext) -> None:
        self.base = base
        self.context = context

    async def __call__(
        self, method: str, path: str, body: Any = None
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        kwargs: dict[str, Any] = {"json": body} if body is not None else {}
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, f"{self.base}{path}", ssl=self.context, **kwargs) as response,
        ):
            text = await response.text()
            assert "Authorization" not in response.request_info.headers
            return (
                response.status,
                (await response.json(content_type=None)) if text else None,
                (response),
            )


def problem(status: int, body: Any, response: aiohttp.ClientResponse, code: int) -> str:
    """The answer is a ProblemDetails of status ``code``; its detail."""
    assert status == code, body
    assert response.content_type == "application/problem+json"
    jsonschema.validate(body, PROBLEM)
    assert body["status"] == code
    return str(body["detail"])


@pytest.fixture
async def nonrt(tmp_path: Path) -> AsyncIterator[tuple[Ric, Client, Client]]:
    """A runtime over HTTPS that takes client certificates, only 'CN=nonrt-ric' may write;
    a client with that certificate and one with another certificate of the same CA."""
    pki = write_dev_pki(tmp_path / "pki", [])
    overrides = {
        "http.tls_cert": str(pki.server_cert),
        "http.tls_key": str(pki.server_key),
        "http.client_ca": str(pki.ca),
        "http.client_subjects": ["CN=nonrt-ric"],
    }
    types = [PolicyType("std", POLICY_SCHEMA, status_schema=STATUS_SCHEMA)]
    async with running_ric(
        *xapp_plugins(enforcer("std", types)), sim=False, overrides=overrides
    ) as ric:
        base = f"{ric.url}/A1-P/v2"
        yield (
            ric,
            Client(base, client_context(pki, tmp_path, "nonrt-ric")),
            Client(base, client_context(pki, tmp_path, "intruder")),
        )


async def test_every_a1_p_v2_operation_answers_as_the_standard_says(
    nonrt: tuple[Ric, Client, Client],
) -> None:
    """With a listed client certificate and no token, a non-RT RIC lists types, reads one,
    creates (201, absolute Location), updates (200), reads, lists, gets the status (valid
    against a strict statusSchema) and deletes (204) a policy; every refusal on the way is a
    ProblemDetails with the standard's code."""
    ric, a1, _ = nonrt
    status, body, _ = await a1("GET", "/policytypes")
    assert status == 200 and body == ["std"]
    status, body, response = await a1("GET", "/policytypes/std")
    assert status == 200 and response.content_type == "application/json"
    assert body["policySchema"] == POLICY_SCHEMA and body["statusSchema"] == STATUS_SCHEMA
    problem(*await a1("GET", "/policytypes/none"), 404)
    assert (await a1("GET", "/policytypes/std/policies"))[:2] == (200, [])
    problem(*await a1("GET", "/policytypes/none/policies"), 404)

    status, body, response = await a1("PUT", "/policytypes/std/policies/p1", {"sst": 1})
    assert (status, body) == (201, {"sst": 1})
    assert response.headers["Location"] == f"{a1.base}/policytypes/std/policies/p1"
    status, body, response = await a1("PUT", "/policytypes/std/policies/p1", {"sst": 2})
    assert (status, body) == (200, {"sst": 2}) and "Location" not in response.headers
    problem(*await a1("PUT", "/policytypes/std/policies/p1", {"sst": 256}), 400)
    problem(*await a1("PUT", "/policytypes/none/policies/p1", {"sst": 1}), 404)
    assert (await a1("GET", "/policytypes/std/policies/p1"))[:2] == (200, {"sst": 2})
    problem(*await a1("GET", "/policytypes/std/policies/p2"), 404)
    assert (await a1("GET", "/policytypes/std/policies"))[:2] == (200, ["p1"])

    body = None
    for _ in range(500):
        status, body, _ = await a1("GET", "/policytypes/std/policies/p1/status")
        if body["enforceStatus"] == "ENFORCED":
            break
        await asyncio.sleep(0.01)
    assert (status, body) == (200, {"enforceStatus": "ENFORCED"})
    jsonschema.validate(body, STATUS_SCHEMA)
    problem(*await a1("GET", "/policytypes/std/policies/p2/status"), 404)

    status, body, response = await a1("DELETE", "/policytypes/std/policies/p1")
    assert (status, body) == (204, None)
    problem(*await a1("DELETE", "/policytypes/std/policies/p1"), 404)
    assert (await a1("GET", "/policytypes/std/policies"))[:2] == (200, [])
    await wait_for(lambda: ric.runtime.a1.delivering is False, what="delivery done")


async def test_a_certificate_outside_client_subjects_cannot_write(
    nonrt: tuple[Ric, Client, Client],
) -> None:
    """A certificate of the same CA that [http] client_subjects does not list reads, but its
    PUT and DELETE are 403 ProblemDetails naming its subject, and change nothing."""
    _, a1, intruder = nonrt
    assert (await a1("PUT", "/policytypes/std/policies/p1", {"sst": 1}))[0] == 201
    assert (await intruder("GET", "/policytypes/std/policies/p1"))[:2] == (200, {"sst": 1})
    for method, body in (("PUT", {"sst": 9}), ("DELETE", None)):
        detail = problem(*await intruder(method, "/policytypes/std/policies/p1", body), 403)
        assert "CN=intruder" in detail and "[http] client_subjects" in detail
    assert (await a1("GET", "/policytypes/std/policies/p1"))[:2] == (200, {"sst": 1})


async def test_a_nul_byte_in_a_header_is_a_400_and_a_warning_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A request whose header holds a NUL byte is the client's mistake: answered 400 and
    logged as one WARNING line, with no ERROR record."""
    async with running_ric(sim=False) as ric:
        reader, writer = await asyncio.open_connection("127.0.0.1", ric.http.port)
        writer.write(b"GET /A1-P/v2/policytypes HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n")
        await writer.drain()
        line = await reader.readline()
        writer.close()
    assert line.split()[1] == b"400"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage().count("\n") for r in warnings if "malformed" in r.getMessage()] == [0]
    assert not any(r.exc_info for r in warnings)
