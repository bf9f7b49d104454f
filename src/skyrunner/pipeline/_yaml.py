"""YAML for .gitlab-ci.yml: anchors, aliases, ``<<`` merges and ``!reference``, with line marks.

Pure: no I/O. :func:`parse_yaml` turns a file's text into plain Python values, except that
mappings are :class:`MarkedMap` and sequences :class:`MarkedSeq`, which remember the file and
line they (and each mapping key) came from, and ``!reference [job, key, ...]`` becomes a
:class:`Reference` to be resolved once every file is merged (``_compose.py``). Scalars stay
plain (timestamps stay strings: GitLab reads ``2024-01-01`` as text). The marks are what lets
every error name ``file:line``; they survive merging because merges copy them along.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

import yaml

from skyrunner.errors import PipelineFileError

__all__ = ["Loc", "MarkedMap", "MarkedSeq", "Reference", "fail", "parse_yaml"]


@dataclass(frozen=True, slots=True)
class Loc:
    """A place in a pipeline file: repository-relative path and 1-based line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


def fail(loc: Loc, message: str, job: str | None = None) -> NoReturn:
    """Raise the one-line error ``file:line: [job "name": ]message``."""
    where = f'job "{job}": ' if job is not None else ""
    raise PipelineFileError(f"{loc}: {where}{message}")


class MarkedMap(dict[str, Any]):
    """A YAML mapping that knows where it and each of its keys came from."""

    loc: Loc
    key_locs: dict[str, Loc]

    def __init__(
        self, loc: Loc, items: dict[str, Any] | None = None, key_locs: dict[str, Loc] | None = None
    ) -> None:
        super().__init__(items or {})
        self.loc = loc
        self.key_locs = dict(key_locs or {})

    def key_loc(self, key: str) -> Loc:
        """Return where ``key`` was written, or where the mapping starts."""
        return self.key_locs.get(key, self.loc)


class MarkedSeq(list[Any]):
    """A YAML sequence that knows where it came from."""

    loc: Loc

    def __init__(self, loc: Loc, items: list[Any] | None = None) -> None:
        super().__init__(items or [])
        self.loc = loc


@dataclass(frozen=True, slots=True)
class Reference:
    """``!reference [job, key, ...]``, unresolved."""

    path: tuple[str, ...]
    loc: Loc

    def __str__(self) -> str:
        return "!reference [" + ", ".join(self.path) + "]"


class _Loader(yaml.SafeLoader):
    filename = ""

    def loc(self, node: yaml.Node) -> Loc:
        return Loc(self.filename, node.start_mark.line + 1)


def _key_text(key: object) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return "" if key is None else str(key)


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> MarkedMap:
    loader.flatten_mapping(node)
    result = MarkedMap(loader.loc(node))
    for key_node, value_node in node.value:
        key = _key_text(loader.construct_object(key_node, deep=True))
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_locs[key] = loader.loc(key_node)
    return result


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> MarkedSeq:
    return MarkedSeq(loader.loc(node), [loader.construct_object(n, deep=True) for n in node.value])


def _construct_reference(loader: _Loader, node: yaml.Node) -> Reference:
    loc = loader.loc(node)
    if (
        not isinstance(node, yaml.SequenceNode)
        or not node.value
        or not all(isinstance(item, yaml.ScalarNode) for item in node.value)
    ):
        fail(loc, "!reference must be a sequence of names, like !reference [job, key]")
    return Reference(tuple(str(loader.construct_scalar(item)) for item in node.value), loc)


def _construct_text(loader: _Loader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_text)
_Loader.add_constructor("!reference", _construct_reference)


def parse_yaml(text: str, filename: str) -> list[Any]:
    """Parse every YAML document of ``text``; errors name ``filename`` and the line.

    Raises:
        PipelineFileError: the text is not valid YAML or uses an unknown tag.
    """
    loader = _Loader(text)
    loader.filename = filename
    try:
        documents = []
        while loader.check_data():  # type: ignore[no-untyped-call]
            documents.append(loader.get_data())
        return documents
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = " ".join(str(exc.problem or exc.context or "invalid yaml").split())
        raise PipelineFileError(f"{filename}:{line}: yaml: {problem}") from exc
    except yaml.YAMLError as exc:
        raise PipelineFileError(f"{filename}:1: yaml: {' '.join(str(exc).split())}") from exc
    finally:
        loader.dispose()
