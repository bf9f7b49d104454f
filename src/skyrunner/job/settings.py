"""What a job needs to know about the runner that took it.

Pure: no I/O. :class:`JobSettings` is the slice of one ``[[runners]]`` entry the job side uses,
so that ``job/`` does not depend on the shape of config.toml; the service builds it from the
config, ``skyrunner exec`` from its flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import SecretStr

from skyrunner.job.remote_cache import S3CacheSettings
from skyrunner.job.script import ScriptOptions

__all__ = ["JobSettings"]


@dataclass(frozen=True, slots=True)
class JobSettings:
    """The runner-side settings of a job."""

    runner_name: str
    short_token: str
    system_id: str
    server_url: str
    runner_token: SecretStr = field(default_factory=lambda: SecretStr(""))
    runner_id: int | None = None
    output_limit_kib: int = 4096
    environment: tuple[tuple[str, str], ...] = ()
    script: ScriptOptions = field(default_factory=ScriptOptions)
    custom_build_dir: bool = False
    remote_cache: S3CacheSettings | None = None
    ca_file: str = ""
    debug_trace_disabled: bool = False
    # A repository on the job's machine to fetch the sources from, by path, instead of the
    # payload's URL (skyrunner exec's snapshot when the jobs run here): no HTTP, no credentials.
    sources_repo: str = ""

    @property
    def output_limit_bytes(self) -> int:
        return self.output_limit_kib * 1024
