"""The operators' log: gitlab-runner's three formats and the secret backstop.

``log_format`` is ``runner`` (the default: plain lines for a terminal), ``text`` (logfmt
``key=value`` as logrus prints it) or ``json`` (one object per line). Fields that ``job_logger``
adds (``job_id``, ``runner``, ``project``) are printed as ``job``, ``runner`` and ``project``.
:class:`SecretFilter` masks registered secrets and token-looking strings in every record, so a
token that slipped into a message still never reaches the log.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final, TextIO

__all__ = ["SECRET_FILTER", "SecretFilter", "configure_logging", "register_secrets"]

_TOKEN: Final = re.compile(r"\b(glrt-|glpat-|glcbt-|glrtr-|gldt-|glptt-|GR1348941)[A-Za-z0-9._=\-]+")
_CONTEXT: Final = (("job_id", "job"), ("runner", "runner"), ("project", "project"))
_LEVELS: Final = {"panic": logging.CRITICAL, "fatal": logging.CRITICAL, "error": logging.ERROR,
                  "warning": logging.WARNING, "warn": logging.WARNING, "info": logging.INFO,
                  "debug": logging.DEBUG, "trace": logging.DEBUG}  # fmt: skip


class SecretFilter(logging.Filter):
    """Replaces known secrets and token-looking strings in log records by [MASKED]."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._longest_first: tuple[str, ...] = ()  # sorted once per add, not once per record
        self._lock = threading.Lock()

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self._secrets.update(s for s in secrets if len(s) >= 4)
            self._longest_first = tuple(sorted(self._secrets, key=len, reverse=True))

    def mask(self, text: str) -> str:
        for secret in self._longest_first:
            text = text.replace(secret, "[MASKED]")
        return _TOKEN.sub(lambda m: m.group(1) + "[MASKED]", text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.mask(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.mask(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


SECRET_FILTER: Final = SecretFilter()


def register_secrets(secrets: Iterable[str]) -> None:
    """Make sure these values never reach the log (runner tokens, registration tokens)."""
    SECRET_FILTER.add(secrets)


def _context(record: logging.LogRecord) -> list[tuple[str, object]]:
    return [
        (name, getattr(record, attr))
        for attr, name in _CONTEXT
        if getattr(record, attr, None) not in (None, "")
    ]


class _RunnerFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in _context(record))
        level = "" if record.levelno == logging.INFO else f"{record.levelname}: "
        text = f"{level}{record.getMessage()}" + (f"  {fields}" if fields else "")
        return text + (f"\n{record.exc_text}" if record.exc_text else "")


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        pairs = [
            ("time", when),
            ("level", record.levelname.lower()),
            ("msg", record.getMessage()),
            *_context(record),
        ]
        if record.exc_text:
            pairs.append(("error", record.exc_text))
        return " ".join(f"{k}={_logfmt(str(v))}" for k, v in pairs)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        data: dict[str, object] = {
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
            "time": when,
        }
        data.update(_context(record))
        if record.exc_text:
            data["error"] = record.exc_text
        return json.dumps(data)


def _logfmt(value: str) -> str:
    return value if value and re.fullmatch(r"[^\s=\"]+", value) else json.dumps(value)


_FORMATTERS: Final = {"runner": _RunnerFormatter, "text": _TextFormatter, "json": _JsonFormatter}


def configure_logging(level: str = "info", fmt: str = "runner", stream: TextIO | None = None) -> None:
    """Install one handler on the root logger with the secret filter."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_FORMATTERS.get(fmt, _RunnerFormatter)())
    handler.addFilter(SECRET_FILTER)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_LEVELS.get(level.lower(), logging.INFO))
    for noisy in ("httpx2", "httpcore2", "httpx", "httpcore", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
