"""The deployment's values: what ``skyrunner deploy`` is told, from ``--values FILE`` and flags.

Pure: no I/O. This module owns the shape of the values file (YAML, snake_case keys, unknown
keys refused so a typo is not silently ignored), its defaults, and the merge of command-line
flags over it (a flag wins). Paths in the file (``config``, ``kubeconfig_secret``) are taken
relative to the file's directory. What the values may not be (names, sizes, a cache without a
server) is ``checks.py``'s; reading the file is ``sources.py``'s.

An example::

    name: skyrunner                 # instance name: prefix of every object
    namespace: ci
    image: registry.example.com/skyrunner:0.1.0
    image_pull_policy: IfNotPresent
    url: https://gitlab.example.com
    registration_token: GR1348941...  # or token: glrt-...
    runner_name: ci-eci             # the [[runners]] name (default: the template's, else name)
    tags: [eci]                     # registration_token only: the runner's tags
    config: config.toml             # optional: a config.toml whose [[runners]] is the template
    platform: eci                   # optional: overrides [runners.kubernetes.serverless] platform
    shutdown_timeout: 3600          # seconds running jobs get to finish when the runner stops
    resources: {requests: {cpu: 250m, memory: 512Mi}, limits: {cpu: 250m, memory: 512Mi}}
    cache: {nfs_server: nas.example.com, nfs_path: /cache, size: 100Gi}
    kubeconfig_secret: admin.kubeconfig  # optional: credentials of another cluster for the jobs
    labels: {team: ci}
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from pathlib import PurePath
from typing import Annotated, Any, Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictInt, StrictStr, ValidationError

from skyrunner.config import ServerlessPlatform
from skyrunner.errors import ConfigError

__all__ = [
    "DEFAULT_NFS_MOUNT_OPTIONS",
    "CacheValues",
    "DeployValues",
    "ImagePullPolicy",
    "Quantities",
    "RunnerResources",
    "merge_flags",
    "parse_values",
]

# The reference deployment's NAS mount options (cache.yaml): NFSv3 without locking, over TCP,
# and a new source port on reconnect so a NAS failover does not hang the mount.
DEFAULT_NFS_MOUNT_OPTIONS: Final = ("nolock,tcp,noresvport", "vers=3")

_Text = Annotated[StrictStr, Field(min_length=1)]


class _Values(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class ImagePullPolicy(enum.StrEnum):
    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


class Quantities(_Values):
    """A CPU and a memory quantity, as Kubernetes writes them (``250m``, ``512Mi``)."""

    cpu: _Text
    memory: _Text


class RunnerResources(_Values):
    """The runner container's requests and limits; equal by default (Guaranteed QoS)."""

    requests: Quantities = Quantities(cpu="250m", memory="512Mi")
    limits: Quantities = Quantities(cpu="250m", memory="512Mi")


class CacheValues(_Values):
    """The NFS share (a NAS) mounted as the job pods' cache directory."""

    nfs_server: _Text | None = None
    nfs_path: _Text = "/"
    size: _Text = "100Gi"
    mount_options: tuple[_Text, ...] = DEFAULT_NFS_MOUNT_OPTIONS
    mount_path: _Text = "/cache"


class DeployValues(_Values):
    """Everything a deployment is rendered from, besides the runner's config.toml."""

    name: _Text = "skyrunner"
    namespace: _Text = "skyrunner"
    image: _Text | None = None
    image_pull_policy: ImagePullPolicy = ImagePullPolicy.IF_NOT_PRESENT
    url: _Text | None = None
    token: SecretStr | None = None
    registration_token: SecretStr | None = None
    runner_name: _Text | None = None
    tags: tuple[_Text, ...] = ()
    config: _Text | None = None
    platform: ServerlessPlatform | None = None
    concurrent: Annotated[StrictInt, Field(ge=1)] | None = None
    shutdown_timeout: Annotated[StrictInt, Field(ge=1)] | None = None
    resources: RunnerResources = RunnerResources()
    cache: CacheValues | None = None
    kubeconfig_secret: _Text | None = None
    labels: dict[StrictStr, StrictStr] = Field(default_factory=dict)


def parse_values(text: str, source: str, base_dir: PurePath) -> DeployValues:
    """Parse a values file; relative paths in it are taken from ``base_dir``.

    Raises:
        ConfigError: not YAML, not a mapping, or a key is unknown or of the wrong type; the
            message is one line naming ``source`` and the key, never a token.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise ConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', None) or 'cannot parse'}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of values at the top level")
    for key in ("config", "kubeconfig_secret"):
        if isinstance(data.get(key), str):
            data[key] = str(base_dir / data[key])
    return _validate(data, source)


def merge_flags(values: DeployValues, flags: Mapping[str, Any]) -> DeployValues:
    """Return ``values`` with each flag that was given (not None) put over it.

    ``nfs_server`` and ``nfs_path`` go into ``cache``; every other key is a top-level value.

    Raises:
        ConfigError: a flag's value is of the wrong shape.
    """
    data = values.model_dump(exclude_unset=True)
    given = {key: value for key, value in flags.items() if value is not None}
    cache = {key.removeprefix("nfs_"): given.pop(key) for key in ("nfs_server", "nfs_path") if key in given}
    if cache:
        data["cache"] = {**data.get("cache", {}), **{f"nfs_{key}": value for key, value in cache.items()}}
    data.update(given)
    return _validate(data, "command line")


def _validate(data: dict[str, Any], source: str) -> DeployValues:
    try:
        return DeployValues.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "values"
        message = first["msg"].removeprefix("Value error, ")
        more = len(exc.errors()) - 1
        suffix = f" (and {more} more {'problem' if more == 1 else 'problems'})" if more else ""
        raise ConfigError(f"{source}: {where}: {message[:1].lower()}{message[1:]}{suffix}") from None
