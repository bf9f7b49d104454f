"""Where the job pod may run: node selector, tolerations and affinity, from gitlab-runner's keys.

Pure: no I/O. gitlab-runner's forms, kept:

- ``node_selector``: label key -> value (``KUBERNETES_NODE_SELECTOR_*`` overwrites: see
  ``_overwrites.py``);
- ``node_tolerations``: ``"key=value" = "Effect"`` tolerates a taint with that value
  (operator ``Equal``), ``"key" = "Effect"`` one with any value (``Exists``); an empty effect
  matches every effect;
- ``affinity``: the Kubernetes ``Affinity`` object written with snake_case keys in TOML
  (``[runners.kubernetes.affinity.node_affinity.required_during_scheduling_ignored_during_execution]``);
  camelCase keys are accepted too. Keys inside ``match_labels`` are label keys and stay as they are.

Unknown affinity keys are errors: lightkube would drop them silently and the pod would be
scheduled without the rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

from lightkube.models.core_v1 import Affinity, Toleration

from skyrunner.executors.kubernetes._names import is_label_value, is_qualified_name
from skyrunner.executors.kubernetes._overwrites import CONFIG
from skyrunner.executors.kubernetes._report import BuildReport

__all__ = ["build_affinity", "build_tolerations", "check_label_map", "dropped_keys"]

_EFFECTS = ("", "NoSchedule", "PreferNoSchedule", "NoExecute")
_OPAQUE = frozenset({"matchLabels", "nodeSelector"})
_SNAKE = re.compile(r"_([a-z0-9])")


def check_label_map(values: Mapping[str, str], where: str, report: BuildReport) -> None:
    """Report keys and values Kubernetes does not take as labels."""
    for key, value in values.items():
        if not is_qualified_name(key):
            report.error(f"{where}: {key!r} is not a valid label key")
        elif not is_label_value(value):
            report.error(f"{where}: {key}={value!r} is not a valid label value")


def build_tolerations(tolerations: Mapping[str, str], report: BuildReport) -> list[Toleration] | None:
    """gitlab-runner's ``GetNodeTolerations``, with the effects checked."""
    out = []
    for spec, effect in sorted(tolerations.items()):
        if effect not in _EFFECTS:
            report.error(f"{CONFIG} node_tolerations {spec!r}: {effect!r} is not one of {', '.join(_EFFECTS[1:])}")
        key, equals, value = spec.partition("=")
        if key and not is_qualified_name(key):
            report.error(f"{CONFIG} node_tolerations: {key!r} is not a valid taint key")
        if equals:
            out.append(Toleration(key=key, operator="Equal", value=value, effect=effect or None))
        else:
            out.append(Toleration(key=key or None, operator="Exists", effect=effect or None))
    return out or None


def build_affinity(affinity: Mapping[str, Any], report: BuildReport) -> Affinity | None:
    """The pod's ``affinity`` from the config table."""
    if not affinity:
        return None
    camel = _camel_keys(affinity)
    model = cast(Affinity, Affinity.from_dict(camel))
    for path in dropped_keys(camel, model.to_dict()):
        report.error(f"{CONFIG} affinity: unknown key {path}")
    return model


def dropped_keys(given: Any, kept: Any, path: str = "") -> list[str]:
    """Paths of ``given`` that a lightkube round trip (``kept``) lost, i.e. unknown fields."""
    if isinstance(given, Mapping):
        if not isinstance(kept, Mapping):
            return [path or "."]
        lost = []
        for key, value in given.items():
            where = f"{path}.{key}" if path else str(key)
            if value is None:
                continue
            if key not in kept:
                lost.append(where)
            else:
                lost += dropped_keys(value, kept[key], where)
        return lost
    if isinstance(given, list) and isinstance(kept, list):
        return [
            p for i, (g, k) in enumerate(zip(given, kept, strict=False)) for p in dropped_keys(g, k, f"{path}[{i}]")
        ]
    return []


def _camel_keys(value: Any, opaque: bool = False) -> Any:
    if isinstance(value, Mapping):
        if opaque:
            return dict(value)
        out = {}
        for key, item in value.items():
            name = _SNAKE.sub(lambda m: m.group(1).upper(), str(key))
            out[name] = _camel_keys(item, name in _OPAQUE)
        return out
    if isinstance(value, list):
        return [_camel_keys(item) for item in value]
    return value
