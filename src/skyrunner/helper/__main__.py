"""``python -m skyrunner.helper <step> --plan FILE``: what runs inside the job's environment.

Steps: ``sources``, ``cache-restore``, ``cache-save --job-status``, ``artifacts-download``,
``artifacts-upload --job-status``. Each reads the :class:`~skyrunner.helper.plan.HelperPlan`
the runner wrote, takes the job token from ``CI_JOB_TOKEN``, and prints gitlab-runner style
lines on stdout. Exit codes are decided here and only here: 0 the step succeeded (cache steps
always do: their problems are warnings), 1 it failed, after one ``ERROR: <message>`` line in
bold red; 2 the command line itself was wrong (argparse). An expected failure never prints a
traceback.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from skyrunner.errors import HelperError
from skyrunner.helper.console import Console, describe
from skyrunner.helper.plan import HelperPlan, JobStatus, parse_plan

# Each step imports its module when it runs: the helper starts once per step of every job, and
# httpx2 (and its TLS setup) is not needed to fetch sources.

__all__ = ["main"]

TOKEN_VARIABLE = "CI_JOB_TOKEN"

Step = Callable[[HelperPlan, Console, argparse.Namespace], None]


def _token() -> str:
    return os.environ.get(TOKEN_VARIABLE, "")


def _required_token() -> str:
    token = _token()
    if not token:
        raise HelperError(f"{TOKEN_VARIABLE} is not set")
    return token


def _sources(plan: HelperPlan, console: Console, _: argparse.Namespace) -> None:
    from skyrunner.helper.sources import get_sources

    get_sources(plan, console, dict(os.environ), _token())


def _cache_restore(plan: HelperPlan, console: Console, _: argparse.Namespace) -> None:
    from skyrunner.helper.cache import restore_caches

    restore_caches(plan, console)


def _cache_save(plan: HelperPlan, console: Console, args: argparse.Namespace) -> None:
    from skyrunner.helper.cache import save_caches

    save_caches(plan, console, JobStatus(args.job_status))


def _artifacts_download(plan: HelperPlan, console: Console, _: argparse.Namespace) -> None:
    from skyrunner.helper.artifacts import download_artifacts

    download_artifacts(plan, console, _required_token())


def _artifacts_upload(plan: HelperPlan, console: Console, args: argparse.Namespace) -> None:
    from skyrunner.helper.artifacts import upload_artifacts

    upload_artifacts(plan, console, JobStatus(args.job_status), _required_token())


_STEPS: dict[str, tuple[Step, bool]] = {
    "sources": (_sources, False),
    "cache-restore": (_cache_restore, False),
    "cache-save": (_cache_save, True),
    "artifacts-download": (_artifacts_download, False),
    "artifacts-upload": (_artifacts_upload, True),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m skyrunner.helper", description=__doc__.split("\n")[0])
    steps = parser.add_subparsers(dest="step", required=True, metavar="STEP")
    for name, (_, needs_status) in _STEPS.items():
        sub = steps.add_parser(name)
        sub.add_argument("--plan", required=True, type=Path, help="the plan file the runner wrote")
        if needs_status:
            sub.add_argument("--job-status", required=True, choices=[s.value for s in JobStatus])
    return parser


def _load_plan(path: Path) -> HelperPlan:
    try:
        return parse_plan(path.read_text(encoding="utf-8"))
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise HelperError(f"{path}: cannot read the plan: {reason}") from exc
    except ValueError as exc:
        raise HelperError(f"{path}: {exc}") from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Run one helper step; return the process exit code."""
    args = _parser().parse_args(argv)
    console = Console()
    step, _ = _STEPS[args.step]
    try:
        step(_load_plan(args.plan), console, args)
    except HelperError as exc:
        console.error(str(exc))
        return 1
    except OSError as exc:
        console.error(describe(exc))
        return 1
    except KeyboardInterrupt:
        console.error("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    # A process per step: what is imported by now lives until exit and is never garbage.
    # Frozen, the collector skips it, which spares most of the interpreter's final collection.
    gc.freeze()
    sys.exit(main())
