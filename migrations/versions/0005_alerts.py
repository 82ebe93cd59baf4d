"""Alerts: rule configuration, evaluation state and notification deliveries.

The `alerts` and `alert_events` tables come from 0001 (one open alert per
(rule, subject) is a partial unique index there). This adds what the evaluator
and the notifier need:

- `site_alert_rules`: each site's alert rules as applied from the park file;
- `alert_conditions`: per (rule, subject), since when a condition has held (the
  `for` duration) and the instant of the last evaluation;
- `alert_outbox`: one row per alert change, written in the same transaction as
  the change, so a notification can neither be lost nor block evaluation;
- `alert_deliveries`: one row per (change, channel, target) with its attempts,
  backoff and outcome; `alert_dead_letters` keeps what could not be delivered.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE site_alert_rules (
    site_id     text PRIMARY KEY REFERENCES sites (id),
    rules       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE alert_conditions (
    rule             text NOT NULL,
    subject          text NOT NULL,
    breaching_since  timestamptz,
    value            double precision,
    evaluated_at     timestamptz,
    PRIMARY KEY (rule, subject)
);

-- What an alert is about beyond rule and subject (window, meter, budget), and
-- when it was last notified (repeat notifications of unacknowledged alerts).
ALTER TABLE alerts ADD COLUMN details jsonb NOT NULL DEFAULT '{}';
ALTER TABLE alerts ADD COLUMN last_notified_at timestamptz;
ALTER TABLE alert_events ADD COLUMN value double precision;

CREATE TABLE alert_outbox (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id       bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    event_id       bigint NOT NULL REFERENCES alert_events (id) ON DELETE CASCADE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    fanned_out_at  timestamptz
);
CREATE INDEX alert_outbox_pending ON alert_outbox (id) WHERE fanned_out_at IS NULL;

CREATE TABLE alert_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    outbox_id        bigint NOT NULL REFERENCES alert_outbox (id) ON DELETE CASCADE,
    channel          text NOT NULL CHECK (channel IN ('mqtt', 'webhook', 'alertmanager')),
    target           text NOT NULL,
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text NOT NULL DEFAULT '',
    delivered_at     timestamptz,
    UNIQUE (outbox_id, channel, target)
);
-- Deliveries to one target go out in change order (a resolve never overtakes its firing).
CREATE INDEX alert_deliveries_pending ON alert_deliveries (channel, target, id)
    WHERE state = 'pending';

CREATE TABLE alert_dead_letters (
    delivery_id  bigint PRIMARY KEY REFERENCES alert_deliveries (id) ON DELETE CASCADE,
    channel      text NOT NULL,
    target       text NOT NULL,
    payload      jsonb NOT NULL,
    attempts     integer NOT NULL,
    last_error   text NOT NULL,
    dead_at      timestamptz NOT NULL DEFAULT now()
);
""")


def downgrade() -> None:
    op.execute("""
DROP TABLE alert_dead_letters;
DROP TABLE alert_deliveries;
DROP TABLE alert_outbox;
ALTER TABLE alert_events DROP COLUMN value;
ALTER TABLE alerts DROP COLUMN last_notified_at;
ALTER TABLE alerts DROP COLUMN details;
DROP TABLE alert_conditions;
DROP TABLE site_alert_rules;
""")
