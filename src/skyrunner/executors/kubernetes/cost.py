"""Cost per job: billed seconds and the estimated price of a sized pod.

Pure: no I/O. This module owns the billing arithmetic: which prices apply (:func:`build_prices`:
the table's, with config overrides), how a pod's running time becomes billed seconds, what the
spec costs for them (:func:`estimate_cost`), and the trace line that says so
(:func:`render_cost_line`). It does not measure the time (the executor passes the seconds from
the start of the image pull to the pod's end, as the platforms count them) nor size the pod
(``sizing.py``).

Billing rules (``shared/data/serverless-k8s.md``): every platform bills per second, rounded up;
Fargate bills at least 60 s (confidence medium; the Fargate price page as read did not show it);
ECI, Autopilot and ACI have no documented minimum. Prices are per vCPU-second and per
GiB-second (ACI: per decimal GB-second) for the pod's billed spec; storage, cluster fees, spot
discounts and ECI's China-only rounding of bills under 0.01 CNY are not counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction
from typing import Final

from skyrunner.errors import ConfigError, cut
from skyrunner.executors.kubernetes.sizing import PodSize
from skyrunner.executors.kubernetes.spec_table import GIB, Prices, SpecTable
from skyrunner.platforms import Platform

__all__ = [
    "Cost",
    "Prices",
    "build_prices",
    "estimate_cost",
    "render_cost_line",
]

_FIELD: Final = "serverless.prices"


@dataclass(frozen=True, slots=True)
class Cost:
    """The billed seconds of one job and what they cost; ``amount`` is None without prices."""

    ran_seconds: int
    """Seconds the pod ran, rounded up."""
    billed_seconds: int
    """Seconds billed: ``ran_seconds`` raised to the minimum and the increment."""
    amount: Decimal | None
    currency: str | None

    @property
    def minimum_applied(self) -> bool:
        """Whether the platform's minimum charge made the bill longer than the run."""
        return self.billed_seconds > self.ran_seconds


def build_prices(
    platform: Platform,
    table: SpecTable,
    *,
    per_vcpu_second: Decimal | str | float | None = None,
    per_gib_second: Decimal | str | float | None = None,
    currency: str | None = None,
) -> Prices | None:
    """Return the prices for ``platform``: the table's, with any override from config.

    Platform ``none`` has no table prices: it has prices only when config sets both per-second
    prices (currency defaults to USD), and None when it sets neither.

    Raises:
        ConfigError: an override is not a non-negative number, or ``none`` gets only one price.
    """
    vcpu = _override(per_vcpu_second, "per_vcpu_second")
    gib = _override(per_gib_second, "per_gib_second")
    if currency is not None and not currency.strip():
        raise ConfigError(f"{_FIELD}.currency: must not be empty")
    base = table.prices_for(platform)
    if base is None:
        if vcpu is None and gib is None:
            return None
        if vcpu is None or gib is None:
            raise ConfigError(
                f"{_FIELD}: platform none has no price table; set both per_vcpu_second and per_gib_second"
            )
        base = Prices(per_vcpu_second=vcpu, per_gib_second=gib, currency="USD", memory_unit=GIB)
    return replace(
        base,
        per_vcpu_second=base.per_vcpu_second if vcpu is None else vcpu,
        per_gib_second=base.per_gib_second if gib is None else gib,
        currency=base.currency if currency is None else currency.strip(),
    )


def estimate_cost(size: PodSize, billed_seconds: float, prices: Prices | None) -> Cost:
    """Estimate what ``size`` costs for ``billed_seconds`` of running time.

    ``billed_seconds`` is the time the platform counts (from the image pull to the pod's end);
    it is rounded up to the billing increment and raised to the platform's minimum.
    """
    if not math.isfinite(billed_seconds) or billed_seconds < 0:
        raise ValueError(f"billed seconds must be a finite non-negative number: {billed_seconds}")
    ran = math.ceil(billed_seconds)
    if prices is None:
        return Cost(ran_seconds=ran, billed_seconds=ran, amount=None, currency=None)
    step = prices.increment_seconds
    billed = max(prices.min_billed_seconds, math.ceil(ran / step) * step)
    per_second = Fraction(size.cpu, 1000) * Fraction(prices.per_vcpu_second) + Fraction(
        size.memory, prices.memory_unit
    ) * Fraction(prices.per_gib_second)
    exact = per_second * billed
    amount = Decimal(exact.numerator) / Decimal(exact.denominator)
    return Cost(ran_seconds=ran, billed_seconds=billed, amount=amount, currency=prices.currency)


def render_cost_line(size: PodSize, cost: Cost) -> str:
    """Render the trace line, e.g. ``Billed spec: 2 vCPU / 2 GiB (eci-use-specs 2-2Gi), 42 s,
    estimated cost USD 0.00073``.

    Amounts under 1 keep two significant digits, larger ones two decimals.
    """
    seconds = f"{cost.billed_seconds} s"
    if cost.minimum_applied:
        seconds += f" (minimum charge; ran {cost.ran_seconds} s)"
    if cost.amount is None or cost.currency is None:
        price = "no estimated cost (no prices configured)"
    else:
        price = f"estimated cost {cost.currency} {_money(cost.amount)}"
    return f"Billed spec: {size.label}, {seconds}, {price}"


def _money(amount: Decimal) -> str:
    if amount == 0:
        return "0"
    if amount >= 1:
        return f"{amount.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):f}"
    # two significant digits: the first is at 10**adjusted()
    quantum = Decimal(1).scaleb(amount.adjusted() - 1)
    rounded = amount.quantize(quantum, rounding=ROUND_HALF_UP)
    return f"{rounded:f}"


def _override(value: Decimal | str | float | None, name: str) -> Decimal | None:
    if value is None:
        return None
    shown = f'"{cut(str(value), 40)}"'
    if isinstance(value, bool):
        raise ConfigError(f"{_FIELD}.{name}: {shown} is not a price")
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ConfigError(f"{_FIELD}.{name}: {shown} is not a price") from exc
    if not price.is_finite() or price < 0:
        raise ConfigError(f"{_FIELD}.{name}: {shown} is not a non-negative price")
    return price
