"""The engine's work queue, written side: every writer that makes meter-hours stale
(ingest commits, the park loader publishing a factor, a rebuild, a meter
replacement) marks them here, with one upsert, so the rule below holds everywhere.

A mark that already exists gets a new `marked_at`, so an engine that read the old
mark before this commit does not delete it (it deletes only the marks it saw), and
`min_ts` keeps the earliest new reading, which tells the engine whether the meter
only appended or received late data. The engine reads and clears the queue in
`engine/marks.py`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

_UPSERT = (
    "ON CONFLICT (meter_id, hour) DO UPDATE SET marked_at = clock_timestamp(), "
    "min_ts = least(dirty_meter_hours.min_ts, EXCLUDED.min_ts)"
)


def _marks_from(rows: str) -> str:
    """The one upsert, fed by a statement's own rows of (meter_id, hour, min_ts)."""
    return f"INSERT INTO dirty_meter_hours (meter_id, hour, min_ts) {rows} {_UPSERT}"


# psycopg form for ingest's raw cursor; keys must come sorted, so concurrent ingest
# processes lock rows in the same order.
MARK_ARRAYS_PSYCOPG = _marks_from(
    "SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[])"
)

# Every meter-hour that has readings, as a rebuild marks them (benchmarks that load
# history with COPY, on a raw psycopg connection).
MARK_ALL_READINGS_PSYCOPG = _marks_from(
    "SELECT DISTINCT meter_id, date_trunc('hour', ts, 'UTC'), date_trunc('hour', ts, 'UTC') "
    "FROM readings ORDER BY 1, 2"
)


def mark_hours(
    conn: Connection, meters: list[str], hours: list[datetime], min_ts: list[datetime]
) -> int:
    """Marks (meter, hour) pairs given as parallel lists; returns the rows touched."""
    return conn.execute(
        text(
            _marks_from(
                "SELECT * FROM unnest(CAST(:m AS text[]), CAST(:h AS timestamptz[]), "
                "CAST(:t AS timestamptz[]))"
            )
        ),
        {"m": meters, "h": hours, "t": min_ts},
    ).rowcount


def mark_instant(conn: Connection, meter_id: str, at: datetime) -> None:
    """The hour holding `at`, as if a reading had arrived late at `at`."""
    conn.execute(
        text(_marks_from("VALUES (:m, date_trunc('hour', CAST(:at AS timestamptz), 'UTC'), :at)")),
        {"m": meter_id, "at": at},
    )


def mark_range(conn: Connection, site_id: str, t0: datetime, t1: datetime) -> int:
    """Every meter-hour of the site with readings in [t0, t1) (for a rebuild)."""
    return conn.execute(
        text(
            _marks_from(
                "SELECT DISTINCT r.meter_id, date_trunc('hour', r.ts, 'UTC'), "
                "date_trunc('hour', r.ts, 'UTC') FROM readings r "
                "JOIN meters m ON m.id = r.meter_id "
                "WHERE m.site_id = :s AND r.ts >= :t0 AND r.ts < :t1 ORDER BY 1, 2"
            )
        ),
        {"s": site_id, "t0": t0, "t1": t1},
    ).rowcount


def mark_factor_hours(conn: Connection, factor_key: str, valid_from: datetime) -> int:
    """A new or changed factor value restates exactly the hours it covers: from its
    valid_from to the next value's, for the meters priced with that factor."""
    return conn.execute(
        text(
            _marks_from(
                "SELECT h.meter_id, h.hour, h.hour FROM hourly_emissions h "
                "JOIN meters m ON m.id = h.meter_id "
                "WHERE m.factor_key = :k AND h.hour >= :vf AND h.hour < coalesce("
                "(SELECT min(valid_from) FROM emission_factor_values "
                "WHERE factor_key = :k AND valid_from > :vf), 'infinity') ORDER BY 1, 2"
            )
        ),
        {"k": factor_key, "vf": valid_from},
    ).rowcount
