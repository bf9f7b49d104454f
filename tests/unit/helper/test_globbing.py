"""Doublestar patterns: parsing, escaping the root, matching."""

from __future__ import annotations

import pytest

from skyrunner.helper.globbing import expand_braces, matches_any, parse_glob

ROOT = "/builds/group/project"

MATCHES = [
    ("vendor", "vendor", True),
    ("vendor", "vendor/x", False),
    ("*.txt", "a.txt", True),
    ("*.txt", "dir/a.txt", False),
    ("**/*.txt", "a.txt", True),
    ("**/*.txt", "d/e/a.txt", True),
    ("a/**/b", "a/b", True),
    ("a/**/b", "a/x/y/b", True),
    ("a/**/b", "a/x/y/c", False),
    ("a/**", "a/x/y", True),
    ("?.log", "a.log", True),
    ("?.log", "ab.log", False),
    ("[ab].c", "b.c", True),
    ("[!ab].c", "b.c", False),
    ("[^ab].c", "z.c", True),
    ("*", ".hidden", True),
    ("./cov/*.xml", "cov/r.xml", True),
    ("cov/../out/*", "out/x", True),
    (f"{ROOT}/abs/*", "abs/x", True),
    ("a\\*b", "a*b", True),
    ("a\\*b", "axb", False),
]


@pytest.mark.parametrize(("pattern", "path", "expected"), MATCHES, ids=[f"{p}~{q}" for p, q, _ in MATCHES])
def test_matching(pattern: str, path: str, expected: bool) -> None:
    parsed = parse_glob(pattern, ROOT)
    assert parsed is not None
    assert any(p.matches(path) for p in parsed) is expected


@pytest.mark.parametrize("pattern", ["../x", "a/../../x", "/etc/passwd", "/builds/group/project-other/x", "**/../x"])
def test_patterns_leaving_the_root_are_refused(pattern: str) -> None:
    assert parse_glob(pattern, ROOT) is None


def test_braces_and_literal_prefix() -> None:
    assert expand_braces("{a,b{c,d}}/x") == ["a/x", "bc/x", "bd/x"]
    assert expand_braces("no{brace") == ["no{brace"]
    [first, second] = parse_glob("{src,lib}/**/*.o", ROOT) or []
    assert (first.literal_prefix, second.literal_prefix) == ("src", "lib")
    [literal] = parse_glob("vendor/bundle/", ROOT) or []
    assert literal.is_literal and literal.literal_prefix == "vendor/bundle"


def test_exclude_is_not_recursive_like_gitlab_runner() -> None:
    # gitlab-runner's isExcluded is doublestar.Match on each path: "dir" drops the directory's
    # own entry only, "dir/**" drops it and everything below
    patterns = parse_glob("coverage/tmp", ROOT) or []
    assert matches_any(patterns, "coverage/tmp")
    assert not matches_any(patterns, "coverage/tmp/a/b.log")
    assert not matches_any(patterns, "coverage/index.html")
    everything = parse_glob("coverage/tmp/**", ROOT) or []
    assert matches_any(everything, "coverage/tmp") and matches_any(everything, "coverage/tmp/a/b.log")


def test_trailing_doublestar_matches_the_directory_itself() -> None:
    [pattern] = parse_glob("a/**", ROOT) or []
    assert pattern.matches("a") and pattern.matches("a/b/c") and not pattern.matches("ab")
