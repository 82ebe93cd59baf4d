"""The inventory report's document (SPEC section 8), in the form's sections.

Every list element carries a `line` naming it (enterprise, scope, kind, factor), so
a submitted report and its recomputation compare line by line whatever the order.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class Period(BaseModel):
    first_year: int
    years: int
    start: datetime
    end: datetime
    timezone: str


class FactorUsed(BaseModel):
    line: str
    key: str
    unit: str
    valid_from: datetime
    published_at: datetime | None
    kgco2e_per_unit: float
    source: str
    uncertainty_pct: float | None


class ToeUsed(BaseModel):
    line: str
    kind: str
    unit: str
    toe_per_unit: float
    source: str


class SourceLine(BaseModel):
    """Activity data and emissions of one source: a scope, meter kind and factor."""

    line: str
    scope: int
    kind: str
    factor_key: str
    unit: str
    consumption: float
    toe: float
    co2e_kg: float
    avoided_co2e_kg: float
    activity_uncertainty_pct: float | None
    factor_uncertainty_pct: float
    uncertainty_pct: float


class MeterLine(BaseModel):
    """One meter's data and completeness; measured + estimated + missing = expected."""

    line: str
    meter_id: str
    enterprise_id: str
    kind: str
    unit: str
    accuracy_pct: float
    accuracy_is_default: bool
    consumption: float
    co2e_kg: float
    expected_hours: int
    measured_hours: int
    estimated_hours: int
    missing_hours: int
    completeness: float | None


class Totals(BaseModel):
    co2e_kg: float
    tco2e: float
    by_scope_co2e_kg: dict[str, float]
    avoided_co2e_kg: float
    toe: float
    uncertainty_pct: float | None
    expected_hours: int
    measured_hours: int
    estimated_hours: int
    missing_hours: int
    completeness: float | None


class ProductionLine(BaseModel):
    line: str
    kind: str
    unit: str
    quantity: float


class Replacement(BaseModel):
    line: str
    meter_id: str
    replaced_at: datetime
    old_final_value: float
    new_start_value: float
    note: str


class QaQc(BaseModel):
    """What was kept out or corrected, and what was restated, in the period."""

    quarantined_by_reason: dict[str, int]
    conflicts: int
    events_by_kind: dict[str, int]
    replacements: list[Replacement]
    restated_factor_values: list[str]
    restated_meter_hours: int


class EnterpriseSection(BaseModel):
    line: str
    id: str
    name: str
    industry: str
    sources: list[SourceLine]
    meters: list[MeterLine]
    production: list[ProductionLine]
    totals: Totals
    qaqc: QaQc


class Inventory(BaseModel):
    site: str
    site_name: str
    enterprise: str | None
    period: Period
    generated_at: datetime
    method: str
    enterprises: list[EnterpriseSection]
    sources: list[SourceLine]
    totals: Totals
    factors: list[FactorUsed]
    toe_factors: list[ToeUsed]
    qaqc: QaQc
    notes: list[str]
