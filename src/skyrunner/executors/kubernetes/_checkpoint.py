"""Trace checkpoints: where a job's trace stands in its pod's log, kept on the pod.

Pure: no I/O. A :class:`Checkpoint` says "the trace is ``offset`` bytes long (CRC-32 ``crc``)
once container ``container`` has been read up to and including the ``lines_at_time`` records
stamped ``time``" (``time`` None: nothing of that container read yet). Everything in the trace
after it comes from the pod's own log, so a runner that restarts resumes the TraceSink at
``offset``/``crc`` and re-reads the log from there (see ``adoption.py``).

:class:`CheckpointTracker` keeps the candidates the log follower offers (only where
``TraceSink.position()`` said every byte is in the trace) and picks the newest one GitLab has
already acknowledged (``TraceSink.sent``): resuming at an offset GitLab does not have would
leave a gap. :func:`render_checkpoint` / :func:`parse_checkpoint` are the annotation's form,
a small JSON object with a version.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

from skyrunner.executors.kubernetes._logparse import parse_timestamp, render_timestamp

__all__ = ["Checkpoint", "CheckpointTracker", "PositionedTrace", "parse_checkpoint", "render_checkpoint"]

VERSION: Final = 1
MAX_CANDIDATES: Final = 512


@runtime_checkable
class PositionedTrace(Protocol):
    """A trace that can say where it stands (``TraceSink``)."""

    def position(self) -> tuple[int, int] | None: ...

    @property
    def sent(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A point of the trace that can be regenerated from the pod's log."""

    container: str
    time: int | None
    """Stamp (ns since the epoch) of the last record read; None: the container's start."""
    lines_at_time: int
    offset: int
    crc: int


def render_checkpoint(point: Checkpoint) -> str:
    """Render ``point`` as the annotation's JSON text."""
    body = {
        "v": VERSION,
        "container": point.container,
        "time": None if point.time is None else render_timestamp(point.time),
        "lines_at_time": point.lines_at_time,
        "offset": point.offset,
        "crc": f"{point.crc:08x}",
    }
    return json.dumps(body, separators=(",", ":"))


def parse_checkpoint(text: str) -> Checkpoint | None:
    """Read an annotation written by :func:`render_checkpoint`; None when it is not one."""
    try:
        body = json.loads(text)
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("v") != VERSION:
        return None
    container, stamp, lines, offset, crc = (
        body.get(k) for k in ("container", "time", "lines_at_time", "offset", "crc")
    )
    if not isinstance(container, str) or not container:
        return None
    if not _count(lines) or not _count(offset) or not isinstance(crc, str):
        return None
    assert isinstance(lines, int) and isinstance(offset, int)
    time = None
    if stamp is not None:
        time = parse_timestamp(stamp.encode()) if isinstance(stamp, str) else None
        if time is None:
            return None
    try:
        crc_value = int(crc, 16)
    except ValueError:
        return None
    if not 0 <= crc_value <= 0xFFFFFFFF:
        return None
    return Checkpoint(container, time, lines, offset, crc_value)


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class CheckpointTracker:
    """Candidates offered while the log is read, and the newest one GitLab acknowledged."""

    def __init__(self, initial: Checkpoint | None = None) -> None:
        self._candidates: deque[Checkpoint] = deque()
        self._best = initial
        self._written = initial

    def offer(self, point: Checkpoint) -> None:
        """Add a candidate (offsets only grow)."""
        if self._candidates and self._candidates[-1].offset > point.offset:
            self._candidates.clear()  # cannot happen with one trace; never pick a stale point
        if self._candidates and self._candidates[-1].offset == point.offset:
            self._candidates[-1] = point  # same bytes, later log position: resume later
        else:
            self._candidates.append(point)
        if len(self._candidates) > MAX_CANDIDATES:
            self._candidates.popleft()

    def acknowledged(self, sent: int) -> Checkpoint | None:
        """Return the newest candidate at or below ``sent`` bytes (older ones are dropped)."""
        while self._candidates and self._candidates[0].offset <= sent:
            self._best = self._candidates.popleft()
        return self._best

    def due(self, sent: int) -> Checkpoint | None:
        """Return the checkpoint to write now, or None when the pod already has it."""
        best = self.acknowledged(sent)
        if best is None or best == self._written:
            return None
        return best

    def written(self, point: Checkpoint) -> None:
        """Remember that ``point`` is on the pod."""
        self._written = point

    @property
    def last_written(self) -> Checkpoint | None:
        """The checkpoint the pod has (an adopted executor starts with its own)."""
        return self._written
