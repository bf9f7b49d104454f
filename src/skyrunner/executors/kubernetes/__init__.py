"""The kubernetes executor: every job is one self-sequencing pod, watched, logged and deleted.

Public surface: :func:`build_kubernetes_factory` (what ``assembly.py`` calls for a runner with
``executor = "kubernetes"``), the executor and its factory, and :func:`adopt_running_jobs` (what
the service calls on start and every ``ADOPT_EVERY_S`` to take over pods a previous process
left running). Modules: ``podspec`` (the pod, pure), ``sizing``/``cost`` (pure; the platforms
themselves are ``skyrunner.platforms``),
``connection``, ``pods`` (every API call), ``watch`` (one watch per namespace), ``logs`` (log
following with resume), ``executor``, ``adoption``.

The names are loaded on first use (PEP 562): importing a pure module of this package (the pod
builder, sizing) must not import the Kubernetes client and the runtime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from skyrunner.executors.kubernetes._factory import build_kubernetes_factory
    from skyrunner.executors.kubernetes.adoption import ADOPT_EVERY_S, AdoptedJob, Adoption, adopt_running_jobs
    from skyrunner.executors.kubernetes.executor import KubernetesExecutor, KubernetesExecutorFactory

__all__ = [
    "ADOPT_EVERY_S",
    "AdoptedJob",
    "Adoption",
    "KubernetesExecutor",
    "KubernetesExecutorFactory",
    "adopt_running_jobs",
    "build_kubernetes_factory",
]

_HOMES = {
    "ADOPT_EVERY_S": "adoption",
    "AdoptedJob": "adoption",
    "Adoption": "adoption",
    "adopt_running_jobs": "adoption",
    "KubernetesExecutor": "executor",
    "KubernetesExecutorFactory": "executor",
    "build_kubernetes_factory": "_factory",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
