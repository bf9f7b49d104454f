"""The local git checkout a pipeline runs for, read once with ``git``: the package's only I/O.

:func:`read_checkout` asks git for what GitLab would know about a push of the current commit
(sha, parent sha, branch or tag, default branch, commit message, project path from the
``origin`` remote) plus what ``rules:exists``, ``rules:changes`` and ``cache:key:files`` look at
(the files of the commit with their blob ids, and the files changed against the parent commit
together with uncommitted and untracked changes), and returns a frozen :class:`Checkout`.
:func:`read_source` reads one pipeline file (the main file or an ``include: local``) from the
working tree. Everything else in ``skyrunner.pipeline`` takes the Checkout as a value.
"""

from __future__ import annotations

import enum
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from skyrunner.errors import ConfigError

__all__ = ["Checkout", "RefType", "read_checkout", "read_source"]

ZERO_SHA = "0" * 40
LOCAL_NAMESPACE = "local"
_SHOW_FORMAT = "%H%x00%P%x00%an <%ae>%x00%cI%x00%B"  # sha, parents, author, date, message


class RefType(enum.StrEnum):
    BRANCH = "branch"
    TAG = "tag"


@dataclass(frozen=True, slots=True)
class Checkout:
    """What the pipeline knows about the commit it runs for; ``files`` maps path to blob id."""

    root: Path
    sha: str
    ref_name: str
    before_sha: str = ZERO_SHA
    ref_type: RefType = RefType.BRANCH
    default_branch: str = "main"
    commit_message: str = ""
    commit_author: str = ""
    commit_timestamp: str = ""
    project_path: str = "local/project"
    remote_url: str = ""
    object_format: str = "sha1"
    files: Mapping[str, str] = field(default_factory=dict)
    changed_files: tuple[str, ...] = ()

    @property
    def short_sha(self) -> str:
        return self.sha[:8]

    @property
    def commit_title(self) -> str:
        return self.commit_message.strip().split("\n", 1)[0].strip() if self.commit_message else ""

    @property
    def project_name(self) -> str:
        return self.project_path.rsplit("/", 1)[-1]

    @property
    def project_namespace(self) -> str:
        return self.project_path.rsplit("/", 1)[0] if "/" in self.project_path else ""

    @property
    def tracked_files(self) -> tuple[str, ...]:
        return tuple(self.files)


def _git(root: Path, *args: str, check: bool = True) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-c", "core.quotepath=off", *args],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise ConfigError(f"{root}: cannot run git: {exc.strerror}") from exc
    if done.returncode != 0:
        if check:
            raise ConfigError(f"{root}: git {args[0]} failed: {' '.join(done.stderr.split())[:200]}")
        return None
    return done.stdout


def project_path_from_url(url: str) -> str | None:
    """Return ``group/project`` from a git remote URL (https, ssh, scp-like or a local path)."""
    url = url.strip()
    match = re.match(r"^[a-z][a-z0-9+.-]*://[^/]*(/.*)$", url) or re.match(r"^[^/:@]+@[^:]+:(.*)$", url)
    path = match.group(1) if match else url
    parts = [p for p in PurePosixPath(path.removesuffix("/").removesuffix(".git")).parts if p != "/"]
    if not parts:
        return None
    return "/".join(parts[-2:]) if match is None else "/".join(parts)


def _ref(root: Path, sha: str, head: str) -> tuple[str, RefType]:
    """The branch (``head``: HEAD's short name, ``HEAD`` when detached), else the tag, of ``sha``."""
    if head and head != "HEAD":
        return head, RefType.BRANCH
    tag = _git(root, "describe", "--tags", "--exact-match", sha, check=False)
    if tag and tag.strip():
        return tag.strip(), RefType.TAG
    return "HEAD", RefType.BRANCH


def _default_branch(root: Path, current: str) -> str:
    origin_head = _git(root, "symbolic-ref", "-q", "--short", "refs/remotes/origin/HEAD", check=False)
    if origin_head and origin_head.strip():
        return origin_head.strip().removeprefix("origin/")
    branches = (_git(root, "for-each-ref", "--format=%(refname:short)", "refs/heads/") or "").split()
    for candidate in ("main", "master"):
        if candidate in branches:
            return candidate
    return current


def _files(root: Path) -> dict[str, str]:
    listing = _git(root, "ls-tree", "-r", "-z", "--full-tree", "HEAD") or ""
    files: dict[str, str] = {}
    for entry in listing.split("\0"):
        meta, _, path = entry.partition("\t")
        parts = meta.split()
        if len(parts) == 3 and parts[1] == "blob":
            files[path] = parts[2]
    return files


def _changed(root: Path, before_sha: str) -> tuple[str, ...]:
    if before_sha.strip("0"):  # all zeros of any object format: no parent commit
        committed = _git(root, "diff", "--name-only", "-z", before_sha, "HEAD") or ""
    else:
        args = ("diff-tree", "--root", "--no-commit-id", "--name-only", "-r", "-z", "HEAD")
        committed = _git(root, *args) or ""
    changed = [p for p in committed.split("\0") if p]
    status = (_git(root, "status", "--porcelain", "-z", "--untracked-files=all") or "").split("\0")
    index = 0
    while index < len(status):
        entry = status[index]
        index += 1
        if len(entry) < 4:
            continue
        changed.append(entry[3:])
        if "R" in entry[:2] or "C" in entry[:2]:
            changed.append(status[index])  # the rename's source path follows
            index += 1
    return tuple(dict.fromkeys(changed))


def _root_and_head(path: Path) -> tuple[Path, str]:
    """Return the checkout's top directory and HEAD's short name as ``symbolic-ref --short`` has it.

    One ``rev-parse`` asks both (``--abbrev-ref=loose`` shortens as ``symbolic-ref --short``
    does; a detached HEAD is ``HEAD``); when it fails, the top directory alone says why.

    Raises:
        ConfigError: ``path`` is not inside a git checkout, or it has no commit yet.
    """
    both = _git(path, "rev-parse", "--show-toplevel", "--abbrev-ref=loose", "HEAD", check=False)
    top, _, head = (both or "").removesuffix("\n").rpartition("\n")
    if top.strip():
        return Path(top.strip()), head.strip()
    alone = _git(path, "rev-parse", "--show-toplevel", check=False)
    if not alone:
        raise ConfigError(f"{path}: not a git checkout")
    raise ConfigError(f"{alone.strip()}: the checkout has no commit yet")


def read_checkout(path: Path) -> Checkout:
    """Read the git checkout that contains ``path``.

    Raises:
        ConfigError: ``path`` is not inside a git checkout, or it has no commit yet.
    """
    root, head = _root_and_head(path)
    show = _git(root, "show", "-s", "--no-show-signature", f"--format={_SHOW_FORMAT}", "HEAD") or "\0\0\0\0"
    sha, parents, author, timestamp, message = [*show.split("\0", 4), "", "", "", ""][:5]
    parent = parents.split(" ", 1)[0].strip()  # HEAD^: the first parent
    before_sha = parent or "0" * len(sha)
    ref_name, ref_type = _ref(root, sha, head)
    remote = (_git(root, "remote", "get-url", "origin", check=False) or "").strip()
    project_path = (project_path_from_url(remote) if remote else None) or f"{LOCAL_NAMESPACE}/{root.name}"
    return Checkout(
        root=root,
        sha=sha,
        ref_name=ref_name,
        before_sha=before_sha,
        ref_type=ref_type,
        default_branch=_default_branch(root, ref_name),
        commit_message=message.rstrip("\n") + "\n" if message.strip() else "",
        commit_author=author,
        commit_timestamp=timestamp.strip(),
        project_path=project_path,
        remote_url=remote,
        object_format="sha256" if len(sha) == 64 else "sha1",
        files=_files(root),
        changed_files=_changed(root, before_sha),
    )


def read_source(checkout: Checkout, path: str) -> str | None:
    """Return the text of the repository file ``path`` (from the working tree), or ``None``.

    Raises:
        ConfigError: the file exists but cannot be read as UTF-8 text.
    """
    file = checkout.root / path.lstrip("/")
    try:
        return file.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
