"""The manifests that run skyrunner in a cluster, rendered from values and the runner's config.toml.

Pure: no I/O. :func:`render_manifests` returns plain dicts (what ``--output yaml`` prints and
``--apply`` sends), in an order that can be applied front to back and deleted back to front:

1. ``Namespace``
2. ``ServiceAccount``, ``Role`` and ``RoleBinding``: what the kubernetes executor does in its
   namespace and nothing more (pods: create/get/list/watch/delete/patch; pods/log: get;
   secrets: create/get/delete/patch/list; events: list/watch). With an external cluster
   (``--kubeconfig-secret``) jobs run there under the certificate's identity: no Role, and no
   service account token in the runner's pod.
3. ``ClusterRole`` + ``ClusterRoleBinding`` for nodes (get/list) only when the platform is
   ``auto`` and jobs run in this cluster: the executor reads node labels to tell the platform.
4. ``PersistentVolume`` + ``PersistentVolumeClaim`` when a cache is asked for: the NFS share,
   ReadWriteMany, the reference deployment's mount options, bound to each other by name (no
   storage class, so a default class cannot provision something else), reclaim ``Retain``.
5. ``Secret`` ``<name>-token``: the runner token, and nowhere else (the ConfigMap's config.toml
   has the placeholder and ``token_file``); ``Secret`` ``<name>-kubeconfig`` (optional).
6. ``ConfigMap`` with config.toml and the runner's system id.
7. ``Deployment`` (``_deployment.py``).

Every object carries the instance's labels (``layout.standard_labels``); names and labels are
checked here for what the OpenAPI schema does not say (DNS-1123, label syntax), all at once.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

import yaml

from skyrunner.config import TOKEN_FROM_FILE, Config, ServerlessPlatform, parse_config
from skyrunner.deploy._deployment import build_deployment
from skyrunner.deploy.checks import raise_problems
from skyrunner.deploy.kubeconfig import ClusterCredentials
from skyrunner.deploy.layout import (
    CONFIG_KEY,
    KUBE_CA_KEY,
    KUBE_CERT_KEY,
    KUBE_KEY_KEY,
    SYSTEM_ID_KEY,
    TOKEN_KEY,
    ObjectNames,
    is_dns_label,
    is_dns_subdomain,
    label_problems,
    object_names,
    standard_labels,
    system_id_for,
)
from skyrunner.deploy.runner_config import runner_platform
from skyrunner.deploy.values import CacheValues, DeployValues
from skyrunner.errors import ConfigError

__all__ = ["EXECUTOR_RULES", "NODE_RULES", "Manifest", "dump_yaml", "render_manifests", "render_yaml"]

Manifest = dict[str, Any]

_CORE: Final = ""
_RBAC: Final = "rbac.authorization.k8s.io"
EXECUTOR_RULES: Final = (
    (_CORE, "pods", ("create", "get", "list", "watch", "delete", "patch")),
    (_CORE, "pods/log", ("get",)),
    (_CORE, "secrets", ("create", "get", "delete", "patch", "list")),
    (_CORE, "events", ("list", "watch")),
)
"""What the kubernetes executor does in its namespace: (API group, resource, verbs)."""
NODE_RULES: Final = ((_CORE, "nodes", ("get", "list")),)
_PATH_SEGMENT_KINDS: Final = frozenset({"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"})


def render_manifests(
    values: DeployValues, config_toml: str, *, credentials: ClusterCredentials | None = None
) -> list[Manifest]:
    """Render the deployment of ``values`` whose runner reads ``config_toml``, in apply order.

    ``values.token`` is the runner token for the Secret (registration happens before this);
    ``credentials`` are the parsed ``--kubeconfig-secret``, required when that value is set.

    Raises:
        ConfigError: the config.toml is invalid or holds a token, there is no token, or an
            object's name or label is refused by Kubernetes (every such problem in one line).
    """
    names = object_names(values.name, values.namespace)
    config = _checked_config(values, config_toml)
    if values.kubeconfig_secret is not None and credentials is None:
        raise ConfigError("kubeconfig_secret: the credentials were not read")
    labels = {**values.labels, **standard_labels(names)}
    manifests = [_namespace(names, labels), _service_account(names, labels)]
    if credentials is None:
        manifests += _namespace_rbac(names, labels)
    if credentials is None and runner_platform(config) is ServerlessPlatform.AUTO:
        manifests += _node_rbac(names, labels)
    if values.cache is not None:
        manifests += _cache(values.cache, names, labels)
    token = _token(values)
    manifests.append(_secret(names.token_secret, names, labels, {TOKEN_KEY: token.encode()}, "Opaque"))
    if credentials is not None:
        files = {
            KUBE_CA_KEY: credentials.ca_pem,
            KUBE_CERT_KEY: credentials.cert_pem,
            KUBE_KEY_KEY: credentials.key_pem,
        }
        manifests.append(_secret(names.kubeconfig_secret, names, labels, files, "kubernetes.io/tls"))
    manifests.append(_config_map(names, labels, config_toml))
    manifests.append(
        build_deployment(
            values,
            names,
            labels,
            shutdown_timeout=config.shutdown_timeout,
            token=token,
            kube_secret=names.kubeconfig_secret if credentials is not None else None,
        )
    )
    raise_problems([problem for manifest in manifests for problem in _object_problems(manifest)])
    return manifests


def render_yaml(manifests: Sequence[Mapping[str, Any]]) -> str:
    """Render manifests as one YAML document stream, multi-line strings as literal blocks."""
    return yaml.dump_all(manifests, Dumper=_Dumper, sort_keys=False, explicit_start=True, width=120)


def dump_yaml(document: object) -> str:
    """Render one document the way :func:`render_yaml` does (for diffs)."""
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=120)


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper, writing config.toml in a ConfigMap as a ``|`` block people can read."""


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


_Dumper.add_representer(str, _str)


def _checked_config(values: DeployValues, config_toml: str) -> Config:
    config, _ = parse_config(config_toml, "config.toml (ConfigMap)")
    if len(config.runners) != 1:
        raise ConfigError(f"config.toml (ConfigMap): expected one [[runners]] entry, found {len(config.runners)}")
    runner = config.runners[0]
    secret = values.token.get_secret_value() if values.token is not None else ""
    if (
        runner.token.get_secret_value() != TOKEN_FROM_FILE
        or not runner.token_file
        or (secret and secret in config_toml)
    ):
        raise ConfigError(
            "config.toml (ConfigMap): the runner token must stay out of the ConfigMap "
            f'(token = "{TOKEN_FROM_FILE}" and token_file)'
        )
    return config


def _token(values: DeployValues) -> str:
    if values.token is None:
        raise ConfigError("token: no runner token for the Secret (register first)")
    return values.token.get_secret_value()


def _meta(name: str, labels: Mapping[str, str], namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = dict(labels)
    return meta


def _namespace(names: ObjectNames, labels: Mapping[str, str]) -> Manifest:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(names.namespace, labels)}


def _service_account(names: ObjectNames, labels: Mapping[str, str]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(names.service_account, labels, names.namespace),
    }


def _rules(rules: Sequence[tuple[str, str, tuple[str, ...]]]) -> list[dict[str, Any]]:
    return [{"apiGroups": [group], "resources": [resource], "verbs": list(verbs)} for group, resource, verbs in rules]


def _binding(kind: str, name: str, role_kind: str, names: ObjectNames, labels: Mapping[str, str]) -> Manifest:
    namespace = names.namespace if kind == "RoleBinding" else None
    return {
        "apiVersion": f"{_RBAC}/v1",
        "kind": kind,
        "metadata": _meta(name, labels, namespace),
        "roleRef": {"apiGroup": _RBAC, "kind": role_kind, "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": names.service_account, "namespace": names.namespace}],
    }


def _namespace_rbac(names: ObjectNames, labels: Mapping[str, str]) -> list[Manifest]:
    role = {
        "apiVersion": f"{_RBAC}/v1",
        "kind": "Role",
        "metadata": _meta(names.role, labels, names.namespace),
        "rules": _rules(EXECUTOR_RULES),
    }
    return [role, _binding("RoleBinding", names.role, "Role", names, labels)]


def _node_rbac(names: ObjectNames, labels: Mapping[str, str]) -> list[Manifest]:
    role = {
        "apiVersion": f"{_RBAC}/v1",
        "kind": "ClusterRole",
        "metadata": _meta(names.cluster_role, labels),
        "rules": _rules(NODE_RULES),
    }
    return [role, _binding("ClusterRoleBinding", names.cluster_role, "ClusterRole", names, labels)]


def _cache(cache: CacheValues, names: ObjectNames, labels: Mapping[str, str]) -> list[Manifest]:
    volume = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": _meta(names.volume, labels),
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "capacity": {"storage": cache.size},
            "mountOptions": list(cache.mount_options),
            "nfs": {"server": cache.nfs_server, "path": cache.nfs_path},
            "persistentVolumeReclaimPolicy": "Retain",  # the NAS keeps the cache when this goes
            "storageClassName": "",
            "claimRef": {"namespace": names.namespace, "name": names.claim},
        },
    }
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(names.claim, labels, names.namespace),
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": cache.size}},
            "storageClassName": "",
            "volumeName": names.volume,
        },
    }
    return [volume, claim]


def _secret(
    name: str, names: ObjectNames, labels: Mapping[str, str], data: Mapping[str, bytes], secret_type: str
) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(name, labels, names.namespace),
        "type": secret_type,
        "data": {key: base64.b64encode(value).decode("ascii") for key, value in data.items()},
    }


def _config_map(names: ObjectNames, labels: Mapping[str, str], config_toml: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(names.config_map, labels, names.namespace),
        "data": {CONFIG_KEY: config_toml, SYSTEM_ID_KEY: system_id_for(names) + "\n"},
    }


def _object_problems(manifest: Manifest) -> Iterator[str]:
    kind, meta = manifest["kind"], manifest["metadata"]
    name = meta["name"]
    where = f"{kind} {name!r}"
    if kind == "Namespace" and not is_dns_label(name):
        yield f"{where}: the name is not a DNS-1123 label"
    elif kind in _PATH_SEGMENT_KINDS and (name in (".", "..") or "/" in name or "%" in name or not name):
        yield f"{where}: the name may not be '.', '..' or contain '/' or '%'"
    elif kind not in _PATH_SEGMENT_KINDS and not is_dns_subdomain(name):
        yield f"{where}: the name is not a DNS-1123 subdomain"
    yield from label_problems(meta.get("labels", {}), where)
    template = manifest.get("spec", {}).get("template", {}).get("metadata", {})
    yield from label_problems(template.get("labels", {}), f"{where} pod template")
