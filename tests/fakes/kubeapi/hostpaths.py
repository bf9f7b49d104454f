"""Mount points the fake had to create on the host, and their removal.

A bind mount needs an existing mount point, and the mount namespace of a container process
shares the host's file system: a pod that mounts a volume at ``/builds`` makes ``/builds``
appear on the host. This module creates such paths (only the ones outside the container's
other mounts) and remembers the topmost path it created, so the last :class:`FakeKubeApi`
to exit removes them. The registry is module-level on purpose: two fakes alive in one
process share the host, and the first to exit must not pull a mount point from under the
other's pods.
"""

from __future__ import annotations

import shutil
from pathlib import Path

__all__ = ["ensure", "enter", "leave"]

_created: list[Path] = []
_users = 0


def enter() -> None:
    """Count one more live server."""
    global _users
    _users += 1


def leave() -> None:
    """Count one server less; the last one removes every path the fakes created."""
    global _users
    _users -= 1
    if _users > 0:
        return
    for path in reversed(_created):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            path.unlink(missing_ok=True)
    _created.clear()


def ensure(target: str, is_file: bool) -> None:
    """Create ``target`` (a directory, or an empty file) if missing; remember what was new."""
    path = Path(target)
    if path.exists():
        return
    top = path
    while not top.parent.exists():
        top = top.parent
    if is_file:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    else:
        path.mkdir(parents=True, exist_ok=True)
    if not any(top == p or p in top.parents for p in _created):
        _created.append(top)
