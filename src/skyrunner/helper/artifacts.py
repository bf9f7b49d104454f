"""``artifacts-download`` and ``artifacts-upload``: the job's side of protocol §8 and §13.

Download: for each dependency, ``GET {server}/api/v4/jobs/{id}/artifacts`` with ``JOB-TOKEN``;
a redirect (object storage) is followed *without* the token; the body is streamed to a file,
its format told by magic bytes, and extracted into the project directory through the same safe
writer as caches. 401/403/404 fail at once; network errors and 5xx are retried
``artifact_download_attempts`` times.

Upload: for each entry whose ``when`` matches the job status, collect files (``paths`` minus
``exclude`` plus untracked), build the archive in a scratch file (zip, gzip members, or the one
raw file), and POST it as ``multipart/form-data`` with exactly one part, ``file``, generated on
the fly (chunked, constant memory). 201 is success; 413, 400, 401, 403, 404 and 405 fail without
retry; network errors and 5xx are retried ``upload_attempts`` times with backoff; a 307 moves the
upload to the ``Location``'s host. The token is only ever a request header.
"""

from __future__ import annotations

import functools
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode, urljoin

import httpx2

from skyrunner.errors import HelperError
from skyrunner.helper.archive import (
    ArchiveKind,
    Entry,
    EntryKind,
    create_archive,
    extract_archive,
    scan_entries,
)
from skyrunner.helper.console import Console
from skyrunner.helper.filesets import collect_files
from skyrunner.helper.plan import (
    ArtifactEntry,
    ArtifactFormat,
    DependencyEntry,
    HelperPlan,
    JobStatus,
    when_matches,
)
from skyrunner.helper.transfer import TransferError, fetch_to_file, make_client, retry_notice, send, with_retries
from skyrunner.helper.urls import display_url, switch_base

__all__ = ["download_artifacts", "upload_artifacts"]

_ARTIFACT_TIMEOUT_S = 3600.0
_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_REDIRECTS = 5
_CHUNK = 1 << 20
_NO_RETRY = {400: "bad request", 401: "unauthorized", 403: "forbidden", 404: "not found", 405: "not allowed"}
_SUFFIX = {ArtifactFormat.ZIP: ".zip", ArtifactFormat.GZIP: ".gz", ArtifactFormat.RAW: ""}


def _scratch_dir(plan: HelperPlan) -> Path:
    """``<project dir>.tmp``, gitlab-runner's per-job temporary directory (never archived)."""
    path = Path(plan.project_dir.rstrip("/") + ".tmp")
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- download ---------------------------------------------------------------------------------


def _fetch_dependency(client: httpx2.Client, plan: HelperPlan, dep: DependencyEntry, token: str, dest: Path) -> None:
    url = f"{plan.server_url.rstrip('/')}/api/v4/jobs/{dep.id}/artifacts?direct_download=true"
    headers = {"JOB-TOKEN": token}
    for _ in range(_MAX_REDIRECTS + 1):
        result = fetch_to_file(client, url, dest, headers)
        if result.status in _REDIRECTS and result.location:
            url, headers = urljoin(url, result.location), {}  # object storage must not see the token
            continue
        if result.status == 200:
            return
        what = f"artifacts of {dep.name} ({dep.id}): {result.status} {result.reason}".rstrip()
        if result.status == 404:
            raise HelperError(f"{what}: the artifacts are expired or missing")
        if result.status in (401, 403):
            raise HelperError(f"{what}: the job token was refused")
        raise TransferError(f"{what} from {display_url(url)}", status=result.status, retryable=result.status >= 500)
    raise HelperError(f"artifacts of {dep.name} ({dep.id}): more than {_MAX_REDIRECTS} redirects")


def download_artifacts(plan: HelperPlan, console: Console, token: str) -> None:
    """Download and extract the artifacts of every dependency, in order.

    Raises:
        HelperError: a dependency's artifacts could not be downloaded or extracted.
    """
    with make_client(plan.ca_file, _ARTIFACT_TIMEOUT_S) as client:
        for dep in plan.dependencies:
            console.notice(f"Downloading artifacts for {dep.name} ({dep.id})...")
            _download_one(client, plan, dep, token, console)


def _download_one(client: httpx2.Client, plan: HelperPlan, dep: DependencyEntry, token: str, console: Console) -> None:
    with tempfile.TemporaryDirectory(dir=_scratch_dir(plan), prefix="artifacts-") as scratch:
        dest = Path(scratch) / "artifacts"
        try:
            with_retries(
                functools.partial(_fetch_dependency, client, plan, dep, token, dest),
                attempts=plan.artifact_download_attempts,
                backoff_s=plan.retry_backoff_s,
                on_retry=retry_notice(console),
            )
        except TransferError as exc:
            if exc.status is not None:  # the message already names the dependency
                raise
            raise HelperError(f"artifacts of {dep.name} ({dep.id}): {exc}") from exc
        console.plain(f"Downloading artifacts from coordinator... ok  id={dep.id} responseStatus=200 OK")
        try:
            extract_archive(dest, Path(plan.project_dir))
        except HelperError as exc:
            raise HelperError(f"artifacts of {dep.name} ({dep.id}): {exc}") from exc


# --- upload -----------------------------------------------------------------------------------


def _build_archive(plan: HelperPlan, entry: ArtifactEntry, entries: list[Entry], scratch: Path) -> Path:
    project_dir = Path(plan.project_dir)
    if entry.artifact_format is ArtifactFormat.RAW:
        files = [e for e in entries if e.kind is EntryKind.FILE]
        if len(files) != 1:
            raise HelperError(f"artifact format raw needs exactly one file, {len(files)} matched")
        return project_dir / files[0].name
    kind = ArchiveKind.ZIP if entry.artifact_format is ArtifactFormat.ZIP else ArchiveKind.GZIP
    dest = scratch / f"upload{_SUFFIX[entry.artifact_format]}"
    create_archive(dest, project_dir, entries, kind, plan.artifact_compression)
    return dest


def _filename(entry: ArtifactEntry) -> str:
    return (entry.name or "artifacts") + _SUFFIX[entry.artifact_format]


def multipart_body(path: Path, filename: str, boundary: str) -> Iterator[bytes]:
    """Yield a ``multipart/form-data`` body with one part ``file`` holding ``path``, 1 MiB at a time."""
    safe = filename.replace("\\", "_").replace('"', "%22").replace("\r", "").replace("\n", "")
    yield (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{safe}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    with open(path, "rb") as source:
        while chunk := source.read(_CHUNK):
            yield chunk
    yield f"\r\n--{boundary}--\r\n".encode()


def _upload_url(plan: HelperPlan, entry: ArtifactEntry) -> str:
    query = {
        "artifact_format": entry.artifact_format.value,
        "artifact_type": entry.artifact_type,
        "expire_in": entry.expire_in,
    }
    params = urlencode({k: v for k, v in query.items() if v}, quote_via=quote)
    return f"{plan.server_url.rstrip('/')}/api/v4/jobs/{plan.job_id}/artifacts?{params}"


class _Uploader:
    """One entry's POST, retried; remembers a base URL switched by a 307."""

    def __init__(self, client: httpx2.Client, console: Console, token: str, job_id: int) -> None:
        self.client, self.console, self.token, self.job_id = client, console, token, job_id

    def post(self, url: str, archive: Path, entry: ArtifactEntry) -> str:
        for _ in range(_MAX_REDIRECTS + 1):
            boundary = secrets.token_hex(16)
            headers = {"JOB-TOKEN": self.token, "Content-Type": f"multipart/form-data; boundary={boundary}"}
            body = multipart_body(archive, _filename(entry), boundary)
            result = send(self.client, "POST", url, content=body, headers=headers)
            status = f"{result.status} {result.reason}".strip()
            self.console.plain(
                f'Uploading artifacts as "{entry.artifact_type}" to coordinator... {status}'
                f"  id={self.job_id} responseStatus={status}"
            )
            if result.status == 307 and result.location:
                url = switch_base(url, urljoin(url, result.location))
                continue
            return self._check(result.status, status, result.body, entry)
        raise HelperError(f"uploading artifacts: more than {_MAX_REDIRECTS} redirects")

    @staticmethod
    def _check(code: int, status: str, body: str, entry: ArtifactEntry) -> str:
        what = f'uploading artifacts as "{entry.artifact_type}"'
        if code in (200, 201):
            return status
        if code == 413:
            raise HelperError(f"{what} failed: the archive is too large for the server ({status})")
        if code in _NO_RETRY:
            raise HelperError(f"{what} failed: {status}: {body}" if body else f"{what} failed: {status}")
        raise TransferError(f"{what} failed: {status}", status=code, retryable=code >= 500 or code == 429)


def _upload_one(plan: HelperPlan, entry: ArtifactEntry, uploader: _Uploader, console: Console) -> None:
    project_dir = Path(plan.project_dir)
    names = collect_files(project_dir, entry.paths, console, exclude=entry.exclude, untracked=entry.untracked)
    entries = scan_entries(project_dir, names)
    if not any(e.kind is EntryKind.FILE for e in entries):
        console.warning("No files to upload")
        return
    with tempfile.TemporaryDirectory(dir=_scratch_dir(plan), prefix="upload-") as scratch:
        archive = _build_archive(plan, entry, entries, Path(scratch))
        with_retries(
            functools.partial(uploader.post, _upload_url(plan, entry), archive, entry),
            attempts=plan.upload_attempts,
            backoff_s=plan.retry_backoff_s,
            on_retry=retry_notice(console),
        )


def upload_artifacts(plan: HelperPlan, console: Console, status: JobStatus, token: str) -> None:
    """Upload every artifact entry whose ``when`` matches ``status``.

    Raises:
        HelperError: an upload was refused or kept failing.
    """
    with make_client(plan.ca_file, _ARTIFACT_TIMEOUT_S) as client:
        uploader = _Uploader(client, console, token, plan.job_id)
        for entry in plan.artifacts:
            if not when_matches(entry.when, status) or not (entry.paths or entry.untracked):
                continue
            console.notice("Uploading artifacts...")
            _upload_one(plan, entry, uploader, console)
