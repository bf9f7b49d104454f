"""The pod's shell scripts under a real ``sh`` in a temporary directory.

The kaniko sidecar's loop (``skyrunner-kaniko``) and ``skyrunner-build`` talk through a request
directory; here ``/kaniko/executor`` is a fake that prints its arguments, can wait for a go
file, and exits with the code given as ``--label=exit=<n>``. The prepare container's script is
run with its ``/skyrunner*`` paths pointed into the temporary directory.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from skyrunner.executors.kubernetes._kaniko import render_kaniko_files
from skyrunner.executors.kubernetes.podspec import KANIKO_LOOP_FILE, PREPARE, SKYRUNNER_BUILD_FILE
from tests.unit.executors.kubernetes.podspec_support import build, container, kube, payload, prepared

FAKE_EXECUTOR = """#!/bin/sh
printf 'args:'
for arg in "$@"; do printf ' [%s]' "$arg"; done
printf '\\n'
echo "step 1: unpacking"
while [ -n "$FAKE_GO" ] && [ ! -f "$FAKE_GO" ]; do sleep 0.02; done
echo "step 2: pushing" >&2
code=0
for arg in "$@"; do case "$arg" in --label=exit=*) code="${arg#--label=exit=}" ;; esac; done
exit "$code"
"""
POLL = "0.02"


@dataclass
class Pod:
    """The shared volume as the two containers see it, and the loop running in it."""

    root: Path
    kaniko_dir: Path
    marker: Path
    builds: Path
    project: Path
    bin: Path
    loop: subprocess.Popen[bytes] | None = None

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "PATH": os.environ["PATH"],
            "SKYRUNNER_KANIKO_DIR": str(self.kaniko_dir),
            "SKYRUNNER_KANIKO_EXECUTOR": str(self.root / "executor"),
            "SKYRUNNER_BUILD_MARKER": str(self.marker),
            "SKYRUNNER_KANIKO_POLL": POLL,
            "SKYRUNNER_KANIKO_SHARED": str(self.builds),
            "CI_BUILDS_DIR": str(self.builds),
            "CI_PROJECT_DIR": str(self.project),
            "FAKE_GO": str(self.root / "go"),
            **extra,
        }

    def start_loop(self) -> None:
        self.loop = subprocess.Popen(
            ["sh", str(self.bin / "skyrunner-kaniko")], env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        _wait_for(lambda: (self.kaniko_dir / "ready").exists())

    def request(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            ["sh", str(self.bin / "skyrunner-build"), *args],
            env=self.env(**env), cwd=self.project, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip


def _wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def pod(tmp_path: Path) -> Iterator[Pod]:
    bin_dir = tmp_path / "run" / "bin"
    bin_dir.mkdir(parents=True)
    for path, text in render_kaniko_files().items():
        (tmp_path / "run" / path).write_text(text)
    executor = tmp_path / "executor"
    executor.write_text(FAKE_EXECUTOR)
    executor.chmod(0o755)
    project = tmp_path / "builds" / "group" / "app"
    project.mkdir(parents=True)
    (project / "Dockerfile").write_text("FROM scratch\n")
    kaniko_dir = tmp_path / "run" / "kaniko"
    kaniko_dir.mkdir()
    state = Pod(tmp_path, kaniko_dir, tmp_path / "run" / "build.exit", tmp_path / "builds", project, bin_dir)
    yield state
    if state.loop is not None and state.loop.poll() is None:
        state.loop.kill()
    if state.loop is not None:
        state.loop.wait()
        assert state.loop.stdout is not None
        state.loop.stdout.close()


def test_a_request_is_handed_over_streamed_and_answered_with_kanikos_code(pod: Pod) -> None:
    pod.start_loop()
    requester = pod.request(
        "--destination", "registry.example.com/app:1", "--build-arg", "GREETING=hello world", "--cache",
        "--", "--label=exit=3",
    )  # fmt: skip
    assert requester.stdout is not None and requester.stderr is not None
    first = requester.stdout.readline().decode()
    assert first == (
        f"args: [--cleanup] [--context=dir://{pod.project}] [--dockerfile={pod.project}/Dockerfile] "
        "[--destination=registry.example.com/app:1] [--build-arg=GREETING=hello world] [--cache=true] "
        "[--label=exit=3]\n"
    )
    assert requester.stdout.readline() == b"step 1: unpacking\n"
    assert requester.poll() is None  # still building: the output came while kaniko ran
    (pod.root / "go").touch()
    rest, errors = requester.communicate(timeout=5)
    assert rest == b"step 2: pushing\n" and errors == b""
    assert requester.returncode == 3
    assert list(pod.kaniko_dir.iterdir()) == [pod.kaniko_dir / "ready"]  # the request is cleaned up


def test_the_loop_serves_several_builds_then_ends_with_the_build_phase(pod: Pod) -> None:
    pod.start_loop()
    (pod.root / "go").touch()
    (pod.project / "sub").mkdir()
    for args in (["-d", "r/a:1"], ["--context", "sub", "--dockerfile", "Dockerfile", "--no-push", "--target=test"]):
        out, _ = pod.request(*args).communicate(timeout=5)
        assert b"step 1: unpacking\nstep 2: pushing\n" in out
    assert f"[--context=dir://{pod.project}/sub] [--dockerfile={pod.project}/Dockerfile]".encode() in out
    assert pod.loop is not None and pod.loop.poll() is None
    pod.marker.write_text("success:0\n")
    assert pod.loop.wait(timeout=5) == 0


def test_a_stopped_build_stops_kaniko(pod: Pod) -> None:
    pod.start_loop()
    requester = pod.request("-d", "r/a:1")
    assert requester.stdout is not None
    requester.stdout.readline()
    requester.stdout.readline()
    requester.send_signal(signal.SIGTERM)
    assert requester.wait(timeout=5) == 143
    exits = lambda: list(pod.kaniko_dir.glob("*.run/exit"))  # noqa: E731
    _wait_for(lambda: exits())
    assert int(exits()[0].read_text()) == 128 + signal.SIGTERM
    requester.stdout.close()
    assert requester.stderr is not None
    requester.stderr.close()


@pytest.mark.parametrize(
    ("args", "env", "code", "message"),
    [
        (["--context", "/etc", "-d", "r/a:1"], {}, 2, "/etc is not in a directory the kaniko container shares"),
        (["--cache"], {}, 2, "give at least one --destination (or --no-push)"),
        (["--squash"], {}, 2, "unknown option --squash (give kaniko's own options after --)"),
        (["-d"], {}, 2, "-d needs a value"),
        (
            ["-d", "r/a:1", "--", "two\nlines"],
            {},
            2,
            "an argument contains a newline, which kaniko requests cannot carry",
        ),
        (
            ["-d", "r/a:1"],
            {"SKYRUNNER_KANIKO_DIR": "/nonexistent/kaniko"},
            125,
            "this job has no image builder: set SKYRUNNER_IMAGE_BUILDER=kaniko in its variables",
        ),
        (["-d", "r/a:1"], {"SKYRUNNER_KANIKO_WAIT": "0"}, 125, "the kaniko sidecar did not take the request within 0s"),
    ],
    ids=["outside", "no-destination", "unknown", "no-value", "newline", "no-sidecar", "not-taken"],
)
def test_skyrunner_build_refuses(pod: Pod, args: list[str], env: dict[str, str], code: int, message: str) -> None:
    requester = pod.request(*args, **env)
    out, errors = requester.communicate(timeout=5)
    assert (requester.returncode, out) == (code, b"")
    assert errors.decode().startswith(f"skyrunner-build: {message}") and errors.count(b"\n") == 1
    assert list(pod.kaniko_dir.iterdir()) == []  # nothing left for a sidecar to pick up


def test_scripts_are_rendered_from_the_constants() -> None:
    files = render_kaniko_files()
    assert set(files) == {KANIKO_LOOP_FILE, SKYRUNNER_BUILD_FILE}
    for text in files.values():
        assert "@RUN_DIR@" not in text and "@KANIKO_DIR@" not in text and "@KANIKO_EXECUTOR@" not in text
        assert '"${SKYRUNNER_KANIKO_DIR:-/skyrunner/kaniko}"' in text


def test_prepare_copies_the_run_dir_and_file_variables(tmp_path: Path) -> None:
    pairs = [{"key": "KUBECONFIG", "value": "kind: Config\n", "file": True, "public": False}]
    manifests = build(prepared(payload(variables=[*payload()["variables"], *pairs])), kube())
    command = container(manifests, PREPARE)["command"]
    job, run, builds = tmp_path / "job", tmp_path / "run", tmp_path / "builds"
    script = command[2].replace("/skyrunner-job", str(job)).replace("/skyrunner", str(run))
    args = [a.replace("/skyrunner-job", str(job)).replace("/builds", str(builds)) for a in command[4:]]
    (job / "run" / "phases").mkdir(parents=True)
    (job / "run" / "phases" / "prepare").write_text("prepare_script on_success step\n")
    (job / "run" / "sequencer.sh").write_text('echo "sequencer $1 in $SKYRUNNER_KANIKO_DIR"; umask\n')
    (job / "files").mkdir()
    (job / "files" / "0").write_text("kind: Config\n")
    run.mkdir()
    done = subprocess.run(["sh", "-c", script, PREPARE, *args], capture_output=True, timeout=5, check=True,
                          env={"PATH": os.environ["PATH"], "SKYRUNNER_KANIKO_DIR": str(run / "kaniko")})  # fmt: skip
    assert done.stdout.decode().split("\n")[:2] == [f"sequencer prepare in {run / 'kaniko'}", "0000"]
    assert (run / "phases" / "prepare").read_text() == "prepare_script on_success step\n"
    target = builds / "t3sttok3n" / "0" / "group" / "app.tmp" / "KUBECONFIG"
    assert target.read_text() == "kind: Config\n"
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o777  # the build user may write GITLAB_ENV there
    assert (run / "kaniko").is_dir()
