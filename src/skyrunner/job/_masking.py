"""Masking of secrets in the job log, and gitlab-runner's trace markup.

Pure: no I/O. :class:`Masker` replaces, in a byte stream cut into arbitrary chunks, every
occurrence of

1. a masked variable's value (exact match) with ``[MASKED]``;
2. the value of a sensitive URL query parameter (``private_token=...``) with ``[MASKED]``;
3. a token that starts with a known prefix (``glpat-``, ``glrt-``, ``glcbt-``...) and continues with
   ``[A-Za-z0-9._=-]`` characters: the prefix stays, the rest becomes ``[MASKED]``,

as gitlab-runner's masker does (protocol §9.3). The output does not depend on how the input was cut:
bytes that could still be the start of a match are held back until the next chunk (or
:meth:`Masker.flush`) decides, and a token or parameter value that runs to the end of a chunk is
masked at once while its continuation in later chunks is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

__all__ = [
    "DEFAULT_TOKEN_PREFIXES",
    "MASK",
    "SENSITIVE_URL_PARAMS",
    "Masker",
    "ansi",
    "render_section_end",
    "render_section_start",
]

MASK: Final = b"[MASKED]"

DEFAULT_TOKEN_PREFIXES: Final = (
    "glpat-", "gloas-", "gldt-", "glrt-", "glcbt-", "glrtr-", "glptt-", "glft-", "glimt-",
    "glagent-", "glsoat-", "glffct-", "_gitlab_session=", "gltok-",
)  # fmt: skip

SENSITIVE_URL_PARAMS: Final = (
    "private_token", "authenticity_token", "rss_token",
    "x-amz-signature", "x-amz-credential", "x-amz-security-token",
)  # fmt: skip

_TOKEN_CHARS: Final = rb"[A-Za-z0-9._=\-]"
_PARAM_CHARS: Final = rb"[^&\s\"'#<>]"


class Masker:
    """Streaming replacement of secrets by ``[MASKED]``, independent of chunk boundaries."""

    def __init__(
        self,
        secrets: Iterable[str] = (),
        token_prefixes: Iterable[str] = DEFAULT_TOKEN_PREFIXES,
        url_params: Iterable[str] = SENSITIVE_URL_PARAMS,
    ) -> None:
        self._secrets = sorted({s.encode() for s in secrets if s}, key=len, reverse=True)
        prefixes = sorted({p.encode() for p in token_prefixes if p}, key=len, reverse=True)
        params = sorted({p.encode() for p in url_params if p}, key=len, reverse=True)
        alternatives = (
            [b"(?P<secret>" + b"|".join(map(re.escape, self._secrets)) + b")"] if self._secrets else []
        )
        if prefixes:
            alternatives.append(
                b"(?P<prefix>" + b"|".join(map(re.escape, prefixes)) + b")(?P<token>" + _TOKEN_CHARS + b"+)"
            )
        if params:
            alternatives.append(
                b"(?<=[?&])(?P<param>(?i:"
                + b"|".join(map(re.escape, params))
                + b")=)(?P<value>"
                + _PARAM_CHARS
                + b"+)"
            )
        self._pattern = re.compile(b"|".join(alternatives)) if alternatives else None
        self._token_run = re.compile(_TOKEN_CHARS + b"*")
        self._param_run = re.compile(_PARAM_CHARS + b"*")
        # Every proper prefix of something that may start a match, lower-cased (parameter names
        # match in any case, and a tail is looked up lower-cased): held back at a chunk's end.
        starts = [
            *self._secrets,
            *prefixes,
            *(b"?" + p + b"=" for p in params),
            *(b"&" + p + b"=" for p in params),
        ]
        self._partials = {s[:i].lower() for s in starts for i in range(1, len(s) + 1)}
        self._longest = max((len(s) for s in starts), default=0)
        self._pending = b""
        self._skip: re.Pattern[bytes] | None = None

    def feed(self, data: bytes) -> bytes:
        """Mask ``data`` and return what is safe to emit now."""
        if self._skip is not None:
            run = self._skip.match(data)
            assert run is not None
            if run.end() == len(data):
                return b""
            data = data[run.end() :]
            self._skip = None
        buf = self._pending + data
        self._pending = b""
        if self._pattern is None:
            return buf
        out = bytearray()
        pos = 0
        while True:
            match = self._pattern.search(buf, pos)
            if match is None:
                break
            if self._may_grow(buf, match):
                self._pending = buf[match.start() :]
                out += buf[pos : match.start()]
                return bytes(out)
            out += buf[pos : match.start()]
            out += self._replacement(match)
            pos = match.end()
            if pos == len(buf) and match.lastgroup in ("token", "value"):
                self._skip = self._token_run if match.lastgroup == "token" else self._param_run
                return bytes(out)
        hold = self._held_suffix(buf, pos)
        out += buf[pos : len(buf) - hold]
        self._pending = buf[len(buf) - hold :]
        return bytes(out)

    @property
    def holding(self) -> bool:
        """Whether bytes are held back: the output so far does not yet end where the input ends."""
        return bool(self._pending) or self._skip is not None

    def flush(self) -> bytes:
        """Emit what is held back: the stream has ended."""
        pending, self._pending = self._pending, b""
        if not pending or self._pattern is None:
            return pending
        return self._pattern.sub(self._replacement, pending)

    def _may_grow(self, buf: bytes, match: re.Match[bytes]) -> bool:
        """Whether a (longer) secret could still match at this position once more bytes arrive."""
        rest = buf[match.start() :]
        return len(rest) < self._longest and any(
            len(s) > len(rest) and s.startswith(rest) for s in self._secrets
        )

    def _held_suffix(self, buf: bytes, pos: int) -> int:
        """Length of the longest tail of ``buf[pos:]`` that could begin a match."""
        for size in range(min(self._longest, len(buf) - pos), 0, -1):
            tail = buf[len(buf) - size :]
            if tail.lower() in self._partials:
                return size
        return 0

    @staticmethod
    def _replacement(match: re.Match[bytes]) -> bytes:
        if match.lastgroup == "token":
            return match.group("prefix") + MASK
        if match.lastgroup == "value":
            return match.group("param") + MASK
        return MASK


_ESC: Final = "\x1b["
_COLORS: Final = {
    "reset": "0;m",
    "erase": "0K",
    "green": "32;1m",
    "cyan": "36;1m",
    "yellow": "0;33m",
    "bold_yellow": "33;1m",
    "red": "31;1m",
}


def ansi(name: str) -> str:
    """Return the ANSI sequence gitlab-runner uses for ``name`` (green, cyan, yellow, red...)."""
    return _ESC + _COLORS[name]


_SECTION_NAME: Final = re.compile(r"[a-zA-Z0-9_.-]+")


def render_section_start(name: str, *, at: float, collapsed: bool = False) -> bytes:
    """Return a ``section_start`` marker, exactly as GitLab parses it (protocol §9.1)."""
    if not _SECTION_NAME.fullmatch(name):
        raise ValueError(f"section name {name!r} is not [a-zA-Z0-9_.-]+")
    opts = "[collapsed=true]" if collapsed else ""
    stamp = int(at)
    return f"section_start:{stamp}:{name}{opts}\r{_ESC}0K".encode()


def render_section_end(name: str, *, at: float) -> bytes:
    """Return a ``section_end`` marker for ``name``."""
    if not _SECTION_NAME.fullmatch(name):
        raise ValueError(f"section name {name!r} is not [a-zA-Z0-9_.-]+")
    stamp = int(at)
    return f"section_end:{stamp}:{name}\r{_ESC}0K".encode()
