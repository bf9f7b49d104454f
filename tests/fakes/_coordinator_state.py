"""The fake GitLab's state: runners, the job queue with its per-runner versions, faults to inject.

Owns every decision that is not about HTTP: which runner may take which job (tags, protected refs,
restrictions, required features), the queue version each runner polls against and the wake-up of
held long polls, job cancellation, token lookup, and the fault schedule of ``fail_next``. The
request handlers (``_coordinator_runners``, ``_coordinator_jobs``, ``_coordinator_artifacts``) call
into it; ``FakeCoordinator`` exposes it to tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import string
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ._coordinator_model import LEGACY_SYSTEM_ID, Archive, FakeJob, FakeRunner, JobState, RecordedRequest
from ._coordinator_payload import finalize_for_runner

__all__ = ["CoordinatorState", "Fault", "JobSupply", "random_token"]

_ALPHABET = string.ascii_letters + string.digits + "-_"


def random_token(prefix: str, length: int = 20) -> str:
    """Return ``prefix`` + ``length`` random token characters (GitLab's token alphabet)."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


@dataclass
class Fault:
    """An answer ``fail_next`` scheduled for an endpoint."""

    status: int
    remaining: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class JobSupply:
    """Jobs made on demand when a runner finds the queue empty (``enqueue_many``)."""

    make: Callable[[], FakeJob]
    remaining: int | None  # None: endless
    only_runner: str | None = None
    protected: bool = True  # whether the jobs' ref is protected (for ref_protected runners)


class CoordinatorState:
    """Everything the fake GitLab knows; mutated by the handlers, read by tests."""

    def __init__(
        self,
        *,
        long_poll_s: float,
        trace_update_interval: int,
        registration_token: str,
        artifact_size_limit: int,
    ) -> None:
        self.long_poll_s = long_poll_s
        self.trace_update_interval = trace_update_interval
        self.registration_token = registration_token
        self.artifact_size_limit = artifact_size_limit
        self.url = ""
        self.registration_enabled = True
        self.final_update_202 = 0
        self.final_update_202_interval = 1
        self.trace_size_limit: int | None = None
        self.record_requests = True
        self.runners: dict[str, FakeRunner] = {}
        self.jobs: dict[int, FakeJob] = {}
        self.archives: dict[int, Archive] = {}
        self.requests: list[RecordedRequest] = []
        self.supply: JobSupply | None = None
        self.closing = False
        self._faults: dict[str, deque[Fault]] = {}
        self._versions: dict[str, str] = {}
        self._wakeups: dict[str, asyncio.Event] = {}
        self._queue: dict[int, None] = {}  # ids of pending jobs no runner has taken, in order
        self._by_token: dict[str, FakeJob] = {}
        self._next_runner_id = 1

    # -- runners -------------------------------------------------------------------------------

    def create_runner(self, token: str, **settings: Any) -> FakeRunner:
        """Store a new runner with ``token``; ``settings`` are FakeRunner fields."""
        if token in self.runners:
            raise ValueError(f"a runner with this token already exists (id {self.runners[token].id})")
        runner = FakeRunner(id=self._next_runner_id, token=token, **settings)
        self._next_runner_id += 1
        self.runners[token] = runner
        return runner

    def heartbeat(self, runner: FakeRunner, params: Mapping[str, Any]) -> None:
        """Record the runner manager (system_id) and its info, like authenticate_runner!."""
        info = params.get("info")
        system_id = str(params.get("system_id") or LEGACY_SYSTEM_ID)
        if isinstance(info, dict):
            runner.last_info = info
            runner.managers[system_id] = info
        else:
            runner.managers.setdefault(system_id, {})

    def rotate_token(self, runner: FakeRunner) -> str:
        """Give ``runner`` a new token (same prefix); the old one stops working."""
        prefix = next((p for p in ("glrtr-", "glrt-t3_", "glrt-") if runner.token.startswith(p)), "")
        new = random_token(prefix)
        del self.runners[runner.token]
        for job in self.jobs.values():
            job.runner_token = new if job.runner_token == runner.token else job.runner_token
            job.only_runner = new if job.only_runner == runner.token else job.only_runner
        self._versions.pop(runner.token, None)
        runner.token = new
        self.runners[new] = runner
        return new

    def remove_runner(self, runner: FakeRunner) -> None:
        del self.runners[runner.token]
        self._versions.pop(runner.token, None)

    # -- queue versions and long polling --------------------------------------------------------

    def queue_version(self, runner: FakeRunner) -> str:
        """Return the runner's queue version (GitLab's runner:build_queue:<token> in Redis)."""
        return self._versions.setdefault(runner.token, secrets.token_hex(16))

    async def wait_for_tick(self, runner: FakeRunner, hold_s: float) -> None:
        """Hold (Workhorse) until the runner's queue changes, the server closes, or ``hold_s`` pass."""
        if self.closing:
            return
        event = self._wakeups.setdefault(runner.token, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(hold_s):
                await event.wait()

    def tick(self, job: FakeJob | None = None) -> None:
        """Change the queue version of every runner that could take ``job`` (all when None)."""
        for runner in self.runners.values():
            if job is None or self._eligible(job, runner):
                self._versions[runner.token] = secrets.token_hex(16)
                self._wakeups.pop(runner.token, asyncio.Event()).set()

    def close(self) -> None:
        """Release every held long poll: the server is stopping."""
        self.closing = True
        for event in self._wakeups.values():
            event.set()

    # -- jobs ---------------------------------------------------------------------------------

    def add_job(self, job: FakeJob) -> None:
        """Queue ``job`` for the runners and wake those that could take it."""
        if job.id in self.jobs:
            raise ValueError(f"job {job.id} is already queued")
        job.enqueued_at = now()
        self.jobs[job.id] = job
        self._by_token[job.token] = job
        self._queue[job.id] = None
        self.tick(job)

    def job_by_token(self, token: str | None) -> FakeJob | None:
        return self._by_token.get(token) if token else None

    def pick_job(self, runner: FakeRunner, params: Mapping[str, Any]) -> FakeJob | None:
        """Assign the first job ``runner`` may take (Ci::RegisterJobService), or None.

        A job that needs a feature the runner did not declare is dropped with runner_unsupported
        and the search goes on, as GitLab does.
        """
        info = params.get("info")
        features = info.get("features") if isinstance(info, dict) else None
        declared = features if isinstance(features, dict) else {}
        for job_id in list(self._queue):
            job = self.jobs[job_id]
            if not self._eligible(job, runner):
                continue
            del self._queue[job_id]
            if any(declared.get(name) is not True for name in job.required_features):
                job.failure_reason = "runner_unsupported"
                job.transition(JobState.FAILED)
                continue
            return self._assign(job, runner, params, two_phase=declared.get("two_phase_job_commit") is True)
        return self._from_supply(runner, params, two_phase=declared.get("two_phase_job_commit") is True)

    def cancel(self, job_id: int) -> None:
        """Cancel like a user in the UI: graceful (canceling) when the runner supports it."""
        job = self.jobs[job_id]
        if job.state.is_final:
            return
        self._queue.pop(job_id, None)
        runner = self.runners.get(job.runner_token or "")
        graceful = runner is not None and runner.declares(job.system_id, "cancel_gracefully")
        if job.state is JobState.RUNNING and graceful:
            job.transition(JobState.CANCELING)
        else:
            job.transition(JobState.CANCELED)

    def _eligible(self, job: FakeJob, runner: FakeRunner) -> bool:
        return _may_take(runner, job.only_runner, job.tags, protected=_is_protected(job.payload))

    def _assign(
        self, job: FakeJob, runner: FakeRunner, params: Mapping[str, Any], *, two_phase: bool
    ) -> FakeJob:
        started = now()
        queued_for = int((started - (job.enqueued_at or started)).total_seconds())
        job.payload = finalize_for_runner(
            job.payload,
            runner=runner,
            archives=self.archives,
            started_at=started,
            queued_for_s=queued_for,
            queue_size=len(self._queue),
        )
        job.runner_token = runner.token
        job.system_id = str(params.get("system_id") or LEGACY_SYSTEM_ID)
        # two_phase_job_commit: the job stays pending until the runner's PUT state=running
        job.transition(JobState.PENDING if two_phase else JobState.RUNNING)
        return job

    def _from_supply(
        self, runner: FakeRunner, params: Mapping[str, Any], *, two_phase: bool
    ) -> FakeJob | None:
        supply = self.supply
        if supply is None or supply.remaining == 0:
            return None
        if not _may_take(runner, supply.only_runner, (), protected=supply.protected):
            return None
        if supply.remaining is not None:
            supply.remaining -= 1
        job = supply.make()
        job.enqueued_at = now()
        self.jobs[job.id] = job
        self._by_token[job.token] = job
        return self._assign(job, runner, params, two_phase=two_phase)

    # -- faults -------------------------------------------------------------------------------

    def add_fault(self, endpoint: str, fault: Fault) -> None:
        self._faults.setdefault(endpoint, deque()).append(fault)

    def take_fault(self, endpoint: str | None) -> Fault | None:
        """Consume one scheduled fault for ``endpoint``, if any."""
        queue = self._faults.get(endpoint or "")
        if not queue:
            return None
        fault = queue[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            queue.popleft()
        return fault


def _may_take(runner: FakeRunner, only_runner: str | None, tags: tuple[str, ...], *, protected: bool) -> bool:
    """Tell whether ``runner`` may take a job (restriction, paused, tags, access level)."""
    if runner.paused or only_runner not in (None, runner.token):
        return False
    if not tags and not runner.run_untagged:
        return False
    if not set(tags) <= set(runner.tag_list):
        return False
    return runner.access_level != "ref_protected" or protected


def _is_protected(payload: Mapping[str, Any]) -> bool:
    return bool((payload.get("git_info") or {}).get("protected"))


def now() -> datetime:
    return datetime.now(UTC)
