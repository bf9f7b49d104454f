"""``skyrunner exec``: run a checkout's .gitlab-ci.yml on this machine, through the real JobRunner.

Order of business: read the checkout and load the whole pipeline first (a YAML error or unknown
keyword is one ``PipelineFileError`` line and exit 2, before anything runs); narrow it to the jobs
named on the command line and their needs (a named manual job runs); ``--list`` stops there.
Then the executor: ``shell`` (default) in ``.skyrunner/builds``, or the first kubernetes runner of
config.toml, built by ``skyrunner.assembly``; the ``.skyrunner`` lock; and the scheduler, watched
by a live view on a terminal or plain ``[job] ...`` lines elsewhere. Ctrl-C asks the scheduler
to stop (again to cancel every job, a third time to kill them). Exit code: 1 when a job that may
not fail failed or was canceled, else 0.
"""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import click

from skyrunner.cli._app import EXIT_ERROR, skyrunner
from skyrunner.errors import ConfigError

# The rest is imported when the command runs: the runner, aiohttp and rich cost every other
# command half a second of start-up otherwise (rich is imported only for a terminal, asyncio
# only to run jobs: --list does without both).
if TYPE_CHECKING:
    from skyrunner.cli._exec_view import LiveView, PlainView
    from skyrunner.config import RunnerConfig
    from skyrunner.pipeline.checkout import Checkout
    from skyrunner.pipeline.model import Pipeline
    from skyrunner.pipeline.scheduler import PipelineResult, PipelineScheduler, RunnerSetup
    from skyrunner.pipeline.workspace import Workspace

__all__ = ["exec_pipeline", "shell_setup"]

SYSTEM_ID: Final = "s_skyrunnerexec"
RUNNER_NAME: Final = "skyrunner-exec"
LOCAL_TOKEN: Final = "glrt-local"
SHORT_TOKEN: Final = "local"  # LOCAL_TOKEN's short form: the builds dir is .skyrunner/builds/local/...
LOCAL_URL: Final = "http://127.0.0.1"  # until the LocalCoordinator has its port


def _parse_variables(values: Sequence[str]) -> dict[str, str]:
    variables: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="'--variable'")
        variables[key.strip()] = value
    return variables


def _select(pipeline: Pipeline, names: Sequence[str], file: str) -> tuple[Pipeline, tuple[str, ...]]:
    """Narrow ``pipeline`` to ``names`` (a parallel job's name selects all its instances)."""
    from skyrunner.pipeline.model import jobs_named

    chosen: list[str] = []
    for name in names:
        found = jobs_named(pipeline.jobs, name)
        if not found:
            known = ", ".join(job.name for job in pipeline.jobs) or "none"
            raise ConfigError(f'{file}: there is no job "{name}" in this pipeline (jobs: {known})')
        chosen.extend(found)
    return pipeline.select(chosen), tuple(chosen)


def _warm_up_helper() -> None:
    """Start the helper fork server now, beside the rest of start-up, not when the executor is made.

    It needs ~0.2 s to be ready, and a job that finds it not ready starts the helper itself: begun
    after the runner's imports, it missed the first job.
    """
    from skyrunner.executors.helper_server import shared_helper_server

    shared_helper_server().warm_up()


def _architecture() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def shell_setup(workspace: Workspace) -> RunnerSetup:
    """The shell runner of ``skyrunner exec``: jobs in ``.skyrunner/builds``, sources by path.

    It is what ``skyrunner.assembly`` makes of a default shell ``[[runners]]`` entry (a test
    checks that they agree), built from the parts directly: config.toml's models and GitLab's
    wire models are a tenth of a second of imports that a run without config.toml does without.
    """
    from pydantic import SecretStr

    from skyrunner._version import REVISION, VERSION
    from skyrunner.executors.shell import ShellExecutorFactory
    from skyrunner.job.prepare import RunnerIdentity
    from skyrunner.job.settings import JobSettings
    from skyrunner.pipeline.scheduler import RunnerSetup, SourcesAccess

    settings = JobSettings(
        runner_name=RUNNER_NAME, short_token=SHORT_TOKEN, system_id=SYSTEM_ID, server_url=LOCAL_URL,
        runner_token=SecretStr(LOCAL_TOKEN),
    )  # fmt: skip
    return RunnerSetup(
        factory=ShellExecutorFactory(workspace.builds, workspace.cache, SHORT_TOKEN),
        settings=settings,
        identity=RunnerIdentity(VERSION, REVISION, f"linux/{_architecture()}"),  # as gitlab.models' RunnerInfo
        sources=SourcesAccess.PATH,  # the jobs run here: no HTTP round trips for the sources
    )


def _kubernetes_runner(config_path: Path) -> RunnerConfig:
    from skyrunner.config import Executor, load_config

    config = load_config(config_path)
    for runner in config.runners:
        if runner.executor is Executor.KUBERNETES:
            return runner
    raise ConfigError(f'{config_path}: no [[runners]] entry with executor = "kubernetes"')


def _kubernetes_setup(runner: RunnerConfig, cwd: Path) -> RunnerSetup:
    from skyrunner.assembly import build_executor_factory, build_job_settings, runner_identity
    from skyrunner.pipeline.scheduler import RunnerSetup, SourcesAccess

    return RunnerSetup(
        factory=build_executor_factory(runner, cwd),
        settings=build_job_settings(runner, SYSTEM_ID),
        identity=runner_identity(runner),
        sources=SourcesAccess.HTTP,  # a pod cannot see the snapshot's path
    )


def _configure_logging(ctx: click.Context) -> None:
    """Keep the runner log quiet (warnings) unless asked otherwise, on whatever stderr is now.

    Called again once the live display is gone: while it runs, stderr is rich's proxy, which
    prints log lines above the display.
    """
    from skyrunner.logs import configure_logging

    obj = ctx.find_root().obj or {}
    params = ctx.find_root().params
    level = "debug" if obj.get("debug") else (params["log_level"] if obj.get("log_level_given") else "warning")
    configure_logging(level, params["log_format"])


async def _run(scheduler: PipelineScheduler, view: PlainView | LiveView) -> PipelineResult:
    import asyncio

    loop = asyncio.get_running_loop()

    def stop() -> None:
        scheduler.request_stop()
        view.note("stopping: no new jobs; interruptible jobs are canceled (Ctrl-C again cancels all)")

    loop.add_signal_handler(signal.SIGINT, stop)
    loop.add_signal_handler(signal.SIGTERM, stop)
    try:
        return await scheduler.run()
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        loop.remove_signal_handler(signal.SIGTERM)


def _execute(ctx: click.Context, pipeline: Pipeline, checkout: Checkout, opts: dict[str, Any]) -> PipelineResult:
    import asyncio

    from skyrunner.cli._exec_view import LiveView, PlainConsole, PlainView, console_for, render_summary
    from skyrunner.pipeline.scheduler import PipelineScheduler
    from skyrunner.pipeline.workspace import open_workspace

    console = console_for(sys.stdout)
    with open_workspace(checkout.root) as workspace:
        if opts["executor"] == "kubernetes":
            from skyrunner.config import default_config_path

            config_path = opts["config_path"] or default_config_path()
            setup = _kubernetes_setup(_kubernetes_runner(config_path), checkout.root)
        else:
            setup = shell_setup(workspace)
        follow = opts["follow"]
        view: PlainView | LiveView
        showing: contextlib.AbstractContextManager[None]
        if not isinstance(console, PlainConsole) and console.is_terminal:
            view = LiveView(console, pipeline, follow)
            showing = view.running()
        else:
            view, showing = PlainView(sys.stdout, follow), contextlib.nullcontext()
        scheduler = PipelineScheduler(
            pipeline, checkout, workspace, setup, view,
            concurrency=opts["concurrency"] or os.cpu_count() or 2, manual=opts["selected"],
        )  # fmt: skip
        gc.freeze()  # start-up's objects live until exit: later passes, and the last, skip them
        gc.enable()
        began = time.monotonic()
        try:
            with showing:
                _configure_logging(ctx)
                result = asyncio.run(_run(scheduler, view))
        finally:
            _configure_logging(ctx)
        render_summary(console, result, time.monotonic() - began)
    return result


@skyrunner.command("exec")
@click.argument("jobs", nargs=-1)
@click.option("-f", "--file", "file", default=".gitlab-ci.yml", show_default=True, help="pipeline file, from DIR")
@click.option(
    "-C", "--directory", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
    help="run in this directory of a git checkout (default: the current one)",
)  # fmt: skip
@click.option("--concurrency", type=click.IntRange(min=1), default=None, help="jobs at once (default: CPUs)")
@click.option("--executor", type=click.Choice(["shell", "kubernetes"]), default="shell", show_default=True)
@click.option(
    "-c", "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="config.toml whose first kubernetes runner runs the jobs (--executor kubernetes)",
)  # fmt: skip
@click.option("--variable", "variables", multiple=True, metavar="KEY=VALUE", help="set a variable for every job")
@click.option("--list", "list_only", is_flag=True, help="show the pipeline without running it")
@click.option("--follow", metavar="JOB", help="stream this job's log")
@click.pass_context
def exec_pipeline(ctx: click.Context, /, jobs: tuple[str, ...], **opts: Any) -> None:
    """Run the pipeline of a git checkout (or the JOBs named, with their needs) on this machine.

    Manual jobs run only when named. State, builds, cache, artifacts and logs live in the
    checkout's .skyrunner directory. Ctrl-C starts nothing more and cancels interruptible jobs;
    again, every job; a third time, kills them.
    """
    # Start-up (imports, pydantic models, the pipeline, the runner's parts) allocates much and
    # frees almost nothing, so the cyclic collector's passes over it are wasted work; it resumes
    # once the jobs are about to run (_execute).
    gc.disable()
    try:
        _exec_pipeline(ctx, jobs, opts)
    finally:
        gc.enable()


def _exec_pipeline(ctx: click.Context, jobs: tuple[str, ...], opts: dict[str, Any]) -> None:
    from skyrunner.cli._exec_view import console_for, render_list
    from skyrunner.pipeline.checkout import read_checkout
    from skyrunner.pipeline.loader import load_pipeline

    if opts["executor"] == "shell" and not opts["list_only"]:
        _warm_up_helper()
    directory = (opts["directory"] or Path.cwd()).resolve()
    variables = _parse_variables(opts["variables"])
    checkout = read_checkout(directory)
    path = Path(opts["file"]) if Path(opts["file"]).is_absolute() else directory / opts["file"]
    pipeline = load_pipeline(path, checkout, variables=variables)
    shown_file = opts["file"]
    if not pipeline.workflow.runs:
        click.echo(f"skyrunner: {shown_file}: workflow:rules: the pipeline does not run for this ref")
        return
    selected: tuple[str, ...] = ()
    if jobs:
        pipeline, selected = _select(pipeline, jobs, shown_file)
    follow = opts["follow"]
    if follow is not None and follow not in {job.name for job in pipeline.jobs}:
        raise ConfigError(f'--follow: there is no job "{follow}" in this pipeline')
    if follow is None and len(selected) == 1:
        opts["follow"] = selected[0]
    if opts["list_only"]:
        render_list(console_for(sys.stdout), pipeline)
        return
    opts["selected"] = selected
    result = _execute(ctx, pipeline, checkout, opts)
    if result.failed:
        sys.exit(EXIT_ERROR)
