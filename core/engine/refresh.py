"""Recompute a dirty meter's hours from raw readings: one meter, one transaction.

The arithmetic is `core.emissions` (pure); `core.engine.windows` picks which
hours to rewrite and from which readings; this module fetches and writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection

from core.emissions.counters import Interval, QualityEvent, counter_intervals
from core.emissions.delta import delta_intervals
from core.emissions.hourly import factor_at, hourly_consumption, scope_of
from core.engine import repository as repo
from core.engine.windows import Window, clusters, counter_window, delta_window
from core.units import convert

Computed = tuple[Window, list[Interval], list[QualityEvent]]


def hour_rows(
    meter: repo.MeterSpec,
    intervals: Iterable[Interval],
    factors: list[tuple[datetime, float, int]],
    window: Window,
) -> list[repo.HourRow]:
    """The window's hours priced with the factor valid at each hour's start. Solar
    generation is reported as avoided emissions only, never as negative CO2e."""
    rows = []
    scope = scope_of(meter.kind)
    solar = meter.kind == "solar"
    for hour, (amount, estimated) in sorted(hourly_consumption(intervals).items()):
        if not window.first_hour <= hour < window.end_hour:
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
    return window, intervals, events


def refresh_meter(conn: Connection, meter_id: str) -> int | None:
    """Recompute every dirty run of one meter; None if another engine holds it.
    Returns the number of hour rows written."""
    if not repo.try_lock_meter(conn, meter_id):
        return None
    marks = repo.dirty_marks(conn, meter_id)
    meter = repo.meter_spec(conn, meter_id)
    written = 0
    if meter is not None:
        factors = repo.factor_values(conn, meter.factor_key)
        for run in clusters([hour for hour, _ in marks]):
            computed = (
                _delta(conn, meter, run) if meter.reading == "delta" else _counter(conn, meter, run)
            )
            if computed is None:
                continue
            window, intervals, events = computed
            rows = hour_rows(meter, intervals, factors, window)
            repo.replace_hours(conn, meter, window.first_hour, window.end_hour, rows)
            if meter.reading == "counter":
                end = window.stop or window.end_hour
                repo.replace_events(conn, meter.id, window.start, end, events)
            written += len(rows)
    repo.delete_marks(conn, meter_id, marks)
    return written
