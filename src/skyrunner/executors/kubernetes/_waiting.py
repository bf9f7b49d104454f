"""Waiting for a job pod's containers to start, failing fast on what will not cure itself.

Owns :func:`wait_for_start`: the pod's view (``watch.py``) is re-checked on every change and
at the moment a pending problem (``_podstate.find_problems``) becomes fatal, so an image that
cannot be pulled fails the job within its grace period rather than at ``poll_timeout``. The
outcome is data (:class:`StartResult`): started, the pod gone, a fatal problem, or the time
limit (with the last warning event, for the message). It also measures how long the pod waited
for scheduling, for the trace (issue 5: cold start).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

from skyrunner.executors.kubernetes._podstate import PodProblem, ProblemClock, find_problems, has_started
from skyrunner.executors.kubernetes.watch import PodView

__all__ = ["StartResult", "Started", "wait_for_start"]

REFRESH_EVERY_S: Final = 30.0  # a direct read when nothing changed for this long (watch lag)


class Started(enum.Enum):
    STARTED = "started"
    GONE = "gone"
    PROBLEM = "problem"
    TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True)
class StartResult:
    """How the wait ended; ``scheduled_after_s`` is None when the pod was never scheduled."""

    state: Started
    problem: PodProblem | None = None
    scheduled_after_s: float | None = None
    last_warning: str = ""


def _scheduled(view: PodView) -> bool:
    pod = view.pod
    return bool(pod is not None and pod.spec is not None and pod.spec.nodeName)


async def wait_for_start(view: PodView, container: str, watched: Collection[str], timeout_s: float) -> StartResult:
    """Wait until ``container`` runs or ran, or the pod is gone, or a problem of ``watched``
    containers (or of the pod) is fatal, or ``timeout_s`` passed."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    deadline = began + timeout_s
    clock = ProblemClock()
    scheduled_at: list[float] = []
    refreshed = began

    def check(current: PodView) -> tuple[Started, PodProblem | None] | None:
        now = loop.time()
        if not scheduled_at and _scheduled(current):
            scheduled_at.append(now)
        if current.gone:
            return Started.GONE, None
        pod = current.pod
        if pod is None:
            return None
        if has_started(pod, container):
            return Started.STARTED, None
        problem = clock.due(find_problems(pod, current.events, watched), now)
        return (Started.PROBLEM, problem) if problem is not None else None

    while True:
        now = loop.time()
        pending = clock.next_deadline(find_problems(view.pod, view.events, watched)) if view.pod else None
        wake = min(deadline, refreshed + REFRESH_EVERY_S, pending if pending is not None else deadline)
        found = await view.wait_for(check, max(wake - now, 0.0) + 0.01)
        scheduled = scheduled_at[0] - began if scheduled_at else None
        if found is not None:
            return StartResult(found[0], found[1], scheduled, _last_warning(view))
        if loop.time() >= deadline:
            await view.refresh()  # be sure before failing the job (a failed read changes nothing)
            final = check(view)
            if final is not None:
                return StartResult(final[0], final[1], scheduled, _last_warning(view))
            return StartResult(Started.TIMEOUT, None, scheduled, _last_warning(view))
        if loop.time() >= refreshed + REFRESH_EVERY_S:
            refreshed = loop.time()
            await view.refresh()


def _last_warning(view: PodView) -> str:
    warnings = [e for e in view.events if e.type == "Warning"]
    return warnings[-1].quote() if warnings else ""
