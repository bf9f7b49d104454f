"""Sizing: fit a job pod to the spec its platform bills, and hand the surplus to ``build``.

Pure: no I/O. :func:`size_pod` takes the pod's containers with their requests and limits (from
config and ``KUBERNETES_*`` overwrites, already parsed by ``quantity.py``), the platform and the
:class:`~skyrunner.executors.kubernetes.spec_table.SpecTable`, and returns a :class:`PodSize`: the
spec the platform will bill, a label for people, the annotations the pod must carry, and the
surplus that :func:`apply_surplus` adds to the ``build`` container so that what is billed is
what the job can use. A pod the platform cannot hold raises ``ConfigError`` naming the largest
spec, before any pod is created. ``auto`` is resolved earlier by ``detect_platform``.

How each platform reads a pod (``shared/data/serverless-k8s.md``), and what we do:

``eci``
    ECI bills ``eci-use-specs`` if set, else the sum of limits, else the sum of requests, rounded
    up to its spec list (nothing set: 2 vCPU / 4 GiB). We count each container by its limit, or
    its request where it has no limit (the most it can use), and pin the result with
    ``k8s.aliyun.com/eci-use-specs: <vCPU>-<GiB>Gi`` so the bill does not depend on ECI's mix
    rule. A user's ``eci-use-specs`` is kept: the first entry is billed, every entry must hold
    the pod, ECS instance types cannot be sized (use platform ``none``). Region-only specs count
    only with ``SpecTable.with_regional_eci_specs()``. The data does not say how ECI counts
    init containers; we use Kubernetes' rule (below).
``fargate``
    Fargate sizes from requests (a limit stands in for a missing request, as the API server
    defaults it), max(largest init container, sum of containers) + 256 MiB, rounded up to its
    table. Fargate runs pods as Guaranteed QoS, so requests should equal limits.
``autopilot``
    Autopilot bills requests: pod totals below the minimum are raised, memory is held between
    1 and 6.5 GiB per vCPU by raising the smaller side, CPU goes up in 250m steps on
    non-bursting clusters (``SpecTable.for_autopilot_cluster``), and more than the maximum is
    rejected. A pod with no CPU and no memory anywhere gets the default 0.5 vCPU / 2 GiB (we
    read the defaults per pod; Autopilot applies them per container without requests). Limits
    do not count; on bursting clusters they may exceed requests.
``aci``
    ACI bills the sum of container requests, each truncated down to 10m and 0.1 GB (a missing
    request counts 1 vCPU / 1.5 GB), up to 4 vCPU / 16 GB. Init containers may not set
    resources, and no container's limit may exceed the group's total request. Truncation can
    bill a little less than requested; there is no surplus.
``none``
    The pod's effective requests as they are; no annotations, no surplus.

The pod's need is Kubernetes' effective request: per resource, the larger of the largest init
container and the sum of the other containers. The surplus is measured against the sum of the
other containers alone, since init containers are done when they start.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import Final

from skyrunner.errors import ConfigError
from skyrunner.executors.kubernetes.quantity import format_cpu, format_memory
from skyrunner.executors.kubernetes.spec_table import (
    GB,
    GIB,
    AciRules,
    AutopilotCluster,
    AutopilotRules,
    EciRules,
    FargateRules,
    Spec,
    SpecTable,
)
from skyrunner.platforms import Platform, check_platform_limits, detect_platform

__all__ = [
    "BUILD_CONTAINER",
    "ECI_USE_SPECS",
    "ContainerRequest",
    "Platform",
    "PodRequest",
    "PodSize",
    "Resources",
    "apply_surplus",
    "check_platform_limits",
    "detect_platform",
    "size_pod",
]

BUILD_CONTAINER: Final = "build"
"""The container that receives the surplus (podspec.py names the same container)."""
ECI_USE_SPECS: Final = "k8s.aliyun.com/eci-use-specs"

_USE_SPEC = re.compile(r"(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)Gi")


@dataclass(frozen=True, slots=True)
class Resources:
    """CPU in millicores, memory and ephemeral storage in bytes; ``None`` is "not set"."""

    cpu: int | None = None
    memory: int | None = None
    ephemeral_storage: int | None = None

    def __post_init__(self) -> None:
        for amount in (self.cpu, self.memory, self.ephemeral_storage):
            if amount is not None and amount < 0:
                raise ValueError(f"negative resource amount: {self}")


@dataclass(frozen=True, slots=True)
class ContainerRequest:
    """One container's name, requests and limits; ``is_init`` for init containers."""

    name: str
    requests: Resources = Resources()
    limits: Resources = Resources()
    is_init: bool = False


@dataclass(frozen=True, slots=True)
class PodRequest:
    """The pod's containers and the annotations already set on it (config, overwrites)."""

    containers: tuple[ContainerRequest, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PodSize:
    """What the platform bills, what the pod must carry, and what ``build`` gets on top."""

    platform: Platform
    cpu: int
    """Billed millicores."""
    memory: int
    """Billed bytes."""
    label: str
    """For people: ``2 vCPU / 4 GiB (eci-use-specs 2-4Gi)``."""
    annotations: Mapping[str, str]
    """Annotations the runner must set on the pod."""
    surplus_cpu: int = 0
    """Millicores to add to the ``build`` container."""
    surplus_memory: int = 0
    """Bytes to add to the ``build`` container."""

    @property
    def vcpu(self) -> Decimal:
        """Billed vCPU (``Decimal("0.25")``)."""
        return Decimal(self.cpu) / 1000

    @property
    def gib(self) -> Decimal:
        """Billed memory in GiB."""
        return Decimal(self.memory) / GIB


@dataclass(frozen=True, slots=True)
class _Need:
    """The pod's effective request, the app containers' sum, and whether anything was set."""

    cpu: int
    memory: int
    storage: int
    app_cpu: int
    app_memory: int
    cpu_set: bool
    memory_set: bool
    storage_set: bool


def size_pod(request: PodRequest, platform: Platform, table: SpecTable) -> PodSize:
    """Fit ``request`` to what ``platform`` bills; see the module docstring for the rules.

    Raises:
        ConfigError: the platform cannot run the pod as asked (too large, a bad
            ``eci-use-specs``, resources on an ACI init container, an ACI limit above the
            group's request).
    """
    match platform:
        case Platform.ECI:
            return _size_eci(request, table.eci)
        case Platform.FARGATE:
            return _size_fargate(request, table.fargate)
        case Platform.AUTOPILOT:
            return _size_autopilot(request, table.autopilot, table.autopilot_cluster)
        case Platform.ACI:
            return _size_aci(request, table.aci)
        case Platform.NONE:
            need = _need(request, _request_first)
            label = f"{_shown(need.cpu, 1000)} vCPU / {_shown(need.memory, GIB)} GiB (pod requests)"
            return PodSize(Platform.NONE, need.cpu, need.memory, label, MappingProxyType({}))


def apply_surplus(request: PodRequest, size: PodSize) -> PodRequest:
    """Return ``request`` with ``size``'s surplus added to the ``build`` container.

    The surplus goes to both the request and the limit where they are set, so requests stay
    at or below limits; a resource ``build`` leaves unset gets the surplus as its request.
    """
    if size.surplus_cpu == 0 and size.surplus_memory == 0:
        return request
    containers = tuple(
        _grown(c, size) if c.name == BUILD_CONTAINER and not c.is_init else c for c in request.containers
    )
    return replace(request, containers=containers)


def _grown(container: ContainerRequest, size: PodSize) -> ContainerRequest:
    requests, limits = container.requests, container.limits
    cpu_req, cpu_lim = _add(requests.cpu, limits.cpu, size.surplus_cpu)
    mem_req, mem_lim = _add(requests.memory, limits.memory, size.surplus_memory)
    return replace(
        container,
        requests=replace(requests, cpu=cpu_req, memory=mem_req),
        limits=replace(limits, cpu=cpu_lim, memory=mem_lim),
    )


def _add(request: int | None, limit: int | None, extra: int) -> tuple[int | None, int | None]:
    if extra == 0:
        return request, limit
    if request is None and limit is None:
        return extra, None
    return (None if request is None else request + extra), (None if limit is None else limit + extra)


def _limit_first(container: ContainerRequest) -> Resources:
    """What a container can use at most: its limit, else its request."""
    req, lim = container.requests, container.limits
    return Resources(
        cpu=_first(lim.cpu, req.cpu),
        memory=_first(lim.memory, req.memory),
        ephemeral_storage=_first(lim.ephemeral_storage, req.ephemeral_storage),
    )


def _request_first(container: ContainerRequest) -> Resources:
    """What a container requests, with its limit standing in as the API server defaults it."""
    req, lim = container.requests, container.limits
    return Resources(
        cpu=_first(req.cpu, lim.cpu),
        memory=_first(req.memory, lim.memory),
        ephemeral_storage=_first(req.ephemeral_storage, lim.ephemeral_storage),
    )


def _first(a: int | None, b: int | None) -> int | None:
    return a if a is not None else b


def _need(request: PodRequest, count: Callable[[ContainerRequest], Resources]) -> _Need:
    apps = [count(c) for c in request.containers if not c.is_init]
    inits = [count(c) for c in request.containers if c.is_init]
    every = apps + inits

    def total(pick: Callable[[Resources], int | None]) -> tuple[int, int]:
        app_sum = sum(pick(r) or 0 for r in apps)
        return max([app_sum, *(pick(r) or 0 for r in inits)]), app_sum

    cpu, app_cpu = total(lambda r: r.cpu)
    memory, app_memory = total(lambda r: r.memory)
    storage, _ = total(lambda r: r.ephemeral_storage)
    return _Need(
        cpu=cpu,
        memory=memory,
        storage=storage,
        app_cpu=app_cpu,
        app_memory=app_memory,
        cpu_set=any(r.cpu is not None for r in every),
        memory_set=any(r.memory is not None for r in every),
        storage_set=any(r.ephemeral_storage is not None for r in every),
    )


def _surplus(request: PodRequest, need: _Need, cpu: int, memory: int) -> tuple[int, int]:
    """What ``build`` may add when the app containers may use ``cpu``/``memory`` in all.

    ``need`` counts the containers the way the platform does, so that after
    :func:`apply_surplus` the platform counts exactly ``cpu``/``memory``.
    """
    if not any(c.name == BUILD_CONTAINER and not c.is_init for c in request.containers):
        return 0, 0
    return max(0, cpu - need.app_cpu), max(0, memory - need.app_memory)


def _round_up(specs: tuple[Spec, ...], cpu: int, memory: int) -> Spec | None:
    """The smallest spec by vCPU, then memory, that holds ``cpu`` and ``memory``."""
    return next((s for s in specs if s.cpu >= cpu and s.memory >= memory), None)


def _size_eci(request: PodRequest, rules: EciRules) -> PodSize:
    need = _need(request, _limit_first)
    fixed = request.annotations.get(ECI_USE_SPECS)
    if fixed is not None:
        return _size_eci_fixed(request, rules, need, fixed)
    anything_set = need.cpu_set or need.memory_set
    spec = _round_up(rules.specs, need.cpu, need.memory) if anything_set else rules.default
    if spec is None:
        raise _too_large(need.cpu, need.memory, f"the largest eci spec {_spec_text(rules.specs[-1])}")
    use_specs = _use_spec_text(spec)
    surplus_cpu, surplus_memory = _surplus(request, need, spec.cpu, spec.memory)
    return PodSize(
        platform=Platform.ECI,
        cpu=spec.cpu,
        memory=spec.memory,
        label=f"{_spec_text(spec)} (eci-use-specs {use_specs})",
        annotations=MappingProxyType({ECI_USE_SPECS: use_specs}),
        surplus_cpu=surplus_cpu,
        surplus_memory=surplus_memory,
    )


def _size_eci_fixed(request: PodRequest, rules: EciRules, need: _Need, fixed: str) -> PodSize:
    entries = _parse_use_specs(fixed, rules)
    for text, spec in entries:
        if spec.cpu < need.cpu or spec.memory < need.memory:
            raise _too_large(need.cpu, need.memory, f"the spec {text} fixed by {ECI_USE_SPECS}")
    billed = entries[0][1]
    # ECI may fall back to any entry: give build only what the smallest one leaves
    surplus_cpu, surplus_memory = _surplus(
        request, need, min(s.cpu for _, s in entries), min(s.memory for _, s in entries)
    )
    return PodSize(
        platform=Platform.ECI,
        cpu=billed.cpu,
        memory=billed.memory,
        label=f"{_spec_text(billed)} (eci-use-specs {fixed.strip()})",
        annotations=MappingProxyType({ECI_USE_SPECS: fixed}),
        surplus_cpu=surplus_cpu,
        surplus_memory=surplus_memory,
    )


def _parse_use_specs(value: str, rules: EciRules) -> list[tuple[str, Spec]]:
    where = f"pod annotation {ECI_USE_SPECS}"
    entries = [entry.strip() for entry in value.split(",")]
    if len(entries) > rules.max_use_specs_entries:
        raise ConfigError(f"{where}: {len(entries)} entries, eci takes at most {rules.max_use_specs_entries}")
    known = set(rules.specs) | set(rules.regional_specs)
    parsed: list[tuple[str, Spec]] = []
    for entry in entries:
        if entry.startswith("ecs."):
            raise ConfigError(
                f'{where}: "{entry}" is an ecs instance type, which skyrunner cannot size '
                '(set platform = "none" to pass it through unsized)'
            )
        match = _USE_SPEC.fullmatch(entry)
        spec = None if match is None else _exact_spec(match.group(1), match.group(2))
        if spec is None or spec not in known:
            raise ConfigError(f'{where}: "{entry}" is not an eci spec such as 2-4Gi')
        parsed.append((entry, spec))
    return parsed


def _exact_spec(vcpu: str, gib: str) -> Spec | None:
    cpu, memory = Fraction(vcpu) * 1000, Fraction(gib) * GIB
    if cpu.denominator != 1 or memory.denominator != 1:
        return None
    return Spec(cpu=int(cpu), memory=int(memory))


def _size_fargate(request: PodRequest, rules: FargateRules) -> PodSize:
    need = _need(request, _request_first)
    memory = need.memory + rules.overhead_memory
    spec = _round_up(rules.specs, need.cpu, memory)
    if spec is None:
        overhead = f" with fargate's {_shown(rules.overhead_memory, GIB)} GiB overhead"
        raise _too_large(
            need.cpu, memory, f"the largest fargate spec {_spec_text(rules.specs[-1])}", overhead
        )
    if need.storage > rules.max_ephemeral_storage:
        raise _storage_too_large(need.storage, rules.max_ephemeral_storage, "fargate", GIB)
    surplus_cpu, surplus_memory = _surplus(request, need, spec.cpu, spec.memory - rules.overhead_memory)
    vcpu, gib = _shown(spec.cpu, 1000), _shown(spec.memory, GIB)
    return PodSize(
        platform=Platform.FARGATE,
        cpu=spec.cpu,
        memory=spec.memory,
        label=f"{_spec_text(spec)} (CapacityProvisioned {vcpu}vCPU {gib}GB)",
        annotations=MappingProxyType({}),
        surplus_cpu=surplus_cpu,
        surplus_memory=surplus_memory,
    )


def _size_autopilot(request: PodRequest, rules: AutopilotRules, kind: AutopilotCluster) -> PodSize:
    need = _need(request, _request_first)
    cpu, memory = (
        (need.cpu, need.memory)
        if need.cpu_set or need.memory_set
        else (rules.default.cpu, rules.default.memory)
    )
    cpu, memory = max(cpu, rules.min_cpu[kind]), max(memory, rules.min_memory[kind])
    memory = max(memory, _ceil(cpu * GIB * rules.min_gib_per_vcpu / 1000))
    cpu = max(cpu, _ceil(Fraction(memory * 1000) / (GIB * rules.max_gib_per_vcpu)))
    cpu = _ceil(Fraction(cpu, rules.cpu_step[kind])) * rules.cpu_step[kind]
    memory = max(memory, _ceil(cpu * GIB * rules.min_gib_per_vcpu / 1000))  # the step raised CPU
    if cpu > rules.max_cpu or memory > rules.max_memory:
        limit = Spec(cpu=rules.max_cpu, memory=rules.max_memory)
        raise _too_large(cpu, memory, f"the autopilot maximum {_spec_text(limit)}")
    storage = need.storage if need.storage_set else rules.default_ephemeral_storage
    if storage > rules.max_ephemeral_storage:
        raise _storage_too_large(storage, rules.max_ephemeral_storage, "autopilot", GIB)
    surplus_cpu, surplus_memory = _surplus(request, need, cpu, memory)
    requests = f"{format_cpu(cpu)} / {format_memory(memory)}"
    return PodSize(
        platform=Platform.AUTOPILOT,
        cpu=cpu,
        memory=memory,
        label=f"{_spec_text(Spec(cpu, memory))} (autopilot requests {requests})",
        annotations=MappingProxyType({}),
        surplus_cpu=surplus_cpu,
        surplus_memory=surplus_memory,
    )


def _size_aci(request: PodRequest, rules: AciRules) -> PodSize:
    for container in request.containers:
        if container.is_init and (container.requests != Resources() or container.limits != Resources()):
            raise ConfigError(f"container {container.name}: aci does not accept resources on init containers")
    apps = [c for c in request.containers if not c.is_init]
    cpu = sum(_aci_amount(_request_first(c).cpu, rules.cpu_step, rules.container_default.cpu) for c in apps)
    memory = sum(
        _aci_amount(_request_first(c).memory, rules.memory_step, rules.container_default.memory) for c in apps
    )
    if cpu > rules.max_cpu or memory > rules.max_memory:
        limit = _aci_text(rules.max_cpu, rules.max_memory)
        raise ConfigError(f"pod needs {_aci_text(cpu, memory)}, more than the aci maximum {limit}")
    for container in apps:
        _check_aci_limits(container, rules, cpu, memory)
    storage = sum(_request_first(c).ephemeral_storage or 0 for c in apps)
    if storage > rules.max_storage:
        raise _storage_too_large(storage, rules.max_storage, "aci", GB)
    return PodSize(
        platform=Platform.ACI,
        cpu=cpu,
        memory=memory,
        label=f"{_aci_text(cpu, memory)} (aci container group)",
        annotations=MappingProxyType({}),
    )


def _aci_amount(requested: int | None, step: int, default: int) -> int:
    """A container's amount as virtual-kubelet sends it: truncated to ``step``, at least one step."""
    if requested is None:
        return default
    return max(step, requested // step * step)


def _check_aci_limits(container: ContainerRequest, rules: AciRules, cpu: int, memory: int) -> None:
    # ACI: ContainerLimitGreaterThanContainerGroupTotalRequest; virtual-kubelet truncates the
    # memory limit to 0.1 GB but sends the CPU limit as it is
    limit_cpu = container.limits.cpu
    limit_memory = (
        None
        if container.limits.memory is None
        else _aci_amount(container.limits.memory, rules.memory_step, 0)
    )
    if (limit_cpu is not None and limit_cpu > cpu) or (limit_memory is not None and limit_memory > memory):
        raise ConfigError(
            f"container {container.name}: aci refuses a limit above the container group's total "
            f"request of {_aci_text(cpu, memory)}; set limits equal to requests"
        )


def _too_large(cpu: int, memory: int, largest: str, note: str = "") -> ConfigError:
    needs = f"{_shown_up(cpu, 1000)} vCPU / {_shown_up(memory, GIB)} GiB"
    return ConfigError(f"pod needs {needs}{note}, more than {largest}")


def _storage_too_large(storage: int, limit: int, platform: str, unit: int) -> ConfigError:
    name = "GiB" if unit == GIB else "GB"
    return ConfigError(
        f"pod asks for {_shown_up(storage, unit)} {name} of ephemeral storage, "
        f"more than the {platform} maximum {_shown(limit, unit)} {name}"
    )


def _spec_text(spec: Spec) -> str:
    return f"{_shown(spec.cpu, 1000)} vCPU / {_shown(spec.memory, GIB)} GiB"


def _aci_text(cpu: int, memory: int) -> str:
    return f"{_shown(cpu, 1000)} vCPU / {_shown(memory, GB)} GB"


def _use_spec_text(spec: Spec) -> str:
    return f"{_shown(spec.cpu, 1000)}-{_shown(spec.memory, GIB)}Gi"


def _shown(amount: int, unit: int) -> str:
    """``amount / unit`` for people: exact up to three decimals, else rounded."""
    return _decimal_text(Fraction(amount, unit), ROUND_HALF_UP)


def _shown_up(amount: int, unit: int) -> str:
    """Like :func:`_shown`, rounding up, so a need never reads as fitting when it does not."""
    return _decimal_text(Fraction(amount, unit), ROUND_CEILING)


def _decimal_text(value: Fraction, rounding: str) -> str:
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    shown = exact.quantize(Decimal("0.001"), rounding=rounding).normalize()
    return f"{shown:f}"


def _ceil(value: Fraction | int) -> int:
    return math.ceil(value)
