"""SQL of the alerts list (the alerts table is the evaluator's; acknowledging is
`alerts.state.acknowledge`, the one owner of alert state changes)."""

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
