"""ric.cliutil: the table, the duration, the converters (through the real ``ric`` parser) and
the JSON-over-HTTP client against a real HTTP server."""

from __future__ import annotations

import argparse
import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from ric.cli import main
from ric.cliutil import (
    HttpFailure,
    JsonClient,
    address,
    duration,
    existing_file,
    existing_path,
    http_url,
    int_list,
    non_negative_seconds,
    positive_seconds,
    table,
)

# -- table and duration ----------------------------------------------------------------------


def test_table_pads_columns_aligns_the_right_ones_and_leaves_no_trailing_space() -> None:
    """Each column is as wide as its widest cell, the named ones right-aligned, lines end
    without spaces."""
    lines = table(["NAME", "N", "NOTE"], [["a", "10", ""], ["long name", "2", "x"]], right={1})
    assert lines == [
        "NAME        N  NOTE",
        "a          10",
        "long name   2  x",
    ]


def test_table_rule_puts_dashes_under_the_header() -> None:
    """``rule=True`` adds a line of dashes as wide as each column under the header."""
    assert table(["A", "BB"], [["xyz", "1"]], rule=True) == ["A    BB", "---  --", "xyz  1"]


def test_table_of_a_header_alone_is_one_line() -> None:
    """With no rows the table is just its header."""
    assert table(["A", "B"], []) == ["A  B"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59.9, "59s"), (65, "1m05s"), (3725, "1h02m"), (90000, "1d01h")],
)
def test_duration_shows_the_two_largest_units(seconds: float, text: str) -> None:
    """Seconds are shown in their two largest units, rounded down."""
    assert duration(seconds) == text


# -- converters ------------------------------------------------------------------------------


def test_converters_accept_what_they_describe(tmp_path: Path) -> None:
    """Good values come back parsed."""
    file = tmp_path / "f"
    file.write_text("x")
    assert address("localhost:36421") == ("localhost", 36421)
    assert http_url("https://h:1/") == "https://h:1"
    assert positive_seconds("0.5") == 0.5
    assert non_negative_seconds("0") == 0.0
    assert int_list("1,,3") == [1, 3]
    assert existing_file(str(file)) == file
    assert existing_path(str(tmp_path)) == tmp_path


@pytest.mark.parametrize(
    ("convert", "text", "message"),
    [
        (address, "nowhere", "'nowhere' is not HOST:PORT"),
        (address, "h:70000", "'h:70000' is not HOST:PORT"),
        (http_url, "h:80", "'h:80' is not an http:// URL"),
        (positive_seconds, "soon", "'soon' is not a number of seconds"),
        (positive_seconds, "0", "'0' must be more than 0 seconds"),
        (positive_seconds, "nan", "'nan' must be more than 0 seconds"),
        (non_negative_seconds, "-1", "'-1' is not a number of seconds >= 0"),
        (int_list, "1,b", "'1,b' is not a comma-separated list of node numbers"),
        (existing_file, "/no/such", "file '/no/such' does not exist"),
        (existing_path, "/no/such", "file '/no/such' does not exist"),
    ],
)
def test_converters_refuse_bad_values_naming_them(
    convert: Callable[[str], Any], text: str, message: str
) -> None:
    """A bad value is refused with a message that quotes it and says what was expected."""
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        convert(text)
    assert message in str(caught.value)


def test_a_folder_is_not_an_existing_file(tmp_path: Path) -> None:
    """existing_file wants a file; existing_path takes a folder too."""
    with pytest.raises(argparse.ArgumentTypeError, match="does not exist"):
        existing_file(str(tmp_path))


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["sim", "--connect", "nowhere"], "ric sim: error: argument --connect: 'nowhere'"),
        (["run", "--duration", "nan"], "ric run: error: argument --duration: 'nan' must be"),
        (
            ["eval", "seeds/demo.toml", "--xapps", "mlb", "--duration", "nan"],
            "ric eval: error: argument --duration: 'nan' must be more than 0 seconds",
        ),
        (["replay", "/no/t.trace"], "ric replay: error: argument FILE: file '/no/t.trace'"),
        (["policy", "types", "--timeout", "-2"], "argument --timeout: '-2' must be more than 0"),
        (["status", "--url", "x"], "ric status: error: argument --url: 'x' is not an http://"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_naming_the_option(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The shared parser turns a refused value into one line naming the option, exit 2."""
    with pytest.raises(SystemExit) as caught:
        main(args)
    assert caught.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and needle in lines[0], lines
    assert lines[0].endswith("--help)")


# -- the JSON-over-HTTP client ---------------------------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[str]:
    """A real aiohttp server on a free loopback port with one route per kind of answer."""

    async def ok(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        return web.json_response(
            {"method": request.method, "auth": request.headers.get("Authorization"), "got": body}
        )

    async def not_ready(_: web.Request) -> web.Response:
        return web.json_response({"ready": False}, status=503)

    async def refused(_: web.Request) -> web.Response:
        problem = {
            "type": "about:blank",
            "title": "Not Found",
            "status": 404,
            "detail": "there is no policy type 'nope'",
        }
        return web.json_response(problem, status=404, content_type="application/problem+json")

    async def refused_before(_: web.Request) -> web.Response:
        return web.json_response({"error": "no xApp 'nope' is loaded"}, status=404)

    async def titled(_: web.Request) -> web.Response:
        problem = {"title": "Slow Down", "status": 503}
        return web.json_response(problem, status=503, content_type="application/problem+json")

    async def html_error(_: web.Request) -> web.Response:
        return web.Response(text="<h1>bad\ngateway</h1>\n", status=502)

    async def not_json(_: web.Request) -> web.Response:
        return web.Response(text="hello")

    async def empty(_: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_route("*", "/ok", ok)
    app.router.add_get("/readyz", not_ready)
    app.router.add_get("/nope", refused)
    app.router.add_get("/old", refused_before)
    app.router.add_get("/titled", titled)
    app.router.add_get("/html", html_error)
    app.router.add_get("/text", not_json)
    app.router.add_delete("/empty", empty)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def call(client: JsonClient, *args: Any, **kwargs: Any) -> tuple[int, Any]:
    """The client blocks, so it runs on a thread while the server answers on the loop."""
    return await asyncio.to_thread(client.request, *args, **kwargs)


async def test_client_sends_json_and_the_token_and_decodes_the_answer(server: str) -> None:
    """A body goes out as JSON with the bearer token; the JSON answer comes back decoded."""
    client = JsonClient(server, timeout=5, token="secret")
    status, body = await call(client, "PUT", "/ok", {"a": 1})
    assert (status, body) == (200, {"method": "PUT", "auth": "Bearer secret", "got": {"a": 1}})
    assert await call(client, "DELETE", "/empty") == (204, None)


async def test_client_takes_an_error_status_it_was_told_to_expect(server: str) -> None:
    """/readyz's 503 is an answer, not a failure, when ``ok`` names it."""
    client = JsonClient(server, timeout=5)
    assert await call(client, "GET", "/readyz", ok={503}) == (503, {"ready": False})


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/nope", "{url}/nope answered 404 Not Found: there is no policy type 'nope'"),
        ("/old", "{url}/old answered 404 Not Found: no xApp 'nope' is loaded"),
        ("/titled", "{url}/titled answered 503 Service Unavailable: Slow Down"),
        ("/html", "{url}/html answered 502 Bad Gateway: <h1>bad gateway</h1>"),
        ("/readyz", '{url}/readyz answered 503 Service Unavailable: {{"ready": false}}'),
        ("/text", "{url}/text did not answer JSON (is this a ric runtime?)"),
    ],
)
async def test_client_failures_are_one_line_naming_the_url(
    server: str, path: str, message: str
) -> None:
    """An error status (with a ProblemDetails' detail or title, or an older runtime's error)
    or an answer that is not JSON is one line naming the URL."""
    with pytest.raises(HttpFailure) as caught:
        await call(JsonClient(server, timeout=5), "GET", path)
    assert str(caught.value) == message.format(url=server)


async def test_client_names_a_refused_connection() -> None:
    """Nothing listening is one line naming the base URL and 'connection refused'."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(HttpFailure) as caught:
        await call(JsonClient(url, timeout=5), "GET", "/readyz")
    assert str(caught.value) == (
        f"cannot reach the runtime at {url}: connection refused (is 'ric run' running, with "
        "HTTP on?)"
    )
