"""Reading a job pod's state: container progress, what went wrong, how a phase ended, billing.

Pure: no I/O (``now`` is passed in). The shared watch (``watch.py``) hands the executor the pod
as last seen and the pod's Events; this module turns them into decisions:

* :func:`container_status`, :func:`has_started`, :func:`terminated_state`: where a container is;
* :func:`find_problems`: what keeps the pod from running, each with how long it may last before
  the job fails (:class:`ProblemClock` keeps the time each was first seen). Image pull errors
  fail with ``image_pull_failure`` (``ImagePullBackOff`` at once, ``ErrImagePull`` if the
  kubelet's retry does not cure it), an unschedulable pod fails unless a cluster autoscaler
  said it is adding a node, a container that cannot be configured fails after a short while.
  Every deadline is at most 30 s after the event;
* :func:`describe_end`: a container's end as a phase result (exit code, the sequencer's stage
  codes from ``terminated.message``, OOM kills, evictions and deadlines as failures);
* :func:`billed_seconds` and :func:`pulled_seconds`: the pod's running time as the platforms
  bill it (from ``status.startTime``) and the time its image pulls took, for the trace.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from lightkube.models.core_v1 import ContainerStateTerminated, ContainerStatus
from lightkube.resources.core_v1 import Pod

from skyrunner.errors import cut
from skyrunner.executors.base import PhaseResult
from skyrunner.job.durations import parse_go_duration
from skyrunner.job.outcome import FailureReason
from skyrunner.job.script import parse_stage_results

__all__ = [
    "PodEvent",
    "PodProblem",
    "ProblemClock",
    "billed_seconds",
    "container_status",
    "describe_end",
    "find_problems",
    "has_started",
    "pulled_seconds",
    "started_after_s",
    "terminated_state",
]

IMAGE_PULL_RETRY_S: Final = 15.0  # the kubelet retries a failed pull after ~10 s
CONFIG_ERROR_GRACE_S: Final = 10.0
UNSCHEDULABLE_GRACE_S: Final = 20.0
_FIELD_PATH = re.compile(r"spec\.(?:initContainers|containers|ephemeralContainers)\{([^}]*)\}")
_PULLED_IN = re.compile(r'Successfully pulled image "[^"]*" in ([0-9.a-zµ]+)')
# a cluster autoscaler (TriggeredScaleUp) or Karpenter (Nominated) is bringing a node
_SCALE_UP_REASONS: Final = frozenset({"TriggeredScaleUp", "Nominated"})
_PULL_NOW: Final = frozenset({"ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"})
_CONFIG_ERRORS: Final = frozenset({"CreateContainerConfigError", "CreateContainerError"})


@dataclass(frozen=True, slots=True)
class PodEvent:
    """One Kubernetes Event about the pod, as much of it as the trace needs."""

    type: str
    reason: str
    message: str
    field_path: str = ""
    count: int = 1

    @property
    def container(self) -> str | None:
        match = _FIELD_PATH.fullmatch(self.field_path)
        return match[1] if match else None

    def quote(self) -> str:
        """The event as the trace shows it: ``Warning Failed (container build): <message>``."""
        where = f" (container {self.container})" if self.container else ""
        return f"{self.type} {self.reason}{where}: {cut(self.message, 400)}"


@dataclass(frozen=True, slots=True)
class PodProblem:
    """Something that keeps the pod from running; fatal once it lasted ``grace_s``."""

    key: str
    message: str
    quote: str
    failure_reason: FailureReason
    grace_s: float


def _all_statuses(pod: Pod) -> list[ContainerStatus]:
    status = pod.status
    if status is None:
        return []
    return [*(status.initContainerStatuses or []), *(status.containerStatuses or [])]


def container_status(pod: Pod, name: str) -> ContainerStatus | None:
    """The status of container or init container ``name``, if the kubelet reported one."""
    return next((s for s in _all_statuses(pod) if s.name == name), None)


def has_started(pod: Pod, name: str) -> bool:
    """True once ``name`` runs or ran (its log can be read)."""
    status = container_status(pod, name)
    if status is None or status.state is None:
        return False
    return status.state.running is not None or status.state.terminated is not None


def terminated_state(pod: Pod, name: str) -> ContainerStateTerminated | None:
    status = container_status(pod, name)
    return status.state.terminated if status is not None and status.state is not None else None


def _pod_reason(pod: Pod) -> tuple[str, str]:
    status = pod.status
    if status is None:
        return "", ""
    return status.reason or "", status.message or ""


def _last_event(events: Sequence[PodEvent], container: str, reasons: Collection[str] = ()) -> PodEvent | None:
    for event in reversed(events):
        if event.type == "Warning" and event.container == container and (not reasons or event.reason in reasons):
            return event
    return None


def _pull_failure(events: Sequence[PodEvent], container: str) -> PodEvent | None:
    """The kubelet's ``Failed to pull image ...`` event (not its ``Error: ErrImagePull`` echo)."""
    for event in reversed(events):
        if event.container == container and event.message.startswith("Failed to pull image"):
            return event
    return None


def _spec_image(pod: Pod, status: ContainerStatus) -> str:
    """The image as the pod spec names it (the status has the runtime's resolved name)."""
    spec = pod.spec
    containers = [*(spec.initContainers or []), *spec.containers] if spec is not None else []
    return next((c.image for c in containers if c.name == status.name and c.image), status.image)


def _waiting_problems(pod: Pod, events: Sequence[PodEvent], containers: Collection[str]) -> Iterable[PodProblem]:
    for status in _all_statuses(pod):
        waiting = status.state.waiting if status.state is not None else None
        if status.name not in containers or waiting is None or not waiting.reason:
            continue
        reason, detail = waiting.reason, waiting.message or waiting.reason
        event = _last_event(events, status.name)
        quote = event.quote() if event else f"Warning {reason} (container {status.name}): {cut(detail, 400)}"
        if reason in _PULL_NOW or reason == "ErrImagePull":
            failed = _pull_failure(events, status.name)
            detail, quote = (failed.message, failed.quote()) if failed else (detail, quote)
            yield PodProblem(
                f"pull:{status.name}",
                f"image {_spec_image(pod, status)!r} of container {status.name} cannot be pulled: {cut(detail)}",
                quote,
                FailureReason.IMAGE_PULL_FAILURE,
                0.0 if reason in _PULL_NOW else IMAGE_PULL_RETRY_S,
            )
        elif reason in _CONFIG_ERRORS:
            yield PodProblem(
                f"config:{status.name}",
                f"container {status.name} cannot be created: {cut(detail)}",
                quote,
                FailureReason.RUNNER_SYSTEM_FAILURE,
                CONFIG_ERROR_GRACE_S,
            )


def _scheduling_problem(pod: Pod, events: Sequence[PodEvent]) -> PodProblem | None:
    conditions = pod.status.conditions if pod.status is not None else None
    scheduled = next((c for c in conditions or [] if c.type == "PodScheduled"), None)
    if scheduled is None or scheduled.status != "False" or scheduled.reason != "Unschedulable":
        return None
    if any(e.reason in _SCALE_UP_REASONS for e in events):
        return None  # a node is on its way: poll_timeout decides
    event = next((e for e in reversed(events) if e.reason == "FailedScheduling"), None)
    detail = scheduled.message or (event.message if event else "no node fits")
    quote = event.quote() if event else f"Warning FailedScheduling: {cut(detail, 400)}"
    return PodProblem(
        "unschedulable",
        f"the pod cannot be scheduled: {cut(detail)}",
        quote,
        FailureReason.RUNNER_SYSTEM_FAILURE,
        UNSCHEDULABLE_GRACE_S,
    )


def find_problems(pod: Pod, events: Sequence[PodEvent], containers: Collection[str]) -> list[PodProblem]:
    """List what keeps ``containers`` of ``pod`` from running."""
    problems = list(_waiting_problems(pod, events, containers))
    unschedulable = _scheduling_problem(pod, events)
    if unschedulable is not None:
        problems.append(unschedulable)
    reason, message = _pod_reason(pod)
    phase = pod.status.phase if pod.status is not None else None
    if phase == "Failed" and reason:
        failure, why = _pod_failure(reason, message)
        problems.append(PodProblem(f"pod:{reason}", failure, f"{reason}: {cut(message, 400)}", why, 0.0))
    return problems


@dataclass(slots=True)
class ProblemClock:
    """Remembers when each problem was first seen, and says which one is fatal now."""

    first_seen: dict[str, float] = field(default_factory=dict)

    def due(self, problems: Sequence[PodProblem], now: float) -> PodProblem | None:
        """Return the first problem that lasted its grace, forgetting problems that went away."""
        keys = {p.key for p in problems}
        for key in [k for k in self.first_seen if k not in keys]:
            del self.first_seen[key]
        for problem in problems:
            since = self.first_seen.setdefault(problem.key, now)
            if now - since >= problem.grace_s:
                return problem
        return None

    def next_deadline(self, problems: Sequence[PodProblem]) -> float | None:
        """When the earliest pending problem becomes fatal (None: none pending)."""
        times = [self.first_seen[p.key] + p.grace_s for p in problems if p.key in self.first_seen]
        return min(times) if times else None


def _pod_failure(reason: str, message: str) -> tuple[str, FailureReason]:
    if reason == "Evicted":
        return f"the pod was evicted: {cut(message)}", FailureReason.RUNNER_SYSTEM_FAILURE
    if reason == "DeadlineExceeded":
        return (
            "the pod ran longer than its activeDeadlineSeconds and was stopped",
            FailureReason.JOB_EXECUTION_TIMEOUT,
        )
    return f"the pod failed: {reason}: {cut(message)}", FailureReason.RUNNER_SYSTEM_FAILURE


def describe_end(pod: Pod | None, name: str) -> PhaseResult:
    """How container ``name`` ended, as a phase result.

    ``pod`` None (the pod is gone) or a container that never ran gives exit code 137 and a
    failure naming the pod's reason; the JobRunner ignores it when the job was being stopped.
    """
    reason, message = _pod_reason(pod) if pod is not None else ("", "")
    state = terminated_state(pod, name) if pod is not None else None
    if state is None or state.reason == "ContainerStatusUnknown":
        if reason:
            failure, why = _pod_failure(reason, message)
            return PhaseResult(exit_code=137, failure=failure, failure_reason=why)
        return PhaseResult(
            exit_code=137,
            failure=f"the pod was deleted before container {name} ended",
            failure_reason=FailureReason.RUNNER_SYSTEM_FAILURE,
        )
    stages = parse_stage_results(state.message or "")
    if state.reason == "OOMKilled":
        return PhaseResult(
            exit_code=state.exitCode,
            stages=stages,
            failure=f"container {name} ran out of memory and was killed (OOMKilled, exit code {state.exitCode})",
            failure_reason=FailureReason.SCRIPT_FAILURE,
        )
    if state.reason == "StartError":
        return PhaseResult(
            exit_code=state.exitCode,
            failure=f"container {name} could not start: {cut(state.message or '')}",
            failure_reason=FailureReason.RUNNER_SYSTEM_FAILURE,
        )
    if reason in ("Evicted", "DeadlineExceeded"):
        failure, why = _pod_failure(reason, message)
        return PhaseResult(exit_code=state.exitCode, stages=stages, failure=failure, failure_reason=why)
    return PhaseResult(exit_code=state.exitCode, stages=stages)


def _finished_at(pod: Pod) -> datetime | None:
    """When the pod's last container ended, if every container has."""
    statuses = pod.status.containerStatuses if pod.status is not None else None
    ends = []
    for status in statuses or []:
        state = status.state.terminated if status.state is not None else None
        if state is None or state.finishedAt is None:
            return None
        ends.append(state.finishedAt)
    return max(ends) if ends else None


def started_after_s(pod: Pod, container: str) -> float | None:
    """Seconds from the pod's creation to ``container`` starting (scheduling, pulls, start)."""
    created = pod.metadata.creationTimestamp if pod.metadata is not None else None
    status = container_status(pod, container)
    if created is None or status is None or status.state is None:
        return None
    state = status.state.running or status.state.terminated
    started: datetime | None = getattr(state, "startedAt", None)
    return None if started is None else max(float((started - created).total_seconds()), 0.0)


def billed_seconds(pod: Pod, now: datetime) -> float:
    """Seconds from the pod's start (the kubelet took it; pulls follow) to its end or ``now``."""
    started = pod.status.startTime if pod.status is not None else None
    if started is None:
        return 0.0
    end = _finished_at(pod) or now
    return max((end - started).total_seconds(), 0.0)


def pulled_seconds(events: Iterable[PodEvent], containers: Collection[str] | None = None) -> float:
    """Total time of the image pulls the kubelet reported (``Successfully pulled ... in 1.2s``)."""
    total = 0.0
    for event in events:
        if event.reason != "Pulled" or (containers is not None and event.container not in containers):
            continue
        match = _PULLED_IN.match(event.message)
        seconds = parse_go_duration(match[1]) if match else None
        total += seconds or 0.0
    return total
