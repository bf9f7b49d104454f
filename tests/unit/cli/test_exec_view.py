"""``skyrunner exec``'s output off a terminal: written without rich, it is what rich printed."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table
from rich.text import Text

from skyrunner.cli._exec_view import PlainConsole, console_for, render_summary
from skyrunner.pipeline.schedule import JobStatus
from skyrunner.pipeline.scheduler import JobReport, PipelineResult


def _rich() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, no_color=True, highlight=False, emoji=False), out


def _rich_table(headers: list[str], rows: list[list[str]]) -> str:
    console, out = _rich()
    table = Table(box=None, expand=False, pad_edge=False)
    for header in headers:
        table.add_column(header)
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    console.print(table)
    return out.getvalue()


_CELL = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=50) | st.text(max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 5).flatmap(lambda n: st.tuples(st.lists(_CELL, min_size=n, max_size=n),
                                                      st.lists(st.lists(_CELL, min_size=n, max_size=n), max_size=6))))  # fmt: skip
@example(([r"\["], []))  # markup in a header
def test_a_table_written_without_rich_is_what_rich_prints(table: tuple[list[str], list[list[str]]]) -> None:
    headers, rows = table
    out = io.StringIO()
    if PlainConsole(out).write_table(headers, rows):
        assert out.getvalue() == _rich_table(headers, rows)
    else:
        assert out.getvalue() == ""


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=230) | st.text(max_size=20))
def test_a_line_written_without_rich_is_what_rich_prints(line: str) -> None:
    out = io.StringIO()
    if PlainConsole(out).write_line(line):
        console, expected = _rich()
        console.print(Text(line))
        assert out.getvalue() == expected.getvalue()
    else:
        assert out.getvalue() == ""


def test_wide_tables_and_lines_fall_back_to_rich() -> None:
    assert not PlainConsole(io.StringIO()).write_table(["a", "b"], [["x" * 150, "y" * 60]])
    assert not PlainConsole(io.StringIO()).write_line("z" * 201)
    assert not PlainConsole(io.StringIO()).write_line("tab\there")


@pytest.mark.parametrize("logs", ["/tmp/logs", "/tmp/lögs/" + "x" * 250], ids=["plain", "through-rich"])
def test_the_summary_is_the_same_with_and_without_rich(logs: str) -> None:
    result = PipelineResult(
        7,
        (
            JobReport("build", "build", JobStatus.SUCCESS, 1.25, attempts=1, job_id=1),
            JobReport("test: [a, b]", "test", JobStatus.FAILED, 75.0, "script_failure", 2, True, 2, 2),
            JobReport("deploy", "deploy", JobStatus.MANUAL),
        ),
        Path(logs),
    )
    plain = io.StringIO()
    render_summary(PlainConsole(plain), result, 80.5)
    console, expected = _rich()
    render_summary(console, result, 80.5)
    assert plain.getvalue() == expected.getvalue()
    assert (
        "test: [a, b]  test    failed (allowed)  1m15s     script_failure, exit code 2, 2 attempts" in plain.getvalue()
    )


def test_console_for_a_pipe_is_plain_unless_the_environment_says_terminal(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    with open(tmp_path / "out", "w") as stream:
        assert isinstance(console_for(stream), PlainConsole)
        monkeypatch.setenv("FORCE_COLOR", "1")
        forced = console_for(stream)
        assert isinstance(forced, Console) and forced.is_terminal
        monkeypatch.setenv("TTY_COMPATIBLE", "0")
        assert isinstance(console_for(stream), PlainConsole)
        assert not Console(file=stream).is_terminal  # rich agrees
