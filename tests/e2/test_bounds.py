"""Bounds on what a node may send, over real gRPC: message size, entities per matrix, values per
batch and per second, valid values, and matrices that do not match their subscription. Each
bad node is answered with an ErrorIndication naming the bound, and a second, well-behaved node
stays connected with its indications counted."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest

from ric._proto.e2.v1 import common_pb2, e2_pb2, kpm_pb2
from ric.config import MetricsSettings, load_config
from ric.errors import ConfigError
from ric.metrics import PrometheusSensor
from ric.model import CauseCode
from ric.plugins import Plugin
from ric.runtime import Runtime
from ric.sensors import Stats
from tests.conftest import Recorder, RuntimeFactory, wait_for
from tests.e2node import ScriptedNode, indication, setup_request

GOOD = "gnb-001-01-1"
BAD = "gnb-001-01-2"


def target(runtime: Runtime) -> str:
    return f"127.0.0.1:{runtime.port}"


def batch(*indications: e2_pb2.Indication) -> e2_pb2.NodeMessage:
    return e2_pb2.NodeMessage(indications=e2_pb2.IndicationBatch(indications=indications))


def rows(n: int) -> list[str]:
    return [f"001-01-{100 + i}" for i in range(n)]


class Pair:
    """A well-behaved node and a bad one on the same runtime, both subscribed by Recorder."""

    def __init__(self, runtime: Runtime, good: ScriptedNode, bad: ScriptedNode) -> None:
        self.runtime = runtime
        self.good = good
        self.bad = bad
        self.good_req: e2_pb2.SubscriptionRequest
        self.bad_req: e2_pb2.SubscriptionRequest

    @property
    def metrics(self) -> list[str]:
        return list(self.bad_req.actions[0].kpm.metric_names)

    def seen_from(self, node: str) -> int:
        recorder = self.runtime.host("recorder").instance
        assert isinstance(recorder, Recorder)
        return sum(r.node == node for r in recorder.seen)

    async def good_still_served(self, stats: Stats, seq: int) -> None:
        """The good node is connected, answered, and its indication is counted and delivered."""
        before = stats.indications_by_node[GOOD]
        delivered = self.seen_from(GOOD)
        metrics = list(self.good_req.actions[0].kpm.metric_names)
        await self.good.send(batch(indication(self.good_req.request_id, metrics, ["001-01-11"])))
        await self.good.send(e2_pb2.NodeMessage(keep_alive=e2_pb2.KeepAlive(sequence=seq)))
        assert (await self.good.recv_kind("keep_alive")).sequence == seq
        await wait_for(lambda: self.seen_from(GOOD) == delivered + 1, what="the good report")
        assert stats.indications_by_node[GOOD] == before + 1
        assert GOOD in self.runtime.nodes()


@asynccontextmanager
async def pair(runtime: Runtime) -> AsyncIterator[Pair]:
    async with ScriptedNode(target(runtime)) as good, ScriptedNode(target(runtime)) as bad:
        p = Pair(runtime, good, bad)
        await good.setup(node_id=1, cells=[11])
        [p.good_req] = await good.accept_subscriptions(1)
        await bad.setup(node_id=2, cells=[21])
        [p.bad_req] = await bad.accept_subscriptions(1)
        yield p


def rid_of(err: e2_pb2.ErrorIndication) -> tuple[int, int]:
    return (err.request_id.requestor, err.request_id.instance)


def key(req: e2_pb2.SubscriptionRequest) -> tuple[int, int]:
    return (req.request_id.requestor, req.request_id.instance)


async def test_6_mb_message_is_answered_not_parsed(make_runtime: RuntimeFactory) -> None:
    """With the defaults, a 6 MB message reaches the termination (under gRPC's 8 MiB cap), is
    answered with an ErrorIndication naming e2.max_message_bytes and the size, and counted."""
    runtime, stats = await make_runtime(Recorder)
    async with pair(runtime) as p:
        big = batch(indication(p.bad_req.request_id, ["RRU.PrbUsedDl"], ["x"], [0.0] * 750_000))
        data = big.SerializeToString()
        assert 6_000_000 < len(data) < 8 * 1024 * 1024
        await p.bad.send(big)
        err = await p.bad.recv_kind("error_indication")
        assert err.cause.code == CauseCode.RIC_SERVICE_RIC_RESOURCE_LIMIT
        assert f"message of {len(data):,} bytes" in err.cause.detail
        assert "over e2.max_message_bytes = 4,194,304" in err.cause.detail
        assert stats.refused[(BAD, "message_size")] == 1
        assert p.seen_from(BAD) == 0
        assert BAD in runtime.nodes()
        await p.good_still_served(stats, 1)


async def test_oversized_messages_spend_the_error_budget(make_runtime: RuntimeFactory) -> None:
    """A node that keeps sending messages over the size bound is disconnected by its error
    budget; the other node stays."""
    runtime, stats = await make_runtime(
        Recorder, **{"e2.max_message_bytes": 65536, "e2.error_burst": 3}
    )
    async with pair(runtime) as p:
        big = batch(indication(p.bad_req.request_id, ["RRU.PrbUsedDl"], ["x"], [0.0] * 10_000))
        for _ in range(6):
            try:
                await p.bad.send(big)
            except grpc.aio.AioRpcError:
                break  # the RIC ended the stream before all were written
        assert await p.bad.ended()
        await wait_for(lambda: BAD not in runtime.nodes(), what="bad node dropped")
        assert stats.refused[(BAD, "message_size")] >= 3
        await p.good_still_served(stats, 2)


async def test_message_over_the_transport_cap_ends_only_that_stream(
    make_runtime: RuntimeFactory,
) -> None:
    """A message over 2x e2.max_message_bytes is refused by gRPC itself (RESOURCE_EXHAUSTED ends
    that node's stream) before the RIC reads it; the other node is unaffected."""
    runtime, stats = await make_runtime(Recorder, **{"e2.max_message_bytes": 65536})
    async with pair(runtime) as p:
        huge = batch(indication(p.bad_req.request_id, ["RRU.PrbUsedDl"], ["x"], [0.0] * 70_000))
        assert len(huge.SerializeToString()) > 2 * 65536
        await p.bad.send(huge)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await p.bad.recv(timeout=10)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        await wait_for(lambda: BAD not in runtime.nodes(), what="bad node's stream ended")
        await p.good_still_served(stats, 3)


async def test_oversized_setup_gets_setup_failure(make_runtime: RuntimeFactory) -> None:
    """A first message over the size bound gets an E2SetupFailure naming the bound, and is
    counted as a message_size refusal."""
    runtime, stats = await make_runtime(**{"e2.max_message_bytes": 65536})
    setup = setup_request(cells=list(range(1, 3000)))
    assert len(setup.SerializeToString()) > 65536
    async with ScriptedNode(target(runtime)) as node:
        await node.send(setup)
        msg = await node.recv()
        assert msg.WhichOneof("message") == "setup_failure"
        assert "over e2.max_message_bytes = 65,536" in msg.setup_failure.cause.detail
    assert stats.refused[("?", "message_size")] == 1
    async with ScriptedNode(target(runtime)) as good:
        await good.setup()


async def test_matrix_over_the_entity_bound(make_runtime: RuntimeFactory) -> None:
    """A matrix with more rows than e2.max_entities_per_matrix is refused with the
    subscription's request id and RAN function id; a legal one in the same batch is delivered."""
    runtime, stats = await make_runtime(Recorder, **{"e2.max_entities_per_matrix": 10})
    async with pair(runtime) as p:
        big = indication(p.bad_req.request_id, p.metrics, rows(11))
        fine = indication(p.bad_req.request_id, p.metrics, rows(10), seq=1)
        await p.bad.send(batch(big, fine))
        err = await p.bad.recv_kind("error_indication")
        assert err.cause.code == CauseCode.RIC_SERVICE_RIC_RESOURCE_LIMIT
        assert "matrix of 11 entities is over e2.max_entities_per_matrix = 10" in err.cause.detail
        assert rid_of(err) == key(p.bad_req)
        assert err.ran_function_id == 2
        await wait_for(lambda: p.seen_from(BAD) == 1, what="the legal matrix")
        assert stats.refused[(BAD, "matrix_size")] == 1
        await p.good_still_served(stats, 4)


async def test_batch_over_the_value_bound_is_refused_whole(make_runtime: RuntimeFactory) -> None:
    """An IndicationBatch whose matrices carry more than e2.max_values_per_batch values in all is
    refused whole, with the subscription's ids when they all name one."""
    runtime, stats = await make_runtime(Recorder, **{"e2.max_values_per_batch": 20})
    async with pair(runtime) as p:
        one = indication(p.bad_req.request_id, p.metrics, rows(6))
        two = indication(p.bad_req.request_id, p.metrics, rows(6), seq=1)
        await p.bad.send(batch(one, two))
        err = await p.bad.recv_kind("error_indication")
        assert err.cause.code == CauseCode.RIC_SERVICE_RIC_RESOURCE_LIMIT
        assert "IndicationBatch of 2 indication(s) carries 24 values" in err.cause.detail
        assert "over e2.max_values_per_batch = 20" in err.cause.detail
        assert rid_of(err) == key(p.bad_req)
        assert err.ran_function_id == 2
        assert stats.refused[(BAD, "batch_size")] == 1
        await p.good_still_served(stats, 5)
        assert p.seen_from(BAD) == 0


async def test_batch_over_the_indication_bound_is_refused_whole(
    make_runtime: RuntimeFactory,
) -> None:
    """An IndicationBatch with more indications than e2.max_indications_per_batch is refused
    whole, however small each one is."""
    runtime, stats = await make_runtime(Recorder, **{"e2.max_indications_per_batch": 4})
    async with pair(runtime) as p:
        tiny = [indication(p.bad_req.request_id, p.metrics, rows(1), seq=i) for i in range(5)]
        await p.bad.send(batch(*tiny))
        err = await p.bad.recv_kind("error_indication")
        assert "IndicationBatch of 5 indications is over e2.max_indications_per_batch = 4" in (
            err.cause.detail
        )
        assert (rid_of(err), err.ran_function_id) == (key(p.bad_req), 2)
        assert stats.refused[(BAD, "batch_size")] == 1
        await p.bad.send(batch(*tiny[:4]))
        await wait_for(lambda: p.seen_from(BAD) == 4, what="a legal batch")
        await p.good_still_served(stats, 11)


async def test_node_over_its_indication_rate_is_dropped(make_runtime: RuntimeFactory) -> None:
    """Tiny indications beyond a node's indications per second are dropped and the node told,
    naming e2.max_indications_per_s_per_node."""
    runtime, stats = await make_runtime(
        Recorder,
        **{"e2.max_indications_per_s_per_node": 3, "e2.max_indications_per_batch": 3},
    )
    async with pair(runtime) as p:
        tiny = [indication(p.bad_req.request_id, p.metrics, rows(1), seq=i) for i in range(3)]
        await p.bad.send(batch(*tiny))
        await p.bad.send(batch(*tiny))
        err = await p.bad.recv_kind("error_indication")
        assert err.cause.code == CauseCode.MISC_CONTROL_PROCESSING_OVERLOAD
        assert "e2.max_indications_per_s_per_node = 3" in err.cause.detail
        assert stats.refused[(BAD, "indication_rate")] >= 1
        assert p.seen_from(BAD) <= 5
        await p.good_still_served(stats, 12)


async def test_node_over_its_value_rate_is_dropped_and_told(make_runtime: RuntimeFactory) -> None:
    """Indications beyond a node's values per second are dropped and counted, the node is told
    with an ErrorIndication naming the bound, and one that keeps it up is disconnected by its
    error budget; the other node keeps being served."""
    runtime, stats = await make_runtime(
        Recorder,
        **{
            "e2.max_values_per_s_per_node": 100,
            "e2.max_values_per_batch": 100,
            "e2.error_burst": 4,
            "e2.error_refill_per_s": 0,
        },
    )
    async with pair(runtime) as p:
        full = batch(indication(p.bad_req.request_id, p.metrics, rows(50)))
        await p.bad.send(full)  # the bucket starts with one second's worth: this one passes
        await wait_for(lambda: p.seen_from(BAD) == 1, what="the first report")
        await p.bad.send(full)
        err = await p.bad.recv_kind("error_indication")
        assert err.cause.code == CauseCode.MISC_CONTROL_PROCESSING_OVERLOAD
        assert "over e2.max_values_per_s_per_node = 100" in err.cause.detail
        assert rid_of(err) == key(p.bad_req)
        assert err.ran_function_id == 2
        assert stats.refused[(BAD, "indication_rate")] >= 1
        await p.good_still_served(stats, 6)
        for _ in range(8):
            try:
                await p.bad.send(full)
            except grpc.aio.AioRpcError:
                break
        assert await p.bad.ended()
        await wait_for(lambda: BAD not in runtime.nodes(), what="bad node dropped")
        assert stats.refused[(BAD, "indication_rate")] >= 3
        await p.good_still_served(stats, 7)


async def test_invalid_values_become_nan_and_are_counted(make_runtime: RuntimeFactory) -> None:
    """+Inf, -Inf and values beyond 1e15 are delivered as NaN and counted per node and reason;
    valid values, NaN and 1e15 itself pass unchanged, and no ErrorIndication is sent."""
    runtime, stats = await make_runtime(Recorder)
    async with pair(runtime) as p:
        values = [math.inf, 1.0, -math.inf, 1e308, math.nan, 1e15, -2e15, -3.5]
        await p.bad.send(batch(indication(p.bad_req.request_id, p.metrics, rows(4), values)))
        await p.bad.send(e2_pb2.NodeMessage(keep_alive=e2_pb2.KeepAlive(sequence=9)))
        assert (await p.bad.recv()).WhichOneof("message") == "keep_alive"
        await wait_for(lambda: p.seen_from(BAD) == 1, what="the cleaned report")
        [report] = [r for r in runtime.host("recorder").instance.seen if r.node == BAD]
        got = report.values.ravel().tolist()
        assert [v if not math.isnan(v) else "nan" for v in got] == [
            "nan",
            1.0,
            "nan",
            "nan",
            "nan",
            1e15,
            "nan",
            -3.5,
        ]
        assert stats.replaced[(BAD, "infinite")] == 2
        assert stats.replaced[(BAD, "out_of_range")] == 2
        assert stats.errors == {}
        await p.good_still_served(stats, 8)


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"kind": kpm_pb2.ENTITY_KIND_UE}, "matrix has ue rows; the subscription asked for cell"),
        ({"metrics": ["RRU.PrbUsedDl", "L1M.RSRP"]}, "names L1M.RSRP not asked for"),
        ({"metrics": ["RRU.PrbUsedDl", "RRU.PrbUsedDl"]}, "names RRU.PrbUsedDl twice"),
        ({"values": [1.0, 2.0, 3.0]}, "3 values for 2 entities x 2 metrics"),
    ],
    ids=["kind", "names", "twice", "shape"],
)
async def test_matrix_that_does_not_match_its_subscription(
    make_runtime: RuntimeFactory, change: dict[str, Any], detail: str
) -> None:
    """A matrix whose kind, names or shape do not match the subscription it names gets an
    ErrorIndication with that subscription's request id and RAN function id, and is counted
    as matrix_mismatch; the other node is unaffected."""
    runtime, stats = await make_runtime(Recorder)
    async with pair(runtime) as p:
        metrics = change.get("metrics", p.metrics)
        ind = indication(
            p.bad_req.request_id,
            metrics,
            rows(2),
            change.get("values"),
            kind=change.get("kind", kpm_pb2.ENTITY_KIND_CELL),
        )
        await p.bad.send(batch(ind))
        err = await p.bad.recv_kind("error_indication")
        assert detail in err.cause.detail
        assert rid_of(err) == key(p.bad_req)
        assert err.ran_function_id == 2
        assert stats.refused[(BAD, "matrix_mismatch")] == 1
        assert p.seen_from(BAD) == 0
        await p.good_still_served(stats, 10)


async def test_subset_of_the_names_in_another_order_is_fine(make_runtime: RuntimeFactory) -> None:
    """A matrix with some of the subscription's names, in another order, is delivered."""
    runtime, stats = await make_runtime(Recorder)
    async with pair(runtime) as p:
        names = list(reversed(p.metrics))[:1]
        await p.bad.send(batch(indication(p.bad_req.request_id, names, rows(2))))
        await wait_for(lambda: p.seen_from(BAD) == 1, what="the partial report")
    assert stats.refused == {}


async def test_unknown_subscription_echoes_the_ran_function_id(
    make_runtime: RuntimeFactory,
) -> None:
    """An indication for a subscription the RIC never made is answered with the request id and
    RAN function id the node gave."""
    runtime, _ = await make_runtime()
    async with ScriptedNode(target(runtime)) as node:
        await node.setup()
        rid = common_pb2.RicRequestId(requestor=5, instance=55)
        ind = indication(rid, ["x.y"], ["001-01-11"])
        ind.ran_function_id = 7
        await node.send(batch(ind))
        err = await node.recv_kind("error_indication")
        assert (rid_of(err), err.ran_function_id) == ((5, 55), 7)


async def test_refusals_and_replacements_on_prometheus() -> None:
    """ric_e2_refused_total{reason} and ric_e2_values_replaced_total{reason} exist at zero for
    every reason and count; with [metrics] per_node the per-node families carry the node."""
    sensor = PrometheusSensor(MetricsSettings(per_node=True), process=False)
    config = load_config(environ={}, overrides={"e2.port": 0, "e2.max_entities_per_matrix": 3})
    runtime = Runtime(config, [Plugin(Recorder, "test:Recorder")], sensors=[Stats(), sensor])
    sample = sensor.registry.get_sample_value
    for reason in ("message_size", "matrix_size", "batch_size", "indication_rate"):
        assert sample("ric_e2_refused_total", {"reason": reason}) == 0
    assert sample("ric_e2_values_replaced_total", {"reason": "out_of_range"}) == 0
    async with runtime, ScriptedNode(target(runtime)) as node:
        await node.setup(node_id=2)
        [req] = await node.accept_subscriptions(1)
        metrics = list(req.actions[0].kpm.metric_names)
        await node.send(batch(indication(req.request_id, metrics, rows(4))))
        await node.recv_kind("error_indication")
        await node.send(batch(indication(req.request_id, metrics, rows(1), [math.inf, 2e15])))
        await wait_for(
            lambda: sample("ric_e2_values_replaced_total", {"reason": "out_of_range"}) == 1,
            what="the replaced values counted",
        )
    assert sample("ric_e2_refused_total", {"reason": "matrix_size"}) == 1
    assert sample("ric_e2_values_replaced_total", {"reason": "infinite"}) == 1
    assert sample("ric_e2_node_refused_total", {"node": BAD, "reason": "matrix_size"}) == 1
    assert sample("ric_e2_node_values_replaced_total", {"node": BAD, "reason": "infinite"}) == 1


def test_rate_below_the_batch_bound_is_a_config_error() -> None:
    """A per-node rate below the batch bound (no legal batch could pass) is refused at load,
    naming both keys."""
    with pytest.raises(ConfigError, match=r"max_values_per_s_per_node.*max_values_per_batch"):
        load_config(
            environ={},
            overrides={"e2.max_values_per_s_per_node": 10, "e2.max_values_per_batch": 100},
        )
