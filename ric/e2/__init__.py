"""The E2 transport, for transport work: the door next to ``ric`` (xApps) and ``ric.testing``.

::

    E2Server          the grpc.aio termination, one Connect stream per node   (termination)
    E2Endpoint        what the bytes mean: setup, keep-alive, order, sensors  (endpoint)
    TerminationConfig the endpoint's limits and identity                      (endpoint)
    MemoryLink        the endpoint over an in-memory link, for the harness    (memory)
    NodeSession       one connected node: its identity and its outbound queue (session)
    CoreLogTap        gRPC core's TLS handshake failures, read from its log   (corelog)
    *_from_proto, *_to_proto, report_from_indication, control_request          (convert)

Protobuf types stay on this side: the conversion functions turn them into the domain
dataclasses an xApp sees (``ric.KpmReport``, ``ric.NodeInfo``, ``ric.Cause``) and back.
"""

from ric.e2.convert import (
    MAX_ABS_VALUE,
    ValuesReplaced,
    cause_from_proto,
    cause_to_proto,
    cell_from_proto,
    cell_id_from_proto,
    cell_id_to_proto,
    control_request,
    node_info_from_setup,
    ran_function_from_proto,
    replace_invalid,
    report_from_indication,
)
from ric.e2.corelog import CoreLogTap, parse_handshake_failure
from ric.e2.endpoint import E2Endpoint, E2Handler, TerminationConfig, parse_node_message
from ric.e2.memory import MemoryLink
from ric.e2.session import E2_REFUSAL_REASONS, VALUE_REPLACEMENT_REASONS, NodeSession
from ric.e2.termination import E2Server, transport_cap

__all__ = [
    "E2_REFUSAL_REASONS",
    "MAX_ABS_VALUE",
    "VALUE_REPLACEMENT_REASONS",
    "CoreLogTap",
    "E2Endpoint",
    "E2Handler",
    "E2Server",
    "MemoryLink",
    "NodeSession",
    "TerminationConfig",
    "ValuesReplaced",
    "cause_from_proto",
    "cause_to_proto",
    "cell_from_proto",
    "cell_id_from_proto",
    "cell_id_to_proto",
    "control_request",
    "node_info_from_setup",
    "parse_handshake_failure",
    "parse_node_message",
    "ran_function_from_proto",
    "replace_invalid",
    "report_from_indication",
    "transport_cap",
]
