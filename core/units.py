"""Units the meters and factors may use, and conversion between them.

Each unit belongs to one dimension and has a scale to that dimension's base unit
(kWh, m3, kg). A reading converts to its meter's unit only within a dimension.
"""

from __future__ import annotations

from typing import Final

# Scales are exact integers in milli-units, so a conversion is one multiplication or
# division by an exact integer and is correctly rounded (9 Wh is 0.009 kWh, not
# 0.009000000000000001).
_UNITS: Final[dict[str, tuple[str, int]]] = {
    "Wh": ("energy", 1),
    "kWh": ("energy", 1000),
    "MWh": ("energy", 1_000_000),
    "L": ("volume", 1),
    "m3": ("volume", 1000),
    "kg": ("mass", 1000),
    "t": ("mass", 1_000_000),
    "pcs": ("count", 1000),
}

KNOWN_UNITS: Final[tuple[str, ...]] = tuple(_UNITS)


class UnitError(ValueError):
    """The unit is unknown or does not convert to the target unit."""


def dimension(unit: str) -> str:
    try:
        return _UNITS[unit][0]
    except KeyError:
        raise UnitError(f"{unit!r} is not a known unit") from None


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """`value` in `from_unit` expressed in `to_unit`."""
    if dimension(from_unit) != dimension(to_unit):
        raise UnitError(f"{from_unit!r} does not convert to {to_unit!r}")
    source, target = _UNITS[from_unit][1], _UNITS[to_unit][1]
    if source >= target:
        return value * (source // target)
    return value / (target // source)
