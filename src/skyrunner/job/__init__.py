"""The job side: one job from its payload to its report, whatever the executor.

The pure core (``spec``, ``variables``, ``script``, ``outcome``, ``helper_plan``, ``prepare``) and
the I/O around it (``trace``, ``runner``). ``runner.JobRunner`` is imported from its module: it sits
above the executors, which import this package's pure modules.
"""

from skyrunner.job.coordinator import Coordinator, JobRef, JobUpdate, PatchResult, RemoteState, UpdateResult
from skyrunner.job.outcome import CancelReason, FailureReason, JobOutcome, JobResult
from skyrunner.job.script import JobScript, Phase, ScriptOptions
from skyrunner.job.settings import JobSettings
from skyrunner.job.spec import JobSpec, Stage, parse_job_spec
from skyrunner.job.variables import JobVariables

__all__ = [
    "CancelReason",
    "Coordinator",
    "FailureReason",
    "JobOutcome",
    "JobRef",
    "JobResult",
    "JobScript",
    "JobSettings",
    "JobSpec",
    "JobUpdate",
    "JobVariables",
    "PatchResult",
    "Phase",
    "RemoteState",
    "ScriptOptions",
    "Stage",
    "UpdateResult",
    "parse_job_spec",
]
