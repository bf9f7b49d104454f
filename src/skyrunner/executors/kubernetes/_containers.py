"""The job pod's containers: prepare, build, helper, one per service, and kaniko.

Pure: no I/O. ``podspec.py``'s docstring gives the layout; this module builds each container
without its resources (``_resources.py`` sizes them all together, then :func:`with_resources`
adds them). Commands never contain ``$(`` or ``$$``: the kubelet expands those in
``command`` and ``args``.

The prepare container's script copies the run directory out of the job Secret, makes the
kaniko request directory when there is a sidecar, copies each file-type variable to its path
(``files/<n>`` and its target come as argument pairs), then becomes the sequencer. It runs with
``umask 0000``, as gitlab-runner runs its helper on Kubernetes, so that a build container running
as another user can write to the clone and to the job's temporary directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lightkube.models.core_v1 import (
    Container,
    EnvVar,
    EnvVarSource,
    SecretKeySelector,
    SecurityContext,
    VolumeMount,
)

from skyrunner.config import KubernetesConfig
from skyrunner.executors.base import PreparedJob
from skyrunner.executors.kubernetes._images import check_allowed, pull_policy
from skyrunner.executors.kubernetes._jobenv import JobEnvironment
from skyrunner.executors.kubernetes._network import ServiceNames
from skyrunner.executors.kubernetes._overwrites import ContainerGroup
from skyrunner.executors.kubernetes._report import BuildReport
from skyrunner.executors.kubernetes._secret import EnvRef
from skyrunner.executors.kubernetes.podspec import (
    BIN_DIR,
    BUILD,
    HELPER,
    JOB_FILE_VARIABLES,
    JOB_RUN_FILES,
    KANIKO,
    KANIKO_DIR,
    KANIKO_LOOP_FILE,
    PLAN_FILE,
    PREPARE,
    RUN_DIR,
    SEQUENCER,
    SERVICE_PREFIX,
    STOP_FILE,
    TERMINATION_LOG,
)
from skyrunner.job.script import Phase
from skyrunner.job.spec import ServiceSpec

__all__ = [
    "ContainerPlan",
    "ServiceDef",
    "build_container",
    "helper_container",
    "kaniko_container",
    "prepare_container",
    "service_container",
    "service_defs",
]

_PREPARE_SCRIPT = f"""umask 0000
cp -R {JOB_RUN_FILES}/. {RUN_DIR}/ || exit 1
if [ -n "$SKYRUNNER_KANIKO_DIR" ]; then mkdir -p "$SKYRUNNER_KANIKO_DIR" || exit 1; fi
while [ $# -gt 1 ]; do
  mkdir -p "${{2%/*}}" && cp "$1" "$2" || exit 1
  shift 2
done
exec sh {SEQUENCER} {Phase.PREPARE.value}
"""
_BUILD_WITH_BIN = f'PATH="{BIN_DIR}:$PATH"; export PATH; exec sh {SEQUENCER} {Phase.BUILD.value}'


@dataclass(frozen=True, slots=True)
class ContainerPlan:
    """A container without resources, and whose resources it gets (None: none)."""

    container: Container
    group: ContainerGroup | None
    is_init: bool = False


@dataclass(frozen=True, slots=True)
class ServiceDef:
    """A service container to be: from the config or the job, variables expanded."""

    image: str
    names: ServiceNames
    entrypoint: tuple[str, ...]
    command: tuple[str, ...]
    variables: dict[str, str]
    pull_policy: tuple[str, ...]


def service_defs(job: PreparedJob, cfg: KubernetesConfig, env: JobEnvironment, report: BuildReport) -> list[ServiceDef]:
    """The config's services, then the job's (gitlab-runner's order); unnamed ones are skipped."""
    configured = [
        ServiceSpec.model_validate({
            "name": s.name, "alias": s.alias or "", "command": list(s.command), "entrypoint": list(s.entrypoint),
            "variables": [dict(zip(("key", "value"), e.split("=", 1), strict=False)) for e in s.environment],
        })
        for s in cfg.services
    ]  # fmt: skip
    out = []
    for index, service in enumerate([*configured, *job.spec.services]):
        if not service.name.strip():
            continue
        image = env.expand_visible(service.name.strip(), f"service {service.name}", report)
        if index >= len(configured):
            check_allowed(image, cfg.allowed_services, (), "allowed_services", report)
        given = tuple(a for a in service.alias.replace(",", " ").split() if a)
        derived = () if given else tuple(service.aliases)
        variables = {v.key: job.variables.expand(v.value) for v in service.variables}
        out.append(ServiceDef(image, (given, derived), tuple(service.entrypoint), tuple(service.command),
                              variables, tuple(service.pull_policy)))  # fmt: skip
    return out


def _plain(name: str, value: str) -> EnvVar:
    return EnvVar(name=name, value=value)


def _secret_refs(refs: Sequence[EnvRef], secret: str, reserved: set[str]) -> list[EnvVar]:
    return [
        EnvVar(name=r.name, valueFrom=EnvVarSource(secretKeyRef=SecretKeySelector(name=secret, key=r.key)))
        for r in refs
        if r.name not in reserved
    ]


def _sequencer_env(job: PreparedJob, *, plan: bool) -> list[EnvVar]:
    env = [
        _plain("SKYRUNNER_RUN_DIR", RUN_DIR),
        _plain("SKYRUNNER_RESULTS", TERMINATION_LOG),
        _plain("SKYRUNNER_SECTIONS", "1" if job.spec.features.trace_sections else "0"),
        _plain("SKYRUNNER_PYTHON", "python3"),
        _plain("SKYRUNNER_STOP_FILE", STOP_FILE),
        _plain("SKYRUNNER_AFTER_SCRIPT_TIMEOUT", str(job.after_script_timeout_s)),
    ]
    if plan:
        env.append(_plain("SKYRUNNER_PLAN", PLAN_FILE))
    return env


def _phase_env(
    job: PreparedJob, refs: Sequence[EnvRef], secret: str, extra: Sequence[EnvVar], plan: bool
) -> list[EnvVar]:
    own = [*_sequencer_env(job, plan=plan), *extra]
    return own + _secret_refs(refs, secret, {e.name for e in own})


def prepare_container(
    job: PreparedJob, image: str, policy: str | None, refs: Sequence[EnvRef], secret: str,
    file_targets: Sequence[str], mounts: Sequence[VolumeMount], security: SecurityContext, *, kaniko: bool,
) -> ContainerPlan:  # fmt: skip
    """The init container: run directory and file variables into place, then the prepare phase."""
    pairs = [arg for i, target in enumerate(file_targets) for arg in (f"{JOB_FILE_VARIABLES}/{i}", target)]
    extra = [_plain("SKYRUNNER_KANIKO_DIR", KANIKO_DIR)] if kaniko else []
    container = Container(
        name=PREPARE, image=image, imagePullPolicy=policy,
        command=["sh", "-c", _PREPARE_SCRIPT, PREPARE, *pairs],
        env=_phase_env(job, refs, secret, extra, plan=True),
        volumeMounts=list(mounts), securityContext=security,
    )  # fmt: skip
    return ContainerPlan(container, ContainerGroup.HELPER, is_init=True)


def build_container(
    job: PreparedJob, image: str, policy: str | None, refs: Sequence[EnvRef], secret: str,
    mounts: Sequence[VolumeMount], security: SecurityContext, *, kaniko_shared: Sequence[str] | None,
) -> ContainerPlan:  # fmt: skip
    """The job's image running the build phase; with kaniko, ``skyrunner-build`` is on its PATH."""
    ours = ["sh", SEQUENCER, Phase.BUILD.value]
    extra = []
    if kaniko_shared is not None:
        ours = ["sh", "-c", _BUILD_WITH_BIN]
        extra = [_plain("SKYRUNNER_KANIKO_DIR", KANIKO_DIR), _plain("SKYRUNNER_KANIKO_SHARED", ":".join(kaniko_shared))]
    entrypoint = [part for part in (job.spec.image.entrypoint if job.spec.image else []) if part]
    command, args = (entrypoint, ours) if entrypoint else (ours, None)
    container = Container(
        name=BUILD, image=image, imagePullPolicy=policy, command=command, args=args,
        workingDir=job.layout.project_dir, env=_phase_env(job, refs, secret, extra, plan=False),
        volumeMounts=list(mounts), securityContext=security,
    )  # fmt: skip
    return ContainerPlan(container, ContainerGroup.BUILD)


def helper_container(
    job: PreparedJob, image: str, policy: str | None, refs: Sequence[EnvRef], secret: str,
    mounts: Sequence[VolumeMount], security: SecurityContext,
) -> ContainerPlan:  # fmt: skip
    """The helper sidecar: waits for the build's marker, then saves caches and artifacts."""
    container = Container(
        name=HELPER, image=image, imagePullPolicy=policy, command=["sh", SEQUENCER, Phase.FINISH.value],
        env=_phase_env(job, refs, secret, [], plan=True), volumeMounts=list(mounts), securityContext=security,
    )  # fmt: skip
    return ContainerPlan(container, ContainerGroup.HELPER)


def service_container(
    index: int, service: ServiceDef, cfg: KubernetesConfig, refs: Sequence[EnvRef], secret: str,
    mounts: Sequence[VolumeMount], security: SecurityContext, report: BuildReport,
) -> ContainerPlan:  # fmt: skip
    """``svc-<index>``: the service's image, entrypoint as command, command as arguments."""
    container = Container(
        name=f"{SERVICE_PREFIX}{index}", image=service.image,
        imagePullPolicy=pull_policy(service.pull_policy, cfg, service.image, report),
        command=list(service.entrypoint) or None, args=list(service.command) or None,
        env=_secret_refs(refs, secret, set()) or None, volumeMounts=list(mounts) or None, securityContext=security,
    )  # fmt: skip
    return ContainerPlan(container, ContainerGroup.SERVICE)


def kaniko_container(
    image: str, policy: str | None, mounts: Sequence[VolumeMount], security: SecurityContext
) -> ContainerPlan:
    """The kaniko sidecar serving ``skyrunner-build`` until the build phase ends."""
    container = Container(
        name=KANIKO, image=image, imagePullPolicy=policy, command=["sh", f"{RUN_DIR}/{KANIKO_LOOP_FILE}"],
        volumeMounts=list(mounts), securityContext=security,
    )  # fmt: skip
    return ContainerPlan(container, None)
