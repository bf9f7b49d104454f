"""The git test server itself: clone, fetch of a pipeline ref, auth, submodules, 404."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from tests.fakes.gitserver import serve_git


async def _git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(cwd or Path.cwd()),
        "PATH": "/usr/bin:/bin",
    }
    return await asyncio.to_thread(subprocess.run, ["git", *args], cwd=cwd, env=env, capture_output=True, check=False)


async def test_clone_and_fetch_a_pipeline_ref(tmp_path: Path) -> None:
    async with serve_git(tmp_path / "srv") as (server, base):
        repo = server.create_repo("group/project", {"README.md": "hello\n", "bin/x": b"\x00\x01"})
        first = repo.head()
        second = repo.commit({"README.md": None, "src/a.py": "print(1)\n"}, message="second")
        repo.set_ref("refs/pipelines/12", first or "")
        done = await _git("clone", "-q", "--depth", "1", repo.url(base), str(tmp_path / "w"), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "w/src/a.py").read_text() == "print(1)\n"
        assert not (tmp_path / "w/README.md").exists()
        head = await _git("rev-parse", "HEAD", cwd=tmp_path / "w")
        assert head.stdout.decode().strip() == second
        fetched = await _git("fetch", "-q", "origin", "+refs/pipelines/12:refs/pipelines/12", cwd=tmp_path / "w")
        assert fetched.returncode == 0, fetched.stderr
        assert server.requests and all(r.status == 200 for r in server.requests)


async def test_basic_auth_and_missing_repo(tmp_path: Path) -> None:
    async with serve_git(tmp_path / "srv", authorize=lambda u, p: (u, p) == ("gitlab-ci-token", "t0k")) as (
        server,
        base,
    ):
        repo = server.create_repo("g/p", {"a": "1"})
        denied = await _git("ls-remote", repo.url(base), cwd=tmp_path)
        assert denied.returncode != 0
        assert server.requests[-1].status == 401
        url = repo.url(base).replace("http://", "http://gitlab-ci-token:t0k@")
        allowed = await _git("ls-remote", url, cwd=tmp_path)
        assert allowed.returncode == 0, allowed.stderr
        assert server.requests[-1].user == "gitlab-ci-token"
        missing = await _git("ls-remote", url.replace("g/p", "g/nope"), cwd=tmp_path)
        assert missing.returncode != 0


async def test_submodule_with_relative_url(tmp_path: Path) -> None:
    async with serve_git(tmp_path / "srv") as (server, base):
        lib = server.create_repo("group/lib", {"lib.txt": "lib\n"})
        app = server.create_repo("group/app", {"app.txt": "app\n"})
        app.add_submodule("vendor/lib", "../lib.git", lib.head() or "")
        done = await _git("clone", "-q", "--recurse-submodules", app.url(base), str(tmp_path / "w"), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "w/vendor/lib/lib.txt").read_text() == "lib\n"
