"""Tests of the vendor profiles in ric.sim.profiles."""

from __future__ import annotations

from ric._proto.e2.v1 import e2_pb2
from ric.model import CCC_OID, KPM_OID, RC_OID
from ric.sim import VENDOR_PROFILES
from ric.sim.metrics import CELL_METRICS, UE_METRICS, UE_NEIGHBOUR_METRICS, UE_SNAPSHOT_METRICS


def _functions(name: str) -> tuple[e2_pb2.RanFunction, e2_pb2.RanFunction]:
    kpm, rc, *_ = VENDOR_PROFILES[name].ran_functions()
    return kpm, rc


def _ccc(name: str) -> dict[str, set[str]] | None:
    """The CCC function's writable attributes by structure, or None when there is none."""
    functions = VENDOR_PROFILES[name].ran_functions()
    ccc = [f for f in functions if f.oid == CCC_OID]
    if not ccc:
        return None
    [fn] = ccc
    assert (fn.short_name, list(fn.ccc.control_styles)) == ("ORAN-E2SM-CCC", [2])
    return {s.name: set(s.attributes) for s in fn.ccc.cell_structures}


def _rc_actions(fn: e2_pb2.RanFunction) -> set[tuple[int, int]]:
    return {(s.style, a.action_id) for s in fn.rc.control_styles for a in s.actions}


def test_acme_offers_kpm_styles_1_to_5_and_handover_and_slice_quota() -> None:
    """Acme advertises KPM (id 2) styles 1-5 and RC (id 3) handover 3/1 and slice quota 2/6."""
    kpm, rc = _functions("acme")
    assert (kpm.ran_function_id, kpm.oid, kpm.short_name) == (2, KPM_OID, "ORAN-E2SM-KPM")
    assert [s.style for s in kpm.kpm.report_styles] == [1, 2, 3, 4, 5]
    assert (rc.ran_function_id, rc.oid, rc.short_name) == (3, RC_OID, "ORAN-E2SM-RC")
    assert _rc_actions(rc) == {(3, 1), (2, 6)}


def test_globex_and_initech_offer_less() -> None:
    """Globex has KPM style 1 and slice quota only; Initech KPM style 1 and cell state only."""
    g_kpm, g_rc = _functions("globex")
    i_kpm, i_rc = _functions("initech")
    assert [s.style for s in g_kpm.kpm.report_styles] == [1]
    assert _rc_actions(g_rc) == {(2, 6)}
    assert [s.style for s in i_kpm.kpm.report_styles] == [1]
    assert _rc_actions(i_rc) == {(100, 1)}
    assert "DRB.RlcSduDelayDl" not in i_kpm.kpm.report_styles[0].metric_names
    assert "RRU.PrbUsedUl" not in g_kpm.kpm.report_styles[0].metric_names


def test_vendors_differ_in_identity() -> None:
    """Every profile has its own vendor string and software version."""
    vendors = {p.vendor for p in VENDOR_PROFILES.values()}
    versions = {p.software_version for p in VENDOR_PROFILES.values()}
    assert len(vendors) == len(versions) == len(VENDOR_PROFILES) >= 3


def test_every_advertised_metric_is_computed_by_the_world() -> None:
    """Each metric a style advertises has a derivation at that style's entity level."""
    for profile in VENDOR_PROFILES.values():
        for style, names in profile.kpm_styles.items():
            table = CELL_METRICS if style == 1 else {**UE_METRICS, **UE_SNAPSHOT_METRICS}
            assert names, (profile.name, style)
            assert set(names) <= set(table), (profile.name, style)


def test_min_reporting_period_can_be_raised_to_the_tick() -> None:
    """The advertised minimum reporting period is the larger of the profile's and the caller's."""
    kpm, *_ = VENDOR_PROFILES["acme"].ran_functions(min_reporting_period_ms=100)
    assert kpm.kpm.min_reporting_period_ms == 100
    kpm, *_ = VENDOR_PROFILES["initech"].ran_functions(min_reporting_period_ms=100)
    assert kpm.kpm.min_reporting_period_ms == 500


def test_only_ue_level_profiles_report_neighbour_measurements() -> None:
    """Acme and umbrella report each UE's three strongest neighbours in styles 2-5; globex
    and initech, with no UE-level style, report none."""
    assert UE_NEIGHBOUR_METRICS == (
        "L1M.RSRP.Nbr1",
        "L1M.Nbr1.Nci",
        "L1M.RSRP.Nbr2",
        "L1M.Nbr2.Nci",
        "L1M.RSRP.Nbr3",
        "L1M.Nbr3.Nci",
    )
    for name, profile in VENDOR_PROFILES.items():
        advertised = {m for names in profile.kpm_styles.values() for m in names}
        has = set(UE_NEIGHBOUR_METRICS) <= advertised
        assert has == (name in ("acme", "umbrella")), name
        assert not advertised & set(UE_NEIGHBOUR_METRICS) or has, name


def test_ccc_functions_advertise_what_each_vendor_lets_the_ric_write() -> None:
    """Acme lets the RIC write CIOs only; initech and umbrella also the administrative and
    energy-saving state; globex has no CCC function. Function ids do not clash."""
    relation = {"O-NRCellRelation": {"cellIndividualOffset"}}
    full = {
        **relation,
        "O-NRCellDU": {"administrativeState"},
        "O-CESManagementFunction": {"energySavingControl"},
    }
    assert _ccc("acme") == relation
    assert _ccc("initech") == _ccc("umbrella") == full
    assert _ccc("globex") is None
    for profile in VENDOR_PROFILES.values():
        ids = [f.ran_function_id for f in profile.ran_functions()]
        assert len(ids) == len(set(ids)), profile.name
