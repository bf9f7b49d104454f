"""Node choice for a pod, with the default scheduler's failure message.

Pure: no I/O. Owns the filters a CI pod can fail on, in the scheduler's plugin order (the
first failing filter names a node's reason): NodeUnschedulable, TaintToleration (NoSchedule
and NoExecute taints), NodeAffinity (``nodeSelector`` and required node affinity with In,
NotIn, Exists, DoesNotExist, Gt, Lt and ``matchFields`` on ``metadata.name``), and missing
PersistentVolumeClaims. Resources are not counted: every node fits any request.

The message is ``FitError``'s: ``0/N nodes are available: <count> <reason>, ... . preemption:
0/N nodes are available: N Preemption is not helpful for scheduling.`` with the reasons sorted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

__all__ = ["choose_node"]

_UNSCHEDULABLE = "node(s) were unschedulable"
_AFFINITY = "node(s) didn't match Pod's node affinity/selector"


def _tolerates(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    for tol in tolerations:
        if tol.get("effect") and tol["effect"] != taint.get("effect"):
            continue
        if tol.get("operator") == "Exists":
            if not tol.get("key") or tol["key"] == taint.get("key"):
                return True
        elif tol.get("key") == taint.get("key") and (tol.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _untolerated(node: dict[str, Any], tolerations: list[dict[str, Any]]) -> dict[str, Any] | None:
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerates(tolerations, taint):
            return taint
    return None


def _expression(values: dict[str, str], expr: dict[str, Any]) -> bool:
    key, op, wanted = expr.get("key", ""), expr.get("operator"), expr.get("values") or []
    have = values.get(key)
    if op == "In":
        return have is not None and have in wanted
    if op == "NotIn":
        return have is None or have not in wanted
    if op == "Exists":
        return have is not None
    if op == "DoesNotExist":
        return have is None
    if op in ("Gt", "Lt") and have is not None and wanted:
        try:
            return int(have) > int(wanted[0]) if op == "Gt" else int(have) < int(wanted[0])
        except ValueError:
            return False
    return False


def _affinity_matches(node: dict[str, Any], spec: dict[str, Any]) -> bool:
    labels = (node.get("metadata") or {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if not required:
        return True
    fields = {"metadata.name": node["metadata"]["name"]}
    for term in required.get("nodeSelectorTerms") or []:
        exprs = term.get("matchExpressions") or []
        field_exprs = term.get("matchFields") or []
        if (
            (exprs or field_exprs)
            and all(_expression(labels, e) for e in exprs)
            and all(_expression(fields, e) for e in field_exprs)
        ):
            return True
    return False


def _taint_text(taint: dict[str, Any]) -> str:
    return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}"


def _reason(node: dict[str, Any], spec: dict[str, Any]) -> str | None:
    if (node.get("spec") or {}).get("unschedulable"):
        return _UNSCHEDULABLE
    taint = _untolerated(node, spec.get("tolerations") or [])
    if taint is not None:
        return _taint_text(taint)
    if not _affinity_matches(node, spec):
        return _AFFINITY
    return None


def choose_node(
    spec: dict[str, Any], nodes: list[dict[str, Any]], claim_exists: Callable[[str], bool]
) -> tuple[str | None, str]:
    """Return ``(node name, "")`` for a fitting node or ``(None, FailedScheduling message)``."""
    total = len(nodes)
    if total == 0:
        return None, "no nodes available to schedule pods"
    for volume in spec.get("volumes") or []:
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim and not claim_exists(claim):
            return None, (
                f'0/{total} nodes are available: persistentvolumeclaim "{claim}" not found. '
                f"preemption: 0/{total} nodes are available: {total} Preemption is not helpful for scheduling."
            )
    reasons: Counter[str] = Counter()
    for node in sorted(nodes, key=lambda n: n["metadata"]["name"]):
        reason = _reason(node, spec)
        if reason is None:
            return node["metadata"]["name"], ""
        reasons[reason] += 1
    parts = sorted(f"{count} {reason}" for reason, count in reasons.items())
    return None, (
        f"0/{total} nodes are available: {', '.join(parts)}. "
        f"preemption: 0/{total} nodes are available: {total} Preemption is not helpful for scheduling."
    )
