"""Pod status as the kubelet computes it (``kubelet_pods.go`` getPhase, ``status`` conditions).

Pure: no I/O, no clock (``now`` is passed in). Owns :class:`ContainerRuntime` (what the fake
runtime knows about one container), its rendering as a ``ContainerStatus``, the pod phase
(restartPolicy Never rules: Pending while an init container has not succeeded or a container
waits, Running while one runs, then Succeeded if every container exited 0, else Failed), and
the five conditions with ``lastTransitionTime`` kept across updates when a status does not
change. Container statuses are sorted by name; init container statuses keep spec order.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from .timefmt import rfc3339

__all__ = ["ContainerRuntime", "PodView", "build_status", "container_status", "pod_phase"]

UNKNOWN_MESSAGE = "The container could not be located when the pod was terminated"


@dataclass(slots=True)
class ContainerRuntime:
    """Mutable runtime state of one container, owned by its pod worker."""

    name: str
    image: str  # normalised reference (docker.io/library/x:tag)
    init: bool
    waiting_reason: str = "ContainerCreating"
    waiting_message: str = ""
    started_at: float | None = None  # running since
    terminated: dict[str, Any] | None = None
    container_id: str = ""
    image_id: str = ""

    @property
    def running(self) -> bool:
        return self.started_at is not None and self.terminated is None

    @property
    def succeeded(self) -> bool:
        return self.terminated is not None and self.terminated.get("exitCode") == 0


def container_status(c: ContainerRuntime) -> dict[str, Any]:
    """Render one ``ContainerStatus``."""
    if c.terminated is not None:
        state: dict[str, Any] = {"terminated": dict(c.terminated)}
    elif c.started_at is not None:
        state = {"running": {"startedAt": rfc3339(c.started_at)}}
    else:
        waiting = {"reason": c.waiting_reason}
        if c.waiting_message:
            waiting["message"] = c.waiting_message
        state = {"waiting": waiting}
    out: dict[str, Any] = {
        "name": c.name,
        "state": state,
        "lastState": {},
        "ready": c.succeeded if c.init else c.running,
        "restartCount": 0,
        "image": c.image,
        "imageID": c.image_id,
    }
    if c.container_id:
        out["containerID"] = c.container_id
    out["started"] = c.running
    return out


def pod_phase(inits: list[ContainerRuntime], containers: list[ContainerRuntime]) -> str:
    """Return the phase for restartPolicy Never."""
    if any(c.terminated is not None and not c.succeeded for c in inits):
        return "Failed"
    if not all(c.succeeded for c in inits):
        return "Pending"
    waiting = sum(1 for c in containers if c.terminated is None and c.started_at is None)
    running = sum(1 for c in containers if c.running)
    if waiting:
        return "Pending"
    if running:
        return "Running"
    return "Succeeded" if all(c.succeeded for c in containers) else "Failed"


@dataclass(slots=True)
class PodView:
    """What the status is computed from, besides the containers."""

    scheduled: bool
    sandbox: bool  # PodReadyToStartContainers
    host_ip: str = ""
    pod_ip: str = ""
    start_time: float | None = None
    reason: str = ""
    message: str = ""
    phase_override: str = ""  # Failed on DeadlineExceeded
    inits: list[ContainerRuntime] = field(default_factory=list)
    containers: list[ContainerRuntime] = field(default_factory=list)


def _names(items: list[ContainerRuntime]) -> str:
    return "[" + " ".join(c.name for c in items) + "]"


def _conditions(view: PodView, phase: str) -> list[tuple[str, str, str, str]]:
    terminal = phase in ("Succeeded", "Failed")
    out = [("PodReadyToStartContainers", "True" if view.sandbox and not terminal else "False", "", "")]
    pending_inits = [c for c in view.inits if not c.succeeded]
    if phase == "Succeeded":
        out.append(("Initialized", "True", "PodCompleted", ""))
    elif pending_inits:
        out.append(
            (
                "Initialized",
                "False",
                "ContainersNotInitialized",
                f"containers with incomplete status: {_names(pending_inits)}",
            )
        )
    else:
        out.append(("Initialized", "True", "", ""))
    unready = [c for c in sorted(view.containers, key=lambda c: c.name) if not c.running]
    if terminal:
        reason = "PodCompleted" if phase == "Succeeded" else "PodFailed"
        ready = ("False", reason, "")
    elif unready:
        ready = ("False", "ContainersNotReady", f"containers with unready status: {_names(unready)}")
    else:
        ready = ("True", "", "")
    out += [("Ready", *ready), ("ContainersReady", *ready), ("PodScheduled", "True", "", "")]
    return out


def merge_conditions(
    old: list[dict[str, Any]], new: list[tuple[str, str, str, str]], now: float
) -> list[dict[str, Any]]:
    """Build condition dicts, keeping ``lastTransitionTime`` when a status did not change."""
    before = {c.get("type"): c for c in old}
    out = []
    for kind, status, reason, message in new:
        prev = before.get(kind)
        moment = prev["lastTransitionTime"] if prev and prev.get("status") == status else rfc3339(now)
        cond: dict[str, Any] = {"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": moment}
        if reason:
            cond["reason"] = reason
        if message:
            cond["message"] = message
        out.append(cond)
    return out


def build_status(old: dict[str, Any], view: PodView, now: float) -> dict[str, Any]:
    """Return the pod status the kubelet would write for ``view``."""
    phase = view.phase_override or pod_phase(view.inits, view.containers)
    status = copy.deepcopy(old)
    status["phase"] = phase
    status["conditions"] = merge_conditions(old.get("conditions") or [], _conditions(view, phase), now)
    for key in ("reason", "message"):
        if getattr(view, key):
            status[key] = getattr(view, key)
    if view.host_ip:
        status["hostIP"] = view.host_ip
        status["hostIPs"] = [{"ip": view.host_ip}]
    if view.pod_ip:
        status["podIP"] = view.pod_ip
        status["podIPs"] = [{"ip": view.pod_ip}]
    if view.start_time is not None:
        status["startTime"] = rfc3339(view.start_time)
    if view.inits:
        status["initContainerStatuses"] = [container_status(c) for c in view.inits]
    status["containerStatuses"] = [container_status(c) for c in sorted(view.containers, key=lambda c: c.name)]
    return status
