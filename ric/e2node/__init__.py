"""The E2-node side of the contract, shared by every node this project plays.

- :mod:`ric.e2node.node`         :class:`E2Node`: subscription admission and deletion, control
                                 answers, resets, error indications, keep-alives
- :mod:`ric.e2node.association`  the E2SetupRequest from a node's description, the answer read
- :mod:`ric.e2node.endpoints`    :class:`Endpoints`: the RIC endpoints a node is given, failover

The simulator's :class:`~ric.sim.agent.NodeAgent` (a simulated world) and the trace player's
:class:`~ric.trace.player.PlayedNode` (a recorded trace) are data sources behind
:class:`E2Node`: they say what to report and how a control is applied; the rules are here.
"""

from ric.e2node.association import (
    NodeDescription,
    SetupAccepted,
    SetupFailed,
    SetupRefused,
    read_setup_answer,
    setup_request,
)
from ric.e2node.endpoints import Endpoints, parse_endpoint
from ric.e2node.node import (
    APPLIED_CONTROL_MEMORY,
    MAX_ACTIONS,
    Applied,
    ControlAnswer,
    E2Node,
    Refused,
    ReportAction,
    RequestKey,
)

__all__ = [
    "APPLIED_CONTROL_MEMORY",
    "MAX_ACTIONS",
    "Applied",
    "ControlAnswer",
    "E2Node",
    "Endpoints",
    "NodeDescription",
    "Refused",
    "ReportAction",
    "RequestKey",
    "SetupAccepted",
    "SetupFailed",
    "SetupRefused",
    "parse_endpoint",
    "read_setup_answer",
    "setup_request",
]
