"""read_checkout against real git repositories made in tmp_path, and loading from them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from skyrunner.errors import ConfigError, PipelineFileError
from skyrunner.pipeline import RefType, load_pipeline, read_checkout
from skyrunner.pipeline.checkout import project_path_from_url

from .conftest import git

MakeRepo = Callable[..., Path]


def test_first_commit(make_repo: MakeRepo) -> None:
    root = make_repo({"a.txt": "a\n", "src/b.py": "b\n"}, message="Title line\n\nBody text")
    checkout = read_checkout(root / "src")
    assert checkout.root == root
    assert len(checkout.sha) == 40 and checkout.short_sha == checkout.sha[:8]
    assert checkout.before_sha == "0" * 40
    assert (checkout.ref_name, checkout.ref_type, checkout.default_branch) == ("main", RefType.BRANCH, "main")
    assert checkout.commit_title == "Title line"
    assert checkout.commit_message == "Title line\n\nBody text\n"
    assert checkout.commit_author == "Tess Ter <tess@example.com>"
    assert checkout.project_path == f"local/{root.name}"
    assert checkout.tracked_files == ("a.txt", "src/b.py")
    assert checkout.files["a.txt"] == git(root, "rev-parse", "HEAD:a.txt").strip()
    assert set(checkout.changed_files) == {"a.txt", "src/b.py"}


def test_second_commit_changes_uncommitted_and_remote(make_repo: MakeRepo) -> None:
    root = make_repo({"a.txt": "a\n", "b.txt": "b\n"})
    first = git(root, "rev-parse", "HEAD").strip()
    git(root, "checkout", "-q", "-b", "feature/x")
    (root / "b.txt").write_text("changed\n")
    git(root, "commit", "-qam", "change b")
    (root / "a.txt").write_text("dirty\n")
    (root / "new.txt").write_text("untracked\n")
    git(root, "remote", "add", "origin", "git@gitlab.example.com:group/sub/project.git")
    checkout = read_checkout(root)
    assert checkout.before_sha == first
    assert checkout.ref_name == "feature/x" and checkout.default_branch == "main"
    assert set(checkout.changed_files) == {"a.txt", "b.txt", "new.txt"}
    assert checkout.project_path == "group/sub/project"
    assert (checkout.project_name, checkout.project_namespace) == ("project", "group/sub")


def test_tag_checkout(make_repo: MakeRepo) -> None:
    root = make_repo({"a.txt": "a\n"})
    git(root, "tag", "v1.0")
    git(root, "checkout", "-q", "--detach", "v1.0")
    checkout = read_checkout(root)
    assert (checkout.ref_name, checkout.ref_type) == ("v1.0", RefType.TAG)


def test_merge_commit_and_ambiguous_branch_names_read_as_git_names_them(make_repo: MakeRepo) -> None:
    root = make_repo({"a.txt": "a\n"})
    git(root, "checkout", "-q", "-b", "side")
    git(root, "commit", "-q", "--allow-empty", "-m", "side")
    git(root, "checkout", "-q", "main")
    git(root, "commit", "-q", "--allow-empty", "-m", "main")
    git(root, "merge", "-q", "--no-ff", "-m", "merge side", "side")
    git(root, "tag", "main")  # a tag named like the branch: symbolic-ref --short says heads/main
    checkout = read_checkout(root)
    assert checkout.before_sha == git(root, "rev-parse", "--verify", "HEAD^").strip()  # the first parent
    assert checkout.ref_name == git(root, "symbolic-ref", "--short", "HEAD").strip() == "heads/main"
    assert checkout.commit_title == "merge side"
    git(root, "checkout", "-q", "-b", "origin")
    git(root, "update-ref", "refs/remotes/origin/HEAD", "HEAD")  # strict shortening would say heads/origin
    assert read_checkout(root).ref_name == "origin"
    git(root, "checkout", "-q", "--detach", "side")
    assert (read_checkout(root).ref_name, read_checkout(root).ref_type) == ("HEAD", RefType.BRANCH)


def test_first_commit_in_a_sha256_repository(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main", "--object-format=sha256")
    (root / "a.txt").write_text("a\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "Initial commit")
    checkout = read_checkout(root)
    assert checkout.object_format == "sha256" and len(checkout.sha) == 64
    assert checkout.before_sha == "0" * 64
    assert checkout.changed_files == ("a.txt",)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("https://gitlab.example.com/group/project.git", "group/project"),
        ("https://user:pw@gitlab.example.com:8443/a/b/c", "a/b/c"),
        ("ssh://git@gitlab.example.com:2222/group/project.git", "group/project"),
        ("git@gitlab.example.com:group/project.git", "group/project"),
        ("/srv/git/team/project.git", "team/project"),
    ],
    ids=["https", "https-port", "ssh", "scp", "path"],
)
def test_project_path_from_url(url: str, path: str) -> None:
    assert project_path_from_url(url) == path


def test_not_a_checkout_and_no_commit(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(ConfigError, match="not a git checkout"):
        read_checkout(plain)
    git(plain, "init", "-q")
    with pytest.raises(ConfigError, match="has no commit yet"):
        read_checkout(plain)


def test_load_pipeline_from_a_checkout_with_includes_exists_and_changes(make_repo: MakeRepo) -> None:
    root = make_repo(
        {
            ".gitlab-ci.yml": """
            include: ci/jobs.yml
            docker:
              script: [docker build .]
              rules: [{exists: [Dockerfile]}]
            docs:
              script: [make docs]
              rules: [{changes: ["docs/**/*.md"]}]
        """,
            "ci/jobs.yml": "lint:\n  script: [ruff check]\n",
            "Dockerfile": "FROM scratch\n",
        }
    )
    (root / "docs" / "guide").mkdir(parents=True)
    (root / "docs" / "guide" / "a.md").write_text("# a\n")
    git(root, "add", "docs")
    git(root, "commit", "-qm", "docs")
    pipeline = load_pipeline(Path(".gitlab-ci.yml"), read_checkout(root))
    assert [job.name for job in pipeline.jobs] == ["lint", "docker", "docs"]
    assert pipeline.job("lint").location == "ci/jobs.yml:1"
    (root / "ci" / "jobs.yml").write_text("lint:\n  scirpt: [x]\n")
    with pytest.raises(PipelineFileError, match=r'^ci/jobs\.yml:2: job "lint": unknown keyword "scirpt"$'):
        load_pipeline(root / ".gitlab-ci.yml", read_checkout(root))
