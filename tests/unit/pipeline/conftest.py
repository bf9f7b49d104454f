"""Helpers for the pipeline tests: a pure loader over in-memory files, and real git checkouts."""

from __future__ import annotations

import subprocess
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from skyrunner.pipeline import Checkout, Pipeline, RefType, build_pipeline

SHA = "8ec6d0b3a1c1a5d0c2a2a9f0b0a1b2c3d4e5f607"
PARENT = "0123456789abcdef0123456789abcdef01234567"


def checkout_for(
    files: Mapping[str, str] = {},
    *,
    ref: str = "main",
    ref_type: RefType = RefType.BRANCH,
    changed: tuple[str, ...] = (),
    before_sha: str = PARENT,
) -> Checkout:
    """A Checkout value without git: ``files`` are the commit's files (blob id = fake hash)."""
    return Checkout(
        root=Path("/nonexistent"),
        sha=SHA,
        ref_name=ref,
        before_sha=before_sha,
        ref_type=ref_type,
        default_branch="main",
        commit_message="Add things\n\nwith a body\n",
        commit_author="A <a@b.c>",
        commit_timestamp="2026-01-02T03:04:05+00:00",
        project_path="my-group/my-project",
        files={path: f"blob-{path}" for path in files},
        changed_files=changed,
    )


def load(
    text: str,
    files: Mapping[str, str] = {},
    *,
    variables: Mapping[str, str] = {},
    checkout: Checkout | None = None,
) -> Pipeline:
    """Load ``text`` as .gitlab-ci.yml, with ``files`` as the other repository files."""
    sources = {".gitlab-ci.yml": textwrap.dedent(text), **{k: textwrap.dedent(v) for k, v in files.items()}}
    checkout = checkout or checkout_for(sources)
    return build_pipeline(".gitlab-ci.yml", sources.get, checkout, variables=variables)


def names(pipeline: Pipeline) -> list[str]:
    return [job.name for job in pipeline.jobs]


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=Tess Ter", "-c", "user.email=tess@example.com", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Path]:
    """Return a function that makes a git repository in tmp_path with files, committed."""

    def make(
        files: Mapping[str, str], *, name: str = "repo", branch: str = "main", message: str = "Initial commit"
    ) -> Path:
        root = tmp_path / name
        root.mkdir()
        git(root, "init", "-q", "-b", branch)
        for path, content in files.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(textwrap.dedent(content))
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", message)
        return root

    return make
