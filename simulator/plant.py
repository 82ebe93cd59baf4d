"""What each meter of an enterprise measures at an instant, in its unit per hour. Pure.

Sizes come from the park file itself: main incomers say "~740 kW average load",
rooftop plants "1,000 kWp", the LPG tank "~40 kg/h", the WWTP "~2,800 m3/d".
What a file does not say falls back to per-industry defaults. The stated loads are
read as 2020 (baseline year) figures; tenants' efficiency programmes take 6 % a
year off them since.

Physics kept: rooftop PV sits behind its enterprise's main incomer (the grid meter
sees load minus solar, never below zero); sub-meters see the gross load; during a
grid outage grid meters and PV stop, and an enterprise with a diesel meter runs
its genset for its essential load (which its sub-meters keep measuring).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from core.meter_kinds import CANONICAL_UNITS, MeterKind
from core.park.models import Enterprise, Industry, Meter, Site
from core.units import UnitError, convert
from simulator import profiles, weather

BASE_YEAR_TS = 1577811600  # 2020-01-01T00:00:00+07:00
EFFICIENCY_GAIN = 0.06  # per year since the baseline
ESSENTIAL_LOAD = 0.7  # what a genset carries during an outage
GENSET_L_PER_KWH = 0.27
SUB_SHARES = (0.45, 0.25, 0.12, 0.08, 0.05, 0.03)
DEFAULT_KW = 300.0
DEFAULT_KWP = 500.0
# Water per kWh of average load: wet processes (washing, ice, cooling towers) use more.
WATER_M3_PER_KWH: dict[Industry, float] = {
    Industry.wastewater_treatment: 0.01,
    Industry.steel_structures: 0.004,
    Industry.plastics: 0.008,
    Industry.garments: 0.03,
    Industry.electronics: 0.015,
    Industry.food_processing: 0.05,
    Industry.logistics: 0.006,
    Industry.park_services: 0.02,
    Industry.other: 0.01,
}
DEFAULT_FUEL_PER_H = {MeterKind.lpg: 30.0, MeterKind.natural_gas: 25.0}
# Output per hour at full production when a production meter's description says none.
DEFAULT_OUTPUT_PER_H = {MeterKind.production: 1.0, MeterKind.production_pcs: 500.0}

_NUMBER = r"(\d[\d,]*(?:\.\d+)?)"


def described(text: str, unit_pattern: str, approx: bool = True) -> float | None:
    """'~1.4 MW average load' with unit_pattern 'MW' -> 1.4."""
    match = re.search(("~\\s*" if approx else "") + _NUMBER + r"\s*" + unit_pattern, text)
    return float(match.group(1).replace(",", "")) if match else None


class Role(StrEnum):
    grid = "grid"  # an incomer or separate supply
    sub = "sub"  # part of a parent meter
    solar = "solar"
    water = "water"
    wastewater = "wastewater"
    genset = "genset"
    fuel = "fuel"


@dataclass(frozen=True, slots=True)
class MeterModel:
    meter: Meter
    role: Role
    scale: float  # share of gross load (grid, sub), kWp (solar), per hour (others)
    per_unit: float  # base unit (kWh, m3, L, kg) to the meter's unit
    nets_solar: bool = False


@dataclass(frozen=True, slots=True)
class State:
    """One enterprise at one instant."""

    gross_kw: float
    solar_kw_per_kwp: float
    solar_kw: float
    production: float
    outage: bool
    genset_kw: float  # load carried by the genset (outage or test run)


@dataclass(frozen=True)
class EnterpriseModel:
    site: Site
    enterprise: Enterprise
    tz: ZoneInfo
    nominal_kw: float
    kwp: float
    meters: dict[str, MeterModel]

    @property
    def has_genset(self) -> bool:
        return any(m.role is Role.genset for m in self.meters.values())


def _per_unit(meter: Meter) -> float:
    try:
        return convert(1.0, CANONICAL_UNITS[meter.kind], meter.unit)
    except UnitError:
        return 1.0


def _grid_kw(meter: Meter) -> float | None:
    mw = described(meter.description, "MW")
    return mw * 1000 if mw is not None else described(meter.description, "kW")


def build(site: Site, ent: Enterprise) -> EnterpriseModel:
    grid = [m for m in ent.meters if m.kind is MeterKind.electricity and m.parent is None]
    stated = [_grid_kw(m) for m in grid]
    known = [kw for kw in stated if kw is not None]
    fallback = sum(known) / len(known) if known else DEFAULT_KW
    sizes = [kw if kw is not None else fallback for kw in stated]
    nominal = sum(sizes) or DEFAULT_KW
    models: dict[str, MeterModel] = {}
    for index, (meter, kw) in enumerate(zip(grid, sizes, strict=True)):
        models[meter.id] = MeterModel(meter, Role.grid, kw / nominal, _per_unit(meter), index == 0)
    kwp = 0.0
    siblings: dict[str, int] = {}
    for meter in ent.meters:
        if meter.id in models:
            continue
        if meter.parent is not None:
            n = siblings.get(meter.parent, 0)
            siblings[meter.parent] = n + 1
            role, scale = Role.sub, SUB_SHARES[min(n, len(SUB_SHARES) - 1)]
        elif meter.kind is MeterKind.solar:
            scale = described(meter.description, "kWp", approx=False) or DEFAULT_KWP
            role, kwp = Role.solar, kwp + scale
        elif meter.kind is MeterKind.water:
            role, scale = Role.water, WATER_M3_PER_KWH[ent.industry] * nominal
        elif meter.kind is MeterKind.wastewater:
            daily = described(meter.description, "m3/d")
            role = Role.wastewater
            scale = daily / 24 if daily else 0.8 * WATER_M3_PER_KWH[ent.industry] * nominal
        elif meter.kind is MeterKind.diesel:
            role, scale = Role.genset, GENSET_L_PER_KWH
        elif meter.kind in DEFAULT_OUTPUT_PER_H:
            # output follows the production profile, like fuel: scale x production
            role = Role.fuel
            output = described(meter.description, r"(?:t|pcs)/h")
            scale = output or DEFAULT_OUTPUT_PER_H[meter.kind]
        else:
            role = Role.fuel
            scale = described(meter.description, r"(?:kg|m3|L)/h") or DEFAULT_FUEL_PER_H.get(
                meter.kind, 20.0
            )
        models[meter.id] = MeterModel(meter, role, scale, _per_unit(meter))
    return EnterpriseModel(site, ent, ZoneInfo(site.timezone), nominal, kwp, models)


def efficiency(ts: float) -> float:
    years = max(0.0, (ts - BASE_YEAR_TS) / (365.25 * 86400))
    return float((1 - EFFICIENCY_GAIN) ** years)


def _genset_test(local: datetime) -> bool:
    """Standby gensets run 30 minutes at 09:00 on the first Monday of each month."""
    return local.weekday() == 0 and local.day <= 7 and local.hour == 9 and local.minute < 30


def state(model: EnterpriseModel, seed: int, ts: float) -> State:
    local = datetime.fromtimestamp(ts, model.tz)
    industry = model.enterprise.industry
    gross = model.nominal_kw * efficiency(ts) * profiles.load_factor(industry, local)
    production = profiles.production_factor(industry, local)
    today = weather.day(seed, local.date(), model.site.timezone)
    outage = today.outage is not None and today.outage[0] <= ts < today.outage[1]
    per_kwp = 0.0 if outage else weather.pv_output(1.0, seed, today.sky, ts)
    genset_kw = 0.0
    if model.has_genset:
        if outage:
            genset_kw = ESSENTIAL_LOAD * gross
        elif _genset_test(local):
            genset_kw = 0.3 * model.nominal_kw
    return State(gross, per_kwp, per_kwp * model.kwp, production, outage, genset_kw)


def flow(model: EnterpriseModel, mm: MeterModel, st: State) -> float:
    """What `mm` measures per hour at state `st`, in the meter's unit (before noise)."""
    if mm.role is Role.grid:
        if st.outage:
            return 0.0
        kw = mm.scale * st.gross_kw - (st.solar_kw if mm.nets_solar else 0.0)
        return max(0.0, kw) * mm.per_unit
    if mm.role is Role.sub:
        parent = model.meters.get(mm.meter.parent or "")
        parent_share = parent.scale if parent is not None and parent.role is Role.grid else 0.5
        carried = (ESSENTIAL_LOAD if model.has_genset else 0.0) if st.outage else 1.0
        return mm.scale * parent_share * st.gross_kw * carried * mm.per_unit
    if mm.role is Role.solar:
        return mm.scale * st.solar_kw_per_kwp * mm.per_unit
    if mm.role is Role.genset:
        return mm.scale * st.genset_kw * mm.per_unit
    if mm.role is Role.water:
        return mm.scale * (0.25 + 0.75 * st.production) * mm.per_unit
    if mm.role is Role.wastewater:
        # the central plant treats what the park sends; tenants discharge what they use
        return mm.scale * (0.3 + 0.7 * st.production) * mm.per_unit
    return mm.scale * st.production * mm.per_unit
