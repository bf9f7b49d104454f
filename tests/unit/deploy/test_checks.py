"""What cannot work is found before anything is applied: one line per problem, naming the value."""

from __future__ import annotations

from typing import Any

import pytest

from skyrunner.config import ServerlessPlatform
from skyrunner.deploy import check_names, check_resources, check_values, platform_minimum, raise_problems
from skyrunner.errors import ConfigError
from skyrunner.executors.kubernetes.sizing import Platform, Resources
from skyrunner.executors.kubernetes.spec_table import GIB, MIB, load_spec_table
from tests.unit.deploy.inputs import TOKEN, values

TABLE = load_spec_table()


def test_valid_values_have_no_problem() -> None:
    assert check_values(values(cache={"nfs_server": "nas.example.com", "nfs_path": "/cache"})) == []


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"namespace": "Bad_NS"}, "namespace: 'Bad_NS' is not a DNS-1123 label"),
        ({"namespace": "n" * 64}, "namespace: 'nnnn"),
        ({"name": "runner.a"}, "name: 'runner.a' is not a DNS-1123 label of at most 46 characters"),
        ({"name": "r" * 47}, "name: 'rrrr"),
        ({"labels": {"team": "-ci"}}, "labels: label 'team' value '-ci' is not valid"),
        ({"labels": {"app.kubernetes.io/instance": "x"}}, "labels: 'app.kubernetes.io/instance' is set by skyrunner"),
        ({"url": "gitlab.example.com"}, "url: 'gitlab.example.com' is not an http:// or https:// URL"),
        ({"registration_token": "GR1348941abc"}, "token and registration_token: give one, not both"),
        ({"token": None}, "token: give --token (a runner authentication token) or --registration-token"),
        ({"image": None}, "image: give --image (the skyrunner image built from the Dockerfile)"),
        ({"cache": {"nfs_path": "/cache"}}, "cache: a cache volume needs an NFS server (--nfs-server or cache.nfs_server)"),
        ({"cache": {"nfs_server": "nas", "nfs_path": "cache"}}, "cache.nfs_path: 'cache' is not an absolute path"),
        ({"cache": {"nfs_server": "nas", "mount_path": "x"}}, "cache.mount_path: 'x' is not an absolute path"),
        ({"cache": {"nfs_server": "nas", "size": "lots"}}, 'cache.size: "lots" is not a memory quantity'),
        ({"cache": {"nfs_server": "nas", "size": "0"}}, "cache.size: must be more than 0"),
    ],
    ids=["namespace-syntax", "namespace-long", "name-dotted", "name-long", "label-value", "label-ours", "url",
         "two-tokens", "no-token", "no-image", "cache-without-server", "nfs-path-relative", "mount-path-relative",
         "cache-size", "cache-size-zero"],
)  # fmt: skip
def test_each_problem_is_one_line_naming_the_value(changes: dict[str, Any], problem: str) -> None:
    problems = check_values(values(**changes))

    assert len(problems) == 1, problems
    assert problems[0].startswith(problem)
    assert "\n" not in problems[0] and TOKEN not in problems[0]


def test_check_names_alone_is_what_delete_needs() -> None:
    assert check_names(values(token=None, image=None)) == []
    assert len(check_names(values(namespace="Bad", name="Bad"))) == 2


def test_raise_problems_puts_every_problem_on_one_line() -> None:
    with pytest.raises(ConfigError) as caught:
        raise_problems(check_values(values(namespace="Bad", image=None)))

    assert str(caught.value).count("; ") == 1 and "\n" not in str(caught.value)
    raise_problems([])  # nothing to say: no error


@pytest.mark.parametrize(
    ("platform", "cpu", "memory"),
    [(Platform.ECI, 250, 512 * MIB), (Platform.FARGATE, 250, 256 * MIB), (Platform.AUTOPILOT, 50, 52 * MIB),
     (Platform.ACI, 10, 100_000_000), (Platform.NONE, 1, 1)],
    ids=["eci", "fargate-less-its-overhead", "autopilot", "aci", "none"],
)  # fmt: skip
def test_platform_minimum_comes_from_the_spec_table(platform: Platform, cpu: int, memory: int) -> None:
    assert platform_minimum(platform, TABLE) == Resources(cpu=cpu, memory=memory)


def resources(req_cpu: str, req_mem: str, lim_cpu: str | None = None, lim_mem: str | None = None) -> dict[str, Any]:
    return {"resources": {"requests": {"cpu": req_cpu, "memory": req_mem},
                          "limits": {"cpu": lim_cpu or req_cpu, "memory": lim_mem or req_mem}}}  # fmt: skip


@pytest.mark.parametrize(
    ("platform", "changes", "expected"),
    [
        (ServerlessPlatform.ECI, {}, []),
        (ServerlessPlatform.ECI, resources("100m", "128Mi"),
         ["resources.requests.cpu: 100m is below the eci minimum 250m (the platform bills the minimum anyway)",
          "resources.requests.memory: 128Mi is below the eci minimum 512Mi (the platform bills the minimum anyway)"]),
        (ServerlessPlatform.FARGATE, resources("250m", "256Mi"), []),
        (ServerlessPlatform.ECI, resources("100", "100Gi"),
         ["resources: pod needs 100 vCPU / 100 GiB, more than the largest eci spec 64 vCPU / 512 GiB"]),
        (ServerlessPlatform.NONE, resources("1m", "1"), []),
        (ServerlessPlatform.AUTO, resources("1m", "1"), []),
        (ServerlessPlatform.ECI, resources("2", "1Gi", "1", "1Gi"),
         ["resources.requests.cpu: more than resources.limits.cpu"]),
        (ServerlessPlatform.NONE, resources("lots", "1Gi", "1"), ['resources.requests.cpu: "lots" is not a CPU quantity']),
    ],
    ids=["defaults-fit-eci", "below-eci", "fargate-minimum", "above-eci", "none-has-no-minimum",
         "auto-is-known-later", "request-above-limit", "not-a-quantity"],
)  # fmt: skip
def test_runner_resources_against_the_platform(
    platform: ServerlessPlatform, changes: dict[str, Any], expected: list[str]
) -> None:
    assert check_resources(values(**changes), platform, TABLE) == expected


def test_the_largest_eci_spec_is_what_the_table_says() -> None:
    assert TABLE.eci.specs[-1].cpu == 64_000 and TABLE.eci.specs[-1].memory == 512 * GIB
