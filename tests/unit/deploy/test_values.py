"""The values file and the flags over it: defaults, paths, and one-line errors naming the key."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest
from pydantic import SecretStr

from skyrunner.config import ServerlessPlatform
from skyrunner.deploy import DeployValues, ImagePullPolicy, load_values, merge_flags, parse_values
from skyrunner.deploy.values import DEFAULT_NFS_MOUNT_OPTIONS
from skyrunner.errors import ConfigError

BASE = PurePosixPath("/srv/deploy")


def test_an_empty_file_gives_the_defaults() -> None:
    values = parse_values("", "values.yaml", BASE)

    assert values == DeployValues()
    assert (values.name, values.namespace, values.image_pull_policy) == (
        "skyrunner",
        "skyrunner",
        ImagePullPolicy.IF_NOT_PRESENT,
    )
    assert (values.resources.requests.cpu, values.resources.limits.memory) == ("250m", "512Mi")
    assert values.cache is None


def test_a_full_file_is_read_with_paths_from_its_directory() -> None:
    text = """
name: runner-a
namespace: ci
image: registry.example.com/skyrunner:1.0
image_pull_policy: Always
url: https://gitlab.example.com
token: glrt-secret-token
config: configs/config.toml
platform: eci
concurrent: 10
shutdown_timeout: 3600
resources: {requests: {cpu: 500m, memory: 1Gi}, limits: {cpu: "1", memory: 1Gi}}
cache: {nfs_server: nas.example.com, nfs_path: /cache, size: 200Gi}
kubeconfig_secret: /etc/admin.kubeconfig
labels: {team: ci}
"""
    values = parse_values(text, "values.yaml", BASE)

    assert values.config == "/srv/deploy/configs/config.toml"
    assert values.kubeconfig_secret == "/etc/admin.kubeconfig", "absolute paths stay"
    assert values.platform is ServerlessPlatform.ECI and values.image_pull_policy is ImagePullPolicy.ALWAYS
    assert values.cache is not None and values.cache.mount_options == DEFAULT_NFS_MOUNT_OPTIONS
    assert (values.cache.nfs_server, values.cache.size, values.cache.mount_path) == (
        "nas.example.com",
        "200Gi",
        "/cache",
    )
    assert values.resources.limits.cpu == "1"
    assert values.token is not None and "glrt-secret-token" not in repr(values)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("namespce: ci\n", "values.yaml: namespce: extra inputs are not permitted"),
        ("concurrent: ten\n", "values.yaml: concurrent: input should be a valid integer"),
        ("concurrent: 0\n", "values.yaml: concurrent: input should be greater than or equal to 1"),
        ("cache: {nfs_server: nas, size: 1}\n", "values.yaml: cache.size: input should be a valid string"),
        ("platform: gke\n", "values.yaml: platform: input should be 'eci', 'fargate', 'autopilot', 'aci', 'none' or 'auto'"),
        ("name: ''\nimage: ''\n", "values.yaml: name: string should have at least 1 character (and 1 more problem)"),
        ("- a\n- b\n", "values.yaml: expected a mapping of values at the top level"),
        ("name: [unclosed\n", "values.yaml:2: invalid YAML: expected ',' or ']', but got '<stream end>'"),
    ],
    ids=["unknown-key", "wrong-type", "too-small", "nested", "enum", "counted", "not-a-mapping", "yaml-syntax"],
)  # fmt: skip
def test_a_bad_file_is_one_line_naming_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_values(text, "values.yaml", BASE)

    assert str(caught.value) == message


def test_a_wrong_token_type_does_not_quote_the_value() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_values("token: [glrt-leaked-value]\n", "values.yaml", BASE)

    assert "glrt-leaked-value" not in str(caught.value)
    assert str(caught.value).startswith("values.yaml: token: ")


def test_flags_win_and_the_nfs_flags_go_into_the_cache() -> None:
    values = parse_values("namespace: from-file\nimage: file-image\ncache: {nfs_server: old, size: 5Gi}\n", "v", BASE)

    merged = merge_flags(
        values,
        {"namespace": "from-flag", "image": None, "nfs_server": "nas.example.com", "nfs_path": "/cache",
         "token": SecretStr("glrt-x")},
    )  # fmt: skip

    assert (merged.namespace, merged.image) == ("from-flag", "file-image")
    assert merged.cache is not None
    assert (merged.cache.nfs_server, merged.cache.nfs_path, merged.cache.size) == ("nas.example.com", "/cache", "5Gi")
    assert merged.token is not None and merged.token.get_secret_value() == "glrt-x"


def test_an_nfs_path_alone_still_asks_for_a_cache() -> None:
    merged = merge_flags(DeployValues(), {"nfs_path": "/cache"})

    assert merged.cache is not None and merged.cache.nfs_server is None


def test_load_values_reads_the_file_and_names_a_missing_one(tmp_path: Path) -> None:
    path = tmp_path / "values.yaml"
    path.write_text("config: config.toml\n", encoding="utf-8")

    assert load_values(path).config == str(tmp_path / "config.toml")
    with pytest.raises(ConfigError, match=r"^/.*/nothing.yaml: no such file$"):
        load_values(tmp_path / "nothing.yaml")
