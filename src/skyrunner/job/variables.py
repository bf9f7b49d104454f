"""The job's variables: GitLab's plus the runner's, expanded as gitlab-runner expands them.

Pure: no I/O. :func:`build_job_variables` merges, in gitlab-runner's precedence order (protocol
§11), the runner's variables before the job's (``CI_BUILDS_DIR``, ``CI_PROJECT_DIR``, the config's
``environment``...), GitLab's ``variables[]`` and the runner's variables after the job's
(``CI_RUNNER_VERSION``...). :func:`expand` follows Go's ``os.Expand`` as gitlab-runner uses it.
File-type variables become files under the job's temp dir; the variable then holds the path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "JobVariable",
    "JobVariables",
    "RunnerContext",
    "build_job_variables",
    "expand",
]

_SPECIALS: Final = frozenset("*#$@!?-0123456789")
_NAME: Final = re.compile(r"[A-Za-z0-9_]+")


@dataclass(frozen=True, slots=True)
class JobVariable:
    key: str
    value: str
    masked: bool = False
    file: bool = False
    raw: bool = False
    public: bool = True


@dataclass(frozen=True, slots=True)
class RunnerContext:
    """What the runner knows about where and how the job runs."""

    builds_dir: str
    project_dir: str
    tmp_dir: str
    concurrent_id: int
    concurrent_project_id: int
    short_token: str
    runner_id: int | None
    version: str
    revision: str
    arch: str
    timeout_s: int
    shared_environment: bool
    environment: Sequence[tuple[str, str]] = ()
    job_image: str = ""


@dataclass(frozen=True, slots=True)
class JobVariables:
    """The job's variables after merging, in order; later entries win."""

    items: tuple[JobVariable, ...]
    file_paths: Mapping[str, str] = field(default_factory=dict)

    def get(self, key: str, default: str = "") -> str:
        for item in reversed(self.items):
            if item.key == key:
                return self.file_paths.get(key, item.value) if item.file else item.value
        return default

    def environment(self) -> dict[str, str]:
        """The process environment: each key's last value, expanded; file variables as paths."""
        env: dict[str, str] = {}
        for item in self.items:
            if item.file:
                env[item.key] = self.file_paths[item.key]
            else:
                env[item.key] = item.value if item.raw else expand(item.value, self._lookup)
        return env

    def files(self) -> dict[str, str]:
        """Path -> content of every file-type variable (the last definition of each key)."""
        last = {item.key: item for item in self.items if item.file}
        return {self.file_paths[key]: item.value for key, item in last.items()}

    def expand(self, text: str) -> str:
        """Expand ``$VAR``/``${VAR}`` in ``text`` with these variables."""
        return expand(text, self._lookup)

    def _lookup(self, key: str) -> str:
        if key == "$":
            return "$"
        return self.get(key)


def expand(text: str, lookup: Callable[[str], str]) -> str:
    """Expand ``$NAME`` and ``${NAME}`` as Go's ``os.Expand`` does; ``$$`` is a literal ``$``.

    Unknown names and shell specials (``$*``, ``$1``...) become empty, a ``$`` before any other
    character stays, and an unterminated ``${`` is dropped, as in Go.
    """
    if "$" not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        j = text.find("$", i)
        if j < 0 or j + 1 >= len(text):
            out.append(text[i:])
            break
        out.append(text[i:j])
        name, width = _shell_name(text[j + 1 :])
        if not name and width == 0:
            out.append("$")
        elif name:
            out.append("$" if name == "$" else ("" if name in _SPECIALS else lookup(name)))
        i = j + 1 + width
    return "".join(out)


def _shell_name(rest: str) -> tuple[str, int]:
    """Return the name after a ``$`` and how many characters it took (Go's getShellName)."""
    if rest[0] == "{":
        if len(rest) > 2 and rest[1] in _SPECIALS and rest[2] == "}":
            return rest[1], 3
        end = rest.find("}")
        if end < 0:
            return "", 1  # bad syntax: Go drops the "${"
        if end == 1:
            return "", 2  # "${}" is eaten
        return rest[1:end], end + 1
    if rest[0] in _SPECIALS:
        return rest[0], 1
    match = _NAME.match(rest)
    return (match.group(0), match.end()) if match else ("", 0)


def _runner_before(ctx: RunnerContext) -> list[JobVariable]:
    items = [JobVariable("CI_JOB_IMAGE", ctx.job_image)] if ctx.job_image else []
    items.append(JobVariable("CI_RUNNER_SHORT_TOKEN", ctx.short_token))
    if ctx.runner_id is not None:
        items.append(JobVariable("CI_RUNNER_ID", str(ctx.runner_id)))
    items += [JobVariable(key, value) for key, value in ctx.environment]
    items += [
        JobVariable("CI_BUILDS_DIR", ctx.builds_dir),
        JobVariable("CI_PROJECT_DIR", ctx.project_dir),
        JobVariable("CI_CONCURRENT_ID", str(ctx.concurrent_id)),
        JobVariable("CI_CONCURRENT_PROJECT_ID", str(ctx.concurrent_project_id)),
        JobVariable("CI_SERVER", "yes"),
        JobVariable("CI_JOB_STATUS", "running"),
        JobVariable("CI_JOB_TIMEOUT", str(ctx.timeout_s)),
    ]
    return items


def _runner_after(ctx: RunnerContext) -> list[JobVariable]:
    env_kind = "CI_SHARED_ENVIRONMENT" if ctx.shared_environment else "CI_DISPOSABLE_ENVIRONMENT"
    return [
        JobVariable(env_kind, "true"),
        JobVariable("CI_RUNNER_VERSION", ctx.version),
        JobVariable("CI_RUNNER_REVISION", ctx.revision),
        JobVariable("CI_RUNNER_EXECUTABLE_ARCH", ctx.arch),
        JobVariable("RUNNER_TEMP_PROJECT_DIR", ctx.tmp_dir),
        JobVariable("GITLAB_ENV", f"{ctx.tmp_dir}/gitlab_runner_env"),
    ]


def build_job_variables(job_variables: Iterable[JobVariable], ctx: RunnerContext) -> JobVariables:
    """Merge the runner's variables around GitLab's, in gitlab-runner's precedence order."""
    items = (*_runner_before(ctx), *job_variables, *_runner_after(ctx))
    paths = {item.key: f"{ctx.tmp_dir}/{item.key}" for item in items if item.file}
    return JobVariables(items=tuple(items), file_paths=paths)
