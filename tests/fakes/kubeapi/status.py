"""Kubernetes ``Status`` error bodies, built the way apimachinery's ``errors`` package builds them.

Owns :class:`StatusError` (raised anywhere in the fake, turned into an HTTP answer by the server)
and one constructor per reason the real API server uses. Messages follow the upstream format
strings (``pods "x" not found``, ``Pod "x" is invalid: ...``) because clients, ours included, show
them to users and sometimes match on them. It does not decide *when* an error happens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Cause",
    "StatusError",
    "already_exists",
    "bad_request",
    "conflict",
    "expired",
    "forbidden",
    "internal_error",
    "invalid",
    "method_not_allowed",
    "not_found",
    "status_body",
    "unauthorized",
    "unsupported_media_type",
]


@dataclass(frozen=True, slots=True)
class Cause:
    """One field error of a 422 answer (``details.causes[]``)."""

    reason: str  # FieldValueInvalid, FieldValueRequired, FieldValueNotSupported, ...
    message: str  # "Invalid value: ...": without the field
    field: str  # "spec.containers[0].name"

    @property
    def text(self) -> str:
        """Render the cause as field.ErrorList renders one error: ``field: message``."""
        return f"{self.field}: {self.message}" if self.field else self.message

    def as_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}


@dataclass(slots=True)
class StatusError(Exception):
    """An API error answered as a ``Status`` object with HTTP status ``code``."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] | None = field(default=None)

    def __str__(self) -> str:
        return f"{self.code} {self.reason}: {self.message}"

    def body(self) -> dict[str, Any]:
        """Return the wire ``Status`` (kind Status, apiVersion v1, status Failure)."""
        return status_body(self.code, self.reason, self.message, self.details)


def status_body(code: int, reason: str, message: str, details: dict[str, Any] | None) -> dict[str, Any]:
    """Build a failure ``Status`` dict with the field order the API server writes."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details:
        body["details"] = details
    body["code"] = code
    return body


def _details(name: str, group: str, kind: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name} if name else {}
    if group:
        out["group"] = group
    out["kind"] = kind
    return out


def _qualified(group: str, plural: str) -> str:
    return f"{plural}.{group}" if group else plural


def not_found(group: str, plural: str, name: str) -> StatusError:
    """``pods "x" not found`` (404 NotFound)."""
    return StatusError(
        404, "NotFound", f'{_qualified(group, plural)} "{name}" not found', _details(name, group, plural)
    )


def already_exists(group: str, plural: str, name: str) -> StatusError:
    """``pods "x" already exists`` (409 AlreadyExists)."""
    return StatusError(
        409, "AlreadyExists", f'{_qualified(group, plural)} "{name}" already exists', _details(name, group, plural)
    )


def conflict(group: str, plural: str, name: str, why: str) -> StatusError:
    """``Operation cannot be fulfilled on pods "x": <why>`` (409 Conflict)."""
    message = f'Operation cannot be fulfilled on {_qualified(group, plural)} "{name}": {why}'
    return StatusError(409, "Conflict", message, _details(name, group, plural))


def invalid(group: str, kind: str, name: str, causes: list[Cause]) -> StatusError:
    """``Pod "x" is invalid: [a, b]`` (422 Invalid) with one cause per field error."""
    texts = [c.text for c in causes]
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    details = _details(name, group, kind)
    details["causes"] = [c.as_dict() for c in causes]
    return StatusError(422, "Invalid", f'{kind} "{name}" is invalid: {joined}', details)


def bad_request(message: str) -> StatusError:
    """400 BadRequest with a bare message and no details, as ``errors.NewBadRequest``."""
    return StatusError(400, "BadRequest", message)


def forbidden(group: str, plural: str, name: str, why: str) -> StatusError:
    """``pods "x" is forbidden: <why>`` (403 Forbidden)."""
    what = f'{_qualified(group, plural)} "{name}"' if name else _qualified(group, plural)
    return StatusError(403, "Forbidden", f"{what} is forbidden: {why}", _details(name, group, plural))


def unauthorized() -> StatusError:
    """401 Unauthorized, as the authentication filter answers it."""
    return StatusError(401, "Unauthorized", "Unauthorized")


def expired(message: str) -> StatusError:
    """410 Expired: the watch cache no longer holds the requested resourceVersion."""
    return StatusError(410, "Expired", message)


def method_not_allowed() -> StatusError:
    return StatusError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def unsupported_media_type(content_type: str) -> StatusError:
    return StatusError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml; "
        f'got "{content_type}"',
    )


def internal_error(message: str) -> StatusError:
    return StatusError(500, "InternalError", f"Internal error occurred: {message}", {"causes": [{"message": message}]})
