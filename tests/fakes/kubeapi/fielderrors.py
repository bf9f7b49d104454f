"""Field errors in the wording of ``k8s.io/apimachinery/pkg/util/validation/field``.

Pure: no I/O. Owns the constructors for each error type (``Required value``, ``Invalid value``,
``Unsupported value``, ``Duplicate value``, ``Not found``) and the name-format checks (RFC 1123
label and subdomain, environment variable names, quantities) with the exact upstream messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .quantity import parse_quantity
from .status import Cause

__all__ = [
    "CONFIG_KEY_MSG",
    "LABEL_MSG",
    "LABEL_VALUE_MSG",
    "QNAME_MSG",
    "SUBDOMAIN_MSG",
    "dns_label",
    "dns_subdomain",
    "duplicate",
    "env_name_causes",
    "invalid",
    "not_found",
    "not_supported",
    "quantity_cause",
    "quote",
    "required",
]

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")

LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
QNAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
    "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
    "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)
_ENV_MSG = (
    "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', "
    "and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex "
    "used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"
)


def quote(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def required(field: str, detail: str = "") -> Cause:
    return Cause("FieldValueRequired", "Required value" + (f": {detail}" if detail else ""), field)


def invalid(field: str, value: Any, detail: str) -> Cause:
    return Cause("FieldValueInvalid", f"Invalid value: {quote(value)}: {detail}", field)


def not_supported(field: str, value: Any, supported: Iterable[str]) -> Cause:
    options = ", ".join(quote(s) for s in sorted(supported))
    return Cause("FieldValueNotSupported", f"Unsupported value: {quote(value)}: supported values: {options}", field)


def duplicate(field: str, value: Any) -> Cause:
    return Cause("FieldValueDuplicate", f"Duplicate value: {quote(value)}", field)


def not_found(field: str, value: Any) -> Cause:
    return Cause("FieldValueNotFound", f"Not found: {quote(value)}", field)


def dns_label(field: str, value: str) -> list[Cause]:
    out = [] if _LABEL.match(value) else [invalid(field, value, LABEL_MSG)]
    if len(value) > 63:
        out.insert(0, invalid(field, value, "must be no more than 63 characters"))
    return out


def dns_subdomain(field: str, value: str) -> list[Cause]:
    out = [] if _SUBDOMAIN.match(value) else [invalid(field, value, SUBDOMAIN_MSG)]
    if len(value) > 253:
        out.insert(0, invalid(field, value, "must be no more than 253 characters"))
    return out


def quantity_cause(field: str, value: Any) -> Cause | None:
    """Return the error for a resource quantity that does not parse."""
    try:
        parse_quantity(value)
    except ValueError:
        return invalid(
            field,
            value,
            "must match the regex (\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))"
            "(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?",
        )
    return None


def env_name_causes(field: str, name: str) -> list[Cause]:
    return [] if _ENV_NAME.match(name) else [invalid(field, name, _ENV_MSG)]
