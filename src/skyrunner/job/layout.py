"""Where a job's files live, and the job ready for an executor.

Pure: no I/O. These values are made by the job side (``job.prepare``) and consumed by executors;
they live here, below both, so that neither imports the other to share them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from skyrunner.helper.plan import HelperPlan
from skyrunner.job.durations import parse_go_duration
from skyrunner.job.script import JobScript
from skyrunner.job.spec import JobSpec
from skyrunner.job.variables import JobVariables

__all__ = ["DEFAULT_AFTER_SCRIPT_TIMEOUT_S", "JobLayout", "PreparedJob", "Slot"]

DEFAULT_AFTER_SCRIPT_TIMEOUT_S: Final = 300  # gitlab-runner's default after_script timeout


@dataclass(frozen=True, slots=True)
class Slot:
    """The job's concurrency slot: ``CI_CONCURRENT_ID`` and ``CI_CONCURRENT_PROJECT_ID``."""

    concurrent_id: int = 0
    project_id: int = 0


@dataclass(frozen=True, slots=True)
class JobLayout:
    """Where the job's files live, as seen from inside the job's environment."""

    builds_dir: str
    project_dir: str
    tmp_dir: str
    run_dir: str
    cache_dir: str
    shared_environment: bool


@dataclass(frozen=True, slots=True)
class PreparedJob:
    """Everything an executor needs to run a job; built by the JobRunner, no secrets in repr."""

    spec: JobSpec
    layout: JobLayout
    variables: JobVariables = field(repr=False)
    script: JobScript = field(repr=False)
    plan: HelperPlan = field(repr=False)

    def environment(self) -> dict[str, str]:
        return self.variables.environment()

    @property
    def after_script_timeout_s(self) -> int:
        """``RUNNER_AFTER_SCRIPT_TIMEOUT`` (a Go duration) in whole seconds; 300 when unset or invalid."""
        text = self.variables.get("RUNNER_AFTER_SCRIPT_TIMEOUT")
        seconds = parse_go_duration(text) if text else None
        return int(seconds) if seconds else DEFAULT_AFTER_SCRIPT_TIMEOUT_S
