"""Kubernetes name rules, and the names skyrunner gives a job's objects.

Pure: no I/O. The API server validates names, but kubernetes-validate's offline schemas do not,
and a name refused at create time is a failed job; so the pod builder checks every name it
writes with these functions (``k8s.io/apimachinery/pkg/util/validation``):

- DNS-1123 label (pod volumes, container names, namespaces): ``[a-z0-9]([-a-z0-9]*[a-z0-9])?``,
  at most 63 characters;
- DNS-1123 subdomain (pods, Secrets, PVCs, service accounts, host aliases): dot-separated
  labels, at most 253 characters;
- qualified name (label and annotation keys): an optional DNS subdomain prefix and ``/``, then
  at most 63 of ``[-A-Za-z0-9_.]`` starting and ending alphanumeric;
- label value: empty, or at most 63 characters of the qualified-name alphabet;
- Secret key: ``[-._a-zA-Z0-9]+``, at most 253 characters, never ``.``, ``..`` or ``..*``;
- environment variable name as Kubernetes 1.24 accepts it: ``[-._a-zA-Z][-._a-zA-Z0-9]*``.

It also owns :class:`PodNames`: ``runner-<token>-job-<id>`` for the pod, with ``-secret`` and
``-pull`` for its Secrets, where ``<token>`` is the runner's short token made a DNS label.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Final

__all__ = [
    "PodNames",
    "is_dns_label",
    "is_dns_subdomain",
    "is_env_name",
    "is_label_value",
    "is_qualified_name",
    "pod_names",
    "sanitize_label_value",
    "secret_key",
    "token_slug",
]

_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_QUALIFIED: Final = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_ENV_NAME: Final = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_SECRET_KEY: Final = re.compile(r"[-._a-zA-Z0-9]+")
_NOT_SECRET_KEY: Final = re.compile(r"[^-._a-zA-Z0-9]")
_NOT_LABEL_VALUE: Final = re.compile(r"[^-A-Za-z0-9_.]")
_NOT_DNS: Final = re.compile(r"[^a-z0-9]+")

MAX_LABEL: Final = 63
MAX_SUBDOMAIN: Final = 253
_MAX_SECRET_KEY: Final = 253
_HASHED_KEY_STEM: Final = 80


def is_dns_label(name: str) -> bool:
    return len(name) <= MAX_LABEL and _LABEL.fullmatch(name) is not None


def is_dns_subdomain(name: str) -> bool:
    return 0 < len(name) <= MAX_SUBDOMAIN and all(_LABEL.fullmatch(part) for part in name.split("."))


def is_qualified_name(key: str) -> bool:
    prefix, slash, name = key.rpartition("/")
    if slash and not is_dns_subdomain(prefix):
        return False
    return len(name) <= MAX_LABEL and _QUALIFIED.fullmatch(name) is not None


def is_label_value(value: str) -> bool:
    return value == "" or (len(value) <= MAX_LABEL and _QUALIFIED.fullmatch(value) is not None)


def is_env_name(name: str) -> bool:
    return _ENV_NAME.fullmatch(name) is not None


def sanitize_label_value(value: str) -> str:
    """Make ``value`` a label value as gitlab-runner's ``sanitizeLabel`` does.

    Characters outside ``[-A-Za-z0-9_.]`` become ``_``, the text is cut to 63 characters and
    anything but letters and digits is trimmed from both ends.
    """
    mapped = _NOT_LABEL_VALUE.sub("_", value)[:MAX_LABEL]
    start, end = 0, len(mapped)
    while start < end and not mapped[start].isalnum():
        start += 1
    while end > start and not mapped[end - 1].isalnum():
        end -= 1
    return mapped[start:end]


def token_slug(short_token: str) -> str:
    """The runner's short token as a DNS label: lower case, other characters as ``-``."""
    slug = _NOT_DNS.sub("-", short_token.lower()).strip("-")
    return slug[:MAX_LABEL].rstrip("-") or "runner"


def secret_key(prefix: str, name: str) -> str:
    """A Secret key for ``name`` under ``prefix`` (``env.``, ``run.``), the same for the same name.

    A name that is a valid key keeps its spelling, with ``/`` written ``__`` (``run.stages__build.sh``);
    any other gets its unsafe characters replaced and a hash of the original appended, so that two
    names never share a key.
    """
    if "__" not in name:
        key = prefix + name.replace("/", "__")
        if _SECRET_KEY.fullmatch(key) and len(key) <= _MAX_SECRET_KEY and not key.startswith(".."):
            return key
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    stem = _NOT_SECRET_KEY.sub("_", name)[:_HASHED_KEY_STEM]
    return f"{prefix}{stem}-{digest}"


@dataclass(frozen=True, slots=True)
class PodNames:
    """The names of one job's objects: its pod, its Secret, its registry pull Secret."""

    pod: str
    secret: str
    pull_secret: str
    namespace: str
    runner: str = ""
    """The runner's short token as a label value (``skyrunner.io/runner``)."""


def pod_names(job_id: int, short_token: str, namespace: str) -> PodNames:
    """Name a job's objects: the same job of the same runner always gets the same names."""
    runner = token_slug(short_token)
    pod = f"runner-{runner}-job-{job_id}"
    return PodNames(pod=pod, secret=f"{pod}-secret", pull_secret=f"{pod}-pull", namespace=namespace, runner=runner)
