"""The helper's console: lines in gitlab-runner's colours on the job's output.

Owns how a line looks (protocol §9.2), nothing else: the helper's stdout is the job trace (the
runner masks it on the way), so every line here is already meant for the user. It never prints
secrets because nothing secret is passed to it; callers strip credentials from URLs first.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO

__all__ = ["BOLD_GREEN", "BOLD_RED", "RESET", "YELLOW", "Console", "describe"]

RESET = "\x1b[0;m"
BOLD_GREEN = "\x1b[32;1m"
BOLD_RED = "\x1b[31;1m"
YELLOW = "\x1b[0;33m"


@dataclass
class Console:
    """Writes gitlab-runner style lines to ``stream`` (stdout by default), flushing each one.

    Flushing matters: git and other children write to the same file descriptor, and their lines
    must come after the notice that announces them.
    """

    stream: TextIO = field(default_factory=lambda: sys.stdout)

    def notice(self, text: str) -> None:
        """Print an info line in bold green (``Fetching changes...``)."""
        self._write(f"{BOLD_GREEN}{text}{RESET}\n")

    def warning(self, text: str) -> None:
        """Print ``WARNING: <text>`` in yellow."""
        self._write(f"{YELLOW}WARNING: {text}{RESET}\n")

    def caution(self, text: str) -> None:
        """Print a yellow line without prefix (``Failed to extract cache``)."""
        self._write(f"{YELLOW}{text}{RESET}\n")

    def error(self, text: str) -> None:
        """Print ``ERROR: <text>`` in bold red."""
        self._write(f"{BOLD_RED}ERROR: {text}{RESET}\n")

    def plain(self, text: str) -> None:
        """Print an uncoloured line (``Archive is up to date!``)."""
        self._write(f"{text}\n")

    def _write(self, line: str) -> None:
        self.stream.write(line)
        self.stream.flush()


def describe(exc: BaseException) -> str:
    """One line for an expected failure: our own message, or ``<file>: <reason>`` for OS errors."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror.lower()}" if exc.filename else exc.strerror.lower()
    return str(exc) or type(exc).__name__
