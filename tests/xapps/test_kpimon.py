"""kpimon keeps each cell's and each slice's KPIs in operator units, exports them as metrics
and publishes them."""

from __future__ import annotations

import math

import pytest
from kpimon import KpiMonitor

from ric.ids import CellId, NodeId, Plmn
from ric.model import CellInfo, NodeInfo
from ric.report import EntityKind
from ric.testing import make_report, run_scenario, start_xapp
from ric.xapp import MAX_PUBLISH_BYTES


async def test_kpis_from_both_reports_in_operator_units() -> None:
    """PRB use becomes percent, kbit/s becomes Mbit/s, 0.1 ms becomes ms; a node without the
    delay report shows NaN delay and every other KPI."""
    app, _ = await start_xapp(KpiMonitor, {"print_every_s": 0})
    cells = ["001-01-1", "001-01-2"]
    main = {
        "RRU.PrbUsedDl": [53.0, 10.6],
        "RRU.PrbAvailDl": [106.0, 106.0],
        "DRB.UEThpDl": [12_000.0, 3_500.0],
        "DRB.UEThpUl": [2_000.0, 500.0],
        "RRC.ConnMean": [12.0, 3.0],
    }
    await app.on_report(make_report("gnb-001-01-1", EntityKind.CELL, main, cells))
    await app.on_report(
        make_report("gnb-001-01-1", EntityKind.CELL, {"DRB.RlcSduDelayDl": [25.0]}, cells[:1])
    )
    first, second = app.snapshot()
    assert (first.prb_util_pct, first.dl_mbps, first.ul_mbps, first.ues, first.delay_ms) == (
        50.0,
        12.0,
        2.0,
        12.0,
        2.5,
    )
    assert second.prb_util_pct == 10.0
    assert math.isnan(second.delay_ms)
    assert "PRB  50.0%" in first.line()


async def test_node_down_forgets_its_cells() -> None:
    """When a node goes down its cells leave the table."""
    app, _ = await start_xapp(KpiMonitor, {"print_every_s": 0})
    await app.on_report(
        make_report("gnb-001-01-1", EntityKind.CELL, {"RRU.PrbUsedDl": [1.0]}, ["001-01-1"])
    )
    cell = CellInfo(CellId(Plmn("001", "01"), 1), pci=1, band=78, bandwidth_prbs=106)
    await app.on_node_down(NodeInfo(NodeId(Plmn("001", "01"), 1), "v", "1", {}, {cell.id: cell}))
    assert app.snapshot() == []


async def test_slice_kpis_as_gauges_and_in_operator_units() -> None:
    """A per-slice report gives each (cell, slice) its KPIs in operator units and
    slice-labelled gauges in base units; a node without the delay shows NaN delay only."""
    app, ctx = await start_xapp(KpiMonitor, {"print_every_s": 0})
    slices = {
        "RRU.PrbUsedDl": [40.0, 5.0],
        "RRU.PrbTotDl": [37.7, 4.7],
        "DRB.UEThpDl": [3_000.0, 800.0],
        "RRC.ConnMean": [6.0, 2.0],
        "DRB.RlcSduDelayDl": [300.0, 12.0],
    }
    await app.on_report(
        make_report(
            "gnb-001-01-1",
            EntityKind.SLICE,
            slices,
            ["1-000001", "2-000002"],
            cells=["001-01-1", "001-01-1"],
        )
    )
    embb, urllc = app.slice_snapshot()
    assert (urllc.cell, urllc.slice, urllc.node) == ("001-01-1", "2-000002", "gnb-001-01-1")
    assert (urllc.prb_util_pct, urllc.dl_mbps, urllc.ues, urllc.delay_ms) == (4.7, 0.8, 2.0, 1.2)
    assert embb.delay_ms == 30.0 and "PRB  37.7%" in embb.line()
    labels = {"node": "gnb-001-01-1", "cell": "001-01-1", "slice": "2-000002"}
    metrics = ctx.metrics
    assert metrics.value("slice_prb_utilization_ratio", **labels) == pytest.approx(0.047)
    assert metrics.value("slice_dl_throughput_bytes_per_second", **labels) == 100_000
    assert metrics.value("slice_rrc_connections", **labels) == 2
    assert metrics.value("slice_rlc_delay_seconds", **labels) == pytest.approx(0.0012)
    assert metrics.value("slices") == 2 and metrics.value("cells") == 0
    no_delay = {k: v[:1] for k, v in slices.items() if k != "DRB.RlcSduDelayDl"}
    await app.on_report(
        make_report("gnb-001-01-3", EntityKind.SLICE, no_delay, ["1-000001"], cells=["001-01-9"])
    )
    assert math.isnan(app.slice_kpis("001-01-9", "1-000001").delay_ms)
    assert {"cell": "001-01-9", "node": "gnb-001-01-3", "slice": "1-000001"} not in (
        metrics.series("slice_rlc_delay_seconds")
    )


async def test_kpis_are_published_per_report_and_not_when_turned_off() -> None:
    """Each report's KPIs go to kpis/<node>/cells or kpis/<node>/slices as JSON in operator
    units (NaN as null); with publish off nothing is published."""
    app, ctx = await start_xapp(KpiMonitor, {"print_every_s": 0})
    cell = {"RRU.PrbUsedDl": [53.0], "RRU.PrbAvailDl": [106.0], "DRB.UEThpDl": [12_000.0]}
    await app.on_report(make_report("gnb-001-01-1", EntityKind.CELL, cell, ["001-01-1"]))
    per_slice = {"RRU.PrbTotDl": [10.0], "DRB.UEThpDl": [500.0], "RRC.ConnMean": [1.0]}
    await app.on_report(
        make_report("gnb-001-01-1", EntityKind.SLICE, per_slice, ["2-000002"], cells=["001-01-1"])
    )
    (cells_topic, cells), (slices_topic, slices) = ctx.published_json()
    assert cells_topic == "kpis/gnb-001-01-1/cells"
    assert cells["node"] == "gnb-001-01-1"
    assert cells["cells"]["001-01-1"]["prb_util_pct"] == 50.0
    assert cells["cells"]["001-01-1"]["dl_mbps"] == 12.0
    assert cells["cells"]["001-01-1"]["delay_ms"] is None
    assert slices_topic == "kpis/gnb-001-01-1/slices"
    assert slices["slices"] == [
        {
            "cell": "001-01-1",
            "slice": "2-000002",
            "prb_util_pct": 10.0,
            "dl_mbps": 0.5,
            "ues": 1.0,
            "delay_ms": None,
        }
    ]
    quiet, ctx2 = await start_xapp(KpiMonitor, {"print_every_s": 0, "publish": False})
    await quiet.on_report(make_report("gnb-001-01-1", EntityKind.CELL, cell, ["001-01-1"]))
    assert ctx2.published == []


async def test_node_down_forgets_its_slices_and_their_series() -> None:
    """When a node goes down the slices of its cells leave the table and the metrics."""
    app, ctx = await start_xapp(KpiMonitor, {"print_every_s": 0})
    await app.on_report(
        make_report(
            "gnb-001-01-1",
            EntityKind.SLICE,
            {"RRU.PrbTotDl": [10.0]},
            ["1-000001"],
            cells=["001-01-1"],
        )
    )
    cell = CellInfo(CellId(Plmn("001", "01"), 1), pci=1, band=78, bandwidth_prbs=106)
    await app.on_node_down(NodeInfo(NodeId(Plmn("001", "01"), 1), "v", "1", {}, {cell.id: cell}))
    assert app.slice_snapshot() == []
    assert ctx.metrics.series("slice_prb_utilization_ratio") == []
    assert ctx.metrics.value("slices") == 0


async def test_per_slice_kpis_from_the_simulated_network() -> None:
    """In the demo network every node answers the per-slice report (Initech without the
    delay): kpimon has KPIs for each of the 3 slices of each of the 9 cells."""
    result = await run_scenario(
        "seeds/demo.toml", [KpiMonitor], duration_s=5, xapp_config={"kpimon": {"print_every_s": 0}}
    )
    kpimon = result.xapps["kpimon"]
    assert isinstance(kpimon, KpiMonitor)
    table = kpimon.slice_snapshot()
    assert len(table) == 27 and result.metrics["kpimon"].value("slices") == 27
    shares: dict[str, float] = {}
    for k in table:
        shares[k.cell] = shares.get(k.cell, 0.0) + k.prb_util_pct
    for cell in kpimon.snapshot():  # the slices' PRB shares add up to the cell's use
        assert shares[cell.cell] == pytest.approx(cell.prb_util_pct, abs=0.5)


async def test_a_node_of_5000_cells_is_published_in_parts_within_the_limit() -> None:
    """A report of 5,000 cells is published as 10 messages of at most 500 cells, each within
    the bridge's size limit, together holding every cell once; nothing is refused."""
    app, ctx = await start_xapp(KpiMonitor, {"print_every_s": 0})
    cells = [f"001-01-{i}" for i in range(1, 5001)]
    columns = {
        "RRU.PrbUsedDl": [53.123456789] * 5000,
        "RRU.PrbAvailDl": [106.0] * 5000,
        "DRB.UEThpDl": [12_345.678901] * 5000,
        "DRB.UEThpUl": [2_345.678901] * 5000,
        "RRC.ConnMean": [12.5] * 5000,
    }
    await app.on_report(make_report("gnb-001-01-1", EntityKind.CELL, columns, cells))
    assert ctx.refused == []
    assert len(ctx.published) == 10
    assert all(len(payload) <= MAX_PUBLISH_BYTES for _, payload in ctx.published)
    seen: list[str] = []
    for n, (topic, body) in enumerate(ctx.published_json(), start=1):
        assert topic == "kpis/gnb-001-01-1/cells"
        assert (body["part"], body["parts"], len(body["cells"])) == (n, 10, 500)
        seen += body["cells"]
    assert sorted(seen) == sorted(cells)
    assert ctx.metrics.value("cells") == 5000
    assert app.kpis("001-01-5000").ues == 12.5


async def test_without_a_bridge_nothing_is_built_for_publishing() -> None:
    """When publish would send nothing (no MQTT bridge), kpimon builds no payload at all."""
    app, ctx = await start_xapp(KpiMonitor, {"print_every_s": 0})
    ctx.publishing = False
    cells = [f"001-01-{i}" for i in range(1, 5001)]
    report = make_report("gnb-001-01-1", EntityKind.CELL, {"RRC.ConnMean": [1.0] * 5000}, cells)
    await app.on_report(report)
    assert ctx.published == [] and ctx.refused == []
    assert len(app.snapshot()) == 5000
