"""Remote cache round trip: runner-side signing, helper-side PUT/GET, against moto's S3 server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest

from skyrunner.helper.plan import CacheEntry, HelperPlan
from skyrunner.job.remote_cache import S3CacheSettings, object_name, sign_cache_urls
from tests.fakes.s3server import moto_s3
from tests.integration.helper.conftest import HelperEnv

BUCKET = "runner-cache"


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    with moto_s3() as address:
        yield address


def _settings(address: str) -> S3CacheSettings:
    return S3CacheSettings(
        server_address=address,
        access_key="AKIDEXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        bucket_name=BUCKET,
        bucket_location="us-east-1",
        insecure=True,
        path="ci-cache",
    )


def _s3(address: str) -> object:
    return boto3.client(
        "s3",
        endpoint_url=f"http://{address}",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        region_name="us-east-1",
    )


def _remote_entry(settings: S3CacheSettings, key: str, fallbacks: tuple[str, ...] = ()) -> CacheEntry:
    now = datetime.now(UTC)
    remote = {
        name: sign_cache_urls(
            settings, object_name(settings, short_token="t3_EXAMP", project_id=7, key=name), now=now, expires_s=600
        )
        for name in (key, *fallbacks)
    }
    return CacheEntry(key=key, paths=("deps",), fallback_keys=fallbacks, remote=remote)


async def test_s3_round_trip_with_fallback(helper: HelperEnv, s3_server: str) -> None:
    s3 = _s3(s3_server)
    await asyncio.to_thread(s3.create_bucket, Bucket=BUCKET)  # type: ignore[attr-defined]
    settings = _settings(s3_server)
    project = helper.project_dir
    (project / "deps").mkdir(parents=True)
    (project / "deps/pkg.txt").write_text("package v1\n")

    saving: HelperPlan = helper.plan(caches=(_remote_entry(settings, "main"),))
    saved = await helper.run("cache-save", saving, "--job-status", "success")
    saved.assert_ok()
    assert f"Uploading cache.zip to http://{s3_server}/{BUCKET}/ci-cache/runner/t3_EXAMP/project/7/main" in saved.output
    assert "X-Amz-Signature" not in saved.output
    listed = await asyncio.to_thread(s3.list_objects_v2, Bucket=BUCKET)  # type: ignore[attr-defined]
    assert [o["Key"] for o in listed["Contents"]] == ["ci-cache/runner/t3_EXAMP/project/7/main"]

    again = await helper.run("cache-save", saving, "--job-status", "success")
    assert "Archive is up to date!" in again.output  # compared with the local copy, no upload

    other = helper.tmp / "other-cache"  # a fresh machine: nothing local
    (project / "deps/pkg.txt").unlink()
    restoring = helper.plan(caches=(_remote_entry(settings, "feature", ("main",)),), cache_dir=str(other))
    restored = await helper.run("cache-restore", restoring)
    restored.assert_ok()
    out = restored.output
    assert out.index("Checking cache for feature...") < out.index("file does not exist")
    assert out.index("Checking cache for main...") < out.index("Successfully extracted cache")
    assert (project / "deps/pkg.txt").read_text() == "package v1\n"
    assert (other / "main/cache.zip").is_file()
