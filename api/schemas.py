"""Response models: the HTTP contract (SPEC section 6) as OpenAPI schemas.

Timestamps are UTC and serialise with a `Z`. Numbers are the stored float8 values,
unrounded, so an API figure equals the engine's table to the last bit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class ErrorOut(BaseModel):
    detail: str = Field(description="What went wrong, in one sentence.")


class CoverageOut(BaseModel):
    """How much of the period the figures stand on, in meter-hours of complete hours."""

    # Read from core.emissions.coverage.Coverage, shares included (its properties).
    model_config = ConfigDict(from_attributes=True)

    expected_meter_hours: int = Field(
        description="Hours each counted (active, main) meter was commissioned for."
    )
    measured_share: float | None = Field(description="Meter-hours with readings on both sides.")
    estimated_share: float | None = Field(description="Meter-hours interpolated over a gap.")
    missing_share: float | None = Field(
        description="Meter-hours with no data yet: not in the figures (null: nothing expected)."
    )


class KindFigure(BaseModel):
    consumption: float
    unit: str = Field(description="The kind's canonical unit (kWh, m3, L, kg).")
    co2e_kg: float


class HourlyItem(BaseModel):
    hour: datetime = Field(description="Start of the UTC hour.")
    co2e_kg: float
    estimated: bool = Field(description="Some meter-hour of it spans a data gap.")
    by_kind: dict[str, KindFigure]


class HourlyOut(BaseModel):
    site: str
    enterprise: str | None = None
    meter: str | None = None
    items: list[HourlyItem]


class PeriodTotal(BaseModel):
    period: str = Field(description="Local date (YYYY-MM-DD) or month (YYYY-MM) at the site.")
    start: datetime
    end: datetime
    co2e_kg: float
    avoided_co2e_kg: float = Field(description="Solar generation x grid factor.")
    by_scope: dict[str, float] = Field(description='CO2e per scope: keys "1", "2", "3".')
    estimated: bool
    hours: int = Field(description="Hours with attributed consumption.")
    coverage: CoverageOut


class TotalsOut(BaseModel):
    site: str
    enterprise: str | None = None
    timezone: str
    period: Literal["day", "month"]
    items: list[PeriodTotal]


class WindowOut(BaseModel):
    # core.reporting.WindowStatus as it is, ratio and coverage included.
    model_config = ConfigDict(from_attributes=True)

    window: str
    start: datetime
    end: datetime
    actual_tco2e: float
    budget_tco2e: float
    ratio: float | None = Field(description="actual / budget; null when the budget is 0.")
    coverage: CoverageOut


class ForecastOut(BaseModel):
    # core.reporting.Forecast as it is, ratio and coverages included.
    model_config = ConfigDict(from_attributes=True)

    year: int
    ytd_actual_tco2e: float
    run_rate_tco2e_per_day: float = Field(
        description="Trailing 30 days of complete hours, scaled from the covered meter-hours "
        "to all expected ones (year to date when those 30 days have no data)."
    )
    forecast_tco2e: float = Field(
        description="Year to date + the run rate over the year-to-date gaps and the rest "
        "of the year."
    )
    gap_fill_tco2e: float = Field(
        description="The part of the forecast that stands in for year-to-date meter-hours "
        "with no data."
    )
    target_tco2e: float
    ratio: float | None = Field(description="forecast / target; null when the target is 0.")
    ytd_coverage: CoverageOut
    run_rate_coverage: CoverageOut


class RoadmapStatusOut(BaseModel):
    site: str
    timezone: str
    now: datetime
    today: WindowOut
    month_to_date: WindowOut
    year_to_date: WindowOut
    forecast: ForecastOut


class TrajectoryPoint(BaseModel):
    year: int
    target_tco2e: float
    actual_tco2e: float | None = Field(description="Calendar year at the site; null: no data.")


class TrajectoryOut(BaseModel):
    site: str
    timezone: str
    baseline_year: int
    baseline_tco2e: float
    milestones: list[tuple[int, float]] = Field(description="(year, reduction %).")
    points: list[TrajectoryPoint]


class FactorUsed(BaseModel):
    key: str
    valid_from: datetime
    kgco2e_per_unit: float
    unit: str
    source: str


class InventoryLine(BaseModel):
    month: str = Field(description="YYYY-MM at the site.")
    scope: int
    kind: str
    consumption: float
    unit: str
    co2e_kg: float
    avoided_co2e_kg: float
    meter_hours: int
    expected_meter_hours: int
    completeness: float | None = Field(
        description="Meter-hours measured (not estimated) / meter-hours expected."
    )
    estimated_share: float | None = Field(description="Estimated meter-hours / meter-hours.")
    factors: list[FactorUsed]


class InventoryOut(BaseModel):
    site: str
    enterprise: str | None = None
    year: int
    timezone: str
    total_co2e_kg: float
    total_avoided_co2e_kg: float
    by_scope: dict[str, float]
    lines: list[InventoryLine]


class DataQuality(BaseModel):
    glitch: int = 0
    reset: int = 0
    wrap: int = 0
    long_gap: int = 0
    replacement: int = 0
    conflicts: int = 0
    quarantined: int = 0


class MeterOut(BaseModel):
    id: str
    site: str
    enterprise: str
    kind: str
    unit: str
    reading: str
    parent: str | None
    active: bool
    commissioned_at: datetime
    last_reading_at: datetime | None
    data_quality: DataQuality


class MetersOut(BaseModel):
    site: str
    total: int
    items: list[MeterOut]


class QuarantineItem(BaseModel):
    id: int
    received_at: datetime
    topic: str
    site: str | None
    meter: str | None
    reason: str
    detail: str
    payload: str = Field(description="Raw payload, UTF-8 (invalid bytes replaced).")
    payload_bytes: int = Field(description="Size of the whole payload as received.")
    payload_truncated: bool = Field(
        description="Stored cut at the cap (or kept once, on another row of the same message)."
    )
    payload_sha256: str = Field(description="SHA-256 (hex) of the whole payload.")
    replayed_at: datetime | None = None
    replay_result: str | None = None


class QuarantineOut(BaseModel):
    items: list[QuarantineItem]
    next_before: int | None = Field(description="Pass as `before` for the next (older) page.")


class QuarantineDrop(BaseModel):
    source: str = Field(description="The publishing topic (a gateway's batch topic).")
    site: str | None
    reason: str
    hour: datetime = Field(description="Start of the UTC hour.")
    dropped: int
    first_at: datetime
    last_at: datetime


class QuarantineDropsOut(BaseModel):
    items: list[QuarantineDrop]


class ReplayIn(BaseModel):
    ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(min_length=1, max_length=1000)


class ReplayItem(BaseModel):
    id: int
    outcome: Literal["replayed", "not_found", "already_replayed", "payload_cut"]
    rows: list[int] = Field(description="Every quarantine row of the message, now replayed.")
    stored: int
    duplicates: int
    conflicts: int
    quarantined: dict[str, int] = Field(description="Readings quarantined again, by reason.")


class ReplayOut(BaseModel):
    items: list[ReplayItem]


class AlertOut(BaseModel):
    id: int
    rule: str
    subject: str
    site: str
    enterprise: str | None
    state: str
    summary: str
    value: float | None
    threshold: float | None
    started_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None


class AlertsOut(BaseModel):
    site: str
    state: str
    items: list[AlertOut]


class AckIn(BaseModel):
    note: str = Field(default="", max_length=1000)


class HealthOut(BaseModel):
    status: str
    checks: dict[str, str] = {}


class SiteOut(BaseModel):
    id: str
    name: str
    timezone: str
    enterprises: list[str]


class ReplacementIn(BaseModel):
    replaced_at: AwareDatetime = Field(description="RFC 3339 with an offset.")
    old_final_value: float = Field(ge=0, allow_inf_nan=False)
    new_start_value: float = Field(ge=0, allow_inf_nan=False)
    note: str = Field(default="", max_length=1000)


class ReplacementOut(BaseModel):
    meter: str
    replaced_at: datetime
    old_final_value: float
    new_start_value: float
    note: str
