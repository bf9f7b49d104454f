"""Runner benchmarks against the test coordinator: overhead per job, throughput, footprint.

Run from the repository root (after ``.ci/run`` or ``pip install -e '.[test]'``)::

    python bench/runner_bench.py overhead      # sequential trivial jobs, concurrent = 1
    python bench/runner_bench.py throughput    # 500 trivial jobs, concurrent = 50
    python bench/runner_bench.py footprint     # 500 concurrent `sleep` jobs: runner RSS and CPU
    python bench/runner_bench.py all

What is measured:

* overhead: wall time from the job being queued to its final update, for a job whose script is
  ``true``, with ``GIT_STRATEGY=none`` (the runner alone) and with ``fetch`` (plus the helper and
  git fetching from the coordinator). The job's own work is nil, so this is what the runner adds.
* throughput: jobs per second over 500 trivial jobs with ``concurrent = 50``.
* footprint: one ``skyrunner run`` process with ``concurrent = 500`` running 500 jobs that each
  ``sleep 120``: peak RSS of the runner process and its CPU use (utime+stime over wall time) while
  all 500 are in flight. Targets: at most 1 core and 300 MB. The jobs' own processes are not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _runner_process import config_head, process_usage, run_benches, start_runner, stop_runner  # noqa: E402

from tests.fakes.coordinator import FakeCoordinator  # noqa: E402


def write_config(path: Path, url: str, token: str, concurrent: int) -> Path:
    path.write_text(config_head(path, url, token, "shell", concurrent))
    return path


async def overhead(workdir: Path, jobs: int = 20) -> dict[str, float]:
    results: dict[str, float] = {}
    for strategy in ("none", "fetch"):
        async with FakeCoordinator(workdir / f"gitlab-{strategy}", long_poll_s=30) as fake:
            runner = fake.add_runner()
            repo = fake.create_repo("bench/project", {"README.md": "bench\n"})
            config = write_config(workdir / f"overhead-{strategy}.toml", fake.url, runner.token, 1)
            process = await start_runner(config)
            try:
                times = []
                for _ in range(jobs):
                    job = fake.enqueue(fake.make_job(repo, script=["true"], variables={"GIT_STRATEGY": strategy}))
                    began = time.perf_counter()
                    done = await fake.wait_for_job(job.id, timeout=60)
                    assert done.state == "success", bytes(done.trace).decode()
                    times.append(time.perf_counter() - began)
            finally:
                await stop_runner(process)
        warm = times[2:]
        results[f"overhead_{strategy}_median_s"] = statistics.median(warm)
        results[f"overhead_{strategy}_p95_s"] = sorted(warm)[int(len(warm) * 0.95) - 1]
    return results


async def throughput(workdir: Path, jobs: int = 500, concurrent: int = 50) -> dict[str, float]:
    async with FakeCoordinator(workdir / "gitlab-throughput") as fake:
        fake.record_requests = False
        runner = fake.add_runner()
        repo = fake.create_repo("bench/project", {"README.md": "bench\n"})
        config = write_config(workdir / "throughput.toml", fake.url, runner.token, concurrent)
        process = await start_runner(config)
        try:
            began = time.perf_counter()
            fake.enqueue_many(repo, jobs, script=["true"], variables={"GIT_STRATEGY": "none"})
            done = await fake.wait_for_finished(jobs, timeout=900)
            elapsed = time.perf_counter() - began
            cpu, rss, _ = process_usage(process.pid)
        finally:
            await stop_runner(process)
    failed = [job for job in done if job.state != "success"]
    assert not failed, bytes(failed[0].trace).decode()
    return {"throughput_jobs_per_s": jobs / elapsed, "throughput_runner_cpu_s": cpu, "throughput_runner_rss_mb": rss / 2**20}


async def footprint(workdir: Path, jobs: int = 500, sleep_s: int = 120) -> dict[str, float]:
    async with FakeCoordinator(workdir / "gitlab-footprint") as fake:
        fake.record_requests = False
        runner = fake.add_runner()
        repo = fake.create_repo("bench/project", {"README.md": "bench\n"})
        config = write_config(workdir / "footprint.toml", fake.url, runner.token, jobs)
        process = await start_runner(config)
        try:
            fake.enqueue_many(repo, jobs, script=[f"sleep {sleep_s}"], variables={"GIT_STRATEGY": "none"})
            async with asyncio.timeout(300):
                while sum(1 for j in fake.jobs.values() if j.state == "running" and b"$ sleep" in j.trace) < jobs:
                    await asyncio.sleep(0.2)
            cpu0 = process_usage(process.pid).cpu_s
            t0 = time.perf_counter()
            peak = 0
            while time.perf_counter() - t0 < 8:
                peak = max(peak, process_usage(process.pid).rss)
                await asyncio.sleep(0.25)
            cpu1, rss, _ = process_usage(process.pid)
            in_flight_cpu = (cpu1 - cpu0) / (time.perf_counter() - t0)
            done = await fake.wait_for_finished(jobs, timeout=600)
            peak = max(peak, rss)
        finally:
            await stop_runner(process)
    failed = [job for job in done if job.state != "success"]
    assert not failed, bytes(failed[0].trace).decode()
    return {"footprint_jobs": jobs, "footprint_runner_cpu_cores": in_flight_cpu, "footprint_runner_peak_rss_mb": peak / 2**20}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=["overhead", "throughput", "footprint", "all"], default="all", nargs="?")
    benches = {"overhead": overhead, "throughput": throughput, "footprint": footprint}
    asyncio.run(run_benches(parser.parse_args().which, benches, "skyrunner-bench-"))
