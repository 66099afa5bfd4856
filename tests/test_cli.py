"""The command line: help for every command, one-line errors with exit status 2, real runs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ric.sdl.memory import MemoryBackend
from tests.conftest import wait_for
from tests.integration.stack import free_port


def ric(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ric", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["run"],
        ["sim"],
        ["demo"],
        ["xapps"],
        ["eval"],
        ["policy"],
        ["policy", "put"],
        ["audit", "verify"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    """``--help`` works for the top level and each command and describes it."""
    result = ric(*command, "--help")
    assert result.returncode == 0
    assert "usage: ric" in result.stdout and len(result.stdout.splitlines()) > 5


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "--e2", "nowhere"], "argument --e2: 'nowhere' is not HOST:PORT"),
        (["run", "--duration", "-1"], "argument --duration: '-1' must be more than 0 seconds"),
        (
            ["run", "--config", "/no/such.toml"],
            "argument --config: file '/no/such.toml' does not exist",
        ),
        (["sim", "--nodes", "a,b"], "argument --nodes: 'a,b' is not a comma-separated list"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (
            ["run", "--xapp", "no_such_module:X"],
            "xApp plugin 'no_such_module:X': cannot import module",
        ),
        (
            ["run", "--xapp", "not-installed"],
            "xApp plugin 'not-installed': no installed xApp has this name",
        ),
    ],
)
def test_bad_arguments_get_one_line_and_status_2(args: list[str], needle: str) -> None:
    """A bad argument or plugin gets one line on stderr naming it, and exit status 2."""
    result = ric(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert needle in lines[0]


def test_bad_config_value_names_the_key(tmp_path: Path) -> None:
    """A bad value in the config file gets one line naming the key, and exit status 2."""
    path = tmp_path / "ric.toml"
    path.write_text("[e2]\nport = 'x'\n")
    result = ric("run", "--config", str(path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"ric run: error: config key 'e2.port': input should be a valid integer, unable to parse "
        f"string as an integer, got 'x' (from {path})"
    ]


def test_bad_xapp_config_names_the_xapp_key(tmp_path: Path) -> None:
    """A bad setting of an xApp is refused with the xApp's key path."""
    path = tmp_path / "ric.toml"
    path.write_text('[xapps]\nload = ["kpimon"]\n[xapps.config.kpimon]\nprint_every_s = "often"\n')
    result = ric("run", "--config", str(path), "--e2", "127.0.0.1:0")
    assert result.returncode == 2
    assert "config key 'xapps.config.kpimon.print_every_s'" in result.stderr


def test_xapps_lists_installed_examples() -> None:
    """``ric xapps`` lists the installed example xApps as loadable, with their controls and
    the A1 policy types they handle."""
    result = ric("xapps")
    assert result.returncode == 0
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert set(rows) >= {"kpimon", "mlb", "slicesla", "energysaver", "anomaly"}
    assert all(row.endswith("ok") for row in rows.values())
    assert "ric-xapp-kpimon" in rows["kpimon"]
    assert "Handover" in rows["mlb"] and "CellState" in rows["energysaver"]
    assert "SlicePrbQuota" in rows["slicesla"] and "slice-sla" in rows["slicesla"]


def test_run_serves_and_stops_by_itself() -> None:
    """``ric run`` on port 0 with an xApp starts, reports where it listens, and stops after
    --duration with status 0."""
    result = ric(
        "run",
        "--e2",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--xapp",
        "kpimon",
        "--duration",
        "0.5",
        "--log-format",
        "json",
    )
    assert result.returncode == 0, result.stderr
    assert "ric: E2 on 127.0.0.1:" in result.stderr and "xApps: kpimon" in result.stderr
    assert "event loop: uvloop" in result.stderr  # the default where uvloop is installed
    assert '"msg": "xApp kpimon is running"' in result.stderr


def test_port_in_use_is_a_clear_error() -> None:
    """A busy E2 port is reported as such, with exit status 1."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = ric("run", "--e2", f"127.0.0.1:{port}", "--no-http", "--duration", "1")
    assert result.returncode == 1
    assert f"cannot listen for E2 on 127.0.0.1:{port}" in result.stderr


def test_certs_writes_a_marked_development_pki(tmp_path: Path) -> None:
    """``ric certs`` writes a CA, a server and per-node certificates, marked for development;
    a bad node id is one line with exit status 2."""
    result = ric("certs", "--out", str(tmp_path / "pki"), "--nodes", "gnb-001-01-7")
    assert result.returncode == 0, result.stderr
    assert "DEVELOPMENT ONLY" in result.stdout
    names = sorted(p.name for p in (tmp_path / "pki").iterdir())
    assert names == [
        "README.txt",
        "ca.key",
        "ca.pem",
        "gnb-001-01-7.key",
        "gnb-001-01-7.pem",
        "server.key",
        "server.pem",
    ]
    bad = ric("certs", "--out", str(tmp_path / "x"), "--nodes", "gnb-7")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "ric certs: error: config key '--nodes': node id 'gnb-7' is not '<type>-<mcc>-<mnc>-<id>', e.g. gnb-001-01-1"
    ]


def test_audit_verify_on_a_file_that_is_not_an_audit_log(tmp_path: Path) -> None:
    """``ric audit verify`` on a file that is not an audit log names the line and exits 1; on a
    missing file it is one line with exit status 2."""
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    result = ric("audit", "verify", str(path))
    assert result.returncode == 1
    assert "line 1 is not JSON" in result.stdout
    missing = ric("audit", "verify", str(tmp_path / "none.jsonl"))
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr


# -- ric policy: against a real runtime's A1 API ----------------------------------------------


async def policy_cli(*args: str, stdin: bytes = b"") -> tuple[int, str, str]:
    """Run ``ric policy ARGS`` without blocking the loop the runtime serves on."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ric",
        "policy",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_policy_commands_against_a_runtime(tmp_path: Path) -> None:
    """``ric policy`` puts a type and a policy (from a file and from stdin), lists, gets and
    shows the status the xApp reported, and deletes them."""
    from tests.test_a1 import GOLD, SLA, enforcer
    from tests.test_a1_http import TOKEN, served

    token = tmp_path / "token"
    token.write_text(TOKEN)
    (tmp_path / "type.json").write_text(json.dumps(SLA.to_json()))
    (tmp_path / "gold.json").write_text(json.dumps(GOLD))
    app = enforcer()
    async with served(token, MemoryBackend(), app) as url:
        auth = ["--url", url, "--token-file", str(token)]
        assert await policy_cli("put-type", "loose", str(tmp_path / "type.json"), *auth) == (
            0,
            "policy type 'loose' created\n",
            "",
        )
        assert await policy_cli("types", "--url", url) == (0, "loose\nslice-sla\n", "")
        code, out, _ = await policy_cli("get-type", "slice-sla", "--url", url)
        assert code == 0 and json.loads(out) == SLA.to_json()
        put = ("put", "slice-sla", "gold", str(tmp_path / "gold.json"), *auth)
        assert await policy_cli(*put) == (0, "policy 'gold' of type 'slice-sla' created\n", "")
        stdin = json.dumps({**GOLD, "sst": 2}).encode()
        code, out, _ = await policy_cli("put", "slice-sla", "gold", "-", *auth, stdin=stdin)
        assert (code, out) == (0, "policy 'gold' of type 'slice-sla' updated\n")
        assert await policy_cli("list", "slice-sla", "--url", url) == (0, "gold\n", "")
        code, out, _ = await policy_cli("get", "slice-sla", "gold", "--url", url)
        assert json.loads(out) == {**GOLD, "sst": 2}
        await wait_for(lambda: len(app.events) == 2)
        for _ in range(500):
            code, out, _ = await policy_cli("status", "slice-sla", "gold", "--url", url)
            if json.loads(out)["enforceStatus"] == "ENFORCED":
                break
        # The A1 status body is enforceStatus/enforceReason only since 2e4d01d (issue 22).
        assert json.loads(out) == {"enforceStatus": "ENFORCED"}
        assert await policy_cli("delete", "slice-sla", "gold", *auth) == (
            0,
            "policy 'gold' of type 'slice-sla' deleted\n",
            "",
        )
        assert await policy_cli("delete-type", "loose", *auth) == (
            0,
            "policy type 'loose' deleted\n",
            "",
        )
        await wait_for(lambda: len(app.events) == 3)


async def test_policy_errors_from_the_server_are_one_line_and_status_1(tmp_path: Path) -> None:
    """A refused request prints the server's reason in one line (the failing field for an
    invalid policy, 401 without a token, 404 for an unknown type), exit status 1; nothing
    listening is one line and status 1 too."""
    from tests.test_a1 import enforcer
    from tests.test_a1_http import TOKEN, served

    token = tmp_path / "token"
    token.write_text(TOKEN)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"sst": 1, "max_delay_ms": "soon"}))
    async with served(token, MemoryBackend(), enforcer()) as url:
        put = ("put", "slice-sla", "gold", str(bad), "--url", url)
        assert await policy_cli(*put, "--token-file", str(token)) == (
            1,
            "",
            f"ric policy put: error: {url}/A1-P/v2/policytypes/slice-sla/policies/gold answered "
            "400 Bad Request: policy 'gold' does not satisfy the schema of policy type "
            "'slice-sla': max_delay_ms: 'soon' is not of type 'number'\n",
        )
        code, _, err = await policy_cli(*put)
        assert code == 1 and err.startswith(
            f"ric policy put: error: {url}/A1-P/v2/policytypes/slice-sla/policies/gold answered "
            "401 Unauthorized: PUT "
        )
        assert await policy_cli("list", "nope", "--url", url) == (
            1,
            "",
            f"ric policy list: error: {url}/A1-P/v2/policytypes/nope/policies answered "
            "404 Not Found: there is no policy type 'nope'\n",
        )
    code, out, err = await policy_cli("types", "--url", url)
    assert (code, out) == (1, "")
    assert err == (
        f"ric policy types: error: cannot reach the runtime at {url}: connection refused "
        "(is 'ric run' running, with HTTP on?)\n"
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["put", "t", "p", "/no/such.json"], "argument FILE.json: cannot read '/no/such.json'"),
        (["put-type", "t", "{bad}"], "cannot read '{bad}'"),
        (["types", "--url", "localhost:8080"], "is not an http:// URL"),
        (["types", "--token-file", "/no/token"], "cannot read token file '/no/token'"),
        (["get", "t"], "the following arguments are required: ID"),
        (["frob"], "invalid choice: 'frob'"),
    ],
)
def test_policy_bad_arguments_are_one_line_and_status_2(args: list[str], needle: str) -> None:
    """A bad ``ric policy`` argument gets one line naming it, and exit status 2."""
    result = ric("policy", *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr


def test_policy_put_of_a_file_that_is_not_json_is_status_2(tmp_path: Path) -> None:
    """A policy file that is not JSON is named with the parse error, exit status 2."""
    path = tmp_path / "p.json"
    path.write_text("{nope")
    result = ric("policy", "put", "t", "p", str(path))
    assert result.returncode == 2
    assert f"'{path}' is not JSON: Expecting property name" in result.stderr


def test_policy_help_reads_well() -> None:
    """``ric policy --help`` lists the actions, and each action has help with the options."""
    result = ric("policy", "--help")
    assert result.returncode == 0
    for action in ("types", "list", "get", "put", "delete", "status", "put-type"):
        assert f"    {action} " in result.stdout
    put = ric("policy", "put", "--help")
    text = " ".join(put.stdout.split())
    for needle in ("TYPE ID FILE.json", "--token-file FILE", "--tls-ca FILE", "('-': stdin)"):
        assert needle in text


async def test_policy_over_https_with_a_client_certificate(tmp_path: Path) -> None:
    """Over HTTPS ``ric policy`` verifies the runtime against --tls-ca and authenticates a
    write with --tls-cert/--tls-key; without the CA it fails in one line, status 1; a
    certificate without its key is a usage error, status 2."""
    from ric.certs import write_dev_pki
    from tests.test_a1 import SLA
    from tests.test_a1_http import TOKEN, served

    pki = write_dev_pki(tmp_path / "pki", ["gnb-001-01-9"])
    token = tmp_path / "token"
    token.write_text(TOKEN)
    (tmp_path / "type.json").write_text(json.dumps(SLA.to_json()))
    tls = {"tls_cert": str(pki.server_cert), "tls_key": str(pki.server_key)}
    async with served(token, MemoryBackend(), client_ca=str(pki.ca), **tls) as url:
        assert url.startswith("https://")
        cert = ["--tls-cert", str(pki.folder / "gnb-001-01-9.pem")]
        key = ["--tls-key", str(pki.folder / "gnb-001-01-9.key")]
        put = ("put-type", "slice-sla", str(tmp_path / "type.json"), "--url", url)
        assert await policy_cli(*put, "--tls-ca", str(pki.ca), *cert, *key) == (
            0,
            "policy type 'slice-sla' created\n",
            "",
        )
        assert await policy_cli("types", "--url", url, "--tls-ca", str(pki.ca)) == (
            0,
            "slice-sla\n",
            "",
        )
        code, out, err = await policy_cli("types", "--url", url)
        assert (code, out) == (1, "") and len(err.splitlines()) == 1
        assert "CERTIFICATE_VERIFY_FAILED" in err and f"cannot reach the runtime at {url}" in err
        code, _, err = await policy_cli(*put, "--tls-ca", str(pki.ca), *cert)
        assert (code, err) == (
            2,
            "ric policy put-type: error: --tls-cert and --tls-key go together\n",
        )


def test_demo_runs_the_network_and_the_example_xapps() -> None:
    """``ric demo`` (what ``make run`` starts) brings up the three simulated nodes over gRPC, the
    view shows all nine cells' KPIs, and the example xApps' controls end acknowledged by the
    nodes (slicesla's URLLC quota: the demo's 5 ms delay target is missed in the hotspot)."""
    e2, http = free_port(), free_port()
    result = ric(
        "demo",
        "--duration",
        "15",
        "--e2",
        f"127.0.0.1:{e2}",
        "--http",
        f"127.0.0.1:{http}",
        timeout=90,
    )
    assert result.returncode == 0, result.stderr
    *_, last, stopping = result.stdout.split("ric demo  up")  # the last frame, the last line
    assert "controls" in stopping
    assert "nodes 3" in last
    for node in ("gnb-001-01-1", "gnb-001-01-2", "gnb-001-01-3"):
        assert node in last
    cells = [line for line in last.splitlines() if line.startswith("001-01-")]
    assert len(cells) == 9
    # Recent controls scroll, so look for slicesla's in every frame.
    assert "slicesla slice_prb_quota slice:001-01-4097/2-000002 on gnb-001-01-1: acknowledged" in (
        result.stdout
    )
