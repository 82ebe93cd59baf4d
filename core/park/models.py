"""The park configuration file (SPEC section 4) as strict pydantic models.

Field-level rules live on the models; rules that relate several parts of the file
(unique ids, factor references, unit dimensions) live in `core.park.checks`.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from core.units import KNOWN_UNITS


class MeterKind(StrEnum):
    electricity = "electricity"
    water = "water"
    wastewater = "wastewater"
    natural_gas = "natural_gas"
    diesel = "diesel"
    lpg = "lpg"
    solar = "solar"


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


def _known_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not a known IANA time zone") from None
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


class Factor(_Strict):
    key: ObjectId
    unit: Unit
    description: str = ""
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
    commissioned_at: Timestamp
    factor: ObjectId | None = None
    # A sub-meter measures part of its parent's consumption: it shows where energy
    # goes, and totals leave it out so nothing is counted twice.
    parent: ObjectId | None = None
    description: str = ""


class Enterprise(_Strict):
    id: ObjectId
    name: Annotated[str, Field(min_length=1)]
    industry: Industry
    gateway: ObjectId | None = None
    meters: list[Meter] = []

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
    timezone: Annotated[str, AfterValidator(_known_timezone)]
    roadmap: Roadmap | None = None
    enterprises: list[Enterprise] = []


class Park(_Strict):
    default_factors: dict[MeterKind, ObjectId] = {}
    factors: list[Factor] = []
    sites: Annotated[list[Site], Field(min_length=1)]

    def factor_key_for(self, meter: Meter) -> str | None:
        return meter.factor or self.default_factors.get(meter.kind)

    def meters(self) -> list[tuple[Site, Enterprise, Meter]]:
        return [(s, e, m) for s in self.sites for e in s.enterprises for m in e.meters]
