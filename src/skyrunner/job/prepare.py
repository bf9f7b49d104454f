"""Turning a JobSpec into a PreparedJob: layout, variables, scripts and the helper plan.

Pure: no I/O (``now`` is passed in). The project directory depends on variables
(``GIT_STRATEGY=empty`` adds ``-empty``, ``GIT_CLONE_PATH`` moves it) while the variables depend
on the project directory (``CI_PROJECT_DIR``), so the layout is computed once with the defaults
and once more when a variable moved it, as gitlab-runner does.
"""

from __future__ import annotations

import os.path
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from skyrunner.errors import JobSpecError
from skyrunner.helper.plan import GitStrategy
from skyrunner.job.helper_plan import build_helper_plan, git_strategy, project_path
from skyrunner.job.layout import JobLayout, PreparedJob
from skyrunner.job.script import render_job_script
from skyrunner.job.settings import JobSettings
from skyrunner.job.spec import JobSpec
from skyrunner.job.variables import JobVariable, JobVariables, RunnerContext, build_job_variables

__all__ = ["RunnerIdentity", "build_prepared_job"]


@dataclass(frozen=True, slots=True)
class RunnerIdentity:
    """The runner's version facts, reported in variables and the trace header."""

    version: str
    revision: str
    arch: str


def _variables(spec: JobSpec, layout: JobLayout, settings: JobSettings, ident: RunnerIdentity,
               concurrent: tuple[int, int]) -> JobVariables:  # fmt: skip
    ctx = RunnerContext(
        builds_dir=layout.builds_dir,
        project_dir=layout.project_dir,
        tmp_dir=layout.tmp_dir,
        concurrent_id=concurrent[0],
        concurrent_project_id=concurrent[1],
        short_token=settings.short_token,
        runner_id=settings.runner_id if spec.variable("CI_RUNNER_ID") == "" else None,
        version=ident.version,
        revision=ident.revision,
        arch=ident.arch,
        timeout_s=spec.timeout_s,
        shared_environment=layout.shared_environment,
        environment=settings.environment,
        job_image=spec.image.name if spec.image else "",
    )
    job_vars = [
        JobVariable(v.key, v.value, masked=v.masked, file=v.file, raw=v.raw, public=v.public)
        for v in spec.variables
    ]
    return build_job_variables(job_vars, ctx)


def _moved(layout: JobLayout, project_dir: str) -> JobLayout:
    return replace(
        layout,
        project_dir=project_dir,
        tmp_dir=f"{project_dir}.tmp",
        run_dir=f"{project_dir}.tmp/skyrunner",
    )


def _clone_path(layout: JobLayout, variables: JobVariables, settings: JobSettings) -> str | None:
    """``GIT_CLONE_PATH``, when allowed, checked to stay inside the builds dir."""
    raw = variables.get("GIT_CLONE_PATH").strip()
    if not raw:
        return None
    if not settings.custom_build_dir:
        raise JobSpecError("GIT_CLONE_PATH is set but [runners.custom_build_dir] is not enabled")
    path = os.path.normpath(variables.expand(raw))
    if os.path.commonpath([path, layout.builds_dir]) != layout.builds_dir or path == layout.builds_dir:
        raise JobSpecError(f"GIT_CLONE_PATH {path!r} is not inside the builds dir {layout.builds_dir!r}")
    return path


def build_prepared_job(
    spec: JobSpec,
    layout_for: Callable[[str], JobLayout],
    settings: JobSettings,
    ident: RunnerIdentity,
    concurrent: tuple[int, int],
    now: datetime,
) -> tuple[PreparedJob, tuple[str, ...]]:
    """Build what the executor runs, and the warnings to print in the trace.

    Raises:
        JobSpecError: the job asks for something this runner refuses (e.g. a clone path outside
            the builds dir).
    """
    layout = layout_for(project_path(spec, GitStrategy.CLONE))
    variables = _variables(spec, layout, settings, ident, concurrent)
    strategy = git_strategy(spec, variables, [])
    clone_path = _clone_path(layout, variables, settings)
    if clone_path is not None:
        layout = _moved(layout, clone_path)
    elif strategy is GitStrategy.EMPTY:
        layout = layout_for(project_path(spec, strategy))
    if layout.project_dir != variables.get("CI_PROJECT_DIR"):
        variables = _variables(spec, layout, settings, ident, concurrent)
    debug = variables.get("CI_DEBUG_TRACE").lower() == "true" and not settings.debug_trace_disabled
    options = replace(settings.script, debug_trace=debug, skip_git=strategy is GitStrategy.NONE)
    result = build_helper_plan(
        spec, variables, project_dir=layout.project_dir, builds_dir=layout.builds_dir,
        cache_dir=layout.cache_dir, settings=settings, now=now,
    )  # fmt: skip
    prepared = PreparedJob(
        spec=spec,
        layout=layout,
        variables=variables,
        script=render_job_script(spec, options),
        plan=result.plan,
    )
    return prepared, result.warnings
