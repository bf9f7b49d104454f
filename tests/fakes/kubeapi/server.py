"""HTTP routes of the fake API server (aiohttp.web): paths, query parameters, streaming.

Owns the translation between the wire and the registry: URL parsing (``/api/v1/...``,
``/apis/<group>/<version>/...``, namespaced and cluster paths, subresources ``status`` and
``log``), authentication (bearer token, or a verified client certificate under TLS; otherwise
401), injected failures (:class:`FailRule`), discovery and ``/version``, list, watch streams
(chunked JSON lines, bookmarks, ``timeoutSeconds``); the pod log endpoint is ``podlogs.py``.
Every error is a ``Status`` body.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .deletion import delete
from .kubelet import Kubelet
from .podlogs import serve_logs
from .registry import Registry, decode_body
from .resources import RESOURCES, Resource, by_path
from .selectors import parse_field_selector, parse_label_selector
from .status import StatusError, bad_request, method_not_allowed, unauthorized

__all__ = ["Api", "FailRule"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_TRUE = ("true", "1")


@dataclass(slots=True)
class FailRule:
    method: str
    path: re.Pattern[str]
    error: StatusError
    count: int


@dataclass(frozen=True, slots=True)
class Target:
    resource: Resource
    namespace: str | None  # None: cluster-scoped, or all namespaces
    name: str | None
    sub: str | None


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json")


def error_response(exc: StatusError) -> web.Response:
    return _json(exc.body(), exc.code)


def _not_found_path() -> StatusError:
    return StatusError(404, "NotFound", "the server could not find the requested resource", {})


def parse_target(path: str) -> Target:
    """Split a resource path into resource, namespace, name and subresource."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise _not_found_path()
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces" and by_path(group, version, rest[2]) is not None:
        namespace, rest = rest[1], rest[2:]
    resource = by_path(group, version, rest[0]) if rest else None
    if resource is None or len(rest) > 3 or (namespace is not None and not resource.namespaced):
        raise _not_found_path()
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if sub not in (None, "status", "log") or (sub == "log" and resource.kind != "Pod"):
        raise _not_found_path()
    if resource.namespaced and name is not None and namespace is None:
        raise _not_found_path()
    return Target(resource, namespace, name, sub)


def _int(value: str | None, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise bad_request(f"{name}: invalid value {value!r}") from None


def _manager(request: web.Request) -> str:
    return request.query.get("fieldManager") or request.headers.get("User-Agent", "unknown").split("/")[0][:128]


class Api:
    """The aiohttp application around one registry and kubelet."""

    def __init__(self, registry: Registry, kubelet: Kubelet, *, token: str, port_info: Callable[[], str]) -> None:
        self.registry = registry
        self.kubelet = kubelet
        self.tokens = {token}
        self.tls = False
        self.rules: list[FailRule] = []
        self.requests: list[tuple[str, str]] = []  # (method, path?query) of every request
        self.bookmark_interval_s = 1.0
        self.port_info = port_info
        self._streams: set[asyncio.Task[Any]] = set()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        try:
            self._authenticate(request)
            self._injected(request)
            return await handler(request)
        except StatusError as exc:
            return error_response(exc)

    def _authenticate(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer ") and header[7:] in self.tokens:
            return
        if self.tls and request.transport is not None and request.transport.get_extra_info("peercert"):
            return
        raise unauthorized()

    def _injected(self, request: web.Request) -> None:
        for rule in self.rules:
            if rule.count > 0 and rule.method in (request.method, "*") and rule.path.search(request.path):
                rule.count -= 1
                if rule.count == 0:
                    self.rules.remove(rule)
                raise rule.error

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/")
        if (
            path in ("/version", "/api", "/apis", "/healthz", "/livez", "/readyz")
            or path == "/api/v1"
            or re.fullmatch(r"/apis/[^/]+(/[^/]+)?", path)
        ):
            return self._discovery(path)
        target = parse_target(path)
        method = request.method
        if method == "GET" and target.sub == "log":
            return await serve_logs(
                request, self.registry, self.kubelet, target.resource, target.namespace or "", target.name or ""
            )
        if method == "GET" and target.name is None:
            if request.query.get("watch", "").lower() in _TRUE:
                return await self._watch(request, target)
            return self._list(request, target)
        if target.sub is not None and method != "GET":
            raise method_not_allowed()
        namespace = target.namespace or ""
        if method == "GET" and target.name is not None:
            return _json(self.registry.get(target.resource, namespace, target.name))
        if request.query.get("dryRun"):
            raise bad_request("dryRun is not supported by the fake API server")
        body = await request.read()
        return await self._write(request, target, namespace, body)

    async def _write(self, request: web.Request, target: Target, namespace: str, body: bytes) -> web.Response:
        method, res, name = request.method, target.resource, target.name
        if method == "POST" and name is None:
            if target.namespace is None and res.namespaced:
                raise method_not_allowed()
            return _json(self.registry.create(res, namespace, decode_body(body), manager=_manager(request)), 201)
        if method == "PUT" and name is not None:
            return _json(self.registry.replace(res, namespace, name, decode_body(body), manager=_manager(request)))
        if method == "PATCH" and name is not None:
            force = request.query.get("force", "").lower() in _TRUE
            content_type = request.headers.get("Content-Type", "")
            manager = request.query.get("fieldManager") or (
                None if "apply-patch" in content_type else _manager(request)
            )
            created = name is not None and self.registry.store.get(res, namespace, name) is None
            obj = self.registry.patch(res, namespace, name, body, content_type, manager=manager, force=force)
            return _json(obj, 201 if created else 200)
        if method == "DELETE":
            return self._delete(request, target, namespace, body)
        raise method_not_allowed()

    def _delete(self, request: web.Request, target: Target, namespace: str, body: bytes) -> web.Response:
        options = decode_body(body) if body.strip() else {}
        grace = _int(request.query.get("gracePeriodSeconds"), "gracePeriodSeconds")
        policy = request.query.get("propagationPolicy")
        if target.name is not None:
            obj = delete(
                self.registry, target.resource, namespace, target.name, grace=grace, propagation=policy, options=options
            )
            return _json(obj)
        listed = self.registry.list_objects(
            target.resource,
            target.namespace,
            labels=request.query.get("labelSelector"),
            fields=request.query.get("fieldSelector"),
        )
        for item in listed["items"]:
            meta = item["metadata"]
            with contextlib.suppress(StatusError):
                delete(
                    self.registry,
                    target.resource,
                    meta.get("namespace", ""),
                    meta["name"],
                    grace=grace,
                    propagation=policy,
                    options=options,
                )
        return _json(listed)

    def _list(self, request: web.Request, target: Target) -> web.Response:
        query = request.query
        return _json(
            self.registry.list_objects(
                target.resource,
                target.namespace,
                labels=query.get("labelSelector"),
                fields=query.get("fieldSelector"),
                limit=_int(query.get("limit"), "limit"),
                cont=query.get("continue"),
            )
        )

    # -- watch ------------------------------------------------------------------------------------

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        query = request.query
        labels = parse_label_selector(query.get("labelSelector"))
        fields = parse_field_selector(query.get("fieldSelector"), target.resource)
        timeout = _int(query.get("timeoutSeconds"), "timeoutSeconds")
        bookmarks = query.get("allowWatchBookmarks", "").lower() in _TRUE
        response = web.StreamResponse(
            headers={"Content-Type": "application/json", "Cache-Control": "no-cache, private"}
        )
        response.enable_chunked_encoding()
        try:
            watcher = self.registry.store.watch(
                target.resource, target.namespace, query.get("resourceVersion"), labels, fields
            )
        except StatusError as exc:
            await response.prepare(request)
            await response.write(_line({"type": "ERROR", "object": exc.body()}))
            await response.write_eof()
            return response
        await response.prepare(request)
        end = time.monotonic() + timeout if timeout else None
        try:
            while True:
                wait = self.bookmark_interval_s if bookmarks else None
                if end is not None:
                    left = end - time.monotonic()
                    if left <= 0:
                        break
                    wait = min(wait, left) if wait is not None else left
                try:
                    item = await asyncio.wait_for(watcher.queue.get(), wait)
                except TimeoutError:
                    if bookmarks:
                        await response.write(
                            _line({"type": "BOOKMARK", "object": _bookmark(target.resource, self.registry.store.rv)})
                        )
                    continue
                if item is None:
                    break
                await response.write(_line({"type": item[0], "object": item[1]}))
        except ConnectionResetError:  # the client went away
            return response
        finally:
            self.registry.store.unwatch(watcher)
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    # -- discovery --------------------------------------------------------------------------------

    def _discovery(self, path: str) -> web.Response:
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok")
        if path == "/version":
            return _json(
                {
                    "major": "1",
                    "minor": "30",
                    "gitVersion": "v1.30.0-fake",
                    "platform": "linux/amd64",
                    "goVersion": "go1.22.0",
                    "compiler": "gc",
                }
            )
        if path == "/api":
            return _json(
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": self.port_info()}],
                }
            )
        groups = sorted({r.group for r in RESOURCES if r.group})
        if path == "/apis":
            items = [
                {
                    "name": g,
                    "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
                    "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"},
                }
                for g in groups
            ]
            return _json({"kind": "APIGroupList", "apiVersion": "v1", "groups": items})
        parts = path.strip("/").split("/")
        group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2] if len(parts) > 2 else "v1")
        resources = [r for r in RESOURCES if r.group == group and r.version == version]
        if not resources:
            raise _not_found_path()
        listed = []
        for r in resources:
            listed.append(
                {
                    "name": r.plural,
                    "singularName": r.kind.lower(),
                    "namespaced": r.namespaced,
                    "kind": r.kind,
                    "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                }
            )
            if r.has_status:
                listed.append(
                    {
                        "name": f"{r.plural}/status",
                        "singularName": "",
                        "namespaced": r.namespaced,
                        "kind": r.kind,
                        "verbs": ["get"],
                    }
                )
            if r.kind == "Pod":
                listed.append(
                    {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]}
                )
        return _json(
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{group}/{version}".lstrip("/"),
                "resources": listed,
            }
        )


def _line(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode() + b"\n"


def _bookmark(resource: Resource, rv: int) -> dict[str, Any]:
    """The object of a BOOKMARK: an empty object of the kind, as the watch cache serialises it."""
    obj: dict[str, Any] = {
        "kind": resource.kind,
        "apiVersion": resource.api_version,
        "metadata": {"resourceVersion": str(rv), "creationTimestamp": None},
    }
    if resource.kind == "Pod":
        obj["spec"] = {"containers": None}
        obj["status"] = {}
    elif resource.has_status:
        obj["spec"] = {}
        obj["status"] = {}
    return obj
