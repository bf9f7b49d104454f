"""The pod's volumes, and which container mounts which.

Pure: no I/O. Ours:

=====================  ==================  ==========================================  =====================
volume                 kind                mounted at                                  in
=====================  ==================  ==========================================  =====================
``skyrunner-builds``   emptyDir            the builds dir (unless a config volume      every job container
                                           mounts there)
``skyrunner-run``      emptyDir            ``/skyrunner``                              prepare, build,
                                                                                       helper, kaniko
``skyrunner-job``      Secret (items)      ``/skyrunner-job``                          prepare, helper
``skyrunner-pod``      downwardAPI         ``/skyrunner-pod`` (``annotations``)        prepare, build, helper
``skyrunner-cache``    emptyDir            the cache dir, unless a config volume       prepare, build, helper
                                           covers it (the reference deployment's PVC)
``skyrunner-docker``   Secret (one item)   ``/kaniko/.docker`` (``config.json``)       kaniko
=====================  ==================  ==========================================  =====================

The config's ``[[runners.kubernetes.volumes.*]]`` (host_path, pvc, config_map, secret,
empty_dir, with gitlab-runner's fields: a PVC or ConfigMap or Secret is the object of the same
name, a host_path without ``host_path`` mounts the same path of the node) are mounted in every
job container, as gitlab-runner does. Their names must be DNS-1123 labels (the volume and the
object share it) and may not start with ``skyrunner-``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from lightkube.models.core_v1 import (
    ConfigMapVolumeSource,
    DownwardAPIVolumeFile,
    DownwardAPIVolumeSource,
    EmptyDirVolumeSource,
    HostPathVolumeSource,
    KeyToPath,
    ObjectFieldSelector,
    PersistentVolumeClaimVolumeSource,
    SecretVolumeSource,
    Volume,
    VolumeMount,
)

from skyrunner.config import KubernetesConfig
from skyrunner.errors import ConfigError
from skyrunner.executors.base import JobLayout
from skyrunner.executors.kubernetes._names import is_dns_label
from skyrunner.executors.kubernetes._overwrites import CONFIG
from skyrunner.executors.kubernetes._report import BuildReport
from skyrunner.executors.kubernetes._secret import SecretItem
from skyrunner.executors.kubernetes.podspec import (
    JOB_SECRET_DIR,
    KANIKO_DOCKER_DIR,
    POD_INFO_DIR,
    RUN_DIR,
    SECRET_DOCKER_CONFIG_KEY,
    STOP_FILE,
    VOLUME_BUILDS,
    VOLUME_CACHE,
    VOLUME_DOCKER,
    VOLUME_JOB,
    VOLUME_POD_INFO,
    VOLUME_RUN,
)
from skyrunner.executors.kubernetes.quantity import parse_memory

__all__ = ["PodVolumes", "Role", "build_volumes"]


class Role(enum.Enum):
    """What a container is to the job, which decides its mounts."""

    PREPARE = "prepare"
    BUILD = "build"
    HELPER = "helper"
    SERVICE = "service"
    KANIKO = "kaniko"


_PHASES = frozenset({Role.PREPARE, Role.BUILD, Role.HELPER})


@dataclass(frozen=True, slots=True)
class PodVolumes:
    volumes: tuple[Volume, ...]
    mounts: Mapping[Role, tuple[VolumeMount, ...]]


@dataclass(frozen=True, slots=True)
class _Entry:
    volume: Volume
    mount: VolumeMount
    roles: frozenset[Role]


def build_volumes(
    cfg: KubernetesConfig,
    layout: JobLayout,
    secret_name: str,
    items: Sequence[SecretItem],
    *,
    docker_config: bool,
    report: BuildReport,
) -> PodVolumes:
    """The pod's volumes and each role's mounts (see the module docstring)."""
    configured = list(_configured(cfg, report))
    paths = [entry.mount.mountPath for entry in configured]
    entries = [*_ours(layout, secret_name, items, paths, docker_config), *configured]
    volumes: dict[str, Volume] = {}
    for entry in entries:
        if entry.volume.name in volumes and volumes[entry.volume.name] != entry.volume:
            report.error(f"{CONFIG} volumes: more than one volume is named {entry.volume.name}")
        volumes.setdefault(entry.volume.name, entry.volume)
    mounts = {role: tuple(e.mount for e in entries if role in e.roles) for role in Role}
    for path in sorted({path for role_mounts in mounts.values() for path in _twice(role_mounts)}):
        report.error(f"{CONFIG} volumes: two volumes are mounted at {path}")
    return PodVolumes(volumes=tuple(volumes.values()), mounts=mounts)


def _covered(path: str, mount_paths: Iterable[str]) -> bool:
    return any(path == p.rstrip("/") or path.startswith(p.rstrip("/") + "/") for p in mount_paths)


def _ours(
    layout: JobLayout, secret_name: str, items: Sequence[SecretItem], configured: Sequence[str], docker_config: bool
) -> list[_Entry]:
    every = frozenset(Role)
    entries: list[_Entry] = []
    if not _covered(layout.builds_dir, configured):
        entries.append(_empty_dir(VOLUME_BUILDS, layout.builds_dir, every))
    entries.append(_empty_dir(VOLUME_RUN, RUN_DIR, _PHASES | {Role.KANIKO}))
    job = SecretVolumeSource(
        secretName=secret_name, items=[KeyToPath(key=i.key, path=i.path, mode=i.mode) for i in items]
    )
    entries.append(_Entry(Volume(name=VOLUME_JOB, secret=job), _mount(VOLUME_JOB, JOB_SECRET_DIR, True),
                          frozenset({Role.PREPARE, Role.HELPER})))  # fmt: skip
    stop = DownwardAPIVolumeFile(
        path=STOP_FILE.rsplit("/", 1)[1],
        fieldRef=ObjectFieldSelector(fieldPath="metadata.annotations"),
    )
    entries.append(_Entry(Volume(name=VOLUME_POD_INFO, downwardAPI=DownwardAPIVolumeSource(items=[stop])),
                          _mount(VOLUME_POD_INFO, POD_INFO_DIR, True), _PHASES))  # fmt: skip
    if not _covered(layout.cache_dir, configured):
        entries.append(_empty_dir(VOLUME_CACHE, layout.cache_dir, _PHASES))
    if docker_config:
        source = SecretVolumeSource(
            secretName=secret_name, items=[KeyToPath(key=SECRET_DOCKER_CONFIG_KEY, path="config.json")]
        )
        entries.append(_Entry(Volume(name=VOLUME_DOCKER, secret=source), _mount(VOLUME_DOCKER, KANIKO_DOCKER_DIR, True),
                              frozenset({Role.KANIKO})))  # fmt: skip
    return entries


def _empty_dir(name: str, path: str, roles: frozenset[Role]) -> _Entry:
    return _Entry(Volume(name=name, emptyDir=EmptyDirVolumeSource()), _mount(name, path, False), roles)


def _mount(name: str, path: str, read_only: bool, sub_path: str | None = None) -> VolumeMount:
    return VolumeMount(name=name, mountPath=path, readOnly=read_only or None, subPath=sub_path or None)


def _configured(cfg: KubernetesConfig, report: BuildReport) -> Iterable[_Entry]:
    every = frozenset(Role)
    volumes = cfg.volumes
    for hp in volumes.host_path:
        source = HostPathVolumeSource(path=hp.host_path or hp.mount_path)
        yield _checked(Volume(name=hp.name, hostPath=source), hp.name, hp.mount_path, hp.sub_path, hp.read_only, every,
                       "host_path", report)  # fmt: skip
    for pvc in volumes.pvc:
        claim = PersistentVolumeClaimVolumeSource(claimName=pvc.name, readOnly=pvc.read_only or None)
        yield _checked(Volume(name=pvc.name, persistentVolumeClaim=claim), pvc.name, pvc.mount_path, pvc.sub_path,
                       pvc.read_only, every, "pvc", report)  # fmt: skip
    for cm in volumes.config_map:
        source_cm = ConfigMapVolumeSource(name=cm.name, items=_items(cm.items))
        yield _checked(Volume(name=cm.name, configMap=source_cm), cm.name, cm.mount_path, cm.sub_path, cm.read_only,
                       every, "config_map", report)  # fmt: skip
    for sv in volumes.secret:
        source_sv = SecretVolumeSource(secretName=sv.name, items=_items(sv.items))
        yield _checked(Volume(name=sv.name, secret=source_sv), sv.name, sv.mount_path, sv.sub_path, sv.read_only,
                       every, "secret", report)  # fmt: skip
    for ed in volumes.empty_dir:
        size = ed.size_limit.strip() if ed.size_limit else None
        if size:
            try:
                parse_memory(size, f"{CONFIG} volumes.empty_dir {ed.name} size_limit")
            except ConfigError as exc:
                report.error(str(exc))
        source_ed = EmptyDirVolumeSource(medium=ed.medium or None, sizeLimit=size or None)
        yield _checked(Volume(name=ed.name, emptyDir=source_ed), ed.name, ed.mount_path, ed.sub_path, False, every,
                       "empty_dir", report)  # fmt: skip


def _items(items: Mapping[str, str]) -> list[KeyToPath] | None:
    return [KeyToPath(key=key, path=path) for key, path in sorted(items.items())] or None


def _checked(
    volume: Volume, name: str, mount_path: str, sub_path: str | None, read_only: bool, roles: frozenset[Role],
    kind: str, report: BuildReport,
) -> _Entry:  # fmt: skip
    if not is_dns_label(name) or name.startswith("skyrunner-"):
        report.error(f"{CONFIG} volumes.{kind} {name!r}: a volume name must be a DNS-1123 label not starting "
                     "with skyrunner-")  # fmt: skip
    if not mount_path.startswith("/"):
        report.error(f"{CONFIG} volumes.{kind} {name!r}: mount_path {mount_path!r} is not an absolute path")
    return _Entry(volume, _mount(name, mount_path, read_only, sub_path), roles)


def _twice(mounts: Sequence[VolumeMount]) -> set[str]:
    seen: set[str] = set()
    twice = set()
    for mount in mounts:
        path = mount.mountPath.rstrip("/") or "/"
        if path in seen:
            twice.add(path)
        seen.add(path)
    return twice
