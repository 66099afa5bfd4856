"""An E2 node written against nothing but the files in proto/ (run in a subprocess).

Usage: python contract_node.py GENERATED_DIR HOST:PORT

The test compiles proto/ into GENERATED_DIR with protoc; this script imports only that code
and grpc. It sets up, admits the first subscription, sends two indications, answers the first
control with an acknowledgement, and prints what it saw as one JSON line.
"""

import json
import queue
import sys

sys.path.insert(0, sys.argv[1])

import grpc
from ric.e2.v1 import common_pb2, e2_pb2, e2_pb2_grpc, kpm_pb2, rc_pb2

KPM_OID = "1.3.6.1.4.1.53148.1.2.2.2"
RC_OID = "1.3.6.1.4.1.53148.1.1.2.3"
plmn = common_pb2.PlmnId(mcc="001", mnc="01")
cells = [common_pb2.NrCgi(plmn=plmn, nr_cell_identity=n) for n in (101, 102)]

outbox: "queue.Queue[e2_pb2.NodeMessage | None]" = queue.Queue()
outbox.put(
    e2_pb2.NodeMessage(
        setup_request=e2_pb2.E2SetupRequest(
            transaction_id=1,
            node_id=common_pb2.GlobalNodeId(plmn=plmn, node_id=77, type=common_pb2.NODE_TYPE_GNB),
            vendor="contract",
            software_version="0",
            ran_functions=[
                e2_pb2.RanFunction(
                    ran_function_id=1,
                    oid=KPM_OID,
                    short_name="ORAN-E2SM-KPM",
                    kpm=kpm_pb2.KpmFunctionDefinition(
                        report_styles=[
                            kpm_pb2.KpmReportStyle(
                                style=1, metric_names=["RRU.PrbUsedDl", "RRU.PrbAvailDl"]
                            )
                        ]
                    ),
                ),
                e2_pb2.RanFunction(
                    ran_function_id=2,
                    oid=RC_OID,
                    short_name="ORAN-E2SM-RC",
                    rc=rc_pb2.RcFunctionDefinition(
                        control_styles=[
                            rc_pb2.RcControlStyle(
                                style=3, actions=[rc_pb2.RcControlAction(action_id=1)]
                            )
                        ]
                    ),
                ),
            ],
            cells=[common_pb2.Cell(cgi=c, bandwidth_prbs=106, active=True) for c in cells],
        )
    )
)
seen: dict = {}
with grpc.insecure_channel(sys.argv[2]) as channel:
    responses = e2_pb2_grpc.E2TerminationStub(channel).Connect(iter(outbox.get, None), timeout=20)
    for msg in responses:
        kind = msg.WhichOneof("message")
        if kind == "setup_response":
            seen["accepted"] = list(msg.setup_response.accepted_ran_function_ids)
        elif kind == "subscription_request":
            req = msg.subscription_request
            action = req.actions[0]
            seen["subscription"] = {
                "period_ms": req.kpm_trigger.reporting_period_ms,
                "metrics": list(action.kpm.metric_names),
                "style": action.kpm.report_style,
            }
            outbox.put(
                e2_pb2.NodeMessage(
                    subscription_response=e2_pb2.SubscriptionResponse(
                        request_id=req.request_id,
                        ran_function_id=req.ran_function_id,
                        admitted_action_ids=[1],
                    )
                )
            )
            names = list(action.kpm.metric_names)
            batch = e2_pb2.IndicationBatch()
            for seq in range(2):
                ind = batch.indications.add(
                    request_id=req.request_id, ran_function_id=1, action_id=1, sequence_number=seq
                )
                ind.kpm.granularity_period_ms = 1000
                m = ind.kpm.matrix
                m.entity_kind = kpm_pb2.ENTITY_KIND_CELL
                m.metric_names.extend(names)
                m.entity_ids.extend(["001-01-101", "001-01-102"])
                m.values.extend([90.0 + seq, 100.0, 10.0, 100.0])
            outbox.put(e2_pb2.NodeMessage(indications=batch))
        elif kind == "control_request":
            ctl = msg.control_request
            seen["control"] = {
                "style": ctl.header.style,
                "action": ctl.header.action_id,
                "ue": ctl.header.ue.ue_id,
                "target_nci": ctl.message.handover.target_cell.nr_cell_identity,
            }
            outbox.put(
                e2_pb2.NodeMessage(
                    control_acknowledge=e2_pb2.ControlAcknowledge(
                        request_id=ctl.request_id,
                        ran_function_id=ctl.ran_function_id,
                        outcome="done",
                    )
                )
            )
            outbox.put(None)  # half-close: the RIC ends the stream after the acknowledgement
print(json.dumps(seen))
