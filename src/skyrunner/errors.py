"""The one exception tree of skyrunner.

Every error raised on purpose derives from :class:`SkyrunnerError`. Library errors (httpx2,
lightkube, pydantic, tomllib) are translated where the library is called and chained with
``raise ... from``; no code above those seams names a library error.

::

    SkyrunnerError              every error we raise on purpose
    ├── ConfigError             config.toml or CLI input; names file and field
    │   └── PipelineFileError   .gitlab-ci.yml
    ├── ApiError                GitLab answered badly or not at all (.status, .job_status)
    │   ├── ApiUnavailable      network error, 408, 429 or 5xx: retried
    │   ├── ApiAuthError        401/403 or job gone: abort the job, stop updating it
    │   └── TraceRangeError     416: resynchronise the offset; never shown to users
    ├── JobSpecError            payload failed validation -> runner_system_failure
    ├── ExecutorError           our environment failed (spawn, pod create, image pull)
    │   └── KubernetesApiError  API Status reason + message
    └── HelperError             clone, cache or artifact step failed inside the job

Messages are one line, lower case, without a full stop, name the object and the bad value, and
never contain a token or a masked value. Foreign bodies are cut to 256 characters.
"""

from __future__ import annotations

__all__ = [
    "ApiAuthError",
    "ApiError",
    "ApiUnavailable",
    "ConfigError",
    "ExecutorError",
    "HelperError",
    "JobSpecError",
    "KubernetesApiError",
    "PipelineFileError",
    "SkyrunnerError",
    "TraceRangeError",
    "cut",
]

FOREIGN_TEXT_LIMIT = 256


def cut(text: str, limit: int = FOREIGN_TEXT_LIMIT) -> str:
    """Shorten a foreign text (a response body, a Status message) to one line of ``limit`` chars."""
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 3] + "..."


class SkyrunnerError(Exception):
    """Every error skyrunner raises on purpose."""


class ConfigError(SkyrunnerError):
    """config.toml or command-line input is wrong; the message names the file and the field."""


class PipelineFileError(ConfigError):
    """A .gitlab-ci.yml is wrong; the message names the file, the line and the job."""


class ApiError(SkyrunnerError):
    """GitLab answered badly or not at all."""

    def __init__(self, message: str, *, status: int | None = None, job_status: str | None = None):
        super().__init__(message)
        self.status = status
        self.job_status = job_status


class ApiUnavailable(ApiError):
    """A network error, 408, 429 or 5xx: worth retrying after ``retry_after`` seconds if known."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        job_status: str | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message, status=status, job_status=job_status)
        self.retry_after = retry_after


class ApiAuthError(ApiError):
    """401/403 or the job is gone: abort the job and stop updating it."""


class TraceRangeError(ApiError):
    """GitLab answered 416 to a trace patch; ``stored`` is how many bytes it has."""

    def __init__(self, message: str, *, stored: int, job_status: str | None = None):
        super().__init__(message, status=416, job_status=job_status)
        self.stored = stored


class JobSpecError(SkyrunnerError):
    """A job payload failed validation; the job fails with runner_system_failure."""


class ExecutorError(SkyrunnerError):
    """Our environment failed: a process could not start, a pod could not be created or pulled."""

    def __init__(self, message: str, *, failure_reason: str = "runner_system_failure"):
        super().__init__(message)
        self.failure_reason = failure_reason


class KubernetesApiError(ExecutorError):
    """The Kubernetes API refused a request; carries the Status ``reason`` and ``code``."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        reason: str | None = None,
        failure_reason: str = "runner_system_failure",
    ):
        super().__init__(message, failure_reason=failure_reason)
        self.code = code
        self.reason = reason


class HelperError(SkyrunnerError):
    """A clone, cache or artifact step failed inside the job's environment."""
