"""The cluster side of ``skyrunner deploy``: apply, compare and delete through lightkube.

This module is the only one in ``deploy/`` that talks to Kubernetes, and the one seam where
lightkube and httpx2 errors become :class:`~skyrunner.errors.KubernetesApiError` (the Status
code, reason and message, cut to 256 characters) or, for a kubeconfig that cannot be used,
:class:`~skyrunner.errors.ConfigError`. Nothing above it names a library error.

- **Apply** is server-side apply of each manifest as it was rendered (field manager
  ``skyrunner``, ``force``: skyrunner owns these fields), in the rendered order. It is
  create-or-update and idempotent: an apply that changes nothing leaves the resourceVersion as
  it was, and is reported ``unchanged``.
- **Compare** (``--dry-run``) reads each object and diffs it (``diff.py``); objects that carry
  the instance's labels but were not rendered are listed, since apply does not prune them.
- **Delete** lists every kind an instance may own by the instance's labels (namespaced ones in
  its namespace, and the cluster-scoped PersistentVolume, ClusterRole and ClusterRoleBinding),
  and deletes them in reverse apply order. The Namespace is kept: it may hold more than ours.
  A kind the server does not serve (404 on its list) owns nothing.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import enum
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx2
import lightkube
from lightkube.core.resource import NamespacedResource, Resource
from lightkube.core.resource_registry import resource_registry
from lightkube.types import CascadeType, PatchType

from skyrunner.deploy.diff import object_ref, render_diff
from skyrunner.deploy.layout import FIELD_MANAGER, ObjectNames, selector
from skyrunner.errors import ConfigError, KubernetesApiError, cut

__all__ = ["OWNED_KINDS", "Applied", "ApplyOutcome", "Cluster"]

log = logging.getLogger(__name__)

OWNED_KINDS: Final = (
    ("v1", "ServiceAccount"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("v1", "PersistentVolume"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "Secret"),
    ("v1", "ConfigMap"),
    ("apps/v1", "Deployment"),
)
"""Every kind an instance may own besides its Namespace, in apply order."""
_TIMEOUT_S: Final = 30.0
_NOT_FOUND: Final = 404


class ApplyOutcome(enum.Enum):
    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class Applied:
    """One object applied: which, and what the apply did."""

    ref: str
    outcome: ApplyOutcome


class Cluster:
    """The cluster a deployment goes to (one lightkube client)."""

    def __init__(self, client: lightkube.AsyncClient, server: str) -> None:
        self._client = client
        self._server = server

    @classmethod
    def connect(cls, kubeconfig: Path | None) -> Cluster:
        """Open a client from ``kubeconfig``, else from KUBECONFIG, ~/.kube/config or the pod.

        Raises:
            ConfigError: no usable kubeconfig (the message names the file).
        """
        where = str(kubeconfig) if kubeconfig else "kubeconfig"
        try:
            config = lightkube.KubeConfig.from_file(kubeconfig) if kubeconfig else lightkube.KubeConfig.from_env()
            client = lightkube.AsyncClient(
                config, timeout=httpx2.Timeout(_TIMEOUT_S), field_manager=FIELD_MANAGER, lazy=False
            )
        except lightkube.ConfigError as exc:
            raise ConfigError(f"{where}: {cut(str(exc))}") from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{where}: not a usable kubeconfig: {cut(str(exc) or type(exc).__name__)}") from exc
        return cls(client, client.config.cluster.server)

    async def aclose(self) -> None:
        await self._client.close()

    async def read(self, manifest: Mapping[str, Any]) -> dict[str, Any] | None:
        """Return the cluster's object for ``manifest``, or None when there is none."""
        resource, name, namespace = _target(manifest)
        with self._translated(f"get {object_ref(manifest)}"):
            try:
                found = await self._client.get(resource, name, namespace=namespace)
            except lightkube.ApiError as exc:
                if exc.status.code == _NOT_FOUND:
                    return None
                raise
        return _as_dict(found)

    async def apply(self, manifest: Mapping[str, Any]) -> Applied:
        """Server-side apply ``manifest``; say whether it created, changed or kept the object."""
        before = await self.read(manifest)
        resource, name, namespace = _target(manifest)
        ref = object_ref(manifest)
        with self._translated(f"apply {ref}"):
            after = await self._client.patch(
                resource, name, dict(manifest), namespace=namespace, patch_type=PatchType.APPLY,
                field_manager=FIELD_MANAGER, force=True,
            )  # fmt: skip
        if before is None:
            outcome = ApplyOutcome.CREATED
        elif _as_dict(after)["metadata"].get("resourceVersion") == before["metadata"].get("resourceVersion"):
            outcome = ApplyOutcome.UNCHANGED
        else:
            outcome = ApplyOutcome.CONFIGURED
        log.debug("%s: %s", ref, outcome.value)
        return Applied(ref, outcome)

    async def diff_all(self, manifests: Sequence[Mapping[str, Any]], names: ObjectNames) -> str:
        """Return the diff of every manifest against the cluster, and what only the cluster has."""
        parts = [render_diff(await self.read(manifest), manifest) for manifest in manifests]
        rendered = {object_ref(manifest) for manifest in manifests}
        extra = [object_ref(obj) for obj in await self.list_owned(names) if object_ref(obj) not in rendered]
        parts += [f"# only in the cluster (apply keeps it, --delete removes it): {ref}\n" for ref in extra]
        return "".join(parts)

    async def list_owned(self, names: ObjectNames) -> list[dict[str, Any]]:
        """Return every object labelled as the instance's, in apply order."""
        owned: list[dict[str, Any]] = []
        labels: dict[str, Any] = dict(selector(names))
        for api_version, kind in OWNED_KINDS:
            resource, _, _ = _target({"apiVersion": api_version, "kind": kind, "metadata": {"name": ""}})
            namespace = names.namespace if issubclass(resource, NamespacedResource) else None
            with self._translated(f"list {kind}"):
                try:
                    listing = self._client.list(resource, namespace=namespace, labels=labels)
                    owned += [{**_as_dict(obj), "apiVersion": api_version, "kind": kind} async for obj in listing]
                except lightkube.ApiError as exc:
                    if exc.status.code != _NOT_FOUND:  # 404: the server does not serve the kind
                        raise
        return owned

    async def delete_owned(self, names: ObjectNames) -> list[str]:
        """Delete every object of the instance but its Namespace; return what was deleted."""
        deleted: list[str] = []
        for obj in reversed(await self.list_owned(names)):
            resource, name, namespace = _target(obj)
            with self._translated(f"delete {object_ref(obj)}"):
                try:
                    await self._client.delete(resource, name, namespace=namespace, cascade=CascadeType.BACKGROUND)
                except lightkube.ApiError as exc:
                    if exc.status.code != _NOT_FOUND:  # already gone: that is what we wanted
                        raise
                    continue
            deleted.append(object_ref(obj))
        return deleted

    async def read_secret_value(self, namespace: str, name: str, key: str) -> str | None:
        """Return one value of a Secret as text, or None if the Secret or the key is missing."""
        manifest = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace}}
        secret = await self.read(manifest)
        encoded = (secret or {}).get("data", {}).get(key)
        if not isinstance(encoded, str):
            return None
        try:
            return base64.b64decode(encoded, validate=True).decode("utf-8").strip() or None
        except (binascii.Error, UnicodeDecodeError):
            return None

    @contextlib.contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        """Turn lightkube and httpx2 errors raised inside into our exception tree."""
        try:
            yield
        except lightkube.ApiError as exc:
            status = exc.status
            reason = f" {status.reason}" if status.reason else ""
            raise KubernetesApiError(
                f"{what}: {status.code}{reason}: {cut(status.message or '')}", code=status.code, reason=status.reason
            ) from exc
        except httpx2.HTTPError as exc:
            raise KubernetesApiError(f"{what}: cannot reach {self._server}: {type(exc).__name__}") from exc
        except lightkube.ConfigError as exc:
            raise ConfigError(f"{what}: {cut(str(exc))}") from exc


def _target(manifest: Mapping[str, Any]) -> tuple[Any, str, str | None]:
    """Return the lightkube resource class (typed loosely: lightkube's overloads want one kind), name, namespace."""
    resource: type[Resource] = resource_registry.load(manifest["apiVersion"], manifest["kind"])
    meta = manifest["metadata"]
    namespace = meta.get("namespace") if issubclass(resource, NamespacedResource) else None
    return resource, meta["name"], namespace


def _as_dict(obj: Any) -> dict[str, Any]:
    data = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    return dict(data)
