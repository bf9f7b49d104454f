"""Platform detection from node labels, and what each platform refuses."""

from __future__ import annotations

import pytest

from skyrunner.executors.kubernetes import sizing
from skyrunner.platforms import Platform, check_platform_limits, detect_platform

FARGATE = {"eks.amazonaws.com/compute-type": "fargate", "kubernetes.io/os": "linux"}
ECI_VNODE = {"k8s.aliyun.com/vnode": "true", "type": "virtual-kubelet"}
AKS_VIRTUAL = {
    "type": "virtual-kubelet",
    "kubernetes.azure.com/managed": "false",
    "kubernetes.io/role": "agent",
}
AUTOPILOT = {"cloud.google.com/gke-autopilot": "true", "cloud.google.com/gke-nodepool": "nap-1"}
AUTOPILOT_PROVISIONING = {"cloud.google.com/gke-provisioning": "autopilot"}
PLAIN = {"kubernetes.io/os": "linux", "kubernetes.io/hostname": "node-1"}
ACK_VIRTUAL = {"type": "virtual-kubelet", "kubernetes.io/hostname": "virtual-kubelet-cn-hangzhou-i"}

DETECT = [
    ("fargate", [FARGATE, FARGATE], Platform.FARGATE),
    ("eci-vnode", [ECI_VNODE], Platform.ECI),
    ("aks-virtual-node", [AKS_VIRTUAL], Platform.ACI),
    ("autopilot-label", [AUTOPILOT], Platform.AUTOPILOT),
    ("autopilot-provisioning", [AUTOPILOT_PROVISIONING, AUTOPILOT], Platform.AUTOPILOT),
    ("plain-nodes", [PLAIN], Platform.NONE),
    ("no-nodes", [], Platform.NONE),
    ("fargate-and-ec2", [FARGATE, PLAIN], Platform.NONE),
    ("two-platforms", [FARGATE, ECI_VNODE], Platform.NONE),
    ("ack-virtual-kubelet-is-ambiguous", [ACK_VIRTUAL], Platform.NONE),
    ("virtual-kubelet-without-azure", [{"kubernetes.azure.com/managed": "false"}], Platform.NONE),
    ("autopilot-false", [{"cloud.google.com/gke-autopilot": "false"}], Platform.NONE),
]


@pytest.mark.parametrize(("nodes", "platform"), [d[1:] for d in DETECT], ids=[d[0] for d in DETECT])
def test_detect_platform(nodes: list[dict[str, str]], platform: Platform) -> None:
    assert detect_platform(nodes) is platform


LIMITS = [
    ("eci-privileged", Platform.ECI, (True, False, False), ["privileged containers"]),
    (
        "eci-all",
        Platform.ECI,
        (True, True, True),
        ["privileged containers", "hostPath volumes", "the host network"],
    ),
    ("fargate-host-path", Platform.FARGATE, (False, True, False), ["hostPath volumes"]),
    ("fargate-host-network", Platform.FARGATE, (False, False, True), ["the host network"]),
    ("autopilot-privileged", Platform.AUTOPILOT, (True, False, False), ["privileged containers"]),
    ("autopilot-host-path-allowed", Platform.AUTOPILOT, (False, True, False), []),
    ("aci-host-path", Platform.ACI, (False, True, False), ["hostPath volumes"]),
    ("aci-privileged-not-known", Platform.ACI, (True, False, False), []),
    ("none-allows-all", Platform.NONE, (True, True, True), []),
    ("nothing-asked", Platform.ECI, (False, False, False), []),
]


@pytest.mark.parametrize(
    ("platform", "asked", "refused"), [limit[1:] for limit in LIMITS], ids=[limit[0] for limit in LIMITS]
)
def test_check_platform_limits(platform: Platform, asked: tuple[bool, bool, bool], refused: list[str]) -> None:
    privileged, host_path, host_network = asked
    problems = check_platform_limits(platform, privileged=privileged, host_path=host_path, host_network=host_network)
    assert len(problems) == len(refused)
    for problem, feature in zip(problems, refused, strict=True):
        assert problem.startswith(f"platform {platform.value} does not run {feature}")
        assert "\n" not in problem


def test_limit_message_in_full() -> None:
    assert check_platform_limits(Platform.ECI, privileged=True, host_path=False, host_network=False) == [
        "platform eci does not run privileged containers (privileged = true): "
        'build images with image_builder = "kaniko" instead of docker-in-docker'
    ]


def test_sizing_exposes_the_platform_api() -> None:
    assert sizing.Platform is Platform
    assert sizing.detect_platform is detect_platform
    assert sizing.check_platform_limits is check_platform_limits
    assert [p.value for p in Platform] == ["eci", "fargate", "autopilot", "aci", "none"]
