"""Fuzzing the E2 edge: generated and mutated messages into live sessions never crash, never
hang and never grow memory without bound, and a good node keeps being served.

The structured run uses hypothesis strategies built from the proto descriptors; the mutation
run flips, cuts and splices the bytes of valid messages. Set RIC_FUZZ_MESSAGES to run longer
(the closing note of the trust issue gives a 100,000-message run).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import tracemalloc
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ric import CellState, GenericControl, Handover, KpmReport, Report, SlicePrbQuota, XApp
from ric._proto.e2.v1 import e2_pb2
from ric.config import load_config
from ric.e2.memory import MemoryLink
from ric.plugins import Plugin
from ric.runtime import Runtime
from tests.e2node import indication, setup_request
from tests.fuzz.strategies import message

MESSAGES = int(os.environ.get("RIC_FUZZ_MESSAGES", "10000"))


class Sink(XApp):
    """Takes cell and UE reports and may control, so fuzzed input reaches every path."""

    name = "sink"
    reports = [
        Report("RRU.PrbUsedDl", "RRU.PrbAvailDl", period_ms=100),
        Report("L1M.RSRP", per="ue", period_ms=100),
    ]
    controls = [Handover, SlicePrbQuota, CellState, GenericControl]
    count = 0

    async def on_report(self, report: KpmReport) -> None:
        type(self).count += 1
        _ = report.values.sum(), list(report.rows())


def _runtime() -> Runtime:
    config = load_config(environ={}, overrides={"e2.error_burst": 1_000_000})
    return Runtime(config, [Plugin(Sink, "fuzz")], listen=False)


def _connect(runtime: Runtime, node_id: int) -> tuple[MemoryLink, list[e2_pb2.SubscriptionRequest]]:
    link = MemoryLink(runtime.endpoint, peer=f"fuzz-{node_id}")
    answer = link.setup(setup_request(node_id=node_id, cells=[node_id * 10 + 1, node_id * 10 + 2]))
    assert answer.WhichOneof("message") == "setup_response"
    subs = [
        m.subscription_request
        for m in link.take()
        if m.WhichOneof("message") == "subscription_request"
    ]
    for sub in subs:
        link.send(
            e2_pb2.NodeMessage(
                subscription_response=e2_pb2.SubscriptionResponse(
                    request_id=sub.request_id, admitted_action_ids=[1]
                )
            )
        )
    return link, subs


def _still_serving(link: MemoryLink) -> None:
    link.take()
    link.send(e2_pb2.NodeMessage(keep_alive=e2_pb2.KeepAlive(sequence=424242)))
    assert [
        m.keep_alive.sequence for m in link.take() if m.WhichOneof("message") == "keep_alive"
    ] == [424242]


@settings(
    max_examples=int(os.environ.get("RIC_FUZZ_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_generated_messages_are_handled_or_answered(data: Any) -> None:
    """Any sequence of messages the contract can express, with request ids the RIC really
    uses mixed in, is handled or answered without an exception, and a good node on the same
    runtime is still served afterwards."""

    async def run() -> None:
        async with _runtime() as runtime:
            good, _ = _connect(runtime, 1)
            fuzz, subs = _connect(runtime, 2)
            ids = [(s.request_id.requestor, s.request_id.instance) for s in subs] + [(0, 1), (1, 1)]
            strategy = message(e2_pb2.NodeMessage.DESCRIPTOR, e2_pb2.NodeMessage, ids)
            for msg in data.draw(st.lists(strategy, min_size=1, max_size=40)):
                if not fuzz.up:
                    fuzz, _ = _connect(runtime, 2)
                if msg.WhichOneof("message") == "setup_request":
                    continue  # would only be answered as out of order; covered elsewhere
                fuzz.send(msg)
                fuzz.take()
                await asyncio.sleep(0)
            _still_serving(good)

    asyncio.run(run())


def _mutate(rng: random.Random, data: bytes, others: list[bytes]) -> bytes:
    choice = rng.randrange(5)
    b = bytearray(data)
    if choice == 0 and b:  # flip bits
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif choice == 1 and b:  # cut
        del b[rng.randrange(len(b)) :]
    elif choice == 2:  # splice two valid messages
        other = rng.choice(others)
        b = b[: rng.randrange(len(b) + 1)] + other[rng.randrange(len(other) + 1) :]
    elif choice == 3:  # random bytes
        b = bytearray(rng.randbytes(rng.randint(0, 64)))
    return bytes(b)


async def test_mutated_bytes_in_a_live_session(caplog: pytest.LogCaptureFixture) -> None:
    """Ten thousand mutated messages into one live session: no exception escapes, the good
    node keeps being served, and memory does not grow without bound."""
    caplog.set_level(logging.ERROR)  # each bad message logs a warning; keep the capture small
    rng = random.Random(20261129)
    async with _runtime() as runtime:
        good, _ = _connect(runtime, 1)
        fuzz, subs = _connect(runtime, 2)
        rid = subs[0].request_id
        metrics = list(subs[0].actions[0].kpm.metric_names)
        seeds = [
            e2_pb2.NodeMessage(
                indications=e2_pb2.IndicationBatch(
                    indications=[indication(rid, metrics, ["001-01-21", "001-01-22"])]
                )
            ),
            e2_pb2.NodeMessage(control_acknowledge=e2_pb2.ControlAcknowledge(request_id=rid)),
            e2_pb2.NodeMessage(
                subscription_response=e2_pb2.SubscriptionResponse(
                    request_id=rid, admitted_action_ids=[1]
                )
            ),
            e2_pb2.NodeMessage(keep_alive=e2_pb2.KeepAlive(sequence=1)),
            e2_pb2.NodeMessage(reset_request=e2_pb2.ResetRequest(transaction_id=1)),
        ]
        valid = [m.SerializeToString() for m in seeds]
        tracemalloc.start()
        baseline = 0
        for i in range(MESSAGES):
            if not fuzz.up:
                fuzz, subs = _connect(runtime, 2)
            fuzz.send_bytes(_mutate(rng, rng.choice(valid), valid))
            fuzz.take()
            if i % 500 == 0:
                await asyncio.sleep(0)
            if i == MESSAGES // 4:
                baseline = tracemalloc.get_traced_memory()[0]
        await asyncio.sleep(0)
        grown = tracemalloc.get_traced_memory()[0] - baseline
        tracemalloc.stop()
        _still_serving(good)
    assert grown < 4 * 1024 * 1024, (
        f"memory grew by {grown} bytes over {MESSAGES * 3 // 4} messages"
    )
