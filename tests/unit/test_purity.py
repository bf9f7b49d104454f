"""Pure modules do no I/O: no event loop, processes, network clients, clocks or randomness.

Checked on the imports each module makes (not transitively): a pure module that needs a value from
the outside world takes it as an argument.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[2] / "src" / "skyrunner"

PURE = [
    "job/spec.py", "job/variables.py", "job/script.py", "job/outcome.py", "job/_masking.py",
    "job/helper_plan.py", "job/prepare.py", "job/durations.py", "job/settings.py", "job/remote_cache.py",
    "helper/plan.py", "helper/cachekey.py", "gitlab/models.py",
    "executors/kubernetes/podspec.py", "executors/kubernetes/sizing.py", "executors/kubernetes/quantity.py",
    "executors/kubernetes/cost.py", "platforms.py",
    "pipeline/expressions.py", "pipeline/payload.py", "pipeline/model.py",
    "config/_parse.py", "config/_models.py", "config/_kubernetes.py",
]  # fmt: skip

FORBIDDEN = {"asyncio", "subprocess", "socket", "httpx2", "httpx", "aiohttp", "random", "time", "threading",
             "lightkube.core", "lightkube.config", "shutil", "tempfile"}  # fmt: skip
FORBIDDEN_NAMES = {("os", "environ"), ("os", "getenv")}


def imported_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("path", [p for p in PURE if (SRC / p).exists()])
def test_pure_module_imports_no_io(path: str) -> None:
    source = (SRC / path).read_text()
    tree = ast.parse(source)
    bad = {m for m in imported_modules(tree) if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)}
    assert not bad, f"{path} is documented pure but imports {sorted(bad)}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            assert (node.value.id, node.attr) not in FORBIDDEN_NAMES, f"{path} reads {node.value.id}.{node.attr}"
    docstring = ast.get_docstring(tree) or ""
    assert "pure" in docstring.lower(), f"{path} should say in its docstring that it is pure"
