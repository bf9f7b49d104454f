"""What every object of a skyrunner deployment is called, how it is labelled, and where files sit.

Pure: no I/O. This module owns the names derived from an instance (``name`` in ``namespace``),
the labels every object carries, the paths inside the runner's container (config, token,
cluster credentials, scratch space) and the rules Kubernetes applies to names and labels that
its OpenAPI schema does not express (DNS-1123 labels and subdomains, label keys and values).
It does not build manifests (``manifests.py``) nor decide what a value may be (``checks.py``).

Layout of the runner's container::

    /etc/skyrunner/config.toml            ConfigMap <name>-config (token = placeholder)
    /etc/skyrunner/.runner_system_id      ConfigMap <name>-config (stable per instance)
    /var/run/secrets/skyrunner/token      Secret <name>-token (the runner token alone)
    /etc/skyrunner-kube/{ca.crt,tls.crt,tls.key}  Secret <name>-kubeconfig (optional)
    /tmp, /builds                         emptyDir (the root filesystem is read-only)
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final

__all__ = [
    "BUILDS_DIR",
    "CONFIG_DIR",
    "CONFIG_KEY",
    "CONTAINER_NAME",
    "FIELD_MANAGER",
    "KUBE_CA_KEY",
    "KUBE_CERT_KEY",
    "KUBE_DIR",
    "KUBE_KEY_KEY",
    "LABEL_INSTANCE",
    "LABEL_MANAGED_BY",
    "LABEL_NAME",
    "LABEL_NAMESPACE",
    "MANAGED_BY",
    "MAX_NAME_LENGTH",
    "METRICS_PORT",
    "SYSTEM_ID_KEY",
    "TMP_DIR",
    "TOKEN_DIR",
    "TOKEN_KEY",
    "ObjectNames",
    "is_dns_label",
    "is_dns_subdomain",
    "label_problems",
    "object_names",
    "selector",
    "standard_labels",
    "system_id_for",
]

FIELD_MANAGER: Final = "skyrunner"
MANAGED_BY: Final = "skyrunner"
LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_INSTANCE: Final = "app.kubernetes.io/instance"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_NAMESPACE: Final = "skyrunner.io/namespace"
"""The instance's namespace: cluster-scoped objects (PV, ClusterRole) are told apart by it."""

CONTAINER_NAME: Final = "skyrunner"
METRICS_PORT: Final = 9252
CONFIG_DIR: Final = "/etc/skyrunner"
CONFIG_KEY: Final = "config.toml"
SYSTEM_ID_KEY: Final = ".runner_system_id"
TOKEN_DIR: Final = "/var/run/secrets/skyrunner"
TOKEN_KEY: Final = "token"
KUBE_DIR: Final = "/etc/skyrunner-kube"
# the reference deployment's keys: a kubernetes.io/tls Secret with the CA beside
KUBE_CA_KEY: Final = "ca.crt"
KUBE_CERT_KEY: Final = "tls.crt"
KUBE_KEY_KEY: Final = "tls.key"
TMP_DIR: Final = "/tmp"
BUILDS_DIR: Final = "/builds"

MAX_NAME_LENGTH: Final = 46
"""An instance name's limit: the Deployment's pods are ``<name>-<10>-<5>``, a 63-character label."""

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_ALPHANUMERICS: Final = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class ObjectNames:
    """The name of every object of one instance."""

    namespace: str
    instance: str
    service_account: str
    role: str
    cluster_role: str
    token_secret: str
    kubeconfig_secret: str
    config_map: str
    volume: str
    claim: str
    deployment: str


def object_names(name: str, namespace: str) -> ObjectNames:
    """Name the objects of instance ``name`` in ``namespace``; cluster-scoped ones include both."""
    return ObjectNames(
        namespace=namespace,
        instance=name,
        service_account=name,
        role=name,
        cluster_role=f"{namespace}-{name}-nodes",
        token_secret=f"{name}-token",
        kubeconfig_secret=f"{name}-kubeconfig",
        config_map=f"{name}-config",
        volume=f"{namespace}-{name}-cache",
        claim=f"{name}-cache",
        deployment=name,
    )


def standard_labels(names: ObjectNames) -> dict[str, str]:
    """The labels every object of the instance carries (and ``--delete`` selects on)."""
    return {
        LABEL_NAME: "skyrunner",
        LABEL_INSTANCE: names.instance,
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_NAMESPACE: names.namespace,
    }


def selector(names: ObjectNames) -> dict[str, str]:
    """The label selector of everything the instance owns, namespaced or not."""
    return {
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_INSTANCE: names.instance,
        LABEL_NAMESPACE: names.namespace,
    }


def system_id_for(names: ObjectNames) -> str:
    """Return the runner's system id: gitlab-runner's ``r_`` form, stable for the instance.

    The runner's config directory is a read-only ConfigMap, so the id is written there at
    deploy time; deriving it from the instance keeps renders identical (applies idempotent).
    """
    digest = hashlib.sha256(f"skyrunner/{names.namespace}/{names.instance}".encode()).digest()
    return "r_" + "".join(_ALPHANUMERICS[byte % len(_ALPHANUMERICS)] for byte in digest[:12])


def is_dns_label(text: str) -> bool:
    """RFC 1123 label: lower-case alphanumerics and ``-``, at most 63, alphanumeric at both ends."""
    return len(text) <= 63 and _DNS_LABEL.fullmatch(text) is not None


def is_dns_subdomain(text: str) -> bool:
    """RFC 1123 subdomain as Kubernetes checks it: dot-separated labels, 253 characters in all.

    Like apimachinery's ``IsDNS1123Subdomain``, the labels of a subdomain have no 63-character limit.
    """
    return 0 < len(text) <= 253 and all(_DNS_LABEL.fullmatch(part) for part in text.split("."))


def label_problems(labels: Mapping[str, str], where: str) -> Iterator[str]:
    """Yield one message per label whose key or value Kubernetes refuses."""
    for key, value in labels.items():
        prefix, slash, name = key.rpartition("/")
        if (slash and not is_dns_subdomain(prefix)) or not _is_label_name(name):
            yield (
                f"{where}: label key {key!r} is not valid: an optional DNS subdomain prefix and '/', then at "
                "most 63 alphanumerics, '-', '_' or '.', alphanumeric at both ends"
            )
        if value and not _is_label_name(value):
            yield (
                f"{where}: label {key!r} value {value!r} is not valid: at most 63 alphanumerics, '-', '_' "
                "or '.', alphanumeric at both ends"
            )


def _is_label_name(text: str) -> bool:
    return 0 < len(text) <= 63 and _LABEL_VALUE.fullmatch(text) is not None
