"""The park configuration file (SPEC section 4) as strict pydantic models.

Field-level rules live on the models; rules that relate several parts of the file
(unique ids, factor references, unit dimensions) live in `core.park.checks`.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from core.meter_kinds import MeterKind
from core.park.devices import DeviceGateway, TimeZoneName
from core.units import KNOWN_UNITS


class Industry(StrEnum):
    wastewater_treatment = "wastewater_treatment"
    steel_structures = "steel_structures"
    garments = "garments"
    electronics = "electronics"
    food_processing = "food_processing"
    plastics = "plastics"
    logistics = "logistics"
    park_services = "park_services"
    other = "other"


def _known_unit(value: str) -> str:
    if value not in KNOWN_UNITS:
        raise ValueError(f"{value!r} is not a known unit (known: {', '.join(KNOWN_UNITS)})")
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    return value


# Ids end up in MQTT topics and URLs: no wildcards, separators or spaces.
SiteId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
ObjectId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
Unit = Annotated[str, AfterValidator(_known_unit)]
FiniteFloat = Annotated[float, AfterValidator(_finite)]
Timestamp = AwareDatetime


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class FactorValue(_Strict):
    valid_from: Timestamp
    published_at: Timestamp | None = None
    kgco2e_per_unit: Annotated[FiniteFloat, Field(ge=0)]
    source: Annotated[str, Field(min_length=1)]


Pct = Annotated[FiniteFloat, Field(ge=0, le=100)]


class Factor(_Strict):
    key: ObjectId
    unit: Unit
    description: str = ""
    # Half-width of the 95 % confidence interval, in % of the value (IPCC 2006 Vol 1 ch 3).
    uncertainty_pct: Pct | None = None
    values: Annotated[list[FactorValue], Field(min_length=1)]


class Meter(_Strict):
    id: ObjectId
    site: SiteId | None = None
    enterprise: ObjectId | None = None
    kind: MeterKind
    unit: Unit
    reading: Literal["counter", "delta"]
    rollover: Annotated[FiniteFloat, Field(gt=0)] | None = None
    interval_s: Annotated[int, Field(gt=0, le=86_400)] | None = None
    max_gap_s: Annotated[int, Field(gt=0)] = 3600
    # The most this meter can use in an hour, in its unit (a counter's plausibility
    # guard, core/emissions/plausibility.py): more is a data-quality event, kept out
    # of the totals until an admin accepts it. None: no guard.
    max_rate_per_h: Annotated[FiniteFloat, Field(gt=0)] | None = None
    commissioned_at: Timestamp
    factor: ObjectId | None = None
    # A sub-meter measures part of its parent's consumption: it shows where energy
    # goes, and totals leave it out so nothing is counted twice.
    parent: ObjectId | None = None
    description: str = ""
    # Accuracy class (maximum permissible error, %), the activity-data uncertainty.
    accuracy_pct: Pct | None = None


# ---- alert rules (SPEC section 7) -------------------------------------------------
# Every section has defaults, so a site without an `alerts:` block is monitored with
# the defaults below. Durations are seconds (`_s`), thresholds percentages (`_pct`).


class DriftWindow(StrEnum):
    trailing_7d = "trailing_7d"
    month_to_date = "month_to_date"
    year_to_date = "year_to_date"


Percent = Annotated[FiniteFloat, Field(ge=0, le=1000)]
Seconds = Annotated[int, Field(ge=0, le=366 * 86_400)]


class DriftRule(_Strict):
    """Actual CO2e over a window above its roadmap budget by more than `tolerance_pct`
    for at least `for_s`; resolves only at or below budget minus `hysteresis_pct`."""

    enabled: bool = True
    windows: Annotated[list[DriftWindow], Field(min_length=1)] = [
        DriftWindow.trailing_7d,
        DriftWindow.month_to_date,
        DriftWindow.year_to_date,
    ]
    tolerance_pct: Percent = 10.0
    hysteresis_pct: Annotated[FiniteFloat, Field(ge=0, le=100)] = 5.0
    for_s: Seconds = 3600
    # Excess below this many tCO2e never fires (a net-zero window's budget is 0).
    min_excess_tco2e: Annotated[FiniteFloat, Field(ge=0)] = 0.0


class EnterpriseDriftRule(DriftRule):
    """An enterprise's drift against its share of its site's roadmap budget."""

    budget_share_pct: Annotated[FiniteFloat, Field(gt=0, le=100)]


class ForecastRule(_Strict):
    """Year-end forecast above the year's target by more than `tolerance_pct`."""

    enabled: bool = True
    tolerance_pct: Percent = 5.0
    hysteresis_pct: Annotated[FiniteFloat, Field(ge=0, le=100)] = 2.0
    for_s: Seconds = 6 * 3600
    # A run rate from the first days of a year says little; wait this many days.
    min_days: Annotated[int, Field(ge=0, le=365)] = 14


class SilentMeterRule(_Strict):
    """No reading for longer than the meter's expected interval (`interval_s` of a
    delta meter, `max_gap_s` of a counter) times `factor`."""

    enabled: bool = True
    factor: Annotated[FiniteFloat, Field(ge=1, le=1000)] = 3.0


class DataQualityRule(_Strict):
    """Glitches, resets, conflicts or quarantine rate over a trailing window."""

    enabled: bool = True
    window_s: Annotated[int, Field(ge=3600, le=31 * 86_400)] = 86_400
    max_glitches: Annotated[int, Field(ge=0)] = 10
    max_resets: Annotated[int, Field(ge=0)] = 2
    # Intervals kept out by a meter's max_rate_per_h: any one is worth a look.
    max_implausible: Annotated[int, Field(ge=0)] = 0
    max_conflicts: Annotated[int, Field(ge=0)] = 10
    max_quarantine_pct: Annotated[FiniteFloat, Field(ge=0, le=100)] = 5.0


class Webhook(_Strict):
    """Where alert changes are POSTed; the signing secret is never in this file."""

    name: ObjectId
    url: Annotated[str, Field(pattern=r"^https?://[^\s]+$")]


class ObligationRule(_Strict):
    """An enterprise's year-end projection of energy (TOE) or emissions (tCO2e)
    above the national list's threshold (Decree 06/2022/ND-CP)."""

    enabled: bool = True
    hysteresis_pct: Annotated[FiniteFloat, Field(ge=0, le=100)] = 5.0
    for_s: Seconds = 6 * 3600
    min_days: Annotated[int, Field(ge=0, le=365)] = 14


class SiteAlerts(_Strict):
    drift: DriftRule = DriftRule()
    obligation: ObligationRule = ObligationRule()
    forecast: ForecastRule = ForecastRule()
    silent_meter: SilentMeterRule = SilentMeterRule()
    data_quality: DataQualityRule = DataQualityRule()
    webhooks: list[Webhook] = []


class EnterpriseAlerts(_Strict):
    drift: EnterpriseDriftRule | None = None
    silent_meter: SilentMeterRule | None = None


class Allocation(_Strict):
    """An intensity-based allowance: tCO2e per unit of product for one year."""

    year: Annotated[int, Field(ge=1990, le=2100)]
    tco2e_per_unit: Annotated[FiniteFloat, Field(ge=0)]
    unit: Unit
    source: str = ""


class Enterprise(_Strict, DeviceGateway):
    """`protocol` and `devices` (core/park/devices.py) say what its gateway publishes."""

    id: ObjectId
    name: Annotated[str, Field(min_length=1)]
    industry: Industry
    gateway: ObjectId | None = None
    meters: list[Meter] = []
    alerts: EnterpriseAlerts | None = None
    allocations: list[Allocation] = []

    @property
    def gateway_id(self) -> str:
        """Gateways carry an enterprise's meters; one per enterprise unless named."""
        return self.gateway or f"{self.id}-GW"


class Baseline(_Strict):
    year: Annotated[int, Field(ge=1990, le=2100)]
    tco2e: Annotated[FiniteFloat, Field(ge=0)]
    note: str = ""


class Milestone(_Strict):
    year: Annotated[int, Field(ge=1990, le=2100)]
    reduction_pct: Annotated[FiniteFloat, Field(ge=0, le=100)]


class Roadmap(_Strict):
    baseline: Baseline
    milestones: list[Milestone] = []


class Site(_Strict):
    id: SiteId
    name: Annotated[str, Field(min_length=1)]
    timezone: TimeZoneName
    roadmap: Roadmap | None = None
    alerts: SiteAlerts = SiteAlerts()
    enterprises: list[Enterprise] = []


class ToeFactor(_Strict):
    """Tonnes of oil equivalent per unit of an energy carrier (the ministry's table)."""

    kind: MeterKind
    unit: Unit
    toe_per_unit: Annotated[FiniteFloat, Field(ge=0)]
    source: Annotated[str, Field(min_length=1)]


class Park(_Strict):
    default_factors: dict[MeterKind, ObjectId] = {}
    factors: list[Factor] = []
    toe_factors: list[ToeFactor] = []
    sites: Annotated[list[Site], Field(min_length=1)]

    def factor_key_for(self, meter: Meter) -> str | None:
        return meter.factor or self.default_factors.get(meter.kind)

    def meters(self) -> list[tuple[Site, Enterprise, Meter]]:
        return [(s, e, m) for s in self.sites for e in s.enterprises for m in e.meters]
