"""Archives: round trips per format, fingerprints, escape rejection, format detection."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

import pytest
import zstandard

from skyrunner.helper.archive import (
    ArchiveError,
    ArchiveKind,
    UnsafeEntryError,
    archive_fingerprint,
    create_archive,
    detect_kind,
    extract_archive,
    fingerprint,
    scan_entries,
    zlib_level,
    zstd_level,
)
from skyrunner.helper.plan import CompressionLevel


def _make_tree(root: Path) -> list[str]:
    (root / "src/pkg").mkdir(parents=True)
    (root / "src/pkg/mod.py").write_text("print('hi')\n")
    (root / "src/data.bin").write_bytes(os.urandom(100_000))
    (root / "src/run.sh").write_text("#!/bin/sh\n")
    (root / "src/run.sh").chmod(0o755)
    (root / "src/ünïcode name.txt").write_text("ü\n")
    (root / "src/link").symlink_to("pkg/mod.py")
    (root / "src/empty").mkdir()
    return [
        "src",
        "src/data.bin",
        "src/empty",
        "src/link",
        "src/pkg",
        "src/pkg/mod.py",
        "src/run.sh",
        "src/ünïcode name.txt",
    ]


def _snapshot(root: Path) -> dict[str, tuple[str, bytes | str, int]]:
    out: dict[str, tuple[str, bytes | str, int]] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = ("l", os.readlink(path), 0)
        elif path.is_dir():
            out[rel] = ("d", "", 0)
        else:
            out[rel] = ("f", path.read_bytes(), path.stat().st_mode & 0o777)
    return out


@pytest.mark.parametrize("kind", [ArchiveKind.ZIP, ArchiveKind.TARZSTD], ids=str)
@pytest.mark.parametrize("level", list(CompressionLevel), ids=str)
def test_round_trip_keeps_content_modes_links_and_fingerprint(
    tmp_path: Path, kind: ArchiveKind, level: CompressionLevel
) -> None:
    src, dst = tmp_path / "a", tmp_path / "b"
    names = _make_tree(src)
    entries = scan_entries(src, names)
    archive = tmp_path / "out" / "cache.bin"
    digest = create_archive(archive, src, entries, kind, level)
    assert detect_kind(archive.read_bytes()[:4]) is kind
    assert archive_fingerprint(archive) == digest
    assert extract_archive(archive, dst) == len(names)
    assert _snapshot(dst) == _snapshot(src)
    assert fingerprint(scan_entries(dst, names)) == digest  # mtimes restored to the second
    assert [p.name for p in archive.parent.iterdir()] == ["cache.bin"]


@pytest.mark.parametrize("kind", [ArchiveKind.ZIP, ArchiveKind.TARZSTD], ids=str)
def test_a_precomputed_digest_is_stored_as_given_and_gzip_stores_none(tmp_path: Path, kind: ArchiveKind) -> None:
    src = tmp_path / "a"
    entries = scan_entries(src, _make_tree(src))
    given = fingerprint(entries)
    assert create_archive(tmp_path / "c", src, entries, kind, CompressionLevel.FASTEST, given) == given
    assert archive_fingerprint(tmp_path / "c") == given
    assert create_archive(tmp_path / "g", src, entries, ArchiveKind.GZIP, CompressionLevel.FASTEST, given) is None


def test_fingerprint_changes_with_content_size_mode_and_names(tmp_path: Path) -> None:
    names = _make_tree(tmp_path)
    base = fingerprint(scan_entries(tmp_path, names))
    (tmp_path / "src/pkg/mod.py").write_text("print('changed')\n")
    changed = fingerprint(scan_entries(tmp_path, names))
    assert changed != base
    assert fingerprint(scan_entries(tmp_path, names[:-1])) != changed


def test_levels_map_to_real_codec_levels() -> None:
    assert [zlib_level(level) for level in CompressionLevel] == [1, 3, 6, 8, 9]
    assert [zstd_level(level) for level in CompressionLevel] == [1, 2, 3, 9, 19]


def _zip(entries: list[tuple[str, bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = mode << 16
            zf.writestr(info, data)
    return buffer.getvalue()


def _tarzstd(
    members: list[tarfile.TarInfo], data: Mapping[str, bytes] | None = None, fmt: int = tarfile.DEFAULT_FORMAT
) -> bytes:
    """A tar.zst of ``members``; a member's content is ``data[name]``, else ``size`` x's."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=fmt) as tf:
        for member in members:
            content = (data or {}).get(member.name, b"x" * member.size)
            tf.addfile(member, io.BytesIO(content) if member.size else None)
    return zstandard.ZstdCompressor().compress(raw.getvalue())


def _assert_corrupt_and_nothing_extracted(tmp_path: Path, archive_bytes: bytes) -> None:
    archive = tmp_path / "bad.tar.zst"
    archive.write_bytes(archive_bytes)
    with pytest.raises(ArchiveError, match="corrupt"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "f").exists()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, size
    return info


EVIL = {
    "zip-dotdot": _zip([("ok.txt", b"ok", 0o100644), ("a/../../evil", b"x", 0o100644)]),
    "zip-absolute": _zip([("/tmp/evil", b"x", 0o100644)]),
    "zip-symlink-out": _zip([("link", b"../../outside", 0o120777)]),
    "zip-symlink-absolute": _zip([("link", b"/etc", 0o120777)]),
    "tar-through-link": _tarzstd([_member("d", tarfile.SYMTYPE, "/"), _member("d/evil", size=1)]),
    "tar-hardlink": _tarzstd([_member("h", tarfile.LNKTYPE, "/etc/passwd")]),
    "tar-device": _tarzstd([_member("dev", tarfile.CHRTYPE)]),
    "tar-dotdot": _tarzstd([_member("../evil", size=1)]),
}


@pytest.mark.parametrize("name", list(EVIL), ids=list(EVIL))
def test_escaping_entries_are_refused(tmp_path: Path, name: str) -> None:
    root = tmp_path / "builds" / "project"
    archive = tmp_path / "evil"
    archive.write_bytes(EVIL[name])
    with pytest.raises(UnsafeEntryError):
        extract_archive(archive, root)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["builds", "evil"]
    assert not (root / "ok.txt").exists()  # zip names are all checked before writing
    assert not (tmp_path / "builds" / "evil").exists()


def test_existing_link_in_project_does_not_redirect_writes(tmp_path: Path) -> None:
    root, outside = tmp_path / "project", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "vendor").symlink_to(outside)
    archive = tmp_path / "a.zip"
    archive.write_bytes(_zip([("vendor/x", b"x", 0o100644)]))
    with pytest.raises(UnsafeEntryError, match="link leaving"):
        extract_archive(archive, root)
    assert list(outside.iterdir()) == []


def test_links_inside_the_root_are_fine_and_replace_files(tmp_path: Path) -> None:
    root = tmp_path / "p"
    (root / "a").mkdir(parents=True)
    (root / "a/l").write_text("old file")
    archive = tmp_path / "a.zip"
    archive.write_bytes(_zip([("a/t", b"t", 0o100644), ("a/l", b"t", 0o120777), ("a/m", b"../a/t", 0o120777)]))
    extract_archive(archive, root)
    assert os.readlink(root / "a/l") == "t" and (root / "a/m").read_text() == "t"


@pytest.mark.parametrize(
    "data",
    [b"", b"hello world", b"PK\x03\x04garbage", b"\x28\xb5\x2f\xfdgarbage", b"\x1f\x8b\x08\x00garbage"],
    ids=["empty", "text", "zip", "zstd", "gzip"],
)
def test_corrupt_archives_raise_archive_error(tmp_path: Path, data: bytes) -> None:
    archive = tmp_path / "bad"
    archive.write_bytes(data)
    with pytest.raises(ArchiveError):
        extract_archive(archive, tmp_path / "out")
    assert archive_fingerprint(archive) is None


def test_truncated_tarzstd_is_corrupt(tmp_path: Path) -> None:
    src = tmp_path / "src"
    names = _make_tree(src)
    archive = tmp_path / "c.tar.zst"
    create_archive(archive, src, scan_entries(src, names), ArchiveKind.TARZSTD, CompressionLevel.FAST)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(ArchiveError):
        extract_archive(archive, tmp_path / "out")


def test_a_malformed_global_header_is_corrupt(tmp_path: Path) -> None:
    header = _member("pax_global_header", tarfile.XGLTYPE, size=8)
    archive = _tarzstd([header, _member("f", size=1)], {header.name: b"abc x=y\n"}, tarfile.USTAR_FORMAT)
    _assert_corrupt_and_nothing_extracted(tmp_path, archive)


@pytest.mark.parametrize(
    "record",
    [b"0 x=y\n", b"-6 x=y\n", b"3 x=y\n", b"99 x=y\n", b"6 x=y\n0 x=y\n", b"6 x=yz"],
    ids=["zero", "negative", "shorter-than-its-prefix", "past-the-end", "zero-after-a-good-one", "no-newline"],
)
@pytest.mark.parametrize("kind", [tarfile.XHDTYPE, tarfile.XGLTYPE], ids=["local", "global"])
def test_a_pax_record_with_an_impossible_length_is_corrupt(tmp_path: Path, record: bytes, kind: bytes) -> None:
    """A record length must cover its own "<len> " prefix and stay inside the header (a 0 once looped forever)."""
    header = _member("pax_header", kind, size=len(record))
    archive = _tarzstd([header, _member("f", size=1)], {header.name: record}, tarfile.USTAR_FORMAT)
    _assert_corrupt_and_nothing_extracted(tmp_path, archive)


@pytest.mark.parametrize(
    "fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT], ids=["pax", "gnu", "ustar"]
)
def test_reads_tar_written_by_others(tmp_path: Path, fmt: int) -> None:
    long_dir = "d" * (60 if fmt == tarfile.USTAR_FORMAT else 120)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=fmt) as tf:
        for name, data in ((f"{long_dir}/f.txt", b"hello"), ("plain.txt", b"x" * 1000)):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1_700_000_000, 0o640
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("l")
        link.type, link.linkname = tarfile.SYMTYPE, "plain.txt"
        tf.addfile(link)
    archive = tmp_path / "other.tar.zst"
    archive.write_bytes(zstandard.ZstdCompressor().compress(raw.getvalue()))
    assert extract_archive(archive, tmp_path / "out") == 3
    out = tmp_path / "out"
    assert (out / long_dir / "f.txt").read_bytes() == b"hello"
    assert (out / "plain.txt").stat().st_mtime == 1_700_000_000
    assert (out / "plain.txt").stat().st_mode & 0o777 == 0o640
    assert os.readlink(out / "l") == "plain.txt"


def test_our_tar_reads_back_with_tarfile(tmp_path: Path) -> None:
    src = tmp_path / "src"
    names = _make_tree(src)
    (src / ("n" * 150)).write_text("long name")
    names.append("n" * 150)
    archive = tmp_path / "c.tar.zst"
    create_archive(archive, src, scan_entries(src, names), ArchiveKind.TARZSTD, CompressionLevel.DEFAULT)
    with archive.open("rb") as compressed:
        raw = zstandard.ZstdDecompressor().stream_reader(compressed).read()
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tf:
        members = {m.name: m for m in tf.getmembers()}
        assert sorted(members) == sorted(names)
        assert tf.extractfile(members["n" * 150]).read() == b"long name"  # type: ignore[union-attr]
        assert members["src/link"].linkname == "pkg/mod.py"
        assert tf.pax_headers["SKYRUNNER.fingerprint"] == archive_fingerprint(archive)
