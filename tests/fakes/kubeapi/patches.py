"""The three PATCH bodies: JSON merge patch, strategic merge patch and JSON patch.

Pure: no I/O. Each function takes the stored object and the patch and returns a new object
(the inputs are not changed). Strategic merge knows the merge keys of the lists a runner
touches (containers, env, volumes, volumeMounts, ports, ownerReferences, conditions, ...) and
the ``$patch`` / ``$deleteFromPrimitiveList`` directives; lists without a merge key are
replaced, as upstream does for lists without a ``patchStrategy``.
"""

from __future__ import annotations

import copy
from typing import Any

from .status import StatusError

__all__ = ["MERGE_KEYS", "json_patch", "merge_patch", "strategic_merge_patch"]

_PRIMITIVE = ""
# list field -> patchMergeKey (``_PRIMITIVE``: a set-like list of scalars merged by value)
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "ownerReferences": "uid",
    "conditions": "type",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "finalizers": _PRIMITIVE,
}


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Apply a Kubernetes strategic merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            out[field] = [v for v in out.get(field) or [] if v not in value]
            continue
        if value is None or (isinstance(value, dict) and value.get("$patch") == "delete"):
            out.pop(key, None)
        elif isinstance(value, list) and key in MERGE_KEYS:
            out[key] = _merge_list(out.get(key) or [], value, MERGE_KEYS[key])
        else:
            out[key] = strategic_merge_patch(out.get(key), value)
    return out


def _merge_list(current: list[Any], patch: list[Any], merge_key: str) -> list[Any]:
    if merge_key == _PRIMITIVE:
        return [*current, *(v for v in patch if v not in current)]
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [copy.deepcopy(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    out = copy.deepcopy(current)
    for item in patch:
        if not isinstance(item, dict):
            continue
        key = item.get(merge_key)
        index = next((i for i, cur in enumerate(out) if isinstance(cur, dict) and cur.get(merge_key) == key), None)
        if item.get("$patch") == "delete":
            out = [cur for cur in out if not (isinstance(cur, dict) and cur.get(merge_key) == key)]
        elif index is None:
            out.append(strategic_merge_patch({}, item))
        else:
            out[index] = strategic_merge_patch(out[index], item)
    return out


# -- RFC 6902 -------------------------------------------------------------------------------------


def _fail(message: str) -> StatusError:
    return StatusError(422, "Invalid", message)


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise _fail(f"add operation does not apply: doc is missing path: {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str], op: str, path: str) -> Any:
    cur = doc
    for part in parts[:-1]:
        try:
            cur = cur[int(part)] if isinstance(cur, list) else cur[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise _fail(f'{op} operation does not apply: doc is missing path: "{path}"') from None
    return cur


def _get(doc: Any, path: str, op: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return doc
    parent = _parent(doc, parts, op, path)
    try:
        return parent[int(parts[-1])] if isinstance(parent, list) else parent[parts[-1]]
    except (KeyError, IndexError, ValueError, TypeError):
        raise _fail(f'{op} operation does not apply: doc is missing key: "{path}"') from None


def _remove(doc: Any, path: str, op: str) -> Any:
    parts = _pointer(path)
    parent = _parent(doc, parts, op, path)
    value = _get(doc, path, op)
    if isinstance(parent, list):
        del parent[int(parts[-1])]
    else:
        del parent[parts[-1]]
    return value


def _add(doc: Any, path: str, value: Any, op: str, replace: bool = False) -> Any:
    parts = _pointer(path)
    if not parts:
        return copy.deepcopy(value)
    parent = _parent(doc, parts, op, path)
    key = parts[-1]
    if isinstance(parent, list):
        index = len(parent) if key == "-" else int(key)
        if replace:
            parent[index] = copy.deepcopy(value)
        else:
            parent.insert(index, copy.deepcopy(value))
    elif isinstance(parent, dict):
        if replace and key not in parent:
            raise _fail(f"replace operation does not apply: doc is missing key: {path}")
        parent[key] = copy.deepcopy(value)
    else:
        raise _fail(f'{op} operation does not apply: doc is missing path: "{path}"')
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    """Apply an RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    if not isinstance(operations, list):
        raise StatusError(400, "BadRequest", "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(target)
    for operation in operations:
        op, path = operation.get("op"), operation.get("path", "")
        if op == "add":
            doc = _add(doc, path, operation.get("value"), op)
        elif op == "remove":
            _remove(doc, path, op)
        elif op == "replace":
            doc = _add(doc, path, operation.get("value"), op, replace=True)
        elif op in ("move", "copy"):
            value = _remove(doc, operation["from"], op) if op == "move" else _get(doc, operation["from"], op)
            doc = _add(doc, path, value, op)
        elif op == "test":
            if _get(doc, path, op) != operation.get("value"):
                raise _fail(f"testing value {path} failed: test failed")
        else:
            raise _fail(f"Unexpected kind: {op}")
    return doc
