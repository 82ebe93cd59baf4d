"""Meter kinds and what follows from a kind: its canonical unit, its reporting scope
and whether it measures output (SPEC sections 4, 5 and 8).

The park file, the engine's rollups, the reports, the API and the simulator all ask
these questions of a kind; the answers live here so they cannot drift apart. Units
themselves (dimensions, conversion) are `core.units`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from core.units import KNOWN_UNITS, convert, dimension


class MeterKind(StrEnum):
    electricity = "electricity"
    water = "water"
    wastewater = "wastewater"
    natural_gas = "natural_gas"
    diesel = "diesel"
    lpg = "lpg"
    solar = "solar"
    # Production output (SPEC section 8): tonnes or pieces, priced with a zero factor.
    production = "production"
    production_pcs = "production_pcs"


# Kinds that measure output, not energy or water: no CO2e, no TOE, no coverage.
PRODUCTION_KINDS: Final = frozenset({MeterKind.production, MeterKind.production_pcs})

# Totals add meters of one kind together, so they are kept in one unit per kind
# (the unit the sample factors use), whatever unit each meter registers in.
CANONICAL_UNITS: Final[dict[str, str]] = {
    MeterKind.electricity: "kWh",
    MeterKind.solar: "kWh",
    MeterKind.water: "m3",
    MeterKind.wastewater: "m3",
    MeterKind.natural_gas: "m3",
    MeterKind.diesel: "L",
    MeterKind.lpg: "kg",
    MeterKind.production: "t",
    MeterKind.production_pcs: "pcs",
}

SCOPES: Final[dict[str, int]] = {
    MeterKind.natural_gas: 1,
    MeterKind.diesel: 1,
    MeterKind.lpg: 1,
    MeterKind.electricity: 2,
    MeterKind.solar: 2,
    MeterKind.water: 3,
    MeterKind.wastewater: 3,
    # Production output carries no CO2e and belongs to no scope.
    MeterKind.production: 0,
    MeterKind.production_pcs: 0,
}


def scope_of(kind: str) -> int:
    """GHG Protocol scope a meter kind reports in.

    Fuels burnt on site are scope 1, grid electricity scope 2 (location-based), water
    and wastewater scope 3. Solar is listed under scope 2 because its generation is
    reported as avoided scope 2 emissions (generation x grid factor); its own CO2e is 0.
    """
    try:
        return SCOPES[kind]
    except KeyError:
        raise ValueError(f"unknown meter kind {kind!r}") from None


def canonical_scales() -> list[tuple[str, str, float]]:
    """(kind, unit, scale) for every unit a meter of that kind may register in:
    consumption x scale is the kind's canonical quantity."""
    return [
        (kind, unit, convert(1.0, unit, canonical))
        for kind, canonical in CANONICAL_UNITS.items()
        for unit in KNOWN_UNITS
        if dimension(unit) == dimension(canonical)
    ]
