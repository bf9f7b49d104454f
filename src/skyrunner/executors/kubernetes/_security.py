"""Security contexts of the job pod and its containers: secure unless configured otherwise.

Pure: no I/O. Defaults, each overridable by the config:

- the pod: ``seccompProfile: RuntimeDefault``; ``runAsNonRoot``, users and groups only when
  ``[runners.kubernetes.pod_security_context]`` sets them;
- every container: ``privileged: false`` (``privileged`` or the container's own context may turn
  it on), ``allowPrivilegeEscalation: false`` unless privileged, and capabilities as
  gitlab-runner computes them: ``NET_RAW`` dropped by default, ``cap_add`` re-adds, ``cap_drop``
  drops (a container context's ``capabilities`` replace both lists);
- ``kaniko``: root (kaniko unpacks images into its own filesystem), but not privileged and
  without privilege escalation. That is all kaniko needs, which is why it can run on ECI or
  Fargate where docker-in-docker cannot.
"""

from __future__ import annotations

from lightkube.models.core_v1 import (
    Capabilities,
    PodSecurityContext,
    SeccompProfile,
    SecurityContext,
    SELinuxOptions,
)

from skyrunner.config import ContainerSecurityContext, KubernetesConfig, SeccompProfileType
from skyrunner.config import PodSecurityContext as PodSecurityConfig
from skyrunner.executors.kubernetes._overwrites import CONFIG
from skyrunner.executors.kubernetes._report import BuildReport

__all__ = ["DEFAULT_CAP_DROP", "container_security", "kaniko_security", "pod_security"]

DEFAULT_CAP_DROP = ("NET_RAW",)
"""gitlab-runner's ``GetDefaultCapDrop`` (gitlab-runner issue 26833)."""


def pod_security(config: PodSecurityConfig, report: BuildReport) -> PodSecurityContext:
    """The pod's ``securityContext``."""
    where = f"{CONFIG} pod_security_context"
    return PodSecurityContext(
        fsGroup=config.fs_group,
        runAsGroup=config.run_as_group,
        runAsNonRoot=config.run_as_non_root,
        runAsUser=config.run_as_user,
        supplementalGroups=list(config.supplemental_groups) or None,
        seLinuxOptions=SELinuxOptions(type=config.selinux_type) if config.selinux_type else None,
        seccompProfile=_seccomp(
            config.seccomp_profile_type or SeccompProfileType.RUNTIME_DEFAULT,
            config.seccomp_localhost_profile,
            where,
            report,
        ),
    )


def container_security(
    context: ContainerSecurityContext, cfg: KubernetesConfig, setting: str, report: BuildReport
) -> SecurityContext:
    """A container's ``securityContext`` from its ``*_container_security_context`` and the config."""
    where = f"{CONFIG} {setting}"
    privileged = context.privileged if context.privileged is not None else bool(cfg.privileged)
    escalation = context.allow_privilege_escalation
    if escalation is None:
        escalation = cfg.allow_privilege_escalation
    if escalation is None:
        escalation = None if privileged else False
    if privileged and escalation is False:
        report.error(f"{where}: a privileged container cannot have allow_privilege_escalation = false")
    add = context.capabilities.add if context.capabilities else cfg.cap_add
    drop = context.capabilities.drop if context.capabilities else cfg.cap_drop
    seccomp = None
    if context.seccomp_profile_type is not None:
        seccomp = _seccomp(context.seccomp_profile_type, context.seccomp_localhost_profile, where, report)
    return SecurityContext(
        privileged=privileged,
        allowPrivilegeEscalation=escalation,
        capabilities=_capabilities(add, drop),
        runAsUser=context.run_as_user,
        runAsGroup=context.run_as_group,
        runAsNonRoot=context.run_as_non_root,
        readOnlyRootFilesystem=context.read_only_root_filesystem,
        procMount=context.proc_mount,
        seLinuxOptions=SELinuxOptions(type=context.selinux_type) if context.selinux_type else None,
        seccompProfile=seccomp,
    )


def kaniko_security() -> SecurityContext:
    """kaniko's ``securityContext``: root, unprivileged, no escalation (module docstring)."""
    return SecurityContext(
        privileged=False,
        allowPrivilegeEscalation=False,
        runAsUser=0,
        runAsNonRoot=False,
        capabilities=_capabilities((), ()),
    )


def _capabilities(add: tuple[str, ...], drop: tuple[str, ...]) -> Capabilities:
    # gitlab-runner's getCapabilities: default drops, then cap_add enables, then cap_drop disables
    enabled = dict.fromkeys(DEFAULT_CAP_DROP, False)
    enabled.update(dict.fromkeys(add, True))
    enabled.update(dict.fromkeys(drop, False))
    added = sorted(name for name, on in enabled.items() if on)
    dropped = sorted(name for name, on in enabled.items() if not on)
    return Capabilities(add=added or None, drop=dropped or None)


def _seccomp(kind: SeccompProfileType, localhost: str | None, where: str, report: BuildReport) -> SeccompProfile:
    if kind is SeccompProfileType.LOCALHOST and not localhost:
        report.error(f"{where}: seccomp_profile_type Localhost needs seccomp_localhost_profile")
    profile = localhost if kind is SeccompProfileType.LOCALHOST else None
    return SeccompProfile(type=kind.value, localhostProfile=profile)
