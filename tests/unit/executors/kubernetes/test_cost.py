"""Cost per job: billing rules per platform, price overrides and the trace line."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skyrunner.errors import ConfigError
from skyrunner.executors.kubernetes.cost import Cost, Prices, build_prices, estimate_cost, render_cost_line
from skyrunner.executors.kubernetes.sizing import (
    ContainerRequest,
    Platform,
    PodRequest,
    PodSize,
    Resources,
    size_pod,
)
from skyrunner.executors.kubernetes.spec_table import GB, GIB, load_spec_table

TABLE = load_spec_table()


def sized(platform: Platform, cpu: int, memory: int) -> PodSize:
    build = ContainerRequest("build", Resources(cpu=cpu, memory=memory))
    return size_pod(PodRequest(containers=(build,)), platform, TABLE)


def test_the_issue_example_line() -> None:
    size = sized(Platform.ECI, 2000, 2 * GIB)
    cost = estimate_cost(size, 41.3, build_prices(Platform.ECI, TABLE))
    line = "Billed spec: 2 vCPU / 2 GiB (eci-use-specs 2-2Gi), 42 s, estimated cost USD 0.00073"
    assert render_cost_line(size, cost) == line
    # 42 s x (2 x 0.0000077 + 2 x 0.00000096)
    assert cost.amount == Decimal("0.00072744")


BILLING = [
    # platform, seconds ran, seconds billed
    ("fargate-minimum", Platform.FARGATE, 42.0, 60),
    ("fargate-above-minimum", Platform.FARGATE, 61.2, 62),
    ("fargate-zero", Platform.FARGATE, 0.0, 60),
    ("eci-per-second", Platform.ECI, 0.2, 1),
    ("eci-exact", Platform.ECI, 42.0, 42),
    ("autopilot-no-minimum", Platform.AUTOPILOT, 0.4, 1),
    ("aci-per-second", Platform.ACI, 99.01, 100),
    ("none-per-second", Platform.NONE, 5.5, 6),
]


@pytest.mark.parametrize(("platform", "ran", "billed"), [b[1:] for b in BILLING], ids=[b[0] for b in BILLING])
def test_billed_seconds(platform: Platform, ran: float, billed: int) -> None:
    prices = build_prices(platform, TABLE, per_vcpu_second="0.00001", per_gib_second="0.000001")
    cost = estimate_cost(sized(platform, 1000, GIB), ran, prices)
    assert cost.billed_seconds == billed


def test_fargate_minimum_is_shown() -> None:
    size = sized(Platform.FARGATE, 250, GIB // 4)
    cost = estimate_cost(size, 41.3, build_prices(Platform.FARGATE, TABLE))
    assert cost.minimum_applied
    assert render_cost_line(size, cost) == (
        "Billed spec: 0.25 vCPU / 0.5 GiB (CapacityProvisioned 0.25vCPU 0.5GB), "
        "60 s (minimum charge; ran 42 s), estimated cost USD 0.00021"
    )


def test_aci_prices_are_per_decimal_gb() -> None:
    size = sized(Platform.ACI, 1000, 1_500_000_000)
    cost = estimate_cost(size, 100, build_prices(Platform.ACI, TABLE))
    # 100 s x (1 x 0.0000135 + 1.5 GB x 0.0000015)
    assert cost.amount == Decimal("0.001575")
    assert render_cost_line(size, cost).endswith("100 s, estimated cost USD 0.0016")


def test_autopilot_bills_the_adjusted_requests() -> None:
    size = sized(Platform.AUTOPILOT, 200, 2 * GIB)
    cost = estimate_cost(size, 3600, build_prices(Platform.AUTOPILOT, TABLE))
    expected = 3600 * (
        Fraction(308, 1000) * Fraction("0.0000123611111111") + 2 * Fraction("0.00000136736111111")
    )
    assert Fraction(cost.amount or 0) == expected


def test_none_without_prices_says_so() -> None:
    size = sized(Platform.NONE, 1000, GIB)
    assert build_prices(Platform.NONE, TABLE) is None
    cost = estimate_cost(size, 12.5, None)
    assert (cost.amount, cost.currency, cost.billed_seconds) == (None, None, 13)
    assert render_cost_line(size, cost) == (
        "Billed spec: 1 vCPU / 1 GiB (pod requests), 13 s, no estimated cost (no prices configured)"
    )


def test_none_with_configured_prices() -> None:
    prices = build_prices(Platform.NONE, TABLE, per_vcpu_second=0.00001, per_gib_second="0.000002")
    assert prices == Prices(Decimal("0.00001"), Decimal("0.000002"), "USD")
    cost = estimate_cost(sized(Platform.NONE, 2000, 4 * GIB), 100, prices)
    assert cost.amount == Decimal("0.0028")


def test_overrides_replace_table_figures() -> None:
    table = build_prices(Platform.ECI, TABLE)
    assert table is not None and table.currency == "USD"
    cny = build_prices(
        Platform.ECI, TABLE, per_vcpu_second="0.000049", per_gib_second="0.00000613", currency=" CNY "
    )
    assert cny == Prices(Decimal("0.000049"), Decimal("0.00000613"), "CNY")
    only_cpu = build_prices(Platform.FARGATE, TABLE, per_vcpu_second=Decimal("0.00002"))
    assert only_cpu is not None
    assert (only_cpu.per_vcpu_second, only_cpu.per_gib_second) == (
        Decimal("0.00002"),
        Decimal("1.23472222222E-6"),
    )
    assert only_cpu.min_billed_seconds == 60


BAD_OVERRIDES = [
    ("letters", {"per_vcpu_second": "abc"}, 'serverless.prices.per_vcpu_second: "abc" is not a price'),
    (
        "negative",
        {"per_gib_second": "-1"},
        'serverless.prices.per_gib_second: "-1" is not a non-negative price',
    ),
    (
        "infinite",
        {"per_gib_second": "inf"},
        'serverless.prices.per_gib_second: "inf" is not a non-negative price',
    ),
    ("bool", {"per_vcpu_second": True}, 'serverless.prices.per_vcpu_second: "True" is not a price'),
    ("empty-currency", {"currency": " "}, "serverless.prices.currency: must not be empty"),
]


@pytest.mark.parametrize(
    ("overrides", "message"), [b[1:] for b in BAD_OVERRIDES], ids=[b[0] for b in BAD_OVERRIDES]
)
def test_bad_overrides(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_prices(Platform.ECI, TABLE, **overrides)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_none_needs_both_prices() -> None:
    with pytest.raises(ConfigError, match="platform none has no price table; set both"):
        build_prices(Platform.NONE, TABLE, per_vcpu_second="0.00001")


MONEY = [
    ("zero", "0", "0"),
    ("two-significant", "0.00072744", "0.00073"),
    ("tenths", "0.138528", "0.14"),
    ("rounds-to-one", "0.996", "1.00"),
    ("cents", "1.234", "1.23"),
    ("half-up", "12.345", "12.35"),
    ("large", "1234.5", "1234.50"),
]


@pytest.mark.parametrize(("amount", "shown"), [m[1:] for m in MONEY], ids=[m[0] for m in MONEY])
def test_money_format(amount: str, shown: str) -> None:
    size = sized(Platform.ECI, 1000, GIB)
    cost = Cost(ran_seconds=1, billed_seconds=1, amount=Decimal(amount), currency="USD")
    assert render_cost_line(size, cost).endswith(f"estimated cost USD {shown}")


@pytest.mark.parametrize("seconds", [-1.0, float("nan"), float("inf")], ids=["negative", "nan", "infinite"])
def test_bad_durations_are_programming_errors(seconds: float) -> None:
    with pytest.raises(ValueError):
        estimate_cost(sized(Platform.ECI, 1000, GIB), seconds, build_prices(Platform.ECI, TABLE))


def test_increment_rounds_up_to_a_multiple() -> None:
    prices = Prices(Decimal(1), Decimal(0), "USD", increment_seconds=60)
    cost = estimate_cost(sized(Platform.ECI, 1000, GIB), 61, prices)
    assert (cost.billed_seconds, cost.amount) == (120, Decimal(120))


PLATFORMS = st.sampled_from([Platform.ECI, Platform.FARGATE, Platform.AUTOPILOT, Platform.ACI])


@given(PLATFORMS, st.floats(min_value=0, max_value=10**6), st.floats(min_value=0, max_value=10**6))
def test_cost_never_falls_with_time(platform: Platform, a: float, b: float) -> None:
    size = sized(platform, 1000, GB)
    prices = build_prices(platform, TABLE)
    short, long = sorted((a, b))
    first, second = estimate_cost(size, short, prices), estimate_cost(size, long, prices)
    assert first.billed_seconds >= first.ran_seconds >= short
    assert prices is not None and first.billed_seconds >= prices.min_billed_seconds
    assert first.amount is not None and second.amount is not None
    assert 0 <= first.amount <= second.amount
