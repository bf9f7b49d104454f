"""The fork server's client: what a stage body runs instead of ``python -m skyrunner.helper``.

    "$SKYRUNNER_PYTHON" -I -S .../skyrunner/helper/forkclient.py STEP ARGS...

It asks the fork server at ``$SKYRUNNER_HELPER_SOCKET`` to run the step with this process's
descriptors, working directory, environment and umask (protocol in
:mod:`skyrunner.helper.forkserver`), forwards SIGTERM, SIGINT, SIGHUP and SIGQUIT to the step and
exits with its exit code: to the sequencer it is the helper. When the server cannot be reached it
becomes the helper itself (``exec python -m skyrunner.helper``): a missing server costs time,
never a job.

Speed is the point, so the script is run by path without site and imports only C modules: the
``socket``, ``signal`` and ``struct`` wrappers would cost 15-20 ms of enum classes per job on a
small machine, more than the fork server's whole round trip (~9 ms). The underscore modules are
CPython's own implementation of those wrappers, present in every CPython build.
"""

import _socket
import os
import sys

TYPE_CHECKING = False  # not typing's: importing typing would cost as much as signal does
if TYPE_CHECKING:  # typeshed describes the wrapper only; the functions and numbers are the same
    import signal as _signal
else:
    import _signal

__all__ = ["FORMAT", "LENGTH_BYTES", "encode_request", "main"]

FORMAT = b"skyrunner-helper/1"
LENGTH_BYTES = 4  # big-endian, before the request body and as the whole reply
SOCKET_VARIABLE = "SKYRUNNER_HELPER_SOCKET"
FORWARDED = (_signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP, _signal.SIGQUIT)


def encode_request(argv: list[bytes], cwd: bytes, env: dict[bytes, bytes], umask: int) -> bytes:
    """The request: its length, then NUL-separated fields (none of them can hold a NUL)."""
    fields = [FORMAT, b"%d" % umask, cwd, b"%d" % len(argv), *argv, *(k + b"=" + v for k, v in env.items())]
    body = b"\0".join(fields)
    return len(body).to_bytes(LENGTH_BYTES, "big") + body


def _become_helper(args: list[str]) -> None:
    os.execv(sys.executable, [sys.executable, "-m", "skyrunner.helper", *args])


def _send(sock: _socket.socket, request: bytes) -> None:
    """Send the request, stdin, stdout and stderr travelling with its first bytes."""
    fds = b"".join(fd.to_bytes(4, sys.byteorder) for fd in (0, 1, 2))
    sent = sock.sendmsg([request], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
    while sent < len(request):
        sent += sock.send(request[sent:])


def _receive_code(sock: _socket.socket) -> int | None:
    data = b""
    while len(data) < LENGTH_BYTES:
        chunk = sock.recv(LENGTH_BYTES - len(data))
        if not chunk:
            return None
        data += chunk
    return int.from_bytes(data, "big")


def main(args: list[str]) -> int:
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(os.environ.get(SOCKET_VARIABLE, ""))
    except OSError:
        sock.close()
        _become_helper(args)
    umask = os.umask(0)
    os.umask(umask)
    request = encode_request([os.fsencode(a) for a in args], os.getcwdb(), dict(os.environb), umask)

    def forward(number: int, _frame: object) -> None:
        try:  # noqa: SIM105 - contextlib would be one more import to pay for
            sock.send(bytes([number]))
        except OSError:
            pass

    for number in FORWARDED:
        _signal.signal(number, forward)
    try:
        _send(sock, request)
    except OSError:  # a descriptor is closed, or the server went away: run the step here
        sock.close()
        _become_helper(args)
    code = _receive_code(sock)
    if code is None:
        sys.stderr.write("ERROR: the helper fork server ended before the step did\n")
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
