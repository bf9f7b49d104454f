"""The credentials of ``--kubeconfig-secret``: the cluster a runner outside it sends jobs to.

Pure: no I/O. This module owns reading a kubeconfig document (as ``sources.py`` hands it over,
with every ``certificate-authority``/``client-certificate``/``client-key`` file already inlined
as its ``*-data`` form) into :class:`ClusterCredentials`: the API server of the current
context and its client certificate, key and CA as PEM. The reference deployment kept these
three as separate keys of one Secret and pointed config.toml's ``key_file`` at the certificate;
here each PEM is checked for what it is, so a swapped or missing key fails before anything is
applied. Bearer tokens are refused: the runner would have to carry them in config.toml.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from skyrunner.errors import ConfigError

__all__ = ["ClusterCredentials", "parse_kubeconfig"]


@dataclass(frozen=True, slots=True)
class ClusterCredentials:
    """An API server and the PEM files a client needs for it (the key never in a repr)."""

    server: str
    ca_pem: bytes = field(repr=False)
    cert_pem: bytes = field(repr=False)
    key_pem: bytes = field(repr=False)


def parse_kubeconfig(document: object, source: str) -> ClusterCredentials:
    """Return the current context's server, CA and client certificate and key.

    Raises:
        ConfigError: the document is not a kubeconfig, has no usable current context, uses a
            token instead of a client certificate, or a PEM is not what its key says.
    """
    if not isinstance(document, Mapping):
        raise ConfigError(f"{source}: not a kubeconfig (expected a mapping)")
    context = _current_context(document, source)
    cluster = _named(document, "clusters", "cluster", context.get("cluster"), source)
    user = _named(document, "users", "user", context.get("user"), source)
    server = cluster.get("server")
    if not isinstance(server, str) or not server.startswith("https://"):
        raise ConfigError(f"{source}: cluster {context.get('cluster')!r} needs an https:// server")
    if "client-key-data" not in user and ("token" in user or "exec" in user or "auth-provider" in user):
        raise ConfigError(
            f"{source}: user {context.get('user')!r} authenticates with a token; --kubeconfig-secret needs a "
            "client certificate and key (the runner reads them from files)"
        )
    credentials = ClusterCredentials(
        server=server,
        ca_pem=_pem(cluster, "certificate-authority-data", source),
        cert_pem=_pem(user, "client-certificate-data", source),
        key_pem=_pem(user, "client-key-data", source),
    )
    _check_kinds(credentials, source)
    return credentials


def _current_context(document: Mapping[str, Any], source: str) -> Mapping[str, Any]:
    contexts = document.get("contexts") or []
    name = document.get("current-context")
    if not name and isinstance(contexts, list) and len(contexts) == 1 and isinstance(contexts[0], Mapping):
        name = contexts[0].get("name")
    if not name:
        raise ConfigError(f"{source}: no current-context")
    return _named(document, "contexts", "context", name, source)


def _named(document: Mapping[str, Any], section: str, kind: str, name: object, source: str) -> Mapping[str, Any]:
    for entry in document.get(section) or []:
        if isinstance(entry, Mapping) and entry.get("name") == name and isinstance(entry.get(kind), Mapping):
            found: Mapping[str, Any] = entry[kind]
            return found
    raise ConfigError(f"{source}: no {kind} named {name!r}")


def _pem(entry: Mapping[str, Any], key: str, source: str) -> bytes:
    encoded = entry.get(key)
    if not isinstance(encoded, str) or not encoded.strip():
        raise ConfigError(f"{source}: {key.removesuffix('-data')} is missing")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{source}: {key} is not base64") from None


def _check_kinds(credentials: ClusterCredentials, source: str) -> None:
    for what, pem in (("certificate-authority", credentials.ca_pem), ("client-certificate", credentials.cert_pem)):
        if b"-----BEGIN CERTIFICATE-----" not in pem:
            raise ConfigError(f"{source}: {what} is not a PEM certificate")
    if b"PRIVATE KEY-----" not in credentials.key_pem:
        # the reference deployment's key_file pointed at the certificate: say so, quote nothing
        raise ConfigError(f"{source}: client-key is not a PEM private key")
