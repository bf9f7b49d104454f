"""The job pod's name resolution: DNS policy and config, and /etc/hosts entries.

Pure: no I/O. ``dns_policy`` (gitlab-runner's ``none``, ``default``, ``cluster-first``,
``cluster-first-with-host-net``) and ``dns_config`` (nameservers, searches, options) go to the
pod as they are, within Kubernetes 1.24's limits (3 nameservers, 6 search domains); ``none``
needs at least one nameserver, as the API server requires.

``hostAliases`` are the config's ``[[runners.kubernetes.host_aliases]]`` plus one ``127.0.0.1``
entry naming every service alias, which is how ``db:5432`` reaches the service container in the
same pod (gitlab-runner's ``createHostAliases``). A given alias that is not a DNS name is an
error, as in gitlab-runner; names derived from a service's image are used when they are valid.
Together with ``dns_config`` this reaches in-VPC hosts without touching cluster DNS
(``docs/dns.md``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from lightkube.models.core_v1 import HostAlias, PodDNSConfig, PodDNSConfigOption

from skyrunner.config import DnsConfig, DnsPolicy, KubernetesConfig
from skyrunner.config import HostAlias as HostAliasConfig
from skyrunner.executors.kubernetes._names import is_dns_subdomain
from skyrunner.executors.kubernetes._overwrites import CONFIG
from skyrunner.executors.kubernetes._report import BuildReport

__all__ = ["LOCALHOST", "ServiceNames", "build_dns", "build_host_aliases"]

LOCALHOST = "127.0.0.1"
# Kubernetes 1.24's limits (pkg/apis/core/validation: MaxDNSNameservers, MaxDNSSearchPaths and
# MaxDNSSearchListChars; later versions allow more search domains)
MAX_NAMESERVERS = 3
MAX_SEARCHES = 6
MAX_SEARCH_CHARS = 256

_POLICIES = {
    DnsPolicy.NONE: "None",
    DnsPolicy.DEFAULT: "Default",
    DnsPolicy.CLUSTER_FIRST: "ClusterFirst",
    DnsPolicy.CLUSTER_FIRST_WITH_HOST_NET: "ClusterFirstWithHostNet",
}

ServiceNames = tuple[tuple[str, ...], tuple[str, ...]]
"""A service's given aliases, and the names derived from its image."""


def build_dns(cfg: KubernetesConfig, report: BuildReport) -> tuple[str | None, PodDNSConfig | None]:
    """The pod's ``dnsPolicy`` and ``dnsConfig``."""
    policy = _POLICIES[cfg.dns_policy] if cfg.dns_policy is not None else None
    config = _dns_config(cfg.dns_config, report)
    if cfg.dns_policy is DnsPolicy.NONE and (config is None or not config.nameservers):
        report.error(f'{CONFIG} dns_policy = "none" needs dns_config.nameservers')
    return policy, config


def _dns_config(dns: DnsConfig, report: BuildReport) -> PodDNSConfig | None:
    if not (dns.nameservers or dns.searches or dns.options):
        return None
    for server in dns.nameservers:
        if not _is_ip(server):
            report.error(f"{CONFIG} dns_config.nameservers: {server!r} is not an IP address")
    if len(dns.nameservers) > MAX_NAMESERVERS:
        report.error(f"{CONFIG} dns_config.nameservers: {len(dns.nameservers)} given, a pod takes {MAX_NAMESERVERS}")
    if len(dns.searches) > MAX_SEARCHES or len(" ".join(dns.searches)) > MAX_SEARCH_CHARS:
        report.error(
            f"{CONFIG} dns_config.searches: a pod takes {MAX_SEARCHES} domains of {MAX_SEARCH_CHARS} characters in all"
        )
    for domain in dns.searches:
        if not is_dns_subdomain(domain.rstrip(".")):
            report.error(f"{CONFIG} dns_config.searches: {domain!r} is not a DNS name")
    options = [PodDNSConfigOption(name=o.name, value=o.value) for o in dns.options]
    return PodDNSConfig(
        nameservers=list(dns.nameservers) or None, searches=list(dns.searches) or None, options=options or None
    )


def build_host_aliases(
    configured: Sequence[HostAliasConfig], services: Sequence[ServiceNames], report: BuildReport
) -> list[HostAlias] | None:
    """The config's host aliases, then 127.0.0.1 for every service alias."""
    out = []
    for alias in configured:
        if not _is_ip(alias.ip):
            report.error(f"{CONFIG} host_aliases: {alias.ip!r} is not an IP address")
        for name in alias.hostnames:
            if not is_dns_subdomain(name):
                report.error(f"{CONFIG} host_aliases {alias.ip}: {name!r} is not a DNS name")
        out.append(HostAlias(ip=alias.ip, hostnames=list(alias.hostnames) or None))
    names: list[str] = []
    for given, derived in services:
        for name in given:
            if not is_dns_subdomain(name):
                report.error(f"service alias {name!r} is not a valid DNS name")
        names += [n for n in given if is_dns_subdomain(n)] + [n for n in derived if is_dns_subdomain(n)]
    if names:
        out.append(HostAlias(ip=LOCALHOST, hostnames=list(dict.fromkeys(names))))
    return out or None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
