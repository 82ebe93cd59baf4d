"""Ingest: quarantine de-duplication on redelivery, dirty-hour marks for the engine.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
-- A poison message redelivered after a crash (committed, not yet acked) must not
-- be quarantined twice: the same bytes on the same topic for the same reason are one row.
ALTER TABLE quarantine ADD COLUMN payload_sha256 bytea;
UPDATE quarantine SET payload_sha256 = sha256(payload);
ALTER TABLE quarantine ALTER COLUMN payload_sha256 SET NOT NULL;
CREATE UNIQUE INDEX quarantine_once ON quarantine (topic, payload_sha256, reason, detail);

-- Meter-hours holding newly stored readings. The engine recomputes them (and the
-- intervals on either side of each reading) and deletes the marks it has handled.
CREATE TABLE dirty_meter_hours (
    meter_id   text NOT NULL,
    hour       timestamptz NOT NULL,
    marked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (meter_id, hour)
);
""")


def downgrade() -> None:
    op.execute("""
DROP TABLE dirty_meter_hours;
DROP INDEX quarantine_once;
ALTER TABLE quarantine DROP COLUMN payload_sha256;
""")
