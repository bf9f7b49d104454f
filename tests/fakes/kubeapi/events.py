"""Events the fake cluster reports about pods, in the two shapes a real cluster produces.

Owns :class:`EventRecorder`, which writes ``v1`` Event objects into the store:

* kubelet events (``record``) use the old recorder: ``source {component: kubelet, host}``,
  ``firstTimestamp``/``lastTimestamp``, ``count``; a repeat of the same reason and message for
  the same object bumps ``count`` and ``lastTimestamp`` (the event correlator's aggregation);
* scheduler events (``record_series``) come from the ``events.k8s.io`` recorder, so in ``v1``
  they have ``eventTime`` (microseconds), ``action``, ``reportingComponent``, an empty
  ``source``, null first/last timestamps, and a ``series`` once repeated.

Event names are ``<object name>.<hex of Unix nanoseconds>`` as upstream builds them.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from .registry import Registry
from .resources import lookup
from .timefmt import rfc3339

__all__ = ["EventRecorder"]


def _micro(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _reference(obj: dict[str, Any], field_path: str | None) -> dict[str, Any]:
    meta = obj["metadata"]
    ref = {
        "kind": obj.get("kind", "Pod"),
        "namespace": meta.get("namespace", ""),
        "name": meta["name"],
        "uid": meta.get("uid", ""),
        "apiVersion": obj.get("apiVersion", "v1"),
        "resourceVersion": meta.get("resourceVersion", ""),
    }
    if field_path:
        ref["fieldPath"] = field_path
    return ref


class EventRecorder:
    """Writes and aggregates Events; remembers which ones it made."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.names: list[tuple[str, str]] = []  # (namespace, name) in creation order
        self._seen: dict[tuple[str, ...], str] = {}

    def _event_name(self, obj: dict[str, Any]) -> str:
        return f"{obj['metadata']['name']}.{time.time_ns():x}"

    def record(
        self,
        obj: dict[str, Any],
        kind: str,
        reason: str,
        message: str,
        *,
        host: str = "",
        field_path: str | None = None,
        component: str = "kubelet",
    ) -> None:
        """Record a kubelet-style event (Normal or Warning) about ``obj``."""
        meta = obj["metadata"]
        namespace = meta.get("namespace", "default")
        key = (meta.get("uid", ""), component, kind, reason, message, field_path or "")
        now = rfc3339(self.registry.clock())
        resource = lookup("events")
        if key in self._seen:
            event = self.registry.store.get(resource, namespace, self._seen[key])
            if event is not None:
                event["count"] = int(event.get("count", 1)) + 1
                event["lastTimestamp"] = now
                self.registry.store.put(resource, event)
                return
        event = {
            "kind": "Event",
            "apiVersion": "v1",
            "metadata": {"name": self._event_name(obj), "namespace": namespace},
            "involvedObject": _reference(obj, field_path),
            "reason": reason,
            "message": message,
            "source": {"component": component, **({"host": host} if host else {})},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": kind,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": host,
        }
        self._store(event, key)

    def record_series(self, obj: dict[str, Any], kind: str, reason: str, action: str, message: str) -> None:
        """Record a scheduler event through the ``events.k8s.io`` recorder."""
        meta = obj["metadata"]
        namespace = meta.get("namespace", "default")
        key = (meta.get("uid", ""), "default-scheduler", kind, reason, message, "")
        resource = lookup("events")
        now = self.registry.clock()
        if key in self._seen:
            event = self.registry.store.get(resource, namespace, self._seen[key])
            if event is not None:
                count = int((event.get("series") or {}).get("count", 1)) + 1
                event["series"] = {"count": count, "lastObservedTime": _micro(now)}
                self.registry.store.put(resource, event)
                return
        event = {
            "kind": "Event",
            "apiVersion": "v1",
            "metadata": {"name": self._event_name(obj), "namespace": namespace},
            "involvedObject": _reference(obj, None),
            "reason": reason,
            "message": message,
            "source": {},
            "firstTimestamp": None,
            "lastTimestamp": None,
            "type": kind,
            "eventTime": _micro(now),
            "action": action,
            "reportingComponent": "default-scheduler",
            "reportingInstance": "default-scheduler-fake-control-plane",
        }
        self._store(event, key)

    def _store(self, event: dict[str, Any], key: tuple[str, ...]) -> None:
        namespace = self.registry.store.get(lookup("namespaces"), "", event["metadata"]["namespace"])
        if namespace is None or namespace["metadata"].get("deletionTimestamp"):
            return  # NamespaceLifecycle rejects it; recorders drop events they cannot write
        stored = self.registry.put_raw(lookup("events"), event)
        name = stored["metadata"]["name"]
        self._seen[key] = name
        self.names.append((stored["metadata"]["namespace"], name))

    def generated(self) -> list[dict[str, Any]]:
        """Return the current state of every event this recorder made and that still exists."""
        resource = lookup("events")
        out = []
        for namespace, name in self.names:
            event = self.registry.store.get(resource, namespace, name)
            if event is not None:
                out.append(event)
        return out
