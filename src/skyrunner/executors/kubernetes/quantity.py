"""Kubernetes resource quantities: parse them to integers, format integers back.

Pure: no I/O. This module owns the quantity grammar of ``k8s.io/apimachinery``'s
``resource.Quantity`` as far as CPU, memory and ephemeral storage need it::

    <quantity>        ::= <signedNumber><suffix>
    <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI>
    <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei
    <decimalSI>       ::= n | u | m | "" | k | M | G | T | P | E
    <decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>
    <number>          ::= <digits> | <digits>.<digits> | <digits>. | .<digits>

Inside skyrunner a CPU amount is an ``int`` of millicores and a memory or storage amount an
``int`` of bytes. Parsing rounds up to those units, like ``Quantity.MilliValue()`` and
``Quantity.Value()`` do (``"0.5m"`` is 1 millicore, ``"0.5"`` bytes is 1 byte). Negative
amounts and amounts above ``2**63 - 1`` units are refused, since no request or limit can be
either. It does not own what the amounts mean for a pod: that is ``sizing.py``.

Errors are :class:`~skyrunner.errors.ConfigError` with one line that names the bad value;
callers pass ``field`` (``"config.toml: runners[0].kubernetes.cpu_limit"``) to prefix it.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction
from typing import Final

from skyrunner.errors import ConfigError, cut

__all__ = [
    "format_cpu",
    "format_memory",
    "parse_cpu",
    "parse_memory",
    "parse_quantity",
]

MAX_UNITS: Final = 2**63 - 1
"""The largest millicore or byte count accepted (``resource.Quantity`` is an int64 inside)."""

_MAX_EXPONENT: Final = 64
_MAX_TEXT: Final = 64

_NUMBER = re.compile(r"([+-]?)(\d+\.?\d*|\.\d+)(.*)", re.DOTALL)
_EXPONENT = re.compile(r"[eE]([+-]?\d+)")

_BINARY: Final[dict[str, int]] = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL: Final[dict[str, int]] = {
    "n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18,
}  # fmt: skip

_FORMAT_BINARY: Final = (("Ei", 1024**6), ("Pi", 1024**5), ("Ti", 1024**4), ("Gi", 1024**3),
                         ("Mi", 1024**2), ("Ki", 1024))  # fmt: skip
_FORMAT_DECIMAL: Final = (("E", 10**18), ("P", 10**15), ("T", 10**12), ("G", 10**9),
                          ("M", 10**6), ("k", 10**3))  # fmt: skip


def parse_quantity(value: str | int | float, *, kind: str = "", field: str | None = None) -> Fraction:
    """Parse a Kubernetes quantity to its exact value (``"1500m"`` -> ``Fraction(3, 2)``).

    ``kind`` names the expected quantity in the error ("CPU", "memory"); negative values are
    allowed here and refused by :func:`parse_cpu` and :func:`parse_memory`.

    Raises:
        ConfigError: ``value`` is not a quantity.
    """
    text = _as_text(value, kind=kind, field=field)
    match = _NUMBER.fullmatch(text)
    if match is None:
        raise _not_a_quantity(value, kind, field)
    sign, digits, suffix = match.groups()
    scaled = Fraction(Decimal(digits)) * _suffix_factor(suffix, value, kind, field)
    return -scaled if sign == "-" else scaled


def parse_cpu(value: str | int | float, field: str | None = None) -> int:
    """Parse a CPU quantity to millicores, rounding up (``"3750m"`` -> 3750, ``"2"`` -> 2000).

    Raises:
        ConfigError: ``value`` is not a CPU quantity, is negative or is too large.
    """
    exact = parse_quantity(value, kind="CPU", field=field)
    return _to_units(exact * 1000, value, "CPU", field)


def parse_memory(value: str | int | float, field: str | None = None) -> int:
    """Parse a memory or storage quantity to bytes, rounding up (``"7680Mi"`` -> 8053063680).

    Raises:
        ConfigError: ``value`` is not a memory quantity, is negative or is too large.
    """
    exact = parse_quantity(value, kind="memory", field=field)
    return _to_units(exact, value, "memory", field)


def format_cpu(millicores: int) -> str:
    """Render millicores as Kubernetes writes them: whole cores plain (``"4"``), else ``"3750m"``."""
    if millicores < 0:
        raise ValueError(f"negative millicores: {millicores}")
    if millicores % 1000 == 0:
        return str(millicores // 1000)
    return f"{millicores}m"


def format_memory(size: int) -> str:
    """Render bytes with the largest exact suffix, binary first (``"7680Mi"``, ``"8Gi"``, ``"1G"``)."""
    if size < 0:
        raise ValueError(f"negative byte count: {size}")
    if size == 0:
        return "0"
    for suffixes in (_FORMAT_BINARY, _FORMAT_DECIMAL):
        for suffix, factor in suffixes:
            if size % factor == 0:
                return f"{size // factor}{suffix}"
    return str(size)


def _as_text(value: str | int | float, *, kind: str, field: str | None) -> str:
    if isinstance(value, bool):  # bool is an int; `cpu_limit = true` is a mistake, not 1
        raise _not_a_quantity(value, kind, field)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _not_a_quantity(value, kind, field)
        return repr(value)
    if not isinstance(value, str):
        raise _not_a_quantity(value, kind, field)
    text = value.strip()
    if not text or len(text) > _MAX_TEXT:
        raise _not_a_quantity(value, kind, field)
    return text


def _suffix_factor(suffix: str, value: object, kind: str, field: str | None) -> Fraction:
    if suffix in _BINARY:
        return Fraction(1024 ** _BINARY[suffix])
    if suffix in _DECIMAL:
        return Fraction(10) ** _DECIMAL[suffix]
    exponent = _EXPONENT.fullmatch(suffix)
    if exponent is None:
        raise _not_a_quantity(value, kind, field)
    power = int(exponent.group(1))
    if abs(power) > _MAX_EXPONENT:
        raise _not_a_quantity(value, kind, field)
    return Fraction(10) ** power


def _to_units(exact: Fraction, value: object, kind: str, field: str | None) -> int:
    if exact < 0:
        raise ConfigError(f"{_prefix(field)}{_quote(value)} is negative; a {kind} amount cannot be")
    units = math.ceil(exact)
    if units > MAX_UNITS:
        raise ConfigError(f"{_prefix(field)}{_quote(value)} is too large for a {kind} quantity")
    return units


def _not_a_quantity(value: object, kind: str, field: str | None) -> ConfigError:
    what = f"a {kind} quantity" if kind else "a quantity"
    return ConfigError(f"{_prefix(field)}{_quote(value)} is not {what}")


def _prefix(field: str | None) -> str:
    return f"{field}: " if field else ""


def _quote(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return '"' + cut(text, 40).replace('"', '\\"') + '"'
