"""SQL of the alerts list and acknowledgement (the alerts table is the evaluator's)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

_COLUMNS = (
    "id, rule, subject, site_id AS site, enterprise_id AS enterprise, state, summary, value, "
    "threshold, started_at, updated_at, acknowledged_at, acknowledged_by, resolved_at"
)

STATES: dict[str, tuple[str, ...]] = {
    "firing": ("firing",),
    "acknowledged": ("acknowledged",),
    "open": ("firing", "acknowledged"),
    "resolved": ("resolved",),
    "all": ("firing", "acknowledged", "resolved"),
}


def list_alerts(
    conn: Connection,
    site: str,
    state: str,
    enterprise: str | None,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    rows = conn.execute(
        text(
            f"SELECT {_COLUMNS} FROM alerts WHERE site_id = :s AND state = ANY(:states) "  # noqa: S608
            "AND (CAST(:e AS text) IS NULL OR enterprise_id = :e) "
            "ORDER BY started_at DESC, id DESC LIMIT :n OFFSET :o"
        ),
        {"s": site, "states": list(STATES[state]), "e": enterprise, "n": limit, "o": offset},
    )
    return [dict(r._mapping) for r in rows]


def get_alert(conn: Connection, alert_id: int) -> dict[str, Any] | None:
    row = conn.execute(
        text(f"SELECT {_COLUMNS} FROM alerts WHERE id = :id"),  # noqa: S608
        {"id": alert_id},
    ).first()
    return None if row is None else dict(row._mapping)


def acknowledge(conn: Connection, alert_id: int, by: str, note: str) -> bool:
    """Firing -> acknowledged, with an event; False when it was not firing."""
    changed = conn.execute(
        text(
            "UPDATE alerts SET state = 'acknowledged', acknowledged_at = now(), "
            "acknowledged_by = :by, updated_at = now() WHERE id = :id AND state = 'firing'"
        ),
        {"id": alert_id, "by": by},
    ).rowcount
    if changed:
        conn.execute(
            text(
                "INSERT INTO alert_events (alert_id, state, detail) "
                "VALUES (:id, 'acknowledged', :detail)"
            ),
            {"id": alert_id, "detail": f"by {by}" + (f": {note}" if note else "")},
        )
    return bool(changed)
