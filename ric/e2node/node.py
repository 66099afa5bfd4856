"""The E2 procedures of a node, once, for every kind of node this project plays.

:class:`E2Node` answers what the RIC sends after setup: subscription admission and deletion,
controls, resets, error indications and anything unexpected, and numbers the node's
keep-alives and transactions. What the node measures and what a control does are not its
business: a subclass (the simulated world's :class:`~ric.sim.agent.NodeAgent`, the recorded
trace's :class:`~ric.trace.player.PlayedNode`) fills in the few abstract methods, the way an
httpx transport fills in ``handle_request``.

The admission rules, in the order they are checked (the first that fails refuses the whole
subscription with its cause):

1. the RAN function is the node's KPM function (``ric_request_ran_function_id_invalid``);
2. the request id is not in use (``ric_request_duplicate_action``);
3. there is a KPM event trigger with a reporting period (``protocol_semantic_error``), and
   the period is not below the node's minimum (``ric_request_function_resource_limit``);
4. there is at least one action and at most :data:`MAX_ACTIONS`
   (``ric_request_action_not_supported``, ``ric_request_excessive_actions``);
5. no action id repeats (``ric_request_duplicate_action``).

Then each action is admitted or not on its own: a KPM REPORT action, ``per_slice`` only with
report style 1, and whatever the subclass checks (style, measurements, scope). A subscription
with no admitted action is refused with the first action's cause.

Controls are applied at most once per ``control_id`` (the contract's ControlRequest): the node
remembers how it answered the last :data:`APPLIED_CONTROL_MEMORY` ids, across reconnects, and
answers a repeated id the same way under the new request id without applying it again. A
request without an id (from a RIC older than the field) is applied every time. A control
whose ``term`` is below the highest the node was sent in this association (a deposed
replica of the RIC) is refused with MISC_NOT_AUTHORIZED, neither applied nor remembered.
"""

from __future__ import annotations

import collections
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Generic, Literal, Protocol, TypeVar

from ric._proto.e2.v1 import e2_pb2, kpm_pb2
from ric.e2.convert import cause_to_proto
from ric.model import Cause, CauseCode

__all__ = [
    "APPLIED_CONTROL_MEMORY",
    "MAX_ACTIONS",
    "Applied",
    "ControlAnswer",
    "E2Node",
    "Refused",
    "ReportAction",
    "RequestKey",
]

MAX_ACTIONS: Final = 16
"""Most actions one subscription may carry (E2AP maxofRICactionID is 16)."""

APPLIED_CONTROL_MEMORY: Final = 10_000
"""Control ids a node remembers answering (the oldest forgotten first). A RIC re-sends a
control within its control timeout plus a replica takeover, seconds; 10,000 ids cover that at
up to 1,000 controls per second to one node, for about 3 MB per node when full (an id and a
50-character outcome each, measured with tracemalloc)."""

RequestKey = tuple[int, int]
"""A RIC request id as (requestor, instance)."""

ControlAnswer = Literal["acknowledged", "failed", "unanswered"]
"""How a node answered a control."""


class ReportAction(Protocol):
    """What the core reads of a source's admitted action."""

    @property
    def metrics(self) -> tuple[str, ...]:
        """The measurements the action reports (those asked for that the node has)."""
        ...


ActionT = TypeVar("ActionT", bound=ReportAction)
SubT = TypeVar("SubT")


class Refused(Exception):
    """A request the node turns down, with the E2 cause it answers."""

    def __init__(self, code: CauseCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail

    @property
    def cause(self) -> Cause:
        """The cause the node answers."""
        return Cause(self.code, self.detail)


@dataclass(frozen=True, slots=True)
class _Answered:
    """How a node answered one control id: what it repeats for the same id."""

    answer: ControlAnswer
    outcome: str = ""
    cause: Cause | None = None


@dataclass(frozen=True, slots=True)
class Applied:
    """A control the node carried out: what it did (free text for the RIC's logs), and what
    it announces afterwards (sent after the acknowledgement, e.g. a configuration update)."""

    outcome: str
    then: Sequence[e2_pb2.NodeMessage] = ()


def _cause_name(code: int) -> str:
    try:
        return CauseCode(code).name
    except ValueError:
        return f"cause {code}"


class E2Node(ABC, Generic[ActionT, SubT]):
    """The E2 procedure logic of one node; a subclass is the data source behind it.

    ``name`` appears in causes and log lines; ``log`` is the logger of the subclass's module,
    so an operator filters by kind of node. ``subscriptions`` are the live ones by request
    id; a subclass reads them to report, and they end with the association
    (:meth:`drop_subscriptions`).
    """

    def __init__(
        self, name: str, log: logging.Logger, *, applied_memory: int = APPLIED_CONTROL_MEMORY
    ) -> None:
        if applied_memory < 1:
            raise ValueError(f"applied_memory must be at least 1 control id, got {applied_memory}")
        self.name = name
        self.log = log
        self.subscriptions: dict[RequestKey, SubT] = {}
        self.repeated_controls = 0
        """Controls answered from memory: their control_id was already applied."""
        self.applied_controls = 0
        """Controls with a control_id handed to :meth:`apply_control` (each id once: compare
        with :attr:`applied_ids` to check that no id was applied twice)."""
        self._transaction = 0
        self._keep_alive_seq = 0
        self._applied: collections.OrderedDict[str, _Answered] = collections.OrderedDict()
        self._applied_memory = applied_memory
        self.term = 0
        """The highest term a control was sent with in this association."""
        self.stale_controls = 0
        """Controls refused for a term below :attr:`term`."""

    # ---------------------------------------------------------------- the source's part

    @property
    @abstractmethod
    def kpm_function_id(self) -> int | None:
        """The RAN function id subscriptions must name (None: the node has no KPM function)."""

    @abstractmethod
    def is_rc_function(self, ran_function_id: int) -> bool:
        """Whether controls may name ``ran_function_id``."""

    @property
    def min_period_ms(self) -> int:
        """The shortest reporting period the node accepts."""
        return 1

    @abstractmethod
    def admit_action(self, defn: kpm_pb2.KpmActionDefinition, action_id: int) -> ActionT:
        """The node's form of one KPM REPORT action, or :class:`Refused`. Measurements the
        node does not report are left out of it, and named by :meth:`skipped`."""

    @abstractmethod
    def not_reported(self, action: ActionT, metric: str) -> str:
        """Why ``action`` leaves out ``metric``, which its definition asked for."""

    @abstractmethod
    def subscribe(
        self, key: RequestKey, ran_function_id: int, period_ms: int, actions: list[ActionT]
    ) -> SubT:
        """Start reporting an admitted subscription (the core keeps it in ``subscriptions``)."""

    @abstractmethod
    def apply_control(self, req: e2_pb2.ControlRequest) -> Applied | None:
        """Carry out a control to the node's RC function: what was done, :class:`Refused`, or
        None to leave it unanswered."""

    def on_subscription(
        self,
        req: e2_pb2.SubscriptionRequest,
        actions: Sequence[ActionT],
        skipped: Sequence[str],
        refused: Refused | None,
    ) -> None:
        """Told of every subscription request and how it was answered."""

    def on_control(
        self, req: e2_pb2.ControlRequest, answer: ControlAnswer, refused: Refused | None
    ) -> None:
        """Told of every control request and how it was answered."""

    # ---------------------------------------------------------------- procedures

    def answer(self, msg: e2_pb2.RicMessage) -> list[e2_pb2.NodeMessage]:
        """Handle one message from the RIC after setup; returns what the node sends back."""
        kind = msg.WhichOneof("message")
        if kind == "subscription_request":
            return [self._on_subscription(msg.subscription_request)]
        if kind == "subscription_delete_request":
            return [self._on_subscription_delete(msg.subscription_delete_request)]
        if kind == "control_request":
            return self._on_control(msg.control_request)
        if kind == "reset_request":
            dropped = len(self.subscriptions)
            self.drop_subscriptions()
            self.log.info("%s: reset by the RIC, %d subscriptions dropped", self.name, dropped)
            return [
                e2_pb2.NodeMessage(
                    reset_response=e2_pb2.ResetResponse(
                        transaction_id=msg.reset_request.transaction_id
                    )
                )
            ]
        if kind == "error_indication":
            err = msg.error_indication
            self.log.warning(
                "%s: error indication from the RIC: %s %s (request %d/%d)",
                self.name,
                _cause_name(err.cause.code),
                err.cause.detail,
                err.request_id.requestor,
                err.request_id.instance,
            )
            return []
        if kind in (
            "keep_alive",
            "configuration_update_acknowledge",
            "service_update_acknowledge",
            "reset_response",
        ):
            self.log.debug("%s: %s from the RIC", self.name, kind)
            return []
        self.log.warning("%s: unexpected %s from the RIC", self.name, kind)
        return [
            e2_pb2.NodeMessage(
                error_indication=e2_pb2.ErrorIndication(
                    cause=cause_to_proto(
                        Cause(
                            CauseCode.PROTOCOL_MESSAGE_NOT_COMPATIBLE_WITH_RECEIVER_STATE,
                            f"{kind} is not expected after E2 setup",
                        )
                    )
                )
            )
        ]

    def drop_subscriptions(self) -> None:
        """End every subscription (a reset, or the association ended)."""
        self.subscriptions.clear()

    def new_association(self) -> None:
        """A RIC accepted the node's setup: subscriptions start afresh, and so does the term.
        The owner that set the node up holds it now; a term remembered from an earlier
        association must not refuse it (after a Redis restart without persistence a RIC's
        terms start again at 1). The ids applied are remembered across associations."""
        self.drop_subscriptions()
        self.term = 0

    def next_transaction(self) -> int:
        """The next transaction id of a node-initiated procedure (setup, updates), 1..255."""
        self._transaction = (self._transaction + 1) % 256
        return self._transaction

    def keep_alive(self) -> e2_pb2.NodeMessage:
        """The node's next keep-alive: numbered on from the last one, stamped with Unix time."""
        self._keep_alive_seq += 1
        return e2_pb2.NodeMessage(
            keep_alive=e2_pb2.KeepAlive(
                sequence=self._keep_alive_seq, sent_at_unix_ms=int(time.time() * 1000)
            )
        )

    # ---------------------------------------------------------------- subscriptions

    def _on_subscription(self, req: e2_pb2.SubscriptionRequest) -> e2_pb2.NodeMessage:
        key = (req.request_id.requestor, req.request_id.instance)
        response = e2_pb2.SubscriptionResponse(
            request_id=req.request_id, ran_function_id=req.ran_function_id
        )
        actions: list[ActionT] = []
        skipped: list[str] = []
        try:
            self._check_subscription(req, key)
            refusals: list[tuple[int, Refused]] = []
            for action in req.actions:
                try:
                    admitted = self._admit_action(action)
                except Refused as exc:
                    refusals.append((action.action_id, exc))
                    response.not_admitted_actions.add(
                        action_id=action.action_id, cause=cause_to_proto(exc.cause)
                    )
                    continue
                actions.append(admitted)
                response.admitted_action_ids.append(action.action_id)
                for name in dict.fromkeys(action.kpm.metric_names):
                    if name in admitted.metrics:
                        continue
                    skipped.append(name)
                    why = self.not_reported(admitted, name)
                    response.not_admitted_measurements.add(
                        action_id=action.action_id,
                        metric_name=name,
                        cause=cause_to_proto(
                            Cause(CauseCode.RIC_REQUEST_MEASUREMENT_NOT_SUPPORTED, why)
                        ),
                    )
            if not actions:
                detail = "; ".join(f"action {a}: {r.detail}" for a, r in refusals)
                raise Refused(refusals[0][1].code, f"no action admitted ({detail})")
        except Refused as exc:
            self.log.info("%s: subscription %s refused: %s", self.name, key, exc.detail)
            self.on_subscription(req, (), (), exc)
            return e2_pb2.NodeMessage(
                subscription_failure=e2_pb2.SubscriptionFailure(
                    request_id=req.request_id,
                    ran_function_id=req.ran_function_id,
                    cause=cause_to_proto(exc.cause),
                )
            )
        period_ms = req.kpm_trigger.reporting_period_ms
        self.subscriptions[key] = self.subscribe(key, req.ran_function_id, period_ms, actions)
        self.on_subscription(req, actions, skipped, None)
        return e2_pb2.NodeMessage(subscription_response=response)

    def _check_subscription(self, req: e2_pb2.SubscriptionRequest, key: RequestKey) -> None:
        kpm = self.kpm_function_id
        if kpm is None or req.ran_function_id != kpm:
            raise Refused(
                CauseCode.RIC_REQUEST_RAN_FUNCTION_ID_INVALID,
                f"RAN function {req.ran_function_id} is not the KPM function of {self.name}"
                + ("" if kpm is None else f" ({kpm})"),
            )
        if key in self.subscriptions:
            raise Refused(
                CauseCode.RIC_REQUEST_DUPLICATE_ACTION, f"request id {key[0]}/{key[1]} is in use"
            )
        period_ms = req.kpm_trigger.reporting_period_ms
        if req.WhichOneof("event_trigger") != "kpm_trigger" or period_ms <= 0:
            raise Refused(CauseCode.PROTOCOL_SEMANTIC_ERROR, "no KPM reporting period")
        if period_ms < self.min_period_ms:
            raise Refused(
                CauseCode.RIC_REQUEST_FUNCTION_RESOURCE_LIMIT,
                f"reporting period {period_ms} ms is below the minimum of {self.name} "
                f"({self.min_period_ms} ms)",
            )
        if not req.actions:
            raise Refused(CauseCode.RIC_REQUEST_ACTION_NOT_SUPPORTED, "no actions")
        if len(req.actions) > MAX_ACTIONS:
            raise Refused(
                CauseCode.RIC_REQUEST_EXCESSIVE_ACTIONS,
                f"{len(req.actions)} actions, at most {MAX_ACTIONS}",
            )
        ids = [a.action_id for a in req.actions]
        if len(set(ids)) != len(ids):
            raise Refused(CauseCode.RIC_REQUEST_DUPLICATE_ACTION, f"action ids repeat: {ids}")

    def _admit_action(self, action: e2_pb2.Action) -> ActionT:
        if action.type != e2_pb2.ACTION_TYPE_REPORT:
            raise Refused(
                CauseCode.RIC_REQUEST_ACTION_NOT_SUPPORTED, "only REPORT actions are supported"
            )
        if action.WhichOneof("definition") != "kpm":
            raise Refused(CauseCode.RIC_REQUEST_ACTION_NOT_SUPPORTED, "no KPM action definition")
        if action.kpm.per_slice and action.kpm.report_style != 1:
            raise Refused(
                CauseCode.RIC_REQUEST_ACTION_NOT_SUPPORTED, "per_slice is for report style 1 only"
            )
        return self.admit_action(action.kpm, action.action_id)

    def _on_subscription_delete(self, req: e2_pb2.SubscriptionDeleteRequest) -> e2_pb2.NodeMessage:
        key = (req.request_id.requestor, req.request_id.instance)
        # Subscriptions are only made on the node's KPM function (rule 1).
        if key not in self.subscriptions or req.ran_function_id != self.kpm_function_id:
            cause = Cause(
                CauseCode.RIC_REQUEST_ID_UNKNOWN,
                f"no subscription {key[0]}/{key[1]} on RAN function {req.ran_function_id}",
            )
            return e2_pb2.NodeMessage(
                subscription_delete_failure=e2_pb2.SubscriptionDeleteFailure(
                    request_id=req.request_id,
                    ran_function_id=req.ran_function_id,
                    cause=cause_to_proto(cause),
                )
            )
        del self.subscriptions[key]
        return e2_pb2.NodeMessage(
            subscription_delete_response=e2_pb2.SubscriptionDeleteResponse(
                request_id=req.request_id, ran_function_id=req.ran_function_id
            )
        )

    # ---------------------------------------------------------------- control

    def _on_control(self, req: e2_pb2.ControlRequest) -> list[e2_pb2.NodeMessage]:
        control_id = req.control_id
        if control_id:
            before = self._applied.get(control_id)
            if before is not None:
                return self._repeat(req, before)
        if req.term < self.term:
            # A deposed owner: refused, and its id not remembered, so the new owner's re-send
            # of the same control is still applied.
            self.stale_controls += 1
            stale = Refused(
                CauseCode.MISC_NOT_AUTHORIZED,
                f"term {req.term} is below term {self.term} of a later owner of {self.name}",
            )
            return self._control_failed(req, stale, "refused")
        self.term = req.term
        try:
            if not self.is_rc_function(req.ran_function_id):
                raise Refused(
                    CauseCode.RIC_REQUEST_RAN_FUNCTION_ID_INVALID,
                    f"RAN function {req.ran_function_id} is not an RC function of {self.name}",
                )
            if control_id:
                self.applied_controls += 1
            applied = self.apply_control(req)
        except Refused as exc:
            failure = self._control_failed(req, exc, "failed")
            if control_id:
                self._remember(control_id, _Answered("failed", cause=exc.cause))
            return failure
        if applied is None:
            self.on_control(req, "unanswered", None)
            if control_id:
                self._remember(control_id, _Answered("unanswered"))
            return []
        self.log.info("%s: control applied: %s", self.name, applied.outcome)
        self.on_control(req, "acknowledged", None)
        if control_id:
            self._remember(control_id, _Answered("acknowledged", outcome=applied.outcome))
        out = []
        if req.ack_requested:
            out.append(
                e2_pb2.NodeMessage(
                    control_acknowledge=e2_pb2.ControlAcknowledge(
                        request_id=req.request_id,
                        ran_function_id=req.ran_function_id,
                        outcome=applied.outcome,
                    )
                )
            )
        # What the control changed is announced after it is acknowledged.
        out.extend(applied.then)
        return out

    @property
    def applied_ids(self) -> frozenset[str]:
        """The control ids this node remembers answering (at most its ``applied_memory``)."""
        return frozenset(self._applied)

    def _control_failed(
        self, req: e2_pb2.ControlRequest, refused: Refused, verb: str
    ) -> list[e2_pb2.NodeMessage]:
        """Log and report a control that is not applied; the ControlFailure to answer with."""
        self.log.info(
            "%s: control %d/%d %s: %s",
            self.name,
            req.request_id.requestor,
            req.request_id.instance,
            verb,
            refused.detail,
        )
        self.on_control(req, "failed", refused)
        return [
            e2_pb2.NodeMessage(
                control_failure=e2_pb2.ControlFailure(
                    request_id=req.request_id,
                    ran_function_id=req.ran_function_id,
                    cause=cause_to_proto(refused.cause),
                )
            )
        ]

    def _remember(self, control_id: str, answered: _Answered) -> None:
        self._applied[control_id] = answered
        if len(self._applied) > self._applied_memory:
            self._applied.popitem(last=False)

    def _repeat(self, req: e2_pb2.ControlRequest, before: _Answered) -> list[e2_pb2.NodeMessage]:
        """The answer to a control id already applied: the first answer again, for the new
        request id; nothing is applied and nothing announced again."""
        self.repeated_controls += 1
        self.log.info(
            "%s: control %s (request %d/%d) was already applied; answering %s again",
            self.name,
            req.control_id,
            req.request_id.requestor,
            req.request_id.instance,
            before.answer,
        )
        if before.cause is not None:
            return [
                e2_pb2.NodeMessage(
                    control_failure=e2_pb2.ControlFailure(
                        request_id=req.request_id,
                        ran_function_id=req.ran_function_id,
                        cause=cause_to_proto(before.cause),
                    )
                )
            ]
        if before.answer == "unanswered" or not req.ack_requested:
            return []
        return [
            e2_pb2.NodeMessage(
                control_acknowledge=e2_pb2.ControlAcknowledge(
                    request_id=req.request_id,
                    ran_function_id=req.ran_function_id,
                    outcome=before.outcome,
                )
            )
        ]
