"""Zip archives as gitlab-runner writes them: deflate, unix modes, links, extended timestamps.

Private to ``skyrunner.helper``. Files are streamed in 1 MiB chunks in both directions (zipfile
needs a seekable file to read, so downloads land in a temporary file first). Each entry carries
the Info-ZIP extended timestamp (``UT``, whole seconds) so a restored tree keeps the mtimes the
fingerprint was made from; the archive comment carries the fingerprint itself.
"""

from __future__ import annotations

import shutil
import stat
import struct
import time
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from skyrunner.helper._entries import ArchiveError, Entry, EntryKind, ExtractTarget, safe_relative_name

__all__ = ["extract_zip", "read_zip_fingerprint", "write_zip"]

_COPY_CHUNK = 1 << 20
_UT_TAG = 0x5455
_FINGERPRINT_PREFIX = b"skyrunner-fingerprint:"
_INT32_MAX = 2**31 - 1
# What zipfile raises on damaged or unsupported input (encrypted members raise RuntimeError).
_CORRUPT = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    ValueError,
    RuntimeError,
    struct.error,
    OverflowError,
)


def _info(entry: Entry) -> zipfile.ZipInfo:
    mtime = max(0, min(entry.mtime, _INT32_MAX))
    year_ok = time.localtime(max(mtime, 315532800))[:6]  # DOS dates start in 1980
    name = entry.name + "/" if entry.kind is EntryKind.DIR else entry.name
    info = zipfile.ZipInfo(name, date_time=year_ok)
    info.create_system = 3  # unix: external_attr carries st_mode
    info.extra = struct.pack("<HHBl", _UT_TAG, 5, 1, mtime)
    if entry.kind is EntryKind.DIR:
        info.external_attr = ((stat.S_IFDIR | entry.mode) << 16) | 0x10
    elif entry.kind is EntryKind.SYMLINK:
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
    else:
        info.external_attr = (stat.S_IFREG | entry.mode) << 16
    return info


def write_zip(dest: BinaryIO, root: Path, entries: Sequence[Entry], level: int, fingerprint: str) -> None:
    """Write ``entries`` (read from ``root``) as a zip to ``dest`` at deflate ``level``."""
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        archive.comment = _FINGERPRINT_PREFIX + fingerprint.encode()
        for entry in entries:
            info = _info(entry)
            if entry.kind is EntryKind.DIR:
                archive.writestr(info, b"", compress_type=zipfile.ZIP_STORED)
            elif entry.kind is EntryKind.SYMLINK:
                archive.writestr(info, entry.target.encode("utf-8", "surrogateescape"))
            else:
                info.compress_type = zipfile.ZIP_DEFLATED
                # zipfile reads the level from this attribute when given a ZipInfo (3.11-3.13)
                setattr(info, "_compresslevel", level)  # noqa: B010
                info.file_size = entry.size
                with open(root / entry.name, "rb") as source, archive.open(info, "w") as out:
                    shutil.copyfileobj(source, out, _COPY_CHUNK)


def read_zip_fingerprint(path: Path) -> str | None:
    """Return the fingerprint stored in a zip's comment, or None."""
    try:
        with zipfile.ZipFile(path) as archive:
            comment = archive.comment
    except (OSError, *_CORRUPT):
        return None
    if comment.startswith(_FINGERPRINT_PREFIX):
        return comment[len(_FINGERPRINT_PREFIX) :].decode(errors="replace")
    return None


def _mtime(info: zipfile.ZipInfo) -> int:
    extra = info.extra
    offset = 0
    while offset + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, offset)
        body = extra[offset + 4 : offset + 4 + size]
        if tag == _UT_TAG and len(body) >= 5 and body[0] & 1:
            return int(struct.unpack_from("<l", body, 1)[0])
        offset += 4 + size
    return int(time.mktime((*info.date_time, 0, 0, -1)))


def _extract_one(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: ExtractTarget) -> None:
    mode = info.external_attr >> 16
    if info.is_dir() or stat.S_ISDIR(mode):
        target.make_dir(info.filename, stat.S_IMODE(mode) or 0o755)
    elif stat.S_ISLNK(mode):
        link = archive.read(info).decode("utf-8", "surrogateescape")
        target.make_symlink(info.filename, link)
    else:
        with archive.open(info) as source:
            target.write_file(info.filename, source, stat.S_IMODE(mode) or 0o644, _mtime(info))


def extract_zip(path: Path, target: ExtractTarget) -> None:
    """Extract a zip file into ``target``; every name is checked before anything is written.

    Raises:
        UnsafeEntryError: an entry would land outside the target.
        ArchiveError: the file is not a readable zip.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            for info in infos:
                safe_relative_name(info.filename)
            for info in infos:
                _extract_one(archive, info, target)
    except _CORRUPT as exc:
        raise ArchiveError(f"{path.name}: corrupt zip archive: {exc}") from exc
