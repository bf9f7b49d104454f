"""LocalCoordinator: the stand-in for GitLab when ``skyrunner exec`` runs a pipeline locally.

It plays both of GitLab's parts, so that jobs run through the very JobRunner, helper and
executors production uses:

* **in process**, the :class:`~skyrunner.job.coordinator.Coordinator` protocol: ``update_job``
  (accept, keep-alive, final state with failure reason and exit code) and ``patch_trace``
  (``Content-Range`` offsets checked like GitLab: a chunk must start where the stored trace
  ends, else ``TraceRangeError`` with the stored size). Each job's trace is kept, written raw
  to its log file and handed to ``on_trace``.
* **over HTTP on 127.0.0.1**, what the helper reaches from inside a job:
  ``POST /api/v4/jobs/:id/artifacts`` (one multipart ``file`` part, ``artifact_format``,
  ``artifact_type`` and ``expire_in`` in the query; stored under
  ``.skyrunner/artifacts/<pipeline>/<job id>/``), ``GET /api/v4/jobs/:id/artifacts`` (the job's
  archive, for a running job's ``JOB-TOKEN``) and git smart HTTP for the sources (``_githttp``,
  user ``gitlab-ci-token`` with a running job's token). Who may do what is decided here
  (``artifact_upload``, ``artifact_download``, ``git_authorized``); the aiohttp.web side lives
  in ``_localhttp``.

Lifecycle: entering the context binds the listening socket, so ``url`` is known and requests
queue in its backlog at once. The HTTP server starts when the first connection arrives, or at once
with ``serve_now`` (jobs that will call: sources over HTTP, artifacts): aiohttp takes a quarter of
a second to import (it builds two TLS contexts), which a pipeline of shell jobs without artifacts
never needs, and which otherwise happens in a thread while jobs run rather than before them. A
failure to start it cancels whoever entered the context.

Jobs are registered with :meth:`LocalCoordinator.add_job` before their JobRunner starts; the
scheduler reads the outcome back with :meth:`LocalCoordinator.record`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hmac
import importlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Final
from urllib.parse import quote

from skyrunner.errors import ApiAuthError, SkyrunnerError, TraceRangeError
from skyrunner.job.coordinator import JobRef, JobUpdate, PatchResult, UpdateResult
from skyrunner.pipeline.workspace import Workspace

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["GIT_USER", "HttpRefusal", "JobRecord", "LocalCoordinator", "LocalJobState"]

log = logging.getLogger(__name__)

GIT_USER: Final = "gitlab-ci-token"
TRACE_INTERVAL_S: Final = 0.5  # asked of the TraceSink after its first patch: a live log, locally
_ARCHIVE: Final = "archive"
_HTTP_MODULE: Final = "skyrunner.pipeline._localhttp"


class LocalJobState(enum.StrEnum):
    """A job's state as the coordinator records it (GitLab's, for what a runner can reach)."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class JobRecord:
    """What the coordinator knows about a job: its state, and what its final update said."""

    id: int
    name: str
    state: LocalJobState
    failure_reason: str | None = None
    exit_code: int | None = None
    trace_size: int = 0
    archive: str = ""  # the file name of its ``archive`` artifact, if it uploaded one


@dataclass(eq=False)
class _Job:
    id: int
    name: str
    token: str
    log_file: Path
    state: LocalJobState = LocalJobState.PENDING
    failure_reason: str | None = None
    exit_code: int | None = None
    trace: bytearray = field(default_factory=bytearray)
    artifacts: dict[str, Path] = field(default_factory=dict)

    def record(self) -> JobRecord:
        archive = self.artifacts.get(_ARCHIVE)
        return JobRecord(
            self.id, self.name, self.state, self.failure_reason, self.exit_code, len(self.trace),
            archive.name if archive else "",
        )  # fmt: skip


class LocalCoordinator:
    """GitLab for one local pipeline: ``async with LocalCoordinator(...) as coordinator: ...``."""

    def __init__(
        self,
        workspace: Workspace,
        pipeline_id: int,
        project_path: str,
        *,
        on_trace: Callable[[int, bytes], None] | None = None,
        serve_now: bool = False,
    ) -> None:
        self._workspace = workspace
        self._serve_now = serve_now
        self._pipeline_id = pipeline_id
        self._project_path = project_path.strip("/")
        self._on_trace = on_trace
        self._jobs: dict[int, _Job] = {}
        self._server: web.AppRunner | None = None
        self._stack = contextlib.AsyncExitStack()
        self.url = ""

    # -- lifecycle ----------------------------------------------------------------------------
    async def __aenter__(self) -> LocalCoordinator:
        listening = socket.create_server(("127.0.0.1", 0))
        self._stack.callback(listening.close)  # the server closes it too, if it got that far
        self._stack.push_async_callback(self._stop_http)
        try:
            tasks = await self._stack.enter_async_context(asyncio.TaskGroup())  # exits first
        except BaseException:
            await self._stack.aclose()
            raise
        if self._serve_now:
            tasks.create_task(self._start_http(listening), name="local-coordinator:http")
        else:
            self._serve_on_first_connection(listening, tasks)
        self.url = f"http://127.0.0.1:{listening.getsockname()[1]}"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.__aexit__(exc_type, exc, tb)

    def _serve_on_first_connection(self, listening: socket.socket, tasks: asyncio.TaskGroup) -> None:
        """Start the HTTP server once ``listening`` has a connection waiting (it stays queued)."""
        loop = asyncio.get_running_loop()
        fd = listening.fileno()

        def connected() -> None:
            loop.remove_reader(fd)  # the server watches the socket from now on
            tasks.create_task(self._start_http(listening), name="local-coordinator:http")

        loop.add_reader(fd, connected)
        self._stack.callback(loop.remove_reader, fd)  # before the task group exits: no late start

    async def _start_http(self, listening: socket.socket) -> None:
        await asyncio.to_thread(importlib.import_module, _HTTP_MODULE)
        from skyrunner.pipeline._localhttp import serve_http  # imported by now: no wait

        self._server = await serve_http(self, listening)

    async def _stop_http(self) -> None:
        if self._server is not None:
            await self._server.cleanup()
            self._server = None

    @property
    def repo(self) -> Path:
        """The bare repository the jobs fetch from (``.skyrunner/repo.git``)."""
        return self._workspace.repo

    @property
    def project_path(self) -> str:
        return self._project_path

    # -- what the scheduler uses ----------------------------------------------------------------
    def repo_url(self, token: str) -> str:
        """The clone URL GitLab would send: credentials of the job in it, as ``CI_REPOSITORY_URL``."""
        host = self.url.removeprefix("http://")
        return f"http://{GIT_USER}:{quote(token, safe='')}@{host}/{self._project_path}.git"

    def add_job(self, job_id: int, name: str, token: str, *, note: str = "") -> None:
        """Register a job before its runner starts; ``note`` opens its log file."""
        log_file = self._workspace.log_file(self._pipeline_id, name)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        if note:
            self._append_log(log_file, note.encode())
        self._jobs[job_id] = _Job(job_id, name, token, log_file)

    def record(self, job_id: int) -> JobRecord:
        """Return what is known about job ``job_id`` (``KeyError`` if it was never added)."""
        return self._jobs[job_id].record()

    def trace(self, job_id: int) -> bytes:
        return bytes(self._jobs[job_id].trace)

    # -- the Coordinator protocol ---------------------------------------------------------------
    async def update_job(self, job: JobRef, update: JobUpdate) -> UpdateResult:
        """Accept, keep alive or finish a job, as ``PUT /api/v4/jobs/:id`` does."""
        local = self._authenticate(job)
        if local.state in (LocalJobState.SUCCESS, LocalJobState.FAILED):
            raise ApiAuthError(f"job {job.id} is already {local.state}", status=403, job_status=local.state)
        if update.state == LocalJobState.RUNNING:
            local.state = LocalJobState.RUNNING
        elif update.state in (LocalJobState.SUCCESS, LocalJobState.FAILED):
            local.state = LocalJobState(update.state)
            local.failure_reason = update.failure_reason if local.state is LocalJobState.FAILED else None
            local.exit_code = update.exit_code
            log.debug("job %d (%s) is %s", local.id, local.name, local.state)
        return UpdateResult(job_status=local.state.value)

    async def patch_trace(self, job: JobRef, offset: int, data: bytes) -> PatchResult:
        """Append ``data`` at ``offset``, which must be where the stored trace ends."""
        local = self._authenticate(job)
        if local.state is not LocalJobState.RUNNING:
            raise ApiAuthError(f"job {job.id} is not running", status=403, job_status=local.state)
        if offset != len(local.trace):
            raise TraceRangeError(
                f"job {job.id}: trace offset {offset} is not {len(local.trace)}",
                stored=len(local.trace), job_status=local.state,
            )  # fmt: skip
        local.trace += data
        self._append_log(local.log_file, data)
        if self._on_trace is not None and data:
            self._on_trace(local.id, data)
        return PatchResult(job_status=local.state.value, update_interval_s=TRACE_INTERVAL_S, stored=len(local.trace))

    # -- what the HTTP side (``_localhttp``) asks ------------------------------------------------
    def artifact_upload(self, job_id: int, token: str, artifact_type: str) -> Path:
        """Check that job ``job_id`` may upload an ``artifact_type`` artifact; return its directory.

        Raises:
            HttpRefusal: 403 unless the job is running with that token; 400 for a second
                artifact of one type.
        """
        job = self._jobs.get(job_id)
        if job is None or job.state is not LocalJobState.RUNNING or not hmac.compare_digest(job.token, token):
            raise HttpRefusal(403, "403 Forbidden")
        if artifact_type in job.artifacts:
            raise HttpRefusal(400, "400 Bad request - another artifact of the same type exists")
        return self._workspace.artifacts_dir(self._pipeline_id, job_id)

    def artifact_stored(self, job_id: int, artifact_type: str, stored: Path) -> None:
        """Record the artifact that :meth:`artifact_upload` allowed."""
        self._jobs[job_id].artifacts[artifact_type] = stored
        log.debug("job %d: stored %s artifact %s", job_id, artifact_type, stored.name)

    def artifact_download(self, job_id: int, token: str) -> Path:
        """Return job ``job_id``'s archive, for the ``JOB-TOKEN`` of any running job.

        Raises:
            HttpRefusal: 401 for a token that is not a running job's, 404 without an archive.
        """
        if self._running_job(token) is None:
            raise HttpRefusal(401, "401 Unauthorized")
        job = self._jobs.get(job_id)
        archive = job.artifacts.get(_ARCHIVE) if job else None
        if archive is None:
            raise HttpRefusal(404, "404 Not Found")
        return archive

    def git_authorized(self, user: str, password: str) -> bool:
        """Whether git's Basic credentials are ``gitlab-ci-token`` and a running job's token."""
        return user == GIT_USER and self._running_job(password) is not None

    # -- internals ------------------------------------------------------------------------------
    def _authenticate(self, job: JobRef) -> _Job:
        local = self._jobs.get(job.id)
        if local is None or not hmac.compare_digest(local.token, job.token.get_secret_value()):
            raise ApiAuthError(f"job {job.id}: 403 Forbidden", status=403)
        return local

    def _running_job(self, token: str) -> _Job | None:
        for job in self._jobs.values():
            if job.state is LocalJobState.RUNNING and hmac.compare_digest(job.token, token):
                return job
        return None

    @staticmethod
    def _append_log(path: Path, data: bytes) -> None:
        try:
            with open(path, "ab") as out:
                out.write(data)
        except OSError as exc:
            log.warning("cannot write the job log %s: %s", path, exc.strerror)


class HttpRefusal(SkyrunnerError):
    """A request from a job that the coordinator turns down, with GitLab's status and text."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
