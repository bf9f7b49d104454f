"""config.toml and .runner_system_id on disk: atomic 0600 writes, default paths, the system id."""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
from pathlib import Path

import pytest

from skyrunner.config import (
    Config,
    RunnerConfig,
    default_config_path,
    default_config_path_for,
    load_config,
    load_or_create_system_id,
    save_config,
)
from skyrunner.errors import ConfigError

REFERENCE = Path(__file__).parent.parent / "fixtures" / "reference-config.toml"


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_load_config_reads_the_reference_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    shutil.copy(REFERENCE, path)

    config = load_config(path)

    assert config.concurrent == 10
    assert config.runners[0].name == "runner"


def test_save_and_load_round_trip_with_mode_0600(tmp_path: Path) -> None:
    original = load_config(REFERENCE)
    path = tmp_path / "etc" / "gitlab-runner" / "config.toml"

    save_config(path, original)

    assert load_config(path) == original
    assert mode_of(path) == 0o600
    assert mode_of(path.parent) == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.toml"]  # no temp file left
    assert 'token = "**********************"' in path.read_text(encoding="utf-8")


def test_save_tightens_an_existing_wider_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("concurrent = 1\n", encoding="utf-8")
    path.chmod(0o644)
    config = Config(
        concurrent=3,
        runners=(RunnerConfig.model_validate({"url": "https://g", "token": "glrt-x", "executor": "shell"}),),
    )

    save_config(path, config)

    assert mode_of(path) == 0o600
    assert load_config(path) == config


def test_saved_file_uses_gitlab_runner_layout(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    runner = RunnerConfig.model_validate(
        {
            "name": "r",
            "url": "https://gitlab.example.com",
            "token": "glrt-abc",
            "executor": "kubernetes",
            "tls-ca-file": "/ca.pem",
            "kubernetes": {"volumes": {"pvc": [{"name": "c", "mount_path": "/cache", "readonly": True}]}},
        }
    )

    save_config(path, Config(runners=(runner,)))

    assert path.read_text(encoding="utf-8") == (
        "concurrent = 1\n"
        "check_interval = 3\n"
        "\n"
        "[[runners]]\n"
        '  name = "r"\n'
        '  url = "https://gitlab.example.com"\n'
        '  token = "glrt-abc"\n'
        '  tls-ca-file = "/ca.pem"\n'
        '  executor = "kubernetes"\n'
        "  [runners.kubernetes]\n"
        "    [runners.kubernetes.volumes]\n"
        "      [[runners.kubernetes.volumes.pvc]]\n"
        '        name = "c"\n'
        '        mount_path = "/cache"\n'
        "        read_only = true\n"
    )


def test_save_into_an_impossible_place_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")

    with pytest.raises(ConfigError, match=r"^.*/file/config.toml: cannot write"):
        save_config(blocker / "config.toml", Config())


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config.toml: no such file$"):
        load_config(tmp_path / "config.toml")


def test_load_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'name = "\xff"\n')
    with pytest.raises(ConfigError, match=r"config.toml: not UTF-8 text \(at byte 8\)$"):
        load_config(path)


def test_load_error_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("concurrent = 1\ncheck_interval = true\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}:2: check_interval: input should be a valid integer"


def test_load_logs_unknown_keys(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "config.toml"
    path.write_text('concurrent = 1\nsentry_dsn = "x"\n', encoding="utf-8")

    with caplog.at_level(logging.WARNING, logger="skyrunner.config"):
        load_config(path)

    assert [record.getMessage() for record in caplog.records] == [f"{path}:2: unknown key sentry_dsn"]


@pytest.mark.parametrize(
    ("euid", "expected"),
    [(0, Path("/etc/gitlab-runner/config.toml")), (1000, Path("/home/u/.gitlab-runner/config.toml"))],
    ids=["root", "user"],
)
def test_default_config_path_for(euid: int, expected: Path) -> None:
    assert default_config_path_for(euid, Path("/home/u")) == expected


def test_default_config_path_follows_the_current_user() -> None:
    assert default_config_path() == default_config_path_for(os.geteuid(), Path.home())


def test_system_id_is_created_0600_and_reused(tmp_path: Path) -> None:
    config_path = tmp_path / "config.toml"

    first = load_or_create_system_id(config_path)
    second = load_or_create_system_id(config_path)

    assert re.fullmatch(r"r_[0-9A-Za-z]{12}", first)
    assert second == first
    id_file = tmp_path / ".runner_system_id"
    assert id_file.read_text(encoding="utf-8").strip() == first
    assert mode_of(id_file) == 0o600


@pytest.mark.parametrize(
    ("content", "kept"),
    [("s_0123456789ab\n", True), ("r_AbCdEf012345", True), ("garbage\n", False), ("", False)],
    ids=["gitlab-runner-machine-id", "random-id", "garbage", "empty"],
)
def test_system_id_file_reused_only_when_well_formed(tmp_path: Path, content: str, kept: bool) -> None:
    (tmp_path / ".runner_system_id").write_text(content, encoding="utf-8")

    system_id = load_or_create_system_id(tmp_path / "config.toml")

    assert (system_id == content.strip()) is kept
    assert re.fullmatch(r"[rs]_[0-9A-Za-z]{12}", system_id)
