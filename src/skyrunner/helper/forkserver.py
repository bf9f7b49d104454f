"""The helper's fork server: helper steps without a new interpreter per step (shell executor).

Why: every job runs ``python -m skyrunner.helper <step>`` at least once (get_sources), and a
fresh interpreter importing the helper costs ~70 ms of a job that otherwise takes ~60 ms. On
the runner's own machine the runner starts this server once per process; it imports every
step's code once and forks a child per request, which then runs :func:`skyrunner.helper.__main__.main`
exactly as a new process would. Job pods never use it: their helper runs in its own container.

    python -m skyrunner.helper.forkserver SOCKET

Protocol (a Unix stream socket, in a directory only the runner's user can enter):

- the client (:mod:`skyrunner.helper.forkclient`) sends one request: a 4-byte big-endian length
  and that many bytes of NUL-separated fields (``encode_request`` there: format, umask, working
  directory, argument count, arguments, ``KEY=value`` environment entries, all as the OS has
  them); the first ``sendmsg`` carries its stdin, stdout and stderr as SCM_RIGHTS;
- the server forks; the child takes those descriptors as 0, 1 and 2, the working directory,
  environment and umask, becomes its own process group and runs the step;
- each byte the client sends afterwards is a signal number, delivered to the child's process
  group (the client forwards what the sequencer sends it: SIGTERM on cancel or timeout);
- end of file from the client before the child ended means the client was killed: the child's
  group gets SIGKILL, as it would have had it been in the client's process group;
- when the child ends the server sends its exit code (128 + N for signal N) as 4 bytes.

Other process attributes (resource limits, signal dispositions) are the server's, i.e. the
runner's, not the caller's: the helper changes none of them, and a ``pre_get_sources_script``
that does only affects its own shell. (The server raises its own descriptor limit, two per
running step, and gives each child the runner's back.)

The server prints ``ready`` on stdout once it listens and exits, killing its children, when its
stdin (the lifeline, a pipe from the runner) reaches end of file, so it never outlives the runner.
"""

from __future__ import annotations

import contextlib
import gc
import os
import resource
import selectors
import signal
import socket
import sys
import time
from dataclasses import dataclass
from typing import Final

from skyrunner.helper.forkclient import FORMAT, LENGTH_BYTES

__all__ = ["MAX_REQUEST", "Request", "decode_request", "read_request", "serve"]

MAX_REQUEST: Final = 1 << 20  # an environment larger than 1 MiB is refused
REQUEST_TIMEOUT_S: Final = 5.0


@dataclass(frozen=True, slots=True)
class Request:
    argv: list[str]
    cwd: str
    env: dict[str, str]
    umask: int
    fds: list[int]


def decode_request(body: bytes, fds: list[int]) -> Request:
    """Parse a request body (see :func:`skyrunner.helper.forkclient.encode_request`).

    Raises:
        ValueError: the body is malformed.
    """
    fields = body.split(b"\0")
    if len(fields) < 4 or fields[0] != FORMAT:
        raise ValueError("not a request of this server's format")
    count = int(fields[3])
    if count < 0 or len(fields) < 4 + count:
        raise ValueError("the argument count does not match")
    env = dict(os.fsdecode(entry).partition("=")[::2] for entry in fields[4 + count :])
    return Request(
        argv=[os.fsdecode(a) for a in fields[4 : 4 + count]],
        cwd=os.fsdecode(fields[2]),
        env=env,
        umask=int(fields[1]),
        fds=fds,
    )


def read_request(conn: socket.socket) -> Request:
    """Read one request and its three descriptors from ``conn``.

    Raises:
        ValueError: the request is malformed (descriptors received are closed first).
    """
    data, fds, _, _ = socket.recv_fds(conn, 65536, 3)
    try:
        if len(fds) != 3 or len(data) < LENGTH_BYTES:
            raise ValueError("a request needs a length and three descriptors")
        length = int.from_bytes(data[:LENGTH_BYTES], "big")
        if length > MAX_REQUEST:
            raise ValueError(f"request of {length} bytes is too large")
        body = bytearray(data[LENGTH_BYTES:])
        while len(body) < length:
            chunk = conn.recv(length - len(body))
            if not chunk:
                raise ValueError("request ended early")
            body += chunk
        return decode_request(bytes(body[:length]), fds)
    except (OSError, ValueError):
        for fd in fds:
            os.close(fd)
        raise


def _run_child(request: Request, inherited: list[int], files_limit: tuple[int, int]) -> None:
    """In the forked child: become the caller's helper process, run the step, exit."""
    try:
        for fd in inherited:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, files_limit)
        os.setpgid(0, 0)
        for target, fd in enumerate(request.fds):
            os.dup2(fd, target)
        for fd in request.fds:
            if fd > 2:
                os.close(fd)
        sys.stdout = open(1, "w", encoding=sys.stdout.encoding, errors=sys.stdout.errors, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding=sys.stderr.encoding, errors="backslashreplace", closefd=False)  # noqa: SIM115
        os.environ.clear()
        os.environ.update(request.env)
        os.umask(request.umask)
        os.chdir(request.cwd)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        from skyrunner.helper.__main__ import main

        code = main(request.argv)
    except SystemExit as exc:  # argparse's usage errors, as the interpreter handles them
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
    except BaseException:  # as an uncaught exception would: a traceback, status 1
        import traceback

        traceback.print_exc()
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


@dataclass(slots=True)
class _Child:
    conn: socket.socket
    pidfd: int
    client_open: bool = True


class _Server:
    """One selector loop: the listening socket, the lifeline, and per child a pidfd and a connection."""

    def __init__(self, listener: socket.socket, lifeline: int, files_limit: tuple[int, int]) -> None:
        self.listener, self.lifeline, self.files_limit = listener, lifeline, files_limit
        self.selector = selectors.EpollSelector()
        self.selector.register(listener, selectors.EVENT_READ, ("accept", 0))
        self.selector.register(lifeline, selectors.EVENT_READ, ("lifeline", 0))
        self.children: dict[int, _Child] = {}

    def run(self) -> None:
        while True:
            for key, _ in self.selector.select():
                kind, pid = key.data
                if kind == "accept":
                    self._accept()
                elif kind == "lifeline":
                    if not os.read(self.lifeline, 4096):
                        self._kill_all()
                        return
                elif kind == "client":
                    self._from_client(pid)
                else:
                    self._reap(pid)

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError as exc:  # out of descriptors: the client waits in the backlog meanwhile
            _complain(f"cannot accept a request: {exc.strerror}")
            time.sleep(0.05)
            return
        conn.settimeout(REQUEST_TIMEOUT_S)
        try:
            request = read_request(conn)
        except (OSError, ValueError) as exc:
            _complain(f"refused a request: {exc}")
            conn.close()
            return
        try:
            self._start_child(conn, request)
        except OSError as exc:  # no fork (out of processes or memory): the step fails, saying why
            with contextlib.suppress(OSError):
                os.write(request.fds[1], f"ERROR: cannot start the helper step: {exc.strerror}\n".encode())
                conn.sendall((1).to_bytes(LENGTH_BYTES, "big"))
            conn.close()
        finally:
            for fd in request.fds:
                os.close(fd)

    def _start_child(self, conn: socket.socket, request: Request) -> None:
        pid = os.fork()
        if pid == 0:
            _run_child(request, [*self._own_fds(), conn.fileno()], self.files_limit)
        with contextlib.suppress(OSError):  # the child does it too; whoever is first, a signal finds the group
            os.setpgid(pid, pid)
        try:
            child = _Child(conn, os.pidfd_open(pid))
        except OSError:
            self._signal(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise
        self.children[pid] = child
        conn.setblocking(False)
        self.selector.register(conn, selectors.EVENT_READ, ("client", pid))
        self.selector.register(child.pidfd, selectors.EVENT_READ, ("exit", pid))

    def _own_fds(self) -> list[int]:
        """Descriptors a child must not keep: a client waits for EOF on its connection."""
        fds = [self.selector.fileno(), self.listener.fileno(), self.lifeline]
        for child in self.children.values():
            fds += [child.conn.fileno(), child.pidfd]
        return fds

    def _from_client(self, pid: int) -> None:
        child = self.children[pid]
        try:
            data = child.conn.recv(64)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the client was killed: so is its child, as if it were in its process group
            self.selector.unregister(child.conn)
            child.client_open = False
            self._signal(pid, signal.SIGKILL)
            return
        for number in data:
            self._signal(pid, number)

    @staticmethod
    def _signal(pid: int, number: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
            os.killpg(pid, number)

    def _reap(self, pid: int) -> None:
        child = self.children.pop(pid)
        _, status = os.waitpid(pid, 0)
        self.selector.unregister(child.pidfd)
        os.close(child.pidfd)
        if child.client_open:
            self.selector.unregister(child.conn)
            with contextlib.suppress(OSError):
                child.conn.setblocking(True)
                child.conn.sendall(_exit_code(status).to_bytes(LENGTH_BYTES, "big"))
        child.conn.close()

    def _kill_all(self) -> None:
        for pid in list(self.children):
            self._signal(pid, signal.SIGKILL)
            self._reap(pid)


def _complain(text: str) -> None:
    print(f"skyrunner helper fork server: {text}", file=sys.stderr, flush=True)


def _raise_files_limit() -> tuple[int, int]:
    """Allow as many descriptors as the hard limit (two per running step); return the old limits."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return soft, hard


def _preload() -> None:
    """Import every step's code now, so that no child pays for it."""
    import skyrunner.helper.__main__
    import skyrunner.helper.artifacts
    import skyrunner.helper.cache
    import skyrunner.helper.sources  # noqa: F401


def serve(path: str, lifeline: int = 0) -> None:
    """Listen on ``path`` until ``lifeline`` reaches end of file."""
    os.pidfd_open(os.getpid())  # no pidfds (Linux < 5.3): fail now, the runner then does without
    _preload()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(64)
    gc.freeze()  # what is imported by now is shared with every child; the collector leaves it
    print("ready", flush=True)
    _Server(listener, lifeline, _raise_files_limit()).run()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m skyrunner.helper.forkserver SOCKET")
    serve(sys.argv[1])
