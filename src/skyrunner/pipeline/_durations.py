"""Human durations as GitLab reads them (ChronicDuration): ``1h 30m``, ``90 minutes``, ``3600``.

Pure: no I/O. Used for ``timeout``, ``start_in`` and to check ``expire_in``. A bare number is
seconds; units may be abbreviated (``s``, ``sec``, ``m``, ``min``, ``h``, ``hr``, ``d``, ``w``,
``wk``, ``mo``, ``y``, ``yr``) or spelled out, singular or plural, with or without spaces, and
joined by commas or ``and``; ``hh:mm:ss`` and ``mm:ss`` work too. A month is 30 days and a year
365.25 days, as in ChronicDuration.
"""

from __future__ import annotations

import re

__all__ = ["parse_duration"]

_UNITS: dict[str, float] = {}
for _names, _seconds in (
    (("s", "sec", "secs", "second", "seconds"), 1),
    (("m", "min", "mins", "minute", "minutes"), 60),
    (("h", "hr", "hrs", "hour", "hours"), 3600),
    (("d", "day", "days"), 86400),
    (("w", "wk", "wks", "week", "weeks"), 604800),
    (("mo", "mos", "month", "months"), 2592000),
    (("y", "yr", "yrs", "year", "years"), 31557600),
):
    for _name in _names:
        _UNITS[_name] = _seconds

_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)")
_CLOCK = re.compile(r"(?:(\d+):)?(\d+):(\d{1,2})")


def parse_duration(text: str | int | float) -> int | None:
    """Return ``text`` in whole seconds, or ``None`` if it is not a duration."""
    if isinstance(text, bool):
        return None
    if isinstance(text, int | float):
        return int(text) if text >= 0 else None
    cleaned = re.sub(r"\band\b|,", " ", text.strip().lower())
    clock = _CLOCK.fullmatch(cleaned.strip())
    if clock is not None:
        hours, minutes, seconds = (int(part or 0) for part in clock.groups())
        return hours * 3600 + minutes * 60 + seconds
    total, pos, matched = 0.0, 0, False
    for part in _PART.finditer(cleaned):
        if cleaned[pos : part.start()].strip():
            return None
        number, unit = float(part.group(1)), part.group(2) or "s"
        if unit not in _UNITS:
            return None
        total += number * _UNITS[unit]
        pos, matched = part.end(), True
    if not matched or cleaned[pos:].strip():
        return None
    return int(total)
