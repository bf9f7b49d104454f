"""What the values of a deployment may not be: found before anything is rendered or applied.

Pure: no I/O. Each check returns problems as one-line messages naming the value (as the values
file names it; the flags say the same words), so the command can refuse a deployment that
cannot work in one error instead of leaving half of it applied:

- names: the namespace is a DNS-1123 label, the instance name too and short enough for the
  Deployment's pod names; extra labels follow Kubernetes' label syntax and leave ours alone;
- GitLab: a URL that is http(s), and exactly one of ``token`` and ``registration_token``;
- the cache: a PVC needs an NFS server, absolute paths and a storage size;
- resources: quantities that parse, requests not above limits, and nothing below what the
  platform bills at least (``executors.kubernetes.sizing`` fits a minimal pod to the platform's
  table: a smaller request buys nothing, the bill is the minimum anyway) or above its largest.

Whether a token verifies is asked of GitLab by the command, before anything is applied.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from skyrunner.config import ServerlessPlatform
from skyrunner.deploy.layout import (
    MAX_NAME_LENGTH,
    is_dns_label,
    label_problems,
    object_names,
    standard_labels,
)
from skyrunner.deploy.values import DeployValues
from skyrunner.errors import ConfigError
from skyrunner.executors.kubernetes.quantity import format_cpu, format_memory, parse_cpu, parse_memory
from skyrunner.executors.kubernetes.sizing import (
    ContainerRequest,
    Platform,
    PodRequest,
    Resources,
    size_pod,
)
from skyrunner.executors.kubernetes.spec_table import SpecTable

__all__ = ["check_names", "check_resources", "check_values", "platform_minimum", "raise_problems"]

_RUNNER = "build"  # sizing hands its surplus to the container of this name


def check_values(values: DeployValues) -> list[str]:
    """Return what is wrong with ``values`` besides resources, one line per problem."""
    return [*check_names(values), *_gitlab_problems(values), *_cache_problems(values)]


def check_resources(values: DeployValues, platform: ServerlessPlatform, table: SpecTable) -> list[str]:
    """Return what is wrong with the runner container's resources on ``platform``."""
    problems: list[str] = []
    amounts: dict[str, int] = {}
    for kind in ("requests", "limits"):
        quantities = getattr(values.resources, kind)
        for resource, parse in (("cpu", parse_cpu), ("memory", parse_memory)):
            try:
                amounts[f"{kind}.{resource}"] = parse(getattr(quantities, resource), f"resources.{kind}.{resource}")
            except ConfigError as exc:
                problems.append(str(exc))
    if problems:
        return problems
    for resource in ("cpu", "memory"):
        if amounts[f"requests.{resource}"] > amounts[f"limits.{resource}"]:
            problems.append(f"resources.requests.{resource}: more than resources.limits.{resource}")
    if platform in (ServerlessPlatform.AUTO, ServerlessPlatform.NONE) or problems:
        return problems  # auto: the platform is known only once the runner reads the nodes
    return _platform_problems(Platform(platform.value), amounts, table)


def platform_minimum(platform: Platform, table: SpecTable) -> Resources:
    """Return the smallest CPU and memory a container can usefully ask for on ``platform``.

    A one-container pod asking for one millicore and one byte is fitted to the platform's
    table; what the platform bills, less its own overhead, is the container's minimum.
    """
    tiny = Resources(cpu=1, memory=1)
    size = size_pod(PodRequest((ContainerRequest(_RUNNER, tiny, tiny),)), platform, table)
    cpu = 1 + size.surplus_cpu if size.surplus_cpu else size.cpu
    memory = 1 + size.surplus_memory if size.surplus_memory else size.memory
    return Resources(cpu=cpu, memory=memory)


def raise_problems(problems: list[str]) -> None:
    """Raise one ConfigError with every problem on one line, if there is any.

    Raises:
        ConfigError: ``problems`` is not empty.
    """
    if problems:
        raise ConfigError("; ".join(problems))


def _platform_problems(platform: Platform, amounts: dict[str, int], table: SpecTable) -> list[str]:
    minimum = platform_minimum(platform, table)
    problems = [
        f"resources.requests.{name}: {shown(amounts[f'requests.{name}'])} is below the {platform.value} minimum "
        f"{shown(least)} (the platform bills the minimum anyway)"
        for name, least, shown in (
            ("cpu", minimum.cpu or 0, format_cpu),
            ("memory", minimum.memory or 0, format_memory),
        )
        if amounts[f"requests.{name}"] < least
    ]
    limits = Resources(cpu=amounts["limits.cpu"], memory=amounts["limits.memory"])
    requests = Resources(cpu=amounts["requests.cpu"], memory=amounts["requests.memory"])
    try:
        size_pod(PodRequest((ContainerRequest(_RUNNER, requests, limits),)), platform, table)
    except ConfigError as exc:
        problems.append(f"resources: {exc}")
    return problems


def check_names(values: DeployValues) -> list[str]:
    """Return what Kubernetes would refuse in the instance's name, namespace and labels."""
    problems: list[str] = []
    if not is_dns_label(values.namespace):
        problems.append(
            f"namespace: {values.namespace!r} is not a DNS-1123 label (at most 63 lower-case letters, digits "
            "and '-', starting and ending with a letter or digit)"
        )
    if not is_dns_label(values.name) or len(values.name) > MAX_NAME_LENGTH:
        problems.append(
            f"name: {values.name!r} is not a DNS-1123 label of at most {MAX_NAME_LENGTH} characters "
            "(lower-case letters, digits and '-', starting and ending with a letter or digit)"
        )
    problems += label_problems(values.labels, "labels")
    ours = standard_labels(object_names(values.name, values.namespace))
    problems += [f"labels: {key!r} is set by skyrunner" for key in values.labels if key in ours]
    return problems


def _gitlab_problems(values: DeployValues) -> list[str]:
    problems: list[str] = []
    if values.url is not None and not values.url.startswith(("http://", "https://")):
        problems.append(f"url: {values.url!r} is not an http:// or https:// URL")
    if values.token is not None and values.registration_token is not None:
        problems.append("token and registration_token: give one, not both")
    elif values.token is None and values.registration_token is None:
        problems.append("token: give --token (a runner authentication token) or --registration-token")
    if values.image is None:
        problems.append("image: give --image (the skyrunner image built from the Dockerfile)")
    return problems


def _cache_problems(values: DeployValues) -> list[str]:
    cache = values.cache
    if cache is None:
        return []
    problems: list[str] = []
    if cache.nfs_server is None:
        problems.append("cache: a cache volume needs an NFS server (--nfs-server or cache.nfs_server)")
    for key in ("nfs_path", "mount_path"):
        if not PurePosixPath(getattr(cache, key)).is_absolute():
            problems.append(f"cache.{key}: {getattr(cache, key)!r} is not an absolute path")
    try:
        if parse_memory(cache.size, "cache.size") == 0:
            problems.append("cache.size: must be more than 0")
    except ConfigError as exc:
        problems.append(str(exc))
    return problems
