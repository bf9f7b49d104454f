"""The files ``skyrunner deploy`` reads: the values file and the kubeconfig of ``--kubeconfig-secret``.

This module is the file edge of the package: it reads, and hands the text or document to the
pure parsers (``values.parse_values``, ``kubeconfig.parse_kubeconfig``). A kubeconfig may name
its certificate and key files instead of embedding them (``client-certificate``,
``client-key``, ``certificate-authority``, relative to the kubeconfig's directory, as kubectl
reads them); they are read here and inlined as their ``*-data`` form. Errors name the file and
never quote a key.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from skyrunner.deploy.kubeconfig import ClusterCredentials, parse_kubeconfig
from skyrunner.deploy.values import DeployValues, parse_values
from skyrunner.errors import ConfigError

__all__ = ["load_cluster_credentials", "load_values"]

_FILE_KEYS: Final = (
    ("clusters", "cluster", "certificate-authority"),
    ("users", "user", "client-certificate"),
    ("users", "user", "client-key"),
)


def load_values(path: Path) -> DeployValues:
    """Read and parse a values file.

    Raises:
        ConfigError: the file cannot be read or its content is invalid.
    """
    return parse_values(_read(path).decode("utf-8", errors="replace"), str(path), path.parent)


def load_cluster_credentials(path: Path) -> ClusterCredentials:
    """Read a kubeconfig and the files it names; return the current context's credentials.

    Raises:
        ConfigError: a file cannot be read, or the kubeconfig is not usable (see ``parse_kubeconfig``).
    """
    try:
        document = yaml.safe_load(_read(path))
    except yaml.YAMLError:
        raise ConfigError(f"{path}: not a kubeconfig (invalid YAML)") from None
    if isinstance(document, Mapping):
        document = _inline_files(document, path.parent)
    return parse_kubeconfig(document, str(path))


def _inline_files(document: Mapping[str, Any], base: Path) -> dict[str, Any]:
    inlined = dict(document)
    for section, kind, key in _FILE_KEYS:
        entries = []
        for entry in inlined.get(section) or []:
            body = entry.get(kind) if isinstance(entry, Mapping) else None
            if isinstance(body, Mapping) and isinstance(body.get(key), str) and f"{key}-data" not in body:
                data = base64.b64encode(_read(base / body[key])).decode("ascii")
                entry = {**entry, kind: {**body, f"{key}-data": data}}
            entries.append(entry)
        if entries:
            inlined[section] = entries
    return inlined


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
