"""What ``--dry-run`` shows: the difference between a rendered manifest and the cluster's object.

Pure: no I/O. A live object carries much that skyrunner never sets (``status``, ``uid``,
``managedFields``, server defaults such as a Deployment's ``progressDeadlineSeconds``), so the
live object is first *projected* onto the rendered one: only the keys the rendered manifest has
are kept, recursively (lists of the same length element by element). What is left differs only
where an apply would change a field skyrunner owns. Fields a previous version set and this one
no longer does are not shown (server-side apply removes them).

Secret values are never printed: both sides show ``***``, and the rendered side says
``*** (changed)`` where the value differs, as ``kubectl diff`` does.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, Final

from skyrunner.deploy.manifests import dump_yaml

__all__ = ["REDACTED", "object_ref", "project", "redact_secrets", "render_diff"]

REDACTED: Final = "***"
_CHANGED: Final = "*** (changed)"


def object_ref(manifest: Mapping[str, Any]) -> str:
    """Name an object for people: ``Deployment ci/skyrunner``, ``PersistentVolume ci-cache``."""
    meta = manifest["metadata"]
    namespace = meta.get("namespace")
    return f"{manifest['kind']} {namespace}/{meta['name']}" if namespace else f"{manifest['kind']} {meta['name']}"


def project(live: Any, rendered: Any) -> Any:
    """Keep of ``live`` only what ``rendered`` has a key (or list position) for."""
    if isinstance(live, Mapping) and isinstance(rendered, Mapping):
        return {key: project(live[key], value) for key, value in rendered.items() if key in live}
    if isinstance(live, list) and isinstance(rendered, list) and len(live) == len(rendered):
        return [project(item, other) for item, other in zip(live, rendered, strict=True)]
    return live


def redact_secrets(live: Mapping[str, Any] | None, rendered: Mapping[str, Any]) -> tuple[Any, Any]:
    """Hide a Secret's values on both sides; mark the rendered ones that differ."""
    if rendered.get("kind") != "Secret":
        return live, rendered
    before = dict(live.get("data") or {}) if live is not None else {}
    after = dict(rendered.get("data") or {})
    hidden_live = None if live is None else {**live, "data": dict.fromkeys(before, REDACTED)}
    marks = {key: REDACTED if before.get(key) == value else _CHANGED for key, value in after.items()}
    return hidden_live, {**rendered, "data": marks}


def render_diff(live: Mapping[str, Any] | None, rendered: Mapping[str, Any]) -> str:
    """Return a unified diff from the live object (None: absent) to ``rendered``; "" if equal."""
    shown_live, shown_rendered = redact_secrets(project(live, rendered) if live is not None else None, rendered)
    ref = object_ref(rendered)
    before = _lines(shown_live) if shown_live is not None else []
    after = _lines(shown_rendered)
    if before == after:
        return ""
    lines = difflib.unified_diff(before, after, fromfile=f"live: {ref}", tofile=f"rendered: {ref}", lineterm="")
    return "\n".join(lines) + "\n"


def _lines(document: Any) -> list[str]:
    return dump_yaml(document).splitlines()
