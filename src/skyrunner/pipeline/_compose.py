"""From pipeline files to one merged configuration: ``include``, ``extends``, ``!reference``.

Pure: no I/O; files are read through the ``read`` callable the loader passes in. The steps follow
GitLab's ``Gitlab::Ci::Config#build_config``:

1. ``include: local`` (a string, a list, or ``{local: ...}``, with globs and ``rules``) is
   expanded depth first; each file's included files are deep-merged in order and the file's
   own content is merged last, so the including file wins. Other include kinds are refused by
   name.
2. ``extends`` (string or list, multi-level, at most 11 deep, cycles refused) deep-merges each
   base, in order, under the job: hashes merge key by key, everything else (arrays included)
   is replaced, like ActiveSupport's ``Hash#deep_merge``.
3. ``!reference [job, key, ...]`` is replaced by the value at that path of the extended
   configuration (references inside it resolved too, at most 10 deep).

Marks (``file:line``) are carried along so later errors still point at the source.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from skyrunner.pipeline._yaml import Loc, MarkedMap, MarkedSeq, Reference, fail, parse_yaml

__all__ = ["GLOBAL_KEYWORDS", "compose", "deep_merge", "glob_regex"]

MAX_INCLUDES = 150
MAX_EXTENDS_DEPTH = 11
MAX_REFERENCE_DEPTH = 10
_UNSUPPORTED_INCLUDES = ("remote", "project", "template", "component", "artifact")
GLOBAL_KEYWORDS = frozenset(
    {
        "after_script",
        "before_script",
        "cache",
        "default",
        "image",
        "include",
        "services",
        "spec",
        "stages",
        "variables",
        "workflow",
    }
)

Reader = Callable[[str], str | None]
RulesCheck = Callable[[object, Loc], bool]
Expand = Callable[[str], str]


def deep_merge(base: object, override: object) -> object:
    """Merge ``override`` over ``base``: hashes key by key, anything else replaced."""
    if not isinstance(base, MarkedMap) or not isinstance(override, MarkedMap):
        return override
    merged = MarkedMap(override.loc, dict(base), base.key_locs)
    for key, value in override.items():
        merged[key] = deep_merge(base[key], value) if key in base else value
        merged.key_locs[key] = override.key_loc(key)
    return merged


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob as Ruby's ``File.fnmatch?`` with PATHNAME, DOTMATCH and EXTGLOB reads it."""
    out, index = [], 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**/", index):
            out.append("(?:[^/]*/)*")  # "**" means any directories only when a "/" follows
            index += 3
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "{":
            close = pattern.find("}", index)
            if close < 0:
                out.append(re.escape(char))
            else:
                options = pattern[index + 1 : close].split(",")
                out.append("(?:" + "|".join(glob_regex(o).pattern[:-2] for o in options) + ")")
                index = close
        elif char == "[":
            close = pattern.find("]", index + 1)
            if close < 0:
                out.append(re.escape(char))
            else:
                body = pattern[index + 1 : close].replace("\\", "\\\\")
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                index = close
        else:
            out.append(re.escape(char))
        index += 1
    return re.compile("".join(out) + r"\Z")


class _Includes:
    def __init__(self, read: Reader, files: Sequence[str], rules_pass: RulesCheck, expand: Expand):
        self.read, self.files, self.rules_pass, self.expand = read, files, rules_pass, expand
        self.seen: set[str] = set()

    def load(self, path: str, loc: Loc | None) -> MarkedMap:
        if len(self.seen) >= MAX_INCLUDES:
            fail(loc or Loc(path, 1), f"more than {MAX_INCLUDES} included files")
        self.seen.add(path)
        text = self.read(path)
        if text is None:
            if loc is None:
                fail(Loc(path, 1), "file does not exist")
            fail(loc, f'include: local file "{path}" does not exist')
        documents = [d for d in parse_yaml(text, path) if d is not None]
        if len(documents) > 1 or (
            documents
            and isinstance(documents[0], MarkedMap)
            and "spec" in documents[0]
            and len(documents[0]) == 1
        ):
            fail(Loc(path, 1), "spec: inputs headers are not supported")
        content = documents[0] if documents else MarkedMap(Loc(path, 1))
        if not isinstance(content, MarkedMap):
            fail(Loc(path, 1), "the file must be a hash of jobs and keywords")
        merged = MarkedMap(content.loc)
        for sub_path, sub_loc in self.entries(content.get("include"), content.key_loc("include")):
            if sub_path not in self.seen:
                merged = _as_map(deep_merge(merged, self.load(sub_path, sub_loc)))
        own = MarkedMap(content.loc, {k: v for k, v in content.items() if k != "include"}, content.key_locs)
        return _as_map(deep_merge(merged, own))

    def entries(self, value: object, loc: Loc) -> list[tuple[str, Loc]]:
        if value is None:
            return []
        items = value if isinstance(value, list) else [value]
        found: list[tuple[str, Loc]] = []
        for item in items:
            item_loc = item.loc if isinstance(item, MarkedMap) else getattr(items, "loc", loc)
            found.extend((path, item_loc) for path in self.paths(item, item_loc))
        return found

    def paths(self, item: object, loc: Loc) -> list[str]:
        if isinstance(item, str):
            if re.match(r"^https?://", item):
                fail(loc, f'include: remote "{item}" is not supported')
            return self.local(item, loc)
        if not isinstance(item, MarkedMap):
            fail(loc, "include: each entry must be a path or a hash")
        for kind in _UNSUPPORTED_INCLUDES:
            if kind in item:
                fail(loc, f'include: {kind} "{item[kind]}" is not supported (only include: local)')
        unknown = sorted(set(item) - {"local", "rules", "inputs"})
        if "local" not in item or unknown:
            fail(loc, f'include: unknown keyword "{(unknown or ["<none>"])[0]}"')
        if "inputs" in item:
            fail(loc, f'include: inputs for "{item["local"]}" are not supported')
        if "rules" in item and not self.rules_pass(item["rules"], item.key_loc("rules")):
            return []
        return self.local(str(item["local"]), loc)

    def local(self, raw: str, loc: Loc) -> list[str]:
        path = self.expand(raw).lstrip("/")
        matches = [path]
        if "*" in path:
            regex = glob_regex(path)
            matches = sorted(f for f in self.files if regex.match(f))
            if not matches:
                fail(loc, f'include: local "{raw}" matches no file')
        for match in matches:
            if not match.endswith((".yml", ".yaml")):
                fail(loc, f'include: local file "{match}" does not have a yaml extension')
        return matches


def _as_map(value: object) -> MarkedMap:
    assert isinstance(value, MarkedMap)
    return value


def _extend(config: MarkedMap, name: str, chain: tuple[str, ...], done: dict[str, MarkedMap]) -> MarkedMap:
    if name in done:
        return done[name]
    job = _as_map(config[name])
    if len(chain) > MAX_EXTENDS_DEPTH:
        fail(job.loc, "extends: nesting too deep (more than 11 levels)", name)
    bases = job.get("extends")
    names = [bases] if isinstance(bases, str) else bases
    if bases is None:
        done[name] = job
        return job
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        fail(job.key_loc("extends"), "extends: must be a job name or a list of job names", name)
    merged = MarkedMap(job.loc)
    for base in names:
        if base in chain or base == name:
            cycle = " -> ".join((*chain, name, base))
            fail(job.key_loc("extends"), f"extends: circular dependency: {cycle}", name)
        if not isinstance(config.get(base), MarkedMap):
            fail(job.key_loc("extends"), f'extends: unknown job "{base}"', name)
        merged = _as_map(deep_merge(merged, _extend(config, base, (*chain, name), done)))
    result = _as_map(deep_merge(merged, job))
    done[name] = result
    return result


def _resolve(value: Any, config: MarkedMap, depth: int) -> Any:
    if isinstance(value, Reference):
        if depth >= MAX_REFERENCE_DEPTH:
            fail(value.loc, f"{value}: too many nested references")
        target: Any = config
        for key in value.path:
            if not isinstance(target, MarkedMap) or key not in target:
                fail(value.loc, f"{value}: could not be found")
            target = target[key]
        return _resolve(target, config, depth + 1)
    if isinstance(value, MarkedMap):
        return MarkedMap(value.loc, {k: _resolve(v, config, depth) for k, v in value.items()}, value.key_locs)
    if isinstance(value, MarkedSeq):
        return MarkedSeq(value.loc, [_resolve(v, config, depth) for v in value])
    return value


def compose(
    main: str, read: Reader, files: Sequence[str], rules_pass: RulesCheck, expand: Expand
) -> MarkedMap:
    """Return the configuration of ``main`` with includes merged, extends and references resolved.

    Raises:
        PipelineFileError: a file is missing or not YAML, an include is unsupported, an
            ``extends`` is unknown, circular or too deep, or a ``!reference`` does not resolve.
    """
    config = _Includes(read, files, rules_pass, expand).load(main, None)
    done: dict[str, MarkedMap] = {}
    extended = MarkedMap(config.loc, {}, config.key_locs)
    for name, value in config.items():
        is_job = isinstance(value, MarkedMap) and name not in GLOBAL_KEYWORDS
        extended[name] = _extend(config, name, (), done) if is_job else value
    return _as_map(_resolve(extended, extended, 0))
