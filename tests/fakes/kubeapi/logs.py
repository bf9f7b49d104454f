"""Container logs as the kubelet keeps and serves them (``pkg/kubelet/kuberuntime/logs``).

Owns :class:`ContainerLog` (the records of one container, each stamped with its arrival time),
the pump that turns a process's output into records, and the reading rules of ``ReadLogs``:

* a record is one line with its ``\\n``; a line longer than 16 KiB is split into partial
  records (no ``\\n``), each with its own stamp, as the CRI log writer splits them;
  output without a trailing newline is held until the newline comes or the stream ends,
  then written as a last record without one;
* ``sinceTime``/``sinceSeconds`` keep records stamped at or after the bound;
* ``tailLines`` starts that many records from the end; ``limitBytes`` cuts the output
  (prefix included) at that many bytes;
* ``timestamps=true`` prefixes each record with ``RFC3339NanoFixed`` and one space;
* ``follow=true`` streams until the container has exited and every record is sent.

It also owns :class:`DropRules`, the test hook that cuts following streams mid-way.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from .timefmt import rfc3339_nano_fixed

__all__ = ["ContainerLog", "DropRules", "LogOptions", "pump", "render"]

MAX_RECORD = 16 * 1024  # the CRI's maximum log line size before it splits a line


@dataclass(frozen=True, slots=True)
class LogOptions:
    since_ns: int | None = None
    tail: int | None = None
    limit_bytes: int | None = None
    timestamps: bool = False


class ContainerLog:
    """The log of one container instance: (stamp ns, bytes) records and an end marker."""

    def __init__(self) -> None:
        self.records: list[tuple[int, bytes]] = []
        self.closed = False
        self._changed = asyncio.Event()

    def append(self, stamp_ns: int, data: bytes) -> None:
        self.records.append((stamp_ns, data))
        self.notify()

    def close(self) -> None:
        self.closed = True
        self.notify()

    def notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def changed(self) -> asyncio.Event:
        """Return the event set by the next record, the end, or a :meth:`notify`."""
        return self._changed

    def start_index(self, options: LogOptions) -> int:
        """Return the first record a read with ``options`` sends."""
        start = 0 if options.tail is None else max(len(self.records) - options.tail, 0)
        if options.since_ns is not None:
            while start < len(self.records) and self.records[start][0] < options.since_ns:
                start += 1
        return start

    def text(self) -> bytes:
        return b"".join(data for _, data in self.records)


def render(record: tuple[int, bytes], timestamps: bool) -> bytes:
    stamp, data = record
    return (rfc3339_nano_fixed(stamp).encode() + b" " + data) if timestamps else data


async def pump(reader: asyncio.StreamReader, log: ContainerLog) -> None:
    """Read a process's output to EOF into ``log`` (the log is not closed here)."""
    pending = b""
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            break
        pending += chunk
        while True:
            cut = pending.find(b"\n")
            if cut < 0 and len(pending) < MAX_RECORD:
                break
            end = cut + 1 if 0 <= cut < MAX_RECORD else MAX_RECORD
            log.append(time.time_ns(), pending[:end])
            pending = pending[end:]
    if pending:
        log.append(time.time_ns(), pending)


@dataclass(slots=True)
class _Rule:
    pod: str | None
    after_bytes: int
    count: int


@dataclass(slots=True)
class DropRules:
    """Armed cuts: the next ``count`` following streams (of ``pod``) die after ``after_bytes``."""

    rules: list[_Rule] = field(default_factory=list)

    def arm(self, pod: str | None, after_bytes: int, count: int) -> None:
        self.rules.append(_Rule(pod, max(after_bytes, 0), count))

    def cut(self, pod: str, sent: int, size: int) -> int | None:
        """Return how many of the next ``size`` bytes to send before dropping, or None."""
        for rule in self.rules:
            if rule.count > 0 and rule.pod in (None, pod) and sent + size >= rule.after_bytes:
                rule.count -= 1
                if rule.count == 0:
                    self.rules.remove(rule)
                return max(rule.after_bytes - sent, 0)
        return None
