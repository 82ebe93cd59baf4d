"""SQL of the engine's work queue: dirty meter-hours, who works on which meter,
and the events that make hours dirty besides new readings (rebuilds, factor
changes, meter replacements)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text

from core.emissions.counters import Replacement


def dirty_meters(conn: Connection, limit: int) -> list[str]:
    """Meters with marks, oldest marks first, so a busy meter cannot starve the rest."""
    rows = conn.execute(
        text(
            "SELECT meter_id FROM dirty_meter_hours GROUP BY meter_id "
            "ORDER BY min(first_marked_at) LIMIT :n"
        ),
        {"n": limit},
    )
    return [str(r) for r in rows.scalars()]


def try_lock_meter(conn: Connection, meter_id: str) -> bool:
    """Transaction-scoped advisory lock: two engines never work on one meter at once."""
    return bool(
        conn.execute(
            text("SELECT pg_try_advisory_xact_lock(hashtextextended('engine:' || :m, 0))"),
            {"m": meter_id},
        ).scalar_one()
    )


@dataclass(frozen=True, slots=True)
class Mark:
    hour: datetime
    marked_at: datetime
    min_ts: datetime


def dirty_marks(conn: Connection, meter_id: str) -> list[Mark]:
    rows = conn.execute(
        text(
            "SELECT hour, marked_at, min_ts FROM dirty_meter_hours WHERE meter_id = :m "
            "ORDER BY hour"
        ),
        {"m": meter_id},
    )
    return [Mark(r.hour, r.marked_at, r.min_ts) for r in rows]


def delete_marks(conn: Connection, meter_id: str, marks: Sequence[Mark]) -> None:
    """Delete only the marks as they were read: a mark re-stamped by a concurrent
    ingest commit stays, so its reading is picked up next round."""
    conn.execute(
        text(
            "DELETE FROM dirty_meter_hours d USING unnest(CAST(:hours AS timestamptz[]), "
            "CAST(:stamps AS timestamptz[])) AS seen(hour, marked_at) "
            "WHERE d.meter_id = :m AND d.hour = seen.hour AND d.marked_at = seen.marked_at"
        ),
        {"m": meter_id, "hours": [k.hour for k in marks], "stamps": [k.marked_at for k in marks]},
    )


def mark_range_dirty(conn: Connection, site_id: str, t0: datetime, t1: datetime) -> int:
    """Mark every meter-hour with readings in [t0, t1) dirty (for a rebuild)."""
    return conn.execute(
        text(
            "INSERT INTO dirty_meter_hours (meter_id, hour, min_ts) "
            "SELECT DISTINCT r.meter_id, date_trunc('hour', r.ts, 'UTC'), "
            "date_trunc('hour', r.ts, 'UTC') FROM readings r "
            "JOIN meters m ON m.id = r.meter_id "
            "WHERE m.site_id = :s AND r.ts >= :t0 AND r.ts < :t1 "
            "ON CONFLICT (meter_id, hour) DO UPDATE SET marked_at = clock_timestamp(), "
            "min_ts = least(dirty_meter_hours.min_ts, EXCLUDED.min_ts)"
        ),
        {"s": site_id, "t0": t0, "t1": t1},
    ).rowcount


def dirty_count(conn: Connection) -> int:
    return int(conn.execute(text("SELECT count(*) FROM dirty_meter_hours")).scalar_one())


def mark_factor_hours_dirty(conn: Connection, factor_key: str, valid_from: datetime) -> int:
    """A new or changed factor value restates exactly the hours it covers: from its
    valid_from to the next value's, for the meters priced with that factor."""
    return conn.execute(
        text(
            "INSERT INTO dirty_meter_hours (meter_id, hour, min_ts) "
            "SELECT h.meter_id, h.hour, h.hour FROM hourly_emissions h "
            "JOIN meters m ON m.id = h.meter_id "
            "WHERE m.factor_key = :k AND h.hour >= :vf AND h.hour < coalesce("
            "(SELECT min(valid_from) FROM emission_factor_values "
            "WHERE factor_key = :k AND valid_from > :vf), 'infinity') "
            "ON CONFLICT (meter_id, hour) DO UPDATE SET marked_at = clock_timestamp(), "
            "min_ts = least(dirty_meter_hours.min_ts, EXCLUDED.min_ts)"
        ),
        {"k": factor_key, "vf": valid_from},
    ).rowcount


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
    conn.execute(
        text(
            "INSERT INTO dirty_meter_hours (meter_id, hour, min_ts) "
            "VALUES (:m, date_trunc('hour', CAST(:at AS timestamptz), 'UTC'), :at) "
            "ON CONFLICT (meter_id, hour) DO UPDATE SET marked_at = clock_timestamp(), "
            "min_ts = least(dirty_meter_hours.min_ts, EXCLUDED.min_ts)"
        ),
        {"m": meter_id, "at": swap.at},
    )
    return True
