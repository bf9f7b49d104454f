"""A git smart-HTTP server for tests: real ``git http-backend`` (CGI) behind aiohttp.web.

It owns bare repositories under one root directory and serves them read-only at
``<base url>/<path>.git`` (``info/refs`` and ``git-upload-pack``, protocol v0/v1/v2), optionally
behind HTTP Basic authentication. It does not serve pushes or the LFS batch API.

Repositories are built without a worktree, with git plumbing (``hash-object``, ``update-index``
on a private index, ``write-tree``, ``commit-tree``), so a commit is one call and its sha is
deterministic for the same content, message and parent.

Use it standalone::

    async with serve_git(tmp_path / "git") as (server, base):
        repo = server.create_repo("group/project", {"README.md": "hello\\n"})
        sha = repo.commit({"src/a.py": "print(1)\\n", "README.md": None})
        # git clone f"{base}/group/project.git"

or mount it next to other routes with :meth:`GitServer.add_routes`. Every request is recorded in
:attr:`GitServer.requests` (method, repository path, service, Basic user name) so tests can check
who fetched what, and with which credentials.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import os
import subprocess
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from skyrunner.pipeline._githttp import read_cgi_headers

__all__ = ["GitRepo", "GitRequest", "GitServer", "serve_git"]

Authorize = Callable[[str, str], bool]

# Fixed identity and clock: the same commit call gives the same sha in every run.
_COMMIT_ENV: Mapping[str, str] = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_AUTHOR_DATE": "1767225600 +0000",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "author@example.com",
    "GIT_COMMITTER_DATE": "1767225600 +0000",
}
_GITLINK_MODE = "160000"
_FILE_MODE = "100644"
_ZERO = "0" * 40


def _git(args: list[str], *, cwd: Path, env: Mapping[str, str] | None = None, data: bytes = b"") -> str:
    full_env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    done = subprocess.run(["git", *args], cwd=cwd, env=full_env, input=data, capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.decode(errors='replace')}")
    return done.stdout.decode().strip()


@dataclass
class GitRepo:
    """A bare repository served at ``<base url>/<path>.git``."""

    path: str
    dir: Path

    def url(self, base: str) -> str:
        """Return the clone URL of this repository on a server at ``base``."""
        return f"{base.rstrip('/')}/{self.path}.git"

    def head(self, branch: str = "main") -> str | None:
        """Return the sha at the tip of ``branch``, or None when it does not exist."""
        try:
            return _git(["rev-parse", "--verify", "-q", f"refs/heads/{branch}"], cwd=self.dir)
        except RuntimeError:
            return None

    def commit(self, files: dict[str, str | bytes | None], message: str = "commit", branch: str = "main") -> str:
        """Commit ``files`` on top of ``branch`` (None deletes a file); return the new sha."""
        return self._commit(files, {}, message, branch)

    def set_ref(self, ref: str, sha: str) -> None:
        """Point ``ref`` (e.g. ``refs/pipelines/12`` or ``refs/tags/v1``) at ``sha``."""
        _git(["update-ref", ref, sha], cwd=self.dir)

    def add_submodule(self, path: str, url: str, sha: str, message: str = "add submodule", branch: str = "main") -> str:
        """Add (or move) a submodule at ``path`` pinned to ``sha``; ``url`` may be relative.

        Writes the ``.gitmodules`` entry and the gitlink in one commit; return the new sha.
        """
        current = self.read_file(".gitmodules", branch) or b""
        entry = f'[submodule "{path}"]\n\tpath = {path}\n\turl = {url}\n'.encode()
        return self._commit({".gitmodules": current + entry}, {path: sha}, message, branch)

    def read_file(self, name: str, branch: str = "main") -> bytes | None:
        """Return the content of ``name`` at the tip of ``branch``, or None when absent."""
        if self.head(branch) is None:
            return None
        done = subprocess.run(
            ["git", "cat-file", "blob", f"refs/heads/{branch}:{name}"],
            cwd=self.dir,
            capture_output=True,
            check=False,
        )
        return done.stdout if done.returncode == 0 else None

    def _commit(
        self,
        files: Mapping[str, str | bytes | None],
        gitlinks: Mapping[str, str],
        message: str,
        branch: str,
    ) -> str:
        parent = self.head(branch)
        index = self.dir / f"index.{os.getpid()}.{id(self)}"
        env = {**_COMMIT_ENV, "GIT_INDEX_FILE": str(index)}
        try:
            _git(["read-tree", *([parent] if parent else ["--empty"])], cwd=self.dir, env=env)
            for name, content in files.items():
                self._stage(name, content, env)
            for name, sub_sha in gitlinks.items():
                info = f"{_GITLINK_MODE},{sub_sha},{name}"
                _git(["update-index", "--add", "--cacheinfo", info], cwd=self.dir, env=env)
            tree = _git(["write-tree"], cwd=self.dir, env=env)
        finally:
            index.unlink(missing_ok=True)
        parents = ["-p", parent] if parent else []
        sha = _git(["commit-tree", tree, *parents, "-m", message], cwd=self.dir, env=env)
        _git(["update-ref", f"refs/heads/{branch}", sha], cwd=self.dir)
        return sha

    def _stage(self, name: str, content: str | bytes | None, env: Mapping[str, str]) -> None:
        if content is None:
            # mode 0 removes the path; --force-remove would need a work tree
            _git(["update-index", "--index-info"], cwd=self.dir, env=env, data=f"0 {_ZERO}\t{name}\n".encode())
            return
        data = content.encode() if isinstance(content, str) else content
        blob = _git(["hash-object", "-w", "--stdin"], cwd=self.dir, env=env, data=data)
        _git(["update-index", "--add", "--cacheinfo", f"{_FILE_MODE},{blob},{name}"], cwd=self.dir, env=env)


@dataclass(frozen=True)
class GitRequest:
    """One request the server answered (``user`` is the Basic user name, if any)."""

    method: str
    repo: str
    service: str
    user: str | None
    status: int


@dataclass
class GitServer:
    """Bare repositories under ``root``, served by ``git http-backend``."""

    root: Path
    authorize: Authorize | None = None
    repos: dict[str, GitRepo] = field(default_factory=dict)
    requests: list[GitRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def create_repo(self, path: str, files: dict[str, str | bytes], branch: str = "main") -> GitRepo:
        """Create a bare repository at ``<root>/<path>.git`` with one commit of ``files`` (if any)."""
        repo_dir = self.root / f"{path}.git"
        repo_dir.mkdir(parents=True, exist_ok=False)
        _git(["init", "--bare", "-q", f"--initial-branch={branch}"], cwd=repo_dir)
        # Like Gitaly: let clients fetch any reachable commit (submodule update --depth needs it).
        _git(["config", "uploadpack.allowReachableSHA1InWant", "true"], cwd=repo_dir)
        _git(["config", "uploadpack.allowAnySHA1InWant", "true"], cwd=repo_dir)
        _git(["config", "uploadpack.allowFilter", "true"], cwd=repo_dir)
        repo = GitRepo(path=path, dir=repo_dir)
        if files:
            repo.commit(dict(files), message="initial commit", branch=branch)
        self.repos[path] = repo
        return repo

    def add_routes(self, app: web.Application) -> None:
        """Mount ``/{path}.git/info/refs`` and ``/{path}.git/git-upload-pack`` on ``app``."""
        app.router.add_get("/{repo:.+}.git/info/refs", self._handle)
        app.router.add_post("/{repo:.+}.git/git-upload-pack", self._handle)

    def _check_auth(self, request: web.Request) -> tuple[bool, str | None]:
        header = request.headers.get("Authorization", "")
        user: str | None = None
        password = ""
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            user, _, password = decoded.partition(":")
        if self.authorize is None:
            return True, user
        return user is not None and self.authorize(user, password), user

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        repo_path = request.match_info["repo"]
        service = request.query.get("service", request.path.rsplit("/", 1)[-1])
        ok, user = self._check_auth(request)
        status = 200
        if not ok:
            status = 401
            response: web.StreamResponse = web.Response(
                status=401, text="unauthorized", headers={"WWW-Authenticate": 'Basic realm="git"'}
            )
        elif repo_path not in self.repos:
            status = 404
            response = web.Response(status=404, text="repository not found")
        else:
            response = await self._run_backend(request, repo_path, user)
            status = response.status
        self.requests.append(GitRequest(request.method, repo_path, service, user, status))
        return response

    def _cgi_env(self, request: web.Request, repo_path: str, user: str | None) -> dict[str, str]:
        suffix = request.path.split(".git/", 1)[1]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.root),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": f"/{repo_path}.git/{suffix}",
            "REQUEST_METHOD": request.method,
            "QUERY_STRING": request.query_string,
            "CONTENT_TYPE": request.headers.get("Content-Type", ""),
            "REMOTE_ADDR": request.remote or "127.0.0.1",
        }
        if user:
            env["REMOTE_USER"] = user
        if "Git-Protocol" in request.headers:
            env["GIT_PROTOCOL"] = request.headers["Git-Protocol"]
        # No HTTP_CONTENT_ENCODING: aiohttp has already inflated a gzip request body (git gzips
        # large fetch negotiations, e.g. a fetch into an existing shallow clone).
        return env

    async def _run_backend(self, request: web.Request, repo_path: str, user: str | None) -> web.StreamResponse:
        # The whole request body is small (want/have lines); http-backend reads stdin to EOF.
        body = await request.read()
        proc = await asyncio.create_subprocess_exec(
            "git",
            "http-backend",
            env=self._cgi_env(request, repo_path, user),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert proc.stdin is not None and proc.stdout is not None
        # info/refs does not read its stdin and may exit before we write: that is fine
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            if body:
                proc.stdin.write(body)
                await proc.stdin.drain()
            proc.stdin.close()
        try:
            status, headers = await read_cgi_headers(proc.stdout)
            response = web.StreamResponse(status=status, headers=headers)
            await response.prepare(request)
            while chunk := await proc.stdout.read(65536):
                await response.write(chunk)
            await response.write_eof()
        finally:
            with contextlib.suppress(ProcessLookupError):
                if proc.returncode is None:
                    await proc.wait()
        return response


@contextlib.asynccontextmanager
async def serve_git(root: Path, authorize: Authorize | None = None) -> AsyncIterator[tuple[GitServer, str]]:
    """Serve a new :class:`GitServer` on 127.0.0.1 (a free port); yield it and its base URL."""
    server = GitServer(root=root, authorize=authorize)
    app = web.Application()
    server.add_routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
