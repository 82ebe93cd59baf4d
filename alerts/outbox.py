"""Delivering alert changes from the outbox, exactly once per (change, channel, target).

The evaluator only writes `alert_outbox` rows (in the transaction of the change);
this worker fans each one out to its targets (`alert_deliveries`) and delivers
them. A delivery is claimed with `FOR UPDATE SKIP LOCKED` and marked delivered in
the same transaction as the send, so two workers never send the same one; a
receiver that accepted a request whose answer was lost sees it again with the
same `X-Emissions-Delivery` id. Deliveries to one target go out in change order:
one waits while an earlier one to the same target is pending.

Each round tries `attempts` times with exponential backoff (tenacity); a failed
round is retried `round_backoff_s` x 2^n later, and after `rounds` rounds the
delivery is dead-lettered (`alert_dead_letters`), never dropped silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, text
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from alerts import metrics
from alerts.notify import DeliveryError
from alerts.notify import mqtt as mqtt_channel
from alerts.notify.alertmanager import post_alerts
from alerts.notify.payload import Change, alertmanager_alert, load_change, mqtt_message, open_alerts
from alerts.notify.webhook import post_webhook, webhook_secret
from core.logs import get_logger
from core.settings import Settings

log = get_logger("alerts")

FAN_OUT_LOCK = 0x616C_6572_7473  # pg advisory lock key: fan-out in outbox order


@dataclass(frozen=True)
class Notifier:
    settings: Settings
    webhook_secret: bytes | None = None  # None: looked up on the first webhook delivery

    @property
    def valid_for(self) -> timedelta:
        """How long Alertmanager keeps an open alert without hearing from us again."""
        return timedelta(seconds=max(4 * self.settings.alerts_evaluation_interval_s, 300))

    def targets(self, conn: Connection, site: str, rule: str) -> list[tuple[str, str]]:
        found = [("mqtt", mqtt_channel.topic(self.settings, site, rule))]
        rules = conn.execute(
            text("SELECT rules FROM site_alert_rules WHERE site_id = :s"), {"s": site}
        ).scalar_one_or_none()
        found += [
            ("webhook", hook["url"]) for hook in (rules or {}).get("site", {}).get("webhooks", [])
        ]
        if self.settings.alerts_alertmanager_url:
            found.append(("alertmanager", self.settings.alerts_alertmanager_url))
        return found

    def send(self, conn: Connection, channel: str, target: str, change: Change) -> None:
        timeout = self.settings.alerts_webhook_timeout_s
        if channel == "mqtt":
            message = mqtt_message(change, open_alerts(conn, change.site, change.rule))
            mqtt_channel.publish_retained(self.settings, target, message, timeout)
        elif channel == "webhook":
            secret = self.webhook_secret or webhook_secret(self.settings)
            body = json.dumps(change.as_json(), sort_keys=True).encode()
            post_webhook(target, body, secret, change.delivery, timeout)
        elif channel == "alertmanager":
            alert = alertmanager_alert(change, datetime.now(UTC), self.valid_for)
            post_alerts(target, [alert], timeout)
        else:
            raise DeliveryError(f"unknown channel {channel!r}")


def fan_out(engine: Engine, notifier: Notifier, limit: int = 500) -> int:
    """One delivery row per target for each new outbox row; returns rows fanned out."""
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": FAN_OUT_LOCK})
        rows = conn.execute(
            text(
                "SELECT o.id, a.site_id, a.rule FROM alert_outbox o JOIN alerts a "
                "ON a.id = o.alert_id WHERE o.fanned_out_at IS NULL ORDER BY o.id LIMIT :n"
            ),
            {"n": limit},
        ).all()
        for outbox_id, site, rule in rows:
            for channel, target in notifier.targets(conn, site, rule):
                conn.execute(
                    text(
                        "INSERT INTO alert_deliveries (outbox_id, channel, target) "
                        "VALUES (:o, :c, :t) ON CONFLICT DO NOTHING"
                    ),
                    {"o": outbox_id, "c": channel, "t": target},
                )
        conn.execute(
            text("UPDATE alert_outbox SET fanned_out_at = now() WHERE id = ANY(:ids)"),
            {"ids": [r.id for r in rows]},
        )
    return len(rows)


_NEXT = text("""
SELECT d.id, d.outbox_id, d.channel, d.target, d.attempts FROM alert_deliveries d
WHERE d.state = 'pending' AND d.next_attempt_at <= now()
  AND NOT EXISTS (SELECT 1 FROM alert_deliveries p WHERE p.state = 'pending'
                  AND p.channel = d.channel AND p.target = d.target AND p.outbox_id < d.outbox_id)
ORDER BY d.outbox_id, d.id LIMIT 1 FOR UPDATE SKIP LOCKED
""")


def _send_with_retries(
    notifier: Notifier, conn: Connection, channel: str, target: str, change: Change
) -> None:
    settings = notifier.settings

    def attempt() -> None:
        try:
            notifier.send(conn, channel, target, change)
        except DeliveryError:
            metrics.NOTIFICATIONS.labels(channel, "failure").inc()
            raise

    retrying = Retrying(
        stop=stop_after_attempt(settings.alerts_retry_attempts),
        wait=wait_exponential(multiplier=settings.alerts_retry_wait_s, max=60),
        retry=retry_if_exception_type(DeliveryError),
        reraise=True,
    )
    retrying(attempt)


def deliver_next(engine: Engine, notifier: Notifier) -> bool:
    """Deliver the next due delivery; False when none is due."""
    settings = notifier.settings
    with engine.begin() as conn:
        row = conn.execute(_NEXT).first()
        if row is None:
            return False
        change = load_change(conn, row.outbox_id)
        rounds = row.attempts + 1
        try:
            _send_with_retries(notifier, conn, row.channel, row.target, change)
        except DeliveryError as exc:
            dead = rounds >= settings.alerts_delivery_rounds
            backoff = settings.alerts_round_backoff_s * 2 ** (rounds - 1)
            conn.execute(
                text(
                    "UPDATE alert_deliveries SET attempts = :n, last_error = :err, "
                    "state = CASE WHEN :dead THEN 'dead' ELSE 'pending' END, "
                    "next_attempt_at = now() + make_interval(secs => :backoff) WHERE id = :id"
                ),
                {"id": row.id, "n": rounds, "err": str(exc), "dead": dead, "backoff": backoff},
            )
            if dead:
                _dead_letter(conn, row.id, row.channel, row.target, change, rounds, str(exc))
            log.warning(
                "alert_delivery_failed",
                channel=row.channel,
                target=row.target,
                delivery=row.id,
                rounds=rounds,
                dead_letter=dead,
                error=str(exc),
            )
            return True
        conn.execute(
            text(
                "UPDATE alert_deliveries SET attempts = :n, state = 'delivered', "
                "delivered_at = now(), last_error = '' WHERE id = :id"
            ),
            {"id": row.id, "n": rounds},
        )
    metrics.NOTIFICATIONS.labels(row.channel, "success").inc()
    return True


def _dead_letter(
    conn: Connection,
    delivery_id: int,
    channel: str,
    target: str,
    change: Change,
    rounds: int,
    error: str,
) -> None:
    conn.execute(
        text(
            "INSERT INTO alert_dead_letters (delivery_id, channel, target, payload, attempts, "
            "last_error) VALUES (:d, :c, :t, CAST(:p AS jsonb), :n, :e) ON CONFLICT DO NOTHING"
        ),
        {
            "d": delivery_id,
            "c": channel,
            "t": target,
            "p": json.dumps(change.as_json()),
            "n": rounds,
            "e": error,
        },
    )
    metrics.NOTIFICATIONS.labels(channel, "dead_letter").inc()


def drain(engine: Engine, notifier: Notifier, max_deliveries: int = 10_000) -> int:
    """Fan out and deliver everything due now; returns deliveries handled."""
    fan_out(engine, notifier)
    done = 0
    while done < max_deliveries and deliver_next(engine, notifier):
        done += 1
    return done


def resend_open_to_alertmanager(engine: Engine, notifier: Notifier) -> None:
    """Alertmanager resolves an alert it stops hearing about: resend the open ones."""
    url = notifier.settings.alerts_alertmanager_url
    if not url:
        return
    with engine.connect() as conn:
        alerts = open_alerts(conn)
    now = datetime.now(UTC)
    payload = [alertmanager_alert(a, now, notifier.valid_for) for a in alerts]
    try:
        post_alerts(url, payload, notifier.settings.alerts_webhook_timeout_s)
    except DeliveryError as exc:
        metrics.NOTIFICATIONS.labels("alertmanager", "failure").inc()
        log.warning("alertmanager_resend_failed", url=url, alerts=len(payload), error=str(exc))
    else:
        metrics.NOTIFICATIONS.labels("alertmanager", "success").inc()
