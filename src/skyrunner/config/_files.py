"""config.toml and ``.runner_system_id`` on disk: the I/O edge of the config package.

This module owns reading and writing the files, with gitlab-runner's rules: the default path
(``/etc/gitlab-runner/config.toml`` as root, ``~/.gitlab-runner/config.toml`` otherwise), the
file written 0600 and atomically (a temporary file beside it, then a rename, so a crash never
leaves half a config and a reader never sees one), the system id kept beside the config, and
the runners' ``token_file`` read at load (a path relative to the config's directory; the file
holds the token alone, surrounding whitespace ignored).
Parsing and rendering are pure and live in ``_parse.py``; nothing here logs a file's content.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import string
import tempfile
from pathlib import Path
from typing import Final

from pydantic import SecretStr

from skyrunner.config._models import Config, RunnerConfig
from skyrunner.config._parse import parse_config, render_config
from skyrunner.errors import ConfigError

__all__ = [
    "default_config_path",
    "default_config_path_for",
    "load_config",
    "load_or_create_system_id",
    "save_config",
]

log = logging.getLogger(__name__)

SYSTEM_ID_FILE: Final = ".runner_system_id"
_SYSTEM_ID: Final = re.compile(r"[rs]_[0-9A-Za-z]{12}")
_ALPHANUMERICS: Final = string.ascii_letters + string.digits
_FILE_MODE: Final = 0o600
_DIR_MODE: Final = 0o700


def default_config_path_for(euid: int, home: Path) -> Path:
    """Return gitlab-runner's config path for a user: the system one for root, else in ``home``."""
    if euid == 0:
        return Path("/etc/gitlab-runner/config.toml")
    return home / ".gitlab-runner" / "config.toml"


def default_config_path() -> Path:
    """Return the config path gitlab-runner would use for the current user."""
    return default_config_path_for(os.geteuid(), Path.home())


def load_config(path: Path) -> Config:
    """Read and validate config.toml; log a warning per unknown key.

    Raises:
        ConfigError: the file cannot be read, or its content is invalid (see ``parse_config``).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM from a Windows editor is not TOML
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such file") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (at byte {exc.start})") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    config, warnings = parse_config(text, str(path))
    for warning in warnings:
        log.warning("%s", warning)
    runners = tuple(_with_token_file(path, index, runner) for index, runner in enumerate(config.runners))
    return config.model_copy(update={"runners": runners}) if runners != config.runners else config


def _with_token_file(config_path: Path, index: int, runner: RunnerConfig) -> RunnerConfig:
    """Return ``runner`` with its token read from ``token_file`` (relative to the config's directory)."""
    if not runner.token_file:
        return runner
    token_path = config_path.parent / runner.token_file
    where = f"{config_path}: runners[{index}].token_file: {token_path}"
    try:
        token = token_path.read_text(encoding="utf-8").strip()
    except FileNotFoundError as exc:
        raise ConfigError(f"{where}: no such file") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: not UTF-8 text") from exc
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read: {exc.strerror or exc}") from exc
    if not token or len(token.split()) != 1:
        # the content is a secret: say what is wrong without quoting it
        raise ConfigError(f"{where}: expected one token, found {'nothing' if not token else 'several words'}")
    return runner.model_copy(update={"token": SecretStr(token)})


def save_config(path: Path, config: Config) -> None:
    """Write ``config`` to ``path`` atomically, mode 0600, creating the directory (0700) if needed.

    Raises:
        ConfigError: the directory or the file cannot be written.
    """
    _write_private(path, render_config(config))


def load_or_create_system_id(config_path: Path) -> str:
    """Return the runner's system id from ``.runner_system_id`` beside the config, creating it.

    gitlab-runner's format: ``r_`` and 12 random alphanumerics (``s_`` ids made from the machine
    id by gitlab-runner are reused as they are). A missing or malformed file gets a new id.

    Raises:
        ConfigError: the file cannot be read or written.
    """
    id_path = config_path.parent / SYSTEM_ID_FILE
    try:
        existing = id_path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{id_path}: cannot read the system id: {exc}") from exc
    if _SYSTEM_ID.fullmatch(existing):
        return existing
    system_id = "r_" + "".join(secrets.choice(_ALPHANUMERICS) for _ in range(12))
    _write_private(id_path, system_id + "\n")
    return system_id


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a 0600 temporary file in the same directory."""
    try:
        path.parent.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        descriptor, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), _FILE_MODE)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except OSError as exc:
        Path(temp_name).unlink(missing_ok=True)
        raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from exc
