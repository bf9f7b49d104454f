"""The runner's side of the helper fork server: one per runner process, started in the background.

The shell executor's stage bodies run helper steps through :mod:`skyrunner.helper.forkclient`
when ``SKYRUNNER_HELPER_SOCKET`` is set (see :mod:`skyrunner.helper.forkserver` for why).
This module starts the server as a child of the runner (when the first shell executor factory
is made, or earlier: ``skyrunner exec`` warms it up first thing), in a directory only the
runner's user can enter, and hands out its socket; no job waits for it. The server's stdin is a
pipe from here, its lifeline: when the runner exits, however it exits, the pipe closes and the
server kills its children and ends.

Failure is never fatal: a server that cannot start (no pidfds before Linux 5.3, no fork on
this platform) or has died yields ``None`` and the jobs start the helper themselves, as they do
in pods.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Final

__all__ = ["CLIENT_SCRIPT", "HelperServer", "shared_helper_server"]

log = logging.getLogger(__name__)

# By path, not by importing it: importing skyrunner.helper would cost what warming up early saves.
CLIENT_SCRIPT: Final = str(Path(__file__).resolve().parent.parent / "helper" / "forkclient.py")
READY_TIMEOUT_S: Final = 20.0
STOP_TIMEOUT_S: Final = 5.0
MAX_STARTS: Final = 3  # a server that keeps dying is not worth a fourth try


class HelperServer:
    """Starts the fork server in the background, restarts it if it died, stops it at exit."""

    def __init__(self, python: str = sys.executable) -> None:
        self._python = python
        self._lock = threading.Lock()  # held while a server starts
        self._process: subprocess.Popen[bytes] | None = None
        self._socket: str | None = None
        self._dir: str | None = None
        self._starts = 0

    def warm_up(self) -> None:
        """Start a server in a background thread unless one runs or is starting."""
        if self._running() or self._lock.locked() or self._starts >= MAX_STARTS:
            return
        threading.Thread(target=self._start, name="helper-server-start", daemon=True).start()

    def ready_socket(self) -> str | None:
        """The socket of a running server, without waiting: ``None`` while none is up.

        A job that gets ``None`` starts its helper itself; a dead server is restarted for later jobs.
        """
        if self._running():
            return self._socket
        self.warm_up()
        return None

    def start(self) -> str | None:
        """Start a server now (or wait for the one starting) and return its socket, or ``None``."""
        self._start()
        return self._socket if self._running() else None

    @property
    def pid(self) -> int | None:
        """The running server's process id (for whoever must look at its children)."""
        process = self._process
        return process.pid if process is not None and self._running() else None

    def close(self) -> None:
        """Stop the server (it also stops by itself when this process exits)."""
        with self._lock:
            self._stop_locked()

    def _running(self) -> bool:
        process = self._process
        return process is not None and self._socket is not None and process.poll() is None

    def _start(self) -> None:
        with self._lock:
            if self._running() or self._starts >= MAX_STARTS or not hasattr(os, "pidfd_open"):
                return
            self._stop_locked()
            self._starts += 1
            self._socket = self._start_locked()

    def _start_locked(self) -> str | None:
        self._dir = tempfile.mkdtemp(prefix="skyrunner-helper-")  # 0700: only our user connects
        path = os.path.join(self._dir, "helper.sock")
        try:
            self._process = subprocess.Popen(
                [self._python, "-m", "skyrunner.helper.forkserver", path],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            log.warning("helper fork server: cannot start %s: %s", self._python, exc.strerror)
            self._stop_locked()
            return None
        if self._wait_ready(self._process):
            return path
        log.warning("helper fork server did not start; jobs start the helper themselves")
        self._stop_locked()
        return None

    @staticmethod
    def _wait_ready(process: subprocess.Popen[bytes]) -> bool:
        assert process.stdout is not None
        readable, _, _ = select.select([process.stdout], [], [], READY_TIMEOUT_S)
        return bool(readable) and process.stdout.readline().strip() == b"ready"

    def _stop_locked(self) -> None:
        process, self._process, self._socket = self._process, None, None
        if process is not None:
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


_SHARED = HelperServer()
atexit.register(_SHARED.close)


def shared_helper_server() -> HelperServer:
    """The runner process's server, shared by every shell executor factory (config reloads too)."""
    return _SHARED
