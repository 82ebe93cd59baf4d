"""The pure emissions arithmetic of SPEC section 5: spreading, counters, deltas, hours,
factors, scopes and roadmap budgets. Hand-computed examples for each rule, then
properties the incremental engine relies on (no database, no broker)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.emissions import (
    Interval,
    QualityEvent,
    Reading,
    Replacement,
    annual_target_tco2e,
    ceil_hour,
    certainly_kept,
    counter_intervals,
    delta_intervals,
    factor_at,
    floor_hour,
    hourly_consumption,
    register_segments,
    spread,
    window_budget_tco2e,
)
from core.meter_kinds import scope_of

VN = ZoneInfo("Asia/Ho_Chi_Minh")
DAY = datetime(2024, 3, 1, tzinfo=UTC)
HOUR_S = 3600
PROPERTY = settings(max_examples=250, deadline=None)


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return DAY + timedelta(hours=hour, minutes=minute, seconds=second)


def readings(*points: tuple[datetime, float]) -> list[Reading]:
    return [Reading(ts, value) for ts, value in points]


def kinds(events: list[QualityEvent]) -> list[tuple[datetime, str]]:
    return [(e.ts, e.kind) for e in events]


# --- hours and spreading ---------------------------------------------------------------


def test_floor_and_ceil_hour_return_utc_hour_starts() -> None:
    local = datetime(2024, 3, 1, 7, 30, 15, tzinfo=VN)  # 00:30:15Z
    assert floor_hour(local) == at(0)
    assert floor_hour(local).tzinfo is UTC
    assert ceil_hour(local) == at(1)
    assert ceil_hour(at(2)) == at(2)
    with pytest.raises(ValueError, match="no time zone"):
        floor_hour(datetime(2024, 3, 1))  # noqa: DTZ001


def test_spread_90_minutes_from_0030_to_0200_gives_one_third_and_two_thirds() -> None:
    assert spread(at(0, 30), at(2), 90.0) == {at(0): 30.0, at(1): 60.0}


def test_spread_over_three_hours_is_proportional_to_overlap() -> None:
    assert spread(at(0, 30), at(2, 30), 4.0) == {at(0): 1.0, at(1): 2.0, at(2): 1.0}


def test_spread_within_one_hour_gives_everything_to_it() -> None:
    assert spread(at(0, 10), at(0, 50), 5.0) == {at(0): 5.0}


def test_spread_ending_on_an_hour_boundary_leaves_the_next_hour_out() -> None:
    assert spread(at(0), at(1), 7.0) == {at(0): 7.0}


def test_spread_of_a_zero_length_interval_goes_to_the_hour_containing_it() -> None:
    assert spread(at(1, 20), at(1, 20), 3.0) == {at(1): 3.0}
    assert spread(at(1), at(1), 3.0) == {at(1): 3.0}


def test_spread_parts_sum_exactly_for_microsecond_offsets() -> None:
    parts = spread(at(0, 0, 0) + timedelta(microseconds=1), at(3), 1.0)
    assert list(parts) == [at(0), at(1), at(2)]
    assert math.fsum(parts.values()) == pytest.approx(1.0, rel=1e-15)


def test_spread_refuses_reversed_intervals_and_non_finite_amounts() -> None:
    with pytest.raises(ValueError, match="ends before"):
        spread(at(1), at(0), 1.0)
    with pytest.raises(ValueError, match="not finite"):
        spread(at(0), at(1), math.nan)


# --- counter meters ----------------------------------------------------------------------


def test_counter_plain_deltas() -> None:
    data = readings((at(0), 100.0), (at(0, 15), 110.0), (at(0, 30), 125.0))
    intervals, events = counter_intervals(data, None, HOUR_S)
    assert intervals == [
        Interval(at(0), at(0, 15), 10.0, False),
        Interval(at(0, 15), at(0, 30), 15.0, False),
    ]
    assert events == []


def test_counter_first_reading_is_a_baseline_only() -> None:
    assert counter_intervals(readings((at(0), 1532.25)), None, HOUR_S) == ([], [])
    assert counter_intervals([], None, HOUR_S) == ([], [])


def test_counter_glitch_to_zero_gives_no_spike_and_a_glitch_event() -> None:
    # Home Assistant's "1000 kWh spike": 1000, 0, 1010 must not count 1010 kWh.
    data = readings((at(0), 1000.0), (at(0, 15), 0.0), (at(0, 30), 1010.0))
    intervals, events = counter_intervals(data, None, HOUR_S)
    assert intervals == [Interval(at(0), at(0, 30), 10.0, False)]
    assert events == [
        QualityEvent(at(0, 15), "glitch", {"value": 0.0, "previous": 1000.0, "next": 1010.0})
    ]
    assert hourly_consumption(intervals) == {at(0): (10.0, False)}


def test_counter_dip_whose_successor_is_back_exactly_at_the_predecessor_is_a_glitch() -> None:
    data = readings((at(0), 1000.0), (at(0, 15), 0.0), (at(0, 30), 1000.0))
    intervals, events = counter_intervals(data, None, HOUR_S)
    assert intervals == [Interval(at(0), at(0, 30), 0.0, False)]
    assert kinds(events) == [(at(0, 15), "glitch")]


def test_counter_trailing_dip_is_a_reset_until_its_successor_makes_it_a_glitch() -> None:
    data = readings((at(0), 1000.0), (at(0, 15), 1005.0), (at(0, 30), 3.0))
    intervals, events = counter_intervals(data, None, HOUR_S)
    assert intervals[-1] == Interval(at(0, 15), at(0, 30), 3.0, False)
    assert kinds(events) == [(at(0, 30), "reset")]

    data.append(Reading(at(0, 45), 1010.0))
    intervals, events = counter_intervals(data, None, HOUR_S)
    assert intervals == [
        Interval(at(0), at(0, 15), 5.0, False),
        Interval(at(0, 15), at(0, 45), 5.0, False),
    ]
    assert kinds(events) == [(at(0, 30), "glitch")]


def test_counter_reset_counts_the_new_value() -> None:
    data = readings((at(0), 500.0), (at(0, 15), 520.0), (at(0, 30), 10.0), (at(0, 45), 30.0))
    intervals, events = counter_intervals(data, None, HOUR_S)
    assert [i.amount for i in intervals] == [20.0, 10.0, 20.0]
    assert events == [
        QualityEvent(at(0, 30), "reset", {"previous": 520.0, "value": 10.0, "consumption": 10.0})
    ]


def test_counter_wrap_with_rollover() -> None:
    data = readings((at(0), 99980.0), (at(0, 15), 99990.0), (at(0, 30), 5.0), (at(0, 45), 20.0))
    intervals, events = counter_intervals(data, 100000.0, HOUR_S)
    assert [i.amount for i in intervals] == [10.0, 15.0, 15.0]
    assert events == [
        QualityEvent(
            at(0, 30),
            "wrap",
            {"previous": 99990.0, "value": 5.0, "rollover": 100000.0, "consumption": 15.0},
        )
    ]


def test_counter_small_dip_with_rollover_set_is_a_reset() -> None:
    # 60000 -> 10000 drops by exactly R/2: not more than R/2, so a reset.
    data = readings((at(0), 60000.0), (at(0, 15), 10000.0))
    intervals, events = counter_intervals(data, 100000.0, HOUR_S)
    assert [i.amount for i in intervals] == [10000.0]
    assert kinds(events) == [(at(0, 15), "reset")]
    # One unit more and it is a wrap: 9999 + 100000 - 60000.
    data = readings((at(0), 60000.0), (at(0, 15), 9999.0))
    intervals, events = counter_intervals(data, 100000.0, HOUR_S)
    assert [i.amount for i in intervals] == [49999.0]
    assert kinds(events) == [(at(0, 15), "wrap")]


def test_counter_interval_longer_than_max_gap_is_estimated() -> None:
    data = readings((at(0), 0.0), (at(1), 6.0), (at(2, 30), 21.0))
    intervals, events = counter_intervals(data, None, HOUR_S)
    assert intervals == [
        Interval(at(0), at(1), 6.0, False),  # exactly the maximum gap: not estimated
        Interval(at(1), at(2, 30), 15.0, True),
    ]
    assert events == [QualityEvent(at(2, 30), "long_gap", {"gap_s": 5400.0, "max_gap_s": 3600.0})]
    assert hourly_consumption(intervals) == {
        at(0): (6.0, False),
        at(1): (10.0, True),
        at(2): (5.0, True),
    }


def test_counter_replacement_closes_the_old_register_and_starts_the_new_one() -> None:
    data = readings((at(0), 1000.0), (at(0, 30), 1010.0), (at(1), 4.0), (at(1, 30), 10.0))
    swap = Replacement(at(0, 45), old_final=1015.0, new_start=0.0)
    intervals, events = counter_intervals(data, None, HOUR_S, [swap])
    assert intervals == [
        Interval(at(0), at(0, 30), 10.0, False),
        Interval(at(0, 30), at(0, 45), 5.0, False),
        Interval(at(0, 45), at(1), 4.0, False),
        Interval(at(1), at(1, 30), 6.0, False),
    ]
    assert events == [
        QualityEvent(at(0, 45), "replacement", {"old_final": 1015.0, "new_start": 0.0})
    ]


def test_counter_reading_at_the_replacement_instant_belongs_to_the_new_register() -> None:
    data = readings((at(0), 50.0), (at(1), 2.0), (at(1, 30), 7.0))
    swap = Replacement(at(1), old_final=60.0, new_start=2.0)
    intervals, _ = counter_intervals(data, None, HOUR_S, [swap])
    assert intervals == [
        Interval(at(0), at(1), 10.0, False),
        Interval(at(1), at(1), 0.0, False),
        Interval(at(1), at(1, 30), 5.0, False),
    ]


def test_counter_refuses_two_readings_at_one_instant() -> None:
    same_instant = [Reading(at(0), 1.0), Reading(at(0).astimezone(VN), 2.0)]
    with pytest.raises(ValueError, match="two readings"):
        counter_intervals(same_instant, None, HOUR_S)


def test_certainly_kept_examples() -> None:
    values = [10.0, 5.0, 12.0, 11.0, 11.5, 13.0]
    assert certainly_kept(values, 0)  # baseline
    assert not certainly_kept(values, 1)  # a dip: its fate depends on its successor
    assert certainly_kept(values, 2)  # >= 5 and >= 10
    assert not certainly_kept(values, 3)
    assert not certainly_kept(values, 4)  # >= 11 but < 12
    assert certainly_kept(values, 5)
    assert certainly_kept([1.0, 1.0], 1)


# --- delta meters ------------------------------------------------------------------------


def test_delta_readings_of_900_s_are_spread_over_the_hours_they_cover() -> None:
    data = readings(*((at(0, 10 + 15 * i), 3.0) for i in range(5)))  # 00:10 .. 01:10
    intervals = delta_intervals(data, 900)
    assert intervals[0] == Interval(at(0, 10) - timedelta(seconds=900), at(0, 10), 3.0, False)
    hours = hourly_consumption(intervals)
    # 00:10 covers 23:55-00:10 (1/3 before midnight), 01:10 covers 00:55-01:10.
    assert hours == {
        at(-1): (1.0, False),
        at(0): (2.0 + 3.0 + 3.0 + 3.0 + 1.0, False),
        at(1): (2.0, False),
    }


def test_delta_reading_on_the_hour_belongs_to_the_hour_before() -> None:
    hours = hourly_consumption(delta_intervals(readings((at(1), 4.0), (at(1, 15), 2.0)), 900))
    assert hours == {at(0): (4.0, False), at(1): (2.0, False)}


# --- hourly, factors, scopes -------------------------------------------------------------


def test_hourly_keeps_hours_of_zero_consumption() -> None:
    intervals = [Interval(at(0, 30), at(2), 0.0, False), Interval(at(2), at(2, 30), 1.5, True)]
    assert hourly_consumption(intervals) == {
        at(0): (0.0, False),
        at(1): (0.0, False),
        at(2): (1.5, True),
    }


def test_interval_over_the_vietnam_new_year_takes_each_hours_factor() -> None:
    data = readings(
        (datetime(2022, 12, 31, 23, tzinfo=VN), 1000.0),
        (datetime(2023, 1, 1, 1, tzinfo=VN), 1100.0),
    )
    intervals, _ = counter_intervals(data, None, 2 * HOUR_S)
    hours = hourly_consumption(intervals)
    h16, h17 = datetime(2022, 12, 31, 16, tzinfo=UTC), datetime(2022, 12, 31, 17, tzinfo=UTC)
    assert hours == {h16: (50.0, False), h17: (50.0, False)}
    grid = [
        (datetime(2023, 1, 1, tzinfo=VN), 0.6592, 2),
        (datetime(2022, 1, 1, tzinfo=VN), 0.6766, 1),
    ]
    assert factor_at(grid, h16) == (0.6766, 1)
    assert factor_at(grid, h17) == (0.6592, 2)
    co2e = hours[h16][0] * 0.6766 + hours[h17][0] * 0.6592
    assert co2e == pytest.approx(33.83 + 32.96, rel=1e-12)


def test_factor_at_before_any_value_and_on_a_tie() -> None:
    grid = [(at(0), 1.0, 7), (at(0), 2.0, 9)]
    assert factor_at(grid, at(-1)) is None
    assert factor_at(grid, at(0)) == (2.0, 9)  # the value published last wins
    assert factor_at([], at(0)) is None


def test_scopes() -> None:
    assert [scope_of(k) for k in ("natural_gas", "diesel", "lpg")] == [1, 1, 1]
    assert [scope_of(k) for k in ("electricity", "solar")] == [2, 2]
    assert [scope_of(k) for k in ("water", "wastewater")] == [3, 3]
    with pytest.raises(ValueError, match="unknown meter kind"):
        scope_of("steam")


# --- roadmap -----------------------------------------------------------------------------

ROADMAP = (2020, 100.0, [(2025, 50.0), (2030, 100.0)])


def budget(start: datetime, end: datetime, tz: tzinfo = UTC) -> float:
    return window_budget_tco2e(start, end, *ROADMAP, tz=tz)


@pytest.mark.parametrize(
    ("year", "target"),
    [
        (2018, 100.0),
        (2020, 100.0),
        (2022, 80.0),
        (2025, 50.0),
        (2027, 30.0),
        (2030, 0.0),
        (2035, 0.0),
    ],
)
def test_annual_target_interpolates_between_milestones(year: int, target: float) -> None:
    assert annual_target_tco2e(*ROADMAP, year) == target


def test_roadmap_refuses_milestones_not_after_the_baseline() -> None:
    with pytest.raises(ValueError, match="after the baseline"):
        annual_target_tco2e(2020, 100.0, [(2020, 10.0)], 2021)


def test_budget_of_a_whole_year_is_its_target() -> None:
    start, end = datetime(2022, 1, 1, tzinfo=UTC), datetime(2023, 1, 1, tzinfo=UTC)
    assert budget(start, end) == 80.0
    local = (datetime(2022, 1, 1, tzinfo=VN), datetime(2023, 1, 1, tzinfo=VN))
    assert budget(*local, tz=VN) == 80.0


def test_budget_of_a_day_in_a_leap_year() -> None:
    start = datetime(2024, 2, 29, tzinfo=UTC)
    assert budget(start, start + timedelta(days=1)) == 60.0 / 366


def test_budget_of_a_window_spanning_two_years() -> None:
    start = datetime(2022, 12, 31, tzinfo=UTC)
    result = budget(start, start + timedelta(days=3))
    assert result == pytest.approx(80.0 / 365 + 2 * 70.0 / 365, rel=1e-15)
    # In the site's time zone, 2023 starts at 17:00Z on Dec 31.
    result = budget(start, start + timedelta(hours=18), tz=VN)
    assert result == pytest.approx(80.0 * 17 / 8760 + 70.0 / 8760, rel=1e-15)


def test_budget_of_a_partial_hour_is_pro_rata_and_net_zero_is_zero() -> None:
    start = datetime(2022, 6, 1, 10, tzinfo=UTC)
    assert budget(start, start + timedelta(minutes=30)) == pytest.approx(80.0 / 8760 / 2, rel=1e-15)
    year = (datetime(2030, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC))
    assert budget(*year) == 0.0
    assert budget(start, start) == 0.0


# --- properties --------------------------------------------------------------------------

GAPS = st.integers(min_value=1, max_value=3 * HOUR_S * 1_000_000)  # microseconds


@st.composite
def timestamps(draw: st.DrawFn, min_size: int = 0, max_size: int = 25) -> list[datetime]:
    gaps = draw(st.lists(GAPS, min_size=min_size, max_size=max_size))
    start = DAY + timedelta(microseconds=draw(st.integers(0, HOUR_S * 1_000_000)))
    stamps: list[datetime] = []
    t = start
    for gap in gaps:
        t += timedelta(microseconds=gap)
        stamps.append(t)
    return stamps


VALUES = st.one_of(
    st.integers(0, 12).map(float),  # many ties, dips and recoveries
    st.sampled_from([0.0, 49_999.0, 50_000.0, 99_990.0, 99_999.5]),  # zeros, wraps
    st.floats(0, 100_000, allow_nan=False),
)
ROLLOVER = st.sampled_from([None, 12.0, 100_000.0])


@st.composite
def arbitrary_readings(draw: st.DrawFn) -> list[Reading]:
    stamps = draw(timestamps(max_size=20))
    return [Reading(t, draw(VALUES)) for t in stamps]


@st.composite
def replacements_for(draw: st.DrawFn, data: list[Reading]) -> list[Replacement]:
    if not data:
        return []
    candidates = [r.ts for r in data] + [r.ts - timedelta(seconds=1) for r in data]
    instants = draw(st.lists(st.sampled_from(candidates), max_size=3, unique=True))
    return [Replacement(t, draw(VALUES), draw(VALUES)) for t in instants]


@PROPERTY
@given(
    stamps=timestamps(min_size=1),
    first=st.floats(0, 1e6),
    increments=st.lists(st.floats(0, 1e4), min_size=25, max_size=25),
    max_gap_s=st.sampled_from([60, HOUR_S, 86_400]),
)
def test_monotonic_counter_hours_sum_to_last_minus_first(
    stamps: list[datetime], first: float, increments: list[float], max_gap_s: int
) -> None:
    values = [first]
    for inc in increments[: len(stamps) - 1]:
        values.append(values[-1] + inc)
    data = [Reading(t, v) for t, v in zip(stamps, values, strict=False)]
    intervals, events = counter_intervals(data, None, max_gap_s)
    assert all(e.kind == "long_gap" for e in events)
    total = math.fsum(amount for amount, _ in hourly_consumption(intervals).values())
    assert total == pytest.approx(values[-1] - values[0], rel=1e-9, abs=1e-9)


@PROPERTY
@given(data=arbitrary_readings(), rollover=ROLLOVER, draw=st.data())
def test_counter_result_does_not_depend_on_reading_order(
    data: list[Reading], rollover: float | None, draw: st.DataObject
) -> None:
    swaps = draw.draw(replacements_for(data))
    expected = counter_intervals(data, rollover, HOUR_S, swaps)
    shuffled = draw.draw(st.permutations(data))
    assert counter_intervals(shuffled, rollover, HOUR_S, swaps[::-1]) == expected


def assert_window_matches_full(
    data: list[Reading],
    rollover: float | None,
    swaps: list[Replacement],
    start: datetime,
) -> None:
    """Recomputing from `start` (a certainly kept reading) equals the full result after it."""
    intervals, events = counter_intervals(data, rollover, HOUR_S, swaps)
    window = counter_intervals(
        [r for r in data if r.ts >= start],
        rollover,
        HOUR_S,
        [s for s in swaps if s.at > start],
    )
    assert window == (
        [i for i in intervals if i.t0 >= start and i.t1 > start],
        [e for e in events if e.ts > start],
    )


@PROPERTY
@given(data=arbitrary_readings(), rollover=ROLLOVER)
def test_recomputing_from_a_certainly_kept_reading_equals_full_recomputation(
    data: list[Reading], rollover: float | None
) -> None:
    values = [r.value for r in data]
    for k, reading in enumerate(data):
        if certainly_kept(values, k):
            assert_window_matches_full(data, rollover, [], reading.ts)


@PROPERTY
@given(data=arbitrary_readings(), rollover=ROLLOVER, draw=st.data())
def test_windowed_recomputation_with_replacements(
    data: list[Reading], rollover: float | None, draw: st.DataObject
) -> None:
    swaps = draw.draw(replacements_for(data))
    segments = register_segments(data, swaps)
    for n, segment in enumerate(segments):
        values = [p.value for p in segment]
        first = 1 if n > 0 else 0  # (at, new_start) is no reading
        last = len(segment) - 1 if n < len(segments) - 1 else len(segment)  # (at, old_final)
        for j in range(first, last):
            if certainly_kept(values, j):
                assert_window_matches_full(data, rollover, swaps, segment[j].ts)


@PROPERTY
@given(
    start=timestamps(min_size=1, max_size=1),
    length_us=st.integers(0, 5 * 86_400 * 1_000_000),
    amount=st.floats(-1e9, 1e9, allow_nan=False),
)
def test_spread_parts_sum_to_the_amount(
    start: list[datetime], length_us: int, amount: float
) -> None:
    t0 = start[0]
    t1 = t0 + timedelta(microseconds=length_us)
    parts = spread(t0, t1, amount)
    assert all(h == floor_hour(h) for h in parts)
    assert min(parts) == floor_hour(t0)
    assert max(parts) < t1 or (t0 == t1 and list(parts) == [floor_hour(t0)])
    assert math.fsum(parts.values()) == pytest.approx(amount, rel=1e-12, abs=1e-300)


@PROPERTY
@given(data=arbitrary_readings(), interval_s=st.sampled_from([60, 900, 3600, 5400]))
def test_delta_hours_sum_to_the_readings(data: list[Reading], interval_s: int) -> None:
    hours = hourly_consumption(delta_intervals(data, interval_s))
    expected = math.fsum(r.value for r in data)
    assert math.fsum(v for v, _ in hours.values()) == pytest.approx(expected, rel=1e-12)
