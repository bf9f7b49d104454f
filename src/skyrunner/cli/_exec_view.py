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

rich costs a twentieth of a second to import and render, so it is imported only when used: off a
terminal, :func:`console_for` returns a :class:`PlainConsole`, and tables and lines that rich would
print unchanged (printable ASCII within its 200 columns) are written directly; anything else goes
through rich, as before.
"""

from __future__ import annotations

import os
import re
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TextIO

from skyrunner.pipeline.model import Pipeline
from skyrunner.pipeline.schedule import JobStatus

if TYPE_CHECKING:  # the scheduler brings the whole runner: --list does without it
    from rich.console import Console, RenderableType

    from skyrunner.pipeline.scheduler import JobEvent, PipelineResult

__all__ = ["LiveView", "PlainConsole", "PlainView", "console_for", "render_list", "render_summary"]

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


_PLAIN_WIDTH: Final = 200
_PRINTABLE: Final = re.compile(r"[ -~]*")  # what rich prints as it is: no tabs, controls, wide characters


class PlainConsole:
    """Off a terminal, rich's ``Console(width=200, no_color=True)`` for :func:`render_list` and
    :func:`render_summary`: it writes what that console would, and lends it (:meth:`rich`) the rest.
    """

    is_terminal: Final = False

    def __init__(self, stream: TextIO) -> None:
        self.file = stream
        self._rich: Console | None = None

    def rich(self) -> Console:
        if self._rich is None:
            from rich.console import Console

            self._rich = Console(file=self.file, width=_PLAIN_WIDTH, no_color=True, highlight=False, emoji=False)
        return self._rich

    def write_table(self, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> bool:
        """Write a borderless table as rich lays it out (cells padded, two spaces apart), when every
        cell is printable ASCII, no header has markup and the table fits the width; return whether it did.
        """
        cells = [*headers, *(cell for row in rows for cell in row)]
        if not all(_PRINTABLE.fullmatch(cell) and cell == cell.strip() for cell in cells):
            return False
        if any("[" in header for header in headers):  # rich reads headers as markup
            return False
        widths = [max(len(row[i]) for row in (headers, *rows)) for i in range(len(headers))]
        if min(widths) == 0 or sum(widths) + 2 * (len(widths) - 1) > _PLAIN_WIDTH:
            return False
        for row in (headers, *rows):
            self.file.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + "\n")
        self.file.flush()
        return True

    def write_line(self, line: str) -> bool:
        """Write ``line`` when rich would print it unchanged; return whether it did."""
        if len(line) > _PLAIN_WIDTH or not _PRINTABLE.fullmatch(line) or line != line.rstrip():
            return False
        self.file.write(f"{line}\n")
        self.file.flush()
        return True


def console_for(stream: TextIO) -> Console | PlainConsole:
    """A console on ``stream``: colours on a terminal, plain wide text elsewhere.

    Off a terminal, unless the environment tells rich to treat ``stream`` as one (``TTY_COMPATIBLE``,
    ``FORCE_COLOR``), a :class:`PlainConsole`: rich is not imported for it.
    """
    if not stream.isatty() and not _rich_sees_a_terminal():
        return PlainConsole(stream)
    from rich.console import Console

    if stream.isatty():
        return Console(file=stream, highlight=False)
    return Console(file=stream, width=_PLAIN_WIDTH, no_color=True, highlight=False, emoji=False)


def _rich_sees_a_terminal() -> bool:
    """Whether rich's ``Console.is_terminal`` would say yes whatever the stream (its environment rules)."""
    compatible = os.environ.get("TTY_COMPATIBLE", "")
    if compatible in ("0", "1"):
        return compatible == "1"
    return bool(os.environ.get("FORCE_COLOR"))


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
        from rich.live import Live

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
        from rich import box
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

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


def render_list(console: Console | PlainConsole, pipeline: Pipeline) -> None:
    """Print the pipeline's stages and jobs (when, needs, allow_failure) without running it."""
    headers = ("stage", "job", "when", "needs", "allow_failure")
    rows = []
    for stage in pipeline.stages:
        for job in (j for j in pipeline.jobs if j.stage == stage):
            needs = "-" if job.needs is None else ("[]" if not job.needs else ", ".join(n.job for n in job.needs))
            allowed = "true" if job.allow_failure else (f"exit codes {list(job.exit_codes)}" if job.exit_codes else "")
            rows.append((stage, job.name, job.when.value, needs, allowed))
    _print_table(console, headers, [[(cell, "") for cell in row] for row in rows])


def render_summary(console: Console | PlainConsole, result: PipelineResult, elapsed_s: float) -> None:
    """Print one line per job, then the pipeline's verdict and where the logs are."""
    headers = ("job", "stage", "status", "duration", "details")
    rows = []
    for job in result.jobs:
        details = [job.failure_reason or ""]
        if job.exit_code is not None:
            details.append(f"exit code {job.exit_code}")
        if job.attempts > 1:
            details.append(f"{job.attempts} attempts")
        status = (status_word(job.status, job.allowed_failure), _STYLE[job.status][0])
        duration = _duration(job.duration_s) if job.attempts else ""
        rows.append([(job.name, ""), (job.stage, ""), status, (duration, ""), (", ".join(d for d in details if d), "")])
    verdict, style = ("failed", "bold red") if result.failed else ("passed", "bold green")
    heading, tail, logs = f"pipeline #{result.pipeline_id} ", f" in {_duration(elapsed_s)}", f"logs: {result.logs_dir}"
    _print_table(console, headers, rows, duration_column=3)
    _print_line(console, (heading, ""), (verdict, style), (tail, ""))
    _print_line(console, (logs, ""))


def _rich_console(console: Console | PlainConsole) -> Console:
    return console.rich() if isinstance(console, PlainConsole) else console


def _print_line(console: Console | PlainConsole, *parts: tuple[str, str]) -> None:
    """Print one line of (text, style) parts: directly when a PlainConsole can, else with rich."""
    if isinstance(console, PlainConsole) and console.write_line("".join(text for text, _ in parts)):
        return
    from rich.text import Text

    _rich_console(console).print(Text.assemble(*parts))


def _print_table(
    console: Console | PlainConsole,
    headers: Sequence[str],
    rows: Sequence[Sequence[tuple[str, str]]],
    duration_column: int | None = None,
) -> None:
    """Print a table of (text, style) cells: directly when a PlainConsole can, else with rich."""
    if isinstance(console, PlainConsole) and console.write_table(headers, [[text for text, _ in row] for row in rows]):
        return
    _rich_table(console, headers, rows, duration_column)


def _rich_table(
    console: Console | PlainConsole,
    headers: Sequence[str],
    rows: Sequence[Sequence[tuple[str, str]]],
    duration_column: int | None = None,
) -> None:
    """Print a table with rich: ``rows`` of (text, style) cells; the duration column's are markup."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    rich = _rich_console(console)
    table = Table(box=box.SIMPLE_HEAD if rich.is_terminal else None, expand=False, pad_edge=False)
    for column in headers:
        table.add_column(column)
    for row in rows:
        cells = (text if i == duration_column else Text(text, style=style) for i, (text, style) in enumerate(row))
        table.add_row(*cells)
    rich.print(table)
