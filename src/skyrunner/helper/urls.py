"""URL handling for the helper: what may be shown, and what git credentials apply to.

Pure: no I/O. Anything printed by the helper goes through :func:`display_url` first, so neither
user-info credentials nor pre-signed query strings (``X-Amz-Signature``) reach the job log.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = ["display_url", "is_http", "origin_of", "strip_credentials", "switch_base"]


def strip_credentials(url: str) -> str:
    """Drop ``user:password@`` from a URL, keeping everything else."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def display_url(url: str) -> str:
    """Return ``url`` without credentials, query or fragment: safe to print."""
    parts = urlsplit(strip_credentials(url))
    return urlunsplit(parts._replace(query="", fragment=""))


def is_http(url: str) -> bool:
    """Return True for an ``http://`` or ``https://`` URL (not a path, ``file://`` or ssh)."""
    return urlsplit(url).scheme.lower() in ("http", "https")


def origin_of(url: str) -> str:
    """Return ``scheme://host[:port]/`` of ``url`` (without credentials), as git's http.<url> wants."""
    parts = urlsplit(strip_credentials(url))
    return f"{parts.scheme}://{parts.netloc}/"


def switch_base(url: str, location: str) -> str:
    """Return ``url`` with the scheme and host of ``location`` (gitlab-runner's 307 handling)."""
    target = urlsplit(location)
    parts = urlsplit(url)
    scheme, netloc = target.scheme or parts.scheme, target.netloc or parts.netloc
    return urlunsplit(parts._replace(scheme=scheme, netloc=netloc))
