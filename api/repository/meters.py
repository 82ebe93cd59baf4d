"""SQL of the meters list: registration, last reading and data-quality counts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

_SELECT = """
SELECT m.id, m.site_id AS site, m.enterprise_id AS enterprise, m.kind, m.unit, m.reading,
       m.parent_id AS parent, m.active, m.commissioned_at,
       (SELECT r.ts FROM readings r WHERE r.meter_id = m.id ORDER BY r.ts DESC LIMIT 1)
           AS last_reading_at,
       (SELECT coalesce(jsonb_object_agg(kind, n), '{}') FROM
           (SELECT kind, count(*) AS n FROM data_quality_events d WHERE d.meter_id = m.id
            GROUP BY kind) k) AS events,
       (SELECT count(*) FROM reading_conflicts c WHERE c.meter_id = m.id) AS conflicts,
       (SELECT count(*) FROM quarantine q WHERE q.meter_id = m.id) AS quarantined
FROM meters m
"""


def _shape(row: Any) -> dict[str, Any]:
    item = dict(row._mapping)
    events = item.pop("events") or {}
    item["data_quality"] = {
        **{k: int(v) for k, v in events.items()},
        "conflicts": item.pop("conflicts"),
        "quarantined": item.pop("quarantined"),
    }
    return item


def list_meters(
    conn: Connection, site: str, enterprise: str | None, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    where = "m.site_id = :s AND (CAST(:e AS text) IS NULL OR m.enterprise_id = :e)"
    params = {"s": site, "e": enterprise, "n": limit, "o": offset}
    total = conn.execute(
        text(f"SELECT count(*) FROM meters m WHERE {where}"),  # noqa: S608
        params,
    ).scalar_one()
    rows = conn.execute(
        text(f"{_SELECT} WHERE {where} ORDER BY m.id LIMIT :n OFFSET :o"),
        params,
    )
    return int(total), [_shape(r) for r in rows]


def get_meter(conn: Connection, meter_id: str) -> dict[str, Any] | None:
    sql = text(f"{_SELECT} WHERE m.id = :m")
    row = conn.execute(sql, {"m": meter_id}).first()
    return None if row is None else _shape(row)


def register(conn: Connection, meter_id: str) -> tuple[str, datetime]:
    """(reading kind, commissioned_at) of an existing meter."""
    row = conn.execute(
        text("SELECT reading, commissioned_at FROM meters WHERE id = :m"), {"m": meter_id}
    ).one()
    return str(row.reading), row.commissioned_at
