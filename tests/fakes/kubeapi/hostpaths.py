"""Mount points the fake had to create on the host, and their removal.

A bind mount needs an existing mount point, and the mount namespace of a container process
shares the host's file system: a pod that mounts a volume at ``/builds`` makes ``/builds``
appear on the host. This module creates such paths (only the ones outside the container's
other mounts) and remembers the topmost path it created.

They are removed when the last fake *on the machine* exits, not the last one in this process:
removing a mount point also detaches the mounts other processes' containers have on it, so two
test processes running fakes at once (two developers, or CI and a developer) must not pull
them from under each other. The bookkeeping is a small directory under the system temp dir,
guarded by ``flock``: one file per live process, one list of created paths.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["ensure", "enter", "leave"]

_STATE = Path(tempfile.gettempdir()) / "skyrunner-fake-kubeapi-hostpaths"
_users_here = 0


@contextlib.contextmanager
def _locked() -> Iterator[Path]:
    (_STATE / "users").mkdir(parents=True, exist_ok=True)
    with (_STATE / "lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield _STATE
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def enter() -> None:
    """Count one more live server in this process."""
    global _users_here
    _users_here += 1
    with _locked() as state:
        (state / "users" / str(os.getpid())).touch()


def leave() -> None:
    """Count one server less; the last one on the machine removes the created paths."""
    global _users_here
    _users_here -= 1
    if _users_here > 0:
        return
    with _locked() as state:
        (state / "users" / str(os.getpid())).unlink(missing_ok=True)
        others = [p for p in (state / "users").iterdir() if p.name.isdigit() and _alive(int(p.name))]
        if others:
            return
        created = state / "created"
        paths = created.read_text().splitlines() if created.exists() else []
        for text in reversed(paths):
            _remove(Path(text))
        created.unlink(missing_ok=True)
        shutil.rmtree(state / "users", ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def ensure(target: str, is_file: bool) -> None:
    """Create ``target`` (a directory, or an empty file) if missing; remember what was new."""
    path = Path(target)
    if path.exists():
        return
    with _locked() as state:
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
        with (state / "created").open("a") as created:
            created.write(f"{top}\n")
