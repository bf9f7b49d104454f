"""``[[runners.kubernetes.pod_spec]]`` patches, applied to the generated PodSpec, last, in order.

Pure: no I/O (``patch_path`` is read by the runtime; this module gets the text). As in
gitlab-runner, each patch is YAML or JSON for the pod's ``spec`` and has one of three types:

``merge``
    RFC 7386 JSON merge patch: maps merge, ``null`` deletes a key, anything else replaces.
``json``
    RFC 6902 JSON patch: a list of ``add``, ``remove``, ``replace``, ``move``, ``copy`` and
    ``test`` operations on JSON pointers (``/containers/0/image``, ``-`` appends).
``strategic``
    Kubernetes' strategic merge patch, for the PodSpec's fields: lists with a merge key are
    merged element by element (containers, initContainers and volumes by ``name``, env by
    ``name``, volumeMounts by ``mountPath``, ports by ``containerPort``, hostAliases by ``ip``,
    imagePullSecrets by ``name``...), other lists are replaced; ``$patch: delete`` in a list
    element removes that element, ``$patch: replace`` replaces a map or (as an element) the
    whole list, ``$patch: delete`` in a map deletes it, ``$retainKeys`` keeps only the keys it
    names, ``$deleteFromPrimitiveList/<field>`` removes values, ``$setElementOrder/...`` is
    accepted and ignored.

A patch that does not parse or does not apply is an error naming it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

import yaml

from skyrunner.config import PatchType, PodSpecPatch
from skyrunner.executors.kubernetes._overwrites import CONFIG
from skyrunner.executors.kubernetes._report import BuildReport

__all__ = ["apply_patches", "json_patch", "merge_patch", "strategic_merge_patch"]

_MERGE_KEYS: Final = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "schedulingGates": "name",
}
_DIRECTIVE: Final = "$patch"
_RETAIN: Final = "$retainKeys"
_DELETE_FROM: Final = "$deleteFromPrimitiveList/"
_ORDER: Final = "$setElementOrder/"


class PatchError(ValueError):
    """A patch that cannot be applied; the message says why."""


def apply_patches(spec: dict[str, Any], patches: list[tuple[PodSpecPatch, str]], report: BuildReport) -> dict[str, Any]:
    """Apply ``patches`` to the PodSpec ``spec`` in order; a failing patch is reported and skipped."""
    for patch, text in patches:
        where = f'{CONFIG} pod_spec "{patch.name}"'
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            report.error(f"{where}: not YAML or JSON ({' '.join(str(exc).split())[:120]})")
            continue
        try:
            spec = _apply(patch.patch_type, spec, document)
        except PatchError as exc:
            report.error(f"{where}: {exc}")
    return spec


def _apply(kind: PatchType, spec: dict[str, Any], document: Any) -> dict[str, Any]:
    if kind is PatchType.JSON:
        if not isinstance(document, list):
            raise PatchError("a json patch is a list of operations")
        result = json_patch(spec, document)
    else:
        if not isinstance(document, dict):
            raise PatchError(f"a {kind.value} patch is a map of PodSpec fields")
        result = merge_patch(spec, document) if kind is PatchType.MERGE else strategic_merge_patch(spec, document)
    if not isinstance(result, dict):
        raise PatchError("the patch does not leave a PodSpec")
    return result


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: return ``target`` with ``patch`` merged in."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def json_patch(document: Any, operations: list[Any]) -> Any:
    """RFC 6902: return ``document`` with ``operations`` applied."""
    result = copy.deepcopy(document)
    for number, operation in enumerate(operations):
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise PatchError(f"operation {number} needs op and path")
        where = f"operation {number} ({operation['op']} {operation['path']})"
        try:
            result = _operate(result, operation)
        except KeyError:
            raise PatchError(f"{where}: no such member") from None
        except (IndexError, TypeError, ValueError) as exc:
            raise PatchError(f"{where}: {exc}") from None
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ValueError("a JSON pointer starts with /")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _operate(document: Any, operation: Mapping[str, Any]) -> Any:
    op, path = operation["op"], _pointer(str(operation["path"]))
    if op == "test":
        if _get(document, path) != operation.get("value"):
            raise ValueError("test failed")
        return document
    if op in ("move", "copy"):
        source = _pointer(str(operation["from"]))
        value = copy.deepcopy(_get(document, source))
        if op == "move":
            document = _remove(document, source)
        return _add(document, path, value)
    if op == "remove":
        return _remove(document, path)
    if op == "replace":
        _get(document, path)
        value = copy.deepcopy(operation["value"])
        return _add(_remove(document, path), path, value) if path else value
    if op == "add":
        return _add(document, path, copy.deepcopy(operation["value"]))
    raise ValueError(f"unknown op {op!r}")


def _get(document: Any, path: list[str]) -> Any:
    for part in path:
        document = document[_index(document, part)] if isinstance(document, list) else document[part]
    return document


def _index(items: list[Any], part: str, *, end: bool = False) -> int:
    if end and part == "-":
        return len(items)
    if not part.isdigit() or (len(part) > 1 and part.startswith("0")):
        raise ValueError(f"{part!r} is not an array index")
    index = int(part)
    if index > len(items) or (not end and index == len(items)):
        raise IndexError(f"index {index} is out of range")
    return index


def _add(document: Any, path: list[str], value: Any) -> Any:
    if not path:
        return value
    parent = _get(document, path[:-1])
    if isinstance(parent, list):
        parent.insert(_index(parent, path[-1], end=True), value)
    elif isinstance(parent, dict):
        parent[path[-1]] = value
    else:
        raise TypeError("the parent is not an object or an array")
    return document


def _remove(document: Any, path: list[str]) -> Any:
    if not path:
        raise ValueError("cannot remove the whole document")
    parent = _get(document, path[:-1])
    if isinstance(parent, list):
        del parent[_index(parent, path[-1])]
    else:
        del parent[path[-1]]
    return document


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Kubernetes' strategic merge patch for PodSpec fields (see the module docstring)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get(_DIRECTIVE)
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != _DIRECTIVE}
    if directive == "delete":
        return None
    if directive is not None:
        raise PatchError(f"unknown $patch directive {directive!r}")
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith((_ORDER, _DIRECTIVE)) or key == _RETAIN:
            continue
        if key.startswith(_DELETE_FROM):
            field = key[len(_DELETE_FROM) :]
            out[field] = [item for item in out.get(field) or [] if item not in (value or [])]
        elif value is None:
            out.pop(key, None)
        elif isinstance(value, list) and key in _MERGE_KEYS:
            out[key] = _merge_list(out.get(key) or [], value, _MERGE_KEYS[key])
        else:
            merged = strategic_merge_patch(out.get(key), value)
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
    if _RETAIN in patch:
        out = {k: v for k, v in out.items() if k in set(patch[_RETAIN] or [])}
    return out


def _merge_list(current: list[Any], patch: list[Any], key: str) -> list[Any]:
    if any(isinstance(item, dict) and item.get(_DIRECTIVE) == "replace" for item in patch):
        return [copy.deepcopy(i) for i in patch if not (isinstance(i, dict) and i.get(_DIRECTIVE) == "replace")]
    out = [copy.deepcopy(item) for item in current]
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise PatchError(f"an element of a list merged by {key} has no {key}")
        position = next((i for i, old in enumerate(out) if isinstance(old, dict) and old.get(key) == item[key]), None)
        if item.get(_DIRECTIVE) == "delete":
            if position is not None:
                del out[position]
        elif position is None:
            out.append(strategic_merge_patch({}, item))
        else:
            out[position] = strategic_merge_patch(out[position], item)
    return out
