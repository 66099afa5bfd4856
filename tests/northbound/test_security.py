"""Who may attach remotely: with a token file, only xApps presenting the token; with mTLS,
only xApps whose certificate names them; process xApps need no listening socket at all."""

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


async def test_process_xapps_attach_over_their_own_socket_pair(
    make_runtime: RuntimeFactory,
) -> None:
    """Without [northbound] port the runtime listens for no xApp at all; its process xApp
    attaches all the same, over the socket pair it was started with."""
    from tests.conftest import Recorder

    runtime, _ = await make_runtime(Recorder, **{"xapps.isolation": {"recorder": "process"}})
    host = runtime.host("recorder")
    await wait_for(lambda: getattr(host, "attached", False), what="the process xApp's attach")
    assert runtime.northbound.port is None
    assert host.transport()["peer"] == f"process {host.transport()['pid']}"


async def test_a_child_that_says_it_is_another_xapp_is_refused(
    make_runtime: RuntimeFactory,
) -> None:
    """A hello on a process xApp's socket pair naming another xApp ends that start, and the
    child is told why in a stop message before the stream closes."""
    import socket

    from ric._proto.xapp.v1 import xapp_pb2 as pb
    from ric.northbound.framed import open_channel
    from ric.northbound.host import ProcessHost, StreamEnded
    from tests.conftest import Recorder

    runtime, _ = await make_runtime(Recorder, **{"xapps.isolation": {"recorder": "process"}})
    host = runtime.host("recorder")
    assert isinstance(host, ProcessHost)
    ours, theirs = socket.socketpair()
    runtime_end = await open_channel(ours, pb.XAppMessage.FromString, max_bytes=1 << 20, peer="x")
    child_end = await open_channel(theirs, pb.RicMessage.FromString, max_bytes=1 << 20, peer="y")
    hello = pb.XAppMessage(hello=pb.Hello(name="impostor"))
    with pytest.raises(StreamEnded, match="attached as 'impostor', not as 'recorder'"):
        host._stream(runtime_end, hello)
    told = await child_end.read()
    assert isinstance(told, pb.RicMessage)
    assert "impostor" in told.stop.reason
    runtime_end.cancel()
    child_end.cancel()


async def test_a_process_xapp_refused_by_the_runtime_says_why() -> None:
    """The client of a runtime-started process reports the runtime's stop reason as a
    refused attach (not retried: the socket pair is single-use)."""
    import socket

    from ric._proto.xapp.v1 import xapp_pb2 as pb
    from ric.northbound.framed import open_channel

    ours, theirs = socket.socketpair()
    runtime_end = await open_channel(ours, pb.XAppMessage.FromString, max_bytes=1 << 20, peer="x")
    client = XAppClient(Counter, f"fd:{theirs.detach()}", from_runtime=True)
    task = asyncio.create_task(client.run())
    hello = await runtime_end.read()
    assert isinstance(hello, pb.XAppMessage)
    assert hello.hello.name == Counter.name
    await runtime_end.write(pb.RicMessage(stop=pb.Stop(reason="declared nothing useful")))
    with pytest.raises(AttachError, match="refused xApp nbcounter: declared nothing useful"):
        await asyncio.wait_for(task, 10)
    runtime_end.cancel()
