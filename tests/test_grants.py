"""xApp permissions and package pinning: out-of-grant subscriptions and controls are refused
and audited; unpinned or changed packages are refused at load when pinning is on."""

from __future__ import annotations

import pytest

from ric import (
    AdministrativeState,
    CellAdministration,
    CellIndividualOffset,
    CellState,
    ConfigError,
    Handover,
    KpmReport,
    OutcomeKind,
    PluginError,
    Report,
    XApp,
)
from ric._proto.e2.v1 import e2_pb2
from ric.config import GrantSettings
from ric.grants import Grant, Grants
from ric.plugins import Plugin, check_pin, load, pin_of
from ric.xapp import SubscriptionStatus
from tests.conftest import RuntimeFactory, wait_for
from tests.e2node import ScriptedNode, rc_function


class Greedy(XApp):
    """Asks for more than an operator would grant it."""

    name = "greedy"
    reports = [Report("RRU.PrbUsedDl", period_ms=100), Report("L1M.RSRP", per="ue", period_ms=100)]
    controls = [Handover, CellState]
    statuses: list[SubscriptionStatus]

    async def on_start(self) -> None:
        self.statuses = []

    async def on_report(self, report: KpmReport) -> None:
        pass

    async def on_subscription(self, status: SubscriptionStatus) -> None:
        self.statuses.append(status)


def test_grant_rules() -> None:
    """A grant allows exactly the listed names, row kinds, controls, nodes, cells and slices."""
    grant = Grant(
        reports=("RRU.*",), per=("cell",), controls=("handover",), nodes=("gnb-001-01-*",)
    )
    assert grant.refuse_report(Report("RRU.PrbUsedDl"), "gnb-001-01-1") is None
    assert grant.refuse_report(Report("L1M.RSRP"), "gnb-001-01-1") == "L1M.RSRP is not in its grant"
    assert (
        grant.refuse_report(Report("RRU.PrbUsedDl", per="ue"), "gnb-001-01-1")
        == "reports per ue are not in its grant"
    )
    assert (
        grant.refuse_report(Report("RRU.PrbUsedDl"), "gnb-310-410-1")
        == "node gnb-310-410-1 is not in its grant"
    )
    assert grant.refuse_control(Handover("1", "001-01-1", "001-01-2"), "gnb-001-01-1") is None
    assert (
        grant.refuse_control(CellState("001-01-1", active=False), "gnb-001-01-1")
        == "cell_state controls are not in its grant"
    )
    assert Grants(required=True).of("anyone") == Grant(reports=(), per=(), controls=())
    assert Grants().of("anyone") is None


def test_ccc_controls_are_granted_by_their_kind() -> None:
    """The CCC controls are granted by kind like the others, and a runtime grant may list
    them: a CIO granted alone does not grant taking a cell out of service."""
    settings = GrantSettings.model_validate({"controls": ["cell_individual_offset"]})
    grant = Grant(controls=tuple(settings.controls))
    assert grant.refuse_control(CellIndividualOffset("001-01-1", "001-01-2", 4), "gnb-1") is None
    off = CellAdministration("001-01-1", administrative_state=AdministrativeState.LOCKED)
    assert grant.refuse_control(off, "gnb-1") == "cell_administration controls are not in its grant"


async def test_out_of_grant_subscription_and_control_are_refused_and_audited(
    make_runtime: RuntimeFactory,
) -> None:
    """Under a grant of cell PRB reports and handovers only: the UE report is refused on the
    node (status with the reason, audit record), the cell report is requested; a cell-state
    control ends not_permitted without reaching the node, and is audited."""
    runtime, _ = await make_runtime(
        Greedy,
        **{
            "xapps.grants": {
                "greedy": {"reports": ["RRU.*"], "per": ["cell"], "controls": ["handover"]}
            }
        },
    )
    async with ScriptedNode(f"127.0.0.1:{runtime.port}") as node:
        await node.setup(functions=None)
        [req] = await node.accept_subscriptions(1)
        assert req.actions[0].kpm.report_style == 1
        app = runtime.host("greedy").instance
        assert isinstance(app, Greedy)
        await wait_for(lambda: any(s.state == "refused" for s in app.statuses), what="refusal")
        refused = next(s for s in app.statuses if s.state == "refused")
        assert refused.cause is not None
        assert refused.cause.code.name == "MISC_NOT_AUTHORIZED"
        assert "reports per ue are not in its grant" in refused.cause.detail
        outcome = await app.control(CellState("001-01-11", active=False))
        assert outcome.kind is OutcomeKind.NOT_PERMITTED
        assert "cell_state controls are not in its grant" in outcome.detail
        await node.send(e2_pb2.NodeMessage(keep_alive=e2_pb2.KeepAlive(sequence=5)))
        assert (await node.recv()).WhichOneof("message") == "keep_alive"  # no control request came
    kinds = [(r["type"], r.get("outcome")) for r in runtime.audit.records]
    assert ("permission", None) in kinds
    assert ("control", "not_permitted") in kinds


async def test_required_grants_leave_an_ungranted_xapp_nothing(
    make_runtime: RuntimeFactory,
) -> None:
    """With grants required, an xApp without one gets no subscription and no control."""
    runtime, _ = await make_runtime(Greedy, **{"xapps.require_grants": True})
    async with ScriptedNode(f"127.0.0.1:{runtime.port}") as node:
        await node.setup(functions=[rc_function()], cells=[11, 12])
        app = runtime.host("greedy").instance
        assert isinstance(app, Greedy)
        await wait_for(lambda: len(app.statuses) == 2, what="both refused")
        assert {s.state for s in app.statuses} == {"refused"}
        outcome = await app.control(Handover("1", "001-01-11", "001-01-12"))
        assert outcome.kind is OutcomeKind.NOT_PERMITTED
    assert runtime.subscriptions.snapshot() == []


def test_pins() -> None:
    """An installed xApp loads when its pin matches, and is refused when the version or the
    hash differ, when it is unpinned under required pins, or when it has no distribution."""
    mlb = load("mlb")
    pin = pin_of(mlb)
    assert pin.startswith("ric-xapp-mlb==0.1.0 sha256:")
    check_pin(mlb, {"mlb": pin}, required=True)
    check_pin(mlb, {"mlb": "ric-xapp-mlb==0.1.0"}, required=True)
    with pytest.raises(
        PluginError, match=r"pinned to ric-xapp-mlb==9\.9 but ric-xapp-mlb==0\.1\.0 is installed"
    ):
        check_pin(mlb, {"mlb": "ric-xapp-mlb==9.9"}, required=False)
    with pytest.raises(PluginError, match="files differ from the pinned sha256"):
        check_pin(mlb, {"mlb": "ric-xapp-mlb==0.1.0 sha256:" + "0" * 64}, required=False)
    with pytest.raises(PluginError, match=r"is not pinned; add xapps.pins.mlb"):
        check_pin(mlb, {}, required=True)
    with pytest.raises(ConfigError, match=r"xapps\.pins\.mlb"):
        check_pin(mlb, {"mlb": "ric-xapp-mlb"}, required=False)
    local = Plugin(Greedy, "tests.test_grants:Greedy")
    with pytest.raises(PluginError, match="not from an installed distribution"):
        pin_of(local)
    with pytest.raises(PluginError, match="is not pinned"):
        check_pin(local, {}, required=True)
