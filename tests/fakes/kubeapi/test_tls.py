"""FakeKubeApi over TLS: client certificates from a kubeconfig, bearer tokens, 401 otherwise."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx2
from lightkube import AsyncClient, KubeConfig
from lightkube.resources.core_v1 import Namespace, Pod

from tests.fakes.kubeapi import FakeKubeApi

from .conftest import IMAGES, pod_body, sh, terminal, wait_pod


async def test_tls_with_client_certificates_tokens_and_anonymous(tmp_path: Path) -> None:
    async with FakeKubeApi(tmp_path / "kube", tls=True, images=IMAGES) as api:
        assert api.url.startswith("https://127.0.0.1:")
        config = KubeConfig.from_file(api.kubeconfig(tmp_path / "config", namespace="default"))
        async with AsyncClient(config) as client:
            assert "default" in [n.metadata.name async for n in client.list(Namespace)]
            await client.create(Pod.from_dict(pod_body("tls", [sh("main", "echo over tls")])))
            assert (await wait_pod(client, "tls", terminal)).status.phase == "Succeeded"
            assert [line async for line in client.log("tls")] == ["over tls\n"]
        context = ssl.create_default_context(cafile=str(api.ca_file))
        async with httpx2.AsyncClient(base_url=api.url, verify=context) as anonymous:
            denied = await anonymous.get("/api/v1/namespaces")
            assert denied.status_code == 401 and denied.json()["reason"] == "Unauthorized"
            allowed = await anonymous.get("/api/v1/namespaces", headers={"Authorization": f"Bearer {api.token}"})
            assert allowed.status_code == 200 and allowed.json()["kind"] == "NamespaceList"
        context.load_cert_chain(str(api.cert_file), str(api.key_file))
        async with httpx2.AsyncClient(base_url=api.url, verify=context) as with_cert:
            assert (await with_cert.get("/version")).json()["gitVersion"] == "v1.30.0-fake"
