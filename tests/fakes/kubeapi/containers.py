"""Turning a container spec into a local process: env, argv, mounts, spawn and stop.

Owns what the kubelet and the container runtime do between "image pulled" and "running":

* the environment (``kubelet_pods.go`` makeEnvironmentVariables): service links for the
  ``kubernetes`` service (pointing at this fake API), ``envFrom`` with prefixes, ``env`` in
  order with ``$(VAR)`` expansion against what came before, ``valueFrom`` secretKeyRef,
  configMapKeyRef, fieldRef and resourceFieldRef; a missing Secret/ConfigMap or key is a
  ``CreateContainerConfigError`` with the kubelet's message;
* argv: ``command``/``args`` combined with the image entrypoint as the runtime does, then
  ``$(VAR)`` expansion (``$$`` escapes, unknown references stay as written);
* the executable check a runtime does at start (``StartError``, exit code 128);
* the process: ``unshare --mount --propagation private`` running a small ``sh`` script that
  bind-mounts each volume at its mountPath (parents first, read-only remounts), creates
  mount points and the working directory, and ``exec``s argv, so the process keeps its pid.
  stdout and stderr share one pipe, in a new session (process group) for signalling.
"""

from __future__ import annotations

import asyncio
import base64
import math
import os
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .quantity import parse_quantity

__all__ = ["ConfigError", "Mount", "build_argv", "expand", "find_executable", "resolve_env", "spawn"]

Lookup = Callable[[str, str], dict[str, Any] | None]
_MOUNT = shutil.which("mount") or "/bin/mount"
_MKDIR = shutil.which("mkdir") or "/bin/mkdir"
_UNSHARE = shutil.which("unshare") or "/usr/bin/unshare"


class ConfigError(Exception):
    """The container's configuration cannot be built (CreateContainerConfigError)."""


@dataclass(frozen=True, slots=True)
class Mount:
    source: Path  # host path
    target: str  # path inside the container
    read_only: bool
    is_file: bool


def expand(text: str, env: dict[str, str]) -> str:
    """Expand ``$(VAR)`` as ``third_party/forked/golang/expansion`` does."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                close = text.find(")", i + 2)
                if close >= 0:
                    name = text[i + 2 : close]
                    out.append(env.get(name, f"$({name})"))
                    i = close + 1
                    continue
                out.append("$(")
                i += 2
                continue
            out.append("$" + nxt)
            i += 2
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


def _values(kind: str, obj: dict[str, Any]) -> dict[str, str]:
    if kind == "Secret":
        return {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
    return dict(obj.get("data") or {})


def _from_object(kind: str, ref: dict[str, Any], lookup: Lookup, namespace: str) -> str | None:
    obj = lookup(kind, ref.get("name", ""))
    noun = "secret" if kind == "Secret" else "configmap"
    if obj is None:
        if ref.get("optional"):
            return None
        raise ConfigError(f'{noun} "{ref.get("name", "")}" not found')
    values = _values(kind, obj)
    if ref["key"] not in values:
        if ref.get("optional"):
            return None
        raise ConfigError(f"couldn't find key {ref['key']} in {kind} {namespace}/{ref.get('name', '')}")
    return values[ref["key"]]


def _field(pod: dict[str, Any], path: str) -> str:
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    for part in ("labels", "annotations"):
        prefix = f"metadata.{part}['"
        if path.startswith(prefix) and path.endswith("']"):
            return str((meta.get(part) or {}).get(path[len(prefix) : -2], ""))
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": status.get("hostIP"),
        "status.podIP": status.get("podIP"),
        "status.podIPs": ",".join(i["ip"] for i in status.get("podIPs") or []),
        "status.hostIPs": ",".join(i["ip"] for i in status.get("hostIPs") or []),
    }
    return str(simple.get(path) or "")


def _resource_field(container: dict[str, Any], ref: dict[str, Any], node_alloc: dict[str, str]) -> str:
    part, _, name = ref.get("resource", "").partition(".")
    resources = container.get("resources") or {}
    value = (resources.get(part) or {}).get(name) or node_alloc.get(name, "0")
    divisor = parse_quantity(ref.get("divisor") or "1")
    return str(math.ceil(parse_quantity(value) / divisor))


def resolve_env(
    container: dict[str, Any], pod: dict[str, Any], lookup: Lookup, base: dict[str, str], node_alloc: dict[str, str]
) -> dict[str, str]:
    """Return the container's environment (service links in ``base`` first).

    Raises:
        ConfigError: a referenced Secret, ConfigMap or key is missing.
    """
    namespace = pod["metadata"]["namespace"]
    env = dict(base)
    for source in container.get("envFrom") or []:
        kind, ref = (
            ("Secret", source["secretRef"])
            if "secretRef" in source
            else ("ConfigMap", source.get("configMapRef") or {})
        )
        obj = lookup(kind, ref.get("name", ""))
        if obj is None:
            if ref.get("optional"):
                continue
            raise ConfigError(f'{"secret" if kind == "Secret" else "configmap"} "{ref.get("name", "")}" not found')
        for key, value in _values(kind, obj).items():
            env[source.get("prefix", "") + key] = value
    for var in container.get("env") or []:
        source = var.get("valueFrom")
        if source is None:
            env[var["name"]] = expand(var.get("value") or "", env)
            continue
        if "secretKeyRef" in source or "configMapKeyRef" in source:
            kind = "Secret" if "secretKeyRef" in source else "ConfigMap"
            found = _from_object(kind, source.get("secretKeyRef") or source.get("configMapKeyRef"), lookup, namespace)
            if found is None:
                continue
            value = found
        elif "fieldRef" in source:
            value = _field(pod, source["fieldRef"].get("fieldPath", ""))
        else:
            value = _resource_field(container, source.get("resourceFieldRef") or {}, node_alloc)
        env[var["name"]] = value
    return env


def _entrypoint(images: dict[str, list[str]], image: str) -> list[str] | None:
    candidates = [image]
    bare = image.removeprefix("docker.io/").removeprefix("library/")
    candidates += [bare, bare.split("@")[0]]
    if ":" in bare.rsplit("/", 1)[-1]:
        candidates.append(bare.rsplit(":", 1)[0])
    for name in candidates:
        if name in images:
            return list(images[name])
    return None


def build_argv(container: dict[str, Any], images: dict[str, list[str]], env: dict[str, str]) -> list[str]:
    """Combine command/args with the image entrypoint and expand ``$(VAR)`` references."""
    command = container.get("command")
    args = container.get("args") or []
    argv = [*command, *args] if command else [*(_entrypoint(images, container.get("image", "")) or []), *args]
    return [expand(a, env) for a in argv]


def _host_view(path: str, mounts: list[Mount]) -> Path:
    for mount in sorted(mounts, key=lambda m: len(m.target), reverse=True):
        if path == mount.target or path.startswith(mount.target.rstrip("/") + "/"):
            return mount.source / os.path.relpath(path, mount.target)
    return Path(path)


def find_executable(name: str, env: dict[str, str], mounts: list[Mount], workdir: str) -> bool:
    """Tell whether ``name`` resolves to an executable file inside the container's view."""

    def ok(path: str) -> bool:
        host = _host_view(os.path.normpath(path), mounts)
        return host.is_file() and os.access(host, os.X_OK)

    if "/" in name:
        return ok(name if name.startswith("/") else os.path.join(workdir, name))
    return any(ok(os.path.join(d, name)) for d in env.get("PATH", "").split(":") if d)


def mount_script(mounts: list[Mount], workdir: str, argv: list[str], cgroup_procs: Path | None = None) -> str:
    """Return the ``sh`` script that joins the container's cgroup, mounts the volumes, enters
    workdir and execs argv."""
    lines = ["set -e"]
    if cgroup_procs is not None:
        lines.append(f"echo $$ > {shlex.quote(str(cgroup_procs))}")
    for mount in sorted(mounts, key=lambda m: m.target.rstrip("/").count("/")):
        target, source = shlex.quote(mount.target), shlex.quote(str(mount.source))
        if mount.is_file:
            parent = shlex.quote(os.path.dirname(mount.target) or "/")
            lines.append(f"{_MKDIR} -p {parent}; [ -e {target} ] || : > {target}")
        else:
            lines.append(f"{_MKDIR} -p {target}")
        lines.append(f"{_MOUNT} --bind {source} {target}")
        if mount.read_only:
            lines.append(f"{_MOUNT} -o remount,bind,ro {target}")
    lines.append(f"{_MKDIR} -p {shlex.quote(workdir)}; cd {shlex.quote(workdir)}")
    lines.append("exec " + " ".join(shlex.quote(a) for a in argv))
    return "\n".join(lines)


async def spawn(
    mounts: list[Mount], workdir: str, argv: list[str], env: dict[str, str], cgroup_procs: Path | None = None
) -> asyncio.subprocess.Process:
    """Start the container process in a private mount namespace, its own session and cgroup."""
    script = mount_script(mounts, workdir, argv, cgroup_procs)
    return await asyncio.create_subprocess_exec(
        _UNSHARE,
        "--mount",
        "--propagation",
        "private",
        "/bin/sh",
        "-c",
        script,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        start_new_session=True,
        cwd="/",
    )
