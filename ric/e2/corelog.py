"""gRPC core's own log, read by ``ric``: TLS handshake failures on E2 become a log line of
``ric.e2`` and the metric ``ric_e2_tls_failures_total{reason}``.

grpcio gives Python no hook for a failed TLS handshake: the handshake runs in gRPC's C core,
and a connection that fails it never reaches a servicer, an interceptor, the auth context or
channelz. What the core does is print one line per failure on the process's standard error::

    I1207 12:53:09.370501 32099 ssl_transport_security.cc:2563] Handshake failed with error
    SSL_ERROR_SSL: error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:
    unable to get local issuer certificate

``CoreLogTap`` puts a pipe in front of file descriptor 2, passes every byte on to the original
standard error unchanged and in order, and turns each handshake-failure line into a call of
``on_failure(reason, detail)``. ``reason`` is one of :data:`REASONS`' values (``other`` for a
code not listed), so the metric's label set stays bounded. The peer's address is in no line
gRPC writes at its default verbosity, so the log line says the peer is unknown rather than
guess.

Taking over file descriptor 2 is a process-wide choice: ``ric run`` makes it when E2 TLS is
on; the library never does.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable

__all__ = ["REASONS", "CoreLogTap", "parse_handshake_failure"]

REASONS = {
    "CERTIFICATE_VERIFY_FAILED": "certificate_verify_failed",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "no_certificate",
    "CERTIFICATE_REQUIRED": "no_certificate",
    "WRONG_VERSION_NUMBER": "not_tls",
    "HTTP_REQUEST": "not_tls",
    "PACKET_LENGTH_TOO_LONG": "not_tls",
    "NO_SHARED_CIPHER": "no_shared_cipher",
    "UNSUPPORTED_PROTOCOL": "unsupported_protocol",
    "TLSV1_ALERT_UNKNOWN_CA": "peer_rejected_certificate",
    "SSLV3_ALERT_BAD_CERTIFICATE": "peer_rejected_certificate",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "peer_rejected_certificate",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "handshake_failure",
}
"""BoringSSL reason codes, as gRPC prints them, to the metric's ``reason`` label."""

_FAILURE = re.compile(rb"Handshake failed with (?:fatal )?error ([A-Z_]+)(?:: (.*))?")
_CODE = re.compile(r"OPENSSL_internal:([A-Z0-9_]+)")


def parse_handshake_failure(line: bytes) -> tuple[str, str] | None:
    """``(reason, detail)`` of one line of gRPC's log, or None when it is not a TLS handshake
    failure. ``detail`` is what gRPC said after "Handshake failed with error"."""
    match = _FAILURE.search(line)
    if match is None:
        return None
    detail = (match.group(2) or match.group(1)).decode(errors="replace").strip()
    code = _CODE.search(detail)
    reason = REASONS.get(code.group(1), "other") if code else "other"
    return reason, detail


class CoreLogTap:
    """A pipe in front of standard error that passes everything through and reports the TLS
    handshake failures gRPC's core writes there (see the module).

    ``on_failure`` is called on the tap's own thread: hand it to the event loop with
    ``loop.call_soon_threadsafe``. ``start`` and ``stop`` are for the process's main thread.
    """

    def __init__(self, on_failure: Callable[[str, str], None], *, fd: int = 2) -> None:
        self._on_failure = on_failure
        self._fd = fd
        self._original = -1
        self._read = -1
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Put the pipe in front of the descriptor and start the reader thread."""
        if self._thread is not None:
            return
        read, write = os.pipe()
        self._original = os.dup(self._fd)
        os.dup2(write, self._fd)
        os.close(write)
        self._read = read
        self._thread = threading.Thread(target=self._pump, name="ric-grpc-log", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Give the descriptor back; the thread passes on what is left in the pipe and ends."""
        if self._thread is None:
            return
        os.dup2(self._original, self._fd)  # the pipe's last writer is gone: the reader sees EOF
        self._thread.join(timeout=5.0)
        self._thread = None
        os.close(self._original)
        self._original = -1

    def _pump(self) -> None:
        pending = b""
        try:
            while chunk := os.read(self._read, 65536):
                self._write_through(chunk)
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._inspect(line)
                if len(pending) > 65536:  # a line that never ends: keep only its tail
                    pending = pending[-4096:]
        finally:
            os.close(self._read)

    def _write_through(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._original, view)
            except OSError:  # standard error itself is gone; keep draining the pipe
                return
            view = view[written:]

    def _inspect(self, line: bytes) -> None:
        if b"Handshake failed" not in line:
            return
        parsed = parse_handshake_failure(line)
        if parsed is not None:
            with contextlib.suppress(Exception):  # the reporter's failure must not stop the pipe
                self._on_failure(*parsed)
