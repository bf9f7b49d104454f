"""Jobs, configs and checks shared by the pod builder's tests.

Jobs are built the way the JobRunner builds them (``build_prepared_job`` from a payload), with
the kubernetes executor's layout: builds in ``/builds``, the run dir ``/skyrunner``, the
project's cache under ``/cache``.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from kubernetes_validate.utils import schema_contents
from referencing import Registry, Resource

from skyrunner.config import KubernetesConfig, PodSpecPatch, parse_config
from skyrunner.executors.base import JobLayout, PreparedJob
from skyrunner.executors.kubernetes.podspec import (
    SECRET_PAYLOAD_KEY,
    SECRET_PLAN_KEY,
    PodManifests,
    build_pod,
    pod_names,
)
from skyrunner.executors.kubernetes.spec_table import load_spec_table
from skyrunner.job.prepare import RunnerIdentity, build_prepared_job
from skyrunner.job.settings import JobSettings
from skyrunner.job.spec import parse_job_spec
from skyrunner.platforms import Platform

TABLE = load_spec_table()
JOB_TOKEN = "glcbt-64_TESTJOBTOKEN0000042"
SHORT_TOKEN = "t3sttok3n"
MASKED_VALUE = "hunter2-masked-value-0042"
FIXTURES = Path(__file__).resolve().parents[3] / "fixtures"
GOLDEN = Path(__file__).resolve().parent / "golden"
SCHEMA_VERSIONS = ("1.25", "1.37")
"""The oldest and the newest schema kubernetes-validate ships (it has no 1.24)."""


def payload(**overrides: Any) -> dict[str, Any]:
    """A small job payload; keys in ``overrides`` replace the top-level ones."""
    base: dict[str, Any] = {
        "id": 42,
        "token": JOB_TOKEN,
        "job_info": {"id": 42, "name": "test", "stage": "test", "project_id": 7, "project_full_path": "group/app"},
        "git_info": {
            "repo_url": "https://gitlab.example.com/group/app.git",
            "ref": "main",
            "sha": "1" * 40,
            "before_sha": "0" * 40,
            "ref_type": "branch",
        },
        "runner_info": {"timeout": 3600},
        "variables": [
            {"key": "CI_JOB_URL", "value": "https://gitlab.example.com/group/app/-/jobs/42", "public": True},
            {"key": "CI_JOB_NAME", "value": "test", "public": True},
            {"key": "CI_JOB_TOKEN", "value": JOB_TOKEN, "public": False, "masked": True},
            {"key": "API_KEY", "value": MASKED_VALUE, "public": False, "masked": True},
        ],
        "steps": [{"name": "script", "script": ["make test"], "when": "on_success"}],
        "image": {"name": "alpine:3.20"},
        "features": {"trace_sections": True},
    }
    base.update(copy.deepcopy(overrides))
    return base


def variables(*pairs: tuple[str, str], masked: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The base payload's variables plus ``pairs`` (keys in ``masked`` are masked)."""
    extra = [{"key": k, "value": v, "public": k not in masked, "masked": k in masked} for k, v in pairs]
    return [*payload()["variables"], *extra]


def layout_for(path: str) -> JobLayout:
    project = f"/builds/{SHORT_TOKEN}/0/{path}"
    return JobLayout(
        builds_dir="/builds",
        project_dir=project,
        tmp_dir=f"{project}.tmp",
        run_dir="/skyrunner",
        cache_dir=f"/cache/{path}",
        shared_environment=False,
    )


def prepared(body: dict[str, Any], environment: Sequence[tuple[str, str]] = ()) -> PreparedJob:
    settings = JobSettings(
        runner_name="kube",
        short_token=SHORT_TOKEN,
        system_id="s_0123456789ab",
        server_url="https://gitlab.example.com",
        runner_id=5,
        environment=tuple(environment),
    )
    job, _ = build_prepared_job(
        parse_job_spec(body),
        layout_for,
        settings,
        RunnerIdentity(version="0.1.0", revision="source", arch="amd64"),
        (0, 0),
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    return job


def kube(text: str = "") -> KubernetesConfig:
    """``[runners.kubernetes]`` from the TOML body of that table."""
    return KubernetesConfig.model_validate(tomllib.loads(text))


def reference_runner() -> tuple[KubernetesConfig, tuple[tuple[str, str], ...]]:
    """The reference deployment's kubernetes table and runner environment."""
    config, _ = parse_config((FIXTURES / "reference-config.toml").read_text(), "reference-config.toml")
    runner = config.runners[0]
    return runner.kubernetes_or_default(), tuple(runner.environment_pairs())


def build(
    job: PreparedJob,
    cfg: KubernetesConfig,
    platform: Platform = Platform.NONE,
    patches: Sequence[PodSpecPatch] = (),
    namespace: str = "ci",
    patch_files: Mapping[str, str] | None = None,
) -> PodManifests:
    """The manifests of ``job``; ``patches`` are added to the config's ``pod_spec``."""
    names = pod_names(job.spec.id, SHORT_TOKEN, namespace)
    if patches:
        cfg = cfg.model_copy(update={"pod_spec": (*cfg.pod_spec, *patches)})
    return build_pod(job, cfg, names=names, platform=platform, table=TABLE, patch_files=patch_files or {})


def manifest_dicts(manifests: PodManifests) -> list[dict[str, Any]]:
    objects = [manifests.pod, manifests.secret, manifests.pull_secret]
    return [o.to_dict() for o in objects if o is not None]


def validate(manifests: PodManifests) -> None:
    """Validate every manifest against the oldest and newest Kubernetes schemas, strictly
    (offline: the schemas come with kubernetes-validate, as ``kubernetes_validate.validate``
    reads them, but loaded once per kind instead of once per call)."""
    for document in manifest_dicts(manifests):
        for version in SCHEMA_VERSIONS:
            _validator(version, document["kind"].lower(), document["apiVersion"]).validate(document)


@functools.cache
def _validator(version: str, kind: str, api_version: str) -> Draft202012Validator:
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    folder = f"kubernetes-json-schema/v{version}.0-local-strict"
    schema = schema_contents(f"{folder}/{kind}-{api}.json", version)
    definitions = schema_contents(f"{folder}/_definitions.json", version)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return Draft202012Validator(schema, registry=registry)


def golden_documents(manifests: PodManifests) -> list[dict[str, Any]]:
    """The manifests as golden files hold them: bulky Secret values that other tests check
    (the run dir files, the payload, the plan) replaced by what they are."""
    documents = manifest_dicts(manifests)
    data = documents[1]["stringData"]
    for key in list(data):
        if key.startswith("run."):
            data[key] = "<run dir file>"
    data[SECRET_PAYLOAD_KEY] = "<job payload>"
    data[SECRET_PLAN_KEY] = "<helper plan>"
    return documents


def pod_json(manifests: PodManifests) -> str:
    return json.dumps(manifests.pod.to_dict())


def container(manifests: PodManifests, name: str) -> dict[str, Any]:
    spec = manifests.pod.to_dict()["spec"]
    for item in [*spec.get("initContainers", []), *spec["containers"]]:
        if item["name"] == name:
            return dict(item)
    raise AssertionError(f"no container {name}")


def dump_golden(documents: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False, width=100)
