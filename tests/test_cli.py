"""The command line: help for every command, one-line errors with exit status 2, real runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def ric(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ric", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize("command", [[], ["run"], ["sim"], ["demo"], ["xapps"]])
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
    """``ric xapps`` lists the installed example xApps as loadable."""
    result = ric("xapps")
    assert result.returncode == 0
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert rows["kpimon"].endswith("ok") and "ric-xapp-kpimon" in rows["kpimon"]
    assert "Handover" in rows["mlb"]


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
