"""A1 policies: the O-RAN A1-P interface of the near-RT RIC.

The non-RT RIC (or an operator with ``ric policy``) puts policy types, each with a JSON
Schema, and policies of those types over the A1-P REST API (``ric.a1.http``, on the
runtime's HTTP port). xApps declare the types they handle and receive the policies::

    class SliceSla(XApp):
        name = "slicesla"
        policy_types = [PolicyType("slice-sla", {"type": "object", ...}, name="Slice SLA")]

        async def on_policy(self, event: PolicyEvent) -> PolicyStatus | None:
            if event.kind == "deleted":
                self.targets.pop(event.policy_id, None)
                return None
            self.targets[event.policy_id] = event.body
            return PolicyStatus(enforced=True)

Layers: value objects and validation (``ric.a1.policy``), the runtime's service on the SDL
(``ric.a1.service``: ``runtime.a1``), the HTTP routes (``ric.a1.http``), and ``ric policy``
(``ric.a1.cli``).
"""

from ric.a1.policy import (
    ID_PATTERN,
    EnforceReason,
    FieldError,
    PolicyError,
    PolicyEvent,
    PolicyKind,
    PolicyStatus,
    PolicyType,
    check_id,
    check_schema,
    validate_policy,
)
from ric.a1.service import NAMESPACE, A1Service

__all__ = [
    "ID_PATTERN",
    "NAMESPACE",
    "A1Service",
    "EnforceReason",
    "FieldError",
    "PolicyError",
    "PolicyEvent",
    "PolicyKind",
    "PolicyStatus",
    "PolicyType",
    "check_id",
    "check_schema",
    "validate_policy",
]
