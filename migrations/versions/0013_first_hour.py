"""The plausibility guard: a meter's maximum rate, accepted intervals, and
data-quality events that remember when they were detected.

`meters.max_rate_per_h` (in the meter's unit per hour, optional) is what the
meter can use at most; an interval above it is an `implausible` event, kept out
of the totals until an admin accepts it (`accepted_intervals`, by the interval's
end) or records a replacement. `data_quality_events.detected_at` lets alert rules
count events by when the engine found them: a backfilled reset from last month is
news today, and counting by reading time would never alert on it. Restating an
hour keeps an event's first detection time.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

KINDS_BEFORE = "('glitch', 'reset', 'wrap', 'long_gap', 'replacement')"
KINDS_AFTER = "('glitch', 'reset', 'wrap', 'long_gap', 'replacement', 'implausible')"


def upgrade() -> None:
    op.execute(f"""
ALTER TABLE meters ADD COLUMN max_rate_per_h double precision CHECK (max_rate_per_h > 0);

ALTER TABLE data_quality_events DROP CONSTRAINT data_quality_events_kind_check;
ALTER TABLE data_quality_events ADD CONSTRAINT data_quality_events_kind_check
    CHECK (kind IN {KINDS_AFTER});
ALTER TABLE data_quality_events ADD COLUMN detected_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX data_quality_events_detected ON data_quality_events (detected_at);

CREATE TABLE accepted_intervals (
    meter_id     text NOT NULL REFERENCES meters (id),
    t1           timestamptz NOT NULL,
    accepted_by  text NOT NULL,
    note         text NOT NULL DEFAULT '',
    accepted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (meter_id, t1)
);
""")


def downgrade() -> None:
    op.execute(f"""
DROP TABLE accepted_intervals;
DROP INDEX data_quality_events_detected;
ALTER TABLE data_quality_events DROP COLUMN detected_at;
DELETE FROM data_quality_events WHERE kind = 'implausible';
ALTER TABLE data_quality_events DROP CONSTRAINT data_quality_events_kind_check;
ALTER TABLE data_quality_events ADD CONSTRAINT data_quality_events_kind_check
    CHECK (kind IN {KINDS_BEFORE});
ALTER TABLE meters DROP COLUMN max_rate_per_h;
""")
