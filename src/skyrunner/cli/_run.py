"""``run`` and ``run-single``: the long-running runner process.

Signals only ask the service to stop (SIGQUIT: finish running jobs; SIGTERM/SIGINT: abort
them and report them failed); a second abort signal exits at once. SIGHUP and a changed config
file reload the config without touching running jobs. ``run --sigterm graceful`` makes SIGTERM
act like SIGQUIT: Kubernetes stops a container with SIGTERM (then SIGKILL after
``terminationGracePeriodSeconds``), so the runner's Deployment uses it to let jobs finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path
from typing import Any

import click

from skyrunner.cli._app import config_option, skyrunner
from skyrunner.config import Config, RunnerConfig, load_config, load_or_create_system_id
from skyrunner.errors import ConfigError, SkyrunnerError
from skyrunner.logs import configure_logging, register_secrets
from skyrunner.metrics import Metrics, serve_metrics
from skyrunner.service import RunnerService, Shutdown

__all__ = ["run", "run_single", "signal_modes"]

log = logging.getLogger(__name__)

RELOAD_CHECK_S = 3.0


def signal_modes(sigterm: Shutdown = Shutdown.ABORT) -> dict[signal.Signals, Shutdown]:
    """Map each stop signal to the shutdown it asks for; ``sigterm`` is what SIGTERM means."""
    return {signal.SIGQUIT: Shutdown.GRACEFUL, signal.SIGTERM: sigterm, signal.SIGINT: Shutdown.ABORT}


def _install_signals(service: RunnerService, on_hup: Any = None, sigterm: Shutdown = Shutdown.ABORT) -> None:
    loop = asyncio.get_running_loop()
    seen: list[Shutdown] = []

    def stop(sig: signal.Signals, mode: Shutdown) -> None:
        if mode is Shutdown.ABORT and Shutdown.ABORT in seen:
            log.warning("second %s: exiting now", sig.name)
            os._exit(1)
        seen.append(mode)
        service.request_stop(mode)

    for sig, mode in signal_modes(sigterm).items():
        loop.add_signal_handler(sig, stop, sig, mode)
    if on_hup is not None:
        loop.add_signal_handler(signal.SIGHUP, on_hup)


class ConfigWatcher:
    """Reloads config.toml when it changes on disk (every 3 s) or on SIGHUP; a bad file is kept out."""

    def __init__(self, path: Path, service: RunnerService) -> None:
        self._path = path
        self._service = service
        self._stamp = self._read_stamp()
        self._now = asyncio.Event()

    def _read_stamp(self) -> tuple[int, int] | None:
        try:
            stat = self._path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def reload_now(self) -> None:
        self._now.set()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RELOAD_CHECK_S):  # not wait_for: on 3.11 it can swallow a cancel
                    await self._now.wait()
            forced = self._now.is_set()
            self._now.clear()
            stamp = self._read_stamp()
            if stamp == self._stamp and not forced:
                continue
            self._stamp = stamp
            self.reload()

    def reload(self) -> None:
        try:
            config = load_config(self._path)
        except ConfigError as exc:
            log.error("config reload failed, keeping the old config: %s", exc)
            return
        _remember_secrets(config)
        self._service.apply_config(config)
        log.info("configuration reloaded: %d runners, concurrent=%d", len(config.runners), config.concurrent)


def _remember_secrets(config: Config) -> None:
    register_secrets(r.token.get_secret_value() for r in config.runners)


async def _serve(
    config: Config,
    service: RunnerService,
    metrics: Metrics,
    watcher: ConfigWatcher | None,
    sigterm: Shutdown = Shutdown.ABORT,
) -> None:
    _install_signals(service, watcher.reload_now if watcher else None, sigterm)
    tasks = []
    if watcher is not None:
        tasks.append(asyncio.create_task(watcher.run(), name="config-watcher"))
    if config.listen_address:
        tasks.append(asyncio.create_task(serve_metrics(config.listen_address, metrics, service), name="metrics"))
    try:
        await service.run()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _apply_log_settings(ctx: click.Context, config: Config) -> None:
    obj = ctx.find_root().obj or {}
    if obj.get("debug"):
        return
    level = None if obj.get("log_level_given") else (config.log_level.value if config.log_level else None)
    fmt = None if obj.get("log_format_given") else (config.log_format.value if config.log_format else None)
    if level or fmt:
        root = ctx.find_root().params
        configure_logging(level or root["log_level"], fmt or root["log_format"])


@skyrunner.command()
@config_option
@click.option(
    "--listen-address", envvar="LISTEN_ADDRESS", help="serve /metrics, /health, /ready on host:port"
)
@click.option("-d", "--working-directory", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option(
    "--sigterm", type=click.Choice([m.value for m in Shutdown]), default=Shutdown.ABORT.value,
    envvar="SKYRUNNER_SIGTERM", show_default=True,
    help="what SIGTERM does: abort running jobs, or let them finish like SIGQUIT (graceful, for Kubernetes)",
)  # fmt: skip
@click.pass_context
def run(
    ctx: click.Context, config_path: Path, listen_address: str | None, working_directory: Path | None, sigterm: str
) -> None:
    """Run the runners of config.toml until stopped."""
    config = load_config(config_path)
    if listen_address:
        config = config.model_copy(update={"listen_address": listen_address})
    _apply_log_settings(ctx, config)
    _remember_secrets(config)
    system_id = load_or_create_system_id(config_path)
    cwd = (working_directory or Path.cwd()).resolve()
    log.info(
        "starting skyrunner: %d runners, concurrent=%d, config %s",
        len(config.runners),
        config.concurrent,
        config_path,
    )

    async def main() -> None:
        metrics = Metrics()
        service = _make_service(config, system_id, cwd, metrics)
        await _serve(config, service, metrics, ConfigWatcher(config_path, service), Shutdown(sigterm))

    asyncio.run(main())


def _make_service(config: Config, system_id: str, cwd: Path, metrics: Metrics, max_builds: int = 0) -> RunnerService:
    return RunnerService(
        config,
        system_id=system_id,
        cwd=cwd,
        observer=metrics,
        on_response=metrics.api_response,
        executor_observer=metrics,
        max_builds=max_builds,
    )


@skyrunner.command("run-single")
@click.option("-u", "--url", envvar="CI_SERVER_URL", required=True)
@click.option("-t", "--token", envvar="CI_SERVER_TOKEN", required=True)
@click.option("--name", envvar="RUNNER_NAME", default="skyrunner-single")
@click.option(
    "--executor", envvar="RUNNER_EXECUTOR", type=click.Choice(["shell", "kubernetes"]), default="shell"
)
@click.option("--max-builds", type=int, default=0, help="stop after this many jobs (0 = no limit)")
@click.option(
    "--wait-timeout", type=int, default=0, help="seconds to wait for a job before giving up (0 = forever)"
)
@click.option("--builds-dir", envvar="RUNNER_BUILDS_DIR")
@click.option("--cache-dir", envvar="RUNNER_CACHE_DIR")
@click.option("--output-limit", type=int, default=0)
@click.option("--env", "env", multiple=True, envvar="RUNNER_ENV")
@click.option("--listen-address", envvar="LISTEN_ADDRESS")
@click.option(
    "--system-id-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="where .runner_system_id is kept (default: the working directory)",
)
def run_single(**opts: Any) -> None:
    """Run one runner from flags, without a config file."""
    data: dict[str, Any] = {k: opts[k] for k in ("url", "token", "name", "executor")}
    for key in ("builds_dir", "cache_dir", "output_limit"):
        if opts[key]:
            data[key] = opts[key]
    if opts["env"]:
        data["environment"] = list(opts["env"])
    register_secrets([opts["token"]])
    try:
        runner = RunnerConfig.model_validate(data)
        config = Config(runners=(runner,), concurrent=1, listen_address=opts["listen_address"])
    except ValueError as exc:
        raise ConfigError(f"run-single: {str(exc).splitlines()[-1].strip()}") from None
    system_id = load_or_create_system_id((opts["system_id_dir"] or Path.cwd()) / "config.toml")
    asyncio.run(_run_single(config, system_id, opts["max_builds"], opts["wait_timeout"]))


async def _run_single(config: Config, system_id: str, max_builds: int, wait_timeout: int) -> None:
    metrics = Metrics()
    service = _make_service(config, system_id, Path.cwd(), metrics, max_builds=max_builds)
    if wait_timeout:

        async def give_up() -> None:
            await asyncio.sleep(wait_timeout)
            if not service.running_jobs() and service.started_jobs == 0:
                log.info("no job within %d s; stopping", wait_timeout)
                service.request_stop(Shutdown.GRACEFUL)

        waiter = asyncio.create_task(give_up(), name="wait-timeout")
    try:
        await _serve(config, service, metrics, None)
    except SkyrunnerError:
        raise
    finally:
        if wait_timeout:
            waiter.cancel()
