"""The working tree as a commit the jobs can clone: what ``skyrunner exec`` serves over git.

Users of local pipelines expect their uncommitted work to be tested (gitlab-ci-local does so),
but jobs get their sources the GitLab way, by cloning. So each run snapshots the working tree:

1. ``.skyrunner/repo.git`` is a bare repository whose ``objects/info/alternates`` names the
   checkout's object store: every committed object is shared, nothing is copied, and nothing is
   ever written into the user's repository.
2. A private index (``.skyrunner/index``) starts as a copy of the checkout's index (so its stat
   data spares rehashing unchanged files; a fresh ``read-tree`` of HEAD if the copy is unusable),
   then ``git add -A`` over the checkout's working tree records every change, untracked files
   included, ignored files and ``.skyrunner`` excluded; new blobs land in ``repo.git``.
3. ``write-tree``; when the tree is HEAD's, the snapshot is HEAD itself, else a commit on top of
   HEAD. ``refs/pipelines/<id>`` and the branch (or tag) point at it, so the payload's refspecs
   and sha work unchanged.

I/O: runs git; call it from a thread.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from skyrunner.errors import ConfigError, cut
from skyrunner.pipeline.checkout import Checkout, RefType
from skyrunner.pipeline.workspace import STATE_DIR, Workspace

__all__ = ["snapshot_worktree"]

_IDENTITY: Final = {
    "GIT_AUTHOR_NAME": "skyrunner exec",
    "GIT_AUTHOR_EMAIL": "exec@skyrunner.invalid",
    "GIT_COMMITTER_NAME": "skyrunner exec",
    "GIT_COMMITTER_EMAIL": "exec@skyrunner.invalid",
}
# Variables that would point our git commands at the user's repository or index.
_REPO_VARIABLES: Final = frozenset(
    {
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR",
        "GIT_NAMESPACE",
        "GIT_CEILING_DIRECTORIES",
    }
)


class _Git:
    """git with ``repo.git`` as GIT_DIR, the checkout as work tree and our own index."""

    def __init__(self, checkout: Checkout, workspace: Workspace) -> None:
        base = {k: v for k, v in os.environ.items() if k not in _REPO_VARIABLES}
        self.env: Mapping[str, str] = {
            **base,
            **_IDENTITY,
            "GIT_DIR": str(workspace.repo),
            "GIT_WORK_TREE": str(checkout.root),
            "GIT_INDEX_FILE": str(workspace.index),
            "GIT_TERMINAL_PROMPT": "0",
        }
        self.root = checkout.root

    def run(self, *args: str, check: bool = True, stdin: str = "") -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=self.root, env=self.env, input=stdin, capture_output=True, text=True, check=False
            )
        except OSError as exc:
            raise ConfigError(f"{self.root}: cannot run git: {exc.strerror}") from exc
        if done.returncode == 0:
            return done.stdout.strip()
        if check:
            raise ConfigError(f"{self.root}: snapshot of the working tree: git {args[0]} failed: {cut(done.stderr)}")
        return None


def _user_git_paths(checkout: Checkout, *names: str) -> tuple[list[Path], str]:
    """Return the absolute paths of ``names`` inside the checkout's git directory, and the tree of
    ``checkout.sha`` (one git call).
    """
    env = {k: v for k, v in os.environ.items() if k not in _REPO_VARIABLES}
    args = [arg for name in names for arg in ("--git-path", name)]
    done = subprocess.run(
        ["git", "rev-parse", "--path-format=absolute", *args, f"{checkout.sha}^{{tree}}"],
        cwd=checkout.root, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    lines = done.stdout.splitlines()
    if done.returncode != 0 or len(lines) != len(names) + 1:
        raise ConfigError(f"{checkout.root}: git rev-parse failed: {cut(done.stderr)}")
    return [Path(path) for path in lines[:-1]], lines[-1]


def _prepare_repo(checkout: Checkout, workspace: Workspace) -> tuple[Path, str]:
    """Create ``repo.git`` if needed, point its alternates at the checkout's objects.

    Returns the checkout's index and the tree of ``checkout.sha``.
    """
    repo = workspace.repo
    if not (repo / "HEAD").exists():
        fmt = [f"--object-format={checkout.object_format}"] if checkout.object_format != "sha1" else []
        done = subprocess.run(
            ["git", "init", "--bare", "-q", *fmt, str(repo)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise ConfigError(f"{repo}: git init failed: {cut(done.stderr)}")
    (objects, user_exclude, user_index), head_tree = _user_git_paths(checkout, "objects", "info/exclude", "index")
    (repo / "objects" / "info").mkdir(parents=True, exist_ok=True)
    (repo / "objects" / "info" / "alternates").write_text(f"{objects}\n")
    excludes = user_exclude.read_text(errors="replace") if user_exclude.is_file() else ""
    (repo / "info").mkdir(exist_ok=True)
    (repo / "info" / "exclude").write_text(f"{excludes.rstrip()}\n/{STATE_DIR}/\n".lstrip())
    return user_index, head_tree


def _stage_worktree(git: _Git, checkout: Checkout, workspace: Workspace, user_index: Path) -> str:
    """Record the working tree in our index (seeded from ``user_index``); return its tree id."""
    workspace.index.unlink(missing_ok=True)
    if user_index.is_file():
        shutil.copyfile(user_index, workspace.index)
        if git.run("add", "-A", check=False) is not None:
            tree = git.run("write-tree", check=False)
            if tree:
                return tree
    # The copy was unusable (a split index, an index newer than our git): start from HEAD.
    workspace.index.unlink(missing_ok=True)
    git.run("read-tree", checkout.sha)
    git.run("add", "-A")
    tree = git.run("write-tree")
    assert tree is not None
    return tree


def snapshot_worktree(checkout: Checkout, workspace: Workspace, pipeline_id: int) -> str:
    """Snapshot the working tree of ``checkout``; return the sha that ``refs/pipelines/<id>`` names.

    Raises:
        ConfigError: git failed (the message names the checkout and the git command).
    """
    user_index, head_tree = _prepare_repo(checkout, workspace)
    git = _Git(checkout, workspace)
    tree = _stage_worktree(git, checkout, workspace, user_index)
    if tree == head_tree:
        sha = checkout.sha
    else:
        message = f"skyrunner exec: the working tree of {checkout.ref_name}, uncommitted changes included"
        sha = git.run("commit-tree", tree, "-p", checkout.sha, "-m", message) or ""
    ref = "tags" if checkout.ref_type is RefType.TAG else "heads"
    git.run(
        "update-ref",
        "--stdin",
        stdin=f"update refs/pipelines/{pipeline_id} {sha}\nupdate refs/{ref}/{checkout.ref_name} {sha}\n",
    )
    return sha
