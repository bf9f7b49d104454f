"""The runner's Deployment: one replica of ``skyrunner run``, locked down, stopped gracefully.

Pure: no I/O. The pod runs the image's entrypoint (``skyrunner``) with
``run --config /etc/skyrunner/config.toml --listen-address :9252 --sigterm graceful``:

- **Stopping.** Kubernetes stops a container with SIGTERM, then SIGKILL once
  ``terminationGracePeriodSeconds`` have passed. ``--sigterm graceful`` makes SIGTERM act like
  gitlab-runner's SIGQUIT: no new jobs, running ones finish within ``shutdown_timeout``, then
  they are stopped and reported within another ``shutdown_timeout``. The grace period is
  therefore ``2 * shutdown_timeout + 15`` s (the 15 s for the last reports and the exit), so the
  kubelet's SIGKILL never cuts a job that was allowed to finish. The Dockerfile also says
  ``STOPSIGNAL SIGQUIT`` for runtimes that honour it.
- **One at a time.** ``replicas: 1`` and the ``Recreate`` strategy: two runners with the same
  system id and token must not poll GitLab at once, and a rollout waits for the old pod's jobs.
- **Health.** Liveness ``/health`` and readiness ``/ready`` on the metrics port 9252.
- **Locked down.** Non-root (uid/gid 10001, as the image's user), no privilege escalation, all
  capabilities dropped, RuntimeDefault seccomp, a read-only root filesystem with emptyDirs for
  ``/tmp`` and ``/builds``; config, token and cluster credentials mounted read-only, the
  Secrets readable by the pod's group only (0440 with ``fsGroup``).
- **Rotation.** The pod template carries a digest of the token: a new token restarts the runner
  (config.toml changes need no restart: the runner reloads it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any, Final

from skyrunner.deploy.layout import (
    BUILDS_DIR,
    CONFIG_DIR,
    CONFIG_KEY,
    CONTAINER_NAME,
    KUBE_DIR,
    LABEL_INSTANCE,
    LABEL_NAME,
    METRICS_PORT,
    TMP_DIR,
    TOKEN_DIR,
    ObjectNames,
)
from skyrunner.deploy.values import DeployValues

__all__ = ["GRACE_MARGIN_S", "RUN_USER", "TOKEN_DIGEST_ANNOTATION", "build_deployment", "grace_period"]

RUN_USER: Final = 10001
"""The image's non-root user and group (the Dockerfile creates them with this id)."""
GRACE_MARGIN_S: Final = 15
TOKEN_DIGEST_ANNOTATION: Final = "skyrunner.io/token-sha256"
_SECRET_MODE: Final = 0o440
_PORT_NAME: Final = "metrics"


def grace_period(shutdown_timeout: int) -> int:
    """Return ``terminationGracePeriodSeconds`` for a runner with this ``shutdown_timeout``."""
    return 2 * shutdown_timeout + GRACE_MARGIN_S


def build_deployment(
    values: DeployValues,
    names: ObjectNames,
    labels: Mapping[str, str],
    *,
    shutdown_timeout: int,
    token: str,
    kube_secret: str | None,
) -> dict[str, Any]:
    """Return the runner's Deployment; ``kube_secret`` names the cluster credentials, if any."""
    digest = hashlib.sha256(token.encode()).hexdigest()[:16]
    pod_spec: dict[str, Any] = {
        "serviceAccountName": names.service_account,
        # outside the cluster the runner uses its certificate: no API token in the pod then
        "automountServiceAccountToken": kube_secret is None,
        "terminationGracePeriodSeconds": grace_period(shutdown_timeout),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_USER,
            "runAsGroup": RUN_USER,
            "fsGroup": RUN_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_container(values, kube_secret)],
        "volumes": _volumes(names, kube_secret),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": names.deployment, "namespace": names.namespace, "labels": dict(labels)},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": {LABEL_NAME: labels[LABEL_NAME], LABEL_INSTANCE: labels[LABEL_INSTANCE]}},
            "template": {
                "metadata": {"labels": dict(labels), "annotations": {TOKEN_DIGEST_ANNOTATION: digest}},
                "spec": pod_spec,
            },
        },
    }


def _container(values: DeployValues, kube_secret: str | None) -> dict[str, Any]:
    args = [
        "run",
        "--config", str(PurePosixPath(CONFIG_DIR) / CONFIG_KEY),
        "--listen-address", f":{METRICS_PORT}",
        "--working-directory", BUILDS_DIR,
        "--sigterm", "graceful",
    ]  # fmt: skip
    mounts = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "token", "mountPath": TOKEN_DIR, "readOnly": True},
    ]
    if kube_secret is not None:
        mounts.append({"name": "kube", "mountPath": KUBE_DIR, "readOnly": True})
    mounts += [{"name": "tmp", "mountPath": TMP_DIR}, {"name": "builds", "mountPath": BUILDS_DIR}]
    resources = values.resources
    return {
        "name": CONTAINER_NAME,
        "image": values.image,
        "imagePullPolicy": values.image_pull_policy.value,
        "args": args,
        "env": [{"name": "HOME", "value": TMP_DIR}],
        "ports": [{"name": _PORT_NAME, "containerPort": METRICS_PORT, "protocol": "TCP"}],
        "livenessProbe": _probe("/health", initial_delay_s=10, failures=3),
        "readinessProbe": _probe("/ready", initial_delay_s=5, failures=2),
        "resources": {
            "requests": {"cpu": resources.requests.cpu, "memory": resources.requests.memory},
            "limits": {"cpu": resources.limits.cpu, "memory": resources.limits.memory},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }


def _probe(path: str, *, initial_delay_s: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": _PORT_NAME},
        "initialDelaySeconds": initial_delay_s,
        "periodSeconds": 10,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def _volumes(names: ObjectNames, kube_secret: str | None) -> list[dict[str, Any]]:
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": names.config_map}},
        {"name": "token", "secret": {"secretName": names.token_secret, "defaultMode": _SECRET_MODE}},
    ]
    if kube_secret is not None:
        volumes.append({"name": "kube", "secret": {"secretName": kube_secret, "defaultMode": _SECRET_MODE}})
    volumes += [{"name": "tmp", "emptyDir": {}}, {"name": "builds", "emptyDir": {}}]
    return volumes
