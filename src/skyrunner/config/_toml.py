"""TOML text around config.toml: where each key sits, and writing in gitlab-runner's layout.

Pure: no I/O. tomllib gives line numbers only for syntax errors, but a user whose config has a
wrong *type* also wants the line. :func:`index_key_lines` walks the document once, tracking the
current table (``[[runners]]`` counts up, so ``[runners.kubernetes]`` after the second one is
``runners[1].kubernetes``) and multi-line values, and maps every key path to its line.
:func:`render_toml` writes data in gitlab-runner's layout (``[[runners.kubernetes.volumes.pvc]]``
rather than inline tables, two spaces of indent per level), with tomli_w formatting the values.

Paths are tuples of keys and array indices: ``("runners", 0, "kubernetes", "cpu_limit")``;
:func:`render_path` spells them ``runners[0].kubernetes.cpu_limit``.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeGuard

import tomli_w

__all__ = ["KeyPath", "find_line", "index_key_lines", "render_path", "render_toml"]

KeyPath = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_INDENT = "  "


def render_path(path: Sequence[str | int]) -> str:
    """Spell a key path the way users read it: ``runners[0].kubernetes."a.b/c"``."""
    text = ""
    for segment in path:
        if isinstance(segment, int):
            text += f"[{segment}]"
            continue
        key = _render_key(segment)
        text += f".{key}" if text else key
    return text


def find_line(lines: Mapping[KeyPath, int], path: Sequence[str | int]) -> int | None:
    """Return the line of ``path``, or of its nearest ancestor that has one, or None."""
    probe = tuple(path)
    while probe:
        if probe in lines:
            return lines[probe]
        probe = probe[:-1]
    return None


def _split_key(raw: str) -> list[str]:
    """Split a dotted TOML key (``a."b.c".'d'``) into its parts."""
    parts: list[str] = []
    rest = raw.strip()
    while rest:
        if rest[0] == '"':
            end = _closing_quote(rest)
            # Let tomllib decode the escapes of a basic string exactly.
            parts.append(tomllib.loads(f"k = {rest[: end + 1]}")["k"])
        elif rest[0] == "'":
            end = rest.index("'", 1)
            parts.append(rest[1:end])
        else:
            match = _BARE_KEY.match(rest)
            end = (match.end() if match else len(rest)) - 1
            parts.append(rest[: end + 1])
        rest = rest[end + 1 :].strip().removeprefix(".").strip()
    return parts


def _closing_quote(text: str) -> int:
    index = 1
    while text[index] != '"':
        index += 2 if text[index] == "\\" else 1
    return index


@dataclass(slots=True)
class _ValueScanner:
    """Follows a value over lines: open brackets and multi-line strings keep it going."""

    depth: int = 0
    quote: str = ""

    def feed(self, text: str) -> None:
        """Consume one line (or the value part of a key/value line)."""
        index = 0
        while index < len(text):
            index = self._step(text, index)
        if self.quote in ('"', "'"):
            self.quote = ""  # single-line strings end with the line

    @property
    def complete(self) -> bool:
        return self.depth == 0 and not self.quote

    def _step(self, text: str, index: int) -> int:
        if self.quote:
            return self._in_string(text, index)
        for opener in ('"""', "'''", '"', "'"):
            if text.startswith(opener, index):
                self.quote = opener
                return index + len(opener)
        char = text[index]
        if char == "#":
            return len(text)
        if char in "[{":
            self.depth += 1
        elif char in "]}":
            self.depth -= 1
        return index + 1

    def _in_string(self, text: str, index: int) -> int:
        if text.startswith(self.quote, index):
            end = index + len(self.quote)
            self.quote = ""
            return end
        escapes = self.quote in ('"', '"""')
        return index + (2 if escapes and text[index] == "\\" else 1)


def _key_end(line: str) -> int:
    """Return the index of the ``=`` that ends the key of a key/value line, or -1."""
    quote = ""
    index = 0
    while index < len(line):
        char = line[index]
        if quote == '"' and char == "\\":
            index += 1  # an escaped character inside a basic string
        elif quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "=":
            return index
        index += 1
    return -1


def _header(line: str) -> tuple[bool, list[str]] | None:
    """Return (is array of tables, key parts) for a table header line, else None."""
    stripped = line.strip()
    if not stripped.startswith("["):
        return None
    is_array = stripped.startswith("[[")
    width = 2 if is_array else 1
    end = stripped.rfind("]]" if is_array else "]")
    return is_array, _split_key(stripped[width:end])


@dataclass(slots=True)
class _Indexer:
    lines: dict[KeyPath, int]
    arrays: dict[KeyPath, int]
    table: KeyPath = ()

    def resolve(self, parts: Sequence[str]) -> KeyPath:
        path: KeyPath = ()
        for part in parts:
            path += (part,)
            if path in self.arrays:
                path += (self.arrays[path],)
        return path

    def enter(self, is_array: bool, parts: list[str], lineno: int) -> None:
        if is_array:
            key = (*self.resolve(parts[:-1]), parts[-1])
            self.arrays[key] = self.arrays.get(key, -1) + 1
            self.table = (*key, self.arrays[key])
        else:
            self.table = self.resolve(parts)
        self.lines.setdefault(self.table, lineno)

    def key(self, parts: list[str], lineno: int) -> None:
        for depth in range(1, len(parts) + 1):
            self.lines.setdefault(self.table + tuple(parts[:depth]), lineno)


def index_key_lines(text: str) -> dict[KeyPath, int]:
    """Map each table and key of a valid TOML document to its 1-based line number."""
    indexer = _Indexer(lines={}, arrays={})
    scanner = _ValueScanner()
    # TOML ends lines only at LF (or CRLF); str.splitlines would also cut at U+0085 and others.
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not scanner.complete:
            scanner.feed(line)
            continue
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        header = _header(stripped)
        if header is not None:
            indexer.enter(*header, lineno)
            continue
        equals = _key_end(stripped)
        if equals > 0:
            indexer.key(_split_key(stripped[:equals]), lineno)
            scanner.feed(stripped[equals + 1 :])
    return indexer.lines


def render_toml(data: Mapping[str, object]) -> str:
    """Write ``data`` as TOML in gitlab-runner's layout.

    Keys keep their order; a table's values come before its sub-tables; arrays of tables are
    written as ``[[a.b]]`` (tomli_w would inline short ones); each level is indented by two
    spaces and each top-level table follows a blank line, as gitlab-runner writes config.toml.
    """
    out: list[str] = []
    _emit_table(out, (), data)
    return "\n".join(out).lstrip("\n") + "\n"


def _emit_table(out: list[str], path: tuple[str, ...], table: Mapping[str, object]) -> None:
    indent = _INDENT * len(path)
    for key, value in table.items():
        if not _is_table(value) and not _is_table_array(value):
            out.append(indent + _render_value(_render_key(key), value).replace("\n", "\n" + indent))
    for key, value in table.items():
        inner = (*path, key)
        if _is_table(value):
            _emit_header(out, inner, f"[{_dotted(inner)}]")
            _emit_table(out, inner, value)
        elif _is_table_array(value):
            for item in value:
                _emit_header(out, inner, f"[[{_dotted(inner)}]]")
                _emit_table(out, inner, item)


def _emit_header(out: list[str], path: tuple[str, ...], header: str) -> None:
    if len(path) == 1:
        out.append("")
    out.append(_INDENT * (len(path) - 1) + header)


def _is_table(value: object) -> TypeGuard[Mapping[str, object]]:
    return isinstance(value, Mapping)


def _is_table_array(value: object) -> TypeGuard[list[Mapping[str, object]]]:
    return isinstance(value, list) and bool(value) and all(isinstance(item, Mapping) for item in value)


def _render_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def _dotted(path: Sequence[str]) -> str:
    return ".".join(_render_key(key) for key in path)


def _render_value(key: str, value: object) -> str:
    # tomli_w formats the value (strings, dates, arrays, inline tables); we only place it.
    return key + tomli_w.dumps({"v": value}, indent=len(_INDENT)).rstrip("\n").removeprefix("v")
