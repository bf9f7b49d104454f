"""register, verify, unregister and list through the real CLI against the test coordinator."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest

from tests.e2e.conftest import run_cli, write_config
from tests.fakes.coordinator import FakeCoordinator


async def test_legacy_register_verify_unregister(coordinator: FakeCoordinator, workdir: Path) -> None:
    config = workdir / "etc" / "config.toml"
    code, out = await run_cli(
        ["register", "--non-interactive", "--config", str(config), "--url", coordinator.url,
         "--registration-token", coordinator.state.registration_token, "--executor", "shell", "--name", "ci-box",
         "--tag-list", "linux, python", "--locked", "--limit", "3", "--output-limit", "8192",
         "--env", "FOO=bar", "--builds-dir", "/srv/builds"],
        workdir,
    )  # fmt: skip
    assert code == 0, out
    assert "Runner registered successfully" in out
    assert coordinator.state.registration_token not in out
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    data = tomllib.loads(config.read_text())
    runner = data["runners"][0]
    assert (runner["name"], runner["executor"], runner["limit"], runner["output_limit"]) == ("ci-box", "shell", 3, 8192)
    assert runner["environment"] == ["FOO=bar"] and runner["builds_dir"] == "/srv/builds"
    remote = coordinator.runners[runner["token"]]
    assert (remote.description, remote.tag_list, remote.locked) == ("ci-box", ["linux", "python"], True)
    assert (config.parent / ".runner_system_id").exists()

    code, out = await run_cli(["verify", "--config", str(config)], workdir)
    assert code == 0 and "is valid" in out, out
    assert runner["token"] not in out

    code, out = await run_cli(["list", "--config", str(config)], workdir)
    assert code == 0 and "ci-box" in out and "Executor=shell" in out and runner["token"] not in out

    code, out = await run_cli(["unregister", "--config", str(config), "--name", "ci-box"], workdir)
    assert code == 0, out
    assert runner["token"] not in coordinator.runners
    assert tomllib.loads(config.read_text()).get("runners", []) == []


async def test_glrt_token_is_verified_not_registered(coordinator: FakeCoordinator, workdir: Path) -> None:
    created = coordinator.add_runner()
    config = workdir / "config.toml"
    code, out = await run_cli(
        ["register", "-n", "-c", str(config), "-u", coordinator.url, "-t", created.token, "--executor", "shell"],
        workdir,
    )
    assert code == 0, out
    system_id = (workdir / ".runner_system_id").read_text().strip()
    assert system_id in coordinator.runners[created.token].managers
    assert len(coordinator.runners) == 1, "no new runner was registered"
    runner = tomllib.loads(config.read_text())["runners"][0]
    assert runner["token"] == created.token and runner["id"] == created.id

    code, out = await run_cli(["unregister", "-c", str(config), "--all-runners"], workdir)
    assert code == 0, out
    assert created.token in coordinator.runners, "a glrt- runner stays in GitLab"
    assert system_id not in coordinator.runners[created.token].managers, "only this host's manager leaves"


async def test_glrt_token_refuses_server_side_settings(coordinator: FakeCoordinator, workdir: Path) -> None:
    created = coordinator.add_runner()
    code, out = await run_cli(
        ["register", "-n", "-c", str(workdir / "c.toml"), "-u", coordinator.url, "-t", created.token,
         "--executor", "shell", "--tag-list", "a,b"],
        workdir,
    )  # fmt: skip
    assert code == 2, out
    assert "tag_list" in out and "Traceback" not in out
    assert not (workdir / "c.toml").exists()


async def test_bad_registration_token_is_one_line(coordinator: FakeCoordinator, workdir: Path) -> None:
    code, out = await run_cli(
        ["register", "-n", "-c", str(workdir / "c.toml"), "-u", coordinator.url, "-r", "GR1348941wrong",
         "--executor", "shell"],
        workdir,
    )  # fmt: skip
    assert code == 2
    assert out.strip() == "skyrunner: error: register: GitLab refused the registration token (403)"


async def test_verify_delete_removes_runners_gitlab_forgot(coordinator: FakeCoordinator, workdir: Path) -> None:
    kept = coordinator.add_runner()
    config = write_config(workdir / "config.toml", coordinator, kept)
    text = config.read_text()
    config.write_text(text + text[text.index("[[runners]]") :].replace(kept.token, "glrt-forgotten0000000000"))
    code, out = await run_cli(["verify", "-c", str(config)], workdir)
    assert code == 1 and "is removed" in out
    code, out = await run_cli(["verify", "-c", str(config), "--delete"], workdir)
    assert code == 0, out
    runners = tomllib.loads(config.read_text())["runners"]
    assert [r["token"] for r in runners] == [kept.token]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("concurrent = 2\n[[runners]\nname = 'x'\n", "config.toml:2"),
        ("concurrent = 'many'\n", "config.toml:1: concurrent: input should be a valid integer"),
        (
            "concurrent = 1\n[[runners]]\nname = 'x'\nurl = 'ftp://h'\ntoken = 't'\nexecutor = 'shell'\n",
            "config.toml:4: runners[0].url",
        ),
    ],
    ids=["syntax", "wrong-type", "bad-url"],
)
async def test_config_errors_are_one_line_with_exit_code_2(workdir: Path, content: str, expected: str) -> None:
    config = workdir / "config.toml"
    config.write_text(content)
    code, out = await run_cli(["run", "--config", str(config)], workdir)
    assert code == 2
    assert expected in out
    assert len(out.strip().splitlines()) == 1 and "Traceback" not in out


async def test_reference_config_loads_unchanged(workdir: Path) -> None:
    reference = Path(__file__).parents[1] / "fixtures" / "reference-config.toml"
    code, out = await run_cli(["list", "--config", str(reference)], workdir)
    assert code == 0, out
    assert "runner" in out and "Executor=kubernetes" in out
