"""What the ``ric`` commands share: the parser class, argument converters, text tables,
durations, running a coroutine, and the JSON-over-HTTP client.

It lives beside the packages rather than inside ``ric.cli`` because the renderers of
``ric.trace``, ``ric.eval`` and ``ric.bench`` use its table too: a leaf module that imports
only the standard library keeps them from importing the command line (and it them, in a
cycle; ``ric.eventloop`` is another such leaf). Every converter raises ``argparse.ArgumentTypeError`` with the value and what it
should be, which :class:`Parser` prints as one line naming the option, exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import signal
import ssl
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Collection, Sequence
from pathlib import Path
from typing import Any, NoReturn

from ric.eventloop import LoopChoice, loop_factory

__all__ = [
    "EXIT_FAILED",
    "EXIT_USAGE",
    "LOG_LEVELS",
    "HttpFailure",
    "JsonClient",
    "Parser",
    "add_http_auth_options",
    "add_tls_client_options",
    "address",
    "duration",
    "endpoint_list",
    "existing_file",
    "existing_path",
    "http_client",
    "http_url",
    "int_list",
    "non_negative_seconds",
    "positive_seconds",
    "run_async",
    "table",
    "token_file",
]

EXIT_FAILED = 1
"""Exit status of a command that ran and failed (a peer unreachable or refusing)."""
EXIT_USAGE = 2
"""Exit status of a bad argument, file or configuration value."""
LOG_LEVELS = ("debug", "info", "warning", "error")
"""The choices of every ``--log-level`` (the values ``[log] level`` takes)."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that names the problem and points to --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# -- argument converters ---------------------------------------------------------------------


def address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` as (host, port); the port 0..65535."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT, e.g. 127.0.0.1:36421")
    return host, int(port)


def endpoint_list(text: str) -> tuple[str, ...]:
    """Comma-separated ``HOST:PORT`` (a RIC's endpoints, to fail over between), each checked
    by :func:`ric.e2node.parse_endpoint`; the message names the bad one."""
    from ric.e2node.endpoints import Endpoints  # here: this module imports no ric module

    try:
        return Endpoints.parse(text).targets
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def http_url(text: str) -> str:
    """An ``http://`` or ``https://`` URL, without a trailing slash."""
    if not text.startswith(("http://", "https://")) or len(text.split("://", 1)[1]) == 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an http:// URL, e.g. http://127.0.0.1:8080"
        )
    return text.rstrip("/")


def positive_seconds(text: str) -> float:
    """A number of seconds more than 0 (NaN and text refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 seconds")
    return value


def non_negative_seconds(text: str) -> float:
    """A number of seconds, 0 or more (NaN and text refused)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0")
    return value


def int_list(text: str) -> list[int]:
    """Comma-separated whole numbers (``1,3``); empty parts are skipped."""
    try:
        return [int(part) for part in text.split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of node numbers"
        ) from None


def existing_file(text: str) -> Path:
    """The path of a file that exists."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"file {text!r} does not exist")
    return path


def existing_path(text: str) -> Path:
    """The path of a file or folder that exists."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"file {text!r} does not exist")
    return path


def token_file(text: str) -> str:
    """The bearer token in file ``text`` (stripped); refused when unreadable or empty."""
    try:
        token = Path(text).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise argparse.ArgumentTypeError(f"cannot read token file {text!r}: {exc}") from None
    if not token:
        raise argparse.ArgumentTypeError(f"token file {text!r} is empty")
    return token


def add_http_auth_options(parser: argparse.ArgumentParser) -> None:
    """The ways a client command authenticates to the runtime's HTTP API, the same for every
    command: --token-file, and with https:// --tls-ca, --tls-cert and --tls-key."""
    parser.add_argument(
        "--token-file",
        type=token_file,
        metavar="FILE",
        help="send the bearer token in FILE (as [http] token_file); writes need it, and reads "
        "with [http] protect_reads",
    )
    parser.add_argument(
        "--tls-ca",
        type=existing_file,
        metavar="FILE",
        help="with https://: verify the runtime's certificate against this CA (PEM) instead of "
        "the system's",
    )
    parser.add_argument(
        "--tls-cert",
        type=existing_file,
        metavar="FILE",
        help="with https://: authenticate with this client certificate (PEM; needs --tls-key)",
    )
    parser.add_argument("--tls-key", type=existing_file, metavar="FILE", help="its private key")


def http_client(args: argparse.Namespace, url: str, timeout: float) -> JsonClient:
    """A JsonClient for ``url`` with the options of ``add_http_auth_options``; HttpFailure when
    the TLS files cannot be loaded."""
    context = None
    if url.startswith("https://"):
        try:
            context = ssl.create_default_context(cafile=args.tls_ca)
            if args.tls_cert:
                context.load_cert_chain(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise HttpFailure(f"cannot load the TLS files: {exc}") from None
    return JsonClient(url, timeout=timeout, token=args.token_file, context=context)


def add_tls_client_options(parser: argparse.ArgumentParser) -> None:
    """--tls-ca / --tls-dir for commands whose nodes connect to a RIC (sim, replay)."""
    parser.add_argument(
        "--tls-ca",
        type=existing_file,
        metavar="FILE",
        help="connect over TLS, verifying the RIC's certificate against this CA (PEM)",
    )
    parser.add_argument(
        "--tls-dir",
        type=Path,
        metavar="DIR",
        help="present each node's certificate, <node id>.pem/.key in DIR (as 'ric certs' writes)",
    )


# -- rendering -------------------------------------------------------------------------------


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    right: Collection[int] = (),
    *,
    rule: bool = False,
) -> list[str]:
    """The lines of a text table: columns as wide as their widest cell, two spaces apart,
    the columns numbered in ``right`` aligned right, no trailing spaces; ``rule`` puts a line
    of dashes under the header."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        cells = [
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    lines = [line(header)]
    if rule:
        lines.append("  ".join("-" * w for w in widths).rstrip())
    lines += [line(row) for row in rows]
    return lines


def duration(seconds: float) -> str:
    """A duration in its two largest units, for people: ``45s``, ``1m05s``, ``2h03m``,
    ``1d02h`` (whole seconds, rounded down)."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


# -- running ---------------------------------------------------------------------------------


def run_async(factory: Callable[[], Awaitable[int]], loop: LoopChoice = "auto") -> int:
    """Run a coroutine on the ``loop`` chosen (``ric.eventloop``); SIGTERM and Ctrl-C cancel
    it, which shuts down gracefully."""

    async def runner() -> int:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            return await factory()
        except asyncio.CancelledError:
            return 0

    try:
        with asyncio.Runner(loop_factory=loop_factory(loop)) as run:
            return run.run(runner())
    except KeyboardInterrupt:
        return 130


# -- the JSON-over-HTTP client ---------------------------------------------------------------


class HttpFailure(Exception):
    """A request to the runtime's HTTP API failed; the message is the one line to print."""


class JsonClient:
    """Requests to a runtime's HTTP API that send and answer JSON, with one error handling.

    An error status, a refused connection and an answer that is not JSON each raise
    :class:`HttpFailure` with one line naming the URL and the problem (an error answer's
    ProblemDetails ``detail``, or an older runtime's ``error``). ``token`` is sent as
    a bearer token; ``context`` verifies ``https://`` (None: plain HTTP or the system's CAs).
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        token: str | None = None,
        context: ssl.SSLContext | None = None,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.token = token
        self.context = context

    def request(
        self, method: str, path: str, body: Any = None, *, ok: Collection[int] = ()
    ) -> tuple[int, Any]:
        """Send one request; (status, decoded JSON body or None when empty). A status of 400
        or more raises HttpFailure unless it is in ``ok`` (/readyz answers 503 with JSON)."""
        url = self.base_url + path
        headers = {"Accept": "application/json, application/problem+json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self.context) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            if exc.code not in ok:
                detail = _detail(raw, exc.reason)
                raise HttpFailure(f"{url} answered {exc.code} {exc.reason}: {detail}") from None
            status = exc.code
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            if isinstance(reason, ConnectionRefusedError):
                reason = "connection refused"
            raise HttpFailure(
                f"cannot reach the runtime at {self.base_url}: {reason} (is 'ric run' running, "
                "with HTTP on?)"
            ) from None
        if not raw:
            return status, None
        try:
            return status, json.loads(raw)
        except ValueError:
            raise HttpFailure(f"{url} did not answer JSON (is this a ric runtime?)") from None


def _detail(raw: bytes, reason: str) -> str:
    """The reason in an error answer on one line: a ProblemDetails' ``detail`` (or ``title``),
    an older runtime's ``{"error": ...}``, else the answer's text, else the status's reason
    phrase."""
    try:
        answer = json.loads(raw)
        text = str(
            answer.get("detail") or answer.get("error") or answer.get("title") or raw.decode()
        )
    except (ValueError, AttributeError):
        text = raw.decode(errors="replace")
    return " ".join(text.split()) or reason
