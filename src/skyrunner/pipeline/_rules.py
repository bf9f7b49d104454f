"""Deciding whether a job (or the pipeline, or an include) is in: ``rules``, ``only``/``except``.

Pure: no I/O. ``rules`` are checked whole first (keys, ``when`` values, ``if`` syntax), then the
first rule whose clauses all hold wins (``if`` with ``expressions.py``, ``changes`` against the
checkout's changed files, ``exists`` against its files, globs as Ruby's ``File.fnmatch?`` with
PATHNAME|DOTMATCH|EXTGLOB); no match means the job is not added. ``only``/``except`` follow
``Gitlab::Ci::Build::Policy``: a job is in when every part of ``only`` holds and no part of
``except`` does; refs match ``branches``, ``tags``, the source (``pushes``), ``/regex/`` or a
literal name, optionally ``@group/project``. The pipeline is always a push of the checkout.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from skyrunner.errors import PipelineFileError
from skyrunner.pipeline import expressions
from skyrunner.pipeline._compose import glob_regex
from skyrunner.pipeline._entries import check_keys, parse_strings, parse_variables
from skyrunner.pipeline._yaml import Loc, MarkedMap, fail
from skyrunner.pipeline.checkout import Checkout, RefType
from skyrunner.pipeline.model import Variable

__all__ = [
    "INCLUDE_RULE_KEYS",
    "JOB_RULE_KEYS",
    "WORKFLOW_RULE_KEYS",
    "RuleContext",
    "RuleMatch",
    "check_if",
    "match_rules",
    "only_except_pass",
]

JOB_RULE_KEYS = frozenset(
    {"if", "changes", "exists", "when", "allow_failure", "variables", "needs", "interruptible", "start_in"}
)
WORKFLOW_RULE_KEYS = frozenset({"if", "changes", "exists", "when", "variables", "auto_cancel"})
INCLUDE_RULE_KEYS = frozenset({"if", "changes", "exists", "when"})
_JOB_WHEN = ("on_success", "on_failure", "always", "manual", "delayed", "never")
_PIPELINE_SOURCE = "push"


@dataclass(frozen=True, slots=True)
class RuleContext:
    """What rules look at: the variables in scope and the checkout."""

    variables: Mapping[str, str]
    checkout: Checkout

    def expand(self, text: str) -> str:
        """Expand ``$VAR`` and ``${VAR}`` in a path, as GitLab does for changes/exists/include."""
        return re.sub(
            r"\$(?:\{(\w+)\}|(\w+))", lambda m: self.variables.get(m.group(1) or m.group(2), ""), text
        )


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """The attributes of the rule that matched; ``None`` means "not set by the rule"."""

    when: str | None = None
    allow_failure: bool | None = None
    variables: tuple[Variable, ...] = ()
    needs: object = None
    interruptible: bool | None = None
    start_in: str | None = None


def check_if(expr: object, loc: Loc, job: str | None) -> str:
    """Return a syntactically valid expression, or fail naming it."""
    if not isinstance(expr, str):
        fail(loc, "rules:if: must be a string", job)
    try:
        expressions.parse(expr)
    except PipelineFileError as exc:
        fail(loc, f"rules:if: {exc}", job)
    return expr


def _flat_rules(rules: object, loc: Loc, job: str | None) -> list[MarkedMap]:
    if not isinstance(rules, list):
        fail(loc, "rules: must be a list of rules", job)
    flat: list[MarkedMap] = []
    for rule in rules:
        if isinstance(rule, list):
            flat.extend(_flat_rules(rule, loc, job))
        elif isinstance(rule, MarkedMap):
            flat.append(rule)
        else:
            fail(loc, "rules: each rule must be a hash", job)
    return flat


def _paths(value: object, rule: MarkedMap, key: str, job: str | None) -> tuple[str, ...]:
    where = rule.key_loc(key)
    if isinstance(value, MarkedMap):
        unsupported = sorted(set(value) - {"paths"})
        if unsupported:
            fail(where, f"rules:{key}:{unsupported[0]} is not supported", job)
        value = value.get("paths")
    return parse_strings(value, where, job, f"rules:{key}")


def _check_rule(rule: MarkedMap, allowed: frozenset[str], whens: tuple[str, ...], job: str | None) -> None:
    check_keys(rule, allowed, job, "rules")
    if "if" in rule:
        check_if(rule["if"], rule.key_loc("if"), job)
    if "when" in rule and rule["when"] not in whens:
        fail(rule.key_loc("when"), f'rules:when: "{rule["when"]}" is not one of {", ".join(whens)}', job)
    if "allow_failure" in rule and not isinstance(rule["allow_failure"], bool):
        fail(rule.key_loc("allow_failure"), "rules:allow_failure: must be true or false", job)
    for key in ("changes", "exists"):
        if key in rule:
            _paths(rule[key], rule, key, job)


def _changes_hold(paths: Iterable[str], ctx: RuleContext) -> bool:
    """Whether a changed file matches one of ``paths`` (rules:changes and only/except:changes)."""
    if not ctx.checkout.before_sha.strip("0"):
        return True  # GitLab: changes always holds when there is no previous commit to compare with
    globs = [glob_regex(ctx.expand(p)) for p in paths]
    return any(g.match(path) for g in globs for path in ctx.checkout.changed_files)


def _holds(rule: MarkedMap, ctx: RuleContext, job: str | None) -> bool:
    if "if" in rule and not expressions.evaluate(rule["if"], ctx.variables):
        return False
    if "changes" in rule and not _changes_hold(_paths(rule["changes"], rule, "changes", job), ctx):
        return False
    if "exists" in rule:
        globs = [glob_regex(ctx.expand(p).lstrip("/")) for p in _paths(rule["exists"], rule, "exists", job)]
        if not any(g.match(path) for g in globs for path in ctx.checkout.files):
            return False
    return True


def match_rules(
    rules: object,
    loc: Loc,
    job: str | None,
    ctx: RuleContext,
    *,
    allowed: frozenset[str] = JOB_RULE_KEYS,
    whens: tuple[str, ...] = _JOB_WHEN,
) -> RuleMatch | None:
    """Return the first matching rule's attributes, or ``None`` when no rule matches."""
    flat = _flat_rules(rules, loc, job)
    for rule in flat:
        _check_rule(rule, allowed, whens, job)
    for rule in flat:
        if _holds(rule, ctx, job):
            return _match(rule, job)
    return None


def _match(rule: MarkedMap, job: str | None) -> RuleMatch:
    interruptible = rule.get("interruptible")
    start_in = rule.get("start_in")
    return RuleMatch(
        when=rule.get("when"),
        allow_failure=rule.get("allow_failure"),
        variables=parse_variables(rule.get("variables"), rule.key_loc("variables"), job, "rules:variables"),
        needs=rule.get("needs"),
        interruptible=interruptible if isinstance(interruptible, bool) else None,
        start_in=str(start_in) if start_in is not None else None,
    )


def _ref_matches(pattern: str, ctx: RuleContext) -> bool:
    checkout = ctx.checkout
    pattern, _, project = pattern.partition("@")
    if project and project != checkout.project_path:
        return False
    if pattern == "tags" and checkout.ref_type is RefType.TAG:
        return True
    if pattern == "branches" and checkout.ref_type is RefType.BRANCH:
        return True
    if pattern in (_PIPELINE_SOURCE, _PIPELINE_SOURCE + "es"):
        return True
    if pattern.startswith("/"):
        try:
            return expressions.evaluate(f"$REF =~ {pattern}", {"REF": checkout.ref_name})
        except PipelineFileError:
            return False
    return pattern == checkout.ref_name


def _policy_parts(value: object, loc: Loc, job: str | None, key: str) -> dict[str, Any]:
    if isinstance(value, list):
        return {"refs": parse_strings(value, loc, job, key)}
    if not isinstance(value, MarkedMap):
        fail(loc, f"{key}: must be a list of refs or a hash", job)
    check_keys(value, ("refs", "variables", "changes", "kubernetes"), job, key)
    parts: dict[str, Any] = {
        k: parse_strings(v, value.key_loc(k), job, f"{key}:{k}")
        for k, v in value.items()
        if k != "kubernetes"
    }
    for expr in parts.get("variables", ()):
        check_if(expr, value.key_loc("variables"), job)
    if "kubernetes" in value:
        parts["kubernetes"] = value["kubernetes"]
    return parts


def _part_holds(part: str, values: Any, ctx: RuleContext) -> bool:
    if part == "refs":
        return any(_ref_matches(p, ctx) for p in values)
    if part == "variables":
        return any(expressions.evaluate(expr, ctx.variables) for expr in values)
    if part == "changes":
        return _changes_hold(values, ctx)
    return False  # kubernetes: active: no cluster integration for local pipelines


def only_except_pass(only: object, except_: object, loc: Loc, job: str | None, ctx: RuleContext) -> bool:
    """Return whether ``only`` holds in every part and ``except`` in none (defaults: in)."""
    only_parts = _policy_parts(only, loc, job, "only") if only is not None else {}
    except_parts = _policy_parts(except_, loc, job, "except") if except_ is not None else {}
    if not all(_part_holds(k, v, ctx) for k, v in only_parts.items()):
        return False
    return not any(_part_holds(k, v, ctx) for k, v in except_parts.items())
