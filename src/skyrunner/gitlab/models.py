"""Wire models of GitLab's runner API that are not job payloads.

Pure: no I/O. The job payload itself is ``job.spec.JobSpec``; here live the runner's ``info``
(what it declares about itself, protocol §3.1), registration answers and the request bodies.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

__all__ = [
    "FEATURE_KEYS",
    "Registration",
    "RegistrationRequest",
    "RunnerInfo",
    "build_features",
]

FEATURE_KEYS: Final = (
    "variables", "image", "services", "artifacts", "cache", "fallback_cache_keys", "shared",
    "upload_multiple_artifacts", "upload_raw_artifacts", "session", "terminal", "refspecs", "masking",
    "proxy", "raw_variables", "artifacts_exclude", "multi_build_steps", "trace_reset", "trace_checksum",
    "trace_size", "vault_secrets", "cancelable", "return_exit_code", "service_variables",
    "service_multiple_aliases", "image_executor_opts", "service_executor_opts", "cancel_gracefully",
    "native_steps_integration", "two_phase_job_commit", "job_inputs",
)  # fmt: skip

# What every skyrunner executor implements; the kubernetes executor adds containers.
_COMMON: Final = frozenset({
    "variables", "artifacts", "cache", "fallback_cache_keys", "upload_multiple_artifacts",
    "upload_raw_artifacts", "refspecs", "masking", "raw_variables", "artifacts_exclude",
    "multi_build_steps", "trace_reset", "trace_checksum", "trace_size", "cancelable",
    "return_exit_code", "cancel_gracefully", "two_phase_job_commit",
})  # fmt: skip
_CONTAINERS: Final = frozenset({"image", "services", "service_variables", "service_multiple_aliases"})


def build_features(executor: str) -> dict[str, bool]:
    """Every feature key, true exactly for what ``executor`` implements (GitLab relies on it)."""
    enabled = set(_COMMON)
    if executor == "kubernetes":
        enabled |= _CONTAINERS
    if executor == "shell":
        enabled.add("shared")
    return {key: key in enabled for key in FEATURE_KEYS}


def _architecture() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


@dataclass(frozen=True, slots=True)
class RunnerInfo:
    """The ``info`` object sent with register, verify, job requests and updates."""

    version: str
    revision: str
    executor: str
    shell: str = "bash"
    name: str = "skyrunner"
    platform: str = "linux"
    architecture: str = ""

    def to_wire(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "revision": self.revision,
            "platform": self.platform,
            "architecture": self.architecture or _architecture(),
            "executor": self.executor,
            "shell": self.shell,
            "features": build_features(self.executor),
            "config": {"gpus": ""},
        }

    @property
    def executable_arch(self) -> str:
        """``CI_RUNNER_EXECUTABLE_ARCH``: ``linux/amd64``."""
        return f"{self.platform}/{self.architecture or _architecture()}"


class Registration(BaseModel):
    """GitLab's answer to register and verify."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: int = 0
    token: str = ""
    token_expires_at: str | None = None


@dataclass(frozen=True, slots=True)
class RegistrationRequest:
    """The server-side settings of a legacy registration (``POST /runners``)."""

    description: str = ""
    tag_list: tuple[str, ...] = ()
    run_untagged: bool = True
    locked: bool = False
    access_level: str = "not_protected"
    maximum_timeout: int = 0
    paused: bool = False
    maintenance_note: str = ""

    def to_wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "description": self.description,
            "tag_list": ",".join(self.tag_list),
            "run_untagged": self.run_untagged or not self.tag_list,
            "locked": self.locked,
            "access_level": self.access_level,
            "paused": self.paused,
        }
        if self.maximum_timeout > 0:
            body["maximum_timeout"] = self.maximum_timeout
        if self.maintenance_note:
            body["maintenance_note"] = self.maintenance_note
        return body
