"""The ``[runners.kubernetes]`` table of config.toml, key for key as gitlab-runner names it.

Pure: no I/O. This module owns the *shape* of the kubernetes executor's options: names, types,
defaults and the checks that need nothing but the table itself (a pod_spec patch given twice,
``key_file`` naming the certificate). It does not parse quantities (``"3750m"`` stays a string:
``executors/kubernetes/quantity.py`` owns that), build pods, or apply ``KUBERNETES_*`` job
overwrites; the pod builder does.

gitlab-runner names kept as they are, even where they are odd: ``terminationGracePeriodSeconds``
(camelCase in gitlab-runner's TOML; ``termination_grace_period_seconds`` is accepted too), volume
``read_only`` (``readonly``, which old configs such as the reference deployment's carry, is accepted
too). skyrunner's own additions are ``host_network`` and the ``[runners.kubernetes.serverless]``
table.
"""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import (
    AliasChoices,
    Field,
    JsonValue,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)

from skyrunner.config._base import Bool, Float, Int, NonNegativeInt, Str, TomlTable, zero_means

__all__ = [
    "DEFAULT_POLL_INTERVAL_S",
    "DEFAULT_POLL_TIMEOUT_S",
    "Capabilities",
    "ConfigMapVolume",
    "ContainerSecurityContext",
    "DnsConfig",
    "DnsOption",
    "DnsPolicy",
    "EmptyDirVolume",
    "HostAlias",
    "HostPathVolume",
    "ImageBuilder",
    "KubernetesConfig",
    "KubernetesService",
    "PatchType",
    "PodSecurityContext",
    "PodSpecPatch",
    "PullPolicy",
    "PvcVolume",
    "SeccompProfileType",
    "SecretVolume",
    "ServerlessConfig",
    "ServerlessPlatform",
    "ServerlessPrices",
    "Volumes",
]

# gitlab-runner's defaults for the pod watch (executors/kubernetes: KubernetesPollInterval/Timeout).
DEFAULT_POLL_INTERVAL_S = 3
DEFAULT_POLL_TIMEOUT_S = 180


class PullPolicy(enum.StrEnum):
    ALWAYS = "always"
    NEVER = "never"
    IF_NOT_PRESENT = "if-not-present"


class DnsPolicy(enum.StrEnum):
    NONE = "none"
    DEFAULT = "default"
    CLUSTER_FIRST = "cluster-first"
    CLUSTER_FIRST_WITH_HOST_NET = "cluster-first-with-host-net"


class PatchType(enum.StrEnum):
    MERGE = "merge"
    JSON = "json"
    STRATEGIC = "strategic"


class SeccompProfileType(enum.StrEnum):
    RUNTIME_DEFAULT = "RuntimeDefault"
    UNCONFINED = "Unconfined"
    LOCALHOST = "Localhost"


class ServerlessPlatform(enum.StrEnum):
    """Where job pods run; ``auto`` is resolved from node labels by the executor."""

    ECI = "eci"
    FARGATE = "fargate"
    AUTOPILOT = "autopilot"
    ACI = "aci"
    NONE = "none"
    AUTO = "auto"


class ImageBuilder(enum.StrEnum):
    NONE = "none"
    KANIKO = "kaniko"


class Capabilities(TomlTable):
    add: tuple[Str, ...] = ()
    drop: tuple[Str, ...] = ()


class ContainerSecurityContext(TomlTable):
    """``[runners.kubernetes.{build,helper,service}_container_security_context]``."""

    capabilities: Capabilities | None = None
    privileged: Bool | None = None
    run_as_user: Int | None = None
    run_as_group: Int | None = None
    run_as_non_root: Bool | None = None
    read_only_root_filesystem: Bool | None = None
    allow_privilege_escalation: Bool | None = None
    selinux_type: Str | None = None
    proc_mount: Str | None = None
    seccomp_profile_type: SeccompProfileType | None = None
    seccomp_localhost_profile: Str | None = None


class PodSecurityContext(TomlTable):
    """``[runners.kubernetes.pod_security_context]``."""

    fs_group: Int | None = None
    run_as_group: Int | None = None
    run_as_non_root: Bool | None = None
    run_as_user: Int | None = None
    supplemental_groups: tuple[Int, ...] = ()
    selinux_type: Str | None = None
    seccomp_profile_type: SeccompProfileType | None = None
    seccomp_localhost_profile: Str | None = None


class DnsOption(TomlTable):
    name: Str
    value: Str | None = None


class DnsConfig(TomlTable):
    """``[runners.kubernetes.dns_config]``: the pod's ``dnsConfig``."""

    nameservers: tuple[Str, ...] = ()
    searches: tuple[Str, ...] = ()
    options: tuple[DnsOption, ...] = ()


class HostAlias(TomlTable):
    """One ``[[runners.kubernetes.host_aliases]]``: an /etc/hosts line of the job pod."""

    ip: Str
    hostnames: tuple[Str, ...] = ()


class _Mount(TomlTable):
    name: Str
    mount_path: Str
    sub_path: Str | None = None


# gitlab-runner reads ``read_only``; configs written for 11.x often say ``readonly``.
_READ_ONLY = AliasChoices("read_only", "readonly")


class PvcVolume(_Mount):
    read_only: Bool = Field(default=False, validation_alias=_READ_ONLY)


class ConfigMapVolume(_Mount):
    read_only: Bool = Field(default=False, validation_alias=_READ_ONLY)
    items: dict[str, Str] = Field(default_factory=dict)


class SecretVolume(_Mount):
    read_only: Bool = Field(default=False, validation_alias=_READ_ONLY)
    items: dict[str, Str] = Field(default_factory=dict)


class EmptyDirVolume(_Mount):
    medium: Str | None = None
    size_limit: Str | None = None


class HostPathVolume(_Mount):
    read_only: Bool = Field(default=False, validation_alias=_READ_ONLY)
    host_path: Str | None = None


class Volumes(TomlTable):
    """``[runners.kubernetes.volumes]`` with its ``[[...pvc]]``, ``[[...host_path]]``... arrays."""

    host_path: tuple[HostPathVolume, ...] = ()
    pvc: tuple[PvcVolume, ...] = ()
    config_map: tuple[ConfigMapVolume, ...] = ()
    secret: tuple[SecretVolume, ...] = ()
    empty_dir: tuple[EmptyDirVolume, ...] = ()


class PodSpecPatch(TomlTable):
    """One ``[[runners.kubernetes.pod_spec]]``: a patch applied last to the generated pod."""

    name: Str
    patch_type: PatchType = PatchType.STRATEGIC
    patch: Str | None = None
    patch_path: Str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> PodSpecPatch:
        # gitlab-runner fails the job on an ambiguous patch; we refuse it at load.
        if self.patch and self.patch_path:
            raise ValueError(f"pod_spec {self.name!r} sets both patch and patch_path")
        if not self.patch and not self.patch_path:
            raise ValueError(f"pod_spec {self.name!r} needs patch or patch_path")
        return self


class KubernetesService(TomlTable):
    """One ``[[runners.kubernetes.services]]``: a service added to every job."""

    name: Str
    alias: Str | None = None
    command: tuple[Str, ...] = ()
    entrypoint: tuple[Str, ...] = ()
    environment: tuple[Str, ...] = ()


class ServerlessPrices(TomlTable):
    """Price overrides for the cost line; unset ones come from the packaged platform table."""

    per_vcpu_second: Float | None = None
    per_gib_second: Float | None = None
    currency: Str | None = None


class ServerlessConfig(TomlTable):
    """``[runners.kubernetes.serverless]``: skyrunner's platform fitting, costing and image builds."""

    platform: ServerlessPlatform = ServerlessPlatform.NONE
    prices: ServerlessPrices = Field(default_factory=ServerlessPrices)
    image_cache: Bool = False
    extra_ephemeral_storage: Str | None = None
    image_builder: ImageBuilder = ImageBuilder.NONE
    kaniko_image: Str | None = None


class KubernetesConfig(TomlTable):
    """``[runners.kubernetes]``. Quantities are strings; an empty string means "not set"."""

    host: Str | None = None
    cert_file: Str | None = None
    key_file: Str | None = None
    ca_file: Str | None = None
    bearer_token_overwrite_allowed: Bool = False
    bearer_token: SecretStr | None = None
    image: Str | None = None
    namespace: Str | None = None
    namespace_overwrite_allowed: Str | None = None
    privileged: Bool | None = None
    runtime_class_name: Str | None = None
    allow_privilege_escalation: Bool | None = None
    host_network: Bool = False

    cpu_limit: Str | None = None
    cpu_limit_overwrite_max_allowed: Str | None = None
    cpu_request: Str | None = None
    cpu_request_overwrite_max_allowed: Str | None = None
    memory_limit: Str | None = None
    memory_limit_overwrite_max_allowed: Str | None = None
    memory_request: Str | None = None
    memory_request_overwrite_max_allowed: Str | None = None
    ephemeral_storage_limit: Str | None = None
    ephemeral_storage_limit_overwrite_max_allowed: Str | None = None
    ephemeral_storage_request: Str | None = None
    ephemeral_storage_request_overwrite_max_allowed: Str | None = None
    service_cpu_limit: Str | None = None
    service_cpu_limit_overwrite_max_allowed: Str | None = None
    service_cpu_request: Str | None = None
    service_cpu_request_overwrite_max_allowed: Str | None = None
    service_memory_limit: Str | None = None
    service_memory_limit_overwrite_max_allowed: Str | None = None
    service_memory_request: Str | None = None
    service_memory_request_overwrite_max_allowed: Str | None = None
    service_ephemeral_storage_limit: Str | None = None
    service_ephemeral_storage_limit_overwrite_max_allowed: Str | None = None
    service_ephemeral_storage_request: Str | None = None
    service_ephemeral_storage_request_overwrite_max_allowed: Str | None = None
    helper_cpu_limit: Str | None = None
    helper_cpu_limit_overwrite_max_allowed: Str | None = None
    helper_cpu_request: Str | None = None
    helper_cpu_request_overwrite_max_allowed: Str | None = None
    helper_memory_limit: Str | None = None
    helper_memory_limit_overwrite_max_allowed: Str | None = None
    helper_memory_request: Str | None = None
    helper_memory_request_overwrite_max_allowed: Str | None = None
    helper_ephemeral_storage_limit: Str | None = None
    helper_ephemeral_storage_limit_overwrite_max_allowed: Str | None = None
    helper_ephemeral_storage_request: Str | None = None
    helper_ephemeral_storage_request_overwrite_max_allowed: Str | None = None

    allowed_images: tuple[Str, ...] = ()
    allowed_pull_policies: tuple[PullPolicy, ...] = ()
    allowed_services: tuple[Str, ...] = ()
    pull_policy: tuple[PullPolicy, ...] = ()
    node_selector: dict[str, Str] = Field(default_factory=dict)
    node_selector_overwrite_allowed: Str | None = None
    node_tolerations: dict[str, Str] = Field(default_factory=dict)
    affinity: dict[str, JsonValue] = Field(default_factory=dict)
    image_pull_secrets: tuple[Str, ...] = ()
    helper_image: Str | None = None
    helper_image_flavor: Str | None = None
    termination_grace_period_seconds: NonNegativeInt | None = Field(
        default=None,
        validation_alias=AliasChoices("terminationGracePeriodSeconds", "termination_grace_period_seconds"),
        serialization_alias="terminationGracePeriodSeconds",
    )
    pod_termination_grace_period_seconds: NonNegativeInt | None = None
    cleanup_grace_period_seconds: NonNegativeInt | None = None
    poll_interval: Annotated[NonNegativeInt, zero_means(DEFAULT_POLL_INTERVAL_S)] = DEFAULT_POLL_INTERVAL_S
    poll_timeout: Annotated[NonNegativeInt, zero_means(DEFAULT_POLL_TIMEOUT_S)] = DEFAULT_POLL_TIMEOUT_S
    pod_labels: dict[str, Str] = Field(default_factory=dict)
    pod_labels_overwrite_allowed: Str | None = None
    scheduler_name: Str | None = None
    service_account: Str | None = None
    service_account_overwrite_allowed: Str | None = None
    pod_annotations: dict[str, Str] = Field(default_factory=dict)
    pod_annotations_overwrite_allowed: Str | None = None
    pod_security_context: PodSecurityContext = Field(default_factory=PodSecurityContext)
    build_container_security_context: ContainerSecurityContext = Field(
        default_factory=ContainerSecurityContext
    )
    helper_container_security_context: ContainerSecurityContext = Field(
        default_factory=ContainerSecurityContext
    )
    service_container_security_context: ContainerSecurityContext = Field(
        default_factory=ContainerSecurityContext
    )
    volumes: Volumes = Field(default_factory=Volumes)
    host_aliases: tuple[HostAlias, ...] = ()
    services: tuple[KubernetesService, ...] = ()
    cap_add: tuple[Str, ...] = ()
    cap_drop: tuple[Str, ...] = ()
    dns_policy: DnsPolicy | None = None
    dns_config: DnsConfig = Field(default_factory=DnsConfig)
    priority_class_name: Str | None = None
    pod_spec: tuple[PodSpecPatch, ...] = ()
    serverless: ServerlessConfig = Field(default_factory=ServerlessConfig)

    @field_validator("pull_policy", "allowed_pull_policies", mode="before")
    @classmethod
    def _string_or_array(cls, value: object) -> object:
        # gitlab-runner's StringOrArray: `pull_policy = "always"` or `["always", "if-not-present"]`.
        return (value,) if isinstance(value, str) else value

    @field_serializer("pull_policy", "allowed_pull_policies")
    def _write_string_or_array(self, value: tuple[PullPolicy, ...]) -> str | list[str]:
        # One policy is written as a string: gitlab-runner before 13.x only reads that form.
        return value[0].value if len(value) == 1 else [policy.value for policy in value]

    def tls_problem(self) -> str | None:
        """Say what is wrong with the client certificate settings, or return None.

        The reference deployment points ``key_file`` at the certificate; that loads (gitlab-runner
        loads it too) but cannot connect, so the executor reports this at connect time.
        """
        if self.key_file and self.key_file == self.cert_file:
            return (
                f"kubernetes key_file and cert_file both name {self.key_file}: "
                "key_file must be the client's private key, cert_file its certificate"
            )
        return None

    def requests_privileged(self) -> bool:
        """Return True when any container of a job pod would run privileged."""
        contexts = (
            self.build_container_security_context,
            self.helper_container_security_context,
            self.service_container_security_context,
        )
        return bool(self.privileged) or any(context.privileged for context in contexts)
