"""The runtime's A1 service: policy types and policies in the SDL, delivery to xApps, and the
enforcement status they report.

Everything lives in the SDL namespace ``ric.a1``, so with a persistent backend (SQLite,
Redis) types, policies and statuses survive a runtime restart::

    type/<type id>                      the PolicyTypeObject
    policy/<type id>/<policy id>        the policy object
    status/<type id>/<policy id>/<xapp> what that xApp last reported (cleared on every change)
    notify/<type id>/<policy id>        the policy's notificationDestination, if it has one

Delivery follows the store, not the API call: the service watches its namespace, so a change
made by another replica on a shared (Redis) store reaches this runtime's xApps too. An xApp
instance that starts gets every current policy of its types as ``created`` instead
(``snapshot``), which covers whatever changed while it was down or restarting.

Status notifications follow the store too: a status written or cleared (an xApp reports, the
policy is replaced, an xApp restarts) and an xApp that stops or fails make the service
recompute the policy's status, and when it differs from the one last notified it is queued
for the policy's ``notificationDestination`` (``ric.a1.notify``).
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ric.a1.notify import Notifier, check_destination
from ric.a1.policy import (
    PolicyError,
    PolicyEvent,
    PolicyKind,
    PolicyStatus,
    PolicyType,
    check_id,
)
from ric.a1.workers import ValidationPool
from ric.config import A1Settings
from ric.errors import PluginError
from ric.sdl import Change, Namespace, SdlBackend
from ric.sensors import SensorSet
from ric.types import Sensor

if TYPE_CHECKING:
    from ric.host import XAppHost
    from ric.xapp import XApp

__all__ = ["NAMESPACE", "A1Service"]

log = logging.getLogger(__name__)

NAMESPACE = "ric.a1"
_RETRIES = 5


def _iso(unix_s: float) -> str:
    stamp = datetime.datetime.fromtimestamp(unix_s, datetime.UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class A1Service:
    """Policy types and policies of one runtime (see the module docstring).

    ``hosts`` returns the loaded xApp hosts (delivery goes to those whose class declares the
    policy's type); ``now`` is Unix time for the status timestamps. Errors are PolicyError
    with the HTTP status to answer. Schema checks and policy validation run in worker
    processes with a budget (``settings``, ``ric.a1.workers``); ``aclose`` stops them.
    Status notifications are counted on ``sensor``; when it is the runtime's SensorSet, the
    service also listens there for xApps that stop (their policies are no longer enforced).
    """

    def __init__(
        self,
        sdl: SdlBackend,
        hosts: Callable[[], Sequence[XAppHost]],
        now: Callable[[], float],
        settings: A1Settings | None = None,
        sensor: Sensor | None = None,
    ) -> None:
        self.store = Namespace(sdl, NAMESPACE)
        self.workers = ValidationPool(settings)
        self.notifier = Notifier(settings or A1Settings(), sensor)
        """Sends policy status notifications (``ric.a1.notify``)."""
        if isinstance(sensor, SensorSet):
            sensor.add(_XAppStates(self))
        self._hosts = hosts
        self._now = now
        self._declared: dict[str, tuple[PolicyType, list[str]]] = {}
        """Types declared by loaded xApps: the type and the xApps that declared it."""
        self._registered: set[str] = set()
        self._tg: asyncio.TaskGroup | None = None
        self._unwatch: Callable[[], None] | None = None
        self._known: dict[str, Any] = {}
        """The policies as last delivered, by store key (tells created from updated)."""
        self._pending: collections.deque[str] = collections.deque()
        self._consumer: asyncio.Task[None] | None = None
        self._ready = False
        self._checks: dict[tuple[str, str], None] = {}
        """Policies whose status may have changed, in order, each once."""
        self._checker: asyncio.Task[None] | None = None
        self._notified: dict[tuple[str, str], dict[str, Any]] = {}
        """The status last notified (or current when the destination was set), by policy."""

    # -- types ---------------------------------------------------------------------------

    async def type_ids(self) -> list[str]:
        """The ids of the policy types, sorted."""
        return [k.removeprefix("type/") for k in await self.store.keys("type/")]

    async def get_type(self, type_id: str) -> dict[str, Any]:
        """The PolicyTypeObject of ``type_id``; PolicyError 404 if there is none."""
        check_id("policy type id", type_id)
        found = await self.store.get(f"type/{type_id}")
        if found is None:
            raise PolicyError(404, f"there is no policy type {type_id!r}")
        return dict(found)

    async def put_type(self, type_id: str, body: object) -> bool:
        """Create or replace ``type_id`` from an A1 PolicyTypeObject; whether it was created.

        A changed schema is refused (409) when an existing policy of the type does not
        satisfy it, or when a loaded xApp declares the type differently.
        """
        new = await self.workers.policy_type(type_id, body)
        declared = self._declared.get(type_id)
        if declared is not None and declared[0].to_json() != new.to_json():
            raise PolicyError(
                409,
                f"policy type {type_id!r} is declared by xApp {', '.join(declared[1])}; its "
                "definition changes with the xApp, not over A1",
            )
        return await self._store_type(new, lambda detail: PolicyError(409, detail))

    async def _store_type(self, new: PolicyType, refuse: Callable[[str], Exception]) -> bool:
        key, definition = f"type/{new.id}", new.to_json()
        for _ in range(_RETRIES):
            old = await self.store.get(key)
            if old is None:
                if await self.store.set_if_not_exists(key, definition):
                    return True
                continue
            if old == definition:
                return False
            refused = await self.workers.first_refused(
                f"the policies of type {new.id!r} against its new schema",
                new.schema,
                await self._policies_of(new.id),
            )
            if refused is not None:
                policy_id, first = refused
                raise refuse(
                    f"policy type {new.id!r}: the new schema refuses existing policy "
                    f"{policy_id!r} ({first.field or 'the policy object'}: {first.reason}); "
                    "change or delete that policy first"
                )
            if await self.store.set_if(key, old, definition):
                log.info("policy type %s replaced", new.id)
                return False
        raise PolicyError(409, f"policy type {new.id!r} changed while it was written; try again")

    async def delete_type(self, type_id: str) -> None:
        """Delete ``type_id``; 404 if unknown, 409 if it has policies or an xApp declares it."""
        old = await self.get_type(type_id)
        declared = self._declared.get(type_id)
        if declared is not None:
            raise PolicyError(
                409,
                f"policy type {type_id!r} is declared by loaded xApp {', '.join(declared[1])} "
                "and cannot be deleted while it runs",
            )
        policies = await self.store.keys(f"policy/{type_id}/")
        if policies:
            ids = [k.rsplit("/", 1)[1] for k in policies]
            shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
            raise PolicyError(
                409,
                f"policy type {type_id!r} still has {len(ids)} policies ({shown}); delete them "
                "first",
            )
        if not await self.store.delete_if(f"type/{type_id}", old):
            raise PolicyError(409, f"policy type {type_id!r} changed while it was deleted")

    # -- xApp-declared types -------------------------------------------------------------

    @staticmethod
    def check_declaration(cls: type[XApp], source: str) -> None:
        """PluginError naming ``source`` unless ``cls.policy_types`` is a list of PolicyType
        with distinct ids and, when there are any, ``on_policy`` is overridden and async."""
        from ric.xapp import XApp

        declared = cls.policy_types
        if isinstance(declared, str | bytes) or not isinstance(declared, list | tuple):
            raise PluginError(source, "policy_types must be a list of ric.PolicyType")
        seen: set[str] = set()
        for i, item in enumerate(declared):
            if not isinstance(item, PolicyType):
                raise PluginError(
                    source, f"policy_types[{i}] is {type(item).__name__}, not ric.PolicyType"
                )
            if item.id in seen:
                raise PluginError(source, f"policy_types declares {item.id!r} twice")
            seen.add(item.id)
        if not inspect.iscoroutinefunction(cls.on_policy):
            raise PluginError(source, "on_policy must be an async method (async def on_policy)")
        if declared and cls.on_policy is XApp.on_policy:
            raise PluginError(source, "declares policy_types but does not override on_policy")

    async def register(self, cls: type[XApp], source: str) -> None:
        """Register the policy types ``cls`` declares; PluginError naming ``source`` when a
        type conflicts with another loaded xApp's, or when a stored type of the same id has
        a different schema that an existing policy does not satisfy (otherwise the xApp's
        definition replaces the stored one)."""
        for declared_type in cls.policy_types:
            other = self._declared.get(declared_type.id)
            if other is not None and other[0].to_json() != declared_type.to_json():
                raise PluginError(
                    source,
                    f"declares policy type {declared_type.id!r} differently from xApp "
                    f"{', '.join(other[1])}",
                )
        for declared_type in cls.policy_types:
            await self._store_type(
                declared_type,
                lambda detail: PluginError(source, f"cannot declare it: {detail}"),
            )
            entry = self._declared.setdefault(declared_type.id, (declared_type, []))
            if cls.name not in entry[1]:
                entry[1].append(cls.name)
        self._registered.add(cls.name)

    def unregister(self, name: str) -> None:
        """Forget the xApp ``name`` (a remote xApp gone for good): its types stay stored, and
        another xApp may declare them differently from now on."""
        self._registered.discard(name)
        for type_id, (_, names) in list(self._declared.items()):
            if name in names:
                names.remove(name)
                if not names:
                    del self._declared[type_id]

    def registered(self, name: str) -> bool:
        """Whether the xApp ``name``'s types are registered."""
        return name in self._registered

    # -- policies ------------------------------------------------------------------------

    async def _policies_of(self, type_id: str) -> dict[str, Any]:
        prefix = f"policy/{type_id}/"
        return {k.removeprefix(prefix): v for k, v in (await self.store.items(prefix)).items()}

    async def policy_ids(self, type_id: str) -> list[str]:
        """The ids of the policies of ``type_id``, sorted; 404 if the type is unknown."""
        await self.get_type(type_id)
        prefix = f"policy/{type_id}/"
        return [k.removeprefix(prefix) for k in await self.store.keys(prefix)]

    async def get_policy(self, type_id: str, policy_id: str) -> Any:
        """The policy object; 404 naming the type or the policy if unknown."""
        await self.get_type(type_id)
        check_id("policy id", policy_id)
        found = await self.store.get(f"policy/{type_id}/{policy_id}")
        if found is None:
            raise PolicyError(404, f"policy type {type_id!r} has no policy {policy_id!r}")
        return found

    async def put_policy(
        self, type_id: str, policy_id: str, body: object, destination: str | None = None
    ) -> bool:
        """Create or update a policy after validating it against its type's schema; whether
        it was created. An invalid policy is refused (400 naming the fields) and changes
        nothing. The xApps that handle the type are told (see ``start``; not when nothing
        changed). ``destination`` is where its status changes are notified (checked against
        ``[a1] notify_hosts``, 400 otherwise); a PUT without one stops the notifications.

        A policy id is unique in the RIC, not only in its type: an id that exists under
        another type is refused (400), as the O-RAN SC A1 simulator of A1-P v2 does."""
        definition = await self.get_type(type_id)
        check_id("policy id", policy_id)
        if destination is not None:
            check_destination(destination, self.notifier.allowed)
        for other in await self.type_ids():  # a few types, where policies may be thousands
            if other != type_id and await self.store.get(f"policy/{other}/{policy_id}") is not None:
                raise PolicyError(
                    400,
                    f"policy id {policy_id!r} exists already under policy type {other!r}; a "
                    "policy id is unique in the RIC (delete that policy first, or pick another "
                    "id)",
                    title="Policy id in use",
                )
        if not isinstance(body, Mapping):
            raise PolicyError(400, f"policy {policy_id!r}: a policy is a JSON object")
        errors = await self.workers.validate(
            f"policy {policy_id!r} of type {type_id!r}", definition["policySchema"], body
        )
        if errors:
            first = errors[0]
            raise PolicyError(
                400,
                f"policy {policy_id!r} does not satisfy the schema of policy type {type_id!r}: "
                f"{first.field or 'the policy object'}: {first.reason}",
                errors,
                title="Invalid policy",
            )
        key = f"policy/{type_id}/{policy_id}"
        for _ in range(_RETRIES):
            old = await self.store.get(key)
            if old == body:
                await self._set_destination(type_id, policy_id, destination)
                return False
            await self._forget_statuses(type_id, policy_id)  # before the xApps can report anew
            if old is None:
                if await self.store.set_if_not_exists(key, body):
                    await self._recheck(type_id, policy_id, definition, body, None)
                    await self._set_destination(type_id, policy_id, destination)
                    return True
            elif await self.store.set_if(key, old, body):
                await self._recheck(type_id, policy_id, definition, body, old)
                await self._set_destination(type_id, policy_id, destination)
                return False
        raise PolicyError(409, f"policy {policy_id!r} changed while it was written; try again")

    async def _recheck(
        self,
        type_id: str,
        policy_id: str,
        checked_against: Any,
        body: Mapping[str, Any],
        previous: Any,
    ) -> None:
        """After a policy was written: if its type was deleted or changed meanwhile (by
        another request, or another replica) so that the policy no longer fits, put back what
        was there before and refuse (409); nothing is left that its type does not accept."""
        now = await self.store.get(f"type/{type_id}")
        if now == checked_against:
            return
        if now is not None and not await self.workers.validate(
            f"policy {policy_id!r} of type {type_id!r}", now["policySchema"], body
        ):
            return
        key = f"policy/{type_id}/{policy_id}"
        if previous is None:
            await self.store.delete_if(key, body)
        else:
            await self.store.set_if(key, body, previous)
        what = "was deleted" if now is None else "changed and no longer accepts it"
        raise PolicyError(
            409, f"policy type {type_id!r} {what} while policy {policy_id!r} was written; try again"
        )

    async def delete_policy(self, type_id: str, policy_id: str) -> None:
        """Delete a policy (404 if unknown) and tell the xApps that handle its type."""
        old = await self.get_policy(type_id, policy_id)
        if not await self.store.delete_if(f"policy/{type_id}/{policy_id}", old):
            raise PolicyError(409, f"policy {policy_id!r} changed while it was deleted; try again")
        await self._forget_statuses(type_id, policy_id)
        await self.store.delete(f"notify/{type_id}/{policy_id}")
        self._notified.pop((type_id, policy_id), None)

    async def _set_destination(self, type_id: str, policy_id: str, destination: str | None) -> None:
        """Keep (or drop) where the policy's status changes go. A new destination starts
        from the current status, so its first notification is a change, not the state at
        PUT; the same destination keeps what it was told (a replaced policy's status change
        is then notified)."""
        key = f"notify/{type_id}/{policy_id}"
        if destination is None:
            await self.store.delete(key)
            self._notified.pop((type_id, policy_id), None)
            return
        if await self.store.get(key) != destination:
            await self.store.set(key, destination)
            self._notified[(type_id, policy_id)] = await self.status(type_id, policy_id)
        self.status_may_change(type_id, policy_id)

    async def _forget_statuses(self, type_id: str, policy_id: str) -> None:
        stale = await self.store.keys(f"status/{type_id}/{policy_id}/")
        await self.store.delete(*stale)

    def handlers(self, type_id: str) -> list[XAppHost]:
        """The loaded xApp hosts whose class declares ``type_id``."""
        return [h for h in self._hosts() if type_id in h.policy_types]

    # -- delivery and status -------------------------------------------------------------

    async def start(self, tg: asyncio.TaskGroup) -> None:
        """Deliver every later change of a policy in the store to the xApps that handle its
        type, whoever made it (this runtime's API, or another replica on a shared store).
        Changes are delivered in order by one task at a time, made in ``tg`` when needed."""
        self._tg = tg
        self._unwatch = self.store.watch(self._on_change)  # first: nothing is missed
        self._known = await self.store.items("policy/")
        self._ready = True
        self.notifier.start(tg)
        self._spawn()

    def close(self) -> None:
        """Stop delivering changes and notifying (the runtime shuts down)."""
        self._ready = False
        unwatch, self._unwatch = self._unwatch, None
        if unwatch is not None:
            unwatch()
        self._checks.clear()
        self.notifier.close()

    async def aclose(self) -> None:
        """Stop delivering changes and stop the validation workers."""
        self.close()
        await self.workers.aclose()

    @property
    def delivering(self) -> bool:
        """Whether changes wait to be delivered to the xApps."""
        return bool(self._pending) or self._consumer is not None

    def _on_change(self, change: Change) -> None:
        if change.key.startswith("policy/") and change.op in ("set", "delete"):
            self._pending.append(change.key)
            self._spawn()
        elif change.key.startswith("status/"):
            _, type_id, rest = change.key.split("/", 2)
            self.status_may_change(type_id, rest.rsplit("/", 1)[0])

    def status_may_change(self, type_id: str, policy_id: str) -> None:
        """Recompute the policy's status soon, and notify it if it changed."""
        if not self._ready or self._tg is None:
            return
        self._checks[(type_id, policy_id)] = None
        if self._checker is None:
            try:
                self._checker = self._tg.create_task(self._check(), name="a1:status")
            except RuntimeError:  # the task group is shutting down: nobody to notify
                self._checks.clear()

    def xapp_state(self, xapp: str, state: str) -> None:
        """An xApp changed state: when it stopped or failed, its policies' statuses change."""
        if state not in ("stopped", "failed"):
            return
        for host in self._hosts():
            if host.name == xapp:
                for type_id in host.policy_types:
                    for key in self._known:
                        if key.startswith(f"policy/{type_id}/"):
                            self.status_may_change(type_id, key.rsplit("/", 1)[1])

    async def _check(self) -> None:
        try:
            while self._checks:
                type_id, policy_id = next(iter(self._checks))
                del self._checks[(type_id, policy_id)]
                try:
                    await self._notify_if_changed(type_id, policy_id)
                except PolicyError:  # deleted meanwhile: nothing to tell
                    self._notified.pop((type_id, policy_id), None)
                except Exception:  # the store failed: this change goes untold
                    log.exception("A1: cannot check the status of %s/%s", type_id, policy_id)
        finally:
            self._checker = None

    async def _notify_if_changed(self, type_id: str, policy_id: str) -> None:
        destination = await self.store.get(f"notify/{type_id}/{policy_id}")
        if not isinstance(destination, str):
            return
        status = await self.status(type_id, policy_id)
        if self._notified.get((type_id, policy_id)) != status:
            self._notified[(type_id, policy_id)] = status
            self.notifier.submit(destination, status)

    def _spawn(self) -> None:
        if self._consumer is None and self._pending and self._ready and self._tg is not None:
            try:
                self._consumer = self._tg.create_task(self._deliver(), name="a1:delivery")
            except RuntimeError:  # the task group is shutting down: nobody to deliver to
                self._pending.clear()

    async def _deliver(self) -> None:
        try:
            while self._pending:
                key = self._pending.popleft()
                try:
                    await self._deliver_one(key)
                except Exception:  # the store failed: this change is lost for running xApps
                    log.exception("A1: cannot deliver the change of %s to the xApps", key)
        finally:
            self._consumer = None

    async def _deliver_one(self, key: str) -> None:
        _, type_id, policy_id = key.split("/", 2)
        body = await self.store.get(key)
        old = self._known.get(key)
        if body == old:
            return
        kind: PolicyKind
        if body is None:
            kind, body = "deleted", self._known.pop(key)
        else:
            kind = "created" if old is None else "updated"
            self._known[key] = body
        event = PolicyEvent(type_id, policy_id, kind, body)
        for host in self.handlers(type_id):
            host.policy(event)

    async def snapshot(self, xapp: str, type_ids: Sequence[str]) -> list[PolicyEvent]:
        """Every current policy of ``type_ids`` as a ``created`` event, for an xApp instance
        that (re)starts; what ``xapp`` reported before is forgotten (the new instance has
        not enforced anything yet)."""
        events = []
        for type_id in sorted(type_ids):
            for policy_id, body in (await self._policies_of(type_id)).items():
                await self.store.delete(f"status/{type_id}/{policy_id}/{xapp}")
                events.append(PolicyEvent(type_id, policy_id, "created", body))
        return events

    async def report(self, xapp: str, type_id: str, policy_id: str, status: PolicyStatus) -> bool:
        """Record ``xapp``'s enforcement status of a policy; False (and nothing stored) when
        the policy no longer exists."""
        if await self.store.get(f"policy/{type_id}/{policy_id}") is None:
            log.info(
                "xApp %s reported on policy %s/%s, which no longer exists",
                xapp,
                type_id,
                policy_id,
                extra={"xapp": xapp},
            )
            return False
        record = {
            "enforced": status.enforced,
            "reason": status.reason,
            "cause": status.cause,
            "at": self._now(),
        }
        await self.store.set(f"status/{type_id}/{policy_id}/{xapp}", record)
        return True

    async def status(self, type_id: str, policy_id: str) -> dict[str, Any]:
        """The A1 PolicyStatusObject of a policy (404 if unknown): exactly ``enforceStatus``
        and, when NOT_ENFORCED, ``enforceReason``; who enforces it is ``status_detail``."""
        detail = await self.status_detail(type_id, policy_id)
        return {k: detail[k] for k in ("enforceStatus", "enforceReason") if k in detail}

    async def status_detail(self, type_id: str, policy_id: str) -> dict[str, Any]:
        """The policy's status as the runtime's own API shows it (404 if unknown).

        ``enforceStatus`` is ENFORCED when every loaded xApp that handles the type runs and
        reported it enforced; otherwise NOT_ENFORCED with ``enforceReason`` and a ``detail``
        naming the xApp (or saying that no xApp handles the type, one is stopped, or whom it
        waits for). ``xapps`` lists each handling xApp's state and report.
        """
        await self.get_policy(type_id, policy_id)
        prefix = f"status/{type_id}/{policy_id}/"
        reports: Mapping[str, Any] = {
            k.removeprefix(prefix): v for k, v in (await self.store.items(prefix)).items()
        }
        xapps: list[dict[str, Any]] = []
        not_enforced: list[tuple[str, Mapping[str, Any]]] = []
        stopped: list[str] = []
        waiting: list[str] = []
        for host in self.handlers(type_id):
            report = reports.get(host.name)
            entry: dict[str, Any] = {"name": host.name, "state": host.state.value}
            if report is None:
                entry.update(enforced=None, reason="", at=None)
            else:
                entry.update(
                    enforced=bool(report["enforced"]),
                    reason=str(report.get("reason", "")),
                    at=_iso(float(report["at"])),
                )
            if host.state.value in ("stopped", "failed"):
                stopped.append(host.name)
            elif report is None:
                waiting.append(host.name)
            elif not report["enforced"]:
                not_enforced.append((host.name, report))
            xapps.append(entry)
        out: dict[str, Any] = {"enforceStatus": "NOT_ENFORCED"}
        if not xapps:
            out.update(
                enforceReason="OTHER_REASON",
                detail=f"no loaded xApp handles policy type {type_id!r}",
            )
        elif stopped:
            out.update(
                enforceReason="OTHER_REASON",
                detail=f"xApp {', '.join(stopped)} does not run",
            )
        elif not_enforced:
            name, report = not_enforced[0]
            why = report.get("reason") or "no reason given"
            out.update(
                enforceReason=report.get("cause", "OTHER_REASON"),
                detail=f"xApp {name} does not enforce it: {why}",
            )
        elif waiting:
            out.update(
                enforceReason="OTHER_REASON",
                detail=f"waiting for xApp {', '.join(waiting)} to report enforcement",
            )
        else:
            out = {
                "enforceStatus": "ENFORCED",
                "detail": f"enforced by xApp {', '.join(x['name'] for x in xapps)}",
            }
        return {"policyTypeId": type_id, "policyId": policy_id, **out, "xapps": xapps}


class _XAppStates(Sensor):
    """Tells the A1 service when an xApp changes state (through the runtime's sensors)."""

    def __init__(self, service: A1Service) -> None:
        self._service = service

    def xapp_state(self, xapp: str, state: str) -> None:
        self._service.xapp_state(xapp, state)
