"""HTTP API protection: writes need a bearer token or a client certificate, reads optionally,
probes never; TLS on the HTTP port."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ric.certs import issue, write_dev_pki
from ric.config import load_config
from ric.errors import ConfigError
from ric.http import Access, HttpServer
from ric.runtime import Runtime

TOKEN = "s3cret-token-for-tests-only"
probe = web.RouteTableDef()


@probe.post("/api/v1/probe")
async def write_probe(request: web.Request) -> web.Response:
    """A write endpoint for the test (the A1 API will be the first real one)."""
    return web.json_response({"written": True})


async def call(
    method: str, url: str, token: str | None = None, ssl_context: ssl.SSLContext | None = None
) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, headers=headers, ssl=ssl_context or True) as resp,
    ):
        await resp.read()
        return resp.status


async def serve(tmp_path: Path, **http: object) -> tuple[Runtime, HttpServer]:
    config = load_config(
        environ={},
        overrides={"e2.port": 0, **{f"http.{k}": v for k, v in http.items()}, "http.port": 0},
    )
    server = HttpServer(config.http, routes=[probe])
    runtime = Runtime(config, components=[server], listen=False)
    await runtime.__aenter__()
    return runtime, server


async def test_writes_need_a_token_reads_and_probes_do_not(tmp_path: Path) -> None:
    """With a token file: a write without the token is 401, with it 200; reads and probes are
    open by default; with protect_reads the status API needs the token but probes do not."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    runtime, server = await serve(tmp_path, token_file=str(token_file))
    try:
        url = server.url
        assert await call("POST", f"{url}/api/v1/probe") == 401
        assert await call("POST", f"{url}/api/v1/probe", token="wrong-token-0123456789") == 401
        assert await call("POST", f"{url}/api/v1/probe", token=TOKEN) == 200
        assert await call("GET", f"{url}/api/v1/nodes") == 200
        assert await call("GET", f"{url}/healthz") == 200
    finally:
        await runtime.__aexit__(None, None, None)
    runtime, server = await serve(tmp_path, token_file=str(token_file), protect_reads=True)
    try:
        assert await call("GET", f"{server.url}/api/v1/nodes") == 401
        assert await call("GET", f"{server.url}/api/v1/xapps", token=TOKEN) == 200
        assert await call("GET", f"{server.url}/readyz") in (200, 503)
    finally:
        await runtime.__aexit__(None, None, None)


async def test_writes_refused_when_no_authentication_is_configured(tmp_path: Path) -> None:
    """Without a token or client CA, writes are refused with a 403 that says how to allow them."""
    runtime, server = await serve(tmp_path)
    try:
        async with aiohttp.ClientSession() as http, http.post(f"{server.url}/api/v1/probe") as resp:
            body = await resp.json()
        assert (resp.status, resp.content_type) == (403, "application/problem+json")
        assert (body["status"], body["title"]) == (403, "Forbidden")
        assert "set [http] token_file or client_ca" in body["detail"]
    finally:
        await runtime.__aexit__(None, None, None)


async def test_https_with_client_certificates(tmp_path: Path) -> None:
    """Over HTTPS a client certificate from the configured CA authenticates a write; without
    one the write is 401, and a read works."""
    pki = write_dev_pki(tmp_path / "pki", [])
    runtime, server = await serve(
        tmp_path, tls_cert=str(pki.server_cert), tls_key=str(pki.server_key), client_ca=str(pki.ca)
    )
    try:
        assert server.url.startswith("https://")
        plain = ssl.create_default_context(cafile=str(pki.ca))
        assert await call("GET", f"{server.url}/api/v1/nodes", ssl_context=plain) == 200
        assert await call("POST", f"{server.url}/api/v1/probe", ssl_context=plain) == 401
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        ca_key = serialization.load_pem_private_key(
            (pki.folder / "ca.key").read_bytes(), password=None
        )
        ca_cert = x509.load_pem_x509_certificate(pki.ca.read_bytes())
        client = issue(ca_key, ca_cert, "operator")  # type: ignore[arg-type]
        (tmp_path / "op.pem").write_bytes(client.cert)
        (tmp_path / "op.key").write_bytes(client.key)
        with_cert = ssl.create_default_context(cafile=str(pki.ca))
        with_cert.load_cert_chain(tmp_path / "op.pem", tmp_path / "op.key")
        assert await call("POST", f"{server.url}/api/v1/probe", ssl_context=with_cert) == 200
    finally:
        await runtime.__aexit__(None, None, None)


def test_bad_access_settings_name_the_key(tmp_path: Path) -> None:
    """A missing or short token file, or a client CA without TLS, is refused naming the key."""
    with pytest.raises(ConfigError, match=r"http\.token_file.*cannot read"):
        Access(load_config(environ={}, overrides={"http.token_file": str(tmp_path / "none")}).http)
    short = tmp_path / "short"
    short.write_text("abc")
    with pytest.raises(ConfigError, match="at least 16 characters"):
        Access(load_config(environ={}, overrides={"http.token_file": str(short)}).http)
    with pytest.raises(ConfigError, match=r"http\.client_ca needs TLS"):
        load_config(environ={}, overrides={"http.client_ca": "ca.pem"})


async def test_unreadable_https_files_name_the_key(tmp_path: Path) -> None:
    """HTTPS certificate files that cannot be loaded stop the start with the key named."""
    config = load_config(
        environ={},
        overrides={
            "http.port": 0,
            "http.tls_cert": str(tmp_path / "no.pem"),
            "http.tls_key": str(tmp_path / "no.key"),
        },
    )
    runtime = Runtime(config, listen=False)
    with pytest.raises(ConfigError, match=r"http\.tls_cert.*cannot load the HTTP TLS files"):
        await HttpServer(config.http).start(runtime)


async def test_the_bearer_scheme_is_case_insensitive(tmp_path: Path) -> None:
    """RFC 7235: 'bearer', 'BEARER' and 'Bearer' all carry the token; a wrong token in any
    case is still 401."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    runtime, server = await serve(tmp_path, token_file=str(token_file))
    try:
        for scheme in ("bearer", "BEARER", "Bearer", "bEaReR"):
            headers = {"Authorization": f"{scheme} {TOKEN}"}
            async with (
                aiohttp.ClientSession() as http,
                http.post(f"{server.url}/api/v1/probe", headers=headers) as resp,
            ):
                assert resp.status == 200, scheme
        assert await call("POST", f"{server.url}/api/v1/probe", token="x" * 20) == 401
    finally:
        await runtime.__aexit__(None, None, None)


def client_context(pki: Any, tmp_path: Path, name: str) -> ssl.SSLContext:
    """A TLS client context with a certificate for ``name`` issued by ``pki``'s CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    ca_key = serialization.load_pem_private_key((pki.folder / "ca.key").read_bytes(), None)
    ca_cert = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    client = issue(ca_key, ca_cert, name)  # type: ignore[arg-type]
    (tmp_path / f"{name}.pem").write_bytes(client.cert)
    (tmp_path / f"{name}.key").write_bytes(client.key)
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.load_cert_chain(tmp_path / f"{name}.pem", tmp_path / f"{name}.key")
    return context


async def test_client_subjects_limit_which_certificates_may_write(tmp_path: Path) -> None:
    """With [http] client_subjects, a certificate listed by CN or DNS SAN may write; another
    certificate from the same CA (say an E2 node's) gets 403 naming its subject; reads work."""
    pki = write_dev_pki(tmp_path / "pki", ["gnb-1"])
    runtime, server = await serve(
        tmp_path,
        tls_cert=str(pki.server_cert),
        tls_key=str(pki.server_key),
        client_ca=str(pki.ca),
        client_subjects=["CN=operator", "DNS:automation"],
    )
    try:
        url = f"{server.url}/api/v1/probe"
        operator = client_context(pki, tmp_path, "operator")
        automation = client_context(pki, tmp_path, "automation")
        node = ssl.create_default_context(cafile=str(pki.ca))
        node.load_cert_chain(*pki.nodes["gnb-1"])
        assert await call("POST", url, ssl_context=operator) == 200
        assert await call("POST", url, ssl_context=automation) == 200
        async with (
            aiohttp.ClientSession() as http,
            http.post(url, ssl=node) as resp,
        ):
            body = await resp.json()
        assert (resp.status, resp.content_type) == (403, "application/problem+json")
        assert "CN=gnb-1" in body["detail"] and "[http] client_subjects" in body["detail"]
        assert await call("GET", f"{server.url}/api/v1/nodes", ssl_context=node) == 200
    finally:
        await runtime.__aexit__(None, None, None)


async def test_sharing_the_e2_client_ca_without_subjects_warns_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """When [http] client_ca is the [e2.tls] client_ca file and no client_subjects are set,
    the start logs a warning that an E2 node's certificate could write; with subjects, not."""
    pki = write_dev_pki(tmp_path / "pki", [])
    tls = {"tls_cert": str(pki.server_cert), "tls_key": str(pki.server_key)}
    for subjects, warned in (([], True), (["CN=operator"], False)):
        caplog.clear()
        config = load_config(
            environ={},
            overrides={
                "e2.port": 0,
                "e2.tls.enabled": True,
                "e2.tls.cert": str(pki.server_cert),
                "e2.tls.key": str(pki.server_key),
                "e2.tls.client_ca": str(pki.ca),
                "http.port": 0,
                "http.client_ca": str(pki.ca),
                "http.client_subjects": subjects,
                **{f"http.{k}": v for k, v in tls.items()},
            },
        )
        server = HttpServer(config.http)
        async with Runtime(config, components=[server], listen=False):
            pass
        lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("same file as [e2.tls] client_ca" in line for line in lines) is warned


def test_client_subjects_are_checked_at_load() -> None:
    """A client_subjects entry that is not CN=, DNS:, IP:, URI: or email: names the key."""
    with pytest.raises(ConfigError, match=r"http\.client_subjects.*'operator' is not"):
        load_config(environ={}, overrides={"http.client_subjects": ["operator"]})
