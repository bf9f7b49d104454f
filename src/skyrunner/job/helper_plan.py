"""Resolving a job's settings into the helper's plan.

Pure: no I/O (``now`` is passed in for signing). gitlab-runner reads the job-setting variables
(``GIT_STRATEGY``, ``GIT_DEPTH``, ``GIT_CLEAN_FLAGS``, ``CACHE_FALLBACK_KEY``...) from the job's
variables; an invalid value is a warning and the default is used (protocol §11). The warnings are
returned so the JobRunner can print them in the trace.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, TypeVar
from urllib.parse import urlsplit

from skyrunner.helper.cachekey import sanitize_cache_key
from skyrunner.helper.plan import (
    ArchiveFormat,
    ArtifactEntry,
    ArtifactFormat,
    CacheEntry,
    CachePolicy,
    CompressionLevel,
    DependencyEntry,
    GitPlan,
    GitStrategy,
    HelperPlan,
    RemoteCacheUrls,
    SubmoduleStrategy,
    When,
)
from skyrunner.helper.urls import strip_credentials
from skyrunner.job.remote_cache import object_name, sign_cache_urls
from skyrunner.job.settings import JobSettings
from skyrunner.job.spec import CacheSpec, JobSpec
from skyrunner.job.variables import JobVariables

__all__ = ["PlanResult", "build_helper_plan", "git_strategy", "project_path"]

SIGNED_URL_LIFETIME_S: Final = 3600 * 6
E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class PlanResult:
    plan: HelperPlan
    warnings: tuple[str, ...] = field(default=())


def project_path(spec: JobSpec, strategy: GitStrategy) -> str:
    """gitlab-runner's project slug: the repo URL's path without ``.git`` (``project-<id>`` else)."""
    path = urlsplit(spec.git_info.repo_url).path.strip("/").removesuffix(".git")
    if not path or ".." in path.split("/"):
        path = f"project-{spec.job_info.project_id}"
    return f"{path}-empty" if strategy is GitStrategy.EMPTY else path


def git_strategy(spec: JobSpec, variables: JobVariables, warnings: list[str]) -> GitStrategy:
    default = GitStrategy.FETCH if spec.allow_git_fetch else GitStrategy.CLONE
    return _choice(variables, "GIT_STRATEGY", GitStrategy, default, warnings)


def _choice(
    variables: JobVariables, key: str, enum: Callable[[str], E], default: E, warnings: list[str]
) -> E:
    text = variables.get(key).strip()
    if not text:
        return default
    try:
        return enum(text)
    except ValueError:
        warnings.append(f"{key}: {text!r} is not a valid value, using {default}")
        return default


def _attempts(variables: JobVariables, key: str, warnings: list[str]) -> int:
    text = variables.get(key).strip()
    if not text:
        return 1
    if text.isdigit() and 1 <= int(text) <= 10:
        return int(text)
    warnings.append(f"{key}: {text!r} is not a number from 1 to 10, using 1")
    return 1


def _flags(variables: JobVariables, key: str, default: str, warnings: list[str]) -> tuple[str, ...]:
    text = variables.get(key)
    if not text.strip():
        text = default
    if text.strip() == "none":
        return ()
    try:
        return tuple(shlex.split(text))
    except ValueError:
        warnings.append(f"{key}: {text!r} cannot be split into flags, using {default!r}")
        return tuple(shlex.split(default))


def _truthy(variables: JobVariables, key: str) -> bool:
    return variables.get(key).strip().lower() in ("1", "true", "yes")


def _git_plan(spec: JobSpec, variables: JobVariables, settings: JobSettings, warnings: list[str]) -> GitPlan:
    submodule_depth_text = variables.get("GIT_SUBMODULE_DEPTH").strip()
    return GitPlan(
        repo_url=settings.sources_repo or strip_credentials(spec.git_info.repo_url),
        sha=spec.git_info.sha,
        ref=spec.git_info.ref,
        ref_type=spec.git_info.ref_type or "branch",
        refspecs=tuple(spec.git_info.refspecs),
        depth=max(spec.git_info.depth, 0),
        object_format=spec.git_info.repo_object_format or "sha1",
        strategy=git_strategy(spec, variables, warnings),
        checkout=variables.get("GIT_CHECKOUT").strip().lower() != "false",
        clean_flags=_flags(variables, "GIT_CLEAN_FLAGS", "-ffdx", warnings),
        fetch_extra_flags=_flags(variables, "GIT_FETCH_EXTRA_FLAGS", "--prune --quiet", warnings),
        submodule_strategy=_choice(variables, "GIT_SUBMODULE_STRATEGY", SubmoduleStrategy,
                                   SubmoduleStrategy.NONE, warnings),
        submodule_depth=int(submodule_depth_text) if submodule_depth_text.isdigit() else max(spec.git_info.depth, 0),
        submodule_paths=tuple(variables.get("GIT_SUBMODULE_PATHS").split()),
        submodule_update_flags=tuple(shlex.split(variables.get("GIT_SUBMODULE_UPDATE_FLAGS") or "")),
        lfs_skip_smudge=_truthy(variables, "GIT_LFS_SKIP_SMUDGE"),
        attempts=_attempts(variables, "GET_SOURCES_ATTEMPTS", warnings),
    )  # fmt: skip


def _cache_key(raw: str, spec: JobSpec, variables: JobVariables, warnings: list[str]) -> str | None:
    key = variables.expand(raw) or f"{spec.name}/{spec.git_info.ref}"
    clean = sanitize_cache_key(key)
    if clean is None:
        warnings.append(f"cache key {key!r} could not be sanitised, skipping it")
    return clean


def _cache_entries(
    spec: JobSpec, variables: JobVariables, settings: JobSettings, now: datetime, warnings: list[str]
) -> tuple[CacheEntry, ...]:
    fallback_global = variables.get("CACHE_FALLBACK_KEY").strip()
    if fallback_global.endswith("-protected"):
        warnings.append(f"CACHE_FALLBACK_KEY {fallback_global!r} ends in -protected and is not used")
        fallback_global = ""
    entries = []
    for cache in spec.cache:
        if not (cache.paths or cache.untracked):
            continue
        entry = _cache_entry(cache, spec, variables, settings, now, warnings, fallback_global)
        if entry is not None:
            entries.append(entry)
    return tuple(entries)


def _cache_entry(
    cache: CacheSpec, spec: JobSpec, variables: JobVariables, settings: JobSettings, now: datetime,
    warnings: list[str], fallback_global: str,
) -> CacheEntry | None:  # fmt: skip
    key = _cache_key(cache.key, spec, variables, warnings)
    if key is None:
        return None
    policy = _enum_value(CachePolicy, variables.expand(cache.policy) or "pull-push", "cache policy", warnings)
    if policy is None:
        return None
    fallbacks = [k for raw in cache.fallback_keys if (k := _cache_key(raw, spec, variables, warnings))]
    if fallback_global and (k := sanitize_cache_key(variables.expand(fallback_global))):
        fallbacks.append(k)
    remote: dict[str, RemoteCacheUrls] = {}
    if settings.remote_cache is not None:
        for name in (key, *fallbacks):
            obj = object_name(settings.remote_cache, short_token=settings.short_token,
                              project_id=spec.job_info.project_id, key=name)  # fmt: skip
            remote[name] = sign_cache_urls(
                settings.remote_cache, obj, now=now, expires_s=SIGNED_URL_LIFETIME_S
            )
    return CacheEntry(
        key=key,
        paths=tuple(cache.paths),
        untracked=cache.untracked,
        policy=policy,
        when=_enum_value(When, cache.when or "on_success", "cache when", warnings) or When.ON_SUCCESS,
        fallback_keys=tuple(dict.fromkeys(fallbacks)),
        remote=remote,
    )


def _enum_value(enum: Callable[[str], E], text: str, what: str, warnings: list[str]) -> E | None:
    try:
        return enum(text)
    except ValueError:
        warnings.append(f"{what} {text!r} is not valid")
        return None


def _artifacts(spec: JobSpec, variables: JobVariables, warnings: list[str]) -> tuple[ArtifactEntry, ...]:
    entries = []
    for art in spec.artifacts:
        fmt = _enum_value(ArtifactFormat, art.artifact_format or "zip", "artifact format", warnings)
        if fmt is None:
            continue
        entries.append(
            ArtifactEntry(
                name=variables.expand(art.name),
                paths=tuple(variables.expand(p) for p in art.paths),
                exclude=tuple(variables.expand(p) for p in art.exclude),
                untracked=art.untracked,
                when=_enum_value(When, art.when or "on_success", "artifacts when", warnings)
                or When.ON_SUCCESS,
                expire_in=art.expire_in,
                artifact_type=art.artifact_type or "archive",
                artifact_format=fmt,
            )
        )
    return tuple(entries)


def _request_timeout_s(variables: JobVariables, warnings: list[str]) -> float:
    text = variables.get("CACHE_REQUEST_TIMEOUT").strip()
    if not text:
        return 600.0
    if text.isdigit() and int(text) > 0:
        return int(text) * 60.0
    warnings.append(f"CACHE_REQUEST_TIMEOUT: {text!r} is not a number of minutes, using 10")
    return 600.0


def build_helper_plan(
    spec: JobSpec,
    variables: JobVariables,
    *,
    project_dir: str,
    builds_dir: str,
    cache_dir: str,
    settings: JobSettings,
    now: datetime,
) -> PlanResult:
    """Resolve everything the helper needs for ``spec``."""
    warnings: list[str] = []
    plan = HelperPlan(
        server_url=settings.server_url,
        job_id=spec.id,
        project_dir=project_dir,
        builds_dir=builds_dir,
        cache_dir=cache_dir,
        git=_git_plan(spec, variables, settings, warnings),
        caches=_cache_entries(spec, variables, settings, now, warnings),
        artifacts=_artifacts(spec, variables, warnings),
        dependencies=tuple(
            DependencyEntry(id=dep.id, name=dep.name, filename=dep.artifacts_file.filename)
            for dep in spec.dependencies
            if dep.artifacts_file is not None
        ),
        cache_format=_choice(variables, "CACHE_COMPRESSION_FORMAT", ArchiveFormat, ArchiveFormat.ZIP, warnings),
        cache_compression=_choice(variables, "CACHE_COMPRESSION_LEVEL", CompressionLevel,
                                  CompressionLevel.DEFAULT, warnings),
        artifact_compression=_choice(variables, "ARTIFACT_COMPRESSION_LEVEL", CompressionLevel,
                                     CompressionLevel.DEFAULT, warnings),
        cache_request_timeout_s=_request_timeout_s(variables, warnings),
        restore_cache_attempts=_attempts(variables, "RESTORE_CACHE_ATTEMPTS", warnings),
        artifact_download_attempts=_attempts(variables, "ARTIFACT_DOWNLOAD_ATTEMPTS", warnings),
        ca_file=settings.ca_file,
    )  # fmt: skip
    return PlanResult(plan=plan, warnings=tuple(warnings))
