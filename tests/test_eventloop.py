"""The event loop choice: uvloop by default where it is installed, asyncio's on request or
where it cannot be imported, and a clear error when uvloop is asked for and missing."""

from __future__ import annotations

import asyncio
import sys

import pytest

from ric.cliutil import run_async
from ric.eventloop import kind, loop_factory, same_kind


def test_auto_runs_on_uvloop_and_asyncio_on_asyncios_loop() -> None:
    """``auto`` (the default) and ``uvloop`` run on uvloop, which the project depends on;
    ``asyncio`` runs on asyncio's own loop."""
    seen: list[str] = []

    async def which() -> int:
        seen.append(kind(asyncio.get_running_loop()))
        return 0

    for choice in ("auto", "uvloop", "asyncio"):
        assert run_async(which, choice) == 0
    assert seen == ["uvloop", "uvloop", "asyncio"]
    assert loop_factory("asyncio") is None


def test_a_thread_gets_a_loop_of_its_runtimes_kind() -> None:
    """``same_kind`` makes uvloop loops for a runtime on uvloop, and asyncio's own otherwise."""
    factory = loop_factory("auto")
    assert factory is not None
    uv = factory()
    plain = asyncio.new_event_loop()
    try:
        made = same_kind(uv)
        assert made is not None
        other = made()
        assert kind(other) == "uvloop"
        other.close()
        assert same_kind(plain) is None and same_kind(None) is None
    finally:
        uv.close()
        plain.close()


def test_without_uvloop_auto_falls_back_and_uvloop_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where uvloop cannot be imported, ``auto`` uses asyncio's loop and ``uvloop`` raises an
    error that names the setting and what to do."""
    monkeypatch.setitem(sys.modules, "uvloop", None)  # what a failed import looks like
    assert loop_factory("auto") is None
    with pytest.raises(ValueError, match=r"loop.implementation = 'uvloop', but uvloop cannot"):
        loop_factory("uvloop")
