"""The records the fake coordinator keeps: runners, jobs, uploaded artifacts and HTTP requests.

Owns the data types and the closed sets of wire values (job states, failure reasons, artifact
types, fault endpoints). It does no I/O and knows nothing about HTTP; the handlers in the other
``_coordinator_*`` modules change these records, tests read them. The records are mutable on
purpose: they are the fake GitLab's database, updated as requests arrive.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

__all__ = [
    "ARTIFACT_FORMATS",
    "ARTIFACT_TYPES",
    "ENDPOINTS",
    "FAILURE_REASONS",
    "LEGACY_SYSTEM_ID",
    "Archive",
    "FakeJob",
    "FakeRunner",
    "JobState",
    "RecordedRequest",
    "UploadedArtifact",
]

# GitLab's runner-manager key when the runner sends no system_id (API::Ci::Helpers::Runner).
LEGACY_SYSTEM_ID: Final = "<legacy>"

# Names accepted by FakeCoordinator.fail_next, one per endpoint of the runner API (+ git, object storage).
ENDPOINTS: Final = frozenset(
    {
        "register",
        "verify",
        "unregister",
        "unregister_manager",
        "reset_token",
        "request",
        "update",
        "trace",
        "artifacts_upload",
        "artifacts_download",
        "object_storage",
        "git",
    }
)

# Enums::Ci::CommitStatus.failure_reasons, in GitLab's order: sent as features.failure_reasons.
FAILURE_REASONS: Final = (
    "unknown_failure",
    "script_failure",
    "api_failure",
    "stuck_or_timeout_failure",
    "runner_system_failure",
    "missing_dependency_failure",
    "runner_unsupported",
    "stale_schedule",
    "job_execution_timeout",
    "archived_failure",
    "unmet_prerequisites",
    "scheduler_failure",
    "data_integrity_failure",
    "forward_deployment_failure",
    "user_blocked",
    "project_deleted",
    "ci_quota_exceeded",
    "pipeline_loop_detected",
    "no_matching_runner",
    "trace_size_exceeded",
    "builds_disabled",
    "environment_creation_failure",
    "deployment_rejected",
    "failed_outdated_deployment_job",
    "job_execution_server_timeout",
    "stuck_pending_with_matching_runners",
    "stuck_pending_no_matching_runners",
    "no_updates_running",
    "no_updates_canceling",
    "server_timeout_running",
    "server_timeout_canceling",
    "runner_configuration_error",
    "runner_external_dependency_failure",
    "runner_interrupted",
    "protected_environment_failure",
    "insufficient_bridge_permissions",
    "downstream_bridge_project_not_found",
    "invalid_bridge_trigger",
    "upstream_bridge_project_not_found",
    "insufficient_upstream_permissions",
    "bridge_pipeline_is_child_pipeline",
    "downstream_pipeline_creation_failed",
    "secrets_provider_not_found",
    "reached_max_descendant_pipelines_depth",
    "ip_restriction_failure",
    "reached_max_pipeline_hierarchy_size",
    "reached_downstream_pipeline_trigger_rate_limit",
    "duo_workflow_not_allowed",
    "job_router_failure",
    "job_token_expired",
    "id_token_burned_project_path",
    "downstream_project_trigger_resolved_to_empty",
)

# Ci::JobArtifact file formats and types (the values the upload endpoint accepts).
ARTIFACT_FORMATS: Final = frozenset({"raw", "zip", "gzip"})
ARTIFACT_TYPES: Final = frozenset(
    {
        "archive", "metadata", "trace", "junit", "sast", "dependency_scanning", "container_scanning",
        "dast", "codequality", "license_scanning", "performance", "metrics", "metrics_referee",
        "network_referee", "lsif", "dotenv", "cobertura", "terraform", "accessibility",
        "cluster_applications", "secret_detection", "requirements", "coverage_fuzzing",
        "browser_performance", "load_performance", "api_fuzzing", "cluster_image_scanning",
        "cyclonedx", "requirements_v2", "annotations", "repository_xray", "jacoco", "scip",
    }
)  # fmt: skip


class JobState(enum.StrEnum):
    """A job's status as GitLab names it (also the ``Job-Status`` header value)."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELING = "canceling"
    CANCELED = "canceled"

    @property
    def is_final(self) -> bool:
        return self in (JobState.SUCCESS, JobState.FAILED, JobState.CANCELED)


@dataclass
class FakeRunner:
    """A runner GitLab knows, keyed by its authentication token."""

    id: int
    token: str
    description: str = ""
    tag_list: list[str] = field(default_factory=list)
    run_untagged: bool = True
    locked: bool = False
    paused: bool = False
    maximum_timeout: int | None = None
    access_level: str = "not_protected"
    maintenance_note: str = ""
    token_expires_at: str | None = None
    registered_with_token: bool = False  # legacy POST /runners (True) or created in the "UI" (False)
    managers: dict[str, dict[str, Any]] = field(default_factory=dict)  # system_id -> last info
    last_info: dict[str, Any] | None = None

    def declares(self, system_id: str | None, feature: str) -> bool:
        """Tell whether the manager ``system_id`` declared ``feature`` in its last info."""
        info = self.managers.get(system_id or LEGACY_SYSTEM_ID) or {}
        features = info.get("features")
        return isinstance(features, Mapping) and features.get(feature) is True


@dataclass(frozen=True, slots=True)
class UploadedArtifact:
    """One artifact a job uploaded (``POST /jobs/:id/artifacts``)."""

    artifact_type: str
    artifact_format: str
    expire_in: str | None
    filename: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Archive:
    """A job's downloadable artifacts archive (what ``GET /jobs/:id/artifacts`` serves)."""

    data: bytes
    filename: str
    in_object_storage: bool = False  # answer direct downloads with a 302 to the object store
    signature: str = ""


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One HTTP request the fake answered, as seen on the wire."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # case-insensitive
    json: Any  # the parsed JSON body, or None when the body was not JSON
    status: int
    response_headers: Mapping[str, str]


@dataclass
class FakeJob:
    """A job in GitLab's queue and what the runner reported about it."""

    id: int
    token: str
    payload: dict[str, Any]  # what make_job built; replaced by what was sent once assigned
    state: JobState = JobState.PENDING
    failure_reason: str | None = None
    exit_code: int | None = None
    trace: bytearray = field(default_factory=bytearray)
    updates: list[dict[str, Any]] = field(default_factory=list)
    checksum_ok: bool | None = None
    artifacts: list[UploadedArtifact] = field(default_factory=list)
    runner_token: str | None = None  # the runner that took the job
    system_id: str | None = None  # and its manager
    only_runner: str | None = None  # enqueue(runner_token=...): no other runner may take it
    tags: tuple[str, ...] = ()
    allow_failure_exit_codes: tuple[int, ...] = ()
    allow_failure: bool = False  # failed with an exit code in allow_failure_exit_codes
    required_features: tuple[str, ...] = ()  # runner features GitLab checks before assigning
    enqueued_at: datetime | None = None
    debug_trace: bool = False
    finished: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def transition(self, state: JobState) -> None:
        """Move to ``state``; wake wait_for_job when it is final."""
        self.state = state
        if state.is_final:
            self.finished.set()

    @property
    def is_processing(self) -> bool:
        """GitLab's processing_on_runner?: the job token may update the job and its trace."""
        return self.state in (JobState.RUNNING, JobState.CANCELING)

    @property
    def awaits_acceptance(self) -> bool:
        """Assigned to a two-phase-commit runner that has not sent ``PUT state=running`` yet."""
        return self.state is JobState.PENDING and self.runner_token is not None
