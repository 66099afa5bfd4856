"""Synthetic traces: a network of sites with three cells each, reporting every second.

For tests, benchmarks and trying the replay tools. Written straight with ``TraceWriter`` (no
simulator, no runtime), so an hour of 21 cells takes about a second to make. Loads follow slow waves with a hotspot that visits one cell per site
in turn, so a load balancer has work to do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ric._proto.e2.v1 import common_pb2, e2_pb2, kpm_pb2, rc_pb2
from ric.e2.convert import cell_id_to_proto
from ric.ids import CellId
from ric.model import KPM_OID, RC_OID
from ric.trace import Direction, NodeSetup, TraceHeader, TraceWriter

PLMN = common_pb2.PlmnId(mcc="001", mnc="01")
CELL_METRICS = ("RRU.PrbUsedDl", "RRU.PrbAvailDl", "DRB.UEThpDl")
UE_METRICS = ("RRU.PrbUsedDl", "DRB.UEThpDl", "L1M.RSRP")
START_US = 1_700_000_000 * 1_000_000


def cell_text(node: int, sector: int) -> str:
    """The text id of a sector's cell."""
    return f"001-01-{node * 4096 + sector + 1}"


def _cgi(node: int, sector: int) -> common_pb2.NrCgi:
    return cell_id_to_proto(CellId.parse(cell_text(node, sector)))


def setup(node: int, sites: int) -> e2_pb2.E2SetupRequest:
    """A node with three cells; each cell's neighbours are its site's other cells and the
    same sector of the next site."""
    nxt = node % sites + 1
    cells = [
        common_pb2.Cell(
            cgi=_cgi(node, k),
            pci=3 * node + k,
            band=78,
            bandwidth_prbs=106,
            active=True,
            tx_power_dbm=43.0,
            neighbours=[_cgi(node, j) for j in range(3) if j != k] + [_cgi(nxt, k)],
        )
        for k in range(3)
    ]
    kpm = e2_pb2.RanFunction(
        ran_function_id=2,
        oid=KPM_OID,
        short_name="ORAN-E2SM-KPM",
        revision=3,
        kpm=kpm_pb2.KpmFunctionDefinition(
            report_styles=[
                kpm_pb2.KpmReportStyle(style=1, name="node", metric_names=CELL_METRICS),
                kpm_pb2.KpmReportStyle(style=5, name="UEs", metric_names=UE_METRICS),
            ],
            min_reporting_period_ms=100,
        ),
    )
    rc = e2_pb2.RanFunction(
        ran_function_id=3,
        oid=RC_OID,
        short_name="ORAN-E2SM-RC",
        revision=1,
        rc=rc_pb2.RcFunctionDefinition(
            control_styles=[
                rc_pb2.RcControlStyle(
                    style=3, name="mobility", actions=[rc_pb2.RcControlAction(action_id=1)]
                )
            ]
        ),
    )
    return e2_pb2.E2SetupRequest(
        transaction_id=1,
        node_id=common_pb2.GlobalNodeId(plmn=PLMN, node_id=node, type=common_pb2.NODE_TYPE_GNB),
        vendor="Synthetic",
        software_version="1",
        ran_functions=[kpm, rc],
        cells=cells,
    )


def write_network_trace(
    path: Path, *, sites: int = 7, seconds: int = 3600, ues_per_cell: int = 2, seed: int = 1
) -> Path:
    """Write a trace of ``sites`` x 3 cells reporting cell and UE rows every second."""
    rng = np.random.default_rng(seed)
    nodes = list(range(1, sites + 1))
    header = TraceHeader(
        start_unix_us=START_US,
        source="tests (synthetic network)",
        nodes=tuple(NodeSetup(f"gnb-001-01-{n}", setup(n, sites)) for n in nodes),
    )
    ue_ids = {
        (n, k): [str((n * 3 + k) * 100 + u) for u in range(ues_per_cell)]
        for n in nodes
        for k in range(3)
    }
    base = rng.uniform(0.2, 0.5, size=(sites, 3))
    with TraceWriter(path, header) as writer:
        for second in range(1, seconds + 1):
            hot = (second // 120) % 3  # the hotspot moves to another sector every 2 minutes
            for i, n in enumerate(nodes):
                wave = 0.15 * np.sin(second / 300.0 + i)
                load = np.clip(base[i] + wave + rng.normal(0.0, 0.02, 3), 0.0, 1.0)
                load[hot] = min(1.0, 0.92 + rng.normal(0.0, 0.02))
                batch = e2_pb2.IndicationBatch()
                start_ms = START_US // 1000 + (second - 1) * 1000
                cell = batch.indications.add(ran_function_id=2, action_id=1)
                cell.kpm.collection_start_unix_ms = start_ms
                cell.kpm.granularity_period_ms = 1000
                m = cell.kpm.matrix
                m.entity_kind = kpm_pb2.ENTITY_KIND_CELL
                m.metric_names.extend(CELL_METRICS)
                m.entity_ids.extend(cell_text(n, k) for k in range(3))
                values = np.column_stack([load * 106, np.full(3, 106.0), 20000 * (1 - load)])
                m.values.extend(values.ravel().tolist())
                ues = batch.indications.add(ran_function_id=2, action_id=2)
                ues.kpm.collection_start_unix_ms = start_ms
                ues.kpm.granularity_period_ms = 1000
                u = ues.kpm.matrix
                u.entity_kind = kpm_pb2.ENTITY_KIND_UE
                u.metric_names.extend(UE_METRICS)
                rows = []
                for k in range(3):
                    for ue in ue_ids[(n, k)]:
                        u.entity_ids.append(ue)
                        u.entity_cells.append(cell_text(n, k))
                        rows.append(
                            (load[k] * 106 / ues_per_cell, 5000.0, -80.0 - rng.uniform(0, 30))
                        )
                u.values.extend(np.asarray(rows).ravel().tolist())
                writer.add(
                    second * 1_000_000,
                    f"gnb-001-01-{n}",
                    Direction.NODE_TO_RIC,
                    e2_pb2.NodeMessage(indications=batch).SerializeToString(),
                )
    return path
