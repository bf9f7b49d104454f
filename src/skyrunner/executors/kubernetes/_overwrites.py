"""``KUBERNETES_*`` job variables over ``[runners.kubernetes]``, as gitlab-runner allows them.

Pure: no I/O. gitlab-runner's rules (``executors/kubernetes/overwrites.go``), kept:

- a value (namespace, service account) is overwritten only when its ``*_overwrite_allowed``
  regular expression is set, and the overwrite must match it (Go's ``MatchString``: anywhere in
  the value, so anchor the expression to mean the whole value); an empty one disables it;
- a map (pod annotations, pod labels, node selector) takes ``KUBERNETES_<MAP>_*`` variables
  of the form ``key=value``, each matching the map's ``*_overwrite_allowed`` expression;
- a resource (``KUBERNETES_CPU_LIMIT``, ``KUBERNETES_HELPER_MEMORY_REQUEST``...) is
  overwritten only when its ``*_overwrite_max_allowed`` cap is set, and never above it.

Where gitlab-runner silently ignores an overwrite that is not allowed, we ignore it too but say
so in the trace; an overwrite that breaks a rule is an error naming the variable and the rule.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from skyrunner.config import KubernetesConfig
from skyrunner.errors import ConfigError
from skyrunner.executors.kubernetes._jobenv import JobEnvironment
from skyrunner.executors.kubernetes._report import BuildReport
from skyrunner.executors.kubernetes.quantity import parse_cpu, parse_memory
from skyrunner.executors.kubernetes.sizing import Resources

__all__ = [
    "CONFIG",
    "ContainerGroup",
    "GroupResources",
    "overwrite_map",
    "overwrite_value",
    "resolve_resources",
]

CONFIG = "[runners.kubernetes]"
"""How messages name the config table (the loader knows the file, we know the key)."""


def _search(pattern: str, value: str, setting: str, report: BuildReport) -> bool:
    try:
        return re.search(pattern, value) is not None
    except re.error as exc:
        report.error(f"{CONFIG} {setting}: {pattern!r} is not a regular expression ({exc.msg})")
        return False


def overwrite_value(
    current: str, allowed: str | None, variable: str, setting: str, env: JobEnvironment, report: BuildReport
) -> str:
    """``current``, or the value of ``variable`` when ``allowed`` lets it through."""
    wanted = env.overwrite(variable, setting, report)
    if not wanted:
        return current
    if not allowed:
        report.warn(f"{variable} is ignored: {CONFIG} {setting}_overwrite_allowed is not set")
        return current
    if not _search(allowed, wanted, f"{setting}_overwrite_allowed", report):
        report.error(f'{variable} "{wanted}" does not match {setting}_overwrite_allowed {allowed!r}')
        return current
    return wanted


def overwrite_map(
    current: Mapping[str, str], allowed: str | None, prefix: str, setting: str, env: JobEnvironment,
    report: BuildReport,
) -> dict[str, str]:  # fmt: skip
    """``current`` updated by every ``<prefix>*`` variable (``key=value``) ``allowed`` lets through."""
    result = dict(current)
    variables = sorted(key for key in env.values if key.startswith(prefix))
    if variables and not allowed:
        report.warn(f"{', '.join(variables)} ignored: {CONFIG} {setting}_overwrite_allowed is not set")
        return result
    for variable in variables:
        wanted = env.overwrite(variable, setting, report)
        if not wanted:
            continue
        assert allowed is not None
        if not _search(allowed, wanted, f"{setting}_overwrite_allowed", report):
            report.error(f'{variable} "{wanted}" does not match {setting}_overwrite_allowed {allowed!r}')
            continue
        key, equals, value = wanted.partition("=")
        if not equals:
            report.error(f'{variable} "{wanted}" is not key=value')
            continue
        result[key] = value
    return result


class ContainerGroup(enum.Enum):
    """Whose resources a setting is: the ``cpu_limit`` family's three prefixes."""

    BUILD = ""
    HELPER = "helper_"
    SERVICE = "service_"


@dataclass(frozen=True, slots=True)
class GroupResources:
    requests: Resources
    limits: Resources


_AMOUNTS: tuple[tuple[str, Callable[[str, str | None], int]], ...] = (
    ("cpu", parse_cpu),
    ("memory", parse_memory),
    ("ephemeral_storage", parse_memory),
)


def resolve_resources(
    cfg: KubernetesConfig, env: JobEnvironment, report: BuildReport
) -> dict[ContainerGroup, GroupResources]:
    """Requests and limits of each container group, with the allowed overwrites applied."""
    resolved: dict[ContainerGroup, GroupResources] = {}
    for group in ContainerGroup:
        kinds = {kind: _group(cfg, group, kind, env, report) for kind in ("request", "limit")}
        resolved[group] = GroupResources(requests=kinds["request"], limits=kinds["limit"])
    return resolved


def _group(
    cfg: KubernetesConfig, group: ContainerGroup, kind: str, env: JobEnvironment, report: BuildReport
) -> Resources:
    amounts = (_amount(cfg, f"{group.value}{name}_{kind}", parse, env, report) for name, parse in _AMOUNTS)
    return Resources(*amounts)


def _amount(
    cfg: KubernetesConfig, setting: str, parse: Callable[[str, str | None], int], env: JobEnvironment,
    report: BuildReport,
) -> int | None:  # fmt: skip
    configured = _setting(cfg, setting)
    cap = _setting(cfg, f"{setting}_overwrite_max_allowed")
    variable = f"KUBERNETES_{setting.upper()}"
    wanted = env.overwrite(variable, "resources", report)
    if wanted and not cap:
        report.warn(f"{variable} is ignored: {CONFIG} {setting}_overwrite_max_allowed is not set")
    elif wanted and cap:
        amount = _parsed(parse, wanted, variable, report)
        limit = _parsed(parse, cap, f"{CONFIG} {setting}_overwrite_max_allowed", report)
        if amount is not None and limit is not None and amount > limit:
            report.error(f'{variable} "{wanted}" is above {setting}_overwrite_max_allowed "{cap}"')
            return None
        return amount
    return None if configured is None else _parsed(parse, configured, f"{CONFIG} {setting}", report)


def _setting(cfg: KubernetesConfig, name: str) -> str | None:
    value = getattr(cfg, name)
    assert value is None or isinstance(value, str)
    return value.strip() or None if value is not None else None


def _parsed(parse: Callable[[str, str | None], int], text: str, field: str, report: BuildReport) -> int | None:
    try:
        return parse(text, field)
    except ConfigError as exc:
        report.error(str(exc))
        return None
