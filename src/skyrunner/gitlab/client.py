"""The GitLab runner API client: the only place that speaks HTTP to GitLab.

One :class:`CoordinatorClient` per ``[[runners]]`` entry; it implements the job side's
``Coordinator`` protocol (``update_job``, ``patch_trace``) and the runner endpoints (register,
verify, unregister, job request). httpx2 errors and HTTP statuses are translated here, once, into
the exception tree (:func:`raise_for_status`); every call is retried on ``ApiUnavailable``
(network error, 408, 429, 5xx) with exponential backoff and jitter from 100 ms up to 60 s,
honouring ``Retry-After``, as gitlab-runner does (protocol §0).
"""

from __future__ import annotations

import logging
import secrets
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx2 as httpx
import stamina
from pydantic import SecretStr, ValidationError

from skyrunner.errors import ApiAuthError, ApiError, ApiUnavailable, TraceRangeError, cut
from skyrunner.gitlab.models import Registration, RegistrationRequest, RunnerInfo
from skyrunner.job.coordinator import JobRef, JobUpdate, PatchResult, UpdateResult

__all__ = ["CoordinatorClient", "JobRequestResult", "parse_range_end", "raise_for_status"]

log = logging.getLogger(__name__)

RETRY_ATTEMPTS: Final = 5
RETRY_WAIT_INITIAL_S: Final = 0.1
RETRY_WAIT_MAX_S: Final = 60.0
LONG_POLL_READ_S: Final = 75.0  # Workhorse holds job requests up to ~50 s
DEFAULT_READ_S: Final = 60.0


def _timeout(read_s: float) -> httpx.Timeout:
    """Connect within 30 s, write and wait for a pooled connection up to 60 s, read ``read_s``."""
    return httpx.Timeout(connect=30.0, read=read_s, write=60.0, pool=60.0)


_CLIENT_TIMEOUT: Final = _timeout(DEFAULT_READ_S)
_LONG_POLL_TIMEOUT: Final = _timeout(LONG_POLL_READ_S)


@dataclass(frozen=True, slots=True)
class JobRequestResult:
    """A job request's answer: the payload when a job was assigned, and the queue version."""

    payload: Mapping[str, Any] | None
    last_update: str | None


def parse_range_end(header: str | None) -> int | None:
    """The size in a ``Range: 0-<size>`` header GitLab sends with trace answers."""
    if not header:
        return None
    _, _, end = header.partition("-")
    return int(end) if end.strip().isdigit() else None


def _retry_after(response: httpx.Response) -> float | None:
    for name in ("Retry-After", "RateLimit-ResetTime"):
        value = response.headers.get(name, "").strip()
        if value.isdigit():
            return float(value)
    return None


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return cut(response.text or response.reason_phrase)
    if isinstance(body, Mapping) and "message" in body:
        return cut(str(body["message"]))
    return cut(response.text)


def raise_for_status(response: httpx.Response, what: str, *, job_endpoint: bool = False) -> None:
    """Translate an error status into the exception tree (the one seam for HTTP statuses)."""
    status = response.status_code
    if status < 400:
        return
    job_status = response.headers.get("Job-Status")
    text = f"{what}: {status} {_message(response)}"
    if status in (408, 429) or status >= 500:
        raise ApiUnavailable(text, status=status, job_status=job_status, retry_after=_retry_after(response))
    if status in (401, 403) or (job_endpoint and status in (404, 409)):
        raise ApiAuthError(text, status=status, job_status=job_status)
    if status == 416:
        stored = parse_range_end(response.headers.get("Range"))
        raise TraceRangeError(text, stored=stored or 0, job_status=job_status)
    raise ApiError(text, status=status, job_status=job_status)


def _backoff(exc: Exception) -> bool | float:
    """stamina's hook: retry ApiUnavailable, after Retry-After when GitLab gave one."""
    if isinstance(exc, ApiUnavailable):
        return exc.retry_after if exc.retry_after else True
    return False


class CoordinatorClient:
    """Talks to one GitLab instance for one runner token."""

    def __init__(
        self,
        url: str,
        *,
        token: SecretStr,
        system_id: str,
        info: RunnerInfo,
        ca_file: str = "",
        transport: httpx.AsyncBaseTransport | None = None,
        on_response: Callable[[str, int], None] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.system_id = system_id
        self.info = info
        self._on_response = on_response
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True
        self._http = httpx.AsyncClient(
            base_url=f"{self.url}/api/v4/",
            timeout=_CLIENT_TIMEOUT,
            headers={"User-Agent": f"skyrunner {info.version} ({info.revision}; {info.executable_arch})"},
            transport=transport,
            verify=verify,
            follow_redirects=False,
        )

    async def __aenter__(self) -> CoordinatorClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- plumbing ----------------------------------------------------------------------------
    async def _send(
        self, endpoint: str, method: str, path: str, *, job_endpoint: bool = False, long_poll: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:  # fmt: skip
        """Send one request, retried on ApiUnavailable; errors come back as our exceptions."""
        headers = dict(kwargs.pop("headers", {}))
        headers["X-Request-Id"] = secrets.token_hex(16)
        async for attempt in stamina.retry_context(
            on=_backoff, attempts=RETRY_ATTEMPTS, timeout=None, wait_initial=RETRY_WAIT_INITIAL_S,
            wait_max=RETRY_WAIT_MAX_S, wait_jitter=RETRY_WAIT_INITIAL_S,
        ):  # fmt: skip
            with attempt:
                response = await self._once(endpoint, method, path, headers, long_poll, kwargs)
                raise_for_status(response, endpoint, job_endpoint=job_endpoint)
                return response
        raise AssertionError("unreachable: stamina re-raises the last error")  # pragma: no cover

    async def _once(
        self, endpoint: str, method: str, path: str, headers: dict[str, str], long_poll: bool, kwargs: dict[str, Any],
    ) -> httpx.Response:  # fmt: skip
        timeout = _LONG_POLL_TIMEOUT if long_poll else httpx.USE_CLIENT_DEFAULT
        try:
            response = await self._http.request(method, path, headers=headers, timeout=timeout, **kwargs)
        except httpx.TransportError as exc:
            if self._on_response:
                self._on_response(endpoint, 0)
            raise ApiUnavailable(f"{endpoint}: {self.url} unreachable: {type(exc).__name__}") from exc
        if self._on_response:
            self._on_response(endpoint, response.status_code)
        log.debug(
            "%s %s -> %d (request id %s)",
            method,
            path,
            response.status_code,
            response.headers.get("X-Request-Id"),
        )
        return response

    def _runner_body(self, **extra: Any) -> dict[str, Any]:
        return {"token": self.token.get_secret_value(), **extra}

    def _runner_headers(self) -> dict[str, str]:
        return {"RUNNER-TOKEN": self.token.get_secret_value(), "Accept": "application/json"}

    # -- runner endpoints --------------------------------------------------------------------
    async def register(self, registration_token: SecretStr, request: RegistrationRequest) -> Registration:
        """Legacy registration (``POST /runners``) with a registration token."""
        body = {
            "token": registration_token.get_secret_value(),
            "info": self.info.to_wire(),
            **request.to_wire(),
        }
        response = await self._send(
            "register", "POST", "runners", json=body, headers={"Accept": "application/json"}
        )
        return self._registration(response, "register")

    async def verify(self) -> Registration:
        """Check the runner token (``POST /runners/verify``); raises ApiAuthError when unknown."""
        body = self._runner_body(system_id=self.system_id, info=self.info.to_wire())
        response = await self._send(
            "verify", "POST", "runners/verify", json=body, headers=self._runner_headers()
        )
        if response.headers.get("Content-Type", "").startswith("application/json"):
            return self._registration(response, "verify")
        return Registration(token=self.token.get_secret_value())  # older GitLab answers a plain "200"

    async def unregister(self) -> None:
        """Delete the whole runner (``DELETE /runners``), as for legacy tokens."""
        await self._send(
            "unregister", "DELETE", "runners", json=self._runner_body(), headers=self._runner_headers()
        )

    async def unregister_manager(self) -> None:
        """Remove this host's runner manager (``DELETE /runners/managers``), as for glrt- tokens."""
        body = self._runner_body(system_id=self.system_id)
        await self._send(
            "unregister_manager", "DELETE", "runners/managers", json=body, headers=self._runner_headers()
        )

    async def reset_token(self) -> Registration:
        response = await self._send(
            "reset_token", "POST", "runners/reset_authentication_token", json=self._runner_body(),
            headers=self._runner_headers(),
        )  # fmt: skip
        return self._registration(response, "reset_token")

    async def request_job(self, last_update: str | None) -> JobRequestResult:
        """Ask for a job (``POST /jobs/request``); long-polls when ``last_update`` is given."""
        body = self._runner_body(system_id=self.system_id, info=self.info.to_wire())
        if last_update:
            body["last_update"] = last_update
        response = await self._send(
            "request_job", "POST", "jobs/request", json=body, headers=self._runner_headers(),
            long_poll=True,
        )  # fmt: skip
        if response.status_code == 204:
            return JobRequestResult(None, response.headers.get("X-GitLab-Last-Update") or last_update)
        if response.status_code != 201:
            raise ApiError(
                f"request_job: unexpected status {response.status_code}", status=response.status_code
            )
        if not response.headers.get("Content-Type", "").startswith("application/json"):
            raise ApiError("request_job: the job payload is not application/json", status=201)
        try:
            payload = response.json()
        except ValueError as exc:
            raise ApiError("request_job: the job payload is not valid json", status=201) from exc
        if not isinstance(payload, Mapping):
            raise ApiError("request_job: the job payload is not an object", status=201)
        return JobRequestResult(payload, last_update)

    # -- job endpoints (the Coordinator protocol) -------------------------------------------
    async def update_job(self, job: JobRef, update: JobUpdate) -> UpdateResult:
        """``PUT /jobs/:id``; ``accepted`` is False on 202 (send the final update again)."""
        body: dict[str, Any] = {
            "token": job.token.get_secret_value(),
            "state": update.state,
            "info": self.info.to_wire(),
        }
        if update.failure_reason:
            body["failure_reason"] = update.failure_reason
        if update.exit_code is not None:
            body["exit_code"] = update.exit_code
        if update.checksum is not None:
            body["checksum"] = update.checksum
            body["output"] = {"checksum": update.checksum, "bytesize": update.bytesize}
        response = await self._send(
            "update_job", "PUT", f"jobs/{job.id}", json=body, job_endpoint=True,
            headers={"JOB-TOKEN": job.token.get_secret_value()},
        )  # fmt: skip
        return UpdateResult(
            job_status=response.headers.get("Job-Status"),
            update_interval_s=_interval(response),
            accepted=response.status_code != 202,
        )

    async def patch_trace(self, job: JobRef, offset: int, data: bytes) -> PatchResult:
        """``PATCH /jobs/:id/trace`` with ``Content-Range: start-end`` (end inclusive)."""
        response = await self._send(
            "patch_trace", "PATCH", f"jobs/{job.id}/trace", content=data, job_endpoint=True,
            params={"debug_trace": "false"},
            headers={
                "JOB-TOKEN": job.token.get_secret_value(),
                "Content-Type": "text/plain",
                "Content-Range": f"{offset}-{offset + len(data) - 1}",
            },
        )  # fmt: skip
        stored = parse_range_end(response.headers.get("Range"))
        return PatchResult(
            job_status=response.headers.get("Job-Status"),
            update_interval_s=_interval(response),
            stored=stored if stored is not None else offset + len(data),
        )

    @staticmethod
    def _registration(response: httpx.Response, what: str) -> Registration:
        try:
            return Registration.model_validate_json(response.content)
        except ValidationError as exc:
            raise ApiError(
                f"{what}: unexpected answer: {cut(response.text)}", status=response.status_code
            ) from exc


def _interval(response: httpx.Response) -> float | None:
    value = response.headers.get("X-GitLab-Trace-Update-Interval", "").strip()
    return float(value) if value.isdigit() and int(value) > 0 else None
