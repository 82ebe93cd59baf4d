"""Alert state in the store: one open alert per (rule, subject), history, outbox.

Every change (fire, acknowledge, resolve, repeat) writes an `alert_events` row and
an `alert_outbox` row in the caller's transaction, so a change is notified exactly
when it commits. Concurrent evaluators serialise on the (rule, subject) row of
`alert_conditions` (SELECT ... FOR UPDATE); the partial unique index `alerts_one_open`
is the last word: a second open alert for the same (rule, subject) cannot exist.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Connection, text

from alerts.rules import Action, Check, decide

_OPEN = text(
    "SELECT id FROM alerts WHERE rule = :rule AND subject = :subject AND state <> 'resolved'"
)
_CONDITION = text(
    "SELECT breaching_since, evaluated_at FROM alert_conditions "
    "WHERE rule = :rule AND subject = :subject FOR UPDATE"
)
_ENSURE_CONDITION = text(
    "INSERT INTO alert_conditions (rule, subject) VALUES (:rule, :subject) ON CONFLICT DO NOTHING"
)
_SAVE_CONDITION = text(
    "UPDATE alert_conditions SET breaching_since = :since, value = :value, evaluated_at = :now "
    "WHERE rule = :rule AND subject = :subject"
)
_INSERT_ALERT = text(
    "INSERT INTO alerts (rule, subject, site_id, enterprise_id, state, summary, value, "
    "threshold, details, started_at, updated_at) "
    "VALUES (:rule, :subject, :site, :enterprise, 'firing', :summary, :value, :threshold, "
    "CAST(:details AS jsonb), :now, :now) "
    "ON CONFLICT (rule, subject) WHERE state <> 'resolved' DO NOTHING RETURNING id"
)


def record_change(
    conn: Connection, alert_id: int, state: str, at: datetime, detail: str, value: float | None
) -> int:
    """History row + outbox row for one change; returns the outbox id."""
    event_id = conn.execute(
        text(
            "INSERT INTO alert_events (alert_id, at, state, detail, value) "
            "VALUES (:a, :at, :state, :detail, :value) RETURNING id"
        ),
        {"a": alert_id, "at": at, "state": state, "detail": detail, "value": value},
    ).scalar_one()
    conn.execute(
        text("UPDATE alerts SET last_notified_at = :at WHERE id = :a"), {"a": alert_id, "at": at}
    )
    outbox_id: int = conn.execute(
        text("INSERT INTO alert_outbox (alert_id, event_id) VALUES (:a, :e) RETURNING id"),
        {"a": alert_id, "e": event_id},
    ).scalar_one()
    return outbox_id


def open_alert(conn: Connection, check: Check, now: datetime) -> int | None:
    """Open a firing alert; None when one is already open for (rule, subject)."""
    alert_id = conn.execute(
        _INSERT_ALERT,
        {
            "rule": check.rule,
            "subject": check.subject,
            "site": check.site_id,
            "enterprise": check.enterprise_id,
            "summary": check.summary,
            "value": check.value,
            "threshold": check.fire_above,
            "details": json.dumps(check.details),
            "now": now,
        },
    ).scalar_one_or_none()
    if alert_id is not None:
        record_change(conn, alert_id, "firing", now, check.summary, check.value)
    return alert_id


def resolve_alert(
    conn: Connection, alert_id: int, now: datetime, detail: str, value: float | None
) -> bool:
    """Resolve an open alert (firing or acknowledged); False when it was not open."""
    done = conn.execute(
        text(
            "UPDATE alerts SET state = 'resolved', resolved_at = :now, updated_at = :now, "
            "value = coalesce(:value, value) WHERE id = :id AND state <> 'resolved' RETURNING id"
        ),
        {"id": alert_id, "now": now, "value": value},
    ).first()
    if done is not None:
        record_change(conn, alert_id, "resolved", now, detail, value)
    return done is not None


def apply_check(conn: Connection, check: Check, now: datetime) -> Action:
    """Evaluate one (rule, subject) at `now` in the caller's transaction.

    An evaluation older than the last one applied for this (rule, subject) (a slow
    concurrent evaluator) changes nothing."""
    key = {"rule": check.rule, "subject": check.subject}
    conn.execute(_ENSURE_CONDITION, key)
    since, evaluated_at = conn.execute(_CONDITION, key).one()
    if evaluated_at is not None and evaluated_at > now:
        return Action.none
    open_id = conn.execute(_OPEN, key).scalar_one_or_none()
    decision = decide(check, open_id is not None, since, now)
    conn.execute(
        _SAVE_CONDITION,
        {**key, "since": decision.breaching_since, "value": check.value, "now": now},
    )
    if decision.action is Action.fire and open_alert(conn, check, now) is not None:
        return Action.fire
    if decision.action is Action.resolve and open_id is not None:
        resolve_alert(conn, open_id, now, check.summary, check.value)
        return Action.resolve
    if open_id is not None:
        conn.execute(
            text("UPDATE alerts SET value = :v, summary = :s WHERE id = :id"),
            {"id": open_id, "v": check.value, "s": check.summary},
        )
    return Action.none


def resolve_unchecked(
    conn: Connection, site_id: str, checked: set[tuple[str, str]], now: datetime
) -> int:
    """Resolve the site's open alerts whose (rule, subject) is no longer evaluated
    (rule disabled, meter deactivated, roadmap removed)."""
    rows = conn.execute(
        text(
            "SELECT id, rule, subject FROM alerts WHERE site_id = :s AND state <> 'resolved' "
            "FOR UPDATE SKIP LOCKED"
        ),
        {"s": site_id},
    ).all()
    resolved = 0
    for alert_id, rule, subject in rows:
        if (rule, subject) not in checked:
            resolved += resolve_alert(conn, alert_id, now, "no longer evaluated", None)
    return resolved


def repeat_due(conn: Connection, now: datetime, repeat_s: int) -> int:
    """Notify again the firing (not acknowledged) alerts last notified `repeat_s` ago."""
    if repeat_s <= 0:
        return 0
    rows = conn.execute(
        text(
            "UPDATE alerts SET last_notified_at = :now WHERE id IN (SELECT id FROM alerts "
            "WHERE state = 'firing' AND last_notified_at <= :due ORDER BY id "
            "FOR UPDATE SKIP LOCKED) RETURNING id, summary, value"
        ),
        {"now": now, "due": now - timedelta(seconds=repeat_s)},
    ).all()
    for alert_id, summary, value in rows:
        record_change(conn, alert_id, "firing", now, f"repeat: {summary}", value)
    return len(rows)


class AckOutcome(StrEnum):
    acknowledged = "acknowledged"
    already_acknowledged = "already_acknowledged"
    resolved = "resolved"
    not_found = "not_found"


@dataclass(frozen=True)
class AckResult:
    outcome: AckOutcome
    alert_id: int


def acknowledge(
    conn: Connection, alert_id: int, by: str, *, note: str = "", now: datetime | None = None
) -> AckResult:
    """Acknowledge an open alert in the caller's transaction: it stays open, is no
    longer repeated, and resolves as usual. Idempotent; `now` defaults to the
    database clock. The one owner of this change (the API and any console call it),
    so every acknowledgement reaches the outbox and is notified."""
    row = conn.execute(
        text(
            "UPDATE alerts SET state = 'acknowledged', acknowledged_by = :by, "
            "acknowledged_at = coalesce(CAST(:now AS timestamptz), now()), "
            "updated_at = coalesce(CAST(:now AS timestamptz), now()) "
            "WHERE id = :id AND state = 'firing' RETURNING acknowledged_at, value"
        ),
        {"id": alert_id, "by": by, "now": now},
    ).first()
    if row is not None:
        detail = f"by {by}" + (f": {note}" if note else "")
        record_change(conn, alert_id, "acknowledged", row.acknowledged_at, detail, row.value)
        return AckResult(AckOutcome.acknowledged, alert_id)
    state = conn.execute(
        text("SELECT state FROM alerts WHERE id = :id"), {"id": alert_id}
    ).scalar_one_or_none()
    if state is None:
        return AckResult(AckOutcome.not_found, alert_id)
    if state == "resolved":
        return AckResult(AckOutcome.resolved, alert_id)
    return AckResult(AckOutcome.already_acknowledged, alert_id)
