"""Mutual TLS on the E2 port with real certificates on loopback: who is let in, who is not,
and why; certificates reloaded without a restart."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ric.certs import issue, make_ca, write_dev_pki
from ric.model import CauseCode
from tests.conftest import RuntimeFactory
from tests.e2node import ScriptedNode, setup_request

SMALL = Path(__file__).resolve().parents[2] / "seeds" / "small.toml"


def creds(
    pki: Path, cert: bytes | None = None, key: bytes | None = None
) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=(pki / "ca.pem").read_bytes(), private_key=key, certificate_chain=cert
    )


def node_creds(pki: Path, node: str) -> grpc.ChannelCredentials:
    return creds(pki, (pki / f"{node}.pem").read_bytes(), (pki / f"{node}.key").read_bytes())


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    write_dev_pki(tmp_path / "pki", ["gnb-001-01-1", "gnb-001-01-2"])
    return tmp_path / "pki"


def tls(pki: Path) -> dict[str, object]:
    return {
        "e2.tls.enabled": True,
        "e2.tls.cert": str(pki / "server.pem"),
        "e2.tls.key": str(pki / "server.key"),
        "e2.tls.client_ca": str(pki / "ca.pem"),
    }


async def refused_by_tls(target: str, credentials: grpc.ChannelCredentials) -> str:
    """The gRPC status a node gets when its TLS handshake is refused."""
    async with ScriptedNode(target, credentials) as node:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await node.setup()
    return err.value.code().name


async def still_served(good: ScriptedNode, seq: int) -> None:
    from ric._proto.e2.v1 import e2_pb2

    await good.send(e2_pb2.NodeMessage(keep_alive=e2_pb2.KeepAlive(sequence=seq)))
    assert (await good.recv_kind("keep_alive")).sequence == seq


async def test_only_nodes_with_the_right_certificate_get_in(
    pki: Path, tmp_path: Path, make_runtime: RuntimeFactory
) -> None:
    """With client verification on: the good node sets up and keeps being served while a node
    without a certificate, one from another CA and one with an expired certificate fail the
    handshake, and one whose valid certificate names another node id gets a setup failure."""
    runtime, stats = await make_runtime(**tls(pki))
    target = f"127.0.0.1:{runtime.port}"
    async with ScriptedNode(target, node_creds(pki, "gnb-001-01-1")) as good:
        await good.setup(node_id=1)
        assert await refused_by_tls(target, creds(pki)) == "UNAVAILABLE"
        _, other_key, other_cert = make_ca("another CA")
        stranger = issue(other_key, other_cert, "gnb-001-01-3")
        assert (
            await refused_by_tls(target, creds(pki, stranger.cert, stranger.key)) == "UNAVAILABLE"
        )
        ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        ca_cert = x509.load_pem_x509_certificate((pki / "ca.pem").read_bytes())
        past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=2)
        expired = issue(
            ca_key,
            ca_cert,
            "gnb-001-01-4",
            not_before=past - datetime.timedelta(days=1),
            not_after=past,
        )
        assert await refused_by_tls(target, creds(pki, expired.cert, expired.key)) == "UNAVAILABLE"
        async with ScriptedNode(target, node_creds(pki, "gnb-001-01-2")) as impostor:
            await impostor.send(setup_request(node_id=7, cells=[71]))
            failure = (await impostor.recv()).setup_failure
            assert CauseCode(failure.cause.code) is CauseCode.MISC_NOT_AUTHORIZED
            assert "is for gnb-001-01-2, not for node gnb-001-01-7" in failure.cause.detail
        await still_served(good, 11)
    assert stats.errors["MISC_NOT_AUTHORIZED"] == 1
    assert set(runtime.nodes()) <= {"gnb-001-01-1"}


async def test_plaintext_client_cannot_talk_to_a_tls_port(
    pki: Path, make_runtime: RuntimeFactory
) -> None:
    """A node that does not speak TLS at all never reaches E2."""
    runtime, stats = await make_runtime(**tls(pki))
    async with ScriptedNode(f"127.0.0.1:{runtime.port}") as plain:
        with pytest.raises(grpc.aio.AioRpcError):
            await plain.setup()
    assert stats.setups == {}


async def test_client_ca_reloaded_without_restart(
    pki: Path, tmp_path: Path, make_runtime: RuntimeFactory
) -> None:
    """Replacing the client CA file lets nodes of the new CA in, without a restart."""
    runtime, _ = await make_runtime(**tls(pki))
    target = f"127.0.0.1:{runtime.port}"
    new = write_dev_pki(tmp_path / "new", ["gnb-001-01-5"])
    newcomer = grpc.ssl_channel_credentials(
        root_certificates=(pki / "ca.pem").read_bytes(),
        private_key=(new.folder / "gnb-001-01-5.key").read_bytes(),
        certificate_chain=(new.folder / "gnb-001-01-5.pem").read_bytes(),
    )
    assert await refused_by_tls(target, newcomer) == "UNAVAILABLE"
    bundle = (pki / "ca.pem").read_bytes() + (new.folder / "ca.pem").read_bytes()
    (pki / "ca.pem").write_bytes(bundle)
    stat = (pki / "ca.pem").stat()
    os.utime(pki / "ca.pem", (stat.st_atime, stat.st_mtime + 5))
    async with ScriptedNode(target, newcomer) as node:
        resp = await node.setup(node_id=5, cells=[51])
        assert resp.keep_alive_interval_ms > 0


async def test_simulator_speaks_mutual_tls(tmp_path: Path, make_runtime: RuntimeFactory) -> None:
    """The simulator's nodes connect over mutual TLS with the certificates `ric certs` makes,
    and a missing node certificate is a clear error naming the node."""
    from ric.errors import ConfigError
    from ric.sim import Simulator, load_scenario

    scenario = load_scenario(SMALL)
    pki = write_dev_pki(tmp_path / "pki", ["gnb-001-01-1", "gnb-001-01-2", "gnb-001-01-3"])
    runtime, _ = await make_runtime(**tls(pki.folder))
    target = f"localhost:{runtime.port}"
    async with Simulator(scenario, target, tls_ca=pki.ca, tls_dir=pki.folder) as sim:
        await sim.wait_ready()
        assert set(runtime.nodes()) == {"gnb-001-01-1", "gnb-001-01-2", "gnb-001-01-3"}
    (pki.folder / "gnb-001-01-3.pem").unlink()
    with pytest.raises(ConfigError, match=r"cannot read TLS file for node gnb-001-01-3"):
        Simulator(scenario, target, tls_ca=pki.ca, tls_dir=pki.folder)
