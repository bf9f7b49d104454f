"""``run --sigterm graceful``: how the runner's Deployment lets jobs finish when Kubernetes stops it.

Kubernetes stops a container with SIGTERM, then SIGKILL after terminationGracePeriodSeconds;
gitlab-runner's SIGTERM aborts running jobs, so the Deployment runs ``run --sigterm graceful``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from skyrunner.cli._run import signal_modes
from skyrunner.service import Shutdown
from tests.fakes.coordinator import FakeCoordinator

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("sigterm", "expected"),
    [(Shutdown.ABORT, Shutdown.ABORT), (Shutdown.GRACEFUL, Shutdown.GRACEFUL)],
    ids=["default-aborts", "graceful"],
)
def test_sigterm_mode_is_the_only_thing_the_flag_changes(sigterm: Shutdown, expected: Shutdown) -> None:
    modes = signal_modes(sigterm)

    assert modes == {signal.SIGQUIT: Shutdown.GRACEFUL, signal.SIGTERM: expected, signal.SIGINT: Shutdown.ABORT}


@pytest.fixture
async def gitlab(tmp_path: Path) -> AsyncIterator[FakeCoordinator]:
    (tmp_path / "gitlab").mkdir()
    async with FakeCoordinator(tmp_path / "gitlab", trace_update_interval=1) as fake:
        yield fake


@pytest.mark.parametrize(
    ("flag", "state"), [("graceful", "success"), ("abort", "failed")], ids=["graceful-finishes", "abort-fails"]
)
async def test_sigterm_with_a_job_in_flight(gitlab: FakeCoordinator, tmp_path: Path, flag: str, state: str) -> None:
    runner = gitlab.add_runner()
    repo = gitlab.create_repo("group/project", {"README.md": "hi\n"})
    job = gitlab.enqueue(gitlab.make_job(repo, script=["echo started", "sleep 3", "echo finished"]))
    config = tmp_path / "config.toml"
    config.write_text(
        f'concurrent = 1\ncheck_interval = 1\nshutdown_timeout = 30\n[[runners]]\nname = "sig"\n'
        f'url = "{gitlab.url}"\ntoken = "{runner.token}"\nexecutor = "shell"\n'
        f'builds_dir = "{tmp_path}/builds"\ncache_dir = "{tmp_path}/cache"\n'
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "skyrunner", "run", "--config", str(config), "--sigterm", flag, cwd=tmp_path,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env=dict(os.environ),
    )  # fmt: skip
    try:
        async with asyncio.timeout(20):
            while b"started" not in gitlab.jobs[job.id].trace:  # the fake has no trace event to wait on
                await asyncio.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    done = await gitlab.wait_for_job(job.id, timeout=10)
    assert done.state == state, output.decode(errors="replace")
    assert f"stopping ({flag})".encode() in output
