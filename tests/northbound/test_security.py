"""Who may attach remotely: with a token file, only xApps presenting the token; with mTLS,
only xApps whose certificate names them; the Unix socket takes only the runtime's children."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from ric.certs import write_dev_pki
from ric.northbound.client import AttachError, ClientTls, XAppClient
from tests.conftest import RuntimeFactory, wait_for
from tests.northbound.apps import Counter


async def _attached(client: XAppClient) -> None:
    task = asyncio.create_task(client.run())
    await wait_for(lambda: client.attaches == 1 or task.done(), what="the attach")
    if task.done():
        task.result()
    client.stop()
    await asyncio.wait_for(task, 10)


async def test_a_token_is_required_when_configured(
    tmp_path: Path, make_runtime: RuntimeFactory
) -> None:
    """Without the token the attach is refused as unauthenticated, naming the header; with it
    the xApp attaches."""
    token = tmp_path / "nb.token"
    token.write_text("s3cret-token\n")
    runtime, _ = await make_runtime(**{"northbound.port": 0, "northbound.token_file": str(token)})
    target = f"127.0.0.1:{runtime.northbound.port}"
    with pytest.raises(AttachError, match="bearer token is required") as err:
        await asyncio.wait_for(XAppClient(Counter, target).run(), 10)
    assert err.value.code == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(AttachError, match="bearer token is required"):
        await asyncio.wait_for(XAppClient(Counter, target, token="wrong").run(), 10)
    await _attached(XAppClient(Counter, target, token="s3cret-token"))


async def test_mtls_admits_only_the_xapp_its_certificate_names(
    tmp_path: Path, make_runtime: RuntimeFactory
) -> None:
    """With a client CA, an xApp whose certificate names it attaches; one presenting another
    xApp's certificate is refused naming both; one without a certificate never gets in."""
    pki = tmp_path / "pki"
    write_dev_pki(pki, ["nbcounter", "recorder"])
    runtime, _ = await make_runtime(
        **{
            "northbound.port": 0,
            "northbound.tls.enabled": True,
            "northbound.tls.cert": str(pki / "server.pem"),
            "northbound.tls.key": str(pki / "server.key"),
            "northbound.tls.client_ca": str(pki / "ca.pem"),
        }
    )
    target = f"localhost:{runtime.northbound.port}"
    ca = (pki / "ca.pem").read_bytes()

    def tls(name: str) -> ClientTls:
        return ClientTls(ca, (pki / f"{name}.pem").read_bytes(), (pki / f"{name}.key").read_bytes())

    await _attached(XAppClient(Counter, target, tls=tls("nbcounter")))
    with pytest.raises(AttachError, match=r"names \['recorder'\], not the xApp") as err:
        await asyncio.wait_for(XAppClient(Counter, target, tls=tls("recorder")).run(), 10)
    assert err.value.code == grpc.StatusCode.PERMISSION_DENIED
    anonymous = XAppClient(Counter, target, tls=ClientTls(ca), reconnect=False)
    with pytest.raises(AttachError, match="cannot reach the runtime"):
        await asyncio.wait_for(anonymous.run(), 10)


async def test_the_unix_socket_takes_only_the_runtimes_children(
    make_runtime: RuntimeFactory,
) -> None:
    """An xApp that finds the process socket but has no attach token is refused there."""
    from tests.conftest import Recorder

    runtime, _ = await make_runtime(Recorder, **{"xapps.isolation": {"recorder": "process"}})
    await wait_for(lambda: runtime.northbound.socket_path != "", what="the socket")
    client = XAppClient(Counter, f"unix:{runtime.northbound.socket_path}")
    with pytest.raises(AttachError, match="takes only the runtime's own xApp processes"):
        await asyncio.wait_for(client.run(), 10)
