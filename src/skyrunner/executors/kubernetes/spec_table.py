"""The platforms' spec tables, limits and prices, as frozen data.

Pure, except :func:`load_spec_table`: the one function that reads a file, the packaged
``serverless-specs.json`` (a copy of ``shared/data/serverless-specs.json``; its sibling
``serverless-k8s.md`` gives the sources). :func:`parse_spec_table` turns that document into a
:class:`SpecTable`; everything else takes the table as an argument, so tests can build their
own.

Units inside: CPU in millicores, memory and storage in bytes, prices as exact ``Decimal``
(the JSON is read with ``parse_float=Decimal``). The table's GiB are binary (AWS writes "GB"
and means 1024 MiB); ACI's GB are decimal (virtual-kubelet divides bytes by 10^9), so ACI
prices are per decimal GB-second and :attr:`Prices.memory_unit` says which.

Figures the data states only in prose are constants here, each with its sentence: ECI's
default size when a pod sets nothing (2 vCPU / 4 GiB) and ACI's per-container truncation.
This module does not own the rounding rules themselves (``sizing.py``) nor cost arithmetic
(``cost.py``, which re-exports :class:`Prices`).
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from importlib import resources
from typing import Any, Final

from skyrunner.platforms import Platform

__all__ = [
    "GB",
    "GIB",
    "MIB",
    "AciRules",
    "AutopilotCluster",
    "AutopilotRules",
    "EciRules",
    "FargateRules",
    "Prices",
    "Spec",
    "SpecTable",
    "load_spec_table",
    "parse_spec_table",
]

MIB: Final = 2**20
GIB: Final = 2**30
GB: Final = 10**9

_PACKAGE: Final = "skyrunner.executors.kubernetes"
_FILE: Final = "serverless-specs.json"
_NAMES: Final = {
    Platform.ECI: "alibaba-eci",
    Platform.FARGATE: "aws-eks-fargate",
    Platform.AUTOPILOT: "gke-autopilot",
    Platform.ACI: "azure-aci-virtual-nodes",
}


@dataclass(frozen=True, slots=True, order=True)
class Spec:
    """One CPU/memory combination a platform offers; orders by CPU, then memory."""

    cpu: int
    """Millicores."""
    memory: int
    """Bytes."""


@dataclass(frozen=True, slots=True)
class Prices:
    """What a second of a pod costs on a platform, and how its seconds are counted."""

    per_vcpu_second: Decimal
    per_gib_second: Decimal
    """Per GiB-second; per decimal GB-second where :attr:`memory_unit` is :data:`GB` (ACI)."""
    currency: str
    memory_unit: int = GIB
    """Bytes in the memory unit the price is quoted for."""
    min_billed_seconds: int = 0
    """A shorter pod is billed this long (Fargate: 60)."""
    increment_seconds: int = 1
    """Billed time is rounded up to a multiple of this."""


@dataclass(frozen=True, slots=True)
class EciRules:
    """Alibaba ECI: a fixed spec list; ``eci-use-specs`` picks one."""

    specs: tuple[Spec, ...]
    """Specs sold in every region, sorted."""
    regional_specs: tuple[Spec, ...]
    """Specs sold only in some regions and not for spot instances, sorted."""
    default: Spec
    prices: Prices
    max_use_specs_entries: int = 5


@dataclass(frozen=True, slots=True)
class FargateRules:
    """EKS Fargate: a fixed combination table, with memory overhead added before rounding."""

    specs: tuple[Spec, ...]
    overhead_memory: int
    max_ephemeral_storage: int
    prices: Prices


class AutopilotCluster(enum.StrEnum):
    """Which Autopilot rules apply: clusters created on 1.30.2-gke.1394000 or later burst."""

    BURSTING = "bursting"
    NON_BURSTING = "non-bursting"


@dataclass(frozen=True, slots=True)
class AutopilotRules:
    """GKE Autopilot general-purpose class: minimums, a ratio, maximums, no table."""

    min_cpu: Mapping[AutopilotCluster, int]
    min_memory: Mapping[AutopilotCluster, int]
    cpu_step: Mapping[AutopilotCluster, int]
    """1 millicore where Autopilot has no step."""
    max_cpu: int
    max_memory: int
    min_gib_per_vcpu: Fraction
    max_gib_per_vcpu: Fraction
    default: Spec
    """What a pod that sets neither CPU nor memory gets."""
    min_ephemeral_storage: int
    max_ephemeral_storage: int
    default_ephemeral_storage: int
    prices: Prices


@dataclass(frozen=True, slots=True)
class AciRules:
    """AKS virtual nodes on ACI: the sum of truncated container requests, up to a cap."""

    cpu_step: int
    memory_step: int
    container_default: Spec
    """What a container without a request gets."""
    max_cpu: int
    max_memory: int
    max_storage: int
    prices: Prices


@dataclass(frozen=True, slots=True)
class SpecTable:
    """All platforms' rules; :meth:`prices_for` gives one platform's prices."""

    eci: EciRules
    fargate: FargateRules
    autopilot: AutopilotRules
    aci: AciRules
    autopilot_cluster: AutopilotCluster = AutopilotCluster.BURSTING

    def with_regional_eci_specs(self) -> SpecTable:
        """Return the table with ECI's region-only specs added to the ones it rounds to."""
        merged = tuple(sorted(set(self.eci.specs) | set(self.eci.regional_specs)))
        return dataclasses.replace(self, eci=dataclasses.replace(self.eci, specs=merged))

    def for_autopilot_cluster(self, cluster: AutopilotCluster) -> SpecTable:
        """Return the table applying the Autopilot rules of ``cluster``."""
        return dataclasses.replace(self, autopilot_cluster=cluster)

    def prices_for(self, platform: Platform) -> Prices | None:
        """Return the table's prices for ``platform``; ``none`` has none."""
        rules: dict[Platform, Prices] = {
            Platform.ECI: self.eci.prices,
            Platform.FARGATE: self.fargate.prices,
            Platform.AUTOPILOT: self.autopilot.prices,
            Platform.ACI: self.aci.prices,
        }
        return rules.get(platform)


def load_spec_table() -> SpecTable:
    """Read the packaged ``serverless-specs.json`` into a :class:`SpecTable`."""
    text = resources.files(_PACKAGE).joinpath(_FILE).read_text(encoding="utf-8")
    return parse_spec_table(json.loads(text, parse_float=Decimal))


def parse_spec_table(document: Mapping[str, Any]) -> SpecTable:
    """Build a :class:`SpecTable` from the JSON document (floats read as ``Decimal``).

    Raises:
        ValueError: the document lacks a figure sizing needs, or a figure is not exact in
            millicores or bytes.
    """
    by_name = {entry["name"]: entry for entry in document["platforms"]}
    try:
        entries = {platform: by_name[name] for platform, name in _NAMES.items()}
    except KeyError as exc:
        raise ValueError(f"spec table: no platform {exc.args[0]}") from exc
    return SpecTable(
        eci=_eci(entries[Platform.ECI]),
        fargate=_fargate(entries[Platform.FARGATE]),
        autopilot=_autopilot(entries[Platform.AUTOPILOT]),
        aci=_aci(entries[Platform.ACI]),
    )


def _eci(entry: Mapping[str, Any]) -> EciRules:
    return EciRules(
        specs=_spec_list(entry["specs"]),
        regional_specs=_spec_list(entry["specs_some_regions_only"]),
        # sizing_input: "nothing set -> 2 vCPU / 4 GiB"
        default=Spec(cpu=2000, memory=4 * GIB),
        prices=_prices(entry),
    )


def _fargate(entry: Mapping[str, Any]) -> FargateRules:
    return FargateRules(
        specs=_spec_list(entry["specs"]),
        overhead_memory=_exact(entry["overhead"]["memory_mib_added"], MIB),
        max_ephemeral_storage=_exact(entry["ephemeral_storage"]["max_gib"], GIB),
        prices=_prices(entry),
    )


def _autopilot(entry: Mapping[str, Any]) -> AutopilotRules:
    specs = entry["specs"]
    bursting, legacy = "bursting_cluster", "non_bursting_cluster"
    clusters = {AutopilotCluster.BURSTING: bursting, AutopilotCluster.NON_BURSTING: legacy}
    ratio = specs["memory_gib_per_vcpu"]
    defaults = specs["defaults_if_unset"]
    storage = specs["ephemeral_storage_gib"]
    return AutopilotRules(
        min_cpu={c: _exact(specs["cpu_min_vcpu"][key], 1000) for c, key in clusters.items()},
        min_memory={c: _exact(specs["memory_min_gib"][key], GIB) for c, key in clusters.items()},
        cpu_step={
            c: 1
            if specs["cpu_increment_vcpu"][key] is None
            else _exact(specs["cpu_increment_vcpu"][key], 1000)
            for c, key in clusters.items()
        },
        max_cpu=_exact(specs["cpu_max_vcpu"], 1000),
        max_memory=_exact(specs["memory_max_gib"], GIB),
        min_gib_per_vcpu=Fraction(ratio["min"]),
        max_gib_per_vcpu=Fraction(ratio["max"]),
        default=Spec(cpu=_exact(defaults["cpu_vcpu"], 1000), memory=_exact(defaults["memory_gib"], GIB)),
        min_ephemeral_storage=_exact(storage["min"], GIB),
        max_ephemeral_storage=_exact(storage["max"], GIB),
        default_ephemeral_storage=_exact(defaults["ephemeral_storage_gib"], GIB),
        prices=_prices(entry),
    )


def _aci(entry: Mapping[str, Any]) -> AciRules:
    specs = entry["specs"]
    default = specs["defaults_if_unset_per_container"]
    group_max = specs["container_group_max"]
    return AciRules(
        cpu_step=_exact(specs["cpu_increment_vcpu"], 1000),
        memory_step=_exact(specs["memory_increment_gb"], GB),
        container_default=Spec(
            cpu=_exact(default["cpu_vcpu"], 1000), memory=_exact(default["memory_gb"], GB)
        ),
        max_cpu=_exact(group_max["linux_standard_vcpu"], 1000),
        max_memory=_exact(group_max["linux_standard_memory_gb"], GB),
        max_storage=_exact(group_max["storage_gb"], GB),
        prices=_prices(entry, memory_unit=GB),
    )


def _prices(entry: Mapping[str, Any], *, memory_unit: int = GIB) -> Prices:
    minimum = entry.get("min_billed_seconds")
    increment = entry.get("billing_increment_seconds")
    return Prices(
        per_vcpu_second=Decimal(entry["price_per_vcpu_second"]),
        per_gib_second=Decimal(entry["price_per_gib_second"]),
        currency=str(entry["currency"]),
        memory_unit=memory_unit,
        # null means "no minimum found": bill what ran
        min_billed_seconds=0 if minimum is None else int(minimum),
        # all four bill per second ("rounded up to the nearest second" on Fargate)
        increment_seconds=1 if increment is None else int(increment),
    )


def _spec_list(rows: list[list[Decimal | int]]) -> tuple[Spec, ...]:
    return tuple(sorted(Spec(cpu=_exact(vcpu, 1000), memory=_exact(gib, GIB)) for vcpu, gib in rows))


def _exact(figure: Decimal | int, unit: int) -> int:
    """Convert ``figure`` units to an int of the base unit, refusing an inexact result."""
    scaled = Fraction(figure) * unit
    if scaled.denominator != 1:
        raise ValueError(f"spec table: {figure} x {unit} is not a whole number")
    return int(scaled)
