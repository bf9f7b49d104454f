"""Putting one job pod together: the steps of ``podspec.build_pod``, in order.

Pure: no I/O. :func:`assemble` reads the job's environment, decides the images, services,
kaniko and volumes, lays out the job Secret, builds the containers, sizes them for the platform,
writes the metadata and the PodSpec, applies the config's ``pod_spec`` patches, checks what
came out, and raises every problem at once. Each step lives in its own module; this one only
orders them and owns the pod's metadata (labels and annotations).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from lightkube.models.core_v1 import Container, LocalObjectReference, PodSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Pod, Secret

from skyrunner.config import KubernetesConfig, PodSpecPatch
from skyrunner.executors.base import PreparedJob
from skyrunner.executors.kubernetes._containers import (
    ContainerPlan,
    ServiceDef,
    build_container,
    helper_container,
    kaniko_container,
    prepare_container,
    service_container,
    service_defs,
)
from skyrunner.executors.kubernetes._images import build_image, helper_image, pull_policy
from skyrunner.executors.kubernetes._jobenv import JobEnvironment
from skyrunner.executors.kubernetes._kaniko import kaniko_image, kaniko_requested, render_kaniko_files
from skyrunner.executors.kubernetes._metadata import pod_annotations, pod_labels
from skyrunner.executors.kubernetes._names import PodNames, is_dns_label, is_dns_subdomain, token_slug
from skyrunner.executors.kubernetes._network import build_dns, build_host_aliases
from skyrunner.executors.kubernetes._overwrites import CONFIG, overwrite_map, overwrite_value, resolve_resources
from skyrunner.executors.kubernetes._patches import apply_patches
from skyrunner.executors.kubernetes._report import BuildReport
from skyrunner.executors.kubernetes._resources import check_requests, render_resources, size_containers
from skyrunner.executors.kubernetes._scheduling import (
    build_affinity,
    build_tolerations,
    check_label_map,
    dropped_keys,
)
from skyrunner.executors.kubernetes._secret import JobSecret, build_job_secret, docker_config
from skyrunner.executors.kubernetes._security import container_security, kaniko_security, pod_security
from skyrunner.executors.kubernetes._volumes import PodVolumes, Role, build_volumes
from skyrunner.executors.kubernetes.podspec import (
    ACTIVE_DEADLINE_MARGIN_S,
    BUILD,
    HELPER,
    LABEL_JOB_ID,
    LABEL_MANAGED_BY,
    LABEL_RUNNER,
    PREPARE,
    PULL_SECRET_KEY,
    PULL_SECRET_TYPE,
    RUN_DIR,
    PodManifests,
)
from skyrunner.executors.kubernetes.sizing import ContainerRequest, Resources
from skyrunner.executors.kubernetes.spec_table import SpecTable
from skyrunner.job.variables import JobVariables
from skyrunner.platforms import Platform, check_platform_limits

__all__ = ["assemble", "namespace_for"]

_EMPTY_DOCKER_CONFIG = '{"auths": {}}'


def namespace_for(cfg: KubernetesConfig, variables: JobVariables) -> str:
    """``podspec.resolve_namespace``."""
    report = BuildReport()
    namespace = _namespace(cfg, JobEnvironment.of(variables), report)
    report.raise_errors("kubernetes namespace")
    return namespace


def _namespace(cfg: KubernetesConfig, env: JobEnvironment, report: BuildReport) -> str:
    namespace = overwrite_value(
        cfg.namespace or "default", cfg.namespace_overwrite_allowed, "KUBERNETES_NAMESPACE_OVERWRITE",
        "namespace", env, report,
    )  # fmt: skip
    if not is_dns_label(namespace):
        report.error(f"namespace {namespace!r} is not a DNS-1123 label")
    return namespace


@dataclass(frozen=True, slots=True)
class _Parts:
    """What the containers are made of: decided once, read by several steps."""

    kaniko: bool
    services: list[ServiceDef]
    credentials: str | None
    secret: JobSecret
    volumes: PodVolumes


def assemble(
    job: PreparedJob,
    cfg: KubernetesConfig,
    *,
    names: PodNames,
    platform: Platform,
    table: SpecTable,
    patch_files: Mapping[str, str],
) -> PodManifests:
    """``podspec.build_pod``."""
    report = BuildReport()
    env = JobEnvironment.of(job.variables)
    _check_names(names, report)
    for problem in check_platform_limits(
        platform, privileged=cfg.requests_privileged(), host_path=bool(cfg.volumes.host_path),
        host_network=cfg.host_network,
    ):  # fmt: skip
        report.error(problem)
    parts = _parts(job, cfg, names, env, report)
    plans = _containers(job, cfg, names, env, parts, report)
    labels = pod_labels(job, cfg, env, names.runner or token_slug(env.get("CI_RUNNER_SHORT_TOKEN")), report)
    annotations = pod_annotations(job, cfg, env, platform, report)
    sized, size = size_containers(_requests(cfg, env, plans, report), annotations, platform, table, report)
    annotations = {**annotations, **(size.annotations if size else {})}
    spec = _pod_spec(job, cfg, env, names, parts, plans, sized.containers, report)
    spec_dict = apply_patches(spec.to_dict(), _patch_list(cfg, patch_files, report), report)
    patched = cast(PodSpec, PodSpec.from_dict(spec_dict))
    _check_patched(spec_dict, patched, report)
    report.raise_errors(f"job {job.spec.id}: cannot build its pod")
    assert size is not None  # a sizing problem is an error, raised above
    metadata = ObjectMeta(name=names.pod, namespace=names.namespace, labels=labels, annotations=annotations)
    return PodManifests(
        pod=Pod(metadata=metadata, spec=patched),
        secret=_secret(names, labels, dict(parts.secret.data)),
        pull_secret=_pull_secret(names, labels, parts.credentials),
        size=size,
        warnings=report.warnings,
    )


def _parts(
    job: PreparedJob, cfg: KubernetesConfig, names: PodNames, env: JobEnvironment, report: BuildReport
) -> _Parts:
    kaniko = kaniko_requested(cfg, env, report)
    services = service_defs(job, cfg, env, report)
    run_files = {**job.script.files(), **(render_kaniko_files() if kaniko else {})}
    credentials = docker_config(job, env, report)
    secret = build_job_secret(
        job, env, run_files, [s.variables for s in services],
        (credentials or _EMPTY_DOCKER_CONFIG) if kaniko else None, report,
    )  # fmt: skip
    volumes = build_volumes(cfg, job.layout, names.secret, secret.items, docker_config=kaniko, report=report)
    return _Parts(kaniko, services, credentials, secret, volumes)


def _containers(
    job: PreparedJob, cfg: KubernetesConfig, names: PodNames, env: JobEnvironment, parts: _Parts, report: BuildReport
) -> list[ContainerPlan]:
    """prepare, build, helper, the services and kaniko, without resources."""
    secret, mounts = parts.secret, parts.volumes.mounts
    helper = helper_image(cfg, env, report)
    helper_policy = pull_policy((), cfg, helper, report)
    helper_security = container_security(cfg.helper_container_security_context, cfg,
                                         "helper_container_security_context", report)  # fmt: skip
    build_security = container_security(cfg.build_container_security_context, cfg,
                                        "build_container_security_context", report)  # fmt: skip
    service_security = container_security(cfg.service_container_security_context, cfg,
                                          "service_container_security_context", report)  # fmt: skip
    image = build_image(job.spec.image.name if job.spec.image else "", cfg, env, report)
    policy = pull_policy(job.spec.image.pull_policy if job.spec.image else (), cfg, image, report)
    shared = _kaniko_shared(parts.volumes, job.layout.builds_dir) if parts.kaniko else None
    plans = [
        prepare_container(job, helper, helper_policy, secret.job_env, names.secret, secret.file_targets,
                          mounts[Role.PREPARE], helper_security, kaniko=parts.kaniko),
        build_container(job, image, policy, secret.job_env, names.secret, mounts[Role.BUILD], build_security,
                        kaniko_shared=shared),
        helper_container(job, helper, helper_policy, secret.job_env, names.secret, mounts[Role.HELPER],
                         helper_security),
        *(service_container(i, s, cfg, secret.service_env[i], names.secret, mounts[Role.SERVICE],
                            service_security, report) for i, s in enumerate(parts.services)),
    ]  # fmt: skip
    if parts.kaniko:
        kaniko_at = kaniko_image(cfg)
        plans.append(kaniko_container(kaniko_at, pull_policy((), cfg, kaniko_at, report), mounts[Role.KANIKO],
                                      kaniko_security()))  # fmt: skip
    return plans


def _check_names(names: PodNames, report: BuildReport) -> None:
    for kind, name in (("pod", names.pod), ("secret", names.secret), ("pull secret", names.pull_secret)):
        if not is_dns_subdomain(name):
            report.error(f"{kind} name {name!r} is not a DNS-1123 subdomain")
    if not is_dns_label(names.namespace):
        report.error(f"namespace {names.namespace!r} is not a DNS-1123 label")


def _kaniko_shared(volumes: PodVolumes, builds_dir: str) -> list[str]:
    """The directories kaniko sees as the build container does: ``skyrunner-build`` checks paths."""
    kaniko_paths = {m.mountPath for m in volumes.mounts[Role.KANIKO]}
    build_paths = [m.mountPath for m in volumes.mounts[Role.BUILD] if m.mountPath in kaniko_paths]
    return list(dict.fromkeys([builds_dir, RUN_DIR, *build_paths]))


def _requests(
    cfg: KubernetesConfig, env: JobEnvironment, plans: Sequence[ContainerPlan], report: BuildReport
) -> list[ContainerRequest]:
    groups = resolve_resources(cfg, env, report)
    requests = []
    for plan in plans:
        group = groups[plan.group] if plan.group is not None else None
        request = ContainerRequest(
            name=plan.container.name,
            requests=group.requests if group else Resources(),
            limits=group.limits if group else Resources(),
            is_init=plan.is_init,
        )
        check_requests(request, report)
        requests.append(request)
    return requests


def _pod_spec(
    job: PreparedJob, cfg: KubernetesConfig, env: JobEnvironment, names: PodNames, parts: _Parts,
    plans: Sequence[ContainerPlan], sized: Sequence[ContainerRequest], report: BuildReport,
) -> PodSpec:  # fmt: skip
    containers = [_with_resources(p.container, r) for p, r in zip(plans, sized, strict=True)]
    node_selector = overwrite_map(cfg.node_selector, cfg.node_selector_overwrite_allowed,
                                  "KUBERNETES_NODE_SELECTOR_", "node_selector", env, report)  # fmt: skip
    check_label_map(node_selector, f"{CONFIG} node_selector", report)
    account, pull_secrets = _identity(cfg, env, names, parts, report)
    dns_policy, dns_config = build_dns(cfg, report)
    grace = cfg.pod_termination_grace_period_seconds
    return PodSpec(
        initContainers=[c for c, p in zip(containers, plans, strict=True) if p.is_init],
        containers=[c for c, p in zip(containers, plans, strict=True) if not p.is_init],
        volumes=list(parts.volumes.volumes),
        restartPolicy="Never",
        activeDeadlineSeconds=job.spec.timeout_s + ACTIVE_DEADLINE_MARGIN_S,
        automountServiceAccountToken=False,
        enableServiceLinks=False,
        serviceAccountName=account or None,
        imagePullSecrets=[LocalObjectReference(name=n) for n in dict.fromkeys(pull_secrets)] or None,
        nodeSelector=node_selector or None,
        tolerations=build_tolerations(cfg.node_tolerations, report),
        affinity=build_affinity(cfg.affinity, report),
        priorityClassName=cfg.priority_class_name or None,
        schedulerName=cfg.scheduler_name or None,
        runtimeClassName=cfg.runtime_class_name or None,
        securityContext=pod_security(cfg.pod_security_context, report),
        dnsPolicy=dns_policy,
        dnsConfig=dns_config,
        hostAliases=build_host_aliases(cfg.host_aliases, [s.names for s in parts.services], report),
        hostNetwork=True if cfg.host_network else None,
        terminationGracePeriodSeconds=grace if grace is not None else cfg.termination_grace_period_seconds,
    )


def _with_resources(container: Container, sized: ContainerRequest) -> Container:
    resources = render_resources(sized)
    if resources is None:
        return container
    return cast(Container, Container.from_dict({**container.to_dict(), "resources": resources.to_dict()}))


def _identity(
    cfg: KubernetesConfig, env: JobEnvironment, names: PodNames, parts: _Parts, report: BuildReport
) -> tuple[str, list[str]]:
    """The pod's service account and image pull Secrets, names checked."""
    account = overwrite_value(cfg.service_account or "", cfg.service_account_overwrite_allowed,
                              "KUBERNETES_SERVICE_ACCOUNT_OVERWRITE", "service_account", env, report)  # fmt: skip
    pull_secrets = [*cfg.image_pull_secrets]
    if parts.credentials is not None:
        pull_secrets.append(names.pull_secret)
    for setting, value in (("service_account", account), ("priority_class_name", cfg.priority_class_name),
                           ("runtime_class_name", cfg.runtime_class_name),
                           *(("image_pull_secrets", s) for s in cfg.image_pull_secrets)):  # fmt: skip
        if value and not is_dns_subdomain(value):
            report.error(f"{CONFIG} {setting}: {value!r} is not a Kubernetes object name")
    return account, pull_secrets


def _patch_list(cfg: KubernetesConfig, files: Mapping[str, str], report: BuildReport) -> list[tuple[PodSpecPatch, str]]:
    """The config's patches in order, each with its own text: inline, or its ``patch_path``'s.

    Paired by the patch itself, never by name: names need not be unique, and gitlab-runner
    applies every patch.
    """
    ordered = []
    for patch in cfg.pod_spec:
        text = patch.patch or (files.get(patch.patch_path) if patch.patch_path else None)
        if text is None:
            report.error(f'{CONFIG} pod_spec "{patch.name}": patch_path {patch.patch_path} was not loaded')
        else:
            ordered.append((patch, text))
    return ordered


def _check_patched(given: Mapping[str, object], spec: PodSpec, report: BuildReport) -> None:
    for path in dropped_keys(given, spec.to_dict()):
        report.error(f"{CONFIG} pod_spec patches: unknown PodSpec field {path}")
    names = {c.name for c in spec.containers or []}
    init_names = {c.name for c in spec.initContainers or []}
    for name, present in ((PREPARE, PREPARE in init_names), (BUILD, BUILD in names), (HELPER, HELPER in names)):
        if not present:
            report.error(f"{CONFIG} pod_spec patches: the pod has no {name} container left")
    for container in [*(spec.initContainers or []), *(spec.containers or [])]:
        if not is_dns_label(container.name):
            report.error(f"container name {container.name!r} is not a DNS-1123 label")


def _secret(names: PodNames, labels: Mapping[str, str], data: dict[str, str]) -> Secret:
    metadata = ObjectMeta(name=names.secret, namespace=names.namespace, labels=_object_labels(labels))
    return Secret(metadata=metadata, type="Opaque", stringData=data)


def _pull_secret(names: PodNames, labels: Mapping[str, str], credentials: str | None) -> Secret | None:
    if credentials is None:
        return None
    metadata = ObjectMeta(name=names.pull_secret, namespace=names.namespace, labels=_object_labels(labels))
    return Secret(metadata=metadata, type=PULL_SECRET_TYPE, stringData={PULL_SECRET_KEY: credentials})


def _object_labels(labels: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if k in (LABEL_RUNNER, LABEL_JOB_ID, LABEL_MANAGED_BY)}
