"""What the pod builder refuses, in one ConfigError, and what it only warns about."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from skyrunner.config import PatchType, PodSpecPatch
from skyrunner.errors import ConfigError
from skyrunner.executors.kubernetes.podspec import resolve_namespace
from skyrunner.platforms import Platform
from tests.unit.executors.kubernetes.podspec_support import (
    JOB_TOKEN,
    MASKED_VALUE,
    build,
    kube,
    payload,
    prepared,
    variables,
)


@dataclass(frozen=True)
class Case:
    id: str
    expected: str
    config: str = ""
    variables: tuple[tuple[str, str], ...] = ()
    masked: tuple[str, ...] = ()
    body: dict[str, Any] = field(default_factory=dict)
    platform: Platform = Platform.NONE
    patches: tuple[PodSpecPatch, ...] = ()


def _patch(kind: PatchType, text: str, name: str = "p") -> PodSpecPatch:
    return PodSpecPatch(name=name, patch_type=kind, patch=text)


ERRORS = [
    Case("overwrite-above-cap", 'KUBERNETES_CPU_LIMIT "8" is above cpu_limit_overwrite_max_allowed "4"',
         'cpu_limit_overwrite_max_allowed = "4"', (("KUBERNETES_CPU_LIMIT", "8"),)),
    Case("helper-overwrite-above-cap",
         'KUBERNETES_HELPER_MEMORY_REQUEST "2Gi" is above helper_memory_request_overwrite_max_allowed "1Gi"',
         'helper_memory_request_overwrite_max_allowed = "1Gi"', (("KUBERNETES_HELPER_MEMORY_REQUEST", "2Gi"),)),
    Case("service-overwrite-above-cap",
         'KUBERNETES_SERVICE_EPHEMERAL_STORAGE_LIMIT "20Gi" is above '
         'service_ephemeral_storage_limit_overwrite_max_allowed "10Gi"',
         'service_ephemeral_storage_limit_overwrite_max_allowed = "10Gi"',
         (("KUBERNETES_SERVICE_EPHEMERAL_STORAGE_LIMIT", "20Gi"),)),
    Case("bad-config-quantity", '[runners.kubernetes] cpu_limit: "2x" is not a CPU quantity', 'cpu_limit = "2x"'),
    Case("bad-cap", '[runners.kubernetes] memory_limit_overwrite_max_allowed: "big" is not a memory quantity',
         'memory_limit_overwrite_max_allowed = "big"', (("KUBERNETES_MEMORY_LIMIT", "1Gi"),)),
    Case("bad-overwrite", 'KUBERNETES_MEMORY_LIMIT: "lots" is not a memory quantity',
         'memory_limit_overwrite_max_allowed = "4Gi"', (("KUBERNETES_MEMORY_LIMIT", "lots"),)),
    Case("request-above-limit", "container build: cpu request 2 is above its limit 1",
         'cpu_request = "2"\ncpu_limit = "1"'),
    Case("masked-overwrite", "KUBERNETES_POD_ANNOTATIONS_X is masked",
         'pod_annotations_overwrite_allowed = ".*"', (("KUBERNETES_POD_ANNOTATIONS_X", "a.example.com/b=c"),),
         masked=("KUBERNETES_POD_ANNOTATIONS_X",)),
    Case("annotation-not-key-value", 'KUBERNETES_POD_ANNOTATIONS_1 "justtext" is not key=value',
         'pod_annotations_overwrite_allowed = ".*"', (("KUBERNETES_POD_ANNOTATIONS_1", "justtext"),)),
    Case("annotation-not-allowed", "does not match pod_annotations_overwrite_allowed",
         'pod_annotations_overwrite_allowed = "^team/"', (("KUBERNETES_POD_ANNOTATIONS_1", "other/x=y"),)),
    Case("service-account-not-allowed", 'KUBERNETES_SERVICE_ACCOUNT_OVERWRITE "admin" does not match',
         'service_account_overwrite_allowed = "^ci-"', (("KUBERNETES_SERVICE_ACCOUNT_OVERWRITE", "admin"),)),
    Case("bad-regex", "service_account_overwrite_allowed: '(' is not a regular expression",
         'service_account_overwrite_allowed = "("', (("KUBERNETES_SERVICE_ACCOUNT_OVERWRITE", "x"),)),
    Case("label-key", "[runners.kubernetes] pod_labels: 'bad key' is not a valid label key",
         '[pod_labels]\n"bad key" = "x"'),
    Case("own-label", "pod_labels: skyrunner.io/job-id is skyrunner's own label",
         '[pod_labels]\n"skyrunner.io/job-id" = "1"'),
    Case("node-selector-value", "node_selector: disk='not valid!' is not a valid label value",
         '[node_selector]\ndisk = "not valid!"'),
    Case("annotation-key", "'-bad' is not a valid annotation key", '[pod_annotations]\n"-bad" = "x"'),
    Case("volume-name", "volumes.pvc 'Cache_PVC'", '[[volumes.pvc]]\nname = "Cache_PVC"\nmount_path = "/cache"'),
    Case("volume-twice", "volumes: more than one volume is named data",
         '[[volumes.empty_dir]]\nname = "data"\nmount_path = "/a"\n[[volumes.pvc]]\nname = "data"\nmount_path = "/b"'),
    Case("relative-mount", "mount_path 'cache' is not an absolute path",
         '[[volumes.empty_dir]]\nname = "c"\nmount_path = "cache"'),
    Case("mount-twice", "volumes: two volumes are mounted at /data",
         '[[volumes.empty_dir]]\nname = "a"\nmount_path = "/data"\n[[volumes.empty_dir]]\nname = "b"\n'
         'mount_path = "/data/"'),
    Case("size-limit", 'size_limit: "huge" is not a memory quantity',
         '[[volumes.empty_dir]]\nname = "a"\nmount_path = "/a"\nsize_limit = "huge"'),
    Case("privileged-on-eci", "platform eci does not run privileged containers", "privileged = true",
         platform=Platform.ECI),
    Case("host-path-on-fargate", "platform fargate does not run hostPath volumes",
         '[[volumes.host_path]]\nname = "docker"\nmount_path = "/var/run/docker.sock"', platform=Platform.FARGATE),
    Case("too-large-for-eci", "platform eci: pod needs 100 vCPU", 'cpu_request = "100"', platform=Platform.ECI),
    Case("dns-none-without-servers", 'dns_policy = "none" needs dns_config.nameservers', 'dns_policy = "none"'),
    Case("nameserver-not-ip", "dns_config.nameservers: 'dns.example.com' is not an IP address",
         '[dns_config]\nnameservers = ["dns.example.com"]'),
    Case("too-many-nameservers", "dns_config.nameservers: 4 given, a pod takes 3",
         '[dns_config]\nnameservers = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]'),
    Case("too-many-searches", "dns_config.searches: a pod takes 6 domains",
         '[dns_config]\nnameservers = ["10.0.0.1"]\nsearches = ["a", "b", "c", "d", "e", "f", "g"]'),
    Case("search-name", "dns_config.searches: 'bad_domain' is not a DNS name",
         '[dns_config]\nsearches = ["bad_domain"]'),
    Case("host-alias-name", "host_aliases 10.0.0.1: 'Bad_Name' is not a DNS name",
         '[[host_aliases]]\nip = "10.0.0.1"\nhostnames = ["Bad_Name"]'),
    Case("host-alias-ip", "host_aliases: 'gitlab' is not an IP address",
         '[[host_aliases]]\nip = "gitlab"\nhostnames = ["gitlab.example.com"]'),
    Case("taint-key", "node_tolerations: '-bad' is not a valid taint key", '[node_tolerations]\n"-bad" = "NoSchedule"'),
    Case("extra-storage", 'serverless.extra_ephemeral_storage: "lots" is not a memory quantity',
         '[serverless]\nextra_ephemeral_storage = "lots"', platform=Platform.ECI),
    Case("container-renamed", "container name 'Build2' is not a DNS-1123 label",
         patches=(_patch(PatchType.STRATEGIC, "containers:\n- name: Build2\n  image: x\n"),)),
    Case("patch-not-a-spec", "a merge patch is a map of PodSpec fields", patches=(_patch(PatchType.MERGE, "- 1"),)),
    Case("patch-leaves-no-spec", "the patch does not leave a PodSpec",
         patches=(_patch(PatchType.JSON, '[{"op": "replace", "path": "", "value": [1]}]'),)),
    Case("service-alias", "service alias 'My_DB' is not a valid DNS name",
         body={"services": [{"name": "postgres:16", "alias": "My_DB"}]}),
    Case("no-image", "the job has no image and [runners.kubernetes] image is not set", body={"image": None}),
    Case("image-not-allowed", "image ubuntu:24.04 is not allowed by [runners.kubernetes] allowed_images",
         'allowed_images = ["alpine:*", "registry.example.com/**"]', body={"image": {"name": "ubuntu:24.04"}}),
    Case("service-not-allowed", "image mysql:8 is not allowed by [runners.kubernetes] allowed_services",
         'allowed_services = ["postgres:*"]', body={"services": [{"name": "mysql:8"}]}),
    Case("pull-policy-not-allowed", "image alpine:3.20: pull_policy never is not allowed",
         'allowed_pull_policies = ["always"]', body={"image": {"name": "alpine:3.20", "pull_policy": ["never"]}}),
    Case("pull-policy-unknown", "pull_policy 'sometimes' is not always, never or if-not-present",
         body={"image": {"name": "alpine:3.20", "pull_policy": ["sometimes"]}}),
    Case("image-builder", 'SKYRUNNER_IMAGE_BUILDER "docker" is not none or kaniko', "",
         (("SKYRUNNER_IMAGE_BUILDER", "docker"),)),
    Case("masked-in-image", "image uses the masked variable API_KEY",
         body={"image": {"name": "registry.example.com/$API_KEY/app:1"}}),
    Case("privileged-without-escalation", "a privileged container cannot have allow_privilege_escalation = false",
         "[build_container_security_context]\nprivileged = true\nallow_privilege_escalation = false"),
    Case("seccomp-localhost", "seccomp_profile_type Localhost needs seccomp_localhost_profile",
         '[pod_security_context]\nseccomp_profile_type = "Localhost"'),
    Case("toleration-effect", "node_tolerations 'ci': 'Sometimes' is not one of",
         '[node_tolerations]\nci = "Sometimes"'),
    Case("affinity-key", "affinity: unknown key nodeAffinity.preferredSometimes",
         "[affinity.node_affinity]\npreferred_sometimes = 1"),
    Case("object-name", "priority_class_name: 'Low Priority' is not a Kubernetes object name",
         'priority_class_name = "Low Priority"'),
    Case("patch-yaml", 'pod_spec "p": not YAML or JSON', patches=(_patch(PatchType.MERGE, "a: [b"),)),
    Case("patch-json-op", 'pod_spec "p": operation 0 (remove /nodeName)',
         patches=(_patch(PatchType.JSON, '[{"op": "remove", "path": "/nodeName"}]'),)),
    Case("patch-json-shape", "a json patch is a list of operations", patches=(_patch(PatchType.JSON, "a: 1"),)),
    Case("patch-unknown-field", "unknown PodSpec field containers[0].bogus",
         patches=(_patch(PatchType.STRATEGIC, "containers:\n- name: build\n  bogus: 1\n"),)),
    Case("patch-removes-helper", "the pod has no helper container left",
         patches=(_patch(PatchType.STRATEGIC, "containers:\n- name: helper\n  $patch: delete\n"),)),
    Case("patch-path-not-loaded", 'pod_spec "from-file": patch_path /etc/patch.yaml was not loaded',
         '[[pod_spec]]\nname = "from-file"\npatch_path = "/etc/patch.yaml"'),
]  # fmt: skip


def _build(case: Case) -> Any:
    body = payload(variables=variables(*case.variables, masked=case.masked), **case.body)
    return build(prepared(body), kube(case.config), case.platform, patches=case.patches)


@pytest.mark.parametrize("case", ERRORS, ids=[c.id for c in ERRORS])
def test_refused(case: Case) -> None:
    with pytest.raises(ConfigError) as caught:
        _build(case)
    message = str(caught.value)
    assert message.startswith("job 42: cannot build its pod: ")
    assert case.expected in message
    assert "\n" not in message
    assert MASKED_VALUE not in message and JOB_TOKEN not in message


def test_every_problem_is_reported_at_once() -> None:
    case = Case("many", "", 'cpu_limit = "2x"\ndns_policy = "none"\n[pod_labels]\n"bad key" = "x"',
                body={"image": None})  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        _build(case)
    parts = str(caught.value).split(": ", 2)[2].split("; ")
    assert len(parts) == 4
    assert all(any(text in p for p in parts) for text in ("cpu_limit", "dns_policy", "bad key", "no image"))


def test_a_large_job_does_not_fit_in_a_secret() -> None:
    body = payload(steps=[{"name": "script", "script": ["echo " + "x" * 1_100_000]}])
    with pytest.raises(ConfigError, match="more than a Kubernetes Secret holds"):
        build(prepared(body), kube())


@pytest.mark.parametrize(
    ("config", "pairs", "warning"),
    [
        ("", (("KUBERNETES_CPU_LIMIT", "2"),),
         "KUBERNETES_CPU_LIMIT is ignored: [runners.kubernetes] cpu_limit_overwrite_max_allowed is not set"),
        ("", (("KUBERNETES_SERVICE_ACCOUNT_OVERWRITE", "x"),),
         "KUBERNETES_SERVICE_ACCOUNT_OVERWRITE is ignored: [runners.kubernetes] service_account_overwrite_allowed"),
        ("", (("KUBERNETES_POD_LABELS_1", "a=b"), ("KUBERNETES_POD_LABELS_2", "c=d")),
         "KUBERNETES_POD_LABELS_1, KUBERNETES_POD_LABELS_2 ignored: [runners.kubernetes] pod_labels_overwrite"),
        ("", (("DOCKER_AUTH_CONFIG", "{not json"),), 'DOCKER_AUTH_CONFIG is ignored: it is not JSON with an "auths"'),
        ("[serverless]\nimage_cache = true", (), "image_cache and extra_ephemeral_storage apply on eci only"),
        ("", (("1ST_VARIABLE", "x"),), "variable '1ST_VARIABLE' is not passed to the pod"),
        ('helper_image = "gitlab/gitlab-runner-helper:x86_64-v17.0.0"', (), "is gitlab-runner's helper"),
    ],
    ids=["resource-cap", "service-account", "labels", "docker-auth", "image-cache", "env-name", "helper-image"],
)  # fmt: skip
def test_warned(config: str, pairs: tuple[tuple[str, str], ...], warning: str) -> None:
    manifests = build(prepared(payload(variables=variables(*pairs))), kube(config))
    assert any(warning in line for line in manifests.warnings), manifests.warnings


@pytest.mark.parametrize(
    ("config", "pairs", "expected"),
    [
        ("", (), "default"),
        ('namespace = "ci"', (("KUBERNETES_NAMESPACE_OVERWRITE", "ci-team"),), "ci"),
        ('namespace = "ci"\nnamespace_overwrite_allowed = "^ci-"', (("KUBERNETES_NAMESPACE_OVERWRITE", "ci-team"),),
         "ci-team"),
        ('namespace = "ci"\nnamespace_overwrite_allowed = "^ci-"', (), "ci"),
    ],
    ids=["default", "not-allowed", "allowed", "not-asked"],
)  # fmt: skip
def test_resolve_namespace(config: str, pairs: tuple[tuple[str, str], ...], expected: str) -> None:
    job = prepared(payload(variables=variables(*pairs)))
    assert resolve_namespace(kube(config), job.variables) == expected


@pytest.mark.parametrize(
    ("config", "overwrite", "expected"),
    [
        ('namespace_overwrite_allowed = "^ci-"', "prod", 'KUBERNETES_NAMESPACE_OVERWRITE "prod" does not match'),
        ('namespace_overwrite_allowed = ".*"', "Not_A_Namespace", "namespace 'Not_A_Namespace' is not a DNS-1123"),
    ],
    ids=["not-matching", "not-a-name"],
)
def test_resolve_namespace_refuses(config: str, overwrite: str, expected: str) -> None:
    job = prepared(payload(variables=variables(("KUBERNETES_NAMESPACE_OVERWRITE", overwrite))))
    with pytest.raises(ConfigError, match=expected):
        resolve_namespace(kube(config), job.variables)


def test_names_given_by_the_runtime_are_checked_too() -> None:
    from skyrunner.executors.kubernetes.podspec import PodNames, build_pod
    from tests.unit.executors.kubernetes.podspec_support import TABLE

    names = PodNames(pod="Pod_1", secret="s", pull_secret="p", namespace="Not.A.Label")
    with pytest.raises(ConfigError) as caught:
        build_pod(prepared(payload()), kube(), names=names, platform=Platform.NONE, table=TABLE)
    assert "pod name 'Pod_1' is not a DNS-1123 subdomain" in str(caught.value)
    assert "namespace 'Not.A.Label' is not a DNS-1123 label" in str(caught.value)
