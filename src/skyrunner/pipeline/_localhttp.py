"""The LocalCoordinator's HTTP side: artifacts and git smart HTTP on aiohttp.web, on 127.0.0.1.

Routes (what the helper reaches from inside a job; who may use them is the coordinator's call):

* ``POST /api/v4/jobs/:id/artifacts``: one multipart ``file`` part, streamed to a ``.part`` file
  in the directory :meth:`LocalCoordinator.artifact_upload` allows, then renamed;
* ``GET /api/v4/jobs/:id/artifacts``: the file :meth:`LocalCoordinator.artifact_download` names;
* ``/<project>.git/...``: the snapshot repository over git smart HTTP (``_githttp``).

A refusal (:class:`~skyrunner.pipeline.local.HttpRefusal`) becomes its status and GitLab's text.
This module is the only one of ``skyrunner exec`` that imports aiohttp, which is slow to import;
the coordinator loads it in a thread once it runs (see :mod:`skyrunner.pipeline.local`).
"""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path
from typing import BinaryIO, Final

from aiohttp import BodyPartReader, web

from skyrunner.errors import SkyrunnerError
from skyrunner.pipeline._githttp import GitBackend
from skyrunner.pipeline.local import HttpRefusal, LocalCoordinator

__all__ = ["serve_http"]

_CHUNK: Final = 256 * 1024
_ARTIFACTS: Final = "/api/v4/jobs/{id:[0-9]+}/artifacts"


async def serve_http(coordinator: LocalCoordinator, listening: socket.socket) -> web.AppRunner:
    """Serve ``coordinator``'s routes on the ``listening`` socket; clean the runner up to stop."""
    app = web.Application(client_max_size=1024**4)
    routes = _Routes(coordinator)
    app.router.add_post(_ARTIFACTS, routes.upload)
    app.router.add_get(_ARTIFACTS, routes.download, allow_head=False)
    GitBackend(coordinator.repo, coordinator.project_path, coordinator.git_authorized).add_routes(app)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.SockSite(runner, listening).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


class _Routes:
    def __init__(self, coordinator: LocalCoordinator) -> None:
        self._coordinator = coordinator

    async def upload(self, request: web.Request) -> web.StreamResponse:
        job_id = int(request.match_info["id"])
        artifact_type = request.query.get("artifact_type", "archive")
        try:
            target_dir = self._coordinator.artifact_upload(job_id, request.headers.get("JOB-TOKEN", ""), artifact_type)
        except HttpRefusal as refusal:
            return web.Response(status=refusal.status, text=refusal.text)
        if request.content_type != "multipart/form-data":
            return web.Response(status=400, text="400 Bad request - file is missing")
        try:
            stored = await _store_file_part(request, target_dir)
        except _BadUpload as exc:
            return web.Response(status=400, text=f"400 Bad request - {exc}")
        self._coordinator.artifact_stored(job_id, artifact_type, stored)
        return web.Response(status=201, text="201 Created")

    async def download(self, request: web.Request) -> web.StreamResponse:
        job_id = int(request.match_info["id"])
        try:
            archive = self._coordinator.artifact_download(job_id, request.headers.get("JOB-TOKEN", ""))
        except HttpRefusal as refusal:
            return web.Response(status=refusal.status, text=refusal.text)
        return web.FileResponse(archive, headers={"Content-Type": "application/octet-stream"})


class _BadUpload(SkyrunnerError):
    """The multipart body is not one ``file`` part."""


def _safe_name(filename: str | None) -> str:
    name = os.path.basename((filename or "").replace("\\", "/")).strip()
    return name if name not in ("", ".", "..") else "artifacts"


async def _store_file_part(request: web.Request, target_dir: Path) -> Path:
    """Stream the one ``file`` part of a multipart body into ``target_dir``; return the file."""
    stored: Path | None = None
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name != "file":
                if isinstance(part, BodyPartReader) and part.filename is None:
                    await part.release()
                    continue
                raise _BadUpload("exactly one file part named 'file' is expected")
            if stored is not None:
                raise _BadUpload("exactly one file part named 'file' is expected")
            stored = await _write_part(part, target_dir / _safe_name(part.filename))
    except ValueError as exc:  # aiohttp's malformed-multipart errors
        raise _BadUpload(f"malformed multipart body: {exc}") from None
    if stored is None:
        raise _BadUpload("file is missing")
    return stored


async def _write_part(part: BodyPartReader, target: Path) -> Path:
    partial = target.with_name(f".{target.name}.part")
    out = await asyncio.to_thread(_open_for_writing, partial)
    try:
        while chunk := await part.read_chunk(_CHUNK):
            await asyncio.to_thread(out.write, chunk)
    finally:
        out.close()
    partial.replace(target)
    return target


def _open_for_writing(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "wb")
