"""Server-side apply and field ownership (``metadata.managedFields``), reduced to its contract.

Pure: no I/O (the caller passes ``now``). Owns:

* :func:`fieldset` - the leaf paths an object sets, in the ``FieldsV1`` shape
  (``f:<field>``, ``k:{"name":"x"}`` for items of keyed lists, ``v:"x"`` for set-like scalars);
* :func:`apply` - merge an applied configuration into the live object as the apply contract
  says: the manager's fields are set, fields it applied before and no longer applies are
  removed (unless another manager owns them), a field another manager owns with a different
  value is a 409 Conflict unless ``force``; an apply that changes nothing returns the live
  object untouched (so the caller does not bump resourceVersion);
* :func:`record_update` - a PUT or PATCH takes ownership of the fields it changed.

Not modelled: per-version schemas, ``x-kubernetes-list-type`` beyond the merge keys of
``patches.MERGE_KEYS``, status-subresource managers.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from .patches import MERGE_KEYS
from .status import StatusError

__all__ = ["apply", "fieldset", "record_update"]

Path = tuple[str, ...]
_SERVER_OWNED = ("apiVersion", "kind", "status")
_META_SERVER_OWNED = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
)


def _clean(obj: dict[str, Any]) -> dict[str, Any]:
    out = {k: copy.deepcopy(v) for k, v in obj.items() if k not in _SERVER_OWNED}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _META_SERVER_OWNED}
    if meta:
        out["metadata"] = copy.deepcopy(meta)
    else:
        out.pop("metadata", None)
    return out


def _item_key(item: Any, merge_key: str) -> str:
    return "k:" + json.dumps({merge_key: item.get(merge_key)}, separators=(",", ":"))


def _walk(value: Any, prefix: Path, out: set[Path]) -> None:
    if isinstance(value, dict) and value:
        for key, sub in value.items():
            field = (*prefix, f"f:{key}")
            if isinstance(sub, list) and key in MERGE_KEYS and sub:
                _walk_list(sub, field, MERGE_KEYS[key], out)
            else:
                _walk(sub, field, out)
    elif prefix:
        out.add(prefix)


def _walk_list(items: list[Any], prefix: Path, merge_key: str, out: set[Path]) -> None:
    for item in items:
        if merge_key and isinstance(item, dict):
            _walk(item, (*prefix, _item_key(item, merge_key)), out)
        else:
            out.add((*prefix, "v:" + json.dumps(item, separators=(",", ":"))))


def fieldset(obj: dict[str, Any]) -> set[Path]:
    """Return the leaf paths set by ``obj`` (server-owned fields excluded)."""
    out: set[Path] = set()
    _walk(_clean(obj), (), out)
    return out


def _to_fields_v1(paths: set[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for part in path:
            node = node.setdefault(part, {})
            if part.startswith("k:"):
                node.setdefault(".", {})
    return root


def _from_fields_v1(tree: dict[str, Any], prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for key, sub in tree.items():
        if key == ".":
            continue
        children = {k: v for k, v in sub.items() if k != "."}
        if children:
            out |= _from_fields_v1(children, (*prefix, key))
        else:
            out.add((*prefix, key))
    return out


def _lookup(obj: Any, path: Path) -> tuple[bool, Any]:
    cur = obj
    for part in path:
        kind, _, rest = part.partition(":")
        if kind == "f" and isinstance(cur, dict) and rest in cur:
            cur = cur[rest]
        elif kind == "k" and isinstance(cur, list):
            key, want = next(iter(json.loads(rest).items()))
            cur = next((i for i in cur if isinstance(i, dict) and i.get(key) == want), None)
            if cur is None:
                return False, None
        elif kind == "v" and isinstance(cur, list):
            want = json.loads(rest)
            return (want in cur), want
        else:
            return False, None
    return True, cur


def _remove(obj: Any, path: Path) -> None:
    if not path:
        return
    part, rest = path[0], path[1:]
    kind, _, text = part.partition(":")
    if kind == "f" and isinstance(obj, dict) and text in obj:
        if rest:
            _remove(obj[text], rest)
            if obj[text] in ({}, []):
                del obj[text]
        else:
            del obj[text]
    elif kind == "k" and isinstance(obj, list):
        key, want = next(iter(json.loads(text).items()))
        for i, item in enumerate(obj):
            if isinstance(item, dict) and item.get(key) == want:
                _remove(item, rest)
                if set(item) <= {key}:
                    del obj[i]
                break
    elif kind == "v" and isinstance(obj, list):
        want = json.loads(text)
        if want in obj:
            obj.remove(want)


def _merge(live: Any, applied: Any, field: str = "") -> Any:
    if isinstance(live, dict) and isinstance(applied, dict):
        out = copy.deepcopy(live)
        for key, value in applied.items():
            out[key] = _merge(live.get(key), value, key)
        return out
    if isinstance(live, list) and isinstance(applied, list) and field in MERGE_KEYS:
        key = MERGE_KEYS[field]
        if not key:
            return [*live, *(v for v in applied if v not in live)]
        items: list[Any] = copy.deepcopy(live)
        for item in applied:
            idx = next((i for i, cur in enumerate(items) if cur.get(key) == item.get(key)), None)
            if idx is None:
                items.append(copy.deepcopy(item))
            else:
                items[idx] = _merge(items[idx], item)
        return items
    return copy.deepcopy(applied)


def _managers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return copy.deepcopy((obj.get("metadata") or {}).get("managedFields") or [])


def _entry(manager: str, operation: str, api_version: str, now: str, paths: set[Path]) -> dict[str, Any]:
    return {
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": now,
        "fieldsType": "FieldsV1",
        "fieldsV1": _to_fields_v1(paths),
    }


def _conflict_error(conflicts: list[tuple[str, Path]], api_version: str) -> StatusError:
    def dotted(path: Path) -> str:
        return "".join("." + p[2:] if p.startswith("f:") else f"[{p[2:]}]" for p in path)

    causes = [
        {"reason": "FieldManagerConflict", "message": f'conflict with "{m}" using {api_version}', "field": dotted(p)}
        for m, p in conflicts
    ]
    if len(conflicts) == 1:
        message = f"Apply failed with 1 conflict: {causes[0]['message']}: {causes[0]['field']}"
    else:
        lines = "\n".join(f"- {c['field']}" for c in causes)
        head = f'Apply failed with {len(conflicts)} conflicts: conflicts with "{conflicts[0][0]}"'
        message = f"{head} using {api_version}:\n{lines}"
    return StatusError(409, "Conflict", message, {"causes": causes})


def apply(
    live: dict[str, Any] | None, applied: dict[str, Any], manager: str, *, force: bool, now: str
) -> dict[str, Any]:
    """Return the object after ``manager`` applied ``applied`` (``live`` is not changed).

    When nothing changes the returned object is ``live`` itself (identity), so callers can skip
    the write.

    Raises:
        StatusError: 409 Conflict when another manager owns a field with a different value.
    """
    api_version = str(applied.get("apiVersion", "v1"))
    mine = fieldset(applied)
    if live is None:
        out = copy.deepcopy(applied)
        out.setdefault("metadata", {})["managedFields"] = [_entry(manager, "Apply", api_version, now, mine)]
        return out
    entries = _managers(live)
    conflicts: list[tuple[str, Path]] = []
    for entry in entries:
        if entry["manager"] == manager and entry["operation"] == "Apply":
            continue
        theirs = _from_fields_v1(entry.get("fieldsV1") or {})
        for path in sorted(mine & theirs):
            if _lookup(live, path) != _lookup(applied, path):
                conflicts.append((entry["manager"], path))
    if conflicts and not force:
        raise _conflict_error(conflicts, api_version)
    taken = {p for _, p in conflicts}
    others: set[Path] = set()
    for entry in entries:
        if not (entry["manager"] == manager and entry["operation"] == "Apply"):
            others |= _from_fields_v1(entry.get("fieldsV1") or {}) - taken
    previous = next(
        (
            _from_fields_v1(e.get("fieldsV1") or {})
            for e in entries
            if e["manager"] == manager and e["operation"] == "Apply"
        ),
        set(),
    )
    out = copy.deepcopy(live)
    for path in sorted(previous - mine - others, key=len, reverse=True):
        _remove(out, path)
    out = _merge(out, _clean(applied))
    new_entries = _rebuild(entries, manager, mine, taken, api_version, now)
    out.setdefault("metadata", {})["managedFields"] = new_entries
    if _same(out, live) and _owners(new_entries) == _owners(entries):
        return live
    return out


def _rebuild(
    entries: list[dict[str, Any]], manager: str, mine: set[Path], taken: set[Path], api_version: str, now: str
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    found = False
    for entry in entries:
        if entry["manager"] == manager and entry["operation"] == "Apply":
            same = _from_fields_v1(entry.get("fieldsV1") or {}) == mine
            out.append(entry if same else _entry(manager, "Apply", api_version, now, mine))
            found = True
            continue
        paths = _from_fields_v1(entry.get("fieldsV1") or {}) - taken
        if paths:
            out.append({**entry, "fieldsV1": _to_fields_v1(paths)})
    if not found:
        out.append(_entry(manager, "Apply", api_version, now, mine))
    return out


def _owners(entries: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return sorted((e["manager"], e["operation"], json.dumps(e.get("fieldsV1"), sort_keys=True)) for e in entries)


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def strip(o: dict[str, Any]) -> dict[str, Any]:
        o = copy.deepcopy(o)
        o.get("metadata", {}).pop("managedFields", None)
        return o

    return strip(a) == strip(b)


def record_update(old: dict[str, Any] | None, new: dict[str, Any], manager: str, now: str) -> None:
    """Give ``manager`` (operation Update) the fields a PUT/PATCH changed, in ``new`` in place."""
    before = fieldset(old) if old else set()
    after = fieldset(new)
    changed = {p for p in after if p not in before or _lookup(old, p) != _lookup(new, p)}
    gone = before - after
    entries = _managers(old) if old else []
    if old is not None and not changed and not gone:
        new.setdefault("metadata", {})["managedFields"] = entries
        return
    out: list[dict[str, Any]] = []
    mine: set[Path] = set(changed)
    for entry in entries:
        paths = _from_fields_v1(entry.get("fieldsV1") or {})
        if entry["manager"] == manager and entry["operation"] == "Update":
            mine |= paths - gone
            continue
        paths = paths - changed - gone
        if paths:
            out.append({**entry, "fieldsV1": _to_fields_v1(paths)})
    if mine:
        out.append(_entry(manager, "Update", str(new.get("apiVersion", "v1")), now, mine))
    new.setdefault("metadata", {})["managedFields"] = out
