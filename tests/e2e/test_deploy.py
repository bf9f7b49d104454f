"""``skyrunner deploy`` end to end: the real CLI against the test GitLab and the test Kubernetes API.

Each test runs ``python -m skyrunner deploy`` in a subprocess with ``--kubeconfig`` pointing at
FakeKubeApi (server-side apply, Status errors, schema validation) and ``--url`` at
FakeCoordinator (register, verify), and reads what the cluster and GitLab then hold.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import os
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from skyrunner.cli import main
from tests.fakes.coordinator import FakeCoordinator
from tests.fakes.kubeapi import FakeKubeApi

pytestmark = pytest.mark.e2e

IMAGE = "registry.example.com/skyrunner:0.1.0"
NS = "ci"
NAMESPACED = ("ServiceAccount", "Role", "RoleBinding", "Secret", "ConfigMap", "Deployment", "PersistentVolumeClaim")


@pytest.fixture
async def gitlab(tmp_path: Path) -> AsyncIterator[FakeCoordinator]:
    (tmp_path / "gitlab").mkdir()
    async with FakeCoordinator(tmp_path / "gitlab") as fake:
        yield fake


@pytest.fixture
async def kube(tmp_path: Path) -> AsyncIterator[FakeKubeApi]:
    async with FakeKubeApi(tmp_path / "kube") as fake:
        yield fake


async def deploy(tmp_path: Path, kube: FakeKubeApi, *args: str) -> tuple[int, str, str]:
    """Run ``skyrunner deploy --kubeconfig <fake> args``; return the exit code, stdout and stderr.

    The command runs in a thread (its own event loop, as in a process) so that a test does not
    pay the interpreter's start for each call; one test runs the real process.
    """
    kubeconfig = kube.kubeconfig(tmp_path / "kubeconfig")
    return await asyncio.to_thread(_main, ["deploy", "--kubeconfig", str(kubeconfig), *args])


def _main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as exc:
            return int(exc.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


async def deploy_process(tmp_path: Path, kube: FakeKubeApi, *args: str) -> tuple[int, str, str]:
    """Run ``python -m skyrunner deploy --kubeconfig <fake> args`` as a process."""
    kubeconfig = kube.kubeconfig(tmp_path / "kubeconfig")
    env = {key: value for key, value in os.environ.items() if key not in ("CI_SERVER_TOKEN", "REGISTRATION_TOKEN")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "skyrunner", "deploy", "--kubeconfig", str(kubeconfig), *args,
        cwd=tmp_path, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def base_args(gitlab: FakeCoordinator, *extra: str) -> list[str]:
    return ["--namespace", NS, "--url", gitlab.url, "--image", IMAGE, *extra]


def versions(kube: FakeKubeApi) -> dict[str, str]:
    """resourceVersion of every object of the instance, by kind/name."""
    found = {}
    for kind in (*NAMESPACED, "PersistentVolume", "Namespace"):
        for obj in kube.objects(kind, None if kind in ("PersistentVolume", "Namespace") else NS):
            found[f"{kind}/{obj['metadata']['name']}"] = obj["metadata"]["resourceVersion"]
    return {key: value for key, value in found.items() if not key.startswith("Namespace/") or key == f"Namespace/{NS}"}


def named(kube: FakeKubeApi, kind: str, name: str) -> dict[str, Any]:
    (found,) = [obj for obj in kube.objects(kind, NS) if obj["metadata"]["name"] == name]
    return found


def secret_token(kube: FakeKubeApi) -> str:
    return base64.b64decode(named(kube, "Secret", "skyrunner-token")["data"]["token"]).decode()


def lines(text: str) -> Sequence[str]:
    return text.strip().splitlines()


async def test_apply_is_idempotent_then_dry_run_shows_changes_then_delete_removes_it(
    tmp_path: Path, gitlab: FakeCoordinator, kube: FakeKubeApi
) -> None:
    runner = gitlab.add_runner()
    args = base_args(gitlab, "--token", runner.token, "--nfs-server", "nas.example.com", "--nfs-path", "/cache")

    code, out, err = await deploy(tmp_path, kube, *args, "--apply")

    assert code == 0, err
    assert lines(out) == [
        "Namespace ci: created", "ServiceAccount ci/skyrunner: created", "Role ci/skyrunner: created",
        "RoleBinding ci/skyrunner: created", "PersistentVolume ci-skyrunner-cache: created",
        "PersistentVolumeClaim ci/skyrunner-cache: created", "Secret ci/skyrunner-token: created",
        "ConfigMap ci/skyrunner-config: created", "Deployment ci/skyrunner: created",
    ]  # fmt: skip
    assert secret_token(kube) == runner.token
    config_map = named(kube, "ConfigMap", "skyrunner-config")
    assert runner.token not in yaml.safe_dump(config_map) and runner.token not in out + err
    (volume,) = kube.objects("PersistentVolume")
    assert volume["spec"]["mountOptions"] == ["nolock,tcp,noresvport", "vers=3"]
    before = versions(kube)

    code, out, err = await deploy(tmp_path, kube, *args, "--apply")

    assert code == 0, err
    assert all(line.endswith(": unchanged") for line in lines(out)), out
    assert versions(kube) == before, "an apply that changes nothing keeps every resourceVersion"

    code, out, err = await deploy(tmp_path, kube, *args, "--dry-run")

    assert (code, out) == (0, "# no changes\n"), err

    code, out, err = await deploy(tmp_path, kube, *base_args(gitlab, "--token", runner.token), "--dry-run")
    # the cache is gone from the values: the config changes, the PV and PVC would be kept

    assert code == 0, err
    assert "# only in the cluster (apply keeps it, --delete removes it): PersistentVolume ci-skyrunner-cache" in out
    assert '\n-      cache_dir = "/cache"\n' in out
    assert versions(kube) == before, "a dry run changes nothing"

    code, out, err = await deploy(tmp_path, kube, "--namespace", NS, "--delete")

    assert code == 0, err
    assert len(lines(out)) == 8 and all(line.endswith(": deleted") for line in lines(out)), out
    assert lines(out)[0] == "Deployment ci/skyrunner: deleted"
    assert not [obj for kind in NAMESPACED for obj in kube.objects(kind, NS) if "labels" in obj["metadata"]]
    assert not kube.objects("PersistentVolume")
    assert [n["metadata"]["name"] for n in kube.objects("Namespace") if n["metadata"]["name"] == NS] == [NS]
    assert "namespace ci is kept" in err


async def test_dry_run_shows_a_changed_field_and_hides_the_token(
    tmp_path: Path, gitlab: FakeCoordinator, kube: FakeKubeApi
) -> None:
    runner = gitlab.add_runner()
    assert (await deploy(tmp_path, kube, *base_args(gitlab, "--token", runner.token), "--apply"))[0] == 0
    other = gitlab.add_runner()

    code, out, err = await deploy(
        tmp_path, kube, "--namespace", NS, "--url", gitlab.url, "--token", other.token, "--image", IMAGE + "-new",
        "--dry-run",
    )  # fmt: skip

    assert code == 0, err
    assert f"-        image: {IMAGE}\n+        image: {IMAGE}-new\n" in out
    assert "+  token: '*** (changed)'" in out
    assert runner.token not in out and other.token not in out
    assert secret_token(kube) == runner.token


async def test_registration_token_registers_once_and_the_token_goes_to_the_secret(
    tmp_path: Path, gitlab: FakeCoordinator, kube: FakeKubeApi
) -> None:
    args = base_args(gitlab, "--registration-token", gitlab.state.registration_token, "--apply")

    code, out, err = await deploy(tmp_path, kube, *args)

    assert code == 0, err
    (registered,) = gitlab.runners.values()
    assert secret_token(kube) == registered.token
    assert registered.token not in out + err and gitlab.state.registration_token not in out + err

    code, out, err = await deploy(tmp_path, kube, *args)

    assert code == 0, err
    assert len(gitlab.runners) == 1, "re-applying keeps the runner registered before"
    assert "keeping the runner registered before" in err
    assert all(line.endswith(": unchanged") for line in lines(out)), out


async def test_a_token_that_does_not_verify_fails_before_anything_is_applied(
    tmp_path: Path, gitlab: FakeCoordinator, kube: FakeKubeApi
) -> None:
    token = "glrt-t3_NotKnownToGitLab123"

    code, out, err = await deploy_process(tmp_path, kube, *base_args(gitlab, "--token", token, "--apply"))

    assert code == 2
    assert (
        err
        == "skyrunner: error: token: GitLab does not know this runner token (403); a registration token goes in --registration-token\n"
    )
    assert token not in out + err
    assert NS not in [n["metadata"]["name"] for n in kube.objects("Namespace")]
    assert not any(method in ("PATCH", "POST", "PUT") for method, _ in kube.requests)


async def test_an_invalid_value_fails_before_gitlab_or_the_cluster_is_asked(
    tmp_path: Path, gitlab: FakeCoordinator, kube: FakeKubeApi
) -> None:
    runner = gitlab.add_runner()

    code, out, err = await deploy(
        tmp_path, kube, *base_args(gitlab, "--token", runner.token, "--nfs-path", "/cache", "--apply")
    )

    assert (code, out) == (2, "")
    assert err == "skyrunner: error: cache: a cache volume needs an NFS server (--nfs-server or cache.nfs_server)\n"
    assert kube.requests == [] and not any(r.path.endswith("/verify") for r in gitlab.requests)


async def test_external_cluster_credentials_go_to_their_own_secret(tmp_path: Path, gitlab: FakeCoordinator) -> None:
    runner = gitlab.add_runner()
    async with FakeKubeApi(tmp_path / "tlskube", tls=True) as kube:
        external = kube.kubeconfig(tmp_path / "external.kubeconfig")

        code, out, err = await deploy(
            tmp_path, kube, *base_args(gitlab, "--token", runner.token, "--kubeconfig-secret", str(external), "--apply")
        )

        assert code == 0, err
        assert "Secret ci/skyrunner-kubeconfig: created" in out
        assert not kube.objects("Role", NS), "jobs run under the certificate's identity: no Role"
        secret = named(kube, "Secret", "skyrunner-kubeconfig")
        assert secret["type"] == "kubernetes.io/tls"
        assert base64.b64decode(secret["data"]["tls.key"]) == kube.key_file.read_bytes()
        assert base64.b64decode(secret["data"]["tls.crt"]) == kube.cert_file.read_bytes()
        assert base64.b64decode(secret["data"]["ca.crt"]) == kube.ca_file.read_bytes()
        config_map = named(kube, "ConfigMap", "skyrunner-config")
        kube_table = _config_toml(config_map)["runners"][0]["kubernetes"]
        assert kube_table["key_file"] == "/etc/skyrunner-kube/tls.key" != kube_table["cert_file"]
        assert kube_table["host"] == kube.url


def _config_toml(config_map: dict[str, Any]) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(config_map["data"]["config.toml"])


async def test_an_api_refusal_is_one_line_with_the_status(
    tmp_path: Path, gitlab: FakeCoordinator, kube: FakeKubeApi
) -> None:
    runner = gitlab.add_runner()
    message = 'deployments.apps "skyrunner" is forbidden: User "ci-bot" cannot patch resource "deployments"'
    kube.fail_next("PATCH", r"/deployments/skyrunner$", 403, "Forbidden", message)

    code, out, err = await deploy(tmp_path, kube, *base_args(gitlab, "--token", runner.token, "--apply"))

    assert code == 1
    assert err == f"skyrunner: error: apply Deployment ci/skyrunner: 403 Forbidden: {message}\n"
    assert lines(out)[-1] == "ConfigMap ci/skyrunner-config: created", "what came before was applied"


async def test_an_unreachable_or_unusable_cluster_is_one_line(tmp_path: Path, gitlab: FakeCoordinator) -> None:
    runner = gitlab.add_runner()
    closed = tmp_path / "closed.kubeconfig"
    closed.write_text(
        yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
            "users": [{"name": "u", "user": {"token": "t"}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        })
    )  # fmt: skip
    args = ["deploy", *base_args(gitlab, "--token", runner.token, "--apply")]

    code, _, err = await asyncio.to_thread(_main, [*args, "--kubeconfig", str(closed)])

    assert (code, err) == (1, "skyrunner: error: get Namespace ci: cannot reach http://127.0.0.1:9: ConnectError\n")

    code, _, err = await asyncio.to_thread(_main, [*args, "--kubeconfig", str(tmp_path / "missing")])

    assert code == 2 and err.startswith(f"skyrunner: error: {tmp_path / 'missing'}: ") and err.count("\n") == 1


async def test_output_yaml_registers_and_prints_one_stream(tmp_path: Path, gitlab: FakeCoordinator) -> None:
    args = ["deploy", "--namespace", NS, "--url", gitlab.url, "--image", IMAGE]

    code, out, err = await asyncio.to_thread(
        _main, [*args, "--registration-token", gitlab.state.registration_token, "--platform", "eci"]
    )

    assert code == 0, err
    (registered,) = gitlab.runners.values()
    documents = list(yaml.safe_load_all(out))
    assert [d["kind"] for d in documents][-3:] == ["Secret", "ConfigMap", "Deployment"]
    assert base64.b64decode(documents[-3]["data"]["token"]).decode() == registered.token
    assert registered.token not in out and f"registered runner {registered.id} with GitLab" in err


async def test_platform_auto_applies_and_deletes_the_node_reader(
    tmp_path: Path, gitlab: FakeCoordinator, kube: FakeKubeApi
) -> None:
    runner = gitlab.add_runner()

    code, out, err = await deploy(
        tmp_path, kube, *base_args(gitlab, "--token", runner.token, "--platform", "auto", "--apply")
    )

    assert code == 0, err
    assert "ClusterRole ci-skyrunner-nodes: created" in out and "ClusterRoleBinding ci-skyrunner-nodes: created" in out
    code, out, err = await deploy(tmp_path, kube, "--namespace", NS, "--delete")
    assert code == 0, err
    assert "ClusterRole ci-skyrunner-nodes: deleted" in out
