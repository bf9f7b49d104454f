"""Creating and extracting the helper's archives: zip, tar.zst and gzip members.

Owns the choice of format and compression level and the file-level protocol around them:
:func:`create_archive` writes into a temporary file next to the destination and renames it into
place (``os.replace``), so a reader, or a second job saving the same key at the same moment,
only ever sees a whole archive. :func:`extract_archive` tells the format from the first bytes
(``PK`` zip, ``28 b5 2f fd`` zstd, ``1f 8b`` gzip), never from the file name. The format
details live in ``_zipformat``, ``_tarzstd`` and :mod:`skyrunner.helper.gzipstream`; safe
writing in ``_entries``.
"""

from __future__ import annotations

import contextlib
import enum
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from skyrunner.helper._entries import (
    ArchiveError,
    Entry,
    EntryKind,
    ExtractTarget,
    UnsafeEntryError,
    fingerprint,
    scan_entries,
)
from skyrunner.helper._tarzstd import extract_tarzstd, read_tarzstd_fingerprint, write_tarzstd
from skyrunner.helper._zipformat import extract_zip, read_zip_fingerprint, write_zip
from skyrunner.helper.gzipstream import extract_gzip, write_gzip
from skyrunner.helper.plan import ArchiveFormat, CompressionLevel

__all__ = [
    "ArchiveError",
    "ArchiveKind",
    "Entry",
    "EntryKind",
    "UnsafeEntryError",
    "archive_fingerprint",
    "archive_kind",
    "create_archive",
    "detect_kind",
    "extract_archive",
    "fingerprint",
    "scan_entries",
    "zlib_level",
    "zstd_level",
]


class ArchiveKind(enum.StrEnum):
    ZIP = "zip"
    TARZSTD = "tarzstd"
    GZIP = "gzip"


_ZLIB_LEVELS = {
    CompressionLevel.FASTEST: 1,
    CompressionLevel.FAST: 3,
    CompressionLevel.DEFAULT: 6,
    CompressionLevel.SLOW: 8,
    CompressionLevel.SLOWEST: 9,
}
_ZSTD_LEVELS = {
    CompressionLevel.FASTEST: 1,
    CompressionLevel.FAST: 2,
    CompressionLevel.DEFAULT: 3,
    CompressionLevel.SLOW: 9,
    CompressionLevel.SLOWEST: 19,
}


def zlib_level(level: CompressionLevel) -> int:
    """Map ``*_COMPRESSION_LEVEL`` to a deflate level (1, 3, 6, 8, 9)."""
    return _ZLIB_LEVELS[level]


def zstd_level(level: CompressionLevel) -> int:
    """Map ``*_COMPRESSION_LEVEL`` to a zstd level (1, 2, 3, 9, 19)."""
    return _ZSTD_LEVELS[level]


def detect_kind(head: bytes) -> ArchiveKind | None:
    """Tell the archive format from its first four bytes."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return ArchiveKind.ZIP
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return ArchiveKind.TARZSTD
    if head.startswith(b"\x1f\x8b"):
        return ArchiveKind.GZIP
    return None


def archive_kind(path: Path) -> ArchiveKind | None:
    """Tell the format of the archive at ``path`` from its first bytes, never from its name."""
    with open(path, "rb") as source:
        return detect_kind(source.read(4))


def create_archive(
    dest: Path,
    root: Path,
    entries: Sequence[Entry],
    kind: ArchiveKind | ArchiveFormat,
    level: CompressionLevel,
    digest: str | None = None,
) -> str | None:
    """Write ``entries`` of ``root`` to ``dest`` atomically; return the fingerprint stored in it.

    ``digest`` is ``fingerprint(entries)`` if the caller has it already (hashing sorts every
    entry); gzip stores no fingerprint, so none is computed for it and None is returned.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    stored = None
    if kind == ArchiveKind.ZIP or kind == ArchiveKind.TARZSTD:
        stored = digest if digest is not None else fingerprint(entries)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            if stored is None:
                write_gzip(out, root, entries, zlib_level(level))
            elif kind == ArchiveKind.ZIP:
                write_zip(out, root, entries, zlib_level(level), stored)
            else:
                write_tarzstd(out, root, entries, zstd_level(level), stored)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return stored


def archive_fingerprint(path: Path) -> str | None:
    """Return the fingerprint stored in an archive we wrote, or None (missing, foreign, corrupt)."""
    try:
        kind = archive_kind(path)
    except OSError:
        return None
    if kind is ArchiveKind.ZIP:
        return read_zip_fingerprint(path)
    if kind is ArchiveKind.TARZSTD:
        return read_tarzstd_fingerprint(path)
    return None


def extract_archive(path: Path, root: Path) -> int:
    """Extract the archive at ``path`` into ``root``; return how many entries were written.

    Raises:
        UnsafeEntryError: an entry would be written outside ``root`` (nothing after it is).
        ArchiveError: unknown format, corrupt or truncated archive.
    """
    target = ExtractTarget(root)
    kind = archive_kind(path)
    try:
        if kind is ArchiveKind.ZIP:
            extract_zip(path, target)
        elif kind is ArchiveKind.TARZSTD:
            extract_tarzstd(path, target)
        elif kind is ArchiveKind.GZIP:
            with open(path, "rb") as source:
                extract_gzip(source, target)
        else:
            raise ArchiveError(f"{path.name}: not a zip, tar.zst or gzip archive")
    except OSError as exc:
        raise ArchiveError(f"{path.name}: extraction failed: {exc.strerror or exc}") from exc
    return target.count
