"""Pod rules the OpenAPI schema does not carry (``pkg/apis/core/validation`` for pods).

Pure: no I/O. Owns :func:`pod_causes` (create) and :func:`pod_update_causes` (what may change
on a stored pod). Only the rules a CI runner can trip over are here: names and their
uniqueness, images, enums, volume mounts that name a volume, env names, quantities and
requests <= limits, activeDeadlineSeconds, tolerations, and spec immutability.
"""

from __future__ import annotations

import copy
from typing import Any

from .fielderrors import (
    dns_label,
    dns_subdomain,
    duplicate,
    env_name_causes,
    invalid,
    not_found,
    not_supported,
    quantity_cause,
    required,
)
from .quantity import parse_quantity
from .status import Cause

__all__ = ["pod_causes", "pod_update_causes"]

_RESTART = ("Always", "Never", "OnFailure")
_PULL = ("Always", "IfNotPresent", "Never")
_TERMINATION_MESSAGE = ("FallbackToLogsOnError", "File")
_DNS_POLICY = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
_TOLERATION_OPERATOR = ("Equal", "Exists")
_TAINT_EFFECT = ("NoExecute", "NoSchedule", "PreferNoSchedule")
_UPDATE_RULE = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
    "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
    "previously negative)"
)


def _resources_causes(field: str, resources: dict[str, Any]) -> list[Cause]:
    out: list[Cause] = []
    for part in ("limits", "requests"):
        for name, value in (resources.get(part) or {}).items():
            cause = quantity_cause(f"{field}.{part}[{name}]", value)
            if cause:
                out.append(cause)
    if out:
        return out
    limits = resources.get("limits") or {}
    for name, value in (resources.get("requests") or {}).items():
        if name in limits and parse_quantity(value) > parse_quantity(limits[name]):
            detail = f"must be less than or equal to {name} limit of {limits[name]}"
            out.append(invalid(f"{field}.requests", value, detail))
    return out


def _container_causes(field: str, container: dict[str, Any], volumes: set[str]) -> list[Cause]:
    out = dns_label(f"{field}.name", container.get("name", ""))
    if not container.get("image"):
        out.append(required(f"{field}.image"))
    policy = container.get("imagePullPolicy")
    if policy is not None and policy not in _PULL:
        out.append(not_supported(f"{field}.imagePullPolicy", policy, _PULL))
    tmp = container.get("terminationMessagePolicy")
    if tmp is not None and tmp not in _TERMINATION_MESSAGE:
        out.append(not_supported(f"{field}.terminationMessagePolicy", tmp, _TERMINATION_MESSAGE))
    for i, env in enumerate(container.get("env") or []):
        out += env_name_causes(f"{field}.env[{i}].name", env.get("name", ""))
    paths: set[str] = set()
    for i, mount in enumerate(container.get("volumeMounts") or []):
        if mount.get("name") not in volumes:
            out.append(not_found(f"{field}.volumeMounts[{i}].name", mount.get("name")))
        path = mount.get("mountPath") or ""
        if not path:
            out.append(required(f"{field}.volumeMounts[{i}].mountPath"))
        elif path in paths:
            out.append(invalid(f"{field}.volumeMounts[{i}].mountPath", path, "must be unique"))
        paths.add(path)
    out += _resources_causes(f"{field}.resources", container.get("resources") or {})
    return out


def _enum(field: str, value: Any, allowed: tuple[str, ...]) -> list[Cause]:
    return [] if value is None or value in allowed else [not_supported(field, value, allowed)]


def _tolerations_causes(tolerations: list[dict[str, Any]]) -> list[Cause]:
    out: list[Cause] = []
    for i, tol in enumerate(tolerations):
        out += _enum(f"spec.tolerations[{i}].operator", tol.get("operator"), _TOLERATION_OPERATOR)
        out += _enum(f"spec.tolerations[{i}].effect", tol.get("effect") or None, _TAINT_EFFECT)
        if tol.get("operator") == "Exists" and tol.get("value"):
            detail = "value must be empty when `operator` is 'Exists'"
            out.append(invalid(f"spec.tolerations[{i}].operator", tol["operator"], detail))
    return out


def pod_causes(spec: dict[str, Any]) -> list[Cause]:
    """Return the field errors of a pod spec the schema does not catch."""
    out: list[Cause] = []
    volumes: set[str] = set()
    for i, volume in enumerate(spec.get("volumes") or []):
        name = volume.get("name", "")
        out += dns_label(f"spec.volumes[{i}].name", name)
        if name in volumes:
            out.append(duplicate(f"spec.volumes[{i}].name", name))
        volumes.add(name)
    if not spec.get("containers"):
        out.append(required("spec.containers"))
    names: set[str] = set()
    for part in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(part) or []):
            field = f"spec.{part}[{i}]"
            out += _container_causes(field, container, volumes)
            if container.get("name") in names:
                out.append(duplicate(f"{field}.name", container.get("name")))
            names.add(container.get("name", ""))
    out += _enum("spec.restartPolicy", spec.get("restartPolicy"), _RESTART)
    out += _enum("spec.dnsPolicy", spec.get("dnsPolicy"), _DNS_POLICY)
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and not 1 <= deadline <= 2**31 - 1:
        out.append(invalid("spec.activeDeadlineSeconds", deadline, "must be between 1 and 2147483647, inclusive"))
    if spec.get("serviceAccountName"):
        out += dns_subdomain("spec.serviceAccountName", spec["serviceAccountName"])
    out += _tolerations_causes(spec.get("tolerations") or [])
    return out


def pod_update_causes(old: dict[str, Any], new: dict[str, Any]) -> list[Cause]:
    """Return the error for a pod update that changes an immutable part of the spec."""
    mutable = copy.deepcopy(new)
    for part in ("initContainers", "containers"):
        olds = old.get(part) or []
        for i, container in enumerate(mutable.get(part) or []):
            if i < len(olds):
                container["image"] = olds[i].get("image")
    old_deadline, new_deadline = old.get("activeDeadlineSeconds"), new.get("activeDeadlineSeconds")
    if new_deadline is not None and (old_deadline is None or new_deadline <= old_deadline):
        _set_or_drop(mutable, "activeDeadlineSeconds", old_deadline)
    old_tol = old.get("tolerations") or []
    if all(t in (new.get("tolerations") or []) for t in old_tol):
        _set_or_drop(mutable, "tolerations", old.get("tolerations"))
    if mutable == old:
        return []
    return [_forbidden("spec", _UPDATE_RULE)]


def _set_or_drop(spec: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        spec.pop(key, None)
    else:
        spec[key] = value


def _forbidden(field: str, detail: str) -> Cause:
    return Cause("FieldValueForbidden", f"Forbidden: {detail}", field)
