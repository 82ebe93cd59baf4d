"""The dashboards' SQL roadmap functions (migration 0006) equal core/emissions/roadmap.py."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, create_engine, text

from core import migrate
from core.emissions.roadmap import annual_target_tco2e, window_budget_tco2e
from core.settings import Settings

# site: (time zone, baseline year, baseline tCO2e, milestones)
ROADMAPS: dict[str, tuple[str, int, float, list[tuple[int, float]]]] = {
    "NCK": ("Asia/Ho_Chi_Minh", 2020, 45000.0, [(2025, 50.0), (2030, 100.0)]),
    "PLAN222": ("UTC", 2019, 1000.0, [(2024, 43.5), (2050, 100.0)]),
    "DST": ("America/New_York", 2022, 500.0, [(2023, 10.0), (2026, 10.0), (2028, 60.0)]),
    "FLAT": ("Asia/Ho_Chi_Minh", 2021, 200.0, []),
}


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


WINDOWS = [
    (at(2024, 2, 28), at(2024, 3, 2)),  # across a leap day
    (at(2023, 12, 31, 17), at(2024, 12, 31, 17)),  # 2024 in UTC+7, a leap year
    (at(2019, 6, 1), at(2033, 6, 1)),  # baseline to beyond net zero
    (at(2026, 3, 8, 10, 15), at(2026, 3, 8, 10, 45)),  # a partial hour, a DST day in New York
    (at(2010, 1, 1), at(2011, 1, 1)),  # before any baseline
    (at(2031, 1, 1), at(2032, 1, 1)),  # net zero reached for NCK
    (at(2025, 12, 31, 12), at(2026, 1, 1, 12)),  # new year, earlier in UTC+7 than in UTC
    (at(2026, 5, 1), at(2026, 5, 1)),  # empty
    (at(2026, 5, 2), at(2026, 5, 1)),  # reversed
]


@pytest.fixture(scope="module")
def conn(database_factory: Callable[[], Settings]) -> Iterator[Connection]:
    settings = database_factory()
    engine = create_engine(settings.database_url)
    migrate.upgrade(engine)
    with engine.begin() as c:
        for site, (tz, year, tco2e, milestones) in ROADMAPS.items():
            c.execute(
                text("INSERT INTO sites (id, name, timezone) VALUES (:s, :s, :tz)"),
                {"s": site, "tz": tz},
            )
            c.execute(
                text("INSERT INTO roadmaps VALUES (:s, :y, :t)"),
                {"s": site, "y": year, "t": tco2e},
            )
            for m_year, pct in milestones:
                c.execute(
                    text("INSERT INTO roadmap_milestones VALUES (:s, :y, :p)"),
                    {"s": site, "y": m_year, "p": pct},
                )
        c.execute(text("INSERT INTO sites (id, name, timezone) VALUES ('NONE', 'x', 'UTC')"))
    with engine.connect() as c:
        yield c
    engine.dispose()


@pytest.mark.parametrize("site", ROADMAPS)
def test_annual_targets_match(conn: Connection, site: str) -> None:
    _, base_year, base_t, milestones = ROADMAPS[site]
    for year in range(2010, 2061):
        got = conn.execute(
            text("SELECT roadmap_annual_target_tco2e(:s, :y)"), {"s": site, "y": year}
        ).scalar_one()
        want = annual_target_tco2e(base_year, base_t, milestones, year)
        assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-9), (site, year)


def _sql_budget(conn: Connection, site: str, start: datetime, end: datetime) -> float | None:
    budget: float | None = conn.execute(
        text("SELECT roadmap_budget_tco2e(:s, :a, :b)"), {"s": site, "a": start, "b": end}
    ).scalar_one()
    return budget


@pytest.mark.parametrize("site", ROADMAPS)
def test_window_budgets_match(conn: Connection, site: str) -> None:
    tz, base_year, base_t, milestones = ROADMAPS[site]
    rng = random.Random(site)
    windows = list(WINDOWS)
    for _ in range(40):
        start = at(2018, 1, 1) + timedelta(seconds=rng.randrange(0, 20 * 365 * 86400))
        windows.append((start, start + timedelta(seconds=rng.randrange(1, 3 * 365 * 86400))))
    for start, end in windows:
        want = window_budget_tco2e(start, end, base_year, base_t, milestones, tz=ZoneInfo(tz))
        got = _sql_budget(conn, site, start, end)
        assert got is not None
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9), (site, start, end)


def test_hour_budgets_sum_to_the_year_target(conn: Connection) -> None:
    """Leap year 2024 in UTC: 8784 hours, each 1/8784 of the target."""
    hour = _sql_budget(conn, "PLAN222", at(2024, 7, 1, 10), at(2024, 7, 1, 11))
    year = _sql_budget(conn, "PLAN222", at(2024, 1, 1), at(2025, 1, 1))
    assert hour is not None and year is not None
    assert math.isclose(year, 1000.0 * (1 - 0.435))
    assert math.isclose(hour * 8784, year)


def test_a_site_without_roadmap_has_no_budget(conn: Connection) -> None:
    assert _sql_budget(conn, "NONE", at(2026, 1, 1), at(2026, 2, 1)) is None
    target = conn.execute(text("SELECT roadmap_annual_target_tco2e('NONE', 2026)")).scalar_one()
    assert target is None
