"""FakeKubeApi running pods: volumes, env, statuses, events, scheduling, deletion, deadlines."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx2
from lightkube import AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Pod, Secret

from tests.fakes.kubeapi import FakeKubeApi

from .conftest import pod_body, sh, terminal, wait_pod


def _state(pod: Pod, name: str) -> Any:
    statuses = [*(pod.status.initContainerStatuses or []), *(pod.status.containerStatuses or [])]
    return next(s for s in statuses if s.name == name)


async def test_init_container_and_two_containers_share_an_empty_dir(client: AsyncClient, api: FakeKubeApi) -> None:
    mount = [{"name": "shared", "mountPath": "/skyrunner"}]
    body = pod_body(
        "seq",
        [
            sh("writer", "cat /skyrunner/from-init > /skyrunner/from-writer; echo wrote", volumeMounts=mount),
            sh(
                "reader",
                "until [ -e /skyrunner/from-writer ]; do sleep 0.01; done; cat /skyrunner/from-writer;"
                " echo bye > /dev/termination-log; exit 3",
                volumeMounts=mount,
            ),
        ],
        initContainers=[sh("prepare", "echo from-init > /skyrunner/from-init", volumeMounts=mount)],
        volumes=[{"name": "shared", "emptyDir": {}}],
    )
    await client.create(Pod.from_dict(body))
    pod = await wait_pod(client, "seq", terminal)
    assert pod.status.phase == "Failed"
    prepare, writer, reader = _state(pod, "prepare"), _state(pod, "writer"), _state(pod, "reader")
    assert (prepare.state.terminated.exitCode, prepare.state.terminated.reason, prepare.ready) == (0, "Completed", True)
    assert (writer.state.terminated.exitCode, writer.state.terminated.reason) == (0, "Completed")
    assert (reader.state.terminated.exitCode, reader.state.terminated.reason) == (3, "Error")
    assert reader.state.terminated.message == "bye\n"
    assert [s.name for s in pod.status.containerStatuses] == ["reader", "writer"]
    assert [line async for line in client.log("seq", container="reader")] == ["from-init\n"]
    assert not await asyncio.to_thread(Path("/skyrunner/from-init").exists)  # mounted privately
    conditions = {c.type: (c.status, c.reason) for c in pod.status.conditions}
    assert conditions["Ready"] == ("False", "PodFailed") and conditions["Initialized"] == ("True", None)


async def test_env_from_a_secret_created_after_the_pod(client: AsyncClient) -> None:
    env = [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "job-token", "key": "token"}}},
        {"name": "GREETING", "value": "hi-$(TOKEN)"},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    script = "echo $(GREETING) $POD $EXTRA_URL '$$(TOKEN)'"
    container = sh("main", script, env=env, envFrom=[{"secretRef": {"name": "job-token"}, "prefix": "EXTRA_"}])
    await client.create(Pod.from_dict(pod_body("env", [container])))
    waiting = await wait_pod(
        client,
        "env",
        lambda p: (
            bool(p.status.containerStatuses) and _state(p, "main").state.waiting.reason == "CreateContainerConfigError"
        ),
    )
    assert _state(waiting, "main").state.waiting.message == 'secret "job-token" not found'
    await client.create(Secret(metadata=ObjectMeta(name="job-token"), stringData={"token": "t0k", "URL": "https://x"}))
    pod = await wait_pod(client, "env", terminal)
    assert pod.status.phase == "Succeeded"
    assert [line async for line in client.log("env")] == ["hi-t0k env https://x $(TOKEN)\n"]


async def test_image_pull_failure_keeps_the_pod_pending_with_events(
    client: AsyncClient, api: FakeKubeApi, http: httpx2.AsyncClient
) -> None:
    image = "registry.example.com/team/pull-error:1"
    await client.create(Pod.from_dict(pod_body("pull", [{"name": "main", "image": image}])))
    pod = await wait_pod(
        client,
        "pull",
        lambda p: bool(p.status.containerStatuses) and _state(p, "main").state.waiting.reason == "ImagePullBackOff",
    )
    assert pod.status.phase == "Pending"
    reasons = [(e["type"], e["reason"], e["message"]) for e in api.events if e["involvedObject"]["name"] == "pull"]
    assert ("Normal", "Pulling", f'Pulling image "{image}"') in reasons
    assert ("Warning", "Failed", "Error: ErrImagePull") in reasons
    assert ("Normal", "BackOff", f'Back-off pulling image "{image}"') in reasons
    assert ("Warning", "Failed", "Error: ImagePullBackOff") in reasons
    failed = next(m for t, r, m in reasons if m.startswith("Failed to pull image"))
    assert f'"{image}": rpc error: code = NotFound' in failed
    event = next(e for e in api.events if e["reason"] == "BackOff")
    assert event["involvedObject"]["fieldPath"] == "spec.containers{main}" and event["source"]["component"] == "kubelet"
    answer = (await http.get("/api/v1/namespaces/default/pods/pull/log", params={"container": "main"})).json()
    assert answer["code"] == 400 and answer["reason"] == "BadRequest"
    assert answer["message"] == 'container "main" in pod "pull" is waiting to start: trying and failing to pull image'


async def test_unschedulable_pod_gets_the_scheduler_condition_and_event(client: AsyncClient, api: FakeKubeApi) -> None:
    body = pod_body("nowhere", [sh("main", "true")], nodeSelector={"disktype": "ssd"})
    await client.create(Pod.from_dict(body))
    pod = await wait_pod(client, "nowhere", lambda p: bool(p.status.conditions))
    expected = (
        "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. "
        "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    )
    condition = pod.status.conditions[0]
    assert (condition.type, condition.status, condition.reason, condition.message) == (
        "PodScheduled",
        "False",
        "Unschedulable",
        expected,
    )
    event = next(e for e in api.events if e["reason"] == "FailedScheduling")
    assert (
        event["message"] == expected
        and event["type"] == "Warning"
        and event["reportingComponent"] == "default-scheduler"
    )
    assert [line async for line in client.log("nowhere")] == []  # no node, no logs: an empty answer


async def test_delete_with_grace_period_runs_the_term_trap_then_removes_the_pod(
    client: AsyncClient, api: FakeKubeApi
) -> None:
    script = "trap 'echo trapped; exit 7' TERM; echo ready; while :; do sleep 0.02; done"
    await client.create(Pod.from_dict(pod_body("graceful", [sh("main", script)])))
    await wait_pod(client, "graceful", lambda p: p.status.phase == "Running")
    lines = []
    async with asyncio.timeout(10):
        stream = client.log("graceful", follow=True)
        async for line in stream:
            lines.append(line)
            if line == "ready\n":
                break
        await client.delete(Pod, "graceful", grace_period=10)
        marked = await client.get(Pod, "graceful")
        assert marked.metadata.deletionTimestamp is not None and marked.metadata.deletionGracePeriodSeconds == 10
        lines += [line async for line in stream]
        await api.wait_pod_gone("default", "graceful", 5)
    assert lines == ["ready\n", "trapped\n"]
    killing = [e["message"] for e in api.events if e["reason"] == "Killing"]
    assert killing == ["Stopping container main"]


async def test_grace_period_ends_with_sigkill(client: AsyncClient, api: FakeKubeApi) -> None:
    await client.create(
        Pod.from_dict(pod_body("stubborn", [sh("main", "trap '' TERM; echo ready; while :; do sleep 0.02; done")]))
    )
    await wait_pod(client, "stubborn", lambda p: p.status.phase == "Running")
    lines = client.log("stubborn", follow=True)
    async for line in lines:  # the trap is set once "ready" is out
        if line == "ready\n":
            break
    await lines.aclose()  # type: ignore[attr-defined]
    watch = client.watch(Pod, namespace="default", fields={"metadata.name": "stubborn"})
    await client.delete(Pod, "stubborn", grace_period=1)
    async with asyncio.timeout(5):
        async for op, last in watch:
            pod = last
            if op == "DELETED":
                break
    terminated = _state(pod, "main").state.terminated
    assert (terminated.exitCode, terminated.reason) == (137, "Error")


async def test_active_deadline_fails_the_pod(client: AsyncClient) -> None:
    await client.create(Pod.from_dict(pod_body("late", [sh("main", "sleep 30")], activeDeadlineSeconds=1)))
    pod = await wait_pod(client, "late", terminal)
    assert (pod.status.phase, pod.status.reason) == ("Failed", "DeadlineExceeded")
    assert pod.status.message == "Pod was active on the node longer than the specified deadline"
    assert _state(pod, "main").state.terminated.exitCode == 143


async def test_failed_init_container_fails_the_pod(client: AsyncClient) -> None:
    body = pod_body("badinit", [sh("main", "true")], initContainers=[sh("prepare", "echo no >&2; exit 2")])
    await client.create(Pod.from_dict(body))
    pod = await wait_pod(client, "badinit", terminal)
    assert pod.status.phase == "Failed"
    assert _state(pod, "prepare").state.terminated.exitCode == 2
    main = _state(pod, "main").state.terminated
    assert (main.exitCode, main.reason) == (137, "ContainerStatusUnknown")


async def test_exit_reasons_start_error_oom_and_log_fallback(client: AsyncClient) -> None:
    containers = [
        {"name": "missing", "image": "alpine", "command": ["/no/such/binary"]},
        sh("oom", "kill -9 $$$$"),  # the kubelet turns $$ into $
        sh("fallback", "echo last words; exit 1", terminationMessagePolicy="FallbackToLogsOnError"),
    ]
    await client.create(Pod.from_dict(pod_body("exits", containers)))
    pod = await wait_pod(client, "exits", terminal)
    missing, oom, fallback = (_state(pod, n).state.terminated for n in ("missing", "oom", "fallback"))
    assert (missing.exitCode, missing.reason) == (128, "StartError")
    assert missing.message.endswith('exec: "/no/such/binary": stat /no/such/binary: no such file or directory: unknown')
    assert (oom.exitCode, oom.reason) == (137, "OOMKilled")
    assert (fallback.exitCode, fallback.message) == (1, "last words\n")


async def test_killing_a_container_takes_its_detached_processes_with_it(client: AsyncClient, api: FakeKubeApi) -> None:
    from tests.fakes.kubeapi.cgroups import create_cgroup

    probe = create_cgroup()
    if probe is None:
        import pytest

        pytest.skip("cgroup v2 is not writable here: the fake kills process groups only")
    probe.remove()
    script = "setsid sh -c 'exec sleep 97.125' </dev/null >/dev/null 2>&1 & echo ready; while :; do sleep 0.02; done"
    await client.create(Pod.from_dict(pod_body("detach", [sh("main", script)])))
    await wait_pod(client, "detach", lambda p: p.status.phase == "Running")
    async with asyncio.timeout(10):
        async for line in client.log("detach", follow=True):
            if line == "ready\n":
                break
    await client.delete(Pod, "detach", grace_period=0)
    await api.wait_pod_gone("default", "detach", 5)
    found = await asyncio.create_subprocess_exec("pgrep", "-f", "sleep 97.125", stdout=asyncio.subprocess.PIPE)
    out, _ = await found.communicate()
    assert out == b"", "a process in its own session outlived its container"
