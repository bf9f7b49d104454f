"""The seam between a running job and whoever assigned it.

The job side never imports ``skyrunner.gitlab``: the JobRunner and the TraceSink talk to a
:class:`Coordinator`, implemented by the GitLab client (``gitlab.client.CoordinatorClient``) and by
the local pipeline coordinator of ``skyrunner exec``. Artifacts do not pass through here: the
helper, running next to the job's files, sends them to the coordinator's HTTP API itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pydantic import SecretStr

from skyrunner.job.outcome import CancelReason

__all__ = [
    "Coordinator",
    "JobRef",
    "JobUpdate",
    "PatchResult",
    "RemoteState",
    "UpdateResult",
]


@dataclass(frozen=True, slots=True)
class JobRef:
    """Which job, and the token that proves we run it."""

    id: int
    token: SecretStr


@dataclass(frozen=True, slots=True)
class JobUpdate:
    """The body of ``PUT /jobs/:id`` without the token and info (the client adds those)."""

    state: str
    failure_reason: str | None = None
    exit_code: int | None = None
    checksum: str | None = None
    bytesize: int | None = None


@dataclass(frozen=True, slots=True)
class RemoteState:
    """What the coordinator said about the job besides the answer itself."""

    job_status: str | None = None
    update_interval_s: float | None = None

    def cancel_reason(self) -> CancelReason | None:
        """``Job-Status: canceling`` asks for a graceful cancel; canceled or failed for an abort."""
        if self.job_status == "canceling":
            return CancelReason.CANCELING
        if self.job_status in ("canceled", "failed"):
            return CancelReason.ABORTED
        return None


@dataclass(frozen=True, slots=True)
class UpdateResult(RemoteState):
    """``accepted`` is False on 202: the final update must be sent again later."""

    accepted: bool = True


@dataclass(frozen=True, slots=True)
class PatchResult(RemoteState):
    """``stored`` is the size of the trace the coordinator now has."""

    stored: int = 0


class Coordinator(Protocol):
    """Updates a job and appends to its trace.

    Both methods raise ``ApiAuthError`` when the job must be aborted (403, 404, 409),
    ``ApiUnavailable`` after retries gave up, and ``patch_trace`` raises ``TraceRangeError`` on 416.
    """

    async def update_job(self, job: JobRef, update: JobUpdate) -> UpdateResult: ...

    async def patch_trace(self, job: JobRef, offset: int, data: bytes) -> PatchResult: ...
