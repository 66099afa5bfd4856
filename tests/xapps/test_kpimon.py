"""kpimon keeps each cell's KPIs in operator units, merging its two reports."""

from __future__ import annotations

import math

from kpimon import KpiMonitor

from ric.ids import CellId, NodeId, Plmn
from ric.model import CellInfo, NodeInfo
from ric.report import EntityKind
from ric.testing import make_report, start_xapp


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
