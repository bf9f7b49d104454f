"""The job pod, built by a pure function: names, paths and keys, and :func:`build_pod`.

Pure: no I/O. :func:`build_pod` turns a :class:`~skyrunner.executors.base.PreparedJob` and
``[runners.kubernetes]`` into lightkube models: the pod, its per-job Secret and, when the job
brings registry credentials, a pull Secret. Nothing is created here; the runtime
(``pods.py``) creates the Secrets, then the pod, then gives the Secrets an ownerReference to the
pod (:func:`owned_by_pod`), which cannot exist before the pod does.

The pod runs the whole job by itself; no ``exec``, no ``attach``, no native sidecars (the pod
must run on Kubernetes 1.24). Run order comes from files in ``/skyrunner``, not from the order
of containers::

    initContainers
      prepare   helper image. Copies the run directory (sequencer.sh, phases/, stages/, bin/)
                from the job Secret into /skyrunner, copies file-type variables to their paths,
                then runs `sh /skyrunner/sequencer.sh prepare`: sources, cache restore,
                dependency artifacts.
    containers
      build     job image (default: config `image`). Entrypoint from the job's image if it has
                one, with `sh /skyrunner/sequencer.sh build` as its arguments; our command
                otherwise. Runs the script steps and after_script, then writes
                /skyrunner/build.exit ("<status>:<code>") and exits with the script's code.
      helper    helper image. `sh /skyrunner/sequencer.sh finish`: waits for build.exit, then
                saves the cache and uploads artifacts by their `when`.
      svc-<n>   one per service (config services first, then the job's): image, entrypoint as
                command, command as args, service variables. Every alias is a hostAliases
                entry for 127.0.0.1, so `db:5432` works as in gitlab-runner.
      kaniko    only when the job sets SKYRUNNER_IMAGE_BUILDER=kaniko (or the config's
                serverless.image_builder is kaniko): runs /skyrunner/bin/skyrunner-kaniko,
                which serves build requests that `skyrunner-build` (on the build container's
                PATH) hands over in /skyrunner/kaniko/, until build.exit appears.

Volumes: the builds dir and ``/skyrunner`` are emptyDirs mounted in every job container; the
cache dir is whatever the config's volumes mount there (the reference deployment mounts its NAS
PVC at ``/cache``), else an emptyDir; the job Secret is mounted at ``/skyrunner-job`` in
``prepare`` and ``helper`` (run files, ``plan.json``, file variables);
``/skyrunner-pod/annotations`` is a downward-API file of the pod's annotations, where the
sequencer finds ``skyrunner.io/stop="timeout"`` or ``"canceled"``, set by the runtime before it
deletes the pod, to tell the two apart (the kubelet rewrites the file when it syncs the updated
pod; the sequencer matches the whole line, so no other annotation can pass for it).

The phase containers (prepare, build, helper) get the sequencer's environment (``SKYRUNNER_*``)
as plain values and every job variable through ``secretKeyRef`` to the job Secret, so no
variable value is in the pod spec; the exit code of each stage reaches the runtime through the
container's ``terminated.message`` (``SKYRUNNER_RESULTS=/dev/termination-log``).

The job Secret (:data:`SECRET_PAYLOAD_KEY`, :data:`SECRET_TOKEN_KEY`...) also keeps the job
payload and token, so that a restarted runner can adopt the pod (``render_payload`` /
``parse_job_spec``). Every problem found while building (a bad quantity, a cap exceeded, a
name Kubernetes refuses, a platform refusal) is reported in one ``ConfigError``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, cast

from lightkube.models.meta_v1 import OwnerReference
from lightkube.resources.core_v1 import Pod, Secret
from pydantic import SecretStr

from skyrunner._version import VERSION
from skyrunner.config import KubernetesConfig
from skyrunner.executors.base import PreparedJob
from skyrunner.executors.kubernetes._names import PodNames, pod_names, token_slug
from skyrunner.executors.kubernetes.sizing import BUILD_CONTAINER, PodSize
from skyrunner.executors.kubernetes.spec_table import SpecTable
from skyrunner.job.spec import JobSpec
from skyrunner.job.variables import JobVariables
from skyrunner.platforms import Platform

__all__ = [
    "ACTIVE_DEADLINE_MARGIN_S",
    "ANNOTATION_CHECKPOINT",
    "ANNOTATION_STOP",
    "BUILD",
    "BUILD_EXIT_MARKER",
    "DEFAULT_HELPER_IMAGE",
    "DEFAULT_KANIKO_IMAGE",
    "HELPER",
    "IMAGE_BUILDER_VARIABLE",
    "JOB_SECRET_DIR",
    "KANIKO",
    "LABEL_JOB_ID",
    "LABEL_MANAGED_BY",
    "LABEL_RUNNER",
    "MANAGED_BY",
    "PREPARE",
    "RUN_DIR",
    "SECRET_PAYLOAD_KEY",
    "SECRET_PLAN_KEY",
    "SECRET_TOKEN_KEY",
    "SERVICE_PREFIX",
    "STOP_FILE",
    "PodManifests",
    "PodNames",
    "billed_size",
    "build_pod",
    "owned_by_pod",
    "pod_names",
    "render_payload",
    "resolve_namespace",
    "runner_selector",
]

# Containers.
PREPARE: Final = "prepare"
BUILD: Final = BUILD_CONTAINER
HELPER: Final = "helper"
KANIKO: Final = "kaniko"
SERVICE_PREFIX: Final = "svc-"
"""Service containers are ``svc-0``, ``svc-1``... as in gitlab-runner."""

# Labels, on the pod and both Secrets: what the runtime lists and adopts by.
LABEL_RUNNER: Final = "skyrunner.io/runner"
"""The runner's short token, as a DNS label (:func:`runner_selector`)."""
LABEL_JOB_ID: Final = "skyrunner.io/job-id"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "skyrunner"

# Annotations.
ANNOTATION_CHECKPOINT: Final = "skyrunner.io/checkpoint"
"""Set by the runtime: where the trace was when it last checkpointed."""
ANNOTATION_STOP: Final = "skyrunner.io/stop"
"""Set by the runtime before deleting the pod: ``timeout`` or ``canceled``."""
ANNOTATION_JOB_ID: Final = "job.runner.gitlab.com/id"
ANNOTATION_JOB_URL: Final = "job.runner.gitlab.com/url"
ANNOTATION_JOB_SHA: Final = "job.runner.gitlab.com/sha"
ANNOTATION_JOB_BEFORE_SHA: Final = "job.runner.gitlab.com/before_sha"
ANNOTATION_JOB_REF: Final = "job.runner.gitlab.com/ref"
ANNOTATION_JOB_NAME: Final = "job.runner.gitlab.com/name"
ANNOTATION_JOB_TIMEOUT: Final = "job.runner.gitlab.com/timeout"
ANNOTATION_PROJECT_ID: Final = "project.runner.gitlab.com/id"
ECI_IMAGE_CACHE: Final = "k8s.aliyun.com/eci-image-cache"
ECI_EXTRA_STORAGE: Final = "k8s.aliyun.com/eci-extra-ephemeral-storage"

# Paths inside the pod.
RUN_DIR: Final = "/skyrunner"
BUILD_EXIT_MARKER: Final = f"{RUN_DIR}/build.exit"
"""Written by the build phase once it has ended (see sequencer.sh)."""
BIN_DIR: Final = f"{RUN_DIR}/bin"
KANIKO_DIR: Final = f"{RUN_DIR}/kaniko"
SEQUENCER: Final = f"{RUN_DIR}/sequencer.sh"
JOB_SECRET_DIR: Final = "/skyrunner-job"
JOB_RUN_FILES: Final = f"{JOB_SECRET_DIR}/run"
JOB_FILE_VARIABLES: Final = f"{JOB_SECRET_DIR}/files"
PLAN_FILE: Final = f"{JOB_SECRET_DIR}/plan.json"
POD_INFO_DIR: Final = "/skyrunner-pod"
STOP_FILE: Final = f"{POD_INFO_DIR}/annotations"
"""``SKYRUNNER_STOP_FILE``: every annotation, as ``key="value"`` lines."""
TERMINATION_LOG: Final = "/dev/termination-log"
KANIKO_DOCKER_DIR: Final = "/kaniko/.docker"
KANIKO_EXECUTOR: Final = "/kaniko/executor"

# Files of the run directory that the pod builder adds to the sequencer's.
SKYRUNNER_BUILD_FILE: Final = "bin/skyrunner-build"
KANIKO_LOOP_FILE: Final = "bin/skyrunner-kaniko"

# Volumes.
VOLUME_BUILDS: Final = "skyrunner-builds"
VOLUME_RUN: Final = "skyrunner-run"
VOLUME_JOB: Final = "skyrunner-job"
VOLUME_POD_INFO: Final = "skyrunner-pod"
VOLUME_CACHE: Final = "skyrunner-cache"
VOLUME_DOCKER: Final = "skyrunner-docker"

# Keys of the job Secret.
SECRET_PAYLOAD_KEY: Final = "payload.json"
"""The job as JSON (:func:`render_payload`), for adoption; ``parse_job_spec`` reads it back."""
SECRET_TOKEN_KEY: Final = "token"
"""The job token, for adoption."""
SECRET_PLAN_KEY: Final = "plan.json"
SECRET_DOCKER_CONFIG_KEY: Final = "docker-config.json"
SECRET_ENV_PREFIX: Final = "env."
SECRET_RUN_PREFIX: Final = "run."
SECRET_FILE_PREFIX: Final = "file."
PULL_SECRET_KEY: Final = ".dockerconfigjson"
PULL_SECRET_TYPE: Final = "kubernetes.io/dockerconfigjson"

# Defaults.
DEFAULT_HELPER_IMAGE: Final = f"registry.example/skyrunner:{VERSION}"
"""The runner's own image: it has python3 and ``python -m skyrunner.helper``."""
DEFAULT_KANIKO_IMAGE: Final = "ghcr.io/osscontainertools/kaniko:debug"
"""The maintained kaniko fork's debug image (busybox sh included); see docs/kaniko.md."""
IMAGE_BUILDER_VARIABLE: Final = "SKYRUNNER_IMAGE_BUILDER"
ACTIVE_DEADLINE_MARGIN_S: Final = 600
"""``activeDeadlineSeconds`` is the job timeout plus this: after_script, uploads, cleanup."""
SECRET_SIZE_LIMIT: Final = 1024 * 1024
"""Kubernetes refuses a Secret whose data is larger."""


@dataclass(frozen=True, slots=True)
class PodManifests:
    """The objects of one job, ready to create: Secret(s) first, then the pod."""

    pod: Pod
    secret: Secret
    pull_secret: Secret | None
    size: PodSize
    """What the platform bills for the pod (``Platform.NONE``: the pod's requests)."""
    warnings: tuple[str, ...] = ()
    """Lines for the job's trace (an overwrite that was ignored, an option that does not apply)."""


def build_pod(
    job: PreparedJob,
    cfg: KubernetesConfig,
    *,
    names: PodNames,
    platform: Platform,
    table: SpecTable,
    patch_files: Mapping[str, str] = MappingProxyType({}),
) -> PodManifests:
    """Build the pod and Secrets of ``job``; see the module docstring for the layout.

    ``platform`` is resolved already (``auto`` is the runtime's to detect). ``patch_files`` holds
    the text of each ``patch_path`` of the ``[[runners.kubernetes.pod_spec]]`` patches (the runtime
    reads them); an inline patch carries its own.

    Raises:
        ConfigError: anything that would make the pod fail or be refused, all in one message.
    """
    # Imported here: the assembly reads this module's constants, which are defined above.
    from skyrunner.executors.kubernetes._assembly import assemble

    return assemble(job, cfg, names=names, platform=platform, table=table, patch_files=patch_files)


def resolve_namespace(cfg: KubernetesConfig, variables: JobVariables) -> str:
    """The job's namespace: the config's (``default`` if unset) or an allowed overwrite.

    Raises:
        ConfigError: ``KUBERNETES_NAMESPACE_OVERWRITE`` does not match
            ``namespace_overwrite_allowed``, or the result is not a namespace name.
    """
    from skyrunner.executors.kubernetes._assembly import namespace_for

    return namespace_for(cfg, variables)


def runner_selector(short_token: str) -> str:
    """The label selector of this runner's objects (pods and Secrets)."""
    return f"{LABEL_RUNNER}={token_slug(short_token)},{LABEL_MANAGED_BY}={MANAGED_BY}"


def billed_size(manifests: PodManifests) -> PodSize | None:
    """What the platform bills for the pod, or None when it is not a sized platform."""
    return None if manifests.size.platform is Platform.NONE else manifests.size


def owned_by_pod(secret: Secret, pod: Pod) -> Secret:
    """Return ``secret`` owned by the created ``pod`` (which has a uid), to be deleted with it."""
    assert pod.metadata is not None and secret.metadata is not None
    reference = OwnerReference(apiVersion="v1", kind="Pod", name=pod.metadata.name or "", uid=pod.metadata.uid or "")
    data = secret.to_dict()
    data["metadata"]["ownerReferences"] = [reference.to_dict()]
    return cast(Secret, Secret.from_dict(data))


def render_payload(spec: JobSpec) -> str:
    """The job as JSON with its secrets in clear, for the job Secret (``parse_job_spec`` reads it)."""
    return json.dumps(_revealed(spec.model_dump(mode="python")), sort_keys=True, separators=(",", ":"))


def _revealed(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Mapping):
        return {key: _revealed(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_revealed(item) for item in value]
    return value
