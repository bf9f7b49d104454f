"""``--dry-run``'s diff: only the fields skyrunner sets, and never a Secret's value."""

from __future__ import annotations

import copy
from typing import Any

from skyrunner.deploy import render_diff
from skyrunner.deploy.diff import object_ref, project, redact_secrets
from tests.unit.deploy.inputs import TOKEN, render, values


def live_copy(manifest: dict[str, Any]) -> dict[str, Any]:
    """What a server returns for an applied manifest: the same fields plus its own."""
    live = copy.deepcopy(manifest)
    live["metadata"] |= {"uid": "0b1c", "resourceVersion": "42", "managedFields": [{"manager": "skyrunner"}]}
    live["status"] = {"replicas": 1}
    if live["kind"] == "Deployment":
        live["spec"]["progressDeadlineSeconds"] = 600
        live["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    return live


def test_an_applied_object_shows_no_difference() -> None:
    for manifest in render(values()):
        assert render_diff(live_copy(manifest), manifest) == "", manifest["kind"]


def test_an_absent_object_is_all_additions() -> None:
    (namespace, *_) = render(values())

    diff = render_diff(None, namespace)

    assert diff.startswith("--- live: Namespace ci\n+++ rendered: Namespace ci\n")
    assert all(line.startswith(("+", "---", "@@")) for line in diff.splitlines()[1:])


def test_a_changed_field_is_shown_in_context() -> None:
    deployment = render(values())[-1]
    live = live_copy(deployment)
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "old:1"

    diff = render_diff(live, deployment)

    assert "-        image: old:1\n+        image: registry.example.com/skyrunner:0.1.0\n" in diff
    assert diff.count("\n-") == 1 and diff.count("\n+") == 2  # the +++ header and the line


def test_secret_values_never_appear() -> None:
    secret = next(m for m in render(values()) if m["kind"] == "Secret")
    live = live_copy(secret)
    live["data"]["token"] = "b2xkLXRva2Vu"  # "old-token"

    diff = render_diff(live, secret)

    assert "-  token: '***'\n+  token: '*** (changed)'\n" in diff
    assert secret["data"]["token"] not in diff and "b2xkLXRva2Vu" not in diff and TOKEN not in diff
    assert render_diff(live_copy(secret), secret) == ""


def test_projection_keeps_only_the_rendered_shape() -> None:
    live = {"a": 1, "b": {"c": 2, "d": 3}, "e": [{"f": 1, "g": 2}], "h": [1, 2]}
    rendered = {"b": {"c": 0}, "e": [{"f": 0}], "h": [1], "x": 1}

    assert project(live, rendered) == {"b": {"c": 2}, "e": [{"f": 1}], "h": [1, 2]}


def test_redaction_leaves_other_kinds_alone_and_hides_live_only_keys() -> None:
    config_map = {"kind": "ConfigMap", "data": {"a": "b"}}
    assert redact_secrets(config_map, config_map) == (config_map, config_map)
    live = {"kind": "Secret", "data": {"old": "eA=="}}
    shown_live, shown = redact_secrets(live, {"kind": "Secret", "data": {"new": "eQ=="}})
    assert shown_live["data"] == {"old": "***"} and shown["data"] == {"new": "*** (changed)"}


def test_object_ref_names_the_namespace_when_there_is_one() -> None:
    assert object_ref({"kind": "PersistentVolume", "metadata": {"name": "pv"}}) == "PersistentVolume pv"
    assert object_ref({"kind": "Secret", "metadata": {"name": "s", "namespace": "ci"}}) == "Secret ci/s"
