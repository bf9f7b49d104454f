"""Cache key sanitising, with gitlab-runner's rules (``cache/cachekey/cachekey.go``).

Pure: no I/O. The runner expands ``$VARS`` in a cache key (and substitutes
``<job name>/<git ref>`` for an empty one) and then calls :func:`sanitize_cache_key`; a key that
cannot be sanitised is skipped with a warning. The result is safe to join under a cache
directory: it is relative, has no ``.``/``..`` segments, no backslashes, and no trailing
whitespace or slash. Hashing keys (``FF_HASH_CACHE_KEYS``) is not done here.
"""

from __future__ import annotations

__all__ = ["sanitize_cache_key"]

# gitlab-runner decodes exactly these escapes, in one pass, and nothing else (%5C stays).
_REPLACEMENTS: tuple[tuple[str, str], ...] = (
    ("%2f", "/"),
    ("%2F", "/"),
    ("%2e", "."),
    ("%2E", "."),
    ("\\", "/"),
)

# Go's unicode.IsSpace; Python's str.isspace() also counts \x1c-\x1f, which Go keeps.
_GO_SPACE_EXTRA_EXCLUDED = frozenset("\x1c\x1d\x1e\x1f")


def _normalise(key: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(key):
        for old, new in _REPLACEMENTS:
            if key.startswith(old, i):
                out.append(new)
                i += len(old)
                break
        else:
            out.append(key[i])
            i += 1
    return "".join(out)


def _clean_segments(path: str) -> list[str]:
    """Resolve ``.``/``..`` against a virtual root, like Go's ``path.Clean("/" + path)``."""
    segments: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if segments:
                segments.pop()
            continue
        segments.append(part)
    return segments


def _rstrip_space(text: str) -> str:
    end = len(text)
    while end > 0 and text[end - 1].isspace() and text[end - 1] not in _GO_SPACE_EXTRA_EXCLUDED:
        end -= 1
    return text[:end]


def sanitize_cache_key(key: str) -> str | None:
    """Return ``key`` sanitised as gitlab-runner does, or None when nothing usable is left.

    Decodes ``%2f``/``%2e``, turns ``\\`` into ``/``, resolves ``.`` and ``..`` within the key
    (never above it), and strips trailing whitespace from the rightmost segments, dropping
    those that become empty. An empty key gives None: substitute the default key first.
    """
    segments = _clean_segments(_normalise(key))
    while segments:
        segments[-1] = _rstrip_space(segments[-1])
        if segments[-1]:
            break
        segments.pop()
    if segments and segments[-1] in (".", ".."):
        # ".. " trims to "..": gitlab-runner would keep it and escape the key's directory
        return sanitize_cache_key("/".join(segments))
    return "/".join(segments) or None
