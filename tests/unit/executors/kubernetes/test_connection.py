"""Choosing the Kubernetes credentials: host, in-cluster service account, kubeconfig."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from skyrunner.config import KubernetesConfig
from skyrunner.errors import ConfigError
from skyrunner.executors.kubernetes.connection import connect, describe_source
from tests.fakes.kubeapi.tls import TlsFiles, make_tls


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls(tmp_path_factory.mktemp("tls"))


def test_the_reference_deployments_key_file_is_refused_naming_both_keys(tls: TlsFiles) -> None:
    cfg = KubernetesConfig(host="https://k8s:6443", cert_file=str(tls.cert_file), key_file=str(tls.cert_file))
    with pytest.raises(ConfigError) as caught:
        connect(cfg, environ={})
    message = str(caught.value)
    assert "key_file" in message and "cert_file" in message and str(tls.cert_file) in message


@pytest.mark.parametrize(
    ("settings", "wanted"),
    [
        ({"ca_file": "/nonexistent/ca.pem"}, "kubernetes ca_file: /nonexistent/ca.pem does not exist"),
        ({"cert_file": "CERT"}, "kubernetes cert_file and key_file must be set together"),
        ({"cert_file": "CERT", "key_file": "CA"}, "are not a certificate and its private key"),
    ],
    ids=["missing-ca", "cert-without-key", "key-not-matching"],
)
def test_host_settings_that_cannot_work(tls: TlsFiles, settings: dict[str, str], wanted: str) -> None:
    files = {"CERT": str(tls.cert_file), "CA": str(tls.ca_file)}
    cfg = KubernetesConfig(host="https://k8s:6443", **{k: files.get(v, v) for k, v in settings.items()})
    with pytest.raises(ConfigError, match=wanted):
        connect(cfg, environ={})


async def test_host_with_a_client_certificate(tls: TlsFiles) -> None:
    cfg = KubernetesConfig(
        host="k8s.example:6443", ca_file=str(tls.ca_file), cert_file=str(tls.cert_file), key_file=str(tls.key_file)
    )
    connection = connect(cfg, environ={})
    try:
        assert connection.namespace == "default"
        assert describe_source(connection.source) == "host https://k8s.example:6443 (client certificate)"
    finally:
        await connection.client.close()


async def test_host_with_a_bearer_token_never_shows_the_token() -> None:
    cfg = KubernetesConfig(host="http://127.0.0.1:1", bearer_token=SecretStr("sekrit-token"), namespace="ci")
    connection = connect(cfg, environ={})
    try:
        assert connection.namespace == "ci"
        assert "sekrit" not in describe_source(connection.source) + repr(connection.source)
    finally:
        await connection.client.close()


async def test_in_cluster_when_there_is_no_host(
    tmp_path: Path, tls: TlsFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("pod-token")
    (account / "namespace").write_text("runners")
    (account / "ca.crt").write_bytes(tls.ca_file.read_bytes())
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)  # lightkube reads them from os.environ
    connection = connect(KubernetesConfig(), environ=env, service_account_dir=account)
    try:
        assert connection.namespace == "runners"
        assert describe_source(connection.source) == "in-cluster https://10.0.0.1:443 (service account)"
    finally:
        await connection.client.close()


def _kubeconfig(path: Path, namespace: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u", "namespace": namespace}}],
        "current-context": "ctx",
    }
    path.write_text(yaml.safe_dump(config))
    return path


async def test_kubeconfig_from_the_first_existing_file_of_kubeconfig(tmp_path: Path) -> None:
    found = _kubeconfig(tmp_path / "second", "from-context")
    env = {"KUBECONFIG": f"{tmp_path / 'missing'}:{found}"}
    connection = connect(KubernetesConfig(), environ=env, service_account_dir=tmp_path / "none")
    try:
        assert connection.namespace == "from-context"
        assert connection.source.kind == "kubeconfig" and str(found) in connection.source.detail
    finally:
        await connection.client.close()
    override = connect(KubernetesConfig(namespace="mine"), environ=env, service_account_dir=tmp_path / "none")
    await override.client.close()
    assert override.namespace == "mine"


@pytest.mark.parametrize(
    ("kubeconfig", "wanted"),
    [
        ("missing", "KUBECONFIG names no existing file"),
        ("garbage", "cannot be used"),
    ],
    ids=["missing", "garbage"],
)
def test_kubeconfig_problems(tmp_path: Path, kubeconfig: str, wanted: str) -> None:
    path = tmp_path / kubeconfig
    if kubeconfig == "garbage":
        path.write_text("clusters: 7\n")
    with pytest.raises(ConfigError, match=wanted):
        connect(KubernetesConfig(), environ={"KUBECONFIG": str(path)}, service_account_dir=tmp_path)


def test_no_credentials_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="not running in a pod, and no kubeconfig"):
        connect(KubernetesConfig(), environ={}, service_account_dir=tmp_path)
