"""The helper: what runs inside the job's environment (``python -m skyrunner.helper <step>``).

It gets the git sources, restores and saves caches, downloads dependency artifacts and uploads
the job's own, for every executor (a subprocess of the shell executor, the helper container of
the kubernetes executor). It knows nothing of the runner's process: its whole input is a
:class:`HelperPlan` file, the job's environment (``CI_JOB_TOKEN``) and the GitLab URL, and it
imports only :mod:`skyrunner.errors`, the standard library, zstandard and httpx2.

The runner's side of the contract is exported here (cheap, standard-library only imports);
the steps themselves live in ``sources``, ``cache``, ``artifacts`` and are reached through
``__main__``.
"""

from skyrunner.helper.cachekey import sanitize_cache_key
from skyrunner.helper.plan import (
    ArchiveFormat,
    ArtifactEntry,
    ArtifactFormat,
    CacheEntry,
    CachePolicy,
    CompressionLevel,
    DependencyEntry,
    GitPlan,
    GitStrategy,
    HelperPlan,
    JobStatus,
    RemoteCacheUrls,
    SubmoduleStrategy,
    When,
    parse_plan,
    render_plan,
    when_matches,
)

__all__ = [
    "ArchiveFormat",
    "ArtifactEntry",
    "ArtifactFormat",
    "CacheEntry",
    "CachePolicy",
    "CompressionLevel",
    "DependencyEntry",
    "GitPlan",
    "GitStrategy",
    "HelperPlan",
    "JobStatus",
    "RemoteCacheUrls",
    "SubmoduleStrategy",
    "When",
    "parse_plan",
    "render_plan",
    "sanitize_cache_key",
    "when_matches",
]
