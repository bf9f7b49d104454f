"""Running skyrunner in a cluster: the manifests of ``skyrunner deploy``, rendered and applied.

This package owns the deployment of the runner itself (not the job pods: that is
``executors/kubernetes``). Pure modules: ``values`` (the values file and flags), ``layout``
(names, labels, paths), ``checks`` (what cannot work, found before anything is applied),
``kubeconfig`` (credentials of another cluster), ``runner_config`` (the config.toml of the
ConfigMap), ``manifests`` + ``_deployment`` (the objects, in apply order) and ``diff`` (what
``--dry-run`` prints). I/O: ``sources`` (the files) and ``cluster`` (lightkube: apply, read,
delete; its errors are translated there). Registration with GitLab is the command's
(``cli/_deploy.py``): this package does not import ``gitlab``.

Typical use::

    values = merge_flags(load_values(path), {"namespace": "ci", "image": image})
    raise_problems(check_values(values))
    config = build_runner_config(values, base_config).config
    manifests = render_manifests(values_with_token, render_config(config))
    print(render_yaml(manifests))
"""

from skyrunner.deploy.checks import check_names, check_resources, check_values, platform_minimum, raise_problems
from skyrunner.deploy.diff import render_diff
from skyrunner.deploy.kubeconfig import ClusterCredentials, parse_kubeconfig
from skyrunner.deploy.layout import ObjectNames, object_names, standard_labels, system_id_for
from skyrunner.deploy.manifests import Manifest, render_manifests, render_yaml
from skyrunner.deploy.runner_config import RunnerConfigResult, build_runner_config, runner_platform
from skyrunner.deploy.sources import load_cluster_credentials, load_values
from skyrunner.deploy.values import (
    CacheValues,
    DeployValues,
    ImagePullPolicy,
    Quantities,
    RunnerResources,
    merge_flags,
    parse_values,
)

__all__ = [
    "CacheValues",
    "ClusterCredentials",
    "DeployValues",
    "ImagePullPolicy",
    "Manifest",
    "ObjectNames",
    "Quantities",
    "RunnerConfigResult",
    "RunnerResources",
    "build_runner_config",
    "check_names",
    "check_resources",
    "check_values",
    "load_cluster_credentials",
    "load_values",
    "merge_flags",
    "object_names",
    "parse_kubeconfig",
    "parse_values",
    "platform_minimum",
    "raise_problems",
    "render_diff",
    "render_manifests",
    "render_yaml",
    "runner_platform",
    "standard_labels",
    "system_id_for",
]
