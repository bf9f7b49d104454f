"""What operators scrape: Prometheus metrics, ``/health``, ``/ready`` and ``/status``.

Metric names follow gitlab-runner where it has them (``gitlab_runner_jobs``,
``gitlab_runner_concurrent``, ``gitlab_runner_limit``, ``gitlab_runner_errors_total``,
``gitlab_runner_api_request_statuses_total``, ``gitlab_runner_job_duration_seconds``) and add
skyrunner's own (``skyrunner_*``: pod start time, billed spec and cost, orphan pods deleted, trace
bytes). One :class:`Metrics` object per process owns its registry; the service reports jobs to it
(it is a ``JobObserver``), the GitLab clients report every answer, executors report pods.

``/ready`` is 200 while the config is loaded and GitLab answered within the last
``READY_WINDOW_S`` seconds; ``/status`` is the JSON ``skyrunner status`` prints.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Iterator
from typing import Any, Final, Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from skyrunner.config import Config, RunnerConfig
from skyrunner.errors import ApiError, ConfigError
from skyrunner.job.outcome import JobOutcome, JobResult
from skyrunner.logs import SECRET_FILTER

__all__ = ["READY_WINDOW_S", "Metrics", "RunningJobs", "serve_metrics"]

READY_WINDOW_S: Final = 300.0
LAST_ERRORS: Final = 20
_DURATION_BUCKETS: Final = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200)
_POD_START_BUCKETS: Final = (1, 2, 5, 10, 20, 30, 60, 120, 300)


class RunningJobs(Protocol):
    """What the metrics need from the service."""

    @property
    def config(self) -> Config: ...

    def job_phases(self) -> list[tuple[RunnerConfig, int, str, float]]: ...


class _JobsCollector(Collector):
    """``gitlab_runner_jobs``: jobs running now, by runner, executor and stage, read at scrape time."""

    def __init__(self) -> None:
        self.service: RunningJobs | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "gitlab_runner_jobs", "Jobs running now", labels=["runner", "executor", "stage", "state"]
        )
        counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
        if self.service is not None:
            for runner, _job, stage, _elapsed in self.service.job_phases():
                counts[(runner.short_token, runner.executor.value, stage)] += 1
        for (runner_token, executor, stage), count in sorted(counts.items()):
            family.add_metric([runner_token, executor, stage, "running"], count)
        yield family


class _ErrorCounter(logging.Handler):
    """Counts WARNING and ERROR log records (``gitlab_runner_errors_total``) and keeps the last ones."""

    def __init__(self, counter: Counter) -> None:
        super().__init__(logging.WARNING)
        self._counter = counter
        self.last: collections.deque[dict[str, Any]] = collections.deque(maxlen=LAST_ERRORS)
        self.addFilter(SECRET_FILTER)

    def emit(self, record: logging.LogRecord) -> None:
        level = "error" if record.levelno >= logging.ERROR else "warning"
        self._counter.labels(level=level).inc()
        self.last.append({"time": record.created, "level": level, "message": record.getMessage()})


class Metrics:
    """The process's metrics and health state."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._jobs = _JobsCollector()
        r.register(self._jobs)
        self.concurrent = Gauge("gitlab_runner_concurrent", "The concurrent setting", registry=r)
        self.limit = Gauge("gitlab_runner_limit", "The limit setting per runner", ["runner"], registry=r)
        self.errors = Counter("gitlab_runner_errors", "Warnings and errors logged", ["level"], registry=r)
        self.api = Counter(
            "gitlab_runner_api_request_statuses", "GitLab API answers", ["runner", "endpoint", "status"], registry=r
        )
        self.jobs_total = Counter("gitlab_runner_jobs", "Jobs started", ["runner"], registry=r)
        self.failed = Counter("gitlab_runner_failed_jobs", "Jobs failed", ["runner", "failure_reason"], registry=r)
        self.duration = Histogram(
            "gitlab_runner_job_duration_seconds", "Job durations", ["runner"], buckets=_DURATION_BUCKETS, registry=r
        )
        self.trace_bytes = Counter("skyrunner_trace_bytes", "Trace bytes produced", ["runner"], registry=r)
        self.pod_start = Histogram(
            "skyrunner_job_pod_start_seconds", "Pod creation to first container start", ["runner"],
            buckets=_POD_START_BUCKETS, registry=r,
        )  # fmt: skip
        self.cost = Counter("skyrunner_job_cost", "Estimated job cost", ["platform", "currency"], registry=r)
        self.vcpu_seconds = Counter(
            "skyrunner_job_billed_vcpu_seconds", "Billed vCPU-seconds", ["platform"], registry=r
        )
        self.gib_seconds = Counter("skyrunner_job_billed_gib_seconds", "Billed GiB-seconds", ["platform"], registry=r)
        self.orphans = Counter("skyrunner_orphan_pods_deleted", "Pods of finished jobs deleted", ["runner"], registry=r)
        self.error_log = _ErrorCounter(self.errors)
        self.last_contact = 0.0
        self.config_loaded = False

    # -- wiring ------------------------------------------------------------------------------
    def attach(self, service: RunningJobs) -> None:
        self._jobs.service = service
        self.apply_config(service.config)
        logging.getLogger().addHandler(self.error_log)

    def detach(self) -> None:
        logging.getLogger().removeHandler(self.error_log)

    def apply_config(self, config: Config) -> None:
        self.config_loaded = True
        self.concurrent.set(config.concurrent)
        for runner in config.runners:
            self.limit.labels(runner=runner.short_token).set(runner.limit)

    # -- observations ------------------------------------------------------------------------
    def api_response(self, runner: str, endpoint: str, status: int) -> None:
        self.api.labels(runner=runner, endpoint=endpoint, status=str(status)).inc()
        if 0 < status < 500:
            self.last_contact = time.monotonic()

    def job_started(self, runner: RunnerConfig, job_id: int) -> None:
        self.jobs_total.labels(runner=runner.short_token).inc()

    def job_finished(
        self, runner: RunnerConfig, job_id: int, outcome: JobOutcome | None, seconds: float, trace_bytes: int
    ) -> None:
        token = runner.short_token
        self.duration.labels(runner=token).observe(seconds)
        self.trace_bytes.labels(runner=token).inc(trace_bytes)
        if outcome is not None and outcome.result is not JobResult.SUCCESS:
            reason = outcome.reason.value if outcome.reason else "canceled"
            self.failed.labels(runner=token, failure_reason=reason).inc()

    def request_error(self, runner: RunnerConfig, error: ApiError) -> None:
        """Errors are counted through the log (every request error is logged once)."""

    def config_changed(self, config: Config) -> None:
        self.apply_config(config)

    def pod_started(self, runner: str, seconds: float) -> None:
        self.pod_start.labels(runner=runner).observe(seconds)

    def job_billed(self, platform: str, vcpu_seconds: float, gib_seconds: float, cost: float, currency: str) -> None:
        self.vcpu_seconds.labels(platform=platform).inc(vcpu_seconds)
        self.gib_seconds.labels(platform=platform).inc(gib_seconds)
        if currency:
            self.cost.labels(platform=platform, currency=currency).inc(cost)

    def orphan_pod_deleted(self, runner: str) -> None:
        self.orphans.labels(runner=runner).inc()

    # -- health ------------------------------------------------------------------------------
    def ready(self) -> tuple[bool, str]:
        if not self.config_loaded:
            return False, "config not loaded"
        if time.monotonic() - self.last_contact > READY_WINDOW_S:
            return False, "gitlab not reached recently"
        return True, "ok"

    def status(self, service: RunningJobs) -> dict[str, Any]:
        runners = []
        jobs = service.job_phases()
        for runner in service.config.runners:
            runners.append({
                "name": runner.name, "runner": runner.short_token, "executor": runner.executor.value, "url": runner.url,
                "limit": runner.limit,
                "jobs": [{"id": job, "stage": stage, "elapsed_s": round(elapsed, 1)}
                         for r, job, stage, elapsed in jobs if r.short_token == runner.short_token],
            })  # fmt: skip
        return {"concurrent": service.config.concurrent, "runners": runners, "last_errors": list(self.error_log.last)}


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        raise ConfigError(f"listen_address {address!r} is not host:port")
    return host.strip("[]") or "0.0.0.0", int(port)


async def serve_metrics(address: str, metrics: Metrics, service: RunningJobs) -> None:
    """Serve ``/metrics``, ``/health``, ``/ready`` and ``/status`` on ``address`` until cancelled."""
    host, port = _split_address(address)
    metrics.attach(service)

    async def prometheus(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry), content_type="text/plain", charset="utf-8")

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def ready(request: web.Request) -> web.Response:
        ok, why = metrics.ready()
        return web.Response(text=why + "\n", status=200 if ok else 503)

    async def status(request: web.Request) -> web.Response:
        return web.json_response(metrics.status(service))

    app = web.Application()
    app.add_routes([web.get("/metrics", prometheus), web.get("/health", health), web.get("/ready", ready),
                    web.get("/status", status)])  # fmt: skip
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            raise ConfigError(f"listen_address {address}: cannot listen: {exc.strerror}") from exc
        logging.getLogger(__name__).info("metrics, health and status on http://%s:%d/", host, port)
        await asyncio.Event().wait()  # until cancelled
    finally:
        metrics.detach()
        await runner.cleanup()
