"""The helper plan: everything the helper needs to know about one job, as data.

Pure: no I/O. The runner builds a :class:`HelperPlan` from the job payload, the config and the
job's variables (it resolves ``GIT_*``, ``CACHE_*`` and ``ARTIFACT_*`` settings, expands cache
keys, signs remote-cache URLs) and writes it as JSON into the job's run directory (shell
executor) or the per-job Secret (kubernetes executor). The helper reads it back with
:func:`parse_plan`. Secrets are not in the plan, except the pre-signed cache URLs: the job token
reaches the helper only through the ``CI_JOB_TOKEN`` environment variable, and the plan file is
written 0600.

Paths: ``project_dir`` must lie inside ``builds_dir`` (the helper refuses to touch anything
else). ``cache_dir`` is the directory holding *this project's* cache keys, i.e.
``<runner cache_dir>/<project path>`` (the runner computes the slug), so a local archive lives
at ``<cache_dir>/<key>/cache.zip`` (``cache.tar.zst`` for tarzstd), like gitlab-runner's.
Remote-cache entries also keep their last archive there, which is how an unchanged cache is
recognised without downloading it again.

This module is the contract between the runner and ``python -m skyrunner.helper``; it imports
only the standard library so that it runs in any job image that has python3.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ArchiveFormat",
    "ArtifactEntry",
    "ArtifactFormat",
    "CacheEntry",
    "CachePolicy",
    "CompressionLevel",
    "DependencyEntry",
    "GitPlan",
    "GitStrategy",
    "HelperPlan",
    "JobStatus",
    "RemoteCacheUrls",
    "SubmoduleStrategy",
    "When",
    "parse_plan",
    "render_plan",
    "when_matches",
]


class GitStrategy(enum.StrEnum):
    CLONE = "clone"
    FETCH = "fetch"
    NONE = "none"
    EMPTY = "empty"


class SubmoduleStrategy(enum.StrEnum):
    NONE = "none"
    NORMAL = "normal"
    RECURSIVE = "recursive"


class CachePolicy(enum.StrEnum):
    PULL = "pull"
    PUSH = "push"
    PULL_PUSH = "pull-push"


class When(enum.StrEnum):
    """When a cache or artifact is saved, relative to the job's result."""

    ON_SUCCESS = "on_success"
    ON_FAILURE = "on_failure"
    ALWAYS = "always"


class JobStatus(enum.StrEnum):
    """The job's result as the save and upload steps see it (``--job-status``)."""

    SUCCESS = "success"
    FAILED = "failed"


def when_matches(when: When, status: JobStatus) -> bool:
    """Return True when something saved ``when`` is saved for a job that ended ``status``."""
    if when is When.ALWAYS:
        return True
    return (when is When.ON_SUCCESS) == (status is JobStatus.SUCCESS)


class ArchiveFormat(enum.StrEnum):
    """Cache archive format (``CACHE_COMPRESSION_FORMAT``)."""

    ZIP = "zip"
    TARZSTD = "tarzstd"


class ArtifactFormat(enum.StrEnum):
    ZIP = "zip"
    GZIP = "gzip"
    RAW = "raw"


class CompressionLevel(enum.StrEnum):
    FASTEST = "fastest"
    FAST = "fast"
    DEFAULT = "default"
    SLOW = "slow"
    SLOWEST = "slowest"


@dataclass(frozen=True, slots=True)
class GitPlan:
    """How to get the sources; ``repo_url`` carries no credentials."""

    repo_url: str
    sha: str
    ref: str = ""
    ref_type: str = "branch"
    refspecs: tuple[str, ...] = ()
    depth: int = 0
    object_format: str = "sha1"
    strategy: GitStrategy = GitStrategy.FETCH
    checkout: bool = True
    clean_flags: tuple[str, ...] = ("-ffdx",)
    fetch_extra_flags: tuple[str, ...] = ("--prune", "--quiet")
    submodule_strategy: SubmoduleStrategy = SubmoduleStrategy.NONE
    submodule_depth: int = 0
    submodule_paths: tuple[str, ...] = ()
    submodule_update_flags: tuple[str, ...] = ()
    lfs_skip_smudge: bool = False
    attempts: int = 1


@dataclass(frozen=True, slots=True)
class RemoteCacheUrls:
    """Pre-signed URLs of one remote (S3-compatible) cache object; the helper holds no credentials."""

    get_url: str
    put_url: str


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One ``cache[]`` entry with its key already expanded and sanitised.

    ``remote`` maps each key (``key`` and every fallback key) to its signed URLs when a remote
    cache is configured; without it the archive lives under ``HelperPlan.cache_dir``.
    """

    key: str
    paths: tuple[str, ...] = ()
    untracked: bool = False
    policy: CachePolicy = CachePolicy.PULL_PUSH
    when: When = When.ON_SUCCESS
    fallback_keys: tuple[str, ...] = ()
    remote: Mapping[str, RemoteCacheUrls] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ArtifactEntry:
    """One ``artifacts[]`` entry of the payload."""

    name: str = ""
    paths: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    untracked: bool = False
    when: When = When.ON_SUCCESS
    expire_in: str = ""
    artifact_type: str = "archive"
    artifact_format: ArtifactFormat = ArtifactFormat.ZIP


@dataclass(frozen=True, slots=True)
class DependencyEntry:
    """A job whose artifacts this job downloads (only those with an ``artifacts_file``)."""

    id: int
    name: str
    filename: str = ""


@dataclass(frozen=True, slots=True)
class HelperPlan:
    """Everything the helper does for one job."""

    server_url: str
    job_id: int
    project_dir: str
    builds_dir: str
    cache_dir: str
    git: GitPlan
    caches: tuple[CacheEntry, ...] = ()
    artifacts: tuple[ArtifactEntry, ...] = ()
    dependencies: tuple[DependencyEntry, ...] = ()
    cache_format: ArchiveFormat = ArchiveFormat.ZIP
    cache_compression: CompressionLevel = CompressionLevel.DEFAULT
    artifact_compression: CompressionLevel = CompressionLevel.DEFAULT
    cache_request_timeout_s: float = 600.0
    restore_cache_attempts: int = 1
    artifact_download_attempts: int = 1
    upload_attempts: int = 3
    ca_file: str = ""
    retry_backoff_s: float = 1.0
    """First wait before retrying a transfer; doubles per attempt, capped at 30 s."""


def render_plan(plan: HelperPlan) -> str:
    """Serialise a plan to JSON (stable key order)."""
    return json.dumps(dataclasses.asdict(plan), sort_keys=True, indent=1)


def _build(cls: type[Any], data: Mapping[str, Any]) -> Any:
    """Build a frozen dataclass from a JSON object, converting nested types by annotation."""
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        kwargs[f.name] = _convert(f.type, value)
    return cls(**kwargs)


_NESTED: dict[str, type[Any]] = {}
_ENUMS: dict[str, type[enum.StrEnum]] = {
    cls.__name__: cls
    for cls in (
        GitStrategy,
        SubmoduleStrategy,
        CachePolicy,
        When,
        ArchiveFormat,
        ArtifactFormat,
        CompressionLevel,
    )
}


def _convert(annotation: Any, value: Any) -> Any:
    text = str(annotation)
    if text in _ENUMS:
        return _ENUMS[text](value)
    if text in _NESTED:
        return _build(_NESTED[text], value)
    if text.startswith("tuple["):
        inner = text[len("tuple[") : -len(", ...]")]
        return tuple(_convert(inner, item) for item in value)
    if text.startswith("Mapping[str, "):
        inner = text[len("Mapping[str, ") : -1]
        return {k: _convert(inner, v) for k, v in value.items()}
    return value


_NESTED.update({cls.__name__: cls for cls in (GitPlan, RemoteCacheUrls, CacheEntry, ArtifactEntry, DependencyEntry)})


def parse_plan(text: str) -> HelperPlan:
    """Read a plan written by :func:`render_plan`.

    Raises:
        ValueError: the text is not a plan.
    """
    try:
        data = json.loads(text)
        plan = _build(HelperPlan, data)
    except (TypeError, KeyError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a helper plan: {exc}") from exc
    if not isinstance(plan, HelperPlan):
        raise ValueError("not a helper plan")
    return plan
