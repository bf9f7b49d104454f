"""What ``skyrunner exec`` shows: the pipeline list, the live progress, the summary.

Two observers of the scheduler (``PipelineObserver``):

* :class:`PlainView` when stdout is not a terminal: one ``[job name] ...`` line per state change
  and per log line (every job's, or only the followed job's), colours and section markers
  stripped, so the output greps and diffs well;
* :class:`LiveView` on a terminal: a rich ``Live`` display with one line per job (state, duration,
  the running ones' clock ticking) and, below, the tail of one job's log: the followed job, else
  the job that started last.

Both end with :func:`render_summary`. Job output is shown as the trace has it after masking; it
never goes to the runner log.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TextIO

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from skyrunner.pipeline.model import Pipeline
from skyrunner.pipeline.schedule import JobStatus

if TYPE_CHECKING:  # the scheduler brings the whole runner: --list does without it
    from skyrunner.pipeline.scheduler import JobEvent, PipelineResult

__all__ = ["LiveView", "PlainView", "console_for", "render_list", "render_summary"]

_SECTION: Final = re.compile(rb"section_(?:start|end):\d+:[^\r\n]*\r\x1b\[0K")
_ANSI: Final = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_TAIL_LINES: Final = 400
_STYLE: Final = {
    JobStatus.CREATED: ("dim", "created"),
    JobStatus.PENDING: ("dim", "pending"),
    JobStatus.RUNNING: ("cyan", "running"),
    JobStatus.SUCCESS: ("green", "passed"),
    JobStatus.FAILED: ("red", "failed"),
    JobStatus.CANCELED: ("magenta", "canceled"),
    JobStatus.SKIPPED: ("dim", "skipped"),
    JobStatus.MANUAL: ("yellow", "manual"),
}


def console_for(stream: TextIO) -> Console:
    """A console on ``stream``: colours on a terminal, plain wide text elsewhere."""
    if stream.isatty():
        return Console(file=stream, highlight=False)
    return Console(file=stream, width=200, no_color=True, highlight=False, emoji=False)


def status_word(status: JobStatus, allowed_failure: bool = False) -> str:
    word = _STYLE[status][1]
    return f"{word} (allowed)" if allowed_failure else word


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"


def _lines(buffer: bytearray, data: bytes) -> list[str]:
    """Append ``data`` and return the complete lines, without section markers; keep the rest."""
    buffer += data
    cut = buffer.rfind(b"\n")
    if cut < 0:
        return []
    complete, rest = bytes(buffer[:cut]), bytes(buffer[cut + 1 :])
    buffer[:] = rest
    text = _SECTION.sub(b"", complete).decode("utf-8", errors="replace")
    return [line.rsplit("\r", 1)[-1] for line in text.split("\n")]


class PlainView:
    """Prefixed lines for logs and pipes; ``follow`` limits job output to one job."""

    def __init__(self, out: TextIO, follow: str | None = None) -> None:
        self._out = out
        self._follow = follow
        self._buffers: dict[str, bytearray] = {}

    def job_changed(self, event: JobEvent) -> None:
        if event.status in (JobStatus.CREATED, JobStatus.PENDING):
            return
        parts = [f"[{event.name}]", status_word(event.status, event.allowed_failure)]
        if event.status is JobStatus.RUNNING:
            parts.append(f"(job {event.job_id}" + (f", attempt {event.attempt})" if event.attempt > 1 else ")"))
        if event.duration_s is not None:
            parts.append(f"in {_duration(event.duration_s)}")
        if event.failure_reason:
            parts.append(f"({event.failure_reason})")
        if event.note:
            parts.append(f"- {event.note}")
        if event.status is not JobStatus.RUNNING:
            self._flush(event.name)
        self._write(" ".join(parts))

    def job_output(self, name: str, data: bytes) -> None:
        if self._follow is not None and name != self._follow:
            return
        for line in _lines(self._buffers.setdefault(name, bytearray()), data):
            self._write(f"[{name}] {_ANSI.sub('', line)}".rstrip())

    def note(self, text: str) -> None:
        self._write(f"skyrunner: {text}")

    def _flush(self, name: str) -> None:
        rest = self._buffers.pop(name, None)
        if rest and (self._follow is None or name == self._follow):
            for line in _lines(rest, b"\n"):
                self._write(f"[{name}] {_ANSI.sub('', line)}".rstrip())

    def _write(self, line: str) -> None:
        self._out.write(line + "\n")
        self._out.flush()


@dataclass
class _Row:
    stage: str
    status: JobStatus = JobStatus.CREATED
    started: float | None = None
    duration_s: float | None = None
    allowed_failure: bool = False
    detail: str = ""


class LiveView:
    """A rich Live display: a line per job, and the log tail of the followed job below."""

    def __init__(self, console: Console, pipeline: Pipeline, follow: str | None = None) -> None:
        self._console = console
        self._rows = {job.name: _Row(job.stage) for job in pipeline.jobs}
        self._follow = follow
        self._latest: str | None = None
        self._tails: dict[str, deque[str]] = {}
        self._buffers: dict[str, bytearray] = {}
        self._notes: list[str] = []
        self._live = Live(console=console, get_renderable=self._render, refresh_per_second=8, transient=True)

    @contextmanager
    def running(self) -> Iterator[None]:
        """Show the live display (stderr, hence logging, is routed above it) while inside."""
        with self._live:
            yield

    def job_changed(self, event: JobEvent) -> None:
        row = self._rows[event.name]
        row.status, row.allowed_failure = event.status, event.allowed_failure
        if event.status is JobStatus.RUNNING:
            row.started, row.duration_s = time.monotonic(), None
            self._latest = event.name
        elif event.duration_s is not None:
            row.duration_s = event.duration_s
        row.detail = " ".join(x for x in (event.failure_reason or "", event.note) if x)

    def job_output(self, name: str, data: bytes) -> None:
        if self._follow is not None and name != self._follow:
            return  # only the followed job's tail is ever shown (_shown)
        tail = self._tails.setdefault(name, deque(maxlen=_TAIL_LINES))
        tail.extend(_lines(self._buffers.setdefault(name, bytearray()), data))

    def note(self, text: str) -> None:
        self._notes.append(text)

    def _render(self) -> RenderableType:
        table = Table(box=None, show_header=False, padding=(0, 1), expand=False)
        now = time.monotonic()
        for name, row in self._rows.items():
            style, _ = _STYLE[row.status]
            running = row.status is JobStatus.RUNNING and row.started is not None
            seconds = now - row.started if running and row.started is not None else row.duration_s
            table.add_row(
                Text(status_word(row.status, row.allowed_failure), style=style),
                Text(name, style="bold" if name == self._shown() else ""),
                Text(row.stage, style="dim"),
                _duration(seconds),
                Text(row.detail, style="dim"),
            )
        parts: list[RenderableType] = [table]
        shown = self._shown()
        if shown is not None:
            room = max(3, self._console.size.height - len(self._rows) - 4 - len(self._notes))
            lines = list(self._tails.get(shown, ()))[-room:]
            body = Text("\n").join(Text.from_ansi(line) for line in lines) if lines else Text("")
            parts.append(Panel(body, title=f"log of {shown}", title_align="left", box=box.ROUNDED))
        parts.extend(Text(f"skyrunner: {note}", style="yellow") for note in self._notes)
        return Group(*parts)

    def _shown(self) -> str | None:
        return self._follow or self._latest


def render_list(console: Console, pipeline: Pipeline) -> None:
    """Print the pipeline's stages and jobs (when, needs, allow_failure) without running it."""
    table = Table(box=box.SIMPLE_HEAD if console.is_terminal else None, expand=False, pad_edge=False)
    for column in ("stage", "job", "when", "needs", "allow_failure"):
        table.add_column(column)
    for stage in pipeline.stages:
        for job in (j for j in pipeline.jobs if j.stage == stage):
            needs = "-" if job.needs is None else ("[]" if not job.needs else ", ".join(n.job for n in job.needs))
            allowed = "true" if job.allow_failure else (f"exit codes {list(job.exit_codes)}" if job.exit_codes else "")
            table.add_row(*(Text(cell) for cell in (stage, job.name, job.when.value, needs, allowed)))
    console.print(table)


def render_summary(console: Console, result: PipelineResult, elapsed_s: float) -> None:
    """Print one line per job, then the pipeline's verdict and where the logs are."""
    table = Table(box=box.SIMPLE_HEAD if console.is_terminal else None, expand=False, pad_edge=False)
    for column in ("job", "stage", "status", "duration", "details"):
        table.add_column(column)
    for job in result.jobs:
        style, _ = _STYLE[job.status]
        details = [job.failure_reason or ""]
        if job.exit_code is not None:
            details.append(f"exit code {job.exit_code}")
        if job.attempts > 1:
            details.append(f"{job.attempts} attempts")
        table.add_row(
            Text(job.name), Text(job.stage), Text(status_word(job.status, job.allowed_failure), style=style),
            _duration(job.duration_s) if job.attempts else "", Text(", ".join(d for d in details if d)),
        )  # fmt: skip
    console.print(table)
    verdict = Text("failed", style="bold red") if result.failed else Text("passed", style="bold green")
    console.print(Text.assemble(f"pipeline #{result.pipeline_id} ", verdict, f" in {_duration(elapsed_s)}"))
    console.print(Text(f"logs: {result.logs_dir}"))
