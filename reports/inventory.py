"""The inventory of a period from per-meter totals: pure arithmetic, no SQL.

Activity data is each meter's consumption in its kind's canonical unit (what the
hourly totals use), and in TOE with the ministry's factor for the kind. A source
is a (scope, kind, factor) of an enterprise or of the park; its emissions are the
sum of its meters' priced hours, so report totals equal the hourly totals.
Production output is no source: it is listed apart and feeds the intensity.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from core.emissions.hours import HOUR
from core.meter_kinds import CANONICAL_UNITS, PRODUCTION_KINDS
from core.units import convert
from reports.model import (
    EnterpriseSection,
    FactorUsed,
    Inventory,
    MeterLine,
    Period,
    ProductionLine,
    QaQc,
    SourceLine,
    ToeUsed,
    Totals,
)
from reports.uncertainty import product_pct, sum_pct

# Accuracy when the park file gives none: the class a meter of that kind usually
# has (electricity: IEC 62053-21 class 1; water: ISO 4064 class 2; gas: OIML R 137
# class 1.5; fuel flow meters: 1 %; effluent flow: 5 %; production scales: 1 %).
DEFAULT_ACCURACY_PCT: dict[str, float] = {
    "electricity": 1.0,
    "solar": 1.0,
    "water": 2.0,
    "wastewater": 5.0,
    "natural_gas": 1.5,
    "diesel": 1.0,
    "lpg": 1.0,
    "production": 1.0,
    "production_pcs": 1.0,
}
METHOD = (
    "Activity data: metered consumption attributed to UTC hours (SPEC section 5), "
    "main meters only. Emissions: each hour's consumption x the factor value valid at "
    "its start. TOE: the ministry's conversion factor per energy carrier. Uncertainty: "
    "IPCC 2006 Vol 1 ch 3 approach 1 (docs/reports.md)."
)


@dataclass(frozen=True)
class MeterData:
    """One main meter's priced hours over the period (consumption in its own unit)."""

    meter_id: str
    enterprise_id: str
    kind: str
    unit: str
    factor_key: str
    scope: int
    accuracy_pct: float | None
    commissioned_at: datetime
    consumption: float
    co2e_kg: float
    avoided_co2e_kg: float
    meter_hours: int
    estimated_hours: int


@dataclass(frozen=True)
class EnterpriseInfo:
    id: str
    name: str
    industry: str


@dataclass(frozen=True)
class InventoryInputs:
    site: str
    site_name: str
    enterprise: str | None
    period: Period
    now: datetime
    generated_at: datetime
    enterprises: list[EnterpriseInfo]
    meters: list[MeterData]
    factors: list[FactorUsed]
    toe_factors: list[ToeUsed]
    # QA/QC per enterprise id, and None for the whole report.
    qaqc: dict[str | None, QaQc]


def expected_hours(commissioned_at: datetime, start: datetime, end: datetime) -> int:
    """Hours of [start, end) from the meter's commissioning: what full data would have."""
    lo = max(start, commissioned_at)
    return math.ceil((end - lo) / HOUR) if end > lo else 0


def meter_line(m: MeterData, start: datetime, end: datetime) -> MeterLine:
    expected = max(expected_hours(m.commissioned_at, start, end), m.meter_hours)
    measured = m.meter_hours - m.estimated_hours
    canonical = CANONICAL_UNITS[m.kind]
    return MeterLine(
        line=m.meter_id,
        meter_id=m.meter_id,
        enterprise_id=m.enterprise_id,
        kind=m.kind,
        unit=canonical,
        accuracy_pct=(
            m.accuracy_pct if m.accuracy_pct is not None else DEFAULT_ACCURACY_PCT[m.kind]
        ),
        accuracy_is_default=m.accuracy_pct is None,
        consumption=convert(m.consumption, m.unit, canonical),
        co2e_kg=m.co2e_kg,
        expected_hours=expected,
        measured_hours=measured,
        estimated_hours=m.estimated_hours,
        missing_hours=expected - m.meter_hours,
        completeness=measured / expected if expected else None,
    )


def toe_of(kind: str, quantity: float, toe: dict[str, ToeUsed]) -> float:
    """TOE of `quantity` in the kind's canonical unit; 0 for what is not energy."""
    factor = toe.get(kind)
    if factor is None:
        return 0.0
    return convert(quantity, CANONICAL_UNITS[kind], factor.unit) * factor.toe_per_unit


def source_lines(
    prefix: str,
    meters: Iterable[MeterData],
    lines: dict[str, MeterLine],
    factor_uncertainty: dict[str, float | None],
    toe: dict[str, ToeUsed],
) -> list[SourceLine]:
    groups: dict[tuple[int, str, str], list[MeterData]] = defaultdict(list)
    for m in meters:
        if m.kind not in PRODUCTION_KINDS:
            groups[(m.scope, m.kind, m.factor_key)].append(m)
    out = []
    for (scope, kind, key), members in sorted(groups.items()):
        amounts = [(lines[m.meter_id].consumption, lines[m.meter_id].accuracy_pct) for m in members]
        consumption = math.fsum(a for a, _ in amounts)
        activity = sum_pct(amounts)
        factor = factor_uncertainty.get(key) or 0.0
        out.append(
            SourceLine(
                line=f"{prefix}/scope{scope}/{kind}/{key}",
                scope=scope,
                kind=kind,
                factor_key=key,
                unit=CANONICAL_UNITS[kind],
                consumption=consumption,
                toe=toe_of(kind, consumption, toe),
                co2e_kg=math.fsum(m.co2e_kg for m in members),
                avoided_co2e_kg=math.fsum(m.avoided_co2e_kg for m in members),
                activity_uncertainty_pct=activity,
                factor_uncertainty_pct=factor,
                uncertainty_pct=product_pct(activity or 0.0, factor),
            )
        )
    return out


def totals(sources: list[SourceLine], meters: list[MeterLine]) -> Totals:
    co2e = math.fsum(s.co2e_kg for s in sources)
    counted = [m for m in meters if m.kind not in PRODUCTION_KINDS]
    expected = sum(m.expected_hours for m in counted)
    measured = sum(m.measured_hours for m in counted)
    return Totals(
        co2e_kg=co2e,
        tco2e=co2e / 1000,
        by_scope_co2e_kg={
            str(scope): math.fsum(s.co2e_kg for s in sources if s.scope == scope)
            for scope in (1, 2, 3)
        },
        avoided_co2e_kg=math.fsum(s.avoided_co2e_kg for s in sources),
        toe=math.fsum(s.toe for s in sources),
        uncertainty_pct=sum_pct((s.co2e_kg, s.uncertainty_pct) for s in sources),
        expected_hours=expected,
        measured_hours=measured,
        estimated_hours=sum(m.estimated_hours for m in counted),
        missing_hours=sum(m.missing_hours for m in counted),
        completeness=measured / expected if expected else None,
    )


def production_lines(prefix: str, meters: list[MeterLine]) -> list[ProductionLine]:
    by_kind: dict[str, list[float]] = defaultdict(list)
    for m in meters:
        if m.kind in PRODUCTION_KINDS:
            by_kind[m.kind].append(m.consumption)
    return [
        ProductionLine(
            line=f"{prefix}/{kind}",
            kind=kind,
            unit=CANONICAL_UNITS[kind],
            quantity=math.fsum(values),
        )
        for kind, values in sorted(by_kind.items())
    ]


def _notes(meters: list[MeterLine], factors: list[FactorUsed]) -> list[str]:
    notes = []
    defaults = sorted(m.meter_id for m in meters if m.accuracy_is_default)
    if defaults:
        notes.append(
            "accuracy class not in the park file, the kind's default used: " + ", ".join(defaults)
        )
    unknown = sorted({f.key for f in factors if f.uncertainty_pct is None})
    if unknown:
        notes.append("factor uncertainty not in the park file, counted as 0: " + ", ".join(unknown))
    return notes


def build_inventory(inputs: InventoryInputs) -> Inventory:
    start = inputs.period.start
    end = min(inputs.period.end, max(inputs.now, start))
    lines = {m.meter_id: meter_line(m, start, end) for m in inputs.meters}
    uncertainty = {f.key: f.uncertainty_pct for f in inputs.factors}
    toe = {t.kind: t for t in inputs.toe_factors}
    sections = []
    for ent in inputs.enterprises:
        mine = [m for m in inputs.meters if m.enterprise_id == ent.id]
        meter_lines = [lines[m.meter_id] for m in mine]
        sources = source_lines(ent.id, mine, lines, uncertainty, toe)
        sections.append(
            EnterpriseSection(
                line=ent.id,
                id=ent.id,
                name=ent.name,
                industry=ent.industry,
                sources=sources,
                meters=meter_lines,
                production=production_lines(ent.id, meter_lines),
                totals=totals(sources, meter_lines),
                qaqc=inputs.qaqc[ent.id],
            )
        )
    prefix = inputs.enterprise or "park"
    sources = source_lines(prefix, inputs.meters, lines, uncertainty, toe)
    all_lines = list(lines.values())
    return Inventory(
        site=inputs.site,
        site_name=inputs.site_name,
        enterprise=inputs.enterprise,
        period=inputs.period,
        generated_at=inputs.generated_at,
        method=METHOD,
        enterprises=sections,
        sources=sources,
        totals=totals(sources, all_lines),
        factors=inputs.factors,
        toe_factors=inputs.toe_factors,
        qaqc=inputs.qaqc[None],
        notes=_notes(all_lines, inputs.factors),
    )
