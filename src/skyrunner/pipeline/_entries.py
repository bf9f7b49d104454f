"""Parsers for single keyword values: variables, scripts, image, services, artifacts, cache, retry.

Pure: no I/O. Each function takes the raw YAML value, the place it was written and the job
name (for the message), checks it the way GitLab's ``Gitlab::Ci::Config::Entry`` classes do,
and returns values of ``model.py``. A bad value raises a one-line ``PipelineFileError``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from typing import Any

from skyrunner.pipeline._compose import glob_regex
from skyrunner.pipeline._durations import parse_duration
from skyrunner.pipeline._yaml import Loc, MarkedMap, fail
from skyrunner.pipeline.model import (
    Artifacts,
    Cache,
    CachePolicy,
    Image,
    Report,
    Retry,
    SaveWhen,
    Service,
    Variable,
)

__all__ = [
    "REPORT_TYPES",
    "check_keys",
    "parse_allow_failure",
    "parse_artifacts",
    "parse_caches",
    "parse_image",
    "parse_retry",
    "parse_script",
    "parse_service",
    "parse_strings",
    "parse_timeout",
    "parse_variables",
]

RETRY_WHEN = frozenset(
    {
        "always",
        "unknown_failure",
        "script_failure",
        "api_failure",
        "stuck_or_timeout_failure",
        "runner_system_failure",
        "runner_unsupported",
        "stale_schedule",
        "job_execution_timeout",
        "archived_failure",
        "unmet_prerequisites",
        "scheduler_failure",
        "data_integrity_failure",
    }
)
# artifacts:reports types GitLab knows; file names and formats live in payload.py
REPORT_TYPES = frozenset(
    {
        "accessibility",
        "annotations",
        "api_fuzzing",
        "browser_performance",
        "cluster_image_scanning",
        "codequality",
        "container_scanning",
        "coverage_fuzzing",
        "coverage_report",
        "cyclonedx",
        "dast",
        "dependency_scanning",
        "dotenv",
        "junit",
        "license_scanning",
        "load_performance",
        "metrics",
        "requirements",
        "requirements_v2",
        "sast",
        "secret_detection",
        "terraform",
        "lsif",
        "repository_xray",
    }
)
COVERAGE_FORMATS = ("cobertura", "jacoco")
MAX_TIMEOUT = 30 * 86400
_IMAGE_KEYS = {"name", "entrypoint", "pull_policy", "ports", "docker", "kubernetes"}
_SERVICE_KEYS = _IMAGE_KEYS | {"alias", "command", "variables"}
_ARTIFACT_KEYS = {
    "paths",
    "exclude",
    "expose_as",
    "name",
    "untracked",
    "when",
    "expire_in",
    "reports",
    "public",
    "access",
}
_CACHE_KEYS = {"key", "paths", "untracked", "policy", "when", "fallback_keys", "unprotect"}


def _loc(value: object, fallback: Loc) -> Loc:
    return value.loc if isinstance(value, MarkedMap) else getattr(value, "loc", fallback)


def _flatten(value: list[Any], depth: int = 0) -> list[Any]:
    out: list[Any] = []
    for item in value:
        out.extend(_flatten(item, depth + 1) if isinstance(item, list) and depth < 10 else [item])
    return out


def parse_strings(value: object, loc: Loc, job: str | None, key: str) -> tuple[str, ...]:
    """A string or a list of strings (numbers are accepted as text)."""
    items = [value] if isinstance(value, str | int | float) and not isinstance(value, bool) else value
    if not isinstance(items, list) or not all(
        isinstance(i, str | int | float) and not isinstance(i, bool) for i in _flatten(items)
    ):
        fail(loc, f"{key}: must be a string or a list of strings", job)
    return tuple(str(i) for i in _flatten(items))


def parse_script(value: object, loc: Loc, job: str | None, key: str) -> tuple[str, ...]:
    """A script: a string or a list of strings, nested lists (from ``!reference``) flattened."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in _flatten(items)):
        fail(loc, f"{key}: must be a string or a list of strings", job)
    return tuple(_flatten(items))


def _scalar(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return str(value)


def parse_variables(value: object, loc: Loc, job: str | None, key: str = "variables") -> tuple[Variable, ...]:
    """A ``variables`` hash; ``{value, description, expand, options}`` hashes allowed."""
    if value is None:
        return ()
    if not isinstance(value, MarkedMap):
        fail(loc, f"{key}: must be a hash of variable names and values", job)
    result = []
    for name, raw in value.items():
        where = value.key_loc(name)
        expand: object = True
        if isinstance(raw, MarkedMap):
            extra = sorted(set(raw) - {"value", "description", "expand", "options"})
            if extra:
                fail(where, f'{key}: {name}: unknown keyword "{extra[0]}"', job)
            expand = raw.get("expand", True)
            if not isinstance(expand, bool):
                fail(where, f"{key}: {name}: expand must be true or false", job)
            raw = raw.get("value", "")
        text = _scalar(raw)
        if text is None:
            fail(where, f"{key}: {name}: value must be a string or a number", job)
        result.append(Variable(name, text, raw=not expand))
    return tuple(result)


def _image_fields(value: MarkedMap, job: str | None, key: str) -> Image:
    name = value.get("name")
    if not isinstance(name, str) or not name:
        fail(value.loc, f"{key}: name must be a non-empty string", job)
    entrypoint = (
        parse_strings(value["entrypoint"], value.loc, job, f"{key}:entrypoint")
        if "entrypoint" in value
        else None
    )
    pull = value.get("pull_policy")
    pull_policy = parse_strings(pull, value.loc, job, f"{key}:pull_policy") if pull is not None else None
    for policy in pull_policy or ():
        if policy not in ("always", "if-not-present", "never"):
            fail(value.key_loc("pull_policy"), f'{key}:pull_policy: unknown policy "{policy}"', job)
    ports = []
    for port in value.get("ports") or ():
        ports.append({"number": port} if isinstance(port, int) else dict(port))
    opts = {k: dict(value[k]) for k in ("docker", "kubernetes") if isinstance(value.get(k), MarkedMap)}
    return Image(name, entrypoint, pull_policy, tuple(ports), opts)


def parse_image(value: object, loc: Loc, job: str | None) -> Image | None:
    if value is None:
        return None
    if isinstance(value, str):
        return Image(value)
    if not isinstance(value, MarkedMap):
        fail(loc, "image: must be a string or a hash", job)
    check_keys(value, _IMAGE_KEYS, job, "image")
    return _image_fields(value, job, "image")


def parse_service(value: object, loc: Loc, job: str | None) -> Service:
    if isinstance(value, str):
        return Service(Image(value))
    if not isinstance(value, MarkedMap):
        fail(loc, "services: each service must be a string or a hash", job)
    check_keys(value, _SERVICE_KEYS, job, "services")
    command = None
    if "command" in value:
        command = parse_strings(value["command"], value.loc, job, "services:command")
    alias = value.get("alias")
    return Service(
        _image_fields(value, job, "services"),
        alias=str(alias) if alias is not None else None,
        command=command,
        variables=parse_variables(value.get("variables"), value.loc, job, "services:variables"),
    )


def check_keys(value: MarkedMap, allowed: Collection[str], job: str | None, key: str) -> None:
    """Fail on the first key of ``value`` not in ``allowed``, at that key's line."""
    for name in value:
        if name not in allowed:
            fail(value.key_loc(name), f'{key}: unknown keyword "{name}"', job)


def _save_when(value: object, loc: Loc, job: str | None, key: str) -> SaveWhen:
    try:
        return SaveWhen(str(value) if value is not None else "on_success")
    except ValueError:
        fail(loc, f'{key}: "{value}" is not one of on_success, on_failure, always', job)


def parse_artifacts(value: object, loc: Loc, job: str | None) -> Artifacts | None:
    if value is None:
        return None
    if not isinstance(value, MarkedMap):
        fail(loc, "artifacts: must be a hash", job)
    check_keys(value, _ARTIFACT_KEYS, job, "artifacts")
    expire_in = value.get("expire_in")
    if expire_in is not None and str(expire_in) != "never" and parse_duration(str(expire_in)) is None:
        fail(value.key_loc("expire_in"), f'artifacts:expire_in: "{expire_in}" is not a duration', job)
    untracked = value.get("untracked", False)
    if not isinstance(untracked, bool):
        fail(value.key_loc("untracked"), "artifacts:untracked: must be true or false", job)
    name = value.get("name")
    return Artifacts(
        name=str(name) if name is not None else None,
        paths=parse_strings(value.get("paths", []), value.key_loc("paths"), job, "artifacts:paths"),
        exclude=parse_strings(value.get("exclude", []), value.key_loc("exclude"), job, "artifacts:exclude"),
        untracked=untracked,
        when=_save_when(value.get("when"), value.key_loc("when"), job, "artifacts:when"),
        expire_in=str(expire_in) if expire_in is not None else None,
        reports=_reports(value.get("reports"), value.key_loc("reports"), job),
    )


def _reports(value: object, loc: Loc, job: str | None) -> tuple[Report, ...]:
    if value is None:
        return ()
    if not isinstance(value, MarkedMap):
        fail(loc, "artifacts:reports: must be a hash", job)
    reports = []
    for kind, paths in value.items():
        where = value.key_loc(kind)
        if kind not in REPORT_TYPES:
            fail(where, f'artifacts:reports: unknown report type "{kind}"', job)
        if kind == "coverage_report":
            if not isinstance(paths, MarkedMap) or paths.get("coverage_format") not in COVERAGE_FORMATS:
                fail(
                    where,
                    "artifacts:reports:coverage_report: coverage_format must be cobertura or jacoco",
                    job,
                )
            reports.append(
                Report(
                    str(paths["coverage_format"]),
                    parse_strings(paths.get("path"), where, job, "coverage_report:path"),
                )
            )
            continue
        reports.append(Report(kind, parse_strings(paths, where, job, f"artifacts:reports:{kind}")))
    return tuple(reports)


def parse_caches(value: object, loc: Loc, job: str | None, files: Mapping[str, str]) -> tuple[Cache, ...]:
    """``cache``: a hash or a list of up to four; ``key:files`` hashed from ``files`` blob ids."""
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    if len(items) > 4:
        fail(loc, "cache: no more than 4 caches per job", job)
    return tuple(_cache(item, _loc(item, loc), job, files) for item in items)


def _cache(value: object, loc: Loc, job: str | None, files: Mapping[str, str]) -> Cache:
    if not isinstance(value, MarkedMap):
        fail(loc, "cache: must be a hash", job)
    check_keys(value, _CACHE_KEYS, job, "cache")
    untracked = value.get("untracked", False)
    if not isinstance(untracked, bool):
        fail(value.key_loc("untracked"), "cache:untracked: must be true or false", job)
    policy = value.get("policy", "pull-push")
    if policy not in [p.value for p in CachePolicy] and "$" not in str(policy):
        fail(value.key_loc("policy"), f'cache:policy: "{policy}" is not one of pull-push, pull, push', job)
    return Cache(
        key=_cache_key(value.get("key", "default"), value.key_loc("key"), job, files),
        paths=parse_strings(value.get("paths", []), value.key_loc("paths"), job, "cache:paths"),
        untracked=untracked,
        policy=CachePolicy(policy) if policy in [p.value for p in CachePolicy] else CachePolicy.PULL_PUSH,
        when=_save_when(value.get("when"), value.key_loc("when"), job, "cache:when"),
        fallback_keys=parse_strings(
            value.get("fallback_keys", []), value.key_loc("fallback_keys"), job, "cache:fallback_keys"
        ),
    )


def _cache_key(key: object, loc: Loc, job: str | None, files: Mapping[str, str]) -> str:
    if isinstance(key, MarkedMap):
        if "files_commits" in key:
            fail(loc, "cache:key:files_commits is not supported (use cache:key:files)", job)
        extra = sorted(set(key) - {"files", "prefix"})
        if extra or "files" not in key:
            fail(loc, f'cache:key: unknown keyword "{(extra or ["<no files>"])[0]}"', job)
        patterns = parse_strings(key["files"], loc, job, "cache:key:files")
        if not 1 <= len(patterns) <= 2:
            fail(loc, "cache:key:files: must list one or two files", job)
        # GitLab: SHA1 of the sorted, unique blob ids of the matching files, joined by "-"
        blobs = sorted({files[p] for pattern in patterns for p in _expand_glob(pattern, files) if p in files})
        digest = hashlib.sha1("-".join(blobs).encode()).hexdigest() if blobs else "default"
        prefix = key.get("prefix")
        return "-".join(part for part in (str(prefix) if prefix else "", digest) if part)
    text = _scalar(key)
    if text is None:
        fail(loc, "cache:key: must be a string or a hash with files", job)
    if (
        "/" in text.replace("%2F", "/").replace("%2f", "/")
        or text in (".", "..")
        or text.lower() in ("%2e", "%2e%2e")
    ):
        fail(loc, f'cache:key: "{text}" cannot contain "/" or be "." or ".."', job)
    return text


def _expand_glob(pattern: str, files: Mapping[str, str]) -> list[str]:
    if "*" not in pattern:
        return [pattern]
    regex = glob_regex(pattern)
    return [path for path in files if regex.match(path)]


def parse_retry(value: object, loc: Loc, job: str | None) -> Retry:
    if value is None:
        return Retry()
    if isinstance(value, int) and not isinstance(value, bool):
        value_map: dict[str, Any] = {"max": value}
    elif isinstance(value, MarkedMap):
        check_keys(value, {"max", "when", "exit_codes"}, job, "retry")
        value_map = dict(value)
    else:
        fail(loc, "retry: must be a number or a hash", job)
    count = value_map.get("max", 0)
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 2:
        fail(loc, "retry:max: must be 0, 1 or 2", job)
    when = parse_strings(value_map.get("when", "always"), loc, job, "retry:when")
    for reason in when:
        if reason not in RETRY_WHEN:
            fail(loc, f'retry:when: unknown failure reason "{reason}"', job)
    return Retry(count, when, _exit_codes(value_map.get("exit_codes"), loc, job, "retry:exit_codes"))


def _exit_codes(value: object, loc: Loc, job: str | None, key: str) -> tuple[int, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in items):
        fail(loc, f"{key}: must be an exit code or a list of exit codes", job)
    return tuple(items)


def parse_allow_failure(value: object, loc: Loc, job: str | None) -> tuple[bool, tuple[int, ...]]:
    """``allow_failure``: a bool, or ``{exit_codes: ...}`` (allowed for those codes only)."""
    if isinstance(value, bool):
        return value, ()
    if isinstance(value, MarkedMap) and set(value) == {"exit_codes"}:
        return False, _exit_codes(value["exit_codes"], loc, job, "allow_failure:exit_codes")
    fail(loc, "allow_failure: must be true, false or a hash with exit_codes", job)


def parse_timeout(value: object, loc: Loc, job: str | None, key: str = "timeout") -> int:
    seconds = parse_duration(value) if isinstance(value, str | int | float) else None
    if seconds is None:
        fail(loc, f'{key}: "{value}" is not a duration', job)
    if seconds > MAX_TIMEOUT:
        fail(loc, f'{key}: "{value}" is longer than 1 month', job)
    return seconds
