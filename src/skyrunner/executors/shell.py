"""The shell executor: a job's phases as local processes on this machine.

Each phase is one ``sequencer.sh <phase>`` process in its own session, run by bash when that is
the job's shell (the sequencer then stamps section markers without ``date`` processes), else by
sh. The sequencer runs each stage body in a session of its own (``setsid``), so a cancel or
timeout (SIGTERM to the sequencer, which stops the stage and runs after_script) and an abort
(SIGKILL to both sessions) reach every process the job started. The builds dir is
``<builds_dir>/<short token>/<concurrent project id>/<project path>`` as in gitlab-runner, kept
between jobs so that ``GIT_STRATEGY=fetch`` can reuse it. Helper steps go to the runner's
helper fork server when it is up (``executors/helper_server.py``), else start the helper.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Final

from skyrunner.errors import ExecutorError
from skyrunner.executors.base import JobLayout, PhaseResult, PreparedJob, Slot, TraceWriter
from skyrunner.executors.helper_server import CLIENT_SCRIPT, shared_helper_server
from skyrunner.helper.plan import render_plan
from skyrunner.job.outcome import CancelReason
from skyrunner.job.script import Phase, parse_stage_results

__all__ = ["ShellExecutor", "ShellExecutorFactory"]

log = logging.getLogger(__name__)

READ_CHUNK: Final = 64 * 1024
FORCE_KILL_AFTER_S: Final = 10.0  # after after_script's own timeout
STOP_FILE: Final = "stop"  # in the run dir: why the job is being stopped, read by the sequencer


class ShellExecutorFactory:
    """Makes shell executors for one runner's config."""

    name = "shell"

    def __init__(self, builds_dir: Path, cache_dir: Path, short_token: str, shell: str = "") -> None:
        self.builds_dir = builds_dir
        self.cache_dir = cache_dir
        self.short_token = short_token
        self.shell = shell
        self.helper_server = shared_helper_server()
        self.helper_server.warm_up()  # ready by the first job, usually: no job waits for it

    def create(self, job_id: int) -> ShellExecutor:
        return ShellExecutor(self, job_id)


class ShellExecutor:
    """Runs one job's phases as local processes."""

    name = "shell"

    def __init__(self, factory: ShellExecutorFactory, job_id: int) -> None:
        self._factory = factory
        self._job_id = job_id
        self._job: PreparedJob | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._phase: Phase | None = None
        self._stop_reason: CancelReason | None = None
        self._force_kill: asyncio.TimerHandle | None = None
        self._shell = "sh"
        self._helper_socket: str | None = None

    def layout(self, slot: Slot, project_path: str) -> JobLayout:
        builds = self._factory.builds_dir.resolve()
        project = builds / self._factory.short_token / str(slot.project_id) / project_path
        tmp = Path(f"{project}.tmp")
        return JobLayout(
            builds_dir=str(builds),
            project_dir=str(project),
            tmp_dir=str(tmp),
            run_dir=str(tmp / "skyrunner"),
            cache_dir=str(self._factory.cache_dir.resolve() / project_path),
            shared_environment=True,
        )

    async def prepare(self, job: PreparedJob, trace: TraceWriter) -> None:
        shell = self._factory.shell or ("bash" if shutil.which("bash") else "sh")
        trace.write_line(f"Using Shell ({shell}) executor...")
        self._shell = "bash" if shell == "bash" else "sh"
        self._job = job
        self._helper_socket = self._factory.helper_server.ready_socket()
        try:
            await asyncio.to_thread(_write_run_dir, job)
        except OSError as exc:
            raise ExecutorError(
                f"cannot prepare the build directory {job.layout.tmp_dir}: {exc.strerror}"
            ) from exc

    async def run_phase(self, phase: Phase, trace: TraceWriter) -> PhaseResult:
        job = self._require_job()
        run_dir = Path(job.layout.run_dir)
        results_file = run_dir / f"{phase}.results"
        results_file.unlink(missing_ok=True)
        try:
            process = await asyncio.create_subprocess_exec(
                self._shell, str(run_dir / "sequencer.sh"), phase.value,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                env=self._environment(job), cwd=job.layout.builds_dir, start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            raise ExecutorError(f"cannot start {self._shell}: {exc.strerror}") from exc
        self._process, self._phase = process, phase
        try:
            assert process.stdout is not None
            while chunk := await process.stdout.read(READ_CHUNK):
                trace.write(chunk)
            code = await process.wait()
        except BaseException:
            self._kill_all()
            raise
        finally:
            self._process = None
            if self._force_kill is not None:
                self._force_kill.cancel()
        stages = parse_stage_results(results_file.read_text()) if results_file.exists() else {}
        return PhaseResult(exit_code=code, stages=stages)

    async def stop(self, reason: CancelReason) -> None:
        """Stop the running phase: gracefully (after_script runs) or at once."""
        if self._stop_reason is not None:
            if reason.is_hard:
                self._kill_all()
            return
        self._stop_reason = reason
        job = self._job
        if job is not None:
            stop_file = Path(job.layout.run_dir) / STOP_FILE
            with contextlib.suppress(OSError):
                stop_file.write_text("timeout\n" if reason is CancelReason.TIMEOUT else "canceled\n")
        if reason.is_hard:
            self._kill_all()
            return
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            grace = job.after_script_timeout_s + FORCE_KILL_AFTER_S if job else FORCE_KILL_AFTER_S
            self._force_kill = asyncio.get_running_loop().call_later(grace, self._kill_all)

    async def detach(self) -> bool:
        """A local process cannot outlive the runner safely: the job must be stopped instead."""
        return False

    async def cleanup(self) -> None:
        """Remove the run directory (it holds the plan) and the file-type variables."""
        self._kill_all()
        job = self._job
        if job is None:
            return
        await asyncio.to_thread(_remove_job_files, job)

    def _kill_all(self) -> None:
        process, job = self._process, self._job
        if process is None or job is None:
            return
        groups = [process.pid]
        pid_file = Path(job.layout.run_dir) / f"{self._phase}.stage-pid"
        with contextlib.suppress(OSError, ValueError):
            groups.append(int(pid_file.read_text().strip()))
        for group in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)

    def _require_job(self) -> PreparedJob:
        if self._job is None:
            raise ExecutorError("run_phase called before prepare")
        return self._job

    def _environment(self, job: PreparedJob) -> dict[str, str]:
        env = {**os.environ, **job.environment()}
        env.update(
            SKYRUNNER_RUN_DIR=job.layout.run_dir,
            SKYRUNNER_PLAN=str(Path(job.layout.run_dir) / "plan.json"),
            SKYRUNNER_PYTHON=sys.executable,
            SKYRUNNER_SECTIONS="1" if job.spec.features.trace_sections else "0",
            SKYRUNNER_STOP_FILE=str(Path(job.layout.run_dir) / STOP_FILE),
            SKYRUNNER_AFTER_SCRIPT_TIMEOUT=str(job.after_script_timeout_s),
        )
        if self._factory.shell:
            env["SKYRUNNER_SHELL"] = self._factory.shell
        if self._helper_socket is not None:
            env.update(SKYRUNNER_HELPER_SOCKET=self._helper_socket, SKYRUNNER_HELPER_CLIENT=CLIENT_SCRIPT)
        return env


def _write_run_dir(job: PreparedJob) -> None:
    """Write the sequencer, phases, stage bodies, plan and file variables (0600/0700)."""
    run_dir = Path(job.layout.run_dir)
    shutil.rmtree(run_dir, ignore_errors=True)
    Path(job.layout.builds_dir).mkdir(parents=True, exist_ok=True)
    run_dir.mkdir(parents=True, mode=0o700)
    for rel, content in job.script.files().items():
        target = run_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        target.write_text(content)
    _write_private(run_dir / "plan.json", render_plan(job.plan))
    for path, content in job.variables.files().items():
        _write_private(Path(path), content)


def _write_private(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    os.chmod(path, 0o600)


def _remove_job_files(job: PreparedJob) -> None:
    shutil.rmtree(job.layout.run_dir, ignore_errors=True)
    for path in job.variables.files():
        Path(path).unlink(missing_ok=True)
    Path(job.layout.tmp_dir, "gitlab_runner_env").unlink(missing_ok=True)
