"""The trace player's node side: what it serves for a subscription, and how it answers
controls under each policy."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from ric._proto.e2.v1 import common_pb2, e2_pb2, kpm_pb2, rc_pb2
from ric.trace import Direction, NodeSetup, TraceHeader, TracePlayer, TraceWriter
from tests.e2node import cgi, setup_request

START_US = 1_700_000_000_000_000
NODE = "gnb-001-01-1"


def _indication(start_ms: int, values: list[float]) -> e2_pb2.NodeMessage:
    batch = e2_pb2.IndicationBatch()
    ind = batch.indications.add(ran_function_id=2, action_id=1)
    ind.kpm.collection_start_unix_ms = start_ms
    ind.kpm.granularity_period_ms = 250
    m = ind.kpm.matrix
    m.entity_kind = kpm_pb2.ENTITY_KIND_CELL
    m.metric_names.extend(["RRU.PrbUsedDl", "RRU.PrbAvailDl"])
    m.entity_ids.extend(["001-01-11", "001-01-12"])
    m.values.extend(values)
    return e2_pb2.NodeMessage(indications=batch)


def _control(instance: int, target_nci: int) -> e2_pb2.RicMessage:
    return e2_pb2.RicMessage(
        control_request=e2_pb2.ControlRequest(
            request_id=common_pb2.RicRequestId(requestor=1, instance=instance),
            ran_function_id=3,
            header=rc_pb2.RcControlHeader(
                style=3, action_id=1, ue=rc_pb2.UeTarget(ue_id=7, serving_cell=cgi(11))
            ),
            message=rc_pb2.RcControlMessage(handover=rc_pb2.Handover(target_cell=cgi(target_nci))),
            ack_requested=True,
        )
    )


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    """One node, cell reports every 250 ms for 2 s, and two recorded handovers of UE 7: one
    acknowledged, one never answered."""
    path = tmp_path / "t.trace"
    header = TraceHeader(START_US, nodes=(NodeSetup(NODE, setup_request(node_id=1).setup_request),))
    with TraceWriter(path, header) as writer:
        for k in range(8):
            used = [10.0 + k, 100.0, math.nan if k == 1 else 50.0 + k, 100.0]
            msg = _indication(START_US // 1000 + 250 * k, used)
            writer.add(250_000 * (k + 1), NODE, Direction.NODE_TO_RIC, msg.SerializeToString())
        ack = e2_pb2.NodeMessage(
            control_acknowledge=e2_pb2.ControlAcknowledge(
                request_id=common_pb2.RicRequestId(requestor=1, instance=5),
                ran_function_id=3,
                outcome="done",
            )
        )
        writer.add(2_100_000, NODE, Direction.RIC_TO_NODE, _control(5, 12).SerializeToString())
        writer.add(2_100_500, NODE, Direction.NODE_TO_RIC, ack.SerializeToString())
        writer.add(2_200_000, NODE, Direction.RIC_TO_NODE, _control(6, 13).SerializeToString())
    return path


def _subscribe(
    period_ms: int, metrics: list[str], cells: tuple[int, ...] = ()
) -> e2_pb2.RicMessage:
    return e2_pb2.RicMessage(
        subscription_request=e2_pb2.SubscriptionRequest(
            request_id=common_pb2.RicRequestId(requestor=0, instance=1),
            ran_function_id=2,
            kpm_trigger=kpm_pb2.KpmEventTrigger(reporting_period_ms=period_ms),
            actions=[
                e2_pb2.Action(
                    action_id=1,
                    type=e2_pb2.ACTION_TYPE_REPORT,
                    kpm=kpm_pb2.KpmActionDefinition(
                        report_style=1,
                        metric_names=metrics,
                        scope=kpm_pb2.KpmScope(cells=[cgi(c) for c in cells]),
                    ),
                )
            ],
        )
    )


def test_a_coarser_period_averages_the_recorded_reports_per_entity(trace: Path) -> None:
    """A 1 s subscription over 250 ms recordings gets, each second, the NaN-aware mean of the
    four reports, restricted to the cells and names asked for; unrecorded names are not
    admitted, with a cause."""
    with TracePlayer(trace) as player:
        node = player.nodes[NODE]
        player.advance(0)
        node.up()
        (answer,) = node.handle(
            _subscribe(1000, ["RRU.PrbUsedDl", "L1M.RSRP"], cells=(11,)), player.now_us
        )
        response = answer.subscription_response
        assert list(response.admitted_action_ids) == [1]
        assert [(m.metric_name, m.cause.detail) for m in response.not_admitted_measurements] == [
            ("L1M.RSRP", f"the trace has no L1M.RSRP for cell rows of {NODE}")
        ]
        assert player.next_time() == 1_000_000
        player.advance(1_000_000)
        sent = node.due(1_000_000)
        assert sent is not None
        (ind,) = sent.indications.indications
        m = ind.kpm.matrix
        assert list(m.metric_names) == ["RRU.PrbUsedDl"] and list(m.entity_ids) == ["001-01-11"]
        assert list(m.values) == [(10 + 11 + 12 + 13) / 4]
        assert ind.kpm.collection_start_unix_ms == START_US // 1000
        assert ind.kpm.granularity_period_ms == 1000


def test_the_same_period_serves_each_recorded_report_as_it_was(trace: Path) -> None:
    """At the recorded period and names, every report is the recorded matrix, NaN included,
    and the last open window is closed by finish."""
    with TracePlayer(trace) as player:
        node = player.nodes[NODE]
        player.advance(0)
        node.up()
        node.handle(_subscribe(250, ["RRU.PrbUsedDl", "RRU.PrbAvailDl"]), 0)
        rows = []
        while (t := player.next_time()) is not None:
            player.advance(t)
            sent = node.due(t)
            if sent is not None:
                rows += [list(i.kpm.matrix.values) for i in sent.indications.indications]
        assert len(rows) == 8
        assert rows[0] == [10.0, 100.0, 50.0, 100.0]
        assert rows[1][:2] == [11.0, 100.0] and math.isnan(rows[1][2])
        assert player.finish() == {}


def test_controls_are_answered_by_the_policy(trace: Path) -> None:
    """ack acknowledges everything; recorded repeats the recorded answer (or none), and a
    control the trace does not have fails with a cause."""
    with TracePlayer(trace, controls="ack") as player:
        node = player.nodes[NODE]
        node.up()
        (answer,) = node.handle(_control(40, 13), 0)
        assert answer.HasField("control_acknowledge")
        assert answer.control_acknowledge.request_id.instance == 40
    with TracePlayer(trace, controls="recorded") as player:
        node = player.nodes[NODE]
        node.up()
        (acked,) = node.handle(_control(41, 12), 0)
        assert acked.control_acknowledge.outcome == "done"
        assert acked.control_acknowledge.request_id.instance == 41
        assert node.handle(_control(42, 13), 0) == []  # recorded unanswered: times out
        (failed,) = node.handle(_control(43, 14), 0)
        assert "the trace has no such control" in failed.control_failure.cause.detail
        assert [(c.kind, c.target, c.parameters, c.answer) for c in player.controls] == [
            ("handover", "ue:7@001-01-11", {"target_cell": "001-01-12"}, "acknowledged"),
            ("handover", "ue:7@001-01-11", {"target_cell": "001-01-13"}, "unanswered"),
            ("handover", "ue:7@001-01-11", {"target_cell": "001-01-14"}, "failed"),
        ]
    with pytest.raises(ValueError, match="'ack' or 'recorded'"):
        TracePlayer(trace, controls="maybe")  # type: ignore[arg-type]
