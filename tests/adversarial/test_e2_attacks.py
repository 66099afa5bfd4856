"""Hostile E2 nodes against a real ``ric run``: oversized messages, a million entities,
values outside the contract and matrices that do not match their subscription; in every case
the hostile node is answered and the good node does not notice."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import grpc
import pytest

from ric._proto.e2.v1 import e2_pb2, kpm_pb2
from tests.adversarial.conftest import Hostile, Ric, assert_error_indication


def matrix_indication(
    sub: Any,
    entities: int,
    *,
    values: list[float] | None = None,
    metrics: tuple[str, ...] = ("RRU.PrbUsedDl",),
    kind: int = kpm_pb2.ENTITY_KIND_CELL,
    first: int = 0,
) -> e2_pb2.NodeMessage:
    """One IndicationBatch with one matrix of ``entities`` cells answering ``sub``."""
    matrix = kpm_pb2.MeasurementMatrix(entity_kind=kind, metric_names=metrics)  # type: ignore[arg-type]
    matrix.entity_ids.extend([f"001-01-{first + i}" for i in range(entities)])
    matrix.values.extend(values if values is not None else [1.0] * (entities * len(metrics)))
    ind = e2_pb2.Indication(
        request_id=sub.request_id,
        ran_function_id=sub.ran_function_id,
        action_id=sub.actions[0].action_id,
        type=e2_pb2.INDICATION_TYPE_REPORT,
        kpm=kpm_pb2.KpmIndication(
            collection_start_unix_ms=int(time.time() * 1000),
            granularity_period_ms=200,
            matrix=matrix,
        ),
    )
    return e2_pb2.NodeMessage(indications=e2_pb2.IndicationBatch(indications=[ind]))


async def error_indications(node: Hostile, timeout: float = 3.0) -> list[Any]:
    """The ErrorIndications the RIC sends ``node`` until it is quiet for ``timeout`` s or ends
    the stream."""
    out: list[Any] = []
    while True:
        try:
            msg = await asyncio.wait_for(node.call.read(), timeout)
        except (TimeoutError, grpc.aio.AioRpcError):
            return out
        if msg is grpc.aio.EOF:
            return out
        if msg.WhichOneof("message") == "error_indication":
            out.append(msg.error_indication)


async def test_a_24_mb_indication_is_refused_by_size_and_harms_no_one(ric: Ric) -> None:
    """One IndicationBatch of 1,048,576 cells (24 MB) is refused by gRPC before it reaches
    Python (RESOURCE_EXHAUSTED naming the limit ends that stream); one of 6 MB, over
    e2.max_message_bytes but under gRPC's cap, gets an ErrorIndication naming the bound and
    is never parsed; the good node keeps reporting and the loop never stalls."""
    async with Hostile(ric.e2, node_id=9) as huge, Hostile(ric.e2, node_id=10) as big:
        sub_huge, sub_big = await huge.join(), await big.join(cells=(101,))
        huge_msg = matrix_indication(sub_huge, 1_048_576)
        big_msg = matrix_indication(sub_big, 262_144)
        assert huge_msg.ByteSize() > 20_000_000
        size = big_msg.ByteSize()
        assert 4 * 1024 * 1024 < size < 8 * 1024 * 1024
        window = await ric.begin()
        await huge.send(huge_msg)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await huge.recv(timeout=10)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "8388608" in (refused.value.details() or "")
        await big.send(big_msg)
        err = await big.recv_kind("error_indication", timeout=10)
        assert_error_indication(err, "max_message_bytes", f"{size:,}")
        await ric.assert_unharmed(window)
    assert await ric.metric("ric_e2_refused_total", reason="message_size") == 1


async def test_a_million_entities_in_legal_messages_are_bounded(ric: Ric) -> None:
    """1,000,000 entities as fifty messages at the entity bound (20,000 each, under the size
    bound), sent as fast as the node can: each is handled or refused by the node's value rate,
    and the good node and the loop do not notice; one matrix past the bound is refused."""
    async with Hostile(ric.e2) as node:
        sub = await node.join()
        messages = [matrix_indication(sub, 20_000, first=i * 20_000) for i in range(50)]
        assert all(m.ByteSize() < 4 * 1024 * 1024 for m in messages)
        window = await ric.begin()
        for m in messages:
            await node.send(m)
        await node.send(matrix_indication(sub, 20_001))
        errors = await error_indications(node)
        await ric.assert_unharmed(window)
    details = [e.cause.detail for e in errors]
    assert any("e2.max_entities_per_matrix" in d for d in details), details
    assert all("e2.max_" in d for d in details), details
    delivered = sum(
        rows for _, n, rows in ric.read_arrivals() if n != ric.good_node and rows == 20_000
    )
    rate_refused = await ric.metric("ric_e2_refused_total", reason="indication_rate")
    assert delivered + 20_000 * rate_refused == 1_000_000


async def test_values_outside_the_contract_become_no_value(ric: Ric) -> None:
    """+Inf, -Inf and 1e308 are replaced by NaN and counted by reason; NaN stays "no value";
    the good node does not notice."""
    async with Hostile(ric.e2) as node:
        sub = await node.join(cells=(91, 92, 93, 94, 95))
        window = await ric.begin()
        values = [math.inf, -math.inf, 1e308, math.nan, 5.0]
        await node.send(matrix_indication(sub, 5, values=values, first=91))
        assert await error_indications(node, timeout=1.0) == []
        await ric.assert_unharmed(window)
    assert await ric.metric("ric_e2_values_replaced_total", reason="infinite") == 2
    assert await ric.metric("ric_e2_values_replaced_total", reason="out_of_range") == 1


async def test_a_matrix_that_does_not_match_its_subscription_is_answered(ric: Ric) -> None:
    """A matrix of the wrong kind, with metrics never asked for, or of the wrong shape gets an
    ErrorIndication carrying the subscription's request id and RAN function id."""
    async with Hostile(ric.e2) as node:
        sub = await node.join()
        window = await ric.begin()
        bad = [
            matrix_indication(sub, 2, kind=kpm_pb2.ENTITY_KIND_UE),
            matrix_indication(sub, 2, metrics=("DRB.UEThpDl",)),
            matrix_indication(sub, 2, values=[1.0, 2.0, 3.0]),
        ]
        for m in bad:
            await node.send(m)
        errors = await error_indications(node, timeout=1.5)
        await ric.assert_unharmed(window)
    assert len(errors) == 3, [e.cause.detail for e in errors]
    for e in errors:
        assert e.request_id == sub.request_id
        assert e.ran_function_id == sub.ran_function_id != 0
    assert await ric.metric("ric_e2_refused_total", reason="matrix_mismatch") == 3


async def test_a_node_that_keeps_sending_oversized_messages_is_disconnected(ric: Ric) -> None:
    """The error budget ends a node that keeps breaking the size bound; the good node stays."""
    async with Hostile(ric.e2) as node:
        sub = await node.join()
        big = matrix_indication(sub, 300_000)
        window = await ric.begin()
        ended = False
        for _ in range(40):
            try:
                await node.send(big)
            except (grpc.aio.AioRpcError, grpc.aio.UsageError):
                ended = True
                break
        ended = ended or await node.ended(timeout=10)
        assert ended
        await ric.assert_unharmed(window)
