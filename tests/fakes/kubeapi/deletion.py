"""DELETE: graceful pod deletion, finalizers, propagation policies, namespace termination.

Owns the decision of what a DELETE does to the stored object:

1. Preconditions (uid, resourceVersion) from a DeleteOptions body: 409 Conflict on mismatch.
2. A pod that is bound to a node and not terminal gets ``deletionTimestamp`` = now + grace and
   ``deletionGracePeriodSeconds`` (MODIFIED); the kubelet stops it and calls :func:`finalize`.
   ``gracePeriodSeconds`` defaults to the pod's ``terminationGracePeriodSeconds``; 0, an
   unscheduled pod or a terminal pod are removed at once. A second DELETE may shorten the grace.
3. A namespace turns Terminating; the namespace controller empties and removes it.
4. An object with finalizers (``foregroundDeletion`` is added for Foreground) only gets its
   ``deletionTimestamp``; it goes when the last finalizer is removed.
5. Anything else is removed now (DELETED). The propagation policy is recorded for the garbage
   collector, which handles dependents after the owner is gone.
"""

from __future__ import annotations

import copy
from typing import Any

from .registry import Registry
from .resources import Resource
from .status import bad_request, conflict
from .timefmt import rfc3339

__all__ = ["delete", "finalize"]

_POLICIES = ("Background", "Foreground", "Orphan")


def _check_preconditions(resource: Resource, obj: dict[str, Any], options: dict[str, Any]) -> None:
    pre = options.get("preconditions") or {}
    meta = obj["metadata"]
    if pre.get("uid") and pre["uid"] != meta.get("uid"):
        why = f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {meta.get('uid')}"
        raise conflict(resource.group, resource.plural, meta["name"], why)
    if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
        why = (
            f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
            f"ResourceVersion in object meta: {meta.get('resourceVersion')}"
        )
        raise conflict(resource.group, resource.plural, meta["name"], why)


def _pod_grace(obj: dict[str, Any], grace: int | None) -> int:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
        return 0
    if grace is None:
        grace = int(spec.get("terminationGracePeriodSeconds", 30))
    return max(grace, 0)


def delete(
    registry: Registry,
    resource: Resource,
    namespace: str,
    name: str,
    *,
    grace: int | None = None,
    propagation: str | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Delete an object as the API server does; return the object's state after the call.

    Raises:
        StatusError: 404, 409 on a failed precondition, 400 for an unknown propagation policy.
    """
    obj = registry.get(resource, namespace, name)
    options = options or {}
    _check_preconditions(resource, obj, options)
    policy = propagation or options.get("propagationPolicy")
    if options.get("orphanDependents") is True:
        policy = "Orphan"
    if policy is not None and policy not in _POLICIES:
        raise bad_request(
            f'propagationPolicy: Unsupported value: "{policy}": supported values: "Foreground", "Background", "Orphan"'
        )
    if grace is None and options.get("gracePeriodSeconds") is not None:
        grace = int(options["gracePeriodSeconds"])
    meta = obj["metadata"]
    registry.propagation[meta["uid"]] = policy or "Background"
    if resource.kind == "Pod":
        seconds = _pod_grace(obj, grace)
        if seconds > 0:
            return _mark(registry, resource, obj, seconds)
    if resource.kind == "Namespace":
        obj.setdefault("status", {})["phase"] = "Terminating"
        return _mark(registry, resource, obj, 0)
    finalizers = list(meta.get("finalizers") or [])
    if policy == "Foreground" and "foregroundDeletion" not in finalizers:
        finalizers.append("foregroundDeletion")
    if finalizers:
        meta["finalizers"] = finalizers
        return _mark(registry, resource, obj, 0)
    return registry.store.remove(resource, namespace, name) or obj


def _mark(registry: Registry, resource: Resource, obj: dict[str, Any], seconds: int) -> dict[str, Any]:
    meta = obj["metadata"]
    current = meta.get("deletionGracePeriodSeconds")
    if meta.get("deletionTimestamp") and current is not None and current <= seconds:
        return obj
    meta["deletionTimestamp"] = rfc3339(registry.clock() + seconds)
    meta["deletionGracePeriodSeconds"] = seconds
    return registry.store.put(resource, copy.deepcopy(obj))


def finalize(registry: Registry, resource: Resource, namespace: str, name: str) -> None:
    """Remove an object whose deletion has completed (kubelet done, no finalizers left)."""
    obj = registry.store.get(resource, namespace, name)
    if obj is None or obj["metadata"].get("finalizers"):
        return
    registry.store.remove(resource, namespace, name)
