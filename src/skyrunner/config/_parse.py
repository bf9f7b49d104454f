"""Reading config.toml text into a :class:`Config`, and writing one back: the pure part.

Pure: no I/O. :func:`parse_config` turns text into a validated config and a list of warnings, or
raises one :class:`~skyrunner.errors.ConfigError` whose message is one line naming the file, the
line and the key::

    config.toml:12: runners[0].kubernetes.cpu_limit: input should be a valid string

The steps: tomllib parses (a syntax error carries tomllib's line); pydantic validates (the first
error, by line, is reported; the line comes from :func:`index_key_lines`); the platform limits of
serverless Kubernetes are checked (ECI and Fargate refuse privileged containers, hostPath volumes
and hostNetwork; the rules are ``platforms.py``'s, applied here to each key
that asks, so such a config is refused before any job is taken); unknown keys become one warning
each, not a failure, as gitlab-runner ignores them.

:func:`render_config` is the way back: gitlab-runner's key names and layout, only the keys that
were in the file or set by the code (nothing invented), secrets in clear (the file is 0600).
"""

from __future__ import annotations

import enum
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from typing import Final

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_core import ErrorDetails

from skyrunner.config._kubernetes import KubernetesConfig, ServerlessPlatform
from skyrunner.config._models import TOKEN_FROM_FILE, Config
from skyrunner.config._toml import KeyPath, find_line, index_key_lines, render_path, render_toml
from skyrunner.errors import ConfigError
from skyrunner.platforms import Platform, check_platform_limits

__all__ = ["find_platform_problems", "parse_config", "render_config"]

# pydantic speaks Python; users wrote TOML.
_TOML_WORDS: Final = {
    "tuple_type": "input should be an array",
    "list_type": "input should be an array",
    "dict_type": "input should be a table",
    "model_type": "input should be a table",
    "model_attributes_type": "input should be a table",
}


def parse_config(text: str, source: str) -> tuple[Config, list[str]]:
    """Parse and validate config.toml text; return the config and one warning per unknown key.

    ``source`` names the file in messages. Raises:
        ConfigError: invalid TOML, a wrong or missing value, or a platform limit broken; the
            message is one line, ``<source>:<line>: <key>: <problem>``, and holds no secret.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_syntax_message(source, exc)) from exc
    lines = index_key_lines(text)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_validation_message(source, exc.errors(), lines)) from exc
    problems = find_platform_problems(config)
    if problems:
        path, problem = min(problems, key=lambda item: _line_order(lines, item[0]))
        raise ConfigError(_one_line(source, find_line(lines, path), path, problem, len(problems) - 1))
    warnings = [
        f"{_where(source, find_line(lines, path))} unknown key {render_path(path)}"
        for path in sorted(_unknown_keys(config, ()), key=lambda path: _line_order(lines, path))
    ]
    return config, warnings


def find_platform_problems(config: Config) -> list[tuple[KeyPath, str]]:
    """List what each runner's serverless platform will refuse, with the key that asks for it."""
    problems: list[tuple[KeyPath, str]] = []
    for index, runner in enumerate(config.runners):
        if runner.kubernetes is not None:
            problems += _kubernetes_problems(runner.kubernetes, ("runners", index, "kubernetes"))
    return problems


class _HostFeature(enum.Enum):
    PRIVILEGED = enum.auto()
    HOST_PATH = enum.auto()
    HOST_NETWORK = enum.auto()


def _kubernetes_problems(kube: KubernetesConfig, base: KeyPath) -> Iterator[tuple[KeyPath, str]]:
    if kube.serverless.platform is ServerlessPlatform.AUTO:
        return  # known only once the executor has read the nodes; it checks then
    platform = Platform(kube.serverless.platform.value)
    for path, feature in _host_features(kube, base):
        for problem in check_platform_limits(
            platform,
            privileged=feature is _HostFeature.PRIVILEGED,
            host_path=feature is _HostFeature.HOST_PATH,
            host_network=feature is _HostFeature.HOST_NETWORK,
        ):
            yield path, problem


def _host_features(kube: KubernetesConfig, base: KeyPath) -> Iterator[tuple[KeyPath, _HostFeature]]:
    """Yield each key that asks for a host feature, with the feature."""
    if kube.privileged:
        yield (*base, "privileged"), _HostFeature.PRIVILEGED
    for name in (
        "build_container_security_context",
        "helper_container_security_context",
        "service_container_security_context",
    ):
        if getattr(kube, name).privileged:
            yield (*base, name, "privileged"), _HostFeature.PRIVILEGED
    for index in range(len(kube.volumes.host_path)):
        yield (*base, "volumes", "host_path", index), _HostFeature.HOST_PATH
    if kube.host_network:
        yield (*base, "host_network"), _HostFeature.HOST_NETWORK


def render_config(config: Config) -> str:
    """Render ``config`` as config.toml text in gitlab-runner's layout, secrets included.

    A runner with ``token_file`` is written with the placeholder token: the real one, read from
    that file at load, stays in the file.
    """
    dumped = config.model_dump(by_alias=True, exclude_unset=True, exclude_none=True)
    for runner, data in zip(config.runners, dumped.get("runners", ()), strict=True):
        if runner.token_file:
            data["token"] = TOKEN_FROM_FILE
    # gitlab-runner always writes these two, so a file it wrote and one we wrote look alike.
    data = {"concurrent": config.concurrent, "check_interval": config.check_interval, **dumped}
    return render_toml({key: _plain(value) for key, value in data.items()})


def _plain(value: object) -> object:
    """Turn dumped model data into what tomli_w writes: secrets revealed, enums as strings."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items() if item is not None}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _unknown_keys(model: BaseModel, path: KeyPath) -> Iterator[KeyPath]:
    for key in model.model_extra or {}:
        yield (*path, key)
    for name, field in type(model).model_fields.items():
        key = field.serialization_alias or field.alias or name
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from _unknown_keys(value, (*path, key))
        elif isinstance(value, tuple):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from _unknown_keys(item, (*path, key, index))


def _line_order(lines: Mapping[KeyPath, int], path: Sequence[str | int]) -> int:
    line = find_line(lines, path)
    return line if line is not None else 1 << 31


def _where(source: str, line: int | None) -> str:
    return f"{source}:{line}:" if line else f"{source}:"


def _one_line(source: str, line: int | None, path: Sequence[str | int], problem: str, more: int) -> str:
    suffix = f" (and {more} more {'problem' if more == 1 else 'problems'})" if more else ""
    return f"{_where(source, line)} {render_path(path)}: {problem}{suffix}"


def _syntax_message(source: str, exc: tomllib.TOMLDecodeError) -> str:
    # Python 3.11's TOMLDecodeError has no lineno; its message ends "(at line 3, column 9)".
    text = str(exc)
    match = re.search(r"\(at line (\d+), column (\d+)\)$", text)
    if match is None:
        return f"{source}: invalid TOML: {_lower_first(text.removesuffix(' (at end of document)'))}"
    problem = _lower_first(text[: match.start()].strip())
    return f"{source}:{match[1]}: invalid TOML: {problem} (column {match[2]})"


def _validation_message(source: str, errors: list[ErrorDetails], lines: Mapping[KeyPath, int]) -> str:
    first = min(errors, key=lambda error: _line_order(lines, error["loc"]))
    return _one_line(source, find_line(lines, first["loc"]), first["loc"], _describe(first), len(errors) - 1)


def _describe(error: ErrorDetails) -> str:
    if error["type"] in _TOML_WORDS:
        return _TOML_WORDS[error["type"]]
    message = error["msg"].removeprefix("Value error, ")
    return _lower_first(message)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
