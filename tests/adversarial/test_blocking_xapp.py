"""A blocking xApp in a real ``ric run``: in thread mode (the default) a ``time.sleep(5)`` in
its ``on_report`` delays neither another xApp's reports nor a node's keep-alives by more than
100 ms; in loop mode it holds everything, and the loop watchdog names it while it does."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc

from ric._proto.e2.v1 import e2_pb2, e2_pb2_grpc
from tests.adversarial.conftest import Ric, running_ric
from tests.adversarial.watch import PERIOD_MS
from tests.e2node import rc_function, setup_request

LOAD = ["tests.adversarial.watch:GapWatch", "tests.adversarial.sleeper:Sleeper"]
MAX_DELAY_S = 0.1
"""How much later than its period a report, or a keep-alive echo, may come."""


class KeepAliveProbe(threading.Thread):
    """An E2 node on gRPC's synchronous client, in its own thread: sends a keep-alive every
    50 ms and records how long each echo took to come back."""

    def __init__(self, target: str) -> None:
        super().__init__(name="test-keep-alive-probe", daemon=True)
        self.target = target
        self.set_up = threading.Event()
        self.stop = threading.Event()
        self.sent: dict[int, float] = {}
        self.round_trips: queue.SimpleQueue[tuple[float, float]] = queue.SimpleQueue()
        """(time sent, seconds to the echo), in echo order."""

    def _requests(self) -> Iterator[e2_pb2.NodeMessage]:
        # RC only: no report to subscribe, so the node has nothing to do but keep alive.
        yield setup_request(node_id=7, cells=(71,), functions=[rc_function()], keep_alive_ms=200)
        seq = 0
        while not self.stop.wait(0.05):
            seq += 1
            self.sent[seq] = time.monotonic()
            yield e2_pb2.NodeMessage(keep_alive=e2_pb2.KeepAlive(sequence=seq))

    def run(self) -> None:
        try:
            with grpc.insecure_channel(self.target) as channel:
                stub = e2_pb2_grpc.E2TerminationStub(channel)
                for msg in stub.Connect(self._requests()):
                    kind = msg.WhichOneof("message")
                    if kind == "setup_response":
                        self.set_up.set()
                    elif kind == "keep_alive":
                        sent = self.sent[msg.keep_alive.sequence]
                        self.round_trips.put((sent, time.monotonic() - sent))
        except grpc.RpcError:
            pass

    def since(self, t0: float) -> list[float]:
        """The round trips of the keep-alives sent since monotonic time ``t0``."""
        out = []
        while not self.round_trips.empty():
            sent, seconds = self.round_trips.get()
            if sent >= t0:
                out.append(seconds)
        return out


async def _log_line(ric: Ric, needle: str, timeout: float = 30.0) -> str:
    """The first line of the runtime's log containing ``needle`` (waits for it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in ric.log_text().splitlines():
            if needle in line:
                return line
        await asyncio.sleep(0.05)
    raise AssertionError(f"the runtime never logged {needle!r}:\n{ric.log_text()[-4000:]}")


async def test_a_sleeping_xapp_in_its_own_thread_delays_no_report_and_no_keep_alive(
    tmp_path: Path,
) -> None:
    """Thread mode: while the sleeper's on_report blocks 5 s, GapWatch's reports keep their
    200 ms period within 100 ms, a node's keep-alive echoes come back within 100 ms, the
    loop never stalls 100 ms; the sleeper is named during its stall and counted after."""
    sections: dict[str, dict[str, Any]] = {"xapps": {"load": LOAD}}
    async with running_ric(tmp_path, sections) as ric:
        probe = KeepAliveProbe(ric.e2)
        probe.start()
        try:
            await asyncio.to_thread(probe.set_up.wait, 10)
            assert probe.set_up.is_set(), "the probe node was not set up"
            window = await ric.begin()
            t0 = time.monotonic()
            during = await _log_line(ric, "xApp sleeper: on_report has been running for")
            assert "in its own thread" in during
            after = await _log_line(ric, "xApp sleeper: on_report took")
            assert "it ran in its own thread" in after
            round_trips = probe.since(t0)
            await ric.assert_unharmed(window)
            gaps = ric.good_gaps(window.t0, time.time() - PERIOD_MS / 1000)
        finally:
            probe.stop.set()
            await asyncio.to_thread(probe.join, 10)
        assert await ric.metric("ric_xapp_handler_overruns_total", xapp="sleeper") == 1
    assert len(round_trips) >= 50, "the probe's keep-alives did not cover the 5 s sleep"
    assert max(round_trips) <= MAX_DELAY_S, (
        f"a keep-alive echo took {max(round_trips) * 1000:.0f} ms while the sleeper slept"
    )
    assert max(gaps) <= PERIOD_MS / 1000 + MAX_DELAY_S, (
        f"GapWatch had a gap of {max(gaps) * 1000:.0f} ms while the sleeper slept"
    )


async def test_in_loop_mode_the_watchdog_names_the_sleeping_xapp_while_it_holds_the_loop(
    tmp_path: Path,
) -> None:
    """Loop mode, for contrast: the same sleep holds the runtime's loop, and the watchdog
    names the sleeper's on_report in the warning it logs during the stall (after one
    stall_warning_ms, the handler budget here)."""
    sections: dict[str, dict[str, Any]] = {
        "xapps": {"load": LOAD},
        "xapps.isolation": {"sleeper": "loop"},
        "xapps.config.sleeper": {"sleep_s": 1.0},
    }
    async with running_ric(tmp_path, sections) as ric:
        line = await _log_line(ric, "event loop stalled for")
        assert "xApp sleeper on_report" in line and "Sleeper.on_report" in line
        took = await _log_line(ric, "xApp sleeper: on_report took")
        assert "it blocked the event loop" in took
