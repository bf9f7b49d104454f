"""Kubernetes executor benchmarks on the test API server: overhead per job, footprint at 200 jobs.

Run from the repository root (after ``.ci/run`` or ``pip install -e '.[test]'``)::

    python bench/k8s_bench.py overhead      # sequential trivial jobs, concurrent = 1
    python bench/k8s_bench.py footprint     # 200 concurrent `sleep` jobs: runner RSS, CPU, threads
    python bench/k8s_bench.py all

What is measured (FakeKubeApi and FakeCoordinator run in this process; the runner is one
``python -m skyrunner run`` process, and only that process is measured):

* overhead: wall time from the job being queued to its final update for a job whose script is
  ``true`` (``GIT_STRATEGY=none``): create Secrets and pod, watch it start, follow three
  container logs, delete the pod. The fake starts containers at once (no pulls, no scheduling
  delay), so this is the runner's cost plus the fake's process start-up.
* footprint: ``concurrent = 200`` and 200 jobs that each sleep until released: the runner's CPU
  use (utime+stime over wall time) during 20 s while all 200 pods run, its peak RSS, its thread count, the
  watch and log requests the API server saw (one pod watch and one event watch per namespace
  whatever the number of jobs; one log stream per container) and the runner's CPU time per job
  over the whole run (start, ramp-up, 20 s of following, end). The fake cluster runs in a process
  of its own: one event loop cannot serve 200 pods' kubelet, watches and logs and GitLab too.

Figures (development machine, 2 cores shared with other work, 2026-11-27):

========================================================  ==================
overhead per trivial job, median / p95                    0.65 s / 0.74 s
200 concurrent jobs: failed                               0
runner CPU while all 200 pods run                         0.036 cores
runner peak RSS (the high-water mark of the ramp-up)      279 MB
runner threads                                            4
watch requests in the whole run (2 watches, reconnects)   6
log requests (prepare + build of each job, no resume)     400
API requests per job (all kinds)                          13.6
runner CPU per job over the whole run                     0.18 CPU-s
ramp-up to 200 running pods                               255 s
========================================================  ==================

The ramp-up is the fake cluster's: one Python process starts 200 pods (each a prepare init
container running the helper, then two containers) on two cores; the API server it serves is
slow enough then that 12 pod creations timed out and were found created, and checkpoint writes
backed off. With GitLab's 3 s trace interval instead of 30 s, the runner's steady-state CPU is
0.24 cores, nearly all of it keep-alive PUTs to GitLab (the TraceSink), not Kubernetes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _runner_process import config_head, process_usage, run_benches, start_runner, stop_runner  # noqa: E402

from tests.fakes.coordinator import FakeCoordinator  # noqa: E402
from tests.fakes.kubeapi import FakeKubeApi  # noqa: E402


def write_config(path: Path, url: str, token: str, kube_url: str, kube_token: str, concurrent: int) -> Path:
    path.write_text(
        config_head(path, url, token, "kubernetes", concurrent)
        + f'  [runners.kubernetes]\n    host = "{kube_url}"\n    bearer_token = "{kube_token}"\n'
        f'    namespace = "default"\n    image = "alpine:3"\n    helper_image = "skyrunner-helper:bench"\n'
        f"    poll_timeout = 600\n"
    )
    return path


async def overhead(workdir: Path, jobs: int = 12) -> dict[str, float]:
    async with (
        FakeCoordinator(workdir / "gitlab-overhead", long_poll_s=30) as fake,
        FakeKubeApi(workdir / "kube-overhead") as kube,
    ):
        runner = fake.add_runner()
        repo = fake.create_repo("bench/project", {"README.md": "bench\n"})
        config = write_config(workdir / "overhead.toml", fake.url, runner.token, kube.url, kube.token, 1)
        process = await start_runner(config)
        try:
            times = []
            for _ in range(jobs):
                job = fake.enqueue(fake.make_job(repo, script=["true"], variables={"GIT_STRATEGY": "none"}))
                began = time.perf_counter()
                done = await fake.wait_for_job(job.id, timeout=120)
                assert done.state == "success", bytes(done.trace).decode()
                times.append(time.perf_counter() - began)
        finally:
            await stop_runner(process)
    warm = times[2:]
    return {
        "overhead_median_s": statistics.median(warm),
        "overhead_p95_s": sorted(warm)[max(int(len(warm) * 0.95) - 1, 0)],
    }


@contextlib.asynccontextmanager
async def cluster_process(folder: Path) -> AsyncIterator[dict[str, Any]]:
    """A FakeKubeApi in a process of its own (one event loop cannot serve 200 pods and GitLab)."""
    folder.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (a benchmark's setup)
    info = folder / "cluster.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "serve-cluster", str(folder), stdin=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with asyncio.timeout(30):
            while not info.exists():
                await asyncio.sleep(0.1)
        cluster = json.loads(info.read_text())
        yield cluster
    finally:
        process.terminate()
        await process.wait()
    stats = folder / "requests.json"
    if stats.exists():
        cluster.update(json.loads(stats.read_text()))


async def serve_cluster(folder: Path) -> None:
    """Run a FakeKubeApi until SIGTERM; then write how many requests of each kind it served."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with FakeKubeApi(folder / "kube", nodes=[{"metadata": {"name": f"node-{n}"}} for n in range(4)]) as kube:
        (folder / "cluster.json.tmp").write_text(json.dumps({"url": kube.url, "token": kube.token}))
        (folder / "cluster.json.tmp").rename(folder / "cluster.json")
        await stop.wait()
        requests = kube.requests
        stats = {
            "watch_requests": sum(1 for m, p in requests if m == "GET" and "watch=true" in p),
            "log_requests": sum(1 for m, p in requests if m == "GET" and p.split("?")[0].endswith("/log")),
            "all_requests": len(requests),
        }
        (folder / "requests.json").write_text(json.dumps(stats))


async def footprint(
    workdir: Path, jobs: int = int(os.environ.get("BENCH_JOBS", 200)), hold_s: int = 20
) -> dict[str, float]:
    async with (
        # GitLab's own interval when nobody watches the log (the fake's default is 3 s): at 3 s the
        # runner's keep-alive PUTs to GitLab, not Kubernetes, are most of its steady-state CPU
        FakeCoordinator(workdir / "gitlab-footprint", trace_update_interval=30) as fake,
        cluster_process(workdir / "cluster-footprint") as cluster,
    ):
        fake.record_requests = False
        runner = fake.add_runner()
        repo = fake.create_repo("bench/project", {"README.md": "bench\n"})
        config = write_config(
            workdir / "footprint.toml", fake.url, runner.token, cluster["url"], cluster["token"], jobs
        )
        process = await start_runner(config)
        try:
            await asyncio.sleep(1.0)
            cpu_start, _, _ = process_usage(process.pid)
            release = workdir / "release"  # the fake's containers see this machine's files
            script = ["echo sleeping", f"while [ ! -e {release} ]; do sleep 2; done"]
            fake.enqueue_many(repo, jobs, script=script, variables={"GIT_STRATEGY": "none"})
            began = time.perf_counter()
            async with asyncio.timeout(900):
                while (sleeping := sum(1 for j in fake.jobs.values() if b"\nsleeping\n" in j.trace)) < jobs - sum(
                    1 for j in fake.jobs.values() if j.state.is_final
                ):
                    states = Counter(j.state.value for j in fake.jobs.values())
                    cpu = process_usage(process.pid).cpu_s - cpu_start
                    print(
                        f"{time.perf_counter() - began:6.1f}s: {sleeping} sleeping, {dict(states)}, runner {cpu:.1f} CPU-s",
                        file=sys.stderr,
                    )
                    await asyncio.sleep(5)
            ramp_s = time.perf_counter() - began
            cpu_ramp, _, _ = process_usage(process.pid)
            t0 = time.perf_counter()
            peak, threads = 0, 0
            while time.perf_counter() - t0 < hold_s:
                _, rss, count = process_usage(process.pid)
                peak, threads = max(peak, rss), max(threads, count)
                await asyncio.sleep(0.25)
            cpu1, rss, _ = process_usage(process.pid)
            in_flight_cpu = (cpu1 - cpu_ramp) / (time.perf_counter() - t0)
            release.touch()
            done = await fake.wait_for_finished(jobs, timeout=900)
            cpu_end, rss, _ = process_usage(process.pid)
            peak = max(peak, rss)
        finally:
            await stop_runner(process)
    failed = [job for job in done if job.state != "success"]
    for job in failed:
        print(f"job {job.id} failed: {bytes(job.trace).decode()[-300:]}", file=sys.stderr)
    return {
        "footprint_jobs": jobs,
        "footprint_failed_jobs": len(failed),
        "footprint_ramp_up_s": ramp_s,
        "footprint_runner_cpu_cores_all_running": in_flight_cpu,
        "footprint_runner_peak_rss_mb": peak / 2**20,
        "footprint_runner_threads": threads,
        "footprint_watch_requests": cluster.get("watch_requests", -1),
        "footprint_log_requests": cluster.get("log_requests", -1),
        "footprint_api_requests_per_job": cluster.get("all_requests", -1) / jobs,
        "footprint_runner_cpu_s_per_job": (cpu_end - cpu_start) / jobs,
    }


async def main(which: str) -> None:
    # a SIGTERM (e.g. from timeout(1)) must still stop the runner and the fake's pods
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    # the fake runs every container as a process of this machine: python3 must be this one
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    await run_benches(which, {"overhead": overhead, "footprint": footprint}, "skyrunner-k8s-bench-")


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve-cluster"]:
        asyncio.run(serve_cluster(Path(sys.argv[2])))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=["overhead", "footprint", "all"], default="all", nargs="?")
    asyncio.run(main(parser.parse_args().which))
