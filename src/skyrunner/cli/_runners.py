"""Runner management verbs, with gitlab-runner's names and flags: register, verify, unregister, list.

Registration follows gitlab-runner's rule (protocol §2.1): a ``glrt-`` token was created in
GitLab and is only verified; any other token is a registration token for the legacy
``POST /runners`` flow. The config file is written 0600 with the new runner appended.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click
from pydantic import SecretStr, ValidationError

from skyrunner._version import REVISION, VERSION
from skyrunner.assembly import build_client
from skyrunner.cli._app import config_option, skyrunner
from skyrunner.config import Config, RunnerConfig, load_config, load_or_create_system_id, save_config
from skyrunner.errors import ApiAuthError, ConfigError
from skyrunner.gitlab.client import CoordinatorClient
from skyrunner.gitlab.models import RegistrationRequest, RunnerInfo
from skyrunner.logs import register_secrets

__all__ = ["list_runners", "register", "unregister", "verify"]

_SERVER_SIDE = (
    "tag_list",
    "locked",
    "run_untagged",
    "access_level",
    "maximum_timeout",
    "paused",
    "maintenance_note",
)


def _load_or_empty(path: Path) -> Config:
    return load_config(path) if path.exists() else Config()


def _ask(value: str | None, prompt: str, interactive: bool, *, hide: bool = False, default: str = "") -> str:
    if value:
        return value
    if not interactive:
        return default
    return str(click.prompt(prompt, default=default or None, hide_input=hide, show_default=bool(default)))


@skyrunner.command()
@config_option
@click.option(
    "-n", "--non-interactive", is_flag=True, envvar="REGISTER_NON_INTERACTIVE", help="do not prompt"
)
@click.option("-u", "--url", envvar="CI_SERVER_URL", help="GitLab URL")
@click.option(
    "-r", "--registration-token", envvar="REGISTRATION_TOKEN", help="registration token (legacy flow)"
)
@click.option("-t", "--token", envvar="CI_SERVER_TOKEN", help="runner authentication token (glrt-...)")
@click.option("--name", "--description", "name", envvar="RUNNER_NAME", help="runner name")
@click.option("--executor", envvar="RUNNER_EXECUTOR", type=click.Choice(["shell", "kubernetes"]))
@click.option("--tag-list", envvar="RUNNER_TAG_LIST", help="comma separated tags (legacy flow)")
@click.option("--run-untagged", is_flag=True, default=None, envvar="REGISTER_RUN_UNTAGGED")
@click.option("--locked/--no-locked", default=None, envvar="REGISTER_LOCKED")
@click.option(
    "--access-level", type=click.Choice(["not_protected", "ref_protected"]), envvar="REGISTER_ACCESS_LEVEL"
)
@click.option("--maximum-timeout", type=int, envvar="REGISTER_MAXIMUM_TIMEOUT")
@click.option("--paused", is_flag=True, default=None, envvar="REGISTER_PAUSED")
@click.option("--maintenance-note", envvar="REGISTER_MAINTENANCE_NOTE")
@click.option("--limit", type=int, default=0, envvar="RUNNER_LIMIT", help="jobs at once (0 = no limit)")
@click.option("--output-limit", type=int, default=0, envvar="RUNNER_OUTPUT_LIMIT", help="KiB (0 = 4096)")
@click.option("--request-concurrency", type=int, default=0, envvar="RUNNER_REQUEST_CONCURRENCY")
@click.option("--builds-dir", envvar="RUNNER_BUILDS_DIR")
@click.option("--cache-dir", envvar="RUNNER_CACHE_DIR")
@click.option("--shell", type=click.Choice(["bash", "sh"]), envvar="RUNNER_SHELL")
@click.option("--env", "env", multiple=True, envvar="RUNNER_ENV", help="KEY=VALUE for every job (repeatable)")
@click.option("--kubernetes-host", envvar="KUBERNETES_HOST")
@click.option("--kubernetes-namespace", envvar="KUBERNETES_NAMESPACE")
@click.option("--kubernetes-image", envvar="KUBERNETES_IMAGE")
def register(config_path: Path, non_interactive: bool, **opts: Any) -> None:
    """Register a runner with GitLab and add it to config.toml."""
    interactive = not non_interactive and sys.stdin.isatty()
    url = _ask(opts["url"], "Enter the GitLab instance URL (for example, https://gitlab.com/)", interactive)
    token = (
        opts["token"]
        or opts["registration_token"]
        or _ask(
            None,
            "Enter the registration token or the runner authentication token (glrt-...)",
            interactive,
            hide=True,
        )
    )
    if not url or not token:
        raise ConfigError("register: --url and --token (or --registration-token) are required")
    register_secrets([token])
    name = _ask(opts["name"], "Enter a name for the runner", interactive, default=_hostname())
    executor = _ask(opts["executor"], "Enter an executor: shell, kubernetes", interactive, default="")
    if executor not in ("shell", "kubernetes"):
        raise ConfigError(f"register: --executor must be shell or kubernetes, not {executor!r}")
    config = _load_or_empty(config_path)
    system_id = load_or_create_system_id(config_path)
    server_side = {k: opts[k] for k in _SERVER_SIDE if opts.get(k) not in (None, False, "")}
    if token.startswith("glrt-"):
        if server_side and opts["token"]:
            raise ConfigError(
                "register: runner configuration other than name and executor is reserved to GitLab with a glrt- "
                f"token and cannot be passed here: {', '.join(sorted(server_side))}"
            )
        if server_side:
            click.echo(
                "WARNING: ignoring server-side settings for a glrt- token: " + ", ".join(sorted(server_side)),
                err=True,
            )
        runner_token, runner_id = asyncio.run(_verify_new(url, token, system_id, executor))
    else:
        request = RegistrationRequest(
            description=name,
            tag_list=tuple(t.strip() for t in (opts["tag_list"] or "").split(",") if t.strip()),
            run_untagged=bool(opts["run_untagged"]),
            locked=bool(opts["locked"]),
            access_level=opts["access_level"] or "not_protected",
            maximum_timeout=opts["maximum_timeout"] or 0,
            paused=bool(opts["paused"]),
            maintenance_note=opts["maintenance_note"] or "",
        )
        runner_token, runner_id = asyncio.run(_register_legacy(url, token, system_id, executor, request))
    runner = _runner_config(url, runner_token, runner_id, name, executor, opts)
    save_config(config_path, config.model_copy(update={"runners": (*config.runners, runner)}))
    click.echo(f"Runner registered successfully. Configuration saved in {config_path!s}", err=True)


def _runner_config(
    url: str, token: str, runner_id: int, name: str, executor: str, opts: dict[str, Any]
) -> RunnerConfig:
    data: dict[str, Any] = {"name": name, "url": url, "id": runner_id, "token": token, "executor": executor}
    for key in ("limit", "output_limit", "request_concurrency", "builds_dir", "cache_dir", "shell"):
        if opts.get(key):
            data[key] = opts[key]
    if opts.get("env"):
        data["environment"] = list(opts["env"])
    if executor == "kubernetes":
        kube = {
            k: opts[f"kubernetes_{k}"] for k in ("host", "namespace", "image") if opts.get(f"kubernetes_{k}")
        }
        data["kubernetes"] = kube
    try:
        return RunnerConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"register: {where}: {first['msg'].lower()}") from None


def _client(url: str, token: str, system_id: str, executor: str) -> CoordinatorClient:
    info = RunnerInfo(version=VERSION, revision=REVISION, executor=executor)
    return CoordinatorClient(url, token=SecretStr(token), system_id=system_id, info=info)


async def _verify_new(url: str, token: str, system_id: str, executor: str) -> tuple[str, int]:
    async with _client(url, token, system_id, executor) as client:
        try:
            registration = await client.verify()
        except ApiAuthError as exc:
            raise ConfigError(f"register: GitLab does not know this runner token ({exc.status})") from None
    return token, registration.id


async def _register_legacy(
    url: str, token: str, system_id: str, executor: str, request: RegistrationRequest
) -> tuple[str, int]:
    async with _client(url, "", system_id, executor) as client:
        try:
            registration = await client.register(SecretStr(token), request)
        except ApiAuthError as exc:
            raise ConfigError(f"register: GitLab refused the registration token ({exc.status})") from None
    register_secrets([registration.token])
    return registration.token, registration.id


def _hostname() -> str:
    import socket

    return socket.gethostname()


def _selected(config: Config, name: str | None) -> list[RunnerConfig]:
    runners = [r for r in config.runners if name is None or r.name == name]
    if name is not None and not runners:
        raise ConfigError(f"no runner named {name!r} in the config")
    return runners


@skyrunner.command()
@config_option
@click.option("--delete", is_flag=True, help="remove runners GitLab no longer knows from the config")
@click.option("--name", help="verify only this runner")
def verify(config_path: Path, delete: bool, name: str | None) -> None:
    """Check that GitLab knows each configured runner."""
    config = load_config(config_path)
    system_id = load_or_create_system_id(config_path)
    gone = asyncio.run(_verify_all(_selected(config, name), system_id))
    if delete and gone:
        kept = tuple(r for r in config.runners if r.short_token not in gone)
        save_config(config_path, config.model_copy(update={"runners": kept}))
        click.echo(f"Updated {config_path!s}: removed {len(gone)} runner(s)", err=True)
    elif gone:
        raise SystemExit(1)


async def _verify_all(runners: list[RunnerConfig], system_id: str) -> set[str]:
    gone: set[str] = set()
    for runner in runners:
        register_secrets([runner.token.get_secret_value()])
        async with build_client(runner, system_id) as client:
            try:
                await client.verify()
            except ApiAuthError:
                click.echo(
                    f"Verifying runner... is removed  runner={runner.short_token} name={runner.name}",
                    err=True,
                )
                gone.add(runner.short_token)
                continue
        click.echo(f"Verifying runner... is valid  runner={runner.short_token} name={runner.name}", err=True)
    return gone


@skyrunner.command()
@config_option
@click.option("--name", help="the runner to unregister")
@click.option("-u", "--url", help="GitLab URL (with --token)")
@click.option("-t", "--token", help="the runner's token")
@click.option("--all-runners", is_flag=True, help="unregister every runner in the config")
def unregister(
    config_path: Path, name: str | None, url: str | None, token: str | None, all_runners: bool
) -> None:
    """Unregister runners from GitLab and remove them from config.toml."""
    config = load_config(config_path)
    if all_runners:
        chosen = list(config.runners)
    elif token:
        register_secrets([token])
        chosen = [
            r for r in config.runners if r.token.get_secret_value() == token and (not url or r.url == url)
        ]
    elif name:
        chosen = _selected(config, name)
    else:
        raise click.UsageError("give --name, --token or --all-runners")
    if not chosen:
        raise ConfigError("no matching runner in the config")
    system_id = load_or_create_system_id(config_path)
    asyncio.run(_unregister_all(chosen, system_id))
    kept = tuple(r for r in config.runners if r not in chosen)
    save_config(config_path, config.model_copy(update={"runners": kept}))
    click.echo(f"Updated {config_path!s}", err=True)


async def _unregister_all(runners: list[RunnerConfig], system_id: str) -> None:
    for runner in runners:
        register_secrets([runner.token.get_secret_value()])
        async with build_client(runner, system_id) as client:
            try:
                if runner.token.get_secret_value().startswith("glrt-"):
                    await client.unregister_manager()  # this host leaves; the runner stays in GitLab
                else:
                    await client.unregister()
            except ApiAuthError:
                click.echo(f"WARNING: GitLab does not know runner {runner.short_token} any more", err=True)
        click.echo(f"Unregistering runner from GitLab succeeded  runner={runner.short_token}", err=True)


@skyrunner.command("list")
@config_option
def list_runners(config_path: Path) -> None:
    """List the runners in config.toml."""
    config = load_config(config_path)
    click.echo(f"Listing configured runners  ConfigFile={config_path!s}", err=True)
    for runner in config.runners:
        click.echo(
            f"{runner.name:<20} Executor={runner.executor.value} Token={runner.short_token} URL={runner.url}"
        )
