"""Every error a user can make in a .gitlab-ci.yml: one line naming the file, the line and the job."""

from __future__ import annotations

import pytest

from skyrunner.errors import ConfigError, PipelineFileError

from .conftest import load

ERRORS = [
    ("yaml syntax", "job: {script: [x]\n", r"^\.gitlab-ci\.yml:2: yaml: expected ',' or '}'"),
    ("unknown tag", "job: !foo {script: [x]}\n", r"^\.gitlab-ci\.yml:1: yaml: .*'!foo'"),
    (
        "unknown keyword",
        "stages: [build]\n\nbuild:\n  stage: build\n  script: [x]\n\ntest:\n  stage: build\n  scirpt: [x]\n",
        r'^\.gitlab-ci\.yml:9: job "test": unknown keyword "scirpt"$',
    ),
    (
        "top-level typo",
        "imgae: alpine\njob: {script: [x]}\n",
        r'^\.gitlab-ci\.yml:1: unknown keyword "imgae" \(a job must be a hash\)$',
    ),
    ("missing script", "job:\n  stage: test\n", r'^\.gitlab-ci\.yml:1: job "job": missing script$'),
    (
        "trigger",
        "job: {trigger: other/project}\n",
        r'job "job": trigger jobs \(downstream pipelines\) are not supported',
    ),
    (
        "secrets",
        "job: {script: [x], secrets: {}}\n",
        r"secrets: \(external secret managers\) are not supported",
    ),
    (
        "only with rules",
        "job:\n  script: [x]\n  rules: [{when: always}]\n  only: [main]\n",
        r'^\.gitlab-ci\.yml:4: job "job": only may not be used with rules$',
    ),
    (
        "stage",
        "job:\n  script: [x]\n  stage: nope\n",
        r'^\.gitlab-ci\.yml:3: job "job": stage: "nope" is not defined; available stages are '
        r"\.pre, build, test, deploy, \.post$",
    ),
    (
        "needs undefined",
        "job:\n  script: [x]\n  needs: [nope]\n",
        r'^\.gitlab-ci\.yml:3: job "job": needs: "nope" is not a job of this pipeline$',
    ),
    (
        "needs later stage",
        "a: {stage: deploy, script: [x]}\nb: {stage: build, script: [x], needs: [a]}\n",
        r'job "b": needs: "a" is in a later stage \(deploy\)',
    ),
    (
        "needs cycle",
        "a: {script: [x], needs: [b]}\nb: {script: [x], needs: [c]}\nc: {script: [x], needs: [a]}\n",
        r'^\.gitlab-ci\.yml:1: job "a": needs: cycle a -> b -> c -> a$',
    ),
    (
        "needs left out by rules",
        "a: {stage: build, script: [x], rules: [{if: $NOPE}]}\nb: {script: [x], needs: [a]}\n",
        r'^\.gitlab-ci\.yml:2: job "b": needs: "a" is not in the pipeline',
    ),
    ("needs pipeline", "a: {script: [x], needs: [{pipeline: other}]}\n", r"needs: pipeline is not supported"),
    (
        "dependency undefined",
        "a: {script: [x], dependencies: [nope]}\n",
        r'job "a": dependencies: "nope" is not a job of this pipeline',
    ),
    (
        "dependency later",
        "a: {script: [x], dependencies: [b]}\nb: {stage: deploy, script: [x]}\n",
        r'job "a": dependencies: "b" is in a later stage',
    ),
    (
        "dependency not needed",
        "a: {stage: build, script: [x]}\nb: {stage: build, script: [x]}\n"
        "c: {script: [x], needs: [a], dependencies: [b]}\n",
        r'job "c": dependencies: "b" should be part of needs',
    ),
    (
        "include remote",
        "include: https://example.com/ci.yml\n",
        r'^\.gitlab-ci\.yml:1: include: remote "https://example.com/ci.yml" is not supported$',
    ),
    (
        "include remote hash",
        "include:\n  - remote: https://example.com/ci.yml\n",
        r"include: remote .* is not supported",
    ),
    (
        "include project",
        "include:\n  - project: group/p\n    file: ci.yml\n",
        r'include: project "group/p" is not supported \(only include: local\)',
    ),
    (
        "include template",
        "include: {template: Auto-DevOps.gitlab-ci.yml}\n",
        r"include: template .* is not supported",
    ),
    (
        "include component",
        "include: [{component: gitlab.com/a/b@1}]\n",
        r"include: component .* is not supported",
    ),
    (
        "include missing",
        "include: ci/none.yml\njob: {script: [x]}\n",
        r'^\.gitlab-ci\.yml:1: include: local file "ci/none.yml" does not exist$',
    ),
    (
        "include not yaml",
        "include: ci/a.txt\n",
        r'include: local file "ci/a.txt" does not have a yaml extension',
    ),
    (
        "include inputs",
        "include: [{local: a.yml, inputs: {x: 1}}]\n",
        r'include: inputs for "a.yml" are not supported',
    ),
    (
        "reference missing",
        "job:\n  script: !reference [.nope, script]\n",
        r"^\.gitlab-ci\.yml:2: !reference \[\.nope, script\]: could not be found$",
    ),
    ("reference malformed", "job:\n  script: !reference .nope\n", r"!reference must be a sequence of names"),
    (
        "rules if",
        "job:\n  script: [x]\n  rules:\n    - if: $A = 'x'\n",
        r"^\.gitlab-ci\.yml:4: job \"job\": rules:if: invalid expression \"\$A = 'x'\": unknown lexeme",
    ),
    (
        "rules keyword",
        "job:\n  script: [x]\n  rules:\n    - iff: $A\n",
        r'job "job": rules: unknown keyword "iff"',
    ),
    (
        "rules when",
        "job: {script: [x], rules: [{when: sometimes}]}\n",
        r'rules:when: "sometimes" is not one of',
    ),
    (
        "rules compare_to",
        "job: {script: [x], rules: [{changes: {paths: [a], compare_to: main}}]}\n",
        r"rules:changes:compare_to is not supported",
    ),
    ("when", "job: {script: [x], when: sometimes}\n", r'job "job": when: "sometimes" is not one of'),
    ("delayed", "job: {script: [x], when: delayed}\n", r'job "job": when: delayed needs start_in'),
    (
        "start_in long",
        "job: {script: [x], when: delayed, start_in: 2 weeks}\n",
        r"start_in: must be at most 1 week",
    ),
    ("timeout", "job: {script: [x], timeout: soon}\n", r'job "job": timeout: "soon" is not a duration'),
    ("retry", "job: {script: [x], retry: 3}\n", r"retry:max: must be 0, 1 or 2"),
    (
        "retry when",
        "job: {script: [x], retry: {max: 1, when: [bad_luck]}}\n",
        r'unknown failure reason "bad_luck"',
    ),
    ("parallel", "job: {script: [x], parallel: 201}\n", r"parallel: must be between 1 and 200"),
    (
        "matrix",
        "job: {script: [x], parallel: {matrix: [{A: {b: c}}]}}\n",
        r"parallel:matrix: A: values must be",
    ),
    (
        "cache key",
        "job: {script: [x], cache: {key: a/b, paths: [x]}}\n",
        r'cache:key: "a/b" cannot contain "/"',
    ),
    ("cache count", "job: {script: [x], cache: [{}, {}, {}, {}, {}]}\n", r"cache: no more than 4 caches"),
    (
        "cache files_commits",
        "job: {script: [x], cache: {key: {files_commits: [a]}}}\n",
        r"cache:key:files_commits is not supported",
    ),
    (
        "cache policy",
        "job: {script: [x], cache: {policy: pull-only}}\n",
        r'cache:policy: "pull-only" is not one of',
    ),
    (
        "variable value",
        "variables:\n  A: true\njob: {script: [x]}\n",
        r"^\.gitlab-ci\.yml:2: variables: A: value must be a string or a number$",
    ),
    (
        "default keyword",
        "default:\n  script: [x]\n",
        r'^\.gitlab-ci\.yml:2: default: unknown keyword "script"$',
    ),
    ("workflow keyword", "workflow:\n  when: always\n", r'workflow: unknown keyword "when"'),
    (
        "report",
        "job: {script: [x], artifacts: {reports: {junk: a}}}\n",
        r'artifacts:reports: unknown report type "junk"',
    ),
    (
        "expire_in",
        "job: {script: [x], artifacts: {expire_in: someday}}\n",
        r'artifacts:expire_in: "someday" is not',
    ),
    (
        "artifacts keyword",
        "job: {script: [x], artifacts: {path: [a]}}\n",
        r'artifacts: unknown keyword "path"',
    ),
    (
        "pull_policy",
        "job: {script: [x], image: {name: a, pull_policy: sometimes}}\n",
        r'image:pull_policy: unknown policy "sometimes"',
    ),
    ("script type", "job: {script: {a: b}}\n", r'job "job": script: must be a string or a list of strings'),
    (
        "spec header",
        "spec:\n  inputs: {a: {}}\n---\njob: {script: [x]}\n",
        r"spec: inputs headers are not supported",
    ),
    ("only keyword", "job: {script: [x], only: {branches: [a]}}\n", r'only: unknown keyword "branches"'),
    ("inherit", "job: {script: [x], inherit: [a]}\n", r"inherit: must be a hash"),
]


@pytest.mark.parametrize(("text", "pattern"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_error_messages(text: str, pattern: str) -> None:
    files = {"ci/a.txt": "", "a.yml": ""}
    with pytest.raises(PipelineFileError, match=pattern) as info:
        load(text, files)
    message = str(info.value)
    assert "\n" not in message
    assert isinstance(info.value, ConfigError)


def test_errors_in_included_files_name_that_file() -> None:
    files = {"ci/jobs.yml": "lint:\n  script: [x]\n  imagee: alpine\n"}
    with pytest.raises(PipelineFileError, match=r'^ci/jobs\.yml:3: job "lint": unknown keyword "imagee"$'):
        load("include: ci/jobs.yml\n", files)


def test_jobs_left_out_by_rules_are_still_validated() -> None:
    with pytest.raises(PipelineFileError, match=r'job "job": timeout: "never" is not a duration'):
        load("job: {script: [x], timeout: never, rules: [{when: never}]}\n")


def test_missing_main_file() -> None:
    with pytest.raises(PipelineFileError, match=r"^nope\.yml:1: file does not exist$"):
        from skyrunner.pipeline import build_pipeline

        from .conftest import checkout_for

        build_pipeline("nope.yml", lambda path: None, checkout_for())
