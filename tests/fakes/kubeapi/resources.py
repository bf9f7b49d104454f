"""The resource table: which kinds the fake serves, under which paths, with which rules.

Owns :class:`Resource` (group, version, plural, kind, scope, status subresource, name rule)
and the lookups the router and tests use. It holds no objects and makes no decisions about
them; storage is ``store.py`` and behaviour ``registry.py``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["RESOURCES", "NameRule", "Resource", "by_kind", "by_path", "lookup"]


class NameRule(enum.Enum):
    """How ``metadata.name`` is validated (apimachinery's ``ValidateNameFunc`` per kind)."""

    DNS_SUBDOMAIN = "subdomain"
    DNS_LABEL = "label"
    PATH_SEGMENT = "path-segment"


@dataclass(frozen=True, slots=True)
class Resource:
    """One served resource type."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    has_status: bool  # status is a subresource: writes to the main resource keep the stored status
    name_rule: NameRule = NameRule.DNS_SUBDOMAIN
    has_spec: bool = True  # metadata.generation follows changes of .spec

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def qualified(self) -> str:
        """``pods`` or ``deployments.apps``: how Status messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


_S = NameRule.DNS_SUBDOMAIN
RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "pods", "Pod", namespaced=True, has_status=True),
    Resource("", "v1", "secrets", "Secret", namespaced=True, has_status=False, has_spec=False),
    Resource("", "v1", "configmaps", "ConfigMap", namespaced=True, has_status=False, has_spec=False),
    Resource("", "v1", "events", "Event", namespaced=True, has_status=False, has_spec=False),
    Resource("", "v1", "namespaces", "Namespace", False, True, NameRule.DNS_LABEL),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", True, False, _S, has_spec=False),
    Resource("", "v1", "persistentvolumes", "PersistentVolume", namespaced=False, has_status=True),
    Resource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", namespaced=True, has_status=True),
    Resource("", "v1", "nodes", "Node", namespaced=False, has_status=True),
    Resource("rbac.authorization.k8s.io", "v1", "roles", "Role", True, False, NameRule.PATH_SEGMENT, False),
    Resource(
        "rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True, False, NameRule.PATH_SEGMENT, False
    ),
    Resource(
        "rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False, False, NameRule.PATH_SEGMENT, False
    ),
    Resource(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        False,
        False,
        NameRule.PATH_SEGMENT,
        False,
    ),
    Resource("apps", "v1", "deployments", "Deployment", namespaced=True, has_status=True),
)

_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_NAME = {**{r.kind.lower(): r for r in RESOURCES}, **{r.plural: r for r in RESOURCES}}
_BY_KIND = {(r.api_version, r.kind): r for r in RESOURCES}


def by_path(group: str, version: str, plural: str) -> Resource | None:
    """Return the resource served at ``/api[s]/<group>/<version>/<plural>``."""
    return _BY_PATH.get((group, version, plural))


def by_kind(api_version: str, kind: str) -> Resource | None:
    """Return the resource of an ``apiVersion``/``kind`` pair (owner references, bodies)."""
    return _BY_KIND.get((api_version, kind))


def lookup(name: str) -> Resource:
    """Return the resource named by kind or plural, any case (``"Pod"``, ``"pods"``).

    Raises:
        KeyError: the fake does not serve that kind.
    """
    return _BY_NAME[name.lower()]
