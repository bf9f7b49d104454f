"""Collecting files for archives: globs over a real tree, links not followed, exclude."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from skyrunner.helper.console import Console
from skyrunner.helper.filesets import collect_files


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    for name in ("a/b/c.txt", "a/b/d.log", "a/e.txt", "top.txt", ".hidden/x.txt"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/secret").write_text("s")
    (root / "out-link").symlink_to(tmp_path / "outside")
    return root


@pytest.mark.parametrize(
    ("paths", "exclude", "expected"),
    [
        (["a"], [], ["a", "a/b", "a/b/c.txt", "a/b/d.log", "a/e.txt"]),
        (["a/**/*.txt"], [], ["a/b/c.txt", "a/e.txt"]),
        (["**/b"], [], ["a/b", "a/b/c.txt", "a/b/d.log"]),
        (["*"], ["a/**", "*.txt"], [".hidden", ".hidden/x.txt", "out-link"]),
        (["out-link/**", "out-link"], [], ["out-link"]),
        (["a", "a/../top.txt"], ["**/*.log"], ["a", "a/b", "a/b/c.txt", "a/e.txt", "top.txt"]),
        (["a"], ["a/b"], ["a", "a/b/c.txt", "a/b/d.log", "a/e.txt"]),
    ],
    ids=["directory", "doublestar", "dir-anywhere", "exclude", "link-not-followed", "mixed", "exclude-a-directory"],
)
def test_collect(tree: Path, paths: list[str], exclude: list[str], expected: list[str]) -> None:
    assert collect_files(tree, paths, Console(io.StringIO()), exclude=exclude) == expected


def test_messages(tree: Path) -> None:
    out = io.StringIO()
    collect_files(tree, ["a/**/*.txt", "nothing/*", "../../etc"], Console(out), exclude=["a/e.txt"])
    text = out.getvalue()
    assert "a/**/*.txt: found 2 matching artifact files and directories" in text
    assert "WARNING: nothing/*: no matching files" in text
    assert "WARNING: ../../etc: artifact path is not a subpath of project directory" in text
    assert "a/e.txt: excluded 1 files" in text
