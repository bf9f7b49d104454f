"""The helper fork server and its client, as real processes: same output, codes, signals, cleanup."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from skyrunner.executors.helper_server import CLIENT_SCRIPT, HelperServer
from skyrunner.helper.forkclient import encode_request
from skyrunner.helper.forkserver import decode_request
from skyrunner.helper.plan import GitPlan, GitStrategy
from tests.fakes.gitserver import serve_git
from tests.integration.helper.conftest import TOKEN, HelperEnv


@pytest.fixture(scope="module")
def server() -> Iterator[HelperServer]:
    running = HelperServer()
    assert running.start() is not None
    yield running
    running.close()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def _wait_for(condition: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.02)
    return False


def _client(helper: HelperEnv, sock: str, *args: str, token: str | None = TOKEN) -> subprocess.Popen[bytes]:
    env = {**helper.env(token), "SKYRUNNER_HELPER_SOCKET": sock}
    return subprocess.Popen(
        [sys.executable, "-I", "-S", CLIENT_SCRIPT, *args],
        env=env, cwd=helper.tmp, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _direct(helper: HelperEnv, *args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "skyrunner.helper", *args],
        env=helper.env(token), cwd=helper.tmp, stdin=subprocess.DEVNULL, capture_output=True, check=False,
    )  # fmt: skip


def _socket(server: HelperServer) -> str:
    path = server.start()
    assert path is not None
    return path


def test_a_request_survives_encoding_with_any_bytes() -> None:
    env = {b"A": b"1", b"WITH_EQUALS": b"x=y=z", b"LATIN1": b"caf\xe9", b"EMPTY": b""}
    encoded = encode_request([b"sources", b"--plan", b"p\xffn.json"], b"/tmp/d\xfcr", env, 0o027)
    body = encoded[4:]
    assert int.from_bytes(encoded[:4], "big") == len(body)
    request = decode_request(body, [7, 8, 9])
    assert request.argv == ["sources", "--plan", os.fsdecode(b"p\xffn.json")]
    assert request.cwd == os.fsdecode(b"/tmp/d\xfcr")
    assert request.env == {os.fsdecode(k): os.fsdecode(v) for k, v in env.items()}
    assert request.umask == 0o027
    assert request.fds == [7, 8, 9]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"other-format\x000\x00/\x000",
        b"skyrunner-helper/1\x000\x00/\x005\x00only-one",
        b"skyrunner-helper/1\x00x\x00/\x000",
    ],
)
def test_a_malformed_request_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError):
        decode_request(body, [0, 1, 2])


async def test_sources_through_the_server_prints_what_the_helper_prints(tmp_path: Path, server: HelperServer) -> None:
    sock = _socket(server)
    async with serve_git(tmp_path / "srv", authorize=lambda u, p: (u, p) == ("gitlab-ci-token", TOKEN)) as (git, base):
        repo = git.create_repo("group/project", {"README.md": "hello\n"})
        outputs = []
        for name, forked in (("direct", False), ("forked", True)):
            root = tmp_path / name
            for sub in ("builds", "cache", "home"):
                (root / sub).mkdir(parents=True)
            helper = HelperEnv(root, root / "builds", root / "cache", root / "home")
            plan = helper.plan(git=GitPlan(repo_url=repo.url(base), sha=repo.head() or "", ref="main", depth=1,
                                           refspecs=("+refs/heads/main:refs/remotes/origin/main",)))  # fmt: skip
            args = ("sources", "--plan", str(helper.write_plan(plan)))
            if forked:
                process = _client(helper, sock, *args)
                out, err = await asyncio.to_thread(process.communicate)
                code = process.returncode
            else:
                done = await asyncio.to_thread(_direct, helper, *args)
                out, err, code = done.stdout, done.stderr, done.returncode
            assert code == 0, out + err
            assert (helper.project_dir / "README.md").read_text() == "hello\n"
            outputs.append((out.replace(str(root).encode(), b"<root>"), err))
        assert outputs[0] == outputs[1]
        assert b"Checking out" in outputs[1][0]
        assert TOKEN.encode() not in outputs[1][0] + outputs[1][1]


@pytest.mark.parametrize(
    ("args", "code"),
    [(("sources", "--plan", "missing.json"), 1), (("sources",), 2), (("no-such-step", "--plan", "p"), 2)],
)
def test_exit_codes_and_both_streams_are_the_helpers(
    helper: HelperEnv, server: HelperServer, args: tuple[str, ...], code: int
) -> None:
    direct = _direct(helper, *args)
    process = _client(helper, _socket(server), *args)
    out, err = process.communicate(timeout=30)
    assert (process.returncode, out, err) == (direct.returncode, direct.stdout, direct.stderr)
    assert process.returncode == code
    assert (out + err).strip(), "the step says why it failed"


def test_working_directory_environment_and_umask_are_the_callers(helper: HelperEnv, server: HelperServer) -> None:
    plan = helper.plan(git=GitPlan(repo_url="http://127.0.0.1:9/g/p.git", sha="0" * 40, strategy=GitStrategy.EMPTY))
    helper.write_plan(plan, "relative.json")
    sock = _socket(server)
    env = {**helper.env(None), "SKYRUNNER_HELPER_SOCKET": sock}
    command = f"umask 077 && exec {sys.executable} -I -S {CLIENT_SCRIPT} sources --plan relative.json"
    done = subprocess.run(["sh", "-c", command], env=env, cwd=helper.tmp, capture_output=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr  # the relative plan path was found: cwd
    assert (helper.project_dir.stat().st_mode & 0o777) == 0o700  # made under the caller's umask
    download = subprocess.run(
        [sys.executable, "-I", "-S", CLIENT_SCRIPT, "artifacts-download", "--plan", "relative.json"],
        env=env, cwd=helper.tmp, capture_output=True, check=False,
    )  # fmt: skip
    assert download.returncode == 1
    assert b"CI_JOB_TOKEN is not set" in download.stdout  # the caller's environment, not the server's


def _hanging_git(helper: HelperEnv, listener: socket.socket) -> tuple[str, ...]:
    port = listener.getsockname()[1]
    plan = helper.plan(git=GitPlan(repo_url=f"http://127.0.0.1:{port}/g/p.git", sha="0" * 40, ref="main"))
    return ("sources", "--plan", str(helper.write_plan(plan)))


@pytest.mark.parametrize(("sent", "code"), [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGKILL, -signal.SIGKILL)])
def test_a_signal_to_the_client_reaches_the_step_and_nothing_is_left(
    helper: HelperEnv, server: HelperServer, sent: signal.Signals, code: int
) -> None:
    sock = _socket(server)
    server_pid = server.pid
    assert server_pid is not None
    with socket.create_server(("127.0.0.1", 0)) as listener:  # accepts nothing: git waits forever
        process = _client(helper, sock, *_hanging_git(helper, listener))
        assert _wait_for(lambda: _children(server_pid)), "the step runs in a child of the server"
        step = _children(server_pid)[0]
        assert _wait_for(lambda: _children(step)), "and has started git"
        process.send_signal(sent)
        process.communicate(timeout=30)
        assert process.returncode == code
        assert _wait_for(lambda: not _children(server_pid)), "the step and its git are gone"


def test_without_a_server_the_client_is_the_helper(helper: HelperEnv, tmp_path: Path) -> None:
    args = ("sources", "--plan", "missing.json")
    process = _client(helper, str(tmp_path / "no-server.sock"), *args)
    out, err = process.communicate(timeout=30)
    direct = _direct(helper, *args)
    assert (process.returncode, out, err) == (direct.returncode, direct.stdout, direct.stderr)


def test_the_server_stops_with_its_owner_and_leaves_no_socket() -> None:
    own = HelperServer()
    sock = own.start()
    pid = own.pid
    assert sock is not None and pid is not None and Path(sock).exists()
    own.close()
    assert own.pid is None
    assert not Path(sock).parent.exists()
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_the_lifeline_ending_stops_the_server(tmp_path: Path) -> None:
    sock = tmp_path / "helper.sock"
    command = [sys.executable, "-m", "skyrunner.helper.forkserver", str(sock)]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stdin is not None
        assert process.stdout.readline() == b"ready\n"
        process.stdin.close()  # what the runner's death does
        assert process.wait(timeout=10) == 0
