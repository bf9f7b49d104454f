"""The controllers a runner depends on: garbage collector and namespace lifecycle.

Both are store listeners (see ``store.py``): they see every change in order and react with
further writes through the registry.

Garbage collector (``ownerReferences``):

1. When an owner is removed, each dependent is handled by the owner's propagation policy:
   Orphan strips the reference; otherwise a dependent that still has a live owner loses the
   reference, and one that has none is deleted (pods gracefully, like any DELETE).
2. A dependent written with owner references none of which exists (by kind, name *and* uid)
   is deleted shortly after, as the real collector does for dangling references.
3. Foreground: the owner keeps its ``foregroundDeletion`` finalizer until its dependents are
   gone, then the finalizer is dropped and the owner removed.

Namespace controller: a new namespace gets its ``default`` ServiceAccount and the
``kube-root-ca.crt`` ConfigMap; a terminating namespace has its content deleted and is removed
once empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from .deletion import delete, finalize
from .registry import Registry
from .resources import RESOURCES, Resource, by_kind, lookup
from .status import StatusError
from .store import Change

__all__ = ["GarbageCollector", "NamespaceController"]

log = logging.getLogger(__name__)


def _refs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list((obj.get("metadata") or {}).get("ownerReferences") or [])


class GarbageCollector:
    """Deletes or orphans dependents of removed owners."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def _alive(self, namespace: str, ref: dict[str, Any]) -> bool:
        resource = by_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
        if resource is None:
            return False
        owner = self.registry.store.get(resource, namespace if resource.namespaced else "", ref.get("name", ""))
        return owner is not None and owner["metadata"].get("uid") == ref.get("uid")

    def _dependents(self, owner: Change) -> list[tuple[Resource, dict[str, Any]]]:
        uid = owner.obj["metadata"].get("uid", "")
        namespace = owner.obj["metadata"].get("namespace") if owner.resource.namespaced else None
        return self.registry.store.owned_by(uid, namespace)

    def _strip(self, resource: Resource, obj: dict[str, Any], uid: str) -> None:
        obj["metadata"]["ownerReferences"] = [r for r in _refs(obj) if r.get("uid") != uid]
        if not obj["metadata"]["ownerReferences"]:
            del obj["metadata"]["ownerReferences"]
        self.registry.store.put(resource, obj)

    def _delete(self, resource: Resource, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        with contextlib.suppress(StatusError):
            delete(self.registry, resource, meta.get("namespace", ""), meta["name"])

    def on_change(self, change: Change) -> None:
        meta = change.obj["metadata"]
        if change.type == "DELETED":
            self._owner_gone(change)
            for ref in _refs(change.obj):
                self._recheck_foreground(meta.get("namespace", ""), ref)
            return
        if _refs(change.obj):
            asyncio.get_running_loop().call_soon(
                self._check_dangling, change.resource, meta.get("namespace", ""), meta["name"]
            )
        if meta.get("deletionTimestamp") and "foregroundDeletion" in (meta.get("finalizers") or []):
            for resource, obj in self._dependents(change):
                if not obj["metadata"].get("deletionTimestamp"):
                    self._delete(resource, obj)
            self._recheck_foreground(meta.get("namespace", ""), None, change)

    def _owner_gone(self, change: Change) -> None:
        uid = change.obj["metadata"].get("uid", "")
        policy = self.registry.propagation.pop(uid, "Background")
        for resource, obj in self._dependents(change):
            namespace = obj["metadata"].get("namespace", "")
            others = [r for r in _refs(obj) if r.get("uid") != uid and self._alive(namespace, r)]
            if policy == "Orphan" or others:
                self._strip(resource, obj, uid)
            else:
                self._delete(resource, obj)

    def _check_dangling(self, resource: Resource, namespace: str, name: str) -> None:
        obj = self.registry.store.get(resource, namespace, name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return
        refs = _refs(obj)
        if refs and not any(self._alive(namespace, r) for r in refs):
            log.debug("gc: %s %s/%s has no live owner; deleting", resource.kind, namespace, name)
            self._delete(resource, obj)

    def _recheck_foreground(self, namespace: str, ref: dict[str, Any] | None, owner: Change | None = None) -> None:
        if owner is None:
            resource = by_kind(ref.get("apiVersion", ""), ref.get("kind", "")) if ref else None
            if resource is None or ref is None:
                return
            obj = self.registry.store.get(resource, namespace if resource.namespaced else "", ref.get("name", ""))
            if obj is None:
                return
            owner = Change(0, "MODIFIED", resource, obj, None)
        meta = owner.obj["metadata"]
        if "foregroundDeletion" not in (meta.get("finalizers") or []) or self._dependents(owner):
            return
        obj = self.registry.store.get(owner.resource, meta.get("namespace", ""), meta["name"])
        if obj is None:
            return
        obj["metadata"]["finalizers"] = [f for f in obj["metadata"]["finalizers"] if f != "foregroundDeletion"]
        if not obj["metadata"]["finalizers"]:
            del obj["metadata"]["finalizers"]
        self.registry.store.put(owner.resource, obj)
        finalize(self.registry, owner.resource, meta.get("namespace", ""), meta["name"])


class NamespaceController:
    """Seeds new namespaces and empties terminating ones."""

    def __init__(self, registry: Registry, ca_pem: str) -> None:
        self.registry = registry
        self.ca_pem = ca_pem

    def on_change(self, change: Change) -> None:
        if change.resource.kind == "Namespace":
            name = change.obj["metadata"]["name"]
            if change.type == "ADDED":
                self._seed(name)
            elif change.type == "MODIFIED" and change.obj["metadata"].get("deletionTimestamp"):
                self._empty(name)
                self._maybe_remove(name)
        elif change.type == "DELETED" and change.resource.namespaced:
            self._maybe_remove(change.obj["metadata"].get("namespace", ""))

    def _seed(self, namespace: str) -> None:
        account: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "default", "namespace": namespace},
        }
        config: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "kube-root-ca.crt", "namespace": namespace},
            "data": {"ca.crt": self.ca_pem},
        }
        for obj in (account, config):
            resource = lookup(obj["kind"])
            if self.registry.store.get(resource, namespace, obj["metadata"]["name"]) is None:
                self.registry.put_raw(resource, obj)

    def _empty(self, namespace: str) -> None:
        for resource in RESOURCES:
            if not resource.namespaced:
                continue
            for obj in self.registry.store.items(resource, namespace):
                if not obj["metadata"].get("deletionTimestamp"):
                    with contextlib.suppress(StatusError):
                        delete(self.registry, resource, namespace, obj["metadata"]["name"])

    def _maybe_remove(self, namespace: str) -> None:
        resource = lookup("namespaces")
        obj = self.registry.store.get(resource, "", namespace)
        if obj is None or not obj["metadata"].get("deletionTimestamp"):
            return
        if any(self.registry.store.items(r, namespace) for r in RESOURCES if r.namespaced):
            return
        self.registry.store.remove(resource, "", namespace)
