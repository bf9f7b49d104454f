"""Time on the wire: ``metav1.Time`` (RFC 3339, whole seconds) and the kubelet's log stamps.

Pure: no I/O, no clock (callers pass times in). Owns the three formats the fake writes or reads:
object timestamps (``2026-01-02T03:04:05Z``), the kubelet's fixed-width RFC 3339 nano log
prefix (``types.RFC3339NanoFixed``: always nine fraction digits), and RFC 3339 parsing for
``sinceTime`` (fractions accepted, as Go's ``time.Parse`` accepts them).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

__all__ = ["parse_rfc3339_ns", "rfc3339", "rfc3339_nano_fixed"]

_PARSE = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def rfc3339(seconds: float) -> str:
    """Format a Unix time as ``metav1.Time`` does (UTC, fraction truncated)."""
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_nano_fixed(ns: int) -> str:
    """Format Unix nanoseconds as the kubelet's log timestamp (nine fraction digits, ``Z``)."""
    whole, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def parse_rfc3339_ns(text: str) -> int:
    """Parse an RFC 3339 time (with or without a fraction) to Unix nanoseconds.

    Raises:
        ValueError: not an RFC 3339 time.
    """
    match = _PARSE.match(text.strip())
    if not match:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    day, clock, frac, zone = match.groups()
    offset = "+00:00" if zone in ("Z", "z") else zone
    base = datetime.fromisoformat(f"{day}T{clock}{offset}")
    nanos = int((frac or ".0")[1:].ljust(9, "0")[:9])
    return int(base.timestamp()) * 1_000_000_000 + nanos
