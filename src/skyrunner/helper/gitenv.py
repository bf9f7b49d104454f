"""The git command lines and environment of ``sources``, as data.

Pure: no I/O. The job token reaches git only through the child's environment, as a
command-scope config entry (``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n``)
``http.<scheme://host:port/>.extraHeader = Authorization: Basic ...``: never in argv, never in
``.git/config``, never in a remote URL, and sent only to the repository's own host (so
submodules there, relative or absolute, are authenticated too, and other hosts are not). A
repository reached by path (``skyrunner exec`` with the shell executor) gets no header at all.
The same mechanism turns hooks off (``core.hooksPath=/dev/null``) so a previous job cannot
plant code that runs in the next one.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence

from skyrunner.helper.plan import GitPlan, SubmoduleStrategy
from skyrunner.helper.urls import is_http, origin_of

__all__ = [
    "CI_USER",
    "DEFAULT_REFSPECS",
    "build_fetch_args",
    "build_git_env",
    "build_submodule_commands",
]

CI_USER = "gitlab-ci-token"
DEFAULT_REFSPECS = ("+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*")

# Variables that make git print request headers (and so the token) or change its behaviour.
_DROPPED_PREFIXES = ("GIT_TRACE", "GIT_CURL_VERBOSE", "GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_")
_DROPPED = frozenset({"GIT_CONFIG_COUNT", "GIT_CONFIG_PARAMETERS", "GIT_DIR", "GIT_WORK_TREE", "GIT_ASKPASS"})


def _config_entries(base: Mapping[str, str]) -> list[tuple[str, str]]:
    """Keep command-scope config entries the job set itself (``GIT_CONFIG_COUNT`` style)."""
    try:
        count = int(base.get("GIT_CONFIG_COUNT", "0"))
    except ValueError:
        return []
    entries = []
    for i in range(count):
        key, value = base.get(f"GIT_CONFIG_KEY_{i}"), base.get(f"GIT_CONFIG_VALUE_{i}")
        if key is not None and value is not None:
            entries.append((key, value))
    return entries


def build_git_env(base: Mapping[str, str], repo_url: str, token: str, *, lfs_skip_smudge: bool) -> dict[str, str]:
    """Return the environment for every git child of ``sources``.

    ``lfs_skip_smudge`` keeps git-lfs from downloading during fetch and checkout (an explicit
    ``git lfs pull`` follows unless the job asked to skip LFS).
    """
    env = {k: v for k, v in base.items() if k not in _DROPPED and not k.startswith(_DROPPED_PREFIXES)}
    entries = _config_entries(base)
    entries.append(("core.hooksPath", "/dev/null"))
    if token and is_http(repo_url):
        basic = base64.b64encode(f"{CI_USER}:{token}".encode()).decode()
        entries.append((f"http.{origin_of(repo_url)}.extraHeader", f"Authorization: Basic {basic}"))
    env["GIT_CONFIG_COUNT"] = str(len(entries))
    for i, (key, value) in enumerate(entries):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GCM_INTERACTIVE"] = "never"
    if lfs_skip_smudge:
        env["GIT_LFS_SKIP_SMUDGE"] = "1"
    else:
        env.pop("GIT_LFS_SKIP_SMUDGE", None)
    return env


def build_fetch_args(git: GitPlan, *, shallow_repo: bool) -> list[str]:
    """``git fetch`` arguments as gitlab-runner builds them (``--unshallow`` for depth 0)."""
    args = ["fetch", "origin", "--no-recurse-submodules", *(git.refspecs or DEFAULT_REFSPECS)]
    if git.depth > 0:
        args += ["--depth", str(git.depth)]
    elif shallow_repo:
        args.append("--unshallow")
    return args + list(git.fetch_extra_flags)


def build_submodule_commands(git: GitPlan) -> list[list[str]]:
    """The ``git submodule ...`` commands for the plan's strategy (none: no commands)."""
    if git.submodule_strategy is SubmoduleStrategy.NONE:
        return []
    recursive = ["--recursive"] if git.submodule_strategy is SubmoduleStrategy.RECURSIVE else []
    paths: Sequence[str] = ["--", *git.submodule_paths] if git.submodule_paths else []
    depth = ["--depth", str(git.submodule_depth)] if git.submodule_depth > 0 else []
    commands = [
        ["submodule", "init", *paths],
        ["submodule", "sync", *recursive, *paths],
        ["submodule", "update", "--init", *recursive, *depth, *git.submodule_update_flags, *paths],
    ]
    if git.clean_flags:
        commands.append(["submodule", "foreach", *recursive, "git", "clean", *git.clean_flags])
    commands.append(["submodule", "foreach", *recursive, "git", "reset", "--hard", "-q"])
    return commands
