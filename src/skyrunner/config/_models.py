"""The global section and the ``[[runners]]`` tables of config.toml, as gitlab-runner names them.

Pure: no I/O. This module owns the shape of config.toml outside ``[runners.kubernetes]``: the
global keys, each runner's credentials and settings, ``[runners.cache]`` (CamelCase keys, as in
gitlab-runner), and the small rules that live with that data: gitlab-runner's short token, the
runner's ``environment`` as pairs, the shell executor's default directories. Loading, line numbers
and warnings are in ``_parse.py``; files in ``_files.py``.

"0 means the default" (``check_interval``, ``output_limit``, ``request_concurrency``,
``shutdown_timeout``) is resolved here, so every reader gets the value in force.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Final

from pydantic import (
    AfterValidator,
    AliasChoices,
    Field,
    JsonValue,
    SecretStr,
    Strict,
    field_validator,
)

from skyrunner.config._base import Bool, NonNegativeInt, Str, TomlTable, zero_means
from skyrunner.config._kubernetes import KubernetesConfig

__all__ = [
    "TOKEN_FROM_FILE",
    "CacheConfig",
    "CacheS3Config",
    "CacheType",
    "Config",
    "CustomBuildDir",
    "Executor",
    "LogFormat",
    "LogLevel",
    "RunnerConfig",
    "RunnerDirs",
    "Shell",
    "shorten_token",
]

DEFAULT_CHECK_INTERVAL_S: Final = 3
DEFAULT_OUTPUT_LIMIT_KIB: Final = 4096
DEFAULT_SHUTDOWN_TIMEOUT_S: Final = 30
SHORT_TOKEN_LENGTH: Final = 9
TOKEN_FROM_FILE: Final = "from-token_file"
"""What ``token`` says in a config.toml whose runner reads its token from ``token_file``."""

# Kubernetes job pods always use these paths (gitlab-runner's disposable-executor defaults).
POD_BUILDS_DIR: Final = Path("/builds")
POD_CACHE_DIR: Final = Path("/cache")


class Executor(enum.StrEnum):
    SHELL = "shell"
    KUBERNETES = "kubernetes"


class Shell(enum.StrEnum):
    BASH = "bash"
    SH = "sh"


class LogLevel(enum.StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARN = "warn"
    WARNING = "warning"
    ERROR = "error"
    FATAL = "fatal"
    PANIC = "panic"


class LogFormat(enum.StrEnum):
    RUNNER = "runner"
    TEXT = "text"
    JSON = "json"


class CacheType(enum.StrEnum):
    S3 = "s3"
    GCS = "gcs"
    AZURE = "azure"


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _check_environment_entry(entry: str) -> str:
    name, equals, _value = entry.partition("=")
    if not equals:
        # The entry itself is not quoted: it may be a secret with a typo instead of "=".
        raise ValueError('entry has no "=", expected KEY=VALUE')
    if not _ENV_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a variable name, expected KEY=VALUE")
    return entry


EnvironmentEntry = Annotated[Str, AfterValidator(_check_environment_entry)]
Timestamp = Annotated[datetime, Strict()]


class CacheS3Config(TomlTable):
    """``[runners.cache.s3]``."""

    server_address: Str | None = Field(default=None, alias="ServerAddress")
    access_key: Str | None = Field(default=None, alias="AccessKey")
    secret_key: SecretStr | None = Field(default=None, alias="SecretKey")
    bucket_name: Str | None = Field(default=None, alias="BucketName")
    bucket_location: Str | None = Field(default=None, alias="BucketLocation")
    insecure: Bool = Field(default=False, alias="Insecure")
    authentication_type: Str | None = Field(default=None, alias="AuthenticationType")


class CacheConfig(TomlTable):
    """``[runners.cache]``: the remote cache. ``gcs`` and ``azure`` are kept but not used."""

    type: CacheType | None = Field(default=None, alias="Type")
    path: Str | None = Field(default=None, alias="Path")
    shared: Bool = Field(default=False, alias="Shared")
    max_uploaded_archive_size: NonNegativeInt = Field(default=0, alias="MaxUploadedArchiveSize")
    s3: CacheS3Config | None = None
    gcs: dict[str, JsonValue] | None = Field(default=None, repr=False)  # holds PrivateKey
    azure: dict[str, JsonValue] | None = Field(default=None, repr=False)  # holds AccountKey

    @field_validator("type", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value


class CustomBuildDir(TomlTable):
    """``[runners.custom_build_dir]``: whether jobs may set ``GIT_CLONE_PATH``."""

    enabled: Bool = False


@dataclass(frozen=True, slots=True)
class RunnerDirs:
    """Where a runner keeps builds and caches, as absolute paths."""

    builds_dir: Path
    cache_dir: Path


def shorten_token(token: str) -> str:
    """Return gitlab-runner's short token: the known prefix removed, then 9 characters."""
    for prefix in (r"glrt-t[123]_", r"glrt-", r"glrtr-", r"glcbt-", r"t[123]_"):
        match = re.match(prefix, token)
        if match:
            token = token[match.end() :]
            break
    else:
        # Legacy tokens: "GR" and the rotation date as 7 hex digits (GR1348941...).
        if len(token) >= 17 and re.match(r"GR[0-9a-fA-F]{7}", token):
            token = token[9:]
    return token[:SHORT_TOKEN_LENGTH]


class RunnerConfig(TomlTable):
    """One ``[[runners]]`` table: credentials, settings and the executor's table."""

    name: Str = ""
    limit: NonNegativeInt = 0
    output_limit: Annotated[NonNegativeInt, zero_means(DEFAULT_OUTPUT_LIMIT_KIB)] = DEFAULT_OUTPUT_LIMIT_KIB
    request_concurrency: Annotated[NonNegativeInt, zero_means(1)] = 1
    url: Str
    id: NonNegativeInt = 0
    token: SecretStr
    # skyrunner's addition: the token is read from this file at load (a mounted Kubernetes
    # Secret), so config.toml itself holds only a placeholder and can live in a ConfigMap.
    token_file: Str | None = None
    token_obtained_at: Timestamp | None = None
    token_expires_at: Timestamp | None = None
    tls_ca_file: Str | None = Field(
        default=None,
        validation_alias=AliasChoices("tls-ca-file", "tls_ca_file"),
        serialization_alias="tls-ca-file",
    )
    tls_cert_file: Str | None = Field(
        default=None,
        validation_alias=AliasChoices("tls-cert-file", "tls_cert_file"),
        serialization_alias="tls-cert-file",
    )
    tls_key_file: Str | None = Field(
        default=None,
        validation_alias=AliasChoices("tls-key-file", "tls_key_file"),
        serialization_alias="tls-key-file",
    )
    executor: Executor
    builds_dir: Str | None = None
    cache_dir: Str | None = None
    clone_url: Str | None = None
    environment: tuple[EnvironmentEntry, ...] = Field(default=(), repr=False)  # values may be secret
    # pre_clone_script/post_clone_script are gitlab-runner's deprecated names of the same hooks.
    pre_get_sources_script: Str | None = Field(
        default=None, validation_alias=AliasChoices("pre_get_sources_script", "pre_clone_script")
    )
    post_get_sources_script: Str | None = Field(
        default=None, validation_alias=AliasChoices("post_get_sources_script", "post_clone_script")
    )
    pre_build_script: Str | None = None
    post_build_script: Str | None = None
    debug_trace_disabled: Bool = False
    shell: Shell | None = None
    custom_build_dir: CustomBuildDir = Field(default_factory=CustomBuildDir)
    cache: CacheConfig | None = None
    feature_flags: dict[str, Bool] = Field(default_factory=dict)
    kubernetes: KubernetesConfig | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{url!r} is not an http:// or https:// URL")
        return url

    @property
    def short_token(self) -> str:
        """gitlab-runner's short token: shown in logs, ``CI_RUNNER_SHORT_TOKEN``, builds paths."""
        return shorten_token(self.token.get_secret_value())

    def environment_pairs(self) -> list[tuple[str, str]]:
        """Return ``environment`` as (name, value) pairs, in file order."""
        return [(name, value) for name, _, value in (entry.partition("=") for entry in self.environment)]

    def resolve_dirs(self, cwd: Path) -> RunnerDirs:
        """Return the builds and cache directories, with gitlab-runner's defaults filled in.

        The shell executor defaults to ``<cwd>/builds`` and ``<cwd>/cache`` (relative settings are
        taken from ``cwd`` too); the kubernetes executor to ``/builds`` and ``/cache`` in the pod.
        """
        if self.executor is Executor.KUBERNETES:
            return RunnerDirs(
                builds_dir=Path(self.builds_dir or POD_BUILDS_DIR),
                cache_dir=Path(self.cache_dir or POD_CACHE_DIR),
            )
        return RunnerDirs(
            builds_dir=cwd / (self.builds_dir or "builds"),
            cache_dir=cwd / (self.cache_dir or "cache"),
        )

    def kubernetes_or_default(self) -> KubernetesConfig:
        """Return ``[runners.kubernetes]``, or its defaults when the table is absent."""
        return self.kubernetes if self.kubernetes is not None else KubernetesConfig()


class Config(TomlTable):
    """The whole config.toml: global settings and the runners."""

    listen_address: Str | None = None
    concurrent: Annotated[int, Strict(), Field(ge=1)] = 1
    check_interval: Annotated[NonNegativeInt, zero_means(DEFAULT_CHECK_INTERVAL_S)] = DEFAULT_CHECK_INTERVAL_S
    log_level: LogLevel | None = None
    log_format: LogFormat | None = None
    shutdown_timeout: Annotated[NonNegativeInt, zero_means(DEFAULT_SHUTDOWN_TIMEOUT_S)] = (
        DEFAULT_SHUTDOWN_TIMEOUT_S
    )
    runners: tuple[RunnerConfig, ...] = ()
