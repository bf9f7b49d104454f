"""config.toml as gitlab-runner writes it: the reference file, every error form, the helpers."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pydantic
import pytest

from skyrunner.config import (
    CacheType,
    Config,
    Executor,
    KubernetesConfig,
    LogFormat,
    PatchType,
    PullPolicy,
    RunnerConfig,
    RunnerDirs,
    ServerlessPlatform,
    parse_config,
    render_config,
    shorten_token,
)
from skyrunner.errors import ConfigError
from skyrunner.platforms import Platform, check_platform_limits

REFERENCE = Path(__file__).parent.parent / "fixtures" / "reference-config.toml"

RUNNER = """\
[[runners]]
  name = "r"
  url = "https://gitlab.example.com"
  token = "glrt-t1_SECRETsecretSECRET"
  executor = "kubernetes"
"""


def parse(text: str) -> tuple[Config, list[str]]:
    return parse_config(textwrap.dedent(text), "config.toml")


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    return str(caught.value)


# --- the reference deployment -----------------------------------------------------------------


def test_reference_config_loads_unchanged_without_warnings() -> None:
    config, warnings = parse_config(REFERENCE.read_text(encoding="utf-8"), "config.toml")

    assert warnings == []
    assert config.concurrent == 10
    assert config.check_interval == 3  # 0 means gitlab-runner's default
    (runner,) = config.runners
    assert runner.name == "runner"
    assert runner.url == "https://gitlab.example.choerodon.io"
    assert runner.token.get_secret_value() == "**********************"
    assert runner.executor is Executor.KUBERNETES
    assert runner.output_limit == 51200
    assert runner.limit == 0
    assert runner.request_concurrency == 1
    assert runner.environment_pairs() == [
        ("CHOERODON_URL", "http://api.example.choerodon.io"),
        ("SONAR_URL", "http://sonarqube.example.choerodon.io"),
    ]


def test_reference_kubernetes_section_comes_through() -> None:
    config, _ = parse_config(REFERENCE.read_text(encoding="utf-8"), "config.toml")
    kube = config.runners[0].kubernetes
    assert kube is not None

    assert kube.host == "https://abcde.serverless-1.kubernetes.cn-shanghai.example.choerodon.io:6443"
    assert (kube.cert_file, kube.key_file, kube.ca_file) == (
        "/etc/gitlab-runner/tls.crt",
        "/etc/gitlab-runner/tls.crt",
        "/etc/gitlab-runner/ca.crt",
    )
    assert kube.namespace == "default"
    assert kube.pull_policy == (PullPolicy.ALWAYS,)
    assert (kube.cpu_limit, kube.cpu_request, kube.memory_limit, kube.memory_request) == (
        "3750m",
        "3750m",
        "7680Mi",
        "7680Mi",
    )
    assert (kube.helper_cpu_limit, kube.helper_memory_request) == ("250m", "512Mi")
    assert kube.helper_image == "dockerhub.azk8s.cn/gitlab/gitlab-runner-helper:x86_64-4745a6f3"
    assert kube.pod_annotations == {}
    (pvc,) = kube.volumes.pvc
    assert (pvc.name, pvc.mount_path, pvc.read_only) == ("runner-cache-pvc", "/cache", False)
    assert kube.serverless.platform is ServerlessPlatform.NONE


def test_reference_key_file_problem_is_reported_not_raised() -> None:
    config, _ = parse_config(REFERENCE.read_text(encoding="utf-8"), "config.toml")
    kube = config.runners[0].kubernetes
    assert kube is not None

    problem = kube.tls_problem()

    assert problem is not None
    assert "key_file" in problem
    assert "cert_file" in problem
    assert "/etc/gitlab-runner/tls.crt" in problem


@pytest.mark.parametrize(
    ("cert_file", "key_file"),
    [(None, None), ("/c.crt", "/c.key"), ("/c.crt", None), ("", "")],
    ids=["unset", "different", "key-unset", "empty"],
)
def test_tls_problem_is_none_when_files_differ_or_are_unset(
    cert_file: str | None, key_file: str | None
) -> None:
    assert KubernetesConfig(cert_file=cert_file, key_file=key_file).tls_problem() is None


# --- defaults and gitlab-runner's spellings ----------------------------------------------------


def test_defaults_are_gitlab_runners() -> None:
    config, _ = parse(RUNNER)

    assert (config.concurrent, config.check_interval, config.shutdown_timeout) == (1, 3, 30)
    assert (config.log_level, config.log_format, config.listen_address) == (None, None, None)
    runner = config.runners[0]
    assert (runner.limit, runner.request_concurrency, runner.output_limit) == (0, 1, 4096)
    assert runner.kubernetes is None
    kube = runner.kubernetes_or_default()
    assert (kube.poll_interval, kube.poll_timeout) == (3, 180)
    assert kube.pull_policy == ()
    assert kube.serverless.image_builder.value == "none"


@pytest.mark.parametrize(
    ("key", "attribute", "expected"),
    [
        ("output_limit", "output_limit", 4096),
        ("request_concurrency", "request_concurrency", 1),
    ],
    ids=["output_limit", "request_concurrency"],
)
def test_zero_means_default_for_runner_numbers(key: str, attribute: str, expected: int) -> None:
    config, _ = parse(RUNNER + f"  {key} = 0\n")
    assert getattr(config.runners[0], attribute) == expected


def test_global_keys() -> None:
    config, _ = parse(
        """\
        concurrent = 4
        check_interval = 7
        log_level = "debug"
        log_format = "json"
        listen_address = "127.0.0.1:9252"
        shutdown_timeout = 0
        """
    )
    assert (config.concurrent, config.check_interval, config.shutdown_timeout) == (4, 7, 30)
    assert config.log_format is LogFormat.JSON
    assert config.listen_address == "127.0.0.1:9252"


def test_gitlab_runner_spellings_and_aliases() -> None:
    config, warnings = parse(
        RUNNER
        + """\
  tls-ca-file = "/ca.pem"
  tls_cert_file = "/cert.pem"
  pre_clone_script = "echo pre"
  token_obtained_at = 2024-05-01T10:00:00Z
  token_expires_at = 0001-01-01T00:00:00Z
  [runners.custom_build_dir]
    enabled = true
  [runners.feature_flags]
    FF_USE_FASTZIP = true
  [runners.cache]
    Type = "s3"
    Path = "prefix"
    Shared = true
    MaxUploadedArchiveSize = 1024
    [runners.cache.s3]
      ServerAddress = "minio:9000"
      AccessKey = "AK"
      SecretKey = "SK-secret"
      BucketName = "runner"
      BucketLocation = "us-east-1"
      Insecure = true
  [runners.kubernetes]
    terminationGracePeriodSeconds = 10
    pull_policy = ["if-not-present", "always"]
    [[runners.kubernetes.pod_spec]]
      name = "hostname"
      patch_type = "merge"
      patch = '{"hostname": "x"}'
"""
    )
    assert warnings == []
    runner = config.runners[0]
    assert (runner.tls_ca_file, runner.tls_cert_file) == ("/ca.pem", "/cert.pem")
    assert runner.pre_get_sources_script == "echo pre"
    assert runner.token_obtained_at is not None and runner.token_obtained_at.year == 2024
    assert runner.custom_build_dir.enabled is True
    assert runner.feature_flags == {"FF_USE_FASTZIP": True}
    cache = runner.cache
    assert cache is not None and cache.s3 is not None
    assert (cache.type, cache.path, cache.shared, cache.max_uploaded_archive_size) == (
        CacheType.S3,
        "prefix",
        True,
        1024,
    )
    assert cache.s3.secret_key is not None and cache.s3.secret_key.get_secret_value() == "SK-secret"
    assert (cache.s3.server_address, cache.s3.bucket_name, cache.s3.insecure) == (
        "minio:9000",
        "runner",
        True,
    )
    kube = runner.kubernetes
    assert kube is not None
    assert kube.termination_grace_period_seconds == 10
    assert kube.pull_policy == (PullPolicy.IF_NOT_PRESENT, PullPolicy.ALWAYS)
    assert kube.pod_spec[0].patch_type is PatchType.MERGE


def test_kubernetes_tables_keep_gitlab_runner_names() -> None:
    config, warnings = parse(
        RUNNER
        + """\
  [runners.kubernetes]
    bearer_token = "kube-token"
    privileged = false
    node_selector = { "kubernetes.io/arch" = "amd64" }
    node_tolerations = { "dedicated=ci" = "NoSchedule" }
    dns_policy = "none"
    [runners.kubernetes.dns_config]
      nameservers = ["10.0.0.10"]
      searches = ["corp.example"]
      [[runners.kubernetes.dns_config.options]]
        name = "ndots"
        value = "2"
    [[runners.kubernetes.host_aliases]]
      ip = "10.0.0.5"
      hostnames = ["gitlab.corp.example"]
    [runners.kubernetes.build_container_security_context]
      run_as_user = 1000
      read_only_root_filesystem = true
      [runners.kubernetes.build_container_security_context.capabilities]
        drop = ["ALL"]
    [runners.kubernetes.affinity.node_affinity.required_during_scheduling_ignored_during_execution]
      [[runners.kubernetes.affinity.node_affinity.required_during_scheduling_ignored_during_execution.node_selector_terms]]
        [[runners.kubernetes.affinity.node_affinity.required_during_scheduling_ignored_during_execution.node_selector_terms.match_expressions]]
          key = "zone"
          operator = "In"
          values = ["a"]
    [[runners.kubernetes.volumes.empty_dir]]
      name = "scratch"
      mount_path = "/scratch"
      medium = "Memory"
      size_limit = "1Gi"
    [[runners.kubernetes.volumes.secret]]
      name = "certs"
      mount_path = "/certs"
      read_only = true
      [runners.kubernetes.volumes.secret.items]
        "tls.crt" = "server.crt"
    [runners.kubernetes.serverless]
      platform = "eci"
      image_cache = true
      extra_ephemeral_storage = "20Gi"
      image_builder = "kaniko"
      [runners.kubernetes.serverless.prices]
        per_vcpu_second = 0.000049
        per_gib_second = 0
        currency = "CNY"
"""
    )
    assert warnings == []
    kube = config.runners[0].kubernetes
    assert kube is not None
    assert kube.bearer_token is not None and kube.bearer_token.get_secret_value() == "kube-token"
    assert "kube-token" not in repr(kube)
    assert kube.node_selector == {"kubernetes.io/arch": "amd64"}
    assert kube.node_tolerations == {"dedicated=ci": "NoSchedule"}
    assert kube.dns_config.options[0].value == "2"
    assert kube.host_aliases[0].hostnames == ("gitlab.corp.example",)
    context = kube.build_container_security_context
    assert (context.run_as_user, context.capabilities) is not None
    assert context.capabilities is not None and context.capabilities.drop == ("ALL",)
    terms = kube.affinity["node_affinity"]
    assert isinstance(terms, dict)
    assert kube.volumes.empty_dir[0].size_limit == "1Gi"
    assert kube.volumes.secret[0].items == {"tls.crt": "server.crt"}
    assert kube.serverless.prices.per_gib_second == 0
    assert kube.serverless.prices.currency == "CNY"


def test_models_are_frozen() -> None:
    config, _ = parse(RUNNER)
    with pytest.raises(pydantic.ValidationError):
        config.runners[0].limit = 3


# --- errors: one line, file, line, key ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("concurrent = \n", "config.toml:1: invalid TOML: invalid value (column 14)"),
        ('a = "x"\na = "y"\n', "config.toml:2: invalid TOML: cannot overwrite a value (column 8)"),
        ("[[runners]\n", "config.toml:1: invalid TOML: "),
        ('name = "unterminated\n', "config.toml:1: invalid TOML: "),
    ],
    ids=["no-value", "duplicate-key", "bad-header", "open-string"],
)
def test_syntax_error_names_file_and_line(text: str, expected: str) -> None:
    message = error_of(text)
    assert message.startswith(expected)
    assert "\n" not in message


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "  [runners.kubernetes]\n    cpu_limit = 2\n",
            "config.toml:7: runners[0].kubernetes.cpu_limit: input should be a valid string",
        ),
        ('  limit = "2"\n', "config.toml:6: runners[0].limit: input should be a valid integer"),
        ("  limit = -1\n", "config.toml:6: runners[0].limit: input should be greater than or equal to 0"),
        (
            '  debug_trace_disabled = "yes"\n',
            "config.toml:6: runners[0].debug_trace_disabled: input should be",
        ),
        ('  environment = "A=1"\n', "config.toml:6: runners[0].environment: input should be an array"),
        ('  shell = "pwsh"\n', "config.toml:6: runners[0].shell: input should be 'bash' or 'sh'"),
        (
            '  [runners.kubernetes]\n    pull_policy = ["sometimes"]\n',
            "config.toml:7: runners[0].kubernetes.pull_policy[0]: input should be 'always'",
        ),
        (
            '  [[runners.kubernetes.volumes.pvc]]\n    name = "x"\n    mount_path = "/x"\n    readonly = 1\n',
            "config.toml:9: runners[0].kubernetes.volumes.pvc[0].readonly: input should be a valid boolean",
        ),
        (
            '  [[runners.kubernetes.volumes.pvc]]\n    name = "x"\n',
            "config.toml:6: runners[0].kubernetes.volumes.pvc[0].mount_path: field required",
        ),
        (
            '  [runners.kubernetes.pod_annotations]\n    "a.b/c" = true\n',
            'config.toml:7: runners[0].kubernetes.pod_annotations."a.b/c": input should be a valid string',
        ),
        (
            '  [[runners.kubernetes.pod_spec]]\n    name = "p"\n'
            '    patch = "{}"\n    patch_path = "/p.yaml"\n',
            "config.toml:6: runners[0].kubernetes.pod_spec[0]: pod_spec 'p' sets both patch and patch_path",
        ),
        (
            '  [runners.kubernetes.serverless]\n    platform = "lambda"\n',
            "config.toml:7: runners[0].kubernetes.serverless.platform: input should be 'eci', 'fargate'",
        ),
    ],
    ids=[
        "string-got-int",
        "int-got-string",
        "negative",
        "bool-got-string",
        "array-got-string",
        "enum",
        "enum-in-array",
        "old-alias",
        "missing-in-array-table",
        "quoted-key",
        "model-rule",
        "platform",
    ],
)
def test_wrong_value_names_line_and_key(extra: str, expected: str) -> None:
    message = error_of(RUNNER + extra)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_missing_key_points_at_its_table() -> None:
    message = error_of(
        'concurrent = 2\n\n[[runners]]\n  name = "x"\n  url = "https://g"\n  executor = "shell"\n'
    )
    assert message == "config.toml:3: runners[0].token: field required"


def test_error_in_second_runner_names_it() -> None:
    message = error_of(RUNNER + "\n" + RUNNER.replace('executor = "kubernetes"', 'executor = "docker"'))
    assert message == "config.toml:11: runners[1].executor: input should be 'shell' or 'kubernetes'"


def test_global_error_and_count_of_others() -> None:
    message = error_of('concurrent = 0\ncheck_interval = "3"\nlog_format = "xml"\n')
    assert message == (
        "config.toml:1: concurrent: input should be greater than or equal to 1 (and 2 more problems)"
    )


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("SONAR_TOKEN:hunter2-secret", 'runners[0].environment[1]: entry has no "=", expected KEY=VALUE'),
        ("1ABC=hunter2-secret", "runners[0].environment[1]: '1ABC' is not a variable name"),
        ("=hunter2-secret", "runners[0].environment[1]: '' is not a variable name"),
    ],
    ids=["no-equals", "bad-name", "empty-name"],
)
def test_bad_environment_entry_is_named_without_its_value(entry: str, expected: str) -> None:
    message = error_of(RUNNER + f'  environment = ["A=1", "{entry}"]\n')
    assert message.startswith(f"config.toml:6: {expected}")
    assert "hunter2" not in message


def test_url_must_be_http() -> None:
    message = error_of(RUNNER.replace("https://gitlab.example.com", "gitlab.example.com"))
    assert message == (
        "config.toml:3: runners[0].url: 'gitlab.example.com' is not an http:// or https:// URL"
    )


def test_token_never_appears_in_errors() -> None:
    message = error_of(RUNNER + "  [runners.kubernetes]\n    bearer_token = 5\n  limit = true\n")
    assert "SECRETsecret" not in message


# --- unknown keys: warnings, kept on save ------------------------------------------------------


def test_unknown_keys_warn_once_each_with_their_line() -> None:
    config, warnings = parse(
        'user = "gitlab-runner"\n\n[session_server]\n  session_timeout = 1800\n\n'
        + RUNNER
        + """\
  foo = 1
  [runners.docker]
    image = "alpine"
    privileged = true
  [[runners.kubernetes.volumes.pvc]]
    name = "v"
    mount_path = "/v"
    storage_class = "fast"
  [runners.kubernetes.serverless]
    platform = "none"
    budget = 5
"""
    )
    assert warnings == [
        "config.toml:1: unknown key user",
        "config.toml:3: unknown key session_server",
        "config.toml:11: unknown key runners[0].foo",
        "config.toml:12: unknown key runners[0].docker",
        "config.toml:18: unknown key runners[0].kubernetes.volumes.pvc[0].storage_class",
        "config.toml:21: unknown key runners[0].kubernetes.serverless.budget",
    ]
    saved = render_config(config)
    assert "[runners.docker]" in saved
    assert "[session_server]" in saved
    assert 'storage_class = "fast"' in saved


# --- platform limits ---------------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["eci", "fargate"])
@pytest.mark.parametrize(
    ("kubernetes", "key"),
    [
        ("    privileged = true\n", "runners[0].kubernetes.privileged"),
        (
            "    [runners.kubernetes.service_container_security_context]\n      privileged = true\n",
            "runners[0].kubernetes.service_container_security_context.privileged",
        ),
        ("    host_network = true\n", "runners[0].kubernetes.host_network"),
        (
            "    [[runners.kubernetes.volumes.host_path]]\n"
            '      name = "docker"\n      mount_path = "/var/run"\n',
            "runners[0].kubernetes.volumes.host_path[0]",
        ),
    ],
    ids=["privileged", "service-privileged", "host-network", "host-path"],
)
def test_platform_limits_reject_at_load(platform: str, kubernetes: str, key: str) -> None:
    text = (
        RUNNER
        + "  [runners.kubernetes]\n"
        + kubernetes
        + f'  [runners.kubernetes.serverless]\n    platform = "{platform}"\n'
    )

    message = error_of(text)

    assert message.startswith("config.toml:"), message
    assert f" {key}: " in message
    assert platform in message
    assert "\n" not in message


@pytest.mark.parametrize("platform", [platform.value for platform in Platform])
def test_platform_limits_are_the_executors_rules(platform: str) -> None:
    text = (
        RUNNER
        + "  [runners.kubernetes]\n    host_network = true\n"
        + f'  [runners.kubernetes.serverless]\n    platform = "{platform}"\n'
    )
    refused = check_platform_limits(Platform(platform), privileged=False, host_path=False, host_network=True)

    if refused:
        assert error_of(text) == f"config.toml:7: runners[0].kubernetes.host_network: {refused[0]}"
    else:
        parse(text)


@pytest.mark.parametrize("platform", ["none", "auto"])
def test_platform_limits_do_not_apply_off_serverless(platform: str) -> None:
    text = (
        RUNNER
        + "  [runners.kubernetes]\n    privileged = true\n    host_network = true\n"
        + f'  [runners.kubernetes.serverless]\n    platform = "{platform}"\n'
    )
    config, _ = parse(text)
    kube = config.runners[0].kubernetes
    assert kube is not None and kube.requests_privileged()


# --- helpers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "short"),
    [
        ("glrt-t9Wkyj-HGRkqQ-VWTGAr", "t9Wkyj-HG"),
        ("glrt-t1_abcdefghijKLMN", "abcdefghi"),
        ("glrt-t3_abcdefghijKLMN", "abcdefghi"),
        ("t2_abcdefghijKLMN", "abcdefghi"),
        ("glrtr-abcdefghijKLMN", "abcdefghi"),
        ("glcbt-64_abcdefghij", "64_abcdef"),
        ("GR1348941Z196cJVywzZpx_Ki_Cn2", "Z196cJVyw"),
        ("GRveryverylongtoken", "GRveryver"),
        ("GJ1348941Z196cJVywzZpx", "GJ1348941"),
        ("veryverylongtoken", "veryveryl"),
        ("short", "short"),
        ("", ""),
    ],
    ids=[
        "glrt",
        "glrt-t1",
        "glrt-t3",
        "t2",
        "glrtr",
        "glcbt",
        "GR-rotation",
        "GR-not-hex",
        "not-GR",
        "legacy",
        "short",
        "empty",
    ],
)
def test_short_token(token: str, short: str) -> None:
    assert shorten_token(token) == short


def test_runner_short_token_property() -> None:
    config, _ = parse(RUNNER)
    assert config.runners[0].short_token == "SECRETsec"


def test_environment_pairs_keep_equals_in_values_and_order() -> None:
    config, _ = parse(RUNNER + '  environment = ["B=x=y", "A=", "C=1"]\n')
    assert config.runners[0].environment_pairs() == [("B", "x=y"), ("A", ""), ("C", "1")]


def runner(executor: str, **settings: str) -> RunnerConfig:
    return RunnerConfig.model_validate({"url": "https://g", "token": "t", "executor": executor, **settings})


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        (runner("shell"), RunnerDirs(Path("/srv/r/builds"), Path("/srv/r/cache"))),
        (
            runner("shell", builds_dir="b", cache_dir="/var/cache/r"),
            RunnerDirs(Path("/srv/r/b"), Path("/var/cache/r")),
        ),
        (runner("kubernetes"), RunnerDirs(Path("/builds"), Path("/cache"))),
        (runner("kubernetes", builds_dir="/b"), RunnerDirs(Path("/b"), Path("/cache"))),
    ],
    ids=["shell-defaults", "shell-relative-and-absolute", "kubernetes-defaults", "kubernetes-set"],
)
def test_resolve_dirs(built: RunnerConfig, expected: RunnerDirs) -> None:
    assert built.resolve_dirs(Path("/srv/r")) == expected


def test_repr_shows_no_secret() -> None:
    config, _ = parse(
        RUNNER
        + """\
  environment = ["SONAR_TOKEN=env-secret"]
  [runners.docker]
    password = "docker-secret"
  [runners.cache.s3]
    SecretKey = "s3-secret"
  [runners.cache.gcs]
    PrivateKey = "gcs-secret"
  [runners.kubernetes]
    bearer_token = "kube-secret"
"""
    )
    shown = repr(config) + str(config)
    for secret in ("SECRETsecret", "env-secret", "docker-secret", "s3-secret", "gcs-secret", "kube-secret"):
        assert secret not in shown
    assert 'password = "docker-secret"' in render_config(config)
