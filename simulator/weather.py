"""Park-wide conditions shared by every enterprise: sun, clouds and grid outages. Pure.

Each local day draws its sky (sunny, partly cloudy, overcast, with seasonal odds for
northern Viet Nam) and at most one grid outage from the seed and the date alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from simulator import rand

LATITUDE = 20.85  # Hai Phong
LONGITUDE = 106.7
PERFORMANCE_RATIO = 0.8  # inverter, soiling, temperature and wiring losses

# Chance of (overcast, partly cloudy) per month: drizzly late winter, rainy summer.
_SKY_ODDS = {
    1: (0.35, 0.3),
    2: (0.55, 0.3),
    3: (0.6, 0.25),
    4: (0.4, 0.35),
    5: (0.2, 0.45),
    6: (0.25, 0.45),
    7: (0.25, 0.45),
    8: (0.3, 0.45),
    9: (0.25, 0.4),
    10: (0.15, 0.35),
    11: (0.15, 0.3),
    12: (0.25, 0.3),
}
# Grid outages per day: afternoon thunderstorms make summer worse.
_OUTAGE_ODDS = {m: (1 / 15 if 5 <= m <= 9 else 1 / 40) for m in range(1, 13)}


@dataclass(frozen=True, slots=True)
class Sky:
    clearness: float  # daily mean fraction of clear-sky irradiance
    variable: bool  # passing clouds make it flicker through the day


@dataclass(frozen=True, slots=True)
class Day:
    sky: Sky
    outage: tuple[int, int] | None  # [start, end) Unix seconds of a grid outage


@lru_cache(maxsize=4096)
def day(seed: int, local_day: date, tz_name: str) -> Day:
    stream = rand.key(seed, "weather", local_day.isoformat())
    overcast, partly = _SKY_ODDS[local_day.month]
    draw = rand.unit(stream, 0)
    spread = rand.unit(stream, 1)
    if draw < overcast:
        sky = Sky(0.12 + 0.23 * spread, variable=False)
    elif draw < overcast + partly:
        sky = Sky(0.5 + 0.3 * spread, variable=True)
    else:
        sky = Sky(0.85 + 0.15 * spread, variable=False)
    outage = None
    if rand.unit(stream, 2) < _OUTAGE_ODDS[local_day.month]:
        midnight = datetime.combine(local_day, time(), ZoneInfo(tz_name))
        start = midnight + timedelta(hours=8 + 10 * rand.unit(stream, 3))
        minutes = 20 + 160 * rand.unit(stream, 4)
        first = int(start.timestamp())
        outage = (first, first + int(minutes * 60))
    return Day(sky, outage)


def clear_sky(ts: float) -> float:
    """Clear-sky irradiance on a horizontal roof as a fraction of 1,000 W/m2."""
    moment = datetime.fromtimestamp(ts, UTC)
    doy = moment.timetuple().tm_yday
    declination = math.radians(23.44) * math.sin(2 * math.pi * (284 + doy) / 365)
    solar_hour = (moment.hour + moment.minute / 60 + moment.second / 3600 + LONGITUDE / 15) % 24
    angle = math.radians(15 * (solar_hour - 12))
    lat = math.radians(LATITUDE)
    sin_elevation = math.sin(lat) * math.sin(declination) + math.cos(lat) * math.cos(
        declination
    ) * math.cos(angle)
    return float(max(0.0, sin_elevation) ** 1.15)


@lru_cache(maxsize=64)
def _cloud_stream(seed: int) -> int:
    return rand.key(seed, "clouds")


def cloud_cover(seed: int, sky: Sky, ts: float) -> float:
    """Fraction of clear-sky irradiance that gets through at `ts`."""
    if not sky.variable:
        return sky.clearness
    slot = int(ts // 600)  # clouds change every 10 minutes
    stream = _cloud_stream(seed)
    a, b = rand.unit(stream, slot), rand.unit(stream, slot + 1)
    frac = (ts % 600) / 600
    passing = a * (1 - frac) + b * frac
    return max(0.05, min(1.0, sky.clearness * (1.35 - 0.7 * passing)))


def pv_output(kwp: float, seed: int, sky: Sky, ts: float) -> float:
    """AC output in kW of a rooftop plant of `kwp` peak."""
    return kwp * PERFORMANCE_RATIO * clear_sky(ts) * cloud_cover(seed, sky, ts)
