"""The predefined ``CI_*`` variables GitLab sets for a push pipeline of the local checkout.

Pure: no I/O. Three groups, so that ``rules`` (loader) and the job payload see the same values:
:func:`commit_variables` (project, commit, ref, pipeline), :func:`server_variables` (only known
once a coordinator serves the job) and :func:`job_variables` (name, stage, parallel index).
Values follow GitLab's ``Ci::Build#predefined_variables`` and ``Gitlab::Utils.slugify``.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from skyrunner.pipeline.checkout import Checkout, RefType
from skyrunner.pipeline.model import PipelineJob

__all__ = ["commit_variables", "is_protected", "job_variables", "server_variables", "slugify"]

Pairs = list[tuple[str, str]]


def slugify(text: str) -> str:
    """GitLab's slug: lower case, ``[^a-z0-9]`` to ``-``, at most 63 characters, no edge dashes."""
    return re.sub(r"[^a-z0-9]", "-", text.lower())[:63].strip("-")


def is_protected(checkout: Checkout) -> bool:
    """Whether GitLab would treat the ref as protected: the default branch is, by default."""
    return checkout.ref_type is RefType.BRANCH and checkout.ref_name == checkout.default_branch


def commit_variables(
    checkout: Checkout,
    *,
    pipeline_id: int,
    project_id: int,
    config_path: str,
    pipeline_name: str | None = None,
) -> Pairs:
    """Return the project, pipeline, commit and ref variables, in GitLab's order."""
    title = checkout.commit_title
    description = checkout.commit_message.strip().partition("\n")[2].lstrip("\n")
    pairs: Pairs = [
        ("CI", "true"),
        ("GITLAB_CI", "true"),
        ("CI_PROJECT_ID", str(project_id)),
        ("CI_PROJECT_NAME", checkout.project_name),
        ("CI_PROJECT_TITLE", checkout.project_name),
        ("CI_PROJECT_PATH", checkout.project_path),
        ("CI_PROJECT_PATH_SLUG", slugify(checkout.project_path)),
        ("CI_PROJECT_NAMESPACE", checkout.project_namespace),
        ("CI_PROJECT_ROOT_NAMESPACE", checkout.project_path.split("/", 1)[0]),
        ("CI_PROJECT_VISIBILITY", "private"),
        ("CI_DEFAULT_BRANCH", checkout.default_branch),
        ("CI_CONFIG_PATH", config_path),
        ("CI_PIPELINE_ID", str(pipeline_id)),
        ("CI_PIPELINE_IID", str(pipeline_id)),
        ("CI_PIPELINE_SOURCE", "push"),
        ("CI_COMMIT_SHA", checkout.sha),
        ("CI_COMMIT_SHORT_SHA", checkout.short_sha),
        ("CI_COMMIT_BEFORE_SHA", checkout.before_sha),
        ("CI_COMMIT_REF_NAME", checkout.ref_name),
        ("CI_COMMIT_REF_SLUG", slugify(checkout.ref_name)),
        ("CI_COMMIT_REF_PROTECTED", "true" if is_protected(checkout) else "false"),
    ]
    if checkout.ref_type is RefType.TAG:
        pairs.append(("CI_COMMIT_TAG", checkout.ref_name))
    else:
        pairs.append(("CI_COMMIT_BRANCH", checkout.ref_name))
    pairs += [
        ("CI_COMMIT_MESSAGE", checkout.commit_message),
        ("CI_COMMIT_TITLE", title),
        ("CI_COMMIT_DESCRIPTION", description),
        ("CI_COMMIT_AUTHOR", checkout.commit_author),
        ("CI_COMMIT_TIMESTAMP", checkout.commit_timestamp),
    ]
    if pipeline_name:
        pairs.append(("CI_PIPELINE_NAME", pipeline_name))
    return pairs


def server_variables(server_url: str, project_path: str, pipeline_id: int) -> Pairs:
    """Return the ``CI_SERVER_*``, API and URL variables for a coordinator at ``server_url``."""
    url = server_url.rstrip("/")
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return [
        ("CI_SERVER_URL", url),
        ("CI_SERVER_HOST", parts.hostname or ""),
        ("CI_SERVER_PORT", str(port)),
        ("CI_SERVER_PROTOCOL", parts.scheme),
        ("CI_SERVER_NAME", "GitLab"),
        ("CI_API_V4_URL", f"{url}/api/v4"),
        ("CI_API_GRAPHQL_URL", f"{url}/api/graphql"),
        ("CI_PROJECT_URL", f"{url}/{project_path}"),
        ("CI_PIPELINE_URL", f"{url}/{project_path}/-/pipelines/{pipeline_id}"),
    ]


def job_variables(job: PipelineJob) -> Pairs:
    """Return the job's name, stage, parallel index and environment variables."""
    pairs: Pairs = [
        ("CI_JOB_NAME", job.name),
        ("CI_JOB_NAME_SLUG", slugify(job.name)),
        ("CI_JOB_STAGE", job.stage),
    ]
    if job.when.value == "manual":
        pairs.append(("CI_JOB_MANUAL", "true"))
    if job.parallel is not None:
        pairs += [("CI_NODE_INDEX", str(job.parallel.index)), ("CI_NODE_TOTAL", str(job.parallel.total))]
    if job.environment:
        pairs.append(("CI_ENVIRONMENT_NAME", job.environment))
    return pairs
