"""The API verbs with the rules of the generic registry: create, get, list, replace, patch, apply.

Owns what happens to an object between the HTTP layer and the store: server-owned metadata
(uid, creationTimestamp, generation, generateName, resourceVersion preconditions), defaulting,
admission, validation (422 with causes), the status subresource (writes to the main resource
keep the stored status), pod spec immutability, no-op writes that keep their
resourceVersion, field managers, and list pagination. Deletion is in ``deletion.py``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import random
import uuid
from collections.abc import Callable
from typing import Any

import yaml

from . import apply as ssa
from .admission import admit_create, random_suffix
from .defaults import apply_defaults
from .patches import json_patch, merge_patch, strategic_merge_patch
from .podvalidation import pod_update_causes
from .resources import Resource
from .schema import validate
from .selectors import parse_field_selector, parse_label_selector, selectable_fields
from .status import (
    Cause,
    already_exists,
    bad_request,
    conflict,
    invalid,
    not_found,
    unsupported_media_type,
)
from .store import Store
from .timefmt import rfc3339

__all__ = ["Registry"]

_MODIFIED = "the object has been modified; please apply your changes to the latest version and try again"


def decode_body(body: bytes, *, yaml_ok: bool = False) -> Any:
    """Decode a request body (JSON; YAML for apply).

    Raises:
        StatusError: 400 BadRequest when it does not parse.
    """
    try:
        return yaml.safe_load(body) if yaml_ok else json.loads(body or b"null")
    except (ValueError, yaml.YAMLError) as exc:
        raise bad_request(f"error decoding request body: {str(exc).splitlines()[0]}") from None


class Registry:
    """The verbs of the fake API server over one :class:`Store`."""

    def __init__(self, store: Store, *, rng: random.Random, clock: Callable[[], float]) -> None:
        self.store = store
        self.rng = rng
        self.clock = clock
        self.propagation: dict[str, str] = {}  # uid -> policy of its pending deletion, for the GC

    # -- reads ------------------------------------------------------------------------------------

    def get(self, resource: Resource, namespace: str, name: str) -> dict[str, Any]:
        obj = self.store.get(resource, namespace, name)
        if obj is None:
            raise not_found(resource.group, resource.plural, name)
        return obj

    def list_objects(
        self,
        resource: Resource,
        namespace: str | None,
        *,
        labels: str | None = None,
        fields: str | None = None,
        limit: int | None = None,
        cont: str | None = None,
    ) -> dict[str, Any]:
        """Return a ``<Kind>List`` (items without kind/apiVersion, as the server sends them)."""
        label_sel, field_sel = parse_label_selector(labels), parse_field_selector(fields, resource)
        rv = self.store.rv
        start = ""
        if cont:
            try:
                token = json.loads(base64.urlsafe_b64decode(cont.encode()))
                rv, start = int(token["rv"]), str(token["start"])
            except (ValueError, KeyError, binascii.Error):
                raise bad_request(
                    "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
                ) from None
        items = []
        for obj in self.store.items(resource, namespace):
            meta = obj["metadata"]
            key = f"{meta.get('namespace', '')}/{meta['name']}"
            if key <= start:
                continue
            if label_sel.matches(meta.get("labels") or {}) and field_sel.matches(selectable_fields(resource, obj)):
                obj.pop("kind", None)
                obj.pop("apiVersion", None)
                items.append((key, obj))
        list_meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if limit and len(items) > limit:
            token = {"v": "meta.k8s.io/v1", "rv": rv, "start": items[limit - 1][0]}
            list_meta["continue"] = base64.urlsafe_b64encode(json.dumps(token).encode()).decode()
            list_meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        return {
            "kind": resource.list_kind,
            "apiVersion": resource.api_version,
            "metadata": list_meta,
            "items": [obj for _, obj in items],
        }

    # -- writes -----------------------------------------------------------------------------------

    def _check_identity(self, resource: Resource, namespace: str, body: Any, name: str | None) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format")
        kind, version = body.get("kind"), body.get("apiVersion")
        if kind is None or version is None:
            raise bad_request(f"Object 'Kind' is missing in '{json.dumps(body)[:200]}'")
        if (version, kind) != (resource.api_version, resource.kind):
            raise bad_request(
                f'{kind} in version "{version}" cannot be handled as a {resource.kind}: '
                f'no kind "{kind}" is registered for version "{version}"'
            )
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata: expected an object")
        if resource.namespaced:
            if meta.get("namespace") not in (None, "", namespace):
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if name is not None and meta.get("name") not in (None, name):
            raise bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        return body

    def _validate(self, resource: Resource, obj: dict[str, Any], extra: list[Cause] | None = None) -> None:
        causes = validate(resource, obj) + (extra or [])
        if causes:
            meta = obj.get("metadata") or {}
            raise invalid(resource.group, resource.kind, meta.get("name") or meta.get("generateName", ""), causes)

    def create(self, resource: Resource, namespace: str, body: Any, *, manager: str) -> dict[str, Any]:
        """POST: store a new object.

        Raises:
            StatusError: 400, 403, 404 (namespace), 409 AlreadyExists, 422 Invalid.
        """
        obj = copy.deepcopy(self._check_identity(resource, namespace, body, None))
        return self._create(resource, obj, manager=manager, applied=None)

    def _create(
        self, resource: Resource, obj: dict[str, Any], *, manager: str, applied: dict[str, Any] | None
    ) -> dict[str, Any]:
        meta = obj["metadata"]
        for key in (
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
            "generation",
        ):
            meta.pop(key, None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + random_suffix(self.rng)
        if resource.has_status and resource.kind != "Node":
            obj.pop("status", None)
        apply_defaults(resource.kind, obj)
        self._validate(resource, obj)
        if self.store.get(resource, meta.get("namespace", ""), meta["name"]) is not None:
            raise already_exists(resource.group, resource.plural, meta["name"])
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = rfc3339(self.clock())
        if resource.has_spec:
            meta["generation"] = 1
        admit_create(self.store, resource, obj, self.rng)
        now = rfc3339(self.clock())
        if applied is not None:
            managed = ssa.apply(None, applied, manager, force=True, now=now)
            meta["managedFields"] = managed["metadata"]["managedFields"]
        else:
            ssa.record_update(None, obj, manager, now)
        return self.store.put(resource, obj)

    def _finish_update(
        self, resource: Resource, old: dict[str, Any], new: dict[str, Any], *, manager: str | None
    ) -> dict[str, Any]:
        """Keep server-owned fields, default, validate, and write unless nothing changed."""
        meta, old_meta = new.setdefault("metadata", {}), old["metadata"]
        for key in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "name",
            "namespace",
        ):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        if resource.has_status:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        apply_defaults(resource.kind, new)
        extra: list[Cause] = []
        if resource.kind == "Pod":
            extra = pod_update_causes(old.get("spec") or {}, new.get("spec") or {})
        if old.get("immutable") and (
            old.get("data") != new.get("data") or old.get("binaryData") != new.get("binaryData")
        ):
            extra.append(Cause("FieldValueForbidden", "Forbidden: field is immutable when `immutable` is set", "data"))
        self._validate(resource, new, extra)
        if resource.has_spec and new.get("spec") != old.get("spec"):
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        if manager is not None:
            ssa.record_update(old, new, manager, rfc3339(self.clock()))
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if new == old:
            return old
        stored = self.store.put(resource, new)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return self.store.remove(resource, meta.get("namespace", ""), meta["name"]) or stored
        return stored

    def replace(self, resource: Resource, namespace: str, name: str, body: Any, *, manager: str) -> dict[str, Any]:
        """PUT: replace an object, honouring a resourceVersion precondition.

        Raises:
            StatusError: 404, 409 Conflict on a stale resourceVersion, 422 Invalid.
        """
        new = copy.deepcopy(self._check_identity(resource, namespace, body, name))
        old = self.get(resource, namespace, name)
        want = new["metadata"].get("resourceVersion")
        if want and want != old["metadata"]["resourceVersion"]:
            raise conflict(resource.group, resource.plural, name, _MODIFIED)
        new["metadata"].pop("managedFields", None)
        new["metadata"]["managedFields"] = old["metadata"].get("managedFields", [])
        return self._finish_update(resource, old, new, manager=manager)

    def patch(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        body: bytes,
        content_type: str,
        *,
        manager: str | None,
        force: bool,
    ) -> dict[str, Any]:
        """PATCH: JSON patch, merge patch, strategic merge patch or server-side apply.

        Raises:
            StatusError: 404 (except apply, which creates), 409, 415, 422.
        """
        kind = content_type.split(";")[0].strip()
        if kind == "application/apply-patch+yaml":
            return self._apply(resource, namespace, name, decode_body(body, yaml_ok=True), manager, force)
        functions = {
            "application/json-patch+json": json_patch,
            "application/merge-patch+json": merge_patch,
            "application/strategic-merge-patch+json": strategic_merge_patch,
        }
        if kind not in functions:
            raise unsupported_media_type(kind)
        patch = decode_body(body)
        old = self.get(resource, namespace, name)
        new = functions[kind](old, patch)
        if not isinstance(new, dict):
            raise bad_request("the patch did not produce an object")
        want = (new.get("metadata") or {}).get("resourceVersion")
        if want and want != old["metadata"]["resourceVersion"]:
            raise conflict(resource.group, resource.plural, name, _MODIFIED)
        new["kind"], new["apiVersion"] = resource.kind, resource.api_version
        return self._finish_update(resource, old, new, manager=manager or "unknown")

    def _apply(
        self, resource: Resource, namespace: str, name: str, body: Any, manager: str | None, force: bool
    ) -> dict[str, Any]:
        if not manager:
            cause = Cause("FieldValueRequired", "Required value: is required for apply patch", "fieldManager")
            raise invalid("meta.k8s.io", "PatchOptions", "", [cause])
        applied = self._check_identity(resource, namespace, body, name)
        applied["metadata"]["name"] = name
        old = self.store.get(resource, namespace, name)
        now = rfc3339(self.clock())
        if old is None:
            return self._create(resource, copy.deepcopy(applied), manager=manager, applied=applied)
        merged = ssa.apply(old, applied, manager, force=force, now=now)
        if merged is old:
            return old
        return self._finish_update(resource, old, merged, manager=None)

    # -- internal writers (controllers, kubelet) --------------------------------------------------

    def write_status(
        self, resource: Resource, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Replace the status of a stored object (the status subresource); None if it is gone."""
        obj = self.store.get(resource, namespace, name)
        if obj is None:
            return None
        if obj.get("status") == status:
            return obj
        obj["status"] = copy.deepcopy(status)
        return self.store.put(resource, obj)

    def write_spec_field(
        self, resource: Resource, namespace: str, name: str, path: tuple[str, ...], value: Any
    ) -> dict[str, Any] | None:
        """Set one field of a stored object (the scheduler's binding of spec.nodeName)."""
        obj = self.store.get(resource, namespace, name)
        if obj is None:
            return None
        cur = obj
        for part in path[:-1]:
            cur = cur.setdefault(part, {})
        cur[path[-1]] = value
        return self.store.put(resource, obj)

    def put_raw(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        """Store an object the fake itself builds (nodes, events, controller-made objects)."""
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", rfc3339(self.clock()))
        return self.store.put(resource, obj)
