"""Per-job overhead of ``skyrunner exec`` against gitlab-ci-local, on the same 10-job pipeline.

    /work/venv/bin/python bench/exec_bench.py [--rounds 3] [--sleep 0.5] [--keep]

What it does, in one run:

1. installs gitlab-ci-local (npm package ``gitlab-ci-local@4.73.0``, which runs on Node 20) into
   ``bench/.node`` unless it is there already; its shell executor needs ``rsync``; byte-compiles
   skyrunner as an installed copy is (see :func:`compile_package`);
2. makes a git repository in a temporary directory with a 10-job pipeline (stages build, test,
   deploy: 2 + 6 + 2 jobs, ``needs``-free) whose jobs each ``sleep`` for ``--sleep`` seconds, and
   a ``.gitignore`` for both tools' state directories;
3. runs each tool once to warm up (skyrunner creates ``.skyrunner``, gitlab-ci-local its state),
   then ``--rounds`` times each, alternating, sequentially (``--concurrency 1`` for both, shell
   executor, no docker, gitlab-ci-local with its default settings and once more without its JSON
   schema validation), and takes the median wall time of each;
4. prints, per tool, the per-job overhead: (wall time - the jobs' own sleep) / jobs, and the
   ratio skyrunner / gitlab-ci-local (the project's target is at most 0.2).

Wall time is the whole command, start-up included: what a user waits for.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / ".node"
PACKAGE = "gitlab-ci-local@4.73.0"
GCL = NODE_DIR / "node_modules" / ".bin" / "gitlab-ci-local"
STAGES = (("build", 2), ("test", 6), ("deploy", 2))
TARGET_RATIO = 0.2


@dataclass(frozen=True)
class Tool:
    name: str
    command: list[str]


def install_gitlab_ci_local() -> None:
    if GCL.exists():
        return
    if shutil.which("npm") is None:
        sys.exit("exec_bench: npm is not installed (gitlab-ci-local needs Node 20 and npm)")
    NODE_DIR.mkdir(exist_ok=True)
    (NODE_DIR / ".gitignore").write_text("*\n")
    print(f"installing {PACKAGE} into {NODE_DIR} ...", flush=True)
    subprocess.run(
        ["npm", "install", "--prefix", str(NODE_DIR), PACKAGE, "--no-audit", "--no-fund", "--loglevel=error"],
        check=True,
    )


def compile_package() -> None:
    """Byte-compile skyrunner as ``pip install`` does for a regular install.

    An editable install under ``PYTHONDONTWRITEBYTECODE=1`` (this machine sets it) would otherwise
    compile every module from source on every run, which a user's installed copy never does.
    """
    import skyrunner

    compileall.compile_dir(Path(skyrunner.__file__).parent, quiet=1)


def pipeline_yaml(sleep: float) -> str:
    lines = ["stages: [" + ", ".join(stage for stage, _ in STAGES) + "]", ""]
    number = 0
    for stage, count in STAGES:
        for _ in range(count):
            number += 1
            lines += [f"job{number:02d}:", f"  stage: {stage}", "  script:", f"    - sleep {sleep}",
                      f'    - echo "job {number} done"', ""]  # fmt: skip
    return "\n".join(lines)


def git(root: Path, *args: str) -> None:
    identity = ["-c", "user.name=Bench", "-c", "user.email=bench@example.com"]
    subprocess.run(["git", *identity, *args], cwd=root, check=True, capture_output=True)


def make_repo(root: Path, sleep: float) -> Path:
    repo = root / "project"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / ".gitlab-ci.yml").write_text(pipeline_yaml(sleep))
    (repo / ".gitignore").write_text(".skyrunner/\n.gitlab-ci-local/\n")
    (repo / "README.md").write_text(textwrap.dedent("benchmark project\n"))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "bench pipeline")
    # a remote with a default branch, so that neither tool has to guess
    git(repo, "remote", "add", "origin", "https://gitlab.example.com/bench/project.git")
    git(repo, "update-ref", "refs/remotes/origin/main", "HEAD")
    git(repo, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main")
    return repo


def timed(tool: Tool, repo: Path) -> float:
    began = time.monotonic()
    done = subprocess.run(tool.command, cwd=repo, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    elapsed = time.monotonic() - began
    if done.returncode != 0:
        sys.exit(f"exec_bench: {tool.name} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of each tool (median is kept)")
    parser.add_argument("--sleep", type=float, default=0.5, help="seconds each job sleeps")
    parser.add_argument("--keep", action="store_true", help="keep the temporary repository")
    args = parser.parse_args()
    install_gitlab_ci_local()
    compile_package()
    if shutil.which("rsync") is None:
        sys.exit("exec_bench: gitlab-ci-local's shell executor needs rsync (apt-get install rsync)")
    jobs = sum(count for _, count in STAGES)
    gcl = [str(GCL), "--shell-executor-no-image", "--concurrency", "1", "--no-color"]
    tools = [
        Tool("skyrunner exec", [sys.executable, "-m", "skyrunner", "exec", "--concurrency", "1"]),
        Tool("gitlab-ci-local", gcl),
        Tool("gitlab-ci-local --json-schema-validation=false", [*gcl, "--json-schema-validation=false"]),
    ]
    root = Path(tempfile.mkdtemp(prefix="exec-bench-"))
    env_note = f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    try:
        repo = make_repo(root, args.sleep)
        for tool in tools:
            timed(tool, repo)  # warm-up
        walls: dict[str, list[float]] = {tool.name: [] for tool in tools}
        for _ in range(args.rounds):
            for tool in tools:
                walls[tool.name].append(timed(tool, repo))
        report(walls, jobs, args.sleep, env_note)
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def report(walls: dict[str, list[float]], jobs: int, sleep: float, env_note: str) -> None:
    print(f"\n{jobs} jobs, each sleeping {sleep}s, run one at a time; median of {len(next(iter(walls.values())))} runs"
          f" ({env_note})\n")  # fmt: skip
    overheads = {}
    for name, values in walls.items():
        wall = statistics.median(values)
        overheads[name] = (wall - jobs * sleep) / jobs
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"  {name:<48} wall {wall:6.2f}s  per-job overhead {overheads[name]:.3f}s   (runs: {runs})")
    ours = overheads["skyrunner exec"]
    print()
    for name, theirs in overheads.items():
        if name != "skyrunner exec":
            ratio = ours / theirs if theirs > 0 else float("inf")
            verdict = "meets" if ratio <= TARGET_RATIO else "misses"
            print(f"  ratio skyrunner / {name}: {ratio:.2f} ({verdict} the target of {TARGET_RATIO})")


if __name__ == "__main__":
    main()
