"""One cgroup per container, so that the whole container can be killed as a real runtime does.

A container's processes may start new sessions (the skyrunner sequencer runs each stage with
``setsid``), which a process-group kill misses; the container runtime kills the container's cgroup
instead. Where cgroup v2 is writable (``/sys/fs/cgroup/unified`` or ``/sys/fs/cgroup``, kernel with
``cgroup.kill``), each container gets its own; elsewhere this module does nothing and only the
process group is killed (a simplification written in the package docstring).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

__all__ = ["ContainerCgroup", "create_cgroup"]

_ROOTS = (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup"))


class ContainerCgroup:
    """A cgroup v2 directory holding one container's processes."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def procs(self) -> Path:
        return self.path / "cgroup.procs"

    def kill(self) -> None:
        """SIGKILL every process in the container, whatever session it made for itself."""
        with contextlib.suppress(OSError):
            (self.path / "cgroup.kill").write_text("1")

    def remove(self) -> None:
        """Kill what is left and remove the cgroup (it must be empty first)."""
        self.kill()
        for _ in range(200):
            try:
                self.path.rmdir()
                return
            except OSError:
                with contextlib.suppress(OSError):
                    if not (self.path / "cgroup.procs").read_text().strip():
                        continue
                os.sched_yield()


def create_cgroup() -> ContainerCgroup | None:
    """A fresh cgroup for one container, or None where cgroup v2 cannot be used."""
    for root in _ROOTS:
        if not (root / "cgroup.procs").exists():
            continue
        path = root / f"skyrunner-fake-{uuid.uuid4().hex[:12]}"
        try:
            path.mkdir()
        except OSError:
            continue
        if (path / "cgroup.kill").exists():
            return ContainerCgroup(path)
        with contextlib.suppress(OSError):
            path.rmdir()
    return None
