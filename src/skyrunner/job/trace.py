"""The TraceSink: the only path from a job to its log in GitLab.

Flow:

1. :meth:`TraceSink.write` takes bytes from anywhere in the job (the runner's own lines, the
   executor's output), masks them (:class:`Masker`, also across writes), enforces
   ``output_limit`` (cut at a UTF-8 boundary, gitlab-runner's notice once, then nothing) and
   appends them to the job's trace, which stays in memory until the job is reported.
2. :meth:`TraceSink.run` sends what GitLab does not have yet, every 3 s or at the interval GitLab
   asks for (``X-GitLab-Trace-Update-Interval``), in patches of at most 1 MiB with
   ``Content-Range: start-end`` (inclusive). A 416 says how much GitLab has: the offset is reset
   to that and sending goes on from there. A 403 or a ``Job-Status`` of canceled/failed/canceling
   is handed to ``on_remote_state``. When there was nothing to send for a whole interval, a
   keep-alive ``PUT state=running`` goes out instead, so that a cancel in GitLab is seen within
   the interval GitLab itself asked for (3 s while someone watches the log, 30 s otherwise).
3. :meth:`TraceSink.close` flushes the masker and sends everything left; ``checksum`` and
   ``bytesize`` then describe every byte produced, for the final update.

A sink can resume a trace whose first bytes are no longer in memory (after a runner restart):
``start_offset`` and ``start_crc`` describe them, as :meth:`TraceSink.position` gave them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Callable
from typing import Final

from skyrunner.errors import ApiAuthError, ApiError, ApiUnavailable, TraceRangeError
from skyrunner.job._masking import Masker, ansi
from skyrunner.job.coordinator import Coordinator, JobRef, JobUpdate, RemoteState

__all__ = ["DEFAULT_INTERVAL_S", "PATCH_LIMIT", "TraceSink", "limit_notice"]

log = logging.getLogger(__name__)

PATCH_LIMIT: Final = 1024 * 1024
DEFAULT_INTERVAL_S: Final = 3.0
MAX_INTERVAL_S: Final = 900.0
FINAL_FLUSH_ATTEMPTS: Final = 8


def limit_notice(limit: int) -> bytes:
    """gitlab-runner's notice when a log reaches ``output_limit``."""
    return (
        f"\n{ansi('bold_yellow')}Job's log exceeded limit of {limit} bytes.\n"
        f"Job execution will continue but no more output will be collected.{ansi('reset')}\n"
    ).encode()


def _utf8_cut(data: bytes, size: int) -> int:
    """The largest cut point <= size that does not split a UTF-8 character."""
    cut = min(size, len(data))
    while 0 < cut < len(data) and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut


class TraceSink:
    """Masks, limits, keeps and sends one job's trace."""

    def __init__(
        self,
        coordinator: Coordinator,
        job: JobRef,
        masker: Masker,
        *,
        output_limit: int,
        on_remote_state: Callable[[RemoteState], None],
        start_offset: int = 0,
        start_crc: int = 0,
    ) -> None:
        self._coordinator = coordinator
        self._job = job
        self._masker = masker
        self._limit = output_limit
        self._on_remote_state = on_remote_state
        self._base = start_offset  # trace bytes before self._data, not kept in memory
        self._crc = start_crc  # CRC-32 of every byte produced so far
        self._data = bytearray()
        self._sent = start_offset  # bytes GitLab has acknowledged
        self._truncated = start_offset >= output_limit
        self._interval = DEFAULT_INTERVAL_S
        self._wake = asyncio.Event()
        self._closing = False
        self._stopped = False  # GitLab refused the job: send nothing more
        self._last_contact = asyncio.get_running_loop().time()

    # -- producing ---------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Append ``data`` to the trace, masked and within the output limit."""
        self._append(self._masker.feed(data))

    def write_line(self, text: str, color: str | None = None) -> None:
        """Write one runner line in gitlab-runner's style (``ESC[0K`` or a colour, reset, newline)."""
        start = ansi(color) if color else ansi("erase")
        self.write(f"{start}{text}{ansi('reset')}\n".encode())

    def write_heading(self, text: str) -> None:
        """Write a stage heading exactly as gitlab-runner does (``ESC[0K``, bold cyan, two resets)."""
        self.write(f"{ansi('erase')}{ansi('cyan')}{text}{ansi('reset')}{ansi('reset')}\n".encode())

    def _append(self, data: bytes) -> None:
        if not data or self._truncated:
            return
        room = self._limit - self.bytesize
        if len(data) > room:
            data = data[: _utf8_cut(data, room)] + limit_notice(self._limit)
            self._truncated = True
        self._data += data
        self._crc = zlib.crc32(data, self._crc)
        if len(self._data) - (self._sent - self._base) >= PATCH_LIMIT:
            self._wake.set()

    @property
    def bytesize(self) -> int:
        return self._base + len(self._data)

    @property
    def checksum(self) -> str:
        return f"crc32:{self._crc:08x}"

    @property
    def sent(self) -> int:
        return self._sent

    def position(self) -> tuple[int, int] | None:
        """``(bytesize, crc)`` when every byte written so far is in the trace, else None.

        A resumed sink started at such a position produces, from the same input, the same
        bytes: this is what the kubernetes executor checkpoints.
        """
        return None if self._masker.holding else (self.bytesize, self._crc)

    @property
    def stopped(self) -> bool:
        """GitLab refused the job (403/404): nothing more is sent."""
        return self._stopped

    def text(self) -> bytes:
        """The bytes kept in memory (the whole trace unless resumed)."""
        return bytes(self._data)

    # -- sending -----------------------------------------------------------------------------
    async def run(self) -> None:
        """Send increments until :meth:`close` is called."""
        loop = asyncio.get_running_loop()
        while not self._closing and not self._stopped:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):  # not wait_for: on 3.11 it can swallow a cancel
                    await self._wake.wait()
            self._wake.clear()
            if self._closing:
                break
            await self._send_pending()
            if not self._stopped and loop.time() - self._last_contact >= self._interval:
                await self._keepalive()

    async def close(self) -> None:
        """Flush the masker and send everything that is left (bounded retries)."""
        self._append(self._masker.flush())
        self._closing = True
        self._wake.set()
        self._interval = DEFAULT_INTERVAL_S
        for attempt in range(FINAL_FLUSH_ATTEMPTS):
            if self._stopped or await self._send_pending():
                return
            await asyncio.sleep(min(2**attempt * 0.25, 5.0))
        log.warning("job %d: %d trace bytes could not be sent", self._job.id, self.bytesize - self._sent)

    async def _send_pending(self) -> bool:
        """Send unsent bytes; return True when GitLab has them all."""
        while not self._stopped and self._sent < self.bytesize:
            start = self._sent - self._base
            if start < 0:
                log.warning("job %d: gitlab lost trace bytes we no longer hold", self._job.id)
                self._sent = self._base
                start = 0
            chunk = bytes(self._data[start : start + PATCH_LIMIT])
            try:
                result = await self._coordinator.patch_trace(self._job, self._sent, chunk)
            except TraceRangeError as exc:
                log.warning(
                    "job %d: trace offset %d resynchronised to %d", self._job.id, self._sent, exc.stored
                )
                self._sent = min(exc.stored, self.bytesize)
                self._remote(RemoteState(job_status=exc.job_status))
                continue
            except ApiAuthError as exc:
                self._refused(exc)
                return False
            except ApiUnavailable as exc:
                log.warning("job %d: trace patch failed, will retry: %s", self._job.id, exc)
                return False
            except ApiError as exc:
                log.warning("job %d: trace patch refused, will retry: %s", self._job.id, exc)
                return False
            self._sent = self._sent + len(chunk)
            self._last_contact = asyncio.get_running_loop().time()
            self._remote(result)
        return self._sent >= self.bytesize

    async def _keepalive(self) -> None:
        update = JobUpdate(state="running", checksum=self.checksum, bytesize=self.bytesize)
        try:
            result = await self._coordinator.update_job(self._job, update)
        except ApiAuthError as exc:
            self._refused(exc)
            return
        except ApiError as exc:
            log.warning("job %d: keep-alive update failed: %s", self._job.id, exc)
            return
        self._last_contact = asyncio.get_running_loop().time()
        self._remote(result)

    def _refused(self, exc: ApiAuthError) -> None:
        log.warning("job %d: gitlab refused the trace (%s); aborting the job", self._job.id, exc)
        self._stopped = True
        self._on_remote_state(RemoteState(job_status=exc.job_status or "failed"))

    def _remote(self, state: RemoteState) -> None:
        if state.update_interval_s and state.update_interval_s > 0 and not self._closing:
            self._interval = min(state.update_interval_s, MAX_INTERVAL_S)
        if state.job_status is not None:
            self._on_remote_state(state)
