"""Running the real ``python -m skyrunner.helper`` against plans in a temporary directory."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from skyrunner.helper.plan import GitPlan, HelperPlan, render_plan

TOKEN = "glcbt-64_s3cr3tT0kenValue"


@dataclass(frozen=True)
class HelperRun:
    returncode: int
    output: str

    def assert_ok(self) -> None:
        assert self.returncode == 0, self.output


@dataclass
class HelperEnv:
    """A builds dir, a cache dir, and a way to run helper steps with a plan."""

    tmp: Path
    builds_dir: Path
    cache_dir: Path
    home: Path
    extra_path: list[str] = dataclasses.field(default_factory=list)

    @property
    def project_dir(self) -> Path:
        return self.builds_dir / "group" / "project"

    def plan(self, *, git: GitPlan | None = None, **fields: Any) -> HelperPlan:
        base = HelperPlan(
            server_url=fields.pop("server_url", "http://127.0.0.1:9"),
            job_id=fields.pop("job_id", 42),
            project_dir=fields.pop("project_dir", str(self.project_dir)),
            builds_dir=str(self.builds_dir),
            cache_dir=fields.pop("cache_dir", str(self.cache_dir)),
            git=git or GitPlan(repo_url="http://127.0.0.1:9/group/project.git", sha="0" * 40),
            retry_backoff_s=0.01,
        )
        return dataclasses.replace(base, **fields)

    def env(self, token: str | None = TOKEN) -> dict[str, str]:
        env = {
            "PATH": os.pathsep.join([*self.extra_path, os.environ.get("PATH", "/usr/bin:/bin")]),
            "HOME": str(self.home),
            "GIT_CONFIG_NOSYSTEM": "1",
            "NO_PROXY": "*",
            "LANG": "C.UTF-8",
        }
        if token is not None:
            env["CI_JOB_TOKEN"] = token
        # let `coverage run` with process start-up hooks follow the helper process
        env.update({k: v for k, v in os.environ.items() if k.startswith("COVERAGE_")})
        return env

    def write_plan(self, plan: HelperPlan, name: str = "plan.json") -> Path:
        path = self.tmp / name
        path.write_text(render_plan(plan))
        path.chmod(0o600)
        return path

    async def run(
        self, step: str, plan: HelperPlan, *extra: str, token: str | None = TOKEN, name: str = "plan.json"
    ) -> HelperRun:
        plan_file = self.write_plan(plan, name)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "skyrunner.helper",
            step,
            "--plan",
            str(plan_file),
            *extra,
            env=self.env(token),
            cwd=self.tmp,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        return HelperRun(proc.returncode or 0, out.decode(errors="replace"))


@pytest.fixture
def helper(tmp_path: Path) -> HelperEnv:
    for name in ("builds", "cache", "home"):
        (tmp_path / name).mkdir()
    return HelperEnv(tmp_path, tmp_path / "builds", tmp_path / "cache", tmp_path / "home")
