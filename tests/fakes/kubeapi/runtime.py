"""The fake container runtime: start one container as a process, follow it to its exit, stop it.

Owns :class:`Runtime` (what every container of this fake shares: root directory, image
entrypoints, the "image" PATH, service-link env) and :class:`RunningContainer` (one process,
its log pump, the signals sent to it). Exit reporting follows containerd + kubelet:
exit code 0 is ``Completed``, non-zero ``Error``, death by a signal is ``128 + signal``, and a
SIGKILL the runtime did not send is reported as ``OOMKilled`` (the only way the fake can be
out of memory). The termination message is the file at ``terminationMessagePath`` (at most
4096 bytes) or, with ``FallbackToLogsOnError`` after a failure, the log's last 80 lines
(at most 2048 bytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import hostpaths
from .cgroups import ContainerCgroup, create_cgroup
from .containers import Lookup as Lookup
from .containers import Mount, build_argv, find_executable, resolve_env, spawn
from .logs import ContainerLog, pump
from .timefmt import rfc3339

__all__ = ["RunningContainer", "Runtime", "StartError"]

_OCI = (
    "failed to create containerd task: failed to create shim task: OCI runtime create failed: "
    "runc create failed: unable to start container process: "
)
NODE_ALLOCATABLE = {"cpu": "2", "memory": "8Gi", "ephemeral-storage": "100Gi", "pods": "110"}


class StartError(Exception):
    """The runtime could not start the process (terminated, reason StartError, exit 128)."""


@dataclass(slots=True)
class RunningContainer:
    """One started container process."""

    process: asyncio.subprocess.Process
    log: ContainerLog
    message_file: Path
    policy: str
    started_at: float
    killed: bool = False  # the runtime sent SIGKILL
    pump: asyncio.Task[None] | None = field(default=None)
    cgroup: ContainerCgroup | None = None

    def terminate(self) -> None:
        """Send SIGTERM to the main process (as the runtime's StopContainer does first)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the whole container: its cgroup, or at least its process group."""
        self.killed = True
        if self.cgroup is not None:
            self.cgroup.kill()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    async def wait(self) -> dict[str, Any]:
        """Wait for the exit, drain the log, and return the ``terminated`` state."""
        await _exited(self.process.pid)
        finished = time.time()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)  # the runtime takes the whole container down
        if self.cgroup is not None:
            self.cgroup.remove()
        code = await self.process.wait()  # asyncio also waits for the pipe, held by the whole group
        if self.pump is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self.pump), 2.0)
            except TimeoutError:
                self.pump.cancel()
        self.log.close()
        exit_code = 128 - code if code < 0 else code
        if exit_code == 0:
            reason = "Completed"
        elif code == -signal.SIGKILL and not self.killed:
            reason = "OOMKilled"
        else:
            reason = "Error"
        state: dict[str, Any] = {"exitCode": exit_code, "reason": reason}
        message = self._message(exit_code)
        if message:
            state["message"] = message
        state["startedAt"] = rfc3339(self.started_at)
        state["finishedAt"] = rfc3339(finished)
        return state

    def _message(self, exit_code: int) -> str:
        try:
            with self.message_file.open("rb") as fh:
                text = fh.read(4096)
        except OSError:
            text = b""
        if not text and self.policy == "FallbackToLogsOnError" and exit_code != 0:
            text = b"".join(data for _, data in self.log.records[-80:])[-2048:]
        return text.decode(errors="replace")


@dataclass(slots=True)
class Runtime:
    """Shared settings of every container the fake starts."""

    root: Path
    images: dict[str, list[str]]
    image_path: str  # the PATH an image without ENV PATH has: the host's
    service_env: dict[str, str]

    def mounts(self, container: dict[str, Any], volumes: dict[str, Path], message_file: Path) -> list[Mount]:
        """Return the bind mounts of a container: its volumeMounts and the termination log."""
        out = []
        for vm in container.get("volumeMounts") or []:
            source = volumes[vm["name"]]
            if vm.get("subPath"):
                source = source / vm["subPath"]
                if not source.exists():
                    source.mkdir(parents=True, exist_ok=True)
            out.append(Mount(source, vm["mountPath"], bool(vm.get("readOnly")), source.is_file()))
        path = container.get("terminationMessagePath") or "/dev/termination-log"
        out.append(Mount(message_file, path, False, True))
        return out

    def environment(self, container: dict[str, Any], pod: dict[str, Any], lookup: Lookup) -> dict[str, str]:
        """Return the process environment: image PATH, HOSTNAME, HOME, service links, spec env.

        Raises:
            ConfigError: a referenced Secret, ConfigMap or key is missing.
        """
        base = dict(self.service_env) if (pod["spec"].get("enableServiceLinks", True)) else {}
        env = resolve_env(container, pod, lookup, base, NODE_ALLOCATABLE)
        return {"PATH": self.image_path, "HOSTNAME": pod["metadata"]["name"], "HOME": "/root", **env}

    async def start(
        self,
        container: dict[str, Any],
        pod: dict[str, Any],
        env: dict[str, str],
        volumes: dict[str, Path],
        log: ContainerLog,
    ) -> RunningContainer:
        """Start the container's process.

        Raises:
            StartError: no command, or the executable does not exist in the container's view.
        """
        work = pod_container_dir(self.root, pod, container["name"])
        work.mkdir(parents=True, exist_ok=True)
        message_file = work / "termination-log"
        message_file.write_bytes(b"")
        os.chmod(message_file, 0o666)
        mounts = self.mounts(container, volumes, message_file)
        argv = build_argv(container, self.images, env)
        workdir = container.get("workingDir") or "/"
        if not argv:
            raise StartError(_OCI + "exec: no command specified: unknown")
        if not find_executable(argv[0], env, mounts, workdir):
            if "/" in argv[0]:
                raise StartError(_OCI + f'exec: "{argv[0]}": stat {argv[0]}: no such file or directory: unknown')
            raise StartError(_OCI + f'exec: "{argv[0]}": executable file not found in $PATH: unknown')
        _ensure_mount_points(mounts, workdir)
        cgroup = create_cgroup()
        try:
            process = await spawn(mounts, workdir, argv, env, cgroup.procs if cgroup else None)
        except BaseException:
            if cgroup is not None:
                cgroup.remove()
            raise
        policy = container.get("terminationMessagePolicy") or "File"
        running = RunningContainer(process, log, message_file, policy, time.time(), cgroup=cgroup)
        assert process.stdout is not None
        running.pump = asyncio.ensure_future(pump(process.stdout, log))
        return running


async def _exited(pid: int) -> None:
    """Wait until ``pid`` has exited (not reaped: its group id stays reserved for killpg)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def exited() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(fd, exited)
    try:
        await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)


def pod_container_dir(root: Path, pod: dict[str, Any], name: str) -> Path:
    return root / "pods" / pod["metadata"]["uid"] / "containers" / name


def _inside(path: str, mounts: list[Mount]) -> bool:
    return any(path != m.target and path.startswith(m.target.rstrip("/") + "/") for m in mounts)


def _ensure_mount_points(mounts: list[Mount], workdir: str) -> None:
    for mount in sorted(mounts, key=lambda m: m.target.rstrip("/").count("/")):
        if not _inside(mount.target, mounts):
            hostpaths.ensure(mount.target, mount.is_file)
    if not _inside(workdir, mounts) and not any(workdir == m.target for m in mounts):
        hostpaths.ensure(workdir, False)
