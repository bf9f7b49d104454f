"""The ``skyrunner`` command group and the one place where errors become exit codes.

``main()`` wraps the click group: a :class:`ConfigError` prints ``skyrunner: error: <message>``
and exits 2 (as a bad config.toml does for gitlab-runner), any other :class:`SkyrunnerError`
exits 1, click's usage errors keep 2, and anything else is our bug: one line, exit 70, and the
traceback only with ``--debug``.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from pathlib import Path
from typing import Final

import click

from skyrunner._version import REVISION, VERSION
from skyrunner.errors import ConfigError, SkyrunnerError
from skyrunner.logs import configure_logging

__all__ = ["EXIT_CONFIG", "EXIT_INTERNAL", "config_option", "main", "skyrunner"]

EXIT_ERROR: Final = 1
EXIT_CONFIG: Final = 2
EXIT_INTERNAL: Final = 70


def _default_config_path() -> Path:
    # config's models take a twentieth of a second to import: only commands that read it pay
    from skyrunner.config import default_config_path

    return default_config_path()


def config_option(func: click.decorators.FC) -> click.decorators.FC:
    """``-c/--config``, defaulting to gitlab-runner's path for this user."""
    return click.option(
        "-c", "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
        default=_default_config_path, envvar="CONFIG_FILE", show_default="gitlab-runner's path",
        help="config.toml to use",
    )(func)  # fmt: skip


# Commands are imported when used: `skyrunner exec` need not load the Kubernetes client.
_COMMAND_MODULES: Final = {
    "register": "_runners", "verify": "_runners", "unregister": "_runners", "list": "_runners",
    "run": "_run", "run-single": "_run", "status": "_status", "exec": "_exec", "deploy": "_deploy",
}  # fmt: skip


class _LazyGroup(click.Group):
    """A group whose commands register themselves when their module is first imported."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(_COMMAND_MODULES))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _COMMAND_MODULES:
            importlib.import_module(f"skyrunner.cli.{_COMMAND_MODULES[cmd_name]}")
        return self.commands.get(cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(VERSION, message=f"skyrunner %(version)s ({REVISION})")
@click.option("--debug", is_flag=True, envvar="RUNNER_DEBUG", help="debug logging and tracebacks")
@click.option(
    "--log-level",
    "-l",
    default="info",
    envvar="LOG_LEVEL",
    type=click.Choice(["debug", "info", "warn", "warning", "error", "fatal", "panic"]),
)
@click.option("--log-format", default="runner", envvar="LOG_FORMAT", type=click.Choice(["runner", "text", "json"]))
@click.pass_context
def skyrunner(ctx: click.Context, debug: bool, log_level: str, log_format: str) -> None:
    """A GitLab-compatible CI runner for serverless Kubernetes."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    ctx.obj["log_level_given"] = ctx.get_parameter_source("log_level") is not click.core.ParameterSource.DEFAULT
    ctx.obj["log_format_given"] = ctx.get_parameter_source("log_format") is not click.core.ParameterSource.DEFAULT
    configure_logging("debug" if debug else log_level, log_format)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``skyrunner`` command."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        skyrunner.main(args=args, prog_name="skyrunner", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("skyrunner: aborted", err=True)
        sys.exit(EXIT_ERROR)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ConfigError as exc:
        click.echo(f"skyrunner: error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    except SkyrunnerError as exc:
        click.echo(f"skyrunner: error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    except Exception as exc:  # the CLI boundary: our bug, not the user's
        if debug:
            traceback.print_exc()
        click.echo(
            f"skyrunner: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
            err=True,
        )
        sys.exit(EXIT_INTERNAL)
