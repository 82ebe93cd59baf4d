"""The plausibility guard (core.emissions.plausibility) on the engine's own counter
arithmetic: a register restart no longer adds tonnes, its hours read as estimated,
and an accepted interval counts."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from core.emissions.counters import Interval, Reading, counter_intervals
from core.emissions.hourly import hourly_consumption
from core.emissions.plausibility import derived_max_rate, guard_intervals, interval_rate_per_h

T0 = datetime(2026, 3, 1, 8, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def restarted_register() -> list[Reading]:
    """A steel mill's incomer at ~600 kWh/h, whose register restarts from 480,000 kWh
    at 08:03 (a simulator run without its saved state starts from the seed again)."""
    values = [520_000.0, 520_010.0, 520_020.0, 480_000.0, 480_010.0, 480_020.0]
    return [Reading(T0 + i * MINUTE, v) for i, v in enumerate(values)]


def test_a_register_restart_no_longer_adds_tonnes() -> None:
    intervals, events = counter_intervals(restarted_register(), None, 3600)
    assert [e.kind for e in events] == ["reset"]
    unguarded = math.fsum(i.amount for i in intervals)
    assert unguarded == pytest.approx(40.0 + 480_000.0)  # the whole register "consumed"
    guarded, flagged = guard_intervals(intervals, max_rate_per_h=5_000.0)
    assert math.fsum(i.amount for i in guarded) == pytest.approx(40.0)
    (event,) = flagged
    assert event.kind == "implausible" and event.ts == T0 + 3 * MINUTE
    assert event.detail["consumption"] == 480_000.0
    assert event.detail["rate_per_h"] == pytest.approx(480_000.0 * 60)
    assert event.detail["max_rate_per_h"] == 5_000.0
    # The hour it touches is estimated until an admin decides.
    amount, estimated = hourly_consumption(guarded)[T0]
    assert amount == pytest.approx(40.0) and estimated


def test_an_accepted_interval_counts() -> None:
    intervals, _ = counter_intervals(restarted_register(), None, 3600)
    guarded, flagged = guard_intervals(intervals, 5_000.0, accepted={T0 + 3 * MINUTE})
    assert flagged == []
    assert math.fsum(i.amount for i in guarded) == pytest.approx(480_040.0)
    amount, estimated = hourly_consumption(guarded)[T0]
    assert amount == pytest.approx(480_040.0) and not estimated


def test_no_limit_changes_nothing_and_a_bad_limit_is_refused() -> None:
    intervals, _ = counter_intervals(restarted_register(), None, 3600)
    assert guard_intervals(intervals, None) == (intervals, [])
    with pytest.raises(ValueError, match="positive"):
        guard_intervals(intervals, 0.0)


def test_rates() -> None:
    assert interval_rate_per_h(Interval(T0, T0 + 30 * MINUTE, 10.0, False)) == 20.0
    assert interval_rate_per_h(Interval(T0, T0, 0.0, False)) == 0.0
    assert interval_rate_per_h(Interval(T0, T0, 1.0, False)) == math.inf


def test_a_limit_derived_from_history() -> None:
    hourly = [
        Interval(T0 + timedelta(hours=h), T0 + timedelta(hours=h + 1), 500.0 + h % 7, False)
        for h in range(24 * 14)
    ]
    limit = derived_max_rate(hourly)
    assert limit == pytest.approx(5 * 506.0)
    assert derived_max_rate(hourly[:100]) is None  # too little history: no guard
    # Estimated (gap) intervals do not teach the limit anything.
    gaps = [Interval(i.t0, i.t1, 1e9, True) for i in hourly]
    assert derived_max_rate(gaps) is None
