"""Reading a container log served with ``timestamps=true``: lines, stamps and the resume rule.

Pure: no I/O. The kubelet prefixes every log line with its arrival time in RFC3339Nano and one
space (``2026-11-27T05:18:50.123456789Z hello``); a line longer than the runtime's record size
keeps one prefix (the kubelet adds none to continuation records). This module owns:

* :func:`parse_timestamp` / :func:`render_timestamp` / :func:`render_since_time`: the stamps as
  integer nanoseconds since the epoch, and the whole-second ``sinceTime`` the API accepts;
* :class:`LineSplitter`: bytes as they arrive -> complete ``(stamp, line)`` records; a last
  line without a newline is released only when the stream ended with the container; the stamps
  older kubelets put inside a long line (one per runtime record) are taken out;
* :class:`LogCursor`: which records were already handed on. ``sinceTime`` has one-second
  precision, so a resumed read repeats the records of that second: a record older than the
  last one seen is dropped, and of the records stamped exactly like the last one seen, as
  many as were seen are dropped. No gap, no duplicate, even when two lines share a stamp.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

__all__ = ["LineSplitter", "LogCursor", "LogRecord", "parse_timestamp", "render_since_time", "render_timestamp"]

NS: Final = 1_000_000_000
RECORD_UNIT: Final = 4096
"""Runtimes split long lines into records of a multiple of this (containerd: 16 KiB)."""
_STAMP = re.compile(rb"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d\d):(\d\d))")


def parse_timestamp(text: bytes) -> int | None:
    """Return an RFC3339(Nano) stamp as nanoseconds since the epoch, or None if it is not one."""
    match = _STAMP.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match[i]) for i in range(1, 7))
    try:
        seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
        datetime(year, month, day, hour, minute, second)  # rejects Feb 30 and friends
    except ValueError:
        return None
    fraction = match[7] or b""
    nanos = int(fraction.ljust(9, b"0")) if fraction else 0
    if match[9]:
        offset = (int(match[10]) * 60 + int(match[11])) * 60
        seconds -= offset if match[9] == b"+" else -offset
    return seconds * NS + nanos


def render_timestamp(stamp_ns: int) -> str:
    """Render nanoseconds since the epoch as RFC3339Nano with nine digits (the kubelet's form)."""
    seconds, nanos = divmod(stamp_ns, NS)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def render_since_time(stamp_ns: int) -> str:
    """The ``sinceTime`` to resume at ``stamp_ns``: RFC3339, rounded down to the second."""
    return datetime.fromtimestamp(stamp_ns // NS, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One log line as served: its stamp (None when it had no valid prefix) and its bytes."""

    stamp: int | None
    data: bytes


class LineSplitter:
    """Turn a timestamped log stream into records; keeps the unfinished last line."""

    def __init__(self) -> None:
        self._pending = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an unfinished line held back."""
        return len(self._pending)

    def feed(self, chunk: bytes) -> Iterator[LogRecord]:
        """Yield every line completed by ``chunk``."""
        self._pending += chunk
        start = 0
        while (end := self._pending.find(b"\n", start)) >= 0:
            yield _record(bytes(self._pending[start : end + 1]))
            start = end + 1
        del self._pending[:start]

    def finish(self) -> Iterator[LogRecord]:
        """Yield the last line if it had no newline (the stream ended with the container)."""
        if self._pending:
            yield _record(bytes(self._pending))
        self._pending.clear()

    def discard(self) -> None:
        """Forget an unfinished line (the stream dropped; it will be read again)."""
        self._pending.clear()


def _record(line: bytes) -> LogRecord:
    stamp_text, space, rest = line.partition(b" ")
    stamp = parse_timestamp(stamp_text) if space else None
    if stamp is None:
        return LogRecord(None, line)
    return LogRecord(stamp, _strip_record_stamps(rest) if len(rest) > RECORD_UNIT else rest)


def _strip_record_stamps(content: bytes) -> bytes:
    """Remove the stamps a kubelet put before each continuation record of a long line.

    Kubelets before the fix of kubernetes#77603 (backported to 1.23/1.24 patch releases late
    2022; the test API server still does it) prefix every record of a line the runtime split
    (containerd: at 16 KiB), so stamps appear inside the line, at multiples of the record size.
    Only a stamp and a space exactly at a multiple of 4 KiB of the line's content is taken out.
    """
    out, pos = bytearray(), 0
    while len(content) - pos > RECORD_UNIT:
        out += content[pos : pos + RECORD_UNIT]
        pos += RECORD_UNIT
        match = _STAMP.match(content, pos)
        spaced = match is not None and content[match.end() : match.end() + 1] == b" "
        if match is not None and spaced and parse_timestamp(match[0]) is not None:
            pos = match.end() + 1
    out += content[pos:]
    return bytes(out)


@dataclass(slots=True)
class LogCursor:
    """Where a container's log stands: the last stamp handed on and how many records had it.

    ``skip`` counts the records stamped ``last`` still to be dropped after a resume.
    """

    last: int | None = None
    at_last: int = 0
    skip: int = 0

    def accept(self, stamp: int | None) -> bool:
        """Return True when a record with ``stamp`` is new, and count it."""
        if stamp is None:
            # no prefix: cannot be placed, so it is counted with the previous record
            if self.last is not None and self.skip > 0:
                self.skip -= 1
                return False
            self.at_last += 1
            return True
        if self.last is None or stamp > self.last:
            self.last, self.at_last, self.skip = stamp, 1, 0
            return True
        if stamp < self.last:
            return False
        if self.skip > 0:
            self.skip -= 1
            return False
        self.at_last += 1
        return True

    def resume(self) -> str | None:
        """Prepare for a new read; return its ``sinceTime`` (None: from the start)."""
        if self.last is None:
            return None
        self.skip = self.at_last
        return render_since_time(self.last)
