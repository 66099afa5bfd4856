"""slicesla raises a missed slice's PRB guarantee, relaxes it when comfortable, keeps the
minimums of a cell within budget, takes targets from its config and A1 policies, and cuts URLLC
SLA misses in seeds/slices.toml."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import pytest
from pydantic import ValidationError
from slicesla import SLICE_SLA_POLICY, SliceSla, SliceTarget

from ric import (
    ControlOutcome,
    EntityKind,
    KpmReport,
    OutcomeKind,
    PolicyStatus,
    Report,
    SlicePrbQuota,
    XApp,
)
from ric.a1 import validate_policy
from ric.testing import FakeContext, make_report, policy_event, run_scenario, start_xapp
from tests.conftest import wait_for
from tests.integration.stack import running_ric

URLLC = "2-000002"
EMBB = "1-000001"
CELL = "001-01-4097"
NODE = "gnb-001-01-1"


def slice_report(*rows: tuple[str, float, float, float, float], cell: str = CELL) -> KpmReport:
    """A per-slice report of one cell: rows of (slice, PRB %, thp kbit/s, UEs, delay ms)."""
    return make_report(
        NODE,
        EntityKind.SLICE,
        {
            "RRU.PrbTotDl": [r[1] for r in rows],
            "DRB.UEThpDl": [r[2] for r in rows],
            "RRC.ConnMean": [r[3] for r in rows],
            "DRB.RlcSduDelayDl": [r[4] * 10.0 for r in rows],  # ms -> 0.1 ms
        },
        [r[0] for r in rows],
        cells=[cell] * len(rows),
    )


async def feed(app: SliceSla, ctx: FakeContext, reports: Sequence[KpmReport]) -> None:
    """Each report one second after the last."""
    for report in reports:
        await ctx.clock.advance(1.0)
        await app.on_report(report)


def quotas(ctx: FakeContext) -> list[SlicePrbQuota]:
    return [c for c in ctx.controls if isinstance(c, SlicePrbQuota)]


async def test_missed_delay_raises_a_dedicated_guarantee_after_the_hold() -> None:
    """Two reports of URLLC delay over target (25 ms against 5 ms; the KPM unit is 0.1 ms)
    raise its guarantee by a bounded proportional step, as dedicated and minimum PRBs."""
    app, ctx = await start_xapp(SliceSla, {"targets": {URLLC: {"max_delay_ms": 5.0}}})
    hot = slice_report((URLLC, 8.0, 900.0, 3.0, 25.0), (EMBB, 90.0, 3000.0, 10.0, 90.0))
    await feed(app, ctx, [hot])
    assert ctx.controls == []  # one miss is not enough
    await feed(app, ctx, [hot])
    assert quotas(ctx) == [
        SlicePrbQuota(cell_id=CELL, slice=URLLC, min_pct=10, max_pct=100, dedicated_pct=10)
    ]
    assert app.state[(CELL, URLLC)].guarantee == 10
    assert ctx.metrics.value("violations", slice=URLLC, target="delay") == 2
    assert ctx.metrics.value("quota_changes", outcome="acknowledged") == 1
    assert ctx.metrics.value("guarantee_pct", cell=CELL, slice=URLLC) == 10


async def test_cooldown_then_next_step_and_within_target_nothing_changes() -> None:
    """After a change the loop waits out the cool-down before the next step; inside the dead
    band (missed neither the target nor comfortable) nothing is sent."""
    app, ctx = await start_xapp(
        SliceSla, {"targets": {URLLC: {"max_delay_ms": 5.0}}, "cooldown_s": 3.0}
    )
    hot = slice_report((URLLC, 8.0, 900.0, 3.0, 25.0))
    await feed(app, ctx, [hot] * 4)
    assert [q.min_pct for q in quotas(ctx)] == [10]  # t=2: raised; t=3, 4: cooling down
    await feed(app, ctx, [hot])
    assert [q.min_pct for q in quotas(ctx)] == [10, 20]
    dead_band = slice_report((URLLC, 8.0, 900.0, 3.0, 4.0))  # within 5 ms, above 2.5 ms
    await feed(app, ctx, [dead_band] * 20)
    assert len(quotas(ctx)) == 2


async def test_comfortable_slice_is_relaxed_towards_its_floor_with_headroom() -> None:
    """A slice comfortably within target for relax_hold reports gives back relax_step_pct,
    down to its floor, but a dedicated guarantee only while it keeps relax_load headroom."""
    config = {
        "targets": {URLLC: {"max_delay_ms": 5.0, "floor_pct": 4}},
        "relax_hold": 3,
        "cooldown_s": 0.0,
        "max_step_pct": 10,
    }
    app, ctx = await start_xapp(SliceSla, config)
    await feed(app, ctx, [slice_report((URLLC, 8.0, 900.0, 3.0, 25.0))] * 2)
    assert app.state[(CELL, URLLC)].guarantee == 14
    calm = slice_report((URLLC, 5.0, 900.0, 3.0, 1.0))  # 1 ms; uses 5 % of the cell
    await feed(app, ctx, [calm] * 30)
    # 14 -> 12 -> 10 -> 8; 6 would be used 5 / 6 > relax_load 0.7: it stops at 8.
    assert [q.min_pct for q in quotas(ctx)] == [14, 12, 10, 8]
    assert [c.reason for c in app.changes] == ["raise", "relax", "relax", "relax"]
    assert app.state[(CELL, URLLC)].guarantee == 8


async def test_higher_priority_slice_takes_budget_from_a_lower_one_first() -> None:
    """When the managed minimums of a cell would pass max_total_min_pct, the higher-priority
    slice's raise takes room from the lower-priority one, and the decrease is sent first."""
    config = {
        "targets": {
            URLLC: {"max_delay_ms": 5.0, "priority": 1},
            EMBB: {"min_thp_kbps": 2000.0, "floor_pct": 0},
        },
        "max_total_min_pct": 50,
        "cooldown_s": 0.0,
        "max_step_pct": 40,
        "min_step_pct": 40,
    }
    app, ctx = await start_xapp(SliceSla, config)
    starved = slice_report((EMBB, 95.0, 800.0, 10.0, 50.0), (URLLC, 4.0, 900.0, 3.0, 3.0))
    await feed(app, ctx, [starved] * 2)
    assert app.state[(CELL, EMBB)].guarantee == 40
    both = slice_report((EMBB, 95.0, 800.0, 10.0, 50.0), (URLLC, 4.0, 900.0, 3.0, 30.0))
    ctx.controls.clear()
    await feed(app, ctx, [both] * 2)
    sent = [(q.slice, q.min_pct) for q in quotas(ctx)]
    assert sent == [(EMBB, 10), (URLLC, 40)]  # yield first, then raise: never over 50
    assert app.state[(CELL, EMBB)].guarantee + app.state[(CELL, URLLC)].guarantee <= 50


async def test_throughput_target_is_raised_only_in_a_contended_cell() -> None:
    """Quotas cannot help a slice whose cell has PRBs to spare: a throughput miss there sends
    nothing; the same miss in a full cell raises the slice's (non-dedicated) minimum."""
    app, ctx = await start_xapp(SliceSla, {"targets": {EMBB: {"min_thp_kbps": 2000.0}}})
    spare = slice_report((EMBB, 40.0, 1500.0, 10.0, 3.0), (URLLC, 5.0, 900.0, 2.0, 1.0))
    await feed(app, ctx, [spare] * 5)
    assert ctx.controls == []
    full = slice_report((EMBB, 88.0, 1500.0, 10.0, 30.0), (URLLC, 10.0, 900.0, 2.0, 1.0))
    await feed(app, ctx, [full] * 2)
    (quota,) = quotas(ctx)
    assert quota.slice == EMBB and quota.min_pct > 0 and quota.dedicated_pct == 0


async def test_failed_quota_keeps_the_state_and_node_without_the_control_is_skipped() -> None:
    """A refused quota leaves the guarantee as it was (and is counted by outcome)."""

    def refuse(action: object) -> ControlOutcome:
        assert isinstance(action, SlicePrbQuota)
        return ControlOutcome(OutcomeKind.FAILED, action, detail="min ratios over 100")

    app, ctx = await start_xapp(
        SliceSla, {"targets": {URLLC: {"max_delay_ms": 5.0}}}, answer=refuse
    )
    await feed(app, ctx, [slice_report((URLLC, 8.0, 900.0, 3.0, 25.0))] * 2)
    assert len(ctx.controls) == 1
    assert app.state[(CELL, URLLC)].guarantee == 0
    assert ctx.metrics.value("quota_changes", outcome="failed") == 1
    assert app.changes[-1].outcome is OutcomeKind.FAILED


async def test_set_targets_validates_replaces_and_releases_dropped_slices() -> None:
    """set_targets (the config's and a future A1 policy's path) refuses a bad target without
    changing anything, and a slice dropped from the targets gets its floor quota back."""
    app, ctx = await start_xapp(SliceSla, {"targets": {URLLC: {"max_delay_ms": 5.0}}})
    with pytest.raises(ValidationError, match="max_delay_ms or min_thp_kbps"):
        app.set_targets({URLLC: {"floor_pct": 3}})
    with pytest.raises(ValueError, match="slice id 'not-a-slice'"):
        app.set_targets({"not-a-slice": {"max_delay_ms": 1.0}})
    assert app.targets == {URLLC: SliceTarget(max_delay_ms=5.0)}
    await feed(app, ctx, [slice_report((URLLC, 8.0, 900.0, 3.0, 25.0))] * 2)
    app.set_targets({EMBB: SliceTarget(min_thp_kbps=1000.0)})
    await feed(app, ctx, [slice_report((URLLC, 8.0, 900.0, 3.0, 25.0))])
    release = quotas(ctx)[-1]
    assert (release.slice, release.min_pct, release.dedicated_pct) == (URLLC, 0, 0)
    assert (CELL, URLLC) not in app.state
    assert app.changes[-1].reason == "release"


async def test_cuts_urllc_delay_misses_in_the_slices_scenario() -> None:
    """On seeds/slices.toml (cells full of eMBB, URLLC with 5 ms and 5 % min) the xApp's
    quotas cut the share of URLLC slice rows over 5 ms to a fraction of the baseline's."""
    targets = {URLLC: {"max_delay_ms": 5.0, "priority": 1}}
    shares = []
    for xapps in ([], [SliceSla]):
        probe_config = {"slicesla": {"targets": targets}} if xapps else {}
        result = await run_scenario(
            "seeds/slices.toml",
            [_Probe, *xapps],
            duration_s=60,
            seed=1,
            xapp_config=probe_config,
        )
        rows = [
            delay
            for t, r in _urllc_delays(result.reports["probe"])
            if t >= 10 and (delay := r.get(URLLC)) is not None
        ]
        shares.append(sum(d > 5.0 for d in rows) / len(rows))
        if xapps:
            assert result.metrics["slicesla"].value("quota_changes", outcome="acknowledged") > 0
    baseline, with_xapp = shares
    assert baseline > 0.5 and with_xapp < baseline / 3


class _Probe(XApp):
    """Only subscribes to the per-slice delay, so a baseline run has the same KPIs."""

    name = "probe"
    reports = [Report("RRU.PrbTotDl", "RRC.ConnMean", "DRB.RlcSduDelayDl", per="slice")]

    async def on_report(self, report: KpmReport) -> None:
        """Nothing: the harness keeps the reports."""


def _urllc_delays(reports: list[KpmReport]) -> list[tuple[float, dict[str, float | None]]]:
    """(seconds from the first report, {URLLC: delay in ms of each cell-row with UEs})."""
    if not reports:
        return []
    t0 = reports[0].collection_start
    out: list[tuple[float, dict[str, float | None]]] = []
    for report in reports:
        ues = report["RRC.ConnMean"]
        delay = report["DRB.RlcSduDelayDl"]
        for i, slice_id in enumerate(report.entity_ids):
            if slice_id == URLLC and ues[i] >= 0.5 and delay[i] == delay[i]:
                out.append((report.collection_start - t0, {URLLC: float(delay[i]) / 10.0}))
    return out


async def test_a1_policies_override_the_config_and_deletion_restores_it() -> None:
    """A slice-sla policy's targets override the config's for its slices (the latest policy
    wins), are reported enforced, and deleting the policy restores the config's targets."""
    app, _ = await start_xapp(SliceSla, {"targets": {URLLC: {"max_delay_ms": 5.0}}})
    status = await app.on_policy(
        policy_event("slice-sla", "gold", {"targets": {URLLC: {"max_delay_ms": 2.0}}})
    )
    assert status == PolicyStatus(True)
    assert app.targets[URLLC].max_delay_ms == 2.0
    await app.on_policy(
        policy_event("slice-sla", "embb", {"targets": {EMBB: {"min_thp_kbps": 3000.0}}})
    )
    assert set(app.targets) == {URLLC, EMBB}
    await app.on_policy(policy_event("slice-sla", "gold", {}, kind="deleted"))
    assert app.targets[URLLC].max_delay_ms == 5.0 and EMBB in app.targets
    await app.on_policy(policy_event("slice-sla", "embb", {}, kind="deleted"))
    assert app.targets == {URLLC: SliceTarget(max_delay_ms=5.0)}


async def test_a1_policy_the_model_refuses_is_reported_not_enforced() -> None:
    """A policy the schema accepts but the target model refuses (floor above cap) changes
    nothing and is reported not enforced, with the reason."""
    app, _ = await start_xapp(SliceSla, {"targets": {URLLC: {"max_delay_ms": 5.0}}})
    body = {"targets": {URLLC: {"max_delay_ms": 2.0, "floor_pct": 50, "max_pct": 20}}}
    assert validate_policy(SLICE_SLA_POLICY.schema, body) == []
    status = await app.on_policy(policy_event("slice-sla", "bad", body))
    assert status is not None and not status.enforced
    assert "floor_pct 50 is above max_pct 20" in status.reason
    assert app.targets == {URLLC: SliceTarget(max_delay_ms=5.0)} and app.policies == {}


def test_policy_schema_refuses_bad_targets_naming_the_field() -> None:
    """The slice-sla schema refuses a target without a goal, an unknown key and a bad slice
    id, so the A1 API answers 400 naming the field."""
    refused = [
        {"targets": {URLLC: {"floor_pct": 5}}},
        {"targets": {URLLC: {"max_delay_ms": 5.0, "colour": "red"}}},
        {"targets": {"urllc": {"max_delay_ms": 5.0}}},
        {"targets": {}},
    ]
    for body in refused:
        assert validate_policy(SLICE_SLA_POLICY.schema, body), body
    errors = validate_policy(SLICE_SLA_POLICY.schema, refused[1])
    assert any(URLLC in e.field for e in errors)


async def test_a_guarantee_where_the_slice_has_no_ues_is_relaxed_to_the_floor() -> None:
    """When the slice's UEs leave a cell, its guarantee there (PRBs a dedicated share keeps
    idle) goes back step by step to the floor."""
    config = {"targets": {URLLC: {"max_delay_ms": 5.0}}, "relax_hold": 2, "cooldown_s": 0.0}
    app, ctx = await start_xapp(SliceSla, config)
    await feed(app, ctx, [slice_report((URLLC, 8.0, 900.0, 3.0, 25.0))] * 2)
    assert app.state[(CELL, URLLC)].guarantee == 10
    nan = float("nan")
    await feed(app, ctx, [slice_report((URLLC, 0.0, nan, 0.0, nan))] * 12)
    assert [q.min_pct for q in quotas(ctx)] == [10, 8, 6, 4, 2, 0]
    assert ctx.metrics.value("violations", slice=URLLC, target="delay") == 2


async def test_targets_from_an_a1_policy_over_http_drive_quota_controls(tmp_path: Path) -> None:
    """End to end on a live runtime with the simulator over gRPC: a slice-sla policy put over
    the A1 API reaches slicesla, which reports it enforced (the status endpoint says so) and
    then raises the URLLC slice's quota on the nodes, which acknowledge it; a policy that
    breaks the type's schema is refused naming the field; deleting the policy reaches it."""
    token = "slicesla-a1-token-0123456789"
    token_file = tmp_path / "token"
    token_file.write_text(token)
    overrides = {
        "http.token_file": str(token_file),
        "xapps.config.slicesla": {"hold_reports": 1, "cooldown_s": 0.0},
    }
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        running_ric("slicesla", overrides=overrides) as ric,
        aiohttp.ClientSession(headers=headers) as http,
    ):
        host = ric.runtime.host("slicesla")
        await wait_for(lambda: host.instance is not None, what="slicesla started")
        app = host.instance
        assert isinstance(app, SliceSla)
        base = f"{ric.url}/A1-P/v2/policytypes/slice-sla/policies"
        policy = {"targets": {"2-000002": {"max_delay_ms": 0.1}}}  # tighter than any cell
        async with http.put(f"{base}/urllc", json=policy) as response:
            assert response.status == 201, await response.text()
        await wait_for(lambda: "2-000002" in app.targets, what="the policy's targets in force")

        for _ in range(500):  # the status follows the xApp's answer
            async with http.get(f"{base}/urllc/status") as response:
                status = await response.json()
            if status["enforceStatus"] == "ENFORCED":
                break
            await asyncio.sleep(0.02)
        assert status == {"enforceStatus": "ENFORCED"}, status
        async with http.get(f"{ric.url}/api/v1/policies/slice-sla/urllc") as response:
            assert (await response.json())["detail"] == "enforced by xApp slicesla"
        await wait_for(
            lambda: any(
                c.slice == "2-000002" and c.outcome is OutcomeKind.ACKNOWLEDGED for c in app.changes
            ),
            timeout=20.0,
            what="an acknowledged URLLC quota change",
        )

        bad = {"targets": {"2-000002": {"max_delay_ms": "fast"}}}
        async with http.put(f"{base}/bad", json=bad) as response:
            assert response.status == 400
            assert "max_delay_ms" in (await response.json())["detail"]
        async with http.get(base) as response:
            assert await response.json() == ["urllc"]

        async with http.delete(f"{base}/urllc") as response:
            assert response.status == 204
        await wait_for(lambda: "2-000002" not in app.targets, what="the targets withdrawn")
