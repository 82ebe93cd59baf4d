"""Recompute dirty meters' hours from raw readings: many meters, one transaction.

The arithmetic is `core.emissions` (pure); `engine.windows` picks which hours to
rewrite and from which readings; `engine.reads` fetches a batch's marks and
readings in one statement and `engine.writes` writes its rows in a few. Per
meter, the steps are those of a single-meter refresh (so a batch gives the same
rows as one meter at a time: tests/test_engine.py checks it): `refresh_meter`
computes, `hour_rows` prices.

The transaction is READ COMMITTED with explicit locks (docs/engine.md says why):
a meter is claimed with a transaction-scoped advisory try-lock, so two engines
never compute one meter and neither waits; the totals are refreshed under
blocking advisory locks taken in one sorted order, after which a statement's
snapshot includes every earlier holder's committed meter-hours.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection

from core.emissions.counters import Interval, QualityEvent, counter_intervals
from core.emissions.delta import delta_intervals
from core.emissions.hourly import factor_at, hourly_consumption
from core.emissions.plausibility import with_guard
from core.meter_kinds import scope_of
from core.units import convert
from engine import marks as queue
from engine import repository as repo
from engine.append import append_counter, append_delta
from engine.marks import Mark
from engine.reads import MeterReads, prefetch
from engine.rollups import lock_totals, refresh_totals_at
from engine.windows import Window, clusters, counter_window, delta_window
from engine.writes import BatchWrites

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


def _delta(reads: MeterReads, meter: repo.MeterSpec, run: tuple[datetime, datetime]) -> Computed:
    assert meter.interval_s is not None
    window = delta_window(run, meter.interval_s)
    assert window.stop is not None
    readings = reads.between(window.start, window.stop)
    inside = [r for r in readings if r.ts > window.start]
    return window, delta_intervals(inside, meter.interval_s), []


def _counter(
    reads: MeterReads, meter: repo.MeterSpec, run: tuple[datetime, datetime]
) -> Computed | None:
    replacements = reads.replacements
    window = counter_window(run, reads.before, reads.after, replacements)
    if window is None:
        return None
    stop = window.stop or window.end_hour
    readings = reads.between(window.start, stop)
    inside = [r for r in replacements if window.start < r.at <= stop]
    intervals, events = counter_intervals(readings, meter.rollover, meter.max_gap_s, inside)
    intervals, events = with_guard(intervals, events, meter.max_rate_per_h, reads.accepted)
    return window, intervals, events


def _recompute_runs(
    reads: MeterReads,
    writes: BatchWrites,
    meter: repo.MeterSpec,
    marks: list[Mark],
    factors: list[tuple[datetime, float, int]],
) -> int:
    """The general path: late or out-of-order readings, factor restatements."""
    written = 0
    for run in clusters([m.hour for m in marks]):
        computed = (
            _delta(reads, meter, run) if meter.reading == "delta" else _counter(reads, meter, run)
        )
        if computed is None:
            continue
        window, intervals, events = computed
        amounts = hourly_consumption(intervals)
        rows = hour_rows(meter, amounts, factors, window.first_hour, window.end_hour)
        writes.replace_hours(meter, window.first_hour, window.end_hour, rows)
        if meter.reading == "counter":
            writes.replace_events(meter.id, window.start, window.stop or window.end_hour, events)
        written += len(rows)
    return written


def refresh_meter(
    reads: MeterReads,
    writes: BatchWrites,
    meter: repo.MeterSpec,
    marks: list[Mark],
    factors: list[tuple[datetime, float, int]],
    watermark: datetime | None,
) -> int:
    """One meter's hours brought up to date with the readings of the batch's
    snapshot, into `writes`; returns the hour rows written. The append path when
    the prefetch found it applies (`reads.appends`), else the general path."""

    def rows_for(
        amounts: dict[datetime, tuple[float, bool]], h0: datetime, h1: datetime
    ) -> list[repo.HourRow]:
        return hour_rows(meter, amounts, factors, h0, h1)

    appended: tuple[int, datetime] | None = None
    if reads.appends and watermark is not None:
        first_new = min(m.min_ts for m in marks)
        appended = (
            append_delta(reads, writes, meter, watermark, rows_for)
            if meter.reading == "delta"
            else append_counter(reads, writes, meter, watermark, first_new, rows_for)
        )
    last: datetime | None
    if appended is not None:
        written, last = appended
    else:
        written = _recompute_runs(reads, writes, meter, marks, factors)
        last = reads.last if reads.last is not None else watermark
    if last is not None:
        writes.set_computed_until(meter.id, last)
    return written


def refresh_batch(
    conn: Connection, meter_ids: list[str], hours: tuple[datetime, datetime] | None = None
) -> tuple[int, int] | None:
    """Bring the meters of `meter_ids` this engine can claim up to date (only their
    marks of the hours in `hours`, when given), in the caller's READ COMMITTED
    transaction: (meters refreshed, hour rows written); None if another engine
    holds every one of them."""
    claimed = queue.claim_meters(conn, meter_ids)
    if not claimed:
        return None
    specs = repo.meter_specs(conn, claimed)
    factors = repo.factor_values(conn, sorted({s.factor_key for s in specs.values()}))
    watermarks = repo.watermarks(conn, claimed)
    replacements = repo.replacements(conn, claimed)
    accepted = repo.accepted_ends(conn, claimed)
    marks, reads = prefetch(conn, claimed, hours)
    writes = BatchWrites()
    written = 0
    for meter_id, meter_marks in sorted(marks.items()):
        meter = specs.get(meter_id)
        if meter is None:
            continue
        meter_reads = reads[meter_id]
        meter_reads.replacements = replacements.get(meter_id, [])
        meter_reads.accepted = accepted.get(meter_id, frozenset())
        written += refresh_meter(
            meter_reads,
            writes,
            meter,
            meter_marks,
            factors.get(meter.factor_key, []),
            watermarks.get(meter_id),
        )
    keys = writes.flush(conn)
    _advance_survivors(conn, marks, reads, writes, queue.delete_marks(conn, marks))
    lock_totals(conn, keys)
    refresh_totals_at(conn, keys)
    return len(marks), written


def _advance_survivors(
    conn: Connection,
    marks: dict[str, list[Mark]],
    reads: dict[str, MeterReads],
    writes: BatchWrites,
    survivors: list[tuple[str, datetime, datetime]],
) -> None:
    """A mark re-stamped by ingest while the batch ran survives with the `min_ts`
    the batch read (ingest keeps the least), which lies before the new watermark:
    left so, the meter would take the general path next pass although only
    appends arrived. When no earlier reading arrived (it would have lowered
    `min_ts`) and the readings in [min_ts, watermark] are still those of the
    batch's snapshot, every unpriced reading lies after the watermark, and
    `min_ts` moves there."""
    seen = {(m, k.hour): k.min_ts for m, ks in marks.items() for k in ks}
    checks: list[tuple[str, datetime, datetime, datetime, int]] = []
    for meter, hour, min_ts in survivors:
        watermark = writes.watermarks.get(meter)
        if watermark is None or min_ts != seen[(meter, hour)] or min_ts > watermark:
            continue
        held = reads[meter].count(min_ts, watermark)
        if held is not None:
            checks.append((meter, hour, min_ts, watermark, held))
    now = queue.reading_counts(conn, [(m, t0, t1) for m, _, t0, t1, _ in checks])
    queue.advance_marks(
        conn,
        [
            (m, h, w + timedelta(microseconds=1))
            for (m, h, _, w, held), count in zip(checks, now, strict=True)
            if count == held
        ],
    )
