"""Names, labels and the system id of an instance; the name and label rules Kubernetes applies."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skyrunner.deploy.layout import (
    MAX_NAME_LENGTH,
    is_dns_label,
    is_dns_subdomain,
    label_problems,
    object_names,
    selector,
    standard_labels,
    system_id_for,
)

dns_labels = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True)
instance_names = st.from_regex(rf"[a-z0-9]([-a-z0-9]{{0,{MAX_NAME_LENGTH - 2}}}[a-z0-9])?", fullmatch=True)


@pytest.mark.parametrize(
    ("text", "label", "subdomain"),
    [("ci", True, True), ("a-b-1", True, True), ("a.b", False, True), ("A", False, False), ("-a", False, False),
     ("a-", False, False), ("", False, False), ("a" * 63, True, True), ("a" * 64, False, True),
     (".".join(["a" * 63] * 4), False, False), ("a_b", False, False)],
    ids=["short", "dashes", "dotted", "upper", "leading-dash", "trailing-dash", "empty", "63", "64-subdomain-only", "254", "underscore"],
)  # fmt: skip
def test_dns_names(text: str, label: bool, subdomain: bool) -> None:
    assert (is_dns_label(text), is_dns_subdomain(text)) == (label, subdomain)


@pytest.mark.parametrize(
    ("labels", "problems"),
    [({"team": "ci", "example.com/tier": "a_b.c-1", "empty": ""}, 0), ({"Bad Key": "x"}, 1), ({"UP.example/x": "y"}, 1),
     ({"k": "-value"}, 1), ({"k": "v" * 64}, 1), ({"a/b/c": "x"}, 1), ({"/x": "y"}, 1)],
    ids=["valid", "space-in-key", "upper-prefix", "value-dash", "value-long", "two-slashes", "empty-prefix"],
)  # fmt: skip
def test_label_syntax(labels: dict[str, str], problems: int) -> None:
    found = list(label_problems(labels, "labels"))

    assert len(found) == problems
    assert all(message.startswith("labels: label") for message in found)


def test_every_object_name_derives_from_the_instance() -> None:
    names = object_names("skyrunner", "ci")

    assert (names.token_secret, names.config_map, names.claim, names.deployment) == (
        "skyrunner-token", "skyrunner-config", "skyrunner-cache", "skyrunner"
    )  # fmt: skip
    assert (names.volume, names.cluster_role) == ("ci-skyrunner-cache", "ci-skyrunner-nodes")
    assert selector(names).items() <= standard_labels(names).items()


@given(name=instance_names, namespace=dns_labels)
def test_names_of_a_valid_instance_are_valid_kubernetes_names(name: str, namespace: str) -> None:
    names = object_names(name, namespace)

    for value in (names.service_account, names.token_secret, names.kubeconfig_secret, names.config_map,
                  names.claim, names.volume, names.cluster_role, names.deployment):  # fmt: skip
        assert is_dns_subdomain(value), value
    assert len(names.deployment) + len("-0123456789-abcde") <= 63, "the Deployment's pod names stay labels"
    assert list(label_problems(standard_labels(names), "x")) == []


@given(name=instance_names, namespace=dns_labels)
def test_the_system_id_is_gitlab_runners_form_and_stable(name: str, namespace: str) -> None:
    names = object_names(name, namespace)

    assert re.fullmatch(r"r_[0-9A-Za-z]{12}", system_id_for(names))
    assert system_id_for(names) == system_id_for(object_names(name, namespace))


def test_the_system_id_differs_between_instances() -> None:
    ids = {system_id_for(object_names(name, ns)) for name in ("a", "b") for ns in ("x", "y")}

    assert len(ids) == 4
