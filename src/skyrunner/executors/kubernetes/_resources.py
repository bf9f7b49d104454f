"""Each container's requests and limits, fitted to the platform's bill.

Pure: no I/O. The pod's containers get their group's resources (``prepare`` and ``helper``
the helper's, ``build`` the build's, each service the service ones; ``kaniko`` none, so that it
shares what the idle build container leaves), then :func:`size_containers` asks ``sizing.py``
what the platform bills and hands the surplus to ``build``. On ACI, init containers may not
carry resources at all, so ``prepare`` gets none there (sizing's ACI rule).

A request above its limit is an error here rather than a 422 from the API server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from lightkube.models.core_v1 import ResourceRequirements

from skyrunner.errors import ConfigError
from skyrunner.executors.kubernetes._report import BuildReport
from skyrunner.executors.kubernetes.quantity import format_cpu, format_memory
from skyrunner.executors.kubernetes.sizing import (
    ContainerRequest,
    PodRequest,
    PodSize,
    Resources,
    apply_surplus,
    size_pod,
)
from skyrunner.executors.kubernetes.spec_table import SpecTable
from skyrunner.platforms import Platform

__all__ = ["check_requests", "render_resources", "size_containers"]

_NAMES = (("cpu", "cpu"), ("memory", "memory"), ("ephemeral_storage", "ephemeral-storage"))


def check_requests(container: ContainerRequest, report: BuildReport) -> None:
    """Report each resource of ``container`` whose request is above its limit."""
    for attribute, key in _NAMES:
        request = getattr(container.requests, attribute)
        limit = getattr(container.limits, attribute)
        if request is not None and limit is not None and request > limit:
            shown = format_cpu if attribute == "cpu" else format_memory
            report.error(
                f"container {container.name}: {key} request {shown(request)} is above its limit {shown(limit)}"
            )


def size_containers(
    containers: Sequence[ContainerRequest],
    annotations: Mapping[str, str],
    platform: Platform,
    table: SpecTable,
    report: BuildReport,
) -> tuple[PodRequest, PodSize | None]:
    """Fit the pod to ``platform`` and give ``build`` the surplus; None when it cannot be sized."""
    if platform is Platform.ACI:
        containers = [replace(c, requests=Resources(), limits=Resources()) if c.is_init else c for c in containers]
    request = PodRequest(containers=tuple(containers), annotations=dict(annotations))
    try:
        size = size_pod(request, platform, table)
    except ConfigError as exc:
        report.error(f"platform {platform.value}: {exc}")
        return request, None
    return apply_surplus(request, size), size


def render_resources(container: ContainerRequest) -> ResourceRequirements | None:
    """The container's ``resources``, or None when it sets none."""
    requests = _quantities(container.requests)
    limits = _quantities(container.limits)
    if not requests and not limits:
        return None
    return ResourceRequirements(requests=requests or None, limits=limits or None)


def _quantities(resources: Resources) -> dict[str, str]:
    out: dict[str, str] = {}
    if resources.cpu is not None:
        out["cpu"] = format_cpu(resources.cpu)
    if resources.memory is not None:
        out["memory"] = format_memory(resources.memory)
    if resources.ephemeral_storage is not None:
        out["ephemeral-storage"] = format_memory(resources.ephemeral_storage)
    return out
