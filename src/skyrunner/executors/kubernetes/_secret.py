"""The per-job Secret and the registry pull Secret: what they hold and under which keys.

Pure: no I/O. The job Secret holds everything of a job that must not be in the pod spec:

==========================  ===============================================================
key                          content, and who reads it
==========================  ===============================================================
``payload.json``, ``token``  the job and its token: the runtime, when it adopts the pod
``plan.json``                the helper plan (pre-signed cache URLs): prepare and helper, as
                             a file of the Secret volume
``run.<path>``               the run directory (sequencer, phases, stages, bin/): copied to
                             ``/skyrunner`` by prepare
``env.<NAME>``               each job variable: env ``secretKeyRef`` of prepare, build, helper
``svc<n>.<NAME>``            each service variable: env of service container ``svc-<n>``
``file.<n>``                 each file-type variable: copied to its path by prepare
``docker-config.json``       registry credentials for kaniko's ``/kaniko/.docker/config.json``
==========================  ===============================================================

Keys that are not valid Secret keys are mapped (``_names.secret_key``). Registry credentials
(the payload's ``credentials`` of type ``registry``, after ``DOCKER_AUTH_CONFIG``, which wins
as in gitlab-runner) also become a ``kubernetes.io/dockerconfigjson`` pull Secret.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from skyrunner.executors.base import PreparedJob
from skyrunner.executors.kubernetes._jobenv import JobEnvironment
from skyrunner.executors.kubernetes._names import is_env_name, secret_key
from skyrunner.executors.kubernetes._report import BuildReport
from skyrunner.executors.kubernetes.podspec import (
    SECRET_DOCKER_CONFIG_KEY,
    SECRET_ENV_PREFIX,
    SECRET_FILE_PREFIX,
    SECRET_PAYLOAD_KEY,
    SECRET_PLAN_KEY,
    SECRET_RUN_PREFIX,
    SECRET_SIZE_LIMIT,
    SECRET_TOKEN_KEY,
    render_payload,
)
from skyrunner.helper.plan import render_plan

__all__ = ["EnvRef", "JobSecret", "SecretItem", "build_job_secret", "docker_config"]

_EXECUTABLE = 0o755


@dataclass(frozen=True, slots=True)
class SecretItem:
    """One key of the job Secret as a file of its volume, ``path`` relative to the mount."""

    key: str
    path: str
    mode: int | None = None


@dataclass(frozen=True, slots=True)
class EnvRef:
    """An environment variable whose value is a key of the job Secret."""

    name: str
    key: str


@dataclass(frozen=True, slots=True)
class JobSecret:
    """The job Secret's data, and how containers reach it."""

    data: Mapping[str, str]
    job_env: tuple[EnvRef, ...]
    """Every job variable: prepare, build and helper."""
    service_env: tuple[tuple[EnvRef, ...], ...]
    """Per service: the job's public variables, then the service's own."""
    items: tuple[SecretItem, ...]
    """The files of the Secret volume: run directory, plan, file variables."""
    file_targets: tuple[str, ...]
    """Where each file variable goes, in the order of ``files/<n>``."""


def build_job_secret(
    job: PreparedJob,
    env: JobEnvironment,
    run_files: Mapping[str, str],
    service_variables: Sequence[Mapping[str, str]],
    kaniko_config: str | None,
    report: BuildReport,
) -> JobSecret:
    """Lay out the job Secret; ``run_files`` are the run directory's files (relative paths)."""
    data: dict[str, str] = {
        SECRET_PAYLOAD_KEY: render_payload(job.spec),
        SECRET_TOKEN_KEY: job.spec.token.get_secret_value(),
        SECRET_PLAN_KEY: render_plan(job.plan),
    }
    items = [SecretItem(SECRET_PLAN_KEY, SECRET_PLAN_KEY), *_run_items(run_files, data)]
    targets = []
    for index, (target, content) in enumerate(sorted(job.variables.files().items())):
        key = f"{SECRET_FILE_PREFIX}{index}"
        data[key] = content
        items.append(SecretItem(key, f"files/{index}"))
        targets.append(target)
    job_env = _env_refs(env.values, SECRET_ENV_PREFIX, data, report)
    public = tuple(ref for ref in job_env if ref.name in env.public)
    services = []
    for index, variables in enumerate(service_variables):
        own = _env_refs(variables, f"svc{index}.", data, report)
        names = {ref.name for ref in own}
        services.append(tuple(ref for ref in public if ref.name not in names) + own)
    if kaniko_config is not None:
        data[SECRET_DOCKER_CONFIG_KEY] = kaniko_config
    size = sum(len(value.encode()) for value in data.values())
    if size > SECRET_SIZE_LIMIT:
        report.error(
            f"the job's scripts and variables take {size} bytes, more than a Kubernetes Secret "
            f"holds ({SECRET_SIZE_LIMIT})"
        )
    return JobSecret(
        data=data, job_env=job_env, service_env=tuple(services), items=tuple(items), file_targets=tuple(targets)
    )


def _run_items(run_files: Mapping[str, str], data: dict[str, str]) -> list[SecretItem]:
    items = []
    for path, content in sorted(run_files.items()):
        key = secret_key(SECRET_RUN_PREFIX, path)
        data[key] = content
        items.append(SecretItem(key, f"run/{path}", _EXECUTABLE if path.startswith("bin/") else None))
    return items


def _env_refs(values: Mapping[str, str], prefix: str, data: dict[str, str], report: BuildReport) -> tuple[EnvRef, ...]:
    refs = []
    for name, value in values.items():
        if not is_env_name(name):
            report.warn(f"variable {name!r} is not passed to the pod: Kubernetes refuses it as a name")
            continue
        key = secret_key(prefix, name)
        data[key] = value
        refs.append(EnvRef(name, key))
    return tuple(refs)


def docker_config(job: PreparedJob, env: JobEnvironment, report: BuildReport) -> str | None:
    """The job's registry credentials as a docker ``config.json``, or None when there are none."""
    auths: dict[str, Any] = {}
    raw = env.get("DOCKER_AUTH_CONFIG").strip()
    if raw:
        auths.update(_auth_config_entries(raw, report))
    for credential in job.spec.credentials:
        if credential.type != "registry" or not credential.url or credential.url in auths:
            continue
        password = credential.password.get_secret_value()
        pair = base64.b64encode(f"{credential.username}:{password}".encode()).decode()
        auths[credential.url] = {"username": credential.username, "password": password, "auth": pair}
    if not auths:
        return None
    return json.dumps({"auths": auths}, sort_keys=True)


def _auth_config_entries(raw: str, report: BuildReport) -> dict[str, Any]:
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    auths = parsed.get("auths") if isinstance(parsed, dict) else None
    if not isinstance(auths, dict):
        # never quote the value: it holds passwords
        report.warn('DOCKER_AUTH_CONFIG is ignored: it is not JSON with an "auths" object')
        return {}
    return {str(registry): entry for registry, entry in auths.items() if isinstance(entry, dict)}
