"""FakeKubeApi watches: resume from a resourceVersion, 410 Expired, selectors, bookmarks."""

from __future__ import annotations

import asyncio
import json

import httpx2
import pytest
from lightkube import ApiError, AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap

from tests.fakes.kubeapi import FakeKubeApi


async def _take(client: AsyncClient, count: int, **kwargs: object) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    async with asyncio.timeout(5):
        async for op, obj in client.watch(ConfigMap, namespace="default", **kwargs):  # type: ignore[arg-type]
            seen.append((op, obj.metadata.name))
            if len(seen) == count:
                return seen
    return seen


async def test_watch_resumes_after_a_resource_version(client: AsyncClient) -> None:
    first = await client.create(ConfigMap(metadata=ObjectMeta(name="w1")))
    await client.create(ConfigMap(metadata=ObjectMeta(name="w2")))
    await client.patch(ConfigMap, "w1", {"data": {"x": "1"}})
    await client.delete(ConfigMap, "w2")
    events = await _take(client, 3, resource_version=first.metadata.resourceVersion)
    assert events == [("ADDED", "w2"), ("MODIFIED", "w1"), ("DELETED", "w2")]


async def test_watch_without_version_starts_with_the_current_state(client: AsyncClient) -> None:
    await client.create(ConfigMap(metadata=ObjectMeta(name="now")))
    seen: list[tuple[str, str]] = []
    current = asyncio.Event()

    async def follow() -> None:
        async for op, obj in client.watch(ConfigMap, namespace="default"):
            seen.append((op, obj.metadata.name))
            if len(seen) == 2:
                current.set()
            if len(seen) == 3:
                return

    async with asyncio.timeout(5):
        task = asyncio.ensure_future(follow())
        await current.wait()
        await client.create(ConfigMap(metadata=ObjectMeta(name="later")))
        await task
    # the namespace controller's kube-root-ca.crt is part of the current state too
    assert seen == [("ADDED", "kube-root-ca.crt"), ("ADDED", "now"), ("ADDED", "later")]


async def test_too_old_resource_version_is_an_error_event_with_410(client: AsyncClient, api: FakeKubeApi) -> None:
    old = await client.create(ConfigMap(metadata=ObjectMeta(name="old")))
    await client.create(ConfigMap(metadata=ObjectMeta(name="newer")))
    api.compact()
    latest = await client.create(ConfigMap(metadata=ObjectMeta(name="newest")))
    with pytest.raises(ApiError) as caught:
        await _take(client, 1, resource_version=old.metadata.resourceVersion)
    status = caught.value.status
    assert (status.code, status.reason) == (410, "Expired")
    floor = int(latest.metadata.resourceVersion) - 1
    assert status.message == f"too old resource version: {old.metadata.resourceVersion} ({floor})"


async def test_label_selected_watch_sees_objects_leave_and_enter(client: AsyncClient) -> None:
    start = await client.create(ConfigMap(metadata=ObjectMeta(name="sel", labels={"skyrunner.io/runner": "abc"})))
    await client.patch(ConfigMap, "sel", {"metadata": {"labels": {"skyrunner.io/runner": None}}})
    await client.patch(ConfigMap, "sel", {"metadata": {"labels": {"skyrunner.io/runner": "abc"}}})
    labels = {"skyrunner.io/runner": "abc"}
    events = await _take(client, 2, resource_version=start.metadata.resourceVersion, labels=labels)
    assert events == [("DELETED", "sel"), ("ADDED", "sel")]


async def test_raw_watch_has_bookmarks_and_honours_timeout_seconds(http: httpx2.AsyncClient, api: FakeKubeApi) -> None:
    api.bookmark_interval_s = 0.05
    created = (
        await http.post(
            "/api/v1/namespaces/default/configmaps",
            json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}},
        )
    ).json()
    params = {
        "watch": "1",
        "allowWatchBookmarks": "true",
        "timeoutSeconds": "1",
        "resourceVersion": created["metadata"]["resourceVersion"],
    }
    lines = []
    async with (
        asyncio.timeout(5),
        http.stream("GET", "/api/v1/namespaces/default/configmaps", params=params) as response,
    ):
        assert response.headers["content-type"] == "application/json"
        async for line in response.aiter_lines():
            lines.append(json.loads(line))
    assert lines and {event["type"] for event in lines} == {"BOOKMARK"}
    assert lines[0]["object"] == {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": created["metadata"]["resourceVersion"], "creationTimestamp": None},
    }
