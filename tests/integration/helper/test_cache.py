"""``cache-restore`` / ``cache-save`` through the real helper process, local layout."""

from __future__ import annotations

import asyncio
import io
import os
import tarfile
import zipfile
from pathlib import Path

import zstandard

from skyrunner.helper.plan import ArchiveFormat, CacheEntry, CachePolicy, HelperPlan, When
from tests.integration.helper.conftest import HelperEnv


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()
    }


def _fill(project: Path, marker: str = "v1") -> None:
    (project / "vendor/lib").mkdir(parents=True, exist_ok=True)
    (project / "vendor/lib/a.rb").write_text(f"a {marker}\n")
    (project / "vendor/lib/b.bin").write_bytes(os.urandom(2048))
    (project / "vendor/link").unlink(missing_ok=True)
    (project / "vendor/link").symlink_to("lib/a.rb")
    (project / "src.txt").write_text("not cached\n")


def _cache_plan(helper: HelperEnv, *entries: CacheEntry, **fields: object) -> HelperPlan:
    return helper.plan(caches=entries, **fields)


async def test_save_then_restore_then_up_to_date(helper: HelperEnv) -> None:
    project = helper.project_dir
    _fill(project)
    plan = _cache_plan(helper, CacheEntry(key="main/gems", paths=("vendor/**",)))
    saved = await helper.run("cache-save", plan, "--job-status", "success")
    saved.assert_ok()
    assert "Creating cache main/gems..." in saved.output
    assert "vendor/**: found 5 matching artifact files and directories" in saved.output
    assert "Created cache" in saved.output
    archive = helper.cache_dir / "main/gems/cache.zip"
    with zipfile.ZipFile(archive) as zf:
        assert sorted(zf.namelist()) == [
            "vendor/",
            "vendor/lib/",
            "vendor/lib/a.rb",
            "vendor/lib/b.bin",
            "vendor/link",
        ]
    before = _tree(project / "vendor")

    import shutil

    shutil.rmtree(project)
    project.mkdir(parents=True)
    restored = await helper.run("cache-restore", plan)
    restored.assert_ok()
    assert "Checking cache for main/gems..." in restored.output
    assert "Successfully extracted cache" in restored.output
    assert _tree(project / "vendor") == before
    assert os.readlink(project / "vendor/link") == "lib/a.rb"

    again = await helper.run("cache-save", plan, "--job-status", "success")
    again.assert_ok()
    assert "Archive is up to date!" in again.output

    (project / "vendor/lib/a.rb").write_text("a v2, longer\n")
    changed = await helper.run("cache-save", plan, "--job-status", "success")
    assert "Archive is up to date!" not in changed.output
    with zipfile.ZipFile(archive) as zf:
        assert zf.read("vendor/lib/a.rb") == b"a v2, longer\n"


async def test_fallback_keys_and_corrupt_archive(helper: HelperEnv) -> None:
    project = helper.project_dir
    _fill(project, "from-main")
    await helper.run(
        "cache-save", _cache_plan(helper, CacheEntry(key="main", paths=("vendor",))), "--job-status", "success"
    )
    broken = helper.cache_dir / "broken/cache.zip"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"PK\x03\x04 this is not really a zip")
    for path in project.rglob("*.rb"):
        path.unlink()
    entry = CacheEntry(key="feature", paths=("vendor",), fallback_keys=("broken", "main"))
    run = await helper.run("cache-restore", _cache_plan(helper, entry))
    run.assert_ok()
    out = run.output
    assert out.index("Checking cache for feature...") < out.index("file does not exist")
    assert out.index("Checking cache for broken...") < out.index("corrupt zip archive")
    assert out.count("Failed to extract cache") == 2
    assert out.index("Checking cache for main...") < out.index("Successfully extracted cache")
    assert (project / "vendor/lib/a.rb").read_text() == "a from-main\n"


async def test_policy_and_when(helper: HelperEnv) -> None:
    _fill(helper.project_dir)
    entries = (
        CacheEntry(key="pull-only", paths=("vendor",), policy=CachePolicy.PULL),
        CacheEntry(key="on-failure", paths=("vendor",), when=When.ON_FAILURE),
        CacheEntry(key="always", paths=("vendor",), when=When.ALWAYS, policy=CachePolicy.PUSH),
    )
    plan = _cache_plan(helper, *entries)
    ok = await helper.run("cache-save", plan, "--job-status", "success")
    ok.assert_ok()
    assert "Not uploading cache pull-only due to policy" in ok.output
    assert sorted(p.name for p in helper.cache_dir.iterdir()) == ["always"]
    failed = await helper.run("cache-save", plan, "--job-status", "failed")
    failed.assert_ok()
    assert sorted(p.name for p in helper.cache_dir.iterdir()) == ["always", "on-failure"]
    restore = await helper.run("cache-restore", plan)
    assert "Not downloading cache always due to policy" in restore.output


async def test_tarzstd_round_trip_and_untracked(helper: HelperEnv) -> None:
    project = helper.project_dir
    project.mkdir(parents=True)
    git = ["git", "-c", "init.defaultBranch=main", "init", "-q", str(project)]
    proc = await asyncio.create_subprocess_exec(*git, env=helper.env())
    assert await proc.wait() == 0
    (project / "build").mkdir()
    (project / "build/out.o").write_bytes(b"\x7fELF" + bytes(1000))
    (project / ".gitignore").write_text("build/\n")
    plan = _cache_plan(
        helper,
        CacheEntry(key="zst", untracked=True),
        cache_format=ArchiveFormat.TARZSTD,
    )
    saved = await helper.run("cache-save", plan, "--job-status", "success")
    saved.assert_ok()
    assert "untracked: found 2 files" in saved.output
    archive = helper.cache_dir / "zst/cache.tar.zst"
    assert archive.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"
    (project / "build/out.o").unlink()
    (await helper.run("cache-restore", plan)).assert_ok()
    assert (project / "build/out.o").read_bytes() == b"\x7fELF" + bytes(1000)
    assert "Archive is up to date!" in (await helper.run("cache-save", plan, "--job-status", "success")).output


async def test_concurrent_saves_of_one_key_leave_one_whole_archive(helper: HelperEnv) -> None:
    plans = []
    for n in range(2):
        project = helper.builds_dir / f"p{n}"
        (project / "data").mkdir(parents=True)
        for i in range(40):
            (project / f"data/f{i}.bin").write_bytes(bytes([n]) * 50_000)
        entry = CacheEntry(key="shared", paths=("data",))
        plans.append(_cache_plan(helper, entry, project_dir=str(project)))
    runs = await asyncio.gather(
        *(helper.run("cache-save", plan, "--job-status", "success", name=f"p{i}.json") for i, plan in enumerate(plans))
    )
    for run in runs:
        run.assert_ok()
        assert "Created cache" in run.output
    key_dir = helper.cache_dir / "shared"
    assert [p.name for p in key_dir.iterdir()] == ["cache.zip"]  # no temp files left
    with zipfile.ZipFile(key_dir / "cache.zip") as zf:
        assert zf.testzip() is None
        contents = {zf.read(f"data/f{i}.bin") for i in range(40)}
    assert contents in ({bytes([0]) * 50_000}, {bytes([1]) * 50_000})


def _evil_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("fine.txt", "ok")
        zf.writestr("../escaped.txt", "gotcha")
    return buffer.getvalue()


def _evil_tarzstd(outside: Path) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        link = tarfile.TarInfo("vendor/out")
        link.type, link.linkname = tarfile.SYMTYPE, str(outside)
        tf.addfile(link)
        data = b"through the link"
        payload = tarfile.TarInfo("vendor/out/pwned.txt")
        payload.size = len(data)
        tf.addfile(payload, io.BytesIO(data))
    return zstandard.ZstdCompressor().compress(raw.getvalue())


async def test_archives_escaping_the_project_dir_are_refused(tmp_path: Path, helper: HelperEnv) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    helper.project_dir.mkdir(parents=True)
    (helper.cache_dir / "zip").mkdir()
    (helper.cache_dir / "zip/cache.zip").write_bytes(_evil_zip())
    (helper.cache_dir / "tar").mkdir()
    (helper.cache_dir / "tar/cache.tar.zst").write_bytes(_evil_tarzstd(outside))
    for key in ("zip", "tar"):
        run = await helper.run("cache-restore", _cache_plan(helper, CacheEntry(key=key, paths=("vendor",))))
        run.assert_ok()  # never fatal
        assert "Failed to extract cache" in run.output
        assert "Successfully extracted cache" not in run.output
    assert "escapes the project directory" in run.output or "links outside" in run.output
    assert not (helper.builds_dir / "group" / "escaped.txt").exists()
    assert not (helper.project_dir / "fine.txt").exists()  # zip names are checked before writing
    assert list(outside.iterdir()) == []


async def test_unsanitised_keys_are_refused(helper: HelperEnv) -> None:
    _fill(helper.project_dir)
    plan = _cache_plan(helper, CacheEntry(key="../../escape", paths=("vendor",)))
    saved = await helper.run("cache-save", plan, "--job-status", "success")
    saved.assert_ok()
    assert "cache key '../../escape' is not a sanitised key" in saved.output
    assert "Failed to create cache" in saved.output
    assert not (helper.tmp / "escape").exists()
    restored = await helper.run("cache-restore", plan)
    restored.assert_ok()
    assert "Failed to extract cache" in restored.output
