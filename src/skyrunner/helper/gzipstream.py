"""The ``gzip`` artifact format: one gzip member per file, concatenated (protocol §8.1).

Each member header carries ``FNAME`` = the file's base name and ``FCOMMENT`` = its path relative
to the project directory, which is what GitLab reads for reports such as junit. Writing and
reading both stream (raw deflate through ``zlib`` objects, 1 MiB at a time). Reading restores
each member at its comment path (the name when there is no comment) through the same
:class:`~skyrunner.helper._entries.ExtractTarget` as the other formats.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from skyrunner.helper._entries import ArchiveError, Entry, EntryKind, ExtractTarget

__all__ = ["GzipMember", "extract_gzip", "read_gzip_members", "write_gzip"]

_CHUNK = 1 << 20
_MAGIC = b"\x1f\x8b"
_FTEXT, _FHCRC, _FEXTRA, _FNAME, _FCOMMENT = 1, 2, 4, 8, 16
_OS_UNKNOWN = 255


def _latin1(text: str) -> bytes:
    # RFC 1952 says ISO 8859-1; names outside it are kept as UTF-8 rather than lost
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")


def _header(name: str, comment: str, mtime: int) -> bytes:
    fixed = struct.pack("<BBBBIBB", 0x1F, 0x8B, 8, _FNAME | _FCOMMENT, mtime & 0xFFFFFFFF, 0, _OS_UNKNOWN)
    return fixed + _latin1(name) + b"\0" + _latin1(comment) + b"\0"


def write_gzip(dest: BinaryIO, root: Path, entries: Sequence[Entry], level: int) -> int:
    """Write one gzip member per regular file in ``entries``; return how many were written."""
    written = 0
    for entry in entries:
        if entry.kind is not EntryKind.FILE:
            continue
        dest.write(_header(os.path.basename(entry.name), entry.name, entry.mtime))
        compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
        crc, size = 0, 0
        with open(root / entry.name, "rb") as source:
            while chunk := source.read(_CHUNK):
                crc = zlib.crc32(chunk, crc)
                size += len(chunk)
                dest.write(compressor.compress(chunk))
        dest.write(compressor.flush())
        dest.write(struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF))
        written += 1
    return written


class _Reader:
    """A byte source with push-back, for parsing headers between deflate streams."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._pending = b""

    def read(self, size: int) -> bytes:
        while len(self._pending) < size:
            chunk = self._source.read(max(_CHUNK, size))
            if not chunk:
                break
            self._pending += chunk
        data, self._pending = self._pending[:size], self._pending[size:]
        return data

    def read_chunk(self) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        return self._source.read(_CHUNK)

    def push_back(self, data: bytes) -> None:
        self._pending = data + self._pending

    def read_zero_terminated(self) -> bytes:
        """Consume up to and including the next NUL (or to the end); return what came before it.

        Searches the pending bytes instead of reading one at a time: each one-byte read would
        copy the rest of a pending chunk of up to 1 MiB.
        """
        start = 0
        while (end := self._pending.find(b"\0", start)) < 0:
            start = len(self._pending)
            chunk = self._source.read(_CHUNK)
            if not chunk:
                data, self._pending = self._pending, b""
                return data
            self._pending += chunk
        data, self._pending = self._pending[:end], self._pending[end + 1 :]
        return data


class GzipMember:
    """Header fields of one member."""

    def __init__(self, name: str, comment: str, mtime: int) -> None:
        self.name = name
        self.comment = comment
        self.mtime = mtime


def _read_header(reader: _Reader) -> GzipMember | None:
    fixed = reader.read(10)
    if not fixed:
        return None
    if len(fixed) < 10 or fixed[:2] != _MAGIC or fixed[2] != 8:
        raise ArchiveError("not a gzip stream")
    flags, mtime = fixed[3], struct.unpack_from("<I", fixed, 4)[0]
    if flags & _FEXTRA:
        (extra_len,) = struct.unpack("<H", reader.read(2))
        reader.read(extra_len)
    name = reader.read_zero_terminated().decode("latin-1") if flags & _FNAME else ""
    comment = reader.read_zero_terminated().decode("latin-1") if flags & _FCOMMENT else ""
    if flags & _FHCRC:
        reader.read(2)
    return GzipMember(name, comment, mtime)


class _MemberBody(io.RawIOBase):
    """The decompressed body of the current member, as a readable stream."""

    def __init__(self, reader: _Reader) -> None:
        self._reader = reader
        self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
        self.crc = 0
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._inflate.eof:
            compressed = self._inflate.unconsumed_tail or self._reader.read_chunk()
            if not compressed:
                raise ArchiveError("gzip stream is truncated")
            data = self._inflate.decompress(compressed, len(buffer))
            if self._inflate.eof:
                self._reader.push_back(self._inflate.unused_data)
            if data:
                buffer[: len(data)] = data
                self.crc = zlib.crc32(data, self.crc)
                self.size += len(data)
                return len(data)
        return 0


def _check_trailer(reader: _Reader, body: _MemberBody) -> None:
    trailer = reader.read(8)
    if len(trailer) < 8:
        raise ArchiveError("gzip stream is truncated")
    crc, size = struct.unpack("<II", trailer)
    if crc != body.crc & 0xFFFFFFFF or size != body.size & 0xFFFFFFFF:
        raise ArchiveError("gzip member failed its CRC check")


def extract_gzip(source: BinaryIO, target: ExtractTarget) -> list[GzipMember]:
    """Extract every member of a gzip stream into ``target``; return their headers.

    Raises:
        UnsafeEntryError: a member's path would land outside the target.
        ArchiveError: the stream is not gzip, is truncated, or fails a CRC check.
    """
    reader = _Reader(source)
    members: list[GzipMember] = []
    try:
        while (member := _read_header(reader)) is not None:
            body = _MemberBody(reader)
            path = member.comment or member.name or "artifacts"
            with io.BufferedReader(body, _CHUNK) as stream:
                target.write_file(path, stream, 0o644, member.mtime or None)
            _check_trailer(reader, body)
            members.append(member)
    except (zlib.error, struct.error, ValueError) as exc:
        raise ArchiveError(f"corrupt gzip stream: {exc}") from exc
    return members


def read_gzip_members(source: BinaryIO) -> list[tuple[GzipMember, bytes]]:
    """Read every member into memory (for tests and small reports)."""
    reader = _Reader(source)
    out: list[tuple[GzipMember, bytes]] = []
    while (member := _read_header(reader)) is not None:
        body = _MemberBody(reader)
        data = io.BufferedReader(body).read()
        _check_trailer(reader, body)
        out.append((member, data))
    return out
