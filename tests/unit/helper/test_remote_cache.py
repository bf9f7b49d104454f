"""S3 pre-signing (skyrunner.job.remote_cache): AWS's published vector, botocore, object names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from skyrunner.job.remote_cache import S3CacheSettings, object_name, presign_url, sign_cache_urls

AWS_ACCESS = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def test_aws_documented_presigned_get() -> None:
    # "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)", S3 API reference
    url = presign_url(
        "GET",
        scheme="https",
        host="examplebucket.s3.amazonaws.com",
        path="/test.txt",
        region="us-east-1",
        access_key=AWS_ACCESS,
        secret_key=AWS_SECRET,
        now=datetime(2013, 5, 24, tzinfo=UTC),
        expires_s=86400,
    )
    assert url == (
        "https://examplebucket.s3.amazonaws.com/test.txt"
        "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )


def _settings(**overrides: object) -> S3CacheSettings:
    fields: dict[str, object] = {
        "server_address": "minio.internal:9000",
        "access_key": AWS_ACCESS,
        "secret_key": AWS_SECRET,
        "bucket_name": "ci-cache",
        "bucket_location": "eu-central-1",
        "insecure": True,
        "path": "",
        "shared": False,
    }
    fields.update(overrides)
    return S3CacheSettings(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_agrees_with_botocore(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime(2026, 11, 27, 5, 0, 0)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: now)  # botocore's clock, not ours
    settings = _settings()
    key = "project/7/feature branch/ü+x"
    urls = sign_cache_urls(settings, key, now=now.replace(tzinfo=UTC), expires_s=900)
    ours = urls.get_url if method == "GET" else urls.put_url
    request = AWSRequest(method=method, url=ours.split("?", 1)[0])
    botocore.auth.S3SigV4QueryAuth(Credentials(AWS_ACCESS, AWS_SECRET), "s3", "eu-central-1", expires=900).add_auth(
        request
    )
    theirs = request.url
    assert urlsplit(ours).path == urlsplit(theirs).path
    assert parse_qs(urlsplit(ours).query) == parse_qs(urlsplit(theirs).query)


def test_urls_are_path_style_with_scheme_and_default_port_dropped() -> None:
    now = datetime(2026, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))  # converted to UTC
    urls = sign_cache_urls(_settings(insecure=False, server_address="s3.example.com:443"), "a/b", now=now, expires_s=60)
    assert urls.get_url.startswith("https://s3.example.com/ci-cache/a/b?")
    assert "X-Amz-Date=20260101T000000Z" in urls.get_url
    assert urls.get_url != urls.put_url
    assert AWS_SECRET not in repr(_settings())


@pytest.mark.parametrize(
    ("path", "shared", "key", "expected"),
    [
        ("", False, "main", "runner/t3_EXAMP/project/42/main"),
        ("", True, "main", "project/42/main"),
        ("/team/cache/", False, "job/ref", "team/cache/runner/t3_EXAMP/project/42/job/ref"),
        ("prefix", True, "k", "prefix/project/42/k"),
    ],
    ids=["runner", "shared", "path", "path-shared"],
)
def test_object_names(path: str, shared: bool, key: str, expected: str) -> None:
    settings = _settings(path=path, shared=shared)
    assert object_name(settings, short_token="t3_EXAMP", project_id=42, key=key) == expected
