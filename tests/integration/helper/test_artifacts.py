"""``artifacts-upload`` / ``artifacts-download`` against a small GitLab-like aiohttp endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import BodyPartReader, web

from skyrunner.helper.gzipstream import read_gzip_members
from skyrunner.helper.plan import ArtifactEntry, ArtifactFormat, DependencyEntry, When
from tests.integration.helper.conftest import TOKEN, HelperEnv


@dataclass
class Upload:
    query: dict[str, str]
    token: str | None
    chunked: bool
    parts: list[tuple[str, str | None, bytes]]


@dataclass
class FakeGitLab:
    """Artifacts endpoints with scripted answers; records every request."""

    upload_statuses: list[int] = field(default_factory=list)
    redirect_to: str = ""
    uploads: list[Upload] = field(default_factory=list)
    downloads: list[tuple[str, str | None]] = field(default_factory=list)
    artifacts: dict[int, bytes] = field(default_factory=dict)

    async def upload(self, request: web.Request) -> web.Response:
        parts = []
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            assert isinstance(part, BodyPartReader)
            parts.append((part.name or "", part.filename, bytes(await part.read())))
        self.uploads.append(
            Upload(
                dict(request.query),
                request.headers.get("JOB-TOKEN"),
                request.headers.get("Transfer-Encoding") == "chunked",
                parts,
            )
        )
        if self.redirect_to:
            target, self.redirect_to = self.redirect_to, ""
            return web.Response(status=307, headers={"Location": target + request.path_qs})
        status = self.upload_statuses.pop(0) if self.upload_statuses else 201
        return web.Response(status=status, text=str(status))

    async def download(self, request: web.Request) -> web.Response:
        job_id = int(request.match_info["id"])
        self.downloads.append((request.path, request.headers.get("JOB-TOKEN")))
        if request.headers.get("JOB-TOKEN") != TOKEN:
            return web.Response(status=401)
        if job_id not in self.artifacts:
            return web.Response(status=404, text='{"message":"404 Not Found"}')
        return web.Response(status=302, headers={"Location": f"/storage/{job_id}?X-Amz-Signature=abc"})

    async def storage(self, request: web.Request) -> web.Response:
        self.downloads.append((request.path, request.headers.get("JOB-TOKEN")))
        return web.Response(body=self.artifacts[int(request.match_info["id"])])

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 26)
        app.router.add_post("/api/v4/jobs/{id}/artifacts", self.upload)
        app.router.add_get("/api/v4/jobs/{id}/artifacts", self.download)
        app.router.add_get("/storage/{id}", self.storage)
        return app


@contextlib.asynccontextmanager
async def _serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def gitlab() -> AsyncIterator[tuple[FakeGitLab, str]]:
    fake = FakeGitLab()
    async with _serve(fake.app()) as url:
        yield fake, url


async def _git_init(project: Path) -> None:
    proc = await asyncio.create_subprocess_exec("git", "init", "-q", str(project), stdout=asyncio.subprocess.DEVNULL)
    assert await proc.wait() == 0


async def test_zip_upload_with_exclude_and_untracked(helper: HelperEnv, gitlab: tuple[FakeGitLab, str]) -> None:
    fake, url = gitlab
    project = helper.project_dir
    await _git_init(project)
    (project / "coverage/tmp").mkdir(parents=True)
    (project / "coverage/index.html").write_text("<html/>")
    (project / "coverage/tmp/scratch.log").write_text("noise")
    (project / "notes.txt").write_text("untracked")
    entry = ArtifactEntry(
        name="my-report",
        paths=("coverage/",),
        exclude=("coverage/tmp/**",),
        untracked=True,
        expire_in="1 week",
    )
    run = await helper.run(
        "artifacts-upload", helper.plan(server_url=url, artifacts=(entry,)), "--job-status", "success"
    )
    run.assert_ok()
    assert 'Uploading artifacts as "archive" to coordinator... 201 Created' in run.output
    assert TOKEN not in run.output
    [upload] = fake.uploads
    assert upload.query == {"artifact_format": "zip", "artifact_type": "archive", "expire_in": "1 week"}
    assert upload.token == TOKEN and upload.chunked
    [(name, filename, body)] = upload.parts
    assert (name, filename) == ("file", "my-report.zip")
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        files = sorted(n for n in zf.namelist() if not n.endswith("/"))
    assert files == ["coverage/index.html", "notes.txt"]


async def test_junit_report_as_gzip_members(helper: HelperEnv, gitlab: tuple[FakeGitLab, str]) -> None:
    fake, url = gitlab
    (helper.project_dir / "reports/unit").mkdir(parents=True)
    (helper.project_dir / "reports/unit/a.xml").write_text("<testsuite name='a'/>")
    (helper.project_dir / "reports/b.xml").write_text("<testsuite name='b'/>")
    entry = ArtifactEntry(
        name="junit",
        paths=("reports/**/*.xml",),
        when=When.ALWAYS,
        artifact_type="junit",
        artifact_format=ArtifactFormat.GZIP,
    )
    plan = helper.plan(server_url=url, artifacts=(entry,))
    (await helper.run("artifacts-upload", plan, "--job-status", "failed")).assert_ok()
    [upload] = fake.uploads
    assert upload.query["artifact_format"] == "gzip" and upload.query["artifact_type"] == "junit"
    assert upload.parts[0][1] == "junit.gz"
    members = read_gzip_members(io.BytesIO(upload.parts[0][2]))
    assert [(m.name, m.comment, data) for m, data in members] == [
        ("b.xml", "reports/b.xml", b"<testsuite name='b'/>"),
        ("a.xml", "reports/unit/a.xml", b"<testsuite name='a'/>"),
    ]
    assert gzip.decompress(upload.parts[0][2]).startswith(b"<testsuite")  # standard gzip readers agree


async def test_raw_needs_exactly_one_file(helper: HelperEnv, gitlab: tuple[FakeGitLab, str]) -> None:
    fake, url = gitlab
    (helper.project_dir).mkdir(parents=True)
    (helper.project_dir / "a.env").write_text("A=1\n")
    (helper.project_dir / "b.env").write_text("B=1\n")
    one = ArtifactEntry(name="build.env", paths=("a.env",), artifact_type="dotenv", artifact_format=ArtifactFormat.RAW)
    (
        await helper.run("artifacts-upload", helper.plan(server_url=url, artifacts=(one,)), "--job-status", "success")
    ).assert_ok()
    assert fake.uploads[0].parts[0][1:] == ("build.env", b"A=1\n")
    two = ArtifactEntry(paths=("*.env",), artifact_format=ArtifactFormat.RAW)
    run = await helper.run("artifacts-upload", helper.plan(server_url=url, artifacts=(two,)), "--job-status", "success")
    assert run.returncode == 1
    assert "ERROR: artifact format raw needs exactly one file, 2 matched" in run.output


@pytest.mark.parametrize(
    ("statuses", "attempts", "code", "requests", "text"),
    [
        ([413], 3, 1, 1, "the archive is too large for the server (413 Request Entity Too Large)"),
        ([403], 3, 1, 1, "failed: 403 Forbidden"),
        ([502, 503], 3, 0, 3, "retrying in"),
        ([500, 500, 500], 3, 1, 3, "failed: 500 Internal Server Error"),
    ],
    ids=["413-no-retry", "403-no-retry", "5xx-then-success", "5xx-gives-up"],
)
async def test_upload_status_handling(
    helper: HelperEnv,
    gitlab: tuple[FakeGitLab, str],
    statuses: list[int],
    attempts: int,
    code: int,
    requests: int,
    text: str,
) -> None:
    fake, url = gitlab
    fake.upload_statuses = list(statuses)
    helper.project_dir.mkdir(parents=True)
    (helper.project_dir / "out.txt").write_text("x")
    plan = helper.plan(server_url=url, artifacts=(ArtifactEntry(paths=("out.txt",)),), upload_attempts=attempts)
    run = await helper.run("artifacts-upload", plan, "--job-status", "success")
    assert run.returncode == code, run.output
    assert len(fake.uploads) == requests
    assert text in run.output
    assert "Traceback" not in run.output


async def test_upload_follows_307_to_another_host(helper: HelperEnv, gitlab: tuple[FakeGitLab, str]) -> None:
    fake, url = gitlab
    other = FakeGitLab()
    async with _serve(other.app()) as other_url:
        fake.redirect_to = other_url
        helper.project_dir.mkdir(parents=True)
        (helper.project_dir / "out.txt").write_text("x")
        plan = helper.plan(server_url=url, artifacts=(ArtifactEntry(paths=("out.txt",)),))
        (await helper.run("artifacts-upload", plan, "--job-status", "success")).assert_ok()
    assert len(fake.uploads) == 1 and len(other.uploads) == 1
    assert other.uploads[0].token == TOKEN


async def test_nothing_to_upload_and_when(helper: HelperEnv, gitlab: tuple[FakeGitLab, str]) -> None:
    fake, url = gitlab
    helper.project_dir.mkdir(parents=True)
    entries = (
        ArtifactEntry(paths=("missing/",)),
        ArtifactEntry(paths=("*",), when=When.ON_FAILURE),
    )
    run = await helper.run(
        "artifacts-upload", helper.plan(server_url=url, artifacts=entries), "--job-status", "success"
    )
    run.assert_ok()
    assert "WARNING: No files to upload" in run.output
    assert fake.uploads == []


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buffer.getvalue()


async def test_download_follows_redirect_without_token(helper: HelperEnv, gitlab: tuple[FakeGitLab, str]) -> None:
    fake, url = gitlab
    fake.artifacts[11] = _zip({"dist/app.js": "js"})
    report = gzip.compress(b"<xml/>")
    fake.artifacts[12] = report
    deps = (DependencyEntry(id=11, name="build"), DependencyEntry(id=12, name="report", filename="r.gz"))
    run = await helper.run("artifacts-download", helper.plan(server_url=url, dependencies=deps))
    run.assert_ok()
    assert "Downloading artifacts for build (11)..." in run.output
    assert (helper.project_dir / "dist/app.js").read_text() == "js"
    assert (helper.project_dir / "artifacts").read_bytes() == b"<xml/>"  # a member without name
    assert fake.downloads == [
        ("/api/v4/jobs/11/artifacts", TOKEN),
        ("/storage/11", None),
        ("/api/v4/jobs/12/artifacts", TOKEN),
        ("/storage/12", None),
    ]
    assert TOKEN not in run.output


@pytest.mark.parametrize(
    ("artifact", "token", "text"),
    [
        (None, TOKEN, "ERROR: artifacts of lint (13): 404 Not Found: the artifacts are expired or missing"),
        (b"x", "bad-token", "ERROR: artifacts of lint (13): 401 Unauthorized: the job token was refused"),
        (_zip({"../../evil.sh": "rm -rf"}), TOKEN, "escapes the project directory"),
    ],
    ids=["404", "401", "escape"],
)
async def test_download_failures(
    helper: HelperEnv, gitlab: tuple[FakeGitLab, str], artifact: bytes | None, token: str, text: str
) -> None:
    fake, url = gitlab
    if artifact is not None:
        fake.artifacts[13] = artifact
    plan = helper.plan(
        server_url=url, dependencies=(DependencyEntry(id=13, name="lint"),), artifact_download_attempts=3
    )
    run = await helper.run("artifacts-download", plan, token=token)
    assert run.returncode == 1
    assert text in run.output
    assert not (helper.builds_dir / "evil.sh").exists()
    assert len([d for d in fake.downloads if d[0].startswith("/api")]) == 1  # 4xx is not retried


async def test_download_network_failure_is_retried_and_names_the_dependency(helper: HelperEnv) -> None:
    plan = helper.plan(
        server_url="http://127.0.0.1:9",
        dependencies=(DependencyEntry(id=5, name="build"),),
        artifact_download_attempts=2,
    )
    run = await helper.run("artifacts-download", plan)
    assert run.returncode == 1
    assert "retrying in 0.01s" in run.output
    assert "ERROR: artifacts of build (5): http://127.0.0.1:9/api/v4/jobs/5/artifacts:" in run.output
    assert "Traceback" not in run.output
