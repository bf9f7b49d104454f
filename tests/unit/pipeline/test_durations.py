"""Human durations as GitLab's ChronicDuration reads them."""

from __future__ import annotations

import pytest

from skyrunner.pipeline._durations import parse_duration

CASES = [
    ("3600", 3600),
    (90, 90),
    ("1h 30m", 5400),
    ("1 hour 30 minutes", 5400),
    ("90 minutes", 5400),
    ("2h", 7200),
    ("1.5h", 5400),
    ("1 day", 86400),
    ("1 week", 604800),
    ("2 weeks and 1 day", 1296000),
    ("1:30:00", 5400),
    ("10:00", 600),
    ("30s", 30),
    ("1 hr, 5 mins", 3900),
    ("3 mo", 7776000),
    ("soon", None),
    ("1 fortnight", None),
    ("", None),
    ("h", None),
    ("1h x", None),
    (True, None),
    (-5, None),
]


@pytest.mark.parametrize(("text", "seconds"), CASES, ids=[str(c[0]) for c in CASES])
def test_parse_duration(text: str | int, seconds: int | None) -> None:
    assert parse_duration(text) == seconds
