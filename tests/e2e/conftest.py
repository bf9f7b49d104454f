"""End-to-end fixtures: the real CLI in a subprocess against the test coordinator on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fakes.coordinator import FakeCoordinator, FakeRunner


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@dataclass
class Cli:
    """A running ``python -m skyrunner`` process; its output is collected as it comes."""

    process: asyncio.subprocess.Process
    output: bytearray = field(default_factory=bytearray)
    reader: asyncio.Task[None] | None = None

    async def wait(self, timeout: float = 60.0) -> int:
        code = await asyncio.wait_for(self.process.wait(), timeout)
        if self.reader is not None:
            await self.reader
        return code

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")


async def start_cli(args: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> Cli:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "skyrunner", *args, cwd=cwd, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env={**os.environ, **(env or {})},
    )  # fmt: skip
    cli = Cli(process)

    async def collect() -> None:
        assert process.stdout is not None
        while chunk := await process.stdout.read(65536):
            cli.output += chunk

    cli.reader = asyncio.create_task(collect())
    return cli


async def run_cli(args: Sequence[str], cwd: Path, timeout: float = 60.0) -> tuple[int, str]:
    cli = await start_cli(args, cwd)
    code = await cli.wait(timeout)
    return code, cli.text


@pytest.fixture
async def coordinator(tmp_path: Path) -> AsyncIterator[FakeCoordinator]:
    root = tmp_path / "gitlab"
    root.mkdir()
    async with FakeCoordinator(root, trace_update_interval=1) as fake:
        yield fake


def write_config(path: Path, coordinator: FakeCoordinator, runner: FakeRunner, **extra: object) -> Path:
    """A config.toml with one shell runner, builds and cache under ``path``'s directory."""
    lines = [
        f"concurrent = {extra.pop('concurrent', 4)}",
        "check_interval = 1",
        f"shutdown_timeout = {extra.pop('shutdown_timeout', 30)}",
        *([f"listen_address = {extra.pop('listen_address')}"] if "listen_address" in extra else []),
        "[[runners]]",
        '  name = "e2e"',
        f'  url = "{coordinator.url}"',
        f'  token = "{runner.token}"',
        '  executor = "shell"',
        f'  builds_dir = "{path.parent / "builds"}"',
        f'  cache_dir = "{path.parent / "cache"}"',
    ]
    lines += [f"  {key} = {value}" for key, value in extra.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "runner"
    path.mkdir()
    return path


def single_args(coordinator: FakeCoordinator, runner: FakeRunner, workdir: Path, builds: int = 1) -> list[str]:
    return [
        "run-single", "--url", coordinator.url, "--token", runner.token, "--max-builds", str(builds),
        "--builds-dir", str(workdir / "builds"), "--cache-dir", str(workdir / "cache"),
        "--system-id-dir", str(workdir),
    ]  # fmt: skip
