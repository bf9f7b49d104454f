"""The evaluated pipeline as values: what the loader produces and the scheduler and payload read.

Pure: no I/O. Everything here is a frozen dataclass or an enum. A :class:`Pipeline` holds the
jobs that made it through ``workflow:rules``, ``rules``, ``only``/``except`` and ``parallel``
expansion, in file order, with ``extends``, ``!reference``, ``default`` and ``inherit`` already
applied; each :class:`PipelineJob` carries what GitLab's job payload needs (scripts, image,
services, artifacts, caches, variables) and what the scheduler needs (stage, ``when``, ``needs``,
``allow_failure``, ``retry``). Loading and validation live in ``loader.py``; the JSON payload is
built by ``payload.py``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "Artifacts",
    "Cache",
    "CachePolicy",
    "Image",
    "Need",
    "ParallelOrigin",
    "Pipeline",
    "PipelineJob",
    "Report",
    "Retry",
    "SaveWhen",
    "Service",
    "Variable",
    "When",
    "Workflow",
    "jobs_named",
]


class When(enum.StrEnum):
    """A job's ``when``: the condition for it to run, relative to the earlier stages."""

    ON_SUCCESS = "on_success"
    ON_FAILURE = "on_failure"
    ALWAYS = "always"
    MANUAL = "manual"
    DELAYED = "delayed"
    NEVER = "never"


class SaveWhen(enum.StrEnum):
    """When an artifact or cache is saved, relative to the job's own result."""

    ON_SUCCESS = "on_success"
    ON_FAILURE = "on_failure"
    ALWAYS = "always"


class CachePolicy(enum.StrEnum):
    PULL_PUSH = "pull-push"
    PULL = "pull"
    PUSH = "push"


@dataclass(frozen=True, slots=True)
class Variable:
    """A CI variable from the YAML; ``raw`` is ``expand: false`` (the runner must not expand it)."""

    key: str
    value: str
    raw: bool = False


@dataclass(frozen=True, slots=True)
class Image:
    """``image:`` as GitLab sends it; ``executor_opts`` holds the ``docker``/``kubernetes`` hashes."""

    name: str
    entrypoint: tuple[str, ...] | None = None
    pull_policy: tuple[str, ...] | None = None
    ports: tuple[Mapping[str, str | int], ...] = ()
    executor_opts: Mapping[str, Mapping[str, str | int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Service:
    image: Image
    alias: str | None = None
    command: tuple[str, ...] | None = None
    variables: tuple[Variable, ...] = ()


@dataclass(frozen=True, slots=True)
class Report:
    """One ``artifacts:reports`` entry: its type (``junit``, ``cobertura``...) and paths."""

    type: str
    paths: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Artifacts:
    name: str | None = None
    paths: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    untracked: bool = False
    when: SaveWhen = SaveWhen.ON_SUCCESS
    expire_in: str | None = None
    reports: tuple[Report, ...] = ()


@dataclass(frozen=True, slots=True)
class Cache:
    """A ``cache:`` entry with its key computed (``key:files`` hashed), before GitLab's suffixes."""

    key: str = "default"
    paths: tuple[str, ...] = ()
    untracked: bool = False
    policy: CachePolicy = CachePolicy.PULL_PUSH
    when: SaveWhen = SaveWhen.ON_SUCCESS
    fallback_keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Retry:
    """``retry``: how many more attempts, for which failure reasons and exit codes."""

    max: int = 0
    when: tuple[str, ...] = ("always",)
    exit_codes: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Need:
    """One resolved ``needs`` entry: a job of this pipeline, and whether to fetch its artifacts."""

    job: str
    artifacts: bool = True
    optional: bool = False


@dataclass(frozen=True, slots=True)
class ParallelOrigin:
    """Where a ``parallel`` job came from: ``index`` is 1-based, ``matrix`` its variables."""

    base: str
    index: int
    total: int
    matrix: tuple[Variable, ...] = ()


@dataclass(frozen=True, slots=True)
class PipelineJob:
    name: str
    stage: str
    script: tuple[str, ...]
    location: str = ""
    before_script: tuple[str, ...] = ()
    after_script: tuple[str, ...] = ()
    pre_get_sources_script: tuple[str, ...] = ()
    when: When = When.ON_SUCCESS
    start_in: str | None = None
    allow_failure: bool = False
    exit_codes: tuple[int, ...] = ()
    needs: tuple[Need, ...] | None = None
    dependencies: tuple[str, ...] | None = None
    retry: Retry = Retry()
    timeout: int | None = None
    interruptible: bool = False
    parallel: ParallelOrigin | None = None
    image: Image | None = None
    services: tuple[Service, ...] = ()
    artifacts: Artifacts | None = None
    caches: tuple[Cache, ...] = ()
    variables: tuple[Variable, ...] = ()
    rules_variables: tuple[Variable, ...] = ()
    inherited_variables: tuple[str, ...] | None = None
    tags: tuple[str, ...] = ()
    environment: str | None = None
    coverage: str | None = None


@dataclass(frozen=True, slots=True)
class Workflow:
    """The outcome of ``workflow:rules``: whether the pipeline runs, its name and variables."""

    runs: bool = True
    name: str | None = None
    variables: tuple[Variable, ...] = ()


def jobs_named(jobs: Sequence[PipelineJob], name: str) -> list[str]:
    """Return the names ``name`` means among ``jobs`` (for ``needs`` and ``skyrunner exec JOB``).

    The job called ``name``, else every instance of the ``parallel`` job ``name``; none: empty.
    """
    exact = [job.name for job in jobs if job.name == name]
    return exact or [job.name for job in jobs if job.parallel is not None and job.parallel.base == name]


@dataclass(frozen=True, slots=True)
class Pipeline:
    """A validated pipeline: ``jobs`` are in file order, after rules and parallel expansion."""

    path: str
    stages: tuple[str, ...]
    jobs: tuple[PipelineJob, ...]
    variables: tuple[Variable, ...] = ()
    workflow: Workflow = Workflow()
    overrides: tuple[Variable, ...] = ()

    def job(self, name: str) -> PipelineJob:
        """Return the job called ``name``; ``KeyError`` if the pipeline has none."""
        for job in self.jobs:
            if job.name == name:
                return job
        raise KeyError(name)

    def global_variables(self, job: PipelineJob) -> tuple[Variable, ...]:
        """Return the global variables ``job`` inherits (``inherit:variables``), workflow's last."""
        merged = [*self.variables, *self.workflow.variables]
        if job.inherited_variables is None:
            return tuple(merged)
        keep = set(job.inherited_variables)
        return tuple(v for v in merged if v.key in keep)

    def predecessors(self, job: PipelineJob) -> tuple[PipelineJob, ...]:
        """Return the jobs ``job`` waits for: its ``needs`` (a DAG), else all earlier stages' jobs."""
        if job.needs is not None:
            names = {need.job for need in job.needs}
            return tuple(other for other in self.jobs if other.name in names)
        rank = self.stages.index(job.stage)
        return tuple(other for other in self.jobs if self.stages.index(other.stage) < rank)

    def artifact_sources(self, job: PipelineJob) -> tuple[PipelineJob, ...]:
        """Return the jobs whose artifacts ``job`` downloads, as GitLab picks them.

        ``dependencies`` wins; else the ``needs`` with ``artifacts: true``; else every job of
        the earlier stages.
        """
        if job.dependencies is not None:
            wanted = set(job.dependencies)
        elif job.needs is not None:
            wanted = {need.job for need in job.needs if need.artifacts}
        else:
            return self.predecessors(job)
        return tuple(other for other in self.jobs if other.name in wanted)

    def select(self, names: Iterable[str]) -> Pipeline:
        """Return a pipeline with only the jobs ``names`` and, transitively, the jobs they need.

        A job with ``needs`` pulls in its needs; a job without pulls in nothing (its earlier
        stages are not run), so ``skyrunner exec test`` runs ``test`` alone unless it needs more.

        Raises:
            KeyError: a name is not a job of this pipeline.
        """
        keep: set[str] = set()
        pending = [self.job(name) for name in names]
        while pending:
            job = pending.pop()
            if job.name in keep:
                continue
            keep.add(job.name)
            pending.extend(self.job(need.job) for need in job.needs or () if self._has(need.job))
        jobs = tuple(job for job in self.jobs if job.name in keep)
        return Pipeline(self.path, self.stages, jobs, self.variables, self.workflow, self.overrides)

    def _has(self, name: str) -> bool:
        return any(job.name == name for job in self.jobs)
