"""Development certificates for mutual TLS on the E2 port: a CA, a server certificate and one
client certificate per node, whose subject and SAN carry the node id it may claim.

THESE ARE FOR DEVELOPMENT AND TESTS ONLY: the CA key is written next to the certificates,
unprotected, and every name says so. Production deployments use their own PKI.
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["DevPki", "issue", "make_ca", "write_dev_pki"]

DEV_MARK = "ric DEVELOPMENT ONLY - not for production"
_UTC = datetime.UTC


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, both PEM."""

    cert: bytes
    key: bytes


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_ca(
    name: str = "", days: int = 365
) -> tuple[Issued, ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed development CA (named uniquely unless ``name`` is given, so that CA
    bundles can hold several)."""
    key = _key()
    name = name or f"ric development CA {secrets.token_hex(4)}"
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, DEV_MARK),
        ]
    )
    now = datetime.datetime.now(_UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)), key, cert


def issue(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    common_name: str,
    *,
    dns: Iterable[str] = (),
    ips: Iterable[str] = (),
    server: bool = False,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> Issued:
    """A certificate for ``common_name`` (also its DNS SAN) signed by the CA; a server or a
    client certificate. ``not_before`` / ``not_after`` default to now-5 min / now+1 year."""
    key = _key()
    now = datetime.datetime.now(_UTC)
    names: list[x509.GeneralName] = [x509.DNSName(common_name), *(x509.DNSName(d) for d in dns)]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, DEV_MARK),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - datetime.timedelta(minutes=5))
        .not_valid_after(not_after or now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))


@dataclass(frozen=True)
class DevPki:
    """Where ``write_dev_pki`` put the files."""

    folder: Path
    ca: Path
    server_cert: Path
    server_key: Path
    nodes: dict[str, tuple[Path, Path]]


def write_dev_pki(
    folder: Path,
    node_ids: Sequence[str],
    *,
    server_names: Sequence[str] = ("localhost",),
    server_ips: Sequence[str] = ("127.0.0.1",),
) -> DevPki:
    """Write a development CA, a server certificate and one client certificate per node id."""
    folder.mkdir(parents=True, exist_ok=True)
    ca, ca_key, ca_cert = make_ca()
    (folder / "ca.pem").write_bytes(ca.cert)
    (folder / "ca.key").write_bytes(ca.key)
    server = issue(
        ca_key, ca_cert, server_names[0], dns=server_names[1:], ips=server_ips, server=True
    )
    (folder / "server.pem").write_bytes(server.cert)
    (folder / "server.key").write_bytes(server.key)
    nodes = {}
    for node in node_ids:
        client = issue(ca_key, ca_cert, node)
        cert, key = folder / f"{node}.pem", folder / f"{node}.key"
        cert.write_bytes(client.cert)
        key.write_bytes(client.key)
        nodes[node] = (cert, key)
    for path in folder.glob("*.key"):
        path.chmod(0o600)
    (folder / "README.txt").write_text(
        f"{DEV_MARK}.\n\nMade by 'ric certs'. The CA key (ca.key) lies here unprotected: anyone who "
        "can read it can make certificates that this RIC trusts. Use your own PKI in production.\n"
    )
    return DevPki(folder, folder / "ca.pem", folder / "server.pem", folder / "server.key", nodes)
