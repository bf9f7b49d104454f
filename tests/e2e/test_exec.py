"""``skyrunner exec`` end to end: the real CLI in a subprocess on small git repositories.

Every run goes through the whole stack: the working-tree snapshot (fetched by path, as the shell
executor's jobs do), the LocalCoordinator on 127.0.0.1, the JobRunner, the shell executor and the
helper (clone, cache, artifact upload and download). Jobs coordinate through files under ``tmp_path`` when a
test needs to prove that two of them ran at the same time.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pipeline"


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=Tess Ter", "-c", "user.email=tess@example.com", *args],
        cwd=root, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout


def make_repo(root: Path, files: Mapping[str, str]) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    for path, content in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(textwrap.dedent(content))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "Initial commit")
    return root


@dataclass(frozen=True)
class Run:
    code: int
    output: str

    @property
    def jobs(self) -> dict[str, str]:
        """The summary table: job name -> status word."""
        lines = self.output.splitlines()
        start = next(i for i, line in enumerate(lines) if re.match(r"job\s+stage\s+status", line))
        rows = {}
        for line in lines[start + 1 :]:
            if line.startswith("pipeline #"):
                break
            cells = re.split(r"\s{2,}", line.strip())
            rows[cells[0]] = cells[2]
        return rows

    def events(self) -> list[tuple[str, str]]:
        """``(job, state)`` of every state line, in order."""
        pattern = re.compile(r"^\[(.+)\] (running|passed|failed|skipped|manual|canceled)(?: |$)")
        return [(m[1], m[2]) for line in self.output.splitlines() if (m := pattern.match(line))]

    def log(self, repo: Path, job: str) -> str:
        logs = sorted((repo / ".skyrunner" / "logs").iterdir(), key=lambda p: int(p.name))
        return (logs[-1] / f"{job}.log").read_text()


def run_exec(repo: Path, *args: str, timeout: float = 60) -> Run:
    done = subprocess.run(
        [sys.executable, "-m", "skyrunner", "exec", "--concurrency", "4", *args],
        cwd=repo, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    return Run(done.returncode, done.stdout + done.stderr)


def object_count(repo: Path) -> str:
    return git(repo, "count-objects", "-v")


# -- pipelines ----------------------------------------------------------------------------------


def test_stages_artifacts_variables_and_the_uncommitted_working_tree(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "repo",
        {
            ".gitlab-ci.yml": """
                stages: [build, test, deploy]
                variables: {GREETING: hello}
                build:
                  stage: build
                  script:
                    - mkdir -p dist && echo "$GREETING from build" > dist/out.txt
                    - cat notes.txt
                  artifacts: {paths: [dist/]}
                test:
                  stage: test
                  script: [cat dist/out.txt, 'echo "token=$CI_JOB_TOKEN"', 'echo "sha=$(git rev-parse HEAD)"']
                isolated:
                  stage: test
                  dependencies: []
                  script: ['test ! -e dist/out.txt && echo no artifacts here']
                deploy:
                  stage: deploy
                  script: ['echo "deploying $CI_COMMIT_REF_NAME"']
            """,
            "notes.txt": "committed notes\n",
        },
    )
    (repo / "notes.txt").write_text("uncommitted notes\n")
    before = object_count(repo)
    run = run_exec(repo, "--variable", "GREETING=bonjour")
    assert run.code == 0, run.output
    assert run.jobs == {"build": "passed", "test": "passed", "isolated": "passed", "deploy": "passed"}
    events = run.events()
    assert events.index(("build", "passed")) < events.index(("test", "running"))
    assert events.index(("test", "passed")) < events.index(("deploy", "running"))
    assert "[build] uncommitted notes" in run.output
    assert "[test] bonjour from build" in run.output
    assert "[isolated] no artifacts here" in run.output
    assert "[deploy] deploying main" in run.output
    assert "token=[MASKED]" in run.output and "glcbt-" not in run.output
    test_log = run.log(repo, "test")
    assert "bonjour from build" in test_log and "Job succeeded" in test_log
    snapshot = re.search(r"sha=([0-9a-f]{40})", test_log)
    assert snapshot is not None and snapshot[1] != git(repo, "rev-parse", "HEAD").strip()
    # nothing was written into the user's repository: no objects, no changes but their own
    assert object_count(repo) == before
    assert git(repo, "status", "--porcelain") == " M notes.txt\n"


def test_dag_jobs_start_before_their_stage_and_a_matrix_expands(tmp_path: Path) -> None:
    marker = tmp_path / "fast-ran"
    repo = make_repo(
        tmp_path / "repo",
        {
            ".gitlab-ci.yml": f"""
                stages: [build, test]
                slow:
                  stage: build
                  script: ['for i in $(seq 400); do [ -f {marker} ] && [ -f {marker}-linux ] && [ -f {marker}-mac ] && exit 0; sleep 0.05; done; exit 1']
                fast:
                  stage: test
                  needs: []
                  script: ['touch {marker}']
                matrix:
                  stage: test
                  needs: [fast]
                  parallel:
                    matrix:
                      - OS: [linux, mac]
                  script: ['echo "os=$OS node=$CI_NODE_INDEX/$CI_NODE_TOTAL"', 'touch {marker}-$OS']
            """
        },
    )
    run = run_exec(repo)
    assert run.code == 0, run.output
    assert run.jobs == {"slow": "passed", "fast": "passed", "matrix: [linux]": "passed", "matrix: [mac]": "passed"}
    assert "[matrix: [linux]] os=linux node=1/2" in run.output
    assert "[matrix: [mac]] os=mac node=2/2" in run.output
    events = run.events()  # slow (stage build) waits for the matrix jobs (stage test): the DAG ran them first
    assert events.index(("matrix: [mac]", "passed")) < events.index(("slow", "passed"))


def test_cache_persists_between_runs(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "repo",
        {
            ".gitlab-ci.yml": """
                count:
                  cache: {key: counter, paths: [.cache/]}
                  script:
                    - mkdir -p .cache && echo run >> .cache/runs
                    - 'echo "runs=$(wc -l < .cache/runs)"'
            """
        },
    )
    first = run_exec(repo)
    second = run_exec(repo)
    assert (first.code, second.code) == (0, 0), first.output + second.output
    assert "[count] runs=1" in first.output
    assert "[count] runs=2" in second.output
    assert "pipeline #2 passed" in second.output


def test_failures_allowed_failures_skips_and_timeouts(tmp_path: Path) -> None:
    files = {
        ".gitlab-ci.yml": """
            stages: [build, test, deploy]
            flaky:
              stage: build
              allow_failure: {exit_codes: [3]}
              script: [exit 3]
            broken:
              stage: build
              script: [echo about to fail, exit 2]
            slow:
              stage: build
              timeout: 2s
              allow_failure: true
              script: [sleep 30]
            unit:
              stage: test
              script: [echo never]
            rescue:
              stage: test
              when: on_failure
              script: [echo rescuing]
            notify:
              stage: deploy
              when: always
              script: [echo notified]
        """
    }
    repo = make_repo(tmp_path / "repo", files)
    run = run_exec(repo)
    assert run.code == 1, run.output
    assert run.jobs == {
        "flaky": "failed (allowed)",
        "broken": "failed",
        "slow": "failed (allowed)",
        "unit": "skipped",
        "rescue": "passed",
        "notify": "passed",
    }
    assert re.search(r"broken\s+build\s+failed\s+\S+\s+script_failure, exit code 2", run.output)
    assert re.search(r"slow\s+build\s+failed \(allowed\)\s+\S+\s+job_execution_timeout", run.output)
    assert "[rescue] rescuing" in run.output and "[unit] never" not in run.output
    assert "ERROR: Job failed: exit code 2" in run.log(repo, "broken")


def test_retry_runs_a_failed_job_again_with_a_new_job_id(tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    repo = make_repo(
        tmp_path / "repo",
        {
            ".gitlab-ci.yml": f"""
                flaky:
                  retry: {{max: 2, when: script_failure}}
                  script:
                    - 'n=$(cat {counter} 2>/dev/null || echo 0); echo $((n+1)) > {counter}'
                    - 'echo "attempt $((n+1)) job $CI_JOB_ID"'
                    - '[ "$n" -ge 1 ]'
            """
        },
    )
    run = run_exec(repo)
    assert run.code == 0, run.output
    assert run.jobs == {"flaky": "passed"}
    assert counter.read_text().strip() == "2"
    ids = re.findall(r"attempt \d job (\d+)", run.output)
    assert len(ids) == 2 and ids[0] != ids[1]
    assert "[flaky] failed" in run.output and "retrying" in run.output
    assert re.search(r"flaky\s+test\s+passed\s+\S+\s+2 attempts", run.output)
    log = run.log(repo, "flaky")
    assert log.count("Running with skyrunner") == 2 and "attempt 2 of flaky" in log


async def test_ctrl_c_cancels_interruptible_jobs_and_lets_the_others_finish(tmp_path: Path) -> None:
    release = tmp_path / "release"
    repo = make_repo(
        tmp_path / "repo",
        {
            ".gitlab-ci.yml": f"""
                stages: [build, test]
                quick:
                  stage: build
                  interruptible: true
                  script: [sleep 30]
                  after_script: [echo after_script ran]
                steady:
                  stage: build
                  script: ['for i in $(seq 200); do [ -f {release} ] && break; sleep 0.05; done', echo steady done]
                later:
                  stage: test
                  script: [echo later]
            """
        },
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "skyrunner", "exec", "--concurrency", "2", cwd=repo,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    seen: list[str] = []
    try:
        # stop once both scripts run (the trace reaches the CLI at the TraceSink's first flush, ~3 s)
        while not {"[quick] $ sleep 30", "[steady] running"} <= {line.split(" (")[0] for line in seen}:
            seen.append((await asyncio.wait_for(process.stdout.readline(), 30)).decode().rstrip())
        process.send_signal(signal.SIGINT)
        await asyncio.sleep(0.1)
        release.touch()
        rest, _ = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    run = Run(process.returncode or 0, "\n".join(seen) + "\n" + rest.decode())
    assert run.code == 1, run.output
    assert run.jobs == {"quick": "canceled", "steady": "passed", "later": "canceled"}
    assert "[steady] steady done" in run.output
    assert "[quick] after_script ran" in run.output


MANUAL = """
stages: [build, test, deploy]
build:
  stage: build
  script: [echo built]
lint:
  stage: test
  script: [echo linted]
package:
  stage: test
  needs: [build]
  script: [echo packaged]
deploy:
  stage: deploy
  when: manual
  script: [echo deployed]
"""


def test_manual_jobs_and_jobs_selected_by_name(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {".gitlab-ci.yml": MANUAL})
    everything = run_exec(repo)
    assert everything.code == 0, everything.output
    assert everything.jobs == {"build": "passed", "lint": "passed", "package": "passed", "deploy": "manual"}
    assert "[deploy] deployed" not in everything.output

    # a manual job named on the command line runs; a named job brings the jobs it needs
    selected = run_exec(repo, "deploy", "package")
    assert selected.code == 0, selected.output
    assert selected.jobs == {"build": "passed", "package": "passed", "deploy": "passed"}
    assert "[deploy] deployed" in selected.output


def test_list_shows_the_pipeline_without_running_it(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {".gitlab-ci.yml": MANUAL})
    run = run_exec(repo, "--list")
    assert run.code == 0, run.output
    rows = [re.split(r"\s{2,}", line.strip()) for line in run.output.splitlines()]
    assert rows[0] == ["stage", "job", "when", "needs", "allow_failure"]
    assert ["build", "build", "on_success", "-"] in rows
    assert ["test", "package", "on_success", "build"] in rows
    assert ["deploy", "deploy", "manual", "-", "true"] in rows
    unknown = run_exec(repo, "--list", "nope")
    assert unknown.code == 2, unknown.output
    assert 'there is no job "nope"' in unknown.output
    assert not (repo / ".skyrunner").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("build:\n  script: [echo]\n  stage: [oops\n", r"\.gitlab-ci\.yml:\d+: yaml: "),
        ("build:\n  script: [echo]\n  scirpt: [echo]\n", r'\.gitlab-ci\.yml:3.*unknown keyword "scirpt"'),
    ],
    ids=["yaml-syntax", "unknown-keyword"],
)
def test_an_invalid_pipeline_is_one_line_and_nothing_runs(tmp_path: Path, content: str, message: str) -> None:
    repo = make_repo(tmp_path / "repo", {".gitlab-ci.yml": content})
    run = run_exec(repo)
    assert run.code == 2, run.output
    lines = run.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("skyrunner: error: "), run.output
    assert re.search(message, lines[0]), lines[0]
    assert "Traceback" not in run.output
    assert not (repo / ".skyrunner").exists()


def test_the_example_pipeline_as_the_readme_runs_it(tmp_path: Path) -> None:
    """``skyrunner exec -C examples/pipeline`` from the root of a checkout holding the example."""
    files = {f"examples/pipeline/{p.relative_to(EXAMPLE)}": p.read_text() for p in EXAMPLE.rglob("*") if p.is_file()}
    repo = make_repo(tmp_path / "skyrunner", files)
    for path in files:
        shutil.copymode(EXAMPLE / path.removeprefix("examples/pipeline/"), repo / path)
    run = run_exec(repo, "-C", "examples/pipeline")
    assert run.code == 0, run.output
    assert run.jobs == {
        "build": "passed",
        "lint": "passed",
        "test: [Hello]": "passed",
        "test: [Bonjour]": "passed",
        "spellcheck": "failed (allowed)",
        "package": "passed",
    }
    assert "[test: [Bonjour]] ok: Bonjour, skyrunner!" in run.output
    assert "[package] packaged greet" in run.output
    assert (repo / ".skyrunner" / "logs" / "1" / "package.log").is_file()
    archives = list((repo / ".skyrunner" / "artifacts" / "1").glob("*/*.zip"))
    assert len(archives) == 2  # build's dist/ and package's greet.tar.gz


def _fork_servers() -> set[int]:
    found = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if b"skyrunner.helper.forkserver" in (proc / "cmdline").read_bytes():
                    found.add(int(proc.name))
            except OSError:
                continue
    return found


def test_jobs_fetch_through_the_helper_fork_server_which_ends_with_the_run(tmp_path: Path) -> None:
    wrappers = tmp_path / "bin"
    wrappers.mkdir()
    fetches = tmp_path / "fetches.log"
    # a git that notes, for each fetch, the command line of its caller's parent: the fork server
    # when the helper step was forked by it, the stage's shell when the helper was started anew
    (wrappers / "git").write_text(
        "#!/bin/sh\n"
        'if [ "$1" = fetch ]; then\n'
        "  grand=$(sed 's/.*) //' /proc/$PPID/stat | cut -d' ' -f2)\n"
        f"  tr '\\0' ' ' </proc/$grand/cmdline >>{fetches}; echo >>{fetches}\n"
        "fi\n"
        f'exec {shutil.which("git")} "$@"\n'
    )
    (wrappers / "git").chmod(0o755)
    repo = make_repo(
        tmp_path / "repo",
        {
            ".gitlab-ci.yml": """
                first: {stage: build, script: [sleep 1]}
                second: {stage: test, script: [echo second]}
                third: {stage: deploy, script: [echo third]}
            """
        },
    )
    before = _fork_servers()
    done = subprocess.run(
        [sys.executable, "-m", "skyrunner", "exec", "--concurrency", "1"],
        cwd=repo, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PATH": f"{wrappers}{os.pathsep}{os.environ['PATH']}"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    callers = fetches.read_text().splitlines()
    assert len(callers) == 3
    # the server starts beside the run's start-up; by the later jobs it is up, whatever the load
    assert "skyrunner.helper.forkserver" in callers[-1], callers
    deadline = time.monotonic() + 10
    while _fork_servers() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _fork_servers() - before, "the run's fork server outlived it"
