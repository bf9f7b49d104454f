"""HTTP transfers of the helper: streamed downloads and uploads over httpx2, with retries.

Owns the client settings (explicit timeouts, the CA file of the plan), the translation of
httpx2 errors into :class:`TransferError` (the only place the helper names an httpx2 error),
and the retry loop with exponential backoff. Bodies never sit in memory: downloads go to a
temporary file next to their destination, uploads are read from a file or a generator.
Printed URLs go through :func:`skyrunner.helper.urls.display_url`.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

import httpx2

from skyrunner.errors import HelperError, cut
from skyrunner.helper.console import Console
from skyrunner.helper.urls import display_url

__all__ = [
    "FetchResult",
    "LazyClient",
    "TransferError",
    "backoff_delay",
    "fetch_to_file",
    "make_client",
    "retry_notice",
    "send",
    "with_retries",
]

_CHUNK = 1 << 20
_MAX_BACKOFF_S = 30.0
T = TypeVar("T")


class TransferError(HelperError):
    """An HTTP transfer failed; ``retryable`` when another attempt may succeed.

    Network errors always are; for a status its raiser decides: 5xx for uploads and artifact
    downloads, 429 too for artifact uploads, none for a cache download.
    """

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


def backoff_delay(attempt: int, base_s: float) -> float:
    """Seconds to wait after failed ``attempt`` (1-based): base, 2x base, 4x base... capped at 30."""
    return float(min(_MAX_BACKOFF_S, base_s * 2 ** (attempt - 1)))


def make_client(ca_file: str = "", timeout_s: float = 600.0) -> httpx2.Client:
    """Return a client with explicit timeouts (connect at most 30 s) and the plan's CA file."""
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True
    timeout = httpx2.Timeout(timeout_s, connect=min(timeout_s, 30.0))
    return httpx2.Client(verify=verify, timeout=timeout, follow_redirects=False)


class LazyClient:
    """A client made on first use: building its TLS context costs a tenth of a second."""

    def __init__(self, ca_file: str = "", timeout_s: float = 600.0) -> None:
        self._ca_file, self._timeout_s = ca_file, timeout_s
        self._client: httpx2.Client | None = None

    def get(self) -> httpx2.Client:
        """Return the client, creating it now if needed.

        Raises:
            TransferError: the CA file cannot be loaded.
        """
        if self._client is None:
            try:
                self._client = make_client(self._ca_file, self._timeout_s)
            except OSError as exc:  # ssl.SSLError is an OSError too
                raise TransferError(f"CA file {self._ca_file}: {exc.strerror or exc}") from exc
        return self._client

    def __enter__(self) -> LazyClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._client is not None:
            self._client.close()


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The outcome of a GET: the status, and for redirects the ``Location``; body saved on 200."""

    status: int
    location: str = ""
    reason: str = ""


def _network_error(url: str, exc: httpx2.HTTPError) -> TransferError:
    text = str(exc) or type(exc).__name__
    return TransferError(f"{display_url(url)}: {cut(text)}", retryable=True)


def fetch_to_file(client: httpx2.Client, url: str, dest: Path, headers: Mapping[str, str] | None = None) -> FetchResult:
    """GET ``url``; on 200 stream the body to ``dest`` atomically, otherwise leave ``dest`` alone.

    Raises:
        TransferError: the connection failed or broke off (retryable).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, client.stream("GET", url, headers=dict(headers or {})) as resp:
            if resp.status_code != 200:
                return FetchResult(resp.status_code, resp.headers.get("Location", ""), resp.reason_phrase)
            for chunk in resp.iter_bytes(_CHUNK):
                out.write(chunk)
        os.replace(tmp_name, dest)
        return FetchResult(200, reason="OK")
    except httpx2.HTTPError as exc:
        raise _network_error(url, exc) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)


@dataclass(frozen=True, slots=True)
class SendResult:
    status: int
    reason: str
    location: str
    body: str


def send(
    client: httpx2.Client,
    method: str,
    url: str,
    *,
    content: IO[bytes] | Iterator[bytes],
    headers: Mapping[str, str],
) -> SendResult:
    """Send a streamed body; return the status, reason, Location and the body cut to 256 chars.

    Raises:
        TransferError: the connection failed or broke off (retryable).
    """
    try:
        resp = client.request(method, url, content=content, headers=dict(headers))
    except httpx2.HTTPError as exc:
        raise _network_error(url, exc) from exc
    return SendResult(resp.status_code, resp.reason_phrase, resp.headers.get("Location", ""), cut(resp.text))


def with_retries(
    action: Callable[[], T],
    *,
    attempts: int,
    backoff_s: float,
    on_retry: Callable[[TransferError, float], None],
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``action`` up to ``attempts`` times while it raises a retryable :class:`TransferError`."""
    attempt = 1
    while True:
        try:
            return action()
        except TransferError as exc:
            if not exc.retryable or attempt >= attempts:
                raise
            delay = backoff_delay(attempt, backoff_s)
            on_retry(exc, delay)
            sleep(delay)
            attempt += 1


def retry_notice(console: Console) -> Callable[[TransferError, float], None]:
    """The ``on_retry`` of every helper transfer: a warning naming the error and the wait."""
    return lambda exc, delay: console.warning(f"{exc}; retrying in {delay:g}s")
