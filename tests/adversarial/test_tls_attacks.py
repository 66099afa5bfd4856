"""Nodes that fail the TLS handshake on E2, against a real ``ric run`` with mutual TLS: each
failure is logged by ``ric`` with its reason and counted, and the good node, which presents a
valid certificate, does not notice."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import pytest

from ric.certs import write_dev_pki
from tests.adversarial.conftest import Ric, running_ric
from tests.e2node import ScriptedNode


def tls_sections(pki: Path) -> dict[str, dict[str, object]]:
    """Mutual TLS on E2 with the development PKI in ``pki``."""
    return {
        "e2.tls": {
            "enabled": True,
            "cert": str(pki / "server.pem"),
            "key": str(pki / "server.key"),
            "client_ca": str(pki / "ca.pem"),
        }
    }


async def refused(ric: Ric, credentials: grpc.ChannelCredentials) -> None:
    """A node with ``credentials`` does not get past the TLS handshake."""
    async with ScriptedNode(ric.e2, credentials) as node:
        with pytest.raises(grpc.aio.AioRpcError):
            await node.setup()


async def failures(ric: Ric, reason: str, at_least: int, timeout: float = 10.0) -> float:
    """Wait until ``ric_e2_tls_failures_total{reason}`` reaches ``at_least``."""
    deadline = time.monotonic() + timeout
    while True:
        count = await ric.metric("ric_e2_tls_failures_total", reason=reason)
        if count >= at_least or time.monotonic() > deadline:
            return count
        await asyncio.sleep(0.1)


async def test_failed_tls_handshakes_are_logged_and_counted(tmp_path: Path) -> None:
    """A node whose certificate is from another CA and one with no certificate fail the
    handshake; ``ric`` logs each with its reason and counts it, and the good node stays."""
    pki, other = tmp_path / "pki", tmp_path / "other"
    write_dev_pki(pki, ["gnb-001-01-2"])
    write_dev_pki(other, ["gnb-001-01-9"])
    ca = (pki / "ca.pem").read_bytes()
    foreign = grpc.ssl_channel_credentials(
        root_certificates=ca,
        private_key=(other / "gnb-001-01-9.key").read_bytes(),
        certificate_chain=(other / "gnb-001-01-9.pem").read_bytes(),
    )
    anonymous = grpc.ssl_channel_credentials(root_certificates=ca)
    sim_tls = ["--tls-ca", str(pki / "ca.pem"), "--tls-dir", str(pki)]
    async with running_ric(
        tmp_path / "run", tls_sections(pki), e2_name="localhost", sim_args=sim_tls
    ) as ric:
        window = await ric.begin()
        await refused(ric, foreign)
        await refused(ric, anonymous)
        assert await failures(ric, "certificate_verify_failed", 1) >= 1
        assert await failures(ric, "no_certificate", 1) >= 1
        await ric.assert_unharmed(window)
        log = ric.log_text()
    assert "E2 TLS handshake failed (certificate_verify_failed)" in log
    assert "E2 TLS handshake failed (no_certificate)" in log
    assert "Handshake failed with error" in log  # gRPC's own lines still reach the log
