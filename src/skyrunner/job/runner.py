"""The JobRunner: one job's lifecycle, the same for every executor.

Timeline of :meth:`JobRunner.run`:

1. read the job's id and token (without them the job cannot even be reported), set up the
   masker and the TraceSink, and start its flusher;
2. accept the job (``PUT state=running``; a refusal drops it);
3. write the trace header, validate the payload (a bad one fails the job as a system failure),
   build the PreparedJob;
4. ``prepare_executor`` (runner-side section), then the phases ``prepare``, ``build`` and
   ``finish``, each run by the executor with the sequencer; the job timeout and GitLab's
   ``Job-Status`` turn into :meth:`cancel`, which asks the executor to stop and skips what is left;
5. always: the ``cleanup_file_variables`` section and the executor's cleanup, the last trace
   line, the final flush and the final ``PUT`` (sent again while GitLab answers 202).

Outcomes are data (:class:`JobOutcome`): which stage failed and how is decided by
:func:`decide_outcome` from the phases' results and the cancel reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from skyrunner.errors import ApiAuthError, ApiError, ExecutorError, JobSpecError
from skyrunner.executors.base import Executor, PhaseResult, Slot
from skyrunner.job._masking import DEFAULT_TOKEN_PREFIXES, Masker, render_section_end, render_section_start
from skyrunner.job.coordinator import Coordinator, JobRef, JobUpdate, RemoteState
from skyrunner.job.outcome import CancelReason, FailureReason, JobOutcome, JobResult, render_job_update
from skyrunner.job.prepare import RunnerIdentity, build_prepared_job
from skyrunner.job.script import Phase
from skyrunner.job.settings import JobSettings
from skyrunner.job.spec import JobSpec, Stage, parse_job_identity, parse_job_spec
from skyrunner.job.trace import TraceSink

__all__ = ["JobRunner", "ResumePoint", "decide_outcome", "job_logger"]

log = logging.getLogger(__name__)

GRACEFUL_STOP_LIMIT_S: Final = 330.0  # after_script's 5 minutes, and some
HARD_STOP_LIMIT_S: Final = 30.0
FINAL_UPDATE_ATTEMPTS: Final = 10
FINAL_UPDATE_PATIENCE_S: Final = 330.0  # GitLab applies the state itself after 5 minutes


def job_logger(job_id: int, short_token: str, project: str = "") -> logging.LoggerAdapter[logging.Logger]:
    """A logger whose lines carry the job id, the runner's short token and the project."""
    return logging.LoggerAdapter(log, {"job_id": job_id, "runner": short_token, "project": project})


def decide_outcome(results: Mapping[Phase, PhaseResult], cancel: CancelReason | None, timeout_s: int) -> JobOutcome:
    """Pure: how the job ended, from its phases' results and why it was stopped, if it was."""
    if cancel is CancelReason.TIMEOUT:
        return JobOutcome.timed_out(timeout_s)
    if cancel in (CancelReason.CANCELING, CancelReason.ABORTED):
        return JobOutcome.canceled()
    if cancel is CancelReason.RUNNER_STOPPING:
        return JobOutcome.interrupted()
    for phase in (Phase.PREPARE, Phase.BUILD, Phase.FINISH):
        result = results.get(phase)
        if result is None:
            continue
        if result.failure:
            return JobOutcome.system_failure(
                result.failure, result.failure_reason or FailureReason.RUNNER_SYSTEM_FAILURE
            )
        failed = result.failed_stage()
        if failed is None and result.exit_code != 0:
            failed = (phase.value, result.exit_code)
        if failed is None:
            continue
        stage, code = failed
        if phase is Phase.BUILD:
            return JobOutcome.script_failed(code)
        if phase is Phase.PREPARE:
            return JobOutcome.system_failure(f"{stage} failed: exit code {code}")
        return JobOutcome(JobResult.FAILED, FailureReason.SCRIPT_FAILURE, None, f"{stage} failed: exit code {code}")
    return JobOutcome.success()


def _masked_values(payload: Mapping[str, Any]) -> list[str]:
    """Masked values read straight from the payload: masking must work even for a bad payload."""
    values = [str(payload.get("token") or "")]
    for var in payload.get("variables") or []:
        if isinstance(var, Mapping) and var.get("masked") and var.get("value"):
            values.append(str(var["value"]))
    return [v for v in values if v]


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where an adopted job stands: its trace up to a checkpoint, and the phase running then.

    A runner that restarts while a job's pod keeps running adopts the job: the trace resumes at
    ``trace_offset`` (``trace_crc`` is the CRC-32 of the bytes before it), nothing before
    ``phase`` runs again, and the job timeout counts ``elapsed_s`` already spent.
    """

    trace_offset: int
    trace_crc: int
    phase: Phase
    elapsed_s: float = 0.0


class JobRunner:
    """Runs one job from acceptance to the final update (or from a ResumePoint)."""

    def __init__(
        self,
        payload: Mapping[str, Any],
        *,
        coordinator: Coordinator,
        executor: Executor,
        settings: JobSettings,
        identity: RunnerIdentity,
        slot: Slot | None = None,
        clock: Callable[[], float] = time.time,
        resume: ResumePoint | None = None,
    ) -> None:
        self._payload = payload
        self._coordinator = coordinator
        self._executor = executor
        self._settings = settings
        self._identity = identity
        self._slot = slot or Slot()
        self._clock = clock
        self._resume = resume
        self._cancel_reason: CancelReason | None = None
        self._aborted = False
        self._detached = False
        self._stage_task: asyncio.Task[JobOutcome] | None = None
        self._helpers: set[asyncio.Task[None]] = set()
        self._spec: JobSpec | None = None
        self.trace: TraceSink | None = None
        self.job_id: int | None = None
        self.phase = "received"  # what the job is doing now, for metrics and status
        self.received_at = time.monotonic()

    @property
    def cancel_reason(self) -> CancelReason | None:
        return self._cancel_reason

    async def detach(self) -> bool:
        """Leave the job running without this process, when the executor can (a pod can).

        The next runner process adopts it and finishes its trace; nothing is reported now.
        Returns False when the job cannot go on alone (it is then still ours to stop).
        """
        task = self._stage_task
        if task is None or task.done() or self._cancel_reason is not None:
            return False
        if not await self._executor.detach():
            return False
        self._detached = True
        task.cancel()
        return True

    def cancel(self, reason: CancelReason) -> None:
        """Stop the job; idempotent, the first reason is kept, an abort escalates a graceful stop."""
        if self._detached:
            return  # the job is the next runner process's now
        hard = reason.is_hard
        if reason is CancelReason.ABORTED:
            self._aborted = True
        if self._cancel_reason is not None and not hard:
            return
        first = self._cancel_reason is None
        if first:
            self._cancel_reason = reason
        if self._stage_task is None or self._stage_task.done():
            return
        self._spawn(self._stop_executor(reason, first))

    async def run(self) -> JobOutcome | None:
        """Run the job and report it; None when it could not be reported or was left running."""
        try:
            ident = parse_job_identity(self._payload)
        except JobSpecError as exc:
            log.error("dropping a job payload without id or token: %s", exc)
            return None
        self.job_id = ident.id
        ref = JobRef(ident.id, ident.token)
        jlog = job_logger(ident.id, self._settings.short_token, _project_path(self._payload))
        prefixes = [*DEFAULT_TOKEN_PREFIXES, *_token_prefixes(self._payload)]
        masker = Masker([*_masked_values(self._payload), self._settings.runner_token.get_secret_value()], prefixes)
        resume = self._resume
        trace = TraceSink(
            self._coordinator, ref, masker, output_limit=self._settings.output_limit_bytes,
            on_remote_state=self._on_remote_state,
            start_offset=resume.trace_offset if resume else 0, start_crc=resume.trace_crc if resume else 0,
        )  # fmt: skip
        self.trace = trace
        if resume is None:
            if not await self._accept(ref, jlog):
                return None
            jlog.info("job received")
        else:
            jlog.info("job adopted at trace offset %d, phase %s", resume.trace_offset, resume.phase.value)
        outcome = JobOutcome.interrupted()
        async with asyncio.TaskGroup() as group:
            group.create_task(trace.run(), name=f"job-{ident.id}:trace")
            self._stage_task = group.create_task(self._lifecycle(trace), name=f"job-{ident.id}:stages")
            try:
                outcome = await asyncio.shield(self._stage_task)
            except asyncio.CancelledError:
                if not self._stage_task.cancelled():
                    raise  # we are being cancelled ourselves, not our abandoned stage
                timeout = self._spec.timeout_s if self._spec else 0
                outcome = decide_outcome({}, self._cancel_reason, timeout)
            finally:
                outcome = await self._close(trace, outcome)
            await self._report(ref, trace, outcome, jlog)
        if self._detached:
            return None
        jlog.info("job finished: %s", outcome.trace_line())
        return outcome

    async def _accept(self, ref: JobRef, jlog: logging.LoggerAdapter[logging.Logger]) -> bool:
        try:
            result = await self._coordinator.update_job(ref, JobUpdate(state="running"))
        except ApiAuthError as exc:
            jlog.warning("job refused on acceptance: %s", exc)
            return False
        except ApiError as exc:
            jlog.warning("accepting the job failed, running it anyway: %s", exc)
            return True
        if result.cancel_reason() is CancelReason.ABORTED:
            jlog.warning("job is already %s; dropping it", result.job_status)
            return False
        return True

    async def _lifecycle(self, trace: TraceSink) -> JobOutcome:
        if self._resume is None:
            self._write_header(trace)
        try:
            spec = parse_job_spec(self._payload)
        except JobSpecError as exc:
            return JobOutcome.system_failure(str(exc))
        self._spec = spec
        remaining = spec.timeout_s - (self._resume.elapsed_s if self._resume else 0.0)
        timer = asyncio.get_running_loop().call_later(max(remaining, 0.0), self.cancel, CancelReason.TIMEOUT)
        try:
            return await self._run_phases(spec, trace)
        except (ExecutorError, JobSpecError) as exc:
            reason = FailureReason(getattr(exc, "failure_reason", FailureReason.RUNNER_SYSTEM_FAILURE))
            return JobOutcome.system_failure(str(exc), reason)
        except Exception as exc:  # the JobRunner boundary: our bug must not become a hung job
            log.exception("job %d: internal error", spec.id)
            return JobOutcome.system_failure(f"internal error: {type(exc).__name__}")
        finally:
            timer.cancel()

    async def _run_phases(self, spec: JobSpec, trace: TraceSink) -> JobOutcome:
        executor = self._executor
        prepared, warnings = build_prepared_job(
            spec, lambda path: executor.layout(self._slot, path), self._settings, self._identity,
            (self._slot.concurrent_id, self._slot.project_id), datetime.now(UTC),
        )  # fmt: skip
        self.phase = Stage.PREPARE_EXECUTOR.value
        if self._resume is None:
            for warning in warnings:
                trace.write_line(f"WARNING: {warning}", "yellow")
            self._section_start(trace, Stage.PREPARE_EXECUTOR)
            trace.write_heading(f'Preparing the "{executor.name}" executor')
            try:
                await executor.prepare(prepared, trace)
            finally:
                self._section_end(trace, Stage.PREPARE_EXECUTOR)
        else:
            await executor.prepare(prepared, trace)  # an adopted executor attaches, silently
        phases = list(Phase)
        if self._resume is not None:
            phases = phases[phases.index(self._resume.phase) :]
        results: dict[Phase, PhaseResult] = {}
        for phase in phases:
            if self._cancel_reason is not None and phase is not Phase.BUILD:
                break
            if not prepared.script.stages(phase):
                continue
            self.phase = phase.value
            result = await executor.run_phase(phase, trace)
            results[phase] = result
            if phase is Phase.PREPARE and (result.failure or result.exit_code != 0):
                break
        return decide_outcome(results, self._cancel_reason, spec.timeout_s)

    async def _close(self, trace: TraceSink, outcome: JobOutcome) -> JobOutcome:
        """Clean up whatever happened: cleanup section, executor cleanup, last trace line."""
        if self._detached:  # the job goes on without us: its trace too, in the next process
            with contextlib.suppress(ExecutorError):
                await asyncio.shield(self._executor.cleanup())
            return outcome
        self._section_start(trace, Stage.CLEANUP_FILE_VARIABLES)
        trace.write_heading("Cleaning up project directory and file based variables")
        try:
            await asyncio.shield(self._executor.cleanup())
        except ExecutorError as exc:
            trace.write_line(f"WARNING: cleanup failed: {exc}", "yellow")
        self._section_end(trace, Stage.CLEANUP_FILE_VARIABLES)
        trace.write(b"\n")
        if outcome.result is JobResult.SUCCESS:
            trace.write_line(outcome.trace_line(), "green")
        else:
            trace.write_line(outcome.trace_line(), "red")
        for task in list(self._helpers):
            task.cancel()
        return outcome

    async def _report(
        self, ref: JobRef, trace: TraceSink, outcome: JobOutcome, jlog: logging.LoggerAdapter[logging.Logger]
    ) -> None:
        """Flush the trace and send the final state, again while GitLab answers 202."""
        await trace.close()
        if self._detached:
            jlog.info("job left running for the next runner process to adopt")
            return
        if self._aborted or trace.stopped:
            jlog.info("job was aborted by gitlab; not reporting it")
            return
        supported = self._spec.features.failure_reasons if self._spec else []
        wire = render_job_update(outcome, supported)
        update = JobUpdate(
            state=wire.state.value, failure_reason=wire.failure_reason, exit_code=wire.exit_code,
            checksum=trace.checksum, bytesize=trace.bytesize,
        )  # fmt: skip
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FINAL_UPDATE_PATIENCE_S
        wait = 1.0
        for _ in range(FINAL_UPDATE_ATTEMPTS * 10):
            try:
                result = await self._coordinator.update_job(ref, update)
            except ApiAuthError as exc:
                jlog.warning("final update refused: %s", exc)
                return
            except ApiError as exc:
                jlog.warning("final update failed, retrying in %.0fs: %s", wait, exc)
            else:
                if result.accepted:
                    return
                wait = result.update_interval_s or wait
                await trace.close()
            if loop.time() + wait > deadline:
                jlog.error("giving up on the final update after %.0fs", FINAL_UPDATE_PATIENCE_S)
                return
            await asyncio.sleep(wait)
            wait = min(wait * 2, 64.0)

    # -- helpers -----------------------------------------------------------------------------
    def _on_remote_state(self, state: RemoteState) -> None:
        reason = state.cancel_reason()
        if reason is not None:
            log.info("job %s: gitlab says the job is %s", self.job_id, state.job_status)
            self.cancel(reason)

    async def _stop_executor(self, reason: CancelReason, first: bool) -> None:
        try:
            await self._executor.stop(reason)
        except ExecutorError as exc:
            log.warning("job %s: stopping the executor failed: %s", self.job_id, exc)
        if not first:
            return
        limit = HARD_STOP_LIMIT_S if reason.is_hard else GRACEFUL_STOP_LIMIT_S
        task = self._stage_task
        if task is None:
            return
        done, _ = await asyncio.wait({task}, timeout=limit)
        if not done:
            log.error("job %s: the executor did not stop within %.0fs; abandoning the stage", self.job_id, limit)
            task.cancel()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"job-{self.job_id}:stop")
        self._helpers.add(task)
        task.add_done_callback(self._helpers.discard)

    def _write_header(self, trace: TraceSink) -> None:
        ident, settings = self._identity, self._settings
        trace.write_line(f"Running with skyrunner {ident.version} ({ident.revision})")
        trace.write_line(f"  on {settings.runner_name} {settings.short_token}, system ID: {settings.system_id}")

    def _sections(self) -> bool:
        features = self._payload.get("features")
        return bool(isinstance(features, Mapping) and features.get("trace_sections"))

    def _section_start(self, trace: TraceSink, stage: Stage) -> None:
        if self._sections():
            trace.write(render_section_start(stage.value, at=self._clock()))

    def _section_end(self, trace: TraceSink, stage: Stage) -> None:
        if self._sections():
            trace.write(render_section_end(stage.value, at=self._clock()))


def _project_path(payload: Mapping[str, Any]) -> str:
    """The job's project for log lines, read leniently: the payload may not validate."""
    info = payload.get("job_info")
    if isinstance(info, Mapping):
        return str(info.get("project_full_path") or info.get("project_name") or "")
    return ""


def _token_prefixes(payload: Mapping[str, Any]) -> list[str]:
    features = payload.get("features")
    if isinstance(features, Mapping):
        return [str(p) for p in features.get("token_mask_prefixes") or [] if p]
    return []
