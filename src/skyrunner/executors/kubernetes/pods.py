"""Every call skyrunner makes to the Kubernetes API, with its errors translated.

Owns :class:`PodApi`, a thin layer over one lightkube ``AsyncClient``: pods, the job Secrets,
Events, node labels, watches and the raw log stream. lightkube and httpx2 errors never leave
this module: they become :class:`~skyrunner.errors.KubernetesApiError` carrying the HTTP code and
the Status ``reason``, with a one-line message (``kubernetes: create pod default/x: Forbidden:
exceeded quota ...``, foreign text cut to 256 characters). ``code`` is None for network errors.
A missing object is not an error where the caller can do without it (``get_pod`` returns None,
``delete_pod`` returns False).

The log stream is read with lightkube's request builder and the client's ``send`` because
lightkube's own ``log()`` decodes text and knows no ``sinceTime``; the bytes are what the
kubelet served (timestamp prefixes included).
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Mapping, Sequence
from typing import Any, Final, NoReturn, TypeVar

import httpx2
from lightkube import ApiError, AsyncClient
from lightkube.core.exceptions import LoadResourceError, NotReadyError
from lightkube.models.meta_v1 import ObjectMeta, OwnerReference
from lightkube.resources.core_v1 import Event, Node, Pod, PodLog, Secret
from lightkube.types import PatchType

from skyrunner.errors import KubernetesApiError, cut

__all__ = ["PodApi", "secret_data", "translate_error"]

T = TypeVar("T")
WATCH_SERVER_TIMEOUT_S: Final = 290


def translate_error(exc: BaseException, action: str) -> KubernetesApiError:
    """Turn a lightkube or httpx2 error raised while doing ``action`` into ours."""
    if isinstance(exc, ApiError):
        status = exc.status
        code = status.code if status is not None else None
        reason = (status.reason if status is not None else None) or "Error"
        message = (status.message if status is not None else None) or str(exc)
        return KubernetesApiError(f"kubernetes: {action}: {reason}: {cut(message)}", code=code, reason=reason)
    if isinstance(exc, httpx2.HTTPStatusError):
        code = exc.response.status_code
        reason = exc.response.reason_phrase or "Error"
        return KubernetesApiError(f"kubernetes: {action}: HTTP {code} {reason}", code=code, reason=reason)
    if isinstance(exc, httpx2.HTTPError):
        text = cut(str(exc) or type(exc).__name__)
        return KubernetesApiError(f"kubernetes: {action}: cannot reach the API server: {text}", reason="Unavailable")
    return KubernetesApiError(f"kubernetes: {action}: {cut(str(exc) or type(exc).__name__)}", reason="Invalid")


def _raise(exc: BaseException, action: str) -> NoReturn:
    raise translate_error(exc, action) from exc


def _not_found(exc: BaseException) -> bool:
    """A 404 Status: the object is gone, which some callers can do without."""
    return isinstance(exc, ApiError) and exc.status is not None and exc.status.code == 404


_ERRORS: Final = (ApiError, httpx2.HTTPError, LoadResourceError, ValueError)


class PodApi:
    """The Kubernetes calls of the executor, adoption and the shared watch."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client

    async def aclose(self) -> None:
        await self.client.close()

    # -- pods ----------------------------------------------------------------------------------
    async def create_pod(self, pod: Pod) -> Pod:
        meta = pod.metadata or ObjectMeta()
        try:
            created: Pod = await self.client.create(pod)
        except _ERRORS as exc:
            _raise(exc, f"create pod {meta.namespace}/{meta.name}")
        return created

    async def get_pod(self, namespace: str, name: str) -> Pod | None:
        try:
            pod: Pod = await self.client.get(Pod, name, namespace=namespace)
        except _ERRORS as exc:
            if _not_found(exc):
                return None
            _raise(exc, f"get pod {namespace}/{name}")
        return pod

    async def list_pods(self, namespace: str, labels: Mapping[str, str]) -> tuple[list[Pod], str]:
        """The pods with ``labels`` and the list's resourceVersion."""
        try:
            listing = self.client.list(Pod, namespace=namespace, labels=dict(labels))
            pods = [pod async for pod in listing]
        except _ERRORS as exc:
            _raise(exc, f"list pods in {namespace}")
        return pods, _version(listing)

    async def delete_pod(self, namespace: str, name: str, grace_period_s: int | None = None) -> bool:
        """Delete the pod (its Secrets go with it); False when it was already gone."""
        try:
            await self.client.delete(Pod, name, namespace=namespace, grace_period=grace_period_s)
        except _ERRORS as exc:
            if _not_found(exc):
                return False
            _raise(exc, f"delete pod {namespace}/{name}")
        return True

    async def annotate_pod(self, namespace: str, name: str, annotations: Mapping[str, str]) -> None:
        patch = {"metadata": {"annotations": dict(annotations)}}
        try:
            await self.client.patch(Pod, name, patch, namespace=namespace, patch_type=PatchType.MERGE)
        except _ERRORS as exc:
            _raise(exc, f"annotate pod {namespace}/{name}")

    # -- secrets ---------------------------------------------------------------------------------
    async def create_secret(self, secret: Secret) -> Secret:
        meta = secret.metadata or ObjectMeta()
        try:
            created: Secret = await self.client.create(secret)
        except _ERRORS as exc:
            _raise(exc, f"create secret {meta.namespace}/{meta.name}")
        return created

    async def own_secret(self, namespace: str, name: str, owner: Pod) -> None:
        """Make ``owner`` the Secret's owner, so that deleting the pod deletes the Secret."""
        meta = owner.metadata or ObjectMeta()
        reference = OwnerReference(
            apiVersion="v1", kind="Pod", name=meta.name or "", uid=meta.uid or "", blockOwnerDeletion=False
        )
        patch = {"metadata": {"ownerReferences": [reference.to_dict()]}}
        try:
            await self.client.patch(Secret, name, patch, namespace=namespace, patch_type=PatchType.MERGE)
        except _ERRORS as exc:
            _raise(exc, f"set the owner of secret {namespace}/{name}")

    async def read_secret(self, namespace: str, name: str) -> Secret | None:
        try:
            secret: Secret = await self.client.get(Secret, name, namespace=namespace)
        except _ERRORS as exc:
            if _not_found(exc):
                return None
            _raise(exc, f"read secret {namespace}/{name}")
        return secret

    async def list_secrets(self, namespace: str, labels: Mapping[str, str]) -> list[Secret]:
        try:
            return [s async for s in self.client.list(Secret, namespace=namespace, labels=dict(labels))]
        except _ERRORS as exc:
            _raise(exc, f"list secrets in {namespace}")

    async def delete_secret(self, namespace: str, name: str) -> None:
        with contextlib.suppress(KubernetesApiError):
            try:
                await self.client.delete(Secret, name, namespace=namespace)
            except _ERRORS as exc:
                if not _not_found(exc):
                    _raise(exc, f"delete secret {namespace}/{name}")

    # -- nodes and events ------------------------------------------------------------------------
    async def node_labels(self, selector: Mapping[str, str]) -> list[dict[str, str]]:
        """The labels of the nodes matching ``selector`` (the job pods' node selector)."""
        try:
            nodes = [n async for n in self.client.list(Node, labels=dict(selector) or None)]
        except _ERRORS as exc:
            _raise(exc, "list nodes")
        return [dict((n.metadata.labels if n.metadata else None) or {}) for n in nodes]

    async def list_events(self, namespace: str) -> tuple[list[Event], str]:
        try:
            listing = self.client.list(Event, namespace=namespace, fields={"involvedObject.kind": "Pod"})
            events = [e async for e in listing]
        except _ERRORS as exc:
            _raise(exc, f"list events in {namespace}")
        return events, _version(listing)

    # -- streams -----------------------------------------------------------------------------------
    async def watch_pods(
        self, namespace: str, labels: Mapping[str, str], version: str
    ) -> AsyncIterator[tuple[str, Pod]]:
        """Yield (type, pod) from ``version`` on; ends when the server closes the watch."""
        stream = self.client.watch(
            Pod, namespace=namespace, labels=dict(labels), resource_version=version or None,
            server_timeout=WATCH_SERVER_TIMEOUT_S,
        )  # fmt: skip
        async for item in _translated(stream, f"watch pods in {namespace}"):
            yield item

    async def watch_events(self, namespace: str, version: str) -> AsyncIterator[tuple[str, Event]]:
        stream = self.client.watch(
            Event, namespace=namespace, fields={"involvedObject.kind": "Pod"},
            resource_version=version or None, server_timeout=WATCH_SERVER_TIMEOUT_S,
        )  # fmt: skip
        async for item in _translated(stream, f"watch events in {namespace}"):
            yield item

    async def follow_log(
        self, namespace: str, pod: str, container: str, since_time: str | None
    ) -> AsyncIterator[bytes]:
        """Yield the container's log (``follow``, ``timestamps``) from ``since_time`` on."""
        action = f"read the log of {namespace}/{pod} container {container}"
        params: dict[str, Any] = {"container": container, "follow": "true", "timestamps": "true"}
        if since_time:
            params["sinceTime"] = since_time
        generic = self.client._client  # lightkube builds requests as data
        try:
            br = generic.prepare_request("get", PodLog, name=pod, namespace=namespace, params=params)
            br.timeout = httpx2.Timeout(30.0, read=None)  # a followed log may be silent for long
            request = generic.build_adapter_request(br)
            response = await generic.send(request, stream=True)  # type: ignore[no-untyped-call]
        except _ERRORS as exc:
            _raise(exc, action)
        try:
            if response.is_error:
                await response.aread()
                generic.raise_for_status(response)  # type: ignore[no-untyped-call]
            async for chunk in response.aiter_raw():
                yield chunk
        except _ERRORS as exc:
            _raise(exc, action)
        finally:
            await response.aclose()


async def _translated(stream: AsyncIterable[tuple[str, T]], action: str) -> AsyncIterator[tuple[str, T]]:
    iterator = aiter(stream)
    try:
        while True:
            try:
                item = await anext(iterator)
            except StopAsyncIteration:
                return
            except _ERRORS as exc:
                _raise(exc, action)
            yield item
    finally:
        if isinstance(iterator, AsyncGenerator):
            await iterator.aclose()


def _version(listing: Any) -> str:
    try:
        return str(listing.resourceVersion)
    except NotReadyError:
        return ""


def secret_data(secret: Secret, keys: Sequence[str]) -> dict[str, str]:
    """Decoded values of ``keys`` (base64 ``data``, or ``stringData``); missing keys are left out."""
    out: dict[str, str] = {}
    for key in keys:
        if secret.data and key in secret.data:
            out[key] = base64.b64decode(secret.data[key]).decode()
        elif secret.stringData and key in secret.stringData:
            out[key] = secret.stringData[key]
    return out
