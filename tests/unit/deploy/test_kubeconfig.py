"""``--kubeconfig-secret``: the current context's server, CA, client certificate and key, checked."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from skyrunner.deploy import load_cluster_credentials, parse_kubeconfig
from skyrunner.errors import ConfigError
from tests.unit.deploy.inputs import CA_PEM, CERT_PEM, KEY_PEM, credentials, kubeconfig_document


def test_the_current_context_gives_server_and_pems() -> None:
    found = parse_kubeconfig(kubeconfig_document(), "admin.kubeconfig")

    assert found == credentials()
    assert "PRIVATE" not in repr(found), "the key is never in a repr"


def encoded(pem: bytes) -> str:
    return base64.b64encode(pem).decode()


def broken(change: str) -> Any:
    document = kubeconfig_document()
    user = document["users"][0]["user"]
    match change:
        case "swapped-key":  # the reference deployment's mistake, in kubeconfig form
            user["client-key-data"] = encoded(CERT_PEM)
        case "token":
            document["users"][0]["user"] = {"token": "sa-token-value"}
        case "no-context":
            document["current-context"] = ""
            document["contexts"].append({"name": "other", "context": {}})
        case "unknown-user":
            document["contexts"][0]["context"]["user"] = "nobody"
        case "http":
            document["clusters"][0]["cluster"]["server"] = "http://insecure:8080"
        case "bad-base64":
            user["client-certificate-data"] = "%%%"
        case "ca-not-pem":
            document["clusters"][0]["cluster"]["certificate-authority-data"] = encoded(b"hello")
        case "no-ca":
            del document["clusters"][0]["cluster"]["certificate-authority-data"]
        case "list":
            return [document]
    return document


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("swapped-key", "k: client-key is not a PEM private key"),
        ("token", "k: user 'admin' authenticates with a token; --kubeconfig-secret needs a client certificate and "
                  "key (the runner reads them from files)"),
        ("no-context", "k: no current-context"),
        ("unknown-user", "k: no user named 'nobody'"),
        ("http", "k: cluster 'eci' needs an https:// server"),
        ("bad-base64", "k: client-certificate-data is not base64"),
        ("ca-not-pem", "k: certificate-authority is not a PEM certificate"),
        ("no-ca", "k: certificate-authority is missing"),
        ("list", "k: not a kubeconfig (expected a mapping)"),
    ],
    ids=["swapped-key", "token", "no-context", "unknown-user", "http", "bad-base64", "ca-not-pem", "no-ca", "list"],
)  # fmt: skip
def test_unusable_credentials_are_one_line_without_secrets(change: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_kubeconfig(broken(change), "k")

    assert str(caught.value) == message
    assert "sa-token-value" not in str(caught.value)


def test_a_single_context_needs_no_current_context() -> None:
    document = kubeconfig_document()
    del document["current-context"]

    assert parse_kubeconfig(document, "k").server == credentials().server


def test_files_named_by_the_kubeconfig_are_read_relative_to_it(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    for name, pem in (("ca.crt", CA_PEM), ("client.crt", CERT_PEM), ("client.key", KEY_PEM)):
        (tmp_path / "pki" / name).write_bytes(pem)
    document = kubeconfig_document(
        **{"client-certificate": "pki/client.crt", "client-key": str(tmp_path / "pki/client.key")}
    )
    cluster = document["clusters"][0]["cluster"]
    del cluster["certificate-authority-data"]
    cluster["certificate-authority"] = "pki/ca.crt"
    path = tmp_path / "admin.kubeconfig"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")

    assert load_cluster_credentials(path) == credentials()


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "admin.kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig_document(**{"client-certificate": "gone.crt", "client-key": "k"})))

    with pytest.raises(ConfigError, match=r"^/.*/gone\.crt: no such file$"):
        load_cluster_credentials(path)
    path.write_text("clusters: [unclosed\n")
    with pytest.raises(ConfigError, match=r"admin\.kubeconfig: not a kubeconfig \(invalid YAML\)$"):
        load_cluster_credentials(path)
