"""``sources``: get the job's git sources into the project directory (protocol §10).

Flow, as gitlab-runner's get_sources stage:

1. Check that the project directory lies inside the builds directory; refuse otherwise.
2. ``none``: keep whatever is there. ``empty``: a fresh empty directory. Both stop here.
3. ``clone`` deletes the directory; ``fetch`` reuses it. Then, for up to ``attempts`` tries
   (the work tree is cleared between tries, ``.git`` kept):
   stale ``*.lock`` files are removed, ``git init``, ``remote add`` (prints "Created fresh
   repository.") or ``remote set-url``, ``git fetch origin --no-recurse-submodules <refspecs>
   [--depth N | --unshallow] <extra flags>``, ``git checkout -f -q <sha>`` (detached),
   ``git clean <flags>``, ``git lfs pull`` when git-lfs is installed, and the submodule
   commands of :func:`skyrunner.helper.gitenv.build_submodule_commands`.
4. A try that fails names the step and the URL (credentials stripped); the last one fails the
   step with that message.

git's own output goes straight to the helper's stdout (stderr merged), between our notices.
How the token reaches git is :mod:`skyrunner.helper.gitenv`'s business.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from skyrunner.errors import HelperError
from skyrunner.helper.console import Console
from skyrunner.helper.gitenv import build_fetch_args, build_git_env, build_submodule_commands
from skyrunner.helper.plan import GitPlan, GitStrategy, HelperPlan, SubmoduleStrategy
from skyrunner.helper.urls import display_url, strip_credentials

__all__ = ["GitStepError", "check_project_dir", "get_sources"]


class GitStepError(HelperError):
    """One git command of the sources step failed."""


def check_project_dir(plan: HelperPlan) -> Path:
    """Return the project directory after checking it lies strictly inside the builds directory.

    Raises:
        HelperError: it does not (``GIT_CLONE_PATH`` or a link pointing elsewhere).
    """
    builds = os.path.realpath(plan.builds_dir)
    project = os.path.realpath(plan.project_dir)
    if not project.startswith(builds.rstrip(os.sep) + os.sep):
        raise HelperError(f"project directory {plan.project_dir} is not inside the builds directory {plan.builds_dir}")
    return Path(plan.project_dir)


class _Git:
    """Runs git in the project directory with the prepared environment."""

    def __init__(self, project_dir: Path, env: Mapping[str, str], url: str) -> None:
        self.project_dir, self.env, self.url = project_dir, dict(env), display_url(url)

    def run(self, args: Sequence[str], *, what: str, quiet: bool = False) -> None:
        done = subprocess.run(
            ["git", *args],
            cwd=self.project_dir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL if quiet else None,
            stderr=subprocess.DEVNULL if quiet else subprocess.STDOUT,
            check=False,
        )
        if done.returncode != 0:
            raise GitStepError(f"{what} {self.url} failed: git {args[0]} exited with status {done.returncode}")

    def succeeds(self, args: Sequence[str]) -> bool:
        done = subprocess.run(["git", *args], cwd=self.project_dir, env=self.env, capture_output=True, check=False)
        return done.returncode == 0


def _remove_lock_files(git_dir: Path) -> None:
    """Delete ``*.lock`` files a killed job left in ``.git`` (objects and LFS storage excepted)."""
    if not git_dir.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(git_dir):
        dirnames[:] = [d for d in dirnames if d not in ("objects", "lfs")]
        for name in filenames:
            if name.endswith(".lock"):
                Path(dirpath, name).unlink(missing_ok=True)


def _clear_worktree(project_dir: Path) -> None:
    """Delete everything in the project directory but ``.git`` (before a retry)."""
    if not project_dir.is_dir():
        return
    for child in project_dir.iterdir():
        if child.name == ".git":
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _lfs_available(env: Mapping[str, str]) -> bool:
    return shutil.which("git-lfs", path=env.get("PATH")) is not None


def _set_origin(git: _Git, url: str, console: Console, *, reused: bool) -> None:
    """Point ``origin`` at ``url``: ``remote add`` (a fresh repository) or ``remote set-url``.

    gitlab-runner tries ``add`` and falls back to ``set-url``; a reused directory almost always
    has its origin already, so it tries ``set-url`` first and saves a failing git process.
    """
    if reused and git.succeeds(["remote", "set-url", "origin", url]):
        return
    if git.succeeds(["remote", "add", "origin", url]):
        console.notice("Created fresh repository.")
    else:
        git.run(["remote", "set-url", "origin", url], what="setting the remote")


def _fetch(git: _Git, plan: GitPlan, project_dir: Path, console: Console) -> None:
    console.notice(
        f"Fetching changes with git depth set to {plan.depth}..." if plan.depth > 0 else "Fetching changes..."
    )
    project_dir.mkdir(parents=True, exist_ok=True)
    reused = (project_dir / ".git").is_dir()
    _remove_lock_files(project_dir / ".git")
    init = ["-c", "init.defaultBranch=none", "init", "--template="]
    if plan.object_format and plan.object_format != "sha1":
        init.append(f"--object-format={plan.object_format}")
    git.run([*init, str(project_dir)], what="initialising the repository for")
    git.run(["config", "fetch.recurseSubmodules", "false"], what="configuring the repository for")
    _set_origin(git, strip_credentials(plan.repo_url), console, reused=reused)
    shallow = (project_dir / ".git" / "shallow").exists()
    git.run(build_fetch_args(plan, shallow_repo=shallow), what="fetching")


def _checkout(git: _Git, plan: GitPlan, console: Console, lfs: bool) -> None:
    if plan.checkout:
        ref = plan.ref or plan.sha[:8]
        console.notice(f"Checking out {plan.sha[:8]} as detached HEAD (ref is {ref})...")
        git.run(["checkout", "-f", "-q", plan.sha], what=f"checking out {plan.sha[:8]} from")
    else:
        console.notice("Skipping Git checkout")
    if plan.clean_flags:
        git.run(["clean", *plan.clean_flags], what="cleaning the work tree of")
    if plan.checkout and lfs and not plan.lfs_skip_smudge:
        git.run(["lfs", "pull"], what="pulling LFS objects from")
    console.plain("")


def _submodules(git: _Git, plan: GitPlan, console: Console, lfs: bool) -> None:
    if plan.submodule_strategy is SubmoduleStrategy.NONE:
        console.notice("Skipping Git submodules setup")
        return
    text = "Updating/initializing submodules"
    if plan.submodule_strategy is SubmoduleStrategy.RECURSIVE:
        text += " recursively"
    if plan.submodule_depth > 0:
        text += f" with git depth set to {plan.submodule_depth}"
    console.notice(text + "...")
    for command in build_submodule_commands(plan):
        git.run(command, what="updating the submodules of")
    if lfs and not plan.lfs_skip_smudge:
        recursive = ["--recursive"] if plan.submodule_strategy is SubmoduleStrategy.RECURSIVE else []
        git.run(["submodule", "foreach", *recursive, "git", "lfs", "pull"], what="pulling LFS objects from")


def get_sources(plan: HelperPlan, console: Console, base_env: Mapping[str, str], token: str) -> None:
    """Run the get_sources step for ``plan``.

    Raises:
        HelperError: the project directory is misplaced, or the last attempt failed.
    """
    project_dir = check_project_dir(plan)
    git_plan = plan.git
    if git_plan.strategy is GitStrategy.NONE:
        console.notice("Skipping Git repository setup")
        project_dir.mkdir(parents=True, exist_ok=True)
        return
    if git_plan.strategy is GitStrategy.EMPTY:
        console.notice("Skipping Git repository setup and creating an empty build directory")
        shutil.rmtree(project_dir, ignore_errors=True)
        project_dir.mkdir(parents=True, exist_ok=True)
        return
    if git_plan.strategy is GitStrategy.CLONE:
        shutil.rmtree(project_dir, ignore_errors=True)
    project_dir.mkdir(parents=True, exist_ok=True)
    lfs = _lfs_available(base_env)
    env = build_git_env(base_env, git_plan.repo_url, token, lfs_skip_smudge=lfs)
    git = _Git(project_dir, env, git_plan.repo_url)
    attempts = max(1, git_plan.attempts)
    for attempt in range(1, attempts + 1):
        try:
            _fetch(git, git_plan, project_dir, console)
            _checkout(git, git_plan, console, lfs)
            _submodules(git, git_plan, console, lfs)
            return
        except GitStepError as exc:
            if attempt == attempts:
                raise
            console.warning(f"{exc}; retrying ({attempt + 1}/{attempts})")
            _clear_worktree(project_dir)
