"""What the benchmark's E2 nodes say: node shapes, setup requests and measurement matrices.

The load generators and the raw gRPC baselines both build their messages here, so the runtime
and its baselines see exactly the same bytes. Everything is built once per subscription and
serialised once; a generator's hot loop only writes prepared bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from ric._proto.e2.v1 import common_pb2, e2_pb2, kpm_pb2, rc_pb2
from ric.e2.convert import cell_id_to_proto
from ric.ids import CellId
from ric.model import KPM_OID, RC_OID
from ric.sim.metrics import CELL_METRICS as SIM_CELL_METRICS

__all__ = [
    "CELL_METRICS",
    "KPM_FUNCTION_ID",
    "RC_FUNCTION_ID",
    "UE_METRICS",
    "NodeShape",
    "ack",
    "cell_text",
    "indication_batch",
    "matrix_values",
    "setup_request",
    "subscription_response",
]

PLMN: Final = ("001", "01")
KPM_FUNCTION_ID: Final = 2
RC_FUNCTION_ID: Final = 3

CELL_METRICS: Final = tuple(SIM_CELL_METRICS)
"""The ten cell-level TS 28.552 measurements the simulator computes (a gNB's KPM style 1)."""

UE_METRICS: Final = (
    "DRB.UEThpDl",
    "DRB.UEThpUl",
    "RRU.PrbUsedDl",
    "RRU.PrbUsedUl",
    "DRB.RlcSduDelayDl",
    "L1M.RSRP",
    "L1M.SINR",
    "DRB.RlcSduVolumeDl",
    "DRB.RlcSduVolumeUl",
    "DRB.AirIfDelayDl",
)
"""Ten UE-level measurements (KPM style 5 rows)."""


@dataclass(frozen=True)
class NodeShape:
    """How big one benchmark node is: cells, UEs per cell, and what it offers."""

    cells: int = 3
    ues_per_cell: int = 100
    cell_metrics: tuple[str, ...] = CELL_METRICS
    ue_metrics: tuple[str, ...] = UE_METRICS
    min_period_ms: int = 1

    @property
    def ues(self) -> int:
        """UEs on the node."""
        return self.cells * self.ues_per_cell

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return {
            "cells": self.cells,
            "ues_per_cell": self.ues_per_cell,
            "cell_metrics": len(self.cell_metrics),
            "ue_metrics": len(self.ue_metrics),
        }


def nci(node_id: int, k: int) -> int:
    """The NR cell identity of cell ``k`` of node ``node_id`` (as the simulator numbers them)."""
    return node_id * 4096 + k + 1


def cell_text(node_id: int, k: int) -> str:
    """The text id of cell ``k`` of node ``node_id``."""
    return f"{PLMN[0]}-{PLMN[1]}-{nci(node_id, k)}"


def _cgi(node_id: int, k: int) -> common_pb2.NrCgi:
    return cell_id_to_proto(CellId.parse(cell_text(node_id, k)))


def setup_request(node_id: int, shape: NodeShape, keep_alive_ms: int = 5000) -> bytes:
    """The serialised E2SetupRequest of benchmark node ``node_id``: KPM styles 1 and 5, RC
    handover, ``shape.cells`` cells."""
    kpm = e2_pb2.RanFunction(
        ran_function_id=KPM_FUNCTION_ID,
        oid=KPM_OID,
        short_name="ORAN-E2SM-KPM",
        revision=3,
        kpm=kpm_pb2.KpmFunctionDefinition(
            report_styles=[
                kpm_pb2.KpmReportStyle(
                    style=1, name="E2 Node Measurement", metric_names=shape.cell_metrics
                ),
                kpm_pb2.KpmReportStyle(
                    style=5,
                    name="E2 Node Measurement for multiple UEs",
                    metric_names=shape.ue_metrics,
                ),
            ],
            min_reporting_period_ms=shape.min_period_ms,
        ),
    )
    rc = e2_pb2.RanFunction(
        ran_function_id=RC_FUNCTION_ID,
        oid=RC_OID,
        short_name="ORAN-E2SM-RC",
        revision=1,
        rc=rc_pb2.RcFunctionDefinition(
            control_styles=[
                rc_pb2.RcControlStyle(
                    style=3,
                    name="Connected Mode Mobility Control",
                    actions=[rc_pb2.RcControlAction(action_id=1, name="Handover")],
                )
            ]
        ),
    )
    cells = [
        common_pb2.Cell(
            cgi=_cgi(node_id, k),
            pci=(3 * node_id + k) % 1008,
            band=78,
            bandwidth_prbs=106,
            subcarrier_spacing_khz=30,
            neighbours=[_cgi(node_id, j) for j in range(shape.cells) if j != k],
            active=True,
            tx_power_dbm=43.0,
        )
        for k in range(shape.cells)
    ]
    msg = e2_pb2.NodeMessage(
        setup_request=e2_pb2.E2SetupRequest(
            transaction_id=1,
            node_id=common_pb2.GlobalNodeId(
                plmn=common_pb2.PlmnId(mcc=PLMN[0], mnc=PLMN[1]),
                node_id=node_id,
                type=common_pb2.NODE_TYPE_GNB,
            ),
            vendor="bench",
            software_version="ric-bench 1",
            ran_functions=[kpm, rc],
            cells=cells,
            keep_alive_interval_ms=keep_alive_ms,
        )
    )
    return msg.SerializeToString()


@dataclass
class Subscribed:
    """One admitted subscription of a benchmark node: what its indications carry."""

    request_id: tuple[int, int]
    ran_function_id: int
    style: int
    metrics: tuple[str, ...]
    period_ms: int
    per_slice: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def subscription_response(req: e2_pb2.SubscriptionRequest) -> tuple[bytes, Subscribed]:
    """Admit every action of ``req``; the serialised response and what was subscribed."""
    action = req.actions[0]
    sub = Subscribed(
        request_id=(req.request_id.requestor, req.request_id.instance),
        ran_function_id=req.ran_function_id,
        style=action.kpm.report_style,
        metrics=tuple(action.kpm.metric_names),
        period_ms=req.kpm_trigger.reporting_period_ms,
        per_slice=action.kpm.per_slice,
    )
    msg = e2_pb2.NodeMessage(
        subscription_response=e2_pb2.SubscriptionResponse(
            request_id=req.request_id,
            ran_function_id=req.ran_function_id,
            admitted_action_ids=[a.action_id for a in req.actions],
        )
    )
    return msg.SerializeToString(), sub


def matrix_values(rows: int, metrics: int, seed: int = 0) -> list[float]:
    """Plausible measurement values (a few NaN), row-major, as the wire carries them."""
    rng = np.random.default_rng(seed)
    values = rng.gamma(2.0, 500.0, size=(rows, metrics))
    values[rng.random(size=values.shape) < 0.02] = np.nan
    out: list[float] = values.ravel().tolist()
    return out


def _fill(
    ind: e2_pb2.Indication,
    node_id: int,
    shape: NodeShape,
    sub: Subscribed,
    ue_ids: Sequence[str] | None,
) -> None:
    ind.request_id.requestor, ind.request_id.instance = sub.request_id
    ind.ran_function_id = sub.ran_function_id
    ind.action_id = 1
    ind.type = e2_pb2.INDICATION_TYPE_REPORT
    ind.kpm.collection_start_unix_ms = 1_700_000_000_000
    ind.kpm.granularity_period_ms = sub.period_ms
    m = ind.kpm.matrix
    m.metric_names.extend(sub.metrics)
    if sub.style == 1:
        m.entity_kind = kpm_pb2.ENTITY_KIND_CELL
        m.entity_ids.extend(cell_text(node_id, k) for k in range(shape.cells))
        rows = shape.cells
    else:
        m.entity_kind = kpm_pb2.ENTITY_KIND_UE
        ids = list(ue_ids) if ue_ids is not None else [str(u + 1) for u in range(shape.ues)]
        per_cell = max(1, shape.ues_per_cell)
        m.entity_ids.extend(ids)
        m.entity_cells.extend(
            cell_text(node_id, min(i // per_cell, shape.cells - 1)) for i in range(len(ids))
        )
        rows = len(ids)
    m.values.extend(matrix_values(rows, len(sub.metrics), seed=node_id))


def indication_batch(
    node_id: int,
    shape: NodeShape,
    subs: Sequence[Subscribed],
    ue_ids: Sequence[str] | None = None,
) -> e2_pb2.NodeMessage:
    """One NodeMessage with an IndicationBatch: one indication per subscription, together, as
    a node sends the reports due in one period. ``ue_ids`` overrides the UE rows."""
    batch = e2_pb2.IndicationBatch()
    for sub in subs:
        _fill(batch.indications.add(), node_id, shape, sub, ue_ids)
    return e2_pb2.NodeMessage(indications=batch)


def ack(req: e2_pb2.ControlRequest) -> bytes:
    """The serialised ControlAcknowledge of ``req``."""
    return e2_pb2.NodeMessage(
        control_acknowledge=e2_pb2.ControlAcknowledge(
            request_id=req.request_id, ran_function_id=req.ran_function_id, outcome="done"
        )
    ).SerializeToString()
