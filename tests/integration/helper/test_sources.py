"""``sources`` against the git smart-HTTP test server: strategies, depth, submodules, secrets."""

from __future__ import annotations

import base64
import dataclasses
import subprocess
from pathlib import Path

from skyrunner.helper.plan import GitPlan, GitStrategy, SubmoduleStrategy
from tests.fakes.gitserver import serve_git
from tests.integration.helper.conftest import TOKEN, HelperEnv


def _authorize(user: str, password: str) -> bool:
    return (user, password) == ("gitlab-ci-token", TOKEN)


def _git(project: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=project, capture_output=True, text=True, check=True).stdout


def _secret_free(text: str) -> None:
    basic = base64.b64encode(f"gitlab-ci-token:{TOKEN}".encode()).decode()
    assert TOKEN not in text
    assert basic not in text


async def test_clone_at_depth_then_fetch_reuses_the_directory(tmp_path: Path, helper: HelperEnv) -> None:
    async with serve_git(tmp_path / "srv", authorize=_authorize) as (server, base):
        repo = server.create_repo("group/project", {"README.md": "one\n"})
        for n in range(3):
            repo.commit({f"f{n}.txt": f"{n}\n"}, message=f"c{n}")
        sha = repo.head() or ""
        git = GitPlan(
            repo_url=repo.url(base),
            sha=sha,
            ref="main",
            refspecs=("+refs/heads/main:refs/remotes/origin/main",),
            depth=2,
            strategy=GitStrategy.CLONE,
        )
        first = await helper.run("sources", helper.plan(git=git))
        first.assert_ok()
        assert "Fetching changes with git depth set to 2..." in first.output
        assert "Created fresh repository." in first.output
        assert f"Checking out {sha[:8]} as detached HEAD (ref is main)..." in first.output
        assert "Skipping Git submodules setup" in first.output
        project = helper.project_dir
        assert _git(project, "rev-parse", "HEAD").strip() == sha
        assert _git(project, "rev-list", "--count", "HEAD").strip() == "2"
        (project / "junk.txt").write_text("left by a job\n")

        newer = repo.commit({"f0.txt": "changed\n"}, message="newer")
        plan2 = helper.plan(
            git=GitPlan(
                repo_url=repo.url(base),
                sha=newer,
                ref="main",
                refspecs=git.refspecs,
                depth=0,
                strategy=GitStrategy.FETCH,
            )
        )
        second = await helper.run("sources", plan2)
        second.assert_ok()
        assert "Fetching changes..." in second.output
        assert "Created fresh repository." not in second.output
        assert "Reinitialized existing Git repository" in second.output
        assert (project / "f0.txt").read_text() == "changed\n"
        assert not (project / "junk.txt").exists()  # git clean -ffdx
        assert not (project / ".git" / "shallow").exists()  # --unshallow at depth 0
        for run in (first, second):
            _secret_free(run.output)
        config = (project / ".git" / "config").read_text()
        _secret_free(config)
        assert f"url = {repo.url(base)}" in config
        assert all(r.user == "gitlab-ci-token" for r in server.requests)


async def test_submodules_over_smart_http_use_the_token_on_the_same_host(tmp_path: Path, helper: HelperEnv) -> None:
    async with serve_git(tmp_path / "srv", authorize=_authorize) as (server, base):
        inner = server.create_repo("group/inner", {"inner.txt": "inner\n"})
        lib = server.create_repo("group/lib", {"lib.txt": "lib v1\n"})
        lib.add_submodule("deps/inner", "../inner.git", inner.head() or "")
        pinned = lib.head() or ""
        lib.commit({"lib.txt": "lib v2 (not pinned)\n"})
        app = server.create_repo("group/project", {"app.txt": "app\n"})
        sha = app.add_submodule("vendor/lib", "../lib.git", pinned)
        git = GitPlan(
            repo_url=app.url(base),
            sha=sha,
            ref="main",
            refspecs=("+refs/heads/main:refs/remotes/origin/main",),
            depth=1,
            strategy=GitStrategy.FETCH,
            submodule_strategy=SubmoduleStrategy.RECURSIVE,
            submodule_depth=1,
        )
        run = await helper.run("sources", helper.plan(git=git))
        run.assert_ok()
        assert "Updating/initializing submodules recursively with git depth set to 1..." in run.output
        project = helper.project_dir
        assert (project / "vendor/lib/lib.txt").read_text() == "lib v1\n"
        assert (project / "vendor/lib/deps/inner/inner.txt").read_text() == "inner\n"
        fetched = {r.repo for r in server.requests}
        assert fetched == {"group/project", "group/lib", "group/inner"}
        assert all(r.user == "gitlab-ci-token" and r.status == 200 for r in server.requests)
        _secret_free(run.output)
        for config in project.glob(".git/**/config"):
            _secret_free(config.read_text())


async def test_a_repository_reached_by_path_is_fetched_without_credentials(tmp_path: Path, helper: HelperEnv) -> None:
    async with serve_git(tmp_path / "srv") as (server, _):
        repo = server.create_repo("group/project", {"a.txt": "a\n"})
        repo.set_ref("refs/pipelines/7", repo.head() or "")
        refspecs = ("+refs/pipelines/7:refs/pipelines/7",)
        git = GitPlan(repo_url=str(repo.dir), sha=repo.head() or "", ref="main", refspecs=refspecs, depth=20)
        first = await helper.run("sources", helper.plan(git=git))
        first.assert_ok()
        assert "Created fresh repository." in first.output
        newer = repo.commit({"a.txt": "b\n"})
        repo.set_ref("refs/pipelines/7", newer)
        second = await helper.run("sources", helper.plan(git=dataclasses.replace(git, sha=newer)))
        second.assert_ok()
        assert "Created fresh repository." not in second.output
        project = helper.project_dir
        assert (project / "a.txt").read_text() == "b\n"
        assert _git(project, "remote", "get-url", "origin").strip() == str(repo.dir)
        assert not server.requests  # nothing went over HTTP
        for run in (first, second):
            _secret_free(run.output)


async def test_strategy_none_keeps_and_empty_wipes(tmp_path: Path, helper: HelperEnv) -> None:
    project = helper.project_dir
    project.mkdir(parents=True)
    (project / "kept.txt").write_text("x")
    git = GitPlan(repo_url="http://127.0.0.1:9/group/project.git", sha="a" * 40, strategy=GitStrategy.NONE)
    run = await helper.run("sources", helper.plan(git=git))
    run.assert_ok()
    assert "Skipping Git repository setup" in run.output
    assert (project / "kept.txt").exists()

    empty = GitPlan(repo_url=git.repo_url, sha=git.sha, strategy=GitStrategy.EMPTY)
    run = await helper.run("sources", helper.plan(git=empty))
    run.assert_ok()
    assert "creating an empty build directory" in run.output
    assert project.is_dir() and not any(project.iterdir())


async def test_clean_flags_and_checkout_false(tmp_path: Path, helper: HelperEnv) -> None:
    async with serve_git(tmp_path / "srv") as (server, base):
        repo = server.create_repo("group/project", {".gitignore": "*.log\n", "a.txt": "a\n"})
        sha = repo.head() or ""
        plan = helper.plan(git=GitPlan(repo_url=repo.url(base), sha=sha, ref="main"))
        (await helper.run("sources", plan)).assert_ok()
        project = helper.project_dir
        (project / "build.log").write_text("ignored\n")
        (project / "stray.txt").write_text("untracked\n")

        keep_ignored = helper.plan(git=GitPlan(repo_url=repo.url(base), sha=sha, clean_flags=("-ffd",)))
        (await helper.run("sources", keep_ignored)).assert_ok()
        assert (project / "build.log").exists()
        assert not (project / "stray.txt").exists()

        (project / "stray.txt").write_text("untracked\n")
        no_clean = helper.plan(git=GitPlan(repo_url=repo.url(base), sha=sha, clean_flags=()))
        (await helper.run("sources", no_clean)).assert_ok()
        assert (project / "stray.txt").exists()

        newer = repo.commit({"a.txt": "b\n"})
        no_checkout = helper.plan(git=GitPlan(repo_url=repo.url(base), sha=newer, checkout=False))
        run = await helper.run("sources", no_checkout)
        run.assert_ok()
        assert "Skipping Git checkout" in run.output
        assert (project / "a.txt").read_text() == "a\n"


async def test_failure_names_the_url_without_credentials_and_retries(tmp_path: Path, helper: HelperEnv) -> None:
    async with serve_git(tmp_path / "srv", authorize=_authorize) as (server, base):
        repo = server.create_repo("group/project", {"a.txt": "a\n"})
        url_with_creds = repo.url(base).replace("http://", "http://someone:hunter2@")
        git = GitPlan(repo_url=url_with_creds, sha=repo.head() or "", attempts=2)
        run = await helper.run("sources", helper.plan(git=git), token="wrong-token")
        assert run.returncode == 1
        lines = run.output.splitlines()
        assert lines[-1] == (
            f"\x1b[31;1mERROR: fetching {repo.url(base)} failed: git fetch exited with status 128\x1b[0;m"
        )
        assert "retrying (2/2)" in run.output
        assert "hunter2" not in run.output and "wrong-token" not in run.output
        assert "Traceback" not in run.output
        assert "hunter2" not in (helper.project_dir / ".git/config").read_text()
        assert {r.status for r in server.requests} == {401}


async def test_project_dir_outside_builds_dir_is_refused(tmp_path: Path, helper: HelperEnv) -> None:
    outside = tmp_path / "elsewhere"
    plan = helper.plan(project_dir=str(helper.builds_dir / ".." / "elsewhere"))
    run = await helper.run("sources", plan)
    assert run.returncode == 1
    assert "is not inside the builds directory" in run.output
    assert not outside.exists()


async def test_lfs_pull_runs_when_git_lfs_is_installed(tmp_path: Path, helper: HelperEnv) -> None:
    log = tmp_path / "lfs.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_lfs = bin_dir / "git-lfs"  # records how git calls it; the real one is not installed here
    fake_lfs.write_text(f'#!/bin/sh\necho "$(basename "$PWD") $*" >> {log}\n')
    fake_lfs.chmod(0o755)
    helper.extra_path.append(str(bin_dir))
    async with serve_git(tmp_path / "srv") as (server, base):
        repo = server.create_repo("group/project", {".gitattributes": "*.bin filter=lfs\n"})
        git = GitPlan(repo_url=repo.url(base), sha=repo.head() or "", ref="main")
        (await helper.run("sources", helper.plan(git=git))).assert_ok()
        assert log.read_text().splitlines() == ["project pull"]
        skipped = GitPlan(repo_url=repo.url(base), sha=repo.head() or "", lfs_skip_smudge=True)
        (await helper.run("sources", helper.plan(git=skipped))).assert_ok()
        assert log.read_text().splitlines() == ["project pull"]
