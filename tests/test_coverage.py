"""Coverage arithmetic (core.emissions.coverage): expected meter-hours, the shares,
and a forecast that projects from the covered run rate instead of zeros."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.emissions.coverage import (
    Coverage,
    covered_rate_per_day,
    expected_meter_hours,
    hour_floor,
    year_end_projection,
)
from core.emissions.hours import HOUR

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def test_expected_hours_start_at_the_commissioning_hour() -> None:
    # One meter from before the window (24 h), one commissioned at 10:20 (hours 10..23).
    commissioned = [datetime(2020, 1, 1, tzinfo=UTC), T0 + timedelta(hours=10, minutes=20)]
    assert expected_meter_hours(commissioned, T0, T0 + 24 * HOUR) == 24 + 14
    # A meter commissioned after the window counts nothing; offsets do not matter.
    later = datetime(2026, 3, 2, 9, tzinfo=timezone(timedelta(hours=7)))
    assert expected_meter_hours([later], T0, T0 + 24 * HOUR) == 0
    assert expected_meter_hours([], T0, T0 + 24 * HOUR) == 0


def test_shares_add_up_and_never_exceed_one() -> None:
    c = Coverage(expected_meter_hours=100, measured_meter_hours=60, estimated_meter_hours=15)
    assert (c.measured_share, c.estimated_share, c.missing_share) == (0.6, 0.15, 0.25)
    # A meter deactivated since has data but is no longer expected: no share above 1.
    over = Coverage(expected_meter_hours=10, measured_meter_hours=12, estimated_meter_hours=0)
    assert over.measured_share == 1.0 and over.missing_share == 0.0
    nothing = Coverage(0, 0, 0)
    assert nothing.missing_share is None and nothing.covered_share is None


@given(st.integers(0, 10_000), st.integers(0, 10_000), st.integers(0, 10_000))
def test_shares_always_sum_to_one(expected: int, measured: int, estimated: int) -> None:
    c = Coverage(expected, measured, estimated)
    shares = (c.measured_share, c.estimated_share, c.missing_share)
    if expected + measured + estimated == 0:
        assert shares == (None, None, None)
    else:
        assert all(s is not None and 0 <= s <= 1 for s in shares)
        assert math.isclose(sum(s for s in shares if s is not None), 1.0)


def test_run_rate_scales_the_covered_hours_to_the_window() -> None:
    # 30 days at half coverage emitted 360 t: the whole window would have been 720 t.
    half = Coverage(expected_meter_hours=720, measured_meter_hours=360, estimated_meter_hours=0)
    assert covered_rate_per_day(360.0, 30.0, half) == 24.0
    assert covered_rate_per_day(0.0, 30.0, Coverage(720, 0, 0)) is None


def test_year_end_projection_fills_the_gaps_instead_of_counting_zeros() -> None:
    """The demo's case: 30 days of data on 1 December, 11 months missing."""
    ytd_days, remaining = 334.0, 31.0
    ytd = Coverage(
        expected_meter_hours=334 * 24, measured_meter_hours=30 * 24, estimated_meter_hours=0
    )
    rate = 24.0  # t/day over the 30 covered days
    forecast, filled = year_end_projection(30 * rate, ytd_days, ytd, rate, remaining)
    assert filled == pytest.approx(304 * rate)
    assert forecast == pytest.approx(365 * rate)  # a full year at the measured rate
    # Fully covered: nothing filled, the classic ytd + rate x remaining.
    full = Coverage(334 * 24, 334 * 24, 0)
    assert year_end_projection(8016.0, ytd_days, full, rate, remaining) == (8016.0 + 744.0, 0.0)


def test_hour_floor_is_utc() -> None:
    local = datetime(2026, 3, 1, 7, 45, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert hour_floor(local) == datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
