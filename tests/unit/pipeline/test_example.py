"""The README's example pipeline loads, has the promised shape, and its scripts pass under bash.

The jobs are run here the simplest way (each job's before_script + script through ``bash -e``
with the payload's variables, in pipeline order), both where the example sits in the skyrunner
repository and as a repository of its own; running them through the JobRunner is the e2e tests'.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from skyrunner.pipeline import (
    Checkout,
    Need,
    Pipeline,
    PipelineJob,
    build_job_payload,
    load_pipeline,
    read_checkout,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "pipeline"


def _run(pipeline: Pipeline, job: PipelineJob, checkout: Checkout) -> subprocess.CompletedProcess[str]:
    root = checkout.root
    payload = build_job_payload(
        pipeline,
        job,
        job_id=1,
        job_token="token",
        server_url="http://127.0.0.1:1",
        repo_url=str(root),
        checkout=checkout,
        dependencies=[],
    )
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CI_PROJECT_DIR": str(root)}
    env.update({v["key"]: v["value"] for v in payload["variables"]})
    script = "\n".join(payload["steps"][0]["script"])
    return subprocess.run(
        ["bash", "-ec", script], cwd=root, env=env, capture_output=True, text=True, timeout=30
    )


@pytest.mark.parametrize("layout", ["in-skyrunner-repo", "own-repo"])
def test_example_pipeline_runs(layout: str, tmp_path: Path, make_repo: Callable[..., Path]) -> None:
    subdir = "examples/pipeline/" if layout == "in-skyrunner-repo" else ""
    files = {subdir + str(p.relative_to(EXAMPLE)): p.read_text() for p in EXAMPLE.rglob("*") if p.is_file()}
    root = make_repo(files)
    for path in files:
        shutil.copymode(EXAMPLE / path.removeprefix(subdir), root / path)
    checkout = read_checkout(root)
    pipeline = load_pipeline(Path(subdir + ".gitlab-ci.yml"), checkout)
    assert [job.name for job in pipeline.jobs] == [
        "build",
        "lint",
        "test: [Hello]",
        "test: [Bonjour]",
        "spellcheck",
        "package",
    ]
    assert pipeline.job("lint").needs == ()
    assert pipeline.job("package").needs == (Need("build"), Need("test: [Hello]"), Need("test: [Bonjour]"))
    assert pipeline.job("spellcheck").allow_failure
    results = {
        job.name: _run(pipeline, job, checkout)
        for job in sorted(pipeline.jobs, key=lambda job: pipeline.stages.index(job.stage))
    }
    failed = {name: r.stdout + r.stderr for name, r in results.items() if r.returncode != 0}
    assert set(failed) == {"spellcheck"}, failed
    assert "ok: Bonjour, skyrunner!" in results["test: [Bonjour]"].stdout
    assert (root / "greet.tar.gz").is_file()
    assert (root / ".cache" / "runs").read_text().splitlines() == ["test: [Hello]", "test: [Bonjour]"]
