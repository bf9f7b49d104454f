"""What every request to the fake goes through: faults, error bodies, recording.

Owns the middleware (scheduled ``fail_next`` answers first, then the handler; every error turned
into GitLab's JSON ``{"message": ...}``; unread request bodies drained so a streaming client always
gets its answer; every exchange appended to ``requests``), the ``HttpFailure`` exception handlers
raise, and parameter reading (Grape merges query and JSON body). It knows no endpoint semantics.
"""

from __future__ import annotations

import http
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from multidict import CIMultiDict

from ._coordinator_model import RecordedRequest
from ._coordinator_state import CoordinatorState

__all__ = ["HttpFailure", "build_middleware", "error_response", "is_true", "read_params", "route_id"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Message = str | dict[str, list[str]]


class HttpFailure(Exception):
    """Raised by a handler to answer ``status`` with ``{"message": message}``."""

    def __init__(self, status: int, message: Message, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def error_response(status: int, message: Message, headers: Mapping[str, str] | None = None) -> web.Response:
    """Answer like GitLab's API errors: JSON ``{"message": ...}``."""
    return web.json_response({"message": message}, status=status, headers=headers)


def reason(status: int) -> str:
    """Return ``"<status> <phrase>"``, GitLab's default message for a bare error status."""
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


async def read_params(request: web.Request) -> dict[str, Any]:
    """Return the query parameters overlaid with the JSON body, as Grape's params are.

    Raises:
        HttpFailure: 400 when the body is not a JSON object.
    """
    params: dict[str, Any] = dict(request.query)
    if request.content_type != "application/json" or not request.body_exists:
        return params
    try:
        body = await request.json()
    except ValueError:
        raise HttpFailure(400, "400 Bad request - the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise HttpFailure(400, "400 Bad request - the body is not a JSON object")
    params.update(body)
    return params


def route_id(request: web.Request, key: str = "id") -> int:
    """Return the integer path parameter ``key`` (404 when it is not a number, like Rails)."""
    try:
        return int(request.match_info[key])
    except ValueError:
        raise HttpFailure(404, "404 Not Found") from None


def is_true(value: object) -> bool:
    """Coerce a Grape Boolean parameter (``true``/``1``/``yes``...)."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"true", "1", "yes", "t", "y", "on"}


def build_middleware(state: CoordinatorState) -> Middleware:
    """Return the middleware that applies faults, shapes errors and records every exchange."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await _json_body(request)
        fault = state.take_fault(_endpoint(request))
        if fault is not None:
            response: web.StreamResponse = error_response(fault.status, reason(fault.status), fault.headers)
        else:
            response = await _handle(request, handler)
        await _drain(request)
        if not response.prepared:
            response.headers.setdefault(
                "X-Request-Id", request.headers.get("X-Request-Id", secrets.token_hex(16))
            )
        if not state.record_requests:
            return response
        state.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=CIMultiDict(request.headers),
                json=body,
                status=response.status,
                response_headers=CIMultiDict(response.headers),
            )
        )
        return response

    return middleware


async def _handle(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HttpFailure as failure:
        return error_response(failure.status, failure.message, failure.headers)
    except web.HTTPException as exc:  # aiohttp's own: unknown route (404), wrong method (405)...
        if exc.status < 400:
            raise
        headers = {
            k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")
        }
        return error_response(exc.status, reason(exc.status), headers)


def _endpoint(request: web.Request) -> str | None:
    name = request.match_info.route.name
    if name is None and ".git/" in request.path:
        return "git"
    return name


async def _json_body(request: web.Request) -> Any:
    """Read and parse a JSON body for the record (aiohttp caches it for the handler)."""
    if request.content_type != "application/json" or not request.body_exists:
        return None
    raw = await request.read()
    try:
        return json.loads(raw)
    except ValueError:
        return None


async def _drain(request: web.Request) -> None:
    # Workhorse reads the whole upload before Rails answers; a streaming client expects that.
    while request.can_read_body and await request.content.readany():
        pass
