"""The three pod_spec patch types, on plain documents (RFC examples where there are some)."""

from __future__ import annotations

from typing import Any

import pytest

from skyrunner.executors.kubernetes._patches import PatchError, json_patch, merge_patch, strategic_merge_patch

SPEC: dict[str, Any] = {
    "containers": [
        {"name": "build", "image": "alpine", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
        {"name": "helper", "image": "helper", "volumeMounts": [{"name": "run", "mountPath": "/skyrunner"}]},
    ],
    "tolerations": [{"key": "a", "operator": "Exists"}],
    "volumes": [{"name": "run", "emptyDir": {}}],
    "nodeSelector": {"os": "linux", "disk": "ssd"},
}


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_rfc7386(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(target, patch) == expected


@pytest.mark.parametrize(
    ("document", "operations", "expected"),
    [
        ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}], {"foo": "bar", "baz": "qux"}),
        ({"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}], {"foo": ["bar", "qux", "baz"]}),
        ({"foo": [1]}, [{"op": "add", "path": "/foo/-", "value": 2}], {"foo": [1, 2]}),
        ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
        ({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),
        ({"baz": "qux"}, [{"op": "replace", "path": "/baz", "value": "boo"}], {"baz": "boo"}),
        ({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
         [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
         {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
        ({"foo": ["all", "grass", "cows", "eat"]}, [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
         {"foo": ["all", "cows", "eat", "grass"]}),
        ({"a": {"b": 1}}, [{"op": "copy", "from": "/a", "path": "/c"}], {"a": {"b": 1}, "c": {"b": 1}}),
        ({"a/b": 1, "m~n": 2}, [{"op": "replace", "path": "/a~1b", "value": 3}, {"op": "remove", "path": "/m~0n"}],
         {"a/b": 3}),
        ({"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "qux"}], {"baz": "qux"}),
        ({"a": 1}, [{"op": "add", "path": "", "value": {"b": 2}}], {"b": 2}),
    ],
)  # fmt: skip
def test_json_patch_rfc6902(document: Any, operations: list[Any], expected: Any) -> None:
    assert json_patch(document, operations) == expected


@pytest.mark.parametrize(
    ("operations", "message"),
    [
        ([{"op": "test", "path": "/nodeSelector/os", "value": "windows"}], "test failed"),
        ([{"op": "remove", "path": "/missing"}], "no such member"),
        ([{"op": "add", "path": "/containers/9", "value": {}}], "out of range"),
        ([{"op": "replace", "path": "/containers/01", "value": {}}], "not an array index"),
        ([{"op": "add", "path": "nodeName", "value": "x"}], "starts with /"),
        ([{"op": "frobnicate", "path": "/a"}], "unknown op"),
        ([{"path": "/a"}], "needs op and path"),
        ([{"op": "add", "path": "/nodeSelector/os/x", "value": 1}], "not an object or an array"),
        ([{"op": "remove", "path": ""}], "cannot remove the whole document"),
    ],
)
def test_json_patch_errors(operations: list[Any], message: str) -> None:
    with pytest.raises(PatchError, match=message):
        json_patch(SPEC, operations)
    assert SPEC["nodeSelector"] == {"os": "linux", "disk": "ssd"}  # never changed in place


def test_strategic_merges_containers_and_env_by_name() -> None:
    patch = {
        "containers": [
            {"name": "build", "env": [{"name": "B", "value": "two"}, {"name": "C", "value": "3"}], "tty": True},
            {"name": "sidecar", "image": "busybox"},
        ]
    }
    result = strategic_merge_patch(SPEC, patch)
    build = result["containers"][0]
    assert build["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "two"}, {"name": "C", "value": "3"}]
    assert build["tty"] is True and build["image"] == "alpine"
    assert [c["name"] for c in result["containers"]] == ["build", "helper", "sidecar"]


@pytest.mark.parametrize(
    ("patch", "check"),
    [
        ({"containers": [{"name": "helper", "$patch": "delete"}]},
         lambda r: [c["name"] for c in r["containers"]] == ["build"]),
        ({"tolerations": [{"key": "b", "operator": "Exists"}]},
         lambda r: r["tolerations"] == [{"key": "b", "operator": "Exists"}]),
        ({"volumes": [{"$patch": "replace"}, {"name": "x", "emptyDir": {}}]},
         lambda r: r["volumes"] == [{"name": "x", "emptyDir": {}}]),
        ({"nodeSelector": {"$patch": "replace", "zone": "a"}}, lambda r: r["nodeSelector"] == {"zone": "a"}),
        ({"nodeSelector": {"$patch": "delete"}}, lambda r: "nodeSelector" not in r),
        ({"nodeSelector": {"disk": None}}, lambda r: r["nodeSelector"] == {"os": "linux"}),
        ({"volumes": [{"name": "run", "emptyDir": None, "hostPath": {"path": "/x"}, "$retainKeys": ["name", "hostPath"]}]},
         lambda r: r["volumes"] == [{"name": "run", "hostPath": {"path": "/x"}}]),
        ({"containers": [{"name": "build", "args": ["a", "b", "c"]}]},
         lambda r: r["containers"][0]["args"] == ["a", "b", "c"]),
        ({"$setElementOrder/containers": [{"name": "helper"}], "hostname": "h"}, lambda r: r["hostname"] == "h"),
        ({"containers": [{"name": "build", "command": ["x", "y"]}]},
         lambda r: strategic_merge_patch(r, {"containers": [{"name": "build", "$deleteFromPrimitiveList/command": ["y"]}]})
         ["containers"][0]["command"] == ["x"]),
    ],
    ids=["delete-element", "replace-plain-list", "replace-list", "replace-map", "delete-map", "null-deletes",
         "retain-keys", "primitive-list", "element-order", "delete-from-primitive-list"],
)  # fmt: skip
def test_strategic_directives(patch: dict[str, Any], check: Any) -> None:
    assert check(strategic_merge_patch(SPEC, patch))


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"nodeSelector": {"$patch": "merge-harder"}}, "unknown \\$patch directive"),
        ({"containers": [{"image": "no-name"}]}, "has no name"),
    ],
)
def test_strategic_errors(patch: dict[str, Any], message: str) -> None:
    with pytest.raises(PatchError, match=message):
        strategic_merge_patch(SPEC, patch)


def test_dropped_keys_finds_unknown_fields() -> None:
    from skyrunner.executors.kubernetes._scheduling import dropped_keys

    given = {"a": {"b": 1, "c": None}, "d": [{"e": 1}], "f": {"g": 1}}
    kept = {"a": {}, "d": [{}], "f": 3}
    assert dropped_keys(given, kept) == ["a.b", "d[0].e", "f"]
