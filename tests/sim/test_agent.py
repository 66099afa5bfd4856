"""Tests of the simulated E2 node (ric.sim.agent) against a fake E2 termination over gRPC."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
from collections.abc import AsyncIterator, Sequence

import pytest

from ric._proto.e2.v1 import ccc_pb2, common_pb2, e2_pb2, kpm_pb2, rc_pb2
from ric.e2.convert import cell_id_to_proto
from ric.e2node import APPLIED_CONTROL_MEMORY
from ric.ids import CellId
from ric.model import CCC_OID, KPM_OID, RC_OID, CauseCode
from ric.sim import VENDOR_PROFILES, NodeAgent, Scenario, Simulator, World
from ric.sim.metrics import UE_NEIGHBOUR_METRICS

from .conftest import WAIT_S, FakeRic, FakeSession

REQUESTOR = 7


@contextlib.asynccontextmanager
async def running(
    scenario: Scenario, ric: FakeRic, nodes: Sequence[int] | None = None
) -> AsyncIterator[tuple[Simulator, dict[int, FakeSession]]]:
    """A simulator against ``ric`` whose nodes have all completed E2 setup."""
    async with Simulator(
        scenario, ric.target, nodes=nodes, reconnect_initial_s=0.02, reconnect_max_s=0.1
    ) as sim:
        sessions = await ric.setup_all(len(sim.agents))
        async with asyncio.timeout(WAIT_S):
            await sim.wait_ready()
        yield sim, sessions


def rid(instance: int) -> common_pb2.RicRequestId:
    """A RIC request id of the test's requestor."""
    return common_pb2.RicRequestId(requestor=REQUESTOR, instance=instance)


def report(
    action_id: int,
    style: int,
    metrics: Sequence[str],
    *,
    per_slice: bool = False,
    scope: kpm_pb2.KpmScope | None = None,
    action_type: int = e2_pb2.ACTION_TYPE_REPORT,
) -> e2_pb2.Action:
    """A KPM report action."""
    return e2_pb2.Action(
        action_id=action_id,
        type=action_type,  # type: ignore[arg-type]
        kpm=kpm_pb2.KpmActionDefinition(
            report_style=style, metric_names=metrics, per_slice=per_slice, scope=scope
        ),
    )


def subscription(
    instance: int, fn: int, period_ms: int, *actions: e2_pb2.Action
) -> e2_pb2.SubscriptionRequest:
    """A KPM subscription request."""
    return e2_pb2.SubscriptionRequest(
        request_id=rid(instance),
        ran_function_id=fn,
        kpm_trigger=kpm_pb2.KpmEventTrigger(reporting_period_ms=period_ms),
        actions=actions,
    )


def function_id(session: FakeSession, oid: str) -> int:
    """The node's RAN function id for a service model OID, from its setup request."""
    assert session.setup_request is not None
    return next(f.ran_function_id for f in session.setup_request.ran_functions if f.oid == oid)


def control(
    instance: int, fn: int, style: int, action: int, *, ack: bool = True, **parts: object
) -> e2_pb2.ControlRequest:
    """A control request; ``parts`` fill the header target (ue/cell/slice) and the message."""
    header = rc_pb2.RcControlHeader(style=style, action_id=action)
    message = rc_pb2.RcControlMessage()
    for name, value in parts.items():
        if name in ("ue", "cell", "slice"):
            getattr(header, name).CopyFrom(value)
        else:
            getattr(message, name).CopyFrom(value)
    return e2_pb2.ControlRequest(
        request_id=rid(instance),
        ran_function_id=fn,
        header=header,
        message=message,
        ack_requested=ack,
    )


def cause_of(msg: e2_pb2.NodeMessage) -> CauseCode:
    """The cause code of a failure message."""
    kind = msg.WhichOneof("message")
    assert kind is not None
    return CauseCode(getattr(msg, kind).cause.code)


async def test_setup_announces_each_vendors_functions_and_cells(
    small: Scenario, fake_ric: FakeRic
) -> None:
    """Each node's E2 setup carries its identity, its vendor profile's RAN functions and its cells."""
    async with running(small, fake_ric) as (sim, nodes):
        assert set(nodes) == {1, 2, 3}
        for node_id, session in nodes.items():
            req = session.setup_request
            assert req is not None
            spec = small.node(node_id)
            profile = VENDOR_PROFILES[spec.vendor]
            assert (req.node_id.plmn.mcc, req.node_id.plmn.mnc) == ("001", "01")
            assert req.node_id.type == common_pb2.NODE_TYPE_GNB
            assert (req.vendor, req.software_version) == (profile.vendor, profile.software_version)
            kpm = next(f for f in req.ran_functions if f.oid == KPM_OID)
            rc = next(f for f in req.ran_functions if f.oid == RC_OID)
            assert kpm.ran_function_id == profile.kpm_function_id
            assert rc.ran_function_id == profile.rc_function_id
            assert {s.style: tuple(s.metric_names) for s in kpm.kpm.report_styles} == dict(
                profile.kpm_styles
            )
            actions = {(s.style, a.action_id) for s in rc.rc.control_styles for a in s.actions}
            assert actions == {(a.style, a.action_id) for a in profile.rc_actions}
            assert [c.cgi.nr_cell_identity for c in req.cells] == [
                node_id * 4096 + k + 1 for k in range(spec.sectors)
            ]
            for cell in req.cells:
                assert cell.active
                assert cell.bandwidth_prbs == spec.bandwidth_prbs
                assert cell.band == spec.band
                assert cell.tx_power_dbm == spec.tx_power_dbm
                assert cell.neighbours
        acme = nodes[1].setup_request
        assert acme is not None
        kpm = next(f for f in acme.ran_functions if f.oid == KPM_OID)
        assert [s.style for s in kpm.kpm.report_styles] == [1, 2, 3, 4, 5]
        assert sim.all_ready


async def test_subscription_reports_cells_and_slices_in_one_batch(
    small: Scenario, fake_ric: FakeRic
) -> None:
    """A two-action subscription is admitted and reported every period in one batch, in order."""
    async with running(small, fake_ric) as (sim, nodes):
        acme = nodes[1]
        cell_metrics = ["RRU.PrbUsedDl", "RRU.PrbAvailDl", "RRC.ConnMean"]
        slice_metrics = ["RRU.PrbUsedDl", "DRB.UEThpDl"]
        acme.send(
            subscription_request=subscription(
                1,
                2,
                100,
                report(1, 1, cell_metrics),
                report(2, 1, slice_metrics, per_slice=True),
            )
        )
        resp = (await acme.recv("subscription_response")).subscription_response
        assert list(resp.admitted_action_ids) == [1, 2]
        assert not resp.not_admitted_actions
        assert not resp.not_admitted_measurements
        cells = ["001-01-4097", "001-01-4098"]
        slices = list(sim.world.slice_text)
        starts = []
        for seq in range(3):
            batch = (await acme.recv("indications")).indications
            assert [i.action_id for i in batch.indications] == [1, 2]
            for ind in batch.indications:
                assert ind.request_id == rid(1)
                assert ind.ran_function_id == 2
                assert ind.sequence_number == seq
                assert ind.type == e2_pb2.INDICATION_TYPE_REPORT
                assert ind.kpm.granularity_period_ms == 100
            starts.append(batch.indications[0].kpm.collection_start_unix_ms)
            by_cell = batch.indications[0].kpm.matrix
            assert by_cell.entity_kind == kpm_pb2.ENTITY_KIND_CELL
            assert list(by_cell.metric_names) == cell_metrics
            assert list(by_cell.entity_ids) == cells
            assert len(by_cell.values) == len(cells) * len(cell_metrics)
            used, avail = by_cell.values[0], by_cell.values[1]
            assert avail == 106.0
            assert 0.0 <= used <= avail
            by_slice = batch.indications[1].kpm.matrix
            assert by_slice.entity_kind == kpm_pb2.ENTITY_KIND_SLICE
            assert list(by_slice.metric_names) == slice_metrics
            assert list(by_slice.entity_ids) == slices * 2
            assert list(by_slice.entity_cells) == [c for c in cells for _ in slices]
            assert len(by_slice.values) == len(cells) * len(slices) * len(slice_metrics)
        assert [b - a for a, b in itertools.pairwise(starts)] == [100, 100]


async def test_ue_report_rows_follow_the_scope(small: Scenario, fake_ric: FakeRic) -> None:
    """A UE-level report has one row per scoped UE of the node, with its cell and slice."""
    async with running(small, fake_ric) as (sim, nodes):
        world = sim.world
        acme = nodes[1]
        own = [int(u) + 1 for u in world.ues_in_cells(world.nodes[1].cells)]
        foreign = [int(u) + 1 for u in world.ues_in_cells(world.nodes[2].cells)]
        wanted = own[:2] + foreign[:1]
        metrics = ["DRB.UEThpDl", "L1M.RSRP", "L1M.SINR"]
        scope = kpm_pb2.KpmScope(ue_ids=wanted)
        acme.send(subscription_request=subscription(1, 2, 100, report(1, 2, metrics, scope=scope)))
        await acme.recv("subscription_response")
        matrix = (await acme.recv("indications")).indications.indications[0].kpm.matrix
        assert matrix.entity_kind == kpm_pb2.ENTITY_KIND_UE
        assert list(matrix.entity_ids) == [str(u) for u in own[:2]]
        node_cells = {world.cell_text[c] for c in world.nodes[1].cells}
        assert set(matrix.entity_cells) <= node_cells
        assert list(matrix.entity_slices) == [
            world.slice_text[world.ue_slice[u - 1]] for u in own[:2]
        ]
        assert len(matrix.values) == 2 * len(metrics)
        for row in range(2):
            thp, rsrp, sinr = matrix.values[row * 3 : row * 3 + 3]
            assert thp >= 0.0
            assert -140.0 < rsrp < -30.0
            assert math.isfinite(sinr)


async def test_ue_report_carries_neighbour_measurements(small: Scenario, fake_ric: FakeRic) -> None:
    """An acme UE report asked for the neighbour measurements admits them all, and each row
    names, strongest first, active cells of the world other than the UE's serving cell."""
    async with running(small, fake_ric) as (sim, nodes):
        world = sim.world
        acme = nodes[1]
        metrics = ["L1M.RSRP", *UE_NEIGHBOUR_METRICS]
        acme.send(subscription_request=subscription(1, 2, 100, report(1, 5, metrics)))
        resp = (await acme.recv("subscription_response")).subscription_response
        assert list(resp.not_admitted_measurements) == []
        matrix = (await acme.recv("indications")).indications.indications[0].kpm.matrix
        assert list(matrix.metric_names) == metrics
        assert len(matrix.entity_ids) > 0
        width = len(metrics)
        for row, serving in enumerate(matrix.entity_cells):
            values = matrix.values[row * width : (row + 1) * width]
            rsrp, ncis = values[1::2], values[2::2]
            heard = [r for r in rsrp if not math.isnan(r)]
            assert heard == sorted(heard, reverse=True)
            for nci in ncis[: len(heard)]:
                cell = CellId(world.plmn, int(nci))
                assert world.cell_index(cell) is not None
                assert str(cell) != serving
            assert all(math.isnan(x) for x in ncis[len(heard) :])


async def test_unsupported_metrics_are_not_admitted_and_not_reported(
    small: Scenario, fake_ric: FakeRic
) -> None:
    """Metrics a style lacks come back as MeasurementNotAdmitted and are left out of reports."""
    async with running(small, fake_ric) as (_sim, nodes):
        globex = nodes[2]
        fn = function_id(globex, KPM_OID)
        asked = ["RRU.PrbUsedDl", "RRU.PrbUsedUl", "DRB.UEThpDl"]
        globex.send(subscription_request=subscription(3, fn, 100, report(1, 1, asked)))
        resp = (await globex.recv("subscription_response")).subscription_response
        assert list(resp.admitted_action_ids) == [1]
        [skipped] = resp.not_admitted_measurements
        assert (skipped.action_id, skipped.metric_name) == (1, "RRU.PrbUsedUl")
        assert CauseCode(skipped.cause.code) == CauseCode.RIC_REQUEST_MEASUREMENT_NOT_SUPPORTED
        matrix = (await globex.recv("indications")).indications.indications[0].kpm.matrix
        assert list(matrix.metric_names) == ["RRU.PrbUsedDl", "DRB.UEThpDl"]
        assert list(matrix.entity_ids) == ["001-01-8193"]
        assert len(matrix.values) == 2


async def test_subscription_refusals_carry_the_right_cause(
    small: Scenario, fake_ric: FakeRic
) -> None:
    """Bad subscriptions fail with the E2 cause that says why; a partly bad one is partly admitted."""
    async with running(small, fake_ric) as (_sim, nodes):
        acme = nodes[1]
        good = report(1, 1, ["RRU.PrbUsedDl"])
        cases = [
            (subscription(1, 99, 100, good), CauseCode.RIC_REQUEST_RAN_FUNCTION_ID_INVALID),
            (
                subscription(2, 2, 100, report(1, 9, ["RRU.PrbUsedDl"])),
                CauseCode.RIC_REQUEST_ACTION_NOT_SUPPORTED,
            ),
            (
                subscription(3, 2, 100, report(1, 1, ["No.Such"])),
                CauseCode.RIC_REQUEST_MEASUREMENT_NOT_SUPPORTED,
            ),
            (subscription(4, 2, 50, good), CauseCode.RIC_REQUEST_FUNCTION_RESOURCE_LIMIT),
            (
                subscription(
                    5,
                    2,
                    100,
                    report(1, 1, ["RRU.PrbUsedDl"], action_type=e2_pb2.ACTION_TYPE_POLICY),
                ),
                CauseCode.RIC_REQUEST_ACTION_NOT_SUPPORTED,
            ),
            (subscription(6, 2, 100, good, good), CauseCode.RIC_REQUEST_DUPLICATE_ACTION),
        ]
        for request, cause in cases:
            acme.send(subscription_request=request)
            failure = await acme.recv("subscription_failure")
            assert failure.subscription_failure.request_id == request.request_id
            assert cause_of(failure) == cause, failure

        acme.send(subscription_request=subscription(10, 2, 1000, good))
        await acme.recv("subscription_response")
        acme.send(subscription_request=subscription(10, 2, 1000, good))
        assert (
            cause_of(await acme.recv("subscription_failure"))
            == CauseCode.RIC_REQUEST_DUPLICATE_ACTION
        )

        acme.send(
            subscription_request=subscription(11, 2, 1000, good, report(2, 7, ["RRU.PrbUsedDl"]))
        )
        resp = (await acme.recv("subscription_response")).subscription_response
        assert list(resp.admitted_action_ids) == [1]
        [refused] = resp.not_admitted_actions
        assert refused.action_id == 2
        assert CauseCode(refused.cause.code) == CauseCode.RIC_REQUEST_ACTION_NOT_SUPPORTED


async def test_subscription_delete_stops_reports(small: Scenario, fake_ric: FakeRic) -> None:
    """A deleted subscription is confirmed and stops reporting; deleting it again fails."""
    async with running(small, fake_ric) as (_sim, nodes):
        acme = nodes[1]
        acme.send(subscription_request=subscription(1, 2, 100, report(1, 1, ["RRU.PrbUsedDl"])))
        await acme.recv("subscription_response")
        await acme.recv("indications")
        delete = e2_pb2.SubscriptionDeleteRequest(request_id=rid(1), ran_function_id=2)
        acme.send(subscription_delete_request=delete)
        await acme.recv("subscription_delete_response")
        acme.send(subscription_delete_request=delete)
        failure = await acme.recv("subscription_delete_failure")
        assert cause_of(failure) == CauseCode.RIC_REQUEST_ID_UNKNOWN
        acme.send(subscription_request=subscription(2, 2, 100, report(1, 1, ["RRU.PrbUsedDl"])))
        await acme.recv("subscription_response")
        for _ in range(2):
            batch = (await acme.recv("indications")).indications
            assert [i.request_id.instance for i in batch.indications] == [2]


def _handover_candidate(sim: Simulator) -> tuple[int, int, int]:
    """(UE id, source, target) for a UE the other acme cell reaches well (a usable SINR
    there, so the handover executes instead of failing)."""
    world = sim.world
    a, b = world.nodes[1].cells
    for u, cell in enumerate(world.serving.tolist()):
        other = b if cell == a else a if cell == b else None
        if (
            other is not None
            and world.rsrp_dbm[u, other] > -112.0
            and world.sinr_db[u, other] > world.scenario.radio.rlf_sinr_db + 2.0
        ):
            return u + 1, cell, other
    raise AssertionError("no UE of node 1 can be handed over between its cells")


async def test_handover_is_acknowledged_applied_and_reported(
    small: Scenario, fake_ric: FakeRic
) -> None:
    """A handover is acknowledged, moves the UE in the world, and shows in UE-level reports."""
    # acme's two sectors are back to back: nobody has a usable SINR on the other one, so this
    # test lowers Qout to let the handover execute, and keeps the RAN's A3 from undoing it.
    small = small.model_copy(
        update={
            "radio": small.radio.model_copy(update={"rlf_sinr_db": -30.0}),
            "ran": small.ran.model_copy(update={"mobility": "none"}),
        }
    )
    async with running(small, fake_ric) as (sim, nodes):
        acme = nodes[1]
        world = sim.world
        ue, source, target = _handover_candidate(sim)
        request = control(
            5,
            3,
            3,
            1,
            ue=rc_pb2.UeTarget(ue_id=ue, serving_cell=cell_id_to_proto(world.cell_ids[source])),
            handover=rc_pb2.Handover(target_cell=cell_id_to_proto(world.cell_ids[target])),
        )
        acme.send(control_request=request)
        ack = (await acme.recv("control_acknowledge")).control_acknowledge
        assert ack.request_id == rid(5)
        assert ack.ran_function_id == 3
        assert "handed over" in ack.outcome
        assert world.serving_cell(ue) == world.cell_ids[target]
        scope = kpm_pb2.KpmScope(ue_ids=[ue])
        acme.send(
            subscription_request=subscription(1, 2, 100, report(1, 5, ["DRB.UEThpDl"], scope=scope))
        )
        await acme.recv("subscription_response")
        matrix = (await acme.recv("indications")).indications.indications[0].kpm.matrix
        assert list(matrix.entity_ids) == [str(ue)]
        assert list(matrix.entity_cells) == [world.cell_text[target]]


async def test_control_failures_carry_the_right_cause(small: Scenario, fake_ric: FakeRic) -> None:
    """Unsupported, misaddressed and unworkable controls fail with the cause that says why."""
    async with running(small, fake_ric) as (sim, nodes):
        world = sim.world
        acme, globex = nodes[1], nodes[2]
        own_ue = int(world.ues_in_cells(world.nodes[1].cells)[0]) + 1
        foreign_ue = int(world.ues_in_cells(world.nodes[2].cells)[0]) + 1
        to_cell = rc_pb2.Handover(
            target_cell=cell_id_to_proto(world.cell_ids[world.nodes[2].cells[0]])
        )
        embb = common_pb2.Snssai(sst=1, sd="000001")
        acme_cell = cell_id_to_proto(world.cell_ids[world.nodes[1].cells[0]])
        globex_cell = cell_id_to_proto(world.cell_ids[world.nodes[2].cells[0]])
        quota = rc_pb2.SlicePrbQuota(min_prb_ratio_pct=50, max_prb_ratio_pct=20)
        cases: list[tuple[FakeSession, e2_pb2.ControlRequest, CauseCode]] = [
            (
                globex,
                control(
                    1,
                    function_id(globex, RC_OID),
                    3,
                    1,
                    ue=rc_pb2.UeTarget(ue_id=foreign_ue),
                    handover=to_cell,
                ),
                CauseCode.RIC_REQUEST_ACTION_NOT_SUPPORTED,
            ),
            (
                acme,
                control(2, 2, 3, 1, ue=rc_pb2.UeTarget(ue_id=own_ue), handover=to_cell),
                CauseCode.RIC_REQUEST_RAN_FUNCTION_ID_INVALID,
            ),
            (
                acme,
                control(3, 3, 100, 1, cell=acme_cell, cell_state=rc_pb2.CellState(active=False)),
                CauseCode.RIC_REQUEST_ACTION_NOT_SUPPORTED,
            ),
            (
                acme,
                control(4, 3, 3, 1, ue=rc_pb2.UeTarget(ue_id=foreign_ue), handover=to_cell),
                CauseCode.RIC_REQUEST_TARGET_UNKNOWN,
            ),
            (
                acme,
                control(
                    5,
                    3,
                    3,
                    1,
                    ue=rc_pb2.UeTarget(ue_id=own_ue),
                    handover=rc_pb2.Handover(target_cell=cell_id_to_proto(CellId(world.plmn, 999))),
                ),
                CauseCode.RIC_REQUEST_CONTROL_FAILED_TO_EXECUTE,
            ),
            (
                acme,
                control(
                    6,
                    3,
                    2,
                    6,
                    slice=rc_pb2.SliceTarget(cell=acme_cell, slice=embb),
                    slice_prb_quota=quota,
                ),
                CauseCode.RIC_REQUEST_CONTROL_FAILED_TO_EXECUTE,
            ),
            (
                acme,
                control(
                    7,
                    3,
                    2,
                    6,
                    slice=rc_pb2.SliceTarget(cell=globex_cell, slice=embb),
                    slice_prb_quota=quota,
                ),
                CauseCode.RIC_REQUEST_TARGET_UNKNOWN,
            ),
            (
                acme,
                control(8, 3, 3, 1, cell=acme_cell, handover=to_cell),
                CauseCode.RIC_REQUEST_CONTROL_MESSAGE_INVALID,
            ),
        ]
        for session, request, cause in cases:
            session.send(control_request=request)
            failure = await session.recv("control_failure")
            assert failure.control_failure.request_id == request.request_id
            assert cause_of(failure) == cause, failure
            assert failure.control_failure.cause.detail


async def test_cell_off_and_on_is_applied_and_announced(small: Scenario, fake_ric: FakeRic) -> None:
    """The deprecated RC cell-state control still works, as energy saving: switching a cell
    off (typed) is acknowledged at once and announced when the cell has handed its UEs out
    and is off; switching it on (generic form) is announced after the wake-up time."""
    quick = small.model_copy(update={"ran": small.ran.model_copy(update={"cell_wakeup_s": 0.3})})
    async with running(quick, fake_ric) as (sim, nodes):
        world = sim.world
        initech = nodes[3]
        fn = function_id(initech, RC_OID)
        [cell] = world.nodes[3].cells
        cgi = cell_id_to_proto(world.cell_ids[cell])
        initech.send(
            control_request=control(
                1, fn, 100, 1, cell=cgi, cell_state=rc_pb2.CellState(active=False)
            )
        )
        ack = (await initech.recv("control_acknowledge")).control_acknowledge
        assert "shutting_down" in ack.outcome or "off" in ack.outcome
        update = (await initech.recv("configuration_update")).configuration_update
        [modified] = update.cells_modified
        assert modified.cgi == cgi
        assert not modified.active
        assert not world.is_active(cell)
        assert world.energy_saving(cell)
        assert cell not in world.serving.tolist()

        generic = rc_pb2.GenericControl(
            parameters={
                "active": rc_pb2.Value(bool_value=True),
                "tx_power_dbm": rc_pb2.Value(double_value=37.0),
            }
        )
        initech.send(control_request=control(2, fn, 100, 1, cell=cgi, generic=generic))
        ack = (await initech.recv("control_acknowledge")).control_acknowledge
        assert "waking" in ack.outcome
        while True:  # the power change may be announced before the cell is up
            update = (await initech.recv("configuration_update")).configuration_update
            if update.cells_modified[0].active:
                break
        assert update.cells_modified[0].tx_power_dbm == 37.0
        assert world.is_active(cell)
        assert world.time_s >= 0.3


def ccc_control(
    instance: int, fn: int, cell: common_pb2.NrCgi, **structures: object
) -> e2_pb2.ControlRequest:
    """A CCC cell configuration control (style 2) of ``cell`` with the given structures."""
    return e2_pb2.ControlRequest(
        request_id=rid(instance),
        ran_function_id=fn,
        ccc=ccc_pb2.CccControl(style=2, cell=cell, **structures),  # type: ignore[arg-type]
        ack_requested=True,
    )


def relation(neighbour: common_pb2.NrCgi, offset_db: int) -> ccc_pb2.NrCellRelation:
    """One O-NRCellRelation change: the CIO towards ``neighbour``."""
    return ccc_pb2.NrCellRelation(
        adjacent_cell=neighbour,
        cell_individual_offset=ccc_pb2.CellIndividualOffset(rsrp_offset_ssb_db=offset_db),
    )


async def test_ccc_cio_and_energy_saving_are_applied(small: Scenario, fake_ric: FakeRic) -> None:
    """Through the node's CCC function a CIO is set on a relation and a cell is put to
    energy saving (acknowledged, then announced off once empty); a CIO outside Q-OffsetRange,
    a relation the cell does not have, a foreign cell and an attribute the vendor does not
    let the RIC write are refused with their cause, and change nothing."""
    async with running(small, fake_ric) as (sim, nodes):
        world = sim.world
        initech, acme = nodes[3], nodes[1]
        [cell] = world.nodes[3].cells
        cgi = cell_id_to_proto(world.cell_ids[cell])
        nbr = world.neighbours(cell)[0]
        nbr_cgi = cell_id_to_proto(world.cell_ids[nbr])
        fn = function_id(initech, CCC_OID)
        initech.send(control_request=ccc_control(1, fn, cgi, relations=[relation(nbr_cgi, -6)]))
        ack = (await initech.recv("control_acknowledge")).control_acknowledge
        assert "-6 dB" in ack.outcome
        assert world.cio(world.cell_ids[cell], world.cell_ids[nbr]) == -6.0

        strangers = [
            c for c in range(world.n_cells) if c != cell and c not in world.neighbours(cell)
        ]
        foreign = cell_id_to_proto(CellId(world.plmn, 999))
        acme_cell = cell_id_to_proto(world.cell_ids[world.nodes[1].cells[0]])
        lock = ccc_pb2.NrCellDu(administrative_state=ccc_pb2.ADMINISTRATIVE_STATE_LOCKED)
        cases = [
            (
                initech,
                ccc_control(2, fn, cgi, relations=[relation(nbr_cgi, 7)]),
                CauseCode.RIC_REQUEST_CONTROL_MESSAGE_INVALID,
                "Q-OffsetRange",
            ),
            (
                initech,
                ccc_control(3, fn, cgi, relations=[relation(foreign, 2)]),
                CauseCode.RIC_REQUEST_TARGET_UNKNOWN,
                "no neighbour relation",
            ),
            (
                initech,
                ccc_control(4, fn, acme_cell, nr_cell_du=lock),
                CauseCode.RIC_REQUEST_TARGET_UNKNOWN,
                "not a cell of this node",
            ),
            (
                acme,
                ccc_control(5, function_id(acme, CCC_OID), acme_cell, nr_cell_du=lock),
                CauseCode.RIC_REQUEST_ACTION_NOT_SUPPORTED,
                "O-NRCellDU.administrativeState",
            ),
        ]
        if strangers:
            far = cell_id_to_proto(world.cell_ids[strangers[0]])
            cases.append(
                (
                    initech,
                    ccc_control(6, fn, cgi, relations=[relation(far, 2)]),
                    CauseCode.RIC_REQUEST_TARGET_UNKNOWN,
                    "no neighbour relation",
                )
            )
        for session, request, code, words in cases:
            session.send(control_request=request)
            failure = await session.recv("control_failure")
            assert cause_of(failure) == code, failure
            assert words in failure.control_failure.cause.detail
        assert world.cio(world.cell_ids[cell], world.cell_ids[nbr]) == -6.0
        assert world.is_active(world.nodes[1].cells[0])

        es = ccc_pb2.CesManagementFunction(
            energy_saving_control=ccc_pb2.ENERGY_SAVING_CONTROL_TO_BE_ENERGY_SAVING
        )
        initech.send(control_request=ccc_control(7, fn, cgi, ces_management_function=es))
        await initech.recv("control_acknowledge")
        update = (await initech.recv("configuration_update")).configuration_update
        assert not update.cells_modified[0].active
        assert world.cell_state(cell) == "off" and world.energy_saving(cell)


async def test_slice_quota_control_changes_the_world(small: Scenario, fake_ric: FakeRic) -> None:
    """A slice PRB quota control on a Globex cell is acknowledged and sets the slice's quota."""
    async with running(small, fake_ric) as (sim, nodes):
        world = sim.world
        globex = nodes[2]
        [cell] = world.nodes[2].cells
        target = rc_pb2.SliceTarget(
            cell=cell_id_to_proto(world.cell_ids[cell]), slice=common_pb2.Snssai(sst=2, sd="000002")
        )
        quota = rc_pb2.SlicePrbQuota(
            min_prb_ratio_pct=20, max_prb_ratio_pct=60, dedicated_prb_ratio_pct=10
        )
        globex.send(
            control_request=control(
                1, function_id(globex, RC_OID), 2, 6, slice=target, slice_prb_quota=quota
            )
        )
        await globex.recv("control_acknowledge")
        assert world.slice_quota(cell, 1) == (20, 60, 10)


async def test_node_reconnects_after_the_ric_closes_the_stream(
    small: Scenario, fake_ric: FakeRic
) -> None:
    """When the RIC ends the stream the node connects again, sets up again, and starts afresh."""
    async with running(small, fake_ric, nodes=[1]) as (sim, nodes):
        acme = nodes[1]
        acme.send(subscription_request=subscription(1, 2, 100, report(1, 1, ["RRU.PrbUsedDl"])))
        await acme.recv("subscription_response")
        acme.close()
        again = await fake_ric.next_session()
        req = await again.setup()
        assert req.node_id.node_id == 1
        async with asyncio.timeout(WAIT_S):
            await sim.wait_ready()
        assert sim.agents[1].setups == 2
        # Subscriptions ended with the old stream: the same request id is welcome again.
        again.send(subscription_request=subscription(1, 2, 100, report(1, 1, ["RRU.PrbUsedDl"])))
        await again.recv("subscription_response")
        batch = (await again.recv("indications")).indications
        assert batch.indications[0].sequence_number == 0


async def test_setup_failure_is_retried_after_time_to_wait(
    small: Scenario, fake_ric: FakeRic
) -> None:
    """A refused E2 setup is retried after the RIC's time-to-wait, not the long back-off."""
    async with Simulator(small, fake_ric.target, nodes=[1], reconnect_initial_s=60.0) as sim:
        first = await fake_ric.next_session()
        req = (await first.recv("setup_request")).setup_request
        first.send(
            setup_failure=e2_pb2.E2SetupFailure(
                transaction_id=req.transaction_id,
                cause=common_pb2.Cause(code=common_pb2.CAUSE_MISC_OM_INTERVENTION),
                time_to_wait_ms=20,
            )
        )
        second = await fake_ric.next_session()
        await second.setup()
        async with asyncio.timeout(WAIT_S):
            await sim.wait_ready()
        assert sim.agents[1].setups == 1


async def test_reset_drops_subscriptions(small: Scenario, fake_ric: FakeRic) -> None:
    """A reset is answered with the same transaction id and ends every subscription."""
    async with running(small, fake_ric, nodes=[1]) as (_sim, nodes):
        acme = nodes[1]
        acme.send(subscription_request=subscription(1, 2, 100, report(1, 1, ["RRU.PrbUsedDl"])))
        await acme.recv("subscription_response")
        acme.send(reset_request=e2_pb2.ResetRequest(transaction_id=9))
        assert (await acme.recv("reset_response")).reset_response.transaction_id == 9
        acme.send(subscription_request=subscription(1, 2, 100, report(1, 1, ["RRU.PrbUsedDl"])))
        await acme.recv("subscription_response")


async def test_keep_alive_follows_the_setup_response(small: Scenario, fake_ric: FakeRic) -> None:
    """The node sends numbered keep-alives at the interval the setup response asked for."""
    async with Simulator(small, fake_ric.target, nodes=[1]):
        session = await fake_ric.next_session()
        await session.setup(keep_alive_interval_ms=20)
        first = (await session.recv("keep_alive")).keep_alive
        second = (await session.recv("keep_alive")).keep_alive
        assert second.sequence == first.sequence + 1
        assert second.sent_at_unix_ms >= first.sent_at_unix_ms > 0


async def test_ric_errors_are_logged_and_unexpected_messages_answered(
    small: Scenario, fake_ric: FakeRic, caplog: pytest.LogCaptureFixture
) -> None:
    """An ErrorIndication from the RIC is logged; a second setup response gets an ErrorIndication."""
    caplog.set_level(logging.WARNING, logger="ric.sim.agent")
    async with running(small, fake_ric, nodes=[1]) as (_sim, nodes):
        acme = nodes[1]
        acme.send(
            error_indication=e2_pb2.ErrorIndication(
                cause=common_pb2.Cause(code=common_pb2.CAUSE_PROTOCOL_SEMANTIC_ERROR, detail="test")
            )
        )
        acme.send(setup_response=e2_pb2.E2SetupResponse(transaction_id=1))
        answer = await acme.recv("error_indication")
        assert cause_of(answer) == CauseCode.PROTOCOL_MESSAGE_NOT_COMPATIBLE_WITH_RECEIVER_STATE
        assert any("PROTOCOL_SEMANTIC_ERROR" in r.getMessage() for r in caplog.records)


def _quota(
    world: World, cell: int, fn: int, instance: int, min_pct: int, control_id: str = ""
) -> e2_pb2.ControlRequest:
    """A slice PRB quota control for slice 2-000002 of ``cell``, with ``control_id``."""
    target = rc_pb2.SliceTarget(
        cell=cell_id_to_proto(world.cell_ids[cell]), slice=common_pb2.Snssai(sst=2, sd="000002")
    )
    quota = rc_pb2.SlicePrbQuota(
        min_prb_ratio_pct=min_pct, max_prb_ratio_pct=60, dedicated_prb_ratio_pct=0
    )
    request = control(instance, fn, 2, 6, slice=target, slice_prb_quota=quota)
    request.control_id = control_id
    return request


async def test_a_repeated_control_id_is_acknowledged_but_applied_once(
    small: Scenario, fake_ric: FakeRic
) -> None:
    """A control re-sent with the same control_id, even on a new stream after a reconnect, is
    acknowledged again under its new request id with the first outcome, and not applied again:
    the world keeps what changed it since."""
    async with running(small, fake_ric, nodes=[2]) as (sim, nodes):
        world, agent, globex = sim.world, sim.agents[2], nodes[2]
        [cell] = world.nodes[2].cells
        fn = function_id(globex, RC_OID)
        globex.send(control_request=_quota(world, cell, fn, 1, 20, "ric-t-1"))
        first = (await globex.recv("control_acknowledge")).control_acknowledge
        assert world.slice_quota(cell, 1) == (20, 60, 0)
        world.set_slice_quota(
            world.cell_ids[cell], world.slice_ids[1], min_pct=30, max_pct=60, dedicated_pct=0
        )
        globex.close()
        again = await fake_ric.next_session()
        await again.setup()
        again.send(control_request=_quota(world, cell, fn, 2, 20, "ric-t-1"))
        second = (await again.recv("control_acknowledge")).control_acknowledge
        assert second.request_id == rid(2) and second.outcome == first.outcome
        assert world.slice_quota(cell, 1) == (30, 60, 0)
        assert agent.repeated_controls == 1
        again.send(control_request=_quota(world, cell, fn, 3, 20, "ric-t-2"))
        await again.recv("control_acknowledge")
        assert world.slice_quota(cell, 1) == (20, 60, 0)


async def test_a_repeated_failed_control_id_fails_again_with_its_cause(
    small: Scenario, fake_ric: FakeRic
) -> None:
    """A control_id that failed is answered with the same ControlFailure, for the new request."""
    async with running(small, fake_ric, nodes=[2]) as (sim, nodes):
        world, globex = sim.world, nodes[2]
        [cell] = world.nodes[2].cells
        fn = function_id(globex, RC_OID)
        globex.send(control_request=_quota(world, cell, fn, 1, 101, "ric-t-9"))
        first = (await globex.recv("control_failure")).control_failure
        globex.send(control_request=_quota(world, cell, fn, 2, 101, "ric-t-9"))
        second = (await globex.recv("control_failure")).control_failure
        assert second.request_id == rid(2)
        assert (second.cause.code, second.cause.detail) == (first.cause.code, first.cause.detail)
        assert sim.agents[2].repeated_controls == 1


async def test_controls_without_an_id_are_applied_every_time(
    small: Scenario, fake_ric: FakeRic
) -> None:
    """A RIC older than control_id sends none: the same request twice is applied twice."""
    async with running(small, fake_ric, nodes=[2]) as (sim, nodes):
        world, globex = sim.world, nodes[2]
        [cell] = world.nodes[2].cells
        fn = function_id(globex, RC_OID)
        globex.send(control_request=_quota(world, cell, fn, 1, 20))
        await globex.recv("control_acknowledge")
        world.set_slice_quota(
            world.cell_ids[cell], world.slice_ids[1], min_pct=30, max_pct=60, dedicated_pct=0
        )
        globex.send(control_request=_quota(world, cell, fn, 1, 20))
        await globex.recv("control_acknowledge")
        assert world.slice_quota(cell, 1) == (20, 60, 0)
        assert sim.agents[2].repeated_controls == 0


def test_the_applied_control_memory_forgets_the_oldest_id(small: Scenario) -> None:
    """A node remembers the last APPLIED_CONTROL_MEMORY control ids: the newest is answered
    from memory, the oldest is forgotten and applied again."""
    world = World(small, seed=1)
    agent = NodeAgent(world, 2, "memory")
    sent: list[e2_pb2.NodeMessage] = []
    agent.attach(sent.append)
    [cell] = world.nodes[2].cells
    rc = next(f.ran_function_id for f in agent.describe().ran_functions if f.oid == RC_OID)
    for n in range(APPLIED_CONTROL_MEMORY + 1):
        agent.handle(e2_pb2.RicMessage(control_request=_quota(world, cell, rc, n, 20, f"c-{n}")))
    assert len(sent) == APPLIED_CONTROL_MEMORY + 1 and agent.repeated_controls == 0
    newest = f"c-{APPLIED_CONTROL_MEMORY}"
    agent.handle(e2_pb2.RicMessage(control_request=_quota(world, cell, rc, 1, 20, newest)))
    assert agent.repeated_controls == 1
    world.set_slice_quota(
        world.cell_ids[cell], world.slice_ids[1], min_pct=30, max_pct=60, dedicated_pct=0
    )
    agent.handle(e2_pb2.RicMessage(control_request=_quota(world, cell, rc, 2, 20, "c-0")))
    assert agent.repeated_controls == 1
    assert world.slice_quota(cell, 1) == (20, 60, 0)
