"""Every package's __init__ is its surface: a sorted __all__ whose names all exist."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import skyrunner

PACKAGES = sorted(
    name for _, name, is_pkg in pkgutil.walk_packages(skyrunner.__path__, "skyrunner.") if is_pkg
)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_complete(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        pytest.skip(f"{name} exports nothing")
    assert list(exported) == sorted(exported), f"{name}.__all__ is not sorted"
    missing = [item for item in exported if not hasattr(module, item)]
    assert not missing, f"{name}.__all__ names what it does not have: {missing}"
