"""The ``.skyrunner`` directory of a checkout: where ``skyrunner exec`` keeps everything it makes.

Layout (``<checkout>/.skyrunner``, ignored by git through its own ``.gitignore``)::

    .gitignore                  "*": nothing here is ever committed or snapshotted
    lock                        held (flock) by the one ``skyrunner exec`` running in this checkout
    ids.json                    the last pipeline id and job id handed out (ids grow across runs)
    repo.git/                   the bare repository the jobs clone from (see ``_snapshot.py``)
    index                       the snapshot's private index
    builds/                     the shell executor's builds dir (kept: GIT_STRATEGY=fetch reuses it)
    cache/                      the local cache (kept between runs)
    artifacts/<pipeline>/<job id>/<file>   uploaded artifacts
    logs/<pipeline>/<job name>.log         each job's raw trace

This module owns the layout, the lock and the id counters. It never writes outside
``.skyrunner``, and nothing in the user's repository is touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from skyrunner.errors import ConfigError, SkyrunnerError

__all__ = ["STATE_DIR", "Workspace", "WorkspaceBusy", "open_workspace"]

STATE_DIR: Final = ".skyrunner"
_IDS_FILE: Final = "ids.json"


class WorkspaceBusy(SkyrunnerError):
    """Another ``skyrunner exec`` holds the checkout's ``.skyrunner`` lock."""


def log_file_name(job_name: str) -> str:
    """Return the log file name of a job: its name, with path separators made harmless."""
    safe = job_name.replace(os.sep, "_").replace("\0", "_")
    if safe in ("", ".", ".."):
        safe = f"_{safe}"
    return f"{safe}.log"


@dataclass(frozen=True, slots=True)
class Workspace:
    """The paths of one checkout's ``.skyrunner`` directory."""

    root: Path

    @property
    def repo(self) -> Path:
        return self.root / "repo.git"

    @property
    def index(self) -> Path:
        return self.root / "index"

    @property
    def builds(self) -> Path:
        return self.root / "builds"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def artifacts_dir(self, pipeline_id: int, job_id: int) -> Path:
        return self.root / "artifacts" / str(pipeline_id) / str(job_id)

    def logs_dir(self, pipeline_id: int) -> Path:
        return self.root / "logs" / str(pipeline_id)

    def log_file(self, pipeline_id: int, job_name: str) -> Path:
        return self.logs_dir(pipeline_id) / log_file_name(job_name)

    def next_pipeline_id(self) -> int:
        """Hand out the next pipeline id (persisted at once)."""
        ids = self._read_ids()
        ids["pipeline"] = ids.get("pipeline", 0) + 1
        self._write_ids(ids)
        return ids["pipeline"]

    def next_job_id(self) -> int:
        """Hand out the next job id (persisted at once: ids stay unique across runs)."""
        ids = self._read_ids()
        ids["job"] = ids.get("job", 0) + 1
        self._write_ids(ids)
        return ids["job"]

    def _read_ids(self) -> dict[str, int]:
        try:
            data = json.loads((self.root / _IDS_FILE).read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, int)}

    def _write_ids(self, ids: dict[str, int]) -> None:
        tmp = self.root / f"{_IDS_FILE}.tmp"
        tmp.write_text(json.dumps(ids, sort_keys=True) + "\n")
        tmp.replace(self.root / _IDS_FILE)


@contextlib.contextmanager
def open_workspace(checkout_root: Path) -> Iterator[Workspace]:
    """Create (if needed) and lock the ``.skyrunner`` directory of ``checkout_root``.

    Raises:
        WorkspaceBusy: another ``skyrunner exec`` runs in this checkout.
        ConfigError: the directory cannot be created.
    """
    root = checkout_root / STATE_DIR
    try:
        root.mkdir(exist_ok=True)
        ignore = root / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# skyrunner exec's state: never committed\n*\n")
        lock = open(root / "lock", "a+")  # noqa: SIM115  (held for the whole run)
    except OSError as exc:
        raise ConfigError(f"{root}: cannot create skyrunner's state directory: {exc.strerror}") from exc
    with lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WorkspaceBusy(f"{root}: another skyrunner exec is running in this checkout") from None
        try:
            yield Workspace(root)
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
