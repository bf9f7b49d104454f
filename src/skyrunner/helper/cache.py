"""``cache-restore`` and ``cache-save``: the job's caches, local or behind pre-signed URLs.

Restore (every entry with policy pull or pull-push and something to cache): try the key, then
each fallback key in order; the first archive that extracts wins. Save (entries with policy push
or pull-push whose ``when`` matches the job status): collect ``paths`` and untracked files,
fingerprint them, and write ``<cache_dir>/<key>/cache.zip`` (or ``cache.tar.zst``) atomically,
then PUT it to the signed URL when the cache is remote. Nothing here fails the job: a missing,
corrupt or unsafe archive, or a failed transfer, is a warning, as in gitlab-runner.

"Archive is up to date!" is decided by fingerprint: names, kinds, modes, sizes and whole-second
mtimes of the collected files, stored inside the archive (zip comment, PAX global header).
Extraction restores those mtimes, so a job that did not touch the cached files finds the same
fingerprint and neither rewrites nor uploads the archive.
"""

from __future__ import annotations

import os
from pathlib import Path

from skyrunner.errors import HelperError
from skyrunner.helper.archive import (
    ArchiveKind,
    archive_fingerprint,
    archive_kind,
    create_archive,
    extract_archive,
    fingerprint,
    scan_entries,
)
from skyrunner.helper.cachekey import sanitize_cache_key
from skyrunner.helper.console import Console, describe
from skyrunner.helper.filesets import collect_files
from skyrunner.helper.plan import (
    ArchiveFormat,
    CacheEntry,
    CachePolicy,
    HelperPlan,
    JobStatus,
    when_matches,
)
from skyrunner.helper.transfer import LazyClient, TransferError, fetch_to_file, retry_notice, send, with_retries
from skyrunner.helper.urls import display_url

__all__ = ["ARCHIVE_NAMES", "local_archive", "restore_caches", "save_caches"]

ARCHIVE_NAMES = {ArchiveFormat.ZIP: "cache.zip", ArchiveFormat.TARZSTD: "cache.tar.zst"}


def _has_content(entry: CacheEntry) -> bool:
    return bool(entry.paths) or entry.untracked


def local_archive(plan: HelperPlan, key: str, fmt: ArchiveFormat | None = None) -> Path:
    """Return where the archive of ``key`` lives locally in the plan's format (or ``fmt``).

    Raises:
        HelperError: the key is not sanitised (the runner sanitises; a hand-written plan may not).
    """
    if sanitize_cache_key(key) != key:
        raise HelperError(f"cache key {key!r} is not a sanitised key")
    return Path(plan.cache_dir) / key / ARCHIVE_NAMES[fmt or plan.cache_format]


def _existing_archive(plan: HelperPlan, key: str) -> Path | None:
    """The newest local archive of ``key`` in any format (a format switch leaves the old one)."""
    found = [p for fmt in ArchiveFormat if (p := local_archive(plan, key, fmt)).is_file()]
    return max(found, key=lambda p: p.stat().st_mtime_ns) if found else None


class _Restorer:
    def __init__(self, plan: HelperPlan, console: Console, client: LazyClient) -> None:
        self.plan, self.console, self.client = plan, console, client
        self.project_dir = Path(plan.project_dir)

    def restore(self, entry: CacheEntry) -> None:
        for key in (entry.key, *entry.fallback_keys):
            self.console.notice(f"Checking cache for {key}...")
            try:
                archive = self._obtain(entry, key)
                if archive is None:
                    self.console.warning("file does not exist")
                else:
                    extract_archive(archive, self.project_dir)
                    self.console.notice("Successfully extracted cache")
                    return
            except (HelperError, OSError) as exc:
                self.console.warning(describe(exc))
            self.console.caution("Failed to extract cache")

    def _obtain(self, entry: CacheEntry, key: str) -> Path | None:
        urls = entry.remote.get(key)
        if urls is None:
            return _existing_archive(self.plan, key)
        self.console.plain(f"Downloading cache from {display_url(urls.get_url)}")
        # a name of our own: another job may be downloading the same key right now
        download = local_archive(self.plan, key).with_name(f"cache.download.{os.getpid()}")
        result = with_retries(
            lambda: fetch_to_file(self.client.get(), urls.get_url, download),
            attempts=self.plan.restore_cache_attempts,
            backoff_s=self.plan.retry_backoff_s,
            on_retry=retry_notice(self.console),
        )
        if result.status == 404:
            return None
        if result.status != 200:
            raise TransferError(f"{display_url(urls.get_url)}: {result.status} {result.reason}")
        # keep the download under its format's name: the next save compares against it
        fmt = ArchiveFormat.TARZSTD if archive_kind(download) is ArchiveKind.TARZSTD else ArchiveFormat.ZIP
        final = local_archive(self.plan, key, fmt)
        os.replace(download, final)
        return final


def restore_caches(plan: HelperPlan, console: Console) -> None:
    """Restore every pullable cache entry; problems are warnings only."""
    with LazyClient(plan.ca_file, plan.cache_request_timeout_s) as client:
        restorer = _Restorer(plan, console, client)
        for entry in plan.caches:
            if not _has_content(entry):
                continue
            if entry.policy is CachePolicy.PUSH:
                console.notice(f"Not downloading cache {entry.key} due to policy")
                continue
            restorer.restore(entry)


def _save_one(plan: HelperPlan, entry: CacheEntry, console: Console, client: LazyClient) -> None:
    project_dir = Path(plan.project_dir)
    files = collect_files(project_dir, entry.paths, console, untracked=entry.untracked)
    entries = scan_entries(project_dir, files)
    archive = local_archive(plan, entry.key)
    digest = fingerprint(entries)
    if archive_fingerprint(archive) == digest:
        console.plain("Archive is up to date!")
        return
    create_archive(archive, project_dir, entries, plan.cache_format, plan.cache_compression, digest)
    urls = entry.remote.get(entry.key)
    if urls is None:
        return
    console.plain(f"Uploading {archive.name} to {display_url(urls.put_url)}")

    def upload() -> None:
        with open(archive, "rb") as body:
            headers = {"Content-Type": "application/octet-stream"}
            result = send(client.get(), "PUT", urls.put_url, content=body, headers=headers)
        if result.status not in (200, 201, 204):
            raise TransferError(
                f"{display_url(urls.put_url)}: {result.status} {result.reason}",
                status=result.status,
                retryable=result.status >= 500,
            )

    with_retries(
        upload,
        attempts=plan.upload_attempts,
        backoff_s=plan.retry_backoff_s,
        on_retry=retry_notice(console),
    )


def save_caches(plan: HelperPlan, console: Console, status: JobStatus) -> None:
    """Archive (and upload) every pushable cache entry whose ``when`` matches ``status``."""
    with LazyClient(plan.ca_file, plan.cache_request_timeout_s) as client:
        for entry in plan.caches:
            if not _has_content(entry) or not when_matches(entry.when, status):
                continue
            if entry.policy is CachePolicy.PULL:
                console.notice(f"Not uploading cache {entry.key} due to policy")
                continue
            console.notice(f"Creating cache {entry.key}...")
            try:
                _save_one(plan, entry, console, client)
            except (HelperError, OSError) as exc:
                console.warning(describe(exc))
                console.caution("Failed to create cache")
                continue
            console.notice("Created cache")
