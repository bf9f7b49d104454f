"""The job payload (GitLab's JobResponse, protocol §4) as GitLab builds it.

Pure: no I/O. Values in (server address, commit, job settings, the clock as ``now``), a dict out
with every key GitLab sends, in GitLab's order. Two steps, like GitLab: ``build_job_payload`` when
the job is created, ``finalize_for_runner`` when a runner picks it (effective timeout capped by the
runner's maximum_timeout, CI_RUNNER_* and CI_JOB_STARTED_AT, dependency archives, queue info).
``required_features`` is GitLab's ``Ci::Build::RUNNER_FEATURES`` check.

Left out, as GitLab leaves them out when unused: ``inputs`` (only for runners with job_inputs),
``run`` (steps syntax), ``secrets``/``policy_options`` (EE). There is no container registry or
dependency proxy, so ``credentials`` is empty and CI_REGISTRY_* / CI_DEPENDENCY_PROXY_* are not sent.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from ._coordinator_model import FAILURE_REASONS, Archive, FakeRunner

__all__ = [
    "CommitInfo",
    "JobInputs",
    "ServerInfo",
    "build_job_payload",
    "finalize_for_runner",
    "normalize_variables",
    "required_features",
]

SERVER_VERSION: Final = "18.6.0"
DEFAULT_BRANCH: Final = "main"
_USER: Final = {"id": 1, "login": "root", "name": "Administrator", "email": "admin@example.com"}


@dataclass(frozen=True, slots=True)
class ServerInfo:
    url: str  # http://127.0.0.1:<port>
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class CommitInfo:
    sha: str
    before_sha: str
    ref: str
    ref_type: str  # "branch" | "tag"
    author: str  # "Name <email>"
    timestamp: str  # ISO 8601
    message: str


@dataclass(frozen=True, slots=True)
class JobInputs:
    job_id: int
    token: str
    name: str
    stage: str
    pipeline_id: int
    project_id: int
    project_path: str
    script: Sequence[str]
    after_script: Sequence[str] | None
    variables: Sequence[Mapping[str, Any]]
    timeout: int
    depth: int
    allow_git_fetch: bool
    artifacts: Sequence[Mapping[str, Any]] | None
    cache: Sequence[Mapping[str, Any]] | None
    dependencies: Sequence[Mapping[str, Any]] | None
    image: Mapping[str, Any] | None
    services: Sequence[Mapping[str, Any]] | None
    hooks: Sequence[Mapping[str, Any]] | None
    features: Mapping[str, Any] | None
    created_at: datetime


def build_job_payload(server: ServerInfo, commit: CommitInfo, job: JobInputs) -> dict[str, Any]:
    """Build the JobResponse GitLab would send for ``job`` (before a runner is known)."""
    protected = commit.ref_type == "branch" and commit.ref == DEFAULT_BRANCH
    repo_url = _repo_url(server, job)
    payload: dict[str, Any] = {
        "id": job.job_id,
        "token": job.token,
        "allow_git_fetch": job.allow_git_fetch,
        "job_info": _job_info(job),
        "git_info": {
            "repo_url": repo_url,
            "ref": commit.ref,
            "sha": commit.sha,
            "before_sha": commit.before_sha,
            "ref_type": commit.ref_type,
            "refspecs": _refspecs(job.pipeline_id, commit, job.depth),
            "depth": job.depth,
            "repo_object_format": "sha1",
            "protected": protected,
        },
        "runner_info": {"uuid": None, "timeout": job.timeout, "runner_session_url": None},
        "variables": [*_predefined_variables(server, commit, job, protected), *job.variables],
        "steps": _steps(job),
    }
    if job.hooks:
        payload["hooks"] = [{"name": h["name"], "script": list(h["script"])} for h in job.hooks]
    payload["image"] = _image(job.image) if job.image else None
    payload["services"] = [_service(s) for s in job.services or ()]
    payload["artifacts"] = [_artifact(a) for a in job.artifacts] if job.artifacts else None
    suffix = "-protected" if protected else "-non_protected"
    payload["cache"] = [_cache(c, suffix) for c in job.cache or ()]
    payload["credentials"] = []
    payload["features"] = {"trace_sections": True, "failure_reasons": list(FAILURE_REASONS)}
    payload["features"].update(job.features or {})
    payload["dependencies"] = [
        {"id": d["id"], "name": d["name"], "token": job.token, **d} for d in job.dependencies or ()
    ]
    return payload


def normalize_variables(
    variables: Sequence[Mapping[str, Any]] | Mapping[str, str] | None,
) -> list[dict[str, Any]]:
    """Give user variables GitLab's wire shape: public/masked always, file/raw only when true."""
    if variables is None:
        return []
    if isinstance(variables, Mapping):
        return [_var(key, value) for key, value in variables.items()]
    result = []
    for item in variables:
        var = _var(
            item["key"], item["value"], public=item.get("public", True), masked=item.get("masked", False)
        )
        var.update({flag: True for flag in ("file", "raw") if item.get(flag)})
        result.append(var)
    return result


def finalize_for_runner(
    payload: Mapping[str, Any],
    *,
    runner: FakeRunner,
    archives: Mapping[int, Archive],
    started_at: datetime,
    queued_for_s: int,
    queue_size: int,
) -> dict[str, Any]:
    """Return the payload as sent to ``runner``: what GitLab only knows once a runner picks the job."""
    sent = copy.deepcopy(dict(payload))
    timeout = int(sent["runner_info"]["timeout"])
    if runner.maximum_timeout:
        timeout = min(timeout, runner.maximum_timeout)
    sent["runner_info"]["timeout"] = timeout
    for step in sent.get("steps") or ():
        step["timeout"] = timeout
    info = sent["job_info"]
    info.update(time_in_queue_seconds=queued_for_s, queue_size=queue_size, queue_depth=queue_size)
    variables: list[dict[str, Any]] = sent["variables"]
    _insert_after(variables, "CI_JOB_TOKEN", [_var("CI_JOB_STARTED_AT", _iso(started_at))])
    runner_vars = [
        _var("CI_RUNNER_ID", str(runner.id)),
        _var("CI_RUNNER_DESCRIPTION", runner.description),
        _var("CI_RUNNER_TAGS", json.dumps(list(runner.tag_list))),
    ]
    _insert_after(variables, "CI_COMMIT_AUTHOR", runner_vars)
    for dep in sent.get("dependencies") or ():
        dep["token"] = sent["token"]  # current GitLab: always the running job's token
        archive = archives.get(int(dep["id"]))
        if archive is not None and "artifacts_file" not in dep:
            dep["artifacts_file"] = {"filename": archive.filename, "size": len(archive.data)}
    return sent


def required_features(payload: Mapping[str, Any], allow_failure_exit_codes: Sequence[int]) -> tuple[str, ...]:
    """Return the runner features the job needs (Ci::Build::RUNNER_FEATURES)."""
    artifacts = payload.get("artifacts") or ()
    refspecs = (payload.get("git_info") or {}).get("refspecs") or ()
    needs = {
        "upload_multiple_artifacts": any(a.get("artifact_type", "archive") != "archive" for a in artifacts),
        "artifacts_exclude": any(a.get("exclude") for a in artifacts),
        "refspecs": any("refs/merge-requests/" in spec for spec in refspecs),
        "multi_build_steps": any(s.get("name") == "release" for s in payload.get("steps") or ()),
        "return_exit_code": bool(allow_failure_exit_codes),
        "fallback_cache_keys": any(c.get("fallback_keys") for c in payload.get("cache") or ()),
    }
    return tuple(name for name, needed in needs.items() if needed)


def _repo_url(server: ServerInfo, job: JobInputs) -> str:
    return f"http://gitlab-ci-token:{job.token}@{server.host}:{server.port}/{job.project_path}.git"


def _job_info(job: JobInputs) -> dict[str, Any]:
    namespace_id = 1000 + job.project_id
    return {
        "id": job.job_id,
        "name": job.name,
        "stage": job.stage,
        "pipeline_id": job.pipeline_id,
        "project_id": job.project_id,
        "project_name": job.project_path.rsplit("/", 1)[-1],
        "project_full_path": job.project_path,
        "namespace_id": namespace_id,
        "root_namespace_id": namespace_id,
        "organization_id": 1,
        "instance_id": "00000000-0000-4000-8000-000000000000",
        "instance_uuid": "00000000-0000-4000-8000-000000000001",
        "user_id": _USER["id"],
        "scoped_user_id": None,
        "time_in_queue_seconds": 0,
        "project_jobs_running_on_instance_runners_count": "0",
        "queue_size": 0,
        "queue_depth": 0,
    }


def _refspecs(pipeline_id: int, commit: CommitInfo, depth: int) -> list[str]:
    # Ci::BuildRunnerPresenter#refspecs: persistent pipeline ref first, then the ref or wildcards
    persistent = f"refs/pipelines/{pipeline_id}"
    specs = [f"+{persistent}:{persistent}"]
    branch = "+refs/heads/{0}:refs/remotes/origin/{0}"
    tag = "+refs/tags/{0}:refs/tags/{0}"
    if depth > 0:
        specs.append((branch if commit.ref_type == "branch" else tag).format(commit.ref))
    else:
        specs += [branch.format("*"), tag.format("*")]
    return specs


def _steps(job: JobInputs) -> list[dict[str, Any]]:
    steps = [_step("script", job.script, job.timeout, "on_success", allow_failure=False)]
    if job.after_script:
        steps.append(_step("after_script", job.after_script, job.timeout, "always", allow_failure=True))
    return steps


def _step(
    name: str, script: Sequence[str], timeout: int, when: str, *, allow_failure: bool
) -> dict[str, Any]:
    return {
        "name": name,
        "script": list(script),
        "timeout": timeout,
        "when": when,
        "allow_failure": allow_failure,
    }


def _image(image: Mapping[str, Any]) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": None,
        "entrypoint": None,
        "ports": [],
        "executor_opts": {},
        "pull_policy": None,
    }
    return {**base, **image}


def _service(service: Mapping[str, Any]) -> dict[str, Any]:
    return {**_image({}), "alias": None, "command": None, "variables": [], **service}


def _artifact(entry: Mapping[str, Any]) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "artifacts", "untracked": False, "paths": [], "when": "on_success"}
    base.update(expire_in=None, artifact_type="archive", artifact_format="zip")
    merged = {**base, **entry}
    if not merged.get("exclude"):
        merged.pop("exclude", None)  # GitLab leaves exclude out when empty
    return merged


def _cache(entry: Mapping[str, Any], suffix: str) -> dict[str, Any]:
    # GitLab appends -protected / -non_protected to key and fallback_keys (separate caches, default on)
    def suffixed(key: str) -> str:
        return key if key.endswith(("-protected", "-non_protected")) else key + suffix

    base = {"key": "default", "untracked": False, "paths": [], "policy": "pull-push", "when": "on_success"}
    merged: dict[str, Any] = {**base, "fallback_keys": [], **entry}
    merged["key"] = suffixed(str(merged["key"]))
    merged["fallback_keys"] = [suffixed(str(k)) for k in merged["fallback_keys"]]
    return merged


def _var(key: str, value: Any, *, public: bool = True, masked: bool = False) -> dict[str, Any]:
    return {"key": key, "value": str(value), "public": public, "masked": masked}


def _insert_after(variables: list[dict[str, Any]], key: str, new: list[dict[str, Any]]) -> None:
    at = next((i + 1 for i, var in enumerate(variables) if var["key"] == key), len(variables))
    variables[at:at] = new


def _slug(value: str, limit: int = 63) -> str:
    return re.sub(r"[^a-z0-9]", "-", value.lower())[:limit].strip("-")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _predefined_variables(
    server: ServerInfo, commit: CommitInfo, job: JobInputs, protected: bool
) -> list[dict[str, Any]]:
    """Return the CI_* variables GitLab sends, in GitLab's order (no CI_PROJECT_DIR: runner-side)."""
    project_url = f"{server.url}/{job.project_path}"
    namespace, _, project_name = job.project_path.rpartition("/")
    title, _, description = commit.message.partition("\n")
    major, minor, patch = SERVER_VERSION.split(".")
    ref_var = ("CI_COMMIT_BRANCH" if commit.ref_type == "branch" else "CI_COMMIT_TAG", commit.ref)
    pairs: list[tuple[str, Any]] = [
        ("CI_PIPELINE_ID", job.pipeline_id),
        ("CI_PIPELINE_URL", f"{project_url}/-/pipelines/{job.pipeline_id}"),
        ("CI_JOB_ID", job.job_id),
        ("CI_JOB_URL", f"{project_url}/-/jobs/{job.job_id}"),
    ]
    variables = [_var(k, v) for k, v in pairs]
    variables.append(_var("CI_JOB_TOKEN", job.token, public=False, masked=True))
    variables.append(_var("CI_REPOSITORY_URL", _repo_url(server, job), public=False))
    pairs = [
        ("CI_JOB_NAME", job.name), ("CI_JOB_NAME_SLUG", _slug(job.name)), ("CI_JOB_STAGE", job.stage),
        ("CI_NODE_TOTAL", 1), *([("GIT_DEPTH", job.depth)] if job.depth > 0 else []),
        ("CI", "true"), ("GITLAB_CI", "true"),
        ("CI_SERVER_FQDN", f"{server.host}:{server.port}"), ("CI_SERVER_URL", server.url),
        ("CI_SERVER_HOST", server.host), ("CI_SERVER_PORT", server.port), ("CI_SERVER_PROTOCOL", "http"),
        ("CI_SERVER_SHELL_SSH_HOST", server.host), ("CI_SERVER_SHELL_SSH_PORT", 22),
        ("CI_SERVER_NAME", "GitLab"), ("CI_SERVER_VERSION", SERVER_VERSION),
        ("CI_SERVER_VERSION_MAJOR", major), ("CI_SERVER_VERSION_MINOR", minor),
        ("CI_SERVER_VERSION_PATCH", patch), ("CI_SERVER_REVISION", "fakefake"), ("GITLAB_FEATURES", ""),
        ("CI_PROJECT_ID", job.project_id), ("CI_PROJECT_NAME", project_name),
        ("CI_PROJECT_TITLE", project_name),
        ("CI_PROJECT_DESCRIPTION", ""), ("CI_PROJECT_PATH", job.project_path),
        ("CI_PROJECT_PATH_SLUG", _slug(job.project_path, 1000)), ("CI_PROJECT_NAMESPACE", namespace),
        ("CI_PROJECT_NAMESPACE_ID", 1000 + job.project_id),
        ("CI_PROJECT_ROOT_NAMESPACE", job.project_path.split("/", 1)[0]), ("CI_PROJECT_URL", project_url),
        ("CI_PROJECT_VISIBILITY", "private"), ("CI_PROJECT_REPOSITORY_LANGUAGES", ""),
        ("CI_PROJECT_CLASSIFICATION_LABEL", ""), ("CI_DEFAULT_BRANCH", DEFAULT_BRANCH),
        ("CI_CONFIG_PATH", ".gitlab-ci.yml"), ("CI_API_V4_URL", f"{server.url}/api/v4"),
        ("CI_API_GRAPHQL_URL", f"{server.url}/api/graphql"),
        ("CI_PIPELINE_IID", job.pipeline_id), ("CI_PIPELINE_SOURCE", "push"),
        ("CI_PIPELINE_CREATED_AT", _iso(job.created_at)),
        ("CI_COMMIT_SHA", commit.sha), ("CI_COMMIT_SHORT_SHA", commit.sha[:8]),
        ("CI_COMMIT_BEFORE_SHA", commit.before_sha), ("CI_COMMIT_REF_NAME", commit.ref),
        ("CI_COMMIT_REF_SLUG", _slug(commit.ref)), ref_var,
        ("CI_COMMIT_MESSAGE", commit.message), ("CI_COMMIT_TITLE", title),
        ("CI_COMMIT_DESCRIPTION", description.lstrip("\n")),
        ("CI_COMMIT_REF_PROTECTED", str(protected).lower()), ("CI_COMMIT_TIMESTAMP", commit.timestamp),
        ("CI_COMMIT_AUTHOR", commit.author),
        ("GITLAB_USER_ID", _USER["id"]), ("GITLAB_USER_EMAIL", _USER["email"]),
        ("GITLAB_USER_LOGIN", _USER["login"]), ("GITLAB_USER_NAME", _USER["name"]),
    ]  # fmt: skip
    return variables + [_var(k, v) for k, v in pairs]
