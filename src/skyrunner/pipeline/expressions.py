"""GitLab's ``rules:if`` expression language: lexer, parser and evaluator.

Pure: no I/O. Matches GitLab's ``Gitlab::Ci::Pipeline::Expression`` (``lexeme/*.rb``):

* operands: ``$VAR`` (only this form: ``${VAR}`` is a syntax error, as in GitLab), string
  literals ``"..."`` and ``'...'`` (no escapes), ``null``, and patterns ``/regex/flags`` with the
  RE2 flags GitLab accepts, ``i`` (ignore case), ``m`` (multi-line), ``s`` (dot matches newline);
  ``U`` (ungreedy) has no Python equivalent and is reported as unsupported;
* operators ``==``, ``!=``, ``=~``, ``!~``, then ``&&``, then ``||`` (``&&`` binds tighter), and
  parentheses;
* an undefined variable is ``null``; ``$VAR`` alone is true when its value is not blank;
* ``=~`` searches (not a full match); its right side may be a variable holding ``/regex/flags``
  (GitLab 15+); a variable that holds no valid pattern is searched for the left side as plain text,
  as GitLab's ``String#scan`` fallback does;
* ``&&``/``||`` return an operand with Ruby truthiness (only null and false are false, so an empty
  string is true inside them); the statement's result is then tested for presence (non-blank).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

from skyrunner.errors import PipelineFileError

__all__ = ["Expression", "evaluate", "parse"]

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<var>\$[A-Za-z0-9_]+)
    | "(?P<dq>[^"]*)" | '(?P<sq>[^']*)'
    | (?P<pattern>/(?:\\.|[^/\\])+/[A-Za-z]*)
    | (?P<null>null\b)
    | (?P<op>==|!=|=~|!~|&&|\|\||\(|\))
    )""",
    re.VERBOSE,
)
_PATTERN = re.compile(r"/((?:\\.|[^/\\])+)/([A-Za-z]*)", re.DOTALL)
_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # var, str, pattern, null, op
    text: str


@dataclass(frozen=True, slots=True)
class _Regex:
    regex: re.Pattern[str]


_Value = str | bool | None | _Regex


class _SyntaxError(Exception):
    pass


def _compile_pattern(text: str) -> _Regex:
    match = _PATTERN.fullmatch(text)
    if match is None:
        raise _SyntaxError(f"invalid pattern {text}")
    body, flags = match.group(1).replace("\\/", "/"), match.group(2)
    bits = 0
    for flag in flags:
        if flag not in _FLAGS:
            raise _SyntaxError(f"unsupported regular expression flag {flag!r} in {text}")
        bits |= _FLAGS[flag]
    try:
        return _Regex(re.compile(body, bits))
    except re.error as exc:
        raise _SyntaxError(f"invalid regular expression {text}: {exc}") from exc


def _tokenize(expr: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos, end = 0, len(expr.rstrip())
    while pos < end:
        match = _TOKEN.match(expr, pos)
        if match is None or match.end() == pos:
            raise _SyntaxError(f"unknown lexeme at {expr[pos:].strip()[:20]!r}")
        kind = match.lastgroup or ""
        text = match.group(kind)
        if kind in ("dq", "sq"):
            kind = "str"
        tokens.append(_Token(kind, text))
        pos = match.end()
    return tokens


@dataclass(frozen=True, slots=True)
class _Node:
    kind: str  # var, str, pattern, null, or an operator
    text: str = ""
    left: _Node | None = None
    right: _Node | None = None


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take_op(self, *ops: str) -> str | None:
        token = self.peek()
        if token is not None and token.kind == "op" and token.text in ops:
            self.pos += 1
            return token.text
        return None

    def parse(self) -> _Node:
        node = self.or_expr()
        if self.peek() is not None:
            raise _SyntaxError(f"unexpected {self.tokens[self.pos].text!r}")
        return node

    def or_expr(self) -> _Node:
        node = self.and_expr()
        while self.take_op("||"):
            node = _Node("||", left=node, right=self.and_expr())
        return node

    def and_expr(self) -> _Node:
        node = self.comparison()
        while self.take_op("&&"):
            node = _Node("&&", left=node, right=self.comparison())
        return node

    def comparison(self) -> _Node:
        node = self.operand()
        op = self.take_op("==", "!=", "=~", "!~")
        if op is not None:
            node = _Node(op, left=node, right=self.operand())
        return node

    def operand(self) -> _Node:
        token = self.peek()
        if token is None:
            raise _SyntaxError("unexpected end of expression")
        if token.kind == "op":
            if self.take_op("("):
                node = self.or_expr()
                if not self.take_op(")"):
                    raise _SyntaxError("missing closing parenthesis")
                return node
            raise _SyntaxError(f"unexpected {token.text!r}")
        self.pos += 1
        if token.kind == "pattern":
            _compile_pattern(token.text)  # report a bad regex when parsing, as GitLab does
        return _Node(token.kind, token.text)


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed ``rules:if`` expression; :meth:`truthful` evaluates it against variables."""

    source: str
    root: _Node

    def truthful(self, variables: Mapping[str, str]) -> bool:
        """Return whether the expression holds for ``variables`` (GitLab's ``truthful?``)."""
        value = _evaluate(self.root, variables)
        if isinstance(value, str):
            return value.strip() != ""
        return value is not None and value is not False


@functools.lru_cache(maxsize=1024)
def parse(expr: str) -> Expression:
    """Parse ``expr``.

    Raises:
        PipelineFileError: the expression is not valid; the message quotes it.
    """
    try:
        tokens = _tokenize(expr)
        if not tokens:
            raise _SyntaxError("empty expression")
        return Expression(expr, _Parser(tokens).parse())
    except _SyntaxError as exc:
        raise PipelineFileError(f"invalid expression {expr!r}: {exc}") from None


def evaluate(expr: str, variables: Mapping[str, str]) -> bool:
    """Return whether ``expr`` holds for ``variables``.

    Raises:
        PipelineFileError: the expression is not valid; the message quotes it.
    """
    return parse(expr).truthful(variables)


def _operand(node: _Node, variables: Mapping[str, str]) -> _Value:
    if node.kind == "var":
        return variables.get(node.text[1:])
    if node.kind == "str":
        return node.text
    if node.kind == "pattern":
        return _compile_pattern(node.text)
    return None  # null


def _matches(text: _Value, pattern: _Value) -> bool:
    if pattern is None or pattern is False or pattern is True:
        return False
    subject = text if isinstance(text, str) else ""
    if isinstance(pattern, str):
        try:
            compiled = _compile_pattern(pattern)
        except _SyntaxError:
            return subject in pattern  # GitLab falls back to String#scan on the plain text
        return compiled.regex.search(subject) is not None
    return pattern.regex.search(subject) is not None


def _evaluate(node: _Node, variables: Mapping[str, str]) -> _Value:
    if node.left is None or node.right is None:
        return _operand(node, variables)
    left = _evaluate(node.left, variables)
    if node.kind == "&&":
        return _evaluate(node.right, variables) if _ruby_truthy(left) else left
    if node.kind == "||":
        return left if _ruby_truthy(left) else _evaluate(node.right, variables)
    right = _evaluate(node.right, variables)
    if node.kind == "==":
        return left == right
    if node.kind == "!=":
        return left != right
    if node.kind == "=~":
        return _matches(left, right)
    return not _matches(left, right)  # !~


def _ruby_truthy(value: _Value) -> bool:
    return value is not None and value is not False
