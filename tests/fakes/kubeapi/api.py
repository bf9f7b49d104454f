"""``FakeKubeApi``: the test Kubernetes API server and its test controls.

Owns the assembly and the lifetime of the parts (store, registry, controllers, kubelet, HTTP
server, TLS material) and the hooks tests use to look inside or to break things: stored
objects, generated events, injected Status errors, dropped log streams, history compaction.
``async with`` serves on ``127.0.0.1:<free port>``; leaving it kills every pod process, ends
every watch and log stream, and removes the mount points it had to create on the host.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import secrets
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import lightkube
import yaml
from aiohttp import web

from . import hostpaths
from .controllers import GarbageCollector, NamespaceController
from .events import EventRecorder
from .kubelet import Kubelet
from .registry import Registry
from .resources import lookup
from .runtime import NODE_ALLOCATABLE, Runtime
from .server import Api, FailRule
from .status import StatusError
from .store import Store
from .tls import TlsFiles, make_tls, server_context

__all__ = ["FakeKubeApi"]

_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def _node(spec: dict[str, Any]) -> dict[str, Any]:
    """Complete a node given as ``{"metadata": {"name", "labels"}, "spec": {"taints"}}``."""
    meta = dict(spec.get("metadata") or {})
    name = meta["name"]
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
    labels.update(meta.get("labels") or {})
    meta["labels"] = labels
    ready = {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}
    status = {
        "capacity": dict(NODE_ALLOCATABLE),
        "allocatable": dict(NODE_ALLOCATABLE),
        "conditions": [ready],
        "nodeInfo": {
            "kubeletVersion": "v1.30.0-fake",
            "containerRuntimeVersion": "containerd://1.7.0",
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    }
    status.update(spec.get("status") or {})
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": meta,
        "spec": dict(spec.get("spec") or {}),
        "status": status,
    }


class FakeKubeApi:
    """A small, faithful Kubernetes API server whose pods run as local processes."""

    def __init__(
        self,
        root: Path,
        *,
        tls: bool = False,
        nodes: list[dict[str, Any]] | None = None,
        images: dict[str, list[str]] | None = None,
        start_delay_s: float = 0.0,
    ) -> None:
        self.root = Path(root)
        self.use_tls = tls
        self.nodes = [_node(n) for n in (nodes if nodes is not None else [{"metadata": {"name": "node-1"}}])]
        self.images = dict(images or {})
        self.token = secrets.token_urlsafe(24)
        self.url = ""
        self.tls_files: TlsFiles | None = None
        self.store = Store()
        self.registry = Registry(self.store, rng=random.Random(), clock=time.time)
        self.recorder = EventRecorder(self.registry)
        self.runtime = Runtime(self.root, self.images, os.environ.get("PATH", "/usr/bin:/bin"), {})
        self.kubelet = Kubelet(self.registry, self.recorder, self.runtime, self.token, start_delay_s)
        self.api = Api(self.registry, self.kubelet, token=self.token, port_info=lambda: self.url.split("//")[-1])
        self._runner: web.AppRunner | None = None

    # -- paths of the TLS material ----------------------------------------------------------------

    @property
    def ca_file(self) -> Path:
        assert self.tls_files is not None, "ca_file exists with tls=True only"
        return self.tls_files.ca_file

    @property
    def cert_file(self) -> Path:
        assert self.tls_files is not None, "cert_file exists with tls=True only"
        return self.tls_files.cert_file

    @property
    def key_file(self) -> Path:
        assert self.tls_files is not None, "key_file exists with tls=True only"
        return self.tls_files.key_file

    # -- lifetime ---------------------------------------------------------------------------------

    async def __aenter__(self) -> FakeKubeApi:
        hostpaths.enter()
        self.root.mkdir(parents=True, exist_ok=True)
        ca_pem = ""
        if self.use_tls:
            self.tls_files = make_tls(self.root / "tls")
            ca_pem = self.tls_files.ca_file.read_text()
        self.api.tls = self.use_tls
        self.store.listen(GarbageCollector(self.registry).on_change)
        self.store.listen(NamespaceController(self.registry, ca_pem).on_change)
        self.store.listen(self.kubelet.on_change)
        for name in _NAMESPACES:
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            self.registry.create(lookup("namespaces"), "", body, manager="kube-apiserver")
        for node in self.nodes:
            self.registry.put_raw(lookup("nodes"), node)
        self._runner = web.AppRunner(self.api.app(), handler_cancellation=True, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        context = server_context(self.tls_files) if self.tls_files else None
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"{'https' if self.use_tls else 'http'}://127.0.0.1:{port}"
        self.runtime.service_env.update(
            {
                "KUBERNETES_SERVICE_HOST": "127.0.0.1",
                "KUBERNETES_SERVICE_PORT": str(port),
                "KUBERNETES_SERVICE_PORT_HTTPS": str(port),
                "KUBERNETES_PORT": f"tcp://127.0.0.1:{port}",
            }
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self.kubelet.stop()
            self.store.close_watches()
            if self._runner is not None:
                await self._runner.cleanup()
        finally:
            hostpaths.leave()
        if self.kubelet.errors and exc is None:
            raise RuntimeError("the fake kubelet crashed") from self.kubelet.errors[0]

    # -- client configuration ---------------------------------------------------------------------

    def kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        """Write a kubeconfig for this server (client certificate under TLS, else the token)."""
        cluster: dict[str, Any] = {"server": self.url}
        user: dict[str, Any] = {"token": self.token}
        if self.tls_files is not None:
            cluster["certificate-authority"] = str(self.tls_files.ca_file)
            user = {"client-certificate": str(self.tls_files.cert_file), "client-key": str(self.tls_files.key_file)}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": cluster}],
            "users": [{"name": "fake", "user": user}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": namespace}}],
            "current-context": "fake",
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def lightkube_config(self, namespace: str = "default") -> lightkube.KubeConfig:
        """Return a ``lightkube.KubeConfig`` for this server."""
        return lightkube.KubeConfig.from_file(self.kubeconfig(self.root / "kubeconfig", namespace))

    # -- looking inside ---------------------------------------------------------------------------

    def objects(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Return the stored objects of a kind (``"Pod"`` or ``"pods"``), one namespace or all."""
        return self.store.items(lookup(kind), namespace)

    @property
    def events(self) -> list[dict[str, Any]]:
        """The Events the fake scheduler and kubelet generated (current state, creation order)."""
        return self.recorder.generated()

    @property
    def requests(self) -> list[tuple[str, str]]:
        """Every request served: (method, path with query)."""
        return self.api.requests

    async def wait_pod_gone(self, namespace: str, name: str, timeout: float) -> None:
        """Wait until the pod object is removed and its processes are gone.

        Raises:
            TimeoutError: still there after ``timeout`` seconds.
        """
        key = f"{namespace}/{name}"

        def present() -> bool:
            stored = self.store.get(lookup("pods"), namespace, name) is not None
            return stored or any(w.key == key for w in self.kubelet.workers.values())

        async with asyncio.timeout(timeout):
            while present():
                await self.kubelet.worker_gone().wait()

    # -- breaking things --------------------------------------------------------------------------

    def fail_next(self, method: str, path_regex: str, status: int, reason: str, message: str, count: int = 1) -> None:
        """Answer the next ``count`` requests matching method and path with this Status error."""
        error = StatusError(status, reason, message)
        self.api.rules.append(FailRule(method.upper(), re.compile(path_regex), error, count))

    def drop_log_streams(self, pod: str | None = None, after_bytes: int = 0, count: int = 1) -> None:
        """Cut the next ``count`` following log streams (of ``pod``) once they sent ``after_bytes``."""
        self.kubelet.drop_log_streams(pod, after_bytes, count)

    def compact(self) -> None:
        """Forget the change history (an etcd compaction): older resourceVersions get 410."""
        self.store.compact()

    @property
    def bookmark_interval_s(self) -> float:
        return self.api.bookmark_interval_s

    @bookmark_interval_s.setter
    def bookmark_interval_s(self, value: float) -> None:
        self.api.bookmark_interval_s = value
