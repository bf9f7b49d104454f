"""The executor interface: where a job's phases run.

An executor is created per job by its factory. The JobRunner calls, in order, :meth:`prepare`
(the ``prepare_executor`` stage: processes or a pod are set up and the job's run directory is
written), :meth:`run_phase` for ``prepare``, ``build`` and ``finish`` (each phase is run by the
sequencer, whose output goes to the trace), and :meth:`cleanup`, always. :meth:`stop` may come at
any time, from another task, and makes the running phase end soon (see ``CancelReason``).
:meth:`detach`, on a graceful shutdown that ran out of time, asks the executor to leave the job
running for the next runner process; the JobRunner then abandons the phase and calls
:meth:`cleanup`, which must release only this process's resources.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from skyrunner.job.layout import JobLayout, PreparedJob, Slot
from skyrunner.job.outcome import CancelReason, FailureReason
from skyrunner.job.script import Phase

__all__ = [
    "Executor",
    "ExecutorFactory",
    "ExecutorObserver",
    "JobLayout",
    "PhaseResult",
    "PreparedJob",
    "Slot",
    "TraceWriter",
]


class TraceWriter(Protocol):
    """Where executors write: the job's TraceSink."""

    def write(self, data: bytes) -> None: ...

    def write_line(self, text: str, color: str | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class PhaseResult:
    """How a phase ended: each stage's exit code, and the phase's own exit code.

    ``failure`` is set when the environment, not the script, ended the phase (an OOM kill, an
    evicted pod, an image that cannot be pulled), with the reason to report.
    """

    exit_code: int
    stages: Mapping[str, int] = field(default_factory=dict)
    failure: str = ""
    failure_reason: FailureReason | None = None

    def failed_stage(self) -> tuple[str, int] | None:
        """The first stage that exited non-zero, with its code."""
        for stage, code in self.stages.items():
            if code != 0:
                return stage, code
        return None


class Executor(Protocol):
    """Runs one job's phases."""

    name: str

    def layout(self, slot: Slot, project_path: str) -> JobLayout: ...

    async def prepare(self, job: PreparedJob, trace: TraceWriter) -> None: ...

    async def run_phase(self, phase: Phase, trace: TraceWriter) -> PhaseResult: ...

    async def stop(self, reason: CancelReason) -> None: ...

    async def detach(self) -> bool:
        """Let the job go on without this process (for the next one to adopt); False if it cannot."""

    async def cleanup(self) -> None: ...


class ExecutorObserver(Protocol):
    """Hears what an executor learns about the job's environment (the metrics hook)."""

    def pod_started(self, runner: str, seconds: float) -> None:
        """A job pod's first container started ``seconds`` after the pod was created."""

    def job_billed(self, platform: str, vcpu_seconds: float, gib_seconds: float, cost: float, currency: str) -> None:
        """A job pod ended; what its platform bills for it (``currency`` empty without prices)."""

    def orphan_pod_deleted(self, runner: str) -> None:
        """A pod whose job is over was found and deleted."""


class ExecutorFactory(Protocol):
    """Makes one executor per job."""

    name: str

    def create(self, job_id: int) -> Executor: ...
