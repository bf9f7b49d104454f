"""Validation of stored objects: the official OpenAPI schema plus what the schema cannot say.

Pure: no I/O beyond reading the schema files that ``kubernetes-validate`` ships (cached).

Every created, replaced, patched or applied object goes through :func:`validate`, which returns
the field errors the real API server would report, as :class:`~.status.Cause` values in the
upstream wording (``Required value``, ``Invalid value: "x": ...``, ``Unsupported value``,
``Duplicate value``, ``Not found``). Sources:

* the strict JSON schema of the Kubernetes version below (unknown fields, types, required);
* ``ValidateObjectMeta``: name format per kind, labels and annotation keys, owner references;
* the pod rules the schema misses (``podvalidation.py``);
* Secret and ConfigMap keys.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from typing import Any

import jsonschema
import referencing
from kubernetes_validate import utils as kv

from .fielderrors import (
    CONFIG_KEY_MSG,
    LABEL_VALUE_MSG,
    QNAME_MSG,
    dns_label,
    dns_subdomain,
    duplicate,
    invalid,
    not_supported,
    quote,
    required,
)
from .podvalidation import pod_causes
from .resources import NameRule, Resource
from .status import Cause

__all__ = ["KUBERNETES_VERSION", "validate"]

KUBERNETES_VERSION = "1.30.0"
_QNAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_MAX_ANNOTATIONS = 256 * 1024

# -- the OpenAPI schema ---------------------------------------------------------------------------


@functools.cache
def _validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    folder = f"kubernetes-json-schema/v{KUBERNETES_VERSION}-local-strict"
    schema = kv.schema_contents(f"{folder}/{kind.lower()}-{group_version}.json", KUBERNETES_VERSION)
    defs = kv.schema_contents(f"{folder}/_definitions.json", KUBERNETES_VERSION)
    registry: referencing.Registry[Any] = referencing.Registry()
    registry = referencing.Resource.from_contents(schema) @ registry
    registry = referencing.Resource.from_contents(defs) @ registry
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _schema_cause(error: jsonschema.ValidationError) -> Iterator[Cause]:
    where = _path(error.absolute_path)
    if error.validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        yield required(_path([*error.absolute_path, *missing]))
    elif error.validator == "additionalProperties":
        extra = set(error.instance) - set(error.schema.get("properties", {}))
        for name in sorted(extra):
            field = _path([*error.absolute_path, name])
            yield Cause("FieldValueInvalid", f'Invalid value: unknown field "{field}"', field)
    elif error.validator == "enum":
        yield not_supported(where, error.instance, error.validator_value)
    elif error.validator == "type":
        wanted = error.validator_value
        wanted = next(t for t in wanted if t != "null") if isinstance(wanted, list) else wanted
        yield Cause("FieldValueTypeInvalid", f"Invalid value: {quote(error.instance)}: expected {wanted}", where)
    else:
        yield invalid(where, error.instance, error.message)


def _schema_causes(obj: dict[str, Any]) -> list[Cause]:
    validator = _validator(str(obj.get("apiVersion")), str(obj.get("kind")))
    errors = sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path])
    return [cause for error in errors for cause in _schema_cause(error)]


# -- ObjectMeta -----------------------------------------------------------------------------------


def _qualified_name(field: str, key: str) -> list[Cause]:
    prefix, _, name = key.rpartition("/")
    out: list[Cause] = []
    if prefix:
        out += [
            invalid(field, key, "prefix part " + c.message.split(": ", 2)[-1]) for c in dns_subdomain(field, prefix)
        ]
    if not name:
        out.append(invalid(field, key, "name part must be non-empty"))
    elif len(name) > 63:
        out.append(invalid(field, key, "name part must be no more than 63 characters"))
    elif not _QNAME.match(name):
        out.append(invalid(field, key, QNAME_MSG))
    return out


def _meta_causes(resource: Resource, meta: dict[str, Any]) -> list[Cause]:
    out: list[Cause] = []
    name = meta.get("name") or ""
    if not name and not meta.get("generateName"):
        out.append(required("metadata.name", "name or generateName is required"))
    elif name:
        if resource.name_rule is NameRule.DNS_LABEL:
            out += dns_label("metadata.name", name)
        elif resource.name_rule is NameRule.DNS_SUBDOMAIN:
            out += dns_subdomain("metadata.name", name)
        elif name in (".", "..") or "/" in name or "%" in name:
            out.append(invalid("metadata.name", name, "may not contain '/' or '%' and may not be '.' or '..'"))
    for key, value in (meta.get("labels") or {}).items():
        out += _qualified_name("metadata.labels", key)
        if not isinstance(value, str):
            continue
        if len(value) > 63:
            out.append(invalid("metadata.labels", value, "must be no more than 63 characters"))
        elif not _LABEL_VALUE.match(value):
            out.append(invalid("metadata.labels", value, LABEL_VALUE_MSG))
    annotations = meta.get("annotations") or {}
    for key in annotations:
        out += [
            Cause(c.reason, c.message, "metadata.annotations") for c in _qualified_name("metadata.annotations", key)
        ]
    size = sum(len(k) + len(str(v)) for k, v in annotations.items())
    if size > _MAX_ANNOTATIONS:
        out.append(
            Cause("FieldValueTooLong", f"Too long: must have at most {_MAX_ANNOTATIONS} bytes", "metadata.annotations")
        )
    for i, ref in enumerate(meta.get("ownerReferences") or []):
        for key in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(key):
                out.append(
                    required(f"metadata.ownerReferences[{i}].{key}" if key != "uid" else "metadata.ownerReferences.uid")
                )
    return out


# -- kinds ----------------------------------------------------------------------------------------


def _config_keys(obj: dict[str, Any], fields: tuple[str, ...]) -> list[Cause]:
    out: list[Cause] = []
    seen: set[str] = set()
    for field in fields:
        for key in obj.get(field) or {}:
            if not _CONFIG_KEY.match(key):
                out.append(invalid(f"{field}[{key}]", key, CONFIG_KEY_MSG))
            if key in seen:
                out.append(duplicate(f"{field}[{key}]", key))
            seen.add(key)
    return out


def validate(resource: Resource, obj: dict[str, Any]) -> list[Cause]:
    """Return every field error of ``obj`` (empty when it is valid)."""
    causes = _schema_causes(obj)
    causes += _meta_causes(resource, obj.get("metadata") or {})
    if causes:
        return causes
    if resource.kind == "Pod":
        causes += pod_causes(obj.get("spec") or {})
    elif resource.kind == "Secret":
        causes += _config_keys(obj, ("data",))
    elif resource.kind == "ConfigMap":
        causes += _config_keys(obj, ("data", "binaryData"))
    return causes
