"""JSON Schema validation whose regular expressions run on RE2, never on Python's ``re``.

A policy type's schema comes from outside (the A1 API). jsonschema evaluates ``pattern``,
``patternProperties``, ``additionalProperties`` (which consults ``patternProperties``) and the
``regex`` format with Python's backtracking ``re``: ``"^(a+)+$"`` against 28 ``a`` and a
``!`` took 18 s. Here those keywords are replaced (``jsonschema.validators.extend``) by
versions on RE2 (the ``google-re2`` binding), which matches in time linear in the input and
refuses what it cannot do so (back-references, look-around) at compile time::

    cls = VALIDATORS["https://json-schema.org/draft/2020-12/schema"]
    cls.check_schema(schema, format_checker=FORMAT_CHECKER)   # patterns compiled by RE2
    errors = list(cls(schema).iter_errors(policy))

``unevaluatedProperties`` also consults ``patternProperties`` inside jsonschema with Python's
``re``; a schema using both is refused by ``backtracking_keywords`` instead of evaluated.
RE2's memory per pattern is bounded by ``set_max_mem`` (``[a1] regex_max_mem_bytes``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
import jsonschema.validators
import re2
from jsonschema import FormatChecker, ValidationError
from jsonschema.protocols import Validator

__all__ = [
    "FORMAT_CHECKER",
    "VALIDATORS",
    "PatternError",
    "backtracking_keywords",
    "compile_pattern",
    "set_max_mem",
]

_max_mem = 1024 * 1024


class PatternError(ValueError):
    """RE2 cannot compile a schema's pattern: ``pattern`` and RE2's ``reason``."""

    def __init__(self, pattern: str, reason: str) -> None:
        self.pattern = pattern
        self.reason = reason
        super().__init__(
            f"pattern {pattern!r} cannot be used: {reason} (patterns run on RE2, a linear-time "
            "engine without back-references or look-around)"
        )


def set_max_mem(max_mem: int) -> None:
    """Bound the memory RE2 may use for one compiled pattern (bytes); clears the cache."""
    global _max_mem
    _max_mem = max_mem
    _compile.cache_clear()


@functools.lru_cache(maxsize=256)
def _compile(pattern: str, max_mem: int) -> Any:
    options = re2.Options()
    options.log_errors = False  # the refusal is reported to the caller, not to stderr
    options.max_mem = max_mem
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "RE2 refuses it"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise PatternError(pattern, str(reason)) from None


def compile_pattern(pattern: str) -> Any:
    """The RE2 program of ``pattern`` (cached); PatternError saying why RE2 refuses it."""
    return _compile(pattern, _max_mem)


def _search(pattern: str, text: str) -> bool:
    return compile_pattern(pattern).search(text) is not None


def _pattern(
    validator: Any, pattern: str, instance: object, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _search(pattern, instance):  # type: ignore[arg-type]
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any,
    patterns: Mapping[str, Any],
    instance: Any,
    schema: Mapping[str, Any],
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _extras(instance: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    return [
        key
        for key in instance
        if key not in properties and not any(_search(p, key) for p in patterns)
    ]


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    extras = _extras(instance, schema)
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        if "patternProperties" in schema:
            verb = "does" if len(extras) == 1 else "do"
            joined = ", ".join(repr(each) for each in sorted(extras))
            patterns = ", ".join(repr(each) for each in sorted(schema["patternProperties"]))
            yield ValidationError(f"{joined} {verb} not match any of the regexes: {patterns}")
        else:
            shown = ", ".join(repr(each) for each in extras)
            verb = "was" if len(extras) == 1 else "were"
            yield ValidationError(
                f"Additional properties are not allowed ({shown} {verb} unexpected)"
            )


FORMAT_CHECKER = FormatChecker()
"""jsonschema's format checker with ``regex`` checked by RE2 (a meta-schema check of a
policy type's schema compiles every ``pattern`` and ``patternProperties`` key this way)."""


@FORMAT_CHECKER.checks("regex", raises=PatternError)
def _is_regex(instance: object) -> bool:
    if isinstance(instance, str):
        compile_pattern(instance)
    return True


_KEYWORDS = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
}

_BASES: dict[str, type[Validator]] = {
    "http://json-schema.org/draft-04/schema": jsonschema.Draft4Validator,
    "http://json-schema.org/draft-06/schema": jsonschema.Draft6Validator,
    "http://json-schema.org/draft-07/schema": jsonschema.Draft7Validator,
    "https://json-schema.org/draft/2019-09/schema": jsonschema.Draft201909Validator,
    "https://json-schema.org/draft/2020-12/schema": jsonschema.Draft202012Validator,
}


def _on_re2(base: type[Validator]) -> type[Validator]:
    cls: type[Validator] = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
        base, _KEYWORDS, format_checker=FORMAT_CHECKER
    )
    cls.__name__ = cls.__qualname__ = base.__name__  # still that draft's validator, on RE2
    return cls


VALIDATORS: dict[str, type[Validator]] = {uri: _on_re2(base) for uri, base in _BASES.items()}
"""The validator class of each dialect (by ``$schema`` URI, without ``#``), on RE2."""


def backtracking_keywords(schema: object) -> str | None:
    """Why ``schema`` cannot be evaluated without Python's ``re`` (it has both
    ``unevaluatedProperties`` and ``patternProperties``), or None; PatternError for a
    ``patternProperties`` key RE2 refuses (Draft 4's meta-schema does not check them). Walks
    the schema without recursion; keys inside ``const``/``enum`` values are counted too (a
    conservative no)."""
    seen: set[str] = set()
    stack: list[object] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            seen.update(k for k in ("unevaluatedProperties", "patternProperties") if k in node)
            if isinstance(node.get("patternProperties"), Mapping):
                for pattern in node["patternProperties"]:
                    compile_pattern(pattern)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    if len(seen) == 2:
        return (
            "uses unevaluatedProperties together with patternProperties, which jsonschema "
            "evaluates with a backtracking regex engine; use additionalProperties instead"
        )
    return None
