"""The packaged spec table: loaded exactly, equal to the shared data, strict about figures."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from skyrunner.executors.kubernetes.spec_table import (
    GB,
    GIB,
    MIB,
    AutopilotCluster,
    Spec,
    load_spec_table,
    parse_spec_table,
)
from skyrunner.platforms import Platform

SHARED = Path(__file__).resolve().parents[5] / "shared" / "data" / "serverless-specs.json"
PACKAGED = resources.files("skyrunner.executors.kubernetes").joinpath("serverless-specs.json")


def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(PACKAGED.read_text(encoding="utf-8"), parse_float=Decimal)
    return loaded


@pytest.mark.skipif(not SHARED.is_file(), reason="shared/ is not beside the checkout")
def test_packaged_table_is_the_shared_data() -> None:
    assert PACKAGED.read_bytes() == SHARED.read_bytes()


def test_eci_rules() -> None:
    eci = load_spec_table().eci
    assert len(eci.specs) == 44 and len(eci.regional_specs) == 62
    assert eci.specs[0] == Spec(250, GIB // 2) and eci.specs[-1] == Spec(64000, 512 * GIB)
    assert list(eci.specs) == sorted(eci.specs)
    assert eci.default == Spec(2000, 4 * GIB)
    assert (eci.prices.per_vcpu_second, eci.prices.per_gib_second) == (Decimal("7.7E-6"), Decimal("9.6E-7"))
    assert (eci.prices.currency, eci.prices.min_billed_seconds, eci.prices.memory_unit) == ("USD", 0, GIB)


def test_fargate_rules() -> None:
    fargate = load_spec_table().fargate
    assert len(fargate.specs) == 74
    assert fargate.specs[0] == Spec(250, GIB // 2) and fargate.specs[-1] == Spec(16000, 120 * GIB)
    assert fargate.overhead_memory == 256 * MIB
    assert fargate.max_ephemeral_storage == 175 * GIB
    assert fargate.prices.min_billed_seconds == 60


def test_autopilot_rules() -> None:
    autopilot = load_spec_table().autopilot
    assert autopilot.min_cpu == {AutopilotCluster.BURSTING: 50, AutopilotCluster.NON_BURSTING: 250}
    assert autopilot.min_memory == {
        AutopilotCluster.BURSTING: 52 * MIB,
        AutopilotCluster.NON_BURSTING: 512 * MIB,
    }
    assert autopilot.cpu_step == {AutopilotCluster.BURSTING: 1, AutopilotCluster.NON_BURSTING: 250}
    assert (autopilot.max_cpu, autopilot.max_memory) == (30000, 110 * GIB)
    assert (autopilot.min_gib_per_vcpu, autopilot.max_gib_per_vcpu) == (Fraction(1), Fraction(13, 2))
    assert autopilot.default == Spec(500, 2 * GIB)
    assert (autopilot.min_ephemeral_storage, autopilot.max_ephemeral_storage) == (10 * MIB, 10 * GIB)
    assert autopilot.prices.min_billed_seconds == 0 and autopilot.prices.increment_seconds == 1


def test_aci_rules() -> None:
    aci = load_spec_table().aci
    assert (aci.cpu_step, aci.memory_step) == (10, 10**8)
    assert aci.container_default == Spec(1000, 1_500_000_000)
    assert (aci.max_cpu, aci.max_memory, aci.max_storage) == (4000, 16 * GB, 50 * GB)
    assert aci.prices.memory_unit == GB


def test_table_variants() -> None:
    table = load_spec_table()
    regional = table.with_regional_eci_specs()
    assert Spec(8000, 14 * GIB) in regional.eci.specs and Spec(8000, 14 * GIB) not in table.eci.specs
    assert list(regional.eci.specs) == sorted(set(regional.eci.specs))
    assert table.autopilot_cluster is AutopilotCluster.BURSTING
    assert (
        table.for_autopilot_cluster(AutopilotCluster.NON_BURSTING).autopilot_cluster
        is AutopilotCluster.NON_BURSTING
    )


def test_prices_per_platform() -> None:
    table = load_spec_table()
    assert table.prices_for(Platform.NONE) is None
    for platform in (Platform.ECI, Platform.FARGATE, Platform.AUTOPILOT, Platform.ACI):
        prices = table.prices_for(platform)
        assert prices is not None and prices.per_vcpu_second > 0 and prices.per_gib_second > 0


def test_inexact_figure_is_refused() -> None:
    doc = copy.deepcopy(document())
    doc["platforms"][1]["specs"][0] = [Decimal("0.0001"), Decimal("0.5")]
    with pytest.raises(ValueError, match="is not a whole number"):
        parse_spec_table(doc)


def test_missing_platform_is_refused() -> None:
    doc = copy.deepcopy(document())
    doc["platforms"] = [p for p in doc["platforms"] if p["name"] != "gke-autopilot"]
    with pytest.raises(ValueError, match="no platform gke-autopilot"):
        parse_spec_table(doc)
