"""How a job ended, and how that is told to GitLab.

Pure: no I/O. A :class:`JobOutcome` is data (buildkite's "outcomes are data"): the result, the
failure reason in our terms, the script's exit code and a one-line message for the trace.
:func:`render_job_update` is the one place where it becomes GitLab's ``state`` /
``failure_reason`` / ``exit_code``, mapped against the job's ``features.failure_reasons`` with the
fallbacks gitlab-runner uses (protocol §5).
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

__all__ = [
    "CancelReason",
    "FailureReason",
    "JobOutcome",
    "JobResult",
    "WireResult",
    "WireState",
    "map_failure_reason",
    "render_job_update",
]


class JobResult(enum.Enum):
    SUCCESS = "success"
    FAILED = "failed"
    CANCELED = "canceled"


class WireState(enum.StrEnum):
    """GitLab's job states as the runner sends them in ``PUT /jobs/:id``."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


class FailureReason(enum.StrEnum):
    """The failure reasons gitlab-runner emits."""

    SCRIPT_FAILURE = "script_failure"
    RUNNER_SYSTEM_FAILURE = "runner_system_failure"
    JOB_EXECUTION_TIMEOUT = "job_execution_timeout"
    IMAGE_PULL_FAILURE = "image_pull_failure"
    UNKNOWN_FAILURE = "unknown_failure"
    RUNNER_CONFIGURATION_ERROR = "runner_configuration_error"
    RUNNER_EXTERNAL_DEPENDENCY_FAILURE = "runner_external_dependency_failure"
    RUNNER_INTERRUPTED = "runner_interrupted"


class CancelReason(enum.Enum):
    """Why a running job is being stopped; the first reason given wins."""

    CANCELING = "canceling"  # GitLab asked for a graceful cancel: stop the script, run after_script
    ABORTED = "aborted"  # GitLab canceled or failed the job, or 403: kill, stop updating
    TIMEOUT = "timeout"  # runner_info.timeout reached
    RUNNER_STOPPING = "runner_stopping"  # SIGTERM/SIGINT or shutdown_timeout expired

    def __str__(self) -> str:
        return self.value.replace("_", " ")

    @property
    def is_hard(self) -> bool:
        """Kill at once, no after_script: an abort or the runner going away."""
        return self in (CancelReason.ABORTED, CancelReason.RUNNER_STOPPING)


_ALWAYS_ACCEPTED: Final = frozenset(
    {FailureReason.SCRIPT_FAILURE, FailureReason.RUNNER_SYSTEM_FAILURE, FailureReason.JOB_EXECUTION_TIMEOUT}
)
_FALLBACK: Final = {
    FailureReason.IMAGE_PULL_FAILURE: FailureReason.RUNNER_SYSTEM_FAILURE,
    FailureReason.RUNNER_EXTERNAL_DEPENDENCY_FAILURE: FailureReason.RUNNER_SYSTEM_FAILURE,
    FailureReason.RUNNER_CONFIGURATION_ERROR: FailureReason.SCRIPT_FAILURE,
}


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """How a job ended: ``message`` is the text after ``ERROR: Job failed``."""

    result: JobResult
    reason: FailureReason | None = None
    exit_code: int | None = None
    message: str = ""

    @classmethod
    def success(cls) -> JobOutcome:
        return cls(JobResult.SUCCESS)

    @classmethod
    def script_failed(cls, exit_code: int) -> JobOutcome:
        return cls(JobResult.FAILED, FailureReason.SCRIPT_FAILURE, exit_code, f"exit code {exit_code}")

    @classmethod
    def system_failure(
        cls, message: str, reason: FailureReason = FailureReason.RUNNER_SYSTEM_FAILURE
    ) -> JobOutcome:
        return cls(JobResult.FAILED, reason, None, message)

    @classmethod
    def timed_out(cls, timeout_s: int) -> JobOutcome:
        return cls(
            JobResult.FAILED,
            FailureReason.JOB_EXECUTION_TIMEOUT,
            None,
            f"execution took longer than {_human_duration(timeout_s)} seconds",
        )

    @classmethod
    def canceled(cls) -> JobOutcome:
        return cls(JobResult.CANCELED, None, None, "canceled")

    @classmethod
    def interrupted(cls) -> JobOutcome:
        return cls(JobResult.FAILED, FailureReason.RUNNER_SYSTEM_FAILURE, None, "the runner is stopping")

    @property
    def is_system_failure(self) -> bool:
        return self.result is JobResult.FAILED and self.reason not in (
            FailureReason.SCRIPT_FAILURE,
            FailureReason.JOB_EXECUTION_TIMEOUT,
            None,
        )

    def trace_line(self) -> str:
        """The job's last trace line without colours: gitlab-runner's wording."""
        if self.result is JobResult.SUCCESS:
            return "Job succeeded"
        if self.is_system_failure:
            return f"ERROR: Job failed (system failure): {self.message}"
        return f"ERROR: Job failed: {self.message}"


def _human_duration(seconds: int) -> str:
    """Format like Go's time.Duration, as gitlab-runner prints it (``1h0m0s``, ``5m0s``, ``30s``)."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def map_failure_reason(reason: FailureReason | None, supported: Collection[str]) -> str:
    """Map our reason to one the server knows, as gitlab-runner's failure_reason_mapper does."""
    if reason is None:
        return FailureReason.SCRIPT_FAILURE.value
    if reason in _ALWAYS_ACCEPTED or reason.value in supported:
        return reason.value
    fallback = _FALLBACK.get(reason)
    if fallback is not None:
        return fallback.value
    return FailureReason.UNKNOWN_FAILURE.value


@dataclass(frozen=True, slots=True)
class WireResult:
    """The state fields of the final ``PUT /jobs/:id``."""

    state: WireState
    failure_reason: str | None = None
    exit_code: int | None = None


def render_job_update(outcome: JobOutcome, supported_reasons: Collection[str]) -> WireResult:
    """Return what GitLab is told about ``outcome``.

    A canceled job is reported ``failed``: GitLab turns it into ``canceled`` because the job is
    ``canceling`` on its side.
    """
    if outcome.result is JobResult.SUCCESS:
        return WireResult(WireState.SUCCESS)
    if outcome.result is JobResult.CANCELED:
        return WireResult(WireState.FAILED, FailureReason.SCRIPT_FAILURE.value)
    return WireResult(
        WireState.FAILED, map_failure_reason(outcome.reason, supported_reasons), outcome.exit_code
    )
