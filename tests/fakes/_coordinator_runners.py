"""The runner lifecycle endpoints (protocol §2): register, verify, unregister, reset the token.

Owns the request handling of ``POST /runners`` (legacy registration with a registration token,
GitLab's validations and answers), ``POST /runners/verify``, ``DELETE /runners``,
``DELETE /runners/managers`` and ``POST /runners/reset_authentication_token``, and the runner
authentication every runner-token endpoint (also ``jobs/request``) starts with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ._coordinator_http import HttpFailure, is_true, read_params
from ._coordinator_model import FakeRunner
from ._coordinator_state import CoordinatorState, random_token

__all__ = ["RunnerApi", "authenticate_runner", "check_register_params", "runner_settings"]

_MIN_TIMEOUT_S = 600  # Ci::Runner validates maximum_timeout >= 10 minutes


def authenticate_runner(state: CoordinatorState, params: Mapping[str, Any]) -> FakeRunner:
    """Return the runner whose token is the ``token`` parameter (400 missing, 403 unknown)."""
    token = params.get("token")
    if not isinstance(token, str) or not token:
        raise HttpFailure(400, "400 Bad request - token is missing")
    runner = state.runners.get(token)
    if runner is None:
        raise HttpFailure(403, "403 Forbidden")
    return runner


def runner_settings(params: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the server-side settings of a legacy registration into FakeRunner fields.

    Raises:
        HttpFailure: 400 with GitLab's message for an invalid or conflicting setting.
    """
    check_register_params(params)
    settings: dict[str, Any] = {
        "description": str(params.get("description") or ""),
        "maintenance_note": str(params.get("maintenance_note") or params.get("maintainer_note") or ""),
        "tag_list": _tags(params.get("tag_list")),
    }
    for key in ("run_untagged", "locked", "paused"):
        if key in params:
            settings[key] = is_true(params[key])
    if "active" in params:
        settings["paused"] = not is_true(params["active"])
    settings["access_level"] = params.get("access_level", "not_protected")
    errors: dict[str, list[str]] = {}
    if params.get("maximum_timeout") is not None:
        try:
            settings["maximum_timeout"] = int(params["maximum_timeout"])
        except (TypeError, ValueError):
            raise HttpFailure(400, "400 Bad request - maximum_timeout is invalid") from None
        if settings["maximum_timeout"] < _MIN_TIMEOUT_S:
            errors["maximum_timeout"] = ["needs to be at least 10 minutes"]
    if not settings["tag_list"] and settings.get("run_untagged") is False:
        errors["tags_list"] = ["can not be empty when runner is not allowed to pick untagged jobs"]
    if errors:
        raise HttpFailure(400, errors)
    return settings


def check_register_params(params: Mapping[str, Any]) -> None:
    """Apply the Grape parameter rules of ``POST /runners`` (checked before the token)."""
    for first, second in (("maintainer_note", "maintenance_note"), ("active", "paused")):
        if first in params and second in params:
            raise HttpFailure(400, f"400 Bad request - {first}, {second} are mutually exclusive")
    if params.get("access_level", "not_protected") not in ("not_protected", "ref_protected"):
        raise HttpFailure(400, "400 Bad request - access_level does not have a valid value")


class RunnerApi:
    """Handlers of the ``/api/v4/runners`` endpoints."""

    def __init__(self, state: CoordinatorState) -> None:
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v4/runners", self.register, name="register"),
            web.post("/api/v4/runners/verify", self.verify, name="verify"),
            web.delete("/api/v4/runners", self.unregister, name="unregister"),
            web.delete("/api/v4/runners/managers", self.unregister_manager, name="unregister_manager"),
            web.post("/api/v4/runners/reset_authentication_token", self.reset_token, name="reset_token"),
        ]

    async def register(self, request: web.Request) -> web.StreamResponse:
        """Register with a registration token (legacy flow): 201, 403, 410 or 400."""
        params = await read_params(request)
        token = params.get("token")
        if not isinstance(token, str) or not token:
            raise HttpFailure(400, "400 Bad request - token is missing")
        check_register_params(params)
        # RegisterRunnerService: any token gets 410 while registration tokens are disallowed
        if not self.state.registration_enabled:
            raise HttpFailure(410, "410 Gone - runner registration disallowed")
        if token != self.state.registration_token:
            raise HttpFailure(403, "403 Forbidden - invalid token supplied")
        # legacy-registered runners get the glrtr- prefix (Ci::Runners::Registrable)
        settings = runner_settings(params)
        runner = self.state.create_runner(random_token("glrtr-"), registered_with_token=True, **settings)
        info = params.get("info")
        runner.last_info = info if isinstance(info, dict) else None
        return web.json_response(_details(runner), status=201)

    async def verify(self, request: web.Request) -> web.StreamResponse:
        """Check a runner token; record the manager (system_id) and its info."""
        params = await read_params(request)
        runner = authenticate_runner(self.state, params)
        self.state.heartbeat(runner, params)
        return web.json_response(_details(runner), status=200)

    async def unregister(self, request: web.Request) -> web.StreamResponse:
        """Delete the whole runner."""
        runner = authenticate_runner(self.state, await read_params(request))
        self.state.remove_runner(runner)
        return web.Response(status=204)

    async def unregister_manager(self, request: web.Request) -> web.StreamResponse:
        """Delete one runner manager (one host leaves, the runner stays)."""
        params = await read_params(request)
        runner = authenticate_runner(self.state, params)
        system_id = params.get("system_id")
        if not isinstance(system_id, str) or not system_id:
            raise HttpFailure(400, "400 Bad request - system_id is missing")
        if runner.managers.pop(system_id, None) is None:
            raise HttpFailure(404, "404 Runner manager not found Not Found")
        return web.Response(status=204)

    async def reset_token(self, request: web.Request) -> web.StreamResponse:
        """Rotate the runner's token; the old one stops working at once."""
        params = await read_params(request)
        runner = authenticate_runner(self.state, params)
        self.state.heartbeat(runner, params)
        token = self.state.rotate_token(runner)
        return web.json_response({"token": token, "token_expires_at": runner.token_expires_at}, status=201)


def _details(runner: FakeRunner) -> dict[str, Any]:
    """Entities::Ci::RunnerRegistrationDetails."""
    return {"id": runner.id, "token": runner.token, "token_expires_at": runner.token_expires_at}


def _tags(value: object) -> list[str]:
    # Grape's CommaSeparatedToArray: "a, b" or ["a", "b"]
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else []
    return [str(item).strip() for item in items if str(item).strip()]
