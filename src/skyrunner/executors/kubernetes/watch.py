"""The shared watch: one pod watch and one event watch per namespace, for every job of a runner.

A job does not poll its pod. :class:`PodWatchHub` keeps one :class:`NamespaceWatch` per
namespace while any pod of it is tracked (and ``linger_s`` after the last one), and each job
waits on its own :class:`PodView`, which the watch updates and wakes:

1. list the runner's pods (label selector) and apply them; remember the list's resourceVersion;
2. watch from that version; every ADDED/MODIFIED replaces the view's pod, DELETED marks it gone;
   the version of each event is kept, so a watch the server closes resumes where it stopped;
3. on 410 Gone (the version was compacted away) list again: a tracked pod missing from a list
   newer than the pod is gone; on any other error wait (backoff with jitter) and resume;
4. Events (``involvedObject.kind=Pod``) are listed and watched the same way and added to the
   view of the pod they are about, so jobs fail fast on image pull or scheduling errors.

500 jobs mean 500 views and two HTTP streams per namespace, not 500 watches or threads. A job
that cannot wait for the watch (it may lag after a reconnect) asks :meth:`PodView.refresh` for a
direct read. The watch tasks are owned by the hub: named, cancelled by :meth:`PodWatchHub.aclose`
or when idle, and their failures logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping
from typing import Final, TypeVar

from lightkube.resources.core_v1 import Event, Pod

from skyrunner.errors import KubernetesApiError
from skyrunner.executors.kubernetes._podstate import PodEvent, terminated_state
from skyrunner.executors.kubernetes.pods import PodApi

__all__ = ["NamespaceWatch", "PodView", "PodWatchHub"]

log = logging.getLogger(__name__)

T = TypeVar("T")
BACKOFF_START_S: Final = 0.5
BACKOFF_MAX_S: Final = 30.0
LINGER_S: Final = 30.0
RESTART_S: Final = 5.0


class PodView:
    """What the shared watch knows about one pod: the object as last seen, gone, its Events."""

    def __init__(self, watch: NamespaceWatch, name: str) -> None:
        self._watch = watch
        self.namespace = watch.namespace
        self.name = name
        self.pod: Pod | None = None
        self.gone = False
        self._events: dict[str, PodEvent] = {}
        self._changed = asyncio.Event()

    @property
    def events(self) -> list[PodEvent]:
        return list(self._events.values())

    def update(self, pod: Pod) -> None:
        if self.pod is not None and _version(pod) < _version(self.pod):
            return  # an older copy (a list that raced a watch event)
        self.pod = pod
        self._notify()

    def mark_gone(self) -> None:
        self.gone = True
        self._notify()

    def add_event(self, key: str, event: PodEvent) -> None:
        self._events[key] = event
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, check: Callable[[PodView], T | None], within_s: float | None) -> T | None:
        """Return the first non-None ``check(self)``, re-checked on every change; None after ``within_s``."""
        loop = asyncio.get_running_loop()
        deadline = None if within_s is None else loop.time() + within_s
        while (found := check(self)) is None:
            changed = self._changed
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return None
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel that arrives
            # together with the change, and an owner's TaskGroup would then wait forever
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await changed.wait()
        return found

    def container_ended(self, container: str) -> bool:
        """Whether ``container`` has terminated, or the pod is gone (nothing of it runs any more)."""
        return self.gone or (self.pod is not None and terminated_state(self.pod, container) is not None)

    async def wait_container_ended(self, container: str, within_s: float) -> bool:
        """Wait at most ``within_s`` for :meth:`container_ended`; whether it has."""
        return bool(await self.wait_for(lambda v: v.container_ended(container) or None, within_s))

    async def wait_gone(self, within_s: float) -> bool:
        """Wait at most ``within_s`` for the pod to be gone (or just pause until then); whether it is."""
        return bool(await self.wait_for(lambda v: v.gone or None, within_s))

    async def refresh(self) -> bool:
        """Read the pod directly (when the watch may lag); False when the API did not answer.

        A failed read is logged and leaves the view as it was: callers wait and try again
        rather than fail a job over one slow answer of a busy API server.
        """
        try:
            pod = await self._watch.api.get_pod(self.namespace, self.name)
        except KubernetesApiError as exc:
            log.warning("pod %s/%s could not be read, the watch will tell: %s", self.namespace, self.name, exc)
            return False
        if pod is None:
            self.mark_gone()
        else:
            self.update(pod)
        return True


def _version(pod: Pod) -> int:
    text = pod.metadata.resourceVersion if pod.metadata else None
    try:
        return int(text or 0)
    except ValueError:
        return 0  # opaque versions: take every copy in arrival order


def _event(event: Event) -> tuple[str, str, PodEvent]:
    involved = event.involvedObject
    key = (event.metadata.name if event.metadata else None) or ""
    pod_event = PodEvent(
        type=event.type or "",
        reason=event.reason or "",
        message=event.message or "",
        field_path=involved.fieldPath or "",
        count=event.count or 1,
    )
    return involved.name or "", key, pod_event


class NamespaceWatch:
    """The pod and event watches of one namespace, feeding the tracked views."""

    def __init__(self, api: PodApi, namespace: str, labels: Mapping[str, str]) -> None:
        self.api = api
        self.namespace = namespace
        self.labels = dict(labels)
        self.views: dict[str, PodView] = {}
        self.connected = asyncio.Event()

    async def run(self) -> None:
        """Keep both watches going until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._keep(self._pods, "pods"), name=f"k8s-watch:{self.namespace}:pods")
            group.create_task(self._keep(self._events, "events"), name=f"k8s-watch:{self.namespace}:events")

    async def _keep(self, stream: Callable[[str], object], what: str) -> None:
        version, backoff = "", BACKOFF_START_S
        while True:
            try:
                version = await stream(version)  # type: ignore[misc]
                backoff = BACKOFF_START_S
            except KubernetesApiError as exc:
                if exc.code == 410:
                    log.info("watch of %s in %s expired; listing again", what, self.namespace)
                    version = ""
                    continue
                delay = backoff * random.uniform(0.8, 1.2)
                log.warning("watch of %s in %s failed, retrying in %.1fs: %s", what, self.namespace, delay, exc)
                await asyncio.sleep(delay)
                backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _pods(self, version: str) -> str:
        if not version:
            pods, version = await self.api.list_pods(self.namespace, self.labels)
            self._apply_list(pods, version)
            self.connected.set()
        async for kind, pod in self.api.watch_pods(self.namespace, self.labels, version):
            version = (pod.metadata.resourceVersion if pod.metadata else None) or version
            name = (pod.metadata.name if pod.metadata else None) or ""
            view = self.views.get(name)
            if view is None or kind == "BOOKMARK":
                continue
            if kind == "DELETED":
                view.mark_gone()
            else:
                view.update(pod)
        return version

    def _apply_list(self, pods: list[Pod], version: str) -> None:
        seen = set()
        for pod in pods:
            name = (pod.metadata.name if pod.metadata else None) or ""
            seen.add(name)
            if (view := self.views.get(name)) is not None:
                view.update(pod)
        listed_at = int(version) if version.isdigit() else None
        for name, view in self.views.items():
            # only a list newer than the pod we know proves the pod is gone
            if name not in seen and view.pod is not None and listed_at is not None and _version(view.pod) < listed_at:
                view.mark_gone()

    async def _events(self, version: str) -> str:
        if not version:
            events, version = await self.api.list_events(self.namespace)
            for event in events:
                self._apply_event(event)
        async for kind, event in self.api.watch_events(self.namespace, version):
            version = (event.metadata.resourceVersion if event.metadata else None) or version
            if kind in ("ADDED", "MODIFIED"):
                self._apply_event(event)
        return version

    def _apply_event(self, event: Event) -> None:
        name, key, pod_event = _event(event)
        view = self.views.get(name)
        if view is not None:
            view.add_event(key, pod_event)


class PodWatchHub:
    """The runner's watches, one per namespace, shared by all its jobs."""

    def __init__(self, api: PodApi, labels: Mapping[str, str], *, linger_s: float = LINGER_S) -> None:
        self.api = api
        self.labels = dict(labels)
        self.linger_s = linger_s
        self._watches: dict[str, NamespaceWatch] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._idle: dict[str, asyncio.TimerHandle] = {}

    def track(self, namespace: str, name: str) -> PodView:
        """Start following pod ``name`` (before it is created, so no event is missed)."""
        watch = self._watches.get(namespace)
        if watch is None:
            watch = self._watches[namespace] = NamespaceWatch(self.api, namespace, self.labels)
            task = asyncio.get_running_loop().create_task(watch.run(), name=f"k8s-watch:{namespace}")
            task.add_done_callback(self._ended)
            self._tasks[namespace] = task
        if (timer := self._idle.pop(namespace, None)) is not None:
            timer.cancel()
        return watch.views.setdefault(name, PodView(watch, name))

    def untrack(self, view: PodView) -> None:
        watch = self._watches.get(view.namespace)
        if watch is None or watch.views.get(view.name) is not view:
            return
        del watch.views[view.name]
        if not watch.views:
            loop = asyncio.get_running_loop()
            self._idle[view.namespace] = loop.call_later(self.linger_s, self._stop_idle, view.namespace)

    def _stop_idle(self, namespace: str) -> None:
        self._idle.pop(namespace, None)
        watch = self._watches.get(namespace)
        if watch is not None and not watch.views:
            del self._watches[namespace]
            self._tasks.pop(namespace).cancel()

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        log.error("pod watch %s ended unexpectedly; restarting it", task.get_name(), exc_info=task.exception())
        namespace = next((ns for ns, t in self._tasks.items() if t is task), None)
        if namespace is not None:
            asyncio.get_running_loop().call_later(RESTART_S, self._restart, namespace, task)

    def _restart(self, namespace: str, dead: asyncio.Task[None]) -> None:
        watch = self._watches.get(namespace)
        if watch is None or self._tasks.get(namespace) is not dead:
            return
        task = asyncio.get_running_loop().create_task(watch.run(), name=f"k8s-watch:{namespace}")
        task.add_done_callback(self._ended)
        self._tasks[namespace] = task

    async def aclose(self) -> None:
        """Stop every watch and wait for it."""
        for timer in self._idle.values():
            timer.cancel()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._watches.clear()
        self._idle.clear()
