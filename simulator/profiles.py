"""Load shapes per industry, the Vietnamese work calendar and the cooling season. Pure.

`load_factor(industry, local)` is an enterprise's electricity load relative to its
yearly average (about 1.0 over a normal year); `production_factor` is the same
without the cooling part, which drives water use. Shapes are hourly tables per
day type, linearly interpolated between hours.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import cache

from core.park.models import Industry


class DayType(StrEnum):
    work = "work"  # Monday to Friday
    saturday = "saturday"  # garments and electronics work half a day
    sunday = "sunday"
    off = "off"  # public holiday or the Tet shutdown


# Lunar-calendar holidays (Tet = first day of the lunar year; Hung Kings = 10th day of
# the 3rd lunar month). Years outside these tables simply have no lunar holidays.
TET = {
    2024: date(2024, 2, 10),
    2025: date(2025, 1, 29),
    2026: date(2026, 2, 17),
    2027: date(2027, 2, 6),
}
HUNG_KINGS = {
    2024: date(2024, 4, 18),
    2025: date(2025, 4, 7),
    2026: date(2026, 4, 26),
    2027: date(2027, 4, 16),
}
# New Year, Reunification Day, Labour Day, National Day (2 days).
FIXED_HOLIDAYS = ((1, 1), (4, 30), (5, 1), (9, 1), (9, 2))
# Factories close from 4 days before Tet to 5 days after, then restart gradually.
TET_CLOSED = range(-4, 6)
TET_RESTART = range(6, 9)


def is_holiday(day: date) -> bool:
    if (day.month, day.day) in FIXED_HOLIDAYS or HUNG_KINGS.get(day.year) == day:
        return True
    return tet_offset(day) in TET_CLOSED


def tet_offset(day: date) -> int | None:
    """Days since the nearest Tet in the table (negative before it), or None."""
    for year in (day.year, day.year + 1):
        tet = TET.get(year)
        if tet is not None and -30 <= (day - tet).days <= 30:
            return (day - tet).days
    return None


def day_type(day: date) -> DayType:
    if is_holiday(day):
        return DayType.off
    if tet_offset(day) in TET_RESTART:
        return DayType.saturday  # half the lines back after Tet
    if day.weekday() == 5:
        return DayType.saturday
    if day.weekday() == 6:
        return DayType.sunday
    return DayType.work


def _hours(*spans: tuple[int, int, float], base: float) -> tuple[float, ...]:
    """24 hourly values: `base`, overwritten by (first hour, end hour, level) spans."""
    values = [base] * 24
    for first, end, level in spans:
        for hour in range(first, end):
            values[hour] = level
    return tuple(values)


_Shape = dict[DayType, tuple[float, ...]]

# Heavy two-shift day (06-14, 14-22), six days a week; night and Sunday: base load.
_TWO_SHIFT = _hours(
    (6, 11, 1.0), (11, 12, 0.8), (12, 14, 1.0), (14, 15, 0.85), (15, 22, 1.0), base=0.22
)
# Day shift 07:30-16:30 with a lunch dip, overtime to 19:00; Saturday morning only.
_DAY_SHIFT = _hours((7, 11, 1.0), (11, 12, 0.55), (12, 16, 1.0), (16, 19, 0.7), base=0.12)
_HALF_DAY = _hours((7, 12, 1.0), base=0.12)

SHAPES: dict[Industry, _Shape] = {
    Industry.wastewater_treatment: {
        t: _hours((0, 6, 0.92), (8, 12, 1.06), (17, 21, 1.05), base=1.0) for t in DayType
    }
    | {DayType.off: _hours(base=0.85)},
    Industry.steel_structures: {
        DayType.work: _TWO_SHIFT,
        DayType.saturday: _TWO_SHIFT,
        DayType.sunday: _hours(base=0.22),
        DayType.off: _hours(base=0.18),
    },
    Industry.plastics: {
        DayType.work: tuple(max(v, 0.45) for v in _TWO_SHIFT),
        DayType.saturday: tuple(max(v, 0.45) for v in _TWO_SHIFT),
        DayType.sunday: _hours(base=0.42),
        DayType.off: _hours(base=0.2),
    },
    Industry.garments: {
        DayType.work: _DAY_SHIFT,
        DayType.saturday: _HALF_DAY,
        DayType.sunday: _hours(base=0.12),
        DayType.off: _hours(base=0.1),
    },
    Industry.electronics: {  # clean rooms keep their HVAC running around the clock
        DayType.work: tuple(0.55 + 0.45 * v for v in _DAY_SHIFT),
        DayType.saturday: tuple(0.55 + 0.45 * v for v in _HALF_DAY),
        DayType.sunday: _hours(base=0.6),
        DayType.off: _hours(base=0.5),
    },
    Industry.food_processing: {  # the catch lands before dawn: processing 03-11
        DayType.work: _hours((3, 4, 1.0), (4, 9, 1.3), (9, 12, 1.0), (12, 17, 0.8), base=0.5),
        DayType.saturday: _hours((3, 4, 1.0), (4, 9, 1.3), (9, 12, 1.0), (12, 17, 0.8), base=0.5),
        DayType.sunday: _hours((3, 4, 0.8), (4, 9, 1.0), (9, 12, 0.8), base=0.5),
        DayType.off: _hours(base=0.45),
    },
    Industry.logistics: {  # cold rooms all day, trucks loaded in the evening
        DayType.work: _hours((7, 17, 0.8), (17, 19, 1.1), (19, 22, 1.35), (22, 23, 1.0), base=0.6),
        DayType.saturday: _hours((7, 17, 0.8), (17, 19, 1.1), (19, 22, 1.3), base=0.6),
        DayType.sunday: _hours((7, 17, 0.7), (17, 22, 1.0), base=0.58),
        DayType.off: _hours(base=0.55),
    },
    Industry.park_services: {  # pumps and street lights, offices in the day
        DayType.work: _hours((0, 6, 0.95), (8, 17, 1.1), (18, 24, 0.95), base=0.85),
        DayType.saturday: _hours((0, 6, 0.95), (18, 24, 0.95), base=0.85),
        DayType.sunday: _hours((0, 6, 0.95), (18, 24, 0.95), base=0.85),
        DayType.off: _hours((0, 6, 0.95), (18, 24, 0.95), base=0.85),
    },
}
SHAPES[Industry.other] = SHAPES[Industry.garments]

# Share of the load that is cooling (HVAC, chillers, refrigeration): it follows the
# temperature, so it is higher in the Hai Phong summer and in the afternoon.
COOLING_SHARE: dict[Industry, float] = {
    Industry.wastewater_treatment: 0.0,
    Industry.steel_structures: 0.05,
    Industry.plastics: 0.2,
    Industry.garments: 0.25,
    Industry.electronics: 0.35,
    Industry.food_processing: 0.45,
    Industry.logistics: 0.5,
    Industry.park_services: 0.15,
    Industry.other: 0.2,
}


def _interpolate(table: tuple[float, ...], hour: float) -> float:
    """Hour h's level holds at h:30; linear in between, so curves have no steps."""
    x = hour - 0.5
    lo = math.floor(x)
    frac = x - lo
    return table[lo % 24] * (1 - frac) + table[(lo + 1) % 24] * frac


@cache
def _week_mean(industry: Industry) -> float:
    shape = SHAPES[industry]
    days = [DayType.work] * 5 + [DayType.saturday, DayType.sunday]
    return sum(sum(shape[d]) / 24 for d in days) / 7 * (320 / 365) + sum(
        shape[DayType.off]
    ) / 24 * (45 / 365)


def production_factor(industry: Industry, local: datetime) -> float:
    """Production activity relative to the yearly average (no cooling part)."""
    table = SHAPES[industry][day_type(local.date())]
    hour = local.hour + local.minute / 60 + local.second / 3600
    if hour < 0.5:  # before 00:30 the curve comes from the previous day's table
        previous = SHAPES[industry][day_type(local.date() - timedelta(days=1))]
        level = previous[23] * (0.5 - hour) + table[0] * (0.5 + hour)
    else:
        level = _interpolate(table, hour)
    return level / _week_mean(industry)


def temperature_c(local: datetime) -> float:
    """Hai Phong air temperature: ~17 °C mean in January, ~30 °C in July, warmest at 14:00."""
    doy = local.timetuple().tm_yday
    seasonal = -math.cos(2 * math.pi * (doy - 20) / 365.25)  # -1 mid-January, +1 mid-July
    hour = local.hour + local.minute / 60
    diurnal = math.cos(2 * math.pi * (hour - 14) / 24)
    return 23.5 + 6.5 * seasonal + 3.0 * diurnal


def cooling_index(local: datetime) -> float:
    """Cooling demand relative to its yearly mean (degrees above 18 °C / their mean)."""
    return max(0.0, temperature_c(local) - 18.0) / 6.0


def load_factor(industry: Industry, local: datetime) -> float:
    """Electricity load relative to the yearly average: production, then cooling."""
    share = COOLING_SHARE[industry]
    return production_factor(industry, local) * (1 - share + share * cooling_index(local))
