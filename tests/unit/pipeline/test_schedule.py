"""The schedule's pure rules: which jobs start, which are skipped, retries and allowed failures."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from skyrunner.pipeline import Pipeline, PipelineJob, Retry
from skyrunner.pipeline.schedule import (
    Composite,
    JobRecord,
    JobStatus,
    advance,
    allowed_to_fail,
    composite_status,
    should_retry,
    stranded,
)

from .conftest import load

S = JobStatus

STAGES = """
stages: [build, test, deploy]
build: {stage: build, script: [b]}
lint: {stage: build, script: [l], allow_failure: true}
unit: {stage: test, script: [u]}
cleanup: {stage: test, script: [c], when: on_failure}
report: {stage: test, script: [r], when: always}
deploy: {stage: deploy, script: [d], when: manual}
"""

DAG = """
stages: [build, test, deploy]
build: {stage: build, script: [b]}
slow: {stage: build, script: [s]}
quick: {stage: test, script: [q], needs: [build]}
alone: {stage: test, script: [a], needs: []}
ship: {stage: deploy, script: [x], needs: [quick]}
"""


def records(**statuses: JobStatus | tuple[JobStatus, bool]) -> dict[str, JobRecord]:
    out = {}
    for name, value in statuses.items():
        status, allowed = value if isinstance(value, tuple) else (value, False)
        out[name] = JobRecord(status, allowed)
    return out


def job(name: str = "j", **fields: object) -> PipelineJob:
    return PipelineJob(name=name, stage="test", script=("true",), **fields)  # type: ignore[arg-type]


# -- composite status ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "dag", "expected"),
    [
        ([], False, Composite.SUCCESS),
        ([], True, Composite.SUCCESS),
        ([(S.SUCCESS, False)], False, Composite.SUCCESS),
        ([(S.SUCCESS, False), (S.RUNNING, False)], False, Composite.WAITING),
        ([(S.FAILED, False), (S.RUNNING, False)], False, Composite.WAITING),
        ([(S.SUCCESS, False), (S.FAILED, False)], False, Composite.FAILED),
        ([(S.SUCCESS, False), (S.FAILED, True)], False, Composite.SUCCESS),
        ([(S.SKIPPED, False)], False, Composite.SKIPPED),
        ([(S.SKIPPED, False), (S.SUCCESS, False)], False, Composite.SUCCESS),
        ([(S.SKIPPED, False), (S.SUCCESS, False)], True, Composite.SKIPPED),
        ([(S.CANCELED, False), (S.SUCCESS, False)], False, Composite.CANCELED),
        ([(S.CANCELED, True), (S.SUCCESS, False)], False, Composite.SUCCESS),
        ([(S.FAILED, False), (S.CANCELED, False)], False, Composite.FAILED),
    ],
    ids=[
        "nothing-before", "dag-needs-nothing", "success", "one-running", "failed-but-running", "one-failed",
        "allowed-failure", "all-skipped", "skipped-and-success", "dag-need-skipped", "canceled",
        "allowed-cancel", "failed-and-canceled",
    ],
)  # fmt: skip
def test_composite_status(statuses: list[tuple[JobStatus, bool]], dag: bool, expected: Composite) -> None:
    predecessors = [(job(f"p{i}"), JobRecord(s, a)) for i, (s, a) in enumerate(statuses)]
    assert composite_status(predecessors, dag=dag) is expected


@pytest.mark.parametrize(
    ("allow_failure", "dag", "expected"),
    [(True, False, Composite.SUCCESS), (True, True, Composite.SKIPPED), (False, False, Composite.BLOCKED)],
    ids=["ignored-manual", "dag-needs-ignored-manual", "blocking-manual"],
)
def test_a_manual_job_that_did_not_run(allow_failure: bool, dag: bool, expected: Composite) -> None:
    manual = job("deploy", when="manual", allow_failure=allow_failure)
    predecessors = [(manual, JobRecord(S.MANUAL)), (job("build"), JobRecord(S.SUCCESS))]
    assert composite_status(predecessors, dag=dag) is expected


# -- advance: the ready set ---------------------------------------------------------------------


def test_the_first_stage_starts_and_the_rest_waits() -> None:
    pipeline = load(STAGES)
    assert advance(pipeline, {}) == {"build": S.PENDING, "lint": S.PENDING}


@pytest.mark.parametrize(
    ("done", "expected"),
    [
        (
            records(build=S.SUCCESS, lint=S.SUCCESS),
            {"unit": S.PENDING, "cleanup": S.SKIPPED, "report": S.PENDING},
        ),
        (
            records(build=S.SUCCESS, lint=(S.FAILED, True)),
            {"unit": S.PENDING, "cleanup": S.SKIPPED, "report": S.PENDING},
        ),
        (
            records(build=S.FAILED, lint=S.SUCCESS),
            {"unit": S.SKIPPED, "cleanup": S.PENDING, "report": S.PENDING},
        ),
        (records(build=S.SUCCESS, lint=S.RUNNING), {}),
    ],
    ids=["stage-passed", "allowed-failure-keeps-it-green", "stage-failed", "stage-still-running"],
)
def test_the_second_stage_follows_the_first(done: Mapping[str, JobRecord], expected: dict[str, JobStatus]) -> None:
    assert advance(load(STAGES), done) == expected


def test_a_manual_job_waits_for_its_name_and_a_skipped_one_passes_the_skip_on() -> None:
    pipeline = load(STAGES)
    done = records(build=S.SUCCESS, lint=S.SUCCESS, unit=S.SUCCESS, cleanup=S.SKIPPED, report=S.SUCCESS)
    assert advance(pipeline, done) == {"deploy": S.MANUAL}
    assert advance(pipeline, done, manual={"deploy"}) == {"deploy": S.PENDING}


def test_skips_cascade_in_one_call() -> None:
    pipeline = load(
        """
        a: {stage: build, script: [x]}
        b: {stage: test, script: [x]}
        c: {stage: deploy, script: [x]}
        d: {stage: deploy, script: [x], when: on_failure}
        """
    )
    assert advance(pipeline, records(a=S.FAILED)) == {"b": S.SKIPPED, "c": S.SKIPPED, "d": S.PENDING}


def test_dag_jobs_start_when_their_needs_are_done_not_their_stage() -> None:
    pipeline = load(DAG)
    assert advance(pipeline, {}) == {"build": S.PENDING, "slow": S.PENDING, "alone": S.PENDING}
    running = records(build=S.SUCCESS, slow=S.RUNNING, alone=S.RUNNING)
    assert advance(pipeline, running) == {"quick": S.PENDING}
    assert advance(pipeline, records(build=S.FAILED, slow=S.RUNNING, alone=S.RUNNING)) == {
        "quick": S.SKIPPED,
        "ship": S.SKIPPED,
    }


def test_a_dag_job_needing_an_unrun_manual_job_is_skipped() -> None:
    pipeline = load(
        """
        approve: {stage: build, script: [x], when: manual}
        ship: {stage: test, script: [x], needs: [approve]}
        after: {stage: deploy, script: [x]}
        """
    )
    assert advance(pipeline, {}) == {"approve": S.MANUAL, "ship": S.SKIPPED, "after": S.PENDING}


def test_jobs_behind_a_blocking_manual_job_are_stranded() -> None:
    pipeline = load(
        """
        gate:
          stage: build
          script: [x]
          rules: [{when: manual}]
        later: {stage: test, script: [x]}
        """
    )
    first = advance(pipeline, {})
    assert first == {"gate": S.MANUAL}
    assert not pipeline.job("gate").allow_failure
    assert advance(pipeline, records(gate=S.MANUAL)) == {}
    assert stranded(pipeline, records(gate=S.MANUAL)) == ["later"]
    assert stranded(pipeline, records(gate=S.RUNNING)) == []


def test_selected_pipeline_runs_a_job_without_its_earlier_stages() -> None:
    pipeline: Pipeline = load(STAGES).select(["unit"])
    assert advance(pipeline, {}) == {"unit": S.PENDING}


# -- failures ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allow_failure", "exit_codes", "exit_code", "expected"),
    [
        (False, (), 1, False),
        (True, (), 1, True),
        (False, (3, 4), 4, True),
        (False, (3, 4), 5, False),
        (False, (3,), None, False),
    ],
    ids=["not-allowed", "allowed", "listed-code", "other-code", "no-exit-code"],
)
def test_allowed_to_fail(
    allow_failure: bool, exit_codes: tuple[int, ...], exit_code: int | None, expected: bool
) -> None:
    assert allowed_to_fail(job(allow_failure=allow_failure, exit_codes=exit_codes), exit_code) is expected


@pytest.mark.parametrize(
    ("retry", "reason", "exit_code", "retries", "expected"),
    [
        (Retry(), "script_failure", 1, 0, False),
        (Retry(2), "script_failure", 1, 0, True),
        (Retry(2), "script_failure", 1, 1, True),
        (Retry(2), "script_failure", 1, 2, False),
        (Retry(1, ("runner_system_failure",)), "script_failure", 1, 0, False),
        (Retry(1, ("runner_system_failure",)), "runner_system_failure", None, 0, True),
        (Retry(1, ("script_failure",)), "job_execution_timeout", None, 0, False),
        (Retry(1, ("always",), (137,)), "script_failure", 137, 0, True),
        (Retry(1, ("always",), (137,)), "script_failure", 1, 0, False),
        (Retry(1, ("script_failure",), (137,)), "script_failure", 1, 0, True),
        (Retry(2), "missing_dependency_failure", None, 0, False),
        (Retry(2), None, None, 0, True),
    ],
    ids=[
        "no-retry", "always", "second-retry", "max-reached", "other-reason", "listed-reason", "timeout-not-listed",
        "exit-code-listed", "exit-code-not-listed", "reason-or-exit-code", "never-retried-reason", "unknown-reason",
    ],
)  # fmt: skip
def test_should_retry(retry: Retry, reason: str | None, exit_code: int | None, retries: int, expected: bool) -> None:
    assert should_retry(job(retry=retry), reason, exit_code, retries) is expected


def test_complete_statuses() -> None:
    done = {s for s in JobStatus if s.complete}
    assert done == {S.SUCCESS, S.FAILED, S.CANCELED, S.SKIPPED, S.MANUAL}
