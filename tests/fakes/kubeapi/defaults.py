"""Defaulting: the fields the API server fills in before it validates and stores an object.

Pure: no I/O. Owns the defaults of ``pkg/apis/core/v1/defaults.go`` that a client sees echoed
back (restartPolicy, terminationGracePeriodSeconds, imagePullPolicy from the tag,
terminationMessagePath, secret/configMap volume modes, requests from limits, ...), the pod QoS
class, Secret ``stringData`` folding, and the few defaults of other kinds. Admission
(service accounts, default tolerations) is in ``admission.py``.
"""

from __future__ import annotations

import base64
from typing import Any

from .quantity import parse_quantity

__all__ = ["apply_defaults", "image_pull_policy", "qos_class"]

_MODE_420 = ("secret", "configMap", "downwardAPI", "projected")


def image_pull_policy(image: str) -> str:
    """Return the default pull policy: Always for ``:latest`` or an untagged image."""
    name = image.rsplit("/", 1)[-1]
    if "@" in name:
        return "IfNotPresent"
    if ":" not in name or name.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def _container(container: dict[str, Any]) -> None:
    if container.get("image"):
        container.setdefault("imagePullPolicy", image_pull_policy(container["image"]))
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    resources = container.setdefault("resources", {})
    limits = resources.get("limits") or {}
    if limits:
        requests = resources.setdefault("requests", {})
        for name, value in limits.items():
            requests.setdefault(name, value)
    for port in container.get("ports") or []:
        port.setdefault("protocol", "TCP")
    for env in container.get("env") or []:
        field_ref = (env.get("valueFrom") or {}).get("fieldRef")
        if field_ref is not None:
            field_ref.setdefault("apiVersion", "v1")


def _volume(volume: dict[str, Any]) -> None:
    for source in _MODE_420:
        if source in volume and isinstance(volume[source], dict):
            volume[source].setdefault("defaultMode", 420)
    if isinstance(volume.get("hostPath"), dict):
        volume["hostPath"].setdefault("type", "")


def pod_spec_defaults(spec: dict[str, Any]) -> None:
    """Default a pod spec in place (pods and pod templates)."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("priority", 0)
    for part in ("initContainers", "containers"):
        for container in spec.get(part) or []:
            _container(container)
    for volume in spec.get("volumes") or []:
        _volume(volume)


def qos_class(spec: dict[str, Any]) -> str:
    """Return BestEffort, Burstable or Guaranteed as ``GetPodQOS`` does for cpu and memory."""
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    requests, limits, guaranteed = False, False, True
    for container in containers:
        res = container.get("resources") or {}
        req = {k: v for k, v in (res.get("requests") or {}).items() if k in ("cpu", "memory")}
        lim = {k: v for k, v in (res.get("limits") or {}).items() if k in ("cpu", "memory")}
        requests = requests or any(parse_quantity(v) > 0 for v in req.values())
        limits = limits or any(parse_quantity(v) > 0 for v in lim.values())
        if set(lim) != {"cpu", "memory"} or any(
            parse_quantity(req.get(k, lim[k])) != parse_quantity(lim[k]) for k in lim
        ):
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _secret(obj: dict[str, Any]) -> None:
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None) or {}
    if string_data:
        data = obj.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def _deployment(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    spec.setdefault(
        "strategy", {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    )
    template_spec = (spec.get("template") or {}).get("spec")
    if isinstance(template_spec, dict):
        pod_spec_defaults(template_spec)


def apply_defaults(kind: str, obj: dict[str, Any]) -> None:
    """Default ``obj`` of ``kind`` in place (metadata is the registry's business)."""
    if kind == "Pod":
        pod_spec_defaults(obj.setdefault("spec", {}))
    elif kind == "Secret":
        _secret(obj)
    elif kind == "Namespace":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        name = obj.get("metadata", {}).get("name")
        if name:
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    elif kind == "PersistentVolumeClaim":
        obj.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
    elif kind == "PersistentVolume":
        obj.setdefault("spec", {}).setdefault("persistentVolumeReclaimPolicy", "Retain")
        obj["spec"].setdefault("volumeMode", "Filesystem")
    elif kind == "Deployment":
        _deployment(obj)
