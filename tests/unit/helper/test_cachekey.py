"""sanitize_cache_key against gitlab-runner's own table (cache/cachekey/cachekey_test.go)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skyrunner.helper.cachekey import sanitize_cache_key

CASES = [
    ("fallback_key", "fallback_key"),
    ("some-job/some-ref", "some-job/some-ref"),
    (".../....", ".../...."),
    ("fallback_key/", "fallback_key"),
    ("fallback_key ", "fallback_key"),
    ("fallback_key\\", "fallback_key"),
    ("fallback_key/ \\", "fallback_key"),
    ("fallback_key/ / \\  \\", "fallback_key"),
    ("fallback_key / \\o", "fallback_key / /o"),
    ("\t foo bar \t\r", "\t foo bar"),
    ("foo \t \r ", "foo"),
    ("something %2F something", "something / something"),
    ("some%2f../job/some/ref/.", "job/some/ref"),
    ("%2E%2E%2E", "..."),
    ("%5C", "%5C"),
    ("foo/blipp/../bar", "foo/bar"),
    ("/foo/bar", "foo/bar"),
    ("//foo/bar", "foo/bar"),
    ("../foo/bar", "foo/bar"),
    ("foo/bar/../../../.././blerp", "blerp"),
    ("job\\name/git\\ref", "job/name/git/ref"),
    ("..\\foo\\bar", "foo/bar"),
    ("foo/ /bar", "foo/ /bar"),
    ("foo/ / /", "foo"),
    # stricter than gitlab-runner: a trailing ".. " must not become a ".." segment
    ("foo/bar/.. ", "foo"),
    ("foo/. ", "foo"),
]
REFUSED = ["", "\\", "\\.", "/", " ", ".", "..", " / ", "//", "../.", "foo/bar/../..", "%2E%2E", ".%2E", " \t\r\n"]


@pytest.mark.parametrize(("raw", "expected"), CASES, ids=[repr(c[0]) for c in CASES])
def test_sanitises_like_gitlab_runner(raw: str, expected: str) -> None:
    assert sanitize_cache_key(raw) == expected


@pytest.mark.parametrize("raw", REFUSED, ids=[repr(r) for r in REFUSED])
def test_unsanitisable_keys_give_none(raw: str) -> None:
    assert sanitize_cache_key(raw) is None


@given(st.text(alphabet="ab./\\ %2fFeE\t", max_size=30))
def test_result_is_always_a_safe_relative_key(raw: str) -> None:
    key = sanitize_cache_key(raw)
    if key is None:
        return
    assert not key.startswith("/") and not key.endswith(("/", " ")) and "\\" not in key
    assert all(segment not in ("", ".", "..") for segment in key.split("/"))
    assert sanitize_cache_key(key) == key
