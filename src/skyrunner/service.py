"""The ``run`` command's supervisor: pollers, slots and jobs for every ``[[runners]]`` entry.

Ownership (every task has one owner): :meth:`RunnerService.run` owns, in one TaskGroup, the
pollers of each runner (``request_concurrency`` each) and one ``JobRunner.run()`` per job. A
poller takes a slot (``concurrent`` across the process, ``limit`` per runner) before it asks
GitLab for a job, hands the slot to the job it gets, and waits ``check_interval`` (with jitter)
after an empty answer. A kubernetes runner also gets an adoption task: at start and every few
minutes it takes over the job pods a previous process left running (``executors/kubernetes/
adoption.py``) and runs each as a resumed JobRunner in a slot of its own. OS signals only call
:meth:`RunnerService.request_stop`:

* ``GRACEFUL`` (SIGQUIT): stop asking for jobs; running jobs finish, bounded by
  ``shutdown_timeout``, after which they are stopped as below;
* ``ABORT`` (SIGTERM/SIGINT): stop asking, stop every job (``RUNNER_STOPPING``: reported failed
  with ``runner_system_failure``) and wait for the reports, bounded by ``shutdown_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from skyrunner.assembly import build_client, build_executor_factory, build_job_settings, runner_identity
from skyrunner.config import Config, RunnerConfig
from skyrunner.errors import ApiAuthError, ApiError, KubernetesApiError
from skyrunner.executors.base import Executor, ExecutorFactory, ExecutorObserver, Slot
from skyrunner.gitlab.client import CoordinatorClient
from skyrunner.job.outcome import CancelReason, JobOutcome
from skyrunner.job.prepare import RunnerIdentity
from skyrunner.job.runner import JobRunner, ResumePoint
from skyrunner.job.settings import JobSettings

if TYPE_CHECKING:
    from skyrunner.executors.kubernetes import AdoptedJob, KubernetesExecutorFactory

__all__ = ["Capacity", "JobObserver", "RunnerService", "Shutdown", "SlotPool"]

log = logging.getLogger(__name__)

UNHEALTHY_BACKOFF_S: Final = 60.0
ERROR_BACKOFF_MAX_S: Final = 60.0


class Shutdown(enum.Enum):
    GRACEFUL = "graceful"
    ABORT = "abort"


class JobObserver(Protocol):
    """Hears about jobs (the metrics hook)."""

    def job_started(self, runner: RunnerConfig, job_id: int) -> None: ...

    def job_finished(
        self, runner: RunnerConfig, job_id: int, outcome: JobOutcome | None, seconds: float, trace_bytes: int
    ) -> None: ...

    def request_error(self, runner: RunnerConfig, error: ApiError) -> None: ...

    def config_changed(self, config: Config) -> None: ...


class Capacity:
    """A resizable count of free slots (``concurrent``, ``limit``); 0 means unlimited."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.used = 0
        self._waiters: list[asyncio.Future[None]] = []

    async def acquire(self) -> None:
        while self.size and self.used >= self.size:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self.used += 1

    def release(self) -> None:
        self.used -= 1
        self._wake()

    def claim(self) -> None:
        """Take a slot even when none is free: for a job that already runs (an adopted pod)."""
        self.used += 1

    def resize(self, size: int) -> None:
        """Change the size; slots already taken stay taken."""
        self.size = size
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class SlotPool:
    """``CI_CONCURRENT_ID`` (lowest free across the process) and per-project ids."""

    def __init__(self) -> None:
        self._ids: set[int] = set()
        self._projects: dict[tuple[str, int], set[int]] = {}

    def take(self, runner: str, project_id: int) -> Slot:
        concurrent = _lowest_free(self._ids)
        self._ids.add(concurrent)
        used = self._projects.setdefault((runner, project_id), set())
        project = _lowest_free(used)
        used.add(project)
        return Slot(concurrent_id=concurrent, project_id=project)

    def give_back(self, runner: str, project_id: int, slot: Slot) -> None:
        self._ids.discard(slot.concurrent_id)
        used = self._projects.get((runner, project_id), set())
        used.discard(slot.project_id)
        if not used:
            self._projects.pop((runner, project_id), None)


def _lowest_free(used: set[int]) -> int:
    value = 0
    while value in used:
        value += 1
    return value


@dataclass(eq=False)
class RunnerWorker:
    """One ``[[runners]]`` entry at run time: its client, executor factory and running jobs."""

    config: RunnerConfig
    client: CoordinatorClient
    factory: ExecutorFactory
    settings: JobSettings
    identity: RunnerIdentity
    limit: Capacity
    last_update: str | None = None
    retired: asyncio.Event = field(default_factory=asyncio.Event)
    jobs: dict[int, JobRunner] = field(default_factory=dict)
    idle: asyncio.Event = field(default_factory=asyncio.Event)  # set while no job runs

    def __post_init__(self) -> None:
        self.idle.set()

    @property
    def key(self) -> str:
        return self.config.short_token


class RunnerService:
    """Runs the runners of one config.toml until asked to stop."""

    def __init__(
        self,
        config: Config,
        *,
        system_id: str,
        cwd: Path,
        observer: JobObserver | None = None,
        on_response: Callable[[str, str, int], None] | None = None,
        executor_observer: ExecutorObserver | None = None,
        max_builds: int = 0,
    ) -> None:
        self._executor_observer = executor_observer
        self._config = config
        self._system_id = system_id
        self._cwd = cwd
        self._observer = observer
        self._on_response = on_response
        self._max_builds = max_builds
        self._builds_started = 0
        self._slots = SlotPool()
        self._concurrent = Capacity(config.concurrent)
        self._stopping = asyncio.Event()
        self._shutdown: Shutdown | None = None
        self._workers: list[RunnerWorker] = []
        self._group: asyncio.TaskGroup | None = None
        self._job_tasks: set[asyncio.Task[None]] = set()

    # -- what operators see ------------------------------------------------------------------
    @property
    def config(self) -> Config:
        return self._config

    @property
    def started_jobs(self) -> int:
        return self._builds_started

    def running_jobs(self) -> list[tuple[RunnerConfig, int]]:
        return [(w.config, job_id) for w in self._workers for job_id in w.jobs]

    def job_phases(self) -> list[tuple[RunnerConfig, int, str, float]]:
        """Every running job with its current phase and seconds since it was received."""
        now = time.monotonic()
        return [(w.config, job_id, r.phase, now - r.received_at) for w in self._workers for job_id, r in w.jobs.items()]

    # -- control -----------------------------------------------------------------------------
    def request_stop(self, mode: Shutdown) -> None:
        """Stop asking for jobs; an ABORT also stops every running job."""
        if self._shutdown is Shutdown.ABORT:
            return
        self._shutdown = mode
        self._stopping.set()
        log.info("stopping (%s): %d jobs running", mode.value, len(self.running_jobs()))
        if mode is Shutdown.ABORT:
            self._stop_all_jobs()

    def apply_config(self, config: Config) -> None:
        """Take a reloaded config: new pollers for new or changed runners, running jobs untouched."""
        old = {w.config.model_dump_json(): w for w in self._workers}
        self._config = config
        self._concurrent.resize(config.concurrent)
        kept: list[RunnerWorker] = []
        for runner in config.runners:
            worker = old.pop(runner.model_dump_json(), None)
            kept.append(worker if worker is not None else self._start_worker(runner))
        for worker in old.values():
            worker.retired.set()
        self._workers = kept
        if self._observer:
            self._observer.config_changed(config)

    # -- running -----------------------------------------------------------------------------
    async def run(self) -> None:
        """Poll and run jobs until :meth:`request_stop` and until the last job reported."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            for runner in self._config.runners:
                self._workers.append(self._start_worker(runner))
            group.create_task(self._watch_shutdown(), name="shutdown")
        self._group = None

    def _start_worker(self, runner: RunnerConfig) -> RunnerWorker:
        assert self._group is not None
        worker = RunnerWorker(
            config=runner,
            client=build_client(runner, self._system_id, self._api_observer(runner)),
            factory=build_executor_factory(runner, self._cwd, self._executor_observer),
            settings=build_job_settings(runner, self._system_id),
            identity=runner_identity(runner),
            limit=Capacity(runner.limit),
        )
        pollers = [
            self._group.create_task(self._poll(worker), name=f"{worker.key}:poller-{n}")
            for n in range(runner.request_concurrency)
        ]
        self._group.create_task(self._close_when_done(worker, pollers), name=f"{worker.key}:closer")
        self._start_adoption(worker)
        return worker

    def _api_observer(self, runner: RunnerConfig) -> Callable[[str, int], None] | None:
        if self._on_response is None:
            return None
        return functools.partial(self._on_response, runner.short_token)

    async def _close_when_done(self, worker: RunnerWorker, pollers: list[asyncio.Task[None]]) -> None:
        await asyncio.gather(*pollers, return_exceptions=True)
        await worker.idle.wait()
        await worker.client.aclose()

    async def _poll(self, worker: RunnerWorker) -> None:
        failures = 0
        while not self._done(worker):
            job_started = False
            await self._concurrent.acquire()
            await worker.limit.acquire()
            try:
                if self._done(worker):
                    continue
                payload = await self._request(worker)
                failures = 0
                if payload is not None:
                    self._spawn_job(worker, payload)
                    job_started = True
                    continue
                delay = self._config.check_interval * random.uniform(0.9, 1.1)
            except ApiAuthError as exc:
                log.error(
                    "runner %s: gitlab refused the token, retrying in %.0fs: %s",
                    worker.key,
                    UNHEALTHY_BACKOFF_S,
                    exc,
                )
                self._report_error(worker, exc)
                delay = UNHEALTHY_BACKOFF_S
            except ApiError as exc:
                failures += 1
                delay = min(ERROR_BACKOFF_MAX_S, self._config.check_interval * 2**failures) * random.uniform(0.9, 1.1)
                log.warning("runner %s: job request failed, retrying in %.1fs: %s", worker.key, delay, exc)
                self._report_error(worker, exc)
            finally:
                if not job_started:
                    self._release(worker)
            await self._wait_or_stop(worker, delay)

    async def _request(self, worker: RunnerWorker) -> dict[str, Any] | None:
        """One job request, abandoned at once when the service stops."""
        request = asyncio.ensure_future(worker.client.request_job(worker.last_update))
        stop = asyncio.ensure_future(self._stopped_or_retired(worker))
        try:
            await asyncio.wait({request, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not request.done():
            request.cancel()
            await asyncio.gather(request, return_exceptions=True)
            return None
        result = request.result()
        worker.last_update = result.last_update
        return dict(result.payload) if result.payload is not None else None

    def _spawn_job(self, worker: RunnerWorker, payload: dict[str, Any]) -> None:
        assert self._group is not None
        self._builds_started += 1
        if self._max_builds and self._builds_started >= self._max_builds:
            self._stopping.set()
        job_id = payload.get("id") if isinstance(payload.get("id"), int) else -self._builds_started
        assert isinstance(job_id, int)
        runner = self._launch(worker, payload, job_id, worker.factory.create(job_id))
        if self._shutdown is Shutdown.ABORT:
            runner.cancel(CancelReason.RUNNER_STOPPING)  # recorded now, acted on when the job starts

    def _launch(
        self, worker: RunnerWorker, payload: Mapping[str, Any], job_id: int, executor: Executor,
        resume: ResumePoint | None = None,
    ) -> JobRunner:
        """Give the job a slot and a JobRunner, register it with its worker and start its task."""
        job_info = payload.get("job_info")
        project_id = int(job_info.get("project_id") or 0) if isinstance(job_info, dict) else 0
        slot = self._slots.take(worker.key, project_id)
        runner = JobRunner(
            payload, coordinator=worker.client, executor=executor, settings=worker.settings,
            identity=worker.identity, slot=slot, resume=resume,
        )  # fmt: skip
        worker.jobs[job_id] = runner
        worker.idle.clear()
        self._start_job(worker, runner, job_id, project_id, slot)
        return runner

    async def _run_job(self, worker: RunnerWorker, runner: JobRunner, job_id: int, project_id: int, slot: Slot) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        if self._observer:
            self._observer.job_started(worker.config, job_id)
        outcome: JobOutcome | None = None
        try:
            outcome = await runner.run()
        finally:
            worker.jobs.pop(job_id, None)
            if not worker.jobs:
                worker.idle.set()
            self._slots.give_back(worker.key, project_id, slot)
            self._release(worker)
            if self._observer:
                trace_bytes = runner.trace.bytesize if runner.trace else 0
                self._observer.job_finished(worker.config, job_id, outcome, loop.time() - began, trace_bytes)

    async def _watch_shutdown(self) -> None:
        await self._stopping.wait()
        for worker in self._workers:
            worker.retired.set()
        if self._shutdown is None:
            return  # max_builds reached: let the jobs finish
        if self._shutdown is Shutdown.GRACEFUL:
            if await self._jobs_done_within(self._config.shutdown_timeout):
                return
            left = await self._detach_all_jobs()
            log.warning(
                "shutdown_timeout reached: %d jobs left running for the next process, stopping %d",
                left, len(self.running_jobs()) - left,
            )  # fmt: skip
            self._stop_all_jobs()
        if not await self._jobs_done_within(self._config.shutdown_timeout):
            log.error("jobs did not report within shutdown_timeout; abandoning them")
            for task in list(self._job_tasks):
                task.cancel()

    async def _detach_all_jobs(self) -> int:
        """Leave the jobs that can go on alone (kubernetes pods) to the next runner process."""
        runners = [runner for worker in self._workers for runner in worker.jobs.values()]
        detached = await asyncio.gather(*(runner.detach() for runner in runners))
        return sum(detached)

    async def _jobs_done_within(self, seconds: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while self.running_jobs():
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.1)
        return True

    def _start_job(self, worker: RunnerWorker, runner: JobRunner, job_id: int, project_id: int, slot: Slot) -> None:
        assert self._group is not None
        task = self._group.create_task(self._run_job(worker, runner, job_id, project_id, slot), name=f"job-{job_id}")
        self._job_tasks.add(task)
        task.add_done_callback(self._job_tasks.discard)

    def _stop_all_jobs(self) -> None:
        for worker in self._workers:
            for runner in worker.jobs.values():
                runner.cancel(CancelReason.RUNNER_STOPPING)

    def _done(self, worker: RunnerWorker) -> bool:
        return self._stopping.is_set() or worker.retired.is_set()

    async def _stopped_or_retired(self, worker: RunnerWorker) -> None:
        stop = asyncio.ensure_future(self._stopping.wait())
        retired = asyncio.ensure_future(worker.retired.wait())
        try:
            await asyncio.wait({stop, retired}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            retired.cancel()

    async def _wait_or_stop(self, worker: RunnerWorker, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):  # not wait_for: on 3.11 it can swallow a cancel
                await self._stopped_or_retired(worker)

    def _release(self, worker: RunnerWorker) -> None:
        worker.limit.release()
        self._concurrent.release()

    def _report_error(self, worker: RunnerWorker, error: ApiError) -> None:
        if self._observer:
            self._observer.request_error(worker.config, error)

    # -- adoption: job pods that a previous process left running (kubernetes) ----------------
    def _start_adoption(self, worker: RunnerWorker) -> None:
        if worker.factory.name != "kubernetes":
            return
        from skyrunner.executors.kubernetes import KubernetesExecutorFactory

        if isinstance(worker.factory, KubernetesExecutorFactory):
            assert self._group is not None
            self._group.create_task(self._adopt(worker, worker.factory), name=f"{worker.key}:adoption")

    async def _adopt(self, worker: RunnerWorker, factory: KubernetesExecutorFactory) -> None:
        """Take over the runner's pods whose job still runs in GitLab: now and every few minutes."""
        from skyrunner.executors.kubernetes import ADOPT_EVERY_S, adopt_running_jobs

        while not self._done(worker):
            try:
                found = await adopt_running_jobs(factory, worker.client)
            except KubernetesApiError as exc:
                log.warning("runner %s: adopting running pods failed, retrying later: %s", worker.key, exc)
            else:
                for job in found.jobs:
                    self._spawn_adopted(worker, job)
            await self._wait_or_stop(worker, ADOPT_EVERY_S * random.uniform(0.9, 1.1))

    def _spawn_adopted(self, worker: RunnerWorker, job: AdoptedJob) -> None:
        self._concurrent.claim()
        worker.limit.claim()
        resume = ResumePoint(job.trace_offset, job.trace_crc, job.phase, job.elapsed_s)
        self._launch(worker, job.payload, job.job_id, job.executor, resume)
