"""Admission: what the default admission chain does to an object before it is stored.

Owns the plugins a CI runner meets on every cluster: NamespaceLifecycle (no objects in a
missing or terminating namespace), ServiceAccount (default account, "not found" is 403,
token volume injected unless automount is off), DefaultTolerationSeconds, the pod status a
new pod starts with, and the instant binding of PersistentVolumeClaims (a stand-in for a
dynamic provisioner). It reads the store and never writes it.
"""

from __future__ import annotations

import random
from typing import Any

from .defaults import qos_class
from .resources import Resource, lookup
from .status import forbidden, not_found
from .store import Store

__all__ = ["NAME_ALPHABET", "SA_MOUNT_PATH", "admit_create", "random_suffix"]

NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's utilrand alphabet
SA_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
_DEFAULT_TOLERATIONS = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
)


def random_suffix(rng: random.Random, length: int = 5) -> str:
    return "".join(rng.choices(NAME_ALPHABET, k=length))


def _namespace_lifecycle(store: Store, resource: Resource, obj: dict[str, Any]) -> None:
    if not resource.namespaced:
        return
    meta = obj["metadata"]
    namespace = store.get(lookup("namespaces"), "", meta["namespace"])
    if namespace is None:
        raise not_found("", "namespaces", meta["namespace"])
    if (namespace.get("metadata") or {}).get("deletionTimestamp"):
        why = f"unable to create new content in namespace {meta['namespace']} because it is being terminated"
        raise forbidden(resource.group, resource.plural, meta.get("name", ""), why)


def _service_account(store: Store, obj: dict[str, Any], rng: random.Random) -> None:
    spec, meta = obj["spec"], obj["metadata"]
    name = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    spec["serviceAccountName"] = spec["serviceAccount"] = name
    account = store.get(lookup("serviceaccounts"), meta["namespace"], name)
    if account is None:
        why = f'error looking up service account {meta["namespace"]}/{name}: serviceaccount "{name}" not found'
        raise forbidden("", "pods", meta.get("name", ""), why)
    automount = spec.get("automountServiceAccountToken")
    if automount is None:
        automount = account.get("automountServiceAccountToken", True)
    if not automount:
        return
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    if any(m.get("mountPath") == SA_MOUNT_PATH for c in containers for m in c.get("volumeMounts") or []):
        return
    volume = f"kube-api-access-{random_suffix(rng)}"
    spec.setdefault("volumes", []).append(_token_volume(volume))
    for container in containers:
        mount = {"name": volume, "readOnly": True, "mountPath": SA_MOUNT_PATH}
        container.setdefault("volumeMounts", []).append(mount)


def _token_volume(name: str) -> dict[str, Any]:
    namespace_item = {"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}
    return {
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [namespace_item]}},
            ],
        },
    }


def _default_tolerations(spec: dict[str, Any]) -> None:
    tolerations = spec.setdefault("tolerations", [])
    for default in _DEFAULT_TOLERATIONS:
        covered = any(
            t.get("key") in (default["key"], None, "")
            and t.get("effect") in (default["effect"], None, "")
            and (t.get("operator") == "Exists" or not t.get("key"))
            for t in tolerations
        )
        if not covered:
            tolerations.append(dict(default))


def _bind_claim(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("volumeName", f"pvc-{obj['metadata']['uid']}")
    requests = (spec.get("resources") or {}).get("requests") or {}
    obj["status"] = {"phase": "Bound", "accessModes": spec.get("accessModes") or [], "capacity": dict(requests)}


def admit_create(store: Store, resource: Resource, obj: dict[str, Any], rng: random.Random) -> None:
    """Run the admission chain on a new object (in place).

    Raises:
        StatusError: 404 for a missing namespace, 403 for a terminating one or a missing
            service account.
    """
    _namespace_lifecycle(store, resource, obj)
    if resource.kind == "Pod":
        _service_account(store, obj, rng)
        _default_tolerations(obj["spec"])
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(obj["spec"])}
    elif resource.kind == "PersistentVolumeClaim":
        _bind_claim(obj)
    elif resource.kind == "Namespace":
        obj["status"] = {"phase": "Active"}
    elif resource.kind == "PersistentVolume":
        obj["status"] = {"phase": "Available"}
    elif resource.kind == "Deployment":
        obj["status"] = {}
