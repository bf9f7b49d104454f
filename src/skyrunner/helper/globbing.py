"""Doublestar globs for cache and artifact paths, as gitlab-runner matches them.

Pure: no I/O. A pattern is relative to the project directory (an absolute one is accepted only
when it points inside it) and must not climb out of it with ``..``. ``*``, ``?`` and ``[...]``
match within one path segment (dot files included), ``**`` matches any number of segments,
``{a,b}`` expands to alternatives. A pattern that names a directory stands for everything under
it in ``paths`` (walking the tree is :mod:`skyrunner.helper.filesets`' job), but only itself in
``exclude``, as in gitlab-runner.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["GlobPattern", "expand_braces", "matches_any", "parse_glob"]

_META = frozenset("*?[{\\")


@dataclass(frozen=True, slots=True)
class GlobPattern:
    """One brace-free pattern, normalised to ``/``-separated segments relative to the root."""

    text: str
    segments: tuple[str, ...]
    regex: re.Pattern[str]

    @property
    def literal_prefix(self) -> str:
        """The leading segments without wildcards: where a walk for this pattern can start."""
        literal: list[str] = []
        for segment in self.segments:
            if _META.intersection(segment):
                break
            literal.append(segment)
        return "/".join(literal)

    @property
    def is_literal(self) -> bool:
        return self.literal_prefix == "/".join(self.segments)

    def matches(self, rel_path: str) -> bool:
        """Return True when ``rel_path`` (``a/b/c``, no leading ``./``) matches the pattern."""
        return self.regex.fullmatch(rel_path) is not None


def expand_braces(pattern: str) -> list[str]:
    """Expand ``{a,b}`` alternatives (nested too); an unbalanced brace is literal."""
    start = _find_unescaped(pattern, "{", 0)
    if start < 0:
        return [pattern]
    depth, i, commas = 0, start, []
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                break
        elif ch == "," and depth == 1:
            commas.append(i)
        i += 1
    else:
        return [pattern]
    bounds = [start, *commas, i]
    head, tail = pattern[:start], pattern[i + 1 :]
    results: list[str] = []
    for left, right in itertools.pairwise(bounds):
        results.extend(expand_braces(head + pattern[left + 1 : right] + tail))
    return results


def _find_unescaped(text: str, char: str, start: int) -> int:
    i = start
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == char:
            return i
        i += 1
    return -1


def _normalise(pattern: str, root: str) -> tuple[str, ...] | None:
    root = root.rstrip("/")
    if pattern.startswith("/"):
        if not (pattern == root or pattern.startswith(root + "/")):
            return None
        pattern = pattern[len(root) :]
    segments: list[str] = []
    for part in pattern.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not segments or segments[-1] == "**":
                return None
            segments.pop()
            continue
        segments.append(part)
    return tuple(segments)


def _segment_regex(segment: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(segment):
        ch = segment[i]
        if ch == "\\" and i + 1 < len(segment):
            out.append(re.escape(segment[i + 1]))
            i += 2
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[" and (end := segment.find("]", i + 2)) > 0:
            body = segment[i + 1 : end]
            negate = body[:1] in ("!", "^")
            body = body[1:] if negate else body
            escaped = body.replace("\\", "\\\\").replace("^", "\\^").replace("[", "\\[")
            out.append(f"[{'^/' if negate else ''}{escaped}]")
            i = end + 1
            continue
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def _compile(segments: tuple[str, ...]) -> re.Pattern[str]:
    out, need_separator = "", False
    for index, segment in enumerate(segments):
        if segment != "**":
            out += ("/" if need_separator else "") + _segment_regex(segment)
            need_separator = True
        elif index == len(segments) - 1:
            # a trailing ** also matches the directory itself ("a/**" matches "a")
            out += "(?:/.*)?" if need_separator else ".*"
        else:
            out += ("/" if need_separator else "") + "(?:[^/]+/)*"
            need_separator = False
    return re.compile(out, re.DOTALL)


def parse_glob(pattern: str, root: str) -> list[GlobPattern] | None:
    """Parse one ``paths``/``exclude`` entry into brace-free patterns relative to ``root``.

    Returns None when the pattern (or one of its alternatives) leaves ``root``. An empty
    pattern, or ``.``, stands for the whole project directory and has no segments.
    """
    parsed: list[GlobPattern] = []
    for alternative in expand_braces(pattern):
        segments = _normalise(alternative, root)
        if segments is None:
            return None
        parsed.append(GlobPattern(text=pattern, segments=segments, regex=_compile(segments)))
    return parsed


def matches_any(patterns: Iterable[GlobPattern], rel_path: str) -> bool:
    """Return True when ``rel_path`` itself matches a pattern (exclude rules).

    Not recursive, as gitlab-runner's ``isExcluded`` (``doublestar.Match`` on each path): a
    pattern naming a directory drops that directory's entry, not what is under it; ``dir/**``
    drops both.
    """
    return any(p.matches(rel_path) for p in patterns)
