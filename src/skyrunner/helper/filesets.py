"""Which files of the project directory go into a cache or artifact archive.

Owns the walk: it expands ``paths`` globs (see :mod:`skyrunner.helper.globbing`) against the
project directory without following symbolic links, adds ``git ls-files -o`` for ``untracked``
(git-ignored files included, as gitlab-runner does), drops ``exclude`` matches, and prints
gitlab-runner's per-pattern lines. A matched directory brings everything under it; an excluded
one only loses its own entry (exclude is not recursive in gitlab-runner: ``dir/**`` drops all). Archiving
the result is :mod:`skyrunner.helper.archive`'s job.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

from skyrunner.helper._entries import within
from skyrunner.helper.console import Console
from skyrunner.helper.globbing import GlobPattern, matches_any, parse_glob

__all__ = ["collect_files", "list_untracked"]

_RELATIVE_HINT = "Ensure that the artifact path is relative to the working directory"


def _walk(root: Path, start: str) -> Iterator[tuple[str, bool]]:
    """Yield ``start`` and every path below it as (relative path, is a real directory).

    Links are reported, never followed. A directory comes before what it contains.
    """
    try:
        st = os.lstat(root / start if start else root)
    except FileNotFoundError:
        return
    if start:
        yield start, stat.S_ISDIR(st.st_mode)
    if not stat.S_ISDIR(st.st_mode):
        return
    pending = [start]
    while pending:
        rel_dir = pending.pop()
        with os.scandir(root / rel_dir if rel_dir else root) as listing:
            children = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in listing]
        for name, is_dir in children:
            rel = f"{rel_dir}/{name}" if rel_dir else name
            yield rel, is_dir
            if is_dir:
                pending.append(rel)


def _inside(root: Path, real_root: str, rel: str) -> bool:
    """True when the literal start of a walk does not pass through a link leading out."""
    return not rel or within(os.path.realpath(os.path.dirname(root / rel)), real_root)


def _expand(root: Path, real_root: str, pattern: GlobPattern) -> set[str]:
    start = pattern.literal_prefix
    if not _inside(root, real_root, start):
        return set()
    if pattern.is_literal:
        return {rel for rel, _ in _walk(root, start)}
    found: set[str] = set()
    matched_dirs: set[str] = set()
    for rel, is_dir in _walk(root, start):
        if _has_ancestor_in(rel, matched_dirs) or pattern.matches(rel):
            found.add(rel)
            if is_dir:
                matched_dirs.add(rel)
    return found


def _has_ancestor_in(rel: str, dirs: set[str]) -> bool:
    index = rel.find("/")
    while index > 0:
        if rel[:index] in dirs:
            return True
        index = rel.find("/", index + 1)
    return False


def list_untracked(root: Path) -> list[str] | None:
    """Return ``git ls-files -o`` in ``root`` (ignored files included), or None if git fails."""
    try:
        done = subprocess.run(["git", "ls-files", "-o", "-z"], cwd=root, capture_output=True, check=False, timeout=600)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return sorted(name for name in done.stdout.decode("utf-8", "surrogateescape").split("\0") if name)


def collect_files(
    root: Path,
    paths: Sequence[str],
    console: Console,
    *,
    exclude: Sequence[str] = (),
    untracked: bool = False,
) -> list[str]:
    """Return the sorted relative paths (files, directories, links) to archive from ``root``."""
    selected: set[str] = set()
    real_root = os.path.realpath(root)
    for text in paths:
        patterns = parse_glob(text, str(root))
        if patterns is None:
            console.warning(f"{text}: artifact path is not a subpath of project directory: {root}")
            continue
        found: set[str] = set()
        for pattern in patterns:
            found |= _expand(root, real_root, pattern)
        if found:
            console.plain(f"{text}: found {len(found)} matching artifact files and directories")
        else:
            console.warning(f"{text}: no matching files. {_RELATIVE_HINT}")
        selected |= found
    if untracked:
        names = list_untracked(root)
        if names is None:
            console.warning("untracked: git ls-files failed, no untracked files added")
        else:
            console.plain(f"untracked: found {len(names)} files")
            selected.update(names)
    return sorted(_apply_exclude(root, selected, exclude, console))


def _apply_exclude(root: Path, selected: set[str], exclude: Sequence[str], console: Console) -> set[str]:
    for text in exclude:
        patterns = parse_glob(text, str(root))
        if patterns is None:
            console.warning(f"{text}: exclude path is not a subpath of project directory: {root}")
            continue
        dropped = {rel for rel in selected if matches_any(patterns, rel)}
        console.plain(f"{text}: excluded {len(dropped)} files")
        selected -= dropped
    return selected
