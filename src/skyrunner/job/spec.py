"""The job as GitLab sends it: the typed JobSpec parsed from the ``POST /jobs/request`` payload.

Pure: no I/O. Parsing is lenient as the protocol asks (§4): any key may be missing or ``null``,
unknown keys are ignored. A payload that does not validate raises :class:`JobSpecError` naming
the field; :func:`parse_job_identity` still recovers the id and token so that the job can be
reported failed.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Annotated, Any, Final

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError

from skyrunner.errors import JobSpecError

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "ArtifactSpec",
    "CacheSpec",
    "Credential",
    "DependencySpec",
    "GitInfo",
    "HookSpec",
    "ImageSpec",
    "JobIdentity",
    "JobInfo",
    "JobSpec",
    "ServiceSpec",
    "Stage",
    "StepSpec",
    "VariableSpec",
    "parse_job_identity",
    "parse_job_spec",
]

DEFAULT_TIMEOUT_S: Final = 7200  # gitlab-runner's default when runner_info.timeout <= 0


class Stage(enum.StrEnum):
    """The job's stages in gitlab-runner's order; the values are the trace section names."""

    PREPARE_EXECUTOR = "prepare_executor"
    PREPARE_SCRIPT = "prepare_script"
    GET_SOURCES = "get_sources"
    RESTORE_CACHE = "restore_cache"
    DOWNLOAD_ARTIFACTS = "download_artifacts"
    STEP_SCRIPT = "step_script"
    AFTER_SCRIPT = "after_script"
    ARCHIVE_CACHE = "archive_cache"
    ARCHIVE_CACHE_ON_FAILURE = "archive_cache_on_failure"
    UPLOAD_ARTIFACTS_ON_SUCCESS = "upload_artifacts_on_success"
    UPLOAD_ARTIFACTS_ON_FAILURE = "upload_artifacts_on_failure"
    CLEANUP_FILE_VARIABLES = "cleanup_file_variables"


def _none_to_empty(value: Any) -> Any:
    return [] if value is None else value


def _none_to_blank(value: Any) -> Any:
    return "" if value is None else value


List = Annotated[list[Any], BeforeValidator(_none_to_empty)]
Text = Annotated[str, BeforeValidator(_none_to_blank)]


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class JobInfo(_Wire):
    id: int = 0
    name: Text = ""
    stage: Text = ""
    project_id: int = 0
    project_name: Text = ""
    project_full_path: Text = ""
    pipeline_id: int = 0


class GitInfo(_Wire):
    repo_url: Text = ""
    ref: Text = ""
    sha: Text = ""
    before_sha: Text = ""
    ref_type: Text = "branch"
    refspecs: Annotated[list[str], BeforeValidator(_none_to_empty)] = []
    depth: int = 0
    repo_object_format: Text = "sha1"
    protected: bool | None = None


class RunnerInfo(_Wire):
    timeout: int = 0


class VariableSpec(_Wire):
    key: str
    value: Text = ""
    public: bool = True
    masked: bool = False
    file: bool = False
    raw: bool = False


class StepSpec(_Wire):
    name: str
    script: Annotated[list[str], BeforeValidator(_none_to_empty)] = []
    timeout: int = 0
    when: Text = "on_success"
    allow_failure: bool = False


class HookSpec(_Wire):
    name: str
    script: Annotated[list[str], BeforeValidator(_none_to_empty)] = []


class ImageSpec(_Wire):
    name: Text = ""
    entrypoint: Annotated[list[str], BeforeValidator(_none_to_empty)] = []
    pull_policy: Annotated[list[str], BeforeValidator(_none_to_empty)] = []
    executor_opts: dict[str, Any] = Field(default_factory=dict)


class ServiceVariable(_Wire):
    key: str
    value: Text = ""


class ServiceSpec(ImageSpec):
    alias: Text = ""
    command: Annotated[list[str], BeforeValidator(_none_to_empty)] = []
    variables: Annotated[list[ServiceVariable], BeforeValidator(_none_to_empty)] = []

    @property
    def aliases(self) -> list[str]:
        """The service's host names: its aliases (comma or space separated) or names from its image."""
        given = [a for a in self.alias.replace(",", " ").split() if a]
        if given:
            return given
        base = (
            self.name.split("@", 1)[0].rsplit(":", 1)[0] if ":" in self.name.rsplit("/", 1)[-1] else self.name
        )
        return list(dict.fromkeys([base.replace("/", "__"), base.replace("/", "-")]))


class ArtifactSpec(_Wire):
    name: Text = ""
    untracked: bool = False
    paths: Annotated[list[str], BeforeValidator(_none_to_empty)] = []
    exclude: Annotated[list[str], BeforeValidator(_none_to_empty)] = []
    when: Text = "on_success"
    expire_in: Text = ""
    artifact_type: Text = "archive"
    artifact_format: Text = "zip"


class CacheSpec(_Wire):
    key: Text = ""
    untracked: bool = False
    paths: Annotated[list[str], BeforeValidator(_none_to_empty)] = []
    policy: Text = "pull-push"
    when: Text = "on_success"
    fallback_keys: Annotated[list[str], BeforeValidator(_none_to_empty)] = []


class ArtifactsFile(_Wire):
    filename: Text = ""
    size: int = 0


class DependencySpec(_Wire):
    id: int
    name: Text = ""
    token: SecretStr | None = None
    artifacts_file: ArtifactsFile | None = None


class Credential(_Wire):
    type: Text = ""
    url: Text = ""
    username: Text = ""
    password: SecretStr = SecretStr("")


class Features(_Wire):
    trace_sections: bool = False
    failure_reasons: Annotated[list[str], BeforeValidator(_none_to_empty)] = []
    token_mask_prefixes: Annotated[list[str], BeforeValidator(_none_to_empty)] = []


class JobIdentity(_Wire):
    """The least a job payload must have to be reported: its id and token."""

    id: int
    token: SecretStr


class JobSpec(_Wire):
    """One job as GitLab assigned it (protocol §4)."""

    id: int
    token: SecretStr
    allow_git_fetch: bool = False
    job_info: JobInfo = JobInfo()
    git_info: GitInfo = GitInfo()
    runner_info: RunnerInfo = RunnerInfo()
    variables: Annotated[list[VariableSpec], BeforeValidator(_none_to_empty)] = []
    steps: Annotated[list[StepSpec], BeforeValidator(_none_to_empty)] = []
    hooks: Annotated[list[HookSpec], BeforeValidator(_none_to_empty)] = []
    image: ImageSpec | None = None
    services: Annotated[list[ServiceSpec], BeforeValidator(_none_to_empty)] = []
    artifacts: Annotated[list[ArtifactSpec], BeforeValidator(_none_to_empty)] = []
    cache: Annotated[list[CacheSpec], BeforeValidator(_none_to_empty)] = []
    credentials: Annotated[list[Credential], BeforeValidator(_none_to_empty)] = []
    dependencies: Annotated[list[DependencySpec], BeforeValidator(_none_to_empty)] = []
    features: Features = Features()

    @property
    def timeout_s(self) -> int:
        """The effective job timeout; gitlab-runner uses 2 h when GitLab sends none."""
        return self.runner_info.timeout if self.runner_info.timeout > 0 else DEFAULT_TIMEOUT_S

    @property
    def name(self) -> str:
        return self.job_info.name

    def variable(self, key: str, default: str = "") -> str:
        """The last value GitLab sent for ``key`` (later entries override earlier ones)."""
        for var in reversed(self.variables):
            if var.key == key:
                return var.value
        return default

    def hook(self, name: str) -> list[str]:
        return [line for hook in self.hooks if hook.name == name for line in hook.script]

    @property
    def script_steps(self) -> list[StepSpec]:
        """Every step except after_script, in order (run as ``step_<name>``)."""
        return [step for step in self.steps if step.name != "after_script"]

    @property
    def after_script(self) -> list[str]:
        return [line for step in self.steps if step.name == "after_script" for line in step.script]


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "payload"
    return f"{where}: {first['msg'].lower()}"


def parse_job_identity(payload: Mapping[str, Any]) -> JobIdentity:
    """Read only the job's id and token.

    Raises:
        JobSpecError: not even those are there.
    """
    try:
        return JobIdentity.model_validate(payload)
    except ValidationError as exc:
        raise JobSpecError(f"job payload: {_describe(exc)}") from None


def parse_job_spec(payload: Mapping[str, Any]) -> JobSpec:
    """Validate a job payload.

    Raises:
        JobSpecError: the payload does not validate; the message names the field.
    """
    try:
        return JobSpec.model_validate(payload)
    except ValidationError as exc:
        job_id = payload.get("id", "?")
        raise JobSpecError(f"job {job_id}: invalid payload: {_describe(exc)}") from None
