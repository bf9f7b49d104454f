"""The kubernetes executor: one self-sequencing pod per job, created, watched, logged, deleted.

Timeline of one job (the JobRunner calls these in order; see ``executors/base.py``):

1. :meth:`KubernetesExecutor.prepare`: resolve the platform (once per factory), build the
   manifests (``podspec.build_pod``), create the pull Secret and the job Secret, create the pod,
   make the pod the Secrets' owner, then wait for the pod to be scheduled and its ``prepare``
   init container to start: ``poll_timeout`` at most, but an image that cannot be pulled, an
   unschedulable pod or a container that cannot be created fails at once (with the Kubernetes
   event quoted in the trace); the trace says how long scheduling and image pulls took;
2. :meth:`run_phase` ``prepare``, ``build``, ``finish``: follow the ``prepare``, ``build`` and
   ``helper`` container's log into the trace (``logs.py``), checkpoint the trace on the pod
   every few seconds (only at offsets GitLab acknowledged), and read the exit code and stage
   codes from the container's status (OOM kills, evictions and deadlines become failures);
   after ``finish`` the pod is deleted (its services ran until then);
3. :meth:`stop`: graceful (cancel, timeout) sets the ``skyrunner.io/stop`` annotation and
   deletes the pod with its grace period, so the build's SIGTERM trap runs after_script; an
   abort deletes it with grace 0;
4. :meth:`cleanup`: delete the pod if it is still there, print the cost line.

An adopted executor (:meth:`KubernetesExecutorFactory.attach`) finds the pod instead of
creating it and resumes the log at the checkpoint; phases before the checkpoint's container
are not read again, only their results.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import yaml
from lightkube.resources.core_v1 import Pod, Secret

from skyrunner.config import KubernetesConfig, PodSpecPatch, ServerlessPlatform
from skyrunner.errors import ConfigError, ExecutorError, KubernetesApiError
from skyrunner.executors.base import ExecutorObserver, JobLayout, PhaseResult, PreparedJob, Slot, TraceWriter
from skyrunner.executors.kubernetes import podspec
from skyrunner.executors.kubernetes._checkpoint import (
    Checkpoint,
    CheckpointTracker,
    PositionedTrace,
    render_checkpoint,
)
from skyrunner.executors.kubernetes._logparse import LogCursor
from skyrunner.executors.kubernetes._names import token_slug
from skyrunner.executors.kubernetes._podstate import (
    billed_seconds,
    describe_end,
    pulled_seconds,
    started_after_s,
)
from skyrunner.executors.kubernetes._waiting import Started, wait_for_start
from skyrunner.executors.kubernetes.connection import Connection
from skyrunner.executors.kubernetes.cost import Prices, build_prices, estimate_cost, render_cost_line
from skyrunner.executors.kubernetes.logs import LogFollower
from skyrunner.executors.kubernetes.pods import PodApi
from skyrunner.executors.kubernetes.sizing import PodSize
from skyrunner.executors.kubernetes.spec_table import SpecTable, load_spec_table
from skyrunner.executors.kubernetes.watch import PodView, PodWatchHub
from skyrunner.job.outcome import CancelReason, FailureReason
from skyrunner.job.script import Phase
from skyrunner.platforms import Platform, detect_platform

__all__ = ["CONTAINERS", "KubernetesExecutor", "KubernetesExecutorFactory"]

log = logging.getLogger(__name__)

CONTAINERS: Final = {Phase.PREPARE: podspec.PREPARE, Phase.BUILD: podspec.BUILD, Phase.FINISH: podspec.HELPER}
ORDER: Final = (podspec.PREPARE, podspec.BUILD, podspec.HELPER)
CHECKPOINT_EVERY_S: Final = 5.0
FIRST_CHECKPOINT_S: Final = 1.0
CHECKPOINT_BACKOFF_MAX_S: Final = 60.0
END_WAIT_S: Final = 10.0
END_WAIT_ROUNDS: Final = 6
GONE_WAIT_S: Final = 10.0


class KubernetesExecutor:
    """Runs one job as one pod."""

    name = "kubernetes"

    def __init__(self, factory: KubernetesExecutorFactory, job_id: int, attach: Checkpoint | None = None) -> None:
        self._factory = factory
        self._job_id = job_id
        self._attach = attach
        self._tracker = CheckpointTracker(attach)
        self._view: PodView | None = None
        self._trace: TraceWriter | None = None
        self._size: PodSize | None = None
        self._platform = Platform.NONE
        self._unowned: list[str] = []
        self._stop_reason: CancelReason | None = None
        self._deleted = False  # no checkpoint is written once the pod is being deleted
        self._killed = False  # deleted with grace 0
        self._final_pod: tuple[Pod, datetime] | None = None
        self._detached = False  # left running for the next runner process: never deleted by us

    # -- layout and prepare ------------------------------------------------------------------------
    def layout(self, slot: Slot, project_path: str) -> JobLayout:
        builds = self._factory.builds_dir.rstrip("/") or "/"
        project = f"{builds.rstrip('/')}/{project_path}"
        return JobLayout(
            builds_dir=builds,
            project_dir=project,
            tmp_dir=f"{project}.tmp",
            run_dir=podspec.RUN_DIR,
            cache_dir=f"{self._factory.cache_dir.rstrip('/')}/{project_path}",
            shared_environment=False,
        )

    async def prepare(self, job: PreparedJob, trace: TraceWriter) -> None:
        self._trace = trace
        factory = self._factory
        self._platform = await factory.platform()
        try:
            namespace = podspec.resolve_namespace(factory.cfg, job.variables)
            names = podspec.pod_names(self._job_id, factory.short_token, namespace)
            files = await asyncio.to_thread(_read_patch_files, factory.cfg.pod_spec)
            manifests = podspec.build_pod(
                job, factory.cfg, names=names, platform=self._platform, table=factory.table, patch_files=files
            )
        except ConfigError as exc:
            if self._attach is not None:
                raise ExecutorError(f"the adopted job's pod cannot be described any more: {exc}") from exc
            raise ExecutorError(str(exc), failure_reason=FailureReason.RUNNER_CONFIGURATION_ERROR) from exc
        self._size = manifests.size
        if self._attach is not None:
            await self._attach_to(names)
            return
        image = job.spec.image.name if job.spec.image and job.spec.image.name else factory.cfg.image or ""
        trace.write_line(f"Using Kubernetes executor with image {image} ...")
        trace.write_line(f"Using Kubernetes namespace: {namespace}")
        if self._platform is not Platform.NONE:
            trace.write_line(f"Pod sized for {self._platform.value}: {manifests.size.label}")
        for warning in manifests.warnings:
            trace.write_line(f"WARNING: {warning}", "yellow")
        await self._create(manifests, names, trace)
        trace.write_line(f"Waiting for pod {namespace}/{names.pod} to start...")
        await self._wait_started(trace)

    async def _attach_to(self, names: podspec.PodNames) -> None:
        self._view = self._factory.hub.track(names.namespace, names.pod)
        pod = await self._factory.api.get_pod(names.namespace, names.pod)
        if pod is None:
            self._view.mark_gone()
        else:
            self._view.update(pod)
        if self._view.gone:
            raise ExecutorError(f"the pod {names.namespace}/{names.pod} of the adopted job is gone")
        log.info("job %d: attached to pod %s/%s", self._job_id, names.namespace, names.pod)

    async def _create(self, manifests: podspec.PodManifests, names: podspec.PodNames, trace: TraceWriter) -> None:
        api, ns = self._factory.api, names.namespace
        self._view = self._factory.hub.track(ns, names.pod)
        secrets = [s for s in (manifests.pull_secret, manifests.secret) if s is not None]
        created: list[str] = []
        try:
            for secret in secrets:
                await _create_secret(api, secret)
                created.append(secret.metadata.name if secret.metadata and secret.metadata.name else "")
            pod = await _create_pod(api, manifests.pod)
        except KubernetesApiError as exc:
            if exc.code == 422:
                trace.write_line("The Kubernetes API refused the pod:", "red")
                trace.write(yaml.safe_dump(manifests.pod.to_dict(), sort_keys=False).encode())
            for name in created:
                await api.delete_secret(ns, name)
            self._factory.hub.untrack(self._view)
            raise
        self._view.update(pod)
        log.info("job %d: pod %s/%s created", self._job_id, ns, names.pod)
        for name in created:
            try:
                await api.own_secret(ns, name, pod)
            except KubernetesApiError as exc:
                log.warning("job %d: secret %s keeps no owner, deleting it at the end: %s", self._job_id, name, exc)
                self._unowned.append(name)
        if self._stop_reason is not None:
            await self._delete(grace_s=0)  # stopped while the pod was being created

    async def _wait_started(self, trace: TraceWriter) -> None:
        view = self._require_view()
        cfg = self._factory.cfg
        result = await wait_for_start(view, podspec.PREPARE, (podspec.PREPARE,), float(cfg.poll_timeout))
        if result.state is Started.GONE:
            if self._stop_reason is not None:
                return
            raise ExecutorError(f"the pod {view.namespace}/{view.name} was deleted before it started")
        if result.state is Started.PROBLEM and result.problem is not None:
            trace.write_line(f"Kubernetes event: {result.problem.quote}", "yellow")
            raise ExecutorError(result.problem.message, failure_reason=result.problem.failure_reason)
        if result.state is Started.TIMEOUT:
            if result.last_warning:
                trace.write_line(f"Kubernetes event: {result.last_warning}", "yellow")
            phase = view.pod.status.phase if view.pod and view.pod.status else "unknown"
            raise ExecutorError(
                f"the pod {view.namespace}/{view.name} did not start within poll_timeout "
                f"({cfg.poll_timeout}s, phase {phase})"
            )
        node = view.pod.spec.nodeName if view.pod and view.pod.spec else ""
        scheduled = result.scheduled_after_s or 0.0
        pulls = pulled_seconds(view.events)
        started = started_after_s(view.pod, podspec.PREPARE) if view.pod else None
        if self._factory.observer is not None and started is not None:
            self._factory.observer.pod_started(self._factory.short_token, started)
        trace.write_line(
            f"Pod {view.namespace}/{view.name} is running on node {node}: waited {scheduled:.1f} s for "
            f"scheduling, {pulls:.1f} s for image pulls"
        )

    # -- phases ------------------------------------------------------------------------------------
    async def run_phase(self, phase: Phase, trace: TraceWriter) -> PhaseResult:
        view = self._require_view()
        container = CONTAINERS[phase]
        if self._attach is not None and ORDER.index(container) < ORDER.index(self._attach.container):
            return await self._result(container)  # read before the restart: its result only
        resuming = self._attach is not None and self._attach.container == container
        if not resuming and isinstance(trace, PositionedTrace) and (position := trace.position()) is not None:
            self._tracker.offer(Checkpoint(container, None, 0, *position))
        if container != podspec.PREPARE:
            problem = await self._wait_container(container, trace)
            if problem is not None:
                return problem
        cursor = LogCursor(self._attach.time, self._attach.lines_at_time) if resuming and self._attach else None
        follower = LogFollower(self._factory.api, view, container, trace, cursor=cursor, tracker=self._tracker)
        # owned here and ended below; not a TaskGroup, which would wrap the follower's own
        # errors (KubernetesApiError, an ExecutorError the JobRunner handles) in an ExceptionGroup
        checkpoints = asyncio.get_running_loop().create_task(
            self._checkpoints(trace), name=f"job-{self._job_id}:checkpoint"
        )
        try:
            await follower.run()
        finally:
            checkpoints.cancel()
            await asyncio.gather(checkpoints, return_exceptions=True)
        result = await self._result(container)
        if phase is Phase.FINISH:
            await self._finish_pod()
        return result

    async def _wait_container(self, container: str, trace: TraceWriter) -> PhaseResult | None:
        view = self._require_view()
        watched = [c.name for c in (view.pod.spec.containers if view.pod and view.pod.spec else [])]
        result = await wait_for_start(view, container, watched, float(self._factory.cfg.poll_timeout))
        if result.state is Started.PROBLEM and result.problem is not None:
            trace.write_line(f"Kubernetes event: {result.problem.quote}", "yellow")
            problem = result.problem
            return PhaseResult(exit_code=1, failure=problem.message, failure_reason=problem.failure_reason)
        if result.state is Started.TIMEOUT and self._stop_reason is None:
            return PhaseResult(
                exit_code=1,
                failure=f"container {container} did not start within poll_timeout ({self._factory.cfg.poll_timeout}s)",
                failure_reason=FailureReason.RUNNER_SYSTEM_FAILURE,
            )
        return None  # started, or the pod is gone (the result says how)

    async def _result(self, container: str) -> PhaseResult:
        view = self._require_view()
        # the log has ended with the container; its terminated state follows in the watch
        for _ in range(END_WAIT_ROUNDS):
            if await view.wait_container_ended(container, END_WAIT_S) or (
                await view.refresh() and view.container_ended(container)
            ):
                break
        return describe_end(view.pod, container)

    async def _checkpoints(self, trace: TraceWriter) -> None:
        """Write the newest acknowledged checkpoint on the pod every few seconds."""
        if not isinstance(trace, PositionedTrace):
            return
        view = self._require_view()
        pause = CHECKPOINT_EVERY_S
        while not view.gone:
            # soon after the start (an adoption needs a first checkpoint), then every few seconds;
            # longer after a failed write, not to add load to an API server that is struggling
            first = self._tracker.last_written is None and pause <= CHECKPOINT_EVERY_S
            await view.wait_gone(FIRST_CHECKPOINT_S if first else pause)
            point = self._tracker.due(trace.sent)
            if point is None or view.gone or self._deleted:
                continue
            if (error := await self._write_checkpoint(view, point)) is None:
                pause = CHECKPOINT_EVERY_S
            else:
                pause = min(pause * 2, CHECKPOINT_BACKOFF_MAX_S)
                log.warning("job %d: checkpoint not written, next try in %.0fs: %s", self._job_id, pause, error)

    async def _write_checkpoint(self, view: PodView, point: Checkpoint) -> KubernetesApiError | None:
        """Annotate the pod with ``point``; the API's error, if any, is the caller's to handle."""
        try:
            await self._factory.api.annotate_pod(
                view.namespace, view.name, {podspec.ANNOTATION_CHECKPOINT: render_checkpoint(point)}
            )
        except KubernetesApiError as exc:
            return exc
        self._tracker.written(point)
        return None

    # -- stop and cleanup --------------------------------------------------------------------------
    async def stop(self, reason: CancelReason) -> None:
        """Stop the job: graceful (after_script runs) or at once."""
        hard = reason.is_hard
        if self._detached or (self._stop_reason is not None and not hard):
            return
        self._stop_reason = self._stop_reason or reason
        view = self._view
        if view is None or view.pod is None or view.gone:
            return  # prepare deletes the pod once it exists
        if hard:
            await self._delete(grace_s=0)
            return
        value = "timeout" if reason is CancelReason.TIMEOUT else "canceled"
        with contextlib.suppress(KubernetesApiError):
            await self._factory.api.annotate_pod(view.namespace, view.name, {podspec.ANNOTATION_STOP: value})
        await self._delete(grace_s=None)

    async def detach(self) -> bool:
        """Leave the pod running for the next runner process, with the newest checkpoint on it."""
        view = self._view
        if view is None or view.pod is None or view.gone or self._deleted:
            return False
        self._detached = True
        trace = self._trace
        point = self._tracker.due(trace.sent) if isinstance(trace, PositionedTrace) else None
        if point is not None and (error := await self._write_checkpoint(view, point)) is not None:
            log.warning("job %d: last checkpoint not written before leaving the pod: %s", self._job_id, error)
        log.info(
            "job %d: leaving pod %s/%s running for the next runner process", self._job_id, view.namespace, view.name
        )
        return True

    async def cleanup(self) -> None:
        """Delete the pod if it is still there, and print the cost line (not for a detached job)."""
        view = self._view
        try:
            if self._detached:
                return
            if view is not None and view.pod is not None:
                await self._finish_pod()
                await view.wait_gone(GONE_WAIT_S)
                self._cost_line()
            for name in self._unowned:
                await self._factory.api.delete_secret(view.namespace if view else "", name)
        finally:
            if view is not None:
                self._factory.hub.untrack(view)
            self._factory.forget(self._job_id)

    async def _finish_pod(self) -> None:
        """Keep the pod's last state for the bill, then delete it (services stop with it)."""
        view = self._require_view()
        if self._final_pod is None and view.pod is not None:
            self._final_pod = (view.pod, datetime.now(UTC))
        if not view.gone and not self._killed:
            await self._delete(grace_s=0)

    async def _delete(self, grace_s: int | None) -> None:
        view = self._require_view()
        self._deleted = True
        self._killed = self._killed or grace_s == 0
        existed = await self._factory.api.delete_pod(view.namespace, view.name, grace_s)
        if not existed:
            view.mark_gone()
        log.info("job %d: pod %s/%s deleted (grace %s)", self._job_id, view.namespace, view.name, grace_s)

    def _cost_line(self) -> None:
        if self._trace is None or self._size is None or self._final_pod is None:
            return
        pod, ended = self._final_pod
        prices = self._factory.prices(self._platform)
        cost = estimate_cost(self._size, billed_seconds(pod, ended), prices)
        if self._factory.observer is not None:
            seconds = cost.billed_seconds
            self._factory.observer.job_billed(
                self._platform.value, float(self._size.vcpu) * seconds, float(self._size.gib) * seconds,
                float(cost.amount or 0), cost.currency or "",
            )  # fmt: skip
        view = self._require_view()
        pulls = pulled_seconds(view.events)
        if pulls >= 0.05:
            self._trace.write_line(f"Image pulls took {pulls:.1f} s")
        self._trace.write_line(render_cost_line(self._size, cost))

    def _require_view(self) -> PodView:
        if self._view is None:
            raise ExecutorError("the kubernetes executor was used before prepare")
        return self._view


async def _create_secret(api: PodApi, secret: Secret) -> None:
    """Create the Secret; one that exists already is ours (its name has the job and the runner)."""
    try:
        await api.create_secret(secret)
    except KubernetesApiError as exc:
        if exc.code != 409:
            raise


async def _create_pod(api: PodApi, pod: Pod) -> Pod:
    """Create the pod; after an answer lost on the way (timeout) or AlreadyExists, find it.

    A busy API server may create the pod and time out before it answers: the job's pod then
    exists, with the name only this job's executor gives it.
    """
    try:
        return await api.create_pod(pod)
    except KubernetesApiError as exc:
        meta = pod.metadata
        if (exc.code is not None and exc.code != 409) or meta is None or not meta.name or not meta.namespace:
            raise
        existing = await api.get_pod(meta.namespace, meta.name)
        if existing is None:
            raise
        log.warning("pod %s/%s: create answered %s, but the pod is there; going on", meta.namespace, meta.name, exc)
        return existing


def _read_patch_files(patches: tuple[PodSpecPatch, ...]) -> dict[str, str]:
    """``patch_path`` -> text, for each ``[[runners.kubernetes.pod_spec]]`` read from a file."""
    out = {}
    for patch in patches:
        if patch.patch_path and patch.patch_path not in out:
            try:
                out[patch.patch_path] = Path(patch.patch_path).read_text()
            except OSError as exc:
                raise ConfigError(
                    f"kubernetes pod_spec {patch.name!r}: patch_path {patch.patch_path}: {exc.strerror}"
                ) from exc
    return out


class KubernetesExecutorFactory:
    """Makes the executors of one runner: one API client, one shared watch, one platform."""

    name = "kubernetes"

    def __init__(
        self,
        cfg: KubernetesConfig,
        connection: Connection,
        *,
        short_token: str,
        builds_dir: str = "/builds",
        cache_dir: str = "/cache",
        table: SpecTable | None = None,
        observer: ExecutorObserver | None = None,
    ) -> None:
        self.observer = observer
        # the connection's namespace (config, else the kubeconfig context's) is the job default
        self.cfg = cfg if cfg.namespace else cfg.model_copy(update={"namespace": connection.namespace})
        self.connection = connection
        self.short_token = short_token
        self.builds_dir = builds_dir
        self.cache_dir = cache_dir
        self.table = table or load_spec_table()
        self.api = PodApi(connection.client)
        self.labels = {podspec.LABEL_RUNNER: token_slug(short_token), podspec.LABEL_MANAGED_BY: podspec.MANAGED_BY}
        self.hub = PodWatchHub(self.api, self.labels)
        self._platform: Platform | None = None
        self._platform_lock = asyncio.Lock()
        self._prices: dict[Platform, Prices | None] = {}
        self._active: set[int] = set()

    @property
    def namespace(self) -> str:
        return self.cfg.namespace or "default"

    def create(self, job_id: int) -> KubernetesExecutor:
        self._active.add(job_id)
        return KubernetesExecutor(self, job_id)

    def attach(self, job_id: int, checkpoint: Checkpoint) -> KubernetesExecutor:
        """An executor for the running pod of an adopted job, resuming at ``checkpoint``."""
        self._active.add(job_id)
        return KubernetesExecutor(self, job_id, attach=checkpoint)

    def running(self) -> frozenset[int]:
        """The jobs this process runs now (adoption leaves their pods alone)."""
        return frozenset(self._active)

    def forget(self, job_id: int) -> None:
        self._active.discard(job_id)

    async def platform(self) -> Platform:
        """The platform pods are sized for; ``auto`` is read from the nodes' labels once."""
        async with self._platform_lock:
            if self._platform is None:
                self._platform = await self._detect_platform()
            return self._platform

    async def _detect_platform(self) -> Platform:
        wanted = self.cfg.serverless.platform
        if wanted is not ServerlessPlatform.AUTO:
            return Platform(wanted.value)
        try:
            labels = await self.api.node_labels(self.cfg.node_selector)
        except KubernetesApiError as exc:
            log.warning("serverless platform auto: cannot read node labels, sizing for none: %s", exc)
            return Platform.NONE
        platform = detect_platform(labels)
        log.info("serverless platform auto: %s (%d nodes)", platform.value, len(labels))
        return platform

    def prices(self, platform: Platform) -> Prices | None:
        """The prices of the cost line (config overrides on the platform's table)."""
        if platform not in self._prices:
            given = self.cfg.serverless.prices
            try:
                self._prices[platform] = build_prices(
                    platform, self.table, per_vcpu_second=given.per_vcpu_second,
                    per_gib_second=given.per_gib_second, currency=given.currency,
                )  # fmt: skip
            except ConfigError as exc:
                log.warning("no cost estimate: %s", exc)
                self._prices[platform] = None
        return self._prices[platform]

    async def aclose(self) -> None:
        """Stop the watches and close the client."""
        await self.hub.aclose()
        await self.api.aclose()
