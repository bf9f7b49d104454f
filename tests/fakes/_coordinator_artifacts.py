"""The artifact endpoints (protocol §8) and the fake object storage behind them.

Owns ``POST /jobs/:id/artifacts`` (a streamed multipart upload with exactly one ``file`` part,
the size limit, one artifact per type), ``GET /jobs/:id/artifacts`` (dependency download with a
running job's token, proxied or redirected to object storage for direct downloads) and
``GET /object-storage/...``, a stand-in for a pre-signed object-store URL that refuses requests
still carrying ``JOB-TOKEN`` (a runner must drop it when following the redirect).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from ._coordinator_http import HttpFailure, is_true, route_id
from ._coordinator_jobs import authenticate_job, job_token
from ._coordinator_model import ARTIFACT_FORMATS, ARTIFACT_TYPES, Archive, FakeJob, UploadedArtifact
from ._coordinator_state import CoordinatorState

__all__ = ["ArtifactApi", "object_storage_url"]

_CHUNK = 64 * 1024
_FORM_PARAMS = frozenset({"token", "expire_in", "artifact_type", "artifact_format", "accessibility"})


@dataclass
class _Form:
    """What a multipart upload carried."""

    data: bytearray = field(default_factory=bytearray)
    filename: str = ""
    file_parts: int = 0
    stray_files: int = 0  # file parts not named "file"
    too_large: bool = False
    fields: dict[str, str] = field(default_factory=dict)


def object_storage_url(base_url: str, job_id: int, archive: Archive) -> str:
    """Return the "pre-signed" object-storage URL of a job's archive on the fake."""
    name = quote(archive.filename)
    query = f"X-Amz-Expires=600&X-Amz-Signature={archive.signature}"
    return f"{base_url}/object-storage/artifacts/{job_id}/{name}?{query}"


class ArtifactApi:
    """Handlers of ``/api/v4/jobs/:id/artifacts`` and of the object storage."""

    def __init__(self, state: CoordinatorState) -> None:
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v4/jobs/{id}/artifacts", self.upload, name="artifacts_upload"),
            web.get(
                "/api/v4/jobs/{id}/artifacts", self.download, name="artifacts_download", allow_head=False
            ),
            web.get("/object-storage/artifacts/{id}/{filename}", self.object_storage, name="object_storage"),
        ]

    async def upload(self, request: web.Request) -> web.StreamResponse:
        """Store one artifact of the running job: 201, 400, 403 or 413."""
        job = authenticate_job(self.state, route_id(request), job_token(request))
        if request.content_type != "multipart/form-data":
            raise HttpFailure(400, "400 Bad request - file is missing")
        form = await _read_form(request, self.state.artifact_size_limit)
        if form.too_large:
            raise HttpFailure(413, "file size has reached maximum size limit")
        if form.file_parts != 1 or form.stray_files:
            raise HttpFailure(400, "400 Bad request - exactly one file part named 'file' is expected")
        params = {**form.fields, **request.query}
        artifact = UploadedArtifact(
            artifact_type=params.get("artifact_type", "archive"),
            artifact_format=params.get("artifact_format", "zip"),
            expire_in=params.get("expire_in") or None,
            filename=form.filename,
            data=bytes(form.data),
        )
        if artifact.artifact_type not in ARTIFACT_TYPES:
            raise HttpFailure(400, "400 Bad request - artifact_type does not have a valid value")
        if artifact.artifact_format not in ARTIFACT_FORMATS:
            raise HttpFailure(400, "400 Bad request - artifact_format does not have a valid value")
        self._store(job, artifact)
        return web.Response(status=201, text="201")

    async def download(self, request: web.Request) -> web.StreamResponse:
        """Serve a job's archive to a running job (200), or redirect a direct download (302)."""
        consumer = self.state.job_by_token(job_token(request))
        if consumer is None or not consumer.is_processing:
            raise HttpFailure(401, "401 Unauthorized")
        job_id = route_id(request)
        if job_id not in self.state.jobs and job_id not in self.state.archives:
            raise HttpFailure(403, "403 Forbidden")
        archive = self.state.archives.get(job_id)
        if archive is None:
            raise HttpFailure(404, "404 Not Found")
        # present_artifacts_file!: object storage + direct_download=true -> redirect, else proxy
        if archive.in_object_storage and is_true(request.query.get("direct_download", "false")):
            location = object_storage_url(self.state.url, job_id, archive)
            return web.Response(status=302, headers={"Location": location})
        return _archive_response(archive)

    async def object_storage(self, request: web.Request) -> web.StreamResponse:
        """Serve a redirected download like S3 would, refusing GitLab credentials."""
        if "JOB-TOKEN" in request.headers:
            return _s3_error(403, "AccessDenied", "a JOB-TOKEN header was sent to object storage")
        archive = self.state.archives.get(route_id(request))
        if (
            archive is None
            or not archive.in_object_storage
            or archive.filename != request.match_info["filename"]
        ):
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        if request.query.get("X-Amz-Signature") != archive.signature:
            return _s3_error(
                403, "SignatureDoesNotMatch", "The request signature we calculated does not match."
            )
        return _archive_response(archive)

    def _store(self, job: FakeJob, artifact: UploadedArtifact) -> None:
        same_type = next((a for a in job.artifacts if a.artifact_type == artifact.artifact_type), None)
        if same_type is not None:
            if _digest(same_type.data) != _digest(artifact.data):
                raise HttpFailure(400, "another artifact of the same type already exists")
            return  # the same bytes again: a silent success
        job.artifacts.append(artifact)
        if artifact.artifact_type == "archive":
            self.state.archives[job.id] = Archive(data=artifact.data, filename=artifact.filename)


async def _read_form(request: web.Request, limit: int) -> _Form:
    """Read a multipart body part by part, keeping at most ``limit`` bytes of the file."""
    form = _Form()
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                form.stray_files += 1  # a nested multipart
                await part.release()
            elif part.filename is not None or part.name == "file":
                await _read_file_part(part, form, limit)
            elif part.name in _FORM_PARAMS:
                form.fields[part.name] = await part.text()
            else:
                await part.release()
    except ValueError as exc:  # aiohttp's malformed-multipart errors
        raise HttpFailure(400, f"400 Bad request - malformed multipart body: {exc}") from None
    return form


async def _read_file_part(part: BodyPartReader, form: _Form, limit: int) -> None:
    if part.name != "file":
        form.stray_files += 1
        await part.release()
        return
    form.file_parts += 1
    form.filename = part.filename or ""
    keep = form.file_parts == 1
    while chunk := await part.read_chunk(_CHUNK):
        if not keep or form.too_large:
            continue
        if len(form.data) + len(chunk) > limit:
            form.too_large = True
            form.data.clear()
        else:
            form.data += chunk


def _archive_response(archive: Archive) -> web.Response:
    disposition = f"attachment; filename=\"{archive.filename}\"; filename*=UTF-8''{quote(archive.filename)}"
    return web.Response(
        body=archive.data,
        content_type="application/octet-stream",
        headers={"Content-Disposition": disposition},
    )


def _s3_error(status: int, code: str, message: str) -> web.Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
    body += "</Error>"
    return web.Response(status=status, text=body, content_type="application/xml")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
