"""Fixtures for the kubernetes executor end to end: FakeKubeApi, FakeCoordinator, the real CLI.

The fake runs pod containers as local processes of this machine, so every image is this
machine: ``python3`` must be this venv's (with skyrunner installed), which is why ``PATH``
starts with the venv's ``bin`` before the fake reads it. The runner is ``python -m skyrunner
run --config`` with a config.toml whose kubernetes host is the fake (bearer token).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Cli, start_cli
from tests.fakes.coordinator import FakeCoordinator, FakeRunner
from tests.fakes.kubeapi import FakeKubeApi

NAMESPACE = "default"


@pytest.fixture
async def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeKubeApi]:
    venv_bin = str(Path(sys.executable).parent)
    monkeypatch.setenv("PATH", f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}")
    async with FakeKubeApi(tmp_path / "kube") as api:
        yield api


def write_k8s_config(
    path: Path,
    coordinator: FakeCoordinator,
    runner: FakeRunner,
    cluster: FakeKubeApi,
    *,
    concurrent: int = 8,
    extra: str = "",
    listen_address: str | None = None,
    **kubernetes: object,
) -> Path:
    """A config.toml with one kubernetes runner talking to ``cluster`` with its bearer token.

    ``kubernetes`` are keys of ``[runners.kubernetes]`` as TOML values; ``extra`` is TOML text
    appended at the end (``[[runners.kubernetes.volumes.host_path]]`` tables).
    """
    table: dict[str, object] = {
        "host": f'"{cluster.url}"',
        "bearer_token": f'"{cluster.token}"',
        "namespace": f'"{NAMESPACE}"',
        "image": '"alpine:3"',
        "helper_image": '"skyrunner-helper:test"',
        "poll_timeout": 30,
    }
    table.update(kubernetes)
    lines = [
        f"concurrent = {concurrent}",
        "check_interval = 1",
        "shutdown_timeout = 10",
        *([f'listen_address = "{listen_address}"'] if listen_address else []),
        "[[runners]]",
        '  name = "k8s-e2e"',
        f'  url = "{coordinator.url}"',
        f'  token = "{runner.token}"',
        '  executor = "kubernetes"',
        f'  builds_dir = "{path.parent / "builds"}"',
        f'  cache_dir = "{path.parent / "cache"}"',
        "  [runners.kubernetes]",
        *[f"    {key} = {value}" for key, value in table.items()],
    ]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


@contextlib.asynccontextmanager
async def runner_process(config: Path, workdir: Path) -> AsyncIterator[Cli]:
    """``skyrunner run`` for the test's duration; stopped gracefully (SIGQUIT) at the end."""
    cli = await start_runner(config, workdir)
    try:
        yield cli
    finally:
        if cli.process.returncode is None:
            cli.signal(signal.SIGQUIT)
            try:
                await cli.wait(30)
            except TimeoutError:
                cli.process.kill()
                await cli.wait(5)


async def start_runner(config: Path, workdir: Path) -> Cli:
    return await start_cli(["--debug", "run", "--config", str(config)], workdir)


async def eventually(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``check`` (a fake's state) until it is truthy."""
    async with asyncio.timeout(timeout):
        while not (result := check()):
            await asyncio.sleep(0.05)
    return result


def job_pods(cluster: FakeKubeApi) -> list[dict[str, Any]]:
    return cluster.objects("Pod", NAMESPACE)
