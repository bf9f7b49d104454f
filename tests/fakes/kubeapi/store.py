"""Object storage: one global resourceVersion counter, a bounded change history, watch fan-out.

Owns the stored objects (plain JSON dicts keyed by resource, namespace and name), the counter
every write bumps (like etcd's revision, shared by all kinds), the last ``history_size``
changes for watches that resume from a resourceVersion, and the live watchers. It knows
nothing of validation, defaulting or deletion rules (``registry.py``).

Watch semantics, as the watch cache serves them:

1. ``resourceVersion`` unset or ``"0"``: a synthetic ADDED for every current match, then live.
2. ``resourceVersion=N``: every change with a version > N, then live. If the history no longer
   reaches back to N the watch gets one ERROR event carrying a 410 Expired Status
   (``too old resource version: N (M)``) and ends.
3. With selectors, an object that starts matching arrives as ADDED and one that stops matching
   as DELETED (with its new state), as the cacher's filtering does.

Internal listeners (the kubelet, the garbage collector) get every change in order, after the
write, one at a time: a listener that writes queues its change behind the current one.
"""

from __future__ import annotations

import asyncio
import copy
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .resources import Resource
from .selectors import Selector, selectable_fields
from .status import StatusError, expired

__all__ = ["Change", "Store", "Watcher"]


@dataclass(frozen=True, slots=True)
class Change:
    """One write: the stored object after it (or the last state, for DELETED) and before it."""

    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    resource: Resource
    obj: dict[str, Any]
    old: dict[str, Any] | None


@dataclass(slots=True, eq=False)
class Watcher:
    """A live watch: changes that pass its filter are queued as (type, object) pairs."""

    resource: Resource
    namespace: str | None
    labels: Selector
    fields: Selector
    queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = field(default_factory=asyncio.Queue)

    def _matches(self, obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        meta = obj.get("metadata") or {}
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        return self.labels.matches(meta.get("labels") or {}) and self.fields.matches(
            selectable_fields(self.resource, obj)
        )

    def offer(self, change: Change) -> None:
        """Queue what ``change`` means to this watcher, if anything."""
        if change.resource != self.resource:
            return
        now, before = self._matches(change.obj), self._matches(change.old)
        kind = change.type
        if kind == "MODIFIED":
            kind = "MODIFIED" if now and before else "ADDED" if now else "DELETED" if before else ""
        elif kind == "DELETED":
            kind = "DELETED" if before or now else ""
        elif not now:
            kind = ""
        if kind:
            self.queue.put_nowait((kind, change.obj))

    def close(self) -> None:
        self.queue.put_nowait(None)


Key = tuple[str, str]


class Store:
    """All objects of the fake cluster, versioned and watchable."""

    def __init__(self, history_size: int = 4096) -> None:
        self._objects: dict[Resource, dict[Key, dict[str, Any]]] = {}
        self._rv = 0
        self._history: deque[Change] = deque(maxlen=history_size)
        self._watchers: set[Watcher] = set()
        self._listeners: list[Callable[[Change], None]] = []
        self._pending: deque[Change] = deque()
        self._dispatching = False
        self.changed = asyncio.Event()  # set on every write; waiters clear it

    @property
    def rv(self) -> int:
        return self._rv

    def listen(self, listener: Callable[[Change], None]) -> None:
        """Call ``listener`` with every future change, in order."""
        self._listeners.append(listener)

    def get(self, resource: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        """Return a copy of one object, or None."""
        obj = self._objects.get(resource, {}).get((namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def items(self, resource: Resource, namespace: str | None = None) -> list[dict[str, Any]]:
        """Return copies of the objects of a resource (one namespace or all), sorted by key."""
        bucket = self._objects.get(resource, {})
        keys = sorted(k for k in bucket if namespace is None or k[0] == namespace)
        return [copy.deepcopy(bucket[k]) for k in keys]

    def owned_by(self, uid: str, namespace: str | None) -> list[tuple[Resource, dict[str, Any]]]:
        """Return copies of the objects with an owner reference to ``uid`` (one namespace or all)."""
        out = []
        for resource, bucket in self._objects.items():
            for (ns, _), obj in bucket.items():
                if namespace is not None and ns != namespace:
                    continue
                refs = obj["metadata"].get("ownerReferences") or []
                if any(ref.get("uid") == uid for ref in refs):
                    out.append((resource, copy.deepcopy(obj)))
        return out

    def put(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        """Store ``obj`` (create or replace by its name) under a new resourceVersion."""
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        bucket = self._objects.setdefault(resource, {})
        old = bucket.get(key)
        self._rv += 1
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = str(self._rv)
        bucket[key] = stored
        self._record(Change(self._rv, "MODIFIED" if old else "ADDED", resource, copy.deepcopy(stored), old))
        return copy.deepcopy(stored)

    def remove(self, resource: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        """Remove one object; the DELETED change carries its last state under a new version."""
        old = self._objects.get(resource, {}).pop((namespace, name), None)
        if old is None:
            return None
        self._rv += 1
        last = copy.deepcopy(old)
        last["metadata"]["resourceVersion"] = str(self._rv)
        self._record(Change(self._rv, "DELETED", resource, last, old))
        return copy.deepcopy(last)

    def _record(self, change: Change) -> None:
        self._history.append(change)
        for watcher in list(self._watchers):
            watcher.offer(change)
        self.changed.set()
        self._pending.append(change)
        if self._dispatching:
            return
        self._dispatching = True
        try:
            while self._pending:
                current = self._pending.popleft()
                for listener in list(self._listeners):
                    listener(current)
        finally:
            self._dispatching = False

    def watch(
        self, resource: Resource, namespace: str | None, since: str | None, labels: Selector, fields: Selector
    ) -> Watcher:
        """Start a watch (see the module docstring for what it sends first).

        Raises:
            StatusError: 410 Expired when ``since`` is older than the history.
        """
        watcher = Watcher(resource, namespace, labels, fields)
        if since in (None, "", "0"):
            for obj in self.items(resource, namespace):
                watcher.offer(Change(0, "ADDED", resource, obj, None))
        else:
            version = _parse_rv(since)
            floor = (self._history[0].rv - 1) if self._history else self._rv
            if version < floor:
                raise expired(f"too old resource version: {version} ({floor})")
            for change in self._history:
                if change.rv > version:
                    watcher.offer(change)
        self._watchers.add(watcher)
        return watcher

    def compact(self) -> None:
        """Drop the change history, as an etcd compaction does."""
        self._history.clear()

    def unwatch(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    def close_watches(self) -> None:
        for watcher in list(self._watchers):
            watcher.close()
        self._watchers.clear()


def _parse_rv(text: str | None) -> int:
    try:
        return int(text or "0")
    except ValueError:
        raise StatusError(400, "BadRequest", f'invalid resource version "{text}"') from None
