"""Variable merging and Go-style expansion."""

from __future__ import annotations

import pytest

from skyrunner.job.variables import JobVariable, RunnerContext, build_job_variables, expand

VALUES = {"A": "1", "NAME": "world", "EMPTY": ""}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello $NAME", "hello world"),
        ("hello ${NAME}!", "hello world!"),
        ("$$NAME", "$NAME"),
        ("cost $5", "cost "),
        ("unknown $NOPE.", "unknown ."),
        ("trailing $", "trailing $"),
        ("path $/x", "path $/x"),
        ("bad ${NAME", "bad NAME"),
        ("eat ${}x", "eat x"),
        ("special $* and ${#}", "special  and "),
        ("$A$A", "11"),
        ("no dollars", "no dollars"),
    ],
    ids=[
        "plain",
        "braces",
        "double-dollar",
        "digit",
        "unknown",
        "trailing",
        "non-name",
        "unterminated",
        "empty-braces",
        "specials",
        "adjacent",
        "none",
    ],
)
def test_expand_like_go(text: str, expected: str) -> None:
    assert expand(text, lambda key: "$" if key == "$" else VALUES.get(key, "")) == expected


def context() -> RunnerContext:
    return RunnerContext(
        builds_dir="/b",
        project_dir="/b/p",
        tmp_dir="/b/p.tmp",
        concurrent_id=0,
        concurrent_project_id=0,
        short_token="abc123456",
        runner_id=7,
        version="0.1.0",
        revision="r",
        arch="linux/amd64",
        timeout_s=60,
        shared_environment=True,
        environment=(("FROM_CONFIG", "c"), ("CI_SERVER", "no")),
    )


def test_precedence_and_expansion() -> None:
    job = [
        JobVariable("GREETING", "in $CI_PROJECT_DIR"),
        JobVariable("LITERAL", "keep $CI_PROJECT_DIR", raw=True),
        JobVariable("KEY", "-----BEGIN-----", file=True),
        JobVariable("USES_FILE", "$KEY"),
        JobVariable("SECRET", "hunter22", masked=True),
        JobVariable("CI_RUNNER_VERSION", "overridden-by-runner"),
    ]
    variables = build_job_variables(job, context())
    env = variables.environment()
    assert env["GREETING"] == "in /b/p"
    assert env["LITERAL"] == "keep $CI_PROJECT_DIR"
    assert env["KEY"] == "/b/p.tmp/KEY"
    assert env["USES_FILE"] == "/b/p.tmp/KEY"
    assert env["CI_SERVER"] == "yes"  # the runner's own value is set after config environment
    assert env["FROM_CONFIG"] == "c"
    assert env["CI_RUNNER_VERSION"] == "0.1.0"  # group c comes after the job's variables
    assert env["CI_SHARED_ENVIRONMENT"] == "true"
    assert env["GITLAB_ENV"] == "/b/p.tmp/gitlab_runner_env"
    assert variables.files() == {"/b/p.tmp/KEY": "-----BEGIN-----"}
