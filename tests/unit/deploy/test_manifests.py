"""The rendered manifests: order, schema, labels, least privilege, the token's one home, the pod."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skyrunner.config import render_config
from skyrunner.deploy import DeployValues, Manifest, build_runner_config, render_manifests, render_yaml
from skyrunner.deploy.layout import LABEL_INSTANCE, LABEL_MANAGED_BY, MAX_NAME_LENGTH
from skyrunner.errors import ConfigError
from tests.unit.deploy.inputs import (
    TOKEN,
    credentials,
    reference_config,
    reference_manifests,
    render,
    validate_strict,
    values,
)

CACHE = {"nfs_server": "abcde.cn-shanghai.nas.example.choerodon.io", "nfs_path": "/cache"}
SCENARIOS: dict[str, tuple[DeployValues, bool, bool]] = {
    # name: (values, with the reference config as template, with external credentials)
    "minimal": (values(), False, False),
    "cache-eci": (values(platform="eci", cache=CACHE, shutdown_timeout=3600), False, False),
    "auto": (values(platform="auto", labels={"team": "ci"}), False, False),
    "external": (values(platform="eci"), False, True),
    "reference": (values(namespace="default", platform="eci", cache=CACHE), True, True),
}
BASE_KINDS = ["Namespace", "ServiceAccount", "Role", "RoleBinding"]
TAIL_KINDS = ["Secret", "ConfigMap", "Deployment"]
CACHE_KINDS = ["PersistentVolume", "PersistentVolumeClaim"]


def scenario(name: str) -> list[Manifest]:
    deploy_values, with_template, with_credentials = SCENARIOS[name]
    return render(
        deploy_values, reference_config() if with_template else None, credentials() if with_credentials else None
    )


def by_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    (found,) = [m for m in by_kind(manifests, kind) if name is None or m["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize(
    ("name", "kinds"),
    [
        ("minimal", [*BASE_KINDS, *TAIL_KINDS]),
        ("cache-eci", [*BASE_KINDS, *CACHE_KINDS, *TAIL_KINDS]),
        ("auto", [*BASE_KINDS, "ClusterRole", "ClusterRoleBinding", *TAIL_KINDS]),
        ("external", ["Namespace", "ServiceAccount", "Secret", "Secret", "ConfigMap", "Deployment"]),
        ("reference", ["Namespace", "ServiceAccount", *CACHE_KINDS, "Secret", "Secret", "ConfigMap", "Deployment"]),
    ],
    ids=["minimal", "cache-eci", "auto", "external", "reference"],
)
def test_manifests_come_in_apply_order(name: str, kinds: list[str]) -> None:
    assert [m["kind"] for m in scenario(name)] == kinds


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_manifest_validates_strictly_against_the_openapi_schema(name: str) -> None:
    for manifest in scenario(name):
        validate_strict(manifest)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_rendering_is_stable(name: str) -> None:
    assert render_yaml(scenario(name)) == render_yaml(scenario(name))


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_object_carries_the_instance_labels(name: str) -> None:
    namespace = SCENARIOS[name][0].namespace
    for manifest in scenario(name):
        meta = manifest["metadata"]
        assert meta["labels"][LABEL_MANAGED_BY] == "skyrunner" and meta["labels"][LABEL_INSTANCE] == "skyrunner"
        cluster_scoped = manifest["kind"] in ("Namespace", "PersistentVolume", "ClusterRole", "ClusterRoleBinding")
        assert meta.get("namespace") == (None if cluster_scoped else namespace), manifest["kind"]
    deployment = one(scenario(name), "Deployment")
    assert deployment["spec"]["template"]["metadata"]["labels"] == deployment["metadata"]["labels"]


def test_extra_labels_are_on_every_object() -> None:
    assert all(m["metadata"]["labels"]["team"] == "ci" for m in scenario("auto"))


def test_the_role_grants_what_the_executor_uses_in_its_namespace_and_no_more() -> None:
    manifests = scenario("minimal")

    role = one(manifests, "Role")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get", "list", "watch", "delete", "patch"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "get", "delete", "patch", "list"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["list", "watch"]},
    ]
    binding = one(manifests, "RoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "skyrunner"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "skyrunner", "namespace": "ci"}]
    assert not by_kind(manifests, "ClusterRole")


def test_platform_auto_may_read_nodes_and_nothing_else_cluster_wide() -> None:
    manifests = scenario("auto")

    assert one(manifests, "ClusterRole")["rules"] == [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]}
    ]
    binding = one(manifests, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == one(manifests, "ClusterRole")["metadata"]["name"] == "ci-skyrunner-nodes"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "skyrunner", "namespace": "ci"}]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_token_lives_in_its_secret_and_nowhere_else(name: str) -> None:
    manifests = scenario(name)

    secret = one(manifests, "Secret", "skyrunner-token")
    assert base64.b64decode(secret["data"]["token"]).decode() == TOKEN
    assert TOKEN not in render_yaml(manifests)
    encoded = secret["data"]["token"]
    assert [m["kind"] for m in manifests if encoded in yaml.safe_dump(m)] == ["Secret"]
    config_toml = one(manifests, "ConfigMap")["data"]["config.toml"]
    assert (
        'token = "from-token_file"' in config_toml and 'token_file = "/var/run/secrets/skyrunner/token"' in config_toml
    )


def test_the_deployment_runs_one_locked_down_runner_that_stops_gracefully() -> None:
    deployment = one(scenario("cache-eci"), "Deployment")

    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert (spec["replicas"], spec["strategy"]) == (1, {"type": "Recreate"})
    assert container["args"] == ["run", "--config", "/etc/skyrunner/config.toml", "--listen-address", ":9252",
                                 "--working-directory", "/builds", "--sigterm", "graceful"]  # fmt: skip
    assert pod["terminationGracePeriodSeconds"] == 2 * 3600 + 15, "two shutdown_timeouts and a margin"
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "metrics"}
    assert container["ports"] == [{"name": "metrics", "containerPort": 9252, "protocol": "TCP"}]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}  # fmt: skip
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["config"] == {"name": "config", "mountPath": "/etc/skyrunner", "readOnly": True}
    assert mounts["token"] == {"name": "token", "mountPath": "/var/run/secrets/skyrunner", "readOnly": True}
    assert {m["mountPath"] for m in mounts.values() if not m.get("readOnly")} == {"/tmp", "/builds"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["tmp"] == {"name": "tmp", "emptyDir": {}} and volumes["builds"] == {"name": "builds", "emptyDir": {}}
    assert volumes["token"]["secret"] == {"secretName": "skyrunner-token", "defaultMode": 0o440}
    assert container["resources"] == {"requests": {"cpu": "250m", "memory": "512Mi"},
                                      "limits": {"cpu": "250m", "memory": "512Mi"}}  # fmt: skip
    assert pod["serviceAccountName"] == "skyrunner" and pod["automountServiceAccountToken"] is True
    assert TOKEN[:8] not in str(deployment)


def test_a_new_token_restarts_the_runner_and_nothing_else_changes() -> None:
    first = one(render(values()), "Deployment")
    second = one(render(values(token="glrt-another-token")), "Deployment")

    key = "skyrunner.io/token-sha256"
    assert (
        first["spec"]["template"]["metadata"]["annotations"][key]
        != second["spec"]["template"]["metadata"]["annotations"][key]
    )
    first["spec"]["template"]["metadata"].pop("annotations")
    second["spec"]["template"]["metadata"].pop("annotations")
    assert first == second


def test_external_credentials_replace_the_service_account_token() -> None:
    manifests = scenario("external")

    assert not by_kind(manifests, "Role") and not by_kind(manifests, "RoleBinding")
    secret = one(manifests, "Secret", "skyrunner-kubeconfig")
    assert secret["type"] == "kubernetes.io/tls"
    assert {key: base64.b64decode(value) for key, value in secret["data"].items()} == {
        "ca.crt": credentials().ca_pem, "tls.crt": credentials().cert_pem, "tls.key": credentials().key_pem,
    }  # fmt: skip
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    auto = render(values(platform="auto"), None, credentials())
    assert not by_kind(auto, "ClusterRole"), "jobs in another cluster: this cluster's nodes do not matter"
    assert {"name": "kube", "mountPath": "/etc/skyrunner-kube", "readOnly": True} in pod["containers"][0][
        "volumeMounts"
    ]


def test_the_reference_scenario_matches_the_hand_written_manifests_where_it_should() -> None:
    reference = reference_manifests()
    manifests = scenario("reference")

    volume, claim = one(manifests, "PersistentVolume"), one(manifests, "PersistentVolumeClaim")
    for key in ("accessModes", "capacity", "mountOptions", "nfs"):
        assert volume["spec"][key] == reference["PersistentVolume"]["spec"][key], key
    for key in ("accessModes", "resources"):
        assert claim["spec"][key] == reference["PersistentVolumeClaim"]["spec"][key], key
    assert claim["spec"]["volumeName"] == volume["metadata"]["name"]
    assert volume["spec"]["claimRef"] == {"namespace": "default", "name": claim["metadata"]["name"]}
    assert volume["spec"]["storageClassName"] == claim["spec"]["storageClassName"] == ""
    kube_secret = one(manifests, "Secret", "skyrunner-kubeconfig")
    assert kube_secret["type"] == reference["Secret"]["type"]
    assert sorted(kube_secret["data"]) == sorted(reference["Secret"]["data"])
    config_toml = one(manifests, "ConfigMap")["data"]["config.toml"]
    assert 'key_file = "/etc/skyrunner-kube/tls.key"' in config_toml, "the reference pointed key_file at the cert"
    assert 'name = "skyrunner-cache"\n        mount_path = "/cache"' in config_toml
    assert "**********" not in config_toml and TOKEN not in config_toml
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    assert all(
        m.get("readOnly") for m in pod["containers"][0]["volumeMounts"] if m["name"] != "tmp" and m["name"] != "builds"
    )


def test_render_yaml_is_one_stream_that_reads_back_with_config_toml_as_a_block() -> None:
    manifests = scenario("cache-eci")

    text = render_yaml(manifests)

    assert list(yaml.safe_load_all(text)) == manifests
    assert text.startswith("---\napiVersion: v1\nkind: Namespace\n")
    assert text.count("\n---\n") == len(manifests) - 1
    assert "  config.toml: |\n    concurrent = 1\n" in text


def config_toml(deploy_values: DeployValues) -> str:
    return render_config(build_runner_config(deploy_values).config)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("token-in-config", "config.toml (ConfigMap): the runner token must stay out of the ConfigMap"),
        ("no-token", "token: no runner token for the Secret (register first)"),
        ("bad-labels", "Namespace 'ci': label key 'bad key' is not valid"),
        ("no-credentials", "kubeconfig_secret: the credentials were not read"),
        ("two-runners", "config.toml (ConfigMap): expected one [[runners]] entry, found 0"),
    ],
    ids=["token-in-config", "no-token", "bad-labels", "no-credentials", "two-runners"],
)
def test_what_the_renderer_refuses(case: str, message: str) -> None:
    deploy_values = values()
    text = config_toml(deploy_values)
    match case:
        case "token-in-config":
            text = text.replace('token = "from-token_file"', f'token = "{TOKEN}"')
        case "no-token":
            deploy_values = values(token=None, registration_token="GR1348941x")
        case "bad-labels":
            deploy_values = values(labels={"bad key": "x"})
        case "no-credentials":
            deploy_values = values(kubeconfig_secret="/k")
        case "two-runners":
            text = "concurrent = 1\n"

    with pytest.raises(ConfigError) as caught:
        render_manifests(deploy_values, text)

    assert str(caught.value).startswith(message)
    assert TOKEN not in str(caught.value)


def test_every_bad_name_or_label_is_reported_at_once() -> None:
    deploy_values = values(labels={"bad key": "x"})

    with pytest.raises(ConfigError) as caught:
        render_manifests(deploy_values, config_toml(deploy_values))

    assert str(caught.value).count("label key 'bad key' is not valid") == 7 + 1, (
        "each of 7 objects, and the pod template"
    )


names = st.from_regex(rf"[a-z0-9]([-a-z0-9]{{0,{MAX_NAME_LENGTH - 2}}}[a-z0-9])?", fullmatch=True)
namespaces = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=names, namespace=namespaces, platform=st.sampled_from(["none", "auto", "eci"]), cache=st.booleans())
def test_any_valid_instance_renders_valid_objects(name: str, namespace: str, platform: str, cache: bool) -> None:
    changes: dict[str, Any] = {"name": name, "namespace": namespace, "platform": platform}
    if cache:
        changes["cache"] = CACHE

    for manifest in render(values(**changes)):
        validate_strict(manifest)
