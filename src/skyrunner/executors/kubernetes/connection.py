"""The connection to the Kubernetes API: one lightkube AsyncClient per executor factory.

Owns the choice of credentials, as gitlab-runner makes it for ``[runners.kubernetes]``:

1. ``host`` set: that server, with ``ca_file`` (else the system's trust store), the client
   certificate ``cert_file`` + ``key_file`` and/or ``bearer_token``;
2. ``host`` empty and running in a pod (``KUBERNETES_SERVICE_HOST`` and a service account
   token mounted): the pod's service account;
3. otherwise the kubeconfig: ``$KUBECONFIG`` (the first file of the list that exists) or
   ``~/.kube/config``, its current context.

The namespace is ``namespace`` from config.toml, else the context's (or the service account's)
namespace, else ``default``. Every problem is a ``ConfigError`` naming the key and the file; the
reference deployment's ``key_file`` pointing at the certificate is refused with the message of
``KubernetesConfig.tls_problem()`` before anything is read. It does not make API calls
(``pods.py`` does).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx2
from lightkube import AsyncClient, KubeConfig
from lightkube.config.client_adapter import verify_cluster
from lightkube.config.kubeconfig import SingleConfig
from lightkube.config.models import Cluster, User
from lightkube.core.exceptions import ConfigError as LightkubeConfigError

from skyrunner.config import KubernetesConfig
from skyrunner.errors import ConfigError

__all__ = ["Connection", "ConnectionSource", "connect", "describe_source"]

SERVICE_ACCOUNT_DIR: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_KUBECONFIG: Final = "~/.kube/config"
REQUEST_TIMEOUT_S: Final = 30.0
FIELD_MANAGER: Final = "skyrunner"
KEEPALIVE_CONNECTIONS: Final = 32


@dataclass(frozen=True, slots=True)
class ConnectionSource:
    """Where the credentials came from, for the runner log (never the credentials)."""

    kind: str  # "host", "in-cluster" or "kubeconfig"
    server: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Connection:
    """A client and the namespace job pods go to."""

    client: AsyncClient
    namespace: str
    source: ConnectionSource


def describe_source(source: ConnectionSource) -> str:
    extra = f" ({source.detail})" if source.detail else ""
    return f"{source.kind} {source.server}{extra}"


def _check_file(value: str | None, key: str) -> str | None:
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigError(f"kubernetes {key}: {value} does not exist or is not a file")
    return str(path)


def _from_host(cfg: KubernetesConfig) -> tuple[KubeConfig, ConnectionSource]:
    host = cfg.host or ""
    if not host.startswith(("http://", "https://")):
        host = f"https://{host}"
    ca_file = _check_file(cfg.ca_file, "ca_file")
    cert_file = _check_file(cfg.cert_file, "cert_file")
    key_file = _check_file(cfg.key_file, "key_file")
    if bool(cert_file) != bool(key_file):
        raise ConfigError("kubernetes cert_file and key_file must be set together")
    if cert_file and key_file:
        _check_key_pair(cert_file, key_file)
    token = cfg.bearer_token.get_secret_value() if cfg.bearer_token else None
    user = User(client_cert=cert_file, client_key=key_file, token=token or None)
    cluster = Cluster(server=host.rstrip("/"), certificate_auth=ca_file)
    kube = KubeConfig.from_one(cluster=cluster, user=user, namespace=cfg.namespace or None)
    auth = "client certificate" if cert_file else ("bearer token" if token else "no credentials")
    return kube, ConnectionSource("host", cluster.server, auth)


def _check_key_pair(cert_file: str, key_file: str) -> None:
    context = ssl.create_default_context()
    try:
        context.load_cert_chain(cert_file, key_file)
    except ssl.SSLError as exc:
        raise ConfigError(
            f"kubernetes cert_file {cert_file} and key_file {key_file} are not a certificate and its "
            f"private key: {exc.reason or exc}"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"kubernetes cert_file/key_file cannot be read: {exc.strerror}") from exc


def _in_cluster(environ: Mapping[str, str], account_dir: Path) -> bool:
    return bool(environ.get("KUBERNETES_SERVICE_HOST")) and (account_dir / "token").is_file()


def _from_service_account(account_dir: Path) -> tuple[KubeConfig, ConnectionSource]:
    try:
        kube = KubeConfig.from_service_account(account_dir)
    except (LightkubeConfigError, KeyError, OSError) as exc:
        raise ConfigError(f"kubernetes: cannot use the pod's service account in {account_dir}: {exc}") from exc
    single = kube.get()
    return kube, ConnectionSource("in-cluster", single.cluster.server if single else "", "service account")


def _kubeconfig_path(environ: Mapping[str, str]) -> Path:
    listed = [p for p in environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    for candidate in listed:
        if Path(candidate).expanduser().is_file():
            return Path(candidate).expanduser()
    if listed:
        raise ConfigError(f"kubernetes: KUBECONFIG names no existing file: {environ['KUBECONFIG']}")
    return Path(DEFAULT_KUBECONFIG).expanduser()


def _from_kubeconfig(environ: Mapping[str, str]) -> tuple[KubeConfig, ConnectionSource]:
    path = _kubeconfig_path(environ)
    if not path.is_file():
        raise ConfigError(
            f"kubernetes: no host in [runners.kubernetes], not running in a pod, and no kubeconfig at {path}"
        )
    try:
        kube = KubeConfig.from_file(path)
        single = kube.get()
    except (LightkubeConfigError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"kubernetes: kubeconfig {path} cannot be used: {exc}") from exc
    if single is None:
        raise ConfigError(f"kubernetes: kubeconfig {path} has no current-context")
    return kube, ConnectionSource("kubeconfig", single.cluster.server, f"{path}, context {single.context_name}")


def connect(
    cfg: KubernetesConfig,
    *,
    environ: Mapping[str, str] | None = None,
    service_account_dir: Path = SERVICE_ACCOUNT_DIR,
) -> Connection:
    """Build the client for ``cfg`` (no request is made).

    Raises:
        ConfigError: the settings name files that do not exist or do not fit together, or no
            credentials can be found.
    """
    problem = cfg.tls_problem()
    if problem is not None:
        raise ConfigError(problem)
    env = os.environ if environ is None else environ
    if cfg.host:
        kube, source = _from_host(cfg)
    elif _in_cluster(env, service_account_dir):
        kube, source = _from_service_account(service_account_dir)
    else:
        kube, source = _from_kubeconfig(env)
    single = kube.get()
    assert single is not None  # each source above makes sure there is a current context
    namespace = cfg.namespace or single.namespace or "default"
    timeout = httpx2.Timeout(REQUEST_TIMEOUT_S, connect=10.0)
    try:
        transport = _transport(single)
        client = AsyncClient(
            kube, namespace=namespace, timeout=timeout, lazy=False, field_manager=FIELD_MANAGER, transport=transport
        )
    except (LightkubeConfigError, ssl.SSLError, OSError) as exc:
        raise ConfigError(f"kubernetes: cannot set up the client for {source.server}: {exc}") from exc
    return Connection(client=client, namespace=namespace, source=source)


def _transport(single: SingleConfig) -> httpx2.AsyncHTTPTransport:
    """The client's connection pool: without a connection limit.

    Every running job follows one container log, and a followed log holds its HTTP/1.1
    connection for as long as the container runs: httpx's default of 100 connections would
    make the 101st job's calls wait for a free connection (PoolTimeout). The TLS settings are
    lightkube's own (``verify_cluster``), since a transport of ours replaces the client's.
    """
    verify = verify_cluster(single.cluster, single.user or User(), single.abs_file)
    limits = httpx2.Limits(max_connections=None, max_keepalive_connections=KEEPALIVE_CONNECTIONS)
    return httpx2.AsyncHTTPTransport(verify=verify, limits=limits)
