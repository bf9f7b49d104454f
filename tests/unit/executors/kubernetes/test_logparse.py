"""Log line parsing and the resume rule: no gap and no duplicate, whatever the drops."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skyrunner.executors.kubernetes._logparse import (
    NS,
    LineSplitter,
    LogCursor,
    LogRecord,
    parse_timestamp,
    render_since_time,
    render_timestamp,
)

BASE = 1_796_000_000 * NS  # late 2026


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"2026-11-27T05:18:50.123456789Z", 1795756730 * NS + 123456789),
        (b"2026-11-27T05:18:50Z", 1795756730 * NS),
        (b"2026-11-27T05:18:50.5Z", 1795756730 * NS + 500_000_000),
        (b"2026-11-27T07:18:50.000000001+02:00", 1795756730 * NS + 1),
        (b"2026-11-27T03:18:50-02:00", 1795756730 * NS),
        (b"2026-02-30T00:00:00Z", None),
        (b"2026-11-27 05:18:50Z", None),
        (b"not a time", None),
        (b"", None),
    ],
    ids=["nano", "seconds", "short-fraction", "plus-offset", "minus-offset", "feb-30", "space", "junk", "empty"],
)
def test_parse_timestamp(text: bytes, expected: int | None) -> None:
    assert parse_timestamp(text) == expected


def test_render_round_trips_and_since_time_rounds_down() -> None:
    stamp = 1795756730 * NS + 999_999_999
    assert render_timestamp(stamp) == "2026-11-27T05:18:50.999999999Z"
    assert parse_timestamp(render_timestamp(stamp).encode()) == stamp
    assert render_since_time(stamp) == "2026-11-27T05:18:50Z"


def _served(records: list[tuple[int, bytes]]) -> bytes:
    return b"".join(render_timestamp(stamp).encode() + b" " + data for stamp, data in records)


def test_splitter_strips_prefixes_and_holds_the_unfinished_line() -> None:
    splitter = LineSplitter()
    wire = _served([(BASE, b"one\n"), (BASE + 1, b"two\n"), (BASE + 2, b"thr")])
    first = list(splitter.feed(wire[:40]))
    rest = list(splitter.feed(wire[40:]))
    assert [r.data for r in first + rest] == [b"one\n", b"two\n"]
    assert splitter.pending == len(render_timestamp(BASE)) + 1 + 3
    assert list(splitter.finish()) == [LogRecord(BASE + 2, b"thr")]


def test_a_line_without_prefix_is_kept_whole() -> None:
    assert list(LineSplitter().feed(b"no stamp here\n")) == [LogRecord(None, b"no stamp here\n")]


def test_discard_forgets_the_partial_line() -> None:
    splitter = LineSplitter()
    list(splitter.feed(_served([(BASE, b"half")])))
    splitter.discard()
    assert splitter.pending == 0
    assert list(splitter.finish()) == []


@given(st.lists(st.integers(0, 40), min_size=1, max_size=30), st.data())
def test_any_split_of_the_stream_gives_the_same_records(gaps: list[int], data: st.DataObject) -> None:
    stamps = [BASE + sum(gaps[: i + 1]) * 7_000_000 for i in range(len(gaps))]
    records = [(stamp, f"line {i}\n".encode()) for i, stamp in enumerate(stamps)]
    wire = _served(records)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=8)))
    splitter, out, last = LineSplitter(), [], 0
    for cut in [*cuts, len(wire)]:
        out += list(splitter.feed(wire[last:cut]))
        last = cut
    assert [(r.stamp, r.data) for r in out] == records


def _server_read(records: list[tuple[int, bytes]], since: str | None) -> list[tuple[int, bytes]]:
    """What the API server sends: records at or after ``since`` (whole seconds)."""
    if since is None:
        return list(records)
    bound = parse_timestamp(since.encode())
    assert bound is not None
    return [r for r in records if r[0] >= bound]


@given(st.lists(st.integers(0, 3), min_size=1, max_size=40), st.lists(st.integers(0, 40), max_size=5))
def test_resuming_after_drops_gives_every_record_once(steps: list[int], drops: list[int]) -> None:
    # stamps that often repeat (step 0) and often share a second: the hard cases
    stamps, stamp = [], BASE + 999_000_000
    for step in steps:
        stamp += step * 300_000_000
        stamps.append(stamp)
    records = [(s, f"record {i}\n".encode()) for i, s in enumerate(stamps)]
    cursor, written = LogCursor(), []
    for drop_after in [*drops, len(records) + 1]:
        served = _server_read(records, cursor.resume())
        for stamp_, data in served[:drop_after]:
            if cursor.accept(stamp_):
                written.append(data)
    assert written == [data for _, data in records]


def test_a_cursor_from_a_checkpoint_skips_what_was_written() -> None:
    records = [(BASE, b"a\n"), (BASE, b"b\n"), (BASE + 5, b"c\n"), (BASE + 5, b"d\n"), (BASE + NS, b"e\n")]
    cursor = LogCursor(last=BASE + 5, at_last=1)  # "a", "b", "c" are in the trace
    since = cursor.resume()
    assert since == render_since_time(BASE)
    assert [d for s, d in _server_read(records, since) if cursor.accept(s)] == [b"d\n", b"e\n"]


def test_records_without_stamp_count_with_the_previous_one() -> None:
    cursor = LogCursor()
    assert cursor.accept(BASE)
    assert cursor.accept(None)
    cursor.resume()
    assert not cursor.accept(BASE)
    assert not cursor.accept(None)
    assert cursor.accept(None)


def test_stamps_inside_a_long_line_are_removed_at_record_boundaries() -> None:
    line = b"x" * 16384 + b"y" * 16384 + b"z" * 10 + b"\n"
    wire = (
        render_timestamp(BASE).encode() + b" " + line[:16384]
        + render_timestamp(BASE + 1).encode() + b" " + line[16384:32768]
        + render_timestamp(BASE + 2).encode() + b" " + line[32768:]
    )  # fmt: skip
    assert list(LineSplitter().feed(wire)) == [LogRecord(BASE, line)]


@pytest.mark.parametrize(
    "content",
    [
        b"a" * 4095 + render_timestamp(BASE).encode() + b" not at a boundary\n",
        b"a" * 4096 + render_timestamp(BASE).encode() + b"no space after it\n",
        render_timestamp(BASE).encode() + b" an application's own stamp\n",
    ],
    ids=["off-boundary", "no-space", "line-start"],
)
def test_other_stamps_in_a_line_are_the_programs_own(content: bytes) -> None:
    wire = render_timestamp(BASE).encode() + b" " + content
    assert list(LineSplitter().feed(wire)) == [LogRecord(BASE, content)]
