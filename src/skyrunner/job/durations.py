"""Go duration strings as gitlab-runner reads them (``RUNNER_AFTER_SCRIPT_TIMEOUT=5m``).

Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["parse_go_duration"]

_UNITS: Final = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART: Final = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_go_duration(text: str) -> float | None:
    """Seconds in a Go duration (``1h30m``, ``90s``, ``1.5h``, ``-5m``); None when it is not one."""
    text = text.strip()
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if body == "0":
        return 0.0
    total, pos = 0.0, 0
    for match in _PART.finditer(body):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(body) or not body:
        return None
    return sign * total
