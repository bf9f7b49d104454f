"""The helper's command line: exit codes and one-line errors for bad input."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from skyrunner.helper.plan import ArtifactEntry, DependencyEntry
from tests.integration.helper.conftest import HelperEnv


async def _run(*args: str, cwd: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "skyrunner.helper",
        *args,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_bad_plan_files(tmp_path: Path) -> None:
    (tmp_path / "garbage.json").write_text("{not json")
    code, out = await _run("sources", "--plan", str(tmp_path / "garbage.json"), cwd=tmp_path)
    assert code == 1
    assert out.startswith("\x1b[31;1mERROR: ") and "not a helper plan" in out
    code, out = await _run("cache-restore", "--plan", str(tmp_path / "missing.json"), cwd=tmp_path)
    assert (code, "Traceback" in out) == (1, False)
    assert "missing.json: cannot read the plan: no such file or directory" in out


async def test_usage_errors_exit_2(tmp_path: Path) -> None:
    code, out = await _run("cache-save", "--plan", "x.json", "--job-status", "maybe", cwd=tmp_path)
    assert code == 2 and "invalid choice" in out


async def test_artifact_steps_need_the_job_token(helper: HelperEnv) -> None:
    plan = helper.plan(dependencies=(DependencyEntry(id=1, name="build"),), artifacts=(ArtifactEntry(paths=("x",)),))
    for step, extra in (("artifacts-download", ()), ("artifacts-upload", ("--job-status", "success"))):
        run = await helper.run(step, plan, *extra, token=None)
        assert run.returncode == 1
        assert "ERROR: CI_JOB_TOKEN is not set" in run.output
