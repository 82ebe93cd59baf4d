"""Quarantine bounds: payloads cut at a cap (full size and SHA-256 kept), a summary of
what the per-gateway rate limit dropped, replay marks, an index for retention.

- `payload_bytes`: the full size of a payload stored cut (NULL: kept whole);
  `payload_sha256` stays the digest of the full payload.
- `replayed_at` / `replay_result`: a row replayed through the normal ingest path
  stays, for the audit trail; the de-duplication index covers only rows not yet
  replayed, so a replay that quarantines the same reading again adds a fresh row.
- `quarantine_drops`: rows the per-source rate limit did not store, counted per
  source (the publishing topic: a gateway's batch topic is the gateway), reason
  and hour, so nothing is lost without a trace.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

READER = "emissions_reader"


def upgrade() -> None:
    op.execute(f"""
ALTER TABLE quarantine
    ADD COLUMN payload_bytes integer CHECK (payload_bytes IS NULL OR payload_bytes >= 0),
    ADD COLUMN replayed_at timestamptz,
    ADD COLUMN replay_result text;
DROP INDEX quarantine_once;
CREATE UNIQUE INDEX quarantine_once ON quarantine (topic, payload_sha256, reason, detail)
    WHERE replayed_at IS NULL;
CREATE INDEX quarantine_received ON quarantine (received_at);

CREATE TABLE quarantine_drops (
    source    text NOT NULL,
    site_id   text,
    reason    text NOT NULL,
    hour      timestamptz NOT NULL,
    dropped   bigint NOT NULL CHECK (dropped > 0),
    first_at  timestamptz NOT NULL DEFAULT now(),
    last_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, reason, hour)
);
CREATE INDEX quarantine_drops_hour ON quarantine_drops (hour);

GRANT SELECT (payload_bytes, replayed_at, replay_result) ON quarantine TO {READER};
GRANT SELECT ON quarantine_drops TO {READER};
""")


def downgrade() -> None:
    op.execute(f"""
REVOKE ALL ON quarantine_drops FROM {READER};
DROP TABLE quarantine_drops;
DROP INDEX quarantine_received;
DROP INDEX quarantine_once;
-- The old index allows one row per key: keep the newest of each.
DELETE FROM quarantine q USING quarantine newer
    WHERE (newer.topic, newer.payload_sha256, newer.reason, newer.detail)
        = (q.topic, q.payload_sha256, q.reason, q.detail) AND newer.id > q.id;
CREATE UNIQUE INDEX quarantine_once ON quarantine (topic, payload_sha256, reason, detail);
ALTER TABLE quarantine DROP COLUMN replay_result, DROP COLUMN replayed_at,
    DROP COLUMN payload_bytes;
""")
