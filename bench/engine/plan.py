"""What bench.engine runs with: sizes, goals, and the park's meters as the database has them."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime

from bench.stack.database import Conn

# Recompute runs on a past month after every sample meter's commissioning.
HISTORY_START = datetime(2025, 9, 1, tzinfo=UTC)
GOAL_P99_S = 1.0  # sample park at 5,000 readings/s (issue 13)
GOAL_RECOMPUTE_READINGS_PER_S = 500_000
GOAL_SCALE_KEEP_UP = 1.0  # at the largest N
GOAL_SCALE_P99_S = 10.0
GOAL_TOTALS_YEAR_S = 10.0
STEPS = ("recompute", "freshness", "scale", "totals")
SCALE_SIZES = "1000,10000,50000"


@dataclass(frozen=True)
class Sizes:
    days: int  # recompute: days of per-minute readings per meter
    load_seconds: float  # freshness: how long the steady load runs
    readings_per_s: int = 5000
    batch_size: int = 50
    probe_interval_s: float = 0.1
    observe_interval_s: float = 0.02
    backlog_interval_s: float = 0.25


DEFAULT_SIZES = Sizes(days=30, load_seconds=30.0)
QUICK_SIZES = Sizes(days=7, load_seconds=10.0)


@dataclass(frozen=True)
class MeterRow:
    id: str
    site: str
    kind: str
    unit: str
    reading: str  # counter | delta
    rollover: float | None
    interval_s: int | None


def park_meters(conn: Conn) -> list[MeterRow]:
    rows = conn.execute(
        "SELECT id, site_id, kind, unit, reading, rollover, interval_s FROM meters ORDER BY id"
    ).fetchall()
    return [MeterRow(*row) for row in rows]


def typical_rate_per_minute(kind: str, rng: random.Random) -> float:
    """A plausible mean consumption per minute in the meter's unit."""
    low, high = {
        "electricity": (2.0, 40.0),  # kWh/min: 120 kW to 2.4 MW
        "solar": (1.0, 10.0),
        "water": (0.05, 1.5),  # m3/min
        "wastewater": (0.05, 1.0),
        "diesel": (0.2, 3.0),  # L/min
        "lpg": (0.1, 1.0),  # kg/min
        "natural_gas": (0.5, 5.0),
    }.get(kind, (0.5, 5.0))
    return rng.uniform(low, high)


def daily_shape(kind: str, minute_of_day: float) -> float:
    """Load profile over a day (UTC+7 working hours); solar follows the sun."""
    local = (minute_of_day / 60 + 7) % 24
    if kind == "solar":
        return max(0.0, math.sin(math.pi * (local - 6) / 12)) * 2
    return 1 + 0.5 * math.sin(math.pi * (local - 8) / 12)
