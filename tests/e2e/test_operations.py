"""Operating a running runner: metrics, health, status, config reload and shutdown."""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path

import httpx2 as httpx

from tests.e2e.conftest import run_cli, start_cli, write_config
from tests.fakes.coordinator import FakeCoordinator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for(condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] != name:
            continue
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


async def test_metrics_health_and_status_during_a_run(coordinator: FakeCoordinator, workdir: Path) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo("group/project", {"a": "b"})
    job = coordinator.enqueue(coordinator.make_job(repo, script=["echo started", "sleep 8", "echo done"]))
    port = free_port()
    config = write_config(workdir / "config.toml", coordinator, runner, listen_address=f'"127.0.0.1:{port}"')
    cli = await start_cli(["run", "--config", str(config)], workdir)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            await wait_for(lambda: b"started" in coordinator.jobs[job.id].trace)
            during = (await http.get("/metrics")).text
            assert metric(during, "gitlab_runner_jobs", stage="build", executor="shell", state="running") == 1
            assert metric(during, "gitlab_runner_concurrent") == 4
            assert metric(during, "gitlab_runner_api_request_statuses_total", endpoint="request_job", status="201") == 1
            assert (await http.get("/health")).status_code == 200
            assert (await http.get("/ready")).status_code == 200
            code, out = await run_cli(["status", "--listen-address", f"127.0.0.1:{port}"], workdir)
            assert code == 0, out
            assert f"job {job.id}" in out and "build" in out
            await coordinator.wait_for_job(job.id, timeout=20)
            await wait_for(lambda: True)
            await asyncio.sleep(0.3)
            after = (await http.get("/metrics")).text
            assert metric(after, "gitlab_runner_jobs", state="running") == 0
            assert metric(after, "gitlab_runner_jobs_total") == 1
            assert metric(after, "gitlab_runner_job_duration_seconds_count") == 1
            assert metric(after, "skyrunner_trace_bytes_total") == len(coordinator.jobs[job.id].trace)
            assert metric(after, "gitlab_runner_api_request_statuses_total", endpoint="patch_trace") >= 1
            assert runner.token not in after
    finally:
        cli.signal(signal.SIGQUIT)
        assert await cli.wait(20) == 0, cli.text


async def test_config_reload_keeps_running_jobs_and_refuses_a_bad_file(
    coordinator: FakeCoordinator, workdir: Path
) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo("group/project", {"a": "b"})
    job = coordinator.enqueue(coordinator.make_job(repo, script=["echo started", "sleep 6", "echo done"]))
    port = free_port()
    config = write_config(workdir / "config.toml", coordinator, runner, listen_address=f'"127.0.0.1:{port}"')
    cli = await start_cli(["run", "--config", str(config)], workdir)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            await wait_for(lambda: b"started" in coordinator.jobs[job.id].trace)
            config.write_text(config.read_text().replace("concurrent = 4", "concurrent = 7"))
            cli.signal(signal.SIGHUP)
            await wait_for(lambda: "configuration reloaded" in cli.text)
            assert metric((await http.get("/metrics")).text, "gitlab_runner_concurrent") == 7
            good = config.read_text()
            config.write_text(good.replace("concurrent = 7", "concurrent = 'lots'"))
            await wait_for(lambda: "config reload failed, keeping the old config" in cli.text, timeout=10)
            assert "config.toml:1: concurrent" in cli.text
            assert metric((await http.get("/metrics")).text, "gitlab_runner_concurrent") == 7
            done = await coordinator.wait_for_job(job.id, timeout=20)
            assert done.state == "success", bytes(done.trace).decode()
            later = coordinator.enqueue(coordinator.make_job(repo, script=["echo after reload"]))
            assert (await coordinator.wait_for_job(later.id, timeout=20)).state == "success"
    finally:
        cli.signal(signal.SIGQUIT)
        assert await cli.wait(20) == 0, cli.text


async def test_sigquit_waits_at_most_shutdown_timeout(coordinator: FakeCoordinator, workdir: Path) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo("group/project", {"a": "b"})
    job = coordinator.enqueue(coordinator.make_job(repo, script=["echo started", "sleep 61.75"]))
    config = write_config(workdir / "config.toml", coordinator, runner, shutdown_timeout=2)
    cli = await start_cli(["run", "--config", str(config)], workdir)
    await wait_for(lambda: b"started" in coordinator.jobs[job.id].trace)
    loop = asyncio.get_running_loop()
    began = loop.time()
    cli.signal(signal.SIGQUIT)
    await cli.wait(30)
    done = await coordinator.wait_for_job(job.id, timeout=5)
    assert (done.state, done.failure_reason) == ("failed", "runner_system_failure")
    assert 2 <= loop.time() - began < 15


async def test_a_second_sigterm_exits_at_once(coordinator: FakeCoordinator, workdir: Path) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo("group/project", {"a": "b"})
    job = coordinator.enqueue(coordinator.make_job(repo, script=["echo started", "sleep 3"]))
    config = write_config(workdir / "config.toml", coordinator, runner)
    coordinator.final_update_202 = 1000  # GitLab never accepts the final state: the runner would keep trying
    cli = await start_cli(["run", "--config", str(config)], workdir)
    await wait_for(lambda: b"started" in coordinator.jobs[job.id].trace)
    cli.signal(signal.SIGTERM)
    await asyncio.sleep(1.0)
    assert cli.process.returncode is None
    cli.signal(signal.SIGTERM)
    assert await cli.wait(5) != 0
    assert "second SIGTERM" in cli.text
