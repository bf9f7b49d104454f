"""The sequencer under real sh and bash, in a temporary run directory."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from skyrunner.job.script import Phase, ScriptOptions, parse_stage_results, render_job_script
from skyrunner.job.spec import parse_job_spec


def job(script: list[str], after: list[str] | None = None, **extra: object) -> dict[str, object]:
    steps = [{"name": "script", "script": script, "when": "on_success"}]
    if after:
        steps.append({"name": "after_script", "script": after, "when": "always", "allow_failure": True})
    return {"id": 1, "token": "t", "steps": steps, "features": {"trace_sections": True}, **extra}


def prepare_run_dir(tmp_path: Path, payload: dict[str, object], opts: ScriptOptions | None = None) -> Path:
    run_dir = tmp_path / "run"
    for rel, content in render_job_script(parse_job_spec(payload), opts or ScriptOptions()).files().items():
        target = run_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    (tmp_path / "project").mkdir()
    return run_dir


def fake_python(where: Path) -> Path:
    """A stand-in for python3 that prints how the helper was called."""
    path = where / "fake-python"
    path.write_text('#!/bin/sh\nshift 2\necho helper "$@"\n')
    path.chmod(0o755)
    return path


def env_for(run_dir: Path, shell: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "SKYRUNNER_RUN_DIR": str(run_dir),
        "SKYRUNNER_SHELL": shell,
        "CI_PROJECT_DIR": str(run_dir.parent / "project"),
        "CI_BUILDS_DIR": str(run_dir.parent),
        "GITLAB_ENV": str(run_dir.parent / "gitlab_env"),
        "SKYRUNNER_PYTHON": str(fake_python(run_dir.parent)),
        "SKYRUNNER_PLAN": "plan.json",
    }


def run_phase(run_dir: Path, phase: Phase, shell: str = "sh") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["sh", str(run_dir / "sequencer.sh"), phase.value],
        env=env_for(run_dir, shell),
        capture_output=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_build_phase_runs_script_then_after_script(tmp_path: Path, shell: str) -> None:
    run_dir = prepare_run_dir(tmp_path, job(["echo one", "false", "echo never"], after=["echo status=$CI_JOB_STATUS"]))
    done = run_phase(run_dir, Phase.BUILD, shell)
    out = done.stdout.decode()
    assert done.returncode == 1
    assert "\x1b[32;1m$ echo one\x1b[0;m\none\n" in out
    assert "never" not in out.replace("$ echo never", "")
    assert "status=failed" in out
    assert out.index("section_start:") < out.index("step_script") < out.index("section_end:")
    assert out.rstrip("\r\x1b[0K").endswith(":after_script")
    assert parse_stage_results((run_dir / "build.results").read_text()) == {"step_script": 1, "after_script": 0}
    assert (run_dir / "build.exit").read_text() == "failed:1\n"


def test_exit_code_of_the_failing_command(tmp_path: Path) -> None:
    run_dir = prepare_run_dir(tmp_path, job(["exit 42"]))
    assert run_phase(run_dir, Phase.BUILD).returncode == 42
    assert (run_dir / "build.exit").read_text() == "failed:42\n"


def test_gitlab_env_is_loaded_by_later_stages(tmp_path: Path) -> None:
    payload = job(['echo "FROM_SCRIPT=hello" >> "$GITLAB_ENV"'], after=["echo got=$FROM_SCRIPT"])
    run_dir = prepare_run_dir(tmp_path, payload)
    assert b"got=hello" in run_phase(run_dir, Phase.BUILD).stdout


def test_failed_after_script_is_a_warning(tmp_path: Path) -> None:
    run_dir = prepare_run_dir(tmp_path, job(["true"], after=["exit 3"]))
    done = run_phase(run_dir, Phase.BUILD)
    assert done.returncode == 0
    assert b"WARNING: after_script failed, but job will continue unaffected: exit code 3" in done.stdout


def test_finish_phase_follows_the_build_marker(tmp_path: Path) -> None:
    payload = job(
        ["true"],
        cache=[{"key": "k", "paths": ["x"], "when": "always", "policy": "pull-push"}],
        artifacts=[{"paths": ["a"], "when": "on_failure"}],
    )
    run_dir = prepare_run_dir(tmp_path, payload)
    (run_dir / "build.exit").write_text("failed:2\n")
    out = run_phase(run_dir, Phase.FINISH).stdout.decode()
    assert "helper cache-save --job-status failed --plan plan.json" in out
    assert "helper artifacts-upload --job-status failed" in out
    assert "Saving cache for successful job" not in out
    (run_dir / "build.exit").write_text("canceled:143\n")
    (run_dir / "finish.results").unlink()
    done = run_phase(run_dir, Phase.FINISH)
    assert done.returncode == 0 and done.stdout == b""


def test_prepare_phase_calls_the_helper_and_hooks(tmp_path: Path) -> None:
    payload = job(["true"], hooks=[{"name": "pre_get_sources_script", "script": ["echo pre-hook"]}])
    run_dir = prepare_run_dir(tmp_path, payload, ScriptOptions(pre_get_sources_script="echo from-config"))
    out = run_phase(run_dir, Phase.PREPARE).stdout.decode()
    assert out.index("from-config") < out.index("pre-hook") < out.index("helper sources --plan plan.json")
    assert "Getting source from Git repository" in out


def test_with_a_helper_server_the_prepare_phase_calls_its_client(tmp_path: Path) -> None:
    run_dir = prepare_run_dir(tmp_path, job(["true"]))
    env = {
        **env_for(run_dir, "bash"),
        "SKYRUNNER_HELPER_SOCKET": "/run/h.sock",
        "SKYRUNNER_HELPER_CLIENT": "/x/client.py",
    }
    done = subprocess.run(["sh", str(run_dir / "sequencer.sh"), "prepare"], env=env, capture_output=True, timeout=30)
    assert done.returncode == 0
    # the fake python drops its first two arguments: here -I -S, then the client runs the step
    assert "helper /x/client.py sources --plan plan.json" in done.stdout.decode()


@pytest.mark.parametrize("sequencer", ["sh", "bash"])
def test_sigterm_stops_the_script_and_runs_after_script(tmp_path: Path, sequencer: str) -> None:
    payload = job(["echo started", "sleep 37.25 & sleep 37.5", "echo never"], after=["echo after=$CI_JOB_STATUS"])
    run_dir = prepare_run_dir(tmp_path, payload)
    with subprocess.Popen(
        [sequencer, str(run_dir / "sequencer.sh"), "build"],
        env=env_for(run_dir, "bash"),
        stdout=subprocess.PIPE,
        start_new_session=True,
    ) as proc:
        assert proc.stdout is not None
        first = b""
        while b"started" not in first:
            first += proc.stdout.readline()
        time.sleep(0.05)
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rest = proc.stdout.read()
        assert proc.wait(timeout=10) == 143
    assert time.monotonic() - began < 5
    assert b"after=canceled" in rest
    assert (run_dir / "build.exit").read_text() == "canceled:143\n"
    leftovers = subprocess.run(["pgrep", "-f", "sleep 37[.]"], capture_output=True, check=False)
    assert leftovers.stdout == b""


@pytest.mark.parametrize("sequencer", ["sh", "bash"])
@pytest.mark.parametrize(
    ("stop_file", "expected"),
    [
        ("canceled\n", "after=canceled"),
        ("timeout", "after=failed"),
        ('job.runner.gitlab.com/name="timeout-check"\nskyrunner.io/stop="canceled"\n', "after=canceled"),
        ('skyrunner.io/stop="timeout"\n', "after=failed"),
    ],
    ids=["canceled", "timeout-without-newline", "downward-api", "downward-api-timeout"],
)
def test_a_job_stopped_before_its_build_runs_only_after_script(
    tmp_path: Path, stop_file: str, expected: str, sequencer: str
) -> None:
    run_dir = prepare_run_dir(tmp_path, job(["echo must-not-run"], after=["echo after=$CI_JOB_STATUS"]))
    (run_dir / "stop").write_text(stop_file)
    env = {**env_for(run_dir, "sh"), "SKYRUNNER_STOP_FILE": str(run_dir / "stop")}
    done = subprocess.run(
        [sequencer, str(run_dir / "sequencer.sh"), "build"], env=env, capture_output=True, timeout=30, check=False
    )
    assert b"must-not-run\n" not in done.stdout
    assert expected.encode() in done.stdout
    assert done.returncode == 143


@pytest.mark.parametrize("sequencer", ["sh", "bash"])
@pytest.mark.parametrize(
    "stop_file",
    ['job.runner.gitlab.com/name="timeout"\n', "timeout|canceled\n", "\n", 'skyrunner.io/stop="later"\n'],
    ids=["mention", "alternatives", "empty-line", "unknown-reason"],
)
def test_lines_that_are_not_a_stop_reason_do_not_stop_the_job(tmp_path: Path, stop_file: str, sequencer: str) -> None:
    run_dir = prepare_run_dir(tmp_path, job(["echo ran"]))
    (run_dir / "stop").write_text(stop_file)
    env = {**env_for(run_dir, "sh"), "SKYRUNNER_STOP_FILE": str(run_dir / "stop")}
    done = subprocess.run(
        [sequencer, str(run_dir / "sequencer.sh"), "build"], env=env, capture_output=True, timeout=30, check=False
    )
    assert done.returncode == 0 and b"ran\n" in done.stdout


@pytest.mark.parametrize(("sequencer", "uses_date"), [("sh", True), ("bash", False)], ids=["sh", "bash"])
def test_section_markers_are_stamped_without_a_date_process_under_bash(
    tmp_path: Path, sequencer: str, uses_date: bool
) -> None:
    run_dir = prepare_run_dir(tmp_path, job(["true"]))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "date").write_text("#!/bin/sh\necho 1234567890\n")
    (bin_dir / "date").chmod(0o755)
    env = {**env_for(run_dir, "sh"), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    began = int(time.time())
    done = subprocess.run(
        [sequencer, str(run_dir / "sequencer.sh"), "build"], env=env, capture_output=True, timeout=30, check=False
    )
    stamps = [int(s) for s in re.findall(rb"section_(?:start|end):(\d+):step_script", done.stdout)]
    assert len(stamps) == 2
    if uses_date:
        assert stamps == [1234567890, 1234567890]
    else:
        assert all(began <= stamp <= time.time() + 1 for stamp in stamps)
