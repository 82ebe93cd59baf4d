"""Reads of a batch of dirty meters: one statement for every meter's readings.

Refreshing meters one by one cost a dozen round trips each (watermark, spec,
factors, the readings before and after a change, stored hours); at tens of
thousands of meters the engine spent its time waiting on them. Here one
statement fetches, for all meters of a batch, the readings around their dirty
hours, and one more the stored hours the append path adds to. `MeterReads` then
answers the window logic's questions from that cache, and falls back to a query
only when a question reaches outside it (a long run of glitches, a late reading
far back), so the result never depends on how much was prefetched.

Every reading a computation uses comes from at or before the meter's `last`:
the newest reading in the prefetch's snapshot. The engine runs in READ
COMMITTED, so a fallback query may see readings committed since; leaving them
out keeps the watermark exact (everything at or before it, and nothing after,
is priced), and their marks survive for the next pass.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice, repeat
from operator import lt
from typing import Any

from sqlalchemy import Connection

from core.emissions.counters import Reading, Replacement
from core.emissions.hours import floor_hour
from engine.marks import Mark
from engine.repository import driver_cursor

# Readings fetched before each meter's first dirty point, and again after its
# window: enough for the window logic's reach (3) and its first anchor and stop
# searches (16) in the common case, however far apart the readings are.
BEFORE = 32
# Margin after the last dirty hour: the window's stop lies a few readings later.
AFTER = timedelta(hours=3)

# One statement, so one snapshot: the marks and the readings they stand for (ingest
# commits both together). Per meter, the append path (every new reading after the
# watermark) needs the readings from its first new one on; the general path those
# around its dirty hours. One row per meter, its readings as arrays: a row per
# reading cost more to send, receive and take apart than the arithmetic on it.
# Columns: meter, its marks (hour, marked_at, min_ts), the readings before the point
# (ts, value), those from it to the window's upper bound (ts, value), the next ones
# after that bound (ts, value), the newest reading's ts, and the bound (NULL when
# appending). Arrays follow their subquery's order; `prefetch` checks it.
_PREFETCH = (
    "WITH mk AS MATERIALIZED (SELECT meter_id, hour, marked_at, min_ts FROM dirty_meter_hours "
    "WHERE meter_id = ANY(%(m)b::text[]) AND hour >= %(h0)b AND hour < %(h1)b), "
    "q AS MATERIALIZED (SELECT mk.meter_id AS m, "
    "coalesce(min(mk.min_ts) > min(w.computed_until), false) AND %(all)b AS app, "
    "min(mk.min_ts) AS first_new, min(mk.hour) AS h0, max(mk.hour) AS h1, "
    "array_agg(mk.hour ORDER BY mk.hour) AS hours, "
    "array_agg(mk.marked_at ORDER BY mk.hour) AS marked, "
    "array_agg(mk.min_ts ORDER BY mk.hour) AS min_ts "
    "FROM mk LEFT JOIN meter_engine_state w ON w.meter_id = mk.meter_id GROUP BY mk.meter_id), "
    "r AS MATERIALIZED (SELECT m, app, hours, marked, min_ts, CASE WHEN app THEN first_new "
    "ELSE h0 - interval '1 hour' END AS p, CASE WHEN app THEN 'infinity'::timestamptz "
    "ELSE h1 + %(after)b END AS hi FROM q) "
    "SELECT r.m, r.hours, r.marked, r.min_ts, b.ts, b.v, x.ts, x.v, a.ts, a.v, l.ts, "
    "CASE WHEN r.app THEN NULL ELSE r.hi END FROM r "
    "CROSS JOIN LATERAL (SELECT array_agg(ts) AS ts, array_agg(value) AS v FROM "
    "(SELECT ts, value FROM (SELECT ts, value FROM readings WHERE meter_id = r.m "
    "AND ts < r.p ORDER BY ts DESC LIMIT %(n)b) AS d ORDER BY ts) AS s) AS b "
    "CROSS JOIN LATERAL (SELECT array_agg(ts) AS ts, array_agg(value) AS v FROM "
    "(SELECT ts, value FROM readings WHERE meter_id = r.m AND ts >= r.p AND ts <= r.hi "
    "ORDER BY ts) AS s) AS x "
    "CROSS JOIN LATERAL (SELECT array_agg(ts) AS ts, array_agg(value) AS v FROM "
    "(SELECT ts, value FROM readings WHERE meter_id = r.m AND ts > r.hi "
    "ORDER BY ts LIMIT %(n)b) AS s) AS a "
    "LEFT JOIN LATERAL (SELECT ts FROM readings WHERE meter_id = r.m "
    "ORDER BY ts DESC LIMIT 1) AS l ON true"
)
_STORED = (
    "SELECT h.meter_id, h.hour, h.consumption, h.estimated FROM unnest(%(m)b::text[], "
    "%(h)b::timestamptz[]) AS q(m, h) JOIN hourly_emissions h "
    "ON h.meter_id = q.m AND h.hour >= q.h"
)


@dataclass(slots=True)
class MeterReads:
    """One meter's readings with ts in [lo, hi] (lo None: from its first; hi None:
    to `last`), answering the window logic with queries only outside them."""

    conn: Connection
    meter_id: str
    last: datetime | None
    lo: datetime | None = None
    hi: datetime | None = None
    rows: list[Reading] = field(default_factory=list)
    stamps: list[datetime] = field(default_factory=list)
    stored_from: datetime | None = None
    stored_rows: dict[datetime, tuple[float, bool]] = field(default_factory=dict)
    replacements: list[Replacement] = field(default_factory=list)
    accepted: frozenset[datetime] = frozenset()  # intervals accepted despite the guard
    # Every mark read lies after the watermark, and the batch holds all of the meter's
    # marks: the append path applies (decided in the prefetch's one snapshot).
    appends: bool = False

    def _covers(self, t0: datetime | None, t1: datetime | None) -> bool:
        low = self.lo is None or (t0 is not None and t0 >= self.lo)
        high = self.hi is None or (t1 is not None and t1 <= self.hi)
        return low and high

    def _query(self, sql: str, params: Sequence[Any]) -> list[Reading]:
        if self.last is None:
            return []
        cur = driver_cursor(self.conn)
        cur.execute(sql, params)
        return [Reading(ts, value) for ts, value in cur.fetchall()]

    def count(self, t0: datetime, t1: datetime) -> int | None:
        """Readings of the snapshot with t0 <= ts <= t1; None if not all were fetched."""
        if not self._covers(t0, t1):
            return None
        return bisect_right(self.stamps, t1) - bisect_left(self.stamps, t0)

    def before(self, t: datetime, n: int) -> list[Reading]:
        """The last n readings strictly before t, in time order."""
        i = bisect_left(self.stamps, t)
        if (self.hi is None or t <= self.hi) and (i >= n or self.lo is None):
            return self.rows[max(i - n, 0) : i]
        return self._query(
            "SELECT ts, value FROM (SELECT ts, value FROM readings WHERE meter_id = %s "
            "AND ts < %s AND ts <= %s ORDER BY ts DESC LIMIT %s) AS r ORDER BY ts",
            (self.meter_id, t, self.last, n),
        )

    def after(self, t: datetime, n: int) -> list[Reading]:
        """The first n readings at or after t, in time order."""
        i = bisect_left(self.stamps, t)
        found = self.rows[i : i + n]
        if self._covers(t, self.hi) and (len(found) == n or self.hi is None):
            return found
        return self._query(
            "SELECT ts, value FROM readings WHERE meter_id = %s AND ts >= %s AND ts <= %s "
            "ORDER BY ts LIMIT %s",
            (self.meter_id, t, self.last, n),
        )

    def between(self, t0: datetime, t1: datetime) -> list[Reading]:
        """Readings with t0 <= ts <= t1, in time order."""
        if self._covers(t0, t1 if self.last is None or t1 < self.last else self.last):
            return self.rows[bisect_left(self.stamps, t0) : bisect_right(self.stamps, t1)]
        return self._query(
            "SELECT ts, value FROM readings WHERE meter_id = %s AND ts BETWEEN %s AND %s "
            "AND ts <= %s ORDER BY ts",
            (self.meter_id, t0, t1, self.last),
        )

    def stored(self, h0: datetime, h1: datetime) -> dict[datetime, tuple[float, bool]]:
        """Stored hours in [h0, h1) of this meter (only the engine holding it writes them)."""
        if self.stored_from is not None and h0 >= self.stored_from:
            return {h: v for h, v in self.stored_rows.items() if h0 <= h < h1}
        cur = driver_cursor(self.conn)
        cur.execute(
            "SELECT hour, consumption, estimated FROM hourly_emissions "
            "WHERE meter_id = %s AND hour >= %s AND hour < %s",
            (self.meter_id, h0, h1),
        )
        return {h: (c, e) for h, c, e in cur.fetchall()}


# The hours of "all marks".
_ALL_HOURS = (datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC))


def prefetch(
    conn: Connection, ids: Sequence[str], hours: tuple[datetime, datetime] | None = None
) -> tuple[dict[str, list[Mark]], dict[str, MeterReads]]:
    """The batch's marks (those of the hours in `hours`, when given) and, per marked
    meter, its readings around them and its newest reading; for the meters that
    append (every mark after the watermark) also their stored hours from the first
    prefetched reading's hour on."""
    cur = driver_cursor(conn)
    h0, h1 = hours or _ALL_HOURS
    # A range of a meter's marks never appends: the stored hours it would add to may
    # lie in a range not recomputed yet.
    params = {"m": list(ids), "n": BEFORE, "after": AFTER, "h0": h0, "h1": h1}
    cur.execute(_PREFETCH, params | {"all": hours is None})
    marks: dict[str, list[Mark]] = {}
    out: dict[str, MeterReads] = {}
    for row in cur:
        meter, marked_hours, marked, min_ts, head_ts, head_v, in_ts, in_v = row[:8]
        next_ts, next_v, newest, hi = row[8:]
        marks[meter] = list(map(Mark, marked_hours, marked, min_ts))
        stamps = (head_ts or []) + (in_ts or []) + (next_ts or [])
        values = (head_v or []) + (in_v or []) + (next_v or [])
        rows = readings_of(stamps, values)
        out[meter] = MeterReads(
            conn,
            meter,
            newest,
            lo=None if len(head_ts or ()) < BEFORE else rows[0].ts,
            # Fewer than BEFORE readings after the window: all of them, to the newest.
            hi=None if hi is None or len(next_ts or ()) < BEFORE else rows[-1].ts,
            rows=rows,
            stamps=[r.ts for r in rows],
            appends=hi is None,  # the statement leaves the bound out when appending
        )
    wanted = {m: floor_hour(r.rows[0].ts) for m, r in out.items() if r.appends and r.rows}
    if wanted:
        cur.execute(_STORED, {"m": list(wanted), "h": list(wanted.values())})
        for meter, hour, consumption, estimated in cur.fetchall():
            out[meter].stored_rows[hour] = (consumption, estimated)
        for meter, hour in wanted.items():
            out[meter].stored_from = hour
    return marks, out


def readings_of(stamps: list[datetime], values: list[float]) -> list[Reading]:
    """`Reading`s of one meter's arrays, in time order. Built by `tuple.__new__`
    through `map`, in C: the named tuple's own constructor is a Python call, and
    the engine makes millions of them when it recomputes a site-year."""
    rows = list(map(tuple.__new__, repeat(Reading), zip(stamps, values, strict=True)))
    if all(map(lt, stamps, islice(stamps, 1, None))):
        return rows
    return sorted(rows)
