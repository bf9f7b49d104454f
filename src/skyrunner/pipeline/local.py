"""LocalCoordinator: the stand-in for GitLab when ``skyrunner exec`` runs a pipeline locally.

It plays both of GitLab's parts, so that jobs run through the very JobRunner, helper and
executors production uses:

* **in process**, the :class:`~skyrunner.job.coordinator.Coordinator` protocol: ``update_job``
  (accept, keep-alive, final state with failure reason and exit code) and ``patch_trace``
  (``Content-Range`` offsets checked like GitLab: a chunk must start where the stored trace
  ends, else ``TraceRangeError`` with the stored size). Each job's trace is kept, written raw
  to its log file and handed to ``on_trace``.
* **over HTTP on 127.0.0.1** (aiohttp.web), what the helper reaches from inside a job:
  ``POST /api/v4/jobs/:id/artifacts`` (one multipart ``file`` part, ``artifact_format``,
  ``artifact_type`` and ``expire_in`` in the query; stored under
  ``.skyrunner/artifacts/<pipeline>/<job id>/``), ``GET /api/v4/jobs/:id/artifacts`` (the job's
  archive, for a running job's ``JOB-TOKEN``) and git smart HTTP for the sources (``_githttp``,
  user ``gitlab-ci-token`` with a running job's token).

Jobs are registered with :meth:`LocalCoordinator.add_job` before their JobRunner starts; the
scheduler reads the outcome back with :meth:`LocalCoordinator.record`.
"""

from __future__ import annotations

import asyncio
import enum
import hmac
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Final
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from skyrunner.errors import ApiAuthError, SkyrunnerError, TraceRangeError
from skyrunner.job.coordinator import JobRef, JobUpdate, PatchResult, UpdateResult
from skyrunner.pipeline._githttp import GitBackend
from skyrunner.pipeline.workspace import Workspace

__all__ = ["GIT_USER", "JobRecord", "LocalCoordinator", "LocalJobState"]

log = logging.getLogger(__name__)

GIT_USER: Final = "gitlab-ci-token"
TRACE_INTERVAL_S: Final = 0.5  # asked of the TraceSink after its first patch: a live log, locally
_CHUNK: Final = 256 * 1024
_ARCHIVE: Final = "archive"


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
    ) -> None:
        self._workspace = workspace
        self._pipeline_id = pipeline_id
        self._project_path = project_path.strip("/")
        self._on_trace = on_trace
        self._jobs: dict[int, _Job] = {}
        self._server: web.AppRunner | None = None
        self.url = ""

    # -- lifecycle ----------------------------------------------------------------------------
    async def __aenter__(self) -> LocalCoordinator:
        app = web.Application(client_max_size=1024**4)
        app.router.add_post("/api/v4/jobs/{id:[0-9]+}/artifacts", self._upload)
        app.router.add_get("/api/v4/jobs/{id:[0-9]+}/artifacts", self._download, allow_head=False)
        GitBackend(self._workspace.repo, self._project_path, self._git_authorized).add_routes(app)
        self._server = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._server.setup()
        await web.TCPSite(self._server, "127.0.0.1", 0).start()
        port = self._server.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            await self._server.cleanup()
            self._server = None

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

    # -- HTTP: artifacts and git ---------------------------------------------------------------
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

    def _git_authorized(self, user: str, password: str) -> bool:
        return user == GIT_USER and self._running_job(password) is not None

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        job = self._jobs.get(int(request.match_info["id"]))
        token = request.headers.get("JOB-TOKEN", "")
        if job is None or job.state is not LocalJobState.RUNNING or not hmac.compare_digest(job.token, token):
            return web.Response(status=403, text="403 Forbidden")
        artifact_type = request.query.get("artifact_type", _ARCHIVE)
        if artifact_type in job.artifacts:
            return web.Response(status=400, text="400 Bad request - another artifact of the same type exists")
        if request.content_type != "multipart/form-data":
            return web.Response(status=400, text="400 Bad request - file is missing")
        target_dir = self._workspace.artifacts_dir(self._pipeline_id, job.id)
        try:
            stored = await _store_file_part(request, target_dir)
        except _BadUpload as exc:
            return web.Response(status=400, text=f"400 Bad request - {exc}")
        job.artifacts[artifact_type] = stored
        log.debug("job %d: stored %s artifact %s", job.id, artifact_type, stored.name)
        return web.Response(status=201, text="201 Created")

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if self._running_job(request.headers.get("JOB-TOKEN", "")) is None:
            return web.Response(status=401, text="401 Unauthorized")
        job = self._jobs.get(int(request.match_info["id"]))
        archive = job.artifacts.get(_ARCHIVE) if job else None
        if archive is None:
            return web.Response(status=404, text="404 Not Found")
        return web.FileResponse(archive, headers={"Content-Type": "application/octet-stream"})

    @staticmethod
    def _append_log(path: Path, data: bytes) -> None:
        try:
            with open(path, "ab") as out:
                out.write(data)
        except OSError as exc:
            log.warning("cannot write the job log %s: %s", path, exc.strerror)


class _BadUpload(SkyrunnerError):
    """The multipart body is not one ``file`` part."""


def _safe_name(filename: str | None) -> str:
    name = os.path.basename((filename or "").replace("\\", "/")).strip()
    return name if name not in ("", ".", "..") else "artifacts"


async def _store_file_part(request: web.Request, target_dir: Path) -> Path:
    """Stream the one ``file`` part of a multipart body into ``target_dir``; return the file."""
    stored: Path | None = None
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name != "file":
                if isinstance(part, BodyPartReader) and part.filename is None:
                    await part.release()
                    continue
                raise _BadUpload("exactly one file part named 'file' is expected")
            if stored is not None:
                raise _BadUpload("exactly one file part named 'file' is expected")
            stored = await _write_part(part, target_dir / _safe_name(part.filename))
    except ValueError as exc:  # aiohttp's malformed-multipart errors
        raise _BadUpload(f"malformed multipart body: {exc}") from None
    if stored is None:
        raise _BadUpload("file is missing")
    return stored


async def _write_part(part: BodyPartReader, target: Path) -> Path:
    partial = target.with_name(f".{target.name}.part")
    out = await asyncio.to_thread(_open_for_writing, partial)
    try:
        while chunk := await part.read_chunk(_CHUNK):
            await asyncio.to_thread(out.write, chunk)
    finally:
        out.close()
    partial.replace(target)
    return target


def _open_for_writing(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "wb")
