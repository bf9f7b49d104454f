"""``skyrunner deploy``: render, apply, compare or delete the runner's own deployment.

The flow, each step refusing before the next one can leave anything half done:

1. values: ``--values FILE`` (YAML), each flag given put over it;
2. checks (``deploy.checks``): names, labels, URL, the cache, the runner's resources against
   the platform's minimum; the ``--runner-config`` and ``--kubeconfig-secret`` files are read;
3. the runner token, from GitLab: ``--token`` is verified (``POST /runners/verify``);
   ``--registration-token`` registers a runner (legacy ``POST /runners``), unless the cluster's
   token Secret already holds a token that verifies: re-applying does not register again, and
   ``--dry-run`` never registers. No throwaway gitlab-runner container is needed;
4. render (``deploy.render_manifests``) and then print YAML (the default), apply it server-side
   (``--apply``), or print the diff against the cluster (``--dry-run``).

``--delete`` removes everything labelled as the instance's (the Namespace is kept). Only the
summary lines and the YAML go to stdout; notes go to stderr. Tokens never appear in either,
except inside the Secret of the YAML, which is what ``kubectl apply -f -`` needs.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import click
from pydantic import SecretStr

from skyrunner._version import REVISION, VERSION
from skyrunner.cli._app import skyrunner
from skyrunner.config import Config, ServerlessPlatform, load_config, render_config
from skyrunner.deploy import (
    ClusterCredentials,
    DeployValues,
    build_runner_config,
    check_names,
    check_resources,
    check_values,
    load_cluster_credentials,
    load_values,
    merge_flags,
    object_names,
    raise_problems,
    render_manifests,
    render_yaml,
    runner_platform,
    system_id_for,
)
from skyrunner.deploy.cluster import Cluster
from skyrunner.deploy.layout import TOKEN_KEY
from skyrunner.errors import ApiAuthError, ConfigError
from skyrunner.executors.kubernetes.spec_table import load_spec_table
from skyrunner.gitlab.client import CoordinatorClient
from skyrunner.gitlab.models import RegistrationRequest, RunnerInfo
from skyrunner.logs import register_secrets

__all__ = ["Action", "deploy"]

PENDING_TOKEN: Final = "registered-on-apply"
"""The token a ``--dry-run`` renders when ``--apply`` would register a new runner."""


class Action(enum.Enum):
    RENDER = "render"
    APPLY = "apply"
    DRY_RUN = "dry-run"
    DELETE = "delete"


@skyrunner.command()
@click.option("--values", "values_file", type=click.Path(dir_okay=False, path_type=Path), help="values file (YAML)")
@click.option("--name", help="instance name, the prefix of every object  [default: skyrunner]")
@click.option("-n", "--namespace", help="namespace of the runner and its jobs  [default: skyrunner]")
@click.option("-u", "--url", envvar="CI_SERVER_URL", help="GitLab URL")
@click.option("-t", "--token", envvar="CI_SERVER_TOKEN", help="runner authentication token (verified)")
@click.option("-r", "--registration-token", envvar="REGISTRATION_TOKEN", help="registration token (legacy flow)")
@click.option("--image", help="the skyrunner image (runner and helper)")
@click.option(
    "--runner-config", type=click.Path(dir_okay=False, path_type=Path),
    help="a config.toml whose [[runners]] entry is the template",
)  # fmt: skip
@click.option("--platform", type=click.Choice([p.value for p in ServerlessPlatform]), help="serverless platform")
@click.option("--nfs-server", help="NFS server of the cache volume (a NAS)")
@click.option("--nfs-path", help="exported path of the cache volume  [default: /]")
@click.option(
    "--kubeconfig-secret", type=click.Path(dir_okay=False, path_type=Path),
    help="kubeconfig of the cluster jobs run in, when the runner runs outside it",
)  # fmt: skip
@click.option(
    "--kubeconfig", type=click.Path(dir_okay=False, path_type=Path),
    help="kubeconfig of the cluster to apply to  [default: KUBECONFIG, ~/.kube/config or in-cluster]",
)  # fmt: skip
@click.option("-o", "--output", type=click.Choice(["yaml"]), default="yaml", show_default=True)
@click.option("--apply", "do_apply", is_flag=True, help="server-side apply to the cluster")
@click.option("--dry-run", "do_dry_run", is_flag=True, help="print the diff against the cluster")
@click.option("--delete", "do_delete", is_flag=True, help="delete the instance's objects (not the namespace)")
def deploy(values_file: Path | None, kubeconfig: Path | None, output: str, **opts: Any) -> None:
    """Render the manifests that run skyrunner in a cluster, or apply, compare or delete them."""
    action = _action(opts.pop("do_apply"), opts.pop("do_dry_run"), opts.pop("do_delete"))
    values = _values(values_file, opts)
    if action is Action.DELETE:
        raise_problems(check_names(values))
        asyncio.run(_delete(values, kubeconfig))
        return
    raise_problems(check_values(values))
    base = load_config(Path(values.config)) if values.config else None
    credentials = load_cluster_credentials(Path(values.kubeconfig_secret)) if values.kubeconfig_secret else None
    draft = build_runner_config(values, base, credentials)
    raise_problems(check_resources(values, runner_platform(draft.config), load_spec_table()))
    for note in draft.notes:
        click.echo(f"note: {note}", err=True)
    asyncio.run(_deploy(action, values, _Inputs(base, credentials, draft.config), kubeconfig))


def _action(apply: bool, dry_run: bool, delete: bool) -> Action:
    chosen = [action for action, given in ((Action.APPLY, apply), (Action.DRY_RUN, dry_run),
                                           (Action.DELETE, delete)) if given]  # fmt: skip
    if len(chosen) > 1:
        raise click.UsageError("give one of --apply, --dry-run and --delete")
    return chosen[0] if chosen else Action.RENDER


def _values(values_file: Path | None, opts: dict[str, Any]) -> DeployValues:
    values = load_values(values_file) if values_file else DeployValues()
    secrets = {key: SecretStr(opts[key]) if opts[key] else None for key in ("token", "registration_token")}
    paths = {"config": opts.pop("runner_config"), "kubeconfig_secret": opts["kubeconfig_secret"]}
    flags = {**opts, **secrets, **{key: str(path) if path else None for key, path in paths.items()}}
    merged = merge_flags(values, flags)
    register_secrets(s.get_secret_value() for s in (merged.token, merged.registration_token) if s is not None)
    return merged


@dataclass(frozen=True, slots=True)
class _Inputs:
    """What was read before the runner token is known: the template, credentials, the draft."""

    base: Config | None
    credentials: ClusterCredentials | None
    draft: Config


async def _deploy(action: Action, values: DeployValues, inputs: _Inputs, kubeconfig: Path | None) -> None:
    cluster = Cluster.connect(kubeconfig) if action in (Action.APPLY, Action.DRY_RUN) else None
    try:
        token, runner_id = await _runner_token(values, inputs.draft, cluster, action)
        values = values.model_copy(update={"token": SecretStr(token), "registration_token": None})
        config = build_runner_config(values, inputs.base, inputs.credentials, runner_id=runner_id).config
        manifests = render_manifests(values, render_config(config), credentials=inputs.credentials)
        if cluster is None:
            click.echo(render_yaml(manifests), nl=False)
        elif action is Action.APPLY:
            for manifest in manifests:  # one line as each is applied: a failure shows how far it got
                applied = await cluster.apply(manifest)
                click.echo(f"{applied.ref}: {applied.outcome.value}")
        else:
            names = object_names(values.name, values.namespace)
            click.echo(await cluster.diff_all(manifests, names) or "# no changes\n", nl=False)
    finally:
        if cluster is not None:
            await cluster.aclose()


async def _runner_token(
    values: DeployValues, draft: Config, cluster: Cluster | None, action: Action
) -> tuple[str, int]:
    """Return the runner token for the Secret and the runner's id (0 when GitLab did not say)."""
    runner = draft.runners[0]
    names = object_names(values.name, values.namespace)
    client = _Gitlab(runner.url, system_id_for(names))
    if values.token is not None:
        return await client.verify(values.token.get_secret_value(), hint=True)
    assert values.registration_token is not None  # check_values: one of the two
    if cluster is not None:
        existing = await cluster.read_secret_value(names.namespace, names.token_secret, TOKEN_KEY)
        if existing is not None:
            register_secrets([existing])
            try:
                found = await client.verify(existing, hint=False)
            except ConfigError:
                click.echo(f"note: the token in Secret {names.token_secret} no longer verifies", err=True)
            else:
                click.echo(f"note: keeping the runner registered before (Secret {names.token_secret})", err=True)
                return found
    if action is Action.DRY_RUN:
        click.echo("note: --apply registers a new runner with the registration token", err=True)
        return PENDING_TOKEN, 0
    tags = tuple(values.tags)
    request = RegistrationRequest(description=runner.name, tag_list=tags, run_untagged=not tags)
    return await client.register(values.registration_token, request)


class _Gitlab:
    """Registration and verification of the deployed runner, with its system id."""

    def __init__(self, url: str, system_id: str) -> None:
        self._url = url
        self._system_id = system_id

    def _client(self, token: str) -> CoordinatorClient:
        info = RunnerInfo(version=VERSION, revision=REVISION, executor="kubernetes")
        return CoordinatorClient(self._url, token=SecretStr(token), system_id=self._system_id, info=info)

    async def verify(self, token: str, *, hint: bool) -> tuple[str, int]:
        async with self._client(token) as client:
            try:
                registration = await client.verify()
            except ApiAuthError as exc:
                advice = "; a registration token goes in --registration-token" if hint else ""
                raise ConfigError(f"token: GitLab does not know this runner token ({exc.status}){advice}") from None
        return token, registration.id

    async def register(self, registration_token: SecretStr, request: RegistrationRequest) -> tuple[str, int]:
        async with self._client("") as client:
            try:
                registration = await client.register(registration_token, request)
            except ApiAuthError as exc:
                raise ConfigError(f"registration_token: GitLab refused it ({exc.status})") from None
        register_secrets([registration.token])
        click.echo(f"note: registered runner {registration.id} with GitLab", err=True)
        return registration.token, registration.id


async def _delete(values: DeployValues, kubeconfig: Path | None) -> None:
    names = object_names(values.name, values.namespace)
    cluster = Cluster.connect(kubeconfig)
    try:
        deleted = await cluster.delete_owned(names)
    finally:
        await cluster.aclose()
    for ref in deleted:
        click.echo(f"{ref}: deleted")
    if not deleted:
        click.echo(f"nothing of {names.instance} in namespace {names.namespace} to delete", err=True)
    click.echo(f"note: namespace {names.namespace} is kept (it may hold more than skyrunner)", err=True)
