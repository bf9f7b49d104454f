"""A pipeline's schedule: which jobs may start, which are skipped, what a failure leads to.

Pure: no I/O. These are GitLab's rules, as the scheduler (``scheduler.py``) applies them after
every change:

* **The status a job waits on** (``Gitlab::Ci::Status::Composite``) is computed over its
  predecessors: the jobs it ``needs`` (a DAG job), else every job of the earlier stages. A
  failed (or canceled) job allowed to fail counts as a success with warnings; a manual job that
  is allowed to fail and did not run is *ignored*. A DAG job is skipped as soon as one of its
  needs was skipped or ignored, and waits until all of them are complete.
* **Whether the job runs** (``valid_statuses_for_build``): ``on_success``, ``manual`` and
  ``delayed`` need ``success`` (or ``skipped`` for a stage job), ``on_failure`` needs
  ``failed``, ``always`` any complete status. A job whose predecessors are complete but do not
  match is skipped; one that still waits keeps waiting. A manual job that would run becomes
  ``manual`` (not run) unless it was asked for by name.
* **Retries** (``Gitlab::Ci::Build::AutoRetry``): a failed job is retried up to ``retry:max``
  times when ``retry:when`` lists its failure reason (or ``always``) or ``retry:exit_codes`` its
  exit code; a few reasons are never retried.
* **Allowed failures:** ``allow_failure: true``, or an exit code listed in
  ``allow_failure:exit_codes``.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from skyrunner.pipeline.model import Pipeline, PipelineJob, When

__all__ = [
    "Composite",
    "JobRecord",
    "JobStatus",
    "Verdict",
    "advance",
    "allowed_to_fail",
    "composite_status",
    "should_retry",
    "stranded",
    "verdict",
]


class JobStatus(enum.StrEnum):
    """A job's status in the local pipeline, GitLab's names."""

    CREATED = "created"  # waiting for its predecessors
    PENDING = "pending"  # may start, waiting for a free slot
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELED = "canceled"
    SKIPPED = "skipped"
    MANUAL = "manual"  # a manual job nobody asked for: it does not run

    @property
    def complete(self) -> bool:
        """Whether the job is over (or, for a manual job, will never start by itself)."""
        return self in _COMPLETE


_COMPLETE: Final = frozenset(
    {JobStatus.SUCCESS, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.SKIPPED, JobStatus.MANUAL}
)
# failure reasons GitLab never retries (AutoRetry::RETRY_OVERRIDES)
_NEVER_RETRIED: Final = frozenset(
    {
        "ci_quota_exceeded",
        "no_matching_runner",
        "missing_dependency_failure",
        "forward_deployment_failure",
        "environment_creation_failure",
    }
)


@dataclass(frozen=True, slots=True)
class JobRecord:
    """Where a job stands; ``allowed_failure`` says a FAILED (or CANCELED) job may fail."""

    status: JobStatus = JobStatus.CREATED
    allowed_failure: bool = False


class Composite(enum.StrEnum):
    """The status a job waits on, computed over its predecessors."""

    SUCCESS = "success"
    FAILED = "failed"
    CANCELED = "canceled"
    SKIPPED = "skipped"
    WAITING = "waiting"  # not every predecessor is complete
    BLOCKED = "blocked"  # a manual job that may not fail did not run


class Verdict(enum.Enum):
    WAIT = "wait"
    RUN = "run"
    SKIP = "skip"
    MANUAL = "manual"


def _kind(job: PipelineJob, record: JobRecord) -> str:
    """One predecessor as GitLab's Composite sees it."""
    status = record.status
    if status in (JobStatus.FAILED, JobStatus.CANCELED) and record.allowed_failure:
        return "success_with_warnings"
    if status is JobStatus.MANUAL and job.allow_failure:
        return "ignored"
    return status.value


def composite_status(predecessors: Iterable[tuple[PipelineJob, JobRecord]], *, dag: bool) -> Composite:
    """Return the status a job waits on, from its predecessors (GitLab's Composite)."""
    kinds = {_kind(job, record) for job, record in predecessors}
    if not kinds:
        return Composite.SUCCESS  # nothing to wait for: the first stage, or ``needs: []``
    if dag and kinds & {"skipped", "ignored"}:
        return Composite.SKIPPED  # a DAG job is skipped if one of its needs did not run
    if kinds & {"created", "pending", "running"}:
        return Composite.WAITING
    if kinds <= {"skipped", "ignored"}:
        return Composite.SKIPPED
    if kinds <= {"success", "skipped", "success_with_warnings", "ignored"}:
        return Composite.SUCCESS
    if kinds <= {"canceled", "success", "skipped", "success_with_warnings", "ignored"}:
        return Composite.CANCELED
    if "manual" in kinds:
        return Composite.BLOCKED
    return Composite.FAILED


def _valid(job: PipelineJob) -> frozenset[Composite]:
    if job.when in (When.ON_SUCCESS, When.MANUAL, When.DELAYED):
        return frozenset({Composite.SUCCESS} if job.needs is not None else {Composite.SUCCESS, Composite.SKIPPED})
    if job.when is When.ON_FAILURE:
        return frozenset({Composite.FAILED})
    if job.when is When.ALWAYS:
        return frozenset({Composite.SUCCESS, Composite.FAILED, Composite.SKIPPED})
    return frozenset()


def verdict(pipeline: Pipeline, job: PipelineJob, records: Mapping[str, JobRecord], manual: Collection[str]) -> Verdict:
    """Decide what happens to ``job`` now: ``manual`` names the manual jobs asked for."""
    predecessors = [(other, records.get(other.name, JobRecord())) for other in pipeline.predecessors(job)]
    status = composite_status(predecessors, dag=job.needs is not None)
    if status in (Composite.WAITING, Composite.BLOCKED):
        return Verdict.WAIT
    if status not in _valid(job):
        return Verdict.SKIP
    if job.when is When.MANUAL and job.name not in manual:
        return Verdict.MANUAL
    return Verdict.RUN


_STATUS_OF: Final = {Verdict.RUN: JobStatus.PENDING, Verdict.SKIP: JobStatus.SKIPPED, Verdict.MANUAL: JobStatus.MANUAL}


def advance(pipeline: Pipeline, records: Mapping[str, JobRecord], manual: Collection[str] = ()) -> dict[str, JobStatus]:
    """Return the new status of every waiting job that can be decided now, in file order.

    A job that may start becomes PENDING; skipped and manual jobs are complete at once, which
    can decide later jobs too, so this goes on until nothing changes.
    """
    current = dict(records)
    changes: dict[str, JobStatus] = {}
    progress = True
    while progress:
        progress = False
        for job in pipeline.jobs:
            if current.get(job.name, JobRecord()).status is not JobStatus.CREATED:
                continue
            decided = verdict(pipeline, job, current, manual)
            if decided is Verdict.WAIT:
                continue
            changes[job.name] = _STATUS_OF[decided]
            current[job.name] = JobRecord(_STATUS_OF[decided])
            progress = progress or decided is not Verdict.RUN
    return changes


def stranded(pipeline: Pipeline, records: Mapping[str, JobRecord]) -> list[str]:
    """Return the jobs that can never start: waiting while nothing runs or may start.

    That happens behind a manual job that may not fail and was not run (GitLab leaves such a
    pipeline *blocked*); the scheduler skips them.
    """
    active = (JobStatus.PENDING, JobStatus.RUNNING)
    if any(records.get(job.name, JobRecord()).status in active for job in pipeline.jobs):
        return []
    return [job.name for job in pipeline.jobs if records.get(job.name, JobRecord()).status is JobStatus.CREATED]


def allowed_to_fail(job: PipelineJob, exit_code: int | None) -> bool:
    """Whether a failure of ``job`` with ``exit_code`` keeps the pipeline green."""
    return job.allow_failure or (exit_code is not None and exit_code in job.exit_codes)


def should_retry(job: PipelineJob, failure_reason: str | None, exit_code: int | None, retries: int) -> bool:
    """Whether a failed attempt of ``job`` (already retried ``retries`` times) is retried.

    ``retry:when`` defaults to ``always`` only without ``retry:exit_codes``; the loader's
    :class:`~skyrunner.pipeline.model.Retry` always fills in ``("always",)``, so with exit
    codes that default is read as "not given", as GitLab does.
    """
    retry = job.retry
    reason = failure_reason or "unknown_failure"
    if retry.max <= retries or reason in _NEVER_RETRIED:
        return False
    when = () if retry.exit_codes and retry.when == ("always",) else retry.when
    on_reason = "always" in when or reason in when
    on_exit_code = exit_code is not None and exit_code in retry.exit_codes
    return on_reason or on_exit_code
