"""Reading gRPC core's log: handshake-failure lines become (reason, detail), and the tap passes
every byte through unchanged while reporting them."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from ric.e2.corelog import CoreLogTap, parse_handshake_failure

VERIFY = (
    b"I1207 12:53:09.370501   32099 ssl_transport_security.cc:2563] Handshake failed with "
    b"error SSL_ERROR_SSL: error:1000007d:SSL routines:OPENSSL_internal:"
    b"CERTIFICATE_VERIFY_FAILED: unable to get local issuer certificate"
)
NO_CERT = (
    b"I1207 12:53:13.276573   32101 ssl_transport_security.cc:2563] Handshake failed with "
    b"error SSL_ERROR_SSL: error:100000c0:SSL routines:OPENSSL_internal:"
    b"PEER_DID_NOT_RETURN_A_CERTIFICATE: Invalid certificate verification context"
)


def test_handshake_failure_lines_give_a_bounded_reason_and_gRPCs_words() -> None:
    """Known BoringSSL codes map to their reason, unknown ones to 'other', other lines to None."""
    reason, detail = parse_handshake_failure(VERIFY) or ("", "")
    assert reason == "certificate_verify_failed"
    assert "unable to get local issuer certificate" in detail
    assert (parse_handshake_failure(NO_CERT) or ("",))[0] == "no_certificate"
    odd = b"Handshake failed with error SSL_ERROR_SSL: error:1:SSL routines:OPENSSL_internal:NEW_THING: x"
    assert (parse_handshake_failure(odd) or ("",))[0] == "other"
    assert parse_handshake_failure(b"I1207 chttp2_transport.cc] ping timeout") is None


def test_the_tap_passes_everything_through_and_reports_failures(tmp_path: Path) -> None:
    """Whatever is written to the tapped descriptor reaches its original target byte for byte,
    and each handshake-failure line is reported once; after stop the descriptor is as before."""
    out = tmp_path / "stderr"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    seen: list[tuple[str, str]] = []
    done = threading.Event()

    def failed(reason: str, detail: str) -> None:
        seen.append((reason, detail))
        if len(seen) == 2:
            done.set()

    tap = CoreLogTap(failed, fd=fd)
    tap.start()
    written = b"plain line\n" + VERIFY + b"\n" + b"another\n" + NO_CERT[:40]
    for piece in (written, NO_CERT[40:] + b"\n"):  # a line split across two writes
        os.write(fd, piece)
    assert done.wait(5.0)
    tap.stop()
    os.write(fd, b"after\n")
    os.close(fd)
    assert out.read_bytes() == written + NO_CERT[40:] + b"\n" + b"after\n"
    assert [r for r, _ in seen] == ["certificate_verify_failed", "no_certificate"]
