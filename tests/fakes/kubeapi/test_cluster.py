"""FakeKubeApi cluster behaviour: volume kinds, events over the API, taints, propagation, namespaces."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx2
from lightkube import AsyncClient
from lightkube.models.meta_v1 import ObjectMeta, OwnerReference
from lightkube.resources.core_v1 import ConfigMap, Event, Namespace, PersistentVolumeClaim, Pod, Secret
from lightkube.types import CascadeType

from tests.fakes.kubeapi import FakeKubeApi

from .conftest import IMAGES, pod_body, sh, terminal, wait_pod


async def test_secret_config_map_claim_downward_and_host_path_volumes(client: AsyncClient, tmp_path: Path) -> None:
    await client.create(Secret(metadata=ObjectMeta(name="creds"), stringData={"user": "u", "pass": "p"}))
    await client.create(ConfigMap(metadata=ObjectMeta(name="conf"), data={"a.toml": "x = 1"}))
    claim = {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}}
    made = await client.create(
        PersistentVolumeClaim.from_dict(
            {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "cache"}, "spec": claim}
        )
    )
    assert made.status.phase == "Bound"
    host = tmp_path / "host-dir"
    volumes = [
        {
            "name": "creds",
            "secret": {"secretName": "creds", "items": [{"key": "pass", "path": "sub/pass", "mode": 0o400}]},
        },
        {"name": "conf", "configMap": {"name": "conf"}},
        {"name": "cache", "persistentVolumeClaim": {"claimName": "cache"}},
        {
            "name": "info",
            "downwardAPI": {"items": [{"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}}]},
        },
        {"name": "host", "hostPath": {"path": str(host), "type": "DirectoryOrCreate"}},
    ]
    mounts = [
        {"name": "creds", "mountPath": "/etc/creds", "readOnly": True},
        {"name": "conf", "mountPath": "/etc/conf"},
        {"name": "cache", "mountPath": "/cache"},
        {"name": "info", "mountPath": "/etc/info"},
        {"name": "host", "mountPath": "/mnt/host"},
    ]
    script = (
        "stat -c %a /etc/creds/sub/pass; cat /etc/creds/sub/pass; echo; ls /etc/creds; cat /etc/conf/a.toml; echo;"
        " cat /etc/info/annotations; echo; echo $(POD_NAME) > /cache/written-by; touch /mnt/host/seen;"
        " touch /etc/creds/nope 2>/dev/null || echo read-only"
    )
    body = pod_body(
        "vols", [sh("main", script, volumeMounts=mounts, env=[{"name": "POD_NAME", "value": "vols"}])], volumes=volumes
    )
    body["metadata"]["annotations"] = {"team": "ci"}
    await client.create(Pod.from_dict(body))
    assert (await wait_pod(client, "vols", terminal)).status.phase == "Succeeded"
    lines = [line async for line in client.log("vols")]
    assert lines == ["400\n", "p\n", "sub\n", "x = 1\n", 'team="ci"\n', "read-only\n"]
    assert await asyncio.to_thread((host / "seen").exists)
    reader = pod_body(
        "reader", [sh("main", "cat /cache/written-by", volumeMounts=[{"name": "cache", "mountPath": "/cache"}])]
    )
    reader["spec"]["volumes"] = [{"name": "cache", "persistentVolumeClaim": {"claimName": "cache"}}]
    await client.create(Pod.from_dict(reader))
    await wait_pod(client, "reader", terminal)
    assert [line async for line in client.log("reader")] == ["vols\n"]


async def test_events_are_served_and_watchable(client: AsyncClient, api: FakeKubeApi) -> None:
    watch = client.watch(Event, namespace="default", fields={"involvedObject.name": "ev"})
    seen: list[str] = []

    async def collect() -> None:
        async for _, event in watch:
            seen.append(event.reason)
            if event.reason == "Started":
                return

    collector = asyncio.ensure_future(collect())
    await asyncio.sleep(0.05)
    await client.create(Pod.from_dict(pod_body("ev", [sh("main", "true")])))
    await asyncio.wait_for(collector, 5)
    assert seen == ["Scheduled", "Pulling", "Pulled", "Created", "Started"]
    listed = [e.reason async for e in client.list(Event, fields={"involvedObject.name": "ev", "reason": "Pulled"})]
    assert listed == ["Pulled"]
    assert [e["reason"] for e in api.events][:2] == ["Scheduled", "Pulling"]


async def test_taints_and_tolerations_decide_scheduling(tmp_path: Path) -> None:
    nodes = [
        {
            "metadata": {"name": "gpu", "labels": {"pool": "gpu"}},
            "spec": {"taints": [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]},
        }
    ]
    async with (
        FakeKubeApi(tmp_path / "kube", nodes=nodes, images=IMAGES) as api,
        AsyncClient(api.lightkube_config()) as client,
    ):
        await client.create(Pod.from_dict(pod_body("plain", [sh("main", "true")])))
        tolerated = pod_body(
            "tolerant",
            [sh("main", "true")],
            tolerations=[{"key": "gpu", "operator": "Exists"}],
            nodeSelector={"pool": "gpu"},
        )
        await client.create(Pod.from_dict(tolerated))
        assert (await wait_pod(client, "tolerant", terminal)).spec.nodeName == "gpu"
        plain = await wait_pod(client, "plain", lambda p: bool(p.status.conditions))
        assert plain.status.conditions[0].message == (
            "0/1 nodes are available: 1 node(s) had untolerated taint {gpu: yes}. "
            "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        )


async def test_orphan_propagation_keeps_dependents(client: AsyncClient, api: FakeKubeApi) -> None:
    owner = await client.create(ConfigMap(metadata=ObjectMeta(name="owner")))
    ref = OwnerReference(apiVersion="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid)
    await client.create(Secret(metadata=ObjectMeta(name="child", ownerReferences=[ref])))
    await client.delete(ConfigMap, "owner", cascade=CascadeType.ORPHAN)
    child = await client.get(Secret, "child")
    assert child.metadata.ownerReferences is None


async def test_namespace_deletion_stops_its_pods_and_goes(
    client: AsyncClient, api: FakeKubeApi, http: httpx2.AsyncClient
) -> None:
    await client.create(Namespace(metadata=ObjectMeta(name="jobs")))
    assert [sa.metadata.name async for sa in client.list(Secret, namespace="jobs")] == []
    await client.create(Pod.from_dict(pod_body("long", [sh("main", "sleep 30")])), namespace="jobs")
    await asyncio.sleep(0.05)
    await client.delete(Namespace, "jobs")
    terminating = (await http.get("/api/v1/namespaces/jobs")).json()
    assert terminating["status"]["phase"] == "Terminating"
    await api.wait_pod_gone("jobs", "long", 5)
    async with asyncio.timeout(5):
        while api.objects("namespaces") and any(n["metadata"]["name"] == "jobs" for n in api.objects("namespaces")):
            await asyncio.sleep(0.02)
    status = await http.get("/api/v1/namespaces/jobs/pods/long/status")
    assert status.status_code == 404
