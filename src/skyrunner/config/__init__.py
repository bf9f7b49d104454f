"""config.toml: gitlab-runner's configuration file, read and written by skyrunner.

Users bring the config.toml they have: the keys are gitlab-runner's (snake_case, ``[runners.cache]``
in CamelCase, ``tls-ca-file`` with dashes), the defaults are gitlab-runner's, and a file skyrunner
saves can still be read by gitlab-runner. skyrunner adds ``host_network``, the
``[runners.kubernetes.serverless]`` table and a runner's ``token_file`` (the token is read from
that file at load, so config.toml can live in a ConfigMap and the token in a Secret).

This package owns the models and their small rules (``_models.py``, ``_kubernetes.py``), parsing
and rendering (``_parse.py``, pure, over ``_toml.py``) and the files (``_files.py``). It does not
parse Kubernetes quantities, apply ``KUBERNETES_*`` job overwrites, or watch the file for changes.

Typical use::

    config = load_config(default_config_path())      # ConfigError: one line, file:line: key: ...
    for runner in config.runners:
        runner.short_token, runner.environment_pairs(), runner.resolve_dirs(Path.cwd())
"""

from skyrunner.config._files import (
    default_config_path,
    default_config_path_for,
    load_config,
    load_or_create_system_id,
    save_config,
)
from skyrunner.config._kubernetes import (
    Capabilities,
    ConfigMapVolume,
    ContainerSecurityContext,
    DnsConfig,
    DnsOption,
    DnsPolicy,
    EmptyDirVolume,
    HostAlias,
    HostPathVolume,
    ImageBuilder,
    KubernetesConfig,
    KubernetesService,
    PatchType,
    PodSecurityContext,
    PodSpecPatch,
    PullPolicy,
    PvcVolume,
    SeccompProfileType,
    SecretVolume,
    ServerlessConfig,
    ServerlessPlatform,
    ServerlessPrices,
    Volumes,
)
from skyrunner.config._models import (
    TOKEN_FROM_FILE,
    CacheConfig,
    CacheS3Config,
    CacheType,
    Config,
    CustomBuildDir,
    Executor,
    LogFormat,
    LogLevel,
    RunnerConfig,
    RunnerDirs,
    Shell,
    shorten_token,
)
from skyrunner.config._parse import find_platform_problems, parse_config, render_config

# plain sorted, as tests/unit/test_exports.py checks (ruff's RUF022 would put constants first)
__all__ = [  # noqa: RUF022
    "CacheConfig",
    "CacheS3Config",
    "CacheType",
    "Capabilities",
    "Config",
    "ConfigMapVolume",
    "ContainerSecurityContext",
    "CustomBuildDir",
    "DnsConfig",
    "DnsOption",
    "DnsPolicy",
    "EmptyDirVolume",
    "Executor",
    "HostAlias",
    "HostPathVolume",
    "ImageBuilder",
    "KubernetesConfig",
    "KubernetesService",
    "LogFormat",
    "LogLevel",
    "PatchType",
    "PodSecurityContext",
    "PodSpecPatch",
    "PullPolicy",
    "PvcVolume",
    "RunnerConfig",
    "RunnerDirs",
    "SeccompProfileType",
    "SecretVolume",
    "ServerlessConfig",
    "ServerlessPlatform",
    "ServerlessPrices",
    "Shell",
    "TOKEN_FROM_FILE",
    "Volumes",
    "default_config_path",
    "default_config_path_for",
    "find_platform_problems",
    "load_config",
    "load_or_create_system_id",
    "parse_config",
    "render_config",
    "save_config",
    "shorten_token",
]
