"""The job payload GitLab would send for a pipeline job: the JobResponse JSON of the runner API.

Pure: no I/O. :func:`build_job_payload` renders one :class:`PipelineJob` the way GitLab's
``Ci::BuildRunnerPresenter`` and the ``JobRequest::*`` Grape entities do (protocol reference §4):

* ``variables[]``: predefined (``CI_*``, ``CI_JOB_TOKEN`` masked), then global YAML variables
  (``inherit:variables`` applied, ``workflow:rules:variables`` after them), job variables,
  ``parallel:matrix`` variables, ``rules:variables``, then the ``--variable`` overrides; later
  entries win. ``raw: true`` only for ``expand: false``; ``file``/``raw`` keys only when true.
* ``steps[]``: ``before_script`` + ``script`` as step ``script``, ``after_script`` as its own
  step (``when: always``, ``allow_failure: true``), both with the job timeout.
* ``artifacts[]``: the archive, then one entry per ``artifacts:reports`` type with GitLab's
  default file name and format, ``when: always`` and the archive's ``expire_in``.
* ``cache[]`` keys and fallback keys get GitLab's ``-protected``/``-non_protected`` suffix.
* ``git_info.refspecs`` starts with the pipeline's persistent ref, then the branch or tag
  (depth > 0) or the wildcards (depth 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from skyrunner.pipeline._predefined import (
    commit_variables,
    is_protected,
    job_variables,
    server_variables,
)
from skyrunner.pipeline.checkout import Checkout, RefType
from skyrunner.pipeline.model import Artifacts, Cache, Image, Pipeline, PipelineJob, Service, Variable

__all__ = ["DEFAULT_TIMEOUT", "FAILURE_REASONS", "REPORT_FILES", "build_job_payload"]

DEFAULT_TIMEOUT = 3600  # GitLab's default project timeout
DEFAULT_GIT_DEPTH = 20  # GitLab's default git depth for new projects

# app/models/concerns/enums/ci/commit_status.rb, in GitLab's order
FAILURE_REASONS: tuple[str, ...] = (
    "unknown_failure",
    "script_failure",
    "api_failure",
    "stuck_or_timeout_failure",
    "runner_system_failure",
    "missing_dependency_failure",
    "runner_unsupported",
    "stale_schedule",
    "job_execution_timeout",
    "archived_failure",
    "unmet_prerequisites",
    "scheduler_failure",
    "data_integrity_failure",
    "forward_deployment_failure",
    "user_blocked",
    "project_deleted",
    "ci_quota_exceeded",
    "pipeline_loop_detected",
    "no_matching_runner",
    "trace_size_exceeded",
    "builds_disabled",
    "environment_creation_failure",
    "deployment_rejected",
    "failed_outdated_deployment_job",
    "job_execution_server_timeout",
    "stuck_pending_with_matching_runners",
    "stuck_pending_no_matching_runners",
    "no_updates_running",
    "no_updates_canceling",
    "server_timeout_running",
    "server_timeout_canceling",
    "runner_configuration_error",
    "runner_external_dependency_failure",
    "runner_interrupted",
    "protected_environment_failure",
    "insufficient_bridge_permissions",
    "downstream_bridge_project_not_found",
    "invalid_bridge_trigger",
    "upstream_bridge_project_not_found",
    "insufficient_upstream_permissions",
    "bridge_pipeline_is_child_pipeline",
    "downstream_pipeline_creation_failed",
    "secrets_provider_not_found",
    "reached_max_descendant_pipelines_depth",
    "ip_restriction_failure",
    "reached_max_pipeline_hierarchy_size",
    "reached_downstream_pipeline_trigger_rate_limit",
    "duo_workflow_not_allowed",
    "job_router_failure",
    "job_token_expired",
    "id_token_burned_project_path",
    "downstream_project_trigger_resolved_to_empty",
)

# Ci::JobArtifact DEFAULT_FILE_NAMES and TYPE_AND_FORMAT_PAIRS for each report type
REPORT_FILES: dict[str, tuple[str, str]] = {
    "junit": ("junit.xml", "gzip"),
    "metrics": ("metrics.txt", "gzip"),
    "dotenv": (".env", "gzip"),
    "cobertura": ("cobertura-coverage.xml", "gzip"),
    "jacoco": ("jacoco.xml", "gzip"),
    "cyclonedx": ("gl-sbom.cdx.json", "gzip"),
    "annotations": ("gl-annotations.json", "gzip"),
    "repository_xray": ("gl-repository-xray.json", "gzip"),
    "lsif": ("lsif.json", "zip"),
    "accessibility": ("gl-accessibility.json", "raw"),
    "codequality": ("gl-code-quality-report.json", "raw"),
    "sast": ("gl-sast-report.json", "raw"),
    "secret_detection": ("gl-secret-detection-report.json", "raw"),
    "dependency_scanning": ("gl-dependency-scanning-report.json", "raw"),
    "container_scanning": ("gl-container-scanning-report.json", "raw"),
    "cluster_image_scanning": ("gl-cluster-image-scanning-report.json", "raw"),
    "dast": ("gl-dast-report.json", "raw"),
    "license_scanning": ("gl-license-scanning-report.json", "raw"),
    "browser_performance": ("browser-performance.json", "raw"),
    "load_performance": ("load-performance.json", "raw"),
    "terraform": ("tfplan.json", "raw"),
    "requirements": ("requirements.json", "raw"),
    "requirements_v2": ("requirements_v2.json", "raw"),
    "coverage_fuzzing": ("gl-coverage-fuzzing.json", "raw"),
    "api_fuzzing": ("gl-api-fuzzing-report.json", "raw"),
}


def _variable(
    key: str, value: str, *, public: bool = True, masked: bool = False, raw: bool = False
) -> dict[str, Any]:
    item: dict[str, Any] = {"key": key, "value": value, "public": public, "masked": masked}
    if raw:
        item["raw"] = True
    return item


def _yaml_variables(variables: Sequence[Variable]) -> list[dict[str, Any]]:
    return [_variable(v.key, v.value, raw=v.raw) for v in variables]


def _variables(
    pipeline: Pipeline,
    job: PipelineJob,
    checkout: Checkout,
    *,
    job_id: int,
    job_token: str,
    server_url: str,
    repo_url: str,
    pipeline_id: int,
    project_id: int,
) -> list[dict[str, Any]]:
    base = server_url.rstrip("/")
    predefined = [
        _variable("CI_JOB_ID", str(job_id)),
        _variable("CI_JOB_URL", f"{base}/{checkout.project_path}/-/jobs/{job_id}"),
        _variable("CI_JOB_TOKEN", job_token, public=False, masked=True),
        _variable("CI_REPOSITORY_URL", repo_url, public=False),
    ]
    pairs = commit_variables(
        checkout,
        pipeline_id=pipeline_id,
        project_id=project_id,
        config_path=pipeline.path,
        pipeline_name=pipeline.workflow.name,
    )
    pairs += server_variables(server_url, checkout.project_path, pipeline_id)
    pairs += job_variables(job)
    pairs.append(("GIT_DEPTH", str(_git_depth(pipeline, job))))
    matrix = job.parallel.matrix if job.parallel is not None else ()
    return [
        *predefined,
        *(_variable(k, v) for k, v in pairs),
        *_yaml_variables(pipeline.global_variables(job)),
        *_yaml_variables(job.variables),
        *_yaml_variables(matrix),
        *_yaml_variables(job.rules_variables),
        *_yaml_variables(pipeline.overrides),
    ]


def _git_depth(pipeline: Pipeline, job: PipelineJob) -> int:
    """Return ``GIT_DEPTH`` as the job sets it, else the project default, as GitLab does."""
    found = DEFAULT_GIT_DEPTH
    variables = (*pipeline.global_variables(job), *job.variables, *job.rules_variables, *pipeline.overrides)
    for variable in variables:
        if variable.key == "GIT_DEPTH" and variable.value.strip().isdigit():
            found = int(variable.value)
    return found


def _image(image: Image) -> dict[str, Any]:
    return {
        "name": image.name,
        "entrypoint": list(image.entrypoint) if image.entrypoint is not None else None,
        "ports": [dict(port) for port in image.ports],
        "executor_opts": {k: dict(v) for k, v in image.executor_opts.items()},
        "pull_policy": list(image.pull_policy) if image.pull_policy is not None else None,
    }


def _service(service: Service) -> dict[str, Any]:
    return {
        **_image(service.image),
        "alias": service.alias,
        "command": list(service.command) if service.command is not None else None,
        "variables": [{"key": v.key, "value": v.value} for v in service.variables],
    }


def _artifacts(artifacts: Artifacts | None) -> list[dict[str, Any]]:
    if artifacts is None:
        return []
    entries: list[dict[str, Any]] = []
    if artifacts.paths or artifacts.untracked:
        archive: dict[str, Any] = {
            "name": artifacts.name,
            "untracked": artifacts.untracked,
            "paths": list(artifacts.paths),
        }
        if artifacts.exclude:
            archive["exclude"] = list(artifacts.exclude)
        archive.update(
            when=artifacts.when.value,
            expire_in=artifacts.expire_in,
            artifact_type="archive",
            artifact_format="zip",
        )
        entries.append(archive)
    for report in artifacts.reports:
        name, fmt = REPORT_FILES[report.type]
        entries.append(
            {
                "name": name,
                "paths": list(report.paths),
                "when": "always",
                "expire_in": artifacts.expire_in,
                "artifact_type": report.type,
                "artifact_format": fmt,
            }
        )
    return entries


def _cache(cache: Cache, suffix: str) -> dict[str, Any]:
    return {
        "key": cache.key + suffix,
        "untracked": cache.untracked,
        "paths": list(cache.paths),
        "policy": cache.policy.value,
        "when": cache.when.value,
        "fallback_keys": [key + suffix for key in cache.fallback_keys],
    }


def _steps(job: PipelineJob, timeout: int) -> list[dict[str, Any]]:
    steps = [
        {
            "name": "script",
            "script": [*job.before_script, *job.script],
            "timeout": timeout,
            "when": "on_success",
            "allow_failure": False,
        }
    ]
    if job.after_script:
        steps.append(
            {
                "name": "after_script",
                "script": list(job.after_script),
                "timeout": timeout,
                "when": "always",
                "allow_failure": True,
            }
        )
    return steps


def _git_info(checkout: Checkout, repo_url: str, pipeline_id: int, depth: int) -> dict[str, Any]:
    refspecs = [f"+refs/pipelines/{pipeline_id}:refs/pipelines/{pipeline_id}"]
    if depth > 0 and checkout.ref_type is RefType.TAG:
        refspecs.append(f"+refs/tags/{checkout.ref_name}:refs/tags/{checkout.ref_name}")
    elif depth > 0:
        refspecs.append(f"+refs/heads/{checkout.ref_name}:refs/remotes/origin/{checkout.ref_name}")
    else:
        refspecs += ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]
    return {
        "repo_url": repo_url,
        "ref": checkout.ref_name,
        "sha": checkout.sha,
        "before_sha": checkout.before_sha,
        "ref_type": checkout.ref_type.value,
        "refspecs": refspecs,
        "depth": depth,
        "repo_object_format": checkout.object_format,
        "protected": is_protected(checkout),
    }


def build_job_payload(
    pipeline: Pipeline,
    job: PipelineJob,
    *,
    job_id: int,
    job_token: str,
    server_url: str,
    repo_url: str,
    checkout: Checkout,
    dependencies: Sequence[tuple[int, str, str]],
    pipeline_id: int = 1,
    project_id: int = 1,
) -> dict[str, Any]:
    """Return the JobResponse JSON GitLab would send for ``job``.

    ``dependencies`` are ``(job id, job name, artifacts file name)`` of the jobs whose artifacts
    this job downloads (``Pipeline.artifact_sources``); an empty file name means that job left
    no archive, and the entry then has no ``artifacts_file``, as in GitLab.
    """
    timeout = job.timeout or DEFAULT_TIMEOUT
    suffix = "-protected" if is_protected(checkout) else "-non_protected"
    return {
        "id": job_id,
        "token": job_token,
        "allow_git_fetch": True,
        "job_info": _job_info(job, checkout, job_id, pipeline_id, project_id),
        "git_info": _git_info(checkout, repo_url, pipeline_id, _git_depth(pipeline, job)),
        "runner_info": {"timeout": timeout, "runner_session_url": None},
        "variables": _variables(
            pipeline,
            job,
            checkout,
            job_id=job_id,
            job_token=job_token,
            server_url=server_url,
            repo_url=repo_url,
            pipeline_id=pipeline_id,
            project_id=project_id,
        ),
        "steps": _steps(job, timeout),
        "hooks": _hooks(job),
        "image": _image(job.image) if job.image is not None else None,
        "services": [_service(s) for s in job.services],
        "artifacts": _artifacts(job.artifacts),
        "cache": [_cache(c, suffix) for c in job.caches],
        "credentials": [],
        "features": {"trace_sections": True, "failure_reasons": list(FAILURE_REASONS)},
        "dependencies": [_dependency(dep, job_token) for dep in dependencies],
    }


def _job_info(job: PipelineJob, checkout: Checkout, job_id: int, pipeline_id: int,
              project_id: int) -> dict[str, Any]:
    return {
        "id": job_id,
        "name": job.name,
        "stage": job.stage,
        "pipeline_id": pipeline_id,
        "project_id": project_id,
        "project_name": checkout.project_name,
        "project_full_path": checkout.project_path,
    }


def _hooks(job: PipelineJob) -> list[dict[str, Any]]:
    if not job.pre_get_sources_script:
        return []
    return [{"name": "pre_get_sources_script", "script": list(job.pre_get_sources_script)}]


def _dependency(dependency: tuple[int, str, str], job_token: str) -> dict[str, Any]:
    dep_id, name, filename = dependency
    # current GitLab sends the running job's token for every dependency
    entry: dict[str, Any] = {"id": dep_id, "name": name, "token": job_token}
    if filename:
        entry["artifacts_file"] = {"filename": filename, "size": 0}
    return entry
