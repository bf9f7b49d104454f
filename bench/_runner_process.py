"""What the runner benchmarks share: a ``skyrunner run`` process, its config, its usage, the report.

``runner_bench.py`` (shell executor) and ``k8s_bench.py`` (kubernetes executor) both start one
runner against the test coordinator and sample its CPU and memory from ``/proc``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import NamedTuple

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

Bench = Callable[[Path], Awaitable[dict[str, float]]]


class Usage(NamedTuple):
    cpu_s: float  # user + system time so far
    rss: int  # bytes
    threads: int


def process_usage(pid: int) -> Usage:
    """CPU seconds, resident bytes and threads of one process, from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return Usage((int(fields[11]) + int(fields[12])) / CLOCK_TICKS, int(fields[21]) * PAGE_SIZE, int(fields[17]))


def config_head(path: Path, url: str, token: str, executor: str, concurrent: int) -> str:
    """The config.toml of one bench runner up to its executor's own section."""
    return (
        f'concurrent = {concurrent}\ncheck_interval = 1\nlog_level = "warning"\n[[runners]]\n  name = "bench"\n'
        f'  url = "{url}"\n  token = "{token}"\n  executor = "{executor}"\n  limit = {concurrent}\n'
        f"  request_concurrency = {min(concurrent, 8)}\n"
        f'  builds_dir = "{path.parent / "builds"}"\n  cache_dir = "{path.parent / "cache"}"\n'
    )


async def start_runner(config: Path) -> asyncio.subprocess.Process:
    """``skyrunner run`` on ``config``; its log goes to ``$BENCH_RUNNER_LOG`` (info level) if set."""
    log = os.environ.get("BENCH_RUNNER_LOG")
    output = open(log, "ab") if log else None  # noqa: SIM115, ASYNC230 (the runner process owns it)
    args = ["--log-level", "info"] if log else []
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "skyrunner", *args, "run", "--config", str(config), cwd=config.parent,
        stdout=output or asyncio.subprocess.DEVNULL, stderr=output or asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def stop_runner(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL if the runner is still there a minute later."""
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), 60)
    except TimeoutError:
        process.kill()
        await process.wait()


async def run_benches(which: str, benches: Mapping[str, Bench], prefix: str) -> None:
    """Run the bench named ``which`` (or all of them) in a temporary directory and print the figures."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        results: dict[str, float] = {}
        for name, bench in benches.items():
            if which in (name, "all"):
                results |= await bench(Path(tmp))
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key:<{width}}  {value:10.3f}")
