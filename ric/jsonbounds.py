"""Bounded JSON: a request body is measured before it is parsed, and what parses is plain,
finite JSON.

Python's ``json`` parser recurses once per nesting level (a 100,000-deep body ends in a
RecursionError), accepts ``NaN`` and ``Infinity`` (which no JSON encoder will write back) and
turns ``1e400`` into ``inf``. ``loads`` refuses all of that with a ``JsonRefused`` that names
the problem and, for a bad number, where it is::

    limits = JsonLimits(max_depth=32, max_values=50_000)
    body = loads(data, limits)          # JsonRefused("too_deep", ...) and friends

The depth and the number of values are measured by ``measure`` on the raw bytes with numpy
(strings masked out, escapes honoured), without recursion and without a Python loop over the
characters, so a hostile body costs a few vectorised passes before anything is parsed.

On the HTTP server, ``JsonBody`` (``request.app[JSON_BODY]``) reads a request's body under the
``[http]`` bounds and counts each refusal by its ``reason``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from aiohttp import web

from ric.errors import RicError

__all__ = [
    "JSON_BODY",
    "REASONS",
    "JsonBody",
    "JsonLimits",
    "JsonRefused",
    "loads",
    "measure",
]

REASONS = (
    "body_too_large",
    "not_json",
    "too_deep",
    "too_many_values",
    "not_finite",
    "number_out_of_range",
)
"""The ``reason`` of every JSON refusal (the label of ``ric_http_refused_total``)."""


class JsonRefused(RicError):
    """A JSON document is refused: ``reason`` is one of ``REASONS``, ``status`` the HTTP
    status to answer (400, or 413 for a body over the size bound), ``detail`` says what."""

    def __init__(self, reason: str, detail: str, status: int = 400) -> None:
        self.reason = reason
        self.detail = detail
        self.status = status
        super().__init__(detail)


@dataclass(frozen=True, slots=True)
class JsonLimits:
    """The bounds of one JSON document: nesting depth and number of values."""

    max_depth: int = 32
    max_values: int = 50_000


def measure(data: bytes) -> tuple[int, int]:
    """``(deepest nesting, values)`` of the UTF-8 JSON text ``data``, from its bytes alone.

    Exact for valid JSON; for invalid JSON, exact up to the first error, which is as far as
    a parser gets. Values count containers plus their members (``[1, 2]`` is three).
    """
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size == 0:
        return 0, 0
    quotes = np.flatnonzero(raw == 0x22)
    slashes = np.flatnonzero(raw == 0x5C)
    if slashes.size and quotes.size:
        # A quote is escaped when an odd run of backslashes ends right before it. Runs are
        # found among the (few) backslash positions, not over every character.
        breaks = np.flatnonzero(np.diff(slashes) != 1)
        run_ends = np.append(slashes[breaks], slashes[-1])
        run_starts = np.insert(slashes[breaks + 1], 0, slashes[0])
        odd = run_ends[(run_ends - run_starts) % 2 == 0] + 1  # odd length: end - start even
        quotes = quotes[~np.isin(quotes, odd)]
    structural = np.flatnonzero(
        (raw == 0x5B) | (raw == 0x7B) | (raw == 0x5D) | (raw == 0x7D) | (raw == 0x2C)
    )
    # Outside strings: an even number of unescaped quotes comes before.
    structural = structural[np.searchsorted(quotes, structural) % 2 == 0]
    kind = raw[structural]
    step = np.zeros(structural.size, dtype=np.int64)
    step[(kind == 0x5B) | (kind == 0x7B)] = 1
    step[(kind == 0x5D) | (kind == 0x7D)] = -1
    opens = int(np.count_nonzero(step == 1))
    commas = structural.size - opens - int(np.count_nonzero(step == -1))
    deepest = int(np.cumsum(step).max()) if step.size else 0
    return max(deepest, 0), 1 + commas + opens


class _Bad:
    """A number the parser met that JSON data may not hold; found again by identity."""

    __slots__ = ("token", "why")

    def __init__(self, token: str, why: str) -> None:
        self.token = token
        self.why = why


def _where(path: list[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(the document)"


def _find(document: Any, bad: _Bad) -> str:
    """Where ``bad`` sits in ``document``, as ``a.b[0]`` (iterative: depth is bounded but
    no recursion is needed)."""
    stack: list[tuple[Any, list[str | int]]] = [(document, [])]
    while stack:
        node, path = stack.pop()
        if node is bad:
            return _where(path)
        if isinstance(node, dict):
            stack.extend((v, [*path, k]) for k, v in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((v, [*path, i]) for i, v in reversed(list(enumerate(node))))
    return _where([])


def loads(data: bytes, limits: JsonLimits) -> Any:
    """Parse ``data`` as UTF-8 JSON within ``limits``; JsonRefused naming the problem when it
    is not JSON, too deep, holds too many values, or holds NaN, Infinity or a number that
    does not fit a double (naming where)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonRefused("not_json", f"the body is not UTF-8 text: {exc}") from None
    depth, values = measure(data)
    if depth > limits.max_depth:
        raise JsonRefused(
            "too_deep",
            f"the JSON body is too deep: {depth} levels of arrays and objects, over the bound "
            f"of {limits.max_depth} ([http] max_json_depth)",
        )
    if values > limits.max_values:
        raise JsonRefused(
            "too_many_values",
            f"the JSON body holds about {values} values, over the bound of {limits.max_values} "
            "([http] max_json_values)",
        )
    bad: list[_Bad] = []

    def constant(name: str) -> _Bad:
        bad.append(_Bad(name, "is not a JSON number (NaN and Infinity are not JSON)"))
        return bad[-1]

    def number(token: str) -> float | _Bad:
        value = float(token)
        if math.isinf(value):
            bad.append(_Bad(token, "does not fit a double"))
            return bad[-1]
        return value

    def integer(token: str) -> int | _Bad:
        if len(token) > 300:  # only then can it overflow a double (or Python's digit limit)
            try:
                float(int(token))
            except (OverflowError, ValueError):
                bad.append(_Bad(token[:20] + "...", "does not fit a double"))
                return bad[-1]
        return int(token)

    try:
        document = json.loads(text, parse_constant=constant, parse_float=number, parse_int=integer)
    except ValueError as exc:
        raise JsonRefused("not_json", f"the body is not JSON: {exc}") from None
    except RecursionError:  # cannot happen below max_depth; kept so a deep body is never a 500
        raise JsonRefused("too_deep", "the JSON body is too deep to parse") from None
    if bad:
        first = bad[0]
        reason = (
            "not_finite"
            if first.token in ("NaN", "Infinity", "-Infinity")
            else ("number_out_of_range")
        )
        raise JsonRefused(reason, f"{_find(document, first)}: {first.token} {first.why}")
    return document


class JsonBody:
    """Reads request bodies as bounded JSON (``[http] max_body_bytes``, ``max_json_depth``,
    ``max_json_values``) and tells ``refused`` the reason of every refusal."""

    def __init__(
        self, max_body_bytes: int, limits: JsonLimits, refused: Callable[[str], None]
    ) -> None:
        self.max_body_bytes = max_body_bytes
        self.limits = limits
        self.refused = refused
        """Counts a refusal by its reason (also used by routes refusing for other bounds)."""

    def too_large(self, size: int | None = None) -> JsonRefused:
        """The refusal of a body over ``max_body_bytes`` (counted)."""
        self.refused("body_too_large")
        got = f" ({size} bytes)" if size is not None else ""
        return JsonRefused(
            "body_too_large",
            f"the request body{got} is larger than the bound of {self.max_body_bytes} bytes "
            "([http] max_body_bytes)",
            413,
        )

    async def read(self, request: web.Request) -> Any:
        """The request's body as JSON; JsonRefused (counted) when it breaks a bound, or None
        when the body is empty."""
        size = request.content_length
        if size is not None and size > self.max_body_bytes:
            raise self.too_large(size)
        try:
            data = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise self.too_large() from None
        if not data.strip():
            return None
        try:
            return loads(data, self.limits)
        except JsonRefused as exc:
            self.refused(exc.reason)
            raise


JSON_BODY = web.AppKey("json_body", JsonBody)
"""How the HTTP server reads JSON bodies: ``await request.app[JSON_BODY].read(request)``."""
