"""The helper through the whole runner: sources, caches and artifacts of real jobs.

Each test starts the real CLI (``run-single``, or ``run --config`` where config.toml matters)
with the shell executor against the test coordinator: git over smart HTTP, artifact upload and
download, and, for the remote cache, moto's S3 server on 127.0.0.1. The helper's own tests
(tests/unit/helper, tests/integration/helper) cover its corners; these check that the runner
hands it the right plan and that the pieces meet: what a job's script sees, what GitLab receives,
what lands on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import io
import json
import signal
import stat
import zipfile
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from skyrunner.config import shorten_token
from tests.e2e.conftest import run_cli, single_args, start_cli, write_config
from tests.fakes.coordinator import FakeCoordinator, FakeJob, FakeRunner
from tests.fakes.s3server import moto_s3

PROJECT = "group/project"
FILES: dict[str, str | bytes] = {"README.md": "hello\n", ".gitignore": "*.log\n"}


@pytest.fixture
async def coordinator(tmp_path: Path) -> AsyncIterator[FakeCoordinator]:
    """The test coordinator with Workhorse long polling: a job queued later is taken at once."""
    root = tmp_path / "gitlab"
    root.mkdir()
    async with FakeCoordinator(root, long_poll_s=10, trace_update_interval=1) as fake:
        yield fake


def _trace(job: FakeJob) -> str:
    return bytes(job.trace).decode(errors="replace")


async def _succeeded(coordinator: FakeCoordinator, job: FakeJob) -> str:
    done = await coordinator.wait_for_job(job.id, timeout=30)
    trace = _trace(done)
    assert done.state == "success", trace
    return trace


async def _run_single(coordinator: FakeCoordinator, runner: FakeRunner, workdir: Path, builds: int) -> str:
    code, output = await run_cli(single_args(coordinator, runner, workdir, builds=builds), workdir, timeout=60)
    assert code == 0, output
    return output


def _project_dir(workdir: Path, runner: FakeRunner, slot: int = 0) -> Path:
    return workdir / "builds" / shorten_token(runner.token) / str(slot) / PROJECT


def _named(root: Path, names: set[str]) -> list[Path]:
    return [path for path in root.rglob("*") if path.name in names]


def _zip(members: Mapping[str, bytes | str]) -> bytes:
    """A zip archive; a member whose name starts with ``link:`` is a symlink to its content."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            if name.startswith("link:"):
                info = zipfile.ZipInfo(name.removeprefix("link:"))
                info.create_system = 3
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                archive.writestr(info, content)
            else:
                archive.writestr(name, content)
    return buffer.getvalue()


# -- sources --------------------------------------------------------------------------------------


async def test_shallow_clone_then_fetch_reuses_the_build_directory(coordinator: FakeCoordinator, workdir: Path) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo(PROJECT, {"README.md": "v1\n"})
    for n in range(2, 5):
        repo.commit({"README.md": f"v{n}\n"}, message=f"commit {n}")
    show = [
        "echo state: head=$(git rev-parse HEAD) shallow=$(git rev-parse --is-shallow-repository)"
        " commits=$(git rev-list --count HEAD) readme=$(cat README.md)"
    ]
    first = coordinator.enqueue(
        coordinator.make_job(repo, depth=1, script=[*show, "touch stray.txt .git/left-by-the-first-job"])
    )
    cli = await start_cli(single_args(coordinator, runner, workdir, builds=2), workdir)
    first_trace = await _succeeded(coordinator, first)
    newer = repo.commit({"README.md": "v5\n"}, message="commit 5")
    second = coordinator.enqueue(
        coordinator.make_job(  # sha given: make_job caches a ref's tip (FakeCoordinator._commit_info)
            repo, depth=1, sha=newer, variables={"GIT_STRATEGY": "fetch"},
            script=[*show, "test -f .git/left-by-the-first-job && echo same-git-dir", "test ! -e stray.txt && echo cleaned"],
        )
    )  # fmt: skip
    second_trace = await _succeeded(coordinator, second)
    assert await cli.wait(30) == 0, cli.text

    assert "Fetching changes with git depth set to 1..." in first_trace
    assert "Initialized empty Git repository in" in first_trace and "Created fresh repository." in first_trace
    assert f"state: head={first.payload['git_info']['sha']} shallow=true commits=1 readme=v4\n" in first_trace

    assert "Fetching changes with git depth set to 1..." in second_trace
    assert f"Reinitialized existing Git repository in {_project_dir(workdir, runner)}/.git/" in second_trace
    assert "Created fresh repository." not in second_trace
    assert f"state: head={newer} shallow=true commits=1 readme=v5\n" in second_trace
    assert "same-git-dir\n" in second_trace and "cleaned\n" in second_trace
    assert second.token not in cli.text and "gitlab-ci-token:" not in second_trace


async def test_recursive_submodules_over_smart_http(coordinator: FakeCoordinator, workdir: Path) -> None:
    runner = coordinator.add_runner()
    deep = coordinator.create_repo("group/deep", {"deep.txt": "from the nested submodule\n"})
    lib = coordinator.create_repo("group/lib", {"lib.txt": "from the submodule\n"})
    lib.add_submodule("vendor/deep", "../deep.git", deep.head() or "")
    repo = coordinator.create_repo(PROJECT, FILES)
    repo.add_submodule("lib", "../lib.git", lib.head() or "")
    job = coordinator.enqueue(
        coordinator.make_job(
            repo, variables={"GIT_SUBMODULE_STRATEGY": "recursive"},
            script=["cat lib/lib.txt lib/vendor/deep/deep.txt", "git submodule status --recursive"],
        )
    )  # fmt: skip
    await _run_single(coordinator, runner, workdir, 1)
    trace = await _succeeded(coordinator, job)
    assert "Updating/initializing submodules recursively..." in trace
    assert "from the submodule\nfrom the nested submodule\n" in trace
    assert f" {lib.head()} lib " in trace and f" {deep.head()} lib/vendor/deep " in trace
    served = {(r.repo, r.user) for r in coordinator.git.requests if r.status == 200}
    assert {"group/lib", "group/deep"} <= {name for name, _ in served}
    assert all(user == "gitlab-ci-token" for _, user in served), "every fetch carried the job's credentials"
    configs = _named(_project_dir(workdir, runner) / ".git", {"config"})  # the repository's and its submodules'
    assert len(configs) == 3
    for config in configs:
        assert job.token not in config.read_text() and "gitlab-ci-token" not in config.read_text()


# -- cache ----------------------------------------------------------------------------------------


async def test_cache_saved_by_one_job_is_restored_by_the_next_and_by_fallback(
    coordinator: FakeCoordinator, workdir: Path
) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo(PROJECT, FILES)
    save = coordinator.make_job(
        repo, script=["mkdir -p vendor/lib", "echo gem v1 > vendor/lib/gem.rb"],
        cache=[{"key": "gems-$CI_COMMIT_REF_SLUG", "paths": ["vendor/"]}],
    )  # fmt: skip
    restore = coordinator.make_job(
        repo, variables={"GIT_STRATEGY": "clone"}, script=["cat vendor/lib/gem.rb"],
        cache=[{"key": "gems-$CI_COMMIT_REF_SLUG", "paths": ["vendor/"], "policy": "pull"}],
    )  # fmt: skip
    fallback = coordinator.make_job(
        repo, variables={"GIT_STRATEGY": "clone"}, script=["cat vendor/lib/gem.rb"],
        cache=[{"key": "feature-x", "paths": ["vendor/"], "policy": "pull", "fallback_keys": ["gems-$CI_COMMIT_REF_SLUG"]}],
    )  # fmt: skip
    # keys get GitLab's -protected suffix, then the runner expands their variables
    jobs = [coordinator.enqueue(payload) for payload in (save, restore, fallback)]
    await _run_single(coordinator, runner, workdir, 3)
    save_trace, restore_trace, fallback_trace = [await _succeeded(coordinator, job) for job in jobs]

    assert "Creating cache gems-main-protected..." in save_trace and "Created cache" in save_trace
    archive = workdir / "cache" / PROJECT / "gems-main-protected" / "cache.zip"
    with zipfile.ZipFile(archive) as saved:
        assert sorted(saved.namelist()) == ["vendor/", "vendor/lib/", "vendor/lib/gem.rb"]
    assert sorted(p.name for p in archive.parent.iterdir()) == ["cache.zip"], "no temporary file left"

    assert "Checking cache for gems-main-protected..." in restore_trace
    assert "Successfully extracted cache" in restore_trace
    assert "$ cat vendor/lib/gem.rb\x1b[0;m\ngem v1\n" in restore_trace

    checks = fallback_trace.index("Checking cache for feature-x-protected...")
    missing = fallback_trace.index("file does not exist", checks)
    found = fallback_trace.index("Checking cache for gems-main-protected...", missing)
    assert fallback_trace.index("Successfully extracted cache", found) > found
    assert "$ cat vendor/lib/gem.rb\x1b[0;m\ngem v1\n" in fallback_trace
    assert not (workdir / "cache" / PROJECT / "feature-x-protected").exists(), "pull never saves"


class _WriterWatch:
    """Counts the archives being written into a cache key's directory at once (their temp files)."""

    def __init__(self, key_dir: Path) -> None:
        self.key_dir = key_dir
        self.most = 0
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        while True:
            with contextlib.suppress(FileNotFoundError):
                self.most = max(self.most, sum(p.name.endswith(".tmp") for p in self.key_dir.iterdir()))
            await asyncio.sleep(0.005)

    async def __aenter__(self) -> _WriterWatch:
        self._task = asyncio.create_task(self._watch())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def test_two_jobs_saving_one_key_at_once_leave_one_whole_archive(
    coordinator: FakeCoordinator, workdir: Path, tmp_path: Path
) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo(PROJECT, FILES)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    script = [
        "mkdir -p vendor && echo $CI_JOB_ID > vendor/owner.txt",
        "head -c 8000000 /dev/urandom > vendor/blob.bin",  # about 0.3 s to archive
        "echo blob-$CI_JOB_ID=$(sha256sum vendor/blob.bin | cut -d' ' -f1)",
        # both scripts end together, so both jobs archive the same key at the same moment
        f"touch {barrier}/$CI_JOB_ID; while [ $(ls {barrier} | wc -l) -lt 2 ]; do sleep 0.02; done",
    ]
    cache = [{"key": "shared", "paths": ["vendor/"]}]
    jobs = [coordinator.enqueue(coordinator.make_job(repo, script=script, cache=cache)) for _ in range(2)]
    config = write_config(workdir / "config.toml", coordinator, runner, concurrent=2)
    key_dir = workdir / "cache" / PROJECT / "shared-protected"
    writers = _WriterWatch(key_dir)
    cli = await start_cli(["run", "--config", str(config)], workdir)
    async with writers:
        traces = [await _succeeded(coordinator, job) for job in jobs]
    cli.signal(signal.SIGQUIT)
    assert await cli.wait(30) == 0, cli.text

    assert writers.most == 2, "the two archives were written at the same time"
    digests = {}
    for job, trace in zip(jobs, traces, strict=True):
        assert "Created cache" in trace
        digests[str(job.id)] = trace.split(f"blob-{job.id}=", 1)[1].split("\n", 1)[0]
    assert sorted(p.name for p in key_dir.iterdir()) == ["cache.zip"], "no temporary file left"
    with zipfile.ZipFile(key_dir / "cache.zip") as archive:
        assert archive.testzip() is None
        owner = archive.read("vendor/owner.txt").decode().strip()
        assert owner in digests
        assert hashlib.sha256(archive.read("vendor/blob.bin")).hexdigest() == digests[owner], "one job's files"


# -- artifacts ------------------------------------------------------------------------------------


JUNIT = '<testsuites><testsuite name="unit" tests="1"/></testsuites>\n'


def _gzip_member_name(data: bytes) -> str:
    """The FNAME of a gzip stream's first member (RFC 1952)."""
    flags, at = data[3], 10
    assert flags & 8, "the member carries its file name"
    if flags & 4:  # FEXTRA
        at += 2 + int.from_bytes(data[at : at + 2], "little")
    return data[at : data.index(b"\0", at)].decode("latin-1")


async def test_artifacts_with_exclude_and_untracked_and_a_junit_report(
    coordinator: FakeCoordinator, workdir: Path
) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo(PROJECT, {**FILES, "src/main.c": "int main(void) { return 0; }\n"})
    script = [
        "mkdir -p build/out/sub build/tmp build/cache gen/deep",
        "echo app > build/out/app.bin; echo symbols > build/out/app.dbg; echo lib > build/out/sub/lib.bin",
        "echo scratch > build/tmp/scratch.o; echo notes > build/notes.txt; echo kept > build/cache/kept.txt",
        "echo generated > gen/deep/file.txt; echo log > debug.log",
        f"printf '{JUNIT}' > report.xml",
    ]
    artifacts: list[dict[str, Any]] = [
        {"name": "$CI_JOB_NAME-output", "paths": ["build/**"], "exclude": ["build/tmp/**", "**/*.dbg", "build/cache"],
         "untracked": True, "expire_in": "1 week"},
        {"name": "junit.xml", "paths": ["report.xml"], "when": "always", "artifact_type": "junit",
         "artifact_format": "gzip", "expire_in": "1 week"},
    ]  # fmt: skip
    job = coordinator.enqueue(coordinator.make_job(repo, script=script, artifacts=artifacts))
    await _run_single(coordinator, runner, workdir, 1)
    trace = await _succeeded(coordinator, job)

    uploads = {a.artifact_type: a for a in coordinator.jobs[job.id].artifacts}
    assert sorted(uploads) == ["archive", "junit"]
    archive = uploads["archive"]
    assert (archive.filename, archive.artifact_format, archive.expire_in) == ("test-output.zip", "zip", "1 week")
    with zipfile.ZipFile(io.BytesIO(archive.data)) as uploaded:
        # gitlab-runner's file archiver: each glob match walked, each path checked against the
        # exclude patterns on its own (so "build/cache" drops the directory's entry, not its
        # files); `git ls-files -o` (ignored files too) for untracked; no implied parents
        assert sorted(uploaded.namelist()) == [
            "build/", "build/cache/kept.txt", "build/notes.txt", "build/out/", "build/out/app.bin",
            "build/out/sub/", "build/out/sub/lib.bin", "debug.log", "gen/deep/file.txt", "report.xml",
        ]  # fmt: skip
        assert uploaded.read("build/out/sub/lib.bin") == b"lib\n"
    assert "build/**: found" in trace and "untracked: found" in trace
    assert "build/tmp/**: excluded 2 files" in trace and "**/*.dbg: excluded 1 files" in trace
    assert "build/cache: excluded 1 files" in trace

    junit = uploads["junit"]
    assert (junit.filename, junit.artifact_format, junit.expire_in) == ("junit.xml.gz", "gzip", "1 week")
    assert gzip.decompress(junit.data) == JUNIT.encode()
    assert _gzip_member_name(junit.data) == "report.xml"
    posts = [r for r in coordinator.requests if r.method == "POST" and r.path.endswith("/artifacts")]
    assert [dict(r.query) for r in posts] == [
        {"artifact_format": "zip", "artifact_type": "archive", "expire_in": "1 week"},
        {"artifact_format": "gzip", "artifact_type": "junit", "expire_in": "1 week"},
    ]
    assert all(r.headers.get("JOB-TOKEN") == job.token for r in posts)


@pytest.mark.parametrize("redirect", [False, True], ids=["proxied", "object-storage"])
async def test_dependency_artifacts_are_downloaded_into_the_project(
    coordinator: FakeCoordinator, workdir: Path, redirect: bool
) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo(PROJECT, FILES)
    build = coordinator.make_job(repo, name="build", stage="build", script=["true"])
    coordinator.set_artifacts(
        build["id"], _zip({"dist/": b"", "dist/app.txt": "built app\n", "dist/VERSION": "1.2.3\n"}), redirect=redirect
    )
    job = coordinator.enqueue(
        coordinator.make_job(
            repo, script=["cat dist/app.txt dist/VERSION"], dependencies=[{"id": build["id"], "name": "build"}]
        )
    )
    await _run_single(coordinator, runner, workdir, 1)
    trace = await _succeeded(coordinator, job)
    assert f"Downloading artifacts for build ({build['id']})..." in trace
    assert "built app\n1.2.3\n" in trace
    project = _project_dir(workdir, runner)
    assert (project / "dist/app.txt").read_text() == "built app\n"

    downloads = [r for r in coordinator.requests if r.path == f"/api/v4/jobs/{build['id']}/artifacts"]
    assert [(r.query.get("direct_download"), r.headers.get("JOB-TOKEN")) for r in downloads] == [("true", job.token)]
    stored = [r for r in coordinator.requests if r.path.startswith("/object-storage/")]
    if redirect:
        assert downloads[0].status == 302
        assert [(r.status, "JOB-TOKEN" in r.headers) for r in stored] == [(200, False)]
    else:
        assert downloads[0].status == 200 and not stored


ESCAPES = {
    "dot-dot": ({"dist/ok.txt": "fine\n", "../../evil.txt": "pwned\n"}, "escapes the project directory"),
    "absolute": ({"{outside}/abs-evil.txt": "pwned\n"}, "is an absolute path"),
    "symlink-out": ({"link:escape": "{outside}", "escape/evil.txt": "pwned\n"}, "links outside the project directory"),
}


async def test_dependency_archives_that_escape_the_project_fail_the_job(
    coordinator: FakeCoordinator, workdir: Path, tmp_path: Path
) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo(PROJECT, FILES)
    outside = tmp_path / "outside"
    outside.mkdir()
    jobs: dict[str, tuple[FakeJob, str, int]] = {}
    for case, (members, message) in ESCAPES.items():
        producer = coordinator.make_job(repo, name=f"build-{case}", stage="build", script=["true"])
        entries = {
            name.format(outside=outside): str(content).format(outside=outside) for name, content in members.items()
        }
        coordinator.set_artifacts(producer["id"], _zip(entries))
        job = coordinator.enqueue(
            coordinator.make_job(
                repo, name=case, script=["echo the script ran"],
                dependencies=[{"id": producer["id"], "name": f"build-{case}"}],
            )
        )  # fmt: skip
        jobs[case] = (job, message, producer["id"])
    await _run_single(coordinator, runner, workdir, len(jobs))

    for case, (job, message, producer_id) in jobs.items():
        done = await coordinator.wait_for_job(job.id, timeout=10)
        trace = _trace(done)
        assert done.state == "failed", trace
        assert f"ERROR: artifacts of build-{case} ({producer_id}): archive entry" in trace, trace
        assert message in trace
        assert "download_artifacts failed: exit code 1" in trace
        assert "the script ran" not in trace and "Traceback" not in trace
    assert list(outside.iterdir()) == []
    assert _named(tmp_path, {"evil.txt", "abs-evil.txt", "escape"}) == []


# -- remote cache ---------------------------------------------------------------------------------

BUCKET = "runner-cache"
ACCESS_KEY = "AKIAE2ETESTKEY"
SECRET_KEY = "e2eS3cr3t/Key+ThatMustNeverLeak0123456789"
LEAK = "MustNeverLeak"  # any piece of the secret key


@pytest.fixture
def s3_server() -> Iterator[str]:
    with moto_s3() as address:
        yield address


def _s3_client(address: str) -> Any:
    import boto3  # type: ignore[import-untyped]

    return boto3.client(
        "s3", endpoint_url=f"http://{address}", aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
    )  # fmt: skip


def _s3_config(path: Path, coordinator: FakeCoordinator, runners: list[FakeRunner], address: str) -> Path:
    """Two runners on two "machines" (own builds and cache dirs) sharing one S3 cache."""
    lines = ["concurrent = 2", "check_interval = 1", "shutdown_timeout = 30"]
    for n, runner in enumerate(runners):
        lines += [
            "[[runners]]", f'  name = "machine-{n}"', f'  url = "{coordinator.url}"', f'  token = "{runner.token}"',
            '  executor = "shell"', f'  builds_dir = "{path.parent / f"builds-{n}"}"',
            f'  cache_dir = "{path.parent / f"cache-{n}"}"',
            "  [runners.cache]", '    Type = "s3"', '    Path = "ci"', "    Shared = true",
            "  [runners.cache.s3]", f'    ServerAddress = "{address}"', f'    AccessKey = "{ACCESS_KEY}"',
            f'    SecretKey = "{SECRET_KEY}"', f'    BucketName = "{BUCKET}"', "    Insecure = true",
        ]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_s3_cache_round_trip_between_two_machines(
    coordinator: FakeCoordinator, workdir: Path, tmp_path: Path, s3_server: str
) -> None:
    s3 = _s3_client(s3_server)
    await asyncio.to_thread(s3.create_bucket, Bucket=BUCKET)
    first, second = coordinator.add_runner(), coordinator.add_runner()
    repo = coordinator.create_repo(PROJECT, FILES)
    cache = [{"key": "deps", "paths": ["vendor/"]}]
    seen = tmp_path / "seen"  # what the helper was handed, and the job's environment
    seen.mkdir()
    keep = f'cp "$SKYRUNNER_PLAN" {seen}/$CI_JOB_ID.plan.json && env > {seen}/$CI_JOB_ID.env'
    save = coordinator.enqueue(
        coordinator.make_job(repo, script=["mkdir -p vendor", "echo package v7 > vendor/pkg.txt", keep], cache=cache),
        runner_token=first.token,
    )
    config = _s3_config(workdir / "config.toml", coordinator, [first, second], s3_server)
    cli = await start_cli(["run", "--config", str(config)], workdir)
    save_trace = await _succeeded(coordinator, save)
    restore = coordinator.enqueue(  # on the other machine, whose cache dir is empty
        coordinator.make_job(repo, script=["cat vendor/pkg.txt", keep], cache=[{**cache[0], "policy": "pull"}]),
        runner_token=second.token,
    )
    restore_trace = await _succeeded(coordinator, restore)
    cli.signal(signal.SIGQUIT)
    assert await cli.wait(30) == 0, cli.text

    obj = f"ci/project/{save.payload['job_info']['project_id']}/deps-protected"  # Shared: no runner/<token>/
    listed = await asyncio.to_thread(s3.list_objects_v2, Bucket=BUCKET)
    assert [o["Key"] for o in listed["Contents"]] == [obj]
    body = (await asyncio.to_thread(s3.get_object, Bucket=BUCKET, Key=obj))["Body"].read()
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.read("vendor/pkg.txt") == b"package v7\n"

    assert f"CI_PROJECT_DIR={workdir}/builds-0/" in (seen / f"{save.id}.env").read_text()
    assert f"CI_PROJECT_DIR={workdir}/builds-1/" in (seen / f"{restore.id}.env").read_text()
    assert f"Uploading cache.zip to http://{s3_server}/{BUCKET}/{obj}" in save_trace
    assert f"Downloading cache from http://{s3_server}/{BUCKET}/{obj}" in restore_trace
    assert "Successfully extracted cache" in restore_trace
    assert "$ cat vendor/pkg.txt\x1b[0;m\npackage v7\n" in restore_trace
    assert (workdir / "cache-1" / PROJECT / "deps-protected" / "cache.zip").is_file(), "kept locally too"

    for job in (save, restore):
        plan = (seen / f"{job.id}.plan.json").read_text()
        assert "X-Amz-Signature=" in json.dumps(json.loads(plan)), "the helper gets signed URLs"
        assert LEAK not in plan and LEAK not in (seen / f"{job.id}.env").read_text()
    for text in (save_trace, restore_trace, cli.text):
        assert LEAK not in text and "X-Amz-Signature" not in text
