"""Building the runner's parts from config.toml: job settings, executors, GitLab clients.

This is the one place that knows both the shape of config.toml and the constructors of the
parts, so that ``job/`` and ``executors/`` take small values rather than the whole config.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import SecretStr

from skyrunner._version import REVISION, VERSION
from skyrunner.config import CacheType, Executor, RunnerConfig
from skyrunner.errors import ConfigError
from skyrunner.executors.base import ExecutorFactory, ExecutorObserver
from skyrunner.executors.shell import ShellExecutorFactory
from skyrunner.gitlab.client import CoordinatorClient
from skyrunner.gitlab.models import RunnerInfo
from skyrunner.job.prepare import RunnerIdentity
from skyrunner.job.remote_cache import DEFAULT_REGION, S3CacheSettings
from skyrunner.job.script import ScriptOptions
from skyrunner.job.settings import JobSettings

__all__ = ["build_client", "build_executor_factory", "build_job_settings", "runner_identity", "runner_info"]


def runner_info(runner: RunnerConfig) -> RunnerInfo:
    shell = runner.shell.value if runner.shell else "bash"
    return RunnerInfo(version=VERSION, revision=REVISION, executor=runner.executor.value, shell=shell)


def runner_identity(runner: RunnerConfig) -> RunnerIdentity:
    return RunnerIdentity(version=VERSION, revision=REVISION, arch=runner_info(runner).executable_arch)


def _remote_cache(runner: RunnerConfig) -> S3CacheSettings | None:
    cache = runner.cache
    if cache is None or cache.type is None:
        return None
    if cache.type is not CacheType.S3:
        raise ConfigError(
            f'runners {runner.name!r}: cache Type {cache.type.value!r} is not supported, use "s3"'
        )
    s3 = cache.s3
    if s3 is None or not s3.server_address or not s3.bucket_name:
        raise ConfigError(f"runners {runner.name!r}: [runners.cache.s3] needs ServerAddress and BucketName")
    return S3CacheSettings(
        server_address=s3.server_address,
        access_key=s3.access_key or "",
        secret_key=s3.secret_key.get_secret_value() if s3.secret_key else "",
        bucket_name=s3.bucket_name,
        bucket_location=s3.bucket_location or DEFAULT_REGION,
        insecure=s3.insecure,
        path=cache.path or "",
        shared=cache.shared,
    )


def build_job_settings(runner: RunnerConfig, system_id: str) -> JobSettings:
    """The job-side settings of one ``[[runners]]`` entry."""
    return JobSettings(
        runner_name=runner.name or "skyrunner",
        short_token=runner.short_token,
        system_id=system_id,
        server_url=(runner.clone_url or runner.url).rstrip("/"),
        runner_token=SecretStr(runner.token.get_secret_value()),
        runner_id=runner.id or None,
        output_limit_kib=runner.output_limit,
        environment=tuple(runner.environment_pairs()),
        script=ScriptOptions(
            pre_get_sources_script=runner.pre_get_sources_script or "",
            post_get_sources_script=runner.post_get_sources_script or "",
            pre_build_script=runner.pre_build_script or "",
            post_build_script=runner.post_build_script or "",
        ),
        custom_build_dir=runner.custom_build_dir.enabled,
        remote_cache=_remote_cache(runner),
        ca_file=runner.tls_ca_file or "",
        debug_trace_disabled=runner.debug_trace_disabled,
    )


def build_executor_factory(
    runner: RunnerConfig, cwd: Path, observer: ExecutorObserver | None = None
) -> ExecutorFactory:
    """The executor factory of one ``[[runners]]`` entry."""
    dirs = runner.resolve_dirs(cwd)
    if runner.executor is Executor.SHELL:
        shell = runner.shell.value if runner.shell else ""
        return ShellExecutorFactory(dirs.builds_dir, dirs.cache_dir, runner.short_token, shell)
    from skyrunner.executors.kubernetes import build_kubernetes_factory

    return build_kubernetes_factory(runner, observer)


def build_client(
    runner: RunnerConfig, system_id: str, on_response: Callable[[str, int], None] | None = None
) -> CoordinatorClient:
    return CoordinatorClient(
        runner.url,
        token=runner.token,
        system_id=system_id,
        info=runner_info(runner),
        ca_file=runner.tls_ca_file or "",
        on_response=on_response,
    )
