"""Checkpoint encoding on the pod, and the choice of the checkpoint GitLab acknowledged."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skyrunner.executors.kubernetes._checkpoint import (
    Checkpoint,
    CheckpointTracker,
    PositionedTrace,
    parse_checkpoint,
    render_checkpoint,
)

STAMP = 1_795_756_730_123_456_789


@given(
    st.sampled_from(["prepare", "build", "helper"]),
    st.one_of(st.none(), st.integers(0, 4_000_000_000 * 10**9)),
    st.integers(0, 10**6),
    st.integers(0, 2**40),
    st.integers(0, 2**32 - 1),
)
def test_render_and_parse_round_trip(container: str, time: int | None, lines: int, offset: int, crc: int) -> None:
    point = Checkpoint(container, time, lines, offset, crc)
    assert parse_checkpoint(render_checkpoint(point)) == point


def test_the_annotation_is_small_readable_json() -> None:
    text = render_checkpoint(Checkpoint("build", STAMP, 2, 4096, 0xDEADBEEF))
    assert json.loads(text) == {
        "v": 1,
        "container": "build",
        "time": "2026-11-27T05:18:50.123456789Z",
        "lines_at_time": 2,
        "offset": 4096,
        "crc": "deadbeef",
    }


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[]",
        '{"v":2,"container":"build","time":null,"lines_at_time":0,"offset":1,"crc":"00"}',
        '{"v":1,"container":"","time":null,"lines_at_time":0,"offset":1,"crc":"00"}',
        '{"v":1,"container":"build","time":"yesterday","lines_at_time":0,"offset":1,"crc":"00"}',
        '{"v":1,"container":"build","time":null,"lines_at_time":-1,"offset":1,"crc":"00"}',
        '{"v":1,"container":"build","time":null,"lines_at_time":0,"offset":true,"crc":"00"}',
        '{"v":1,"container":"build","time":null,"lines_at_time":0,"offset":1,"crc":"xyz"}',
        '{"v":1,"container":"build","time":null,"lines_at_time":0,"offset":1,"crc":"1ffffffff"}',
    ],
    ids=["empty", "junk", "list", "version", "container", "time", "lines", "bool", "crc-hex", "crc-range"],
)
def test_anything_else_is_no_checkpoint(text: str) -> None:
    assert parse_checkpoint(text) is None


def _point(offset: int, container: str = "build") -> Checkpoint:
    return Checkpoint(container, STAMP + offset, 1, offset, offset * 7)


def test_only_acknowledged_offsets_are_checkpoints() -> None:
    tracker = CheckpointTracker()
    for offset in (10, 20, 30, 40):
        tracker.offer(_point(offset))
    assert tracker.due(sent=5) is None
    assert tracker.due(sent=25) == _point(20)
    tracker.written(_point(20))
    assert tracker.due(sent=29) is None  # the pod has it already
    assert tracker.due(sent=100) == _point(40)


def test_a_later_position_with_the_same_bytes_replaces_the_candidate() -> None:
    tracker = CheckpointTracker()
    tracker.offer(_point(10))
    start_of_helper = Checkpoint("helper", None, 0, 10, 70)
    tracker.offer(start_of_helper)
    assert tracker.due(sent=10) == start_of_helper


def test_an_adopted_executor_starts_from_its_checkpoint() -> None:
    tracker = CheckpointTracker(_point(50))
    assert tracker.due(sent=1000) is None
    tracker.offer(_point(60))
    assert tracker.due(sent=1000) == _point(60)


def test_candidates_are_bounded() -> None:
    tracker = CheckpointTracker()
    for offset in range(1, 5000):
        tracker.offer(_point(offset))
    assert tracker.due(sent=10**9) == _point(4999)


def test_a_trace_sink_is_a_positioned_trace() -> None:
    class Sink:
        sent = 3

        def position(self) -> tuple[int, int] | None:
            return (3, 0)

    class Plain:
        def write(self, data: bytes) -> None: ...

    assert isinstance(Sink(), PositionedTrace)
    assert not isinstance(Plain(), PositionedTrace)
