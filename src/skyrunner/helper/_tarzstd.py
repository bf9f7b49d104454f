"""tar archives compressed with zstd (``CACHE_COMPRESSION_FORMAT=tarzstd``), streamed.

Private to ``skyrunner.helper``. Writing streams files through ``tarfile`` (PAX format, so long
and non-ASCII names survive) into a multi-threaded zstd compressor; reading streams the other
way with ``tarfile``'s ``r|`` mode, so memory stays constant whatever the size. The fingerprint
travels in the PAX global header. Only files, directories and symbolic links are accepted.
"""

from __future__ import annotations

import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import zstandard

from skyrunner.helper._entries import ArchiveError, Entry, EntryKind, ExtractTarget, UnsafeEntryError

__all__ = ["extract_tarzstd", "read_tarzstd_fingerprint", "write_tarzstd"]

_BUFFER = 1 << 20
_FINGERPRINT_KEY = "SKYRUNNER.fingerprint"


def _tarinfo(entry: Entry) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.name)
    info.mtime = entry.mtime
    info.mode = entry.mode
    # no uid/gid/owner lookups: the tree is restored by whoever extracts it
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if entry.kind is EntryKind.DIR:
        info.type = tarfile.DIRTYPE
    elif entry.kind is EntryKind.SYMLINK:
        info.type = tarfile.SYMTYPE
        info.linkname = entry.target
    else:
        info.type = tarfile.REGTYPE
        info.size = entry.size
    return info


def write_tarzstd(dest: BinaryIO, root: Path, entries: Sequence[Entry], level: int, fingerprint: str) -> None:
    """Write ``entries`` (read from ``root``) as tar + zstd at ``level`` to ``dest``."""
    compressor = zstandard.ZstdCompressor(level=level, threads=-1)
    with (
        compressor.stream_writer(dest, closefd=False) as zstd_out,
        tarfile.open(
            fileobj=zstd_out,
            mode="w|",
            format=tarfile.PAX_FORMAT,
            pax_headers={_FINGERPRINT_KEY: fingerprint},
            bufsize=_BUFFER,
        ) as archive,
    ):
        for entry in entries:
            info = _tarinfo(entry)
            if entry.kind is EntryKind.FILE:
                with open(root / entry.name, "rb") as source:
                    archive.addfile(info, source)
            else:
                archive.addfile(info)


def read_tarzstd_fingerprint(path: Path) -> str | None:
    """Return the fingerprint from the PAX global header, or None."""
    try:
        with (
            open(path, "rb") as raw,
            zstandard.ZstdDecompressor().stream_reader(raw) as zstd_in,
            tarfile.open(fileobj=zstd_in, mode="r|") as archive,
        ):
            value = archive.pax_headers.get(_FINGERPRINT_KEY)
    except (OSError, EOFError, tarfile.TarError, zstandard.ZstdError):
        return None
    return value


def _extract_member(archive: tarfile.TarFile, member: tarfile.TarInfo, target: ExtractTarget) -> None:
    if member.isdir():
        target.make_dir(member.name, member.mode or 0o755)
    elif member.issym():
        target.make_symlink(member.name, member.linkname)
    elif member.isreg():
        source = archive.extractfile(member)
        if source is None:  # pragma: no cover - isreg() members always have data
            raise ArchiveError(f"archive entry {member.name!r} has no data")
        with source:
            target.write_file(member.name, source, member.mode or 0o644, int(member.mtime))
    else:
        raise UnsafeEntryError(f"archive entry {member.name!r} is not a file, directory or link")


def extract_tarzstd(path: Path, target: ExtractTarget) -> None:
    """Extract a tar.zst file into ``target``, member by member.

    Raises:
        UnsafeEntryError: an entry would land outside the target or is a device or hard link.
        ArchiveError: the file is not a readable tar.zst.
    """
    try:
        with (
            open(path, "rb") as raw,
            zstandard.ZstdDecompressor().stream_reader(raw, read_size=_BUFFER) as zstd_in,
            tarfile.open(fileobj=zstd_in, mode="r|", bufsize=_BUFFER) as archive,
        ):
            for member in archive:
                _extract_member(archive, member, target)
    except (EOFError, tarfile.TarError, zstandard.ZstdError) as exc:
        raise ArchiveError(f"{path.name}: corrupt tar.zst archive: {exc}") from exc
