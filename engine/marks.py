"""SQL of the engine's work queue, read side: which meters are dirty, who works on
which meter, clearing the marks it saw; and meter replacements. Marks are written
only through `core/dirty_marks.py`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import zip_longest

from sqlalchemy import Connection, text

from core.dirty_marks import mark_instant
from core.emissions.counters import Replacement
from core.emissions.hours import HOUR
from engine.repository import driver_cursor


def dirty_meters(conn: Connection, limit: int) -> list[tuple[str, int]]:
    """(meter, dirty hours) of the meters with marks, oldest marks first, so a busy
    meter cannot starve the rest."""
    rows = conn.execute(
        text(
            "SELECT meter_id, count(*) FROM dirty_meter_hours GROUP BY meter_id "
            "ORDER BY min(first_marked_at) LIMIT :n"
        ),
        {"n": limit},
    )
    return [(str(m), int(n)) for m, n in rows]


@dataclass(frozen=True, slots=True)
class Batch:
    """Meters refreshed in one transaction, and which of their marks: all of them,
    or those of the hours in [h0, h1) (`hours`). `marks` is how many the plan
    expects (for progress bars)."""

    meters: list[str]
    marks: int
    hours: tuple[datetime, datetime] | None = None


def plan_batches(
    conn: Connection, dirty: list[tuple[str, int]], meters: int, hours: int, workers: int = 1
) -> list[Batch]:
    """A pass's batches of at most `meters` meters and about `hours` dirty hours.

    Meters with few marks (the live case) are grouped whole. Meters with more than
    `hours` (a backfill, a rebuild) are grouped as well, and each group is cut into
    ranges of consecutive hours: a batch's totals are refreshed for every hour it
    touched, so one meter-year per batch refreshed its site's year of totals once
    per meter (36 of a 58 s site rebuild); a range of all meters' hours refreshes
    each hour once. The long meters are dealt into one group per worker (`workers`
    threads of this process work through the same plan), and the groups' ranges
    interleaved: a worker that finds one group's batch held by another takes the
    next group's instead of finding every batch held. Short batches come first, so
    live meters stay fresh while a rebuild runs."""
    short = [(m, n) for m, n in dirty if n <= hours]
    long = [m for m, n in dirty if n > hours]
    plan = [
        Batch([m for m, _ in group], sum(n for _, n in group))
        for group in _groups(short, meters, hours)
    ]
    per_group = min(meters, -(-len(long) // max(1, workers)))  # ceil
    groups = [long[k : k + per_group] for k in range(0, len(long), per_group)] if long else []
    sliced = [
        [Batch(group, n, r) for r, n in hour_ranges(hour_counts(conn, group), hours)]
        for group in groups
    ]
    plan += [b for column in zip_longest(*sliced) for b in column if b is not None]
    return plan


def _groups(
    dirty: list[tuple[str, int]], meters: int, hours: int
) -> Iterator[list[tuple[str, int]]]:
    """Consecutive groups of at most `meters` meters and `hours` dirty hours."""
    group: list[tuple[str, int]] = []
    total = 0
    for meter, count in dirty:
        if group and (len(group) >= meters or total + count > hours):
            yield group
            group, total = [], 0
        group.append((meter, count))
        total += count
    if group:
        yield group


def hour_counts(conn: Connection, meter_ids: list[str]) -> list[tuple[datetime, int]]:
    """Marks per hour of these meters, in hour order."""
    cur = driver_cursor(conn)
    cur.execute(
        "SELECT hour, count(*) FROM dirty_meter_hours WHERE meter_id = ANY(%b::text[]) "
        "GROUP BY hour ORDER BY hour",
        [meter_ids],
    )
    return [(h, int(n)) for h, n in cur.fetchall()]


def hour_ranges(
    counts: list[tuple[datetime, int]], limit: int
) -> list[tuple[tuple[datetime, datetime], int]]:
    """Consecutive ranges [h0, h1) of the hours in `counts` (hour, marks), each
    holding at most `limit` marks unless one hour alone has more; with the marks
    each holds. The last range ends after the last hour; marks that arrive later
    for hours between two ranges belong to the later one."""
    ranges: list[tuple[tuple[datetime, datetime], int]] = []
    start: datetime | None = None
    total = 0
    for hour, count in counts:
        if start is None:
            start = hour
        elif total + count > limit:
            ranges.append(((start, hour), total))
            start, total = hour, 0
        total += count
    if start is not None:
        ranges.append(((start, counts[-1][0] + HOUR), total))
    return ranges


def claim_meters(conn: Connection, meter_ids: list[str]) -> list[str]:
    """The meters this transaction now holds, sorted: a transaction-scoped advisory
    try-lock per meter, so two engines never compute one meter, and a meter held
    elsewhere is skipped this pass instead of waited for (no lost or doubled work,
    no lock queue)."""
    cur = driver_cursor(conn)
    cur.execute(
        "SELECT m FROM unnest(%b::text[]) AS m "
        "WHERE pg_try_advisory_xact_lock(hashtextextended('engine:' || m, 0)) ORDER BY m",
        [sorted(meter_ids)],
    )
    return [str(m) for (m,) in cur.fetchall()]


@dataclass(frozen=True, slots=True)
class Mark:
    hour: datetime
    marked_at: datetime
    min_ts: datetime


def delete_marks(
    conn: Connection, marks: dict[str, list[Mark]]
) -> list[tuple[str, datetime, datetime]]:
    """Delete only the marks as they were read: a mark re-stamped by a concurrent
    ingest commit stays, so its reading is picked up next round. The rows are
    locked first in (meter, hour) order, the order ingest upserts them in, so the
    two never deadlock. Returns the survivors, still locked: (meter, hour, min_ts)."""
    seen = {(m, k.hour): k.marked_at for m, ks in marks.items() for k in ks}
    if not seen:
        return []
    cur = driver_cursor(conn)
    cur.execute(
        "SELECT d.meter_id, d.hour, d.marked_at, d.min_ts FROM dirty_meter_hours d "
        "JOIN unnest(%b::text[], %b::timestamptz[]) AS seen(m, h) ON d.meter_id = seen.m "
        'AND d.hour = seen.h ORDER BY d.meter_id COLLATE "C", d.hour FOR UPDATE OF d',
        [[m for m, _ in seen], [h for _, h in seen]],
    )
    rows = cur.fetchall()
    done = [(m, h) for m, h, at, _ in rows if seen[(m, h)] == at]
    if done:
        cur.execute(
            "DELETE FROM dirty_meter_hours d USING unnest(%b::text[], %b::timestamptz[]) "
            "AS k(m, h) WHERE d.meter_id = k.m AND d.hour = k.h",
            [[m for m, _ in done], [h for _, h in done]],
        )
    return [(m, h, t) for m, h, at, t in rows if seen[(m, h)] != at]


def reading_counts(conn: Connection, ranges: list[tuple[str, datetime, datetime]]) -> list[int]:
    """Readings of each (meter, t0, t1) with t0 <= ts <= t1, as committed now."""
    if not ranges:
        return []
    cur = driver_cursor(conn)
    cur.execute(
        "SELECT (SELECT count(*) FROM readings r WHERE r.meter_id = k.m AND r.ts >= k.t0 "
        "AND r.ts <= k.t1) FROM unnest(%b::text[], %b::timestamptz[], %b::timestamptz[]) "
        "WITH ORDINALITY AS k(m, t0, t1, n) ORDER BY k.n",
        [list(c) for c in zip(*ranges, strict=True)],
    )
    return [int(n) for (n,) in cur.fetchall()]


def advance_marks(conn: Connection, rows: list[tuple[str, datetime, datetime]]) -> None:
    """Set the `min_ts` of locked survivors (meter, hour, min_ts)."""
    if rows:
        driver_cursor(conn).execute(
            "UPDATE dirty_meter_hours d SET min_ts = k.t FROM unnest(%b::text[], "
            "%b::timestamptz[], %b::timestamptz[]) AS k(m, h, t) "
            "WHERE d.meter_id = k.m AND d.hour = k.h",
            [list(c) for c in zip(*rows, strict=True)],
        )


def dirty_count(conn: Connection) -> int:
    return int(conn.execute(text("SELECT count(*) FROM dirty_meter_hours")).scalar_one())


def dirty_count_of_site(conn: Connection, site_id: str, t0: datetime, t1: datetime) -> int:
    """Marks of the site's meters in the hours of [t0, t1): what a rebuild of that
    range waits for (the whole queue is never empty while readings keep arriving)."""
    return int(
        conn.execute(
            text(
                "SELECT count(*) FROM dirty_meter_hours d JOIN meters m ON m.id = d.meter_id "
                "WHERE m.site_id = :s AND d.hour >= date_trunc('hour', CAST(:t0 AS timestamptz), "
                "'UTC') AND d.hour < :t1"
            ),
            {"s": site_id, "t0": t0, "t1": t1},
        ).scalar_one()
    )


def record_replacement(conn: Connection, meter_id: str, swap: Replacement, note: str) -> bool:
    """Store a meter replacement (SPEC section 5: explicit, never guessed) and mark
    the hour it falls in as a late arrival, so the engine restates the intervals
    across it. False when one is already recorded for that meter and time."""
    inserted = conn.execute(
        text(
            "INSERT INTO meter_replacements (meter_id, replaced_at, old_final_value, "
            "new_start_value, note) VALUES (:m, :at, :old, :new, :note) ON CONFLICT DO NOTHING"
        ),
        {"m": meter_id, "at": swap.at, "old": swap.old_final, "new": swap.new_start, "note": note},
    ).rowcount
    if not inserted:
        return False
    detail = {"old_final": swap.old_final, "new_start": swap.new_start}
    conn.execute(
        text(
            "INSERT INTO data_quality_events (meter_id, ts, kind, detail) "
            "VALUES (:m, :at, 'replacement', CAST(:detail AS jsonb)) ON CONFLICT DO NOTHING"
        ),
        {"m": meter_id, "at": swap.at, "detail": json.dumps(detail)},
    )
    mark_instant(conn, meter_id, swap.at)
    return True
