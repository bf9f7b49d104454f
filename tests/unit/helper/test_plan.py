"""The helper plan: JSON round trip (with the added field), when/status matching."""

from __future__ import annotations

import pytest

from skyrunner.helper.plan import (
    ArchiveFormat,
    ArtifactEntry,
    ArtifactFormat,
    CacheEntry,
    GitPlan,
    HelperPlan,
    JobStatus,
    RemoteCacheUrls,
    When,
    parse_plan,
    render_plan,
    when_matches,
)


def test_round_trip() -> None:
    plan = HelperPlan(
        server_url="https://gitlab.example.com",
        job_id=7,
        project_dir="/b/g/p",
        builds_dir="/b",
        cache_dir="/c/g/p",
        git=GitPlan("https://gitlab.example.com/g/p.git", "a" * 40, refspecs=("+refs/heads/main:x",)),
        caches=(CacheEntry("k", ("vendor",), remote={"k": RemoteCacheUrls("g", "p")}),),
        artifacts=(ArtifactEntry(paths=("a",), artifact_format=ArtifactFormat.GZIP),),
        cache_format=ArchiveFormat.TARZSTD,
        retry_backoff_s=0.25,
    )
    assert parse_plan(render_plan(plan)) == plan
    old = render_plan(plan).replace('"retry_backoff_s": 0.25,', "")
    assert parse_plan(old).retry_backoff_s == 1.0  # plans without the field still parse


@pytest.mark.parametrize(
    ("when", "status", "expected"),
    [
        (When.ON_SUCCESS, JobStatus.SUCCESS, True),
        (When.ON_SUCCESS, JobStatus.FAILED, False),
        (When.ON_FAILURE, JobStatus.SUCCESS, False),
        (When.ON_FAILURE, JobStatus.FAILED, True),
        (When.ALWAYS, JobStatus.SUCCESS, True),
        (When.ALWAYS, JobStatus.FAILED, True),
    ],
)
def test_when_matches(when: When, status: JobStatus, expected: bool) -> None:
    assert when_matches(when, status) is expected


def test_not_a_plan() -> None:
    with pytest.raises(ValueError, match="not a helper plan"):
        parse_plan('{"job_id": 1}')
