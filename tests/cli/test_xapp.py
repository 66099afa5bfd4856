"""``ric xapp run``: bad arguments and unloadable xApps exit 2 naming the problem; a refused
attach exits 1 with the runtime's reason; a runtime's stop ends it with 0."""

from __future__ import annotations

import asyncio
import sys

import pytest

from ric.cli import main
from tests.conftest import RuntimeFactory, wait_for


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["xapp", "run", "tests.northbound.apps:Counter"], "--connect"),
        (["xapp", "run", "x", "--connect", "nohost"], "is not HOST:PORT"),
        (["xapp", "run", "x", "--connect", "h:99999"], "is not HOST:PORT"),
        (["xapp", "run", "x", "--connect", "fd:x"], "needs a file descriptor number"),
    ],
)
def test_bad_arguments_exit_2_naming_the_problem(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each bad argument is refused by the parser with a message naming it."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_the_runtimes_own_socket_is_not_for_users(capsys: pytest.CaptureFixture[str]) -> None:
    """--connect fd:N (how the runtime starts its process xApps) is refused from a user,
    naming what to use instead."""
    assert main(["xapp", "run", "tests.northbound.apps:Counter", "--connect", "fd:0"]) == 2
    assert "--connect HOST:PORT" in capsys.readouterr().err


def test_an_xapp_that_does_not_load_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown xApp is named, with the installed ones, before anything connects."""
    assert main(["xapp", "run", "no_such_xapp", "--connect", "127.0.0.1:1"]) == 2
    assert "no_such_xapp" in capsys.readouterr().err


async def test_a_refused_attach_exits_1_and_a_stop_exits_0(make_runtime: RuntimeFactory) -> None:
    """Run as a real process: a name the runtime already has is refused (exit 1, the reason
    on stderr); a free one attaches and leaves with 0 when the runtime stops it."""
    from tests.conftest import Recorder

    runtime, _ = await make_runtime(
        Recorder, **{"northbound.port": 0, "xapps.isolation": {"default": "loop"}}
    )
    target = f"127.0.0.1:{runtime.northbound.port}"

    async def ric(*args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ric", *args, stderr=asyncio.subprocess.PIPE
        )

    taken = await ric("xapp", "run", "tests.conftest:Recorder", "--connect", target)
    _, err = await asyncio.wait_for(taken.communicate(), 30)
    assert taken.returncode == 1
    assert "named 'recorder' is loaded by the runtime" in err.decode()
    free = await ric("xapp", "run", "tests.northbound.apps:Counter", "--connect", target)
    await wait_for(lambda: any(h.name == "nbcounter" for h in runtime.hosts), timeout=30)
    host = runtime.host("nbcounter")
    await wait_for(lambda: host.attached, timeout=30, what="the attach")
    host.request_stop()
    await asyncio.wait_for(free.wait(), 30)
    assert free.returncode == 0
