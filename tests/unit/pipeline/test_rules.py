"""rules, only/except and workflow:rules decide which jobs are in and how."""

from __future__ import annotations

import pytest

from skyrunner.pipeline import RefType, When
from skyrunner.pipeline.model import Variable

from .conftest import checkout_for, load, names

RULES = """
variables: {DEPLOY: "yes"}
a:
  script: [a]
  rules:
    - if: $CI_COMMIT_BRANCH == "main"
      when: manual
    - when: never
b:
  script: [b]
  rules:
    - if: $CI_COMMIT_TAG
    - if: $DEPLOY == "yes" && $OVERRIDE
      allow_failure: true
      variables: {FROM_RULE: "1"}
c:
  script: [c]
  when: manual
  rules:
    - changes: [src/**/*.py]
d:
  script: [d]
  rules:
    - exists: [Dockerfile]
      when: delayed
      start_in: 5 minutes
e:
  script: [e]
  rules: [[{if: $NESTED}], {when: on_failure}]
"""


def test_rules_first_match_wins_with_its_attributes() -> None:
    pipeline = load(
        RULES, {"Dockerfile": ""}, checkout=checkout_for({"Dockerfile": ""}, changed=("src/x/y.py",))
    )
    assert names(pipeline) == ["a", "c", "d", "e"]
    a, c, d, e = pipeline.jobs
    assert a.when is When.MANUAL and a.allow_failure is False  # rules: manual does not allow failure
    assert c.when is When.MANUAL  # no when on the rule: the job's when
    assert d.when is When.DELAYED and d.start_in == "5 minutes"
    assert e.when is When.ON_FAILURE


def test_rules_variables_and_allow_failure_with_overrides() -> None:
    pipeline = load(RULES, variables={"OVERRIDE": "x"}, checkout=checkout_for(ref="dev"))
    assert names(pipeline) == ["b", "e"]
    b = pipeline.job("b")
    assert b.allow_failure is True
    assert b.rules_variables == (Variable("FROM_RULE", "1"),)
    assert pipeline.overrides == (Variable("OVERRIDE", "x"),)


def test_changes_is_true_without_a_previous_commit() -> None:
    pipeline = load(RULES, checkout=checkout_for(ref="dev", before_sha="0" * 40))
    assert "c" in names(pipeline)


def test_rules_see_job_and_matrix_variables() -> None:
    pipeline = load("""
        job:
          script: [x]
          variables: {KIND: unit}
          parallel:
            matrix: [{PY: ["3.11", "3.12"]}]
          rules:
            - if: $KIND == "unit" && $PY == "3.12"
    """)
    assert names(pipeline) == ["job: [3.12]"]


ONLY_EXCEPT = [
    ("only: [main]", "main", RefType.BRANCH, True),
    ("only: [main]", "dev", RefType.BRANCH, False),
    ("only: [branches]", "dev", RefType.BRANCH, True),
    ("only: [tags]", "dev", RefType.BRANCH, False),
    ("only: [tags]", "v1", RefType.TAG, True),
    ("only: [pushes]", "dev", RefType.BRANCH, True),
    ("only: [schedules]", "main", RefType.BRANCH, False),
    ("only: ['/^release-.*$/']", "release-1", RefType.BRANCH, True),
    ("only: ['/^RELEASE/i']", "release-1", RefType.BRANCH, True),
    ("only: [main@my-group/my-project]", "main", RefType.BRANCH, True),
    ("only: [main@other/project]", "main", RefType.BRANCH, False),
    ("except: [main]", "main", RefType.BRANCH, False),
    ("except: [tags]", "main", RefType.BRANCH, True),
    ("only: {refs: [main], variables: [$CI_COMMIT_TITLE =~ /things/]}", "main", RefType.BRANCH, True),
    ("only: {refs: [main], variables: [$NOPE]}", "main", RefType.BRANCH, False),
    ("except: {variables: [$NOPE]}", "main", RefType.BRANCH, True),
    ("only: {changes: [docs/*]}", "main", RefType.BRANCH, True),
    ("only: {changes: ['*.py']}", "main", RefType.BRANCH, False),
]


@pytest.mark.parametrize(
    ("policy", "ref", "ref_type", "included"), ONLY_EXCEPT, ids=[f"{c[0]}@{c[1]}" for c in ONLY_EXCEPT]
)
def test_only_except(policy: str, ref: str, ref_type: RefType, included: bool) -> None:
    checkout = checkout_for(ref=ref, ref_type=ref_type, changed=("docs/index.md",))
    pipeline = load(f"job:\n  script: [x]\n  {policy}\n", checkout=checkout)
    assert (names(pipeline) == ["job"]) is included


WORKFLOW = """
workflow:
  name: "Pipeline for $CI_COMMIT_BRANCH"
  rules:
    - if: $CI_COMMIT_BRANCH == "main"
      variables: {ENV: production}
    - if: $CI_COMMIT_TAG
      when: never
    - if: $CI_COMMIT_BRANCH
variables: {ENV: dev}
job: {script: [x]}
"""


@pytest.mark.parametrize(
    ("ref", "ref_type", "runs", "env"),
    [
        ("main", RefType.BRANCH, True, "production"),
        ("v1", RefType.TAG, False, None),
        ("dev", RefType.BRANCH, True, "dev"),
    ],
    ids=["main", "tag", "branch"],
)
def test_workflow_rules(ref: str, ref_type: RefType, runs: bool, env: str | None) -> None:
    pipeline = load(WORKFLOW, checkout=checkout_for(ref=ref, ref_type=ref_type))
    assert pipeline.workflow.runs is runs
    assert pipeline.workflow.name == "Pipeline for $CI_COMMIT_BRANCH"
    assert names(pipeline) == (["job"] if runs else [])
    if runs:
        merged = {v.key: v.value for v in pipeline.global_variables(pipeline.job("job"))}
        assert merged["ENV"] == env


def test_workflow_without_a_match_does_not_run() -> None:
    pipeline = load("workflow: {rules: [{if: $NOPE}]}\njob: {script: [x]}\n")
    assert not pipeline.workflow.runs
    assert pipeline.jobs == ()
