"""Sizing per platform: table-driven edges, the reference 4c8g pod, and invariants."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from skyrunner.errors import ConfigError
from skyrunner.executors.kubernetes.quantity import parse_cpu, parse_memory
from skyrunner.executors.kubernetes.sizing import (
    BUILD_CONTAINER,
    ECI_USE_SPECS,
    ContainerRequest,
    Platform,
    PodRequest,
    PodSize,
    Resources,
    apply_surplus,
    size_pod,
)
from skyrunner.executors.kubernetes.spec_table import (
    GB,
    GIB,
    MIB,
    AutopilotCluster,
    Spec,
    SpecTable,
    load_spec_table,
)

TABLE = load_spec_table()
REGIONAL = TABLE.with_regional_eci_specs()
NON_BURSTING = TABLE.for_autopilot_cluster(AutopilotCluster.NON_BURSTING)


def res(cpu: str | None = None, memory: str | None = None, storage: str | None = None) -> Resources:
    return Resources(
        cpu=None if cpu is None else parse_cpu(cpu),
        memory=None if memory is None else parse_memory(memory),
        ephemeral_storage=None if storage is None else parse_memory(storage),
    )


UNSET = Resources()


def box(name: str, req: Resources = UNSET, lim: Resources = UNSET) -> ContainerRequest:
    return ContainerRequest(name=name, requests=req, limits=lim)


def init(name: str, req: Resources = UNSET, lim: Resources = UNSET) -> ContainerRequest:
    return ContainerRequest(name=name, requests=req, limits=lim, is_init=True)


def pod(*containers: ContainerRequest, annotations: Mapping[str, str] | None = None) -> PodRequest:
    return PodRequest(containers=containers, annotations=annotations or {})


def same(cpu: str, memory: str) -> tuple[Resources, Resources]:
    """Requests equal to limits, as the reference deployment sets them."""
    return res(cpu, memory), res(cpu, memory)


REFERENCE = pod(box("build", *same("3750m", "7680Mi")), box("helper", *same("250m", "512Mi")))
SMALL = pod(box("build", res("1", "1Gi")), box("helper", res("250m", "256Mi")))


@dataclass(frozen=True)
class Case:
    id: str
    request: PodRequest
    cpu: str
    memory: int
    surplus_cpu: str = "0"
    surplus_memory: int = 0
    annotations: Mapping[str, str] = field(default_factory=dict)


def run(case: Case, platform: Platform, table: SpecTable = TABLE) -> PodSize:
    size = size_pod(case.request, platform, table)
    assert (size.cpu, size.memory) == (parse_cpu(case.cpu), case.memory)
    assert (size.surplus_cpu, size.surplus_memory) == (parse_cpu(case.surplus_cpu), case.surplus_memory)
    assert dict(size.annotations) == dict(case.annotations)
    assert size.platform is platform
    return size


def eci(spec: str) -> dict[str, str]:
    return {ECI_USE_SPECS: spec}


ECI_CASES = [
    Case("reference-4c8g", REFERENCE, "4", 8 * GIB, annotations=eci("4-8Gi")),
    Case("next-spec-up", SMALL, "2", 2 * GIB, "750m", 768 * MIB, eci("2-2Gi")),
    Case(
        "below-minimum",
        pod(box("build", res("100m", "128Mi"))),
        "250m",
        GIB // 2,
        "150m",
        384 * MIB,
        eci("0.25-0.5Gi"),
    ),
    Case("exactly-on-spec", pod(box("build", res("2", "4Gi"))), "2", 4 * GIB, annotations=eci("2-4Gi")),
    Case("between-specs", pod(box("build", res("3", "5Gi"))), "4", 8 * GIB, "1", 3 * GIB, eci("4-8Gi")),
    Case("memory-heavy", pod(box("build", res("1", "10Gi"))), "2", 16 * GIB, "1", 6 * GIB, eci("2-16Gi")),
    Case(
        "limits-count-not-requests",
        pod(box("build", res("1", "2Gi"), res("2", "4Gi"))),
        "2",
        4 * GIB,
        annotations=eci("2-4Gi"),
    ),
    Case("nothing-set-is-2c4g", pod(box("build")), "2", 4 * GIB, "2", 4 * GIB, eci("2-4Gi")),
    Case("cpu-only", pod(box("build", res("1"))), "1", 2 * GIB, "0", 2 * GIB, eci("1-2Gi")),
    Case(
        "init-container-dominates",
        pod(init("prepare", res("4", "8Gi")), box("build", res("1", "1Gi"))),
        "4",
        8 * GIB,
        "3",
        7 * GIB,
        eci("4-8Gi"),
    ),
    Case("doc-7c13g", pod(box("build", res("7", "13Gi"))), "8", 16 * GIB, "1", 3 * GIB, eci("8-16Gi")),
    Case("no-build-no-surplus", pod(box("job", res("1", "1Gi"))), "1", 2 * GIB, annotations=eci("1-2Gi")),
]


@pytest.mark.parametrize("case", ECI_CASES, ids=[c.id for c in ECI_CASES])
def test_eci(case: Case) -> None:
    run(case, Platform.ECI)


def test_eci_reference_label() -> None:
    assert size_pod(REFERENCE, Platform.ECI, TABLE).label == "4 vCPU / 8 GiB (eci-use-specs 4-8Gi)"


def test_eci_regional_specs_round_closer() -> None:
    # the docs' Hangzhou example: 7 vCPU / 13 GiB becomes 8 vCPU / 14 GiB
    run(
        Case("doc", pod(box("build", res("7", "13Gi"))), "8", 14 * GIB, "1", GIB, eci("8-14Gi")),
        Platform.ECI,
        REGIONAL,
    )


ECI_TOO_LARGE = [
    (
        "cpu",
        pod(box("build", res("65", "80Gi"))),
        "pod needs 65 vCPU / 80 GiB, more than the largest eci spec 64 vCPU / 512 GiB",
    ),
    (
        "memory",
        pod(box("build", res("8", "600Gi"))),
        "pod needs 8 vCPU / 600 GiB, more than the largest eci spec 64 vCPU / 512 GiB",
    ),
    (
        "summed",
        pod(box("build", res("60")), box("helper", res("4500m"))),
        "pod needs 64.5 vCPU / 0 GiB, more than the largest eci spec 64 vCPU / 512 GiB",
    ),
]


@pytest.mark.parametrize(
    ("request_", "message"), [c[1:] for c in ECI_TOO_LARGE], ids=[c[0] for c in ECI_TOO_LARGE]
)
def test_eci_above_maximum(request_: PodRequest, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        size_pod(request_, Platform.ECI, TABLE)
    assert str(info.value) == message


FIXED = [
    Case(
        "one-entry",
        pod(box("build", res("1", "1Gi")), annotations=eci("2-4Gi")),
        "2",
        4 * GIB,
        "1",
        3 * GIB,
        eci("2-4Gi"),
    ),
    Case(
        "first-billed-smallest-surplus",
        pod(box("build", res("1", "1Gi")), annotations=eci("4-8Gi, 2-4Gi")),
        "4",
        8 * GIB,
        "1",
        3 * GIB,
        eci("4-8Gi, 2-4Gi"),
    ),
    Case(
        "regional-spec-accepted",
        pod(box("build", res("2", "6Gi")), annotations=eci("2-6Gi")),
        "2",
        6 * GIB,
        annotations=eci("2-6Gi"),
    ),
    Case(
        "fractional",
        pod(box("build", res("100m")), annotations=eci("0.25-0.5Gi")),
        "250m",
        GIB // 2,
        "150m",
        GIB // 2,
        eci("0.25-0.5Gi"),
    ),
    Case(
        "overrides-containers",
        pod(box("build"), annotations=eci("1-2Gi")),
        "1",
        2 * GIB,
        "1",
        2 * GIB,
        eci("1-2Gi"),
    ),
]


@pytest.mark.parametrize("case", FIXED, ids=[c.id for c in FIXED])
def test_eci_user_fixed_use_specs(case: Case) -> None:
    size = run(case, Platform.ECI)
    assert size.label.endswith(f"(eci-use-specs {case.request.annotations[ECI_USE_SPECS]})")


FIXED_BAD = [
    (
        "too-small",
        "1-2Gi",
        "pod needs 2 vCPU / 1 GiB, more than the spec 1-2Gi fixed by k8s.aliyun.com/eci-use-specs",
    ),
    ("ecs-type", "ecs.c6.xlarge", '"ecs.c6.xlarge" is an ecs instance type, which skyrunner cannot size'),
    ("not-a-spec", "3-5Gi", '"3-5Gi" is not an eci spec such as 2-4Gi'),
    ("garbage", "big", '"big" is not an eci spec'),
    ("inexact", "0.3333-1Gi", '"0.3333-1Gi" is not an eci spec'),
    ("empty-entry", "2-4Gi,", '"" is not an eci spec'),
    ("six-entries", ",".join(["2-4Gi"] * 6), "6 entries, eci takes at most 5"),
    ("one-entry-too-small", "4-8Gi,1-2Gi", "more than the spec 1-2Gi"),
]


@pytest.mark.parametrize(("value", "message"), [c[1:] for c in FIXED_BAD], ids=[c[0] for c in FIXED_BAD])
def test_eci_bad_fixed_use_specs(value: str, message: str) -> None:
    request = pod(box("build", res("2", "1Gi")), annotations=eci(value))
    with pytest.raises(
        ConfigError, match=r"^(pod annotation k8s\.aliyun\.com/eci-use-specs: |pod needs )"
    ) as info:
        size_pod(request, Platform.ECI, TABLE)
    assert message in str(info.value)


FARGATE_CASES = [
    # the docs' example: 1 vCPU + 8 GB -> 8.25 GB -> 2 vCPU / 9 GB
    Case("doc-1c8g", pod(box("build", res("1", "8Gi"))), "2", 9 * GIB, "1", 768 * MIB),
    Case("reference-4c8g", REFERENCE, "4", 9 * GIB, "0", 768 * MIB),
    Case("nothing-set", pod(box("build")), "250m", GIB // 2, "250m", 256 * MIB),
    Case("below-minimum", pod(box("build", res("10m", "10Mi"))), "250m", GIB // 2, "240m", 246 * MIB),
    Case("exactly-on-spec-with-overhead", pod(box("build", res("1", "1792Mi"))), "1", 2 * GIB),
    Case("between-specs", SMALL, "2", 4 * GIB, "750m", 2560 * MIB),
    Case(
        "init-container-dominates",
        pod(
            init("prepare", res("2", "6Gi")),
            box("build", res("500m", "1Gi")),
            box("helper", res("250m", "256Mi")),
        ),
        "2",
        7 * GIB,
        "1250m",
        5632 * MIB,
    ),
    Case(
        "requests-not-limits",
        pod(box("build", res("1", "1Gi"), res("4", "8Gi"))),
        "1",
        2 * GIB,
        "0",
        768 * MIB,
    ),
    Case("limit-stands-in-for-request", pod(box("build", lim=res("2", "4Gi"))), "2", 5 * GIB, "0", 768 * MIB),
    Case("largest", pod(box("build", res("16", "119Gi"))), "16", 120 * GIB, "0", 768 * MIB),
]


@pytest.mark.parametrize("case", FARGATE_CASES, ids=[c.id for c in FARGATE_CASES])
def test_fargate(case: Case) -> None:
    run(case, Platform.FARGATE)


def test_fargate_label_names_capacity_provisioned() -> None:
    size = size_pod(pod(box("build", res("1", "8Gi"))), Platform.FARGATE, TABLE)
    assert size.label == "2 vCPU / 9 GiB (CapacityProvisioned 2vCPU 9GB)"


FARGATE_TOO_LARGE = [
    (
        "overhead-pushes-over",
        pod(box("build", res("16", "120Gi"))),
        "pod needs 16 vCPU / 120.25 GiB with fargate's 0.25 GiB overhead, "
        "more than the largest fargate spec 16 vCPU / 120 GiB",
    ),
    (
        "cpu",
        pod(box("build", res("17", "32Gi"))),
        "pod needs 17 vCPU / 32.25 GiB with fargate's 0.25 GiB overhead, "
        "more than the largest fargate spec 16 vCPU / 120 GiB",
    ),
    (
        "storage",
        pod(box("build", res("1", "1Gi", "176Gi"))),
        "pod asks for 176 GiB of ephemeral storage, more than the fargate maximum 175 GiB",
    ),
]


@pytest.mark.parametrize(
    ("request_", "message"), [c[1:] for c in FARGATE_TOO_LARGE], ids=[c[0] for c in FARGATE_TOO_LARGE]
)
def test_fargate_above_maximum(request_: PodRequest, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        size_pod(request_, Platform.FARGATE, TABLE)
    assert str(info.value) == message


AUTOPILOT_CASES = [
    Case("reference-4c8g", REFERENCE, "4", 8 * GIB),
    Case("below-minimum", pod(box("build", res("10m", "10Mi"))), "50m", 52 * MIB, "40m", 42 * MIB),
    # the docs' example: 200m + 2 GiB -> CPU raised to ~308m
    Case("ratio-memory-heavy", pod(box("build", res("200m", "2Gi"))), "308m", 2 * GIB, "108m", 0),
    Case("ratio-cpu-heavy", pod(box("build", res("2", "1Gi"))), "2", 2 * GIB, "0", GIB),
    Case("ratio-edges-kept", pod(box("build", res("2", "13Gi"))), "2", 13 * GIB),
    Case("no-step-when-bursting", pod(box("build", res("302m", "1Gi"))), "302m", GIB),
    Case("nothing-set", pod(box("build")), "500m", 2 * GIB, "500m", 2 * GIB),
    Case("cpu-only", pod(box("build", res("2"))), "2", 2 * GIB, "0", 2 * GIB),
    Case("memory-only", pod(box("build", res(memory="13Gi"))), "2", 13 * GIB, "2", 0),
    Case("limits-ignored", pod(box("build", res("1", "2Gi"), res("4", "8Gi"))), "1", 2 * GIB),
    Case(
        "init-container-dominates",
        pod(init("prepare", res("2", "4Gi")), box("build", res("500m", "1Gi"))),
        "2",
        4 * GIB,
        "1500m",
        3 * GIB,
    ),
    Case("at-maximum", pod(box("build", res("30", "110Gi"))), "30", 110 * GIB),
]


@pytest.mark.parametrize("case", AUTOPILOT_CASES, ids=[c.id for c in AUTOPILOT_CASES])
def test_autopilot_bursting(case: Case) -> None:
    run(case, Platform.AUTOPILOT)


AUTOPILOT_NON_BURSTING = [
    # Google's old wording: "800m becomes 1000m"
    Case("step-800m-to-1000m", pod(box("build", res("800m", "1Gi"))), "1", GIB, "200m", 0),
    Case("below-minimum", pod(box("build", res("100m", "100Mi"))), "250m", 512 * MIB, "150m", 412 * MIB),
    Case(
        "step-then-ratio", pod(box("build", res("1001m", "1001Mi"))), "1250m", 1280 * MIB, "249m", 279 * MIB
    ),
    Case("on-a-step", pod(box("build", res("1500m", "3Gi"))), "1500m", 3 * GIB),
]


@pytest.mark.parametrize("case", AUTOPILOT_NON_BURSTING, ids=[c.id for c in AUTOPILOT_NON_BURSTING])
def test_autopilot_non_bursting(case: Case) -> None:
    run(case, Platform.AUTOPILOT, NON_BURSTING)


def test_autopilot_label_shows_the_requests() -> None:
    size = size_pod(pod(box("build", res("200m", "2Gi"))), Platform.AUTOPILOT, TABLE)
    assert size.label == "0.308 vCPU / 2 GiB (autopilot requests 308m / 2Gi)"


AUTOPILOT_TOO_LARGE = [
    (
        "cpu",
        pod(box("build", res("31"))),
        "pod needs 31 vCPU / 31 GiB, more than the autopilot maximum 30 vCPU / 110 GiB",
    ),
    (
        "memory",
        pod(box("build", res("20", "111Gi"))),
        "pod needs 20 vCPU / 111 GiB, more than the autopilot maximum 30 vCPU / 110 GiB",
    ),
    (
        "ratio-pushes-over",
        pod(box("build", res("30", "200Gi"))),
        "pod needs 30.77 vCPU / 200 GiB, more than the autopilot maximum 30 vCPU / 110 GiB",
    ),
    (
        "storage",
        pod(box("build", res("1", "1Gi", "11Gi"))),
        "pod asks for 11 GiB of ephemeral storage, more than the autopilot maximum 10 GiB",
    ),
]


@pytest.mark.parametrize(
    ("request_", "message"), [c[1:] for c in AUTOPILOT_TOO_LARGE], ids=[c[0] for c in AUTOPILOT_TOO_LARGE]
)
def test_autopilot_above_maximum(request_: PodRequest, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        size_pod(request_, Platform.AUTOPILOT, TABLE)
    assert str(info.value) == message


ACI_CASES = [
    Case("reference-4c8g", REFERENCE, "4", 8_500_000_000),
    Case("truncated-down", pod(box("build", res("1005m", "1050M"))), "1", GB),
    Case("below-minimum", pod(box("build", res("5m", "10M"))), "10m", 100_000_000),
    Case("defaults-per-container", pod(box("build"), box("helper")), "2", 3 * GB),
    Case("limit-stands-in-for-request", pod(box("build", lim=res("2", "4G"))), "2", 4 * GB),
    Case("at-maximum", pod(box("build", res("4", "16G"))), "4", 16 * GB),
    Case("init-without-resources", pod(init("prepare"), box("build", res("1", "1G"))), "1", GB),
]


@pytest.mark.parametrize("case", ACI_CASES, ids=[c.id for c in ACI_CASES])
def test_aci(case: Case) -> None:
    size = run(case, Platform.ACI)
    assert size.label.endswith("(aci container group)")


ACI_REFUSED = [
    (
        "cpu",
        pod(box("build", res("4010m", "1G"))),
        "pod needs 4.01 vCPU / 1 GB, more than the aci maximum 4 vCPU / 16 GB",
    ),
    (
        "memory-16gi-is-17gb",
        pod(box("build", res("1", "16Gi"))),
        "pod needs 1 vCPU / 17.1 GB, more than the aci maximum 4 vCPU / 16 GB",
    ),
    (
        "init-resources",
        pod(init("prepare", res("1")), box("build")),
        "container prepare: aci does not accept resources on init containers",
    ),
    (
        "limit-above-group",
        pod(box("build", res("1", "1G"), res("2", "1G"))),
        "container build: aci refuses a limit above the container group's total request "
        "of 1 vCPU / 1 GB; set limits equal to requests",
    ),
    (
        "storage",
        pod(box("build", res("1", "1G", "51G"))),
        "pod asks for 51 GB of ephemeral storage, more than the aci maximum 50 GB",
    ),
]


@pytest.mark.parametrize(
    ("request_", "message"), [c[1:] for c in ACI_REFUSED], ids=[c[0] for c in ACI_REFUSED]
)
def test_aci_refusals(request_: PodRequest, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        size_pod(request_, Platform.ACI, TABLE)
    assert str(info.value) == message


NONE_CASES = [
    Case("reference-as-is", REFERENCE, "4", 8 * GIB),
    Case("huge-as-is", pod(box("build", res("100", "1Ti"))), "100", 1024 * GIB),
    Case("init-max", pod(init("prepare", res("3", "1Gi")), box("build", res("1", "2Gi"))), "3", 2 * GIB),
    Case("nothing-set", pod(box("build")), "0", 0),
    Case(
        "user-annotation-ignored",
        pod(box("build", res("1", "1Gi")), annotations=eci("ecs.c6.xlarge")),
        "1",
        GIB,
    ),
]


@pytest.mark.parametrize("case", NONE_CASES, ids=[c.id for c in NONE_CASES])
def test_none_is_the_sum_as_is(case: Case) -> None:
    run(case, Platform.NONE)


def test_billed_figures_as_decimals() -> None:
    size = size_pod(SMALL, Platform.ECI, TABLE)
    assert (str(size.vcpu), str(size.gib)) == ("2", "2")
    assert str(size_pod(pod(box("build", res("100m"))), Platform.ECI, TABLE).vcpu) == "0.25"


APPLY = [
    (
        "request-and-limit",
        box("build", res("1", "1Gi"), res("2", "2Gi")),
        res("1750m", "1792Mi"),
        res("2750m", "2816Mi"),
    ),
    ("request-only", box("build", res("1", "1Gi")), res("1750m", "1792Mi"), Resources()),
    ("limit-only", box("build", lim=res("1", "1Gi")), Resources(), res("1750m", "1792Mi")),
    ("nothing", box("build"), res("750m", "768Mi"), Resources()),
]


@pytest.mark.parametrize(("build", "requests", "limits"), [a[1:] for a in APPLY], ids=[a[0] for a in APPLY])
def test_apply_surplus_grows_build(build: ContainerRequest, requests: Resources, limits: Resources) -> None:
    helper = box("helper", res("250m", "256Mi"))
    size = PodSize(Platform.ECI, 2000, 2 * GIB, "", {}, surplus_cpu=750, surplus_memory=768 * MIB)
    grown = apply_surplus(pod(build, helper), size)
    assert grown.containers == (ContainerRequest("build", requests, limits), helper)


def test_apply_surplus_keeps_storage_and_init_containers() -> None:
    request = pod(init("build", res("1")), box("build", res("1", "1Gi", "5Gi")))
    size = PodSize(Platform.ECI, 2000, 2 * GIB, "", {}, surplus_cpu=1000, surplus_memory=0)
    grown = apply_surplus(request, size)
    assert grown.containers[0] == request.containers[0]
    assert grown.containers[1].requests == res("2", "1Gi", "5Gi")


def test_apply_without_surplus_is_identity() -> None:
    size = size_pod(REFERENCE, Platform.ECI, TABLE)
    assert apply_surplus(REFERENCE, size) is REFERENCE


def test_resources_refuse_negative_amounts() -> None:
    with pytest.raises(ValueError):
        Resources(cpu=-1)


# --- invariants ---------------------------------------------------------------------------

CPU = st.one_of(st.none(), st.integers(min_value=0, max_value=6000))
MEMORY = st.one_of(st.none(), st.integers(min_value=0, max_value=12 * GIB))


@st.composite
def resources_pair(draw: st.DrawFn) -> tuple[Resources, Resources]:
    req_cpu, req_mem = draw(CPU), draw(MEMORY)
    lim_cpu = draw(st.one_of(st.none(), st.integers(min_value=req_cpu or 0, max_value=8000)))
    lim_mem = draw(st.one_of(st.none(), st.integers(min_value=req_mem or 0, max_value=16 * GIB)))
    return Resources(cpu=req_cpu, memory=req_mem), Resources(cpu=lim_cpu, memory=lim_mem)


@st.composite
def pod_requests(draw: st.DrawFn) -> PodRequest:
    containers = [ContainerRequest(BUILD_CONTAINER, *draw(resources_pair()))]
    for i in range(draw(st.integers(min_value=0, max_value=3))):
        containers.append(ContainerRequest(f"svc{i}", *draw(resources_pair())))
    for i in range(draw(st.integers(min_value=0, max_value=2))):
        containers.append(ContainerRequest(f"init{i}", *draw(resources_pair()), is_init=True))
    return PodRequest(containers=tuple(containers))


def app_total(request: PodRequest, *, limits_first: bool) -> tuple[int, int]:
    def pick(first: int | None, second: int | None) -> int:
        return first if first is not None else (second or 0)

    cpu = memory = 0
    for c in request.containers:
        if c.is_init:
            continue
        a, b = (c.limits, c.requests) if limits_first else (c.requests, c.limits)
        cpu += pick(a.cpu, b.cpu)
        memory += pick(a.memory, b.memory)
    return cpu, memory


def pod_need(request: PodRequest, *, limits_first: bool) -> tuple[int, int]:
    cpu, memory = app_total(request, limits_first=limits_first)
    for c in request.containers:
        if c.is_init:
            single = app_total(
                PodRequest(containers=(ContainerRequest("x", c.requests, c.limits),)),
                limits_first=limits_first,
            )
            cpu, memory = max(cpu, single[0]), max(memory, single[1])
    return cpu, memory


def sized(request: PodRequest, platform: Platform) -> PodSize:
    try:
        return size_pod(request, platform, TABLE)
    except ConfigError:
        assume(False)
        raise


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(pod_requests())
def test_eci_invariants(request: PodRequest) -> None:
    size = sized(request, Platform.ECI)
    need = pod_need(request, limits_first=True)
    assert size.cpu >= need[0] and size.memory >= need[1]
    assert Spec(size.cpu, size.memory) in TABLE.eci.specs
    assert size.surplus_cpu >= 0 and size.surplus_memory >= 0
    grown = apply_surplus(request, size)
    # build + surplus + others == billed
    assert app_total(grown, limits_first=True) == (size.cpu, size.memory)
    again = size_pod(grown, Platform.ECI, TABLE)
    assert (again.cpu, again.memory, again.surplus_cpu, again.surplus_memory) == (size.cpu, size.memory, 0, 0)


@FAST
@given(pod_requests())
def test_fargate_invariants(request: PodRequest) -> None:
    size = sized(request, Platform.FARGATE)
    overhead = TABLE.fargate.overhead_memory
    need = pod_need(request, limits_first=False)
    assert size.cpu >= need[0] and size.memory >= need[1] + overhead
    assert Spec(size.cpu, size.memory) in TABLE.fargate.specs
    assert size.surplus_cpu >= 0 and size.surplus_memory >= 0
    grown = apply_surplus(request, size)
    cpu, memory = app_total(grown, limits_first=False)
    assert (cpu, memory + overhead) == (size.cpu, size.memory)
    again = size_pod(grown, Platform.FARGATE, TABLE)
    assert (again.cpu, again.memory, again.surplus_cpu, again.surplus_memory) == (size.cpu, size.memory, 0, 0)


@FAST
@given(pod_requests(), st.sampled_from([TABLE, NON_BURSTING]))
def test_autopilot_invariants(request: PodRequest, table: SpecTable) -> None:
    try:
        size = size_pod(request, Platform.AUTOPILOT, table)
    except ConfigError:
        assume(False)
        raise
    need = pod_need(request, limits_first=False)
    assert size.cpu >= need[0] and size.memory >= need[1]
    assert GIB * size.cpu <= 1000 * size.memory <= GIB * size.cpu * 13 // 2 + 1000
    if table is NON_BURSTING:
        assert size.cpu % 250 == 0
    assert size.surplus_cpu >= 0 and size.surplus_memory >= 0
    grown = apply_surplus(request, size)
    assert app_total(grown, limits_first=False) == (size.cpu, size.memory)
    again = size_pod(grown, Platform.AUTOPILOT, table)
    assert (again.cpu, again.memory, again.surplus_cpu, again.surplus_memory) == (size.cpu, size.memory, 0, 0)


@FAST
@given(pod_requests())
def test_aci_invariants(request: PodRequest) -> None:
    stripped = PodRequest(containers=tuple(c for c in request.containers if not c.is_init))
    size = sized(stripped, Platform.ACI)
    apps = len(stripped.containers)
    cpu, memory = app_total(stripped, limits_first=False)
    assert size.cpu % 10 == 0 and size.memory % (10**8) == 0
    assert (size.surplus_cpu, size.surplus_memory) == (0, 0)
    if all(c.requests.cpu is not None or c.limits.cpu is not None for c in stripped.containers):
        assert cpu - 10 * apps < size.cpu <= cpu + 10 * apps
    if all(c.requests.memory is not None or c.limits.memory is not None for c in stripped.containers):
        assert memory - 10**8 * apps < size.memory <= memory + 10**8 * apps


@FAST
@given(pod_requests())
def test_none_invariants(request: PodRequest) -> None:
    size = size_pod(request, Platform.NONE, TABLE)
    assert (size.cpu, size.memory) == pod_need(request, limits_first=False)
    assert (size.surplus_cpu, size.surplus_memory, dict(size.annotations)) == (0, 0, {})


@FAST
@given(st.integers(min_value=0, max_value=70_000), st.integers(min_value=0, max_value=600 * GIB))
def test_eci_fails_only_beyond_the_largest_spec(cpu: int, memory: int) -> None:
    request = pod(box("build", Resources(cpu=cpu, memory=memory)))
    largest = TABLE.eci.specs[-1]
    fits = any(s.cpu >= cpu and s.memory >= memory for s in TABLE.eci.specs)
    if fits:
        size = size_pod(request, Platform.ECI, TABLE)
        assert size.annotations[ECI_USE_SPECS].endswith("Gi")
    else:
        with pytest.raises(ConfigError, match=f"more than the largest eci spec {largest.cpu // 1000} vCPU"):
            size_pod(request, Platform.ECI, TABLE)
