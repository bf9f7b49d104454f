"""The scheduler of ``skyrunner exec``: runs a validated Pipeline through the real JobRunner.

Flow of :meth:`PipelineScheduler.run`:

1. take the next pipeline id and snapshot the working tree (``_snapshot.py``) as the commit the
   jobs clone (by path when they run on this machine, else over HTTP: :class:`SourcesAccess`);
   start a :class:`~skyrunner.pipeline.local.LocalCoordinator` on 127.0.0.1;
2. loop: decide every waiting job (``schedule.advance``: pending, skipped or manual), start
   pending jobs in file order while fewer than ``concurrency`` run, and wait for one to end;
   jobs that can never start (behind a blocking manual job) are skipped at the end;
3. each job: a new job id and token, GitLab's payload (``build_job_payload``) with dependencies
   pointing at the local coordinator, one ``JobRunner.run()``; a failed attempt is retried with a
   new job id when ``retry`` says so (``schedule.should_retry``), else recorded with whether it
   was allowed to fail;
4. return a :class:`PipelineResult`. Nothing is printed: progress goes to a
   :class:`PipelineObserver` (state changes with durations, trace bytes).

Stopping (:meth:`PipelineScheduler.request_stop`, e.g. on Ctrl-C): the first request starts
nothing more and cancels the running jobs marked ``interruptible`` (GitLab cancels only those on
its own); the second cancels every running job (after_script runs); the third kills them.
Jobs that did not start are canceled.
"""

from __future__ import annotations

import asyncio
import enum
import secrets
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from skyrunner.executors.base import ExecutorFactory, Slot
from skyrunner.job.outcome import CancelReason
from skyrunner.job.prepare import RunnerIdentity
from skyrunner.job.runner import JobRunner
from skyrunner.job.settings import JobSettings
from skyrunner.pipeline._snapshot import snapshot_worktree
from skyrunner.pipeline.checkout import Checkout
from skyrunner.pipeline.local import LocalCoordinator, LocalJobState
from skyrunner.pipeline.model import Pipeline, PipelineJob, When
from skyrunner.pipeline.payload import build_job_payload
from skyrunner.pipeline.schedule import JobRecord, JobStatus, advance, allowed_to_fail, should_retry, stranded
from skyrunner.pipeline.workspace import Workspace

__all__ = [
    "JobEvent",
    "JobReport",
    "PipelineObserver",
    "PipelineResult",
    "PipelineScheduler",
    "RunnerSetup",
    "SourcesAccess",
]

PROJECT_ID = 1


class SourcesAccess(enum.Enum):
    """How the jobs' helper reaches the snapshot of the working tree."""

    HTTP = "http"  # git smart HTTP from the local coordinator: jobs that run elsewhere (a pod)
    PATH = "path"  # the snapshot repository by path: jobs that run on this machine (shell)


@dataclass(frozen=True, slots=True)
class RunnerSetup:
    """The runner side of every job: executor factory, job settings, version facts."""

    factory: ExecutorFactory
    settings: JobSettings
    identity: RunnerIdentity
    sources: SourcesAccess = SourcesAccess.HTTP


@dataclass(frozen=True, slots=True)
class JobEvent:
    """A job changed state; ``duration_s`` is set once an attempt is over."""

    name: str
    status: JobStatus
    job_id: int | None = None
    attempt: int = 1
    duration_s: float | None = None
    failure_reason: str | None = None
    allowed_failure: bool = False
    note: str = ""


class PipelineObserver(Protocol):
    """Hears how the pipeline goes (the CLI's view)."""

    def job_changed(self, event: JobEvent) -> None: ...

    def job_output(self, name: str, data: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class JobReport:
    """How one job ended: ``duration_s`` sums its attempts."""

    name: str
    stage: str
    status: JobStatus
    duration_s: float = 0.0
    failure_reason: str | None = None
    exit_code: int | None = None
    allowed_failure: bool = False
    attempts: int = 0
    job_id: int | None = None
    log_file: Path | None = None


@dataclass(frozen=True, slots=True)
class PipelineResult:
    pipeline_id: int
    jobs: tuple[JobReport, ...]
    logs_dir: Path

    @property
    def failed(self) -> bool:
        """Whether a job that may not fail failed or was canceled."""
        bad = (JobStatus.FAILED, JobStatus.CANCELED)
        return any(job.status in bad and not job.allowed_failure for job in self.jobs)

    def job(self, name: str) -> JobReport:
        return next(job for job in self.jobs if job.name == name)


@dataclass
class _Progress:
    """The mutable side of one job in this run."""

    record: JobRecord = field(default_factory=JobRecord)
    job_id: int | None = None
    attempts: int = 0
    duration_s: float = 0.0
    failure_reason: str | None = None
    exit_code: int | None = None
    runner: JobRunner | None = None


class PipelineScheduler:
    """Runs one pipeline of a checkout; ``manual`` names the manual jobs to run."""

    def __init__(
        self,
        pipeline: Pipeline,
        checkout: Checkout,
        workspace: Workspace,
        setup: RunnerSetup,
        observer: PipelineObserver,
        *,
        concurrency: int = 1,
        manual: Collection[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pipeline = pipeline
        self._checkout = checkout
        self._workspace = workspace
        self._setup = setup
        self._observer = observer
        self._concurrency = max(1, concurrency)
        self._manual = frozenset(manual)
        self._clock = clock
        self._jobs = {job.name: _Progress() for job in pipeline.jobs}
        self._names: dict[int, str] = {}
        self._slots: set[int] = set()
        self._changed = asyncio.Event()
        self._stops = 0
        self._pipeline_id = 0

    # -- control -----------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Start nothing more; cancel interruptible jobs, then all (second call), then kill (third)."""
        self._stops += 1
        reason = CancelReason.ABORTED if self._stops >= 3 else CancelReason.CANCELING
        for job in self._pipeline.jobs:
            runner = self._jobs[job.name].runner
            if runner is not None and (job.interruptible or self._stops >= 2):
                runner.cancel(reason)
        self._changed.set()

    @property
    def pipeline_id(self) -> int:
        return self._pipeline_id

    # -- running -----------------------------------------------------------------------------
    async def run(self) -> PipelineResult:
        """Run the pipeline to its end and report every job."""
        self._pipeline_id = self._workspace.next_pipeline_id()
        sha = await asyncio.to_thread(snapshot_worktree, self._checkout, self._workspace, self._pipeline_id)
        checkout = replace(self._checkout, sha=sha)
        # Jobs that fetch over HTTP or upload artifacts will call it: start the server with them.
        uploads = any(job.artifacts is not None for job in self._pipeline.jobs)
        serve_now = self._setup.sources is SourcesAccess.HTTP or uploads
        coordinator = LocalCoordinator(
            self._workspace, self._pipeline_id, checkout.project_path, on_trace=self._on_trace, serve_now=serve_now
        )
        async with coordinator, asyncio.TaskGroup() as group:
            settings = replace(self._setup.settings, server_url=coordinator.url)
            if self._setup.sources is SourcesAccess.PATH:
                settings = replace(settings, sources_repo=str(self._workspace.repo))
            while True:
                self._decide()
                for job in self._startable():
                    self._set(job, JobStatus.RUNNING)
                    task = self._run_job(job, checkout, coordinator, settings)
                    group.create_task(task, name=f"pipeline-{self._pipeline_id}:{job.name}")
                if not any(p.record.status is JobStatus.RUNNING for p in self._jobs.values()):
                    break
                await self._changed.wait()
                self._changed.clear()
        return self._result()

    def _decide(self) -> None:
        if self._stops:
            for job in self._pipeline.jobs:
                if self._jobs[job.name].record.status in (JobStatus.CREATED, JobStatus.PENDING):
                    self._change(job, JobStatus.CANCELED, note="the pipeline was stopped")
            return
        records = {name: progress.record for name, progress in self._jobs.items()}
        for name, status in advance(self._pipeline, records, self._manual).items():
            self._change(self._pipeline.job(name), status, note=_note(status))
        records = {name: progress.record for name, progress in self._jobs.items()}
        for name in stranded(self._pipeline, records):
            self._change(self._pipeline.job(name), JobStatus.SKIPPED, note="blocked by a manual job that did not run")

    def _startable(self) -> list[PipelineJob]:
        running = sum(p.record.status is JobStatus.RUNNING for p in self._jobs.values())
        pending = [job for job in self._pipeline.jobs if self._jobs[job.name].record.status is JobStatus.PENDING]
        return pending[: max(0, self._concurrency - running)]

    async def _run_job(
        self, job: PipelineJob, checkout: Checkout, coordinator: LocalCoordinator, settings: JobSettings
    ) -> None:
        progress = self._jobs[job.name]
        try:
            while True:
                status = await self._attempt(job, checkout, coordinator, settings)
                retry = (
                    status is JobStatus.FAILED
                    and not self._stops
                    and should_retry(job, progress.failure_reason, progress.exit_code, progress.attempts - 1)
                )
                if not retry:
                    break
                self._observer.job_changed(self._event(job, JobStatus.FAILED, note="retrying"))
            allowed = status is JobStatus.FAILED and allowed_to_fail(job, progress.exit_code)
            progress.record = JobRecord(status, allowed)
            self._observer.job_changed(self._event(job, status))
        finally:
            progress.runner = None
            self._changed.set()

    async def _attempt(
        self, job: PipelineJob, checkout: Checkout, coordinator: LocalCoordinator, settings: JobSettings
    ) -> JobStatus:
        """Run one attempt of ``job``; return how it ended."""
        progress = self._jobs[job.name]
        job_id, token = self._workspace.next_job_id(), f"glcbt-{secrets.token_hex(20)}"
        payload = build_job_payload(
            self._pipeline, job, job_id=job_id, job_token=token, server_url=coordinator.url,
            repo_url=coordinator.repo_url(token), checkout=checkout, dependencies=self._dependencies(job, coordinator),
            pipeline_id=self._pipeline_id, project_id=PROJECT_ID,
        )  # fmt: skip
        coordinator.add_job(job_id, job.name, token, note=_log_note(job, progress.attempts + 1))
        self._names[job_id] = job.name
        progress.job_id, progress.attempts = job_id, progress.attempts + 1
        slot = self._take_slot()
        runner = JobRunner(
            payload, coordinator=coordinator, executor=self._setup.factory.create(job_id), settings=settings,
            identity=self._setup.identity, slot=Slot(concurrent_id=slot, project_id=slot),
        )  # fmt: skip
        progress.runner = runner
        if self._stops >= 2 or (self._stops and job.interruptible):
            runner.cancel(CancelReason.CANCELING)
        self._observer.job_changed(self._event(job, JobStatus.RUNNING))
        began = self._clock()
        try:
            await runner.run()
        finally:
            self._slots.discard(slot)
            progress.duration_s += self._clock() - began
        record = coordinator.record(job_id)
        progress.failure_reason, progress.exit_code = record.failure_reason, record.exit_code
        if runner.cancel_reason in (CancelReason.CANCELING, CancelReason.ABORTED, CancelReason.RUNNER_STOPPING):
            return JobStatus.CANCELED
        if record.state is LocalJobState.SUCCESS:
            return JobStatus.SUCCESS
        if record.state is not LocalJobState.FAILED:
            progress.failure_reason = progress.failure_reason or "runner_system_failure"
        return JobStatus.FAILED

    def _dependencies(self, job: PipelineJob, coordinator: LocalCoordinator) -> list[tuple[int, str, str]]:
        """``(job id, name, archive file)`` of the jobs whose artifacts ``job`` gets, if they ran."""
        found = []
        for source in self._pipeline.artifact_sources(job):
            job_id = self._jobs[source.name].job_id
            if job_id is not None:
                found.append((job_id, source.name, coordinator.record(job_id).archive))
        return found

    def _take_slot(self) -> int:
        slot = 0
        while slot in self._slots:
            slot += 1
        self._slots.add(slot)
        return slot

    # -- reporting ---------------------------------------------------------------------------
    def _on_trace(self, job_id: int, data: bytes) -> None:
        name = self._names.get(job_id)
        if name is not None:
            self._observer.job_output(name, data)

    def _set(self, job: PipelineJob, status: JobStatus) -> None:
        progress = self._jobs[job.name]
        progress.record = replace(progress.record, status=status)

    def _change(self, job: PipelineJob, status: JobStatus, note: str = "") -> None:
        self._set(job, status)
        self._observer.job_changed(self._event(job, status, note=note))

    def _event(self, job: PipelineJob, status: JobStatus, note: str = "") -> JobEvent:
        progress = self._jobs[job.name]
        over = status not in (JobStatus.CREATED, JobStatus.PENDING, JobStatus.RUNNING)
        return JobEvent(
            job.name, status, progress.job_id, max(progress.attempts, 1),
            progress.duration_s if over and progress.attempts else None,
            progress.failure_reason if status is JobStatus.FAILED else None,
            status is JobStatus.FAILED and allowed_to_fail(job, progress.exit_code), note,
        )  # fmt: skip

    def _result(self) -> PipelineResult:
        reports = []
        for job in self._pipeline.jobs:
            progress = self._jobs[job.name]
            failed = progress.record.status is JobStatus.FAILED
            reports.append(
                JobReport(
                    name=job.name,
                    stage=job.stage,
                    status=progress.record.status,
                    duration_s=progress.duration_s,
                    failure_reason=progress.failure_reason if failed else None,
                    exit_code=progress.exit_code if failed else None,
                    allowed_failure=progress.record.allowed_failure,
                    attempts=progress.attempts,
                    job_id=progress.job_id,
                    log_file=self._workspace.log_file(self._pipeline_id, job.name) if progress.attempts else None,
                )
            )
        return PipelineResult(self._pipeline_id, tuple(reports), self._workspace.logs_dir(self._pipeline_id))


def _note(status: JobStatus) -> str:
    if status is JobStatus.MANUAL:
        return "manual job: name it on the command line to run it"
    return ""


def _log_note(job: PipelineJob, attempt: int) -> str:
    notes = []
    if attempt > 1:
        notes.append(f"\nskyrunner exec: attempt {attempt} of {job.name}\n")
    if job.when is When.DELAYED:
        notes.append(f"skyrunner exec: delayed job (start_in: {job.start_in}): running it now\n")
    return "".join(notes)
