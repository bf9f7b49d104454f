"""Image builds with the kaniko sidecar, end to end: the real CLI, the fake cluster, the fake GitLab.

kaniko cannot run here, so a fake executor stands in for it. The sidecar's loop runs
``/kaniko/executor`` (its path is rendered into ``skyrunner-kaniko``, and the pod sets no
``SKYRUNNER_KANIKO_EXECUTOR``), so the fake is a real script in a host directory that the config
mounts at ``/kaniko`` with ``[[runners.kubernetes.volumes.host_path]]``; the job's docker config
Secret is mounted over ``/kaniko/.docker`` in the kaniko container only. The fake records its
arguments and a copy of the docker config in ``/kaniko/seen`` (the host directory, so the test
reads them), prints kaniko-like lines and exits with ``--build-arg FAKE_KANIKO_EXIT=<n>``.

kaniko's ``--cleanup`` deletes its own container's files. The fake does that to a file that the
build container wrote before the build into its cache directory: a volume of the build container,
but a plain directory in the kaniko container. Were the executor run in the build container (the
reference deployment's way), the file would be gone and the job's next command would fail.
"""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

from tests.e2e.kubernetes.conftest import eventually, job_pods, runner_process, write_k8s_config
from tests.fakes.coordinator import FakeCoordinator
from tests.fakes.kubeapi import FakeKubeApi

PROJECT = "group/project"
FILES: dict[str, str | bytes] = {
    "Dockerfile": "FROM alpine:3.20\nRUN echo built\n",
    "README.md": "hello from the repo\n",
}
REGISTRY = "registry.example.com"
PASSWORD = "rEg1stry-pa55-9f3c2a"  # must never reach the trace
CREDENTIALS = [{"type": "registry", "url": REGISTRY, "username": "u", "password": PASSWORD}]

FAKE_EXECUTOR = """#!/bin/sh
# A stand-in for /kaniko/executor (see the test module's docstring).
seen=/kaniko/seen
mkdir -p "$seen"
: >"$seen/args"
code=0
dockerfile=""
for arg in "$@"; do
  printf '%s\\n' "$arg" >>"$seen/args"
  case "$arg" in
    --dockerfile=*) dockerfile="${arg#*=}" ;;
    --build-arg=FAKE_KANIKO_EXIT=*) code="${arg#*=*=}" ;;
  esac
done
if [ "$1" = --cleanup ]; then
  rm -f "@WIPED@"
fi
if [ -f /kaniko/.docker/config.json ]; then
  cp /kaniko/.docker/config.json "$seen/config.json"
  echo "INFO[0000] fake kaniko: docker config present"
fi
echo "INFO[0000] fake kaniko: $dockerfile starts with: $(head -n 1 "$dockerfile")"
sleep 0.1
echo "INFO[0001] fake kaniko: unpacking rootfs"
if [ "$code" != 0 ]; then
  echo "error building image: fake kaniko fails with $code" >&2
  exit "$code"
fi
for arg in "$@"; do
  case "$arg" in --destination=*) echo "INFO[0001] fake kaniko: pushed ${arg#*=}" ;; esac
done
exit 0
"""


def _trace(job: object) -> str:
    return bytes(job.trace).decode(errors="replace")  # type: ignore[attr-defined]


def _kaniko_home(workdir: Path, wiped: Path) -> Path:
    """The host directory mounted at /kaniko: the fake executor, and where it records."""
    home = workdir / "kaniko-home"
    home.mkdir()
    executor = home / "executor"
    executor.write_text(FAKE_EXECUTOR.replace("@WIPED@", str(wiped)))
    executor.chmod(executor.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return home


def _kaniko_volume(home: Path) -> str:
    return f'[[runners.kubernetes.volumes.host_path]]\n  name = "kaniko"\n  mount_path = "/kaniko"\n  host_path = "{home}"\n'


async def test_a_build_reaches_the_sidecar_and_the_job_goes_on(
    coordinator: FakeCoordinator, cluster: FakeKubeApi, workdir: Path
) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo(PROJECT, FILES)
    tool = workdir / "cache" / PROJECT / "tool"  # the build container's cache volume
    home = _kaniko_home(workdir, tool)
    destination = f"{REGISTRY}/{PROJECT}:1"
    script = [
        f"echo tool-from-before-the-build > {tool}",
        f"skyrunner-build --destination {destination} --build-arg VERSION=1 -- --label team=ci"
        f" && cat {tool} && test ! -e /kaniko/.docker/config.json && echo after-build",
        "echo next-command",
    ]
    payload = coordinator.make_job(repo, script=script, variables={"SKYRUNNER_IMAGE_BUILDER": "kaniko"})
    payload["credentials"] = CREDENTIALS
    job = coordinator.enqueue(payload)
    config = write_k8s_config(workdir / "config.toml", coordinator, runner, cluster, extra=_kaniko_volume(home))
    async with runner_process(config, workdir) as cli:
        done = await coordinator.wait_for_job(job.id, timeout=60)
        await eventually(lambda: not job_pods(cluster), 10, "no pod left")
    trace = _trace(done)
    assert done.state == "success", trace + cli.text[-3000:]
    project_dir = workdir / "builds" / PROJECT
    assert (home / "seen" / "args").read_text().splitlines() == [
        "--cleanup",
        f"--context=dir://{project_dir}",
        f"--dockerfile={project_dir}/Dockerfile",
        f"--destination={destination}",
        "--build-arg=VERSION=1",
        "--label",
        "team=ci",
    ]
    expected_lines = [
        "INFO[0000] fake kaniko: docker config present\n",
        f"INFO[0000] fake kaniko: {project_dir}/Dockerfile starts with: FROM alpine:3.20\n",
        "INFO[0001] fake kaniko: unpacking rootfs\n",
        f"INFO[0001] fake kaniko: pushed {destination}\n",
        "tool-from-before-the-build\n",
        "after-build\n",
        "next-command\n",
    ]
    positions = [trace.find(line) for line in expected_lines]
    assert -1 not in positions and positions == sorted(positions), trace
    auth = json.loads((home / "seen" / "config.json").read_text())["auths"][REGISTRY]
    assert auth["auth"] == base64.b64encode(f"u:{PASSWORD}".encode()).decode()
    for secret in (PASSWORD, auth["auth"]):
        assert secret not in trace and secret not in cli.text


async def test_a_failing_build_fails_the_job_with_its_exit_code(
    coordinator: FakeCoordinator, cluster: FakeKubeApi, workdir: Path
) -> None:
    runner = coordinator.add_runner()
    repo = coordinator.create_repo(PROJECT, FILES)
    home = _kaniko_home(workdir, workdir / "cache" / PROJECT / "tool")
    script = [
        "echo before-build",
        f"skyrunner-build --destination {REGISTRY}/{PROJECT}:broken --build-arg FAKE_KANIKO_EXIT=7",
        "echo never",
    ]
    payload = coordinator.make_job(repo, script=script, after_script=["echo after=$CI_JOB_STATUS"])
    payload["credentials"] = CREDENTIALS
    job = coordinator.enqueue(payload)
    builder = '[runners.kubernetes.serverless]\n  image_builder = "kaniko"\n'  # the config's default
    config = write_k8s_config(
        workdir / "config.toml", coordinator, runner, cluster, extra=builder + _kaniko_volume(home)
    )
    async with runner_process(config, workdir) as cli:
        done = await coordinator.wait_for_job(job.id, timeout=60)
        await eventually(lambda: not job_pods(cluster), 10, "no pod left")
    trace = _trace(done)
    assert (done.state, done.failure_reason, done.exit_code) == ("failed", "script_failure", 7), trace + cli.text
    assert "--build-arg=FAKE_KANIKO_EXIT=7" in (home / "seen" / "args").read_text().splitlines()
    assert "before-build\n" in trace and "INFO[0001] fake kaniko: unpacking rootfs\n" in trace
    assert "error building image: fake kaniko fails with 7\n" in trace
    assert "after=failed\n" in trace and "\nnever" not in trace and "fake kaniko: pushed" not in trace
    assert trace.rstrip().endswith("ERROR: Job failed: exit code 7\x1b[0;m")
    assert PASSWORD not in trace and PASSWORD not in cli.text
