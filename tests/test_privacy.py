"""UE pseudonyms: keyed, stable, unlinkable without the key; applied to log lines."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from ric.errors import ConfigError
from ric.logs import setup_logging
from ric.privacy import Pseudonymizer


def test_pseudonyms_are_keyed_and_stable() -> None:
    """The same key gives the same pseudonym; another key a different one; disabled keeps ids."""
    a = Pseudonymizer(b"k" * 32)
    assert a.ue(17) == a.ue("17")
    assert a.ue(17).startswith("ue-")
    assert len(a.ue(17)) == 19
    assert a.ue(17) != a.ue(18)
    assert Pseudonymizer(b"j" * 32).ue(17) != a.ue(17)
    assert Pseudonymizer(None, enabled=False).ue(17) == "17"
    assert (
        a.text("handover ue:17 on gnb-001-01-1 to cell 001-01-17")
        == f"handover ue:{a.ue(17)} on gnb-001-01-1 to cell 001-01-17"
    )


def test_key_file_errors(tmp_path: Path) -> None:
    """A missing or too short key file is refused naming privacy.key_file."""
    with pytest.raises(ConfigError, match=r"privacy\.key_file.*cannot read"):
        Pseudonymizer.from_config(True, str(tmp_path / "none"))
    short = tmp_path / "short"
    short.write_bytes(b"abc")
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        Pseudonymizer.from_config(True, str(short))


def test_logs_carry_pseudonyms_only() -> None:
    """With privacy on, a log line about a UE shows its pseudonym, never its id."""
    out = io.StringIO()
    privacy = Pseudonymizer(b"x" * 32)
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    setup_logging("info", "json", stream=out, privacy=privacy)
    try:
        logging.getLogger("ric.test").info("control: handover ue:%s: acknowledged", 4242)
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
    line = out.getvalue()
    assert "4242" not in line
    assert privacy.ue(4242) in line


async def test_audit_file_and_controls_api_carry_the_pseudonym_the_log_shows(
    tmp_path: Path,
) -> None:
    """With privacy on, a handover of UE 21 appears in the audit file, in memory and at
    /api/v1/controls only as the pseudonym its log line shows, never as ue:21."""
    from ric import Handover, XApp
    from tests.conftest import wait_for
    from tests.integration.stack import running_ric, xapp_plugins
    from tests.test_http import get

    class Mover(XApp):
        name = "mover"
        controls = [Handover]

    path = tmp_path / "audit.jsonl"
    out = io.StringIO()
    overrides = {"privacy.pseudonymize_ue_ids": True, "audit.path": str(path)}
    async with running_ric(*xapp_plugins(Mover), sim=False, overrides=overrides) as ric:
        setup_logging("info", "json", stream=out, privacy=ric.runtime.privacy)
        await wait_for(lambda: ric.runtime.host("mover").instance is not None)
        app = ric.runtime.host("mover").instance
        assert app is not None
        outcome = await app.control(Handover("21", "001-01-91", "001-01-92"))
        assert outcome.action.target == "ue:21"  # the xApp itself still sees the real id
        status, body, _ = await get(f"{ric.url}/api/v1/controls")
        pseudonym = f"ue:{ric.runtime.privacy.ue(21)}"
    assert status == 200
    assert [r["target"] for r in body["controls"]] == [pseudonym]
    text = path.read_text()
    assert pseudonym in text and "ue:21" not in text
    assert "ue:21" not in json.dumps(body)
    logged = [json.loads(line) for line in out.getvalue().splitlines()]
    control_lines = [e["msg"] for e in logged if e["msg"].startswith("control from mover")]
    assert control_lines and all(pseudonym in m and "ue:21" not in m for m in control_lines)


def test_the_demo_view_shows_pseudonyms() -> None:
    """With privacy on, the demo's recent-controls view shows a UE's pseudonym, not its id."""
    import time

    from ric import ControlOutcome, Handover, OutcomeKind
    from ric.cli.demo import render
    from ric.config import load_config
    from ric.runtime import Runtime
    from ric.sensors import Stats

    config = load_config(environ={}, overrides={"privacy.pseudonymize_ue_ids": True})
    runtime = Runtime(config, listen=False)
    stats = Stats()
    action = Handover("21", "001-01-91", "001-01-92")
    stats.control_finished("mlb", ControlOutcome(OutcomeKind.ACKNOWLEDGED, action))
    view = render(runtime, stats, time.time(), 0.0)
    assert f"handover ue:{runtime.privacy.ue(21)}" in view
    assert "ue:21" not in view
