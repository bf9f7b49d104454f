"""Executors: where a job's phases run. ``base`` is the interface, ``shell`` runs them on this
machine, ``kubernetes`` in one self-sequencing pod per job."""

from skyrunner.executors.base import Executor, ExecutorFactory, JobLayout, PhaseResult, PreparedJob, Slot
from skyrunner.executors.shell import ShellExecutor, ShellExecutorFactory

__all__ = [
    "Executor",
    "ExecutorFactory",
    "JobLayout",
    "PhaseResult",
    "PreparedJob",
    "ShellExecutor",
    "ShellExecutorFactory",
    "Slot",
]
