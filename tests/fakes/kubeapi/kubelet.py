"""The scheduler and kubelet of the fake node(s): one worker per pod, from binding to removal.

Owns :class:`Kubelet` (a store listener that starts, updates and stops :class:`PodWorker`
tasks, and the container logs) and the pod lifecycle, step by step:

1. Schedule (unless ``spec.nodeName`` is set): after half of ``start_delay_s``, pick a node
   (``scheduler.py``); if none fits, PodScheduled=False/Unschedulable and a FailedScheduling
   event, retried with back-off. Binding sets ``spec.nodeName`` and a Scheduled event.
2. Admit on the node: startTime, hostIP, podIP, every container waiting (PodInitializing when
   there are init containers, else ContainerCreating), Initialized/Ready conditions.
3. Mount volumes; a missing Secret/ConfigMap is a FailedMount event and a retry.
4. Sandbox ready: PodReadyToStartContainers=True.
5. Init containers one by one: pull (Pulling/Pulled, or ErrImagePull -> ImagePullBackOff with
   events, retried with back-off: the pod stays Pending), env (CreateContainerConfigError,
   retried), Created/Started, run to exit. A failed init container fails the pod.
6. Containers: pulled and started in spec order, then all run at once; the pod ends
   Succeeded or Failed when the last exits (restartPolicy is treated as Never).
7. Stop, on deletion (grace from ``deletionGracePeriodSeconds``) or ``activeDeadlineSeconds``
   (phase Failed, reason DeadlineExceeded): Killing events, SIGTERM, SIGKILL after the grace,
   containers that never ran become ContainerStatusUnknown (137). A deleted pod is then
   removed from the store (DELETED) and its directory removed; a pod removed with grace 0 is
   killed at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .containers import ConfigError
from .deletion import finalize
from .events import EventRecorder
from .logs import ContainerLog, DropRules
from .podstatus import UNKNOWN_MESSAGE, ContainerRuntime, PodView, build_status
from .registry import Registry
from .resources import lookup
from .runtime import RunningContainer, Runtime, StartError
from .scheduler import choose_node
from .store import Change
from .timefmt import rfc3339
from .volumes import MountError, pod_dir, prepare_volumes, refresh_downward

__all__ = ["Kubelet", "PodWorker", "normalize_image"]

log = logging.getLogger(__name__)
_PODS = lookup("pods")


def normalize_image(image: str) -> str:
    """Return the fully qualified reference a runtime reports (docker.io/library/x:latest)."""
    name, digest = ([*image.split("@", 1), ""])[:2]
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    if digest:
        return f"{name}@{digest}"
    if ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return name


def _pull_fails(image: str) -> bool:
    return "pull-error" in image or "does-not-exist" in image


@dataclass(slots=True)
class _Node:
    name: str
    ip: str
    pulled: set[str]


class Kubelet:
    """Runs the pods of the fake cluster as local processes."""

    def __init__(
        self,
        registry: Registry,
        recorder: EventRecorder,
        runtime: Runtime,
        token: str,
        start_delay_s: float,
    ) -> None:
        self.registry = registry
        self.recorder = recorder
        self.runtime = runtime
        self.token = token
        self.start_delay_s = start_delay_s
        self.drops = DropRules()
        self.logs: dict[tuple[str, str], ContainerLog] = {}  # (pod uid, container) -> log
        self.workers: dict[str, PodWorker] = {}
        self.errors: list[BaseException] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._nodes: dict[str, _Node] = {}
        self._next_ip = 10
        self._gone = asyncio.Event()

    def worker_gone(self) -> asyncio.Event:
        """Return the event set when the next pod worker has cleaned up."""
        return self._gone

    def _announce_gone(self) -> None:
        self._gone.set()
        self._gone = asyncio.Event()

    def node(self, name: str) -> _Node:
        if name not in self._nodes:
            self._nodes[name] = _Node(name, f"172.18.0.{len(self._nodes) + 2}", set())
        return self._nodes[name]

    def pod_ip(self) -> str:
        self._next_ip += 1
        return f"10.244.{self._next_ip // 250}.{self._next_ip % 250 + 2}"

    def on_change(self, change: Change) -> None:
        if change.resource != _PODS:
            return
        uid = change.obj["metadata"]["uid"]
        worker = self.workers.get(uid)
        if change.type == "ADDED" and worker is None:
            worker = PodWorker(self, change.obj)
            self.workers[uid] = worker
            task = asyncio.get_running_loop().create_task(worker.run(), name=f"pod:{worker.key}")
            self._tasks.add(task)
            task.add_done_callback(self._done)
        elif worker is not None and change.type == "MODIFIED":
            worker.observe(change.obj)
        elif worker is not None and change.type == "DELETED":
            worker.gone()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("pod worker %s crashed", task.get_name(), exc_info=task.exception())
            self.errors.append(task.exception())  # type: ignore[arg-type]

    def drop_log_streams(self, pod: str | None, after_bytes: int, count: int) -> None:
        self.drops.arm(pod, after_bytes, count)
        for container_log in self.logs.values():
            container_log.notify()

    async def stop(self) -> None:
        """Kill every container process and end every worker."""
        for worker in self.workers.values():
            worker.kill_all()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for worker in self.workers.values():
            await worker.reap()


class PodWorker:
    """The lifecycle of one pod (see the module docstring)."""

    def __init__(self, kubelet: Kubelet, pod: dict[str, Any]) -> None:
        self.k = kubelet
        self.pod = pod
        meta = pod["metadata"]
        self.uid, self.namespace, self.name = meta["uid"], meta["namespace"], meta["name"]
        self.key = f"{self.namespace}/{self.name}"
        spec = pod["spec"]
        first = "PodInitializing" if spec.get("initContainers") else "ContainerCreating"
        self.view = PodView(scheduled=False, sandbox=False)
        self.view.inits = [self._runtime_state(c, True, first) for c in spec.get("initContainers") or []]
        self.view.containers = [self._runtime_state(c, False, first) for c in spec.get("containers") or []]
        self.running: dict[str, RunningContainer] = {}
        self.volumes: dict[str, Path] = {}
        self.node: _Node | None = None
        self._stop = asyncio.Event()
        self._changed = asyncio.Event()
        self.stop_reason = ""
        self._container_tasks: list[asyncio.Task[None]] = []

    @staticmethod
    def _runtime_state(container: dict[str, Any], init: bool, waiting: str) -> ContainerRuntime:
        return ContainerRuntime(container["name"], normalize_image(container.get("image", "")), init, waiting)

    # -- signals from the store ------------------------------------------------------------------

    def observe(self, pod: dict[str, Any]) -> None:
        old_meta, self.pod = self.pod["metadata"], pod
        meta = pod["metadata"]
        if meta.get("deletionTimestamp") and not self.stop_reason:
            self._request_stop("deleted")
        if self.volumes and (
            old_meta.get("labels") != meta.get("labels") or old_meta.get("annotations") != meta.get("annotations")
        ):
            refresh_downward(self.k.runtime.root, pod)
        self._changed.set()

    def gone(self) -> None:
        self.stop_reason = "gone"
        self.kill_all()
        self._stop.set()

    def _request_stop(self, reason: str) -> None:
        self.stop_reason = reason
        self._stop.set()

    def kill_all(self) -> None:
        for running in self.running.values():
            running.kill()

    async def reap(self) -> None:
        for running in self.running.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(running.process.wait(), 2.0)

    # -- helpers ---------------------------------------------------------------------------------

    def _publish(self) -> None:
        if self.stop_reason == "gone":
            return
        current = self.k.registry.store.get(_PODS, self.namespace, self.name)
        if current is None or current["metadata"]["uid"] != self.uid:
            return
        status = build_status(current.get("status") or {}, self.view, time.time())
        self.k.registry.write_status(_PODS, self.namespace, self.name, status)

    def _event(self, kind: str, reason: str, message: str, container: ContainerRuntime | None = None) -> None:
        if self.stop_reason == "gone":
            return
        field = None
        if container is not None:
            part = "initContainers" if container.init else "containers"
            field = f"spec.{part}{{{container.name}}}"
        host = self.node.name if self.node else ""
        self.k.recorder.record(self.pod, kind, reason, message, host=host, field_path=field)

    def _spec(self, state: ContainerRuntime) -> dict[str, Any]:
        part = "initContainers" if state.init else "containers"
        return next(c for c in self.pod["spec"].get(part) or [] if c["name"] == state.name)

    def _lookup(self, kind: str, name: str) -> dict[str, Any] | None:
        return self.k.registry.store.get(lookup(kind), self.pod["metadata"]["namespace"], name)

    # -- the lifecycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        life = asyncio.ensure_future(self._lifecycle())
        deadline = asyncio.ensure_future(self._deadline())
        try:
            await self._stop.wait()
        finally:
            life.cancel()
            deadline.cancel()
            await asyncio.gather(life, deadline, return_exceptions=True)
        await self._terminate()
        if self.stop_reason == "deadline":  # the Failed pod stays until someone deletes it
            self._stop.clear()
            await self._stop.wait()
            self._cleanup()

    async def _lifecycle(self) -> None:
        if not await self._schedule():
            return
        self._admit()
        await self._mount()
        self.view.sandbox = True
        self._publish()
        for state in self.view.inits:
            await self._start_all([state])
            await self._containers_done()
            if not state.succeeded:
                self._finish()
                return
        await self._start_all(self.view.containers)
        await self._containers_done()
        self._finish()

    async def _containers_done(self) -> None:
        # asyncio.wait, not gather: cancelling the lifecycle must not cancel the followers,
        # which still have to record the exit of the processes being stopped
        if self._container_tasks:
            await asyncio.wait(self._container_tasks)

    def _finish(self) -> None:
        self._mark_unknown()
        self._publish()

    async def _schedule(self) -> bool:
        await asyncio.sleep(self.k.start_delay_s / 2)
        if self.pod["spec"].get("nodeName"):
            self.node = self.k.node(self.pod["spec"]["nodeName"])
            return True
        backoff = 1.0
        while True:
            nodes = self.k.registry.store.items(lookup("nodes"))
            claims = lambda name: self._lookup("PersistentVolumeClaim", name) is not None  # noqa: E731
            chosen, message = choose_node(self.pod["spec"], nodes, claims)
            if chosen is not None:
                break
            self._unschedulable(message)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
        namespace, name = self.namespace, self.name
        bound = self.k.registry.write_spec_field(_PODS, namespace, name, ("spec", "nodeName"), chosen)
        if bound is None:
            return False
        self.pod = bound
        self.node = self.k.node(chosen)
        self.view.scheduled = True
        status = dict(bound.get("status") or {})
        status["conditions"] = [_scheduled_condition("True", "", "")]
        self.k.registry.write_status(_PODS, namespace, name, status)
        self.k.recorder.record_series(
            bound, "Normal", "Scheduled", "Binding", f"Successfully assigned {self.key} to {chosen}"
        )
        return True

    def _unschedulable(self, message: str) -> None:
        namespace, name = self.namespace, self.name
        current = self.k.registry.store.get(_PODS, namespace, name)
        if current is None:
            return
        status = dict(current.get("status") or {})
        old = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
        cond = _scheduled_condition("False", "Unschedulable", message)
        if old and old.get("status") == "False":
            cond["lastTransitionTime"] = old["lastTransitionTime"]
        status["conditions"] = [cond]
        self.k.registry.write_status(_PODS, namespace, name, status)
        self.k.recorder.record_series(current, "Warning", "FailedScheduling", "Scheduling", message)

    def _admit(self) -> None:
        assert self.node is not None
        self.view.scheduled = True
        self.view.host_ip = self.node.ip
        self.view.pod_ip = self.k.pod_ip()
        self.view.start_time = time.time()
        self._publish()

    async def _mount(self) -> None:
        last_event = 0.0
        while True:
            try:
                self.volumes = prepare_volumes(self.k.runtime.root, self.pod, self._lookup, self.k.token)
                return
            except MountError as exc:
                if time.monotonic() - last_event > 2.0:
                    self._event("Warning", "FailedMount", str(exc))
                    last_event = time.monotonic()
            await asyncio.sleep(0.2)

    async def _start_all(self, states: list[ContainerRuntime]) -> None:
        pending, backoff = list(states), 0.5
        while pending:
            pending = [s for s in pending if not await self._try_start(s)]
            if pending:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 4.0)

    async def _pull(self, state: ContainerRuntime, spec: dict[str, Any]) -> bool:
        assert self.node is not None
        image, policy = spec.get("image", ""), spec.get("imagePullPolicy", "IfNotPresent")
        if _pull_fails(image):
            self._event("Normal", "Pulling", f'Pulling image "{image}"', state)
            await asyncio.sleep(self.k.start_delay_s / 2)
            error = (
                f'rpc error: code = NotFound desc = failed to pull and unpack image "{state.image}": failed to '
                f'resolve reference "{state.image}": {state.image}: not found'
            )
            self._event("Warning", "Failed", f'Failed to pull image "{image}": {error}', state)
            self._event("Warning", "Failed", "Error: ErrImagePull", state)
            state.waiting_reason, state.waiting_message = "ErrImagePull", error
            self._publish()
            await asyncio.sleep(0.3)
            self._event("Normal", "BackOff", f'Back-off pulling image "{image}"', state)
            self._event("Warning", "Failed", "Error: ImagePullBackOff", state)
            state.waiting_reason, state.waiting_message = "ImagePullBackOff", f'Back-off pulling image "{image}"'
            self._publish()
            return False
        if policy == "Never" or (policy == "IfNotPresent" and state.image in self.node.pulled):
            self._event("Normal", "Pulled", f'Container image "{image}" already present on machine', state)
        else:
            self._event("Normal", "Pulling", f'Pulling image "{image}"', state)
            began = time.monotonic()
            await asyncio.sleep(self.k.start_delay_s / 2)
            took = time.monotonic() - began
            self._event(
                "Normal",
                "Pulled",
                f'Successfully pulled image "{image}" in {took:.3f}s ({took:.3f}s including waiting)',
                state,
            )
        self.node.pulled.add(state.image)
        state.image_id = f"{state.image.rsplit(':', 1)[0]}@sha256:{hashlib.sha256(state.image.encode()).hexdigest()}"
        return True

    async def _try_start(self, state: ContainerRuntime) -> bool:
        """Pull, configure and start one container; False means "retry later"."""
        spec = self._spec(state)
        if not await self._pull(state, spec):
            return False
        try:
            env = self.k.runtime.environment(spec, self.pod, self._lookup)
        except ConfigError as exc:
            state.waiting_reason, state.waiting_message = "CreateContainerConfigError", str(exc)
            self._event("Warning", "Failed", f"Error: {exc}", state)
            self._publish()
            return False
        log_ = ContainerLog()
        self.k.logs[(self.uid, state.name)] = log_
        state.container_id = "containerd://" + secrets.token_hex(32)
        self._event("Normal", "Created", f"Created container {state.name}", state)
        try:
            running = await self.k.runtime.start(spec, self.pod, env, self.volumes, log_)
        except StartError as exc:
            now = time.time()
            state.terminated = {
                "exitCode": 128,
                "reason": "StartError",
                "message": str(exc),
                "startedAt": _epoch(),
                "finishedAt": _stamp(now),
                "containerID": state.container_id,
            }
            log_.close()
            self._event("Warning", "Failed", f"Error: {exc}", state)
            self._publish()
            return True
        self.running[state.name] = running
        state.started_at = running.started_at
        self._event("Normal", "Started", f"Started container {state.name}", state)
        self._publish()
        self._container_tasks.append(asyncio.ensure_future(self._follow(state, running)))
        return True

    async def _follow(self, state: ContainerRuntime, running: RunningContainer) -> None:
        terminated = await running.wait()
        terminated["containerID"] = state.container_id
        state.terminated = terminated
        if not self.stop_reason:
            self._mark_unknown()  # a failed init container ends the pod in the same status write
            self._publish()

    async def _deadline(self) -> None:
        while True:
            self._changed.clear()
            seconds = self.pod["spec"].get("activeDeadlineSeconds")
            start = self.view.start_time
            terminal = all(c.terminated is not None for c in self.view.containers) and self.view.containers
            if seconds is None or start is None or terminal:
                await self._changed.wait()
                continue
            remaining = start + seconds - time.time()
            if remaining <= 0:
                self._request_stop("deadline")
                return
            # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that arrives in the
            # same tick as the event (a graceful delete sets both), and the task never ends.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._changed.wait()

    # -- stopping --------------------------------------------------------------------------------

    def _grace(self) -> float:
        if self.stop_reason == "deleted":
            return float(self.pod["metadata"].get("deletionGracePeriodSeconds") or 0)
        return float(self.pod["spec"].get("terminationGracePeriodSeconds", 30))

    async def _terminate(self) -> None:
        if self.stop_reason == "deadline":
            self.view.phase_override = "Failed"
            self.view.reason = "DeadlineExceeded"
            self.view.message = "Pod was active on the node longer than the specified deadline"
            self._event("Normal", "DeadlineExceeded", self.view.message)
        live = {n: r for n, r in self.running.items() if r.process.returncode is None}
        for name, running in live.items():
            state = next(s for s in [*self.view.inits, *self.view.containers] if s.name == name)
            self._event("Normal", "Killing", f"Stopping container {name}", state)
            running.terminate() if self._grace() > 0 else running.kill()
        if live and self._container_tasks:
            _, pending = await asyncio.wait(self._container_tasks, timeout=self._grace())
            if pending:
                self.kill_all()
        if self._container_tasks:
            await asyncio.wait(self._container_tasks)
        self.view.sandbox = False
        self._mark_unknown()
        self._publish()
        if self.stop_reason in ("deleted", "gone"):
            namespace, name = self.namespace, self.name
            if self.stop_reason == "deleted":
                finalize(self.k.registry, _PODS, namespace, name)
            self._cleanup()

    def _mark_unknown(self) -> None:
        """Give containers that never ran a terminated state once the pod is terminal."""
        phase = self.view.phase_override or ("Failed" if self.stop_reason else "")
        inits_failed = any(c.terminated is not None and not c.succeeded for c in self.view.inits)
        if not (phase or inits_failed or all(c.terminated for c in self.view.containers)):
            return
        for state in [*self.view.inits, *self.view.containers]:
            if state.terminated is None and state.started_at is None and (self.stop_reason or inits_failed):
                state.terminated = {"exitCode": 137, "reason": "ContainerStatusUnknown", "message": UNKNOWN_MESSAGE}
        if self.stop_reason == "deleted" and not self.view.phase_override:
            ok = all(c.succeeded for c in self.view.containers)
            self.view.phase_override = "Succeeded" if ok else "Failed"

    def _cleanup(self) -> None:
        for name in [s.name for s in [*self.view.inits, *self.view.containers]]:
            self.k.logs.pop((self.uid, name), None)
        self.k.workers.pop(self.uid, None)
        shutil.rmtree(pod_dir(self.k.runtime.root, self.uid), ignore_errors=True)
        self.k._announce_gone()


def _scheduled_condition(status: str, reason: str, message: str) -> dict[str, Any]:
    cond: dict[str, Any] = {
        "type": "PodScheduled",
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": _stamp(time.time()),
    }
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def _stamp(seconds: float) -> str:
    return rfc3339(seconds)


def _epoch() -> str:
    return "1970-01-01T00:00:00Z"
