"""Obligation position and product intensity: pure arithmetic over kind totals.

A facility is on the national list when it uses >= 1,000 TOE or emits >= 3,000
tCO2e a year (Decree 06/2022/ND-CP). Emissions here are scope 1 + scope 2: what
the facility burns and the grid electricity it buys; scope 3 (water, wastewater)
is reported in the inventory but counts toward neither threshold nor intensity.
The projection to year end is the year-to-date run rate: ytd / elapsed share of
the year, so a steady facility's projection is its year.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from core.meter_kinds import CANONICAL_UNITS, PRODUCTION_KINDS
from reports.inventory import toe_of
from reports.model import ToeUsed

TOE_THRESHOLD = 1000.0
TCO2E_THRESHOLD = 3000.0
COUNTED_SCOPES = (1, 2)


class KindTotal(BaseModel):
    kind: str
    scope: int
    consumption: float  # canonical unit of the kind
    co2e_kg: float


class Position(BaseModel):
    enterprise_id: str
    year: int
    as_of: datetime
    elapsed_share: float
    ytd_toe: float
    projected_toe: float
    ytd_tco2e: float
    projected_tco2e: float
    toe_threshold: float = TOE_THRESHOLD
    tco2e_threshold: float = TCO2E_THRESHOLD
    projected_over_toe: bool
    projected_over_tco2e: bool


def elapsed_share(start: datetime, end: datetime, now: datetime) -> float:
    """The share of [start, end) that lies before now, in [0, 1]."""
    span = (end - start).total_seconds()
    return min(max((now - start).total_seconds() / span, 0.0), 1.0)


def projected(ytd: float, share: float) -> float:
    """Year-end value at the year-to-date run rate; 0 before the year starts."""
    return ytd / share if share > 0 else 0.0


def toe_total(totals: Iterable[KindTotal], toe: dict[str, ToeUsed]) -> float:
    return math.fsum(toe_of(t.kind, t.consumption, toe) for t in totals)


def counted_tco2e(totals: Iterable[KindTotal]) -> float:
    return math.fsum(t.co2e_kg for t in totals if t.scope in COUNTED_SCOPES) / 1000


def position(
    enterprise_id: str,
    year: int,
    share: float,
    now: datetime,
    totals: list[KindTotal],
    toe: dict[str, ToeUsed],
) -> Position:
    ytd_toe, ytd_t = toe_total(totals, toe), counted_tco2e(totals)
    proj_toe, proj_t = projected(ytd_toe, share), projected(ytd_t, share)
    return Position(
        enterprise_id=enterprise_id,
        year=year,
        as_of=now,
        elapsed_share=share,
        ytd_toe=ytd_toe,
        projected_toe=proj_toe,
        ytd_tco2e=ytd_t,
        projected_tco2e=proj_t,
        projected_over_toe=proj_toe >= TOE_THRESHOLD,
        projected_over_tco2e=proj_t >= TCO2E_THRESHOLD,
    )


class IntensityLine(BaseModel):
    line: str
    month: str
    production: float
    tco2e: float
    intensity: float | None  # tCO2e per unit of product; None without production


class Intensity(BaseModel):
    enterprise_id: str
    year: int
    product_kind: str | None
    unit: str | None
    months: list[IntensityLine]
    production: float
    tco2e: float
    intensity: float | None
    elapsed_share: float
    projected_production: float
    projected_tco2e: float
    allocated_tco2e_per_unit: float | None
    allocation_source: str | None
    projected_allowances_tco2e: float | None
    # allowances - emissions at year end: > 0 a surplus, < 0 a deficit.
    projected_surplus_tco2e: float | None


def _ratio(tco2e: float, production: float) -> float | None:
    return tco2e / production if production > 0 else None


def product_kind(kinds: Iterable[str], allocation_unit: str | None) -> str | None:
    """The production kind an intensity is measured against: the allocation's unit
    decides; otherwise tonnes before pieces."""
    present = sorted(k for k in set(kinds) if k in PRODUCTION_KINDS)
    for kind in present:
        if allocation_unit is not None and CANONICAL_UNITS[kind] == allocation_unit:
            return kind
    return present[0] if present else None


def intensity(
    enterprise_id: str,
    year: int,
    share: float,
    monthly: dict[str, list[KindTotal]],
    allocation: dict[str, Any] | None,
) -> Intensity:
    """Monthly and yearly intensity from kind totals per local month ('YYYY-MM')."""
    unit = str(allocation["unit"]) if allocation else None
    kind = product_kind((t.kind for ts in monthly.values() for t in ts), unit)
    months = []
    for month, totals in sorted(monthly.items()):
        made = math.fsum(t.consumption for t in totals if t.kind == kind)
        emitted = counted_tco2e(totals)
        months.append(
            IntensityLine(
                line=month,
                month=month,
                production=made,
                tco2e=emitted,
                intensity=_ratio(emitted, made),
            )
        )
    production = math.fsum(m.production for m in months)
    tco2e = math.fsum(m.tco2e for m in months)
    proj_production, proj_tco2e = projected(production, share), projected(tco2e, share)
    allocated = float(allocation["tco2e_per_unit"]) if allocation else None
    allowances = allocated * proj_production if allocated is not None else None
    return Intensity(
        enterprise_id=enterprise_id,
        year=year,
        product_kind=kind,
        unit=CANONICAL_UNITS[kind] if kind else unit,
        months=months,
        production=production,
        tco2e=tco2e,
        intensity=_ratio(tco2e, production),
        elapsed_share=share,
        projected_production=proj_production,
        projected_tco2e=proj_tco2e,
        allocated_tco2e_per_unit=allocated,
        allocation_source=str(allocation["source"]) if allocation else None,
        projected_allowances_tco2e=allowances,
        projected_surplus_tco2e=allowances - proj_tco2e if allowances is not None else None,
    )
