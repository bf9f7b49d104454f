"""The serverless platforms: which one a cluster is, and what each refuses to run.

Pure: no I/O. This module owns the closed set of platforms skyrunner sizes pods for
(:class:`Platform`), the reading of a platform from node labels (:func:`detect_platform`) and
the pod features a platform refuses (:func:`check_platform_limits`). It does not own the spec
tables and prices (``spec_table.py``) nor the sizing rules (``sizing.py``).

Facts and their sources (``shared/data/serverless-k8s.md`` unless said otherwise):

- ECI refuses HostPath, HostNetwork and privileged containers.
- Fargate refuses privileged containers, HostNetwork/HostPort and hostPath volumes
  ("Pod not supported on Fargate: volumes not supported").
- GKE Autopilot refuses privileged containers and host namespaces (hostNetwork) outside
  allowlisted partner workloads (GKE's Autopilot security constraints; not in the data file).
  hostPath is allowed read-only under ``/var/log``, which a yes/no flag cannot judge, so it is
  not refused here.
- ACI virtual nodes refuse hostPath volumes: the virtual-kubelet azure-aci provider rejects
  every volume type but Azure Files, emptyDir, secret, configMap, projected and gitRepo
  (``pkg/provider/aci_volumes.go``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Final

__all__ = [
    "Platform",
    "check_platform_limits",
    "detect_platform",
]


class Platform(enum.StrEnum):
    """A platform skyrunner sizes pods for; ``none`` is any other cluster (no rounding)."""

    ECI = "eci"
    FARGATE = "fargate"
    AUTOPILOT = "autopilot"
    ACI = "aci"
    NONE = "none"


# Node labels that say which platform runs a node. Only labels seen on real nodes are used:
# - EKS Fargate nodes carry eks.amazonaws.com/compute-type=fargate (AWS; also its taint);
# - Alibaba's ECI VNode carries k8s.aliyun.com/vnode=true (ECI VNode docs);
# - AKS virtual nodes are virtual-kubelet nodes (type=virtual-kubelet) that the azure-aci
#   provider marks kubernetes.azure.com/managed=false (pkg/provider/vk_node.go);
# - GKE Autopilot nodes carry cloud.google.com/gke-autopilot, or gke-provisioning=autopilot
#   (how public tools tell Autopilot nodes apart; Google documents no such label).
# ACK virtual nodes (virtual-kubelet-<region>-<zone>) carry no label that tells ECI apart from
# ACS, which bills differently: they are not detected, and platform = "eci" must be set.
_FARGATE_LABEL: Final = ("eks.amazonaws.com/compute-type", "fargate")
_ECI_VNODE_LABEL: Final = ("k8s.aliyun.com/vnode", "true")
_VIRTUAL_KUBELET_LABEL: Final = ("type", "virtual-kubelet")
_AKS_UNMANAGED_LABEL: Final = ("kubernetes.azure.com/managed", "false")
_AUTOPILOT_LABEL: Final = "cloud.google.com/gke-autopilot"
_AUTOPILOT_PROVISIONING: Final = ("cloud.google.com/gke-provisioning", "autopilot")


def detect_platform(node_labels: Sequence[Mapping[str, str]]) -> Platform:
    """Tell the platform from the labels of the nodes a job pod may land on.

    A platform is returned only when every node is recognised as that platform; no nodes, an
    unrecognised node or a mix give :attr:`Platform.NONE`, so ``auto`` never bills a pod by a
    guess. Pass the nodes that match the job's node selector (an EKS cluster with Fargate and
    EC2 nodes is Fargate only for pods that go to Fargate).
    """
    found = {_platform_of(labels) for labels in node_labels}
    if len(found) == 1:
        return found.pop()
    return Platform.NONE


def _platform_of(labels: Mapping[str, str]) -> Platform:
    def has(pair: tuple[str, str]) -> bool:
        return labels.get(pair[0]) == pair[1]

    if has(_FARGATE_LABEL):
        return Platform.FARGATE
    if has(_ECI_VNODE_LABEL):
        return Platform.ECI
    if has(_VIRTUAL_KUBELET_LABEL) and has(_AKS_UNMANAGED_LABEL):
        return Platform.ACI
    if labels.get(_AUTOPILOT_LABEL, "false") != "false" or has(_AUTOPILOT_PROVISIONING):
        return Platform.AUTOPILOT
    return Platform.NONE


class _Feature(enum.Enum):
    PRIVILEGED = "privileged containers (privileged = true)"
    HOST_PATH = "hostPath volumes (a host_path volume)"
    HOST_NETWORK = "the host network (host_network = true)"


_REFUSED: Final[Mapping[Platform, frozenset[_Feature]]] = {
    Platform.ECI: frozenset(_Feature),
    Platform.FARGATE: frozenset(_Feature),
    Platform.AUTOPILOT: frozenset({_Feature.PRIVILEGED, _Feature.HOST_NETWORK}),
    Platform.ACI: frozenset({_Feature.HOST_PATH}),
    Platform.NONE: frozenset(),
}

_ADVICE: Final[Mapping[_Feature, str]] = {
    _Feature.PRIVILEGED: 'build images with image_builder = "kaniko" instead of docker-in-docker',
    _Feature.HOST_PATH: "use an empty_dir, pvc, config_map or secret volume",
    _Feature.HOST_NETWORK: "use a service or dns_config/host_aliases to reach hosts",
}


def check_platform_limits(platform: Platform, *, privileged: bool, host_path: bool, host_network: bool) -> list[str]:
    """List what ``platform`` refuses among the features asked for, one message per problem.

    An empty list means the platform runs such a pod. Messages are one line, lower case, for
    the config loader to prefix with the file and the runner (``config.toml: runners[0]: ``).
    """
    asked = [
        feature
        for feature, wanted in (
            (_Feature.PRIVILEGED, privileged),
            (_Feature.HOST_PATH, host_path),
            (_Feature.HOST_NETWORK, host_network),
        )
        if wanted
    ]
    return [
        f"platform {platform.value} does not run {feature.value}: {_ADVICE[feature]}"
        for feature in asked
        if feature in _REFUSED[platform]
    ]
