"""Pod volumes as directories on the host, which container processes get bind-mounted.

Owns the layout under the server's root and the kubelet's volume plugins, reduced:

* ``emptyDir`` -> ``<root>/pods/<uid>/volumes/<name>/`` (per pod, removed with the pod);
* ``secret`` / ``configMap`` -> the same place, one file per key or per ``items`` entry, with
  ``defaultMode`` / item ``mode``; a missing object or key fails the mount with the kubelet's
  ``MountVolume.SetUp failed`` message unless ``optional``;
* ``downwardAPI`` -> files for ``metadata.name/namespace/uid/labels/annotations`` fieldRefs;
* ``projected`` -> secret, configMap, downwardAPI and serviceAccountToken sources in one dir
  (the token is the server's bearer token, so in-pod clients can call the fake API);
* ``persistentVolumeClaim`` -> ``<root>/claims/<namespace>/<claim>/``, shared by every pod;
* ``hostPath`` -> the host path itself (``DirectoryOrCreate``/``FileOrCreate`` create it,
  ``Directory``/``File`` must exist);
* any other source -> a per-pod directory, like an emptyDir.

Files are plain files (no ``..data`` symlink swap) and are not refreshed when a Secret changes;
downwardAPI files are rewritten by :func:`refresh_downward` when pod metadata changes.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["MountError", "pod_dir", "prepare_volumes", "refresh_downward"]

Lookup = Callable[[str, str], dict[str, Any] | None]  # (kind, name) -> object in the pod's namespace


class MountError(Exception):
    """A volume could not be set up (the message is the FailedMount event text)."""


def pod_dir(root: Path, uid: str) -> Path:
    return root / "pods" / uid


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, mode)


def _key_values(kind: str, obj: dict[str, Any]) -> dict[str, bytes]:
    if kind == "Secret":
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    out = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
    out.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return out


def _project_keys(volume: str, kind: str, source: dict[str, Any], lookup: Lookup, dest: Path, mode: int) -> None:
    name = source.get("secretName" if kind == "Secret" else "name") or source.get("name", "")
    obj = lookup(kind, name)
    if obj is None:
        if source.get("optional"):
            return
        noun = "secret" if kind == "Secret" else "configmap"
        raise MountError(f'MountVolume.SetUp failed for volume "{volume}" : {noun} "{name}" not found')
    values = _key_values(kind, obj)
    items = source.get("items")
    if items is None:
        for key, data in values.items():
            _write(dest / key, data, mode)
        return
    for item in items:
        if item["key"] not in values:
            if source.get("optional"):
                continue
            what = (
                "secret references non-existent secret key"
                if kind == "Secret"
                else "configmap references non-existent config key"
            )
            raise MountError(f'MountVolume.SetUp failed for volume "{volume}" : {what}: {item["key"]}')
        _write(dest / item["path"], values[item["key"]], item.get("mode", mode))


def _field_value(pod: dict[str, Any], field_path: str) -> str:
    meta = pod["metadata"]
    if field_path in ("metadata.labels", "metadata.annotations"):
        values = meta.get(field_path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))
    if field_path.startswith("metadata.name"):
        return str(meta.get("name", ""))
    if field_path == "metadata.namespace":
        return str(meta.get("namespace", ""))
    if field_path == "metadata.uid":
        return str(meta.get("uid", ""))
    return ""


def _downward(items: list[dict[str, Any]], pod: dict[str, Any], dest: Path, mode: int) -> None:
    for item in items:
        field = (item.get("fieldRef") or {}).get("fieldPath", "")
        _write(dest / item["path"], _field_value(pod, field).encode(), item.get("mode", mode))


def _projected(volume: dict[str, Any], pod: dict[str, Any], lookup: Lookup, dest: Path, token: str) -> None:
    mode = volume["projected"].get("defaultMode", 420)
    for source in volume["projected"].get("sources") or []:
        if "secret" in source:
            _project_keys(volume["name"], "Secret", source["secret"], lookup, dest, mode)
        elif "configMap" in source:
            _project_keys(volume["name"], "ConfigMap", source["configMap"], lookup, dest, mode)
        elif "downwardAPI" in source:
            _downward(source["downwardAPI"].get("items") or [], pod, dest, mode)
        elif "serviceAccountToken" in source:
            _write(dest / source["serviceAccountToken"].get("path", "token"), token.encode(), mode)


def _host_path(volume: dict[str, Any]) -> Path:
    spec = volume["hostPath"]
    path, kind = Path(spec["path"]), spec.get("type", "")
    if kind in ("", "DirectoryOrCreate") and not path.exists():
        path.mkdir(parents=True, exist_ok=True)
    elif kind == "FileOrCreate" and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    elif kind == "Directory" and not path.is_dir():
        raise MountError(
            f'MountVolume.SetUp failed for volume "{volume["name"]}" : '
            f"hostPath type check failed: {path} is not a directory"
        )
    elif kind == "File" and not path.is_file():
        raise MountError(
            f'MountVolume.SetUp failed for volume "{volume["name"]}" : hostPath type check failed: {path} is not a file'
        )
    return path


def _prepare_one(root: Path, pod: dict[str, Any], volume: dict[str, Any], lookup: Lookup, token: str) -> Path:
    meta = pod["metadata"]
    if "persistentVolumeClaim" in volume:
        path = root / "claims" / meta["namespace"] / volume["persistentVolumeClaim"]["claimName"]
        path.mkdir(parents=True, exist_ok=True)
        return path
    if "hostPath" in volume:
        return _host_path(volume)
    dest = pod_dir(root, meta["uid"]) / "volumes" / volume["name"]
    dest.mkdir(parents=True, exist_ok=True)
    if "secret" in volume:
        _project_keys(
            volume["name"], "Secret", volume["secret"], lookup, dest, volume["secret"].get("defaultMode", 420)
        )
    elif "configMap" in volume:
        source = volume["configMap"]
        _project_keys(volume["name"], "ConfigMap", source, lookup, dest, source.get("defaultMode", 420))
    elif "downwardAPI" in volume:
        _downward(volume["downwardAPI"].get("items") or [], pod, dest, volume["downwardAPI"].get("defaultMode", 420))
    elif "projected" in volume:
        _projected(volume, pod, lookup, dest, token)
    return dest


def prepare_volumes(root: Path, pod: dict[str, Any], lookup: Lookup, token: str) -> dict[str, Path]:
    """Set up every volume of ``pod``; return volume name -> host path.

    Raises:
        MountError: a Secret or ConfigMap (or key) is missing, or a hostPath check failed.
    """
    return {v["name"]: _prepare_one(root, pod, v, lookup, token) for v in (pod["spec"].get("volumes") or [])}


def refresh_downward(root: Path, pod: dict[str, Any]) -> None:
    """Rewrite the downwardAPI volume files of a running pod from its current metadata."""
    for volume in pod["spec"].get("volumes") or []:
        if "downwardAPI" in volume:
            dest = pod_dir(root, pod["metadata"]["uid"]) / "volumes" / volume["name"]
            _downward(
                volume["downwardAPI"].get("items") or [], pod, dest, volume["downwardAPI"].get("defaultMode", 420)
            )
