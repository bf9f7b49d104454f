"""``skyrunner exec``'s shell runner, built from its parts, against what assembly makes of config.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from skyrunner.assembly import build_executor_factory, build_job_settings, runner_identity
from skyrunner.cli._exec import LOCAL_TOKEN, RUNNER_NAME, SYSTEM_ID, shell_setup
from skyrunner.config import RunnerConfig
from skyrunner.executors.shell import ShellExecutorFactory
from skyrunner.pipeline.scheduler import SourcesAccess
from skyrunner.pipeline.workspace import Workspace


def test_the_shell_setup_is_what_assembly_makes_of_a_default_shell_runner(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / ".skyrunner")
    runner = RunnerConfig.model_validate(
        {
            "name": RUNNER_NAME,
            "url": "http://127.0.0.1/",
            "token": LOCAL_TOKEN,
            "executor": "shell",
            "builds_dir": str(workspace.builds),
            "cache_dir": str(workspace.cache),
        }
    )
    setup = shell_setup(workspace)
    assert setup.settings == build_job_settings(runner, SYSTEM_ID)
    assert setup.identity == runner_identity(runner)
    expected = build_executor_factory(runner, tmp_path)
    assert isinstance(setup.factory, ShellExecutorFactory) and isinstance(expected, ShellExecutorFactory)
    assert vars(setup.factory) == vars(expected)
    assert setup.sources is SourcesAccess.PATH


def test_listing_a_pipeline_loads_neither_config_nor_the_runner(tmp_path: Path) -> None:
    (tmp_path / ".gitlab-ci.yml").write_text("job:\n  script: [echo hi]\n")
    identity = ["-c", "user.name=Tess Ter", "-c", "user.email=tess@example.com"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "pipeline"]):
        subprocess.run(["git", *identity, *args], cwd=tmp_path, check=True, capture_output=True)
    probe = (
        "import sys; from skyrunner.cli import main\n"
        "try:\n    main(['exec', '--list'])\n"
        "finally:\n"
        "    print(sorted(m for m in sys.modules if m.startswith(('skyrunner.config', 'skyrunner.job.runner',"
        " 'skyrunner.gitlab', 'aiohttp'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "job" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"
