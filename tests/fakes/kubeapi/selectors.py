"""Label and field selectors: parsing the query strings and matching objects.

Owns the label selector grammar of ``k8s.io/apimachinery/pkg/labels`` (``a=b``, ``a==b``,
``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a``, ``!a``, ``a>1``, ``a<1``) and the field selector
grammar (``f=v``, ``f==v``, ``f!=v``, comma separated, ``\\`` escapes), plus the per-kind set
of selectable fields the real registries expose. A bad selector is a 400 BadRequest.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .resources import Resource
from .status import bad_request

__all__ = ["Selector", "parse_field_selector", "parse_label_selector", "selectable_fields"]

Predicate = Callable[[Mapping[str, str]], bool]

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_VALUE = r"[A-Za-z0-9_.-]*"
_SET_RE = re.compile(rf"^({_KEY})\s+(in|notin)\s*\(\s*([^)]*)\)$")
_CMP_RE = re.compile(rf"^({_KEY})\s*(==|!=|=|>|<)\s*({_VALUE})$")
_EXISTS_RE = re.compile(rf"^(!?)\s*({_KEY})$")


@dataclass(frozen=True, slots=True)
class Selector:
    """A conjunction of requirements over a string map (labels or selectable fields)."""

    requirements: tuple[Predicate, ...] = ()

    def matches(self, values: Mapping[str, str]) -> bool:
        return all(req(values) for req in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


def _split_outside_parens(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _label_requirement(text: str) -> Predicate:
    if m := _SET_RE.match(text):
        key, op, raw = m.group(1), m.group(2), m.group(3)
        values = frozenset(v.strip() for v in raw.split(",") if v.strip())
        if op == "in":
            return lambda labels: key in labels and labels[key] in values
        return lambda labels: key not in labels or labels[key] not in values
    if m := _CMP_RE.match(text):
        key, op, value = m.group(1), m.group(2), m.group(3)
        if op in ("=", "=="):
            return lambda labels: labels.get(key) == value
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return _numeric(key, op, value)
    if m := _EXISTS_RE.match(text):
        negate, key = m.group(1) == "!", m.group(2)
        return (lambda labels: key not in labels) if negate else (lambda labels: key in labels)
    raise bad_request(f"unable to parse requirement: invalid label selector: {text!r}")


def _numeric(key: str, op: str, value: str) -> Predicate:
    try:
        bound = int(value)
    except ValueError:
        raise bad_request(
            f"unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer: {value}"
        ) from None

    def check(labels: Mapping[str, str]) -> bool:
        try:
            have = int(labels[key])
        except (KeyError, ValueError):
            return False
        return have > bound if op == ">" else have < bound

    return check


def parse_label_selector(text: str | None) -> Selector:
    """Parse a ``labelSelector`` query value.

    Raises:
        StatusError: 400 BadRequest for a malformed selector.
    """
    if not text or not text.strip():
        return Selector()
    return Selector(tuple(_label_requirement(part) for part in _split_outside_parens(text)))


def _split_escaped(text: str, sep: str) -> list[str]:
    parts, cur, escaped = [], "", False
    for ch in text:
        if escaped:
            cur += ch
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == sep:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def _field_requirement(text: str, allowed: frozenset[str]) -> Predicate:
    for op in ("!=", "==", "="):
        if op in text:
            field, value = text.split(op, 1)
            break
    else:
        raise bad_request(f"invalid selector: '{text}'; can't understand '{text}'")
    field, value = field.strip(), value.strip().replace("\\,", ",").replace("\\=", "=")
    if field not in allowed:
        raise bad_request(f"field label not supported: {field}")
    if op == "!=":
        return lambda fields: fields.get(field, "") != value
    return lambda fields: fields.get(field, "") == value


_COMMON = frozenset({"metadata.name", "metadata.namespace"})
_FIELDS: dict[str, frozenset[str]] = {
    "Pod": _COMMON
    | {
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    },
    "Event": _COMMON
    | {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    },
    "Secret": _COMMON | {"type"},
    "Node": _COMMON | {"spec.unschedulable"},
    "Namespace": _COMMON | {"status.phase"},
}


def parse_field_selector(text: str | None, resource: Resource) -> Selector:
    """Parse a ``fieldSelector`` query value for ``resource``.

    Raises:
        StatusError: 400 BadRequest for a malformed selector or a field the kind does not index.
    """
    if not text or not text.strip():
        return Selector()
    allowed = _FIELDS.get(resource.kind, _COMMON)
    parts = [p for p in _split_escaped(text, ",") if p.strip()]
    return Selector(tuple(_field_requirement(p, allowed) for p in parts))


def _dig(obj: Mapping[str, Any], path: str) -> Any:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def selectable_fields(resource: Resource, obj: Mapping[str, Any]) -> dict[str, str]:
    """Return the field set a field selector matches against for ``obj``."""
    fields = {name: _text(_dig(obj, name)) for name in _FIELDS.get(resource.kind, _COMMON)}
    if resource.kind == "Pod":
        fields["spec.hostNetwork"] = _text(bool(_dig(obj, "spec.hostNetwork")))
        ips = _dig(obj, "status.podIPs") or []
        fields["status.podIP"] = _text(ips[0].get("ip")) if ips else ""
    if resource.kind == "Event":
        fields["source"] = _text(_dig(obj, "reportingComponent") or _dig(obj, "source.component"))
    if resource.kind == "Node":
        fields["spec.unschedulable"] = _text(bool(_dig(obj, "spec.unschedulable")))
    return fields
