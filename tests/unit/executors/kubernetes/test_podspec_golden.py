"""The pod builder against golden YAML, one file per scenario, every manifest schema-validated.

Regenerate after an intended change with ``SKYRUNNER_UPDATE_GOLDEN=1`` and review the diff.
The Secret's run dir files, payload and plan are replaced by placeholders in the golden files;
``test_secret_holds_*`` checks them against their sources.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import yaml

from skyrunner.config import PatchType, PodSpecPatch
from skyrunner.executors.kubernetes.podspec import (
    SECRET_PAYLOAD_KEY,
    SECRET_PLAN_KEY,
    SECRET_TOKEN_KEY,
    PodManifests,
    render_payload,
)
from skyrunner.helper.plan import parse_plan
from skyrunner.job.spec import parse_job_spec
from skyrunner.platforms import Platform
from tests.unit.executors.kubernetes.podspec_support import (
    GOLDEN,
    JOB_TOKEN,
    build,
    dump_golden,
    golden_documents,
    kube,
    payload,
    prepared,
    reference_runner,
    validate,
    variables,
)

REGISTRY = {"type": "registry", "url": "registry.example.com", "username": "gitlab-ci-token", "password": JOB_TOKEN}


def _minimal() -> PodManifests:
    return build(prepared(payload()), kube())


def _services() -> PodManifests:
    body = payload(
        services=[
            {
                "name": "postgres:16",
                "alias": "db,postgres-db",
                "variables": [
                    {"key": "POSTGRES_PASSWORD", "value": "$API_KEY"},
                    {"key": "POSTGRES_DB", "value": "app"},
                ],
            },
            {
                "name": "registry.example.com/tools/redis:7",
                "entrypoint": ["redis-server"],
                "command": ["--port", "6380"],
            },
        ]
    )
    return build(prepared(body), kube('service_cpu_request = "100m"\nservice_memory_limit = "256Mi"'))


def _cache_on_pvc() -> PodManifests:
    body = payload(cache=[{"key": "deps", "paths": ["vendor/"], "policy": "pull-push", "when": "on_success"}])
    cfg = kube('[[volumes.pvc]]\nname = "runner-cache-pvc"\nmount_path = "/cache"\nread_only = false')
    return build(prepared(body), cfg)


def _reference_on_eci() -> PodManifests:
    cfg, environment = reference_runner()
    return build(prepared(payload(), environment), cfg, Platform.ECI, namespace=cfg.namespace or "default")


def _overwrites_within_caps() -> PodManifests:
    body = payload(
        variables=variables(
            ("KUBERNETES_CPU_REQUEST", "1500m"),
            ("KUBERNETES_CPU_LIMIT", "3"),
            ("KUBERNETES_MEMORY_LIMIT", "6Gi"),
            ("KUBERNETES_EPHEMERAL_STORAGE_REQUEST", "10Gi"),
            ("KUBERNETES_HELPER_MEMORY_LIMIT", "1Gi"),
            ("KUBERNETES_SERVICE_ACCOUNT_OVERWRITE", "ci-deployer"),
            ("KUBERNETES_POD_ANNOTATIONS_1", "team.example.com/owner=platform"),
            ("KUBERNETES_NODE_SELECTOR_ARCH", "kubernetes.io/arch=arm64"),
        )
    )
    cfg = kube(
        """
        cpu_request = "500m"
        cpu_request_overwrite_max_allowed = "2"
        cpu_limit = "1"
        cpu_limit_overwrite_max_allowed = "4"
        memory_limit = "2Gi"
        memory_limit_overwrite_max_allowed = "8Gi"
        ephemeral_storage_request_overwrite_max_allowed = "20Gi"
        helper_memory_limit = "512Mi"
        service_account = "ci"
        service_account_overwrite_allowed = "^ci-[a-z]+$"
        pod_annotations_overwrite_allowed = "^team[.]example[.]com/"
        node_selector_overwrite_allowed = "^kubernetes[.]io/arch="
        [node_selector]
        "kubernetes.io/os" = "linux"
        """
    )
    return build(prepared(body), cfg)


def _kaniko() -> PodManifests:
    body = payload(variables=variables(("SKYRUNNER_IMAGE_BUILDER", "kaniko")), credentials=[REGISTRY])
    return build(prepared(body), kube('pull_policy = ["if-not-present", "always"]'), Platform.ECI)


def _dns() -> PodManifests:
    cfg = kube(
        """
        dns_policy = "none"
        [dns_config]
        nameservers = ["10.0.0.10", "100.100.2.136"]
        searches = ["ci.svc.cluster.local", "example.internal"]
        [[dns_config.options]]
        name = "ndots"
        value = "2"
        [[dns_config.options]]
        name = "edns0"
        [[host_aliases]]
        ip = "10.0.1.20"
        hostnames = ["gitlab.example.internal", "registry.example.internal"]
        """
    )
    return build(prepared(payload(services=[{"name": "mysql:8", "alias": "db"}])), cfg)


def _pull_secrets() -> PodManifests:
    body = payload(credentials=[REGISTRY, {**REGISTRY, "url": "harbor.example.com", "username": "robot"}])
    return build(prepared(body), kube('image_pull_secrets = ["corp-registry"]'))


def _secure_and_placed() -> PodManifests:
    cfg = kube(
        """
        privileged = false
        cap_add = ["SYS_PTRACE"]
        cap_drop = ["ALL"]
        priority_class_name = "ci-low"
        scheduler_name = "batch-scheduler"
        runtime_class_name = "gvisor"
        pod_termination_grace_period_seconds = 60
        [pod_security_context]
        run_as_non_root = true
        run_as_user = 1000
        fs_group = 1000
        [build_container_security_context]
        read_only_root_filesystem = false
        run_as_user = 1001
        [helper_container_security_context]
        [helper_container_security_context.capabilities]
        drop = ["ALL"]
        [node_tolerations]
        "ci=true" = "NoSchedule"
        "virtual-kubelet.io/provider" = ""
        [pod_labels]
        team = "platform/$CI_JOB_NAME"
        [affinity.node_affinity.required_during_scheduling_ignored_during_execution]
        [[affinity.node_affinity.required_during_scheduling_ignored_during_execution.node_selector_terms]]
        [[affinity.node_affinity.required_during_scheduling_ignored_during_execution.node_selector_terms.match_expressions]]
        key = "node-pool"
        operator = "In"
        values = ["ci"]
        [[volumes.config_map]]
        name = "ca-bundle"
        mount_path = "/etc/ssl/ci"
        read_only = true
        [volumes.config_map.items]
        "ca.crt" = "ca.crt"
        [[volumes.empty_dir]]
        name = "scratch"
        mount_path = "/scratch"
        medium = "Memory"
        size_limit = "1Gi"
        [[volumes.secret]]
        name = "maven-settings"
        mount_path = "/root/.m2/settings.xml"
        sub_path = "settings.xml"
        """
    )
    return build(prepared(payload()), cfg)


def _patched(kind: PatchType, text: str) -> Callable[[], PodManifests]:
    def make() -> PodManifests:
        patch = PodSpecPatch(name=f"{kind.value}-patch", patch_type=kind, patch=text)
        return build(prepared(payload()), kube(), patches=[patch])

    return make


@dataclass(frozen=True)
class Scenario:
    name: str
    make: Callable[[], PodManifests]


SCENARIOS = [
    Scenario("minimal", _minimal),
    Scenario("services", _services),
    Scenario("cache-on-pvc", _cache_on_pvc),
    Scenario("reference-on-eci", _reference_on_eci),
    Scenario("overwrites-within-caps", _overwrites_within_caps),
    Scenario("kaniko", _kaniko),
    Scenario("dns-and-host-aliases", _dns),
    Scenario("pull-secrets", _pull_secrets),
    Scenario("secure-and-placed", _secure_and_placed),
    Scenario("patch-merge", _patched(PatchType.MERGE, "hostname: ci-job\nnodeSelector:\n  disk: ssd\n")),
    Scenario(
        "patch-json",
        _patched(
            PatchType.JSON, '[{"op": "add", "path": "/containers/0/env/-", "value": {"name": "X", "value": "1"}}]'
        ),
    ),
    Scenario(
        "patch-strategic",
        _patched(
            PatchType.STRATEGIC,
            "containers:\n- name: build\n  tty: true\n  env:\n  - name: LANG\n    value: C.UTF-8\n"
            "  - name: SKYRUNNER_SECTIONS\n    $patch: delete\n"
            "volumes:\n- name: docker-certs\n  emptyDir: {}\n",
        ),
    ),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_golden(scenario: Scenario) -> None:
    manifests = scenario.make()
    validate(manifests)
    documents = golden_documents(manifests)
    path = GOLDEN / f"{scenario.name}.yaml"
    if os.environ.get("SKYRUNNER_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(dump_golden(documents))
    assert documents == list(yaml.safe_load_all(path.read_text()))


def test_reference_config_on_eci_is_billed_4_8gi_with_nothing_to_add() -> None:
    manifests = _reference_on_eci()
    annotations = manifests.pod.to_dict()["metadata"]["annotations"]
    assert annotations["k8s.aliyun.com/eci-use-specs"] == "4-8Gi"
    assert (manifests.size.cpu, manifests.size.surplus_cpu, manifests.size.surplus_memory) == (4000, 0, 0)
    assert any("gitlab-runner's helper" in warning for warning in manifests.warnings)


def test_secret_holds_the_run_dir_payload_and_plan() -> None:
    job = prepared(payload(variables=variables(("SKYRUNNER_IMAGE_BUILDER", "kaniko"))))
    manifests = build(job, kube())
    data = manifests.secret.stringData or {}
    items = {i["key"]: i["path"] for v in manifests.pod.to_dict()["spec"]["volumes"] if "secret" in v
             for i in v["secret"].get("items", [])}  # fmt: skip
    run_files = {items[key].removeprefix("run/"): value for key, value in data.items() if key.startswith("run.")}
    assert {k: v for k, v in run_files.items() if not k.startswith("bin/")} == job.script.files()
    assert sorted(k for k in run_files if k.startswith("bin/")) == ["bin/skyrunner-build", "bin/skyrunner-kaniko"]
    assert parse_job_spec(json.loads(data[SECRET_PAYLOAD_KEY])) == job.spec
    assert data[SECRET_PAYLOAD_KEY] == render_payload(job.spec)
    assert data[SECRET_TOKEN_KEY] == JOB_TOKEN
    assert parse_plan(data[SECRET_PLAN_KEY]) == job.plan
