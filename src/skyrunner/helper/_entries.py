"""Archive entries, their fingerprint, and the one safe way to write them into a directory.

Shared by every archive format of the helper (zip, tar.zst, gzip members); private to
``skyrunner.helper``. :func:`scan_entries` turns relative paths into :class:`Entry` values
(lstat, links never followed); :func:`fingerprint` hashes them (pure) so that an unchanged tree
is recognised without re-reading it. :class:`ExtractTarget` is the only writer of extracted
files: it refuses names that are absolute or contain ``..``, parents that resolve outside the
root through an existing link, and links whose target leaves the root, so an archive can never
write outside the project directory.
"""

from __future__ import annotations

import enum
import hashlib
import os
import shutil
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from skyrunner.errors import HelperError

__all__ = [
    "ArchiveError",
    "ByteSource",
    "Entry",
    "EntryKind",
    "ExtractTarget",
    "UnsafeEntryError",
    "fingerprint",
    "safe_relative_name",
    "scan_entries",
    "within",
]

_COPY_CHUNK = 1 << 20


class ArchiveError(HelperError):
    """An archive is corrupt, truncated or of an unknown format."""


class UnsafeEntryError(ArchiveError):
    """An archive entry would be written outside the project directory."""


class EntryKind(enum.StrEnum):
    FILE = "f"
    DIR = "d"
    SYMLINK = "l"


@dataclass(frozen=True, slots=True)
class Entry:
    """One path to archive, relative to the root, ``/``-separated; ``mtime`` in whole seconds."""

    name: str
    kind: EntryKind
    mode: int = 0o644
    size: int = 0
    mtime: int = 0
    target: str = ""


def scan_entries(root: Path, rel_paths: Iterable[str]) -> list[Entry]:
    """Stat each path under ``root`` (without following links); skip vanished and special files."""
    entries: list[Entry] = []
    for rel in rel_paths:
        try:
            st = os.lstat(root / rel)
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(root / rel)
                entries.append(Entry(rel, EntryKind.SYMLINK, 0o777, 0, int(st.st_mtime), target))
            elif stat.S_ISDIR(st.st_mode):
                entries.append(Entry(rel, EntryKind.DIR, stat.S_IMODE(st.st_mode), 0, int(st.st_mtime)))
            elif stat.S_ISREG(st.st_mode):
                entries.append(Entry(rel, EntryKind.FILE, stat.S_IMODE(st.st_mode), st.st_size, int(st.st_mtime)))
        except FileNotFoundError:
            continue
    return entries


def fingerprint(entries: Sequence[Entry]) -> str:
    """Hash what an archive of ``entries`` would hold: names, kinds, modes, sizes, mtimes, targets.

    Directory times are left out (adding a file changes them, and the file is counted anyway).
    """
    digest = hashlib.sha256()
    for e in sorted(entries, key=lambda entry: entry.name):
        if e.kind is EntryKind.FILE:
            line = f"f\0{e.name}\0{e.mode:o}\0{e.size}\0{e.mtime}\n"
        elif e.kind is EntryKind.SYMLINK:
            line = f"l\0{e.name}\0{e.target}\n"
        else:
            line = f"d\0{e.name}\n"
        digest.update(line.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def within(path: str, root: str) -> bool:
    """True when ``path`` is ``root`` or below it; both normalised the same way (real or lexical)."""
    return path == root or path.startswith(root + os.sep)


def safe_relative_name(name: str) -> str | None:
    """Return an entry name as a clean relative path, None for the root itself.

    Raises:
        UnsafeEntryError: the name is absolute or contains a ``..`` segment.
    """
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":" and name[0].isalpha()):
        raise UnsafeEntryError(f"archive entry {name!r} is an absolute path")
    segments = [s for s in name.split("/") if s not in ("", ".")]
    if ".." in segments:
        raise UnsafeEntryError(f"archive entry {name!r} escapes the project directory")
    return "/".join(segments) or None


class ByteSource(Protocol):
    """Anything with ``read(size)``: a file, a zip member, a tar member's data."""

    def read(self, size: int = -1, /) -> bytes: ...


class ExtractTarget:
    """Writes extracted entries under ``root`` and nowhere else.

    Directories already checked (resolved inside the root, created) are remembered, so a tree
    of many small files costs one ``open`` per file; creating a link or removing a directory
    forgets them all, since either can change where a path resolves.
    """

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self._real_root = os.path.realpath(root)
        self._checked: set[str] = {""}
        self.count = 0

    def _destination(self, name: str) -> tuple[str, Path] | None:
        rel = safe_relative_name(name)
        if rel is None:
            return None
        parent = rel.rpartition("/")[0]
        if parent not in self._checked:
            if not within(os.path.realpath(self.root / parent), self._real_root):
                raise UnsafeEntryError(f"archive entry {name!r} goes through a link leaving the project directory")
            (self.root / parent).mkdir(parents=True, exist_ok=True)
            self._checked.add(parent)
        return rel, self.root / rel

    def _clear(self, dest: Path, *, keep_dir: bool) -> None:
        try:
            st = os.lstat(dest)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if not keep_dir:
                shutil.rmtree(dest)
                self._checked = {""}
        else:
            dest.unlink()

    def make_dir(self, name: str, mode: int = 0o755) -> None:
        """Create a directory entry (existing directories are kept)."""
        found = self._destination(name)
        if found is None:
            return
        rel, dest = found
        self._clear(dest, keep_dir=True)
        dest.mkdir(mode=(mode & 0o777) | 0o700, exist_ok=True)
        self._checked.add(rel)  # a real directory inside a checked one
        self.count += 1

    def make_symlink(self, name: str, target: str) -> None:
        """Create a link entry whose target stays inside the root.

        Raises:
            UnsafeEntryError: the target is absolute outside the root, or climbs out of it.
        """
        found = self._destination(name)
        if found is None:
            raise UnsafeEntryError(f"archive entry {name!r} replaces the project directory with a link")
        rel, dest = found
        if os.path.isabs(target):
            inside = within(os.path.normpath(target), self._real_root) or self._inside_lexically(target)
        else:
            resolved = os.path.normpath(os.path.join(os.path.dirname(rel), target))
            inside = resolved != ".." and not resolved.startswith("../") and not os.path.isabs(resolved)
        if not inside:
            raise UnsafeEntryError(f"archive entry {name!r} links outside the project directory")
        self._clear(dest, keep_dir=False)
        os.symlink(target, dest)
        self._checked = {""}
        self.count += 1

    def _inside_lexically(self, target: str) -> bool:
        return within(os.path.normpath(target), os.path.normpath(str(self.root.absolute())))

    def write_file(self, name: str, source: ByteSource, mode: int = 0o644, mtime: int | None = None) -> None:
        """Copy ``source`` into a regular file entry (replacing a file, link or directory there).

        The file is created with ``O_EXCL``: an existing path is removed first, never written
        through (it could be a link, or a hard link to a file outside the project).
        """
        found = self._destination(name)
        if found is None:
            raise UnsafeEntryError(f"archive entry {name!r} replaces the project directory with a file")
        _, dest = found
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        try:
            fd = os.open(dest, flags, 0o600)
        except FileExistsError:
            self._clear(dest, keep_dir=False)
            fd = os.open(dest, flags, 0o600)
        with os.fdopen(fd, "wb", buffering=0) as out:
            while chunk := source.read(_COPY_CHUNK):
                out.write(chunk)
            os.fchmod(fd, (mode & 0o777) or 0o644)
            if mtime is not None:
                os.utime(fd, (mtime, mtime))
        self.count += 1
