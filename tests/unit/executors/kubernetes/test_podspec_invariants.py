"""Invariants of every pod the builder makes, over generated jobs, configs and platforms.

- every name it writes is one Kubernetes takes (DNS-1123 names, label keys and values);
- no container requests more than its limit;
- the containers get what was configured (or overwritten), and only ``build`` gets more: the
  platform's surplus;
- no masked value and no token appears anywhere in the pod, and no refusal quotes one;
- the pod validates against the Kubernetes schemas.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from skyrunner.errors import ConfigError
from skyrunner.executors.kubernetes._names import is_dns_label, is_dns_subdomain, is_label_value, is_qualified_name
from skyrunner.executors.kubernetes.quantity import parse_cpu, parse_memory
from skyrunner.platforms import Platform
from tests.unit.executors.kubernetes.podspec_support import build, kube, payload, prepared, validate

# "%" marks a secret: nothing else the tests generate has one, so a find is a leak
_SECRET = st.text("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789", min_size=16, max_size=24).map(
    lambda s: f"%{s}"
)
_PRINTABLE = st.characters(min_codepoint=32, max_codepoint=126, exclude_characters='"\\$%')
_ALIAS = st.from_regex(r"[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,4})?", fullmatch=True)
_KEY = st.from_regex(r"[A-Z][A-Z0-9_]{2,10}", fullmatch=True).filter(lambda k: not k.startswith(("CI_", "KUBERNETES")))


@dataclass(frozen=True)
class Amounts:
    """One container group's settings: millicores and MiB, None when unset."""

    cpu_request: int | None
    cpu_limit: int | None
    memory_request: int | None
    memory_limit: int | None

    def toml(self, prefix: str) -> str:
        lines = []
        for name, value, unit in (
            ("cpu_request", self.cpu_request, "m"),
            ("cpu_limit", self.cpu_limit, "m"),
            ("memory_request", self.memory_request, "Mi"),
            ("memory_limit", self.memory_limit, "Mi"),
        ):
            if value is not None:
                lines.append(f'{prefix}{name} = "{value}{unit}"')
        return "\n".join(lines)


@st.composite
def _amounts(draw: st.DrawFn, cpu_max: int, memory_max: int) -> Amounts:
    def pair(top: int, step: int) -> tuple[int | None, int | None]:
        request = draw(st.none() | st.integers(1, top // step).map(lambda n: n * step))
        limit = draw(st.none() | st.integers(0, top // step).map(lambda n: n * step))
        if request is not None and limit is not None:
            limit = max(limit, request)
        return request, limit

    cpu_request, cpu_limit = pair(cpu_max, 50)
    memory_request, memory_limit = pair(memory_max, 64)
    return Amounts(cpu_request, cpu_limit, memory_request, memory_limit)


@dataclass(frozen=True)
class Draw:
    platform: Platform
    build: Amounts
    helper: Amounts
    service: Amounts
    services: list[dict[str, Any]]
    secrets: dict[str, str]
    token: str
    kaniko: bool
    labels: dict[str, str]


_draws = st.builds(
    Draw,
    platform=st.sampled_from(list(Platform)),
    build=_amounts(3000, 6144),
    helper=_amounts(500, 1024),
    service=_amounts(500, 1024),
    services=st.lists(
        st.fixed_dictionaries(
            {"name": st.sampled_from(["postgres:16", "redis:7", "registry.example.com/a/b:1"]), "alias": _ALIAS}
        ),
        max_size=2,
    ),
    secrets=st.dictionaries(_KEY, _SECRET, min_size=1, max_size=3),
    token=_SECRET.map(lambda s: f"glcbt-64_{s}"),
    kaniko=st.booleans(),
    labels=st.dictionaries(st.sampled_from(["team", "example.com/tier"]), st.text(_PRINTABLE, max_size=20), max_size=2),
)


def _job_body(draw: Draw) -> dict[str, Any]:
    secret_vars = [{"key": k, "value": v, "masked": True, "public": False} for k, v in draw.secrets.items()]
    plain = [{"key": "CI_JOB_TOKEN", "value": draw.token, "masked": True, "public": False}]
    if draw.kaniko:
        plain.append({"key": "SKYRUNNER_IMAGE_BUILDER", "value": "kaniko"})
    registry = [{"type": "registry", "url": "registry.example.com", "username": "u", "password": draw.token}]
    services = [
        {**s, "variables": [{"key": "PASSWORD", "value": f"${next(iter(draw.secrets))}"}]} for s in draw.services
    ]
    return payload(token=draw.token, variables=secret_vars + plain, services=services, credentials=registry)


def _config(draw: Draw) -> str:
    labels = "\n".join(f'"{k}" = {json.dumps(v)}' for k, v in draw.labels.items())
    return "\n".join(
        [draw.build.toml(""), draw.helper.toml("helper_"), draw.service.toml("service_"), "[pod_labels]", labels]
    )


def _amount(resources: dict[str, Any], part: str, name: str) -> int | None:
    value = resources.get(part, {}).get(name)
    if value is None:
        return None
    return parse_cpu(value) if name == "cpu" else parse_memory(value) // 2**20


def _grown(value: int | None, other: int | None, extra: int) -> int | None:
    """apply_surplus' rule: the surplus goes to the request and the limit where set."""
    if extra == 0 or (value is None and other is not None):
        return value
    return extra if value is None else value + extra


@given(draw=_draws)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_pod_keeps_the_invariants(draw: Draw) -> None:
    try:
        manifests = build(prepared(_job_body(draw)), kube(_config(draw)), draw.platform)
    except ConfigError as exc:  # too large for the platform: said without a secret
        assert all(value not in str(exc) for value in [*draw.secrets.values(), draw.token])
        event(f"refused on {draw.platform.value}")
        return
    event(f"built on {draw.platform.value}")
    pod = manifests.pod.to_dict()
    text = json.dumps(pod)
    assert all(value not in text for value in [*draw.secrets.values(), draw.token])
    assert all(value not in " ".join(manifests.warnings) for value in draw.secrets.values())

    assert is_dns_subdomain(pod["metadata"]["name"]) and is_dns_label(pod["metadata"]["namespace"])
    assert all(is_qualified_name(k) and is_label_value(v) for k, v in pod["metadata"]["labels"].items())
    assert all(is_qualified_name(k) for k in pod["metadata"]["annotations"])
    containers = [*pod["spec"]["initContainers"], *pod["spec"]["containers"]]
    assert all(is_dns_label(c["name"]) for c in containers)
    assert len({c["name"] for c in containers}) == len(containers)
    assert all(is_dns_label(v["name"]) for v in pod["spec"]["volumes"])

    groups = {"build": draw.build, "helper": draw.helper, "prepare": draw.helper}
    size = manifests.size
    for item in containers:
        resources = item.get("resources", {})
        for name in ("cpu", "memory"):
            request, limit = _amount(resources, "requests", name), _amount(resources, "limits", name)
            assert request is None or limit is None or request <= limit
        if item["name"] == "kaniko" or (item["name"] == "prepare" and draw.platform is Platform.ACI):
            assert resources == {}
            continue
        amounts = groups.get(item["name"], draw.service)
        extra_cpu = size.surplus_cpu if item["name"] == "build" else 0
        extra_memory = size.surplus_memory // 2**20 if item["name"] == "build" else 0
        expected = (
            _grown(amounts.cpu_request, amounts.cpu_limit, extra_cpu),
            _grown(amounts.cpu_limit, amounts.cpu_request, extra_cpu) if amounts.cpu_limit is not None else None,
            _grown(amounts.memory_request, amounts.memory_limit, extra_memory),
            _grown(amounts.memory_limit, amounts.memory_request, extra_memory)
            if amounts.memory_limit is not None
            else None,
        )
        got = (
            _amount(resources, "requests", "cpu"),
            _amount(resources, "limits", "cpu"),
            _amount(resources, "requests", "memory"),
            _amount(resources, "limits", "memory"),
        )
        assert got == expected, item["name"]
    validate(manifests)
