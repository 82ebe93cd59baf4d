"""core.reporting on the real store: window boundaries in the site's time zone,
actuals from the rollups, budgets from the roadmap, the year-end forecast."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine, text

from core.emissions.hours import HOUR
from core.emissions.roadmap import window_budget_tco2e
from core.reporting import (
    SiteRoadmap,
    actual_tco2e,
    budget_tco2e,
    roadmap_status,
    site_roadmap,
    trajectory,
    year_end_forecast,
)
from core.settings import Settings


@pytest.fixture
def db(park_db: tuple[Settings, Engine]) -> Iterator[Connection]:
    _, engine = park_db
    with engine.connect() as conn:
        yield conn


def _put(
    conn: Connection, site: str, enterprise: str, hour: datetime, kg: float, meter_hours: int = 1
) -> None:
    """One electricity total of `kg` for the enterprise and the site at `hour`, standing
    on `meter_hours` measured meter-hours."""
    for table, key, value in (
        ("enterprise_hourly", "enterprise_id, site_id", f"'{enterprise}', '{site}'"),
        ("site_hourly", "site_id", f"'{site}'"),
    ):
        conn.execute(
            text(
                f"INSERT INTO {table} ({key}, hour, kind, scope, unit, consumption, co2e_kg, "
                f"avoided_co2e_kg, meter_hours, estimated_meter_hours) VALUES ({value}, :h, "
                "'electricity', 2, 'kWh', :kg, :kg, 0, :mh, 0) ON CONFLICT DO NOTHING"
            ),
            {"h": hour, "kg": kg, "mh": meter_hours},
        )


def test_site_roadmap_reads_the_configuration(db: Connection) -> None:
    roadmap = site_roadmap(db, "NCK")
    assert roadmap == SiteRoadmap(
        "NCK", "Asia/Ho_Chi_Minh", 2020, 45000.0, ((2025, 50.0), (2030, 100.0))
    )
    assert site_roadmap(db, "DVU") is None  # no roadmap configured
    assert site_roadmap(db, "nope") is None
    assert trajectory(roadmap)[0] == (2020, 45000.0)
    assert trajectory(roadmap)[-1] == (2030, 0.0)
    assert dict(trajectory(roadmap))[2025] == 22500.0
    assert len(trajectory(roadmap, until=2032)) == 13


def test_actuals_sum_hours_starting_in_the_window(db: Connection) -> None:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    for i in range(5):
        _put(db, "NCK", "NCK-WWTP", t0 + i * HOUR, 1000.0 * (i + 1))
    assert actual_tco2e(db, "NCK", t0, t0 + 5 * HOUR) == 15.0
    assert actual_tco2e(db, "NCK", t0 + HOUR, t0 + 3 * HOUR) == 5.0
    # A window starting mid-hour leaves that hour out; one ending mid-hour keeps it.
    assert (
        actual_tco2e(db, "NCK", t0 + 30 * timedelta(minutes=1), t0 + 90 * timedelta(minutes=1))
        == 2.0
    )
    assert actual_tco2e(db, "NCK", t0, t0 + 5 * HOUR, enterprise_id="NCK-WWTP") == 15.0
    assert actual_tco2e(db, "NCK", t0, t0 + 5 * HOUR, enterprise_id="NCK-STL1") == 0.0
    assert actual_tco2e(db, "DVU", t0, t0 + 5 * HOUR) == 0.0


def test_budget_uses_the_site_time_zone() -> None:
    roadmap = SiteRoadmap("S", "Asia/Ho_Chi_Minh", 2020, 8760.0, ((2030, 100.0),))
    local_new_year = datetime(2025, 12, 31, 17, tzinfo=UTC)  # 2026-01-01 00:00 +07
    # One hour on each side of the local new year: two different annual targets.
    budget = budget_tco2e(roadmap, local_new_year - HOUR, local_new_year + HOUR)
    assert math.isclose(budget, 8760.0 * 0.5 / 8760 + 8760.0 * 0.4 / 8760)
    utc_budget = window_budget_tco2e(
        local_new_year - HOUR, local_new_year + HOUR, 2020, 8760.0, ((2030, 100.0),)
    )
    assert not math.isclose(budget, utc_budget)


def test_roadmap_status_windows_and_forecast(db: Connection) -> None:
    roadmap = site_roadmap(db, "NCK")
    assert roadmap is not None
    now = datetime(2026, 3, 10, 20, 30, tzinfo=UTC)  # 2026-03-11 03:30 in Hai Phong
    # One tonne per hour for the 40 days up to now, every main meter measured.
    meters = _main_meters(db, "NCK")
    first = datetime(2026, 1, 30, 0, tzinfo=UTC)
    hour = first
    while hour < now:
        _put(db, "NCK", "NCK-WWTP", hour, 1000.0, meters)
        hour += HOUR
    status = roadmap_status(db, roadmap, now)
    assert status.today.start == datetime(2026, 3, 10, 17, tzinfo=UTC)
    assert status.month_to_date.start == datetime(2026, 2, 28, 17, tzinfo=UTC)
    assert status.year_to_date.start == datetime(2025, 12, 31, 17, tzinfo=UTC)
    assert all(w.end == now for w in (status.today, status.month_to_date, status.year_to_date))
    assert status.today.actual_tco2e == 4.0  # hours 17, 18, 19, 20 UTC
    assert status.month_to_date.actual_tco2e == 10 * 24 + 4.0
    assert status.year_to_date.actual_tco2e == (now - first) // HOUR + 1
    # 2026 sits between 50 % (2025) and 100 % (2030): 40 % of 45,000 t.
    target = 45000.0 * 0.4
    assert math.isclose(status.today.budget_tco2e, target * 3.5 / 8760)
    assert status.today.ratio is not None
    assert math.isclose(status.today.ratio, 4.0 / (target * 3.5 / 8760))
    forecast = status.forecast
    assert forecast.year == 2026
    assert forecast.target_tco2e == target
    assert math.isclose(forecast.run_rate_tco2e_per_day, 24.0)
    assert forecast.run_rate_coverage.missing_share == 0.0
    # Local Jan 1 to Jan 30 00:00 UTC has no data: filled at the run rate, not zero.
    gap_days = (first - status.year_to_date.start).total_seconds() / 86400
    assert math.isclose(forecast.gap_fill_tco2e, 24.0 * gap_days)
    ytd = forecast.ytd_coverage
    assert ytd.expected_meter_hours == meters * ((now - status.year_to_date.start) // HOUR)
    assert ytd.missing_share is not None
    assert math.isclose(
        ytd.missing_share, gap_days * 24 / ((now - status.year_to_date.start) // HOUR)
    )
    remaining_days = (datetime(2026, 12, 31, 17, tzinfo=UTC) - now).total_seconds() / 86400
    assert math.isclose(
        forecast.forecast_tco2e, forecast.ytd_actual_tco2e + 24.0 * (gap_days + remaining_days)
    )
    assert forecast == year_end_forecast(db, roadmap, now)


def _main_meters(conn: Connection, site: str) -> int:
    """The meters the emissions' coverage expects: active, main, not production output."""
    return int(
        conn.execute(
            text(
                "SELECT count(*) FROM meters WHERE site_id = :s AND active AND parent_id IS NULL "
                "AND kind NOT IN ('production', 'production_pcs')"
            ),
            {"s": site},
        ).scalar_one()
    )


def test_net_zero_years_have_no_ratio(db: Connection) -> None:
    roadmap = site_roadmap(db, "NCK")
    assert roadmap is not None
    now = datetime(2031, 6, 1, tzinfo=UTC)
    _put(db, "NCK", "NCK-WWTP", now - HOUR, 500.0)
    status = roadmap_status(db, roadmap, now)
    assert status.year_to_date.budget_tco2e == 0.0
    assert status.year_to_date.ratio is None
    assert status.forecast.target_tco2e == 0.0
    assert status.forecast.ratio is None
    assert status.year_to_date.actual_tco2e == 0.5
