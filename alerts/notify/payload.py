"""What a notification says: one alert change, rendered per channel.

A change is read back from the store at delivery time (outbox row -> event ->
alert), so every channel describes the same change, and the state it reports is
the state of that change, not whatever the alert has become since.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text


def iso(ts: datetime | None) -> str | None:
    return ts.isoformat().replace("+00:00", "Z") if ts is not None else None


@dataclass(frozen=True)
class Change:
    delivery: int  # the outbox id: receivers de-duplicate on it
    event: str  # firing, acknowledged or resolved
    at: datetime
    detail: str
    alert_id: int
    rule: str
    subject: str
    site: str
    enterprise: str | None
    summary: str
    value: float | None
    threshold: float | None
    details: dict[str, Any]
    started_at: datetime
    acknowledged_by: str | None

    @property
    def repeat(self) -> bool:
        return self.event == "firing" and self.detail.startswith("repeat")

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(at=iso(self.at), started_at=iso(self.started_at), repeat=self.repeat)
        return data


_CHANGE = text(
    "SELECT o.id AS delivery, e.state AS event, e.at, e.detail, a.id AS alert_id, a.rule, "
    "a.subject, a.site_id AS site, a.enterprise_id AS enterprise, a.summary, "
    "coalesce(e.value, a.value) AS value, a.threshold, a.details, a.started_at, "
    "a.acknowledged_by FROM alert_outbox o JOIN alert_events e ON e.id = o.event_id "
    "JOIN alerts a ON a.id = o.alert_id WHERE o.id = :id"
)


def load_change(conn: Connection, outbox_id: int) -> Change:
    row = conn.execute(_CHANGE, {"id": outbox_id}).one()
    return Change(**row._asdict())


def open_alerts(conn: Connection, site: str | None = None, rule: str | None = None) -> list[Change]:
    """The open alerts (of one site and rule, or all), as their latest change."""
    rows = conn.execute(
        text(
            "SELECT 0 AS delivery, a.state AS event, a.updated_at AS at, '' AS detail, "
            "a.id AS alert_id, a.rule, a.subject, a.site_id AS site, a.enterprise_id AS "
            "enterprise, a.summary, a.value, a.threshold, a.details, a.started_at, "
            "a.acknowledged_by FROM alerts a WHERE a.state <> 'resolved' "
            "AND (CAST(:site AS text) IS NULL OR a.site_id = :site) "
            "AND (CAST(:rule AS text) IS NULL OR a.rule = :rule) ORDER BY a.subject"
        ),
        {"site": site, "rule": rule},
    )
    return [Change(**r._asdict()) for r in rows]


def mqtt_message(change: Change, still_open: list[Change]) -> dict[str, Any]:
    """Retained on {prefix}/{site}/alerts/{rule}: the change and what is open now."""
    return {
        "site": change.site,
        "rule": change.rule,
        "change": change.as_json(),
        "open": [
            {k: v for k, v in c.as_json().items() if k not in ("delivery", "detail", "repeat")}
            for c in still_open
        ],
    }


def alertmanager_alert(change: Change, now: datetime, valid_for: timedelta) -> dict[str, Any]:
    """One Alertmanager v2 alert. While open, `endsAt` lies `valid_for` ahead and is
    pushed forward by periodic resends; a resolve sets it to the resolve time."""
    labels = {
        "alertname": change.rule,
        "site": change.site,
        "subject": change.subject,
        "service": "park-emissions",
        "severity": "warning",
    }
    if change.enterprise:
        labels["enterprise"] = change.enterprise
    annotations = {"summary": change.summary}
    if change.acknowledged_by:
        annotations["acknowledged_by"] = change.acknowledged_by
    ends = change.at if change.event == "resolved" else now + valid_for
    return {
        "labels": labels,
        "annotations": annotations,
        "startsAt": iso(change.started_at),
        "endsAt": iso(ends),
    }
