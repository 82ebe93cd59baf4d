"""Engine: where new readings start in each dirty hour, and each meter's watermark.

With the earliest new reading per dirty hour and the last reading already priced
per meter, the engine tells a plain append (the common, real-time case: only the
readings after the watermark are new) from a late or out-of-order arrival, and
handles an append in time proportional to the new readings, not to the hour.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
ALTER TABLE dirty_meter_hours ADD COLUMN min_ts timestamptz;
UPDATE dirty_meter_hours SET min_ts = hour;
ALTER TABLE dirty_meter_hours ALTER COLUMN min_ts SET NOT NULL;
-- A mark that does not say (e.g. written by hand) is treated as a late arrival.
ALTER TABLE dirty_meter_hours ALTER COLUMN min_ts SET DEFAULT '1970-01-01T00:00:00Z';

-- When the mark was first made; re-stamping (marked_at) leaves it alone, so a
-- meter that reports often cannot keep pushing itself behind quieter ones.
ALTER TABLE dirty_meter_hours ADD COLUMN first_marked_at timestamptz NOT NULL DEFAULT now();

CREATE TABLE meter_engine_state (
    meter_id        text PRIMARY KEY,
    computed_until  timestamptz NOT NULL
);
""")


def downgrade() -> None:
    op.execute("""
DROP TABLE meter_engine_state;
ALTER TABLE dirty_meter_hours DROP COLUMN first_marked_at;
ALTER TABLE dirty_meter_hours DROP COLUMN min_ts;
""")
