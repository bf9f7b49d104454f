"""Executors: where a job's phases run. ``base`` is the interface, ``shell`` runs them on this
machine, ``kubernetes`` in one self-sequencing pod per job.

The names below are loaded on first use, so that ``skyrunner exec`` can start the helper fork
server (``helper_server``) before the job modules those names pull in are imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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

_HOMES = {"ShellExecutor": "shell", "ShellExecutorFactory": "shell"}


def __getattr__(name: str) -> object:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES.get(name, 'base')}"), name)
