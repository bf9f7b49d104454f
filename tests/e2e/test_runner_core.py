"""The runner core end to end: the real CLI, the shell executor, real git over smart HTTP."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from skyrunner.config import shorten_token
from tests.e2e.conftest import run_cli, single_args, start_cli, write_config
from tests.fakes.coordinator import FakeCoordinator

FILES = {"README.md": "hello from the repo\n", "check.sh": "test -f README.md && echo checked\n"}


async def test_passing_job_reports_success_with_a_complete_trace(coordinator: FakeCoordinator, workdir: Path) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo("group/project", FILES)
    payload = coordinator.make_job(
        repo,
        script=["echo hello from $CI_JOB_NAME", "sh check.sh", "echo dir=$CI_PROJECT_DIR", 'cat "$DEPLOY_KEY"',
                "echo secret=$API_SECRET", 'stat -c %a "$DEPLOY_KEY"', "echo server=$CI_SERVER concurrent=$CI_CONCURRENT_ID"],
        after_script=["echo after ran"],
        variables=[
            {"key": "DEPLOY_KEY", "value": "key-content-123", "public": False, "masked": False, "file": True},
            {"key": "API_SECRET", "value": "s3cr3tValue99", "public": False, "masked": True},
        ],
    )  # fmt: skip
    job = coordinator.enqueue(payload)
    code, output = await run_cli(single_args(coordinator, runner, workdir), workdir)
    assert code == 0, output
    done = await coordinator.wait_for_job(job.id, timeout=5)
    trace = bytes(done.trace).decode()
    assert done.state == "success", trace
    assert done.checksum_ok is True
    assert trace.startswith("\x1b[0KRunning with skyrunner ")
    assert "\x1b[32;1m$ echo hello from $CI_JOB_NAME\x1b[0;m\nhello from test\n" in trace
    assert "checked\n" in trace
    assert f"dir={workdir}/builds/{shorten_token(runner.token)}/0/group/project\n" in trace
    assert "key-content-123\x1b[32;1m$ echo secret" in trace
    assert "\x1b[0;m\n600\n" in trace, "file variables are written 0600"
    assert "secret=[MASKED]\n" in trace and "s3cr3tValue99" not in trace
    assert "server=yes concurrent=0\n" in trace
    assert "after ran\n" in trace
    for section in ("prepare_executor", "get_sources", "step_script", "after_script", "cleanup_file_variables"):
        assert f":{section}\r\x1b[0K" in trace
    assert trace.rstrip().endswith("\x1b[32;1mJob succeeded\x1b[0;m")
    assert not list((workdir / "builds").rglob("DEPLOY_KEY")), "file variables are removed at the end"
    assert done.updates[0]["state"] == "running"  # accepted before anything else
    assert f"job received  job={job.id} runner={shorten_token(runner.token)} project=group/project" in output
    assert runner.token not in output and "s3cr3tValue99" not in output
    assert done.updates[-1]["output"]["bytesize"] == len(done.trace)


async def test_failing_job_reports_the_exit_code_and_runs_after_script(
    coordinator: FakeCoordinator, workdir: Path
) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo("group/project", FILES)
    job = coordinator.enqueue(
        coordinator.make_job(
            repo, script=["echo before", "exit 7", "echo never"], after_script=["echo status=$CI_JOB_STATUS"]
        )
    )
    code, output = await run_cli(single_args(coordinator, runner, workdir), workdir)
    assert code == 0, output
    done = await coordinator.wait_for_job(job.id, timeout=5)
    trace = bytes(done.trace).decode()
    assert (done.state, done.failure_reason, done.exit_code) == ("failed", "script_failure", 7)
    assert "status=failed" in trace
    assert "\nnever" not in trace
    assert trace.rstrip().endswith("\x1b[31;1mERROR: Job failed: exit code 7\x1b[0;m")


async def test_timeout_stops_the_script_and_reports_job_execution_timeout(
    coordinator: FakeCoordinator, workdir: Path
) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo("group/project", FILES)
    payload = coordinator.make_job(
        repo, script=["echo started", "sleep 60"], after_script=["echo after=$CI_JOB_STATUS"], timeout=3
    )
    job = coordinator.enqueue(payload)
    loop = asyncio.get_running_loop()
    began = loop.time()
    code, output = await run_cli(single_args(coordinator, runner, workdir), workdir)
    assert code == 0, output
    done = await coordinator.wait_for_job(job.id, timeout=5)
    trace = bytes(done.trace).decode()
    assert (done.state, done.failure_reason) == ("failed", "job_execution_timeout")
    assert "after=failed" in trace
    assert "execution took longer than 3s seconds" in trace
    assert loop.time() - began < 20


@pytest.mark.parametrize("graceful", [True, False], ids=["canceling", "force-canceled"])
async def test_cancel_mid_script(coordinator: FakeCoordinator, workdir: Path, graceful: bool) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo("group/project", FILES)
    job = coordinator.enqueue(
        coordinator.make_job(repo, script=["echo started", "sleep 61.25"], after_script=["echo after=$CI_JOB_STATUS"])
    )
    cli = await start_cli(single_args(coordinator, runner, workdir), workdir)
    await _wait_for_trace(coordinator, job.id, b"started")
    coordinator.cancel(job.id)
    if not graceful:
        coordinator.cancel(job.id)  # a second cancel of a canceling job forces it, as in GitLab
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert await cli.wait(30) == 0, cli.text
    done = await coordinator.wait_for_job(job.id, timeout=5)
    assert done.state == "canceled"
    assert loop.time() - began < 10
    trace = bytes(done.trace)
    if graceful:
        assert b"after=canceled" in trace
        assert done.updates[-1]["state"] == "failed"
    assert not list(_sleepers())


async def test_malformed_payload_fails_that_job_and_the_next_one_runs(
    coordinator: FakeCoordinator, workdir: Path
) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo("group/project", FILES)
    broken = coordinator.make_job(repo, script=["true"])
    broken["git_info"]["depth"] = "shallow"
    bad = coordinator.enqueue(broken)
    good = coordinator.enqueue(coordinator.make_job(repo, script=["echo fine"]))
    code, output = await run_cli(single_args(coordinator, runner, workdir, builds=2), workdir)
    assert code == 0, output
    bad_done = await coordinator.wait_for_job(bad.id, timeout=5)
    assert (bad_done.state, bad_done.failure_reason) == ("failed", "runner_system_failure")
    assert "ERROR: Job failed (system failure): job" in bytes(bad_done.trace).decode()
    assert "git_info.depth: input should be a valid integer" in bytes(bad_done.trace).decode()
    assert (await coordinator.wait_for_job(good.id, timeout=5)).state == "success"


async def test_transient_server_errors_on_every_endpoint_are_retried(
    coordinator: FakeCoordinator, workdir: Path
) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo("group/project", FILES)
    job = coordinator.enqueue(
        coordinator.make_job(
            repo, script=["echo one", "sleep 1.5", "echo two"], variables={"GET_SOURCES_ATTEMPTS": "2"}
        )
    )
    coordinator.fail_next("request", 502, count=2)
    coordinator.fail_next("update", 500, count=2)
    coordinator.fail_next("trace", 503, count=2, headers={"Retry-After": "1"})
    coordinator.fail_next("git", 500, count=1)
    code, output = await run_cli(single_args(coordinator, runner, workdir), workdir)
    assert code == 0, output
    done = await coordinator.wait_for_job(job.id, timeout=5)
    assert done.state == "success", bytes(done.trace).decode()
    assert done.checksum_ok is True
    trace = bytes(done.trace).decode()
    assert "one\n" in trace and "two\n" in trace


async def test_final_update_is_repeated_on_202(coordinator: FakeCoordinator, workdir: Path) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo("group/project", FILES)
    job = coordinator.enqueue(coordinator.make_job(repo, script=["echo done"]))
    coordinator.final_update_202 = 2
    code, output = await run_cli(single_args(coordinator, runner, workdir), workdir)
    assert code == 0, output
    done = await coordinator.wait_for_job(job.id, timeout=5)
    finals = [u for u in done.updates if u["state"] == "success"]
    assert len(finals) == 3 and done.state == "success"


async def test_trace_resynchronises_after_416(coordinator: FakeCoordinator, workdir: Path) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo("group/project", FILES)
    job = coordinator.enqueue(coordinator.make_job(repo, script=["echo first-line", "sleep 3", "echo second-line"]))
    cli = await start_cli(single_args(coordinator, runner, workdir), workdir)
    await _wait_for_trace(coordinator, job.id, b"first-line")
    coordinator.truncate_trace(job.id, 20)
    assert await cli.wait(30) == 0, cli.text
    done = await coordinator.wait_for_job(job.id, timeout=5)
    trace = bytes(done.trace)
    assert done.state == "success" and done.checksum_ok is True
    assert trace.count(b"first-line\n") == 1 and b"second-line\n" in trace
    assert "resynchronised" in cli.text


async def test_output_limit_cuts_the_trace_with_gitlab_runners_notice(
    coordinator: FakeCoordinator, workdir: Path
) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo("group/project", FILES)
    job = coordinator.enqueue(coordinator.make_job(repo, script=["seq 1 5000", "echo survived"]))
    code, output = await run_cli([*single_args(coordinator, runner, workdir), "--output-limit", "4"], workdir)
    assert code == 0, output
    done = await coordinator.wait_for_job(job.id, timeout=5)
    assert done.state == "success" and done.checksum_ok is True
    assert len(done.trace) < 4096 + 200
    assert b"Job's log exceeded limit of 4096 bytes.\nJob execution will continue" in done.trace


@pytest.mark.parametrize(
    ("sig", "state", "reason"),
    [(signal.SIGQUIT, "success", None), (signal.SIGTERM, "failed", "runner_system_failure")],
    ids=["sigquit-finishes", "sigterm-aborts"],
)
async def test_run_signals_with_a_job_in_flight(
    coordinator: FakeCoordinator, workdir: Path, sig: signal.Signals, state: str, reason: str | None
) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo("group/project", FILES)
    job = coordinator.enqueue(coordinator.make_job(repo, script=["echo started", "sleep 5", "echo finished"]))
    config = write_config(workdir / "config.toml", coordinator, runner)
    cli = await start_cli(["run", "--config", str(config)], workdir)
    await _wait_for_trace(coordinator, job.id, b"started")
    cli.signal(sig)
    await asyncio.sleep(0.3)
    later = coordinator.enqueue(coordinator.make_job(repo, script=["echo should not run"]))
    code = await cli.wait(30)
    assert code == 0, cli.text
    done = await coordinator.wait_for_job(job.id, timeout=10)
    assert (done.state, done.failure_reason) == (state, reason), bytes(done.trace).decode()
    assert coordinator.jobs[later.id].state == "pending", "no job is taken after the signal"


async def _wait_for_trace(coordinator: FakeCoordinator, job_id: int, needle: bytes, timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while needle not in coordinator.jobs[job_id].trace:
            await asyncio.sleep(0.05)


def _sleepers() -> list[str]:
    import subprocess

    found = subprocess.run(["pgrep", "-af", "sleep 61.25"], capture_output=True, text=True, check=False).stdout
    return [line for line in found.splitlines() if "pgrep" not in line]
