"""Recompute a dirty meter's hours from raw readings: one meter, one transaction.

The arithmetic is `core.emissions` (pure); `engine.windows` picks which
hours to rewrite and from which readings; this module fetches and writes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from core.emissions.counters import Interval, QualityEvent, counter_intervals
from core.emissions.delta import delta_intervals
from core.emissions.hourly import factor_at, hourly_consumption, scope_of
from core.emissions.plausibility import guard_intervals
from core.units import convert
from engine import marks as queue
from engine import repository as repo
from engine.append import append_counter, append_delta
from engine.windows import Window, clusters, counter_window, delta_window

Computed = tuple[Window, list[Interval], list[QualityEvent]]


def hour_rows(
    meter: repo.MeterSpec,
    amounts: dict[datetime, tuple[float, bool]],
    factors: list[tuple[datetime, float, int]],
    first_hour: datetime,
    end_hour: datetime,
) -> list[repo.HourRow]:
    """Hours in [first_hour, end_hour) priced with the factor valid at each hour's
    start. Solar generation is reported as avoided emissions, never negative CO2e."""
    rows = []
    scope = scope_of(meter.kind)
    solar = meter.kind == "solar"
    for hour, (amount, estimated) in sorted(amounts.items()):
        if not first_hour <= hour < end_hour:
            continue
        factor = factor_at(factors, hour)
        kg = convert(amount, meter.unit, meter.factor_unit) * factor[0] if factor else 0.0
        rows.append(
            repo.HourRow(
                hour=hour,
                consumption=amount,
                co2e_kg=0.0 if solar else kg,
                avoided_co2e_kg=kg if solar else 0.0,
                estimated=estimated,
                factor_value_id=factor[1] if factor else None,
                scope=scope,
            )
        )
    return rows


def _delta(conn: Connection, meter: repo.MeterSpec, run: tuple[datetime, datetime]) -> Computed:
    assert meter.interval_s is not None
    window = delta_window(run, meter.interval_s)
    assert window.stop is not None
    readings = repo.readings_between(conn, meter.id, window.start, window.stop)
    inside = [r for r in readings if r.ts > window.start]
    return window, delta_intervals(inside, meter.interval_s), []


def _counter(
    conn: Connection, meter: repo.MeterSpec, run: tuple[datetime, datetime]
) -> Computed | None:
    replacements = repo.replacements(conn, meter.id)
    window = counter_window(
        run,
        lambda t, n: repo.readings_before(conn, meter.id, t, n),
        lambda t, n: repo.readings_from(conn, meter.id, t, n),
        replacements,
    )
    if window is None:
        return None
    stop = window.stop or window.end_hour
    readings = repo.readings_between(conn, meter.id, window.start, stop)
    inside = [r for r in replacements if window.start < r.at <= stop]
    intervals, events = counter_intervals(readings, meter.rollover, meter.max_gap_s, inside)
    if meter.max_rate_per_h is not None:
        accepted = repo.accepted_ends(conn, meter.id)
        intervals, implausible = guard_intervals(intervals, meter.max_rate_per_h, accepted)
        events = sorted([*events, *implausible], key=lambda e: e.ts)
    return window, intervals, events


def _recompute_runs(
    conn: Connection,
    meter: repo.MeterSpec,
    marks: list[queue.Mark],
    factors: list[tuple[datetime, float, int]],
) -> int:
    """The general path: late or out-of-order readings, factor restatements."""
    written = 0
    for run in clusters([m.hour for m in marks]):
        computed = (
            _delta(conn, meter, run) if meter.reading == "delta" else _counter(conn, meter, run)
        )
        if computed is None:
            continue
        window, intervals, events = computed
        amounts = hourly_consumption(intervals)
        rows = hour_rows(meter, amounts, factors, window.first_hour, window.end_hour)
        repo.replace_hours(conn, meter, window.first_hour, window.end_hour, rows)
        if meter.reading == "counter":
            repo.replace_events(
                conn, meter.id, window.start, window.stop or window.end_hour, events
            )
        written += len(rows)
    return written


def refresh_meter(conn: Connection, meter_id: str) -> int | None:
    """Bring one meter's hours up to date with its readings; None if another engine
    holds it. Run in a REPEATABLE READ transaction: the watermark, the marks and
    the readings must come from one snapshot. Returns the hour rows written."""
    if not queue.try_lock_meter(conn, meter_id):
        return None
    marks = queue.dirty_marks(conn, meter_id)
    meter = repo.meter_spec(conn, meter_id)
    written = 0
    if meter is not None and marks:
        factors = repo.factor_values(conn, meter.factor_key)

        def rows_for(
            amounts: dict[datetime, tuple[float, bool]], h0: datetime, h1: datetime
        ) -> list[repo.HourRow]:
            return hour_rows(meter, amounts, factors, h0, h1)

        watermark = repo.computed_until(conn, meter_id)
        first_new = min(m.min_ts for m in marks)
        appended: tuple[int, datetime] | None = None
        if watermark is not None and first_new > watermark:
            appended = (
                append_delta(conn, meter, watermark, rows_for)
                if meter.reading == "delta"
                else append_counter(conn, meter, watermark, first_new, rows_for)
            )
        last: datetime | None
        if appended is not None:
            written, last = appended
        else:
            last_ts = repo.last_reading_ts(conn, meter_id)
            written = _recompute_runs(conn, meter, marks, factors)
            last = last_ts if last_ts is not None else watermark
        if last is not None:
            repo.set_computed_until(conn, meter_id, last)
    queue.delete_marks(conn, meter_id, marks)
    return written
