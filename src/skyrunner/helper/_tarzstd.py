"""tar archives compressed with zstd (``CACHE_COMPRESSION_FORMAT=tarzstd``), streamed.

Private to ``skyrunner.helper``. The tar layer is written here rather than with ``tarfile``:
caches are tens of thousands of small files, and ``tarfile`` spends more time per member in
Python than zstd spends compressing it. The output is plain POSIX tar (ustar headers, PAX
``x`` records only for names, link targets or sizes that do not fit), readable by GNU tar and
Go's archive/tar; reading also accepts GNU long-name records. The tree's fingerprint travels in
a PAX global header (``SKYRUNNER.fingerprint``). Small files are batched into 1 MiB writes; big
ones are streamed, so memory stays constant whatever the size. Compression is multi-threaded.

Only regular files, directories and symbolic links are accepted on extraction; anything else
(hard links, devices, FIFOs) is refused as unsafe.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import zstandard

from skyrunner.helper._entries import ArchiveError, Entry, EntryKind, ExtractTarget, UnsafeEntryError

__all__ = ["extract_tarzstd", "read_tarzstd_fingerprint", "write_tarzstd"]

_BLOCK = 512
_BATCH = 1 << 20
_FINGERPRINT_KEY = "SKYRUNNER.fingerprint"
_TYPES = {EntryKind.FILE: b"0", EntryKind.SYMLINK: b"2", EntryKind.DIR: b"5"}
_KINDS = {
    b"0": EntryKind.FILE,
    b"\0": EntryKind.FILE,
    b"7": EntryKind.FILE,
    b"2": EntryKind.SYMLINK,
    b"5": EntryKind.DIR,
}
_MAX_OCTAL_SIZE = 8**11 - 1


# --- headers (pure) ---------------------------------------------------------------------------


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def _checksum(block: bytes | bytearray) -> int:
    return sum(block[:148]) + 8 * 32 + sum(block[156:512])


def _ustar(name: bytes, kind: bytes, mode: int, size: int, mtime: int, link: bytes) -> bytes:
    header = bytearray(_BLOCK)
    header[0 : len(name)] = name
    header[100:108] = _octal(mode & 0o7777, 8)
    header[108:116] = _octal(0, 8)
    header[116:124] = _octal(0, 8)
    header[124:136] = _octal(size, 12)
    header[136:148] = _octal(max(0, min(mtime, _MAX_OCTAL_SIZE)), 12)
    header[156:157] = kind
    header[157 : 157 + len(link)] = link
    header[257:265] = b"ustar\x0000"
    header[148:156] = b"%06o\0 " % _checksum(header)
    return bytes(header)


def _pax_record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n".encode("utf-8", "surrogateescape")
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length += 1
    return str(length).encode() + body


def _padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % _BLOCK)


def _pax_header(kind: bytes, records: dict[str, str]) -> bytes:
    data = b"".join(_pax_record(k, v) for k, v in records.items())
    return _ustar(b"././@PaxHeader", kind, 0o644, len(data), 0, b"") + _padded(data)


def encode_header(entry: Entry) -> bytes:
    """Return the header block(s) of ``entry``: a PAX ``x`` record first when ustar cannot hold it."""
    name = (entry.name + "/" if entry.kind is EntryKind.DIR else entry.name).encode("utf-8", "surrogateescape")
    link = entry.target.encode("utf-8", "surrogateescape")
    records: dict[str, str] = {}
    if len(name) > 100:
        records["path"] = name.decode("utf-8", "surrogateescape")
        name = name[:100]
    if len(link) > 100:
        records["linkpath"] = entry.target
        link = link[:100]
    size = entry.size if entry.kind is EntryKind.FILE else 0
    if size > _MAX_OCTAL_SIZE:
        records["size"] = str(size)
    header = _ustar(name, _TYPES[entry.kind], entry.mode, min(size, _MAX_OCTAL_SIZE), entry.mtime, link)
    return (_pax_header(b"x", records) if records else b"") + header


@dataclass(frozen=True, slots=True)
class _Header:
    name: str
    kind: bytes
    mode: int
    size: int
    mtime: int
    link: str


def _field(block: bytes, start: int, end: int) -> bytes:
    raw = block[start:end]
    return raw.split(b"\0", 1)[0]


def _number(block: bytes, start: int, end: int) -> int:
    raw = block[start:end]
    if raw[:1] in (b"\x80", b"\xff"):  # GNU base-256 for large values
        value = int.from_bytes(raw[1:], "big")
        return -value if raw[:1] == b"\xff" else value
    text = raw.split(b"\0", 1)[0].strip()
    try:
        return int(text, 8) if text else 0
    except ValueError as exc:
        raise ArchiveError(f"corrupt tar header field {raw!r}") from exc


def decode_header(block: bytes) -> _Header | None:
    """Parse one 512-byte header; None for an end-of-archive (all zero) block."""
    if block.count(0) == _BLOCK:
        return None
    if _number(block, 148, 156) != _checksum(block):
        raise ArchiveError("tar header checksum mismatch")
    name = _field(block, 0, 100)
    if block[257:262] == b"ustar" and block[345:346] != b"\0":
        name = _field(block, 345, 500) + b"/" + name
    return _Header(
        name=name.decode("utf-8", "surrogateescape"),
        kind=block[156:157],
        mode=_number(block, 100, 108),
        size=_number(block, 124, 136),
        mtime=_number(block, 136, 148),
        link=_field(block, 157, 257).decode("utf-8", "surrogateescape"),
    )


def parse_pax(data: bytes) -> dict[str, str]:
    """Parse PAX records (``<len> <key>=<value>\\n``).

    Raises ValueError (the archive is corrupt) on a length that is not decimal digits, does not
    cover its own ``<len> `` prefix, runs past the header or does not end at a newline, as Go's
    archive/tar does: trusting it would loop forever on ``0`` or read outside the record.
    """
    records: dict[str, str] = {}
    offset = 0
    while offset < len(data):
        space = data.find(b" ", offset)
        digits = data[offset:space] if space > offset else b""
        end = offset + int(digits) if digits.isdigit() else -1
        if end <= space + 1 or end > len(data) or data[end - 1 : end] != b"\n":
            raise ValueError(f"malformed PAX record at offset {offset}")
        key, _, value = data[space + 1 : end - 1].partition(b"=")
        records[key.decode()] = value.decode("utf-8", "surrogateescape")
        offset = end
    return records


# --- writing ----------------------------------------------------------------------------------


class _TarWriter:
    """Appends members to ``out``, gathering small ones into 1 MiB writes."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._batch = bytearray()

    def _emit(self, data: bytes) -> None:
        self._batch += data
        if len(self._batch) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._batch:
            self._out.write(self._batch)
            self._batch = bytearray()

    def add(self, root: Path, entry: Entry) -> None:
        self._emit(encode_header(entry))
        if entry.kind is not EntryKind.FILE:
            return
        with open(root / entry.name, "rb") as source:
            if entry.size <= _BATCH:
                data = source.read(entry.size)
                self._emit(data)
                remaining = entry.size - len(data)
            else:
                self._flush()
                remaining = entry.size
                while remaining > 0 and (chunk := source.read(min(_BATCH, remaining))):
                    self._out.write(chunk)
                    remaining -= len(chunk)
            if remaining or source.read(1):
                raise ArchiveError(f"{entry.name} changed while it was being archived")
        self._emit(bytes(-entry.size % _BLOCK))

    def close(self) -> None:
        self._emit(bytes(2 * _BLOCK))
        self._flush()


def write_tarzstd(dest: BinaryIO, root: Path, entries: Sequence[Entry], level: int, fingerprint: str) -> None:
    """Write ``entries`` (read from ``root``) as tar + zstd at ``level`` to ``dest``."""
    compressor = zstandard.ZstdCompressor(level=level, threads=-1)
    with compressor.stream_writer(dest, closefd=False) as zstd_out:
        writer = _TarWriter(zstd_out)
        writer._emit(_pax_header(b"g", {_FINGERPRINT_KEY: fingerprint}))
        for entry in entries:
            writer.add(root, entry)
        writer.close()


# --- reading ----------------------------------------------------------------------------------


class _Blocks:
    """Exact-size reads over a stream, buffered 1 MiB at a time without quadratic copies."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._buf = b""
        self._pos = 0

    def read(self, size: int) -> bytes:
        end = self._pos + size
        if end <= len(self._buf):
            self._pos = end
            return self._buf[end - size : end]
        parts = [self._buf[self._pos :]]
        have = len(parts[0])
        self._buf, self._pos = b"", 0
        while have < size:
            chunk = self._source.read(max(_BATCH, size - have))
            if not chunk:
                break
            take = min(len(chunk), size - have)
            parts.append(chunk[:take])
            have += take
            if take < len(chunk):
                self._buf, self._pos = chunk, take
        return b"".join(parts)

    def read_exact(self, size: int, what: str) -> bytes:
        data = self.read(size)
        if len(data) != size:
            raise ArchiveError(f"tar archive is truncated in {what}")
        return data


class _MemberData:
    """The data of the current member: ``read`` never goes past its end."""

    def __init__(self, blocks: _Blocks, size: int, name: str) -> None:
        self._blocks, self.remaining, self._name = blocks, size, name

    def read(self, size: int = -1, /) -> bytes:
        size = self.remaining if size < 0 else min(size, self.remaining)
        data = self._blocks.read_exact(size, self._name) if size else b""
        self.remaining -= len(data)
        return data


def _apply(header: _Header, pax: dict[str, str], long_name: str, long_link: str) -> _Header:
    return _Header(
        name=pax.get("path", long_name or header.name),
        kind=header.kind,
        mode=header.mode,
        size=int(pax.get("size", header.size)),
        mtime=int(float(pax.get("mtime", header.mtime))),
        link=pax.get("linkpath", long_link or header.link),
    )


def _members(blocks: _Blocks) -> Iterator[tuple[_Header, _MemberData]]:
    """Yield each member with its data; data the caller leaves unread is skipped."""
    pax: dict[str, str] = {}
    long_name = long_link = ""
    # a missing end-of-archive block means truncation (zstd readers stop quietly mid-frame)
    while (header := decode_header(blocks.read_exact(_BLOCK, "a header"))) is not None:
        if header.kind in (b"x", b"g", b"L", b"K"):
            data = blocks.read_exact(header.size, "an extended header")
            blocks.read_exact(-header.size % _BLOCK, "padding")
            if header.kind == b"x":
                pax.update(parse_pax(data))
            elif header.kind == b"g":
                parse_pax(data)  # nothing global applies to extraction; parsed so a malformed one is still corrupt
            elif header.kind == b"L":
                long_name = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
            else:
                long_link = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
            continue
        member = _apply(header, pax, long_name, long_link)
        pax, long_name, long_link = {}, "", ""
        data_reader = _MemberData(blocks, member.size, member.name)
        yield member, data_reader
        blocks.read_exact(data_reader.remaining + (-member.size % _BLOCK), member.name)


def read_tarzstd_fingerprint(path: Path) -> str | None:
    """Return the fingerprint from the leading PAX global header, or None."""
    try:
        with open(path, "rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as zstd_in:
            blocks = _Blocks(zstd_in)
            header = decode_header(blocks.read_exact(_BLOCK, "the first header"))
            if header is None or header.kind != b"g":
                return None
            return parse_pax(blocks.read_exact(header.size, "the global header")).get(_FINGERPRINT_KEY)
    except (OSError, ArchiveError, ValueError, zstandard.ZstdError):
        return None


def _extract_member(member: _Header, data: _MemberData, target: ExtractTarget) -> None:
    kind = _KINDS.get(member.kind)
    if kind is EntryKind.DIR:
        target.make_dir(member.name, member.mode or 0o755)
    elif kind is EntryKind.SYMLINK:
        target.make_symlink(member.name, member.link)
    elif kind is EntryKind.FILE:
        target.write_file(member.name, data, member.mode or 0o644, member.mtime)
    else:
        raise UnsafeEntryError(f"archive entry {member.name!r} is not a file, directory or link")


def extract_tarzstd(path: Path, target: ExtractTarget) -> None:
    """Extract a tar.zst file into ``target``, member by member.

    Raises:
        UnsafeEntryError: an entry would land outside the target or is a device or hard link.
        ArchiveError: the file is not a readable tar.zst.
    """
    try:
        with open(path, "rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw, read_size=_BATCH) as zstd_in:
            for member, data in _members(_Blocks(zstd_in)):
                _extract_member(member, data, target)
    except (ValueError, zstandard.ZstdError) as exc:
        raise ArchiveError(f"{path.name}: corrupt tar.zst archive: {exc}") from exc
    except ArchiveError as exc:
        if isinstance(exc, UnsafeEntryError):
            raise
        raise ArchiveError(f"{path.name}: corrupt tar.zst archive: {exc}") from exc
