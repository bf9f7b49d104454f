"""The config.toml of the ConfigMap: one kubernetes runner, token in a file, fitted to its pod."""

from __future__ import annotations

import pytest

from skyrunner.config import TOKEN_FROM_FILE, Config, ServerlessPlatform, parse_config, render_config
from skyrunner.deploy import build_runner_config, runner_platform
from skyrunner.errors import ConfigError
from tests.unit.deploy.inputs import TOKEN, credentials, reference_config, values


def test_without_a_template_the_runner_is_made_from_the_values() -> None:
    result = build_runner_config(values(platform="eci", concurrent=4, shutdown_timeout=600))

    config = result.config
    (runner,) = config.runners
    assert (config.concurrent, config.shutdown_timeout) == (4, 600)
    assert (runner.name, runner.url, runner.executor.value) == ("skyrunner", "https://gitlab.example.com", "kubernetes")
    assert runner.token.get_secret_value() == TOKEN_FROM_FILE
    assert runner.token_file == "/var/run/secrets/skyrunner/token"
    kube = runner.kubernetes_or_default()
    assert (kube.namespace, kube.helper_image, kube.host) == ("ci", "registry.example.com/skyrunner:0.1.0", None)
    assert runner_platform(config) is ServerlessPlatform.ECI
    assert result.notes == ()


def test_the_rendered_config_parses_back_and_holds_no_token() -> None:
    text = render_config(build_runner_config(values(cache={"nfs_server": "nas"}), reference_config()).config)

    parsed, warnings = parse_config(text, "config.toml")

    assert warnings == []
    assert parsed.runners[0].kubernetes_or_default().volumes.pvc[0].name == "skyrunner-cache"
    assert TOKEN not in text and "**********" not in text
    assert f'token = "{TOKEN_FROM_FILE}"' in text


def test_the_reference_config_keeps_its_settings_and_loses_what_cannot_work_in_the_pod() -> None:
    result = build_runner_config(values(cache={"nfs_server": "nas"}), reference_config())

    config = result.config
    (runner,) = config.runners
    kube = runner.kubernetes_or_default()
    assert (config.concurrent, runner.output_limit, runner.name) == (10, 51200, "runner")
    assert runner.environment_pairs()[0] == ("CHOERODON_URL", "http://api.example.choerodon.io")
    assert (kube.cpu_limit, kube.memory_request, kube.helper_cpu_limit) == ("3750m", "7680Mi", "250m")
    assert (kube.host, kube.cert_file, kube.key_file, kube.ca_file) == (None, None, None, None)
    assert [(v.name, v.mount_path, v.read_only) for v in kube.volumes.pvc] == [("skyrunner-cache", "/cache", False)]
    assert runner.cache_dir == "/cache"
    assert kube.helper_image == "registry.example.com/skyrunner:0.1.0"
    assert result.notes == (
        "config.toml: jobs run in namespace 'ci', not 'default'",
        "config.toml: the kubernetes host and credentials are dropped: the runner uses its service account (give "
        "--kubeconfig-secret to send jobs to another cluster)",
        "config.toml: helper_image 'dockerhub.azk8s.cn/gitlab/gitlab-runner-helper:x86_64-4745a6f3' becomes the "
        "runner image",
    )


def test_external_credentials_point_each_file_key_at_its_own_file() -> None:
    config = build_runner_config(values(), reference_config(), credentials()).config

    kube = config.runners[0].kubernetes_or_default()
    assert kube.host == credentials().server
    assert (kube.cert_file, kube.key_file, kube.ca_file) == (
        "/etc/skyrunner-kube/tls.crt", "/etc/skyrunner-kube/tls.key", "/etc/skyrunner-kube/ca.crt"
    )  # fmt: skip
    assert kube.tls_problem() is None, "the reference's key_file = cert_file is fixed"


def test_values_win_over_the_template() -> None:
    template = reference_config()
    config = build_runner_config(
        values(url="https://other.example.com", runner_name="ci-runner", platform="auto", concurrent=2), template
    ).config

    (runner,) = config.runners
    assert (runner.url, runner.name, config.concurrent) == ("https://other.example.com", "ci-runner", 2)
    assert runner_platform(config) is ServerlessPlatform.AUTO


def test_a_runner_id_from_gitlab_is_kept() -> None:
    assert build_runner_config(values(), runner_id=42).config.runners[0].id == 42


def test_a_shell_template_is_told() -> None:
    base, _ = parse_config('[[runners]]\nurl = "https://g"\ntoken = "t"\nexecutor = "shell"\n', "c.toml")

    result = build_runner_config(values(config="c.toml"), base)

    assert result.notes == ("c.toml: executor 'shell' becomes 'kubernetes'",)


@pytest.mark.parametrize(
    ("base", "changes", "message"),
    [
        (Config(runners=reference_config().runners * 2), {"config": "two.toml"},
         "two.toml: deploy runs one runner, the file has 2 [[runners]] entries"),
        (None, {"url": None}, "deploy: give --url (the GitLab URL) or url in the values"),
    ],
    ids=["two-runners", "no-url"],
)  # fmt: skip
def test_what_cannot_be_deployed(base: Config | None, changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_runner_config(values(**changes), base)

    assert str(caught.value) == message


def test_runner_platform_of_no_runner_is_none() -> None:
    assert runner_platform(Config()) is ServerlessPlatform.NONE
