"""Building a runner's kubernetes executor factory from its config.toml entry.

Owns :func:`build_kubernetes_factory`, the one function ``assembly.py`` calls: it connects
(``connection.py``: host, in-cluster or kubeconfig; no request yet) and hands the factory the
pod paths of the builds and cache directories (``/builds`` and ``/cache`` unless configured).
"""

from __future__ import annotations

import logging
from pathlib import Path

from skyrunner.config import RunnerConfig
from skyrunner.executors.base import ExecutorObserver
from skyrunner.executors.kubernetes.connection import connect, describe_source
from skyrunner.executors.kubernetes.executor import KubernetesExecutorFactory

__all__ = ["build_kubernetes_factory"]

log = logging.getLogger(__name__)


def build_kubernetes_factory(
    runner: RunnerConfig, observer: ExecutorObserver | None = None
) -> KubernetesExecutorFactory:
    """The executor factory of one ``[[runners]]`` entry with ``executor = "kubernetes"``.

    Raises:
        ConfigError: the connection settings are wrong (a missing file, key_file naming the
            certificate, no credentials at all).
    """
    cfg = runner.kubernetes_or_default()
    connection = connect(cfg)
    dirs = runner.resolve_dirs(Path("/"))
    log.info(
        "runner %s: kubernetes via %s, namespace %s",
        runner.short_token,
        describe_source(connection.source),
        connection.namespace,
    )
    return KubernetesExecutorFactory(
        cfg,
        connection,
        short_token=runner.short_token,
        builds_dir=str(dirs.builds_dir),
        cache_dir=str(dirs.cache_dir),
        observer=observer,
    )
