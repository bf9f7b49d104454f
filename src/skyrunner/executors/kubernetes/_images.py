"""Which image each container runs, and with which pull policy.

Pure: no I/O. gitlab-runner's rules, kept:

- the build image is the job's ``image``, else the config's ``image``; services are the config's
  ``[[runners.kubernetes.services]]`` and then the job's; names are expanded with the job's
  variables (a masked one is refused: the name would be in the pod spec);
- ``allowed_images`` / ``allowed_services`` are glob patterns (``*`` stays within a path
  segment, ``**`` crosses them); when set, a job image or service that matches none is refused,
  except the config's own images;
- the pull policy is the job's (``image:pull_policy``), else the config's ``pull_policy``; with
  a list, Kubernetes gets the first, as gitlab-runner's pull manager starts with it. Each must be
  in ``allowed_pull_policies`` (or in ``pull_policy`` when that is not set).

The helper image defaults to the runner's own image. gitlab-runner's helper image (the
reference deployment's ``gitlab-runner-helper``) cannot run skyrunner's helper; it is replaced by
the default, with a warning.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from skyrunner.config import KubernetesConfig, PullPolicy
from skyrunner.executors.kubernetes._jobenv import JobEnvironment
from skyrunner.executors.kubernetes._overwrites import CONFIG
from skyrunner.executors.kubernetes._report import BuildReport
from skyrunner.executors.kubernetes.podspec import DEFAULT_HELPER_IMAGE

__all__ = ["build_image", "check_allowed", "helper_image", "pull_policy"]

_K8S_PULL_POLICY = {
    PullPolicy.ALWAYS: "Always",
    PullPolicy.NEVER: "Never",
    PullPolicy.IF_NOT_PRESENT: "IfNotPresent",
}
_GITLAB_HELPER = "gitlab-runner-helper"


def build_image(name: str, cfg: KubernetesConfig, env: JobEnvironment, report: BuildReport) -> str:
    """The build container's image: the job's, else the config's default."""
    if name.strip():
        image = env.expand_visible(name.strip(), "image", report)
        check_allowed(image, cfg.allowed_images, (cfg.image or "",), "allowed_images", report)
        return image
    if cfg.image:
        return env.expand_visible(cfg.image, f"{CONFIG} image", report)
    report.error(f"the job has no image and {CONFIG} image is not set")
    return ""


def helper_image(cfg: KubernetesConfig, env: JobEnvironment, report: BuildReport) -> str:
    """The image of ``prepare`` and ``helper``."""
    if not cfg.helper_image:
        return DEFAULT_HELPER_IMAGE
    image = env.expand_visible(cfg.helper_image, f"{CONFIG} helper_image", report)
    if _GITLAB_HELPER in image:
        report.warn(
            f"{CONFIG} helper_image {image} is gitlab-runner's helper, which cannot run skyrunner's "
            f"helper: using {DEFAULT_HELPER_IMAGE}"
        )
        return DEFAULT_HELPER_IMAGE
    return image


def check_allowed(
    image: str, patterns: Sequence[str], internal: Sequence[str], setting: str, report: BuildReport
) -> None:
    """Report ``image`` when ``patterns`` are set and it matches none of them."""
    if not patterns or image in internal:
        return
    if not any(_glob(pattern).fullmatch(image) for pattern in patterns):
        report.error(f"image {image} is not allowed by {CONFIG} {setting}")


def pull_policy(requested: Sequence[str], cfg: KubernetesConfig, image: str, report: BuildReport) -> str | None:
    """The container's ``imagePullPolicy`` for the job's ``requested`` policies (may be empty)."""
    policies: list[PullPolicy] = []
    for text in requested:
        try:
            policies.append(PullPolicy(text.strip()))
        except ValueError:
            report.error(f"image {image}: pull_policy {text!r} is not always, never or if-not-present")
    if not requested:
        policies = list(cfg.pull_policy)
    allowed = cfg.allowed_pull_policies or cfg.pull_policy
    for policy in policies:
        if allowed and policy not in allowed:
            names = ", ".join(p.value for p in allowed)
            report.error(f"image {image}: pull_policy {policy.value} is not allowed ({CONFIG} allows {names})")
    return _K8S_PULL_POLICY[policies[0]] if policies else None


def _glob(pattern: str) -> re.Pattern[str]:
    parts = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        elif pattern[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            parts.append("[^/]")
            i += 1
        else:
            parts.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(parts))
