"""Units the meters and factors may use, and conversion between them.

Each unit belongs to one dimension and has a scale to that dimension's base unit
(kWh, m3, kg). A reading converts to its meter's unit only within a dimension.
"""

from __future__ import annotations

from typing import Final

_UNITS: Final[dict[str, tuple[str, float]]] = {
    "Wh": ("energy", 0.001),
    "kWh": ("energy", 1.0),
    "MWh": ("energy", 1000.0),
    "L": ("volume", 0.001),
    "m3": ("volume", 1.0),
    "kg": ("mass", 1.0),
    "t": ("mass", 1000.0),
}

KNOWN_UNITS: Final[tuple[str, ...]] = tuple(_UNITS)


class UnitError(ValueError):
    """The unit is unknown or does not convert to the target unit."""


def dimension(unit: str) -> str:
    try:
        return _UNITS[unit][0]
    except KeyError:
        raise UnitError(f"{unit!r} is not a known unit") from None


def conversion_factor(from_unit: str, to_unit: str) -> float:
    """Multiplier that turns a quantity in `from_unit` into `to_unit`."""
    if dimension(from_unit) != dimension(to_unit):
        raise UnitError(f"{from_unit!r} does not convert to {to_unit!r}")
    return _UNITS[from_unit][1] / _UNITS[to_unit][1]
