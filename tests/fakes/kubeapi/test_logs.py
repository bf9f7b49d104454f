"""FakeKubeApi's logs API as the kubelet serves it: follow, timestamps, sinceTime, drops, errors."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

import httpx2
import pytest
from lightkube import AsyncClient
from lightkube.resources.core_v1 import Pod

from tests.fakes.kubeapi import FakeKubeApi

from .conftest import pod_body, sh, terminal, wait_pod

_STAMP = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{9})Z ")


def _records(body: bytes) -> list[tuple[str, bytes]]:
    """Split a timestamped log into (stamp, content) records (the last may lack a newline)."""
    out = []
    for chunk in body.splitlines(keepends=True):
        match = _STAMP.match(chunk)
        assert match, chunk
        out.append((match.group(1).decode() + "." + match.group(2).decode(), chunk[match.end() :]))
    return out


async def _read(http: httpx2.AsyncClient, name: str, **params: str) -> httpx2.Response:
    return await http.get(f"/api/v1/namespaces/default/pods/{name}/log", params=params)


async def test_follow_with_timestamps_and_since_time(client: AsyncClient, http: httpx2.AsyncClient) -> None:
    script = "echo one; sleep 1.05; echo two; printf partial"
    await client.create(Pod.from_dict(pod_body("talk", [sh("main", script)])))
    await wait_pod(client, "talk", lambda p: p.status.phase != "Pending")
    async with asyncio.timeout(10):
        followed = (await _read(http, "talk", follow="true", timestamps="true")).content
    records = _records(followed)
    assert [content for _, content in records] == [b"one\n", b"two\n", b"partial"]
    second = records[1][0].split(".")[0]
    since = f"{second}Z"
    expected = [r for r in records if r[0].split(".")[0] >= second]
    assert _records((await _read(http, "talk", timestamps="true", sinceTime=since)).content) == expected
    # clients send whole seconds; a fraction is truncated the way the API server forwards it
    fraction = f"{second}.999999999Z"
    assert _records((await _read(http, "talk", timestamps="true", sinceTime=fraction)).content) == expected
    assert (await _read(http, "talk", tailLines="1")).content == b"partial"
    assert (await _read(http, "talk", limitBytes="5")).content == b"one\nt"
    stamp = datetime.strptime(records[0][0][:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 30


async def test_dropped_follow_stream_resumes_with_since_time(
    client: AsyncClient, api: FakeKubeApi, http: httpx2.AsyncClient
) -> None:
    script = "for i in 1 2 3 4 5 6; do echo line-$i; sleep 0.05; done"
    await client.create(Pod.from_dict(pod_body("drop", [sh("main", script)])))
    await wait_pod(client, "drop", lambda p: p.status.phase != "Pending")
    api.drop_log_streams(pod="drop", after_bytes=50)
    received = b""
    with pytest.raises(httpx2.HTTPError):
        async with (
            asyncio.timeout(10),
            http.stream(
                "GET", "/api/v1/namespaces/default/pods/drop/log", params={"follow": "true", "timestamps": "true"}
            ) as response,
        ):
            async for chunk in response.aiter_bytes():
                received += chunk
    assert len(received) == 50  # cut mid-record: the first record is 38 bytes
    complete = _records(received[: received.rfind(b"\n") + 1])
    resume = complete[-1][0].split(".")[0] + "Z"
    async with asyncio.timeout(10):
        rest = _records((await _read(http, "drop", follow="true", timestamps="true", sinceTime=resume)).content)
    merged = complete + [r for r in rest if r not in complete]
    assert [content for _, content in merged] == [f"line-{i}\n".encode() for i in range(1, 7)]


async def test_log_errors_are_the_api_servers_and_the_kubelets(client: AsyncClient, http: httpx2.AsyncClient) -> None:
    body = pod_body("two", [sh("a", "true"), sh("b", "true")], initContainers=[sh("init", "sleep 5")])
    await client.create(Pod.from_dict(body))
    await wait_pod(
        client,
        "two",
        lambda p: p.status.initContainerStatuses and p.status.initContainerStatuses[0].state.running is not None,
    )
    answers = {
        "missing pod": (await http.get("/api/v1/namespaces/default/pods/none/log")).json(),
        "no container": (await _read(http, "two")).json(),
        "bad container": (await _read(http, "two", container="c")).json(),
        "waiting": (await _read(http, "two", container="a")).json(),
        "previous": (await _read(http, "two", container="init", previous="true")).json(),
    }
    assert {k: (v["code"], v["message"]) for k, v in answers.items()} == {
        "missing pod": (404, 'pods "none" not found'),
        "no container": (400, "a container name must be specified for pod two, choose one of: [init a b]"),
        "bad container": (400, "container c is not valid for pod two"),
        "waiting": (400, 'container "a" in pod "two" is waiting to start: PodInitializing'),
        "previous": (400, 'previous terminated container "init" in pod "two" not found'),
    }
    assert answers["bad container"] == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "container c is not valid for pod two",
        "reason": "BadRequest",
        "code": 400,
    }


async def test_logs_of_a_finished_container_are_kept_until_the_pod_goes(client: AsyncClient, api: FakeKubeApi) -> None:
    await client.create(Pod.from_dict(pod_body("done", [sh("main", "echo bye")])))
    await wait_pod(client, "done", terminal)
    assert [line async for line in client.log("done", follow=True)] == ["bye\n"]
    await client.delete(Pod, "done")
    await api.wait_pod_gone("default", "done", 5)
    assert api.kubelet.logs == {}
