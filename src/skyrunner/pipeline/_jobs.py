"""One job's definition: keyword checks, ``default``/``inherit``, and ``parallel`` expansion.

Pure: no I/O. :func:`draft_job` checks a job's keywords (unknown ones are errors, a few that
only matter on GitLab.com are accepted and ignored, those we cannot honour are refused by name),
applies ``default`` as GitLab does (a default keyword is used only when the job does not set it,
and only if ``inherit:default`` allows it) and parses every value into a :class:`JobDraft`.
:func:`expand_parallel` turns a draft into its concrete jobs, named as GitLab names them:
``name 1/3`` for ``parallel: 3``, ``name: [a, b]`` for each ``parallel:matrix`` combination.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, replace

from skyrunner.pipeline._entries import (
    parse_allow_failure,
    parse_artifacts,
    parse_caches,
    parse_image,
    parse_retry,
    parse_script,
    parse_service,
    parse_strings,
    parse_timeout,
    parse_variables,
)
from skyrunner.pipeline._yaml import Loc, MarkedMap, fail
from skyrunner.pipeline.model import ParallelOrigin, PipelineJob, Variable, When

__all__ = ["DEFAULT_KEYWORDS", "JobDraft", "draft_job", "expand_parallel", "matrix_names"]

DEFAULT_KEYWORDS = frozenset(
    {
        "after_script",
        "artifacts",
        "before_script",
        "cache",
        "hooks",
        "id_tokens",
        "image",
        "interruptible",
        "retry",
        "services",
        "tags",
        "timeout",
    }
)
_IGNORED = frozenset(
    {
        "coverage",
        "dast_configuration",
        "environment",
        "id_tokens",
        "identity",
        "manual_confirmation",
        "pages",
        "publish",
        "release",
        "resource_group",
    }
)
_UNSUPPORTED = {
    "trigger": "trigger jobs (downstream pipelines) are not supported",
    "run": "run: (CI steps) is not supported",
    "secrets": "secrets: (external secret managers) are not supported",
    "inputs": "job inputs are not supported",
}
JOB_KEYWORDS = (
    DEFAULT_KEYWORDS
    | _IGNORED
    | frozenset(
        {
            "after_script",
            "allow_failure",
            "dependencies",
            "except",
            "extends",
            "inherit",
            "needs",
            "only",
            "parallel",
            "rules",
            "script",
            "stage",
            "start_in",
            "variables",
            "when",
        }
    )
)
MAX_PARALLEL = 200


@dataclass(frozen=True, slots=True)
class JobDraft:
    """A job as written (defaults applied), before rules and parallel expansion."""

    job: PipelineJob
    loc: Loc
    config: MarkedMap


def _check_keywords(name: str, config: MarkedMap, loc: Loc) -> None:
    for key in config:
        if key in _UNSUPPORTED:
            fail(config.key_loc(key), _UNSUPPORTED[key], name)
        if key not in JOB_KEYWORDS:
            fail(config.key_loc(key), f'unknown keyword "{key}"', name)
    if "script" not in config:
        fail(loc, "missing script", name)
    if "rules" in config:
        for key in ("only", "except", "start_in"):
            if key in config:
                fail(config.key_loc(key), f"{key} may not be used with rules", name)


def _inherit(name: str, config: MarkedMap) -> tuple[frozenset[str] | None, tuple[str, ...] | None]:
    """Return the default keywords to take (None: all) and global variables to take (None: all)."""
    inherit = config.get("inherit")
    if inherit is None:
        return None, None
    loc = config.key_loc("inherit")
    if not isinstance(inherit, MarkedMap) or set(inherit) - {"default", "variables"}:
        fail(loc, "inherit: must be a hash with default and/or variables", name)
    picks: list[tuple[str, ...] | None] = []
    for key in ("default", "variables"):
        value = inherit.get(key, True)
        if isinstance(value, bool):
            picks.append(None if value else ())
        else:
            picks.append(parse_strings(value, loc, name, f"inherit:{key}"))
    defaults, variables = picks
    return (frozenset(defaults) if defaults is not None else None), variables


def _with_defaults(config: MarkedMap, defaults: MarkedMap, allowed: frozenset[str] | None) -> MarkedMap:
    merged = MarkedMap(config.loc, dict(config), config.key_locs)
    for key, value in defaults.items():
        if key not in merged and (allowed is None or key in allowed):
            merged[key] = value
            merged.key_locs[key] = defaults.key_loc(key)
    return merged


def _when(config: MarkedMap, name: str) -> tuple[When, str | None]:
    raw = config.get("when", "on_success")
    if raw == "never" or raw not in [w.value for w in When]:
        fail(
            config.key_loc("when"),
            f'when: "{raw}" is not one of on_success, on_failure, always, manual, delayed',
            name,
        )
    when = When(raw)
    start_in = config.get("start_in")
    if when is When.DELAYED and start_in is None and "rules" not in config:
        fail(config.key_loc("when"), "when: delayed needs start_in", name)
    if start_in is not None:
        if when is not When.DELAYED:
            fail(config.key_loc("start_in"), "start_in: only with when: delayed", name)
        if parse_timeout(start_in, config.key_loc("start_in"), name, "start_in") > 7 * 86400:
            fail(config.key_loc("start_in"), "start_in: must be at most 1 week", name)
    return when, str(start_in) if start_in is not None else None


def _hooks(config: MarkedMap, name: str) -> tuple[str, ...]:
    hooks = config.get("hooks")
    if hooks is None:
        return ()
    if not isinstance(hooks, MarkedMap) or set(hooks) - {"pre_get_sources_script"}:
        fail(config.key_loc("hooks"), "hooks: only pre_get_sources_script is known", name)
    return parse_script(hooks["pre_get_sources_script"], hooks.loc, name, "hooks:pre_get_sources_script")


def _optional_bool(config: MarkedMap, key: str, name: str) -> bool:
    value = config.get(key, False)
    if not isinstance(value, bool):
        fail(config.key_loc(key), f"{key}: must be true or false", name)
    return value


def _environment(config: MarkedMap) -> str | None:
    env = config.get("environment")
    if isinstance(env, MarkedMap):
        env = env.get("name")
    return str(env) if env is not None else None


def draft_job(name: str, config: object, defaults: MarkedMap, files: Mapping[str, str], loc: Loc) -> JobDraft:
    """Check and parse the job ``name`` with ``defaults`` applied."""
    if not isinstance(config, MarkedMap):
        fail(loc, f'unknown keyword "{name}" (a job must be a hash)')
    if len(name) > 255:
        fail(loc, "job names must be at most 255 characters", name[:40])
    _check_keywords(name, config, loc)
    allowed, inherited = _inherit(name, config)
    full = _with_defaults(config, defaults, allowed)
    when, start_in = _when(full, name)
    # a manual job (job-level when) may fail unless it says otherwise, as in GitLab
    allow_failure: bool = when is When.MANUAL
    exit_codes: tuple[int, ...] = ()
    if "allow_failure" in full:
        loc = full.key_loc("allow_failure")
        allow_failure, exit_codes = parse_allow_failure(full["allow_failure"], loc, name)
    stage = full.get("stage", "test")
    if not isinstance(stage, str):
        fail(full.key_loc("stage"), "stage: must be a string", name)
    job = PipelineJob(
        name=name,
        stage=stage,
        script=parse_script(full["script"], full.key_loc("script"), name, "script"),
        location=str(loc),
        before_script=parse_script(
            full.get("before_script", []), full.key_loc("before_script"), name, "before_script"
        ),
        after_script=parse_script(
            full.get("after_script", []), full.key_loc("after_script"), name, "after_script"
        ),
        pre_get_sources_script=_hooks(full, name),
        when=when,
        start_in=start_in,
        allow_failure=allow_failure,
        exit_codes=exit_codes,
        retry=parse_retry(full.get("retry"), full.key_loc("retry"), name),
        timeout=parse_timeout(full["timeout"], full.key_loc("timeout"), name) if "timeout" in full else None,
        interruptible=_optional_bool(full, "interruptible", name),
        image=parse_image(full.get("image"), full.key_loc("image"), name),
        services=tuple(
            parse_service(s, full.key_loc("services"), name)
            for s in _list(full.get("services"), full.key_loc("services"), name, "services")
        ),
        artifacts=parse_artifacts(full.get("artifacts"), full.key_loc("artifacts"), name),
        caches=parse_caches(full.get("cache"), full.key_loc("cache"), name, files),
        variables=parse_variables(full.get("variables"), full.key_loc("variables"), name),
        inherited_variables=inherited,
        tags=parse_strings(full.get("tags", []), full.key_loc("tags"), name, "tags"),
        environment=_environment(full),
        coverage=str(full["coverage"]) if full.get("coverage") is not None else None,
    )
    return JobDraft(job, loc, full)


def _list(value: object, loc: Loc, name: str, key: str) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        fail(loc, f"{key}: must be a list", name)
    return list(value)


def _matrix(value: object, loc: Loc, name: str) -> list[tuple[Variable, ...]]:
    if not isinstance(value, list) or not value or not all(isinstance(m, MarkedMap) and m for m in value):
        fail(loc, "parallel:matrix: must be a list of hashes of variables", name)
    combos: list[tuple[Variable, ...]] = []
    for entry in value:
        keys = list(entry)
        choices = []
        for key in keys:
            raw = entry[key]
            values = raw if isinstance(raw, list) else [raw]
            if not values or not all(_is_scalar(v) for v in values):
                fail(entry.key_loc(key), f"parallel:matrix: {key}: values must be strings or numbers", name)
            choices.append([str(v) for v in values])
        for combo in itertools.product(*choices):
            combos.append(tuple(Variable(k, v) for k, v in zip(keys, combo, strict=True)))
    return combos


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _matrix_name(base: str, combo: tuple[Variable, ...]) -> str:
    return f"{base}: [{', '.join(v.value for v in combo)}]"


def matrix_names(base: str, value: object, loc: Loc) -> list[str]:
    """Return the job names a ``parallel:matrix`` value produces (for ``needs:parallel``)."""
    return [_matrix_name(base, combo) for combo in _matrix(value, loc, base)]


def expand_parallel(draft: JobDraft) -> list[PipelineJob]:
    """Return the concrete jobs of a draft: itself, or one per ``parallel`` instance."""
    job, config = draft.job, draft.config
    if "parallel" not in config:
        return [job]
    raw, loc = config["parallel"], config.key_loc("parallel")
    if isinstance(raw, int) and not isinstance(raw, bool):
        if not 1 <= raw <= MAX_PARALLEL:
            fail(loc, f"parallel: must be between 1 and {MAX_PARALLEL}", job.name)
        return [
            replace(job, name=f"{job.name} {i}/{raw}", parallel=ParallelOrigin(job.name, i, raw))
            for i in range(1, raw + 1)
        ]
    if not isinstance(raw, MarkedMap) or set(raw) != {"matrix"}:
        fail(loc, "parallel: must be a number or a hash with matrix", job.name)
    combos = _matrix(raw["matrix"], raw.key_loc("matrix"), job.name)
    if len(combos) > MAX_PARALLEL:
        fail(loc, f"parallel:matrix: produces more than {MAX_PARALLEL} jobs", job.name)
    return [
        replace(job, name=_matrix_name(job.name, combo), parallel=ParallelOrigin(job.name, index, len(combos), combo))
        for index, combo in enumerate(combos, start=1)
    ]
