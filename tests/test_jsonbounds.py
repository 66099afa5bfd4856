"""Bounded JSON: depth and value counts measured from the bytes, and refusals that name the
bound or the field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ric.jsonbounds import JsonLimits, JsonRefused, loads, measure

LIMITS = JsonLimits(max_depth=8, max_values=100)


def depth_of(value: Any) -> int:
    """Nesting depth of a parsed JSON value, the slow obvious way."""
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


TRICKY = st.text(alphabet='[]{}",\\:ab \n', max_size=12)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TRICKY,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TRICKY, inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_measured_depth_is_exact_whatever_the_strings_hold(value: Any) -> None:
    """For any JSON document, with brackets, quotes and backslashes inside its strings, the
    measured depth equals the parsed document's."""
    data = json.dumps(value).encode()
    assert measure(data)[0] == depth_of(value)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"1", (0, 1)),
        (b"[1, 2]", (1, 3)),
        (b'{"a": [1, {"b": "]]]"}]}', (3, 5)),
        (b'["\\\\", "[["]', (1, 3)),
        (b'["\\"[["]', (1, 2)),
        (b"", (0, 0)),
    ],
)
def test_measure_counts_depth_and_values(data: bytes, expected: tuple[int, int]) -> None:
    """Depth and value counts of small documents, escapes and brackets in strings included."""
    assert measure(data) == expected


def test_a_100000_deep_body_is_refused_as_too_deep() -> None:
    """A 100,000-deep array is refused as too deep, naming the bound, before any parsing."""
    with pytest.raises(JsonRefused, match=r"too deep: 100000 levels.*max_json_depth") as info:
        loads(b"[" * 100_000 + b"]" * 100_000, LIMITS)
    assert (info.value.reason, info.value.status) == ("too_deep", 400)


def test_too_many_values_are_refused() -> None:
    """A document with more values than the bound is refused naming the bound."""
    with pytest.raises(JsonRefused, match="max_json_values") as info:
        loads(json.dumps(list(range(200))).encode(), LIMITS)
    assert info.value.reason == "too_many_values"


@pytest.mark.parametrize(
    ("data", "reason", "message"),
    [
        (b'{"max_delay_ms": NaN}', "not_finite", "max_delay_ms: NaN is not a JSON number"),
        (b'{"a": [1, Infinity]}', "not_finite", "a[1]: Infinity is not a JSON number"),
        (b"-Infinity", "not_finite", "(the document): -Infinity"),
        (b'{"a": {"b": 1e400}}', "number_out_of_range", "a.b: 1e400 does not fit a double"),
        (b'{"big": 1' + b"0" * 400 + b"}", "number_out_of_range", "big: 1000"),
        (b'{"huge": 1' + b"0" * 5000 + b"}", "number_out_of_range", "huge: 1000"),
        (b"{not json", "not_json", "the body is not JSON"),
        (b'"\xff"', "not_json", "not UTF-8"),
    ],
)
def test_non_finite_numbers_and_non_json_are_refused_naming_where(
    data: bytes, reason: str, message: str
) -> None:
    """NaN, Infinity, numbers beyond a double and non-JSON are 400 with the field named."""
    with pytest.raises(JsonRefused) as info:
        loads(data, JsonLimits(max_depth=8, max_values=10_000))
    assert info.value.reason == reason and info.value.status == 400
    assert message in info.value.detail


def test_valid_documents_parse_as_json() -> None:
    """A document within the bounds parses to the same value as json.loads gives."""
    doc = {"sst": 1, "max_delay_ms": 10.5, "cells": ["001-01-1", 'a\\"[{'], "x": None}
    assert loads(json.dumps(doc).encode(), LIMITS) == doc
