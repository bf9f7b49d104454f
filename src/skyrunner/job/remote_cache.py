"""Remote (S3-compatible) cache: object names and pre-signed GET/PUT URLs, runner side.

Pure: no I/O. The runner holds the credentials of ``[runners.cache.s3]`` and hands the helper
only two URLs per cache key (:class:`~skyrunner.helper.plan.RemoteCacheUrls`), signed with AWS
Signature Version 4 in the query string (``X-Amz-Algorithm=AWS4-HMAC-SHA256``, signed header
``host``, payload ``UNSIGNED-PAYLOAD``), path-style (``<server>/<bucket>/<object>``) so that
MinIO, Alibaba OSS and other S3-compatible servers accept them; ``insecure`` switches to http.

Object names follow gitlab-runner (``cache/cache.go``):
``[<path>/][runner/<short token>/]project/<project id>/<key>``, the runner segment left out
when the cache is ``shared``. The clock is passed in (``now``) so signatures are reproducible.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

from skyrunner.helper.plan import RemoteCacheUrls

__all__ = ["DEFAULT_REGION", "S3CacheSettings", "object_name", "presign_url", "sign_cache_urls"]

DEFAULT_SERVER = "s3.amazonaws.com"
DEFAULT_REGION = "us-east-1"
_ALGORITHM = "AWS4-HMAC-SHA256"
_UNSIGNED = "UNSIGNED-PAYLOAD"
_MAX_EXPIRES_S = 7 * 24 * 3600  # SigV4 presigned URLs live at most a week


@dataclass(frozen=True, slots=True)
class S3CacheSettings:
    """``[runners.cache]`` with ``Type = "s3"``; the secret key stays out of ``repr``."""

    server_address: str
    access_key: str
    secret_key: str = field(repr=False)
    bucket_name: str
    bucket_location: str = DEFAULT_REGION
    insecure: bool = False
    path: str = ""
    shared: bool = False


def object_name(settings: S3CacheSettings, *, short_token: str, project_id: int, key: str) -> str:
    """Return the object name of cache ``key`` of ``project_id`` (no leading slash)."""
    segments = [s for s in settings.path.split("/") if s]
    if not settings.shared:
        segments += ["runner", short_token]
    segments += ["project", str(project_id), *(s for s in key.split("/") if s)]
    return "/".join(segments)


def _sign(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    key = _sign(f"AWS4{secret_key}".encode(), date)
    key = _sign(key, region)
    key = _sign(key, service)
    return _sign(key, "aws4_request")


def _query(params: dict[str, str]) -> str:
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items()))


def presign_url(
    method: str,
    *,
    scheme: str,
    host: str,
    path: str,
    region: str,
    access_key: str,
    secret_key: str,
    now: datetime,
    expires_s: int,
    service: str = "s3",
) -> str:
    """Return ``scheme://host/path?...`` pre-signed with SigV4 for ``method``.

    ``path`` is the unencoded object path starting with ``/``; ``host`` includes a non-default
    port. ``now`` must be timezone-aware (it is converted to UTC).
    """
    stamp = now.astimezone(UTC)
    amz_date, date = stamp.strftime("%Y%m%dT%H%M%SZ"), stamp.strftime("%Y%m%d")
    scope = f"{date}/{region}/{service}/aws4_request"
    params = {
        "X-Amz-Algorithm": _ALGORITHM,
        "X-Amz-Credential": f"{access_key}/{scope}",
        "X-Amz-Date": amz_date,
        "X-Amz-Expires": str(max(1, min(expires_s, _MAX_EXPIRES_S))),
        "X-Amz-SignedHeaders": "host",
    }
    canonical_path = quote(path, safe="/-_.~")
    canonical_query = _query(params)
    canonical_request = "\n".join([method, canonical_path, canonical_query, f"host:{host}", "", "host", _UNSIGNED])
    to_sign = "\n".join([_ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
    signature = hmac.new(_signing_key(secret_key, date, region, service), to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{scheme}://{host}{canonical_path}?{canonical_query}&X-Amz-Signature={signature}"


def sign_cache_urls(settings: S3CacheSettings, object_name: str, *, now: datetime, expires_s: int) -> RemoteCacheUrls:
    """Return path-style GET and PUT URLs of ``object_name`` valid for ``expires_s`` from ``now``."""
    scheme = "http" if settings.insecure else "https"
    host = _host(settings.server_address or DEFAULT_SERVER, scheme)
    path = f"/{settings.bucket_name}/{object_name.lstrip('/')}"

    def sign(method: str) -> str:
        return presign_url(
            method,
            scheme=scheme,
            host=host,
            path=path,
            region=settings.bucket_location or DEFAULT_REGION,
            access_key=settings.access_key,
            secret_key=settings.secret_key,
            now=now,
            expires_s=expires_s,
        )

    return RemoteCacheUrls(get_url=sign("GET"), put_url=sign("PUT"))


def _host(server_address: str, scheme: str) -> str:
    """``ServerAddress`` as the Host header clients send: no scheme, no default port."""
    host = server_address.split("://", 1)[-1].rstrip("/")
    default_port = ":443" if scheme == "https" else ":80"
    return host.removesuffix(default_port)
