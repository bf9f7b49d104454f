"""The job endpoints (protocol §3, §5, §6): request a job, update it, append to its trace.

Owns the request handling of ``POST /jobs/request`` (Workhorse's long poll in front of Rails'
queue search), ``PUT /jobs/:id`` (state transitions, two-phase accept, 202 on final updates,
checksum check) and ``PATCH /jobs/:id/trace`` (Content-Range, 416 resync, server-side masking of
the job token), plus the job-token authentication the artifact endpoints share.

Flow of ``POST /jobs/request``, as GitLab does it:

1. 400 without ``token``, 403 for an unknown one.
2. Workhorse (only when ``long_poll_s`` > 0 and the JSON body has ``last_update``): if it equals
   the runner's queue version, hold until the queue changes or ``long_poll_s`` passes, then answer
   204 *without* ``X-GitLab-Last-Update``. Otherwise go on at once.
3. Rails: record the runner manager (system_id, info); a paused runner gets 204; a ``last_update``
   equal to the version gets 204 with that value; else search the queue (dropping jobs that need an
   undeclared feature) and answer 201 with the job, or 204 with the version read before the search.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ._coordinator_http import HttpFailure, is_true, read_params, route_id
from ._coordinator_model import FAILURE_REASONS, FakeJob, JobState
from ._coordinator_runners import authenticate_runner
from ._coordinator_state import CoordinatorState

__all__ = ["JobApi", "authenticate_job", "checksum_matches", "job_token"]

_CONTENT_RANGE = re.compile(r"(\d+)-(\d+)")
_FINAL_STATES = {"success": JobState.SUCCESS, "failed": JobState.FAILED}


def job_token(request: web.Request, params: Mapping[str, Any] | None = None) -> str | None:
    """Return the job token from the ``token`` parameter or the ``JOB-TOKEN`` header."""
    token = (params or request.query).get("token") or request.headers.get("JOB-TOKEN")
    return token if isinstance(token, str) else None


def authenticate_job(
    state: CoordinatorState, job_id: int, token: str | None, *, accept_pending: bool = False
) -> FakeJob:
    """Return job ``job_id`` if ``token`` is its token and it runs (authenticate_job!).

    ``accept_pending`` also lets a two-phase job that waits for its accept PUT through.

    Raises:
        HttpFailure: 403; with ``Job-Status`` when the token is right but the job is not running.
    """
    job = state.jobs.get(job_id)
    if job is None or token != job.token:
        # GitLab answers a generic 403 with no job details when the token does not match
        raise HttpFailure(403, "403 Forbidden")
    if job.is_processing or (accept_pending and job.awaits_acceptance):
        return job
    raise HttpFailure(403, "403 Forbidden - Job is not processing on runner", {"Job-Status": job.state.value})


def checksum_matches(trace: bytes, params: Mapping[str, Any]) -> bool | None:
    """Compare a final update's ``output`` (checksum, bytesize) with the stored trace; None if absent."""
    output = params.get("output")
    output = output if isinstance(output, dict) else {}
    checksum = output.get("checksum") or params.get("checksum")
    bytesize = output.get("bytesize")
    if checksum is None and bytesize is None:
        return None
    ok = checksum is None or checksum == f"crc32:{zlib.crc32(trace):08x}"
    return ok and (bytesize is None or bytesize == len(trace))


class JobApi:
    """Handlers of ``/api/v4/jobs/request``, ``/api/v4/jobs/:id`` and ``/api/v4/jobs/:id/trace``."""

    def __init__(self, state: CoordinatorState) -> None:
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v4/jobs/request", self.request_job, name="request"),
            web.put("/api/v4/jobs/{id}", self.update_job, name="update"),
            web.patch("/api/v4/jobs/{id}/trace", self.patch_trace, name="trace"),
        ]

    async def request_job(self, request: web.Request) -> web.StreamResponse:
        """Hand the runner a job (201) or tell it there is none (204)."""
        params = await read_params(request)
        runner = authenticate_runner(self.state, params)
        last_update = params.get("last_update")
        if self._workhorse_holds(request, last_update) and self.state.queue_version(runner) == last_update:
            await self.state.wait_for_tick(runner, self.state.long_poll_s)
            return web.Response(status=204, headers={"Gitlab-Ci-Builds-Polling": "yes"})
        self.state.heartbeat(runner, params)
        if runner.paused:
            return _no_job(self.state.queue_version(runner))
        if last_update == self.state.queue_version(runner):
            return _no_job(str(last_update))
        new_update = self.state.queue_version(runner)
        job = self.state.pick_job(runner, params)
        if job is None:
            return _no_job(new_update)
        return web.Response(
            status=201, body=json.dumps(job.payload).encode(), content_type="application/json"
        )

    async def update_job(self, request: web.Request) -> web.StreamResponse:
        """Apply a job update: keep-alive, two-phase accept, or the final state."""
        params = await read_params(request)
        job = authenticate_job(self.state, route_id(request), job_token(request, params), accept_pending=True)
        job.updates.append(params)
        status, headers = self._apply_update(job, params)
        return web.Response(
            status=status, text=str(status), headers={"Job-Status": job.state.value, **headers}
        )

    async def patch_trace(self, request: web.Request) -> web.StreamResponse:
        """Append a trace chunk at the offset its Content-Range names (416 when it is not the end)."""
        job = authenticate_job(self.state, route_id(request), job_token(request))
        content_range = request.headers.get("Content-Range")
        if content_range is None:
            raise HttpFailure(400, "400 Missing header Content-Range")
        match = _CONTENT_RANGE.fullmatch(content_range.strip())
        if match is None:
            raise HttpFailure(400, "400 Bad request - malformed Content-Range")
        start, data = int(match[1]), await request.read()
        if start != len(job.trace):
            raise HttpFailure(416, "416 Range Not Satisfiable", {"Range": f"0-{len(job.trace)}"})
        limit = self.state.trace_size_limit
        if limit is not None and len(job.trace) + len(data) > limit:
            job.failure_reason = "trace_size_exceeded"
            job.transition(JobState.FAILED)
            raise HttpFailure(403, "403 Forbidden")
        if start == 0 and is_true(request.query.get("debug_trace", "false")):
            job.debug_trace = True
        # Ci::Build#hide_secrets: the job token becomes x's of the same length, within this chunk
        job.trace += data.replace(job.token.encode(), b"x" * len(job.token))
        headers = {
            "Job-Status": job.state.value,
            "Range": f"0-{len(job.trace)}",
            "X-GitLab-Trace-Update-Interval": str(self.state.trace_update_interval),
        }
        return web.Response(status=202, headers=headers)

    def _workhorse_holds(self, request: web.Request, last_update: object) -> bool:
        # Workhorse long-polls only JSON bodies that carry a last_update
        return (
            self.state.long_poll_s > 0
            and request.content_type == "application/json"
            and isinstance(last_update, str)
            and bool(last_update)
        )

    def _apply_update(self, job: FakeJob, params: Mapping[str, Any]) -> tuple[int, dict[str, str]]:
        new_state = params.get("state")
        if job.awaits_acceptance and new_state in ("pending", "running"):
            if new_state == "running":
                job.transition(JobState.RUNNING)  # the two-phase accept
            return 200, {}
        if new_state == "running":
            return 200, {}  # keep-alive: GitLab only touches updated_at
        if not isinstance(new_state, str) or new_state not in _FINAL_STATES:
            raise HttpFailure(
                400, f"400 Bad request - state {new_state!r} is not valid", {"Job-Status": job.state.value}
            )
        if self.state.final_update_202 > 0 and job.is_processing:
            # trace chunks "still being persisted": gitlab-runner resends the final PUT
            self.state.final_update_202 -= 1
            return 202, {"X-GitLab-Trace-Update-Interval": str(self.state.final_update_202_interval)}
        self._finish(job, _FINAL_STATES[new_state], params)
        return 200, {}

    def _finish(self, job: FakeJob, final: JobState, params: Mapping[str, Any]) -> None:
        job.checksum_ok = checksum_matches(bytes(job.trace), params)
        exit_code = params.get("exit_code")
        job.exit_code = exit_code if isinstance(exit_code, int) else None
        if job.state is JobState.CANCELING:
            job.transition(JobState.CANCELED)  # success or failed from canceling becomes canceled
        elif final is JobState.SUCCESS:
            job.transition(JobState.SUCCESS)
        else:
            reason = params.get("failure_reason")
            job.failure_reason = reason if reason in FAILURE_REASONS else "unknown_failure"
            job.allow_failure = job.exit_code is not None and job.exit_code in job.allow_failure_exit_codes
            job.transition(JobState.FAILED)


def _no_job(last_update: str) -> web.Response:
    return web.Response(status=204, headers={"X-GitLab-Last-Update": last_update})
