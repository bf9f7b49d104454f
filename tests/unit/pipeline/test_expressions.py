"""GitLab's rules:if expression language: operators, precedence, regex flags, null, presence."""

from __future__ import annotations

import pytest

from skyrunner.errors import PipelineFileError
from skyrunner.pipeline.expressions import evaluate, parse

VARS = {
    "BRANCH": "main",
    "TAG": "v1.2.3",
    "EMPTY": "",
    "BLANK": "   ",
    "FEATURE": "feature/Login",
    "PATTERN": "/^feat/i",
    "PLAIN": "some text here",
    "MULTI": "line one\nline two",
    "SAME": "main",
}

CASES = [
    # presence
    ("$BRANCH", True),
    ("$UNDEFINED", False),
    ("$EMPTY", False),
    ("$BLANK", False),
    # equality, null
    ('$BRANCH == "main"', True),
    ("$BRANCH == 'main'", True),
    ('$BRANCH != "main"', False),
    ('"main" == $BRANCH', True),
    ("$BRANCH == $SAME", True),
    ("$UNDEFINED == null", True),
    ("$EMPTY == null", False),
    ('$EMPTY == ""', True),
    ("$BRANCH != null", True),
    ("null == null", True),
    # regex
    ("$TAG =~ /^v\\d+\\.\\d+/", True),
    ("$TAG !~ /^v\\d+/", False),
    ("$FEATURE =~ /login/", False),
    ("$FEATURE =~ /login/i", True),
    ("$FEATURE =~ /Login$/", True),
    ("$FEATURE =~ /feature\\/Login/", True),
    ("$MULTI =~ /^line two$/", False),
    ("$MULTI =~ /^line two$/m", True),
    ("$MULTI =~ /one.line/", False),
    ("$MULTI =~ /one.line/s", True),
    ("$UNDEFINED =~ /.*/", True),
    ("$UNDEFINED =~ /x/", False),
    ("$BRANCH =~ $UNDEFINED", False),
    ("$BRANCH !~ $UNDEFINED", True),
    # a variable holding a pattern on the right (GitLab 15+), or plain text (String#scan)
    ("$FEATURE =~ $PATTERN", True),
    ("$BRANCH =~ $PATTERN", False),
    ('"text" =~ $PLAIN', True),
    ('"nope" =~ $PLAIN', False),
    # && binds tighter than ||
    ('$BRANCH == "main" || $BRANCH == "dev" && $UNDEFINED', True),
    ('($BRANCH == "main" || $BRANCH == "dev") && $UNDEFINED', False),
    ('$UNDEFINED && $BRANCH == "main" || $TAG', True),
    ('$BRANCH == "x" || $TAG == "y" || $SAME == "main"', True),
    ("$BRANCH && $TAG && $UNDEFINED", False),
    # Ruby truthiness inside && and ||: an empty string is true there
    ("$EMPTY && $BRANCH", True),
    ("$UNDEFINED || $EMPTY", False),
    ('(($BRANCH == "main"))', True),
    ('$BRANCH=="main"&&$TAG=~/v1/', True),
]


@pytest.mark.parametrize(("expr", "expected"), CASES, ids=[c[0] for c in CASES])
def test_evaluate(expr: str, expected: bool) -> None:
    assert evaluate(expr, VARS) is expected


ERRORS = [
    ("${BRANCH} == 'main'", "unknown lexeme"),
    ('$BRANCH == "main" &&', "unexpected end"),
    ('($BRANCH == "main"', "missing closing parenthesis"),
    ('$BRANCH == "main")', "unexpected ')'"),
    ("$BRANCH =~ /[unclosed/", "invalid regular expression"),
    ("$BRANCH =~ /x/U", "unsupported regular expression flag 'U'"),
    ("$BRANCH = 'main'", "unknown lexeme"),
    ("", "empty expression"),
    ("$A $B", "unexpected '$B'"),
]


@pytest.mark.parametrize(("expr", "reason"), ERRORS, ids=[e[0] or "empty" for e in ERRORS])
def test_parse_errors_name_the_expression(expr: str, reason: str) -> None:
    with pytest.raises(PipelineFileError) as info:
        parse(expr)
    message = str(info.value)
    assert f"invalid expression {expr!r}" in message
    assert reason in message
    assert "\n" not in message
