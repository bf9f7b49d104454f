"""The LocalCoordinator's in-process side (the Coordinator protocol), its git smart HTTP, and the
workspace's ids.

Its artifact endpoints are exercised end to end by ``tests/e2e/test_exec.py``; git over HTTP is
tested here, since ``skyrunner exec`` with the shell executor fetches the snapshot by path.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from skyrunner.errors import ApiAuthError, TraceRangeError
from skyrunner.job.coordinator import JobRef, JobUpdate
from skyrunner.pipeline.local import HttpRefusal, LocalCoordinator, LocalJobState
from skyrunner.pipeline.workspace import Workspace, WorkspaceBusy, log_file_name, open_workspace
from tests.unit.pipeline.conftest import git

TOKEN = "glcbt-secret-token"


def ref(job_id: int = 7, token: str = TOKEN) -> JobRef:
    return JobRef(job_id, SecretStr(token))


@pytest.fixture
def coordinator(tmp_path: Path) -> tuple[LocalCoordinator, list[tuple[int, bytes]]]:
    seen: list[tuple[int, bytes]] = []
    local = LocalCoordinator(Workspace(tmp_path), 3, "group/project", on_trace=lambda i, d: seen.append((i, d)))
    local.add_job(7, "unit: [a/b]", TOKEN, note="note first\n")
    return local, seen


async def test_a_job_is_accepted_traced_and_finished(coordinator: tuple[LocalCoordinator, list[tuple[int, bytes]]],
                                                    tmp_path: Path) -> None:  # fmt: skip
    local, seen = coordinator
    assert local.record(7).state is LocalJobState.PENDING
    accepted = await local.update_job(ref(), JobUpdate(state="running"))
    assert accepted.job_status == "running" and accepted.accepted
    first = await local.patch_trace(ref(), 0, b"hello ")
    second = await local.patch_trace(ref(), 6, b"world\n")
    assert (first.stored, second.stored) == (6, 12)
    assert second.update_interval_s is not None and second.update_interval_s < 3
    await local.update_job(ref(), JobUpdate(state="failed", failure_reason="script_failure", exit_code=3))
    record = local.record(7)
    assert (record.state, record.failure_reason, record.exit_code, record.trace_size) == (
        LocalJobState.FAILED, "script_failure", 3, 12,
    )  # fmt: skip
    assert local.trace(7) == b"hello world\n"
    assert seen == [(7, b"hello "), (7, b"world\n")]
    log = tmp_path / "logs" / "3" / "unit: [a_b].log"
    assert log.read_bytes() == b"note first\nhello world\n"


async def test_a_patch_must_start_where_the_trace_ends(
    coordinator: tuple[LocalCoordinator, list[tuple[int, bytes]]],
) -> None:
    local, _ = coordinator
    await local.update_job(ref(), JobUpdate(state="running"))
    await local.patch_trace(ref(), 0, b"abc")
    with pytest.raises(TraceRangeError) as raised:
        await local.patch_trace(ref(), 1, b"bc and more")
    assert raised.value.stored == 3
    assert local.trace(7) == b"abc"


@pytest.mark.parametrize(
    ("job", "started"),
    [(ref(token="glcbt-wrong"), True), (ref(job_id=8), True), (ref(), False)],
    ids=["wrong-token", "unknown-job", "not-running"],
)
async def test_refusals(
    coordinator: tuple[LocalCoordinator, list[tuple[int, bytes]]], job: JobRef, started: bool
) -> None:
    local, _ = coordinator
    if started:
        await local.update_job(ref(), JobUpdate(state="running"))
    with pytest.raises(ApiAuthError) as raised:
        await local.patch_trace(job, 0, b"x")
    assert TOKEN not in str(raised.value)


async def test_a_finished_job_takes_no_more_updates(
    coordinator: tuple[LocalCoordinator, list[tuple[int, bytes]]],
) -> None:
    local, _ = coordinator
    await local.update_job(ref(), JobUpdate(state="running"))
    await local.update_job(ref(), JobUpdate(state="success"))
    with pytest.raises(ApiAuthError):
        await local.update_job(ref(), JobUpdate(state="running"))
    assert local.record(7).state is LocalJobState.SUCCESS


def test_clone_url_carries_the_job_credentials(coordinator: tuple[LocalCoordinator, list[tuple[int, bytes]]]) -> None:
    local, _ = coordinator
    local.url = "http://127.0.0.1:4321"
    assert local.repo_url("tok/en") == "http://gitlab-ci-token:tok%2Fen@127.0.0.1:4321/group/project.git"


async def _git_over_http(*args: str) -> tuple[int, str]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1", "NO_PROXY": "*"}
    process = await asyncio.create_subprocess_exec(
        "git", *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    return await process.wait(), output.decode()


@pytest.mark.parametrize("serve_now", [False, True], ids=["on-first-connection", "at-once"])
async def test_sources_are_served_over_git_http_to_running_jobs_only(
    make_repo: Callable[..., Path], tmp_path: Path, serve_now: bool
) -> None:
    local = LocalCoordinator(Workspace(tmp_path), 3, "group/project", serve_now=serve_now)
    local.add_job(7, "unit: [a/b]", TOKEN)
    source = make_repo({"README.md": "served\n"})
    git(tmp_path, "clone", "-q", "--bare", str(source), str(Workspace(tmp_path).repo))
    async with local:
        code, output = await _git_over_http("ls-remote", local.repo_url(TOKEN))
        assert code != 0, output  # job 7 is not running yet
        await local.update_job(ref(), JobUpdate(state="running"))
        code, output = await _git_over_http("ls-remote", local.repo_url("glcbt-wrong"))
        assert code != 0 and "glcbt-wrong" not in output
        code, output = await _git_over_http("clone", "-q", local.repo_url(TOKEN), str(tmp_path / "clone"))
        assert code == 0, output
    assert (tmp_path / "clone" / "README.md").read_text() == "served\n"


async def test_artifact_rules(coordinator: tuple[LocalCoordinator, list[tuple[int, bytes]]], tmp_path: Path) -> None:
    local, _ = coordinator
    with pytest.raises(HttpRefusal) as refused:
        local.artifact_upload(7, TOKEN, "archive")
    assert refused.value.status == 403  # not running yet
    await local.update_job(ref(), JobUpdate(state="running"))
    with pytest.raises(HttpRefusal) as refused:
        local.artifact_upload(7, "glcbt-wrong", "archive")
    assert refused.value.status == 403
    target = local.artifact_upload(7, TOKEN, "archive")
    assert target == tmp_path / "artifacts" / "3" / "7"
    local.artifact_stored(7, "archive", target / "artifacts.zip")
    with pytest.raises(HttpRefusal) as refused:
        local.artifact_upload(7, TOKEN, "archive")
    assert refused.value.status == 400
    assert local.record(7).archive == "artifacts.zip"
    assert local.artifact_download(7, TOKEN) == target / "artifacts.zip"
    with pytest.raises(HttpRefusal) as refused:
        local.artifact_download(7, "glcbt-wrong")
    assert refused.value.status == 401
    with pytest.raises(HttpRefusal) as refused:
        local.artifact_download(8, TOKEN)
    assert refused.value.status == 404


def test_ids_grow_across_runs_and_the_workspace_is_locked(tmp_path: Path) -> None:
    with open_workspace(tmp_path) as workspace:
        assert (workspace.next_pipeline_id(), workspace.next_job_id(), workspace.next_job_id()) == (1, 1, 2)
        with pytest.raises(WorkspaceBusy), open_workspace(tmp_path):
            pass
    with open_workspace(tmp_path) as workspace:
        assert (workspace.next_pipeline_id(), workspace.next_job_id()) == (2, 3)
    assert (tmp_path / ".skyrunner" / ".gitignore").read_text().splitlines()[-1] == "*"


@pytest.mark.parametrize(
    ("name", "expected"),
    [("build", "build.log"), ("test: [a, b]", "test: [a, b].log"), ("deploy/eu", "deploy_eu.log"), ("..", "_...log")],
    ids=["plain", "matrix", "slash", "dots"],
)
def test_log_file_names(name: str, expected: str) -> None:
    assert log_file_name(name) == expected
