"""The job pod's labels and annotations.

Pure: no I/O. Labels: ``skyrunner.io/runner`` (the short token), ``skyrunner.io/job-id`` and
``app.kubernetes.io/managed-by: skyrunner``, which the runtime lists and adopts pods by and
which the config cannot change; then the config's ``pod_labels`` (expanded with the job's
variables and made valid as gitlab-runner's ``sanitizeLabel`` does) and the allowed
``KUBERNETES_POD_LABELS_*`` overwrites.

Annotations, later ones winning: gitlab-runner's ``job.runner.gitlab.com/*`` and
``project.runner.gitlab.com/id``; the config's ``pod_annotations`` (expanded); the allowed
``KUBERNETES_POD_ANNOTATIONS_*`` overwrites; on ECI the image cache and extra storage
annotations; and last the sizing's (``k8s.aliyun.com/eci-use-specs``), added by the assembly.
"""

from __future__ import annotations

from skyrunner.config import KubernetesConfig
from skyrunner.errors import ConfigError
from skyrunner.executors.base import PreparedJob
from skyrunner.executors.kubernetes._jobenv import JobEnvironment
from skyrunner.executors.kubernetes._names import is_qualified_name, sanitize_label_value
from skyrunner.executors.kubernetes._overwrites import CONFIG, overwrite_map
from skyrunner.executors.kubernetes._report import BuildReport
from skyrunner.executors.kubernetes._scheduling import check_label_map
from skyrunner.executors.kubernetes.podspec import (
    ANNOTATION_JOB_BEFORE_SHA,
    ANNOTATION_JOB_ID,
    ANNOTATION_JOB_NAME,
    ANNOTATION_JOB_REF,
    ANNOTATION_JOB_SHA,
    ANNOTATION_JOB_TIMEOUT,
    ANNOTATION_JOB_URL,
    ANNOTATION_PROJECT_ID,
    ECI_EXTRA_STORAGE,
    ECI_IMAGE_CACHE,
    LABEL_JOB_ID,
    LABEL_MANAGED_BY,
    LABEL_RUNNER,
    MANAGED_BY,
)
from skyrunner.executors.kubernetes.quantity import format_memory, parse_memory
from skyrunner.platforms import Platform

__all__ = ["go_duration", "pod_annotations", "pod_labels"]


def pod_labels(
    job: PreparedJob, cfg: KubernetesConfig, env: JobEnvironment, runner: str, report: BuildReport
) -> dict[str, str]:
    """The pod's labels (see the module docstring)."""
    ours = {LABEL_RUNNER: runner, LABEL_JOB_ID: str(job.spec.id), LABEL_MANAGED_BY: MANAGED_BY}
    configured = {
        key: sanitize_label_value(env.expand_visible(value, f"{CONFIG} pod_labels {key}", report))
        for key, value in cfg.pod_labels.items()
    }
    labels = overwrite_map(configured, cfg.pod_labels_overwrite_allowed, "KUBERNETES_POD_LABELS_", "pod_labels",
                           env, report)  # fmt: skip
    for key in ours.keys() & labels.keys():
        report.error(f"{CONFIG} pod_labels: {key} is skyrunner's own label")
    check_label_map(labels, f"{CONFIG} pod_labels", report)
    return {**labels, **ours}


def pod_annotations(
    job: PreparedJob, cfg: KubernetesConfig, env: JobEnvironment, platform: Platform, report: BuildReport
) -> dict[str, str]:
    """The pod's annotations before sizing adds its own (see the module docstring)."""
    spec = job.spec
    annotations = {
        ANNOTATION_JOB_ID: str(spec.id),
        ANNOTATION_JOB_URL: env.get("CI_JOB_URL"),
        ANNOTATION_JOB_SHA: spec.git_info.sha,
        ANNOTATION_JOB_BEFORE_SHA: spec.git_info.before_sha,
        ANNOTATION_JOB_REF: spec.git_info.ref,
        ANNOTATION_JOB_NAME: spec.job_info.name,
        ANNOTATION_JOB_TIMEOUT: go_duration(spec.timeout_s),
        ANNOTATION_PROJECT_ID: str(spec.job_info.project_id),
    }
    for key, value in cfg.pod_annotations.items():
        annotations[key] = env.expand_visible(value, f"{CONFIG} pod_annotations {key}", report)
    annotations = overwrite_map(annotations, cfg.pod_annotations_overwrite_allowed, "KUBERNETES_POD_ANNOTATIONS_",
                                "pod_annotations", env, report)  # fmt: skip
    annotations.update(_platform_annotations(cfg, platform, report))
    for key in annotations:
        if not is_qualified_name(key):
            report.error(f"{CONFIG} pod_annotations: {key!r} is not a valid annotation key")
    return annotations


def _platform_annotations(cfg: KubernetesConfig, platform: Platform, report: BuildReport) -> dict[str, str]:
    serverless = cfg.serverless
    extra = (serverless.extra_ephemeral_storage or "").strip()
    if platform is not Platform.ECI:
        if serverless.image_cache or extra:
            report.warn(f"{CONFIG} serverless image_cache and extra_ephemeral_storage apply on eci only")
        return {}
    out = {}
    if serverless.image_cache:
        out[ECI_IMAGE_CACHE] = "true"
    if extra:
        try:
            out[ECI_EXTRA_STORAGE] = format_memory(parse_memory(extra, f"{CONFIG} serverless.extra_ephemeral_storage"))
        except ConfigError as exc:
            report.error(str(exc))
    return out


def go_duration(seconds: int) -> str:
    """``seconds`` as Go prints a ``time.Duration`` (``1h0m0s``, ``2m5s``, ``30s``)."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
