"""FakeCoordinator: a test double of GitLab's side of the runner API, over real HTTP.

It serves, on 127.0.0.1 with aiohttp.web, the endpoints a runner talks to (protocol sections 0-8
and 15 of /work/shared/protocol/gitlab-runner-api.md): runner registration, verification and
removal, the job queue with Workhorse-style long polling, job updates, the incremental trace,
artifact upload and download, and git over smart HTTP for the jobs' repositories (``GitServer``,
authorised for ``gitlab-ci-token`` with the token of a pending or running job). Tests build jobs
with :meth:`FakeCoordinator.make_job`, queue them with :meth:`enqueue`, and read what the runner did
from :attr:`jobs` (state, trace, updates, artifacts) and :attr:`requests`; :meth:`fail_next`,
``final_update_202``, :meth:`truncate_trace` and :meth:`set_artifacts` make GitLab misbehave on cue.

Layout: ``_coordinator_model`` (records), ``_coordinator_payload`` (the JobResponse, pure),
``_coordinator_state`` (queue, matching, faults), ``_coordinator_http`` (middleware, errors,
recording), ``_coordinator_runners`` / ``_coordinator_jobs`` / ``_coordinator_artifacts``
(handlers). This module wires them and holds the public API.

Simplifications against GitLab (on purpose):

- One in-memory instance: no projects, groups, users or permissions beyond tokens; every repo
  created here is a project; all runners see all untagged jobs (instance runners). Matching knows
  tags, run_untagged, paused, ``ref_protected`` and ``enqueue(runner_token=...)``; not locked.
- The job payload is complete (every key GitLab sends, §4), but pipelines are just ids: each
  ``make_job`` starts a new pipeline unless ``pipeline_id`` is given. No container registry or
  dependency proxy (``credentials`` empty, no CI_REGISTRY_*), no ``inputs``, ``secrets``, ``run``.
- Registration tokens: one instance-wide token; legacy runners get ``glrtr-`` tokens; no token
  expiry unless a test sets ``token_expires_at``. No rate limits or migration 429s unless faked.
- A failed-with-allowed-exit-code job is ``failed`` with ``allow_failure=True`` (as in GitLab);
  ``allow_failure:exit_codes`` is passed to :meth:`enqueue`, since it is not in the payload.
- The final PUT answers 202 only while ``final_update_202`` > 0 (a counter shared by all jobs), with
  ``X-GitLab-Trace-Update-Interval: final_update_202_interval`` (1 s, GitLab's first backoff);
  there is no 5-minute give-up. Checksums are compared, never enforced (as GitLab: metrics only).
- Trace: the job token is masked server-side within each chunk (same length, ``x``), as
  ``Ci::Build#hide_secrets``; invalid UTF-8 is stored as is (GitLab fixes it when rendering).
  ``trace_size_limit`` (None) stands in for ``ci_jobs_trace_size_limit``.
- Artifacts: one size limit for every type; reports are stored, never parsed (no dotenv); the
  form ``token`` field is not read (the runner sends JOB-TOKEN); the archive of a job (its
  ``archive`` upload, or :meth:`set_artifacts`) is what dependencies download.
- Wrong job token: a bare 403 without ``Job-Status`` (GitLab gives no job details then); the
  header is on every other PUT/PATCH answer except 416, which GitLab also sends without it.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from ._coordinator_artifacts import ArtifactApi
from ._coordinator_http import build_middleware
from ._coordinator_jobs import JobApi
from ._coordinator_model import ENDPOINTS, Archive, FakeJob, FakeRunner, JobState, RecordedRequest
from ._coordinator_payload import (
    CommitInfo,
    JobInputs,
    ServerInfo,
    build_job_payload,
    normalize_variables,
    required_features,
)
from ._coordinator_runners import RunnerApi
from ._coordinator_state import CoordinatorState, Fault, JobSupply, now, random_token
from .gitserver import GitRepo, GitServer

__all__ = ["Archive", "FakeCoordinator", "FakeJob", "FakeRunner", "JobState", "RecordedRequest"]

_ZERO_SHA = "0" * 40
_GIT_USER = "gitlab-ci-token"


class FakeCoordinator:
    """GitLab for one test: ``async with FakeCoordinator(tmp_path) as gitlab: ...``."""

    def __init__(
        self,
        root: Path,
        *,
        long_poll_s: float = 0.0,
        trace_update_interval: int = 3,
        registration_token: str = "GR1348941testregistration",
        artifact_size_limit: int = 50 * 2**20,
    ) -> None:
        self.root = root
        self.state = CoordinatorState(
            long_poll_s=long_poll_s,
            trace_update_interval=trace_update_interval,
            registration_token=registration_token,
            artifact_size_limit=artifact_size_limit,
        )
        self.git = GitServer(root / "git", authorize=self._authorize_git)
        self.url = ""
        self._server: web.AppRunner | None = None
        self._job_ids = itertools.count(1001)
        self._pipeline_ids = itertools.count(501)
        self._project_ids: dict[str, int] = {}
        self._commits: dict[tuple[str, str, str | None], CommitInfo] = {}
        self._pipeline_refs: set[tuple[str, int]] = set()

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> FakeCoordinator:
        app = web.Application(middlewares=[build_middleware(self.state)], client_max_size=64 * 2**20)
        for api in (RunnerApi(self.state), JobApi(self.state), ArtifactApi(self.state)):
            app.add_routes(api.routes())
        self.git.add_routes(app)
        self._server = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._server.setup()
        site = web.TCPSite(self._server, "127.0.0.1", 0)
        await site.start()
        port = self._server.addresses[0][1]
        self.url = self.state.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.state.close()  # release held long polls so the server stops at once
        if self._server is not None:
            await self._server.cleanup()
            self._server = None

    # -- what tests read and tune -----------------------------------------------------------------

    @property
    def runners(self) -> dict[str, FakeRunner]:
        return self.state.runners

    @property
    def jobs(self) -> dict[int, FakeJob]:
        return self.state.jobs

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.state.requests

    @property
    def registration_enabled(self) -> bool:
        return self.state.registration_enabled

    @registration_enabled.setter
    def registration_enabled(self, value: bool) -> None:
        self.state.registration_enabled = value

    @property
    def final_update_202(self) -> int:
        return self.state.final_update_202

    @final_update_202.setter
    def final_update_202(self, value: int) -> None:
        self.state.final_update_202 = value

    @property
    def final_update_202_interval(self) -> int:
        return self.state.final_update_202_interval

    @final_update_202_interval.setter
    def final_update_202_interval(self, value: int) -> None:
        self.state.final_update_202_interval = value

    @property
    def record_requests(self) -> bool:
        """Whether :attr:`requests` grows (turn it off for long benchmarks)."""
        return self.state.record_requests

    @record_requests.setter
    def record_requests(self, value: bool) -> None:
        self.state.record_requests = value

    @property
    def trace_size_limit(self) -> int | None:
        return self.state.trace_size_limit

    @trace_size_limit.setter
    def trace_size_limit(self, value: int | None) -> None:
        self.state.trace_size_limit = value

    # -- runners and repositories -------------------------------------------------------------------

    def add_runner(self, token: str | None = None, **settings: Any) -> FakeRunner:
        """Create a runner the new way (UI / ``POST /user/runners``): a ``glrt-`` token, no register call.

        ``settings`` are FakeRunner fields: description, tag_list, run_untagged, locked, paused,
        maximum_timeout, access_level, token_expires_at.
        """
        runner = self.state.create_runner(token or random_token("glrt-t3_"), **settings)
        self.state.tick()  # GitLab ticks the queue when runners change
        return runner

    def create_repo(self, path: str, files: dict[str, str | bytes]) -> GitRepo:
        """Create project ``path`` ("group/project") with one commit of ``files`` on main."""
        repo = self.git.create_repo(path, files)
        self._project_ids.setdefault(path, len(self._project_ids) + 1)
        return repo

    # -- jobs ---------------------------------------------------------------------------------

    def make_job(
        self,
        repo: GitRepo,
        *,
        script: list[str],
        name: str = "test",
        stage: str = "test",
        after_script: list[str] | None = None,
        variables: list[dict[str, Any]] | dict[str, str] | None = None,
        timeout: int = 3600,
        sha: str | None = None,
        ref: str = "main",
        depth: int = 0,
        allow_git_fetch: bool = True,
        artifacts: list[dict[str, Any]] | None = None,
        cache: list[dict[str, Any]] | None = None,
        dependencies: list[dict[str, Any]] | None = None,
        image: dict[str, Any] | None = None,
        services: list[dict[str, Any]] | None = None,
        hooks: list[dict[str, Any]] | None = None,
        features: dict[str, Any] | None = None,
        pipeline_id: int | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Build the JobResponse GitLab would send for a job of ``repo`` (fresh id and glcbt- token).

        ``ref`` is a branch or tag of the repo; ``sha`` defaults to its tip. The pipeline's
        persistent ref (``refs/pipelines/<id>``) is created in the repo. ``artifacts``, ``cache``,
        ``image``, ``services`` entries get GitLab's defaults for missing keys; cache keys get
        GitLab's ``-protected``/``-non_protected`` suffix. ``dependencies`` entries need ``id`` and
        ``name``; ``artifacts_file`` is filled when the runner takes the job if that job has an
        archive. ``extra`` keys replace top-level keys of the result.

        Raises:
            RuntimeError: the coordinator is not started (the repo URL needs its port).
            ValueError: ``ref`` is neither a branch nor a tag of ``repo``.
        """
        if not self.url:
            raise RuntimeError("start the FakeCoordinator (async with) before making jobs")
        commit = self._commit_info(repo, ref, sha)
        pipeline = pipeline_id if pipeline_id is not None else next(self._pipeline_ids)
        if (repo.path, pipeline) not in self._pipeline_refs:
            repo.set_ref(f"refs/pipelines/{pipeline}", commit.sha)
            self._pipeline_refs.add((repo.path, pipeline))
        job_id = next(self._job_ids)
        inputs = JobInputs(
            job_id=job_id,
            token=random_token("glcbt-64_"),
            name=name,
            stage=stage,
            pipeline_id=pipeline,
            project_id=self._project_ids.setdefault(repo.path, len(self._project_ids) + 1),
            project_path=repo.path,
            script=script,
            after_script=after_script,
            variables=normalize_variables(variables),
            timeout=timeout,
            depth=depth,
            allow_git_fetch=allow_git_fetch,
            artifacts=artifacts,
            cache=cache,
            dependencies=dependencies,
            image=image,
            services=services,
            hooks=hooks,
            features=features,
            created_at=now(),
        )
        port = int(self.url.rsplit(":", 1)[1])
        payload = build_job_payload(ServerInfo(self.url, "127.0.0.1", port), commit, inputs)
        payload.update(extra)
        return payload

    def enqueue(
        self,
        payload: dict[str, Any],
        *,
        runner_token: str | None = None,
        tags: Sequence[str] = (),
        allow_failure_exit_codes: Sequence[int] = (),
    ) -> FakeJob:
        """Queue ``payload`` (from make_job, or hand-made with ``id`` and ``token``); wake pollers.

        ``runner_token``: only that runner may take it (None: any runner). ``tags``: the job's
        tags. ``allow_failure_exit_codes``: the job's ``allow_failure:exit_codes`` (needs the
        runner feature return_exit_code, like GitLab).
        """
        job = _new_job(
            payload, only_runner=runner_token, tags=tags, allow_failure_exit_codes=allow_failure_exit_codes
        )
        self.state.add_job(job)
        return job

    def enqueue_many(
        self, repo: GitRepo, count: int | None = None, *, runner_token: str | None = None, **job: Any
    ) -> None:
        """Supply ``count`` jobs (None: endlessly) made on demand when a runner finds the queue empty.

        ``job`` are make_job arguments (default ``script=["true"]``); all supplied jobs share one
        pipeline and commit, so making one costs no git call. Created jobs appear in :attr:`jobs`.
        """
        job.setdefault("script", ["true"])
        job.setdefault("pipeline_id", next(self._pipeline_ids))
        sample = self.make_job(repo, **job)
        job.setdefault("sha", sample["git_info"]["sha"])
        protected = bool(sample["git_info"]["protected"])

        def make() -> FakeJob:
            return _new_job(self.make_job(repo, **job), only_runner=runner_token)

        self.state.supply = JobSupply(make, count, runner_token, protected)
        self.state.tick()

    async def wait_for_job(self, job_id: int, *, timeout: float = 30.0) -> FakeJob:
        """Wait until job ``job_id`` is success, failed or canceled; return it.

        Raises:
            TimeoutError: it is still not finished after ``timeout`` seconds.
        """
        job = self.state.jobs[job_id]
        try:
            async with asyncio.timeout(timeout):
                await job.finished.wait()
        except TimeoutError:
            raise TimeoutError(f"job {job_id} is still {job.state.value} after {timeout}s") from None
        return job

    async def wait_for_finished(self, count: int, *, timeout: float = 60.0) -> list[FakeJob]:
        """Wait until ``count`` jobs are finished (for benchmarks); return the finished jobs."""
        async with asyncio.timeout(timeout):
            while True:
                done = [job for job in self.state.jobs.values() if job.state.is_final]
                if len(done) >= count:
                    return done
                await asyncio.sleep(0.01)

    def cancel(self, job_id: int) -> None:
        """Cancel the job like a user: canceling if its runner declared cancel_gracefully, else canceled."""
        self.state.cancel(job_id)

    def fail_next(
        self, endpoint: str, status: int = 500, count: int = 1, headers: dict[str, str] | None = None
    ) -> None:
        """Answer the next ``count`` requests to ``endpoint`` with ``status`` (JSON message) first.

        ``endpoint``: register, verify, unregister, unregister_manager, reset_token, request,
        update, trace, artifacts_upload, artifacts_download, object_storage, git.
        """
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {sorted(ENDPOINTS)}")
        if count < 1 or not 400 <= status <= 599:
            raise ValueError(f"fail_next needs count >= 1 and an error status, got {count} x {status}")
        self.state.add_fault(endpoint, Fault(status=status, remaining=count, headers=dict(headers or {})))

    def truncate_trace(self, job_id: int, size: int) -> None:
        """Forget stored trace bytes past ``size``: the runner's next PATCH gets 416."""
        del self.state.jobs[job_id].trace[size:]

    def set_artifacts(
        self, job_id: int, data: bytes, filename: str = "artifacts.zip", *, redirect: bool = False
    ) -> None:
        """Make ``data`` job ``job_id``'s downloadable archive (for other jobs' dependencies).

        ``redirect``: the archive is "in object storage": a download with ``direct_download=true``
        gets a 302 to a URL on this server that refuses requests carrying ``JOB-TOKEN``; without
        ``direct_download`` GitLab proxies it (200), as here.
        """
        signature = secrets.token_hex(32) if redirect else ""
        self.state.archives[job_id] = Archive(data, filename, in_object_storage=redirect, signature=signature)

    # -- internals ------------------------------------------------------------------------------

    def _authorize_git(self, username: str, password: str) -> bool:
        job = self.state.job_by_token(password)
        alive = (JobState.PENDING, JobState.RUNNING, JobState.CANCELING)
        return username == _GIT_USER and job is not None and job.state in alive

    def _commit_info(self, repo: GitRepo, ref: str, sha: str | None) -> CommitInfo:
        key = (repo.path, ref, sha)
        if key not in self._commits:
            self._commits[key] = _read_commit(repo, ref, sha)
        return self._commits[key]


def _new_job(
    payload: dict[str, Any],
    *,
    only_runner: str | None,
    tags: Sequence[str] = (),
    allow_failure_exit_codes: Sequence[int] = (),
) -> FakeJob:
    job_id, token = payload.get("id"), payload.get("token")
    if not isinstance(job_id, int) or not isinstance(token, str):
        raise ValueError("a job payload needs an integer 'id' and a string 'token'")
    return FakeJob(
        id=job_id,
        token=token,
        payload=payload,
        only_runner=only_runner,
        tags=tuple(tags),
        allow_failure_exit_codes=tuple(allow_failure_exit_codes),
        required_features=required_features(payload, allow_failure_exit_codes),
    )


def _read_commit(repo: GitRepo, ref: str, sha: str | None) -> CommitInfo:
    """Resolve ``ref`` (branch, else tag) and read the commit GitLab would describe."""
    candidates = (("branch", f"refs/heads/{ref}"), ("tag", f"refs/tags/{ref}"))
    resolved = [
        (kind, _git(repo, "rev-parse", "--verify", "-q", f"{full}^{{commit}}")) for kind, full in candidates
    ]
    ref_type, tip = next(((kind, tip) for kind, tip in resolved if tip), ("", ""))
    if not tip:
        raise ValueError(f"{repo.path}: no branch or tag named {ref!r}")
    fields = _git(repo, "show", "-s", "--format=%an <%ae>%x00%aI%x00%P%x00%B", sha or tip).split("\0", 3)
    if len(fields) != 4:
        raise ValueError(f"{repo.path}: no commit {sha!r}")
    author, timestamp, parents, message = fields
    return CommitInfo(
        sha=sha or tip,
        before_sha=parents.split()[0] if parents.strip() else _ZERO_SHA,
        ref=ref,
        ref_type=ref_type,
        author=author,
        timestamp=timestamp,
        message=message.rstrip("\n") + "\n",
    )


def _git(repo: GitRepo, *args: str) -> str:
    env: Mapping[str, str] = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(["git", *args], cwd=repo.dir, env=env, capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else ""
