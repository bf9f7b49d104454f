"""Following one container's log into the job's trace, without gaps or duplicates.

Flow of :meth:`LogFollower.run`:

1. open the log with ``follow=true&timestamps=true`` (from the start, or from the cursor's
   ``sinceTime`` when resuming at a checkpoint or after a drop);
2. split what arrives into lines, strip each line's RFC3339Nano stamp, and write the lines the
   cursor has not handed on yet to the trace, one write per chunk received;
3. after each chunk, if ``TraceSink.position()`` says every byte is in the trace, offer
   (container, stamp, lines at that stamp, trace offset, crc) to the checkpoint tracker;
4. when the stream ends: if the container has terminated (the watch says so, or a direct read
   does), write an unfinished last line and stop; otherwise the stream dropped: forget the
   unfinished line and go back to 1 with ``sinceTime`` (one-second precision: the cursor drops
   what was already written, see ``_logparse.py``). Network errors are retried with a short
   backoff; a pod that is gone ends the read.

The bytes go to the trace exactly as the container wrote them: the scripts print their own
section markers and ``$ command`` lines, so a trace regenerated from the same log is the same.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from typing import Final

from skyrunner.errors import KubernetesApiError
from skyrunner.executors.base import TraceWriter
from skyrunner.executors.kubernetes._checkpoint import Checkpoint, CheckpointTracker, PositionedTrace
from skyrunner.executors.kubernetes._logparse import LineSplitter, LogCursor, LogRecord
from skyrunner.executors.kubernetes.pods import PodApi
from skyrunner.executors.kubernetes.watch import PodView

__all__ = ["LogFollower"]

log = logging.getLogger(__name__)

TERMINATION_WAIT_S: Final = 2.0
RETRY_START_S: Final = 0.2
RETRY_MAX_S: Final = 5.0


class LogFollower:
    """Streams one container's log into the trace, resuming after dropped streams."""

    def __init__(
        self,
        api: PodApi,
        view: PodView,
        container: str,
        trace: TraceWriter,
        *,
        cursor: LogCursor | None = None,
        tracker: CheckpointTracker | None = None,
    ) -> None:
        self._api = api
        self._view = view
        self._container = container
        self._trace = trace
        self._positioned = trace if isinstance(trace, PositionedTrace) else None
        self.cursor = cursor or LogCursor()
        self._tracker = tracker

    async def run(self) -> None:
        """Write the container's log to the trace until the container has ended."""
        retry = RETRY_START_S
        while True:
            splitter = LineSplitter()
            since = self.cursor.resume()
            try:
                async for chunk in self._api.follow_log(self._view.namespace, self._view.name, self._container, since):
                    self._write(splitter.feed(chunk))
                    retry = RETRY_START_S
            except KubernetesApiError as exc:
                if await self._ended_without_log(exc):
                    return
                log.info("log stream of %s/%s dropped, resuming: %s", self._view.name, self._container, exc)
                splitter.discard()
                await self._view.wait_gone(retry * random.uniform(0.8, 1.2))
                retry = min(retry * 2, RETRY_MAX_S)
                continue
            if await self._terminated():
                self._write(splitter.finish())
                return
            log.info("log stream of %s/%s ended early, resuming", self._view.name, self._container)
            splitter.discard()

    def _write(self, records: Iterable[LogRecord]) -> None:
        accepted = [r.data for r in records if self.cursor.accept(r.stamp)]
        if not accepted:
            return
        self._trace.write(b"".join(accepted))
        if self._tracker is None or self._positioned is None:
            return
        position = self._positioned.position()
        if position is not None:
            offset, crc = position
            cursor = self.cursor
            self._tracker.offer(Checkpoint(self._container, cursor.last, cursor.at_last, offset, crc))

    async def _terminated(self) -> bool:
        """Whether the container has ended (or the pod is gone): wait briefly for the watch."""
        if await self._view.wait_container_ended(self._container, TERMINATION_WAIT_S):
            return True
        await self._view.refresh()  # the watch may lag behind the log
        return self._view.container_ended(self._container)  # not known to have ended: read on (the cursor dedupes)

    async def _ended_without_log(self, exc: KubernetesApiError) -> bool:
        """Whether a failed read means there is nothing (more) to read."""
        if exc.code == 404:
            self._view.mark_gone()
            return True
        if exc.code == 400:
            # "container ... is terminated" (never ran) or the pod is not there any more
            await self._view.refresh()
            return bool(await self._terminated())
        return self._view.gone
