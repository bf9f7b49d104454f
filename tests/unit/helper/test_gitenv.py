"""git environment and command lines: the token stays in the child env, scoped to one host."""

from __future__ import annotations

import base64

import pytest

from skyrunner.helper.gitenv import build_fetch_args, build_git_env, build_submodule_commands
from skyrunner.helper.plan import GitPlan, SubmoduleStrategy

URL = "https://gitlab.example.com:8443/group/project.git"


def _config(env: dict[str, str]) -> dict[str, str]:
    return {env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"] for i in range(int(env["GIT_CONFIG_COUNT"]))}


def test_token_is_a_host_scoped_basic_header() -> None:
    env = build_git_env({"PATH": "/bin"}, URL, "glcbt-secret", lfs_skip_smudge=False)
    config = _config(env)
    header = config["http.https://gitlab.example.com:8443/.extraHeader"]
    assert header == "Authorization: Basic " + base64.b64encode(b"gitlab-ci-token:glcbt-secret").decode()
    assert config["core.hooksPath"] == "/dev/null"
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert "GIT_LFS_SKIP_SMUDGE" not in env


def test_credentials_in_the_url_do_not_reach_the_scope() -> None:
    env = build_git_env({}, "http://u:p@h/g/p.git", "t", lfs_skip_smudge=True)
    assert "http.http://h/.extraHeader" in _config(env)
    assert env["GIT_LFS_SKIP_SMUDGE"] == "1"


@pytest.mark.parametrize(
    "url",
    ["/work/.skyrunner/repo.git", "file:///srv/repo.git", "ssh://git@h/g/p.git", "git@h:g/p.git"],
    ids=["path", "file-url", "ssh-url", "scp-like"],
)
def test_a_repository_not_reached_over_http_gets_no_token_header(url: str) -> None:
    env = build_git_env({}, url, "glcbt-secret", lfs_skip_smudge=False)
    assert _config(env) == {"core.hooksPath": "/dev/null"}
    assert not any("glcbt-secret" in value for value in env.values())


def test_job_config_entries_are_kept_and_tracing_is_dropped() -> None:
    base = {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.sslVerify",
        "GIT_CONFIG_VALUE_0": "false",
        "GIT_TRACE_CURL": "1",
        "GIT_CURL_VERBOSE": "1",
        "GIT_DIR": "/elsewhere",
        "KEEP": "me",
    }
    env = build_git_env(base, URL, "", lfs_skip_smudge=False)
    assert _config(env) == {"http.sslVerify": "false", "core.hooksPath": "/dev/null"}
    assert env["KEEP"] == "me"
    assert not {"GIT_TRACE_CURL", "GIT_CURL_VERBOSE", "GIT_DIR"} & env.keys()


@pytest.mark.parametrize(
    ("plan", "shallow", "expected"),
    [
        (GitPlan(URL, "s", refspecs=("+refs/heads/main:refs/remotes/origin/main",), depth=20), False,
         ["fetch", "origin", "--no-recurse-submodules", "+refs/heads/main:refs/remotes/origin/main",
          "--depth", "20", "--prune", "--quiet"]),
        (GitPlan(URL, "s", fetch_extra_flags=()), True,
         ["fetch", "origin", "--no-recurse-submodules", "+refs/heads/*:refs/remotes/origin/*",
          "+refs/tags/*:refs/tags/*", "--unshallow"]),
        (GitPlan(URL, "s", fetch_extra_flags=("--tags",)), False,
         ["fetch", "origin", "--no-recurse-submodules", "+refs/heads/*:refs/remotes/origin/*",
          "+refs/tags/*:refs/tags/*", "--tags"]),
    ],
    ids=["depth", "unshallow", "extra-flags"],
)  # fmt: skip
def test_fetch_args(plan: GitPlan, shallow: bool, expected: list[str]) -> None:
    assert build_fetch_args(plan, shallow_repo=shallow) == expected


def test_submodule_commands() -> None:
    assert build_submodule_commands(GitPlan(URL, "s")) == []
    plan = GitPlan(
        URL,
        "s",
        submodule_strategy=SubmoduleStrategy.RECURSIVE,
        submodule_depth=3,
        submodule_paths=("libs/a", ":(exclude)libs/b"),
        submodule_update_flags=("--jobs", "4"),
    )
    assert build_submodule_commands(plan) == [
        ["submodule", "init", "--", "libs/a", ":(exclude)libs/b"],
        ["submodule", "sync", "--recursive", "--", "libs/a", ":(exclude)libs/b"],
        ["submodule", "update", "--init", "--recursive", "--depth", "3", "--jobs", "4", "--",
         "libs/a", ":(exclude)libs/b"],
        ["submodule", "foreach", "--recursive", "git", "clean", "-ffdx"],
        ["submodule", "foreach", "--recursive", "git", "reset", "--hard", "-q"],
    ]  # fmt: skip
    normal = GitPlan(URL, "s", submodule_strategy=SubmoduleStrategy.NORMAL, clean_flags=())
    assert build_submodule_commands(normal) == [
        ["submodule", "init"],
        ["submodule", "sync"],
        ["submodule", "update", "--init"],
        ["submodule", "foreach", "git", "reset", "--hard", "-q"],
    ]
