"""Serving one bare repository read-only over git's smart HTTP protocol, behind Basic auth.

``git http-backend`` (CGI) does the protocol work (``info/refs`` and ``git-upload-pack``,
protocol v0 to v2); this module mounts it on an aiohttp application at ``/<project>.git/...``,
checks ``Authorization: Basic`` against a callback (the local coordinator accepts
``gitlab-ci-token`` with the token of a running job, as GitLab does), and streams the answer.
Pushes are not served.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Final

from aiohttp import web

__all__ = ["GitBackend"]

_CHUNK: Final = 64 * 1024
_UNAUTHORIZED: Final = {"WWW-Authenticate": 'Basic realm="skyrunner exec"'}


def _basic_credentials(header: str) -> tuple[str, str] | None:
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


class GitBackend:
    """``repo`` (a bare repository) served at ``/<project_path>.git`` to authorised clients."""

    def __init__(self, repo: Path, project_path: str, authorize: Callable[[str, str], bool]) -> None:
        self._repo = repo
        self._project_path = project_path.strip("/")
        self._authorize = authorize

    def add_routes(self, app: web.Application) -> None:
        base = f"/{self._project_path}.git"
        app.router.add_get(f"{base}/info/refs", self._handle)
        app.router.add_post(f"{base}/git-upload-pack", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        credentials = _basic_credentials(request.headers.get("Authorization", ""))
        if credentials is None or not self._authorize(*credentials):
            return web.Response(status=401, text="HTTP Basic: Access denied\n", headers=_UNAUTHORIZED)
        if request.query.get("service") == "git-receive-pack":
            return web.Response(status=403, text="pushing is not supported\n")
        body = await request.read()
        process = await asyncio.create_subprocess_exec(
            "git", "http-backend", env=self._cgi_env(request), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        assert process.stdin is not None and process.stdout is not None
        try:
            # info/refs does not read its input and may exit before we write: that is fine
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                if body:
                    process.stdin.write(body)
                    await process.stdin.drain()
                process.stdin.close()
            status, headers = await read_cgi_headers(process.stdout)
            response = web.StreamResponse(status=status, headers=headers)
            await response.prepare(request)
            while chunk := await process.stdout.read(_CHUNK):
                await response.write(chunk)
            await response.write_eof()
            await process.wait()
            return response
        finally:
            if process.returncode is None:  # the client went away: stop the backend
                # os.kill, not Process.kill: its poll() would reap the child behind asyncio's back
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
                await process.wait()

    def _cgi_env(self, request: web.Request) -> dict[str, str]:
        suffix = request.path.split(".git/", 1)[1]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self._repo),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_PROJECT_ROOT": str(self._repo.parent),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": f"/{self._repo.name}/{suffix}",
            "REQUEST_METHOD": request.method,
            "QUERY_STRING": request.query_string,
            "CONTENT_TYPE": request.headers.get("Content-Type", ""),
            "REMOTE_ADDR": request.remote or "127.0.0.1",
            "REMOTE_USER": "gitlab-ci-token",
        }
        if "Git-Protocol" in request.headers:
            env["GIT_PROTOCOL"] = request.headers["Git-Protocol"]
        # no HTTP_CONTENT_ENCODING: aiohttp has already inflated a gzip request body
        return env


async def read_cgi_headers(stream: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """Read a CGI response's header block (RFC 3875 §6): its ``Status`` and the other headers."""
    status = 200
    headers: dict[str, str] = {}
    while True:
        line = (await stream.readline()).decode("latin-1").rstrip("\r\n")
        if not line:
            return status, headers
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        else:
            headers[name.strip()] = value.strip()
