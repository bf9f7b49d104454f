"""Fixtures for the FakeKubeApi tests: a server, a lightkube client, a raw HTTP client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest
from lightkube import AsyncClient
from lightkube.resources.core_v1 import Pod

from tests.fakes.kubeapi import FakeKubeApi

IMAGES = {"alpine": ["/bin/sh"], "helper:1": ["/bin/sh", "-c"]}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[FakeKubeApi]:
    async with FakeKubeApi(tmp_path / "kube", images=IMAGES) as server:
        yield server


@pytest.fixture
async def client(api: FakeKubeApi) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(api.lightkube_config()) as lightkube_client:
        yield lightkube_client


@pytest.fixture
async def http(api: FakeKubeApi) -> AsyncIterator[httpx2.AsyncClient]:
    headers = {"Authorization": f"Bearer {api.token}"}
    async with httpx2.AsyncClient(base_url=api.url, headers=headers, timeout=10) as raw:
        yield raw


async def wait_pod(client: AsyncClient, name: str, done: Callable[[Pod], bool]) -> Pod:
    """Watch one pod until ``done`` holds for it (10 s at most)."""
    async with asyncio.timeout(10):
        async for _, pod in client.watch(Pod, namespace="default", fields={"metadata.name": name}):
            if done(pod):
                return pod
    raise AssertionError("watch ended")


def terminal(pod: Pod) -> bool:
    return pod.status is not None and pod.status.phase in ("Succeeded", "Failed")


def pod_body(name: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    """A Never-restarting pod as a plain dict (what create() accepts via Pod.from_dict)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False, "containers": containers, **spec},
    }


def sh(name: str, script: str, **extra: Any) -> dict[str, Any]:
    """A container running ``script`` under the alpine image's /bin/sh entrypoint."""
    return {"name": name, "image": "alpine", "args": ["-c", script], **extra}
