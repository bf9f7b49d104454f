"""Jobs on the kubernetes executor, end to end: the real CLI, the fake cluster, the fake GitLab."""

from __future__ import annotations

import io
import re
import socket
import time
import zipfile
from pathlib import Path

import httpx2
import pytest

from tests.e2e.conftest import start_cli
from tests.e2e.kubernetes.conftest import eventually, job_pods, runner_process, write_k8s_config
from tests.e2e.test_operations import free_port, metric
from tests.fakes._coordinator_model import FAILURE_REASONS
from tests.fakes.coordinator import FakeCoordinator
from tests.fakes.kubeapi import FakeKubeApi

FILES = {"README.md": "hello from the repo\n"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _trace(job: object) -> str:
    return bytes(job.trace).decode(errors="replace")  # type: ignore[attr-defined]


async def test_job_with_service_cache_and_artifacts(
    coordinator: FakeCoordinator, cluster: FakeKubeApi, workdir: Path
) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo("group/project", FILES)
    port = _free_port()
    service = {
        "name": "python:3",
        "alias": "web",
        "command": ["python3", "-m", "http.server", str(port), "--bind", "127.0.0.1"],
    }
    ask = f"python3 -c \"import urllib.request as u; print('service says', u.urlopen('http://127.0.0.1:{port}/').status)\""
    script = [
        f"for i in $(seq 50); do {ask} 2>/dev/null && break; sleep 0.1; done",
        "test -f vendor/dep.txt && echo restored $(cat vendor/dep.txt) || echo no cache yet",
        "mkdir -p vendor && echo from-$CI_JOB_ID > vendor/dep.txt",
        "echo result-$CI_JOB_ID > out.txt",
    ]
    common = dict(
        script=script,
        services=[service],
        cache=[{"key": "deps", "paths": ["vendor/"]}],
        artifacts=[{"name": "out", "paths": ["out.txt"]}],
    )
    first = coordinator.enqueue(coordinator.make_job(repo, **common))
    second = coordinator.enqueue(coordinator.make_job(repo, **common))
    host_cache = workdir / "host-cache"
    host_cache.mkdir()
    volume = (
        "[[runners.kubernetes.volumes.host_path]]\n"
        f'  name = "cache"\n  mount_path = "{workdir / "cache"}"\n  host_path = "{host_cache}"\n'
    )
    config = write_k8s_config(workdir / "config.toml", coordinator, runner, cluster, concurrent=1, extra=volume)
    async with runner_process(config, workdir) as cli:
        done_first = await coordinator.wait_for_job(first.id, timeout=60)
        done_second = await coordinator.wait_for_job(second.id, timeout=60)
    for done in (done_first, done_second):
        trace = _trace(done)
        assert done.state == "success", trace + cli.text[-3000:]
        assert done.checksum_ok is True
        assert "service says 200\n" in trace
        assert "Billed spec: " in trace and "no estimated cost (no prices configured)" in trace
        assert re.search(
            r"is running on node node-1: waited \d+\.\d s for scheduling, \d+\.\d s for image pulls", trace
        )
        (archive,) = [a for a in done.artifacts if a.artifact_type == "archive"]
        with zipfile.ZipFile(io.BytesIO(archive.data)) as zipped:
            assert zipped.read("out.txt") == f"result-{done.id}\n".encode()
    assert "no cache yet" in _trace(done_first)
    assert f"restored from-{first.id}\n" in _trace(done_second)
    await eventually(lambda: not job_pods(cluster), 10, "no pod left")
    assert not cluster.objects("Secret", "default") or all(
        not s["metadata"]["name"].startswith("runner-") for s in cluster.objects("Secret", "default")
    )


async def test_failing_script_reports_its_exit_code(
    coordinator: FakeCoordinator, cluster: FakeKubeApi, workdir: Path
) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo("group/project", FILES)
    port = free_port()
    job = coordinator.enqueue(
        coordinator.make_job(
            repo, script=["echo before", "exit 3", "echo never"], after_script=["echo after=$CI_JOB_STATUS"]
        )
    )
    prices = "[runners.kubernetes.serverless.prices]\n  per_vcpu_second = 0.00001\n  per_gib_second = 0.000001\n"
    config = write_k8s_config(
        workdir / "config.toml",
        coordinator,
        runner,
        cluster,
        cpu_request='"500m"',
        memory_request='"1Gi"',
        extra=prices,
        listen_address=f"127.0.0.1:{port}",
    )
    async with runner_process(config, workdir) as cli:
        done = await coordinator.wait_for_job(job.id, timeout=60)
        async with httpx2.AsyncClient(timeout=5) as http:
            metrics = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    trace = _trace(done)
    assert metric(metrics, "skyrunner_job_pod_start_seconds_count") == 1
    assert metric(metrics, "skyrunner_job_billed_vcpu_seconds_total", platform="none") > 0
    assert metric(metrics, "skyrunner_job_cost_total", platform="none", currency="USD") > 0
    assert (done.state, done.failure_reason, done.exit_code) == ("failed", "script_failure", 3), trace + cli.text
    assert re.search(
        r"Billed spec: [0-9.]+ vCPU / [0-9.]+ GiB \(pod requests\), \d+ s, estimated cost USD [0-9.]+", trace
    )
    assert "before\n" in trace and "after=failed\n" in trace and "\nnever" not in trace
    assert trace.rstrip().endswith("ERROR: Job failed: exit code 3\x1b[0;m")
    await eventually(lambda: not job_pods(cluster), 10, "no pod left")


async def test_timeout_deletes_the_pod_and_runs_after_script(
    coordinator: FakeCoordinator, cluster: FakeKubeApi, workdir: Path
) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo("group/project", FILES)
    job = coordinator.enqueue(
        coordinator.make_job(
            repo, script=["echo started", "sleep 60"], after_script=["echo after=$CI_JOB_STATUS"], timeout=4
        )
    )
    config = write_k8s_config(workdir / "config.toml", coordinator, runner, cluster)
    async with runner_process(config, workdir) as cli:
        done = await coordinator.wait_for_job(job.id, timeout=60)
    trace = _trace(done)
    assert (done.state, done.failure_reason) == ("failed", "job_execution_timeout"), trace + cli.text
    assert "after=" in trace
    assert "ERROR: Job failed: execution took longer than 4s seconds" in trace
    await eventually(lambda: not job_pods(cluster), 10, "no pod left")


@pytest.mark.parametrize("how", ["graceful", "abort"])
async def test_cancel_removes_the_pod_within_5_seconds(
    coordinator: FakeCoordinator, cluster: FakeKubeApi, workdir: Path, how: str
) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo("group/project", FILES)
    job = coordinator.enqueue(
        coordinator.make_job(repo, script=["echo started", "sleep 60"], after_script=["echo after ran"])
    )
    config = write_k8s_config(workdir / "config.toml", coordinator, runner, cluster)
    async with runner_process(config, workdir) as cli:
        await eventually(lambda: b"started\n" in job.trace, 60, "the script ran")
        coordinator.cancel(job.id)  # canceling: the runner stops the script, after_script runs
        if how == "abort":
            coordinator.cancel(job.id)  # canceled: the runner kills the pod at once
        canceled_at = time.monotonic()
        await eventually(lambda: not job_pods(cluster), 10, "no pod left")
        gone_after = time.monotonic() - canceled_at
        done = await coordinator.wait_for_job(job.id, timeout=30)
    assert done.state == "canceled", _trace(done) + cli.text
    assert gone_after < 5.0
    if how == "graceful":
        assert "after ran\n" in _trace(done)


@pytest.mark.parametrize("which", ["build", "helper"])
async def test_image_pull_failure_fails_fast_quoting_the_event(
    coordinator: FakeCoordinator, cluster: FakeKubeApi, workdir: Path, which: str
) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo("group/project", FILES)
    image = {"name": "alpine:pull-error"} if which == "build" else None
    # a GitLab that knows image_pull_failure (the fake's list, like GitLab's, does not)
    features = {"trace_sections": True, "failure_reasons": [*FAILURE_REASONS, "image_pull_failure"]}
    job = coordinator.enqueue(coordinator.make_job(repo, script=["echo never"], image=image, features=features))
    helper = '"helper:pull-error"' if which == "helper" else '"skyrunner-helper:test"'
    config = write_k8s_config(workdir / "config.toml", coordinator, runner, cluster, helper_image=helper)
    began = time.monotonic()
    async with runner_process(config, workdir) as cli:
        done = await coordinator.wait_for_job(job.id, timeout=60)
    trace = _trace(done)
    assert done.state == "failed", trace + cli.text
    assert done.updates[-1]["failure_reason"] == "image_pull_failure"
    assert time.monotonic() - began < 30
    container = "build" if which == "build" else "prepare"
    assert f"Kubernetes event: Warning Failed (container {container}): Failed to pull image" in trace
    assert "cannot be pulled" in trace and "\nnever" not in trace
    await eventually(lambda: not job_pods(cluster), 10, "no pod left")


async def test_a_dropped_log_stream_leaves_no_gap_and_no_duplicate(
    coordinator: FakeCoordinator, cluster: FakeKubeApi, workdir: Path
) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo("group/project", FILES)
    script = [
        'for i in $(seq 1 60); do echo "line $i of the build"; [ $((i % 10)) = 0 ] && sleep 0.2; done',
        "python3 -c \"print('x' * 40000)\"",  # the runtime splits it into 16 KiB records
    ]
    job = coordinator.enqueue(coordinator.make_job(repo, script=script))
    config = write_k8s_config(workdir / "config.toml", coordinator, runner, cluster)
    cluster.drop_log_streams(after_bytes=700, count=3)
    async with runner_process(config, workdir) as cli:
        done = await coordinator.wait_for_job(job.id, timeout=60)
    trace = _trace(done)
    assert done.state == "success", trace + cli.text
    assert done.checksum_ok is True
    lines = re.findall(r"^line (\d+) of the build$", trace, re.MULTILINE)
    assert lines == [str(i) for i in range(1, 61)]
    assert trace.count("Getting source from Git repository") == 1
    assert "\n" + "x" * 40000 + "\n" in trace
    assert cli.text.count("dropped, resuming") >= 1
    await eventually(lambda: not job_pods(cluster), 10, "no pod left")


async def test_run_single_with_the_kubeconfig(
    coordinator: FakeCoordinator, cluster: FakeKubeApi, workdir: Path
) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo("group/project", FILES)
    job = coordinator.enqueue(coordinator.make_job(repo, script=["cat README.md"], image={"name": "alpine:3"}))
    kubeconfig = cluster.kubeconfig(workdir / "kubeconfig")
    args = ["run-single", "--executor", "kubernetes", "--url", coordinator.url, "--token", runner.token]
    cli = await start_cli(
        [*args, "--max-builds", "1", "--system-id-dir", str(workdir)], workdir, {"KUBECONFIG": str(kubeconfig)}
    )
    code = await cli.wait(60)
    done = await coordinator.wait_for_job(job.id, timeout=5)
    assert (code, done.state) == (0, "success"), bytes(done.trace).decode() + cli.text
    assert "hello from the repo\n" in _trace(done)
    assert f"kubernetes via kubeconfig {cluster.url} ({kubeconfig}, context fake)" in cli.text
    await eventually(lambda: not job_pods(cluster), 10, "no pod left")


async def test_a_pod_the_api_refuses_is_shown_in_the_trace(
    coordinator: FakeCoordinator, cluster: FakeKubeApi, workdir: Path
) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo("group/project", FILES)
    job = coordinator.enqueue(coordinator.make_job(repo, script=["echo never"]))
    patch = (
        '[[runners.kubernetes.pod_spec]]\n  name = "bad"\n  patch_type = "merge"\n'
        '  patch = \'{"restartPolicy": "Sometimes"}\'\n'
    )
    config = write_k8s_config(workdir / "config.toml", coordinator, runner, cluster, extra=patch)
    async with runner_process(config, workdir) as cli:
        done = await coordinator.wait_for_job(job.id, timeout=60)
    trace = _trace(done)
    assert (done.state, done.failure_reason) == ("failed", "runner_system_failure"), trace + cli.text
    assert "The Kubernetes API refused the pod:" in trace and "\n  restartPolicy: Sometimes\n" in trace
    assert 'Invalid: Pod "runner-' in trace and 'spec.restartPolicy: Unsupported value: "Sometimes"' in trace
    assert not job_pods(cluster)
    assert not [s for s in cluster.objects("Secret", "default") if s["metadata"]["name"].startswith("runner-")]
