"""The pod builder's choices, one rule at a time."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import ValidationError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Pod

from skyrunner.executors.kubernetes._metadata import go_duration
from skyrunner.executors.kubernetes._names import (
    is_dns_label,
    is_dns_subdomain,
    is_label_value,
    is_qualified_name,
    sanitize_label_value,
    secret_key,
)
from skyrunner.executors.kubernetes.executor import _read_patch_files
from skyrunner.executors.kubernetes.podspec import (
    BUILD,
    DEFAULT_HELPER_IMAGE,
    DEFAULT_KANIKO_IMAGE,
    KANIKO,
    PREPARE,
    billed_size,
    owned_by_pod,
    pod_names,
    runner_selector,
)
from skyrunner.platforms import Platform
from tests.unit.executors.kubernetes.podspec_support import (
    JOB_TOKEN,
    MASKED_VALUE,
    build,
    container,
    kube,
    payload,
    prepared,
    validate,
    variables,
)

REGISTRY = {"type": "registry", "url": "registry.example.com", "username": "gitlab-ci-token", "password": JOB_TOKEN}


def _env(item: dict[str, Any]) -> dict[str, str]:
    """name -> plain value, or ``secret:<key>`` for a secretKeyRef."""
    out = {}
    for entry in item.get("env", []):
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        out[entry["name"]] = f"secret:{ref['key']}" if ref else entry["value"]
    return out


def _volumes(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {volume["name"]: volume for volume in spec["volumes"]}


@pytest.mark.parametrize(
    ("token", "pod"),
    [("t3sttok3n", "runner-t3sttok3n-job-9"), ("AbC_dE-f9", "runner-abc-de-f9-job-9"), ("__", "runner-runner-job-9")],
    ids=["plain", "mixed", "nothing-left"],
)
def test_pod_names_are_deterministic_dns_names(token: str, pod: str) -> None:
    names = pod_names(9, token, "ci")
    assert names == pod_names(9, token, "ci")
    assert (names.pod, names.secret, names.pull_secret) == (pod, f"{pod}-secret", f"{pod}-pull")
    assert all(is_dns_subdomain(n) for n in (names.pod, names.secret, names.pull_secret))
    assert is_label_value(names.runner)
    assert runner_selector(token) == f"skyrunner.io/runner={names.runner},app.kubernetes.io/managed-by=skyrunner"


@pytest.mark.parametrize(
    ("name", "label", "subdomain", "qualified"),
    [
        ("build", True, True, True),
        ("a.b-c", False, True, True),
        ("Build", False, False, True),
        ("-x", False, False, False),
        ("example.com/key", False, False, True),
        ("Example.com/key", False, False, False),
        ("x" * 64, False, True, False),
    ],
)
def test_name_rules(name: str, label: bool, subdomain: bool, qualified: bool) -> None:
    assert (is_dns_label(name), is_dns_subdomain(name), is_qualified_name(name)) == (label, subdomain, qualified)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("main", "main"), ("feature/x y", "feature_x_y"), ("--a--", "a"), ("x" * 70, "x" * 63), ("é", "")],
)
def test_sanitize_label_value(value: str, expected: str) -> None:
    assert sanitize_label_value(value) == expected
    assert is_label_value(sanitize_label_value(value))


def test_secret_keys_are_valid_and_distinct() -> None:
    names = ["CI_JOB_ID", "stages/step_script.sh", "stages__x", "bad key", "bad_key", "é", "x" * 300]
    keys = [secret_key("env.", n) for n in names]
    assert keys[:2] == ["env.CI_JOB_ID", "env.stages__step_script.sh"]
    assert len(set(keys)) == len(keys)
    assert all(len(k) <= 253 and all(c.isalnum() or c in "-._" for c in k) for k in keys)


def test_variables_reach_the_phase_containers_through_the_secret_only() -> None:
    manifests = build(prepared(payload(variables=variables(("GREETING", "hello")))), kube())
    for name in (PREPARE, BUILD, "helper"):
        env = _env(container(manifests, name))
        assert env["GREETING"] == "secret:env.GREETING"
        assert env["API_KEY"] == "secret:env.API_KEY"
        assert env["SKYRUNNER_RUN_DIR"] == "/skyrunner"
    assert (manifests.secret.stringData or {})["env.GREETING"] == "hello"
    assert "SKYRUNNER_PLAN" not in _env(container(manifests, BUILD))


def test_services_get_public_variables_and_their_own_only() -> None:
    service = {"name": "postgres:16", "alias": "db", "variables": [{"key": "PGPASSWORD", "value": "$API_KEY"}]}
    manifests = build(prepared(payload(services=[service])), kube())
    env = _env(container(manifests, "svc-0"))
    assert env["PGPASSWORD"] == "secret:svc0.PGPASSWORD"
    assert env["CI_JOB_URL"] == "secret:env.CI_JOB_URL"
    assert "API_KEY" not in env and "CI_JOB_TOKEN" not in env
    assert (manifests.secret.stringData or {})["svc0.PGPASSWORD"] == MASKED_VALUE


def test_config_services_come_first() -> None:
    cfg = kube('[[services]]\nname = "docker.io/library/redis:7"\nalias = "cache"\nenvironment = ["A=1"]')
    manifests = build(prepared(payload(services=[{"name": "postgres:16", "alias": "db"}])), cfg)
    assert [container(manifests, n)["image"] for n in ("svc-0", "svc-1")] == [
        "docker.io/library/redis:7",
        "postgres:16",
    ]
    assert manifests.pod.to_dict()["spec"]["hostAliases"] == [{"ip": "127.0.0.1", "hostnames": ["cache", "db"]}]


@pytest.mark.parametrize(
    ("entrypoint", "command", "args"),
    [
        ([], ["sh", "/skyrunner/sequencer.sh", "build"], None),
        ([""], ["sh", "/skyrunner/sequencer.sh", "build"], None),
        (["/bin/entry", "--x"], ["/bin/entry", "--x"], ["sh", "/skyrunner/sequencer.sh", "build"]),
    ],
    ids=["none", "cleared", "image-entrypoint"],
)
def test_build_command_and_entrypoint(entrypoint: list[str], command: list[str], args: list[str] | None) -> None:
    body = payload(image={"name": "alpine:3.20", "entrypoint": entrypoint})
    build_container = container(build(prepared(body), kube()), BUILD)
    assert (build_container["command"], build_container.get("args")) == (command, args)
    assert build_container["workingDir"] == "/builds/t3sttok3n/0/group/app"


def test_file_variables_are_copied_by_prepare() -> None:
    pairs = [{"key": "KUBECONFIG", "value": "apiVersion: v1\n", "file": True, "public": False}]
    manifests = build(prepared(payload(variables=[*payload()["variables"], *pairs])), kube())
    prepare = container(manifests, PREPARE)
    assert prepare["command"][3:] == [PREPARE, "/skyrunner-job/files/0", "/builds/t3sttok3n/0/group/app.tmp/KUBECONFIG"]
    assert (manifests.secret.stringData or {})["file.0"] == "apiVersion: v1\n"
    assert _env(container(manifests, BUILD))["KUBECONFIG"] == "secret:env.KUBECONFIG"
    assert (manifests.secret.stringData or {})["env.KUBECONFIG"] == "/builds/t3sttok3n/0/group/app.tmp/KUBECONFIG"


def test_cache_dir_is_an_empty_dir_unless_a_volume_covers_it() -> None:
    job = prepared(payload())
    plain = _volumes(build(job, kube()).pod.to_dict()["spec"])
    assert plain["skyrunner-cache"] == {"name": "skyrunner-cache", "emptyDir": {}}
    cfg = kube('[[volumes.pvc]]\nname = "runner-cache-pvc"\nmount_path = "/cache"')
    manifests = build(job, cfg)
    assert "skyrunner-cache" not in _volumes(manifests.pod.to_dict()["spec"])
    for name in (PREPARE, BUILD, "helper"):
        mounts = {m["mountPath"]: m["name"] for m in container(manifests, name)["volumeMounts"]}
        assert mounts["/cache"] == "runner-cache-pvc"


def test_builds_dir_on_a_configured_volume() -> None:
    cfg = kube('[[volumes.empty_dir]]\nname = "builds"\nmount_path = "/builds"\nmedium = "Memory"')
    spec = build(prepared(payload()), cfg).pod.to_dict()["spec"]
    assert "skyrunner-builds" not in _volumes(spec)
    assert _volumes(spec)["builds"]["emptyDir"] == {"medium": "Memory"}


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("", DEFAULT_HELPER_IMAGE),
        (
            'helper_image = "registry.example.com/skyrunner:${CI_RUNNER_VERSION}"',
            "registry.example.com/skyrunner:0.1.0",
        ),
        ('helper_image = "gitlab/gitlab-runner-helper:x86_64-latest"', DEFAULT_HELPER_IMAGE),
    ],
    ids=["default", "expanded", "gitlab-helper-replaced"],
)
def test_helper_image(config: str, expected: str) -> None:
    manifests = build(prepared(payload()), kube(config))
    assert container(manifests, PREPARE)["image"] == container(manifests, "helper")["image"] == expected


@pytest.mark.parametrize(
    ("config", "job_policy", "expected"),
    [
        ("", [], None),
        ('pull_policy = ["if-not-present", "always"]', [], "IfNotPresent"),
        ('pull_policy = "always"', ["if-not-present"], None),
        ('pull_policy = ["always", "never"]', ["never"], "Never"),
        ('allowed_pull_policies = ["if-not-present"]', ["if-not-present"], "IfNotPresent"),
    ],
    ids=["unset", "config-list-first", "job-not-in-config", "job-in-config", "job-allowed"],
)
def test_pull_policy(config: str, job_policy: list[str], expected: str | None) -> None:
    body = payload(image={"name": "alpine:3.20", "pull_policy": job_policy})
    if expected is None and job_policy:
        with pytest.raises(Exception, match="pull_policy if-not-present is not allowed"):
            build(prepared(body), kube(config))
        return
    assert container(build(prepared(body), kube(config)), BUILD).get("imagePullPolicy") == expected


def test_image_names_are_expanded() -> None:
    body = payload(variables=variables(("IMAGE_TAG", "1.2")), image={"name": "registry.example.com/app:$IMAGE_TAG"})
    assert container(build(prepared(body), kube()), BUILD)["image"] == "registry.example.com/app:1.2"


def test_default_image_when_the_job_has_none() -> None:
    manifests = build(prepared(payload(image=None)), kube('image = "ubuntu:24.04"'))
    assert container(manifests, BUILD)["image"] == "ubuntu:24.04"


def test_kaniko_sidecar_and_skyrunner_build() -> None:
    body = payload(variables=variables(("SKYRUNNER_IMAGE_BUILDER", "kaniko")), credentials=[REGISTRY])
    manifests = build(prepared(body), kube())
    kaniko = container(manifests, KANIKO)
    assert kaniko["image"] == DEFAULT_KANIKO_IMAGE
    assert kaniko["command"] == ["sh", "/skyrunner/bin/skyrunner-kaniko"]
    assert kaniko["securityContext"]["runAsUser"] == 0 and kaniko["securityContext"]["privileged"] is False
    assert "env" not in kaniko and "resources" not in kaniko
    mounts = {m["mountPath"] for m in kaniko["volumeMounts"]}
    assert {"/builds", "/skyrunner", "/kaniko/.docker"} <= mounts
    build_container = container(manifests, BUILD)
    assert build_container["command"][:2] == ["sh", "-c"] and "/skyrunner/bin" in build_container["command"][2]
    assert _env(build_container)["SKYRUNNER_KANIKO_SHARED"].split(":")[:2] == ["/builds", "/skyrunner"]
    assert _env(container(manifests, PREPARE))["SKYRUNNER_KANIKO_DIR"] == "/skyrunner/kaniko"
    config = json.loads((manifests.secret.stringData or {})["docker-config.json"])
    auth = config["auths"]["registry.example.com"]["auth"]
    assert base64.b64decode(auth).decode() == f"gitlab-ci-token:{JOB_TOKEN}"


@pytest.mark.parametrize(
    ("config", "value", "sidecar"),
    [("", "", False), ("", "KaNiKo", True), ('[serverless]\nimage_builder = "kaniko"', "", True),
     ('[serverless]\nimage_builder = "kaniko"', "none", False)],
    ids=["off", "job", "config", "job-opts-out"],
)  # fmt: skip
def test_when_the_kaniko_sidecar_is_added(config: str, value: str, sidecar: bool) -> None:
    pairs = (("SKYRUNNER_IMAGE_BUILDER", value),) if value else ()
    manifests = build(prepared(payload(variables=variables(*pairs))), kube(config))
    names = [c["name"] for c in manifests.pod.to_dict()["spec"]["containers"]]
    assert (KANIKO in names) is sidecar


def test_kaniko_image_and_docker_auth_config_precedence() -> None:
    auth = {"auths": {"registry.example.com": {"auth": "b3duOmNyZWQ="}}}
    pairs = (("SKYRUNNER_IMAGE_BUILDER", "kaniko"), ("DOCKER_AUTH_CONFIG", json.dumps(auth)))
    cfg = kube('[serverless]\nkaniko_image = "mirror.example.com/kaniko:debug"')
    manifests = build(prepared(payload(variables=variables(*pairs), credentials=[REGISTRY])), cfg)
    assert container(manifests, KANIKO)["image"] == "mirror.example.com/kaniko:debug"
    config = json.loads((manifests.secret.stringData or {})["docker-config.json"])
    assert config == auth
    assert manifests.pull_secret is not None
    assert json.loads((manifests.pull_secret.stringData or {})[".dockerconfigjson"]) == auth


def test_no_credentials_no_pull_secret() -> None:
    manifests = build(prepared(payload()), kube())
    assert manifests.pull_secret is None
    assert "imagePullSecrets" not in manifests.pod.to_dict()["spec"]


def test_resources_on_aci_leave_the_init_container_bare() -> None:
    cfg = kube('cpu_request = "1"\nmemory_request = "2G"\nhelper_cpu_request = "250m"\nhelper_memory_request = "500M"')
    manifests = build(prepared(payload()), cfg, Platform.ACI)
    assert "resources" not in container(manifests, PREPARE)
    assert container(manifests, "helper")["resources"] == {"requests": {"cpu": "250m", "memory": "500M"}}
    assert billed_size(manifests) == manifests.size and manifests.size.platform is Platform.ACI


def test_surplus_goes_to_build_on_eci() -> None:
    cfg = kube('cpu_limit = "1500m"\nmemory_limit = "3Gi"\nhelper_cpu_limit = "250m"\nhelper_memory_limit = "512Mi"')
    manifests = build(prepared(payload()), cfg, Platform.ECI)
    assert manifests.pod.to_dict()["metadata"]["annotations"]["k8s.aliyun.com/eci-use-specs"] == "2-4Gi"
    assert container(manifests, BUILD)["resources"] == {"limits": {"cpu": "1750m", "memory": "3584Mi"}}
    assert container(manifests, "helper")["resources"] == {"limits": {"cpu": "250m", "memory": "512Mi"}}


def test_eci_annotations_and_a_fixed_spec() -> None:
    cfg = kube(
        '[pod_annotations]\n"k8s.aliyun.com/eci-use-specs" = "4-8Gi"\n'
        '[serverless]\nimage_cache = true\nextra_ephemeral_storage = "50Gi"'
    )
    annotations = build(prepared(payload()), cfg, Platform.ECI).pod.to_dict()["metadata"]["annotations"]
    assert annotations["k8s.aliyun.com/eci-use-specs"] == "4-8Gi"
    assert annotations["k8s.aliyun.com/eci-image-cache"] == "true"
    assert annotations["k8s.aliyun.com/eci-extra-ephemeral-storage"] == "50Gi"


def test_billed_size_is_none_off_serverless() -> None:
    manifests = build(prepared(payload()), kube())
    assert billed_size(manifests) is None and manifests.size.platform is Platform.NONE


def test_annotations_are_expanded_but_never_with_masked_values() -> None:
    cfg = kube('[pod_annotations]\n"example.com/job" = "$CI_JOB_NAME-$CI_PROJECT_DIR"')
    annotations = build(prepared(payload()), cfg).pod.to_dict()["metadata"]["annotations"]
    assert annotations["example.com/job"] == "test-/builds/t3sttok3n/0/group/app"
    with pytest.raises(Exception, match="uses the masked variable API_KEY"):
        build(prepared(payload()), kube('[pod_annotations]\n"example.com/key" = "$API_KEY"'))


def test_security_defaults() -> None:
    spec = build(prepared(payload()), kube()).pod.to_dict()["spec"]
    assert spec["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert spec["automountServiceAccountToken"] is False and spec["enableServiceLinks"] is False
    assert spec["restartPolicy"] == "Never" and spec["activeDeadlineSeconds"] == 3600 + 600
    for item in [*spec["initContainers"], *spec["containers"]]:
        assert item["securityContext"]["privileged"] is False
        assert item["securityContext"]["allowPrivilegeEscalation"] is False
        assert item["securityContext"]["capabilities"] == {"drop": ["NET_RAW"]}


def test_cap_add_takes_net_raw_back() -> None:
    context = container(build(prepared(payload()), kube('cap_add = ["NET_RAW", "SYS_TIME"]')), BUILD)["securityContext"]
    assert context["capabilities"] == {"add": ["NET_RAW", "SYS_TIME"]}


def test_the_stop_file_is_the_annotations_file() -> None:
    manifests = build(prepared(payload()), kube())
    volumes = _volumes(manifests.pod.to_dict()["spec"])
    items = volumes["skyrunner-pod"]["downwardAPI"]["items"]
    assert items == [{"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}}]
    assert _env(container(manifests, BUILD))["SKYRUNNER_STOP_FILE"] == "/skyrunner-pod/annotations"


def test_owned_by_pod() -> None:
    manifests = build(prepared(payload()), kube())
    created = Pod(metadata=ObjectMeta(name="runner-t3sttok3n-job-42", uid="0b5e-uid"))
    owned = owned_by_pod(manifests.secret, created)
    assert owned.metadata is not None and owned.metadata.ownerReferences is not None
    reference = owned.metadata.ownerReferences[0]
    assert (reference.kind, reference.name, reference.uid) == ("Pod", "runner-t3sttok3n-job-42", "0b5e-uid")
    assert owned.stringData == manifests.secret.stringData


def test_schema_check_refuses_what_kubernetes_1_24_lacks() -> None:
    """The 1.25 schema is what keeps post-1.24 features (a native sidecar here) out of the pod."""
    manifests = build(prepared(payload()), kube())
    validate(manifests)
    document = manifests.pod.to_dict()
    document["spec"]["initContainers"][0]["restartPolicy"] = "Always"
    sidecar = Pod.from_dict(document)
    with pytest.raises(ValidationError, match="restartPolicy"):
        validate(type(manifests)(pod=sidecar, secret=manifests.secret, pull_secret=None, size=manifests.size))


def test_config_patches_inline_and_loaded_in_config_order() -> None:
    cfg = kube(
        '[[pod_spec]]\nname = "inline"\npatch_type = "merge"\npatch = "hostname: a\\nsubdomain: x"\n'
        '[[pod_spec]]\nname = "file"\npatch_type = "merge"\npatch_path = "/etc/skyrunner/patch.yaml"'
    )
    manifests = build(prepared(payload()), cfg, patch_files={"/etc/skyrunner/patch.yaml": "subdomain: b"})
    spec = manifests.pod.to_dict()["spec"]
    assert (spec["hostname"], spec["subdomain"]) == ("a", "b")


@pytest.mark.parametrize("middle", ["inline", "file"])
def test_config_patches_of_one_name_each_apply_their_own_text(tmp_path: Path, middle: str) -> None:
    """Names need not be unique: gitlab-runner applies every pod_spec patch, in order, by its own text."""
    (tmp_path / "patch.yaml").write_text("hostname: b\nsubdomain: s")
    source = 'patch = "hostname: b\\nsubdomain: s"' if middle == "inline" else f'patch_path = "{tmp_path}/patch.yaml"'
    cfg = kube(
        '[[pod_spec]]\nname = "p"\npatch_type = "merge"\npatch = "hostname: a\\nsubdomain: x\\nschedulerName: one"\n'
        f'[[pod_spec]]\nname = "p"\npatch_type = "merge"\n{source}\n'
        '[[pod_spec]]\nname = "p"\npatch_type = "merge"\npatch = "hostname: c"\n'
    )
    # the texts as the executor reads them before it builds the pod
    spec = build(prepared(payload()), cfg, patch_files=_read_patch_files(cfg.pod_spec)).pod.to_dict()["spec"]
    assert (spec["hostname"], spec["subdomain"], spec.get("schedulerName")) == ("c", "s", "one")


def test_affinity_keeps_label_keys_and_lists() -> None:
    cfg = kube(
        "[[affinity.pod_anti_affinity.preferred_during_scheduling_ignored_during_execution]]\n"
        "weight = 10\n"
        "[affinity.pod_anti_affinity.preferred_during_scheduling_ignored_during_execution.pod_affinity_term]\n"
        'topology_key = "kubernetes.io/hostname"\n'
        "[affinity.pod_anti_affinity.preferred_during_scheduling_ignored_during_execution.pod_affinity_term"
        ".label_selector.match_labels]\n"
        '"skyrunner.io/job_kind" = "heavy"\n'
    )
    affinity = build(prepared(payload()), cfg).pod.to_dict()["spec"]["affinity"]
    term = affinity["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["weight"] == 10
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == {"skyrunner.io/job_kind": "heavy"}


def test_container_seccomp_profile_and_glob_and_dollars() -> None:
    cfg = kube(
        'allowed_images = ["alpine:3.2?"]\n[build_container_security_context]\nseccomp_profile_type = "Localhost"\n'
        'seccomp_localhost_profile = "profiles/ci.json"\n[pod_annotations]\n"example.com/cost" = "$$5"'
    )
    manifests = build(prepared(payload(services=[{"name": " "}])), cfg)
    assert container(manifests, BUILD)["securityContext"]["seccompProfile"] == {
        "type": "Localhost",
        "localhostProfile": "profiles/ci.json",
    }
    assert manifests.pod.to_dict()["metadata"]["annotations"]["example.com/cost"] == "$5"
    assert [c["name"] for c in manifests.pod.to_dict()["spec"]["containers"]] == [BUILD, "helper"]


@pytest.mark.parametrize(("seconds", "text"), [(3600, "1h0m0s"), (5400, "1h30m0s"), (125, "2m5s"), (30, "30s")])
def test_go_duration(seconds: int, text: str) -> None:
    assert go_duration(seconds) == text
