"""The A1-P REST API (O-RAN A1AP v2 paths) on the runtime's HTTP server.

==============================================================  ============================
``GET /A1-P/v2/healthcheck``                                    200 while the policy store
                                                                answers (extension)
``GET /A1-P/v2/policytypes``                                    the policy type ids
``GET /A1-P/v2/policytypes/{policy_type_id}``                   one policy type
``PUT|DELETE /A1-P/v2/policytypes/{policy_type_id}``            (extension) put or delete one
``GET /A1-P/v2/policytypes/{policy_type_id}/policies``          its policy ids
``GET|PUT|DELETE .../policies/{policy_id}``                     one policy; PUT takes
                                                                ``?notificationDestination=``
``GET .../policies/{policy_id}/status``                         its PolicyStatusObject
``GET /api/v1/policies/{policy_type_id}/{policy_id}``           the runtime's own view of that
                                                                status: which xApp, since when
==============================================================  ============================

Every error is ``application/problem+json`` (``title``, ``status``, ``detail``; an invalid
policy adds ``errors``, one per refused field), the server's own answers included (401, 403,
404, 405, 413, 415, 503), on the A1 paths and every other path: ``problem`` is the server's one
error answer. PUT answers 201 with an absolute
``Location`` when it created, 200 when it replaced; DELETE answers 204. Writes pass the
server's access rules like every other write: for a non-RT RIC, a client certificate over
HTTPS (``[http] client_ca`` and ``client_subjects``), as the A1-P OpenAPI has no place for a
token.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any

from aiohttp import web

from ric.a1.policy import PolicyError
from ric.a1.service import A1Service
from ric.a1.workers import OverBudget
from ric.jsonbounds import JSON_BODY, JsonRefused
from ric.sdl import SdlError

__all__ = ["A1", "PREFIX", "PROBLEM_JSON", "problem", "problem_body", "routes"]

log = logging.getLogger(__name__)

A1 = web.AppKey("a1", A1Service)
"""The A1 service the routes serve: ``request.app[A1]``."""

PREFIX = "/A1-P/v2"
PROBLEM_JSON = "application/problem+json"
routes = web.RouteTableDef()


def problem_body(status: int, detail: str, title: str = "", **extra: Any) -> dict[str, Any]:
    """An RFC 9457 ProblemDetails object: ``type`` about:blank, ``title`` the status's phrase
    unless given, ``status``, ``detail``, and any ``extra`` members (A1's ``errors``)."""
    return {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }


def problem(
    status: int,
    detail: str,
    title: str = "",
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    """An error answer of the HTTP server, on any path: ``problem_body`` as
    ``application/problem+json`` with ``status``."""
    body = problem_body(status, detail, title, **extra)
    return web.json_response(body, status=status, content_type=PROBLEM_JSON, headers=headers)


Handler = Callable[[web.Request, A1Service], Awaitable[web.StreamResponse]]


def _a1(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Give ``handler`` the A1 service; PolicyError and store failures as ProblemDetails."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request, request.app[A1])
        except OverBudget as exc:
            request.app[JSON_BODY].refused("budget")
            return problem(exc.status, exc.detail, exc.title, headers={"Retry-After": "1"})
        except PolicyError as exc:
            extra: dict[str, Any] = (
                {"errors": [e.to_json() for e in exc.errors]} if exc.errors else {}
            )
            return problem(exc.status, exc.detail, exc.title, **extra)
        except SdlError as exc:
            log.warning("A1 %s %s: the policy store failed: %s", request.method, request.path, exc)
            return problem(503, f"the policy store is not available: {exc}")

    return wrapped


def _json_media(request: web.Request) -> None:
    """PolicyError 415 unless the body, if any, is declared JSON (or not declared)."""
    kind = request.headers.get("Content-Type", "")
    media = request.content_type
    if kind and media != "application/json" and not media.endswith("+json"):
        raise PolicyError(
            415, f"{request.method} {request.path} takes application/json, not {media!r}"
        )


async def _body(request: web.Request) -> Any:
    """The body as bounded JSON (``[http]`` bounds, see ``ric.jsonbounds``)."""
    _json_media(request)
    try:
        body = await request.app[JSON_BODY].read(request)
    except JsonRefused as exc:
        raise PolicyError(exc.status, exc.detail) from None
    if body is None:
        raise PolicyError(400, f"{request.method} {request.path} needs a JSON body")
    return body


def _written(request: web.Request, created: bool, body: Any) -> web.Response:
    # The standard's Location is the created resource's URI: absolute, as the client reached it.
    headers = {"Location": str(request.url.with_query(None))} if created else None
    return web.json_response(body, status=201 if created else 200, headers=headers)


@routes.get(f"{PREFIX}/healthcheck")
@_a1
async def healthcheck(request: web.Request, a1: A1Service) -> web.StreamResponse:
    """200 while the A1 service can read its store."""
    await a1.type_ids()
    return web.Response(status=200)


@routes.get(f"{PREFIX}/policytypes")
@_a1
async def policy_types(request: web.Request, a1: A1Service) -> web.StreamResponse:
    """The policy type ids."""
    return web.json_response(await a1.type_ids())


@routes.get(f"{PREFIX}/policytypes/{{policy_type_id}}")
@_a1
async def get_policy_type(request: web.Request, a1: A1Service) -> web.StreamResponse:
    """One policy type."""
    return web.json_response(await a1.get_type(request.match_info["policy_type_id"]))


@routes.put(f"{PREFIX}/policytypes/{{policy_type_id}}")
@_a1
async def put_policy_type(request: web.Request, a1: A1Service) -> web.StreamResponse:
    """Create (201) or replace (200) a policy type."""
    type_id = request.match_info["policy_type_id"]
    body = await _body(request)
    created = await a1.put_type(type_id, body)
    return _written(request, created, await a1.get_type(type_id))


@routes.delete(f"{PREFIX}/policytypes/{{policy_type_id}}")
@_a1
async def delete_policy_type(request: web.Request, a1: A1Service) -> web.StreamResponse:
    """Delete a policy type that has no policies."""
    await a1.delete_type(request.match_info["policy_type_id"])
    return web.Response(status=204)


@routes.get(f"{PREFIX}/policytypes/{{policy_type_id}}/policies")
@_a1
async def policies(request: web.Request, a1: A1Service) -> web.StreamResponse:
    """The policy ids of a type."""
    return web.json_response(await a1.policy_ids(request.match_info["policy_type_id"]))


@routes.get(f"{PREFIX}/policytypes/{{policy_type_id}}/policies/{{policy_id}}")
@_a1
async def get_policy(request: web.Request, a1: A1Service) -> web.StreamResponse:
    """One policy."""
    info = request.match_info
    return web.json_response(await a1.get_policy(info["policy_type_id"], info["policy_id"]))


@routes.put(f"{PREFIX}/policytypes/{{policy_type_id}}/policies/{{policy_id}}")
@_a1
async def put_policy(request: web.Request, a1: A1Service) -> web.StreamResponse:
    """Create (201) or update (200) a policy, validated against its type's schema."""
    info = request.match_info
    type_id, policy_id = info["policy_type_id"], info["policy_id"]
    await a1.get_type(type_id)  # an unknown type is 404 before the body is looked at
    body = await _body(request)
    destination = request.query.get("notificationDestination")
    created = await a1.put_policy(type_id, policy_id, body, destination)
    return _written(request, created, body)


@routes.delete(f"{PREFIX}/policytypes/{{policy_type_id}}/policies/{{policy_id}}")
@_a1
async def delete_policy(request: web.Request, a1: A1Service) -> web.StreamResponse:
    """Delete a policy; the xApps that handle its type are told."""
    info = request.match_info
    await a1.delete_policy(info["policy_type_id"], info["policy_id"])
    return web.Response(status=204)


@routes.get(f"{PREFIX}/policytypes/{{policy_type_id}}/policies/{{policy_id}}/status")
@_a1
async def policy_status(request: web.Request, a1: A1Service) -> web.StreamResponse:
    """The enforcement status of a policy, as the xApps that handle its type reported it."""
    info = request.match_info
    return web.json_response(await a1.status(info["policy_type_id"], info["policy_id"]))


@routes.get("/api/v1/policies/{policy_type_id}/{policy_id}")
@_a1
async def policy_status_detail(request: web.Request, a1: A1Service) -> web.StreamResponse:
    """The runtime's own view of a policy's status: the A1 fields, a ``detail`` sentence and
    each handling xApp's state and report (the A1 status body has no room for them)."""
    info = request.match_info
    return web.json_response(await a1.status_detail(info["policy_type_id"], info["policy_id"]))
