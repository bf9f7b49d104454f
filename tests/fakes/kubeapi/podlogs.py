"""The pod log endpoint: ``GET /api/v1/namespaces/{ns}/pods/{name}/log``.

Owns the answers the API server and the kubelet give before a single log byte is sent, in
their words and order: the pod must exist (404); ``container`` may be omitted only for a
one-container pod, else it must name one of the pod's containers (400, API server); a pod
without a node answers an empty body; then the kubelet's checks on the container status
(``waiting to start: <reason>``, ``terminated``, no ``previous`` instance). Then it streams
records with ``timestamps``, ``sinceTime`` (forwarded as whole seconds, as the API server
formats it with ``time.RFC3339``), ``sinceSeconds``, ``tailLines``, ``limitBytes`` and
``follow``, and applies the test's drop rules to following streams.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from aiohttp import web

from .kubelet import Kubelet
from .logs import ContainerLog, LogOptions, render
from .registry import Registry
from .resources import Resource
from .status import Cause, bad_request, invalid
from .timefmt import parse_rfc3339_ns

__all__ = ["serve_logs"]

_TRUE = ("true", "1")


def _int(value: str | None, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise bad_request(f"{name}: invalid value {value!r}") from None


def _log_source(kubelet: Kubelet, pod: dict[str, Any], container: str | None, previous: bool) -> ContainerLog | None:
    """Pick the container as the API server, then the kubelet, would; None: empty answer."""
    spec, name = pod["spec"], pod["metadata"]["name"]
    names = [c["name"] for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]]
    if not container:
        if len(spec.get("containers") or []) != 1:
            raise bad_request(f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]")
        container = spec["containers"][0]["name"]
    elif container not in names:
        raise bad_request(f"container {container} is not valid for pod {name}")
    if not spec.get("nodeName"):
        return None
    status = pod.get("status") or {}
    statuses = [*(status.get("containerStatuses") or []), *(status.get("initContainerStatuses") or [])]
    cs = next((s for s in statuses if s.get("name") == container), None)
    if cs is None:
        raise bad_request(f'container "{container}" in pod "{name}" is not available')
    if previous:
        raise bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
    state = cs.get("state") or {}
    if "running" in state or ("terminated" in state and state["terminated"].get("containerID")):
        found = kubelet.logs.get((pod["metadata"]["uid"], container))
        return found if found is not None else ContainerLog()
    if "terminated" in state:
        raise bad_request(f'container "{container}" in pod "{name}" is terminated')
    reason = (state.get("waiting") or {}).get("reason", "")
    if reason == "ErrImagePull":
        reason = "image can't be pulled"
    elif reason == "ImagePullBackOff":
        reason = "trying and failing to pull image"
    if not reason:
        raise bad_request(f'container "{container}" in pod "{name}" is waiting to start - no logs yet')
    raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: {reason}')


def _log_options(request: web.Request) -> LogOptions:
    query = request.query
    since_seconds = _int(query.get("sinceSeconds"), "sinceSeconds")
    since_time = query.get("sinceTime")
    if since_seconds is not None and since_time:
        cause = Cause(
            "FieldValueForbidden", "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified", ""
        )
        raise invalid("", "PodLogOptions", "", [cause])
    since_ns = None
    if since_seconds is not None:
        since_ns = time.time_ns() - since_seconds * 1_000_000_000
    if since_time:
        try:
            # the API server forwards sinceTime to the kubelet formatted with time.RFC3339: whole seconds
            since_ns = parse_rfc3339_ns(since_time) // 1_000_000_000 * 1_000_000_000
        except ValueError:
            raise bad_request(f'parsing time "{since_time}" as "2006-01-02T15:04:05Z07:00": cannot parse') from None
    return LogOptions(
        since_ns=since_ns,
        tail=_int(query.get("tailLines"), "tailLines"),
        limit_bytes=_int(query.get("limitBytes"), "limitBytes"),
        timestamps=query.get("timestamps", "").lower() in _TRUE,
    )


async def serve_logs(
    request: web.Request, registry: Registry, kubelet: Kubelet, resource: Resource, namespace: str, name: str
) -> web.StreamResponse:
    """Answer ``GET .../pods/{name}/log`` (see the module docstring)."""
    pod = registry.get(resource, namespace, name)
    query = request.query
    source = _log_source(kubelet, pod, query.get("container"), query.get("previous", "").lower() in _TRUE)
    options = _log_options(request)
    follow = query.get("follow", "").lower() in _TRUE
    if source is None:
        return web.Response(body=b"", content_type="text/plain")
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    if follow:
        response.enable_chunked_encoding()
    await response.prepare(request)
    sender = _LogSender(request, response, kubelet, name, follow, options.limit_bytes)
    await sender.send(source, source.start_index(options), options.timestamps)
    return response


class _LogSender:
    """Writes log records to one response, honouring limitBytes, follow and drop rules."""

    def __init__(
        self,
        request: web.Request,
        response: web.StreamResponse,
        kubelet: Kubelet,
        pod: str,
        follow: bool,
        limit: int | None,
    ) -> None:
        self.request = request
        self.response = response
        self.kubelet = kubelet
        self.pod = pod
        self.follow = follow
        self.left = limit
        self.sent = 0

    async def _write(self, data: bytes) -> bool:
        """Send ``data``; False when the stream must end (limit reached or dropped)."""
        if self.left is not None:
            data = data[: self.left]
            self.left -= len(data)
        cut = self.kubelet.drops.cut(self.pod, self.sent, len(data)) if self.follow else None
        if cut is not None:
            if cut:
                await self.response.write(data[:cut])
            self._abort()
            return False
        if data:
            await self.response.write(data)
            self.sent += len(data)
        return self.left is None or self.left > 0

    def _abort(self) -> None:
        transport = self.request.transport
        if transport is not None:
            transport.close()
        raise ConnectionResetError("log stream dropped by the test")

    async def send(self, source: ContainerLog, index: int, timestamps: bool) -> None:
        try:
            while True:
                while index < len(source.records):
                    if not await self._write(render(source.records[index], timestamps)):
                        await self._eof()
                        return
                    index += 1
                if not self.follow or source.closed:
                    break
                changed = source.changed()
                if not await self._write(b""):
                    return
                await changed.wait()
            await self._eof()
        except ConnectionResetError:
            return

    async def _eof(self) -> None:
        with contextlib.suppress(ConnectionResetError):
            await self.response.write_eof()
