"""Loading a .gitlab-ci.yml into a validated :class:`~skyrunner.pipeline.model.Pipeline`.

Pure: no I/O of its own. Files are read through a reader (``checkout.read_source`` in
:func:`load_pipeline`, any callable in :func:`build_pipeline`); the checkout is a value. The
steps, in GitLab's order:

1. compose: ``include: local``, ``extends`` and ``!reference`` (``_compose.py``);
2. global keywords: ``stages`` (``.pre`` first and ``.post`` last, default build/test/deploy),
   ``variables``, ``default`` (and the old top-level image/services/cache/before_script/
   after_script), ``workflow`` (``rules``, ``name``; no matching rule: the pipeline does not run);
3. every visible job is checked and parsed (``_jobs.py``), hidden ``.jobs`` are only templates;
   ``parallel`` expands jobs; static checks: stage exists, ``needs``/``dependencies`` name
   defined jobs in the same or earlier stages, no ``needs`` cycle;
4. ``rules`` (or ``only``/``except``) decide, per expanded job, whether it is in, its ``when``,
   ``allow_failure``, rule ``variables`` and ``needs``; a required ``need`` that rules removed is
   an error, an optional one is dropped.

Everything is validated before a :class:`Pipeline` is returned, so nothing can run on a broken
file. Every error is a one-line ``PipelineFileError`` naming ``file:line`` and the job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from skyrunner.pipeline._compose import GLOBAL_KEYWORDS, compose
from skyrunner.pipeline._entries import check_keys, parse_strings, parse_variables
from skyrunner.pipeline._jobs import DEFAULT_KEYWORDS, JobDraft, draft_job, expand_parallel, matrix_names
from skyrunner.pipeline._predefined import commit_variables, job_variables
from skyrunner.pipeline._rules import (
    INCLUDE_RULE_KEYS,
    WORKFLOW_RULE_KEYS,
    RuleContext,
    match_rules,
    only_except_pass,
)
from skyrunner.pipeline._yaml import Loc, MarkedMap, fail
from skyrunner.pipeline.checkout import Checkout, read_source
from skyrunner.pipeline.model import Need, Pipeline, PipelineJob, Variable, When, Workflow, jobs_named

__all__ = ["build_pipeline", "load_pipeline"]

DEFAULT_STAGES = ("build", "test", "deploy")
EDGE_STAGES = (".pre", ".post")
_LEGACY_DEFAULTS = ("image", "services", "cache", "before_script", "after_script")


def load_pipeline(path: Path, checkout: Checkout, *, variables: Mapping[str, str] = {}) -> Pipeline:
    """Load the pipeline file ``path`` of ``checkout``, with ``variables`` overriding all others.

    Raises:
        PipelineFileError: the file or an included file is missing or invalid.
    """
    absolute = path if path.is_absolute() else checkout.root / path
    try:
        main = absolute.resolve().relative_to(checkout.root.resolve()).as_posix()
    except ValueError:
        main = path.as_posix()
    return build_pipeline(main, lambda p: read_source(checkout, p), checkout, variables=variables)


def build_pipeline(
    main: str, read: Callable[[str], str | None], checkout: Checkout, *, variables: Mapping[str, str] = {}
) -> Pipeline:
    """Build the pipeline of the repository file ``main``, reading files through ``read``."""
    overrides = tuple(Variable(k, v) for k, v in variables.items())
    base = dict(commit_variables(checkout, pipeline_id=1, project_id=1, config_path=main))
    early = RuleContext({**base, **variables}, checkout)
    config = compose(main, read, tuple(checkout.files), _include_rules(early), early.expand)
    stages = _stages(config)
    global_vars = parse_variables(config.get("variables"), config.key_loc("variables"), None)
    context = RuleContext({**base, **{v.key: v.value for v in global_vars}, **variables}, checkout)
    workflow = _workflow(config, context)
    defaults = _defaults(config)
    drafts = [
        draft_job(name, value, defaults, checkout.files, config.key_loc(name))
        for name, value in config.items()
        if name not in GLOBAL_KEYWORDS and not name.startswith(".")
    ]
    candidates = [(draft, job) for draft in drafts for job in expand_parallel(draft)]
    for draft, job in candidates:
        if job.stage not in stages:
            fail(
                draft.config.key_loc("stage"),
                f'stage: "{job.stage}" is not defined; available stages are {", ".join(stages)}',
                job.name,
            )
    everything = [job for _, job in candidates]
    locs = {job.name: draft.loc for draft, job in candidates}
    resolved = [(d, _with_static_needs(d, j, everything, stages)) for d, j in candidates]
    _check_cycles([job for _, job in resolved], locs)
    pipeline = Pipeline(main, stages, (), global_vars, workflow, overrides)
    if not workflow.runs:
        return pipeline
    scope = _Scope(pipeline, context, everything, stages)
    shaped = [scope.apply_rules(draft, job) for draft, job in resolved]
    kept = [job for job in shaped if job is not None]
    jobs = _with_final_needs(kept, locs)
    _check_cycles(jobs, locs)
    return replace(pipeline, jobs=tuple(jobs))


def _include_rules(ctx: RuleContext) -> Callable[[object, Loc], bool]:
    def rules_pass(rules: object, loc: Loc) -> bool:
        match = match_rules(
            rules,
            loc,
            None,
            ctx,
            allowed=INCLUDE_RULE_KEYS,
            whens=("always", "never"),
        )
        return match is not None and match.when != "never"

    return rules_pass


def _stages(config: MarkedMap) -> tuple[str, ...]:
    raw = config.get("stages")
    listed = DEFAULT_STAGES if raw is None else parse_strings(raw, config.key_loc("stages"), None, "stages")
    middle = tuple(dict.fromkeys(s for s in listed if s not in EDGE_STAGES))
    return (EDGE_STAGES[0], *middle, EDGE_STAGES[1])


def _defaults(config: MarkedMap) -> MarkedMap:
    default = config.get("default", MarkedMap(config.loc))
    if not isinstance(default, MarkedMap):
        fail(config.key_loc("default"), "default: must be a hash")
    check_keys(default, DEFAULT_KEYWORDS, None, "default")
    merged = MarkedMap(config.loc)
    for key in _LEGACY_DEFAULTS:
        if key in config:
            merged[key], merged.key_locs[key] = config[key], config.key_loc(key)
    for key, value in default.items():
        merged[key], merged.key_locs[key] = value, default.key_loc(key)
    return merged


def _workflow(config: MarkedMap, ctx: RuleContext) -> Workflow:
    raw = config.get("workflow")
    if raw is None:
        return Workflow()
    if not isinstance(raw, MarkedMap):
        fail(config.key_loc("workflow"), "workflow: must be a hash")
    check_keys(raw, ("rules", "name", "auto_cancel"), None, "workflow")
    name = str(raw["name"]) if raw.get("name") is not None else None
    if "rules" not in raw:
        return Workflow(True, name)
    match = match_rules(
        raw["rules"], raw.key_loc("rules"), None, ctx, allowed=WORKFLOW_RULE_KEYS, whens=("always", "never")
    )
    if match is None or match.when == "never":
        return Workflow(False, name)
    return Workflow(True, name, match.variables)


def _need_entries(raw: object, loc: Loc, job: str) -> list[tuple[str, bool, bool, object]]:
    """Return (name, artifacts, optional, matrix) for each entry of a ``needs`` value."""
    if not isinstance(raw, list):
        fail(loc, "needs: must be a list", job)
    entries: list[tuple[str, bool, bool, object]] = []
    for item in raw:
        if isinstance(item, str):
            entries.append((item, True, False, None))
            continue
        if not isinstance(item, MarkedMap) or "job" not in item:
            kind = next(iter(item), "") if isinstance(item, MarkedMap) else ""
            fail(
                loc,
                f"needs: {kind} is not supported"
                if kind in ("pipeline", "project")
                else "needs: each entry must be a job name or a hash with job",
                job,
            )
        check_keys(item, ("job", "artifacts", "optional", "parallel"), job, "needs")
        matrix = item["parallel"].get("matrix") if isinstance(item.get("parallel"), MarkedMap) else None
        entries.append(
            (
                str(item["job"]),
                item.get("artifacts", True) is not False,
                item.get("optional", False) is True,
                matrix,
            )
        )
    return entries


def _expand_name(name: str, matrix: object, jobs: Sequence[PipelineJob], loc: Loc) -> list[str]:
    if matrix is not None:
        return matrix_names(name, matrix, loc)
    return jobs_named(jobs, name)


def _resolve_needs(
    raw: object, loc: Loc, job: PipelineJob, defined: Sequence[PipelineJob], stages: Sequence[str]
) -> tuple[Need, ...]:
    needs: list[Need] = []
    rank = {other.name: stages.index(other.stage) for other in defined}
    for name, artifacts, optional, matrix in _need_entries(raw, loc, job.name):
        names = _expand_name(name, matrix, defined, loc)
        if not names or any(n not in rank for n in names):
            fail(loc, f'needs: "{name}" is not a job of this pipeline', job.name)
        for target in names:
            if rank[target] > stages.index(job.stage):
                later = defined_stage(defined, target)
                fail(loc, f'needs: "{target}" is in a later stage ({later})', job.name)
            needs.append(Need(target, artifacts, optional))
    return tuple(needs)


def defined_stage(jobs: Sequence[PipelineJob], name: str) -> str:
    return next(job.stage for job in jobs if job.name == name)


def _with_static_needs(
    draft: JobDraft, job: PipelineJob, everything: Sequence[PipelineJob], stages: Sequence[str]
) -> PipelineJob:
    config = draft.config
    needs = (
        _resolve_needs(config["needs"], config.key_loc("needs"), job, everything, stages)
        if config.get("needs") is not None
        else None
    )
    dependencies = None
    if "dependencies" in config:
        loc = config.key_loc("dependencies")
        dependencies = []
        for name in parse_strings(config["dependencies"], loc, job.name, "dependencies"):
            names = _expand_name(name, None, everything, loc)
            if not names:
                fail(loc, f'dependencies: "{name}" is not a job of this pipeline', job.name)
            for target in names:
                if stages.index(defined_stage(everything, target)) > stages.index(job.stage):
                    fail(loc, f'dependencies: "{target}" is in a later stage', job.name)
                if needs is not None and target not in {n.job for n in needs}:
                    fail(loc, f'dependencies: "{target}" should be part of needs', job.name)
                dependencies.append(target)
    return replace(job, needs=needs, dependencies=tuple(dependencies) if dependencies is not None else None)


class _Scope:
    """What evaluating one job's rules needs besides the job: the pipeline so far and all jobs."""

    def __init__(
        self, pipeline: Pipeline, ctx: RuleContext, everything: Sequence[PipelineJob], stages: Sequence[str]
    ) -> None:
        self.pipeline, self.ctx, self.everything, self.stages = pipeline, ctx, everything, stages

    def variables(self, job: PipelineJob) -> dict[str, str]:
        """Return what ``rules:if`` sees: predefined < global < job < matrix < overrides."""
        scope = {**self.ctx.variables, **dict(job_variables(job))}
        scope.update({v.key: v.value for v in self.pipeline.global_variables(job)})
        matrix = job.parallel.matrix if job.parallel else ()
        scope.update({v.key: v.value for v in (*job.variables, *matrix)})
        scope.update({v.key: v.value for v in self.pipeline.overrides})
        return scope

    def apply_rules(self, draft: JobDraft, job: PipelineJob) -> PipelineJob | None:
        """Return the job as its rules (or only/except) shape it, or ``None`` if it is left out."""
        config = draft.config
        job_ctx = RuleContext(self.variables(job), self.ctx.checkout)
        if "rules" not in config:
            keep = only_except_pass(config.get("only"), config.get("except"), draft.loc, job.name, job_ctx)
            return job if keep else None
        match = match_rules(config["rules"], config.key_loc("rules"), job.name, job_ctx)
        if match is None or match.when == "never":
            return None
        when = When(match.when) if match.when else job.when
        # rules: a manual job is not allowed to fail unless it says so (unlike a job-level when)
        allow_failure = job.allow_failure if "allow_failure" in config else False
        if match.allow_failure is not None:
            allow_failure = match.allow_failure
        job = replace(
            job,
            when=when,
            allow_failure=allow_failure,
            rules_variables=match.variables,
            start_in=match.start_in or job.start_in,
        )
        if match.interruptible is not None:
            job = replace(job, interruptible=match.interruptible)
        if match.needs is not None:
            needs = _resolve_needs(match.needs, config.key_loc("rules"), job, self.everything, self.stages)
            job = replace(job, needs=needs)
        if when is When.DELAYED and job.start_in is None:
            fail(config.key_loc("rules"), "rules: when: delayed needs start_in", job.name)
        return job


def _with_final_needs(kept: list[PipelineJob], locs: Mapping[str, Loc]) -> list[PipelineJob]:
    present = {job.name for job in kept}
    final = []
    for job in kept:
        needs = job.needs
        if needs is not None:
            for need in needs:
                if need.job not in present and not need.optional:
                    fail(
                        locs[job.name],
                        f'needs: "{need.job}" is not in the pipeline (its rules, only or '
                        "except left it out); mark it optional: true to allow that",
                        job.name,
                    )
            needs = tuple(n for n in needs if n.job in present)
        deps = tuple(d for d in job.dependencies if d in present) if job.dependencies is not None else None
        final.append(replace(job, needs=needs, dependencies=deps))
    return final


def _check_cycles(jobs: Sequence[PipelineJob], locs: Mapping[str, Loc]) -> None:
    graph = {job.name: [n.job for n in job.needs or ()] for job in jobs}
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in graph.get(name, ()):
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target]
                fail(locs[target], "needs: cycle " + " -> ".join(cycle), target)
            if state.get(target) is None:
                visit(target, [*path, target])
        state[name] = 2

    for name in graph:
        if name not in state:
            visit(name, [name])
