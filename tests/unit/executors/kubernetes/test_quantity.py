"""Kubernetes quantities: every suffix form, rounding up, errors that name the value."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skyrunner.errors import ConfigError
from skyrunner.executors.kubernetes.quantity import (
    MAX_UNITS,
    format_cpu,
    format_memory,
    parse_cpu,
    parse_memory,
    parse_quantity,
)

KI, MI, GI = 1024, 1024**2, 1024**3

CPU_CASES = [
    ("3750m", 3750, "millicores"),
    ("4", 4000, "whole-cores"),
    ("0.5", 500, "decimal-cores"),
    ("1.", 1000, "trailing-dot"),
    (".25", 250, "leading-dot"),
    ("+2", 2000, "plus-sign"),
    ("0", 0, "zero"),
    ("0.1m", 1, "sub-millicore-rounds-up"),
    ("100u", 1, "micro-rounds-up"),
    ("2000000n", 2, "nano"),
    ("1e3", 1_000_000, "exponent"),
    ("1E3", 1_000_000, "upper-exponent"),
    ("15e-1", 1500, "negative-exponent"),
    ("2k", 2_000_000, "kilo"),
    ("1Ki", 1_024_000, "binary-suffix"),
    (" 2 ", 2000, "surrounding-space"),
    (3, 3000, "toml-int"),
    (0.25, 250, "toml-float"),
]

MEMORY_CASES = [
    ("7680Mi", 7680 * MI, "mebibytes"),
    ("8Gi", 8 * GI, "gibibytes"),
    ("1Ki", KI, "kibibyte"),
    ("1.5Gi", 3 * GI // 2, "fractional-binary"),
    ("1Ti", 1024**4, "tebibyte"),
    ("1Pi", 1024**5, "pebibyte"),
    ("1Ei", 1024**6, "exbibyte"),
    ("1k", 1000, "kilo"),
    ("129M", 129_000_000, "mega"),
    ("1G", 10**9, "giga"),
    ("2T", 2 * 10**12, "tera"),
    ("1P", 10**15, "peta"),
    ("1E", 10**18, "exa"),
    ("129e6", 129_000_000, "exponent"),
    ("128974848", 128_974_848, "plain-bytes"),
    ("0.5", 1, "half-byte-rounds-up"),
    ("1m", 1, "milli-byte-rounds-up"),
    ("12e-1", 2, "exponent-rounds-up"),
    (512, 512, "toml-int"),
]


@pytest.mark.parametrize(("text", "millicores"), [c[:2] for c in CPU_CASES], ids=[c[2] for c in CPU_CASES])
def test_parse_cpu(text: str | int | float, millicores: int) -> None:
    assert parse_cpu(text) == millicores


@pytest.mark.parametrize(("text", "size"), [c[:2] for c in MEMORY_CASES], ids=[c[2] for c in MEMORY_CASES])
def test_parse_memory(text: str | int, size: int) -> None:
    assert parse_memory(text) == size


def test_parse_quantity_is_exact_and_keeps_the_sign() -> None:
    assert parse_quantity("1500m") == Fraction(3, 2)
    assert parse_quantity("-1Ki") == -1024


BAD = [
    ("2x", "unknown-suffix"),
    ("", "empty"),
    ("   ", "blank"),
    ("abc", "letters"),
    ("1.5.5", "two-dots"),
    ("1ki", "lower-binary"),
    ("Mi", "no-number"),
    ("--1", "double-sign"),
    ("1 Mi", "inner-space"),
    ("1e", "bare-e"),
    ("1e1000", "huge-exponent"),
    ("1" * 65, "too-long"),
    (True, "bool"),
    (float("nan"), "nan"),
    (float("inf"), "infinity"),
]


@pytest.mark.parametrize("value", [b[0] for b in BAD], ids=[b[1] for b in BAD])
def test_bad_quantities_are_config_errors(value: str | float) -> None:
    with pytest.raises(ConfigError, match="is not a CPU quantity"):
        parse_cpu(value)
    with pytest.raises(ConfigError, match="is not a memory quantity"):
        parse_memory(value)


def test_error_names_field_and_value_in_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_cpu("2x", field="config.toml: runners[1].kubernetes.cpu_limit")
    assert str(info.value) == 'config.toml: runners[1].kubernetes.cpu_limit: "2x" is not a CPU quantity'


def test_values_of_other_types_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r'^"\[1\]" is not a CPU quantity$'):
        parse_cpu([1])  # type: ignore[arg-type]


def test_error_without_field_names_the_value() -> None:
    with pytest.raises(ConfigError) as info:
        parse_memory("12Q")
    assert str(info.value) == '"12Q" is not a memory quantity'


def test_negative_amounts_are_refused() -> None:
    with pytest.raises(ConfigError) as info:
        parse_memory("-1Gi", field="memory_request")
    assert str(info.value) == 'memory_request: "-1Gi" is negative; a memory amount cannot be'
    with pytest.raises(ConfigError, match="negative"):
        parse_cpu(-1)


def test_amounts_beyond_int64_are_refused() -> None:
    with pytest.raises(ConfigError, match="too large for a memory quantity"):
        parse_memory("8Ei")
    with pytest.raises(ConfigError, match="too large for a CPU quantity"):
        parse_cpu("9223372036854776")  # cores: x1000 millicores overflows
    assert parse_memory(str(MAX_UNITS)) == MAX_UNITS


def test_long_values_are_cut_in_messages() -> None:
    with pytest.raises(ConfigError) as info:
        parse_cpu("x" * 60)
    assert len(str(info.value)) < 80


@pytest.mark.parametrize(
    ("millicores", "text"),
    [(3750, "3750m"), (4000, "4"), (0, "0"), (250, "250m"), (1, "1m"), (64000, "64")],
    ids=["millicores", "whole", "zero", "quarter", "one-milli", "large"],
)
def test_format_cpu(millicores: int, text: str) -> None:
    assert format_cpu(millicores) == text


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (7680 * MI, "7680Mi"),
        (8 * GI, "8Gi"),
        (512 * MI, "512Mi"),
        (10**9, "1G"),
        (1000, "1k"),
        (1024, "1Ki"),
        (1536, "1536"),
        (1023, "1023"),
        (0, "0"),
        (1024**6 * 3, "3Ei"),
    ],
    ids=[
        "mebi",
        "gibi",
        "half-gibi",
        "decimal-giga",
        "decimal-kilo",
        "kibi",
        "neither",
        "odd",
        "zero",
        "exbi",
    ],
)
def test_format_memory(size: int, text: str) -> None:
    assert format_memory(size) == text


def test_format_refuses_negative_amounts() -> None:
    with pytest.raises(ValueError):
        format_cpu(-1)
    with pytest.raises(ValueError):
        format_memory(-1)


@given(st.integers(min_value=0, max_value=MAX_UNITS // 1000))
def test_cpu_round_trips(millicores: int) -> None:
    assert parse_cpu(format_cpu(millicores)) == millicores


@given(st.integers(min_value=0, max_value=MAX_UNITS))
def test_memory_round_trips(size: int) -> None:
    assert parse_memory(format_memory(size)) == size


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["", "m", "k", "Ki", "Mi", "Gi", "M", "G"]))
def test_parse_never_rounds_down(number: int, suffix: str) -> None:
    exact = parse_quantity(f"{number}{suffix}")
    assert parse_memory(f"{number}{suffix}") >= exact
    assert parse_memory(f"{number}{suffix}") - exact < 1
    assert parse_cpu(f"{number}{suffix}") >= exact * 1000
