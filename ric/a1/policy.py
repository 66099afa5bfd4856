"""A1 policy value objects and validation: policy types with their JSON Schema, policy events
delivered to xApps, the enforcement status xApps report, and the errors of the A1 API."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import jsonschema.exceptions
from jsonschema.protocols import Validator

from ric.a1.regex import FORMAT_CHECKER, VALIDATORS, PatternError, backtracking_keywords
from ric.errors import RicError

__all__ = [
    "ID_PATTERN",
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

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}")
"""Policy type and policy ids, matched whole (``fullmatch``: a trailing newline is refused):
1-128 letters, digits, '_', '.', ':' or '-', starting with a letter or digit. The A1AP
allows any string; this limit keeps an id one URL path segment and one SDL key part."""

ID_RULE = "1-128 letters, digits, '_', '.', ':' or '-', starting with a letter or digit"
"""The id rule in words, as a refusal names it."""

PolicyKind = Literal["created", "updated", "deleted"]
EnforceReason = Literal["SCOPE_NOT_APPLICABLE", "STATEMENT_NOT_APPLICABLE", "OTHER_REASON"]
"""Why a policy is not enforced, as the A1AP ``enforceReason`` enumerates it."""

_REASONS = ("SCOPE_NOT_APPLICABLE", "STATEMENT_NOT_APPLICABLE", "OTHER_REASON")
MAX_ERRORS = 10
"""At most this many field errors are listed for one invalid policy."""

_DIALECTS: dict[str, type[Validator]] = VALIDATORS
"""The validator class of each dialect; their regular expressions run on RE2 (ric.a1.regex)."""


class PolicyError(RicError):
    """An A1 request cannot be served: ``status`` is its HTTP status, ``detail`` says what is
    wrong and names the type, policy or field; ``errors`` lists the fields of an invalid
    policy."""

    def __init__(
        self, status: int, detail: str, errors: Sequence[FieldError] = (), title: str = ""
    ) -> None:
        self.status = status
        self.detail = detail
        self.errors = tuple(errors)
        self.title = title
        super().__init__(detail)

    def __reduce__(self) -> tuple[Any, ...]:
        # Raised in a validation worker process and re-raised here: keep every field.
        return (type(self), (self.status, self.detail, self.errors, self.title))


@dataclass(frozen=True, slots=True)
class FieldError:
    """One field of a policy that its type's schema refuses: ``field`` as ``a.b[0].c`` (empty
    for the policy object itself), ``pointer`` as a JSON Pointer, and ``reason``."""

    field: str
    pointer: str
    reason: str

    def to_json(self) -> dict[str, str]:
        """As the A1 API shows it."""
        return {
            "field": self.field or "(the policy object)",
            "pointer": self.pointer,
            "reason": self.reason,
        }


def check_id(what: str, value: object) -> str:
    """Return ``value`` if it is a valid id, else raise PolicyError (400) naming it."""
    if not isinstance(value, str) or ID_PATTERN.fullmatch(value) is None:
        raise PolicyError(400, f"{what} {value!r} is not valid: {ID_RULE}", title="Invalid id")
    return value


def _refs(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef", "$recursiveRef") and isinstance(value, str):
                yield f"{path}/{key}", value
            else:
                yield from _refs(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _refs(value, f"{path}/{i}")


def _resolve_pointer(schema: Mapping[str, Any], ref: str) -> bool:
    node: Any = schema
    for part in ref[2:].split("/") if ref.startswith("#/") else []:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def check_schema(schema: object, what: str = "policySchema") -> type[Validator]:
    """The validator class for ``schema`` (its ``$schema`` dialect, 2020-12 when it names
    none), or PolicyError (400) saying why ``schema`` is not a usable JSON Schema."""
    if not isinstance(schema, Mapping):
        raise PolicyError(400, f"{what} must be a JSON Schema object, got {_kind(schema)}")
    dialect = schema.get("$schema", "https://json-schema.org/draft/2020-12/schema")
    if not isinstance(dialect, str) or dialect.rstrip("#") not in _DIALECTS:
        known = ", ".join(_DIALECTS)
        raise PolicyError(400, f"{what}: $schema {dialect!r} is not a dialect known here ({known})")
    cls = _DIALECTS[dialect.rstrip("#")]
    try:
        cls.check_schema(dict(schema), format_checker=FORMAT_CHECKER)  # type: ignore[call-arg]
    except jsonschema.exceptions.SchemaError as exc:
        where = "/" + "/".join(str(p) for p in exc.absolute_path)
        if isinstance(exc.cause, PatternError):
            raise PolicyError(400, f"{what}: at {where}: {exc.cause}") from None
        raise PolicyError(
            400, f"{what} is not a valid JSON Schema: at {where}: {exc.message}"
        ) from None
    try:
        why = backtracking_keywords(schema)
    except PatternError as exc:
        raise PolicyError(400, f"{what}: {exc}") from None
    if why is not None:
        raise PolicyError(400, f"{what} {why}")
    for where, ref in _refs(schema):
        if not ref.startswith("#"):
            raise PolicyError(
                400,
                f"{what}: {where} is {ref!r}: only references inside the schema ('#/...') are "
                "allowed (the RIC does not fetch schemas)",
            )
        if ref.startswith("#/") and not _resolve_pointer(schema, ref):
            raise PolicyError(400, f"{what}: {where} is {ref!r}, which the schema does not have")
    return cls


def _field(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _pointer(path: Sequence[str | int]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def validate_policy(schema: Mapping[str, Any], body: object) -> list[FieldError]:
    """The fields of ``body`` that ``schema`` refuses (empty when it is valid), at most
    ``MAX_ERRORS``, in field order."""
    cls = check_schema(schema)
    out: list[FieldError] = []
    try:
        errors = sorted(
            cls(dict(schema)).iter_errors(body),  # type: ignore[arg-type]  # JSON data
            key=lambda e: [str(p) for p in e.absolute_path],
        )
    except PatternError as exc:  # a patternProperties key of a Draft 4 schema (no meta check)
        raise PolicyError(400, f"the policy type's schema cannot be applied: {exc}") from None
    except Exception as exc:  # an unresolvable $ref
        raise PolicyError(400, f"the policy type's schema cannot be applied: {exc}") from None
    for error in errors:
        path: list[str | int] = list(error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, Mapping):
            for name in error.validator_value:  # type: ignore[union-attr]  # set: required
                if name not in error.instance:
                    out.append(
                        FieldError(
                            _field([*path, name]),
                            _pointer([*path, name]),
                            "is required but missing",
                        )
                    )
            continue
        out.append(FieldError(_field(path), _pointer(path), error.message))
    return out[:MAX_ERRORS]


def _kind(value: object) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        type(None): "null",
        int: "a number",
        float: "a number",
    }.get(type(value), "a value")


def _plain(value: Any, what: str) -> Any:
    """``value`` as a detached copy of plain JSON data; ValueError if it is not JSON."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not JSON data: {exc}") from None


@dataclass(frozen=True, slots=True)
class PolicyType:
    """An A1 policy type: an id and the JSON Schema its policies must satisfy.

    Declared by an xApp (``policy_types = [PolicyType(...)]``) or put over the A1 API::

        SLICE_SLA = PolicyType(
            "slice-sla",
            {"type": "object", "required": ["sst"], "properties": {"sst": {"type": "integer"}}},
            name="Slice SLA",
            description="Latency and throughput targets per slice",
        )

    ``schema`` is checked to be a valid JSON Schema (Draft 7 or 2020-12, or the dialect its
    ``$schema`` names); a bad id or schema raises ValueError naming the problem.
    """

    id: str
    schema: Mapping[str, Any]
    name: str = ""
    description: str = ""
    status_schema: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        try:
            check_id("policy type id", self.id)
            check_schema(self.schema, f"policy type {self.id!r}: schema")
            if self.status_schema is not None:
                check_schema(self.status_schema, f"policy type {self.id!r}: status_schema")
        except PolicyError as exc:
            raise ValueError(exc.detail) from None
        for attr in ("name", "description"):
            if not isinstance(getattr(self, attr), str):
                raise ValueError(f"policy type {self.id!r}: {attr} must be a string")
        object.__setattr__(self, "schema", _plain(self.schema, f"policy type {self.id!r}"))
        if self.status_schema is not None:
            object.__setattr__(
                self, "status_schema", _plain(self.status_schema, f"policy type {self.id!r}")
            )

    def to_json(self) -> dict[str, Any]:
        """The A1 PolicyTypeObject: ``policySchema``, and ``statusSchema``, ``name`` and
        ``description`` when set."""
        out: dict[str, Any] = {"policySchema": self.schema}
        if self.status_schema is not None:
            out["statusSchema"] = self.status_schema
        if self.name:
            out["name"] = self.name
        if self.description:
            out["description"] = self.description
        return out

    @classmethod
    def from_json(cls, type_id: str, body: object) -> PolicyType:
        """The type ``body`` (an A1 PolicyTypeObject) describes, or PolicyError (400)."""
        check_id("policy type id", type_id)
        if not isinstance(body, Mapping):
            raise PolicyError(400, f"a policy type is a JSON object, got {_kind(body)}")
        unknown = sorted(set(body) - {"policySchema", "statusSchema", "name", "description"})
        if unknown:
            raise PolicyError(
                400,
                f"policy type {type_id!r}: unknown member(s) {', '.join(map(repr, unknown))} "
                "(known: policySchema, statusSchema, name, description)",
            )
        if "policySchema" not in body:
            raise PolicyError(400, f"policy type {type_id!r} needs a policySchema (a JSON Schema)")
        check_schema(body["policySchema"], f"policy type {type_id!r}: policySchema")
        status_schema = body.get("statusSchema")
        if status_schema is not None:
            check_schema(status_schema, f"policy type {type_id!r}: statusSchema")
        for attr in ("name", "description"):
            if not isinstance(body.get(attr, ""), str):
                raise PolicyError(400, f"policy type {type_id!r}: {attr} must be a string")
        try:
            return cls(
                type_id,
                body["policySchema"],
                name=body.get("name", ""),
                description=body.get("description", ""),
                status_schema=status_schema,
            )
        except ValueError as exc:
            raise PolicyError(400, str(exc)) from None


@dataclass(frozen=True, slots=True)
class PolicyEvent:
    """A policy of a type the xApp handles was created, updated or deleted.

    ``body`` is the policy object (for ``deleted``, the last one). An xApp instance receives
    each current policy of its types as ``created`` when it starts (so after a restart it
    has them all again), then each change in order: ``updated`` only for a policy it was
    given, ``deleted`` only for one it has. Changes made faster than they are delivered may
    be coalesced: the xApp always ends up with the current policies.
    """

    type_id: str
    policy_id: str
    kind: PolicyKind
    body: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class PolicyStatus:
    """What an xApp reports about a policy: enforced, or not with a reason::

        return PolicyStatus(enforced=True)
        return PolicyStatus(False, "slice 1-000001 is not served here", "SCOPE_NOT_APPLICABLE")

    ``cause`` is the A1AP ``enforceReason`` for a policy not enforced.
    """

    enforced: bool
    reason: str = ""
    cause: EnforceReason = "OTHER_REASON"

    def __post_init__(self) -> None:
        if not isinstance(self.enforced, bool):
            raise ValueError(f"PolicyStatus enforced must be True or False, got {self.enforced!r}")
        if not isinstance(self.reason, str) or len(self.reason) > 1000:
            raise ValueError("PolicyStatus reason must be a string of at most 1000 characters")
        if self.cause not in _REASONS:
            raise ValueError(
                f"PolicyStatus cause must be one of {', '.join(_REASONS)}, got {self.cause!r}"
            )
