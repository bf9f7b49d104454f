"""Shared inputs of the deploy tests: values, fake PEM credentials, the reference deployment."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from pydantic import SecretStr

from skyrunner.config import Config, load_config, render_config
from skyrunner.deploy import ClusterCredentials, DeployValues, Manifest, build_runner_config, render_manifests

FIXTURES = Path(__file__).parents[2] / "fixtures"
REFERENCE = FIXTURES / "reference-deployment"
TOKEN = "glrt-t3_ThisTokenMustStayInTheSecret"
KUBERNETES_VERSION = "1.30.0"  # what FakeKubeApi validates against

CA_PEM = b"-----BEGIN CERTIFICATE-----\nMIIBcaCAfake\n-----END CERTIFICATE-----\n"
CERT_PEM = b"-----BEGIN CERTIFICATE-----\nMIIBclientfake\n-----END CERTIFICATE-----\n"
KEY_PEM = b"-----BEGIN RSA PRIVATE KEY-----\nMIIEkeyfake\n-----END RSA PRIVATE KEY-----\n"


def values(**changes: Any) -> DeployValues:
    """Values that pass every check, with ``changes`` on top (validated)."""
    base: dict[str, Any] = {
        "namespace": "ci",
        "image": "registry.example.com/skyrunner:0.1.0",
        "url": "https://gitlab.example.com",
        "token": SecretStr(TOKEN),
    }
    return DeployValues.model_validate({**base, **changes})


def credentials() -> ClusterCredentials:
    return ClusterCredentials(
        server="https://abcde.serverless-1.kubernetes.cn-shanghai.example.choerodon.io:6443",
        ca_pem=CA_PEM,
        cert_pem=CERT_PEM,
        key_pem=KEY_PEM,
    )


def kubeconfig_document(**user: str) -> dict[str, Any]:
    def encoded(pem: bytes) -> str:
        return base64.b64encode(pem).decode()

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "eci", "cluster": {"server": credentials().server,
                                                  "certificate-authority-data": encoded(CA_PEM)}}],
        "users": [{"name": "admin", "user": user or {"client-certificate-data": encoded(CERT_PEM),
                                                      "client-key-data": encoded(KEY_PEM)}}],
        "contexts": [{"name": "eci", "context": {"cluster": "eci", "user": "admin"}}],
        "current-context": "eci",
    }  # fmt: skip


def reference_config() -> Config:
    return load_config(FIXTURES / "reference-config.toml")


def render(
    deploy_values: DeployValues, base: Config | None = None, cluster: ClusterCredentials | None = None
) -> list[Manifest]:
    """Render as the command does: the runner's config, then the manifests."""
    config = build_runner_config(deploy_values, base, cluster).config
    return render_manifests(deploy_values, render_config(config), credentials=cluster)


def reference_manifests() -> dict[str, dict[str, Any]]:
    """The hand-written manifests of the reference deployment, by kind."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(REFERENCE.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            found[document["kind"]] = document
    return found


def validate_strict(manifest: Manifest) -> None:
    """Validate against the official OpenAPI schema, unknown fields refused."""
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
