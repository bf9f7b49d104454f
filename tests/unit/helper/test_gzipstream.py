"""The gzip artifact format: one member per file, Name = base name, Comment = relative path."""

from __future__ import annotations

import gzip
import io
import struct
from pathlib import Path

import pytest

from skyrunner.helper._entries import ExtractTarget
from skyrunner.helper.archive import ArchiveError, UnsafeEntryError, scan_entries
from skyrunner.helper.gzipstream import _Reader, extract_gzip, read_gzip_members, write_gzip


def _write(root: Path, files: dict[str, bytes]) -> bytes:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    out = io.BytesIO()
    assert write_gzip(out, root, scan_entries(root, sorted(files)), 6) == len(files)
    return out.getvalue()


def test_member_headers_and_standard_readers(tmp_path: Path) -> None:
    files = {"reports/a.xml": b"<a/>" * 1000, "reports/sub/b.xml": b"", "c.txt": b"c"}
    stream = _write(tmp_path, files)
    members = read_gzip_members(io.BytesIO(stream))
    assert [(m.name, m.comment) for m, _ in members] == [
        ("c.txt", "c.txt"),
        ("a.xml", "reports/a.xml"),
        ("b.xml", "reports/sub/b.xml"),
    ]
    assert [data for _, data in members] == [b"c", b"<a/>" * 1000, b""]
    assert stream[3] == 0x18  # FNAME | FCOMMENT
    assert gzip.decompress(stream) == b"c" + b"<a/>" * 1000  # concatenated members


def test_extract_writes_each_member_at_its_comment_path(tmp_path: Path) -> None:
    stream = _write(tmp_path / "src", {"x/y.xml": b"y" * 70_000, "z.xml": b"z"})
    extract_gzip(io.BytesIO(stream), ExtractTarget(tmp_path / "dst"))
    assert (tmp_path / "dst/x/y.xml").read_bytes() == b"y" * 70_000
    assert (tmp_path / "dst/z.xml").read_bytes() == b"z"


class _Trickle(io.RawIOBase):
    """A source that hands out at most three bytes per read, so headers span reads."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1, /) -> bytes:
        return self._data.read(min(size, 3) if size >= 0 else 3)


def test_headers_split_across_reads_parse_the_same(tmp_path: Path) -> None:
    stream = _write(tmp_path, {"reports/a.xml": b"<a/>" * 1000, "a-rather-long-file-name.txt": b"c"})
    expected = [(m.name, m.comment, data) for m, data in read_gzip_members(io.BytesIO(stream))]
    trickled = read_gzip_members(_Trickle(stream))  # type: ignore[arg-type]
    assert [(m.name, m.comment, data) for m, data in trickled] == expected


def test_a_zero_terminated_field_ends_at_the_nul_or_the_end() -> None:
    reader = _Reader(_Trickle(b"name\0rest\0\0tail"))  # type: ignore[arg-type]
    assert [reader.read_zero_terminated() for _ in range(4)] == [b"name", b"rest", b"", b"tail"]
    assert reader.read_zero_terminated() == b"" and reader.read(1) == b""


def _member(comment: bytes, data: bytes) -> bytes:
    compressed = gzip.compress(data)[10:]  # body and trailer of a header-less member
    return struct.pack("<BBBBIBB", 0x1F, 0x8B, 8, 0x18, 0, 0, 255) + b"n\0" + comment + b"\0" + compressed


@pytest.mark.parametrize(
    ("stream", "error"),
    [
        (_member(b"../evil", b"x"), UnsafeEntryError),
        (_member(b"ok", b"x")[:-3], ArchiveError),
        (_member(b"ok", b"x")[:-8] + b"\0\0\0\0\1\0\0\0", ArchiveError),
        (b"\x1f\x8b\x07", ArchiveError),
    ],
    ids=["escape", "truncated", "crc", "bad-header"],
)
def test_bad_streams(tmp_path: Path, stream: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        extract_gzip(io.BytesIO(stream), ExtractTarget(tmp_path / "dst"))
    assert not (tmp_path / "evil").exists()
