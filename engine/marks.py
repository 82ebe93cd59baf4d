"""SQL of the engine's work queue, read side: which meters are dirty, who works on
which meter, clearing the marks it saw; and meter replacements. Marks are written
only through `core/dirty_marks.py`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text

from core.dirty_marks import mark_instant
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


def dirty_count(conn: Connection) -> int:
    return int(conn.execute(text("SELECT count(*) FROM dirty_meter_hours")).scalar_one())


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
