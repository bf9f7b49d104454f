"""FakeKubeApi object semantics through the real lightkube client: CRUD, errors, apply, GC."""

from __future__ import annotations

import asyncio

import httpx2
import pytest
from lightkube import ApiError, AsyncClient
from lightkube.models.meta_v1 import ObjectMeta, OwnerReference
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Namespace, Pod, Secret
from lightkube.types import PatchType

from tests.fakes.kubeapi import FakeKubeApi

from .conftest import pod_body, sh, terminal, wait_pod


async def test_create_get_list_delete_with_global_resource_versions(client: AsyncClient, api: FakeKubeApi) -> None:
    first = await client.create(ConfigMap(metadata=ObjectMeta(name="a", labels={"app": "x"}), data={"k": "v"}))
    second = await client.create(Secret(metadata=ObjectMeta(name="b", labels={"app": "y"}), stringData={"token": "s3"}))
    assert int(second.metadata.resourceVersion) > int(first.metadata.resourceVersion)
    assert first.metadata.uid and first.metadata.creationTimestamp is not None
    assert second.data == {"token": "czM="} and second.stringData is None and second.type == "Opaque"
    got = await client.get(ConfigMap, "a")
    assert got.data == {"k": "v"} and got.metadata.resourceVersion == first.metadata.resourceVersion
    assert [c.metadata.name async for c in client.list(ConfigMap, labels={"app": "x"})] == ["a"]
    assert [c.metadata.name async for c in client.list(ConfigMap, labels={"app": "y"})] == []
    await client.delete(ConfigMap, "a")
    with pytest.raises(ApiError) as caught:
        await client.get(ConfigMap, "a")
    status = caught.value.status
    assert (status.code, status.reason, status.message) == (404, "NotFound", 'configmaps "a" not found')
    assert status.details.name == "a" and status.details.kind == "configmaps"
    assert [s["metadata"]["name"] for s in api.objects("Secret")] == ["b"]


async def test_invalid_pod_is_422_with_one_cause_per_field(http: httpx2.AsyncClient) -> None:
    body = pod_body(
        "bad", [{"name": "Bad_Name", "image": "alpine"}, {"name": "second", "imagePullPolicy": "Sometimes"}]
    )
    response = await http.post("/api/v1/namespaces/default/pods", json=body)
    status = response.json()
    assert response.status_code == 422 and status["reason"] == "Invalid" and status["kind"] == "Status"
    fields = {c["field"]: c for c in status["details"]["causes"]}
    assert fields["spec.containers[0].name"]["reason"] == "FieldValueInvalid"
    assert fields["spec.containers[0].name"]["message"].startswith(
        'Invalid value: "Bad_Name": a lowercase RFC 1123 label'
    )
    assert fields["spec.containers[1].image"] == {
        "reason": "FieldValueRequired",
        "message": "Required value",
        "field": "spec.containers[1].image",
    }
    assert fields["spec.containers[1].imagePullPolicy"]["reason"] == "FieldValueNotSupported"
    assert status["message"].startswith('Pod "bad" is invalid: [spec.containers[0].name: Invalid value: "Bad_Name"')
    assert status["details"] | {"causes": []} == {"name": "bad", "kind": "Pod", "causes": []}


async def test_unknown_fields_and_bad_labels_are_invalid(http: httpx2.AsyncClient) -> None:
    body = pod_body("odd", [{"name": "a", "image": "alpine", "imagePullPolicyy": "Always"}])
    body["metadata"]["labels"] = {"ok": "has space"}
    status = (await http.post("/api/v1/namespaces/default/pods", json=body)).json()
    fields = [c["field"] for c in status["details"]["causes"]]
    assert fields == ["spec.containers[0].imagePullPolicyy", "metadata.labels"]


async def test_duplicate_create_is_409_already_exists(client: AsyncClient) -> None:
    await client.create(ConfigMap(metadata=ObjectMeta(name="dup")))
    with pytest.raises(ApiError) as caught:
        await client.create(ConfigMap(metadata=ObjectMeta(name="dup")))
    status = caught.value.status
    assert (status.code, status.reason, status.message) == (409, "AlreadyExists", 'configmaps "dup" already exists')


async def test_stale_replace_is_409_conflict(client: AsyncClient) -> None:
    created = await client.create(ConfigMap(metadata=ObjectMeta(name="c"), data={"a": "1"}))
    created.data = {"a": "2"}
    await client.replace(created)
    created.data = {"a": "3"}
    with pytest.raises(ApiError) as caught:
        await client.replace(created)
    assert caught.value.status.code == 409 and caught.value.status.reason == "Conflict"
    assert caught.value.status.message.endswith(
        "the object has been modified; please apply your changes to the latest version and try again"
    )


async def test_generate_name_and_missing_namespace(client: AsyncClient) -> None:
    made = await client.create(ConfigMap(metadata=ObjectMeta(generateName="job-")))
    assert made.metadata.name.startswith("job-") and len(made.metadata.name) == 9
    with pytest.raises(ApiError) as caught:
        await client.create(ConfigMap(metadata=ObjectMeta(name="x")), namespace="nowhere")
    assert caught.value.status.message == 'namespaces "nowhere" not found'


async def test_server_side_apply_is_idempotent_and_tracks_owners(client: AsyncClient) -> None:
    wanted = ConfigMap(metadata=ObjectMeta(name="cfg", namespace="default"), data={"a": "1", "b": "2"})
    first = await client.apply(wanted, field_manager="deployer")
    again = await client.apply(wanted, field_manager="deployer")
    assert again.metadata.resourceVersion == first.metadata.resourceVersion
    smaller = ConfigMap(metadata=ObjectMeta(name="cfg", namespace="default"), data={"a": "1"})
    changed = await client.apply(smaller, field_manager="deployer")
    assert changed.data == {"a": "1"} and changed.metadata.resourceVersion != first.metadata.resourceVersion
    other = ConfigMap(metadata=ObjectMeta(name="cfg", namespace="default"), data={"a": "9"})
    with pytest.raises(ApiError) as caught:
        await client.apply(other, field_manager="someone-else")
    assert caught.value.status.code == 409
    assert caught.value.status.message == 'Apply failed with 1 conflict: conflict with "deployer" using v1: .data.a'
    forced = await client.apply(other, field_manager="someone-else", force=True)
    assert forced.data == {"a": "9"}
    # the forced apply took the only field "deployer" owned, so its entry is gone
    assert [m.manager for m in forced.metadata.managedFields] == ["someone-else"]


async def test_apply_creates_other_kinds(client: AsyncClient) -> None:
    deployment = Deployment.from_dict(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "runner", "namespace": "default"},
            "spec": {
                "selector": {"matchLabels": {"app": "runner"}},
                "template": {
                    "metadata": {"labels": {"app": "runner"}},
                    "spec": {"containers": [{"name": "r", "image": "alpine"}]},
                },
            },
        }
    )
    made = await client.apply(deployment, field_manager="skyrunner")
    assert made.spec.replicas == 1 and made.metadata.generation == 1
    again = await client.apply(deployment, field_manager="skyrunner")
    assert again.metadata.resourceVersion == made.metadata.resourceVersion
    assert await client.apply(Namespace(metadata=ObjectMeta(name="ci")), field_manager="skyrunner")
    assert [p async for p in client.list(Pod, namespace="ci")] == []


async def test_merge_and_strategic_patches_of_pod_annotations(client: AsyncClient) -> None:
    await client.create(Pod.from_dict(pod_body("p", [sh("main", "exit 0")])))
    patched = await client.patch(Pod, "p", {"metadata": {"annotations": {"skyrunner.io/checkpoint": "1"}}})
    assert patched.metadata.annotations == {"skyrunner.io/checkpoint": "1"}
    merged = await client.patch(
        Pod, "p", {"metadata": {"annotations": {"skyrunner.io/checkpoint": None, "x": "y"}}}, patch_type=PatchType.MERGE
    )
    assert merged.metadata.annotations == {"x": "y"}
    with pytest.raises(ApiError) as caught:
        await client.patch(Pod, "p", {"spec": {"restartPolicy": "Always"}}, patch_type=PatchType.MERGE)
    assert caught.value.status.code == 422
    assert caught.value.status.details.causes[0].field == "spec"


async def test_paging_with_limit_and_continue(client: AsyncClient) -> None:
    for i in range(5):
        await client.create(ConfigMap(metadata=ObjectMeta(name=f"page-{i}")))
    names = [c.metadata.name async for c in client.list(ConfigMap, chunk_size=2)]
    assert [n for n in names if n.startswith("page-")] == [f"page-{i}" for i in range(5)]


async def test_deleting_a_pod_collects_its_secret(client: AsyncClient, api: FakeKubeApi) -> None:
    pod = await client.create(Pod.from_dict(pod_body("owner", [sh("main", "sleep 30")])))
    owner = OwnerReference(apiVersion="v1", kind="Pod", name="owner", uid=pod.metadata.uid)
    await client.create(Secret(metadata=ObjectMeta(name="owned", ownerReferences=[owner]), stringData={"t": "x"}))
    await client.create(Secret(metadata=ObjectMeta(name="kept"), stringData={"t": "x"}))
    await wait_pod(client, "owner", lambda p: p.status.phase == "Running")
    await client.delete(Pod, "owner", grace_period=0)
    await api.wait_pod_gone("default", "owner", 5)
    assert [s.metadata.name async for s in client.list(Secret)] == ["kept"]


async def test_dangling_owner_reference_is_collected(client: AsyncClient, api: FakeKubeApi) -> None:
    ghost = OwnerReference(apiVersion="v1", kind="Pod", name="ghost", uid="00000000-0000-0000-0000-000000000000")
    await client.create(Secret(metadata=ObjectMeta(name="orphan", ownerReferences=[ghost])))
    await asyncio.sleep(0)  # the collector checks right after the write, as its own callback
    assert [s["metadata"]["name"] for s in api.objects("secrets")] == []


async def test_injected_failures_answer_a_status(client: AsyncClient, api: FakeKubeApi) -> None:
    api.fail_next("POST", r"/pods$", 403, "Forbidden", 'pods "x" is forbidden: exceeded quota: compute', count=1)
    with pytest.raises(ApiError) as caught:
        await client.create(Pod.from_dict(pod_body("x", [sh("main", "true")])))
    assert (caught.value.status.code, caught.value.status.reason) == (403, "Forbidden")
    created = await client.create(Pod.from_dict(pod_body("x", [sh("main", "true")])))
    assert created.metadata.name == "x"
    assert terminal(await wait_pod(client, "x", terminal))


async def test_missing_service_account_is_forbidden(client: AsyncClient) -> None:
    body = pod_body("sa", [sh("main", "true")], serviceAccountName="runner")
    with pytest.raises(ApiError) as caught:
        await client.create(Pod.from_dict(body))
    status = caught.value.status
    assert status.code == 403
    assert (
        status.message
        == 'pods "sa" is forbidden: error looking up service account default/runner: serviceaccount "runner" not found'
    )
