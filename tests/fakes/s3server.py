"""moto's S3 server on 127.0.0.1, started empty.

moto is a real S3-compatible HTTP server, not our double. Its backends live in the process, not
in the server instance, so a server started by one test would otherwise see the buckets another
test left behind: every start resets moto's state through its own ``/moto-api/reset`` endpoint.
"""

from __future__ import annotations

import contextlib
import urllib.request
from collections.abc import Iterator


@contextlib.contextmanager
def moto_s3() -> Iterator[str]:
    """Yield ``host:port`` of a fresh, empty S3 server; stop it afterwards."""
    from moto.server import ThreadedMotoServer  # moto takes a second to import: only when used

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        address = f"{host}:{port}"
        reset = urllib.request.Request(f"http://{address}/moto-api/reset", method="POST")
        with urllib.request.urlopen(reset, timeout=10) as response:
            response.read()
        yield address
    finally:
        server.stop()
