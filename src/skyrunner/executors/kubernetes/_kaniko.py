"""Image builds without privileges: when a job gets the kaniko sidecar, and its two scripts.

Pure: no I/O besides reading the package's own script files. A job asks with
``SKYRUNNER_IMAGE_BUILDER=kaniko`` (``none`` turns a config default off); the config asks for
every job with ``[runners.kubernetes.serverless] image_builder = "kaniko"``.

The scripts are package files whose header comments are their README: ``kaniko-loop.sh`` runs
in the ``kaniko`` container as ``/skyrunner/bin/skyrunner-kaniko``, ``skyrunner-build.sh`` is
``/skyrunner/bin/skyrunner-build`` on the build container's PATH. Their default paths are
rendered from ``podspec.py``'s constants (``@RUN_DIR@``, ``@KANIKO_DIR@``...), so the pod and
the scripts agree; tests run them under ``sh`` with the paths set through the environment.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType
from typing import Final

from skyrunner.config import ImageBuilder, KubernetesConfig
from skyrunner.executors.kubernetes._jobenv import JobEnvironment
from skyrunner.executors.kubernetes._report import BuildReport
from skyrunner.executors.kubernetes.podspec import (
    BUILD_EXIT_MARKER,
    DEFAULT_KANIKO_IMAGE,
    IMAGE_BUILDER_VARIABLE,
    KANIKO_DIR,
    KANIKO_EXECUTOR,
    KANIKO_LOOP_FILE,
    RUN_DIR,
    SKYRUNNER_BUILD_FILE,
)

__all__ = ["kaniko_image", "kaniko_requested", "render_kaniko_files"]

_SOURCES: Final = {KANIKO_LOOP_FILE: "kaniko-loop.sh", SKYRUNNER_BUILD_FILE: "skyrunner-build.sh"}
_PLACEHOLDERS: Final = {
    "@RUN_DIR@": RUN_DIR,
    "@KANIKO_DIR@": KANIKO_DIR,
    "@KANIKO_EXECUTOR@": KANIKO_EXECUTOR,
    "@BUILD_EXIT_MARKER@": BUILD_EXIT_MARKER,
}


def kaniko_requested(cfg: KubernetesConfig, env: JobEnvironment, report: BuildReport) -> bool:
    """Whether the job's pod gets the kaniko sidecar."""
    wanted = env.get(IMAGE_BUILDER_VARIABLE).strip().lower()
    if not wanted:
        return cfg.serverless.image_builder is ImageBuilder.KANIKO
    try:
        return ImageBuilder(wanted) is ImageBuilder.KANIKO
    except ValueError:
        choices = " or ".join(builder.value for builder in ImageBuilder)
        report.error(f'{IMAGE_BUILDER_VARIABLE} "{wanted}" is not {choices}')
        return False


def kaniko_image(cfg: KubernetesConfig) -> str:
    return cfg.serverless.kaniko_image or DEFAULT_KANIKO_IMAGE


@functools.cache
def render_kaniko_files() -> Mapping[str, str]:
    """Run-dir path -> content of the sidecar's loop and of ``skyrunner-build``.

    Rendered once (every kaniko job's pod carries them); read-only, as the one copy is shared.
    """
    package = resources.files(__package__ or "skyrunner.executors.kubernetes")
    rendered = {}
    for path, source in _SOURCES.items():
        text = package.joinpath(source).read_text(encoding="utf-8")
        for placeholder, value in _PLACEHOLDERS.items():
            text = text.replace(placeholder, value)
        rendered[path] = text
    return MappingProxyType(rendered)
