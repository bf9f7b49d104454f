"""The TOML text layer of config: key lines for error messages, and gitlab-runner's layout."""

from __future__ import annotations

import string
import textwrap
import tomllib
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skyrunner.config._toml import find_line, index_key_lines, render_path, render_toml

TRICKY = textwrap.dedent(
    """\
    # a comment with "quotes" and [brackets]
    concurrent = 1 # trailing comment = here

    [[runners]]
      name = "one"
      environment = ["A=1",
    "B=[2]",
       ]
      script = \"\"\"
    [not.a.table]
    fake = 1
    \"\"\"
      literal = '''
    [[runners]]
    '''
      "quoted.key" = 1
      dotted.inner = 2
      inline = { a = 1, b = [1, 2] }
      [runners.kubernetes]
        host = "h#not-a-comment"
        [[runners.kubernetes.volumes.pvc]]
          name = "a"
        [[runners.kubernetes.volumes.pvc]]
          name = "b"

    [[runners]]
      name = "two"
      [runners.kubernetes]
        [[runners.kubernetes.volumes.pvc]]
          name = "c"
    """
)


def test_tricky_document_is_valid_toml() -> None:
    data = tomllib.loads(TRICKY)
    assert len(data["runners"]) == 2
    assert "[not.a.table]" in data["runners"][0]["script"]


@pytest.mark.parametrize(
    ("path", "line"),
    [
        (("concurrent",), 2),
        (("runners", 0), 4),
        (("runners", 0, "name"), 5),
        (("runners", 0, "environment"), 6),
        (("runners", 0, "environment", 1), 6),
        (("runners", 0, "script"), 9),
        (("runners", 0, "literal"), 13),
        (("runners", 0, "quoted.key"), 16),
        (("runners", 0, "dotted", "inner"), 17),
        (("runners", 0, "dotted"), 17),
        (("runners", 0, "inline", "b"), 18),
        (("runners", 0, "kubernetes"), 19),
        (("runners", 0, "kubernetes", "host"), 20),
        (("runners", 0, "kubernetes", "volumes", "pvc", 0, "name"), 22),
        (("runners", 0, "kubernetes", "volumes", "pvc", 1), 23),
        (("runners", 0, "kubernetes", "volumes", "pvc", 1, "name"), 24),
        (("runners", 1, "name"), 27),
        (("runners", 1, "kubernetes", "volumes", "pvc", 0, "name"), 30),
        (("runners", 1, "missing"), 26),
    ],
    ids=lambda value: render_path(value) if isinstance(value, tuple) else str(value),
)
def test_key_lines(path: tuple[str | int, ...], line: int) -> None:
    assert find_line(index_key_lines(TRICKY), path) == line


def test_multiline_string_content_is_not_indexed() -> None:
    lines = index_key_lines(TRICKY)
    assert ("not",) not in lines
    assert ("fake",) not in lines
    assert ("runners", 2) not in lines


def test_unknown_path_has_no_line() -> None:
    assert find_line(index_key_lines(TRICKY), ("nothing", "here")) is None


@pytest.mark.parametrize(
    ("path", "spelled"),
    [
        (("concurrent",), "concurrent"),
        (("runners", 0, "kubernetes", "cpu_limit"), "runners[0].kubernetes.cpu_limit"),
        (
            ("runners", 1, "pod_annotations", "k8s.aliyun.com/eci"),
            'runners[1].pod_annotations."k8s.aliyun.com/eci"',
        ),
        (("runners", 0, "tls-ca-file"), "runners[0].tls-ca-file"),
        (("environment", 2), "environment[2]"),
    ],
    ids=["global", "nested", "quoted", "dashes", "index"],
)
def test_render_path(path: tuple[str | int, ...], spelled: str) -> None:
    assert render_path(path) == spelled


def test_render_toml_layout() -> None:
    text = render_toml(
        {
            "concurrent": 2,
            "runners": [
                {
                    "name": "r",
                    "kubernetes": {"pod_annotations": {"a.b/c": "x"}, "image": "alpine"},
                    "environment": ["A=1"],
                }
            ],
            "session_server": {"session_timeout": 1800},
        }
    )
    assert text == textwrap.dedent(
        """\
        concurrent = 2

        [[runners]]
          name = "r"
          environment = [
            "A=1",
          ]
          [runners.kubernetes]
            image = "alpine"
            [runners.kubernetes.pod_annotations]
              "a.b/c" = "x"

        [session_server]
          session_timeout = 1800
        """
    )


_keys = st.text(alphabet=string.ascii_letters + string.digits + "_-./ \"'", min_size=1, max_size=8)
_scalars = st.one_of(
    st.text(max_size=12),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.datetimes(timezones=st.just(UTC), min_value=datetime(1, 1, 1), max_value=datetime(9999, 1, 1)),
)
_tables = st.recursive(
    st.dictionaries(_keys, st.one_of(_scalars, st.lists(_scalars, max_size=3)), max_size=4),
    lambda inner: st.dictionaries(
        _keys, st.one_of(inner, st.lists(inner, min_size=1, max_size=2)), max_size=3
    ),
    max_leaves=12,
)


def leaf_paths(table: dict[str, object], path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    found: list[tuple[str | int, ...]] = []
    for key, value in table.items():
        inner = (*path, key)
        if isinstance(value, dict):
            found += leaf_paths(value, inner)
        elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            for index, item in enumerate(value):
                found += leaf_paths(item, (*inner, index))
        else:
            found.append(inner)
    return found


@settings(max_examples=200, deadline=None)
@given(_tables)
def test_render_toml_reads_back_and_indexes_every_key(data: dict[str, object]) -> None:
    text = render_toml(data)

    assert tomllib.loads(text) == data
    lines = index_key_lines(text)
    source = text.split("\n")
    for path in leaf_paths(data):
        key = path[-1]
        assert isinstance(key, str)
        assert source[lines[path] - 1].lstrip().startswith(render_path((key,)) + " = ")
