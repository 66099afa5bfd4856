"""A1 policies without HTTP: value objects and schema validation, the service on the SDL,
delivery to xApps (create, update, delete, restarts, runtime restarts) and their status."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ric import PluginError, PolicyEvent, PolicyStatus, PolicyType, XApp
from ric.a1 import A1Service, PolicyError, check_schema, validate_policy
from ric.config import load_config
from ric.plugins import Plugin
from ric.runtime import Runtime
from ric.sdl import Namespace, SdlBackend
from ric.sdl.memory import MemoryBackend
from ric.sdl.sqlite import SqliteBackend
from ric.testing import ManualClock, policy_event, start_xapp
from tests.conftest import wait_for

SLA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["sst", "max_delay_ms"],
    "additionalProperties": False,
    "properties": {
        "sst": {"type": "integer", "minimum": 1, "maximum": 255},
        "max_delay_ms": {"type": "number", "exclusiveMinimum": 0},
        "cells": {"type": "array", "items": {"type": "string", "pattern": "^[0-9-]+$"}},
    },
}
SLA = PolicyType("slice-sla", SLA_SCHEMA, name="Slice SLA", description="Delay per slice")
GOLD = {"sst": 1, "max_delay_ms": 10.0}


class Enforcer(XApp):
    """Enforces slice SLAs, except for slice 99, which it does not serve; crashes on sst 13."""

    name = "enforcer"
    policy_types: ClassVar = [SLA]
    events: ClassVar[list[PolicyEvent]] = []
    starts: ClassVar[list[int]] = []

    async def on_start(self) -> None:
        type(self).starts.append(len(type(self).events))

    async def on_policy(self, event: PolicyEvent) -> PolicyStatus | None:
        type(self).events.append(event)
        if event.body.get("sst") == 13 and event.kind != "deleted":
            raise RuntimeError("unlucky slice")
        if event.body.get("sst") == 99:
            return PolicyStatus(False, "slice 99 is not served here", "SCOPE_NOT_APPLICABLE")
        return PolicyStatus(True)


def enforcer(name: str = "enforcer", types: list[PolicyType] | None = None) -> type[Enforcer]:
    """A fresh Enforcer class with its own event list."""
    attrs = {"name": name, "policy_types": types or [SLA], "events": [], "starts": []}
    return type(f"Enforcer_{name}", (Enforcer,), attrs)


def runtime(
    *classes: type[XApp], sdl: SdlBackend | None = None, clock: ManualClock | None = None
) -> Runtime:
    """An in-memory runtime (no listening servers) with ``classes`` as xApps and quick
    restarts."""
    config = load_config(environ={}, overrides={"xapps.restart_min_s": 0.01})
    plugins = [Plugin(c, f"test:{c.__name__}") for c in classes]
    return Runtime(config, plugins, listen=False, sdl=sdl or MemoryBackend(), clock=clock)


def kinds(cls: type[Enforcer]) -> list[tuple[str, str]]:
    """(kind, policy id) of every event the xApp class received."""
    return [(e.kind, e.policy_id) for e in cls.events]


# -- value objects and validation ---------------------------------------------------------


def test_policy_type_checks_its_id_and_schema() -> None:
    """A bad id, a schema that is not a JSON Schema, or a non-object schema raise ValueError
    naming the problem."""
    with pytest.raises(ValueError, match="policy type id 'a/b' is not valid"):
        PolicyType("a/b", {"type": "object"})
    with pytest.raises(ValueError, match=r"not a valid JSON Schema: at /type: 'objekt' is not"):
        PolicyType("x", {"type": "objekt"})
    with pytest.raises(ValueError, match="must be a JSON Schema object, got an array"):
        PolicyType("x", [])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name must be a string"):
        PolicyType("x", {"type": "object"}, name=3)  # type: ignore[arg-type]


def test_schema_dialects_and_references() -> None:
    """Draft 7 and 2020-12 are accepted as declared; an unknown dialect, a remote reference
    or a dangling local one is refused with the reason."""
    assert check_schema({"$schema": "http://json-schema.org/draft-07/schema#"}).__name__ == (
        "Draft7Validator"
    )
    assert check_schema({"type": "object"}).__name__ == "Draft202012Validator"
    with pytest.raises(PolicyError, match="is not a dialect known here"):
        check_schema({"$schema": "http://example.com/my-dialect"})
    with pytest.raises(PolicyError, match="only references inside the schema"):
        check_schema({"$ref": "http://example.com/s.json"})
    with pytest.raises(PolicyError, match="which the schema does not have"):
        check_schema({"$ref": "#/$defs/missing"})
    assert check_schema({"$defs": {"a": {"type": "integer"}}, "$ref": "#/$defs/a"})


def test_policy_type_round_trips_through_the_a1_object() -> None:
    """to_json gives the A1 PolicyTypeObject and from_json reads it back; unknown members
    and a missing policySchema are refused with 400."""
    body = SLA.to_json()
    assert body == {
        "policySchema": SLA_SCHEMA,
        "name": "Slice SLA",
        "description": "Delay per slice",
    }
    assert PolicyType.from_json("slice-sla", body) == SLA
    with pytest.raises(PolicyError, match="unknown member") as info:
        PolicyType.from_json("t", {"policySchema": {}, "schema": {}})
    assert info.value.status == 400
    with pytest.raises(PolicyError, match="needs a policySchema"):
        PolicyType.from_json("t", {"name": "x"})
    with pytest.raises(PolicyError, match="a policy type is a JSON object, got a string"):
        PolicyType.from_json("t", "x")


def test_validation_names_each_failing_field() -> None:
    """validate_policy names nested fields, list items and missing required members."""
    errors = validate_policy(SLA_SCHEMA, {"sst": 300, "cells": ["1", "x"], "extra": 1})
    fields = {(e.field, e.pointer): e.reason for e in errors}
    assert fields[("max_delay_ms", "/max_delay_ms")] == "is required but missing"
    assert "300 is greater than the maximum of 255" in fields[("sst", "/sst")]
    assert "does not match" in fields[("cells[1]", "/cells/1")]
    assert "Additional properties are not allowed" in fields[("", "")]
    assert validate_policy(SLA_SCHEMA, GOLD) == []


def test_policy_status_checks_its_fields() -> None:
    """PolicyStatus refuses a non-bool enforced flag and an unknown A1 reason."""
    assert PolicyStatus(True).cause == "OTHER_REASON"
    with pytest.raises(ValueError, match="enforced must be True or False"):
        PolicyStatus("yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cause must be one of SCOPE_NOT_APPLICABLE"):
        PolicyStatus(False, "x", "BECAUSE")  # type: ignore[arg-type]


# -- the service on the SDL ----------------------------------------------------------------


async def test_types_and_policies_are_stored_and_refused_with_reasons() -> None:
    """Types and policies are put, listed, read and deleted; unknown ones are 404, a bad
    policy is 400 and changes nothing, a type with policies cannot be deleted (409)."""
    a1 = A1Service(MemoryBackend(), list, lambda: 0.0)
    assert await a1.put_type("slice-sla", SLA.to_json()) is True
    assert await a1.put_type("slice-sla", SLA.to_json()) is False
    assert await a1.type_ids() == ["slice-sla"]
    assert await a1.put_policy("slice-sla", "gold", GOLD) is True
    assert await a1.put_policy("slice-sla", "gold", {**GOLD, "max_delay_ms": 5}) is False
    with pytest.raises(PolicyError, match=r"'gold' does not satisfy .*: sst: 0 is less") as info:
        await a1.put_policy("slice-sla", "gold", {**GOLD, "sst": 0})
    assert info.value.status == 400 and info.value.errors[0].field == "sst"
    assert await a1.get_policy("slice-sla", "gold") == {**GOLD, "max_delay_ms": 5}
    assert await a1.policy_ids("slice-sla") == ["gold"]
    for call, match in [
        (a1.get_type("nope"), "there is no policy type 'nope'"),
        (a1.get_policy("slice-sla", "nope"), "policy type 'slice-sla' has no policy 'nope'"),
        (a1.policy_ids("nope"), "there is no policy type 'nope'"),
        (a1.delete_policy("slice-sla", "nope"), "has no policy 'nope'"),
    ]:
        with pytest.raises(PolicyError, match=match) as info:
            await call
        assert info.value.status == 404
    with pytest.raises(PolicyError, match=r"still has 1 policies \(gold\)") as info:
        await a1.delete_type("slice-sla")
    assert info.value.status == 409
    with pytest.raises(PolicyError, match="policy id 'a b' is not valid"):
        await a1.put_policy("slice-sla", "a b", GOLD)
    with pytest.raises(PolicyError, match="a policy is a JSON object"):
        await a1.put_policy("slice-sla", "list", [1])
    await a1.delete_policy("slice-sla", "gold")
    await a1.delete_type("slice-sla")
    assert await a1.type_ids() == []


class RacingStore(MemoryBackend):
    """A store on which someone else changes the policy type just before a policy is
    written: ``race(store)`` runs once, inside the first policy write."""

    def __init__(self) -> None:
        super().__init__()
        self.race: Callable[[RacingStore], Awaitable[None]] | None = None

    async def _first(self, key: str) -> None:
        if key.startswith("policy/") and self.race is not None:
            race, self.race = self.race, None
            await race(self)

    async def set_if_not_exists(self, namespace: str, key: str, value: bytes) -> bool:
        await self._first(key)
        return await super().set_if_not_exists(namespace, key, value)

    async def set_if(self, namespace: str, key: str, old: bytes, new: bytes) -> bool:
        await self._first(key)
        return await super().set_if(namespace, key, old, new)


async def test_a_type_changed_or_deleted_while_a_policy_is_written_leaves_no_misfit() -> None:
    """When the type is made stricter, or deleted, between a policy's validation and its
    write (another request or replica), the write is undone and refused with 409: a new
    policy is gone, an updated one is back to what it was; a change it still fits is fine."""
    store = RacingStore()
    a1 = A1Service(store, list, lambda: 0.0)
    await a1.put_type("slice-sla", SLA.to_json())
    strict = {
        **SLA_SCHEMA,
        "properties": {
            **SLA_SCHEMA["properties"],
            "max_delay_ms": {"type": "number", "maximum": 1},
        },
    }

    async def stricter(backend: RacingStore) -> None:
        await Namespace(backend, "ric.a1").set(
            "type/slice-sla", PolicyType("slice-sla", strict).to_json()
        )

    async def delete(backend: RacingStore) -> None:
        await Namespace(backend, "ric.a1").delete("type/slice-sla")

    store.race = stricter
    with pytest.raises(PolicyError, match="changed and no longer accepts it") as info:
        await a1.put_policy("slice-sla", "gold", GOLD)
    assert info.value.status == 409
    assert await a1.policy_ids("slice-sla") == []

    await a1.put_type("slice-sla", SLA.to_json())  # no policies: it may loosen again
    await a1.put_policy("slice-sla", "gold", GOLD)
    store.race = stricter
    with pytest.raises(PolicyError, match="no longer accepts it"):
        await a1.put_policy("slice-sla", "gold", {**GOLD, "max_delay_ms": 20.0})
    assert await a1.get_policy("slice-sla", "gold") == GOLD  # what it was

    await a1.delete_policy("slice-sla", "gold")
    await a1.put_type("slice-sla", SLA.to_json())
    store.race = stricter  # the stricter type still accepts this one
    await a1.put_policy("slice-sla", "fast", {**GOLD, "max_delay_ms": 0.5})
    assert await a1.get_policy("slice-sla", "fast") == {**GOLD, "max_delay_ms": 0.5}

    await a1.delete_policy("slice-sla", "fast")
    await a1.put_type("slice-sla", SLA.to_json())
    store.race = delete
    with pytest.raises(PolicyError, match="'slice-sla' was deleted while policy 'gold'"):
        await a1.put_policy("slice-sla", "gold", GOLD)
    assert await store.keys("ric.a1", "policy/") == []


async def test_a_type_change_that_existing_policies_break_is_refused() -> None:
    """Replacing a type's schema is allowed while its policies satisfy the new one, and
    refused (409, naming the policy and field) when one does not; nothing changes then."""
    a1 = A1Service(MemoryBackend(), list, lambda: 0.0)
    await a1.put_type("slice-sla", SLA.to_json())
    await a1.put_policy("slice-sla", "gold", GOLD)
    looser = {"policySchema": {**SLA_SCHEMA, "required": ["sst"]}}
    assert await a1.put_type("slice-sla", looser) is False
    stricter = {"policySchema": {**SLA_SCHEMA, "required": ["sst", "cells"]}}
    with pytest.raises(PolicyError, match="refuses existing policy 'gold' \\(cells: is req"):
        await a1.put_type("slice-sla", stricter)
    assert await a1.get_type("slice-sla") == looser


# -- delivery to xApps ---------------------------------------------------------------------


async def test_policies_reach_the_xapp_which_reports_enforcement() -> None:
    """Create, update and delete reach the xApp in order; its answers make the status
    ENFORCED (naming it) or NOT_ENFORCED with its reason; an unchanged put is not
    redelivered."""
    app = enforcer()
    async with runtime(app) as rt:
        await rt.a1.put_type("slice-sla", SLA.to_json())  # the same as declared: fine
        await rt.a1.put_policy("slice-sla", "gold", GOLD)
        await wait_for(lambda: len(app.events) == 1)
        status = await _status_when(rt, "gold", lambda s: s["xapps"][0]["enforced"] is not None)
        assert status["enforceStatus"] == "ENFORCED"
        assert status["detail"] == "enforced by xApp enforcer"
        assert status["xapps"][0]["name"] == "enforcer" and status["xapps"][0]["at"]
        await rt.a1.put_policy("slice-sla", "gold", GOLD)  # unchanged: not delivered again
        await rt.a1.put_policy("slice-sla", "gold", {"sst": 99, "max_delay_ms": 1})
        status = await _status_when(
            rt,
            "gold",
            lambda s: s["enforceStatus"] == "NOT_ENFORCED" and s["xapps"][0]["enforced"] is False,
        )
        assert status["enforceReason"] == "SCOPE_NOT_APPLICABLE"
        assert status["detail"] == "xApp enforcer does not enforce it: slice 99 is not served here"
        await rt.a1.delete_policy("slice-sla", "gold")
        await wait_for(lambda: len(app.events) == 3)
    assert kinds(app) == [("created", "gold"), ("updated", "gold"), ("deleted", "gold")]
    assert app.events[2].body == {"sst": 99, "max_delay_ms": 1}


async def _status_when(rt: Runtime, policy: str, ok: Any) -> dict[str, Any]:
    """The status of ``policy`` once ``ok(status)`` holds (polled on the loop)."""
    for _ in range(1000):
        status = await rt.a1.status_detail("slice-sla", policy)
        if ok(status):
            return status
        await asyncio.sleep(0.005)
    pytest.fail(f"the status of {policy} never satisfied the test: {status}")


async def test_every_xapp_that_handles_the_type_must_enforce_it() -> None:
    """With two xApps handling a type, the policy is ENFORCED only when both report it
    enforced; one that does not makes it NOT_ENFORCED naming that xApp and its reason."""
    one, two = enforcer("one"), enforcer("two")

    async def refuse(self: XApp, event: PolicyEvent) -> PolicyStatus:
        type(self).events.append(event)  # type: ignore[attr-defined]
        return PolicyStatus(False, "no PRBs left", "STATEMENT_NOT_APPLICABLE")

    two.on_policy = refuse  # type: ignore[method-assign]
    async with runtime(one, two) as rt:
        await rt.a1.put_policy("slice-sla", "gold", GOLD)
        status = await _status_when(
            rt, "gold", lambda s: all(x["enforced"] is not None for x in s["xapps"])
        )
    assert [(x["name"], x["enforced"]) for x in status["xapps"]] == [
        ("one", True),
        ("two", False),
    ]
    assert status["enforceStatus"] == "NOT_ENFORCED"
    assert status["enforceReason"] == "STATEMENT_NOT_APPLICABLE"
    assert status["detail"] == "xApp two does not enforce it: no PRBs left"


async def test_no_xapp_handles_the_type_so_it_is_not_enforced() -> None:
    """A policy of a type no loaded xApp declares is NOT_ENFORCED, and the detail says so."""
    async with runtime() as rt:
        await rt.a1.put_type("slice-sla", SLA.to_json())
        await rt.a1.put_policy("slice-sla", "gold", GOLD)
        status = await rt.a1.status_detail("slice-sla", "gold")
    assert status == {
        "policyTypeId": "slice-sla",
        "policyId": "gold",
        "enforceStatus": "NOT_ENFORCED",
        "enforceReason": "OTHER_REASON",
        "detail": "no loaded xApp handles policy type 'slice-sla'",
        "xapps": [],
    }


STRICT_STATUS = {
    "type": "object",
    "additionalProperties": False,
    "required": ["enforceStatus"],
    "properties": {
        "enforceStatus": {"enum": ["ENFORCED", "NOT_ENFORCED"]},
        "enforceReason": {
            "enum": ["SCOPE_NOT_APPLICABLE", "STATEMENT_NOT_APPLICABLE", "OTHER_REASON"]
        },
    },
}


async def test_the_a1_status_is_the_standard_object_valid_against_a_strict_status_schema() -> None:
    """The A1 status body has only enforceStatus and enforceReason, so it satisfies a type's
    statusSchema with additionalProperties false, enforced or not; the detail is elsewhere."""
    strict = PolicyType("strict", SLA_SCHEMA, status_schema=STRICT_STATUS)
    app = enforcer("enforcer", [strict])
    async with runtime(app) as rt:
        await rt.a1.put_policy("strict", "gold", GOLD)
        waiting = await rt.a1.status("strict", "gold")
        assert waiting == {"enforceStatus": "NOT_ENFORCED", "enforceReason": "OTHER_REASON"}
        await wait_for(lambda: kinds(app) == [("created", "gold")])
        for _ in range(1000):
            enforced = await rt.a1.status("strict", "gold")
            if enforced["enforceStatus"] == "ENFORCED":
                break
            await asyncio.sleep(0.005)
        assert enforced == {"enforceStatus": "ENFORCED"}
    for body in (waiting, enforced):
        assert validate_policy(STRICT_STATUS, body) == []


async def test_a_restarted_xapp_gets_every_policy_again_including_those_put_meanwhile() -> None:
    """A policy whose handler raises restarts the xApp; a policy put while it restarts is
    delivered to the new instance, which receives every current policy as created."""
    app, clock = enforcer(), ManualClock()
    async with runtime(app, clock=clock) as rt:
        host = rt.host("enforcer")
        await rt.a1.put_policy("slice-sla", "gold", GOLD)
        await wait_for(lambda: len(app.events) == 1)
        await rt.a1.put_policy("slice-sla", "bad", {"sst": 13, "max_delay_ms": 1})
        await wait_for(lambda: host.state.value == "restarting")  # waits on the manual clock
        await rt.a1.put_policy("slice-sla", "silver", {"sst": 2, "max_delay_ms": 20})
        await rt.a1.delete_policy("slice-sla", "bad")
        assert (await rt.a1.status_detail("slice-sla", "gold"))["xapps"][0]["state"] == "restarting"
        await clock.advance(1.0)
        await wait_for(lambda: len(app.events) == 4)
        status = await _status_when(rt, "silver", lambda s: s["enforceStatus"] == "ENFORCED")
    assert kinds(app) == [
        ("created", "gold"),
        ("created", "bad"),
        ("created", "gold"),
        ("created", "silver"),
    ]
    assert app.starts == [0, 2] and status["xapps"][0]["enforced"] is True


async def test_policies_survive_a_runtime_restart_and_reach_xapps_as_they_start(
    tmp_path: Path,
) -> None:
    """Types and policies put in one runtime are there in the next one on the same store
    (memory shared, and an SQLite file), and are delivered to its xApp when it starts."""
    shared = MemoryBackend()
    stores: list[tuple[SdlBackend, SdlBackend]] = [
        (shared, shared),
        (SqliteBackend(tmp_path / "a1.db"), SqliteBackend(tmp_path / "a1.db")),
    ]
    for first, second in stores:
        async with runtime(sdl=first) as rt:
            await rt.a1.put_type("slice-sla", SLA.to_json())
            await rt.a1.put_policy("slice-sla", "gold", GOLD)
        app = enforcer()
        async with runtime(app, sdl=second) as rt:
            await wait_for(lambda: kinds(app) == [("created", "gold")])  # noqa: B023
            assert await rt.a1.get_policy("slice-sla", "gold") == GOLD
            assert await rt.a1.policy_ids("slice-sla") == ["gold"]
            status = await _status_when(rt, "gold", lambda s: s["enforceStatus"] == "ENFORCED")
            assert status["detail"] == "enforced by xApp enforcer"
            await rt.a1.delete_policy("slice-sla", "gold")


async def test_a_change_made_by_another_runtime_on_a_shared_store_is_delivered() -> None:
    """Delivery follows the store: a policy put, updated and deleted through one runtime
    reaches the xApp of another runtime on the same store (as replicas on Redis); changes
    made faster than they are delivered are coalesced into the current state."""
    shared, app = MemoryBackend(), enforcer()
    async with runtime(app, sdl=shared) as replica, runtime(sdl=shared) as other:
        await wait_for(lambda: replica.host("enforcer").state.value == "running")
        for step, change in enumerate(
            [
                other.a1.put_policy("slice-sla", "gold", GOLD),
                other.a1.put_policy("slice-sla", "gold", {**GOLD, "sst": 3}),
                other.a1.delete_policy("slice-sla", "gold"),
            ]
        ):
            await change
            await wait_for(lambda: len(app.events) == step + 1)  # noqa: B023
        await other.a1.put_policy("slice-sla", "brief", GOLD)  # gone before it is delivered
        await other.a1.delete_policy("slice-sla", "brief")
        await other.a1.put_policy("slice-sla", "last", GOLD)
        await wait_for(lambda: not replica.a1.delivering)
        await wait_for(lambda: len(app.events) == 4)
    assert kinds(app) == [
        ("created", "gold"),
        ("updated", "gold"),
        ("deleted", "gold"),
        ("created", "last"),
    ]
    assert [e.body["sst"] for e in app.events] == [1, 3, 3, 1]


async def test_a_later_status_report_and_one_for_an_undeclared_type() -> None:
    """An xApp may report enforcement later with policy_status; a report for a deleted
    policy is not recorded, one for a type it does not declare raises ValueError."""

    class Later(XApp):
        """Reports enforcement once a control would have been acknowledged."""

        name = "later"
        policy_types: ClassVar = [SLA]
        pending: ClassVar[list[PolicyEvent]] = []

        async def on_policy(self, event: PolicyEvent) -> PolicyStatus | None:
            type(self).pending.append(event)
            return None

    async with runtime(Later) as rt:
        await rt.a1.put_policy("slice-sla", "gold", GOLD)
        await wait_for(lambda: len(Later.pending) == 1)
        status = await rt.a1.status_detail("slice-sla", "gold")
        assert status["detail"] == "waiting for xApp later to report enforcement"
        instance = rt.host("later").instance
        assert instance is not None
        assert await instance.policy_status("slice-sla", "gold", PolicyStatus(True)) is True
        assert (await rt.a1.status_detail("slice-sla", "gold"))["enforceStatus"] == "ENFORCED"
        await rt.a1.delete_policy("slice-sla", "gold")
        assert await instance.policy_status("slice-sla", "gold", PolicyStatus(True)) is False
        with pytest.raises(ValueError, match="policy type 'other', which it does not declare"):
            await instance.policy_status("other", "gold", PolicyStatus(True))


async def test_a_handler_that_returns_something_else_restarts_the_xapp(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """on_policy returning neither a PolicyStatus nor None is a bug of the xApp: it is logged
    naming the xApp and the value, and the xApp restarts like after any handler error; a
    later report that is not a PolicyStatus raises TypeError."""

    class Sloppy(XApp):
        """Answers with a dict."""

        name = "sloppy"
        policy_types: ClassVar = [SLA]

        async def on_policy(self, event: PolicyEvent) -> PolicyStatus | None:
            return {"enforced": True}  # type: ignore[return-value]

    async with runtime(Sloppy) as rt:
        await rt.a1.put_policy("slice-sla", "gold", GOLD)
        await wait_for(lambda: rt.host("sloppy").restarts >= 1)
        await wait_for(lambda: rt.host("sloppy").instance is not None)
        instance = rt.host("sloppy").instance
        assert instance is not None
        with pytest.raises(TypeError, match=r"policy_status needs a ric\.PolicyStatus, got 'yes'"):
            await instance.policy_status("slice-sla", "gold", "yes")  # type: ignore[arg-type]
    assert "xApp sloppy: on_policy returned {'enforced': True}, not a PolicyStatus" in caplog.text


async def test_fake_context_records_policy_statuses() -> None:
    """Under ric.testing an xApp's on_policy is called by hand and later reports recorded."""
    app, ctx = await start_xapp(enforcer())
    assert await app.on_policy(policy_event("slice-sla", "gold", GOLD)) == PolicyStatus(True)
    await app.policy_status("slice-sla", "gold", PolicyStatus(False, "cell down"))
    assert ctx.policy_statuses == [("slice-sla", "gold", PolicyStatus(False, "cell down"))]


# -- xApp-declared types --------------------------------------------------------------------


async def test_declared_types_are_registered_and_guarded() -> None:
    """An xApp's types are stored at start; over A1 a different definition of it is refused
    (409) and so is deleting it, while an identical put is fine."""
    async with runtime(enforcer()) as rt:
        assert await rt.a1.get_type("slice-sla") == SLA.to_json()
        assert await rt.a1.put_type("slice-sla", SLA.to_json()) is False
        with pytest.raises(PolicyError, match="is declared by xApp enforcer") as info:
            await rt.a1.put_type("slice-sla", {"policySchema": {"type": "object"}})
        assert info.value.status == 409
        with pytest.raises(PolicyError, match="declared by loaded xApp enforcer") as info:
            await rt.a1.delete_type("slice-sla")
        assert info.value.status == 409


async def test_conflicting_declarations_refuse_the_plugin() -> None:
    """Two xApps declaring one type differently, or an xApp whose schema an existing policy
    does not satisfy, are refused with a PluginError naming the plugin and the type; a
    compatible new schema replaces the stored one."""
    other = PolicyType("slice-sla", {"type": "object"})
    with pytest.raises(PluginError, match="declares policy type 'slice-sla' differently"):
        async with runtime(enforcer("one"), enforcer("two", [other])):
            pass
    store = MemoryBackend()
    async with runtime(sdl=store) as rt:
        await rt.a1.put_type("slice-sla", {"policySchema": {"type": "object"}})
        await rt.a1.put_policy("slice-sla", "odd", {"sst": "one"})
    with pytest.raises(PluginError, match=r"Enforcer_enforcer'.*refuses existing policy 'odd'"):
        async with runtime(enforcer(), sdl=store):
            pass
    async with runtime(sdl=store) as rt:
        await rt.a1.delete_policy("slice-sla", "odd")
        await rt.a1.put_policy("slice-sla", "gold", GOLD)
    async with runtime(enforcer(), sdl=store) as rt:
        assert await rt.a1.get_type("slice-sla") == SLA.to_json()


async def test_an_xapp_added_later_with_a_conflicting_type_fails_alone() -> None:
    """add_xapp of an xApp whose type conflicts marks only that xApp failed."""
    other = PolicyType("slice-sla", {"type": "object"})
    async with runtime(enforcer("one")) as rt:
        host = rt.add_xapp(Plugin(enforcer("two", [other]), "test:two"))
        await wait_for(lambda: host.state.value == "failed")
        assert rt.host("one").state.value == "running"


class NotAList(XApp):
    """Declares its policy types as a dict."""

    name = "notalist"
    policy_types: ClassVar = {"slice-sla": SLA}  # type: ignore[assignment]


class NoHandler(XApp):
    """Declares a type and no on_policy."""

    name = "nohandler"
    policy_types: ClassVar = [SLA]


class Twice(Enforcer):
    """Declares one type twice."""

    name = "twice"
    policy_types: ClassVar = [SLA, SLA]


class NotAType(Enforcer):
    """Declares a schema where a PolicyType belongs."""

    name = "notatype"
    policy_types: ClassVar = [SLA_SCHEMA]  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("cls", "needle"),
    [
        (NotAList, "policy_types must be a list of ric.PolicyType"),
        (NoHandler, "declares policy_types but does not override on_policy"),
        (Twice, "policy_types declares 'slice-sla' twice"),
        (NotAType, "policy_types[0] is dict, not ric.PolicyType"),
    ],
)
def test_bad_declarations_are_refused_at_load(cls: type[XApp], needle: str) -> None:
    """A wrong policy_types declaration refuses the plugin when the runtime loads it."""
    with pytest.raises(PluginError) as info:
        runtime(cls)
    assert needle in str(info.value) and f"test:{cls.__name__}" in str(info.value)


# -- linear-time patterns and the validation workers -------------------------------------

REDOS = {"type": "object", "properties": {"name": {"type": "string", "pattern": "^(a+)+$"}}}


def test_a_backtracking_pattern_is_matched_in_linear_time() -> None:
    """The ReDoS pattern ^(a+)+$ against 40 'a' and a '!' simply does not match (RE2), and
    patternProperties and additionalProperties go through RE2 too."""
    errors = validate_policy(REDOS, {"name": "a" * 40 + "!"})
    assert [(e.field, e.reason) for e in errors] == [
        ("name", f"'{'a' * 40}!' does not match '^(a+)+$'")
    ]
    assert validate_policy(REDOS, {"name": "a" * 40}) == []
    keyed = {"patternProperties": {"^(x+)+$": {"type": "integer"}}, "additionalProperties": False}
    errors = validate_policy(keyed, {"xxx": "s", "x" * 40 + "!": 1})
    assert {e.reason for e in errors} == {
        "'s' is not of type 'integer'",
        f"'{'x' * 40}!' does not match any of the regexes: '^(x+)+$'",
    }


@pytest.mark.parametrize(
    ("schema", "needle"),
    [
        ({"pattern": "(a)\\1"}, "pattern '(a)\\\\1' cannot be used: invalid escape sequence"),
        ({"pattern": "(?=a)b"}, "pattern '(?=a)b' cannot be used: invalid perl operator"),
        ({"patternProperties": {"(?<!a)b": {}}}, "pattern '(?<!a)b' cannot be used"),
        (
            {
                "$schema": "http://json-schema.org/draft-04/schema#",
                "patternProperties": {"(a)\\1": {}},
            },
            "pattern '(a)\\\\1' cannot be used",
        ),
        (
            {"unevaluatedProperties": False, "patternProperties": {"^a": {}}},
            "uses unevaluatedProperties together with patternProperties",
        ),
    ],
)
def test_patterns_re2_cannot_run_are_refused_with_the_type(
    schema: dict[str, Any], needle: str
) -> None:
    """A type whose schema has a pattern RE2 refuses (back-reference, look-around), or that
    would need Python's re, is refused with a 400 naming the pattern and the reason."""
    with pytest.raises(PolicyError) as info:
        PolicyType.from_json("t", {"policySchema": schema})
    assert info.value.status == 400
    assert needle in info.value.detail


async def test_a_job_over_its_budget_is_stopped_and_its_worker_replaced() -> None:
    """A job that runs past [a1] budget_s is answered OverBudget (503) naming the budget, and
    the next job runs on a replaced worker."""
    import time

    from ric.a1.workers import OverBudget, ValidationPool
    from ric.config import A1Settings

    pool = ValidationPool(A1Settings(workers=1, budget_s=0.3))
    try:
        with pytest.raises(OverBudget, match=r"budget of 0.3 s \(\[a1\] budget_s\)") as info:
            await pool.run("a sleeping job", time.sleep, 30)
        assert info.value.status == 503 and pool.over_budget == 1
        assert await pool.validate("gold", SLA_SCHEMA, GOLD) == []
        with pytest.raises(PolicyError, match="policy type 'x'") as error:
            await pool.policy_type("x", {"policySchema": {"pattern": "(a)\\1"}})
        assert error.value.status == 400  # a PolicyError from the worker comes through whole
    finally:
        await pool.aclose()
    with pytest.raises(PolicyError, match="shutting down"):
        await pool.validate("late", SLA_SCHEMA, GOLD)
