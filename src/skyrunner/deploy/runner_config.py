"""The config.toml the deployed runner reads: one kubernetes runner, fitted to its Deployment.

Pure: no I/O. :func:`build_runner_config` takes the values and, optionally, a config.toml to
start from (``--runner-config``: a gitlab-runner config such as the reference deployment's,
whose one ``[[runners]]`` entry is the template) and returns the config that goes into the
ConfigMap, with the changes the Deployment needs and a note for each one a user may not expect:

- the token is the placeholder and ``token_file`` names the mounted Secret: the real token is
  never in the ConfigMap (``skyrunner.config`` reads it from the file at load);
- the executor is ``kubernetes`` and jobs run in the instance's namespace (where the Role
  allows pods and where the cache claim lives);
- with ``--kubeconfig-secret``, ``host``/``cert_file``/``key_file``/``ca_file`` point at the
  mounted Secret (``key_file`` at the key: the reference pointed it at the certificate);
  without it, any such keys are dropped and the in-cluster service account is used;
- with a cache, the claim is mounted at the cache directory of every job pod
  (``[[runners.kubernetes.volumes.pvc]]``), replacing a pvc volume at the same path;
- ``helper_image`` is the runner's image (the image is both; their versions must match);
- ``platform``, ``concurrent`` and ``shutdown_timeout`` from the values win over the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from pydantic import SecretStr

from skyrunner.config import (
    TOKEN_FROM_FILE,
    Config,
    Executor,
    KubernetesConfig,
    PvcVolume,
    RunnerConfig,
    ServerlessPlatform,
)
from skyrunner.deploy.kubeconfig import ClusterCredentials
from skyrunner.deploy.layout import (
    KUBE_CA_KEY,
    KUBE_CERT_KEY,
    KUBE_DIR,
    KUBE_KEY_KEY,
    TOKEN_DIR,
    TOKEN_KEY,
    object_names,
)
from skyrunner.deploy.values import DeployValues
from skyrunner.errors import ConfigError

__all__ = ["RunnerConfigResult", "build_runner_config", "runner_platform"]


@dataclass(frozen=True, slots=True)
class RunnerConfigResult:
    """The runner's config, and what was changed from the template that a user should hear."""

    config: Config
    notes: tuple[str, ...]


def build_runner_config(
    values: DeployValues,
    base: Config | None = None,
    credentials: ClusterCredentials | None = None,
    *,
    runner_id: int = 0,
) -> RunnerConfigResult:
    """Return the deployed runner's config.toml, from ``base`` (or nothing) and ``values``.

    Raises:
        ConfigError: ``base`` has more than one runner, or no GitLab URL is known.
    """
    base = base or Config()
    source = values.config or "config.toml"
    if len(base.runners) > 1:
        raise ConfigError(f"{source}: deploy runs one runner, the file has {len(base.runners)} [[runners]] entries")
    template = base.runners[0] if base.runners else None
    url = values.url or (template.url if template else None)
    if not url:
        raise ConfigError("deploy: give --url (the GitLab URL) or url in the values")
    notes: list[str] = []
    if template is not None and template.executor is not Executor.KUBERNETES:
        notes.append(f"{source}: executor {template.executor.value!r} becomes 'kubernetes'")
    update: dict[str, object] = {
        "name": values.runner_name or (template.name if template and template.name else values.name),
        "url": url,
        "token": SecretStr(TOKEN_FROM_FILE),
        "token_file": str(PurePosixPath(TOKEN_DIR) / TOKEN_KEY),
        "executor": Executor.KUBERNETES,
        "kubernetes": _kubernetes(template.kubernetes if template else None, values, credentials, source, notes),
    }
    if runner_id:
        update["id"] = runner_id
    if values.cache is not None:
        update["cache_dir"] = values.cache.mount_path
    runner = (
        template.model_copy(update=update)
        if template
        else RunnerConfig.model_validate({**update, "token": TOKEN_FROM_FILE})
    )
    globals_: dict[str, object] = {"runners": (runner,)}
    if values.concurrent is not None:
        globals_["concurrent"] = values.concurrent
    if values.shutdown_timeout is not None:
        globals_["shutdown_timeout"] = values.shutdown_timeout
    return RunnerConfigResult(config=base.model_copy(update=globals_), notes=tuple(notes))


def _kubernetes(
    kube: KubernetesConfig | None,
    values: DeployValues,
    credentials: ClusterCredentials | None,
    source: str,
    notes: list[str],
) -> KubernetesConfig:
    kube = kube or KubernetesConfig()
    names = object_names(values.name, values.namespace)
    if kube.namespace and kube.namespace != names.namespace:
        notes.append(f"{source}: jobs run in namespace {names.namespace!r}, not {kube.namespace!r}")
    update: dict[str, object] = {"namespace": names.namespace}
    if credentials is not None:
        kube_dir = PurePosixPath(KUBE_DIR)
        update |= {
            "host": credentials.server,
            "cert_file": str(kube_dir / KUBE_CERT_KEY),
            "key_file": str(kube_dir / KUBE_KEY_KEY),
            "ca_file": str(kube_dir / KUBE_CA_KEY),
            "bearer_token": None,
        }
    elif kube.host or kube.cert_file or kube.key_file or kube.ca_file or kube.bearer_token:
        notes.append(
            f"{source}: the kubernetes host and credentials are dropped: the runner uses its service account "
            "(give --kubeconfig-secret to send jobs to another cluster)"
        )
        update |= {"host": None, "cert_file": None, "key_file": None, "ca_file": None, "bearer_token": None}
    if values.image is not None:
        # the runner image is the helper image: runner and helper must be the same version
        if kube.helper_image and kube.helper_image != values.image:
            notes.append(f"{source}: helper_image {kube.helper_image!r} becomes the runner image")
        update["helper_image"] = values.image
    if values.platform is not None:
        update["serverless"] = kube.serverless.model_copy(update={"platform": values.platform})
    if values.cache is not None:
        mount_path = values.cache.mount_path
        kept = tuple(v for v in kube.volumes.pvc if v.mount_path != mount_path and v.name != names.claim)
        claim = PvcVolume(name=names.claim, mount_path=mount_path, read_only=False)
        update["volumes"] = kube.volumes.model_copy(update={"pvc": (*kept, claim)})
    return kube.model_copy(update=update)


def runner_platform(config: Config) -> ServerlessPlatform:
    """Return the serverless platform of the deployed runner's (only) runner."""
    if not config.runners:
        return ServerlessPlatform.NONE
    return config.runners[0].kubernetes_or_default().serverless.platform
