"""From pod status and Events to decisions: fatal problems, phase results, billing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from lightkube.resources.core_v1 import Pod

from skyrunner.executors.kubernetes._podstate import (
    PodEvent,
    PodProblem,
    ProblemClock,
    billed_seconds,
    describe_end,
    find_problems,
    has_started,
    pulled_seconds,
)
from skyrunner.job.outcome import FailureReason

START = "2026-11-27T05:00:00Z"


def _pod(
    *,
    inits: list[dict[str, Any]] | None = None,
    containers: list[dict[str, Any]] | None = None,
    phase: str = "Pending",
    reason: str | None = None,
    message: str | None = None,
    conditions: list[dict[str, Any]] | None = None,
) -> Pod:
    status: dict[str, Any] = {"phase": phase, "startTime": START}
    if inits is not None:
        status["initContainerStatuses"] = inits
    if containers is not None:
        status["containerStatuses"] = containers
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    if conditions:
        status["conditions"] = conditions
    return Pod.from_dict(
        {
            "metadata": {"name": "runner-x-job-1", "namespace": "default"},
            "spec": {"containers": [{"name": "build", "image": "alpine"}]},
            "status": status,
        }
    )


def _status(name: str, state: dict[str, Any], image: str = "alpine:3") -> dict[str, Any]:
    return {"name": name, "image": image, "imageID": "", "ready": False, "restartCount": 0, "state": state}


def _waiting(name: str, reason: str, message: str = "", image: str = "alpine:3") -> dict[str, Any]:
    return _status(name, {"waiting": {"reason": reason, "message": message}}, image)


def _terminated(name: str, code: int, reason: str = "Completed", message: str = "", **more: Any) -> dict[str, Any]:
    state = {"exitCode": code, "reason": reason, "message": message, **more}
    return _status(name, {"terminated": state})


PULL_EVENT = PodEvent("Warning", "Failed", 'Failed to pull image "alpine:nope": not found', "spec.containers{build}")


@pytest.mark.parametrize(
    ("pod", "events", "key", "reason", "grace"),
    [
        (
            _pod(containers=[_waiting("build", "ImagePullBackOff", 'Back-off pulling image "alpine:nope"')]),
            [PULL_EVENT],
            "pull:build",
            FailureReason.IMAGE_PULL_FAILURE,
            0.0,
        ),
        (
            _pod(containers=[_waiting("build", "ErrImagePull", "rpc error: not found")]),
            [],
            "pull:build",
            FailureReason.IMAGE_PULL_FAILURE,
            15.0,
        ),
        (
            _pod(containers=[_waiting("build", "InvalidImageName", "bad name")]),
            [],
            "pull:build",
            FailureReason.IMAGE_PULL_FAILURE,
            0.0,
        ),
        (
            _pod(containers=[_waiting("build", "CreateContainerConfigError", 'secret "x" not found')]),
            [],
            "config:build",
            FailureReason.RUNNER_SYSTEM_FAILURE,
            10.0,
        ),
        (
            _pod(
                conditions=[
                    {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes"}
                ]
            ),
            [PodEvent("Warning", "FailedScheduling", "0/1 nodes are available: 1 Insufficient cpu.")],
            "unschedulable",
            FailureReason.RUNNER_SYSTEM_FAILURE,
            20.0,
        ),
        (
            _pod(phase="Failed", reason="Evicted", message="The node was low on resource: memory."),
            [],
            "pod:Evicted",
            FailureReason.RUNNER_SYSTEM_FAILURE,
            0.0,
        ),
        (
            _pod(phase="Failed", reason="DeadlineExceeded", message="Pod was active too long"),
            [],
            "pod:DeadlineExceeded",
            FailureReason.JOB_EXECUTION_TIMEOUT,
            0.0,
        ),
    ],
    ids=["backoff", "err-image-pull", "invalid-name", "config-error", "unschedulable", "evicted", "deadline"],
)
def test_problems(pod: Pod, events: list[PodEvent], key: str, reason: FailureReason, grace: float) -> None:
    problems = find_problems(pod, events, {"build"})
    assert [(p.key, p.failure_reason, p.grace_s) for p in problems] == [(key, reason, grace)]


def test_an_image_pull_problem_quotes_the_event() -> None:
    pod = _pod(containers=[_waiting("build", "ImagePullBackOff", "Back-off", image="alpine:nope")])
    (problem,) = find_problems(pod, [PULL_EVENT], {"build"})
    assert problem.quote == 'Warning Failed (container build): Failed to pull image "alpine:nope": not found'
    assert problem.message == (
        "image 'alpine' of container build cannot be pulled: Failed to pull image \"alpine:nope\": not found"
    )


def test_no_problem_while_a_node_is_being_added_or_for_other_containers() -> None:
    unschedulable = _pod(conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}])
    scale_up = PodEvent("Normal", "TriggeredScaleUp", "pod triggered scale-up")
    assert find_problems(unschedulable, [scale_up], {"build"}) == []
    other = _pod(containers=[_waiting("svc-0", "ImagePullBackOff")])
    assert find_problems(other, [], {"build"}) == []
    assert find_problems(_pod(containers=[_waiting("build", "ContainerCreating")]), [], {"build"}) == []


def test_the_clock_fires_after_the_grace_and_forgets_cured_problems() -> None:
    slow = PodProblem("pull:build", "m", "q", FailureReason.IMAGE_PULL_FAILURE, 15.0)
    clock = ProblemClock()
    assert clock.due([slow], now=100.0) is None
    assert clock.next_deadline([slow]) == 115.0
    assert clock.due([slow], now=114.9) is None
    assert clock.due([], now=120.0) is None  # cured: the pull worked on retry
    assert clock.due([slow], now=121.0) is None  # failing again starts a new grace
    assert clock.due([slow], now=136.0) is slow


@pytest.mark.parametrize(
    ("pod", "exit_code", "stages", "failure", "reason"),
    [
        (_pod(containers=[_terminated("build", 0, message="step_script=0\n")]), 0, {"step_script": 0}, "", None),
        (
            _pod(containers=[_terminated("build", 2, "Error", "step_script=2\nafter_script=0\n")]),
            2,
            {"step_script": 2, "after_script": 0},
            "",
            None,
        ),
        (
            _pod(containers=[_terminated("build", 137, "OOMKilled")]),
            137,
            {},
            "container build ran out of memory and was killed (OOMKilled, exit code 137)",
            FailureReason.SCRIPT_FAILURE,
        ),
        (
            _pod(containers=[_terminated("build", 128, "StartError", 'exec: "sh": not found')]),
            128,
            {},
            'container build could not start: exec: "sh": not found',
            FailureReason.RUNNER_SYSTEM_FAILURE,
        ),
        (
            _pod(
                phase="Failed",
                reason="Evicted",
                message="low on memory",
                containers=[_terminated("build", 137, "ContainerStatusUnknown")],
            ),
            137,
            {},
            "the pod was evicted: low on memory",
            FailureReason.RUNNER_SYSTEM_FAILURE,
        ),
        (
            _pod(phase="Failed", reason="DeadlineExceeded", containers=[_terminated("build", 143, "Error")]),
            143,
            {},
            "the pod ran longer than its activeDeadlineSeconds and was stopped",
            FailureReason.JOB_EXECUTION_TIMEOUT,
        ),
        (
            _pod(containers=[_status("build", {"running": {}})]),
            137,
            {},
            "the pod was deleted before container build ended",
            FailureReason.RUNNER_SYSTEM_FAILURE,
        ),
    ],
    ids=["success", "script-failure", "oom", "start-error", "evicted", "deadline", "never-ended"],
)
def test_describe_end(
    pod: Pod, exit_code: int, stages: dict[str, int], failure: str, reason: FailureReason | None
) -> None:
    result = describe_end(pod, "build")
    assert (result.exit_code, dict(result.stages), result.failure, result.failure_reason) == (
        exit_code,
        stages,
        failure,
        reason,
    )


def test_init_container_progress() -> None:
    pod = _pod(inits=[_status("prepare", {"running": {}})], containers=[_waiting("build", "PodInitializing")])
    assert has_started(pod, "prepare")
    assert not has_started(pod, "build")
    assert not has_started(pod, "helper")


def test_billing_counts_from_the_pod_start_to_the_last_container_end() -> None:
    done = _pod(
        containers=[
            _terminated("build", 0, finishedAt="2026-11-27T05:00:42Z"),
            _terminated("helper", 0, finishedAt="2026-11-27T05:00:40Z"),
        ]
    )
    late = datetime(2026, 11, 27, 6, tzinfo=UTC)
    assert billed_seconds(done, late) == 42.0
    running = _pod(containers=[_terminated("build", 0, finishedAt="2026-11-27T05:00:42Z"), _waiting("svc-0", "x")])
    assert billed_seconds(running, datetime(2026, 11, 27, 5, 1, tzinfo=UTC)) == 60.0


def test_pulled_seconds_reads_the_kubelet_messages() -> None:
    events = [
        PodEvent("Normal", "Pulled", 'Successfully pulled image "a" in 1.5s (1.6s including waiting)', "spec.x{a}"),
        PodEvent("Normal", "Pulled", 'Successfully pulled image "b" in 250ms (250ms including waiting)'),
        PodEvent("Normal", "Pulled", 'Container image "c" already present on machine'),
        PodEvent("Normal", "Pulling", 'Pulling image "d"'),
    ]
    assert pulled_seconds(events) == pytest.approx(1.75)
