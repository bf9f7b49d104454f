"""Archive + extract throughput of the helper's cache formats against Python's zipfile.

Run it from the repository root (it is not part of the test suite)::

    /work/venv/bin/python bench/archive_bench.py                 # ~200 MB tree in /dev/shm
    /work/venv/bin/python bench/archive_bench.py --workdir bench/results --repeat 3

It generates a source-like tree (many small text files that compress like code, plus some
binaries: half random, half structured), then for each method archives the whole tree into one
file and extracts it into an empty directory, timing both. The baseline is ``zipfile`` at
deflate level 6 (``ZipFile.write`` + ``extractall``); the others go through
``skyrunner.helper.archive`` exactly as ``cache-save``/``cache-restore`` do (fingerprint, atomic
write with fsync, safe extraction, mtimes restored). MB/s is input size divided by
archive + extract time; "speedup" is relative to the baseline in the same run. The target is
at least 3x for tarzstd at the default level.

The work directory defaults to ``/dev/shm`` (``bench/results/``, git-ignored, where there is
none): on tmpfs the figures measure the archive code, not the disk. On a disk, creating tens of
thousands of files is a large part of extraction and varies tenfold with the file system and
its other users (this machine's ``/tmp`` is ten times slower at it than ``/work``); pass
``--workdir`` to measure that. Everything is deleted afterwards.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from skyrunner.helper.archive import ArchiveKind, create_archive, extract_archive, scan_entries
from skyrunner.helper.plan import CompressionLevel

_WORDS = [
    "def",
    "class",
    "return",
    "import",
    "from",
    "self",
    "None",
    "True",
    "False",
    "if",
    "else",
    "elif",
    "for",
    "while",
    "in",
    "not",
    "and",
    "or",
    "async",
    "await",
    "yield",
    "lambda",
    "try",
    "except",
    "finally",
    "with",
    "as",
    "raise",
    "pass",
    "break",
    "continue",
    "value",
    "result",
    "config",
    "request",
    "response",
    "client",
    "server",
    "cache",
    "archive",
    "entry",
    "path",
    "name",
    "index",
    "count",
    "buffer",
    "parse",
    "render",
    "build",
    "size",
    "error",
    "message",
    "token",
    "status",
    "job",
    "runner",
    "pipeline",
    "stage",
    "script",
]


def _text_pool(rng: random.Random, size: int) -> bytes:
    lines = []
    total = 0
    while total < size:
        indent = "    " * rng.randint(0, 3)
        line = indent + " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 10))) + "\n"
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()


def generate_tree(root: Path, size_mb: int, seed: int = 7) -> tuple[int, int]:
    """Write a source-like tree of about ``size_mb`` MB; return (files, bytes)."""
    rng = random.Random(seed)
    pool = _text_pool(rng, 8 << 20)
    target = size_mb << 20
    text_target = target * 5 // 8
    files = written = 0
    while written < text_target:
        directory = root / f"pkg{files // 400:03d}" / f"mod{(files // 40) % 10}"
        directory.mkdir(parents=True, exist_ok=True)
        length = rng.randint(500, 12_000)
        start = rng.randint(0, len(pool) - length)
        (directory / f"file{files:05d}.py").write_bytes(pool[start : start + length])
        files += 1
        written += length
    bin_dir = root / "bin"
    bin_dir.mkdir()
    n = 0
    while written < target:
        length = min(4 << 20, target - written)
        data = rng.randbytes(length) if n % 2 == 0 else (rng.randbytes(4096) + bytes(4096)) * (length // 8192)
        (bin_dir / f"blob{n}.bin").write_bytes(data)
        files += 1
        written += len(data)
        n += 1
    return files, written


def _zipfile_baseline(src: Path, archive: Path, dst: Path, names: list[str]) -> tuple[float, float]:
    os.sync()  # start each phase with no writeback pending from the previous one
    start = time.perf_counter()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for name in names:
            zf.write(src / name, name)
    archived = time.perf_counter() - start
    os.sync()
    start = time.perf_counter()
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(dst)
    return archived, time.perf_counter() - start


def _helper(kind: ArchiveKind, level: CompressionLevel) -> Callable[[Path, Path, Path, list[str]], tuple[float, float]]:
    def run(src: Path, archive: Path, dst: Path, names: list[str]) -> tuple[float, float]:
        os.sync()
        start = time.perf_counter()
        create_archive(archive, src, scan_entries(src, names), kind, level)
        archived = time.perf_counter() - start
        os.sync()
        start = time.perf_counter()
        extract_archive(archive, dst)
        return archived, time.perf_counter() - start

    return run


METHODS: list[tuple[str, Callable[[Path, Path, Path, list[str]], tuple[float, float]]]] = [
    ("zipfile deflate-6 (baseline)", _zipfile_baseline),
    ("skyrunner zip (default=6)", _helper(ArchiveKind.ZIP, CompressionLevel.DEFAULT)),
    ("skyrunner zip (fastest=1)", _helper(ArchiveKind.ZIP, CompressionLevel.FASTEST)),
    ("skyrunner tarzstd (default=3)", _helper(ArchiveKind.TARZSTD, CompressionLevel.DEFAULT)),
    ("skyrunner tarzstd (fastest=1)", _helper(ArchiveKind.TARZSTD, CompressionLevel.FASTEST)),
]


def _file_names(root: Path) -> list[str]:
    names = []
    for dirpath, _, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        names.extend(name if rel == "." else f"{rel}/{name}" for name in filenames)
    return sorted(names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=2, help="runs per method; the fastest counts")
    shm = Path("/dev/shm")
    default_workdir = shm if shm.is_dir() else Path(__file__).parent / "results"
    parser.add_argument("--workdir", type=Path, default=default_workdir)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="archive-bench-") as tmp:
        work = Path(tmp)
        src = work / "src"
        files, total = generate_tree(src, args.size_mb)
        names = _file_names(src)
        mb = total / 1e6
        load = os.getloadavg()[0]
        print(f"tree: {files} files, {mb:.0f} MB, {os.cpu_count()} CPUs (load {load:.1f}), in {args.workdir}")
        print(f"best of {args.repeat} per phase; MB/s = tree size / (archive + extract)\n")
        print(f"{'method':32} {'archive s':>9} {'extract s':>9} {'size MB':>8} {'ratio':>6} {'MB/s':>7} {'speedup':>7}")
        baseline = 0.0
        for label, method in METHODS:
            archive, dst = work / "archive", work / "dst"
            t_archive = t_extract = float("inf")
            for _ in range(args.repeat):
                shutil.rmtree(dst, ignore_errors=True)
                a, e = method(src, archive, dst, names)
                t_archive, t_extract = min(t_archive, a), min(t_extract, e)
            rate = mb / (t_archive + t_extract)
            baseline = baseline or rate
            size = archive.stat().st_size / 1e6
            print(
                f"{label:32} {t_archive:9.2f} {t_extract:9.2f} {size:8.1f} {mb / size:6.2f} "
                f"{rate:7.1f} {rate / baseline:6.2f}x"
            )
            archive.unlink()
            shutil.rmtree(dst)


if __name__ == "__main__":
    main()
